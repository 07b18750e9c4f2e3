//! The encoders' layers on CPU f32 rows (time-major `(frames, width)` slices), around
//! [`crate::gemm`]: no candle op in the layer loop, so no per-op allocation pass, no
//! `.contiguous()` copy and no head transpose.
//!
//! - [`Dense`]: `x W^T + b` with the bias (and a residual) written into the output before the
//!   product accumulates onto it, optionally followed by GELU over the same rows;
//! - [`layer_norm`]: one row at a time, two passes (mean, then centred variance);
//! - [`attention`]: per head, on strided column views of the fused `q | k | v` rows: scores as one
//!   product, a softmax in place, the context as one product;
//! - [`GroupedConv`]: the positional convolution as one product per group over sliding windows
//!   of a group-major copy of its input (no im2col copy);
//! - [`TimeConv`]: a strided convolution as products on row views of its input.

use rayon::prelude::*;

use crate::gemm::{sgemm, sgemm_segments, sgemm_single, sgemm_strided, Backend, View};
use crate::kernels::{exp_neg, gelu_slice};
use crate::weights::Loader;
use crate::Result;

/// Elements per parallel chunk of an elementwise pass.
const CHUNK: usize = 1 << 14;

/// A linear layer: weight kept `(in, out)` row-major, bias (zeros when the layer has none).
#[derive(Debug, Clone)]
pub struct Dense {
    wt: Vec<f32>,
    b: Vec<f32>,
    inp: usize,
    out: usize,
}

/// What follows the product in [`Dense::forward`].
#[derive(Debug, Clone, Copy)]
pub enum Then<'a> {
    /// Nothing.
    Nothing,
    /// Exact GELU.
    Gelu,
    /// Add these rows (same shape as the output): a residual.
    Add(&'a [f32]),
}

impl Dense {
    /// Loads `{name}.weight` `(out, in)` and, when `bias`, `{name}.bias`.
    pub fn load(l: &Loader, name: &str, inp: usize, out: usize, bias: bool) -> Result<Self> {
        let w = l.get(&format!("{name}.weight"), &[out, inp])?;
        let wt = w.t()?.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        let b = if bias { l.get(&format!("{name}.bias"), &[out])?.to_vec1::<f32>()? } else { vec![0.0; out] };
        Ok(Dense { wt, b, inp, out })
    }

    /// Several layers over the same input side by side: one product gives their outputs as
    /// consecutive column blocks (`q | k | v`).
    pub fn concat(parts: &[Dense]) -> Dense {
        let inp = parts.first().map_or(0, |p| p.inp);
        let out: usize = parts.iter().map(|p| p.out).sum();
        let mut wt = Vec::with_capacity(inp * out);
        for r in 0..inp {
            for p in parts {
                wt.extend_from_slice(&p.wt[r * p.out..(r + 1) * p.out]);
            }
        }
        let b = parts.iter().flat_map(|p| p.b.iter().copied()).collect();
        Dense { wt, b, inp, out }
    }

    /// Output width.
    pub fn out_dim(&self) -> usize {
        self.out
    }

    /// `then(x W^T + b)` for the rows of `x` `(rows, in)`, consecutive segments (clips) of
    /// `segs` rows (see [`crate::gemm`]: a clip's bytes do not depend on its batch).
    pub fn forward(&self, x: &[f32], segs: &[usize], then: Then<'_>) -> Vec<f32> {
        let n = self.out;
        let rows: usize = segs.iter().sum();
        let mut y = vec![0f32; rows * n];
        match then {
            Then::Add(r) => {
                y.par_chunks_mut(CHUNK.div_ceil(n) * n).zip(r.par_chunks(CHUNK.div_ceil(n) * n)).for_each(|(yc, rc)| {
                    for (yr, rr) in yc.chunks_exact_mut(n).zip(rc.chunks_exact(n)) {
                        for ((o, &a), &b) in yr.iter_mut().zip(rr).zip(&self.b) {
                            *o = a + b;
                        }
                    }
                })
            }
            _ => y.par_chunks_mut(CHUNK.div_ceil(n) * n).for_each(|yc| {
                for yr in yc.chunks_exact_mut(n) {
                    yr.copy_from_slice(&self.b);
                }
            }),
        }
        sgemm_segments(
            Backend::get(),
            segs,
            n,
            self.inp,
            View::new(x, self.inp),
            View::new(&self.wt, n),
            1.0,
            &mut y,
            n,
        );
        if let Then::Gelu = then {
            gelu_slice(&mut y);
        }
        y
    }
}

