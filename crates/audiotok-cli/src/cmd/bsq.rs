//! `audiotok bsq`: the BSQ spectrogram tokenizer (train; encode, decode and eval to come).
//!
//! The jobs are [`audiotok_bsq::job`]'s; here are the arguments, the progress bar, the loss-curve
//! PNG (the project's [`crate::plot`]), the printed summary and the exit code.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::{Context, Result};
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
