//! Training pieces candle lacks or keeps private: AdamW whose state can be saved, the learning-rate
//! schedule (linear warm-up, then cosine decay to a floor), gradient clipping by global norm, and an
//! exponential moving average of the weights.

use std::collections::{BTreeMap, HashMap};

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::Error;

/// Optimiser hyper-parameters (part of the training configuration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimConfig {
    /// Peak learning rate.
    pub lr: f64,
    /// Learning rate at the end of the cosine, as a fraction of `lr`.
    pub min_lr_ratio: f64,
    /// Steps of linear warm-up (step `s ≤ warmup_steps` uses `lr · s / warmup_steps`).
    pub warmup_steps: u64,
    /// Adam's `β1`.
    pub beta1: f64,
    /// Adam's `β2`.
    pub beta2: f64,
    /// Adam's `ε`.
    pub eps: f64,
    /// Decoupled weight decay, applied to matrices and kernels only (see [`decays`]).
    pub weight_decay: f64,
    /// Clip the gradients' global L2 norm to this (`None`: no clipping).
    pub grad_clip: Option<f64>,
    /// EMA decay of the weights (`None`: no EMA).
    pub ema_decay: Option<f64>,
}

impl Default for OptimConfig {
    fn default() -> Self {
        OptimConfig {
            lr: 1e-4,
            min_lr_ratio: 0.1,
            warmup_steps: 1000,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.05,
            grad_clip: Some(1.0),
            ema_decay: Some(0.999),
        }
    }
}

impl OptimConfig {
    /// Checks the ranges; the message names the field.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |m: String| Err(Error::Config(m));
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("lr {} must be positive", self.lr));
        }
        if !(0.0..=1.0).contains(&self.min_lr_ratio) {
            return bad(format!("min_lr_ratio {} must be in [0, 1]", self.min_lr_ratio));
        }
        for (n, b) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return bad(format!("{n} {b} must be in [0, 1)"));
            }
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return bad(format!("eps {} must be positive", self.eps));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(format!("weight_decay {} must not be negative", self.weight_decay));
        }
        if let Some(c) = self.grad_clip {
            if !(c.is_finite() && c > 0.0) {
                return bad(format!("grad_clip {c} must be positive"));
            }
        }
        if let Some(d) = self.ema_decay {
            if !(0.0..1.0).contains(&d) {
                return bad(format!("ema_decay {d} must be in [0, 1)"));
            }
        }
        Ok(())
    }

    /// The learning rate of update number `step` (1-based) out of `total_steps`: linear warm-up to
    /// `lr`, then half a cosine down to `lr · min_lr_ratio` at `total_steps`.
    pub fn lr_at(&self, step: u64, total_steps: u64) -> f64 {
        if step <= self.warmup_steps {
            return self.lr * step as f64 / self.warmup_steps.max(1) as f64;
        }
        let span = total_steps.saturating_sub(self.warmup_steps).max(1) as f64;
        let progress = ((step - self.warmup_steps) as f64 / span).min(1.0);
        let floor = self.lr * self.min_lr_ratio;
        floor + (self.lr - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
    }
}

/// Whether a tensor takes weight decay: names ending in `.weight` of rank ≥ 2 (linear matrices,
/// convolution kernels); not biases, norms or positional tables.
pub fn decays(name: &str, var: &Var) -> bool {
    name.ends_with(".weight") && var.rank() >= 2
}

/// The gradients of `vars` found in `store`, by name (variables without one are left out).
pub fn grads_by_name(store: &GradStore, vars: &BTreeMap<String, Var>) -> BTreeMap<String, Tensor> {
    vars.iter().filter_map(|(k, v)| store.get(v).map(|g| (k.clone(), g.clone()))).collect()
}

/// Scales `grads` so that their global L2 norm is at most `max_norm` (as
/// `torch.nn.utils.clip_grad_norm_`: factor `max_norm / (norm + 1e-6)` when below 1); returns the norm
/// before clipping.
pub fn clip_grad_norm(grads: &mut BTreeMap<String, Tensor>, max_norm: Option<f64>) -> Result<f64, Error> {
    let mut sq = 0f64;
    for g in grads.values() {
        sq += g.sqr()?.sum_all()?.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
    }
    let norm = sq.sqrt();
    if let Some(max) = max_norm {
        let coef = max / (norm + 1e-6);
        if coef < 1.0 {
            for g in grads.values_mut() {
                *g = (&*g * coef)?;
            }
        }
    }
    Ok(norm)
}

/// AdamW (PyTorch's `torch.optim.AdamW` update) with its state in the open, for checkpoints.
#[derive(Debug, Clone)]
pub struct AdamW {
    cfg: OptimConfig,
    /// Updates done so far.
    step: u64,
    m: BTreeMap<String, Tensor>,
    v: BTreeMap<String, Tensor>,
}

impl AdamW {
    /// A fresh optimiser (no moments yet).
    pub fn new(cfg: OptimConfig) -> Result<AdamW, Error> {
        cfg.validate()?;
        Ok(AdamW { cfg, step: 0, m: BTreeMap::new(), v: BTreeMap::new() })
    }

    /// Updates done so far.
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &OptimConfig {
        &self.cfg
    }

