//! Decoding every supported container and codec, checked against what libsndfile (soundfile)
//! decodes from the same files (tests/fixtures/golden/decoded_formats.json), and every kind of bad
//! input reported with a typed error naming the file.

#![allow(clippy::unwrap_used)] // Test helpers panic on broken fixtures by design.

use std::path::PathBuf;

use audiotok_audio::{load, probe, AudioError, LoadOptions};

fn formats() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/audio/formats")
}

fn reference(name: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/golden/decoded_formats.json");
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    j["files"][format!("formats/{name}")].clone()
}

const RAW: LoadOptions = LoadOptions { target_rate: None, mono: false };

#[test]
fn lossless_formats_decode_exactly_as_libsndfile() {
    for name in [
        "pcm_u8.wav",
        "pcm_s16.wav",
        "pcm_s24.wav",
        "pcm_s32.wav",
        "float32.wav",
        "float64.wav",
        "extensible_s16_stereo.wav",
        "clip.flac",
    ] {
        let want = reference(name);
        let a = load(&formats().join(name), &RAW).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(a.frames() as u64, want["frames"].as_u64().unwrap(), "{name} frames");
        assert_eq!(a.channels as u64, want["channels"].as_u64().unwrap(), "{name} channels");
        assert_eq!(u64::from(a.sample_rate), want["samplerate"].as_u64().unwrap(), "{name} rate");
        let d = &want["decoded_f32"];
        let min = a.samples.iter().cloned().fold(f32::MAX, f32::min);
        let max = a.samples.iter().cloned().fold(f32::MIN, f32::max);
        assert_eq!(f64::from(min), d["min"].as_f64().unwrap(), "{name} min");
        assert_eq!(f64::from(max), d["max"].as_f64().unwrap(), "{name} max");
        let sum_sq: f64 = a.samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
        let want_sq = d["sum_sq"].as_f64().unwrap();
        assert!((sum_sq - want_sq).abs() <= 1e-9 * want_sq, "{name} sum_sq {sum_sq} vs {want_sq}");
        let first: Vec<f64> = d["first8_ch0"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let ours: Vec<f64> = a.samples.iter().step_by(a.channels).take(8).map(|&s| f64::from(s)).collect();
        assert_eq!(ours, first, "{name} first samples");
    }
}

#[test]
fn lossy_formats_decode_to_the_reference_length() {
    for name in ["clip.mp3", "clip.ogg"] {
        let want = reference(name);
        let a = load(&formats().join(name), &RAW).unwrap_or_else(|e| panic!("{name}: {e}"));
        let frames = want["frames"].as_u64().unwrap();
        eprintln!("{name}: {} frames, soundfile {frames}", a.frames());
        assert_eq!(a.frames() as u64, frames, "{name} frames");
        let sum_sq: f64 = a.samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
        let want_sq = want["decoded_f32"]["sum_sq"].as_f64().unwrap();
        assert!((sum_sq / want_sq - 1.0).abs() < 0.02, "{name} energy {sum_sq} vs {want_sq}");
    }
}

#[test]
fn probe_reports_header_facts() {
    let i = probe(&formats().join("pcm_s24.wav")).unwrap();
    assert_eq!((i.sample_rate, i.channels, i.frames, i.bits_per_sample), (16000, 1, Some(16000), Some(24)));
    assert_eq!(i.container, "wave");
    let f = probe(&formats().join("clip.flac")).unwrap();
    assert_eq!((f.codec.as_str(), f.frames), ("flac", Some(16000)));
}

fn err(name: &str) -> AudioError {
    let path = formats().join(name);
    let e = load(&path, &RAW).expect_err(name);
    assert!(e.to_string().contains(name), "{name}: message does not name the file: {e}");
    e
}

#[test]
fn bad_inputs_are_typed_errors_naming_the_file() {
    assert!(matches!(err("clip.opus"), AudioError::Unsupported { .. }), "opus");
    assert!(matches!(err("clip.sph"), AudioError::Unsupported { .. }), "sphere");
    assert!(matches!(err("text.wav"), AudioError::Unsupported { .. }), "text");
    assert!(matches!(err("empty.wav"), AudioError::Corrupt { .. }), "empty file");
    assert!(matches!(err("truncated.flac"), AudioError::Corrupt { .. }), "truncated");
    assert!(matches!(err("zero_length.wav"), AudioError::Empty { .. }), "zero length");
    match err("nan.wav") {
        AudioError::NonFinite { frame, .. } => assert_eq!(frame, 100),
        e => panic!("nan.wav: {e:?}"),
    }
    let missing = load(&formats().join("no_such_file.wav"), &RAW).unwrap_err();
    assert!(matches!(missing, AudioError::Io { .. }));
}

#[test]
fn mono_16k_of_stereo_is_mean_then_resample() {
    let path = formats().join("extensible_s16_stereo.wav");
    let stereo = load(&path, &RAW).unwrap();
    let mono = load(&path, &LoadOptions { target_rate: None, mono: true }).unwrap();
    for (i, m) in mono.samples.iter().enumerate() {
        assert_eq!(*m, (stereo.samples[2 * i] + stereo.samples[2 * i + 1]) / 2.0);
    }
    let r = load(&path, &LoadOptions::mono_at(8000)).unwrap();
    assert_eq!(r.samples, audiotok_audio::resample(&mono.samples, 16000, 8000).unwrap());
}

#[test]
fn header_length_predicts_the_resampled_length() {
    let audio = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/audio");
    for file in
        ["speech_0.1s.wav", "speech_7s.flac", "speech_7s_44k_stereo.flac", "formats/pcm_s24.wav", "formats/clip.flac"]
    {
        let path = audio.join(file);
        let info = probe(&path).unwrap();
        let frames = info.frames.unwrap();
        for rate in [16_000, 24_000, 44_100] {
            let decoded = load(&path, &LoadOptions::mono_at(rate)).unwrap().samples.len() as u64;
            assert_eq!(audiotok_audio::resampled_len(frames, info.sample_rate, rate), decoded, "{file} at {rate}");
        }
    }
}
