//! `audiotok encode` / `audiotok decode`: audio to SNAC codes in a token store, and back to WAV.
//!
//! The pipelines are [`audiotok_codecs::job`]'s (planning, streaming, resume, provenance, WAV
//! names, missing batches); here are the arguments, the progress bars ([`runner::Bars`]), the
//! printed summary and the exit code. `--analyze` runs `audiotok analyze` on the new store.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use audiotok_codecs::job::{self, DecodeOptions, DeviceChoice, EncodeOptions};

use crate::runner;

/// Arguments of `audiotok encode`.
#[derive(clap::Args)]
#[command(after_help = "Output: a token store: tokens_batch_XXXX.parquet (one row per segment: file_path, duration, \
tokens_scale_k / n_tokens_scale_k / shape_scale_k per codebook, coarsest first) and metadata.json. With segments, \
file_path is `PATH#K` (K = segment index from 0); with --segment-length 0 it is PATH.\n\n\
Bad input: files that cannot be decoded, hold NaN samples, or are shorter than one hop (512 samples at 24 kHz) are \
rejected with their reason and the run goes on (exit 1 at the end unless --keep-going). A last remainder shorter \
than one hop is dropped and counted in the summary; a longer one becomes a shorter last segment (zero-padded by the model). \
Silence and clipped audio are encoded as they are (samples are not clamped). A checkpoint of another \
configuration stops the run with the missing, unexpected and mis-shaped keys.")]
pub struct EncodeArgs {
    /// SNAC model: a folder with config.json (+ pytorch_model.bin or model.safetensors), or a hub id such as
    /// hubertsiuzdak/snac_24khz found in the local Hugging Face cache ($HF_HOME/hub); nothing is downloaded.
    #[arg(long)]
    model: String,
    /// Fine-tuned weights replacing the model's (a torch.save state dict, possibly nested under `model` or
    /// `state_dict`, `module.` prefixes allowed; or .safetensors).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Audio files, directories (walked recursively) or sources (Parquet shards, save_to_disk
    /// folders, webdataset tars, lhotse cuts, CSV/TSV/JSONL manifests).
    #[arg(long, required = true, num_args = 1.., value_name = "FILE|DIR|SOURCE")]
    input: Vec<PathBuf>,
    #[command(flatten)]
    sources: runner::SourceArgs,
    /// The token store directory to write.
    #[arg(long)]
    output: PathBuf,
    /// Segment length in seconds, at most 600 (0: whole files, each at most 600 s).
    #[arg(long, default_value_t = 4.0)]
    segment_length: f64,
    /// Records (segments) per Parquet batch file (1 to 100000).
    #[arg(long, default_value_t = 100)]
    batch_size: usize,
    /// Encode only the first N input files.
    #[arg(long)]
    max_files: Option<usize>,
    /// Threads (0: one per core; at most 1024).
    #[arg(long, short, default_value_t = 0, value_parser = crate::runner::parse_jobs)]
    jobs: usize,
    /// Run `audiotok analyze` on the store afterwards.
    #[arg(long)]
    analyze: bool,
    /// Exit 0 even when some files were rejected.
    #[arg(long)]
    keep_going: bool,
}

/// Whether the decoder's noise layers run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Noise {
    /// Skip them: deterministic output, equal to the reference with noise disabled.
    Off,
    /// Add N(0, 1) noise as the reference does at inference, from a generator seeded by --seed per record.
    On,
}

/// Arguments of `audiotok decode`.
#[derive(clap::Args)]
#[command(after_help = "Writes one float32 WAV per record at the model's rate, named NNNNNN_<name>.wav (NNNNNN = \
record index in the store, <name> = the file stem of file_path, `#K` written as `_segK`), cut to the record's \
duration. A stem longer than 100 bytes is cut (at a character boundary) and followed by `~` and the first 16 hex \
digits of the SHA-1 of file_path. Batches that metadata.json lists, or gaps in the batch numbers, are reported as \
failures (exit 1). With --noise on, record i uses the generator seeded with seed + i, so reruns give identical files.")]
pub struct DecodeArgs {
    /// SNAC model (as for `audiotok encode`).
    #[arg(long)]
    model: String,
    /// Fine-tuned weights replacing the model's.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// A token store directory or one of its .parquet files.
    #[arg(long)]
    input: PathBuf,
    /// Directory for the WAV files.
    #[arg(long)]
    out: PathBuf,
    /// Decoder noise layers.
    #[arg(long, value_enum, default_value_t = Noise::Off)]
    noise: Noise,
    /// Seed of the noise generator (with --noise on); record i uses seed + i (mod 2^64).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Decode only the first N records.
    #[arg(long)]
    max_records: Option<usize>,
    /// Threads (0: one per core; at most 1024).
    #[arg(long, short, default_value_t = 0, value_parser = crate::runner::parse_jobs)]
    jobs: usize,
}

