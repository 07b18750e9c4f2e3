//! Training steps and checkpoints: a run interrupted and resumed equals one that was not, bit for bit;
//! a non-finite loss stops before the update; a failed checkpoint leaves the previous one.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use audiotok_bsq::optim::OptimConfig;
use audiotok_bsq::{Config, EntropyMode, Error, Rng, TrainConfig, Trainer};
use candle_core::{Device, Tensor};

fn cfg() -> TrainConfig {
    TrainConfig {
        model: Config {
            n_mels: 16,
            crop_frames: 32,
            freq_patch: 8,
            time_patch: 4,
            width: 16,
            encoder_depth: 1,
            decoder_depth: 1,
            heads: 2,
            mlp_ratio: 2.0,
            conv_kernel: 3,
            head_dim: 16,
            bits: 6,
            group_size: 3,
            inv_temperature: 10.0,
            beta: 0.25,
            persample_entropy: EntropyMode::Group,
            ..Config::default()
        },
        optim: OptimConfig { lr: 1e-2, warmup_steps: 2, ema_decay: Some(0.9), ..OptimConfig::default() },
        total_steps: 6,
        bsq_rampup_multiplier: 3.0,
        bsq_rampup_steps: 4,
        checkpoint_every: 3,
        keep_checkpoints: 2,
        seed: 11,
        ..TrainConfig::default()
    }
}

/// A synthetic batch drawn from the run's generator (so the data order is part of the saved state).
fn batch(rng: &mut Rng) -> Tensor {
    let v: Vec<f32> = (0..2 * 16 * 16).map(|_| (rng.uniform() * 2.0 - 1.0) as f32).collect();
    Tensor::from_vec(v, (2, 16, 16), &Device::Cpu).unwrap()
}

fn run(t: &mut Trainer, steps: u64) {
    for _ in 0..steps {
        let b = batch(t.rng_mut());
        let m = t.step(&b).unwrap();
        assert!(m.loss.is_finite());
    }
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().into_string().unwrap(), std::fs::read(e.path()).unwrap())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn interrupted_and_resumed_equals_uninterrupted_bit_for_bit() {
    let dev = Device::Cpu;
    let a = tempfile::tempdir().unwrap();
    let mut straight = Trainer::new(cfg(), &dev).unwrap();
    run(&mut straight, 6);
    let end_a = straight.save_checkpoint(a.path()).unwrap();

    let b = tempfile::tempdir().unwrap();
    let mut first = Trainer::new(cfg(), &dev).unwrap();
    run(&mut first, 3);
    first.save_checkpoint(b.path()).unwrap();
    drop(first);
    let mut resumed = Trainer::resume(b.path(), None, &dev).unwrap();
    assert_eq!(resumed.step_count(), 3);
    run(&mut resumed, 3);
    let end_b = resumed.save_checkpoint(b.path()).unwrap();

    let (fa, fb) = (files(&end_a), files(&end_b));
    let names: Vec<&str> = fa.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["config.json", "ema.safetensors", "optimizer.safetensors", "state.json", "weights.safetensors"]);
    for ((na, da), (nb, db)) in fa.iter().zip(&fb) {
        assert_eq!(na, nb);
        assert!(da == db, "{na} differs between the straight and the resumed run");
    }
    assert_eq!(std::fs::read_to_string(b.path().join("latest")).unwrap(), "step-00000006\n");
    // the weights did move, so the equality above is not that of two untouched models
    let fresh = Trainer::new(cfg(), &dev).unwrap();
    let c = tempfile::tempdir().unwrap();
    let end_c = fresh.save_checkpoint(c.path()).unwrap();
    assert_ne!(std::fs::read(end_c.join("weights.safetensors")).unwrap(), fa[4].1);
}

#[test]
fn a_non_finite_loss_stops_before_the_update() {
    let dev = Device::Cpu;
    let dir = tempfile::tempdir().unwrap();
    let mut t = Trainer::new(cfg(), &dev).unwrap();
    run(&mut t, 1);
    let saved = t.save_checkpoint(dir.path()).unwrap();
    let before = std::fs::read(saved.join("weights.safetensors")).unwrap();
    let mut v = vec![0.5f32; 2 * 16 * 16];
    v[7] = f32::NAN;
    let bad = Tensor::from_vec(v, (2, 16, 16), &dev).unwrap();
    match t.step(&bad) {
        Err(Error::NonFinite { step, what }) => {
            assert_eq!(step, 2);
            assert_eq!(what, "loss");
        }
        other => panic!("expected NonFinite, got {:?}", other.map(|m| m.loss)),
    }
    assert_eq!(t.step_count(), 1);
    // nothing changed: weights and BatchNorm statistics as before the failed step
    let again = tempfile::tempdir().unwrap();
    let p = t.save_checkpoint(again.path()).unwrap();
    assert_eq!(std::fs::read(p.join("weights.safetensors")).unwrap(), before);
}

#[test]
fn a_failed_checkpoint_leaves_the_previous_one() {
    let dev = Device::Cpu;
    let dir = tempfile::tempdir().unwrap();
    let mut t = Trainer::new(cfg(), &dev).unwrap();
    run(&mut t, 1);
    let first = t.save_checkpoint(dir.path()).unwrap();
    let before = files(&first);
    run(&mut t, 1);
    // a plain file where the new checkpoint folder must go makes the write fail after every file of
    // it was written (a stand-in for a full disk, which cannot be made here: the tests may run as root)
    let blocker = dir.path().join("checkpoints").join("step-00000002");
    std::fs::write(&blocker, b"in the way").unwrap();
    let e = t.save_checkpoint(dir.path()).unwrap_err().to_string();
    assert!(e.contains("step-00000002"), "{e}");
    std::fs::remove_file(&blocker).unwrap();
    let left: Vec<String> = std::fs::read_dir(dir.path().join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, ["step-00000001"], "no temporary folder left behind");
    assert_eq!(std::fs::read_to_string(dir.path().join("latest")).unwrap(), "step-00000001\n");
    assert_eq!(files(&first), before);
    let resumed = Trainer::resume(dir.path(), None, &dev).unwrap();
    assert_eq!(resumed.step_count(), 1);
}

#[test]
fn a_checkpoint_of_another_config_lists_the_mismatches() {
    let dev = Device::Cpu;
    let dir = tempfile::tempdir().unwrap();
    let t = Trainer::new(cfg(), &dev).unwrap();
    let ckpt = t.save_checkpoint(dir.path()).unwrap();
    let other = Config { bits: 9, ..cfg().model };
    let e = audiotok_bsq::Params::load(&other, &ckpt.join("weights.safetensors"), &dev).unwrap_err().to_string();
    assert!(e.contains("quant.proj.weight (model [9, 16], file [6, 16])"), "{e}");
    assert!(e.contains("dec.proj.weight"), "{e}");
}
