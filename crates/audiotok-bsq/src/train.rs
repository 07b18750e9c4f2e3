//! One training step (forward, loss, backward, clipping, AdamW, EMA) and checkpoints that resume
//! exactly.
//!
//! A checkpoint is a folder `RUN_DIR/checkpoints/step-NNNNNNNN/` holding `weights.safetensors`
//! (trainable tensors and BatchNorm buffers), `ema.safetensors`, `optimizer.safetensors` (AdamW's
//! moments), `config.json` (the model configuration) and `state.json` (format, step, the whole
//! training configuration, the random generator's state). It is written into a temporary folder that
//! is renamed into place, after which `RUN_DIR/latest` (written atomically) names it; a failure at any
//! point (a full disk) leaves the previous checkpoint and `latest` as they were.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::optim::{clip_grad_norm, grads_by_name, AdamW, Ema, OptimConfig};
use crate::{BsqModel, Config, Error, Mode, Params, ReconLoss, Rng};

/// The checkpoint format this crate writes and reads.
pub const CHECKPOINT_FORMAT: &str = "audiotok-bsq-checkpoint/1";

/// Everything that defines a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// The model.
    pub model: Config,
    /// The optimiser and schedule.
    pub optim: OptimConfig,
    /// Updates in the whole run (the cosine ends here).
    pub total_steps: u64,
    /// Spectrogram loss.
    pub recon_loss: ReconLoss,
    /// Weight of the BSQ loss.
    pub bsq_weight: f64,
    /// The BSQ weight starts `bsq_rampup_multiplier` times larger and reaches its value at
    /// `bsq_rampup_steps` (bsq-vit's codebook ramp-up: `w · (r + m·(1 − r))`, `r = min(step, S)/S`).
    pub bsq_rampup_multiplier: f64,
    /// Steps of that ramp (0: none).
    pub bsq_rampup_steps: u64,
    /// A checkpoint every this many steps (and at the end).
    pub checkpoint_every: u64,
    /// Checkpoints kept (older ones are removed after a new one is in place).
    pub keep_checkpoints: usize,
    /// Seed of the initialisation and of the data order.
    pub seed: u64,
    /// Crops, augmentation and validation split.
    pub data: crate::DataConfig,
    /// A line of `metrics.jsonl` every this many steps (and at the last).
    pub log_every: u64,
    /// Validation every this many steps (and at the last; 0: only at the last).
    pub val_every: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            model: Config::default(),
            optim: OptimConfig::default(),
            total_steps: 10_000,
            recon_loss: ReconLoss::L1,
            bsq_weight: 0.1,
            bsq_rampup_multiplier: 1.0,
            bsq_rampup_steps: 0,
            checkpoint_every: 1000,
            keep_checkpoints: 2,
            seed: 0,
            data: crate::DataConfig::default(),
            log_every: 10,
            val_every: 100,
        }
    }
}

impl TrainConfig {
    /// Checks the model, the optimiser and the run fields.
    pub fn validate(&self) -> Result<(), Error> {
        self.model.validate()?;
        self.optim.validate()?;
        self.data.validate(&self.model)?;
        if self.log_every == 0 {
            return Err(Error::Config("log_every must be positive".into()));
        }
        if self.total_steps == 0 {
            return Err(Error::Config("total_steps must be positive".into()));
        }
        if self.checkpoint_every == 0 || self.keep_checkpoints == 0 {
            return Err(Error::Config("checkpoint_every and keep_checkpoints must be positive".into()));
        }
        for (n, v) in [("bsq_weight", self.bsq_weight), ("bsq_rampup_multiplier", self.bsq_rampup_multiplier)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::Config(format!("{n} {v} must be finite and not negative")));
            }
        }
        Ok(())
    }

    /// The BSQ loss weight at update `step` (1-based).
    pub fn bsq_weight_at(&self, step: u64) -> f64 {
        if self.bsq_rampup_steps == 0 {
            return self.bsq_weight;
        }
        let r = step.min(self.bsq_rampup_steps) as f64 / self.bsq_rampup_steps as f64;
        self.bsq_weight * (r + self.bsq_rampup_multiplier * (1.0 - r))
    }
}

/// What one update measured (one line of `metrics.jsonl`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepMetrics {
    /// The update's number (1-based).
    pub step: u64,
    /// Learning rate used.
    pub lr: f64,
    /// Total loss.
    pub loss: f64,
    /// Spectrogram loss.
    pub recon: f64,
    /// Commitment term.
    pub commit: f64,
    /// Per-sample entropy.
    pub persample_entropy: f64,
    /// Codebook entropy.
    pub codebook_entropy: f64,
    /// The BSQ loss (before its weight).
    pub bsq_loss: f64,
    /// The BSQ weight used.
    pub bsq_weight: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
}

