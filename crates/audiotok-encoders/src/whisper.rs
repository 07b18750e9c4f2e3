//! The Whisper-style encoder: the Qwen2-Audio audio tower (with its average pool, final LayerNorm
//! and the multi-modal projector) and the Whisper encoder share it.
//!
//! conv1 (kernel 3, padding 1) -> GELU -> conv2 (kernel 3, stride 2, padding 1) -> GELU -> plus the
//! stored `embed_positions` -> pre-LN layers (`k_proj` without bias, exact GELU) -> Qwen2-Audio:
//! average pool by 2 -> `layer_norm` (-> projector); Whisper: `layer_norm`.
//!
//! Qwen2-Audio masks the keys past a clip's valid frames, `(L - 1) / 2 + 1` of the 1500 for `L`
//! valid mel frames (as `Qwen2AudioModel.forward` builds the mask). The valid outputs then depend
//! only on the valid frames, which depend on mel frames `0..=L` (conv1's right neighbour of the last
//! valid frame; conv2's kernel reaches conv1 frame `2j + 1 <= L`). [`Tower::forward_mels`] with
//! `skip` computes exactly those (`L + 2` mel frames, capped at 3000) instead of all 3000 frames:
//! a 3 s clip costs a tenth of a 30 s one. `skip = false` is the full masked computation, kept to
//! prove the two equal.

use candle_core::{Device, Tensor};

use crate::config::TowerConfig;
use crate::cpu::{attention, layer_norm, load_norm, Dense, Then};
use crate::nn::{gelu, Conv1d};
use crate::weights::Loader;
use crate::{Error, Result, Tap};

/// Mel frames of a 30 s window.
pub const MEL_FRAMES: usize = 3000;

#[derive(Debug)]
struct Layer {
    ln_attn: (Vec<f32>, Vec<f32>),
    /// `q | k | v` in one product (`k_proj` has no bias: zeros).
    qkv: Dense,
    o: Dense,
    ln_ff: (Vec<f32>, Vec<f32>),
    fc1: Dense,
    fc2: Dense,
}

/// Which model the tower belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TowerKind {
    /// Qwen2-Audio: masked keys, pool by 2, final LN, optional projector.
    Qwen2Audio,
    /// Whisper: the full window, final LN.
    Whisper,
}

/// One input window: log-mel `(n_mels, 3000)` in C order, and its valid mel frames.
#[derive(Debug, Clone)]
pub struct MelWindow {
    /// The features.
    pub mel: Vec<f32>,
    /// Valid frames (the feature attention mask's ones).
    pub valid: usize,
}

/// The Whisper-style encoder.
#[derive(Debug)]
pub struct Tower {
    cfg: TowerConfig,
    kind: TowerKind,
    conv1: Conv1d,
    conv2: Conv1d,
    pos: Tensor,
    layers: Vec<Layer>,
    ln_post: (Vec<f32>, Vec<f32>),
    projector: Option<Dense>,
}

/// Valid encoder frames (before the pool) for `l` valid mel frames: `(l - 1) / 2 + 1`.
pub fn tower_frames(l: usize) -> usize {
    if l == 0 {
        0
    } else {
        (l - 1) / 2 + 1
    }
}

/// Qwen2-Audio output rows for `l` valid mel frames: `((l - 1) / 2 + 1 - 2) / 2 + 1`, i.e. the pooled valid frames.
pub fn qwen2_audio_rows(l: usize) -> usize {
    tower_frames(l) / 2
}

