//! `audiotok bsq train` on a tiny configuration and a few generated clips: a run, a resume equal to
//! an uninterrupted run byte for byte, bad configurations, a checkpoint of another configuration, a
//! NaN loss.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

fn audiotok() -> Command {
    Command::cargo_bin("audiotok").unwrap()
}

fn clips(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for k in 0..n {
        let rate = 16_000u32;
        let samples: Vec<f32> = (0..(6000 + 1500 * k))
            .map(|i| {
                let t = i as f64 / f64::from(rate);
                let f = 180.0 + 120.0 * k as f64 + 400.0 * t;
                (0.25 * (std::f64::consts::TAU * f * t).sin() * (1.2 + (9.0 * t).sin())) as f32
            })
            .collect();
        audiotok_audio::write_wav_f32(&dir.join(format!("c{k}.wav")), &samples, rate, 1).unwrap();
    }
}

/// A tiny run: 16 mels (the features are computed with 16 bins), 32-frame crops, 4 x 8 patches.
fn config(dir: &Path, name: &str, width: usize, extra: &str) -> PathBuf {
    let text = format!(
        r#"{{
  "model": {{"n_mels": 16, "crop_frames": 32, "freq_patch": 8, "time_patch": 4, "width": {width},
             "encoder_depth": 1, "decoder_depth": 1, "heads": 2, "mlp_ratio": 2.0, "conv_kernel": 3,
             "head_dim": 16, "bits": 6, "group_size": 3, "inv_temperature": 10.0, "beta": 0.25}},
  "optim": {{"lr": 0.005, "warmup_steps": 2, "ema_decay": 0.9{extra}}},
  "data": {{"batch_size": 2, "val_fraction": 0.25, "time_masks": 1, "time_mask_width": 4, "freq_masks": 1,
            "freq_mask_width": 2, "jobs": 1}},
  "total_steps": 6, "checkpoint_every": 2, "keep_checkpoints": 2, "log_every": 1, "val_every": 3, "seed": 5
}}"#
    );
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn train(cfg: &Path, data: &Path, out: &Path) -> Command {
    let mut c = audiotok();
    c.args(["bsq", "train", "--config"]).arg(cfg).arg("--data").arg(data).arg("--out").arg(out);
    c
}

fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.unwrap();
        if e.file_type().is_file() {
            let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
            out.push((rel, std::fs::read(e.path()).unwrap()));
        }
    }
    out
}

