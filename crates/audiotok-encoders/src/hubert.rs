//! HuBERT and wav2vec2 (transformers' `HubertModel` / `Wav2Vec2Model`, inference).
//!
//! Feature extractor: seven convolutions with exact GELU, the first followed by a GroupNorm with
//! one group per channel (`feat_extract_norm = "group"`) or every one by a LayerNorm over channels
//! (`"layer"`); the feature projection (LayerNorm, then Linear); the positional convolution
//! (kernel `num_conv_pos_embeddings`, padding half of it, `num_conv_pos_embedding_groups` groups,
//! the last frame dropped for an even kernel, GELU) added to its input; then post-LN layers with a
//! LayerNorm before them (`do_stable_layer_norm = false`) or pre-LN layers with the final
//! `encoder.layer_norm` after them (`true`).
//!
//! Clips of a batch never mix: every convolution, the conv-0 GroupNorm (statistics over the clip's
//! own frames: the masked GroupNorm that transformers' padded batches lack) and attention run per
//! clip on its own frames, so a batch gives one clip's numbers.

use candle_core::{DType, Device, Tensor};

use crate::config::Wav2Vec2Config;
use crate::nn::{attention, channel_norm_tm, gelu, Conv1d, LayerNorm, Linear, TimeConv};
use crate::weights::Loader;
use crate::{Error, Result, Tap};

#[derive(Debug)]
enum ConvNorm {
    None,
    Group(Tensor, Tensor),
    Layer(LayerNorm),
}

#[derive(Debug)]
struct ConvLayer {
    conv: TimeConv,
    norm: ConvNorm,
}

#[derive(Debug)]
struct EncoderLayer {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    ln_attn: LayerNorm,
    ff_in: Linear,
    ff_out: Linear,
    ln_ff: LayerNorm,
}

/// A HuBERT / wav2vec2 encoder.
#[derive(Debug)]
pub struct Wav2Vec2 {
    cfg: Wav2Vec2Config,
    convs: Vec<ConvLayer>,
    proj_ln: Option<LayerNorm>,
    proj: Linear,
    /// BatchNorm before the positional conv, folded to a per-channel scale and shift `(d, 1)`.
    pos_bn: Option<(Tensor, Tensor)>,
    pos_conv: Conv1d,
    enc_ln: LayerNorm,
    layers: Vec<EncoderLayer>,
}

/// `weight = v * g / ||v||` with the norm over every axis but `dim` (torch's `weight_norm(dim=2)`
/// of the positional conv: one scale per kernel tap), in f64.
fn fold_weight_norm(g: &Tensor, v: &Tensor, dim: usize) -> Result<Tensor> {
    let v64 = v.to_dtype(DType::F64)?;
    let mut axes: Vec<usize> = (0..v.rank()).filter(|&a| a != dim).collect();
    axes.sort_unstable();
    let mut n = v64.sqr()?;
    for &a in axes.iter().rev() {
        n = n.sum_keepdim(a)?;
    }
    let w = v64.broadcast_mul(&g.to_dtype(DType::F64)?.broadcast_div(&n.sqrt()?)?)?;
    Ok(w.to_dtype(DType::F32)?)
}

