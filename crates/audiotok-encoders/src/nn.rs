//! Layers shared by the encoders, over rows of frames: a batch is the frames of all its clips one
//! after another (`(sum of frames, width)`), so linear layers, norms and feed-forwards run as one
//! product over every clip, and attention runs per clip over that clip's own frames only.

use candle_core::{Module, Tensor};

use crate::weights::Loader;
use crate::Result;

/// `y = x W^T + b`, the weight kept transposed `(in, out)` and contiguous.
#[derive(Debug, Clone)]
pub struct Linear {
    wt: Tensor,
    b: Option<Tensor>,
}

impl Linear {
    /// Loads `{name}.weight` `(out, in)` and, when `bias`, `{name}.bias`.
    pub fn load(l: &Loader, name: &str, inp: usize, out: usize, bias: bool) -> Result<Self> {
        let w = l.get(&format!("{name}.weight"), &[out, inp])?;
        let b = if bias { Some(l.get(&format!("{name}.bias"), &[out])?) } else { None };
        Ok(Linear { wt: w.t()?.contiguous()?, b })
    }

    /// Output width.
    pub fn out_dim(&self) -> usize {
        self.wt.dims().get(1).copied().unwrap_or(0)
    }

    /// Applies the layer to `(rows, in)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = x.matmul(&self.wt)?;
        Ok(match &self.b {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        })
    }
}

/// LayerNorm over the last axis.
#[derive(Debug, Clone)]
pub struct LayerNorm(candle_nn::LayerNorm);

impl LayerNorm {
    /// Loads `{name}.weight` and `{name}.bias` of width `dim`.
    pub fn load(l: &Loader, name: &str, dim: usize, eps: f64) -> Result<Self> {
        let w = l.get(&format!("{name}.weight"), &[dim])?;
        let b = l.get(&format!("{name}.bias"), &[dim])?;
        Ok(LayerNorm(candle_nn::LayerNorm::new(w, b, eps)))
    }

    /// Normalises every row.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.0.forward(x)?)
    }
}

/// A 1-D convolution with its optional bias, over `(1, in, length)`.
#[derive(Debug, Clone)]
pub struct Conv1d {
    w: Tensor,
    b: Option<Tensor>,
    stride: usize,
    padding: usize,
    groups: usize,
}

impl Conv1d {
    /// Loads `{name}.weight` `(out, in / groups, k)` and, when `bias`, `{name}.bias`.
    #[allow(clippy::too_many_arguments)]
    pub fn load(
        l: &Loader,
        name: &str,
        inp: usize,
        out: usize,
        k: usize,
        stride: usize,
        padding: usize,
        bias: bool,
    ) -> Result<Self> {
        let w = l.get(&format!("{name}.weight"), &[out, inp, k])?;
        let b = if bias { Some(l.get(&format!("{name}.bias"), &[out])?) } else { None };
        Ok(Conv1d { w, b, stride, padding, groups: 1 })
    }

    /// A convolution from a weight already made.
    pub fn from_parts(w: Tensor, b: Option<Tensor>, stride: usize, padding: usize, groups: usize) -> Self {
        Conv1d { w, b, stride, padding, groups }
    }

    /// Applies it to `(1, in, length)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = x.contiguous()?.conv1d(&self.w, self.padding, self.stride, 1, self.groups)?;
        Ok(match &self.b {
            Some(b) => y.broadcast_add(&b.reshape((1, (), 1))?)?,
            None => y,
        })
    }
}

/// Exact (erf) GELU ([`crate::kernels::gelu`]).
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    Ok(crate::kernels::gelu(x)?)
}

/// Softmax attention of one clip: `q` `(tq, d)` against `k`, `v` `(tk, d)`, `heads` heads, scores
/// scaled by `head_dim^-0.5`. Every key takes part (the caller passes only a clip's valid keys).
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, heads: usize) -> Result<Tensor> {
    let (tq, d) = q.dims2()?;
    let tk = k.dim(0)?;
    let hd = d / heads;
    let scale = (hd as f64).powf(-0.5);
    let q = (q.reshape((tq, heads, hd))?.transpose(0, 1)?.contiguous()? * scale)?;
    let k = k.reshape((tk, heads, hd))?.transpose(0, 1)?.contiguous()?;
    let v = v.reshape((tk, heads, hd))?.transpose(0, 1)?.contiguous()?;
    let s = q.matmul(&k.t()?)?;
    let p = candle_nn::ops::softmax_last_dim(&s)?;
    let o = p.matmul(&v)?;
    Ok(o.transpose(0, 1)?.reshape((tq, d))?)
}

