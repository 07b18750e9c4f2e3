//! `audiotok bsq eval`: reconstruction and code statistics of a trained tokenizer on audio, with
//! baselines in the same report.
//!
//! Every file is encoded whole as [`crate::infer`] does (consecutive crops, the tail padded);
//! metrics are taken over the real frames only (the padding is left out). In dB (the mel-db scale,
//! `[-80, 0]`): mean absolute error, RMSE, the log-spectral distance (per frame the RMS over mel
//! bins of the dB error, averaged over frames) and the mean absolute error over the cells of the
//! input above the -80 dB floor only (the floor is where the features clip; errors there are
//! inaudible), and the L1 in the model's `[-1, 1]` scale (the training loss). Baselines:
//! - `continuous`: the same model with the quantisation skipped (the decoder fed the L2-normalised
//!   latent): the upper bound of the architecture;
//! - `untrained`: the same configuration initialised at seed 0;
//! - `mel_mean`: every frame predicted as the per-mel-bin mean (in dB) of the evaluated data
//!   itself (an oracle constant).
//!
//! Codes: tokens, distinct codes, usage (`distinct / 2^L` and `distinct / tokens`), the entropy of
//! the index distribution in bits and its perplexity `2^H`, the same per group of `g` bits, the
//! share of ones per bit (balance), and the bitrate (`L ·` tokens per second).

use std::collections::HashMap;
use std::path::PathBuf;

use audiotok_core::{path_text, Observer};
use audiotok_features::meldb::MelDb;
use candle_core::{Device, Tensor};
use serde::Serialize;

use crate::data::{self, Reject, HOP, SAMPLE_RATE, TOP_DB};
use crate::infer::{Tokenizer, Weights};
use crate::{bsq, BsqModel, Error, Mode, Params};

/// What [`evaluate`] does.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// A run folder or a checkpoint folder.
    pub model: PathBuf,
    /// Audio files, folders or manifests (as `--data` of training).
    pub data: Vec<PathBuf>,
    /// EMA or trained weights.
    pub weights: Weights,
}

/// Reconstruction error of one predictor.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Recon {
    /// Mean absolute error in the `[-1, 1]` scale.
    pub l1: f64,
    /// Mean absolute error (dB).
    pub l1_db: f64,
    /// Root mean squared error (dB).
    pub rmse_db: f64,
    /// Log-spectral distance (dB).
    pub lsd_db: f64,
    /// Mean absolute error over the cells above the -80 dB floor (dB).
    pub l1_above_floor_db: f64,
    /// Cells above the floor (share).
    pub above_floor: f64,
}

#[derive(Default)]
struct Acc {
    abs: f64,
    sq: f64,
    lsd: f64,
    above_abs: f64,
    above: u64,
    cells: u64,
    frames: u64,
}

impl Acc {
    /// Adds frames `0..keep` of `[m, t]` target and prediction (scaled values).
    fn add(&mut self, x: &[f32], y: &[f32], m: usize, t: usize, keep: usize) {
        let mut per_frame = vec![0f64; keep];
        for r in 0..m {
            for f in 0..keep {
                let xd = f64::from(data::unscale_db(x[r * t + f]));
                let yd = f64::from(data::unscale_db(y[r * t + f]));
                let d = yd - xd;
                self.abs += d.abs();
                self.sq += d * d;
                per_frame[f] += d * d;
                if xd > -TOP_DB + 1e-3 {
                    self.above_abs += d.abs();
                    self.above += 1;
                }
            }
        }
        self.lsd += per_frame.iter().map(|s| (s / m as f64).sqrt()).sum::<f64>();
        self.cells += (m * keep) as u64;
        self.frames += keep as u64;
    }

    fn finish(&self) -> Recon {
        let n = self.cells.max(1) as f64;
        Recon {
            l1: self.abs / n / (TOP_DB / 2.0),
            l1_db: self.abs / n,
            rmse_db: (self.sq / n).sqrt(),
            lsd_db: self.lsd / self.frames.max(1) as f64,
            l1_above_floor_db: if self.above > 0 { self.above_abs / self.above as f64 } else { 0.0 },
            above_floor: self.above as f64 / n,
        }
    }
}