#[test]
fn a_run_and_a_resumed_run_are_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("audio");
    clips(&data, 6);
    let cfg = config(tmp.path(), "c.json", 16, "");
    let a = tmp.path().join("a");
    let out = train(&cfg, &data, &a).arg("--json").assert().success();
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["step"], 6);
    assert_eq!(v["steps_run"], 6);
    assert_eq!((v["train_clips"].as_u64(), v["val_clips"].as_u64()), (Some(4), Some(2)));
    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(stderr.contains("bsq train: step 6/6, 6 updates"), "{stderr}");
    assert!(stderr.contains("step 3: validation L1"), "{stderr}");

    // metrics.jsonl: a line per step, every loss term, validation at steps 3 and 6.
    let log = std::fs::read_to_string(a.join("metrics.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 6);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["step"], i as u64 + 1);
        for k in ["lr", "loss", "recon", "commit", "persample_entropy", "codebook_entropy", "bsq_loss", "grad_norm"] {
            assert!(l[k].as_f64().unwrap().is_finite(), "{k} in {l}");
        }
        assert_eq!(l.get("val").is_some(), i == 2 || i == 5, "{l}");
    }
    assert!(lines[5]["val"]["rmse_db"].as_f64().unwrap() > 0.0);
    // 16 tokens per 32-frame crop (2 frequency x 8 time patches).
    assert_eq!(lines[5]["val"]["tokens"].as_u64().unwrap(), 16 * lines[5]["val"]["crops"].as_u64().unwrap());
    let png = std::fs::read(a.join("loss.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(std::fs::read_to_string(a.join("latest")).unwrap(), "step-00000006\n");
    assert_eq!(std::fs::read_to_string(a.join("rejects.jsonl")).unwrap(), "");

    // The same run stopped at step 3 and resumed: the same files, byte for byte.
    let b = tmp.path().join("b");
    train(&cfg, &data, &b).args(["--stop-at", "3"]).assert().success();
    assert_eq!(std::fs::read_to_string(b.join("latest")).unwrap(), "step-00000003\n");
    audiotok().args(["bsq", "train", "--resume", "--data"]).arg(&data).arg("--out").arg(&b).assert().success();
    let ta = tree(&a);
    let tb = tree(&b);
    let names = |t: &[(String, Vec<u8>)]| t.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&ta), names(&tb));
    assert!(names(&ta).contains(&"checkpoints/step-00000006/weights.safetensors".to_string()));
    for ((na, ba), (_, bb)) in ta.iter().zip(&tb) {
        assert!(ba == bb, "{na} differs after resume");
    }

    // Resuming with another seed is refused.
    audiotok()
        .args(["bsq", "train", "--resume", "--seed", "9", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(&b)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--seed and --steps change the run"));
    // A new run into a folder holding one is refused.
    train(&cfg, &data, &a).assert().code(2).stderr(predicate::str::contains("already holds a run"));
}

#[test]
fn bad_configurations_and_a_checkpoint_of_another_configuration() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("audio");
    clips(&data, 3);
    let base = std::fs::read_to_string(config(tmp.path(), "c.json", 16, "")).unwrap();
    let bad = tmp.path().join("bad.json");
    std::fs::write(&bad, base.replace("\"time_patch\": 4", "\"time_patch\": 5")).unwrap();
    train(&bad, &data, &tmp.path().join("x"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("time_patch 5 does not divide crop_frames 32"));
    std::fs::write(&bad, base.replace("\"group_size\": 3", "\"group_size\": 4")).unwrap();
    train(&bad, &data, &tmp.path().join("x"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("group_size 4 does not divide bits 6"));
    std::fs::write(&bad, base.replace("\"batch_size\": 2", "\"batch_size\": 2, \"crop\": 3")).unwrap();
    train(&bad, &data, &tmp.path().join("x")).assert().code(2).stderr(predicate::str::contains("unknown field `crop`"));

    // Run A (width 16) and run B (width 24); A's weights copied into B's checkpoint.
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    let cfg_b = config(tmp.path(), "b.json", 24, "");
    train(&config(tmp.path(), "a.json", 16, ""), &data, &a).args(["--steps", "2"]).assert().success();
    train(&cfg_b, &data, &b).args(["--steps", "4", "--stop-at", "2"]).assert().success();
    std::fs::copy(
        a.join("checkpoints/step-00000002/weights.safetensors"),
        b.join("checkpoints/step-00000002/weights.safetensors"),
    )
    .unwrap();
    let out = audiotok().args(["bsq", "train", "--resume", "--data"]).arg(&data).arg("--out").arg(&b).assert().code(2);
    let err = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(err.contains("weights.safetensors: the weights do not fit this configuration"), "{err}");
    // Every tensor whose shape depends on the width is listed (and only those).
    for name in [
        "enc.patch_embed.weight (model [24, 32], file [16, 32])",
        "enc.pos_embed (model [16, 24], file [16, 16])",
        "dec.head.fc.weight (model [16, 24], file [16, 16])",
        "enc.blocks.0.conv.dw.weight (model [24, 1, 3], file [16, 1, 3])",
        "quant.proj.weight (model [6, 24], file [6, 16])",
    ] {
        assert!(err.contains(name), "{name} not in {err}");
    }
    assert!(!err.contains("dec.head.out.bias"), "{err}");
    // ... and every one of them: the tensors whose shapes differ between the two configurations.
    let cfg_of = |p: &Path| {
        let t: audiotok_bsq::TrainConfig = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
        audiotok_bsq::params::spec(&t.model)
    };
    let (sa, sb) = (cfg_of(&tmp.path().join("a.json")), cfg_of(&cfg_b));
    let differ: Vec<_> = sa.iter().zip(&sb).filter(|(x, y)| x.shape != y.shape).collect();
    assert!(err.contains(&format!("; {} mis-shaped: ", differ.len())), "{} expected: {err}", differ.len());
    for (x, y) in differ {
        assert!(err.contains(&format!("{} (model {:?}, file {:?})", x.name, y.shape, x.shape)), "{}", x.name);
    }
    assert!(!err.contains("missing"), "{err}");
}

#[test]
fn no_usable_audio_and_a_nan_loss() {
    let tmp = tempfile::tempdir().unwrap();
    let quiet = tmp.path().join("quiet");
    std::fs::create_dir_all(&quiet).unwrap();
    audiotok_audio::write_wav_f32(&quiet.join("z.wav"), &[0.0; 4000], 16_000, 1).unwrap();
    let cfg = config(tmp.path(), "c.json", 16, "");
    train(&cfg, &quiet, &tmp.path().join("q")).assert().code(2).stderr(
        predicate::str::contains("no usable audio: 1 inputs, all rejected")
            .and(predicate::str::contains("z.wav: silent")),
    );

    // An absurd learning rate blows the weights up: the run stops naming the step, the checkpoint
    // of the last good step stays.
    let data = tmp.path().join("audio");
    clips(&data, 3);
    std::fs::write(data.join("broken.wav"), b"RIFF....WAVEnope").unwrap();
    let nan = config(tmp.path(), "nan.json", 16, ", \"weight_decay\": 0.0");
    let text = std::fs::read_to_string(&nan)
        .unwrap()
        .replace("\"lr\": 0.005", "\"lr\": 1e30")
        .replace("\"warmup_steps\": 2", "\"warmup_steps\": 0");
    std::fs::write(&nan, text.replace("\"checkpoint_every\": 2", "\"checkpoint_every\": 1")).unwrap();
    let run = tmp.path().join("n");
    let out = train(&nan, &data, &run).assert().code(2);
    let err = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(err.contains("is not finite (NaN or infinite); the last checkpoint is kept"), "{err}");
    let step: u64 = err.split("error: step ").nth(1).unwrap().split(':').next().unwrap().parse().unwrap();
    assert!(step >= 2, "{err}");
    let latest = std::fs::read_to_string(run.join("latest")).unwrap();
    assert_eq!(latest, format!("step-{:08}\n", step - 1));
    // The undecodable file was recorded and the run went on.
    let rejects = std::fs::read_to_string(run.join("rejects.jsonl")).unwrap();
    assert_eq!(rejects.lines().count(), 1);
    assert!(rejects.contains("broken.wav"), "{rejects}");
}

#[test]
fn encode_decode_and_eval_a_trained_run() {
    use audiotok_tokens::store::{StoreMetadata, StoreReader};
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("audio");
    clips(&data, 4);
    let run = tmp.path().join("run");
    train(&config(tmp.path(), "c.json", 16, ""), &data, &run).args(["--steps", "2"]).assert().success();
    std::fs::write(data.join("broken.wav"), b"RIFF....WAVEnope").unwrap();

    let store = tmp.path().join("store");
    let out = audiotok()
        .args(["bsq", "encode", "--json", "--model"])
        .arg(&run)
        .arg("--input")
        .arg(&data)
        .arg("--output")
        .arg(&store)
        .assert()
        .code(1);
    let s: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(s["files"], 4);
    assert_eq!(s["rejects"].as_array().unwrap().len(), 1);
    assert_eq!((s["bits"].as_u64(), s["rate_hz"].as_f64(), s["bitrate"].as_f64()), (Some(6), Some(50.0), Some(300.0)));
    let meta = StoreMetadata::load(&store).unwrap();
    assert_eq!(meta.scales.len(), 3);
    assert_eq!(meta.scales[0].codebook_size, Some(64));
    assert_eq!(meta.scales[1].codebook_size, Some(8));
    assert!(meta.provenance["layout"].contains("token t*2+f covers frames t*4..(t+1)*4"), "{:?}", meta.provenance);
    assert!(meta.provenance["checkpoint"].ends_with("checkpoints/step-00000002"));
    assert_eq!(meta.provenance["weights"], "ema");
    let recs: Vec<_> = StoreReader::open(&store).unwrap().records().map(|r| r.unwrap()).collect();
    let mut total = 0;
    for (k, r) in recs.iter().enumerate() {
        // Clip k has 6000 + 1500 k samples: 1 + samples / 160 frames, in ceil(frames / 4) time patches.
        let frames = 1 + (6000 + 1500 * k) / 160;
        let tp = frames.div_ceil(4) as u64;
        assert_eq!(r.scales[0].shape, vec![tp, 2], "{}", r.file_path);
        // The group indices are the high and low 3 bits of each index.
        for (i, &c) in r.scales[0].tokens.iter().enumerate() {
            assert_eq!(r.scales[1].tokens[i], c >> 3);
            assert_eq!(r.scales[2].tokens[i], c & 7);
        }
        total += r.scales[0].tokens.len();
    }
    assert_eq!(s["tokens"].as_u64(), Some(total as u64));

    // Decoding writes one mel-db array per record, the tail's padding cut off; a second encode
    // of the same input gives the same store, byte for byte.
    let dec = tmp.path().join("dec");
    audiotok()
        .args(["bsq", "decode", "--wav", "--iters", "4", "--model"])
        .arg(&run)
        .arg("--input")
        .arg(&store)
        .arg("--out")
        .arg(&dec)
        .assert()
        .success();
    for k in 0..4 {
        let a = audiotok_features::npy::read(std::fs::File::open(dec.join(format!("c{k}.npy"))).unwrap()).unwrap();
        assert_eq!(a.shape, vec![16, 1 + (6000 + 1500 * k) / 160]);
        assert!(a.to_f32().iter().all(|v| (-80.0..=0.0).contains(v)));
        // The WAV: hop * (frames - 1) samples at 16 kHz.
        let w = audiotok_audio::load(&dec.join(format!("c{k}.wav")), &audiotok_audio::LoadOptions::mono_at(16_000))
            .unwrap();
        assert_eq!(w.samples.len(), 160 * ((6000 + 1500 * k) / 160));
    }
    let store2 = tmp.path().join("store2");
    audiotok()
        .args(["bsq", "encode", "--keep-going", "--model"])
        .arg(run.join("checkpoints/step-00000002"))
        .arg("--input")
        .arg(&data)
        .arg("--output")
        .arg(&store2)
        .assert()
        .success();
    assert_eq!(
        std::fs::read(store.join("tokens_batch_0000.parquet")).unwrap(),
        std::fs::read(store2.join("tokens_batch_0000.parquet")).unwrap()
    );
    // Scale 0 alone.
    let store3 = tmp.path().join("store3");
    audiotok()
        .args(["bsq", "encode", "--keep-going", "--no-group-scales", "--model"])
        .arg(&run)
        .arg("--input")
        .arg(&data)
        .arg("--output")
        .arg(&store3)
        .assert()
        .success();
    let recs3: Vec<_> = StoreReader::open(&store3).unwrap().records().map(|r| r.unwrap()).collect();
    assert_eq!(recs3.len(), 4);
    for (a, b) in recs3.iter().zip(&recs) {
        assert_eq!(a.scales, b.scales[..1]);
    }

    let out =
        audiotok().args(["bsq", "eval", "--json", "--model"]).arg(&run).arg("--data").arg(&data).assert().success();
    let r: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(r["files"], 4);
    assert_eq!(r["tokens"].as_u64(), Some(total as u64));
    let frames: u64 = (0..4).map(|k| 1 + (6000 + 1500 * k) / 160).sum();
    assert_eq!(r["frames"].as_u64(), Some(frames));
    assert_eq!(r["groups"].as_array().unwrap().len(), 2);
    assert_eq!(r["bit_balance"].as_array().unwrap().len(), 6);
    let h = r["codes"]["entropy_bits"].as_f64().unwrap();
    let unique = r["codes"]["unique"].as_f64().unwrap();
    assert!(h >= 0.0 && h <= unique.log2() + 1e-9);
    assert!((r["codes"]["perplexity"].as_f64().unwrap() - h.exp2()).abs() < 1e-9);
    for k in ["model", "continuous", "untrained", "mel_mean"] {
        let l1 = r[k]["l1"].as_f64().unwrap();
        assert!((r[k]["l1_db"].as_f64().unwrap() - 40.0 * l1).abs() < 1e-9, "{k}");
        assert!(r[k]["rmse_db"].as_f64().unwrap() >= r[k]["l1_db"].as_f64().unwrap() - 1e-9, "{k}");
    }
    // Not a tokenizer: a clear error.
    audiotok()
        .args(["bsq", "eval", "--model"])
        .arg(&data)
        .arg("--data")
        .arg(&data)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("neither a run folder"));
}