/// A 1-D convolution (no padding, any stride) over time-major `(frames, in)` rows, as GEMMs on
/// views: with the input seen as `(frames / stride, stride * in)`, output frame `t` needs rows
/// `t .. t + ceil(k / stride)` of that view, so the convolution is `ceil(k / stride)` products of
/// row windows of the view (the last one over its first columns) with slices of the weight laid
/// out `(k * in, out)`. No im2col copy is made (HuBERT's convs: `k <= 2 * stride`, two products
/// at most), and the output comes out time-major.
#[derive(Debug, Clone)]
pub struct TimeConv {
    parts: Vec<Tensor>,
    b: Option<Tensor>,
    k: usize,
    stride: usize,
    inp: usize,
}

impl TimeConv {
    /// Loads `{name}.weight` `(out, in, k)` and, when `bias`, `{name}.bias`.
    pub fn load(l: &Loader, name: &str, inp: usize, out: usize, k: usize, stride: usize, bias: bool) -> Result<Self> {
        let w = l.get(&format!("{name}.weight"), &[out, inp, k])?;
        let b = if bias { Some(l.get(&format!("{name}.bias"), &[out])?) } else { None };
        // (out, in, k) -> (k, in, out) -> (k * in, out): row j * in + c is tap j of channel c.
        let wt = w.permute((2, 1, 0))?.contiguous()?.reshape((k * inp, out))?;
        let parts = (0..k.div_ceil(stride))
            .map(|q| {
                let taps = k.min((q + 1) * stride) - q * stride;
                Ok(wt.narrow(0, q * stride * inp, taps * inp)?.contiguous()?)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(TimeConv { parts, b, k, stride, inp })
    }

    /// Output frames for `t` input frames (0 when shorter than the kernel).
    pub fn out_len(&self, t: usize) -> usize {
        if t < self.k {
            0
        } else {
            (t - self.k) / self.stride + 1
        }
    }

    /// Applies it to `(frames, in)`; `frames >= k`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let t_in = x.dim(0)?;
        let t_out = self.out_len(t_in);
        let nq = self.parts.len();
        let rows = t_out + nq - 1;
        let need = rows * self.stride;
        let x = if t_in >= need {
            x.narrow(0, 0, need)?
        } else {
            // Only whole rows of the view are padded: the products never read the zeros.
            Tensor::cat(&[x.clone(), Tensor::zeros((need - t_in, self.inp), x.dtype(), x.device())?], 0)?
        };
        let r = x.contiguous()?.reshape((rows, self.stride * self.inp))?;
        let mut y: Option<Tensor> = None;
        for (q, w) in self.parts.iter().enumerate() {
            let cols = w.dim(0)?;
            let lhs = r.narrow(0, q, t_out)?;
            let lhs = if cols == lhs.dim(1)? { lhs } else { lhs.narrow(1, 0, cols)? };
            let p = lhs.matmul(w)?;
            y = Some(match y {
                Some(acc) => (acc + p)?,
                None => p,
            });
        }
        let y = y.ok_or_else(|| candle_core::Error::Msg("empty convolution".into()))?;
        Ok(match &self.b {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        })
    }
}

/// Each channel of time-major `(frames, channels)` normalised over the frames (GroupNorm with one
/// group per channel, as the conv-0 norm of the group-norm wav2vec2 models), with its affine.
/// The sums over frames run as products with a row of `1/frames` (candle's reductions over the
/// outer axis are strided and slow).
pub fn channel_norm_tm(x: &Tensor, w: &Tensor, b: &Tensor, eps: f64) -> Result<Tensor> {
    let t = x.dim(0)?;
    let avg = Tensor::full(1.0 / t as f32, (1, t), x.device())?;
    let mean = avg.matmul(x)?;
    let c = x.broadcast_sub(&mean)?;
    let var = avg.matmul(&c.sqr()?)?;
    let y = c.broadcast_div(&(var + eps)?.sqrt()?)?;
    Ok(y.broadcast_mul(w)?.broadcast_add(b)?)
}