#[derive(Debug, Serialize, Deserialize)]
struct State {
    format: String,
    step: u64,
    train: TrainConfig,
    rng: Rng,
}

/// A model in training: parameters, optimiser, EMA and the run's random generator.
pub struct Trainer {
    cfg: TrainConfig,
    model: BsqModel,
    opt: AdamW,
    ema: Option<Ema>,
    rng: Rng,
}

fn scalar(t: &Tensor) -> Result<f64, Error> {
    Ok(t.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?)
}

impl Trainer {
    /// A fresh run: parameters initialised from `cfg.seed`.
    pub fn new(cfg: TrainConfig, device: &Device) -> Result<Trainer, Error> {
        cfg.validate()?;
        let params = Params::init(&cfg.model, cfg.seed, device)?;
        let ema = cfg.optim.ema_decay.map(|d| Ema::new(d, &params)).transpose()?;
        let model = BsqModel::new(&cfg.model, params)?;
        let opt = AdamW::new(cfg.optim.clone())?;
        // The data stream's generator is distinct from the initialisation's.
        let rng = Rng::new(cfg.seed ^ 0x5eed_da7a);
        Ok(Trainer { cfg, model, opt, ema, rng })
    }

    /// The model (sharing the parameters being trained).
    pub fn model(&self) -> &BsqModel {
        &self.model
    }

    /// Updates done.
    pub fn step_count(&self) -> u64 {
        self.opt.step_count()
    }

