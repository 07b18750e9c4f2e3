//! The training job of `audiotok bsq train`: data prepared, updates run, metrics logged,
//! checkpoints written, a run resumed exactly.
//!
//! [`train`] runs [`TrainOptions`] and reports to a [`TrainObserver`]. A run folder holds:
//! - `config.json`: the whole [`TrainConfig`] of the run;
//! - `features/`: the feature cache (`.npy` per clip, see [`crate::data`]);
//! - `data.json`: the training and validation clips; `rejects.jsonl`: every input that gave no data
//!   and why (one JSON object a line);
//! - `metrics.jsonl`: one [`LogLine`] every `log_every` updates and at the last: every loss term,
//!   the learning rate, the gradient norm and, every `val_every` updates and at the last, the
//!   validation metrics ([`ValMetrics`]); appended as the run goes; a resumed run first cuts it back
//!   to the checkpoint's step, so an interrupted and resumed run leaves the same file as one that
//!   was not;
//! - `checkpoints/step-N/` and `latest` ([`Trainer::save_checkpoint`]), every `checkpoint_every`
//!   updates, at the last and where the run stops early (`stop_at`).
//!
//! A loss or gradient that is not finite stops the run with [`Error::NonFinite`] naming the step;
//! the last checkpoint written stays as it was. Timings (steps/s) go to the observer and the
//! summary only, never into the files, so reruns give identical bytes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use audiotok_core::Observer;
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::data::{Dataset, Reject, TOP_DB};
use crate::{bsq, Error, Mode, StepMetrics, TrainConfig, Trainer};

/// What [`train`] does.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// The run's configuration (`None` with `resume`: the one saved in the run).
    pub config: Option<TrainConfig>,
    /// `--data` arguments: audio files, folders, `.jsonl`/`.csv` manifests.
    pub data: Vec<PathBuf>,
    /// The run folder.
    pub out: PathBuf,
    /// Continue the run in `out` from its latest checkpoint.
    pub resume: bool,
    /// Stop (with a checkpoint) after this update, before `total_steps`.
    pub stop_at: Option<u64>,
}

/// Receives the job's progress: the data phase through [`Observer`] (phase `features`, in
/// files), then the phase `train` (in steps) with a call per update.
pub trait TrainObserver: Observer {
    /// One update is done; `steps_per_s` over this invocation so far.
    fn step(&self, metrics: &StepMetrics, steps_per_s: f64) {
        let _ = (metrics, steps_per_s);
    }
    /// Validation ran after update `step`.
    fn validated(&self, step: u64, metrics: &ValMetrics) {
        let _ = (step, metrics);
    }
}

impl TrainObserver for audiotok_core::Silent {}

/// The model on the validation crops (eval mode, the trained weights).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValMetrics {
    /// Crops evaluated.
    pub crops: usize,
    /// Mean absolute error in the `[-1, 1]` scale (the training L1).
    pub l1: f64,
    /// Root mean squared error in dB.
    pub rmse_db: f64,
    /// Per-sample entropy of the soft assignment (nats).
    pub persample_entropy: f64,
    /// Codebook entropy of the batch-averaged assignment (nats).
    pub codebook_entropy: f64,
    /// Distinct codes among the tokens.
    pub unique_codes: usize,
    /// Tokens.
    pub tokens: usize,
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    /// The update's measures.
    #[serde(flatten)]
    pub train: StepMetrics,
    /// Validation, where it ran at this step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val: Option<ValMetrics>,
}

/// What [`train`] did.
#[derive(Debug, Clone, Serialize)]
pub struct TrainSummary {
    /// The run folder.
    pub out: PathBuf,
    /// The step reached.
    pub step: u64,
    /// The run's total steps.
    pub total_steps: u64,
    /// Updates done by this invocation.
    pub steps_run: u64,
    /// Trainable parameters.
    pub parameters: usize,
    /// Training clips.
    pub train_clips: usize,
    /// Validation clips.
    pub val_clips: usize,
    /// Inputs rejected, with reasons.
    pub rejects: Vec<Reject>,
    /// The last checkpoint written.
    pub checkpoint: Option<PathBuf>,
    /// Seconds of this invocation's updates (validation and checkpoints included).
    pub seconds: f64,
    /// Updates per second.
    pub steps_per_s: f64,
    /// Every line of `metrics.jsonl` (the whole run).
    pub log: Vec<LogLine>,
}

