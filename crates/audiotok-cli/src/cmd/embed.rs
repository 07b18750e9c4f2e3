//! `audiotok embed`: continuous encoder outputs (HuBERT / wav2vec2, the Qwen2-Audio tower, the
//! Whisper encoder) as one `.npy` per audio file, plus a manifest. The job is
//! `audiotok_encoders::job`; this is its arguments and its summary.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use audiotok_encoders::job::{embed_files, EmbedOptions, Layers, OutDtype, Pool, Stage, MAX_BATCH_SIZE};

use crate::runner::{self, BatchArgs, Summary};

/// `--stage`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum StageArg {
    /// The encoder's tensors (see --layers).
    Encoder,
    /// Qwen2-Audio's multi-modal projector output: what the LLM receives.
    Projected,
}

/// `--pool`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum PoolArg {
    /// Every frame: (frames, dim).
    None,
    /// The mean over the clip's valid frames: (dim,).
    Mean,
}

/// `--dtype`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum DtypeArg {
    /// float32.
    F32,
    /// float16.
    F16,
}

/// Arguments of `audiotok embed`.
#[derive(clap::Args)]
#[command(after_help = "Layers: `final` is last_hidden_state (after the final LayerNorm of pre-LN models; \
Qwen2-Audio: after its average pool and LayerNorm, 25 frames/s). An index k is hidden state k as \
transformers 5.x numbers them: 0 is the input of the first encoder layer, k >= 1 the raw output of layer k \
(before any final norm or pool). `all` is 0 to N. Several layers give (layers, frames, dim).")]
pub struct Args {
    /// Model: a folder with config.json and safetensors (hubert, wav2vec2, qwen2_audio,
    /// qwen2_audio_encoder, whisper), or a hub id in the HF cache (never downloaded).
    #[arg(long, value_name = "DIR|HUB_ID")]
    model: String,
    /// Layers: final, all, or a comma-separated list of hidden-state indices (e.g. 6,9,12).
    #[arg(long, default_value = "final", value_parser = parse_layers)]
    layers: Layers,
    /// Stage: encoder outputs, or Qwen2-Audio's projector output.
    #[arg(long, value_enum, default_value = "encoder")]
    stage: StageArg,
    /// Pooling over frames.
    #[arg(long, value_enum, default_value = "none")]
    pool: PoolArg,
    /// Element type of the .npy files.
    #[arg(long, value_enum, default_value = "f32")]
    dtype: DtypeArg,
    /// Windows per model call (clips are grouped by length).
    #[arg(long, default_value_t = 8, value_parser = parse_batch)]
    batch_size: usize,
    /// Output directory: `<stem>.npy` per input (sub-folders of directory inputs kept) and
    /// `manifest.jsonl`.
    #[arg(long, short)]
    out: PathBuf,
    /// Print the summary (every manifest record) as JSON on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    batch: BatchArgs,
}

fn parse_layers(s: &str) -> Result<Layers, String> {
    match s {
        "final" => Ok(Layers::Final),
        "all" => Ok(Layers::All),
        _ => s
            .split(',')
            .map(|p| {
                p.trim().parse::<usize>().map_err(|_| format!("{p:?}: expected final, all or indices like 6,9,12"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Layers::List),
    }
}

fn parse_batch(s: &str) -> Result<usize, String> {
    let n: usize = s.parse().map_err(|e| format!("{s:?}: {e}"))?;
    if n == 0 || n > MAX_BATCH_SIZE {
        return Err(format!("{n}: 1 to {MAX_BATCH_SIZE}"));
    }
    Ok(n)
}

/// candle splits its matrix products into `RAYON_NUM_THREADS` parts; the job runs on a pool of
/// `--jobs` threads, so the CLI sets the variable to match before any thread starts.
fn set_threads(jobs: usize) {
    if jobs > 0 {
        std::env::set_var("RAYON_NUM_THREADS", jobs.to_string());
    }
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<ExitCode> {
    set_threads(args.batch.jobs);
    let t0 = runner::start();
    let inputs = runner::collect(&args.batch.inputs, &args.batch.sources)?;
    let options = EmbedOptions {
        model: args.model.clone(),
        layers: args.layers.clone(),
        stage: match args.stage {
            StageArg::Encoder => Stage::Encoder,
            StageArg::Projected => Stage::Projected,
        },
        pool: match args.pool {
            PoolArg::None => Pool::None,
            PoolArg::Mean => Pool::Mean,
        },
        dtype: match args.dtype {
            DtypeArg::F32 => OutDtype::F32,
            DtypeArg::F16 => OutDtype::F16,
        },
        batch_size: args.batch_size,
        jobs: args.batch.jobs,
    };
    let summary = embed_files(&inputs.files, &args.out, &options, &runner::Bars::default())?;
    if args.json {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", serde_json::to_string_pretty(&summary)?)?;
    }
    let failed = summary
        .records
        .iter()
        .zip(&inputs.files)
        .filter_map(|(r, input)| r.error.as_ref().map(|e| (input.path.as_path(), e.clone())))
        .collect();
    let summary = Summary {
        label: "embedded",
        done: summary.done,
        failed,
        ignored: inputs.ignored,
        audio_secs: summary.audio_secs,
        elapsed: t0.elapsed(),
    };
    Ok(summary.finish(args.batch.keep_going))
}