/// LayerNorm over rows of width `w.len()`, into a new buffer.
pub fn layer_norm(x: &[f32], w: &[f32], b: &[f32], eps: f32) -> Vec<f32> {
    let d = w.len();
    let mut y = vec![0f32; x.len()];
    let rows_per = CHUNK.div_ceil(d).max(1);
    y.par_chunks_mut(rows_per * d).zip(x.par_chunks(rows_per * d)).for_each(|(yc, xc)| {
        crate::kernels::simd(|| {
            for (yr, xr) in yc.chunks_exact_mut(d).zip(xc.chunks_exact(d)) {
                norm_row(xr, yr, w, b, eps);
            }
        })
    });
    y
}

#[inline(always)]
fn norm_row(x: &[f32], y: &mut [f32], w: &[f32], b: &[f32], eps: f32) {
    let d = x.len() as f32;
    let mean = lanes_sum(x, |v| v) / d;
    let var = lanes_sum(x, |v| (v - mean) * (v - mean)) / d;
    let inv = 1.0 / (var + eps).sqrt();
    for (((o, &v), &g), &c) in y.iter_mut().zip(x).zip(w).zip(b) {
        *o = (v - mean) * inv * g + c;
    }
}

/// Sum of `f(x)` in 8 partial sums (vectorises; the order is fixed, so results are reproducible).
#[inline(always)]
fn lanes_sum(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0f32; 8];
    let mut it = x.chunks_exact(8);
    for c in &mut it {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += f(v);
        }
    }
    let mut s: f32 = it.remainder().iter().map(|&v| f(v)).sum();
    s += acc.iter().sum::<f32>();
    s
}

/// Loads a LayerNorm's `{name}.weight` and `{name}.bias`.
pub fn load_norm(l: &Loader, name: &str, dim: usize) -> Result<(Vec<f32>, Vec<f32>)> {
    Ok((
        l.get(&format!("{name}.weight"), &[dim])?.to_vec1::<f32>()?,
        l.get(&format!("{name}.bias"), &[dim])?.to_vec1::<f32>()?,
    ))
}

/// Softmax attention of one clip on fused rows `qkv` `(frames, 3 d)` (`q | k | v` column blocks)
/// starting at row `off`: `tq` query rows against the first `tk` key rows, `heads` heads, scores
/// scaled by `head_dim^-0.5`. Returns the context `(tq, d)`.
pub fn attention(qkv: &[f32], d: usize, off: usize, tq: usize, tk: usize, heads: usize) -> Vec<f32> {
    let hd = d / heads;
    let ld = 3 * d;
    let scale = (hd as f32).powf(-0.5);
    let base = &qkv[off * ld..];
    let per_head: Vec<Vec<f32>> = (0..heads)
        .into_par_iter()
        .map(|h| {
            let q = View::new(&base[h * hd..], ld);
            let k = View::new(&base[d + h * hd..], ld).t();
            let v = View::new(&base[2 * d + h * hd..], ld);
            let mut s = vec![0f32; tq * tk];
            sgemm_single(tq, tk, hd, q, k, 0.0, &mut s, tk);
            crate::kernels::simd(|| {
                for row in s.chunks_exact_mut(tk) {
                    softmax_row(row, scale);
                }
            });
            let mut o = vec![0f32; tq * hd];
            sgemm_single(tq, hd, tk, View::new(&s, tk), v, 0.0, &mut o, hd);
            o
        })
        .collect();
    let mut out = vec![0f32; tq * d];
    for (h, o) in per_head.iter().enumerate() {
        for (dst, src) in out.chunks_exact_mut(d).zip(o.chunks_exact(hd)) {
            dst[h * hd..(h + 1) * hd].copy_from_slice(src);
        }
    }
    out
}

#[inline(always)]
fn softmax_row(row: &mut [f32], scale: f32) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for v in row.iter_mut() {
        *v = exp_neg((*v - max) * scale);
    }
    let inv = 1.0 / lanes_sum(row, |v| v);
    for v in row.iter_mut() {
        *v *= inv;
    }
}

/// A grouped 1-D convolution with stride 1 and `k / 2` zero padding on each side over
/// time-major rows, its output cut to the input's length (the positional convolution; for an
/// even kernel this drops the last frame, as transformers does).
#[derive(Debug, Clone)]
pub struct GroupedConv {
    /// Per group: `(k * cg, cg)`, row `j * cg + c` = tap `j` of input channel `c`.
    w: Vec<Vec<f32>>,
    b: Vec<f32>,
    k: usize,
    groups: usize,
    cg: usize,
}

impl GroupedConv {
    /// From a weight `(channels, channels / groups, k)` in C order and its bias.
    pub fn new(w: &[f32], b: Vec<f32>, k: usize, groups: usize) -> Self {
        let d = b.len();
        let cg = d / groups;
        let w = (0..groups)
            .map(|g| {
                let mut m = vec![0f32; k * cg * cg];
                for o in 0..cg {
                    for c in 0..cg {
                        for j in 0..k {
                            m[(j * cg + c) * cg + o] = w[((g * cg + o) * cg + c) * k + j];
                        }
                    }
                }
                m
            })
            .collect();
        GroupedConv { w, b, k, groups, cg }
    }