/// The device named `cpu`, `cuda` or `cuda:N` (CUDA needs the crate's `cuda` feature).
pub fn device(name: &str) -> Result<Device, Error> {
    match name {
        "cpu" => Ok(Device::Cpu),
        "cuda" => Ok(Device::new_cuda(0)?),
        s => match s.strip_prefix("cuda:").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) => Ok(Device::new_cuda(n)?),
            None => Err(Error::Config(format!("unknown device {s:?}: cpu, cuda or cuda:N"))),
        },
    }
}

fn to_json<T: Serialize>(v: &T) -> Result<String, Error> {
    serde_json::to_string_pretty(v).map_err(|e| Error::Config(e.to_string()))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    audiotok_core::atomic::write_with(path, |w| w.write_all(bytes).map_err(|e| Error::Io(path.to_path_buf(), e)))
}

/// Reads a run's `metrics.jsonl` (lines that are not [`LogLine`]s are an error naming the line).
pub fn read_log(path: &Path) -> Result<Vec<LogLine>, Error> {
    Ok(read_log_lines(path)?.into_iter().map(|(_, l)| l).collect())
}

fn read_log_lines(path: &Path) -> Result<Vec<(String, LogLine)>, Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::Io(path.to_path_buf(), e)),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let parsed =
                serde_json::from_str(l).map_err(|e| Error::Data(format!("{}:{}: {e}", path.display(), i + 1)))?;
            Ok((l.to_string(), parsed))
        })
        .collect()
}

/// Evaluates `model` on `batches` (eval mode).
pub fn validate(model: &crate::BsqModel, batches: &[Tensor]) -> Result<ValMetrics, Error> {
    let (mut l1, mut se, mut hps, mut hcb, mut n, mut crops) = (0f64, 0f64, 0f64, 0f64, 0usize, 0usize);
    let mut codes = std::collections::HashSet::new();
    let mut tokens = 0usize;
    for x in batches {
        let fwd = model.forward(x, Mode::Eval)?;
        let diff = (&fwd.recon - x)?.detach();
        let count = diff.elem_count();
        l1 += diff.abs()?.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        se += diff.sqr()?.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        let b = x.dim(0)?;
        hps += fwd.quant.persample_entropy.to_dtype(DType::F64)?.to_scalar::<f64>()? * b as f64;
        hcb += fwd.quant.codebook_entropy.to_dtype(DType::F64)?.to_scalar::<f64>()? * b as f64;
        let z = fwd.z.detach().flatten_all()?.to_vec1::<f32>()?;
        let idx = bsq::indices(&z, model.config().bits);
        tokens += idx.len();
        codes.extend(idx);
        n += count;
        crops += b;
    }
    let nf = n.max(1) as f64;
    let cf = crops.max(1) as f64;
    Ok(ValMetrics {
        crops,
        l1: l1 / nf,
        rmse_db: (se / nf).sqrt() * TOP_DB / 2.0,
        persample_entropy: hps / cf,
        codebook_entropy: hcb / cf,
        unique_codes: codes.len(),
        tokens,
    })
}

#[derive(Serialize)]
struct DataRecord<'a> {
    train: Vec<&'a str>,
    val: Vec<&'a str>,
}

