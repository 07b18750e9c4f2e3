//! Parity with the PyTorch reference (tools/bsq_reference.py, fixtures from tools/gen_bsq_fixtures.py):
//! forward output, every loss term, every parameter's gradient and BatchNorm's running statistics
//! within a relative error of 1e-4 (max |ours − ref| / max |ref| per tensor, f32 against the
//! reference's float64), integer indices identical.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use audiotok_bsq::{BsqModel, Config, Mode, Params, ReconLoss};
use candle_core::{DType, Device, Tensor};

const CASES: [&str; 3] = ["group", "analytical", "plain_mse"];
const TOL: f32 = 1e-4;

fn dir(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bsq").join(case)
}

struct Case {
    cfg: Config,
    train: serde_json::Value,
    exp: HashMap<String, Tensor>,
}

fn load(case: &str) -> Case {
    let d = dir(case);
    let cfg = Config::from_json(&std::fs::read_to_string(d.join("config.json")).unwrap()).unwrap();
    let train = serde_json::from_str(&std::fs::read_to_string(d.join("train.json")).unwrap()).unwrap();
    let exp = candle_core::safetensors::load(d.join("expected.safetensors"), &Device::Cpu).unwrap();
    Case { cfg, train, exp }
}

fn params(case: &str, cfg: &Config) -> Params {
    Params::load(cfg, &dir(case).join("weights.safetensors"), &Device::Cpu).unwrap()
}

fn rel(ours: &Tensor, reference: &Tensor) -> f32 {
    assert_eq!(ours.dims(), reference.dims());
    let a = ours.to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let b = reference.to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    a.iter().zip(&b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

fn close(case: &str, what: &str, ours: &Tensor, reference: &Tensor) {
    let r = rel(ours, reference);
    assert!(r <= TOL, "{case}: {what}: relative error {r:e}");
}

fn ints(t: &Tensor) -> Vec<u32> {
    t.flatten_all().unwrap().to_vec1::<i64>().unwrap().into_iter().map(|v| v as u32).collect()
}

fn recon_kind(train: &serde_json::Value) -> ReconLoss {
    if train["recon_loss"] == "mse" {
        ReconLoss::Mse
    } else {
        ReconLoss::L1
    }
}

#[test]
fn eval_forward_and_indices_match_the_reference() {
    for case in CASES {
        let c = load(case);
        let model = BsqModel::new(&c.cfg, params(case, &c.cfg)).unwrap();
        let x = &c.exp["x"];
        let fwd = model.forward(x, Mode::Eval).unwrap();
        close(case, "eval recon", &fwd.recon, &c.exp["eval.recon"]);
        close(case, "eval z", &fwd.z, &c.exp["eval.z"]);
        let idx = model.encode_indices(x).unwrap();
        assert_eq!(idx, ints(&c.exp["eval.indices"]), "{case}: indices");
        let z = fwd.z.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let groups = audiotok_bsq::bsq::group_indices(&z, c.cfg.group_size);
        assert_eq!(groups, ints(&c.exp["eval.group_indices"]), "{case}: group indices");
        // decoding the indices is the eval forward's decoder half
        let dec = model.decode_indices(&idx, 2).unwrap();
        close(case, "decode(indices)", &dec, &c.exp["eval.recon"]);
    }
}

#[test]
fn train_forward_losses_gradients_and_running_stats_match_the_reference() {
    for case in CASES {
        let c = load(case);
        let p = params(case, &c.cfg);
        let model = BsqModel::new(&c.cfg, p.clone()).unwrap();
        let x = &c.exp["x"];
        let fwd = model.forward(x, Mode::Train).unwrap();
        let bsq_weight = c.train["bsq_weight"].as_f64().unwrap();
        let losses = model.losses(x, &fwd, recon_kind(&c.train), bsq_weight).unwrap();
        let q = &fwd.quant;
        for (what, ours) in [
            ("recon", &fwd.recon),
            ("z", &fwd.z),
            ("zq", &q.zq),
            ("avg_prob", &q.avg_prob),
            ("commit", &q.commit),
            ("persample_entropy", &q.persample_entropy),
            ("codebook_entropy", &q.codebook_entropy),
            ("bsq_loss", &q.loss),
            ("recon_loss", &losses.recon),
            ("total", &losses.total),
        ] {
            close(case, what, ours, &c.exp[&format!("train.{what}")]);
        }
        let z = fwd.z.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(audiotok_bsq::bsq::indices(&z, c.cfg.bits), ints(&c.exp["train.indices"]), "{case}");
        let grads = losses.total.backward().unwrap();
        for (name, var) in p.trainable() {
            let g = grads.get(var).unwrap_or_else(|| panic!("{case}: no gradient for {name}"));
            close(case, &format!("gradient of {name}"), g, &c.exp[&format!("grad.{name}")]);
        }
        assert_eq!(p.trainable().len(), c.exp.keys().filter(|k| k.starts_with("grad.")).count());
        for (name, var) in p.buffers() {
            close(case, &format!("{name} after the step"), var.as_tensor(), &c.exp[&format!("after.{name}")]);
        }
    }
}
