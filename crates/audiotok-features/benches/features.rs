//! Criterion benchmarks of the feature extractors on the committed speech fixtures.
//!
//! `cargo bench -p audiotok-features` (one core: `taskset -c 0 cargo bench ...`).

#![allow(missing_docs, clippy::unwrap_used)]

use std::path::PathBuf;

use audiotok_audio::{load, LoadOptions};
use audiotok_features::whisper::{Whisper, WhisperPadding};
use audiotok_features::{meldb, wav2vec2};
use criterion::{criterion_group, criterion_main, Criterion};

fn clip(name: &str) -> Vec<f32> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/audio").join(name);
    load(&path, &LoadOptions::mono_at(16_000)).unwrap().samples
}

fn bench(c: &mut Criterion) {
    let s7 = clip("speech_7s.flac");
    let s30 = clip("speech_30s.flac");
    let mut w = Whisper::new(128, WhisperPadding::MaxLength);
    c.bench_function("whisper-128 7 s clip (padded to 30 s)", |b| b.iter(|| w.compute(&s7)));
    c.bench_function("whisper-128 30 s clip", |b| b.iter(|| w.compute(&s30)));
    c.bench_function("wav2vec2 7 s clip", |b| b.iter(|| wav2vec2::normalize(&s7)));
    let mut m = meldb::MelDb::new(meldb::MelDbConfig::default());
    c.bench_function("mel-db 7 s clip", |b| b.iter(|| m.compute(&s7)));
    let stereo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/audio/speech_7s_44k_stereo.flac");
    c.bench_function("decode+downmix+resample 7 s 44.1k stereo FLAC", |b| {
        b.iter(|| load(&stereo, &LoadOptions::mono_at(16_000)).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
