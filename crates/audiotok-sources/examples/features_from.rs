//! `audiotok features` without the CLI's other subcommands (for tools/bench_sources.py, whose
//! release build of the whole CLI would pull candle): the same library calls the CLI makes,
//! `audiotok_sources::collect` then `audiotok_features::write_features`, on `--jobs 1`.
//!
//! ```text
//! cargo run --release -p audiotok-sources --example features_from -- [--longest] KIND OUT INPUT...
//! ```
//!
//! `--longest`: Whisper padding `longest` (the CLI's `--padding longest`).
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use audiotok_features::{write_features, FeaturesOptions};

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let longest = args.first().is_some_and(|a| a == "--longest");
    if longest {
        args.remove(0);
    }
    assert!(args.len() >= 3, "usage: features_from [--longest] KIND OUT INPUT...");
    let kind = args[0].parse().unwrap();
    let out = PathBuf::from(&args[1]);
    let inputs: Vec<PathBuf> = args[2..].iter().map(PathBuf::from).collect();
    let listed = audiotok_sources::collect(&inputs, &Default::default()).unwrap();
    let mut options = FeaturesOptions { jobs: 1, ..FeaturesOptions::new(kind) };
    if longest {
        options.whisper_padding = audiotok_features::whisper::WhisperPadding::Longest;
    }
    let s = write_features(&listed.files, &out, &options, &audiotok_core::Silent).unwrap();
    eprintln!("{} done, {} failed, {:.1} s of audio", s.done, s.failed, s.audio_secs);
    if s.failed > 0 {
        std::process::exit(1);
    }
}
