//! Minimum-of-N timing of the extractors on one file (robust to a busy machine):
//! `cargo run --release -p audiotok-features --example time_features -- FILE [N] [KIND]`.

#![allow(clippy::unwrap_used)]

use std::time::Instant;

use audiotok_audio::{load, LoadOptions};
use audiotok_features::{Extractor, ExtractorOptions, FeatureKind};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = std::path::PathBuf::from(args.get(1).expect("usage: time_features FILE [N]"));
    let n: usize = args.get(2).map_or(50, |s| s.parse().unwrap());
    let x = load(&path, &LoadOptions::mono_at(16_000)).unwrap().samples;
    let only: Option<FeatureKind> = args.get(3).map(|k| k.parse().unwrap());
    for kind in [FeatureKind::Whisper128, FeatureKind::Wav2Vec2, FeatureKind::MelDb] {
        if only.is_some_and(|o| o != kind) {
            continue;
        }
        let mut ex = Extractor::new(kind, ExtractorOptions::default());
        let mut best = f64::MAX;
        for _ in 0..n {
            let t = Instant::now();
            std::hint::black_box(ex.compute(&x).unwrap());
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!("{kind:<12} {:8.3} ms (min of {n})", best * 1e3);
    }
    let mut best = f64::MAX;
    for _ in 0..n {
        let t = Instant::now();
        std::hint::black_box(load(&path, &LoadOptions::mono_at(16_000)).unwrap());
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!("{:<12} {:8.3} ms (min of {n})", "load", best * 1e3);
}