/// Runs (or continues) a training run; see the module documentation.
pub fn train(opts: &TrainOptions, device: &Device, observer: &dyn TrainObserver) -> Result<TrainSummary, Error> {
    let out = &opts.out;
    let mut trainer = if opts.resume {
        let t = Trainer::resume(out, None, device)?;
        if let Some(c) = &opts.config {
            if c != t.config() {
                return Err(Error::Config(format!(
                    "{}: the run was made with another configuration (resume without --config, or start a new run)",
                    out.display()
                )));
            }
        }
        t
    } else {
        let cfg = opts.config.clone().ok_or_else(|| Error::Config("a new run needs a configuration".into()))?;
        cfg.validate()?;
        if out.join("latest").exists() {
            return Err(Error::Config(format!(
                "{} already holds a run (a `latest` checkpoint): use --resume to continue it, or another folder",
                out.display()
            )));
        }
        std::fs::create_dir_all(out).map_err(|e| Error::Io(out.clone(), e))?;
        Trainer::new(cfg, device)?
    };
    let cfg = trainer.config().clone();
    write_file(&out.join("config.json"), to_json(&cfg)?.as_bytes())?;
    let ds = Dataset::prepare(&opts.data, &cfg.data, &cfg.model, cfg.seed, &out.join("features"), observer)?;
    let mut rejects = String::new();
    for r in ds.rejects() {
        rejects.push_str(&serde_json::to_string(r).map_err(|e| Error::Data(e.to_string()))?);
        rejects.push('\n');
    }
    write_file(&out.join("rejects.jsonl"), rejects.as_bytes())?;
    let record = DataRecord {
        train: ds.train_items().iter().map(|i| i.input.as_str()).collect(),
        val: ds.val_items().iter().map(|i| i.input.as_str()).collect(),
    };
    write_file(&out.join("data.json"), to_json(&record)?.as_bytes())?;
    let val_batches = ds.val_batches(device)?;

    // metrics.jsonl: cut back to the checkpoint's step on resume.
    let log_path = out.join("metrics.jsonl");
    let start = trainer.step_count();
    // The lines are kept as they were written (a float read back and printed again may differ in
    // its last digit).
    let mut log: Vec<LogLine> = Vec::new();
    let mut text = String::new();
    if opts.resume {
        for (line, parsed) in read_log_lines(&log_path)? {
            if parsed.train.step <= start {
                text.push_str(&line);
                text.push('\n');
                log.push(parsed);
            }
        }
    }
    write_file(&log_path, text.as_bytes())?;
    let mut log_file =
        std::fs::OpenOptions::new().append(true).open(&log_path).map_err(|e| Error::Io(log_path.clone(), e))?;

    let end = opts.stop_at.map_or(cfg.total_steps, |s| s.min(cfg.total_steps));
    let phase = audiotok_core::observer::Phase::begin(observer, "train", cfg.total_steps, "steps");
    phase.advance(start);
    let t0 = Instant::now();
    let mut checkpoint = None;
    for step in start + 1..=end {
        let batch = ds.train_batch(trainer.rng_mut(), device)?;
        let m = trainer.step(&batch)?;
        let last = step == cfg.total_steps;
        let rate = (step - start) as f64 / t0.elapsed().as_secs_f64().max(1e-9);
        if step % cfg.log_every == 0 || last {
            let due = last || (cfg.val_every > 0 && step % cfg.val_every == 0);
            let val =
                if due && !val_batches.is_empty() { Some(validate(trainer.model(), &val_batches)?) } else { None };
            if let Some(v) = &val {
                observer.validated(step, v);
            }
            let line = LogLine { train: m.clone(), val };
            let mut s = serde_json::to_string(&line).map_err(|e| Error::Data(e.to_string()))?;
            s.push('\n');
            log_file.write_all(s.as_bytes()).map_err(|e| Error::Io(log_path.clone(), e))?;
            log.push(line);
        }
        observer.step(&m, rate);
        phase.advance(1);
        if step % cfg.checkpoint_every == 0 || last || step == end {
            log_file.flush().map_err(|e| Error::Io(log_path.clone(), e))?;
            checkpoint = Some(trainer.save_checkpoint(out)?);
        }
    }
    drop(phase);
    let seconds = t0.elapsed().as_secs_f64();
    let steps_run = trainer.step_count() - start;
    Ok(TrainSummary {
        out: out.clone(),
        step: trainer.step_count(),
        total_steps: cfg.total_steps,
        steps_run,
        parameters: trainer.model().params().count(),
        train_clips: ds.train_items().len(),
        val_clips: ds.val_items().len(),
        rejects: ds.rejects().to_vec(),
        checkpoint,
        seconds,
        steps_per_s: steps_run as f64 / seconds.max(1e-9),
        log,
    })
}