    /// One update of every variable with a gradient in `grads` (by name), at learning rate `lr`.
    pub fn step(
        &mut self,
        vars: &BTreeMap<String, Var>,
        grads: &BTreeMap<String, Tensor>,
        lr: f64,
    ) -> Result<(), Error> {
        self.step += 1;
        let c = &self.cfg;
        let t = self.step as i32;
        let bc1 = 1.0 - c.beta1.powi(t);
        let bc2_sqrt = (1.0 - c.beta2.powi(t)).sqrt();
        for (name, var) in vars {
            let Some(g) = grads.get(name) else { continue };
            let m = match self.m.get(name) {
                Some(m) => ((m * c.beta1)? + (g * (1.0 - c.beta1))?)?,
                None => (g * (1.0 - c.beta1))?,
            };
            let v = match self.v.get(name) {
                Some(v) => ((v * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?,
                None => (g.sqr()? * (1.0 - c.beta2))?,
            };
            let mut p = var.as_tensor().detach();
            if c.weight_decay > 0.0 && decays(name, var) {
                p = (p * (1.0 - lr * c.weight_decay))?;
            }
            let denom = ((v.sqrt()? / bc2_sqrt)? + c.eps)?;
            let p = (p - (m.div(&denom)? * (lr / bc1))?)?;
            var.set(&p)?;
            self.m.insert(name.clone(), m);
            self.v.insert(name.clone(), v);
        }
        Ok(())
    }

    /// The moments as named tensors (`m.NAME`, `v.NAME`), for a safetensors file.
    pub fn state_tensors(&self) -> HashMap<String, Tensor> {
        let m = self.m.iter().map(|(k, t)| (format!("m.{k}"), t.clone()));
        m.chain(self.v.iter().map(|(k, t)| (format!("v.{k}"), t.clone()))).collect()
    }

    /// An optimiser restored from [`state_tensors`](Self::state_tensors) and the step count; every
    /// moment must belong to one of `vars` and have its shape.
    pub fn from_state(
        cfg: OptimConfig,
        step: u64,
        mut tensors: HashMap<String, Tensor>,
        vars: &BTreeMap<String, Var>,
        source: &str,
    ) -> Result<AdamW, Error> {
        let mut opt = AdamW::new(cfg)?;
        opt.step = step;
        let mut bad = Vec::new();
        for (name, var) in vars {
            for (prefix, map) in [("m", &mut opt.m), ("v", &mut opt.v)] {
                if let Some(t) = tensors.remove(&format!("{prefix}.{name}")) {
                    if t.dims() != var.dims() {
                        bad.push(format!("{prefix}.{name} (model {:?}, file {:?})", var.dims(), t.dims()));
                    } else {
                        map.insert(name.clone(), t.to_device(var.device())?);
                    }
                }
            }
        }
        let mut extra: Vec<String> = tensors.into_keys().collect();
        extra.sort();
        bad.extend(extra.into_iter().map(|k| format!("{k} (no such parameter)")));
        if !bad.is_empty() {
            return Err(Error::Weights(source.into(), format!("optimiser state does not fit: {}", bad.join(", "))));
        }
        Ok(opt)
    }
}

/// Exponential moving average of the weights: `ema ← d·ema + (1−d)·p` after every update; buffers
/// (BatchNorm running statistics) are copied.
#[derive(Debug, Clone)]
pub struct Ema {
    decay: f64,
    tensors: BTreeMap<String, Tensor>,
}

impl Ema {
    /// Starts from a copy of the current weights.
    pub fn new(decay: f64, params: &crate::Params) -> Result<Ema, Error> {
        let tensors = params.tensors().into_iter().map(|(k, t)| Ok((k, t.copy()?))).collect::<Result<_, Error>>()?;
        Ok(Ema { decay, tensors })
    }

    /// Restores saved averages.
    pub fn from_tensors(decay: f64, tensors: BTreeMap<String, Tensor>) -> Ema {
        Ema { decay, tensors }
    }

    /// Folds the current weights in.
    pub fn update(&mut self, params: &crate::Params) -> Result<(), Error> {
        for (name, var) in params.trainable() {
            if let Some(e) = self.tensors.get_mut(name) {
                *e = ((&*e * self.decay)? + (var.as_tensor().detach() * (1.0 - self.decay))?)?;
            }
        }
        for (name, var) in params.buffers() {
            self.tensors.insert(name.clone(), var.as_tensor().copy()?);
        }
        Ok(())
    }

    /// The averaged tensors by name.
    pub fn tensors(&self) -> &BTreeMap<String, Tensor> {
        &self.tensors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays_to_the_floor() {
        let c = OptimConfig { lr: 1.0, min_lr_ratio: 0.1, warmup_steps: 10, ..OptimConfig::default() };
        assert_eq!(c.lr_at(1, 100), 0.1);
        assert_eq!(c.lr_at(10, 100), 1.0);
        assert!((c.lr_at(55, 100) - 0.55).abs() < 1e-12);
        assert!((c.lr_at(100, 100) - 0.1).abs() < 1e-12);
        assert!((c.lr_at(150, 100) - 0.1).abs() < 1e-12);
        assert!(c.lr_at(30, 100) > c.lr_at(31, 100));
    }

    #[test]
    fn bad_hyper_parameters_name_the_field() {
        let e = AdamW::new(OptimConfig { beta2: 1.0, ..OptimConfig::default() }).unwrap_err().to_string();
        assert!(e.contains("beta2 1 must be in [0, 1)"), "{e}");
        let e = AdamW::new(OptimConfig { grad_clip: Some(0.0), ..OptimConfig::default() }).unwrap_err().to_string();
        assert!(e.contains("grad_clip"), "{e}");
    }
}
