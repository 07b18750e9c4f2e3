//! End-to-end tests of the `audiotok` binary.

#![allow(clippy::unwrap_used)] // Test helpers panic on broken fixtures by design.

use std::io::Read;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use audiotok_features::npy;
use predicates::prelude::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(rel: &str) -> PathBuf {
    root().join("tests/fixtures").join(rel)
}

fn audiotok() -> Command {
    Command::cargo_bin("audiotok").unwrap()
}

fn golden(name: &str) -> Vec<f32> {
    let mut bytes = Vec::new();
    let f = std::fs::File::open(fixture(&format!("golden/{name}.npy.gz"))).unwrap();
    flate2::read::GzDecoder::new(f).read_to_end(&mut bytes).unwrap();
    npy::read(&bytes[..]).unwrap().to_f32()
}

fn read_npy(path: &Path) -> npy::NpyArray {
    npy::read(&std::fs::read(path).unwrap()[..]).unwrap()
}

/// A folder of good and bad inputs, as a user's collection would hold them.
fn mixed_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&good).unwrap();
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::copy(fixture("audio/speech_1s.wav"), good.join("speech_1s.wav")).unwrap();
    std::fs::copy(fixture("audio/speech_7s.flac"), good.join("speech_7s.flac")).unwrap();
    std::fs::copy(fixture("audio/formats/clip.mp3"), good.join("clip_mp3.mp3")).unwrap();
    for name in ["empty.wav", "truncated.flac", "zero_length.wav", "nan.wav", "clip.opus", "text.wav"] {
        std::fs::copy(fixture(&format!("audio/formats/{name}")), bad.join(name)).unwrap();
    }
    std::fs::write(dir.path().join("notes.txt"), "not audio").unwrap();
    dir
}

#[test]
fn help_lists_subcommands() {
    audiotok().arg("--help").assert().success().stdout(
        predicate::str::contains("features")
            .and(predicate::str::contains("count"))
            .and(predicate::str::contains("convert")),
    );
    audiotok().args(["count", "--help"]).assert().success().stdout(predicate::str::contains("qwen2-audio"));
}

#[test]
fn info_reports_header_facts_and_failures() {
    audiotok()
        .arg("info")
        .arg(root().join("examples/audio"))
        .assert()
        .success()
        .stdout(predicate::str::contains("22050").and(predicate::str::contains("flac")));
    let out = audiotok().args(["info", "--json"]).arg(fixture("audio/formats/clip.opus")).assert().code(1);
    let line: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert!(line["error"].as_str().unwrap().contains("Opus"));
}

#[test]
fn convert_matches_python_soxr() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.wav");
    audiotok()
        .arg("convert")
        .arg(fixture("audio/speech_7s_44k_stereo.flac"))
        .args(["--rate", "16000", "--mono", "--out"])
        .arg(&out)
        .assert()
        .success();
    let a = audiotok_audio::load(&out, &audiotok_audio::LoadOptions::default()).unwrap();
    assert_eq!((a.sample_rate, a.channels), (16000, 1));
    assert_eq!(a.samples, golden("resample_7s_44k_stereo_to16k"));
}

#[test]
fn features_on_a_mixed_folder() {
    let dir = mixed_folder();
    let out = dir.path().join("out");
    let assert = audiotok()
        .args(["features", "--kind", "whisper-128", "--jobs", "2", "--out"])
        .arg(&out)
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("3 done, 6 failed").and(predicate::str::contains("1 non-audio files ignored")),
        );
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    for name in ["empty.wav", "truncated.flac", "zero_length.wav", "nan.wav", "clip.opus", "text.wav"] {
        assert!(stderr.contains(&format!("{name}: ")), "{name} not reported: {stderr}");
    }
    let manifest = std::fs::read_to_string(out.join("manifest.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = manifest.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 9);
    assert_eq!(rows.iter().filter(|r| r["status"] == "failed").count(), 6);
    let f = read_npy(&out.join("good/speech_1s.npy"));
    assert_eq!(f.shape, vec![128, 3000]);
    let want = golden("whisper128_1s");
    let d = f.to_f32().iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(d <= 1e-4, "max abs diff {d}");
    assert!(out.join("good/speech_7s.npy").exists() && out.join("good/clip_mp3.npy").exists());

    // --keep-going turns the exit code to 0 and changes nothing else.
    let out2 = dir.path().join("out2");
    audiotok()
        .args(["features", "--kind", "whisper-128", "--jobs", "1", "--keep-going", "--out"])
        .arg(&out2)
        .arg(dir.path())
        .assert()
        .success();
    // Reruns give identical bytes, whatever the number of jobs.
    for rel in ["manifest.jsonl", "good/speech_1s.npy", "good/speech_7s.npy"] {
        assert_eq!(std::fs::read(out.join(rel)).unwrap(), std::fs::read(out2.join(rel)).unwrap(), "{rel}");
    }
}

#[test]
fn features_other_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let clip = fixture("audio/speech_7s.flac");
    for (kind, extra, shape) in [
        ("wav2vec2", vec![], vec![112000]),
        ("mel-db", vec![], vec![128, 1024]),
        ("mel-db", vec!["--frames", "0"], vec![128, 701]),
        ("whisper-80", vec!["--padding", "longest"], vec![80, 700]),
    ] {
        let out = dir.path().join(format!("{kind}{}", extra.len()));
        audiotok().args(["features", "--kind", kind]).args(&extra).arg("--out").arg(&out).arg(&clip).assert().success();
        assert_eq!(read_npy(&out.join("speech_7s.npy")).shape, shape, "{kind} {extra:?}");
    }
    audiotok()
        .args(["features", "--kind", "nope", "--out"])
        .arg(dir.path())
        .arg(&clip)
        .assert()
        .failure()
        .stderr(predicate::str::contains("whisper-128"));
}

#[test]
fn count_json_exact() {
    let out = audiotok()
        .args(["count", "--profile", "qwen2-audio", "--json"])
        .arg(fixture("audio/speech_7s.flac"))
        .arg(fixture("audio/speech_30s.flac"))
        .arg(fixture("audio/speech_45s.flac"))
        .arg(fixture("audio/speech_7s_44k_stereo.flac"))
        .assert()
        .success();
    let r: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let tokens: Vec<u64> = r["files"].as_array().unwrap().iter().map(|f| f["total"].as_u64().unwrap()).collect();
    assert_eq!(tokens, vec![175, 750, 750, 175]);
    assert_eq!(r["totals"]["total"], 1850);
    assert_eq!(r["histogram"].as_array().unwrap().iter().map(|b| b["files"].as_u64().unwrap()).sum::<u64>(), 4);

    let out = audiotok()
        .args(["count", "--profile", "snac-24khz", "--json"])
        .arg(fixture("audio/speech_1s.wav"))
        .assert()
        .success();
    let r: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    // 1 s at 24 kHz: 24000 -> 24576 (12 * 2048) -> 48 frames at the finest scale.
    assert_eq!(r["files"][0]["tokens"], serde_json::json!([12, 24, 48]));
}

#[test]
fn count_reports_bad_files_and_exit_codes() {
    let dir = mixed_folder();
    audiotok()
        .args(["count", "--profile", "hubert"])
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("3 done, 6 failed"));
    audiotok().args(["count", "--profile", "hubert", "--keep-going"]).arg(dir.path()).assert().success();
    audiotok()
        .args(["count", "--profile", "hubert"])
        .arg(dir.path().join("missing"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("missing"));
}