/// Usage of a set of codes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Usage {
    /// Codebook size.
    pub codebook_size: u64,
    /// Distinct codes seen.
    pub unique: usize,
    /// `unique / codebook_size`.
    pub codebook_usage: f64,
    /// `unique / tokens`.
    pub unique_per_token: f64,
    /// Entropy of the code distribution (bits).
    pub entropy_bits: f64,
    /// `2^entropy_bits`.
    pub perplexity: f64,
}

fn usage(counts: &HashMap<u32, u64>, tokens: u64, codebook_size: u64) -> Usage {
    let n = tokens.max(1) as f64;
    let h: f64 = counts.values().map(|&c| c as f64 / n).map(|p| -p * p.log2()).sum();
    Usage {
        codebook_size,
        unique: counts.len(),
        codebook_usage: counts.len() as f64 / codebook_size as f64,
        unique_per_token: counts.len() as f64 / n,
        entropy_bits: h,
        perplexity: h.exp2(),
    }
}

/// The report of [`evaluate`].
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// The checkpoint evaluated and its weights.
    pub checkpoint: PathBuf,
    /// `ema` or `live`.
    pub weights: String,
    /// Files evaluated.
    pub files: usize,
    /// Inputs rejected, with reasons.
    pub rejects: Vec<Reject>,
    /// Feature frames evaluated (100 per second).
    pub frames: u64,
    /// The model (quantised).
    pub model: Recon,
    /// The same model, quantisation skipped.
    pub continuous: Recon,
    /// The configuration untrained (seed 0).
    pub untrained: Recon,
    /// The per-mel-bin mean of the data.
    pub mel_mean: Recon,
    /// Tokens (patches).
    pub tokens: u64,
    /// Usage of the `L`-bit codes.
    pub codes: Usage,
    /// Usage of each group of `g` bits (empty when `g = L`).
    pub groups: Vec<Usage>,
    /// Share of ones per bit, most significant first.
    pub bit_balance: Vec<f64>,
    /// Tokens per second of audio.
    pub rate_hz: f64,
    /// Bits per second.
    pub bitrate: f64,
}

fn recon_of(model: &BsqModel, x: &Tensor, quantise: bool) -> Result<(Vec<f32>, Vec<f32>), Error> {
    let z = model.encode_latent(x, Mode::Eval)?.detach();
    let zq = if quantise { bsq::quantize(&z, model.config())?.zq.detach() } else { z.clone() };
    let y = model.decode_latent(&zq, Mode::Eval)?.detach();
    Ok((y.flatten_all()?.to_vec1::<f32>()?, z.flatten_all()?.to_vec1::<f32>()?))
}