impl Wav2Vec2 {
    /// Builds the model from `l` (tensor names without the `hubert.` / `wav2vec2.` prefix).
    pub fn new(cfg: &Wav2Vec2Config, l: &Loader) -> Result<Self> {
        cfg.validate()?;
        let h = cfg.hidden_size;
        let mut convs = Vec::new();
        let mut inp = 1;
        for (i, ((&out, &k), &s)) in cfg.conv_dim.iter().zip(&cfg.conv_kernel).zip(&cfg.conv_stride).enumerate() {
            let name = format!("feature_extractor.conv_layers.{i}");
            let conv = TimeConv::load(l, &format!("{name}.conv"), inp, out, k, s, cfg.conv_bias)?;
            let norm = match (cfg.feat_extract_norm.as_str(), i) {
                ("layer", _) => ConvNorm::Layer(LayerNorm::load(l, &format!("{name}.layer_norm"), out, 1e-5)?),
                ("group", 0) => ConvNorm::Group(
                    l.get(&format!("{name}.layer_norm.weight"), &[out])?,
                    l.get(&format!("{name}.layer_norm.bias"), &[out])?,
                ),
                _ => ConvNorm::None,
            };
            convs.push(ConvLayer { conv, norm });
            inp = out;
        }
        let c = inp;
        let proj_ln = if cfg.feat_proj_layer_norm {
            Some(LayerNorm::load(l, "feature_projection.layer_norm", c, cfg.layer_norm_eps)?)
        } else {
            None
        };
        let proj = Linear::load(l, "feature_projection.projection", c, h, true)?;
        let k = cfg.num_conv_pos_embeddings;
        let g = cfg.num_conv_pos_embedding_groups;
        let base = "encoder.pos_conv_embed";
        let wshape = [h, h / g, k];
        let (pos_w, pos_bn) = if cfg.conv_pos_batch_norm {
            let w = l.get(&format!("{base}.conv.weight"), &wshape)?;
            let gamma = l.get(&format!("{base}.batch_norm.weight"), &[h])?;
            let beta = l.get(&format!("{base}.batch_norm.bias"), &[h])?;
            let mean = l.get(&format!("{base}.batch_norm.running_mean"), &[h])?;
            let var = l.get(&format!("{base}.batch_norm.running_var"), &[h])?;
            l.skip(&format!("{base}.batch_norm.num_batches_tracked"));
            let scale = gamma.broadcast_div(&(var + 1e-5)?.sqrt()?)?;
            let shift = (beta - mean.mul(&scale)?)?;
            (w, Some((scale.reshape((h, 1))?, shift.reshape((h, 1))?)))
        } else {
            let legacy = l.has(&format!("{base}.conv.weight_g"));
            let (gn, vn) = if legacy {
                (format!("{base}.conv.weight_g"), format!("{base}.conv.weight_v"))
            } else {
                (
                    format!("{base}.conv.parametrizations.weight.original0"),
                    format!("{base}.conv.parametrizations.weight.original1"),
                )
            };
            let gt = l.get(&gn, &[1, 1, k])?;
            let vt = l.get(&vn, &wshape)?;
            (fold_weight_norm(&gt, &vt, 2)?, None)
        };
        let pos_b = l.get(&format!("{base}.conv.bias"), &[h])?;
        let pos_conv = Conv1d::from_parts(pos_w, Some(pos_b), 1, k / 2, g);
        let eps = cfg.layer_norm_eps;
        let enc_ln = LayerNorm::load(l, "encoder.layer_norm", h, eps)?;
        let mut layers = Vec::new();
        for i in 0..cfg.num_hidden_layers {
            let p = format!("encoder.layers.{i}");
            let ff = cfg.intermediate_size;
            layers.push(EncoderLayer {
                q: Linear::load(l, &format!("{p}.attention.q_proj"), h, h, true)?,
                k: Linear::load(l, &format!("{p}.attention.k_proj"), h, h, true)?,
                v: Linear::load(l, &format!("{p}.attention.v_proj"), h, h, true)?,
                o: Linear::load(l, &format!("{p}.attention.out_proj"), h, h, true)?,
                ln_attn: LayerNorm::load(l, &format!("{p}.layer_norm"), h, eps)?,
                ff_in: Linear::load(l, &format!("{p}.feed_forward.intermediate_dense"), h, ff, true)?,
                ff_out: Linear::load(l, &format!("{p}.feed_forward.output_dense"), ff, h, true)?,
                ln_ff: LayerNorm::load(l, &format!("{p}.final_layer_norm"), h, eps)?,
            });
        }
        // Used only in training (masked prediction).
        l.skip("masked_spec_embed");
        Ok(Wav2Vec2 { cfg: cfg.clone(), convs, proj_ln, proj, pos_bn, pos_conv, enc_ln, layers })
    }

    /// The configuration.
    pub fn config(&self) -> &Wav2Vec2Config {
        &self.cfg
    }

    /// Output width.
    pub fn dim(&self) -> usize {
        self.cfg.hidden_size
    }

    /// The conv feature extractor of one clip: `(frames, channels)`.
    fn features(&self, x: &[f32], device: &Device) -> Result<Tensor> {
        // Time-major throughout: (samples, 1), then (frames, channels).
        let mut h = Tensor::from_slice(x, (x.len(), 1), device)?;
        for c in &self.convs {
            h = c.conv.forward(&h)?;
            h = match &c.norm {
                ConvNorm::None => h,
                ConvNorm::Group(w, b) => channel_norm_tm(&h, w, b, 1e-5)?,
                ConvNorm::Layer(ln) => ln.forward(&h)?,
            };
            h = gelu(&h)?;
        }
        Ok(h)
    }