    /// The run's configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    /// The run's random generator (crops, masks, order), saved in every checkpoint.
    pub fn rng_mut(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// One update on `batch` (`[B, n_mels, T]` in `[-1, 1]`). A loss or gradient that is not finite
    /// stops with [`Error::NonFinite`] before anything is changed.
    pub fn step(&mut self, batch: &Tensor) -> Result<StepMetrics, Error> {
        let step = self.opt.step_count() + 1;
        let bsq_weight = self.cfg.bsq_weight_at(step);
        // BatchNorm running statistics move in the forward; keep them to undo a non-finite step.
        let saved: Vec<(candle_core::Var, Tensor)> = self
            .model
            .params()
            .buffers()
            .values()
            .map(|v| Ok((v.clone(), v.as_tensor().copy()?)))
            .collect::<Result<_, Error>>()?;
        let fwd = self.model.forward(batch, Mode::Train)?;
        let losses = self.model.losses(batch, &fwd, self.cfg.recon_loss, bsq_weight)?;
        let loss = scalar(&losses.total)?;
        let store = losses.total.backward()?;
        let mut grads = grads_by_name(&store, self.model.params().trainable());
        let grad_norm = clip_grad_norm(&mut grads, self.cfg.optim.grad_clip)?;
        if !loss.is_finite() || !grad_norm.is_finite() {
            for (v, t) in saved {
                v.set(&t)?;
            }
            let what = if loss.is_finite() { "gradient norm" } else { "loss" };
            return Err(Error::NonFinite { step, what: what.into() });
        }
        let lr = self.cfg.optim.lr_at(step, self.cfg.total_steps);
        self.opt.step(self.model.params().trainable(), &grads, lr)?;
        if let Some(ema) = &mut self.ema {
            ema.update(self.model.params())?;
        }
        let q = &fwd.quant;
        Ok(StepMetrics {
            step,
            lr,
            loss,
            recon: scalar(&losses.recon)?,
            commit: scalar(&q.commit)?,
            persample_entropy: scalar(&q.persample_entropy)?,
            codebook_entropy: scalar(&q.codebook_entropy)?,
            bsq_loss: scalar(&q.loss)?,
            bsq_weight,
            grad_norm,
        })
    }

    /// Writes a checkpoint of the current step under `run_dir` as the module says; returns its folder.
    pub fn save_checkpoint(&self, run_dir: &Path) -> Result<PathBuf, Error> {
        let root = run_dir.join("checkpoints");
        std::fs::create_dir_all(&root).map_err(|e| Error::Io(root.clone(), e))?;
        let name = format!("step-{:08}", self.step_count());
        let dest = root.join(&name);
        let tmp = root.join(format!(".{name}.tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let written = (|| -> Result<(), Error> {
            std::fs::create_dir(&tmp).map_err(|e| Error::Io(tmp.clone(), e))?;
            self.model.params().save(&tmp.join("weights.safetensors"))?;
            if let Some(ema) = &self.ema {
                let map: HashMap<String, Tensor> = ema.tensors().iter().map(|(k, t)| (k.clone(), t.clone())).collect();
                write_bytes(&tmp.join("ema.safetensors"), &crate::params::safetensors_bytes(&map)?)?;
            }
            write_bytes(
                &tmp.join("optimizer.safetensors"),
                &crate::params::safetensors_bytes(&self.opt.state_tensors())?,
            )?;
            write_bytes(&tmp.join("config.json"), to_json(&self.cfg.model)?.as_bytes())?;
            let state = State {
                format: CHECKPOINT_FORMAT.into(),
                step: self.step_count(),
                train: self.cfg.clone(),
                rng: self.rng.clone(),
            };
            write_bytes(&tmp.join("state.json"), to_json(&state)?.as_bytes())?;
            if dest.exists() {
                std::fs::remove_dir_all(&dest).map_err(|e| Error::Io(dest.clone(), e))?;
            }
            std::fs::rename(&tmp, &dest).map_err(|e| Error::Io(dest.clone(), e))?;
            Ok(())
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        let mut latest = audiotok_core::atomic::AtomicFile::replace(&run_dir.join("latest"))?;
        latest.write_all(format!("{name}\n").as_bytes())?;
        latest.commit(true)?;
        // Older checkpoints beyond the ones kept.
        let mut all: Vec<String> = std::fs::read_dir(&root)
            .map_err(|e| Error::Io(root.clone(), e))?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("step-"))
            .collect();
        all.sort();
        let drop = all.len().saturating_sub(self.cfg.keep_checkpoints);
        for old in all.into_iter().take(drop) {
            let _ = std::fs::remove_dir_all(root.join(old));
        }
        Ok(dest)
    }

    /// Continues the run in `run_dir` from the checkpoint `latest` names (or from `checkpoint`, a
    /// checkpoint folder): weights, EMA, optimiser, step and random state as they were saved.
    pub fn resume(run_dir: &Path, checkpoint: Option<&Path>, device: &Device) -> Result<Trainer, Error> {
        let dir = match checkpoint {
            Some(c) => c.to_path_buf(),
            None => {
                let latest = run_dir.join("latest");
                let name = std::fs::read_to_string(&latest).map_err(|e| Error::Io(latest.clone(), e))?;
                run_dir.join("checkpoints").join(name.trim())
            }
        };
        let state_path = dir.join("state.json");
        let text = std::fs::read_to_string(&state_path).map_err(|e| Error::Io(state_path.clone(), e))?;
        let state: State = serde_json::from_str(&text)
            .map_err(|e| Error::Weights(state_path.clone(), format!("bad checkpoint state: {e}")))?;
        if state.format != CHECKPOINT_FORMAT {
            return Err(Error::Weights(
                state_path,
                format!("format {:?}, expected {CHECKPOINT_FORMAT:?}", state.format),
            ));
        }
        state.train.validate()?;
        let cfg = state.train;
        let params = Params::load(&cfg.model, &dir.join("weights.safetensors"), device)?;
        let ema = match cfg.optim.ema_decay {
            Some(d) => {
                let path = dir.join("ema.safetensors");
                let ema_params = Params::load(&cfg.model, &path, device)?;
                Some(Ema::from_tensors(d, ema_params.tensors()))
            }
            None => None,
        };
        let opt_path = dir.join("optimizer.safetensors");
        let bytes = std::fs::read(&opt_path).map_err(|e| Error::Io(opt_path.clone(), e))?;
        let tensors = candle_core::safetensors::load_buffer(&bytes, device)
            .map_err(|e| Error::Weights(opt_path.clone(), e.to_string()))?;
        let opt = AdamW::from_state(
            cfg.optim.clone(),
            state.step,
            tensors,
            params.trainable(),
            &opt_path.display().to_string(),
        )?;
        let model = BsqModel::new(&cfg.model, params)?;
        Ok(Trainer { cfg, model, opt, ema, rng: state.rng })
    }

    /// The EMA weights by name, if the run keeps them.
    pub fn ema_tensors(&self) -> Option<&BTreeMap<String, Tensor>> {
        self.ema.as_ref().map(|e| e.tensors())
    }
}

fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let mut f = audiotok_core::atomic::AtomicFile::replace(path)?;
    f.write_all(bytes)?;
    f.commit(true)?;
    Ok(())
}

fn to_json<T: Serialize>(v: &T) -> Result<String, Error> {
    serde_json::to_string_pretty(v).map_err(|e| Error::Config(e.to_string()))
}
