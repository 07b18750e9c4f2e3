//! `audiotok bsq`: the BSQ spectrogram tokenizer: train, encode, decode, eval.
//!
//! The jobs are [`audiotok_bsq::job`]'s, [`audiotok_bsq::infer`]'s and [`audiotok_bsq::eval`]'s;
//! here are the arguments, the progress bar, the loss-curve
//! PNG (the project's [`crate::plot`]), the printed summary and the exit code.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::{Context, Result};
use audiotok_bsq::eval::{self, EvalOptions, Recon};
use audiotok_bsq::infer::{self, DecodeOptions, EncodeOptions, Weights};
use audiotok_bsq::job::{self, LogLine, TrainObserver, TrainOptions, ValMetrics};
use audiotok_bsq::{StepMetrics, TrainConfig};
use indicatif::{ProgressBar, ProgressStyle};

use crate::runner::{self, Observer};

/// Arguments of `audiotok bsq`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Train a BSQ tokenizer on audio folders or manifests (resumable).
    Train(TrainArgs),
    /// Encode audio with a trained tokenizer into a token store (Parquet).
    Encode(EncodeArgs),
    /// Decode a token store back to mel-db spectrograms (.npy).
    Decode(DecodeArgs),
    /// Measure a trained tokenizer on audio: reconstruction, codebook usage, baselines.
    Eval(EvalArgs),
}

/// EMA or trained weights.
#[derive(Clone, Copy, clap::ValueEnum)]
enum WeightsArg {
    /// The EMA weights when the checkpoint has them.
    Ema,
    /// The trained weights.
    Live,
}

impl From<WeightsArg> for Weights {
    fn from(w: WeightsArg) -> Weights {
        match w {
            WeightsArg::Ema => Weights::Ema,
            WeightsArg::Live => Weights::Live,
        }
    }
}

/// Arguments of `audiotok bsq encode`.
#[derive(clap::Args)]
#[command(after_help = "Output: a token store (tokens_batch_XXXX.parquet + metadata.json), one record per file. \
Scale 0: the L-bit MSB-first index of every patch, shape [time_patches, freq_patches], time-major (token t*F+f \
covers frames t*tp..(t+1)*tp and mel bins f*fp..(f+1)*fp); with group_size < bits, scales 1..L/g hold the \
g-bit group indices of the same patches. Files are encoded whole in consecutive crops of the model's \
crop_frames; the last crop is padded with the -80 dB floor to a multiple of time_patch (no frame dropped). \
metadata.json's provenance says all of this. Undecodable or silent files are rejected with their reason \
(exit 1 unless --keep-going).")]
pub struct EncodeArgs {
    /// A run folder (its latest checkpoint) or a checkpoint folder.
    #[arg(long, value_name = "RUN_DIR|CKPT")]
    model: PathBuf,
    /// Audio files or directories (walked recursively).
    #[arg(long, required = true, num_args = 1.., value_name = "FILE|DIR")]
    input: Vec<PathBuf>,
    /// The token store directory to write.
    #[arg(long)]
    output: PathBuf,
    /// Which weights of the checkpoint.
    #[arg(long, value_enum, default_value = "ema")]
    weights: WeightsArg,
    /// Records (files) per Parquet batch file.
    #[arg(long, default_value_t = 100)]
    batch_size: usize,
    /// Crops per model call.
    #[arg(long, default_value_t = 8)]
    crops_per_call: usize,
    /// Leave out the per-group scales (scale 0 only: one stream of L-bit codes, e.g. for `bpe train`).
    #[arg(long)]
    no_group_scales: bool,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Run `audiotok analyze` on the store afterwards.
    #[arg(long)]
    analyze: bool,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Exit 0 even when some files were rejected.
    #[arg(long)]
    keep_going: bool,
}