    /// Applies it to `(t, d)` rows: returns `(t, d)`.
    pub fn forward(&self, x: &[f32], t: usize) -> Vec<f32> {
        let (cg, k) = (self.cg, self.k);
        let d = cg * self.groups;
        let pad = k / 2;
        let tp = t + k; // padded frames: pad + t + pad (and one spare for an odd kernel)
                        // Group-major padded copy: group g's frames at [g * tp * cg ..], frame-major within it.
        let mut xg = vec![0f32; self.groups * tp * cg];
        xg.par_chunks_mut(tp * cg).enumerate().for_each(|(g, dst)| {
            for (i, row) in x.chunks_exact(d).take(t).enumerate() {
                dst[(pad + i) * cg..(pad + i + 1) * cg].copy_from_slice(&row[g * cg..(g + 1) * cg]);
            }
        });
        let mut y = vec![0f32; t * d];
        for row in y.chunks_exact_mut(d) {
            row.copy_from_slice(&self.b);
        }
        for (g, wg) in self.w.iter().enumerate() {
            // Row τ of the windows: frames τ .. τ + k of group g, `cg` apart.
            let a = &xg[g * tp * cg..(g + 1) * tp * cg];
            sgemm_strided(t, cg, k * cg, a, cg, View::new(wg, cg), 1.0, &mut y[g * cg..], d);
        }
        y
    }
}

/// A 1-D convolution (no padding, any stride) over time-major `(frames, in)` rows, as products on
/// views: with the input seen as `(frames / stride, stride * in)`, output frame `t` needs rows
/// `t .. t + ceil(k / stride)` of that view, so the convolution is `ceil(k / stride)` products of
/// row windows of the view (the last one over its first columns) with slices of the weight laid
/// out `(k * in, out)`. No im2col copy is made, and the output comes out time-major.
#[derive(Debug, Clone)]
pub struct TimeConv {
    parts: Vec<Vec<f32>>,
    b: Vec<f32>,
    k: usize,
    stride: usize,
    inp: usize,
    out: usize,
}

impl TimeConv {
    /// Loads `{name}.weight` `(out, in, k)` and, when `bias`, `{name}.bias`.
    pub fn load(l: &Loader, name: &str, inp: usize, out: usize, k: usize, stride: usize, bias: bool) -> Result<Self> {
        let w = l.get(&format!("{name}.weight"), &[out, inp, k])?.flatten_all()?.to_vec1::<f32>()?;
        let b = if bias { l.get(&format!("{name}.bias"), &[out])?.to_vec1::<f32>()? } else { vec![0.0; out] };
        // (out, in, k) -> (k * in, out): row j * in + c is tap j of channel c.
        let mut wt = vec![0f32; k * inp * out];
        for o in 0..out {
            for c in 0..inp {
                for j in 0..k {
                    wt[(j * inp + c) * out + o] = w[(o * inp + c) * k + j];
                }
            }
        }
        let parts = (0..k.div_ceil(stride))
            .map(|q| {
                let taps = k.min((q + 1) * stride) - q * stride;
                wt[q * stride * inp * out..(q * stride + taps) * inp * out].to_vec()
            })
            .collect();
        Ok(TimeConv { parts, b, k, stride, inp, out })
    }

    /// Output frames for `t` input frames (0 when shorter than the kernel).
    pub fn out_len(&self, t: usize) -> usize {
        if t < self.k {
            0
        } else {
            (t - self.k) / self.stride + 1
        }
    }

    /// Output width.
    pub fn out_dim(&self) -> usize {
        self.out
    }

    /// Applies it to `(t_in, in)` rows, then GELU when `gelu`: returns `(out_len, out)`.
    pub fn forward(&self, x: &[f32], t_in: usize, gelu: bool) -> Vec<f32> {
        let t_out = self.out_len(t_in);
        let n = self.out;
        let ld = self.stride * self.inp;
        let mut y = vec![0f32; t_out * n];
        for row in y.chunks_exact_mut(n) {
            row.copy_from_slice(&self.b);
        }
        for (q, w) in self.parts.iter().enumerate() {
            let cols = w.len() / n;
            // Row t of this view: input frames (t + q) * stride .. + cols / in; the last row may
            // end past the input only in columns the product does not read.
            sgemm(t_out, n, cols, View::new(&x[q * ld..], ld), View::new(w, n), 1.0, &mut y, n);
        }
        if gelu {
            gelu_slice(&mut y);
        }
        y
    }
}