/// candle splits its matrix products into `RAYON_NUM_THREADS` parts (else one per physical
/// core); the jobs run on a pool of `--jobs` threads of their own, so the CLI sets the variable to
/// match, before any thread starts (a library sets no environment variable).
fn set_threads(jobs: usize) {
    if jobs > 0 {
        std::env::set_var("RAYON_NUM_THREADS", jobs.to_string());
    }
}

/// Runs `audiotok encode`.
pub fn run_encode(args: EncodeArgs) -> Result<ExitCode> {
    let t0 = runner::start();
    set_threads(args.jobs);
    let opts = EncodeOptions {
        model: args.model,
        checkpoint: args.checkpoint,
        inputs: args.input,
        sources: args.sources.options(),
        output: args.output,
        segment_seconds: args.segment_length,
        batch_size: args.batch_size,
        max_files: args.max_files,
        jobs: args.jobs,
        device: DeviceChoice::Auto,
    };
    let summary = job::encode(&opts, &runner::Bars::default())?;
    for r in &summary.redone {
        eprintln!("note: {} batches {}: encoding them again", r.batches, r.reason);
    }
    eprintln!(
        "encode: {} records in {} batches ({} reused from an earlier run) -> {}",
        summary.records,
        summary.batches,
        summary.reused_batches,
        summary.output.display()
    );
    if summary.dropped_seconds > 0.0 {
        eprintln!("note: {:.3} s of final remainders shorter than one hop dropped", summary.dropped_seconds);
    }
    if summary.clipped_segments > 0 || summary.silent_segments > 0 {
        eprintln!(
            "note: {} segments reach full scale (|x| >= 1), {} are digital silence",
            summary.clipped_segments, summary.silent_segments
        );
    }
    let code = runner::Summary {
        label: "encode",
        done: summary.files,
        failed: summary.failures.iter().map(|f| (f.path.as_path(), f.reason.clone())).collect(),
        ignored: summary.ignored,
        audio_secs: summary.encoded_seconds,
        elapsed: t0.elapsed(),
    }
    .finish(args.keep_going);
    if args.analyze {
        analyze(&opts.output, summary.codebook_size)?;
    }
    Ok(code)
}

fn analyze(dir: &Path, codebook_size: usize) -> Result<()> {
    use clap::{Args as _, FromArgMatches as _};
    let command = crate::cmd::analyze::Args::augment_args(clap::Command::new("analyze"));
    let m = command.try_get_matches_from([
        "analyze".to_string(),
        dir.display().to_string(),
        "--codebook-size".to_string(),
        codebook_size.to_string(),
    ])?;
    let a = crate::cmd::analyze::Args::from_arg_matches(&m)?;
    crate::cmd::analyze::run(a).map(|_| ())
}

/// Runs `audiotok decode`.
pub fn run_decode(args: DecodeArgs) -> Result<ExitCode> {
    let t0 = Instant::now();
    set_threads(args.jobs);
    let opts = DecodeOptions {
        model: args.model,
        checkpoint: args.checkpoint,
        input: args.input,
        out: args.out,
        noise: args.noise == Noise::On,
        seed: args.seed,
        max_records: args.max_records,
        jobs: args.jobs,
        device: DeviceChoice::Auto,
    };
    let summary = job::decode(&opts, &runner::Bars::default())?;
    let code = runner::Summary {
        label: "decode",
        done: summary.records,
        failed: summary.failures.iter().map(|f| (f.path.as_path(), f.reason.clone())).collect(),
        ignored: 0,
        audio_secs: summary.audio_seconds,
        elapsed: t0.elapsed(),
    }
    .finish(false);
    Ok(code)
}
