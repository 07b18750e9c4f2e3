//! CPU kernels where candle is slow: the Snake activation and depthwise ("same"-padded, stride 1)
//! convolutions, fused the way SNAC's residual units use them (snake → depthwise conv → snake).
//!
//! Each kernel is a candle custom op that works on one `(batch, channel)` row at a time (rows run in
//! parallel on the current rayon pool: a job's own, see [`crate::job`]) and walks the row in tiles that
//! stay in cache. On other devices the layers use candle's own ops instead (see `layers.rs`).
//!
//! The loops are plain safe Rust written to auto-vectorise; [`simd`] runs them under `pulp`'s runtime
//! dispatch, so they are compiled a second time with AVX2 (x86-64-v3) and that copy runs where the CPU
//! has it. No fused multiply-adds are introduced, so every path gives the same bits.
//!
//! `sin` is evaluated with a branch-free polynomial (range reduction by π with a three-part
//! Cody–Waite constant, odd Taylor polynomial to r¹³) so the loops vectorise; its error is below
//! 1e-7 absolute for |αx| < 8192, and larger arguments fall back to `f32::sin`.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape};
use rayon::prelude::*;

/// Output samples per tile of the depthwise kernel.
const TILE: usize = 2048;
/// Largest |αx| the polynomial sine handles; beyond it `f32::sin` is used.
const SIN_LIMIT: f32 = 8192.0;

// π = P1 + P2 + P3 with P1 and P2 short enough that k·P1 and k·P2 are exact for |k| < 2^12.
const P1: f32 = 3.140625;
const P2: f32 = 9.675_026e-4;
const P3: f32 = 1.509_958e-7;
const ROUND_MAGIC: f32 = 12_582_912.0; // 1.5 · 2^23: adding and subtracting it rounds to an integer.

/// Runs `f` compiled for the best instruction set the CPU offers (AVX2 on x86-64-v3 machines).
#[inline(always)]
fn simd<R>(f: impl FnOnce() -> R) -> R {
    pulp::Arch::new().dispatch(f)
}

/// sin²(y), vectorisable; only valid for |y| < [`SIN_LIMIT`].
#[inline(always)]
fn sin2_poly(y: f32) -> f32 {
    let k = (y * std::f32::consts::FRAC_1_PI + ROUND_MAGIC) - ROUND_MAGIC;
    // sin(y - kπ) = ±sin(y): the sign disappears in the square.
    let r = ((y - k * P1) - k * P2) - k * P3;
    let r2 = r * r;
    let p = 1.0
        + r2 * (-1.0 / 6.0
            + r2 * (1.0 / 120.0
                + r2 * (-1.0 / 5040.0 + r2 * (1.0 / 362_880.0 + r2 * (-1.0 / 39_916_800.0 + r2 / 6_227_020_800.0)))));
    let s = r * p;
    s * s
}

/// Snake parameters of one channel: α and 1/(α + 1e-9), as the reference computes them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SnakeCoef {
    pub alpha: f32,
    pub inv: f32,
}

impl SnakeCoef {
    pub fn new(alpha: f32) -> Self {
        Self { alpha, inv: 1.0 / (alpha + 1e-9) }
    }
}

/// dst = src + 1/(α+1e-9) · sin²(α·src), elementwise.
#[inline(always)]
pub(crate) fn snake_into(src: &[f32], dst: &mut [f32], c: SnakeCoef) {
    for (s_chunk, d_chunk) in src.chunks(64).zip(dst.chunks_mut(64)) {
        let mut out_of_range = 0u32;
        for (s, d) in s_chunk.iter().zip(d_chunk.iter_mut()) {
            let y = c.alpha * s;
            out_of_range += u32::from(y.abs() >= SIN_LIMIT);
            *d = s + c.inv * sin2_poly(y);
        }
        if out_of_range > 0 {
            for (s, d) in s_chunk.iter().zip(d_chunk.iter_mut()) {
                let y = c.alpha * s;
                if y.abs() >= SIN_LIMIT {
                    let sn = y.sin();
                    *d = s + c.inv * (sn * sn);
                }
            }
        }
    }
}

