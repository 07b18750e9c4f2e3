//! Parity with the reference packages on committed golden outputs (tools/gen_goldens.py):
//! transformers' WhisperFeatureExtractor and Wav2Vec2FeatureExtractor, librosa's mel-dB, and
//! python-soxr resampling through our own decoding.

#![allow(clippy::unwrap_used)] // Test helpers panic on broken fixtures by design.

use std::io::Read;
use std::path::PathBuf;

use audiotok_audio::{load, LoadOptions};
use audiotok_features::whisper::{Precision, Whisper, WhisperPadding};
use audiotok_features::{meldb, npy, wav2vec2, Features};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn golden(name: &str) -> npy::NpyArray {
    let path = fixtures().join("golden").join(format!("{name}.npy.gz"));
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap()).read_to_end(&mut bytes).unwrap();
    npy::read(&bytes[..]).unwrap()
}

fn golden_mask(name: &str) -> usize {
    let j: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("golden/goldens.json")).unwrap()).unwrap();
    j["goldens"][name]["attention_mask_sum"].as_u64().unwrap() as usize
}

fn clip16k(name: &str) -> Vec<f32> {
    let dir = fixtures().join("audio");
    let path = ["wav", "flac"].iter().map(|e| dir.join(format!("speech_{name}.{e}"))).find(|p| p.exists()).unwrap();
    load(&path, &LoadOptions::mono_at(16_000)).unwrap().samples
}

fn max_abs_diff(ours: &Features, want: &npy::NpyArray) -> f32 {
    assert_eq!(ours.shape, want.shape, "shape");
    let w = want.to_f32();
    ours.data.iter().zip(&w).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max)
}

/// The bound for the float32 path; the float64 path must be bit-identical.
fn bound(p: Precision) -> f32 {
    match p {
        Precision::Fast => 1e-4,
        Precision::Exact => 0.0,
    }
}

#[test]
fn whisper128_max_length_all_clips() {
    for precision in [Precision::Exact, Precision::Fast] {
        let mut w = Whisper::with_precision(128, WhisperPadding::MaxLength, precision);
        for clip in ["0.1s", "1s", "7s", "30s", "45s"] {
            let name = format!("whisper128_{clip}");
            let f = w.compute(&clip16k(clip));
            let d = max_abs_diff(&f, &golden(&name));
            eprintln!("{name} {precision:?}: max abs diff {d:e}");
            assert!(d <= bound(precision), "{name} {precision:?}: max abs diff {d}");
            assert_eq!(f.mask_ones, Some(golden_mask(&name)), "{name} mask");
        }
    }
}

#[test]
fn whisper80_and_longest() {
    let cases = [
        ("whisper80_7s", 80, WhisperPadding::MaxLength, "7s"),
        ("whisper128_longest_7s", 128, WhisperPadding::Longest, "7s"),
        ("whisper128_longest_1s", 128, WhisperPadding::Longest, "1s"),
    ];
    for precision in [Precision::Exact, Precision::Fast] {
        for (name, mels, padding, clip) in cases {
            let f = Whisper::with_precision(mels, padding, precision).compute(&clip16k(clip));
            let d = max_abs_diff(&f, &golden(name));
            eprintln!("{name} {precision:?}: max abs diff {d:e}");
            assert!(d <= bound(precision), "{name} {precision:?}: max abs diff {d}");
            assert_eq!(f.mask_ones, Some(golden_mask(name)), "{name} mask");
        }
    }
}

#[test]
fn wav2vec2_normalisation() {
    for clip in ["1s", "7s"] {
        let name = format!("wav2vec2_{clip}");
        let f = wav2vec2::normalize(&clip16k(clip));
        let d = max_abs_diff(&f, &golden(&name));
        eprintln!("{name}: max abs diff {d:e}");
        assert!(d <= 1e-5, "{name}: max abs diff {d}");
    }
}

#[test]
fn meldb_matches_librosa() {
    for clip in ["1s", "7s"] {
        let name = format!("meldb_{clip}");
        let cfg = meldb::MelDbConfig { frames: None, ..Default::default() };
        let f = meldb::MelDb::new(cfg).compute(&clip16k(clip));
        let d = max_abs_diff(&f, &golden(&name));
        eprintln!("{name}: max abs diff {d:e} dB");
        assert!(d <= 1e-4, "{name}: max abs diff {d} dB");
    }
}

#[test]
fn resampling_matches_python_soxr() {
    let dir = fixtures().join("audio");
    let cases = [
        ("resample_7s_44k_stereo_to16k", "speech_7s_44k_stereo.flac", 16_000),
        ("resample_1s_16k_to24k", "speech_1s.wav", 24_000),
        ("resample_1s_16k_to44k", "speech_1s.wav", 44_100),
    ];
    for (name, file, rate) in cases {
        let a = load(&dir.join(file), &LoadOptions::mono_at(rate)).unwrap();
        let want = golden(name).to_f32();
        assert_eq!(a.samples.len(), want.len(), "{name}: length");
        let d = a.samples.iter().zip(&want).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
        eprintln!("{name}: max abs diff {d:e}");
        assert!(d <= 1e-5, "{name}: max abs diff {d}");
    }
}