impl Tower {
    /// Builds the tower from `l` (names without the `audio_tower.` / `encoder.` prefix); a
    /// projector from `proj` (names `linear.*`) when given with its output width.
    pub fn new(cfg: &TowerConfig, kind: TowerKind, l: &Loader, proj: Option<(&Loader, usize)>) -> Result<Self> {
        cfg.validate()?;
        let d = cfg.d_model;
        let conv1 = Conv1d::load(l, "conv1", cfg.num_mel_bins, d, 3, 1, 1, true)?;
        let conv2 = Conv1d::load(l, "conv2", d, d, 3, 2, 1, true)?;
        let pos = l.get("embed_positions.weight", &[cfg.max_source_positions, d])?;
        let mut layers = Vec::new();
        for i in 0..cfg.encoder_layers {
            let p = format!("layers.{i}");
            let f = cfg.encoder_ffn_dim;
            let qkv = [
                Dense::load(l, &format!("{p}.self_attn.q_proj"), d, d, true)?,
                Dense::load(l, &format!("{p}.self_attn.k_proj"), d, d, false)?,
                Dense::load(l, &format!("{p}.self_attn.v_proj"), d, d, true)?,
            ];
            layers.push(Layer {
                ln_attn: load_norm(l, &format!("{p}.self_attn_layer_norm"), d)?,
                qkv: Dense::concat(&qkv),
                o: Dense::load(l, &format!("{p}.self_attn.out_proj"), d, d, true)?,
                ln_ff: load_norm(l, &format!("{p}.final_layer_norm"), d)?,
                fc1: Dense::load(l, &format!("{p}.fc1"), d, f, true)?,
                fc2: Dense::load(l, &format!("{p}.fc2"), f, d, true)?,
            });
        }
        let ln_post = load_norm(l, "layer_norm", d)?;
        let projector = match proj {
            Some((pl, out)) => Some(Dense::load(pl, "linear", d, out, true)?),
            None => None,
        };
        Ok(Tower { cfg: cfg.clone(), kind, conv1, conv2, pos, layers, ln_post, projector })
    }

    /// The configuration.
    pub fn config(&self) -> &TowerConfig {
        &self.cfg
    }

    /// Output width of a tap.
    pub fn dim(&self, tap: Tap) -> usize {
        match (tap, &self.projector) {
            (Tap::Projected, Some(p)) => p.out_dim(),
            _ => self.cfg.d_model,
        }
    }

    /// Whether a projector was loaded.
    pub fn has_projector(&self) -> bool {
        self.projector.is_some()
    }