fn contiguous_f32<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<(&'a [f32], usize, usize, usize)> {
    let data = match storage {
        CpuStorage::F32(v) => v.as_slice(),
        _ => candle_core::bail!("{op}: only f32 tensors are supported"),
    };
    let (b, c, t) = layout.shape().dims3()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok((&data[start..end], b, c, t)),
        None => candle_core::bail!("{op}: input must be contiguous"),
    }
}

/// The Snake activation on a `(batch, channels, time)` tensor.
#[derive(Debug, Clone)]
pub(crate) struct SnakeOp {
    pub coefs: Vec<SnakeCoef>,
}

impl CustomOp1 for SnakeOp {
    fn name(&self) -> &'static str {
        "snac-snake"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (src, _b, c, t) = contiguous_f32(storage, layout, "snake")?;
        if c != self.coefs.len() {
            candle_core::bail!("snake: {} channels, {} alphas", c, self.coefs.len());
        }
        let mut out = vec![0f32; src.len()];
        if t > 0 {
            out.par_chunks_mut(t).zip(src.par_chunks(t)).enumerate().for_each(|(row, (d, s))| {
                simd(|| snake_into(s, d, self.coefs[row % c]));
            });
        }
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

/// A depthwise convolution with "same" padding and stride 1 (`groups == channels`), optionally with a
/// Snake before it (applied before the zero padding, as in the reference) and one after it.
#[derive(Debug, Clone)]
pub(crate) struct DepthwiseOp {
    /// `channels × kernel` taps.
    pub weight: Vec<f32>,
    /// One bias per channel.
    pub bias: Vec<f32>,
    pub kernel: usize,
    pub dilation: usize,
    pub pre: Option<Vec<SnakeCoef>>,
    pub post: Option<Vec<SnakeCoef>>,
}

impl DepthwiseOp {
    fn pad(&self) -> usize {
        (self.kernel - 1) * self.dilation / 2
    }

