//! `audiotok features`: one `.npy` of model input features per audio file, plus a manifest. The
//! pipeline is `audiotok_features::job`; this is its arguments and its summary.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use audiotok_features::whisper::{Precision, WhisperPadding};
use audiotok_features::{write_features, FeatureKind, FeaturesOptions};

use crate::runner::{self, BatchArgs, Summary};

/// Whisper padding, as the CLI spells it.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Padding {
    /// Pad or truncate to 30 s (3000 frames), as `padding="max_length"`.
    MaxLength,
    /// Keep the clip's own length, as `padding="longest"` on one clip.
    Longest,
}

/// Whisper arithmetic, as the CLI spells it.
#[derive(Clone, Copy, clap::ValueEnum)]
enum PrecisionArg {
    /// float32, within 1e-4 of transformers (as its torch path computes); faster.
    Fast,
    /// float64 as transformers' numpy path: bit-identical output.
    Exact,
}

/// Arguments of `audiotok features`.
#[derive(clap::Args)]
pub struct Args {
    /// Feature kind: whisper-128 (Whisper v3 / Qwen2-Audio log-mel), whisper-80, wav2vec2
    /// (normalised waveform for wav2vec2/HuBERT), mel-db (spectrogram-tokenizer input).
    #[arg(long, value_parser = parse_kind)]
    kind: FeatureKind,
    /// Output directory: `<stem>.npy` per input (sub-folders of directory inputs are kept) and
    /// `manifest.jsonl`.
    #[arg(long, short)]
    out: PathBuf,
    /// Whisper padding mode.
    #[arg(long, value_enum, default_value = "max-length")]
    padding: Padding,
    /// Whisper arithmetic.
    #[arg(long, value_enum, default_value = "fast")]
    precision: PrecisionArg,
    /// mel-db: crop or pad to this many frames (0: keep the clip's own length).
    #[arg(long, default_value_t = 1024)]
    frames: usize,
    #[command(flatten)]
    batch: BatchArgs,
}

fn parse_kind(s: &str) -> Result<FeatureKind, String> {
    s.parse().map_err(|e: audiotok_features::FeatureError| e.to_string())
}

impl Args {
    fn options(&self) -> FeaturesOptions {
        FeaturesOptions {
            kind: self.kind,
            whisper_padding: match self.padding {
                Padding::MaxLength => WhisperPadding::MaxLength,
                Padding::Longest => WhisperPadding::Longest,
            },
            whisper_precision: match self.precision {
                PrecisionArg::Fast => Precision::Fast,
                PrecisionArg::Exact => Precision::Exact,
            },
            meldb_frames: (self.frames > 0).then_some(self.frames),
            jobs: self.batch.jobs,
        }
    }
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<ExitCode> {
    let t0 = runner::start();
    let inputs = runner::collect(&args.batch.inputs, &args.batch.sources)?;
    let summary = write_features(&inputs.files, &args.out, &args.options(), &runner::Bars::default())?;
    let failed = summary
        .failures()
        .filter_map(|(i, reason)| inputs.files.get(i).map(|input| (input.path.as_path(), reason.to_string())))
        .collect();
    let summary = Summary {
        label: "features",
        done: summary.done,
        failed,
        ignored: inputs.ignored,
        audio_secs: summary.audio_secs,
        elapsed: t0.elapsed(),
    };
    Ok(summary.finish(args.batch.keep_going))
}