/// Arguments of `audiotok bsq decode`.
#[derive(clap::Args)]
#[command(after_help = "Output: one .npy per record (float32 [n_mels, frames], mel-db in dB, [-80, 0]), named \
after the record's file (FILE.npy, FILE_1.npy on a clash), the tail's padding frames cut off. With --wav, also \
FILE.wav: 16 kHz audio from the mel by the pseudo-inverse of the mel bank and Griffin-Lim (librosa's \
mel_to_audio, but zero initial phase and no NNLS refinement, so reruns are identical); the loudness is \
relative (the features are dB to each clip's maximum).")]
pub struct DecodeArgs {
    /// The run folder or checkpoint that encoded the store.
    #[arg(long, value_name = "RUN_DIR|CKPT")]
    model: PathBuf,
    /// The token store.
    #[arg(long)]
    input: PathBuf,
    /// The folder to write.
    #[arg(long)]
    out: PathBuf,
    /// Which weights of the checkpoint.
    #[arg(long, value_enum, default_value = "ema")]
    weights: WeightsArg,
    /// Also write a 16 kHz WAV per record by Griffin-Lim from the mel (a listening aid, not a vocoder).
    #[arg(long)]
    wav: bool,
    /// Griffin-Lim iterations for --wav.
    #[arg(long, default_value_t = 32)]
    iters: usize,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// Arguments of `audiotok bsq eval`.
#[derive(clap::Args)]
#[command(after_help = "Reports, over whole files (tail padding left out), for the model and three baselines \
(the model with quantisation skipped, the untrained configuration, the per-mel-bin mean of the data): L1 in \
the [-1, 1] scale, L1 and RMSE in dB, log-spectral distance, L1 above the -80 dB floor; then codebook usage \
(unique / 2^L, unique / tokens), index entropy in bits and perplexity, per-group usage, per-bit balance and \
the bitrate.")]
pub struct EvalArgs {
    /// A run folder (its latest checkpoint) or a checkpoint folder.
    #[arg(long, value_name = "RUN_DIR|CKPT")]
    model: PathBuf,
    /// Audio files, directories or .jsonl/.csv manifests.
    #[arg(long, required = true, num_args = 1.., value_name = "DIR|LIST")]
    data: Vec<PathBuf>,
    /// Which weights of the checkpoint.
    #[arg(long, value_enum, default_value = "ema")]
    weights: WeightsArg,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Print the report as JSON on stdout (else a table).
    #[arg(long)]
    json: bool,
}

/// Arguments of `audiotok bsq train`.
#[derive(clap::Args)]
#[command(after_help = "The configuration is a JSON file: {\"model\": {...}, \"optim\": {...}, \"data\": {...}, \
\"total_steps\": N, ...}; missing fields take their defaults, unknown fields are an error (see README.md).\n\n\
RUN_DIR receives config.json, features/ (the mel-db cache), data.json (training and validation clips), \
rejects.jsonl, metrics.jsonl (one line per log step: every loss term, lr, grad norm, validation metrics), \
loss.png, checkpoints/step-N/ and latest.\n\n\
Bad input: undecodable or silent files are rejected with their reason and the run goes on (exit 1 at the end \
unless --keep-going); no usable audio at all, a bad configuration, or a checkpoint of another configuration \
stops the run (exit 2). A NaN loss stops with the step named; the last checkpoint is kept.")]
pub struct TrainArgs {
    /// The training configuration (JSON); optional with --resume (the run's own is used).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Audio files, directories (walked recursively), or .jsonl/.csv manifests (a path column, optionally speaker).
    #[arg(long, required = true, num_args = 1.., value_name = "DIR|LIST")]
    data: Vec<PathBuf>,
    /// The run folder.
    #[arg(long, value_name = "RUN_DIR")]
    out: PathBuf,
    /// Continue the run in RUN_DIR from its latest checkpoint (exactly as if it had not stopped).
    #[arg(long)]
    resume: bool,
    /// Seed of the initialisation, the split and the batches (overrides the configuration's).
    #[arg(long)]
    seed: Option<u64>,
    /// Total updates of the run (overrides the configuration's total_steps).
    #[arg(long)]
    steps: Option<u64>,
    /// Stop after this update (a checkpoint is written; --resume continues).
    #[arg(long, value_name = "STEP")]
    stop_at: Option<u64>,
    /// Device: cpu, cuda or cuda:N (CUDA needs a build with --features cuda).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Exit 0 even when some files were rejected.
    #[arg(long)]
    keep_going: bool,
}

/// Runs `audiotok bsq`.
pub fn run(args: Args) -> Result<ExitCode> {
    match args.command {
        Command::Train(a) => run_train(a),
        Command::Encode(a) => run_encode(a),
        Command::Decode(a) => run_decode(a),
        Command::Eval(a) => run_eval(a),
    }
}

/// The data phase through [`runner::Bars`]; the training phase as a bar with the loss terms.
#[derive(Default)]
struct TrainBars {
    bars: runner::Bars,
    train: Mutex<Option<ProgressBar>>,
}

impl TrainBars {
    fn with(&self, f: impl FnOnce(&mut Option<ProgressBar>)) {
        match self.train.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }
}

impl Observer for TrainBars {
    fn begin(&self, phase: &str, total: u64, unit: &str) {
        if phase != "train" {
            return self.bars.begin(phase, total, unit);
        }
        let bar = ProgressBar::new(total);
        let style = ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} steps {elapsed_precise} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix("train");
        self.with(|b| *b = Some(bar));
    }
    fn advance(&self, n: u64) {
        let mut used = false;
        self.with(|b| {
            if let Some(bar) = b.as_ref() {
                bar.inc(n);
                used = true;
            }
        });
        if !used {
            self.bars.advance(n);
        }
    }
    fn end(&self) {
        let mut used = false;
        self.with(|b| {
            if let Some(bar) = b.take() {
                bar.finish_and_clear();
                used = true;
            }
        });
        if !used {
            self.bars.end();
        }
    }
    fn warn(&self, message: &str) {
        self.bars.warn(message);
    }
}