    /// One row: `src` (length T) to `dst` (length T).
    #[inline(always)]
    fn row(&self, ch: usize, src: &[f32], dst: &mut [f32], xp: &mut Vec<f32>, acc: &mut Vec<f32>) {
        let t = src.len();
        let pad = self.pad();
        let taps = &self.weight[ch * self.kernel..(ch + 1) * self.kernel];
        let bias = self.bias[ch];
        let mut t0 = 0;
        while t0 < t {
            let t1 = (t0 + TILE).min(t);
            let n = t1 - t0;
            // Input window [t0 - pad, t1 + pad), zero outside the signal.
            xp.clear();
            xp.resize(n + 2 * pad, 0.0);
            let lo = t0.saturating_sub(pad);
            let hi = (t1 + pad).min(t);
            let off = lo + pad - t0;
            match &self.pre {
                Some(c) => snake_into(&src[lo..hi], &mut xp[off..off + hi - lo], c[ch]),
                None => xp[off..off + hi - lo].copy_from_slice(&src[lo..hi]),
            }
            acc.clear();
            acc.resize(n, 0.0);
            // Taps summed in order, then the bias, like a direct convolution.
            for (k, &w) in taps.iter().enumerate() {
                let window = &xp[k * self.dilation..k * self.dilation + n];
                for (a, &x) in acc.iter_mut().zip(window) {
                    *a += w * x;
                }
            }
            for a in acc.iter_mut() {
                *a += bias;
            }
            match &self.post {
                Some(c) => snake_into(acc, &mut dst[t0..t1], c[ch]),
                None => dst[t0..t1].copy_from_slice(acc),
            }
            t0 = t1;
        }
    }
}

impl CustomOp1 for DepthwiseOp {
    fn name(&self) -> &'static str {
        "snac-depthwise-conv1d"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (src, _b, c, t) = contiguous_f32(storage, layout, "depthwise conv1d")?;
        if c * self.kernel != self.weight.len() || c != self.bias.len() {
            candle_core::bail!("depthwise conv1d: {c} channels do not match the weights");
        }
        let mut out = vec![0f32; src.len()];
        if t > 0 {
            out.par_chunks_mut(t).zip(src.par_chunks(t)).enumerate().for_each_init(
                || (Vec::new(), Vec::new()),
                |(xp, acc), (row, (d, s))| simd(|| self.row(row % c, s, d, xp, acc)),
            );
        }
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

/// `residual + (y + bias[c])` on `(batch, channels, time)` tensors: the end of a residual unit,
/// after its 1×1 convolution's matrix product.
#[derive(Debug, Clone)]
pub(crate) struct BiasResidualOp {
    pub bias: Vec<f32>,
}

impl CustomOp2 for BiasResidualOp {
    fn name(&self) -> &'static str {
        "snac-bias-residual"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (y, _b, c, t) = contiguous_f32(s1, l1, "bias-residual")?;
        let (x, ..) = contiguous_f32(s2, l2, "bias-residual")?;
        if l1.shape() != l2.shape() || c != self.bias.len() {
            candle_core::bail!("bias-residual: shapes {:?} / {:?} / {}", l1.shape(), l2.shape(), self.bias.len());
        }
        let mut out = vec![0f32; y.len()];
        if t > 0 {
            out.par_chunks_mut(t).zip(y.par_chunks(t).zip(x.par_chunks(t))).enumerate().for_each(
                |(row, (d, (yr, xr)))| {
                    let b = self.bias[row % c];
                    simd(|| {
                        for ((d, &yv), &xv) in d.iter_mut().zip(yr).zip(xr) {
                            *d = xv + (yv + b);
                        }
                    })
                },
            );
        }
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// Unfolds `(batch, cin, len)` into the `(batch, cin · kernel, len_out)` columns of a convolution,
/// `cols[ci·K + k][t] = x[ci][t·stride + k·dilation − padding]` (zero outside), so that the convolution
/// is one matrix product `W (cout × cin·K) · cols` whose result is already `(cout, len_out)`.
#[derive(Debug, Clone)]
pub(crate) struct Im2ColOp {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub dilation: usize,
}

impl Im2ColOp {
    pub fn out_len(&self, len: usize) -> usize {
        (len + 2 * self.padding).saturating_sub(self.dilation * (self.kernel - 1) + 1) / self.stride + 1
    }
}

impl CustomOp1 for Im2ColOp {
    fn name(&self) -> &'static str {
        "snac-im2col"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (src, b, c, l) = contiguous_f32(storage, layout, "im2col")?;
        if l + 2 * self.padding < self.dilation * (self.kernel - 1) + 1 {
            candle_core::bail!("im2col: input of {l} samples is shorter than the kernel");
        }
        let lo = self.out_len(l);
        let k = self.kernel;
        let mut out = vec![0f32; b * c * k * lo];
        if lo > 0 {
            out.par_chunks_mut(lo).enumerate().for_each(|(row, dst)| {
                let (bc, kk) = (row / k, row % k);
                let x = &src[bc * l..(bc + 1) * l];
                let shift = (kk * self.dilation) as isize - self.padding as isize;
                // Output positions whose input index t·stride + shift lies in [0, l).
                let first = if shift >= 0 { 0 } else { ((-shift) as usize).div_ceil(self.stride) };
                let last = if (l as isize) > shift {
                    ((l as isize - shift - 1) as usize / self.stride + 1).min(lo)
                } else {
                    0
                };
                if first >= last {
                    return;
                }
                let start = (first as isize * self.stride as isize + shift) as usize;
                if self.stride == 1 {
                    dst[first..last].copy_from_slice(&x[start..start + (last - first)]);
                } else {
                    for (d, &v) in dst[first..last].iter_mut().zip(x[start..].iter().step_by(self.stride)) {
                        *d = v;
                    }
                }
            });
        }
        Ok((CpuStorage::F32(out), Shape::from((b, c * k, lo))))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn polynomial_sine_matches_std() {
        let mut worst = 0f32;
        let mut y = -8000.0f32;
        while y < 8000.0 {
            let want = (y as f64).sin().powi(2) as f32;
            worst = worst.max((sin2_poly(y) - want).abs());
            y += 0.0137;
        }
        assert!(worst < 2e-6, "worst {worst}");
        let mut y = -4.0f32;
        let mut worst_small = 0f32;
        while y < 4.0 {
            let want = (y as f64).sin().powi(2) as f32;
            worst_small = worst_small.max((sin2_poly(y) - want).abs());
            y += 0.0001;
        }
        assert!(worst_small < 3e-7, "worst {worst_small}");
    }

