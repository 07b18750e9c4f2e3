//! Hostile audio input through the audio commands (issue 16): no abort on headers that claim
//! absurd sizes, truncation reported by the header-only commands, non-regular files refused
//! without blocking, numeric options bounded.

#![allow(clippy::unwrap_used)] // Test helpers panic on broken fixtures by design.

use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use predicates::prelude::*;

fn formats() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/audio/formats")
}

fn audiotok() -> Command {
    let mut c = Command::cargo_bin("audiotok").unwrap();
    c.timeout(Duration::from_secs(60));
    c
}

/// clip.flac whose STREAMINFO claims 2^36 - 1 frames.
fn huge_flac(dir: &Path) -> PathBuf {
    let mut d = std::fs::read(formats().join("clip.flac")).unwrap();
    let mut x = u64::from_be_bytes(d[18..26].try_into().unwrap());
    x |= (1u64 << 36) - 1;
    d[18..26].copy_from_slice(&x.to_be_bytes());
    let p = dir.join("huge.flac");
    std::fs::write(&p, d).unwrap();
    p
}

#[test]
fn a_flac_claiming_2_pow_36_frames_fails_in_count_features_and_convert_without_aborting() {
    let dir = tempfile::tempdir().unwrap();
    let huge = huge_flac(dir.path());
    let good = formats().join("clip.flac");
    let truncated = || predicate::str::contains("huge.flac").and(predicate::str::contains("truncated"));
    audiotok().args(["count", "-p", "whisper"]).arg(&huge).arg(&good).assert().code(1).stderr(truncated());
    let out = dir.path().join("feats");
    audiotok()
        .args(["features", "--kind", "whisper-80", "--out"])
        .arg(&out)
        .arg(&huge)
        .arg(&good)
        .assert()
        .code(1)
        .stderr(truncated());
    let manifest = std::fs::read_to_string(out.join("manifest.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = manifest.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 2);
    let status =
        |name: &str| rows.iter().find(|r| r["input"].as_str().unwrap().ends_with(name)).unwrap()["status"].clone();
    assert_eq!((status("huge.flac"), status("clip.flac")), ("failed".into(), "ok".into()));
    audiotok().arg("convert").arg(&huge).arg("-o").arg(dir.path().join("x.wav")).assert().code(2).stderr(truncated());
    assert!(!dir.path().join("x.wav").exists());
}

#[test]
fn info_and_count_refuse_a_truncated_flac_and_a_wav_longer_than_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = std::fs::read(formats().join("clip.flac")).unwrap();
    let cut = dir.path().join("cut.flac");
    std::fs::write(&cut, &d[..d.len() / 100]).unwrap();
    let mut w = std::fs::read(formats().join("pcm_s16.wav")).unwrap();
    let at = w.windows(4).position(|x| x == b"data").unwrap();
    w[at + 4..at + 8].copy_from_slice(&320_000u32.to_le_bytes());
    let long = dir.path().join("long.wav");
    std::fs::write(&long, w).unwrap();
    for f in [&cut, &long] {
        let name = f.file_name().unwrap().to_str().unwrap();
        let out = audiotok().args(["info", "--json"]).arg(f).assert().code(1);
        let row: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
        assert!(row["error"].as_str().unwrap().contains("truncated"), "{name}: {row}");
        assert!(row["duration_s"].is_null(), "{name}: {row}");
        audiotok()
            .args(["count", "-p", "whisper"])
            .arg(f)
            .assert()
            .code(1)
            .stderr(predicate::str::contains(name).and(predicate::str::contains("truncated")));
    }
}

#[test]
fn a_fifo_or_device_named_on_the_command_line_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.wav");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    audiotok()
        .args(["info"])
        .arg(&fifo)
        .arg("/dev/zero")
        .assert()
        .code(1)
        .stdout(predicate::str::contains("not a regular file (a FIFO)"))
        .stdout(predicate::str::contains("not a regular file (a character device)"));
    audiotok()
        .args(["count", "-p", "whisper"])
        .arg(&fifo)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("pipe.wav").and(predicate::str::contains("not a regular file (a FIFO)")));
}

#[test]
fn numeric_options_out_of_range_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let clip = formats().join("clip.flac");
    for rate in ["4294967295", "0", "800000"] {
        audiotok()
            .arg("convert")
            .arg(&clip)
            .args(["--rate", rate, "-o"])
            .arg(dir.path().join("x.wav"))
            .assert()
            .code(2)
            .stderr(predicate::str::contains("--rate"));
    }
    for p in ["custom:fps=1e300", "custom:fps=1e-300", "custom:rate=4294967295,hop=1", "custom:fps=50,rate=0"] {
        audiotok()
            .args(["count", "-p", p])
            .arg(&clip)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("custom profile"));
    }
}