impl TrainObserver for TrainBars {
    fn step(&self, m: &StepMetrics, steps_per_s: f64) {
        self.with(|b| {
            if let Some(bar) = b.as_ref() {
                bar.set_message(format!(
                    "loss {:.4} (recon {:.4}, commit {:.4}, H_ps {:.3}, H_cb {:.3}) lr {:.2e} {:.2} steps/s",
                    m.loss, m.recon, m.commit, m.persample_entropy, m.codebook_entropy, m.lr, steps_per_s
                ));
            }
        });
    }
    fn validated(&self, step: u64, v: &ValMetrics) {
        let line = format!(
            "step {step}: validation L1 {:.4}, RMSE {:.2} dB, {} distinct codes in {} tokens",
            v.l1, v.rmse_db, v.unique_codes, v.tokens
        );
        self.with(|b| match b.as_ref() {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        });
    }
}

fn read_config(path: &Path) -> Result<TrainConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let cfg: TrainConfig =
        serde_json::from_str(&text).with_context(|| format!("{}: not a BSQ training configuration", path.display()))?;
    cfg.validate().with_context(|| path.display().to_string())?;
    Ok(cfg)
}

/// The loss curve: training spectrogram loss and validation L1 per step (log-log).
fn loss_curve(path: &Path, log: &[LogLine]) -> Result<()> {
    let train: Vec<(f64, f64)> = log.iter().map(|l| (l.train.step as f64, l.train.recon)).collect();
    let val: Vec<(f64, f64)> = log.iter().filter_map(|l| l.val.as_ref().map(|v| (l.train.step as f64, v.l1))).collect();
    let commit: Vec<(f64, f64)> = log.iter().map(|l| (l.train.step as f64, l.train.commit)).collect();
    let mut series = vec![
        crate::plot::Series { label: "train spectrogram loss".into(), points: &train },
        crate::plot::Series { label: "validation L1".into(), points: &val },
    ];
    if commit.iter().any(|p| p.1 > 0.0) {
        series.push(crate::plot::Series { label: "train commitment".into(), points: &commit });
    }
    crate::plot::loglog(path, "BSQ training loss", "step", "loss", &series)
}

