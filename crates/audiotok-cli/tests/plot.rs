//! `audiotok plot` end to end: the summary's exact figures on a step signal, the PNG's size, errors.

#![allow(clippy::unwrap_used)] // Test helpers panic on broken fixtures by design.

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn audiotok() -> Command {
    Command::cargo_bin("audiotok").unwrap()
}

/// A 16-bit PCM mono WAV.
fn wav16(path: &Path, rate: u32, samples: &[i16]) {
    let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut b = Vec::new();
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * 2).to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&(data.len() as u32).to_le_bytes());
    b.extend_from_slice(&data);
    std::fs::write(path, b).unwrap();
}

#[test]
fn plot_waveform_writes_the_picture_and_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("step.wav");
    let mut x = vec![0i16; 16000];
    x[8000..].fill(16384); // 0.5 from 0.5 s
    wav16(&wav, 16000, &x);
    let png_path = dir.path().join("w.png");
    let out = audiotok().args(["plot", "waveform"]).arg(&wav).arg("-o").arg(&png_path).arg("--json").assert().success();
    let s: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(s["samples"], 16000);
    assert_eq!(s["duration_s"], 1.0);
    assert_eq!(s["raw"]["mean"], 0.25);
    assert_eq!(s["raw"]["std"], 0.25);
    assert_eq!(s["raw"]["max"], 0.5);
    assert!(s["normalised"]["mean"].as_f64().unwrap().abs() < 1e-6);
    assert!((s["normalised"]["std"].as_f64().unwrap() - 1.0).abs() < 1e-5);
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png_path).unwrap()));
    let info = decoder.read_info().unwrap();
    assert_eq!((info.info().width, info.info().height), (1000, 640));
    audiotok()
        .args(["plot", "waveform"])
        .arg(dir.path().join("none.wav"))
        .arg("-o")
        .arg(&png_path)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("none.wav"));
}

#[test]
fn plot_features_draws_each_kind() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("tone.wav");
    let x: Vec<i16> = (0..16000).map(|i| ((i as f64 * 0.2).sin() * 8000.0) as i16).collect();
    wav16(&wav, 16000, &x);
    for kind in ["whisper-128", "whisper-80", "mel-db"] {
        let png_path = dir.path().join(format!("{kind}.png"));
        audiotok()
            .args(["plot", "features", "--kind", kind])
            .arg(&wav)
            .arg("-o")
            .arg(&png_path)
            .assert()
            .success()
            .stdout(predicate::str::contains(kind));
        let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png_path).unwrap()));
        let info = decoder.read_info().unwrap();
        assert_eq!((info.info().width, info.info().height), (1000, 520), "{kind}");
    }
    audiotok()
        .args(["plot", "features", "--kind", "wav2vec2"])
        .arg(&wav)
        .arg("-o")
        .arg(dir.path().join("x.png"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("invalid value 'wav2vec2'"));
}

/// A little-endian float32 .npy of `shape`.
fn npy_f32(path: &Path, shape: &[usize], data: &[f32]) {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_s = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_s}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend_from_slice(&(header.len() as u16).to_le_bytes());
    b.extend_from_slice(header.as_bytes());
    for v in data {
        b.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, b).unwrap();
}

#[test]
fn plot_embed_reports_layers_statistics_and_compression() {
    let dir = tempfile::tempdir().unwrap();
    let npy = dir.path().join("e.npy");
    // Layer 0 all 1.0, layer 1 alternating -2 / 2.
    let mut data = vec![1.0f32; 40];
    data.extend((0..40).map(|i| if i % 2 == 0 { -2.0 } else { 2.0 }));
    npy_f32(&npy, &[2, 10, 4], &data);
    let png_path = dir.path().join("e.png");
    let out = audiotok().args(["plot", "embed"]).arg(&npy).arg("-o").arg(&png_path).arg("--json").assert().success();
    let s: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!((s["layers"].as_u64(), s["frames"].as_u64(), s["dim"].as_u64()), (Some(2), Some(10), Some(4)));
    assert_eq!(s["ms_per_frame"], 20.0);
    assert_eq!(s["samples_per_frame"], 320.0);
    assert_eq!(s["per_layer"][0]["std"], 0.0);
    assert_eq!(s["per_layer"][1]["mean"], 0.0);
    assert_eq!(s["per_layer"][1]["std"], 2.0);
    assert_eq!(s["per_layer"][1]["min"], -2.0);
    assert!(png_path.is_file());
    // With the audio: one second of it over 10 frames is 1600 samples, 100 ms a frame.
    let wav = dir.path().join("a.wav");
    wav16(&wav, 16000, &vec![0i16; 16000]);
    let out = audiotok()
        .args(["plot", "embed"])
        .arg(&npy)
        .arg("--audio")
        .arg(&wav)
        .arg("-o")
        .arg(&png_path)
        .arg("--json")
        .assert()
        .success();
    let s: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(s["samples_per_frame"], 1600.0);
    assert_eq!(s["ms_per_frame"], 100.0);
    // A 1-D array is refused naming the file and the shape.
    npy_f32(&npy, &[4], &[0.0; 4]);
    audiotok()
        .args(["plot", "embed"])
        .arg(&npy)
        .arg("-o")
        .arg(&png_path)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("e.npy: shape [4]: expected (frames, dim) or (layers, frames, dim)"));
}