/// Evaluates a tokenizer (see the module documentation). Progress: the phase `eval`, in files.
pub fn evaluate(opts: &EvalOptions, device: &Device, observer: &dyn Observer) -> Result<EvalReport, Error> {
    let tok = Tokenizer::load(&opts.model, opts.weights, device)?;
    let cfg = tok.config().clone();
    let untrained = BsqModel::new(&cfg, Params::init(&cfg, 0, device)?)?;
    let (clips, mut rejects) = data::gather(&opts.data)?;
    let (m, crop) = (cfg.n_mels, cfg.crop_frames);
    let mut mel = MelDb::new(data::meldb_config(m));
    let silence = data::DataConfig::default().silence_dbfs;
    let (mut acc_q, mut acc_c, mut acc_u) = (Acc::default(), Acc::default(), Acc::default());
    let mut feats_all: Vec<(usize, Vec<f32>)> = Vec::new();
    let mut counts: HashMap<u32, u64> = HashMap::new();
    let groups = if cfg.group_size < cfg.bits { cfg.groups() } else { 0 };
    let mut group_counts: Vec<HashMap<u32, u64>> = vec![HashMap::new(); groups];
    let mut ones = vec![0u64; cfg.bits];
    let mut tokens = 0u64;
    let mut files = 0;
    let phase = audiotok_core::observer::Phase::begin(observer, "eval", clips.len() as u64, "files");
    for clip in &clips {
        match data::clip_features(&mut mel, &clip.path, silence) {
            Err(reason) => rejects.push(Reject { input: path_text(&clip.path), reason }),
            Ok((_, frames, feats)) => {
                let mut start = 0;
                while start < frames {
                    let keep = (frames - start).min(crop);
                    let t = keep.div_ceil(cfg.time_patch) * cfg.time_patch;
                    let xs = data::take_crop(&feats, m, frames, start, t);
                    let x = Tensor::from_vec(xs.clone(), (1, m, t), device)?;
                    let (yq, z) = recon_of(tok.model(), &x, true)?;
                    let (yc, _) = recon_of(tok.model(), &x, false)?;
                    let (yu, _) = recon_of(&untrained, &x, true)?;
                    acc_q.add(&xs, &yq, m, t, keep);
                    acc_c.add(&xs, &yc, m, t, keep);
                    acc_u.add(&xs, &yu, m, t, keep);
                    let idx = bsq::indices(&z, cfg.bits);
                    for &i in &idx {
                        *counts.entry(i).or_default() += 1;
                        for (d, o) in ones.iter_mut().enumerate() {
                            *o += u64::from((i >> (cfg.bits - 1 - d)) & 1);
                        }
                    }
                    if groups > 0 {
                        let g = bsq::group_indices(&z, cfg.group_size);
                        for (k, &gi) in g.iter().enumerate() {
                            *group_counts[k % groups].entry(gi).or_default() += 1;
                        }
                    }
                    tokens += idx.len() as u64;
                    start += crop;
                }
                feats_all.push((frames, feats));
                files += 1;
            }
        }
        phase.advance(1);
    }
    drop(phase);
    if files == 0 {
        return Err(Error::Data(format!("no usable audio to evaluate ({} inputs rejected)", rejects.len())));
    }
    // The per-mel-bin mean (dB) of every frame evaluated.
    let mut sum = vec![0f64; m];
    let mut n = 0usize;
    for (frames, f) in &feats_all {
        for (r, s) in sum.iter_mut().enumerate() {
            *s += f[r * frames..(r + 1) * frames].iter().map(|&v| f64::from(data::unscale_db(v))).sum::<f64>();
        }
        n += frames;
    }
    let mean: Vec<f32> = sum.iter().map(|s| data::scale_db((s / n as f64) as f32)).collect();
    let mut acc_m = Acc::default();
    for (frames, f) in &feats_all {
        let pred: Vec<f32> = (0..m * frames).map(|k| mean[k / frames]).collect();
        acc_m.add(f, &pred, m, *frames, *frames);
    }
    let rate = cfg.freq_patches() as f64 * f64::from(SAMPLE_RATE) / HOP as f64 / cfg.time_patch as f64;
    let bits_size = if cfg.bits >= 64 { u64::MAX } else { 1u64 << cfg.bits };
    Ok(EvalReport {
        checkpoint: tok.checkpoint().to_path_buf(),
        weights: tok.weights().to_string(),
        files,
        rejects,
        frames: acc_q.frames,
        model: acc_q.finish(),
        continuous: acc_c.finish(),
        untrained: acc_u.finish(),
        mel_mean: acc_m.finish(),
        tokens,
        codes: usage(&counts, tokens, bits_size),
        groups: group_counts.iter().map(|c| usage(c, tokens, 1u64 << cfg.group_size)).collect(),
        bit_balance: ones.iter().map(|&o| o as f64 / tokens.max(1) as f64).collect(),
        rate_hz: rate,
        bitrate: rate * cfg.bits as f64,
    })
}
