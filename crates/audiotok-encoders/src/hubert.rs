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
use rayon::prelude::*;

use crate::config::Wav2Vec2Config;
use crate::cpu::{attention, channel_norm, layer_norm, load_norm, Dense, GroupedConv, Then, TimeConv};
use crate::weights::Loader;
use crate::{Error, Result, Tap};

type Norm = (Vec<f32>, Vec<f32>);

#[derive(Debug)]
enum ConvNorm {
    None,
    Group(Norm),
    Layer(Norm),
}

#[derive(Debug)]
struct ConvLayer {
    conv: TimeConv,
    norm: ConvNorm,
}

#[derive(Debug)]
struct EncoderLayer {
    /// `q | k | v` in one product.
    qkv: Dense,
    o: Dense,
    ln_attn: Norm,
    ff_in: Dense,
    ff_out: Dense,
    ln_ff: Norm,
}

/// A HuBERT / wav2vec2 encoder.
#[derive(Debug)]
pub struct Wav2Vec2 {
    cfg: Wav2Vec2Config,
    convs: Vec<ConvLayer>,
    proj_ln: Option<Norm>,
    proj: Dense,
    /// BatchNorm before the positional conv, folded to a per-channel scale and shift.
    pos_bn: Option<Norm>,
    pos_conv: GroupedConv,
    enc_ln: Norm,
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
                ("layer", _) => ConvNorm::Layer(load_norm(l, &format!("{name}.layer_norm"), out)?),
                ("group", 0) => ConvNorm::Group(load_norm(l, &format!("{name}.layer_norm"), out)?),
                _ => ConvNorm::None,
            };
            convs.push(ConvLayer { conv, norm });
            inp = out;
        }
        let c = inp;
        let proj_ln =
            if cfg.feat_proj_layer_norm { Some(load_norm(l, "feature_projection.layer_norm", c)?) } else { None };
        let proj = Dense::load(l, "feature_projection.projection", c, h, true)?;
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
            (w, Some((scale.to_vec1::<f32>()?, shift.to_vec1::<f32>()?)))
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
        let pos_b = l.get(&format!("{base}.conv.bias"), &[h])?.to_vec1::<f32>()?;
        let pos_conv = GroupedConv::new(&pos_w.flatten_all()?.to_vec1::<f32>()?, pos_b, k, g);
        let enc_ln = load_norm(l, "encoder.layer_norm", h)?;
        let mut layers = Vec::new();
        for i in 0..cfg.num_hidden_layers {
            let p = format!("encoder.layers.{i}");
            let ff = cfg.intermediate_size;
            let qkv = ["q_proj", "k_proj", "v_proj"]
                .iter()
                .map(|n| Dense::load(l, &format!("{p}.attention.{n}"), h, h, true))
                .collect::<Result<Vec<_>>>()?;
            layers.push(EncoderLayer {
                qkv: Dense::concat(&qkv),
                o: Dense::load(l, &format!("{p}.attention.out_proj"), h, h, true)?,
                ln_attn: load_norm(l, &format!("{p}.layer_norm"), h)?,
                ff_in: Dense::load(l, &format!("{p}.feed_forward.intermediate_dense"), h, ff, true)?,
                ff_out: Dense::load(l, &format!("{p}.feed_forward.output_dense"), ff, h, true)?,
                ln_ff: load_norm(l, &format!("{p}.final_layer_norm"), h)?,
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

    /// The conv feature extractor of one clip: `(frames, channels)` rows and the frame count.
    fn features(&self, x: &[f32]) -> (Vec<f32>, usize) {
        // Time-major throughout: (samples, 1), then (frames, channels).
        let mut h = x.to_vec();
        let mut t = x.len();
        for c in &self.convs {
            let plain = matches!(c.norm, ConvNorm::None);
            // GELU in the conv's pass when no norm comes between.
            h = c.conv.forward(&h, t, plain);
            t = c.conv.out_len(t);
            match &c.norm {
                ConvNorm::None => {}
                ConvNorm::Group((w, b)) => {
                    channel_norm(&mut h, w, b, 1e-5);
                    crate::kernels::gelu_slice(&mut h);
                }
                ConvNorm::Layer((w, b)) => {
                    h = layer_norm(&h, w, b, 1e-5);
                    crate::kernels::gelu_slice(&mut h);
                }
            }
        }
        (h, t)
    }

    /// `x + GELU(pos_conv(x))` for one clip's `(t, d)` rows.
    fn pos_embed(&self, x: &[f32], t: usize) -> Vec<f32> {
        let d = self.dim();
        let y = match &self.pos_bn {
            Some((scale, shift)) => {
                let mut h = x.to_vec();
                for row in h.chunks_exact_mut(d) {
                    for ((v, &s), &b) in row.iter_mut().zip(scale).zip(shift) {
                        *v = *v * s + b;
                    }
                }
                self.pos_conv.forward(&h, t)
            }
            None => self.pos_conv.forward(x, t),
        };
        let mut y = y;
        crate::kernels::gelu_slice(&mut y);
        y.par_iter_mut().zip(x).for_each(|(a, &b)| *a += b);
        y
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
        let d = self.dim();
        let mut lens = Vec::with_capacity(clips.len());
        let mut feats = Vec::new();
        for c in clips {
            let (f, t) = self.features(c);
            feats.extend_from_slice(&f);
            lens.push(t);
        }
        let rows: usize = lens.iter().sum();
        if let Some((w, b)) = &self.proj_ln {
            feats = layer_norm(&feats, w, b, self.cfg.layer_norm_eps as f32);
        }
        let x = self.proj.forward(&feats, &lens, Then::Nothing);
        drop(feats);
        let mut with_pos = Vec::with_capacity(rows * d);
        let mut off = 0;
        for &t in &lens {
            with_pos.extend(self.pos_embed(&x[off * d..(off + t) * d], t));
            off += t;
        }
        let mut x = with_pos;
        let stable = self.cfg.do_stable_layer_norm;
        let eps = self.cfg.layer_norm_eps as f32;
        if !stable {
            x = layer_norm(&x, &self.enc_ln.0, &self.enc_ln.1, eps);
        }
        let heads = self.cfg.num_attention_heads;
        let mut hidden: Vec<Option<Vec<f32>>> = vec![None; self.layers.len() + 1];
        let wants = |k: usize| taps.contains(&Tap::Hidden(k));
        if wants(0) {
            hidden[0] = Some(x.clone());
        }
        for (i, layer) in self.layers.iter().enumerate() {
            let a_in = if stable { Some(layer_norm(&x, &layer.ln_attn.0, &layer.ln_attn.1, eps)) } else { None };
            let qkv = layer.qkv.forward(a_in.as_deref().unwrap_or(&x), &lens, Then::Nothing);
            drop(a_in);
            let mut ctx = Vec::with_capacity(rows * d);
            let mut off = 0;
            for &t in &lens {
                ctx.extend(attention(&qkv, d, off, t, t, heads));
                off += t;
            }
            drop(qkv);
            // The residual rides in the product's output: x + (ctx O^T + b).
            x = layer.o.forward(&ctx, &lens, Then::Add(&x));
            if stable {
                let h = layer_norm(&x, &layer.ln_ff.0, &layer.ln_ff.1, eps);
                let f = layer.ff_in.forward(&h, &lens, Then::Gelu);
                x = layer.ff_out.forward(&f, &lens, Then::Add(&x));
            } else {
                x = layer_norm(&x, &layer.ln_attn.0, &layer.ln_attn.1, eps);
                let f = layer.ff_in.forward(&x, &lens, Then::Gelu);
                let y = layer.ff_out.forward(&f, &lens, Then::Add(&x));
                x = layer_norm(&y, &layer.ln_ff.0, &layer.ln_ff.1, eps);
            }
            if wants(i + 1) {
                hidden[i + 1] = Some(x.clone());
            }
        }
        let last = if stable { layer_norm(&x, &self.enc_ln.0, &self.enc_ln.1, eps) } else { x };
        let last = Tensor::from_vec(last, (rows, d), &device)?;
        let hidden: Vec<Option<Tensor>> = hidden
            .into_iter()
            .map(|h| h.map(|h| Tensor::from_vec(h, (rows, d), &device)).transpose())
            .collect::<candle_core::Result<_>>()?;
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
