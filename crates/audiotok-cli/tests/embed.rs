//! `audiotok embed` on the small encoder fixtures (tests/fixtures/embed, made by
//! tools/gen_embed_fixtures.py with transformers 5.23.0).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/embed").join(rel)
}

fn audiotok() -> Command {
    Command::cargo_bin("audiotok").unwrap()
}

fn clip(i: usize) -> Vec<f32> {
    let f = std::fs::File::open(fixture(&format!("audio_{i}.npy"))).unwrap();
    audiotok_features::npy::read(f).unwrap().to_f32()
}

fn wav(dir: &Path, name: &str, x: &[f32]) -> PathBuf {
    let p = dir.join(name);
    audiotok_audio::write_wav_f32(&p, x, 16_000, 1).unwrap();
    p
}

#[test]
fn embeds_a_folder_with_manifest_json_and_identical_reruns() {
    let tmp = tempfile::tempdir().unwrap();
    let inp = tmp.path().join("in");
    std::fs::create_dir(&inp).unwrap();
    wav(&inp, "a.wav", &clip(0));
    wav(&inp, "b.wav", &clip(1));
    let out1 = tmp.path().join("o1");
    let assert = audiotok()
        .args(["embed", "--model", fixture("hubert_group").to_str().unwrap(), "--layers", "all", "--json", "-j", "1"])
        .arg("--out")
        .arg(&out1)
        .arg(&inp)
        .assert()
        .success()
        .stderr(predicate::str::contains("embedded: 2 done, 0 failed"));
    let v: serde_json::Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    assert_eq!(v["done"], 2);
    assert_eq!(v["records"][0]["frames"], 149);
    assert_eq!(v["records"][0]["layers"], serde_json::json!(["0", "1", "2"]));
    assert_eq!(v["records"][0]["frame_rate_hz"], 50.0);
    let a = audiotok_features::npy::read(std::fs::File::open(out1.join("a.npy")).unwrap()).unwrap();
    assert_eq!(a.shape, [3, 149, 16]);
    let manifest = std::fs::read_to_string(out1.join("manifest.jsonl")).unwrap();
    assert_eq!(manifest.lines().count(), 2);
    assert!(manifest.contains("\"config_sha1\""));
    // Another batch size and thread count: the same bytes.
    let out2 = tmp.path().join("o2");
    audiotok()
        .args(["embed", "--model", fixture("hubert_group").to_str().unwrap(), "--layers", "all", "-j", "2"])
        .args(["--batch-size", "1", "--out"])
        .arg(&out2)
        .arg(&inp)
        .assert()
        .success();
    for f in ["a.npy", "b.npy", "manifest.jsonl"] {
        assert_eq!(std::fs::read(out1.join(f)).unwrap(), std::fs::read(out2.join(f)).unwrap(), "{f}");
    }
}

#[test]
fn qwen2_audio_projected_rows_match_count() {
    let tmp = tempfile::tempdir().unwrap();
    let a = wav(tmp.path(), "a.wav", &clip(1));
    let out = tmp.path().join("o");
    audiotok()
        .args(["embed", "--model", fixture("qwen2_audio").to_str().unwrap(), "--stage", "projected", "--out"])
        .arg(&out)
        .arg(&a)
        .assert()
        .success();
    let arr = audiotok_features::npy::read(std::fs::File::open(out.join("a.npy")).unwrap()).unwrap();
    let count = audiotok().args(["count", "--profile", "qwen2-audio", "--json"]).arg(&a).assert().success();
    let v: serde_json::Value = serde_json::from_slice(&count.get_output().stdout).unwrap();
    assert_eq!(v["files"][0]["total"], arr.shape[0]);
    assert_eq!(arr.shape, [34, 24]);
}

#[test]
fn bad_inputs_fail_clearly_and_keep_going_exits_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let good = wav(tmp.path(), "good.wav", &clip(1));
    let short = wav(tmp.path(), "short.wav", &[0.1; 300]);
    let mut n = clip(1);
    n[77] = f32::NAN;
    let nan = wav(tmp.path(), "nan.wav", &n);
    let model = fixture("hubert_group");
    let run = |keep: bool| {
        let mut c = audiotok();
        c.args(["embed", "--model", model.to_str().unwrap(), "--out"]).arg(tmp.path().join("o"));
        if keep {
            c.arg("--keep-going");
        }
        c.arg(&good).arg(&short).arg(&nan).assert()
    };
    run(false)
        .code(1)
        .stderr(predicate::str::contains("short.wav").and(predicate::str::contains("receptive field of 400")))
        .stderr(predicate::str::contains("nan.wav"));
    run(true).success();
    assert!(tmp.path().join("o/good.npy").exists());
}

#[test]
fn bad_models_and_options_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let a = wav(tmp.path(), "a.wav", &clip(1));
    let other = tmp.path().join("bert");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("config.json"), r#"{"model_type": "bert"}"#).unwrap();
    audiotok()
        .args(["embed", "--model", other.to_str().unwrap(), "--out"])
        .arg(tmp.path().join("o"))
        .arg(&a)
        .assert()
        .failure()
        .stderr(predicate::str::contains("model_type \"bert\" is not an audio encoder"));
    audiotok()
        .args(["embed", "--model", fixture("whisper").to_str().unwrap(), "--stage", "projected", "--out"])
        .arg(tmp.path().join("o"))
        .arg(&a)
        .assert()
        .failure()
        .stderr(predicate::str::contains("no multi_modal_projector"));
    audiotok()
        .args(["embed", "--model", fixture("whisper").to_str().unwrap(), "--layers", "1,x", "--out"])
        .arg(tmp.path().join("o"))
        .arg(&a)
        .assert()
        .failure()
        .stderr(predicate::str::contains("expected final, all or indices"));
    audiotok()
        .args(["embed", "--model", tmp.path().join("nope").to_str().unwrap(), "--out"])
        .arg(tmp.path().join("o"))
        .arg(&a)
        .assert()
        .failure()
        .stderr(predicate::str::contains("nope"));
}