fn run_train(a: TrainArgs) -> Result<ExitCode> {
    let mut config = match &a.config {
        Some(p) => Some(read_config(p)?),
        None if a.resume => None,
        None => anyhow::bail!("--config is needed for a new run (it is optional only with --resume)"),
    };
    match config.as_mut() {
        Some(c) => {
            if let Some(s) = a.seed {
                c.seed = s;
            }
            if let Some(n) = a.steps {
                c.total_steps = n;
            }
            c.validate()?;
        }
        None if a.seed.is_some() || a.steps.is_some() => {
            anyhow::bail!(
                "--seed and --steps change the run: with --resume give them with --config as the run had them"
            )
        }
        None => {}
    }
    let device = job::device(&a.device)?;
    let opts = TrainOptions { config, data: a.data.clone(), out: a.out.clone(), resume: a.resume, stop_at: a.stop_at };
    let bars = TrainBars::default();
    let summary = job::train(&opts, &device, &bars)?;
    let png = a.out.join("loss.png");
    loss_curve(&png, &summary.log).with_context(|| format!("writing {}", png.display()))?;
    for r in &summary.rejects {
        eprintln!("rejected: {}", r.reason);
    }
    let last = summary.log.last();
    let val = summary.log.iter().rev().find_map(|l| l.val.as_ref());
    let mut line = format!(
        "bsq train: step {}/{}, {} updates in {:.1} s ({:.2} steps/s), {} parameters, {} training and {} validation clips",
        summary.step,
        summary.total_steps,
        summary.steps_run,
        summary.seconds,
        summary.steps_per_s,
        summary.parameters,
        summary.train_clips,
        summary.val_clips
    );
    if let Some(l) = last {
        line.push_str(&format!("; loss {:.4} (recon {:.4})", l.train.loss, l.train.recon));
    }
    if let Some(v) = val {
        line.push_str(&format!("; validation L1 {:.4}, RMSE {:.2} dB", v.l1, v.rmse_db));
    }
    if !summary.rejects.is_empty() {
        line.push_str(&format!("; {} inputs rejected", summary.rejects.len()));
    }
    eprintln!("{line}");
    if let Some(c) = &summary.checkpoint {
        eprintln!("checkpoint: {}", c.display());
    }
    if a.json {
        let mut v = serde_json::to_value(&summary)?;
        if let Some(o) = v.as_object_mut() {
            o.remove("log");
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
    }
    Ok(if summary.rejects.is_empty() || a.keep_going { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn run_encode(a: EncodeArgs) -> Result<ExitCode> {
    let t0 = runner::start();
    let device = job::device(&a.device)?;
    let opts = EncodeOptions {
        model: a.model.clone(),
        inputs: a.input.clone(),
        output: a.output.clone(),
        weights: a.weights.into(),
        batch_size: a.batch_size,
        crops_per_call: a.crops_per_call,
        group_scales: !a.no_group_scales,
    };
    let s = infer::encode(&opts, &device, &runner::Bars::default())?;
    eprintln!(
        "bsq encode: {} tokens of {} bits ({:.1} tokens/s, {:.0} bit/s) from {} -> {}",
        s.tokens,
        s.bits,
        s.rate_hz,
        s.bitrate,
        s.checkpoint.display(),
        s.output.display()
    );
    if a.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    }
    let code = runner::Summary {
        label: "bsq encode",
        done: s.files,
        failed: s.rejects.iter().map(|r| (Path::new(r.input.as_str()), r.reason.clone())).collect(),
        ignored: s.ignored,
        audio_secs: s.audio_secs,
        elapsed: t0.elapsed(),
    }
    .finish(a.keep_going);
    if a.analyze {
        use clap::{Args as _, FromArgMatches as _};
        let command = crate::cmd::analyze::Args::augment_args(clap::Command::new("analyze"));
        let m = command.try_get_matches_from([
            "analyze".to_string(),
            a.output.display().to_string(),
            "--codebook-size".to_string(),
            s.codebook_size.to_string(),
        ])?;
        crate::cmd::analyze::run(crate::cmd::analyze::Args::from_arg_matches(&m)?)?;
    }
    Ok(code)
}

fn run_decode(a: DecodeArgs) -> Result<ExitCode> {
    let device = job::device(&a.device)?;
    let opts = DecodeOptions {
        model: a.model,
        input: a.input,
        out: a.out.clone(),
        weights: a.weights.into(),
        wav_iters: a.wav.then_some(a.iters),
    };
    let done = infer::decode(&opts, &device, &runner::Bars::default())?;
    let frames: usize = done.iter().map(|d| d.frames).sum();
    eprintln!("bsq decode: {} records, {} frames -> {}", done.len(), frames, a.out.display());
    Ok(ExitCode::SUCCESS)
}

fn recon_row(name: &str, r: &Recon) -> String {
    format!(
        "{name:<12} {:>8.4} {:>8.2} {:>8.2} {:>8.2} {:>10.2}",
        r.l1, r.l1_db, r.rmse_db, r.lsd_db, r.l1_above_floor_db
    )
}

fn run_eval(a: EvalArgs) -> Result<ExitCode> {
    let device = job::device(&a.device)?;
    let opts = EvalOptions { model: a.model, data: a.data, weights: a.weights.into() };
    let r = eval::evaluate(&opts, &device, &runner::Bars::default())?;
    for j in &r.rejects {
        eprintln!("rejected: {}", j.reason);
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} ({} weights): {} files, {} frames ({:.1} s), {} tokens",
        r.checkpoint.display(),
        r.weights,
        r.files,
        r.frames,
        r.frames as f64 / 100.0,
        r.tokens
    );
    println!("{:<12} {:>8} {:>8} {:>8} {:>8} {:>10}", "", "L1", "L1 dB", "RMSE dB", "LSD dB", ">floor dB");
    println!("{}", recon_row("model", &r.model));
    println!("{}", recon_row("continuous", &r.continuous));
    println!("{}", recon_row("untrained", &r.untrained));
    println!("{}", recon_row("mel mean", &r.mel_mean));
    println!(
        "codes: {} distinct of 2^{} ({:.3e} of the codebook, {:.4} per token), entropy {:.3} bits, perplexity {:.1}",
        r.codes.unique,
        r.bit_balance.len(),
        r.codes.codebook_usage,
        r.codes.unique_per_token,
        r.codes.entropy_bits,
        r.codes.perplexity
    );
    for (k, g) in r.groups.iter().enumerate() {
        println!(
            "group {k}: {} distinct of {} ({:.3}), entropy {:.3} bits, perplexity {:.1}",
            g.unique, g.codebook_size, g.codebook_usage, g.entropy_bits, g.perplexity
        );
    }
    let bal: Vec<String> = r.bit_balance.iter().map(|b| format!("{b:.2}")).collect();
    println!("bit balance (share of ones, MSB first): {}", bal.join(" "));
    println!("rate: {:.1} tokens/s, {:.0} bit/s", r.rate_hz, r.bitrate);
    Ok(ExitCode::SUCCESS)
}
