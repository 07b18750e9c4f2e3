//! Model-level checks that need no reference: gradients reach every parameter, weights round-trip,
//! mismatched weights are reported in full, bad inputs are refused.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use audiotok_bsq::{BsqModel, Config, EntropyMode, Error, Mode, Params, ReconLoss};
use candle_core::{Device, Tensor};

fn small(mode: EntropyMode, conformer: bool) -> Config {
    Config {
        n_mels: 16,
        crop_frames: 32,
        freq_patch: 8,
        time_patch: 4,
        width: 16,
        encoder_depth: 2,
        decoder_depth: 2,
        heads: 2,
        mlp_ratio: 2.0,
        conformer,
        conv_kernel: 3,
        head_dim: 24,
        bits: 6,
        group_size: 3,
        inv_temperature: 10.0,
        beta: 0.25,
        persample_entropy: mode,
        ..Config::default()
    }
}

fn input(cfg: &Config, b: usize, t: usize) -> Tensor {
    let n = b * cfg.n_mels * t;
    let v: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin() * 0.9).collect();
    Tensor::from_vec(v, (b, cfg.n_mels, t), &Device::Cpu).unwrap()
}

#[test]
fn every_trainable_tensor_gets_a_nonzero_gradient() {
    for (mode, conformer) in [(EntropyMode::Group, true), (EntropyMode::Analytical, true), (EntropyMode::Group, false)]
    {
        let cfg = small(mode, conformer);
        let params = Params::init(&cfg, 3, &Device::Cpu).unwrap();
        let model = BsqModel::new(&cfg, params.clone()).unwrap();
        let x = input(&cfg, 2, 32);
        let fwd = model.forward(&x, Mode::Train).unwrap();
        let losses = model.losses(&x, &fwd, ReconLoss::L1, 1.0).unwrap();
        let grads = losses.total.backward().unwrap();
        assert!(params.trainable().len() > 30);
        for (name, var) in params.trainable() {
            let g = grads.get(var).unwrap_or_else(|| panic!("{mode:?}: no gradient for {name}"));
            // above rounding noise (a gradient that is zero in exact arithmetic, such as a bias before
            // BatchNorm, shows ~1e-9 here; the smallest real one, at std-0.02 init, is ~8e-6)
            let s = g.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(s > 1e-7 && s.is_finite(), "{mode:?}: largest gradient of {name} is {s}");
        }
        for (name, var) in params.buffers() {
            assert!(grads.get(var).is_none(), "buffer {name} got a gradient");
        }
    }
}

#[test]
fn batchnorm_running_stats_move_in_train_mode_only() {
    let cfg = small(EntropyMode::Group, true);
    let params = Params::init(&cfg, 3, &Device::Cpu).unwrap();
    let model = BsqModel::new(&cfg, params.clone()).unwrap();
    let name = "enc.blocks.0.conv.bn.running_mean";
    let before = params.tensors()[name].to_vec1::<f32>().unwrap();
    model.forward(&input(&cfg, 2, 16), Mode::Eval).unwrap();
    assert_eq!(params.tensors()[name].to_vec1::<f32>().unwrap(), before);
    model.forward(&input(&cfg, 2, 16), Mode::Train).unwrap();
    assert_ne!(params.tensors()[name].to_vec1::<f32>().unwrap(), before);
}

#[test]
fn weights_round_trip_and_reproduce_outputs() {
    let cfg = small(EntropyMode::Group, true);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    let params = Params::init(&cfg, 9, &Device::Cpu).unwrap();
    params.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    params.save(&path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "reruns give identical bytes");
    let loaded = Params::load(&cfg, &path, &Device::Cpu).unwrap();
    let x = input(&cfg, 1, 32);
    let a = BsqModel::new(&cfg, params).unwrap().encode_indices(&x).unwrap();
    let b = BsqModel::new(&cfg, loaded).unwrap().encode_indices(&x).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.len(), 2 * 8);
    assert!(a.iter().all(|&i| i < 64));
}

#[test]
fn weights_of_another_config_list_every_mismatch() {
    let cfg = small(EntropyMode::Group, true);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    let other = Config { bits: 9, conformer: false, encoder_depth: 3, ..cfg.clone() };
    Params::init(&other, 1, &Device::Cpu).unwrap().save(&path).unwrap();
    let Err(Error::Mismatch(m)) = Params::load(&cfg, &path, &Device::Cpu) else { panic!("expected a mismatch") };
    let shapes: Vec<&str> = m.misshaped.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(shapes, ["quant.proj.weight", "quant.proj.bias", "dec.proj.weight"]);
    // 4 blocks x (ln 2 + pw1 2 + dw 1 + bn 4 + pw2 2) conformer tensors missing
    assert_eq!(m.missing.len(), 4 * 11);
    assert!(m.missing.iter().all(|n| n.contains(".conv.")));
    assert_eq!(m.unexpected.len(), 12, "{:?}", m.unexpected);
    assert!(m.unexpected.iter().all(|n| n.starts_with("enc.blocks.2.")));
    let msg = Error::Mismatch(m).to_string();
    assert!(msg.contains("w.safetensors") && msg.contains("quant.proj.weight (model [6, 16], file [9, 16])"), "{msg}");
    let e = Params::from_tensors(&cfg, HashMap::new(), "empty", &Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("empty") && e.contains("missing"), "{e}");
}

#[test]
fn bad_inputs_are_refused_with_a_reason() {
    let cfg = small(EntropyMode::Group, false);
    let model = BsqModel::new(&cfg, Params::init(&cfg, 0, &Device::Cpu).unwrap()).unwrap();
    let e = model.forward(&input(&cfg, 1, 30), Mode::Eval).unwrap_err().to_string();
    assert!(e.contains("30 frames"), "{e}");
    let e = model.forward(&input(&cfg, 1, 36), Mode::Eval).unwrap_err().to_string();
    assert!(e.contains("at most crop_frames 32"), "{e}");
    let x = Tensor::zeros((1, 12, 32), candle_core::DType::F32, &Device::Cpu).unwrap();
    let e = model.forward(&x, Mode::Eval).unwrap_err().to_string();
    assert!(e.contains("12 mel bins"), "{e}");
    let e = model.decode_indices(&[1, 2, 3], 1).unwrap_err().to_string();
    assert!(e.contains("do not fit"), "{e}");
}

#[test]
fn patchify_is_time_major_and_inverts() {
    let cfg = small(EntropyMode::Group, false);
    let model = BsqModel::new(&cfg, Params::init(&cfg, 0, &Device::Cpu).unwrap()).unwrap();
    let (f, t) = (16, 8);
    let v: Vec<f32> = (0..f * t).map(|i| i as f32).collect();
    let x = Tensor::from_vec(v, (1, f, t), &Device::Cpu).unwrap();
    let p = model.patchify(&x).unwrap();
    assert_eq!(p.dims(), &[1, 4, 32]);
    // token 1 = time patch 0, freq patch 1: mel bins 8..16, frames 0..4; first value x[8][0]
    let rows = p.squeeze(0).unwrap().to_vec2::<f32>().unwrap();
    assert_eq!(rows[1][0], (8 * t) as f32);
    assert_eq!(rows[2][0], 4.0); // time patch 1, freq patch 0
    assert_eq!(rows[0][4], t as f32); // second mel bin of the first patch
    let back = model.unpatchify(&p, 2).unwrap();
    assert_eq!(
        back.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        x.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    );
}