    /// Runs windows and returns, per window, the tensors `taps` ask for: hidden states
    /// `(frames, d)` over the valid frames (Qwen2-Audio) or all 1500 (Whisper), `Final` and
    /// `Projected` over the pooled valid rows (Qwen2-Audio) or 1500 frames (Whisper). `skip`:
    /// compute only what the valid outputs need (Qwen2-Audio; Whisper always runs the full window).
    pub fn forward_mels(&self, windows: &[MelWindow], taps: &[Tap], skip: bool) -> Result<Vec<Vec<Tensor>>> {
        let n_mels = self.cfg.num_mel_bins;
        let device = Device::Cpu;
        let qwen = self.kind == TowerKind::Qwen2Audio;
        if taps.contains(&Tap::Projected) && self.projector.is_none() {
            return Err(Error::Config("--stage projected: this folder has no multi_modal_projector".into()));
        }
        let mut embeds = Vec::with_capacity(windows.len());
        let mut keys = Vec::with_capacity(windows.len());
        for (i, w) in windows.iter().enumerate() {
            if w.mel.len() != n_mels * MEL_FRAMES || w.valid > MEL_FRAMES {
                return Err(Error::Input(format!("window {i}: features are not ({n_mels}, {MEL_FRAMES})")));
            }
            if qwen && w.valid == 0 {
                return Err(Error::Input(format!("window {i}: no valid mel frame")));
            }
            let valid = if qwen { tower_frames(w.valid) } else { MEL_FRAMES / 2 };
            // Frames computed: the valid ones (and for Qwen2-Audio with skip, the mel frames they need).
            let (mel_used, rows) =
                if qwen && skip { ((w.valid + 2).min(MEL_FRAMES), valid) } else { (MEL_FRAMES, MEL_FRAMES / 2) };
            let mel = Tensor::from_slice(&w.mel, (1, n_mels, MEL_FRAMES), &device)?.narrow(2, 0, mel_used)?;
            let h = gelu(&self.conv1.forward(&mel)?)?;
            let h = gelu(&self.conv2.forward(&h)?)?;
            let h = h.squeeze(0)?.t()?.narrow(0, 0, rows)?;
            let h = (h + self.pos.narrow(0, 0, rows)?)?;
            embeds.push(h);
            keys.push(valid);
        }
        let lens: Vec<usize> = embeds.iter().map(|e| e.dim(0)).collect::<candle_core::Result<_>>()?;
        let rows: usize = lens.iter().sum();
        let d = self.cfg.d_model;
        let mut x = Tensor::cat(&embeds, 0)?.flatten_all()?.to_vec1::<f32>()?;
        drop(embeds);
        let heads = self.cfg.encoder_attention_heads;
        let mut hidden: Vec<Option<Vec<f32>>> = vec![None; self.layers.len() + 1];
        let wants = |k: usize| taps.contains(&Tap::Hidden(k));
        if wants(0) {
            hidden[0] = Some(x.clone());
        }
        for (i, layer) in self.layers.iter().enumerate() {
            let a_in = layer_norm(&x, &layer.ln_attn.0, &layer.ln_attn.1, 1e-5);
            let qkv = layer.qkv.forward(&a_in, &lens, Then::Nothing);
            drop(a_in);
            let mut ctx = Vec::with_capacity(rows * d);
            let mut off = 0;
            for (&t, &kv) in lens.iter().zip(&keys) {
                ctx.extend(attention(&qkv, d, off, t, kv, heads));
                off += t;
            }
            drop(qkv);
            // The residuals ride in the products' outputs.
            x = layer.o.forward(&ctx, &lens, Then::Add(&x));
            let h = layer_norm(&x, &layer.ln_ff.0, &layer.ln_ff.1, 1e-5);
            let f = layer.fc1.forward(&h, &lens, Then::Gelu);
            x = layer.fc2.forward(&f, &lens, Then::Add(&x));
            if wants(i + 1) {
                hidden[i + 1] = Some(x.clone());
            }
        }
        let want_final = taps.iter().any(|t| matches!(t, Tap::Final | Tap::Projected));
        let mut finals = Vec::with_capacity(lens.len());
        let mut projected = Vec::with_capacity(lens.len());
        if want_final {
            let mut off = 0;
            for (&t, &kv) in lens.iter().zip(&keys) {
                let h = &x[off * d..(off + t) * d];
                let (f, n) = if qwen {
                    let n = kv / 2;
                    let pooled: Vec<f32> = h[..2 * n * d]
                        .chunks_exact(2 * d)
                        .flat_map(|p| p[..d].iter().zip(&p[d..]).map(|(a, b)| (a + b) / 2.0))
                        .collect();
                    (layer_norm(&pooled, &self.ln_post.0, &self.ln_post.1, 1e-5), n)
                } else {
                    (layer_norm(h, &self.ln_post.0, &self.ln_post.1, 1e-5), t)
                };
                if let (Some(p), true) = (&self.projector, taps.contains(&Tap::Projected)) {
                    projected.push(Tensor::from_vec(p.forward(&f, &[n], Then::Nothing), (n, p.out_dim()), &device)?);
                }
                finals.push(Tensor::from_vec(f, (n, d), &device)?);
                off += t;
            }
        }
        let hidden: Vec<Option<Tensor>> = hidden
            .into_iter()
            .map(|h| h.map(|h| Tensor::from_vec(h, (rows, d), &device)).transpose())
            .collect::<candle_core::Result<_>>()?;
        let mut out = vec![Vec::with_capacity(taps.len()); windows.len()];
        for tap in taps {
            match tap {
                Tap::Hidden(k) => {
                    let t = hidden.get(*k).cloned().flatten().ok_or_else(|| {
                        Error::Config(format!("layer {k}: the model has {} layers", self.layers.len()))
                    })?;
                    let mut off = 0;
                    for (c, (&n, &kv)) in lens.iter().zip(&keys).enumerate() {
                        out[c].push(t.narrow(0, off, kv)?);
                        off += n;
                    }
                }
                Tap::Final => {
                    for (c, f) in finals.iter().enumerate() {
                        out[c].push(f.clone());
                    }
                }
                Tap::Projected => {
                    for (c, f) in projected.iter().enumerate() {
                        out[c].push(f.clone());
                    }
                }
            }
        }
        Ok(out)
    }
}