    fn pos_embed(&self, x: &Tensor) -> Result<Tensor> {
        let t = x.dim(0)?;
        let mut h = x.t()?;
        if let Some((scale, shift)) = &self.pos_bn {
            h = h.broadcast_mul(scale)?.broadcast_add(shift)?;
        }
        let y = self.pos_conv.forward(&h.unsqueeze(0)?)?.squeeze(0)?;
        let y = y.narrow(1, 0, t)?; // an even kernel gives one frame too many: the last is dropped
        Ok(gelu(&y)?.t()?)
    }

    /// Embeds a batch of clips (already normalised as the folder's preprocessor says) and returns,
    /// per clip, the tensors `taps` ask for, each `(frames, dim)`.
    pub fn forward(&self, clips: &[&[f32]], taps: &[Tap]) -> Result<Vec<Vec<Tensor>>> {
        let device = Device::Cpu;
        let rf = self.cfg.receptive_field();
        for (i, c) in clips.iter().enumerate() {
            if c.len() < rf {
                return Err(Error::Input(format!(
                    "clip {i}: {} samples, shorter than the model's receptive field of {rf} samples",
                    c.len()
                )));
            }
        }
        let feats: Vec<Tensor> = clips.iter().map(|c| self.features(c, &device)).collect::<Result<_>>()?;
        let lens: Vec<usize> = feats.iter().map(|f| f.dim(0)).collect::<candle_core::Result<_>>()?;
        let mut x = Tensor::cat(&feats, 0)?;
        if let Some(ln) = &self.proj_ln {
            x = ln.forward(&x)?;
        }
        x = self.proj.forward(&x)?;
        let per_clip = |x: &Tensor, f: &dyn Fn(&Tensor) -> Result<Tensor>| -> Result<Tensor> {
            let mut parts = Vec::with_capacity(lens.len());
            let mut off = 0;
            for &t in &lens {
                parts.push(f(&x.narrow(0, off, t)?)?);
                off += t;
            }
            Ok(Tensor::cat(&parts, 0)?)
        };
        let pos = per_clip(&x, &|c| self.pos_embed(c))?;
        x = (x + pos)?;
        let stable = self.cfg.do_stable_layer_norm;
        if !stable {
            x = self.enc_ln.forward(&x)?;
        }
        let heads = self.cfg.num_attention_heads;
        let mut hidden: Vec<Option<Tensor>> = vec![None; self.layers.len() + 1];
        let wants = |k: usize| taps.contains(&Tap::Hidden(k));
        if wants(0) {
            hidden[0] = Some(x.clone());
        }
        for (i, layer) in self.layers.iter().enumerate() {
            let res = x.clone();
            let a_in = if stable { layer.ln_attn.forward(&x)? } else { x.clone() };
            let q = layer.q.forward(&a_in)?;
            let k = layer.k.forward(&a_in)?;
            let v = layer.v.forward(&a_in)?;
            let mut parts = Vec::with_capacity(lens.len());
            let mut off = 0;
            for &t in &lens {
                parts.push(attention(&q.narrow(0, off, t)?, &k.narrow(0, off, t)?, &v.narrow(0, off, t)?, heads)?);
                off += t;
            }
            let a = layer.o.forward(&Tensor::cat(&parts, 0)?)?;
            x = (res + a)?;
            if stable {
                let f = layer.ff_out.forward(&gelu(&layer.ff_in.forward(&layer.ln_ff.forward(&x)?)?)?)?;
                x = (x + f)?;
            } else {
                x = layer.ln_attn.forward(&x)?;
                let f = layer.ff_out.forward(&gelu(&layer.ff_in.forward(&x)?)?)?;
                x = layer.ln_ff.forward(&(x + f)?)?;
            }
            if wants(i + 1) {
                hidden[i + 1] = Some(x.clone());
            }
        }
        let last = if stable { self.enc_ln.forward(&x)? } else { x };
        let mut out = vec![Vec::with_capacity(taps.len()); clips.len()];
        for tap in taps {
            let t =
                match tap {
                    Tap::Hidden(k) => hidden.get(*k).cloned().flatten().ok_or_else(|| {
                        Error::Config(format!("layer {k}: the model has {} layers", self.layers.len()))
                    })?,
                    Tap::Final => last.clone(),
                    Tap::Projected => {
                        return Err(Error::Config("--stage projected: only qwen2_audio has a projector".into()))
                    }
                };
            let mut off = 0;
            for (c, &n) in lens.iter().enumerate() {
                out[c].push(t.narrow(0, off, n)?);
                off += n;
            }
        }
        Ok(out)
    }
}