    #[test]
    fn snake_handles_large_and_nan_inputs() {
        let src = [0.0, 1.0, -2.5, 1e6, f32::NAN, 9000.0];
        let mut dst = [0.0; 6];
        let c = SnakeCoef::new(1.3);
        snake_into(&src, &mut dst, c);
        for (s, d) in src.iter().zip(dst) {
            let want = s + c.inv * (c.alpha * s).sin().powi(2);
            if s.is_nan() {
                assert!(d.is_nan());
            } else {
                assert!((d - want).abs() <= 1e-6 * want.abs().max(1.0), "{s}: {d} vs {want}");
            }
        }
    }

    #[test]
    fn im2col_product_matches_candle_conv1d() {
        use candle_core::{Device, Tensor};
        let dev = Device::Cpu;
        for (k, stride, pad, dil, len) in
            [(4, 2, 1, 1, 37), (6, 3, 2, 1, 40), (7, 1, 3, 1, 20), (7, 1, 9, 3, 25), (16, 8, 4, 1, 64)]
        {
            let x = Tensor::randn(0f32, 1.0, (2, 3, len), &dev).unwrap();
            let w = Tensor::randn(0f32, 1.0, (5, 3, k), &dev).unwrap();
            let want = x.conv1d(&w, pad, stride, dil, 1).unwrap();
            let op = Im2ColOp { kernel: k, stride, padding: pad, dilation: dil };
            let cols = x.apply_op1_no_bwd(&op).unwrap();
            let got =
                w.reshape((5, 3 * k)).unwrap().broadcast_left(2).unwrap().contiguous().unwrap().matmul(&cols).unwrap();
            assert_eq!(got.dims(), want.dims());
            let d = (got - want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(d < 1e-4, "k {k} stride {stride}: {d}");
        }
    }

    #[test]
    fn depthwise_kernel_matches_candle_grouped_conv() {
        use candle_core::{Device, Tensor};
        let dev = Device::Cpu;
        let (c, t) = (3, 5000);
        for dil in [1, 3, 9] {
            let x = Tensor::randn(0f32, 1.0, (2, c, t), &dev).unwrap();
            let w = Tensor::randn(0f32, 1.0, (c, 1, 7), &dev).unwrap();
            let b = Tensor::randn(0f32, 1.0, c, &dev).unwrap();
            let want = x.conv1d(&w, 3 * dil, 1, dil, c).unwrap().broadcast_add(&b.reshape((1, c, 1)).unwrap()).unwrap();
            let op = DepthwiseOp {
                weight: w.flatten_all().unwrap().to_vec1().unwrap(),
                bias: b.to_vec1().unwrap(),
                kernel: 7,
                dilation: dil,
                pre: None,
                post: None,
            };
            let got = x.apply_op1_no_bwd(&op).unwrap();
            let d = (got - want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(d < 1e-5, "dilation {dil}: {d}");
        }
    }
}