/// Each channel of time-major `(t, channels)` normalised over the frames (GroupNorm with one
/// group per channel: the conv-0 norm of the group-norm wav2vec2 models), with its affine, in place.
/// Statistics in f64 over the frames (mean, then centred variance).
pub fn channel_norm(x: &mut [f32], w: &[f32], b: &[f32], eps: f64) {
    let c = w.len();
    let t = x.len() / c;
    let mut mean = vec![0f64; c];
    for row in x.chunks_exact(c) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += f64::from(v);
        }
    }
    mean.iter_mut().for_each(|m| *m /= t as f64);
    let mut var = vec![0f64; c];
    for row in x.chunks_exact(c) {
        for ((s, &v), &m) in var.iter_mut().zip(row).zip(&mean) {
            let e = f64::from(v) - m;
            *s += e * e;
        }
    }
    let scale: Vec<f32> =
        var.iter().zip(w).map(|(&s, &g)| (f64::from(g) / (s / t as f64 + eps).sqrt()) as f32).collect();
    let shift: Vec<f32> = mean.iter().zip(&scale).zip(b).map(|((&m, &s), &bb)| bb - (m as f32) * s).collect();
    x.par_chunks_mut(CHUNK.div_ceil(c) * c).for_each(|xc| {
        for row in xc.chunks_exact_mut(c) {
            for ((v, &s), &h) in row.iter_mut().zip(&scale).zip(&shift) {
                *v = *v * s + h;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(7);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn attention_matches_a_naive_softmax_attention() {
        let (d, heads, rows, off, tq, tk) = (12, 3, 20, 4, 9, 7);
        let qkv = data(rows * 3 * d, 1);
        let got = attention(&qkv, d, off, tq, tk, heads);
        let hd = d / heads;
        for h in 0..heads {
            for i in 0..tq {
                let q = |c: usize| f64::from(qkv[(off + i) * 3 * d + h * hd + c]);
                let s: Vec<f64> = (0..tk)
                    .map(|j| (0..hd).map(|c| q(c) * f64::from(qkv[(off + j) * 3 * d + d + h * hd + c])).sum::<f64>())
                    .map(|v| v / (hd as f64).sqrt())
                    .collect();
                let m = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = s.iter().map(|v| (v - m).exp()).sum();
                for c in 0..hd {
                    let want: f64 = (0..tk)
                        .map(|j| (s[j] - m).exp() / z * f64::from(qkv[(off + j) * 3 * d + 2 * d + h * hd + c]))
                        .sum();
                    let g = f64::from(got[i * d + h * hd + c]);
                    assert!((g - want).abs() < 1e-5, "head {h} row {i} col {c}: {g} vs {want}");
                }
            }
        }
    }

    #[test]
    fn grouped_conv_matches_a_naive_convolution() {
        for k in [4usize, 5] {
            let (d, groups, t) = (6, 2, 11);
            let cg = d / groups;
            let w = data(d * cg * k, 2);
            let b = data(d, 3);
            let x = data(t * d, 4);
            let got = GroupedConv::new(&w, b.clone(), k, groups).forward(&x, t);
            for tau in 0..t {
                for o in 0..d {
                    let g = o / cg;
                    let mut want = f64::from(b[o]);
                    for j in 0..k {
                        let src = tau as isize + j as isize - (k / 2) as isize;
                        if src < 0 || src >= t as isize {
                            continue;
                        }
                        for c in 0..cg {
                            want += f64::from(w[(o * cg + c) * k + j]) * f64::from(x[src as usize * d + g * cg + c]);
                        }
                    }
                    assert!((f64::from(got[tau * d + o]) - want).abs() < 1e-5, "k {k} t {tau} o {o}");
                }
            }
        }
    }

    #[test]
    fn layer_norm_and_channel_norm_match_their_definitions() {
        let (rows, d) = (5, 19);
        let x = data(rows * d, 5);
        let w = data(d, 6);
        let b = data(d, 7);
        let y = layer_norm(&x, &w, &b, 1e-5);
        for r in 0..rows {
            let row: Vec<f64> = x[r * d..(r + 1) * d].iter().map(|&v| f64::from(v)).collect();
            let m = row.iter().sum::<f64>() / d as f64;
            let v = row.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / d as f64;
            for c in 0..d {
                let want = (row[c] - m) / (v + 1e-5).sqrt() * f64::from(w[c]) + f64::from(b[c]);
                assert!((f64::from(y[r * d + c]) - want).abs() < 1e-5);
            }
        }
        let mut z = x.clone();
        channel_norm(&mut z, &w, &b, 1e-5);
        for c in 0..d {
            let col: Vec<f64> = (0..rows).map(|r| f64::from(x[r * d + c])).collect();
            let m = col.iter().sum::<f64>() / rows as f64;
            let v = col.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / rows as f64;
            for r in 0..rows {
                let want = (col[r] - m) / (v + 1e-5).sqrt() * f64::from(w[c]) + f64::from(b[c]);
                assert!((f64::from(z[r * d + c]) - want).abs() < 1e-5);
            }
        }
    }
}
