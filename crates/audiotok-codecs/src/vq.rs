//! Strided residual vector quantisation with factorised, L2-normalised codebook search.

use candle_core::{DType, Result, Tensor};
use candle_nn::VarBuilder;

use crate::layers::{pool_frames, repeat_frames, Conv1d, ConvGeom};

/// One level: average-pool by `stride`, project to the codebook dimension, pick the entry of
/// highest cosine similarity, project the raw entry back up, repeat it `stride` times.
#[derive(Debug, Clone)]
pub(crate) struct VectorQuantize {
    in_proj: Conv1d,
    out_proj: Conv1d,
    codebook: Tensor,
    /// Raw codebook rows, `size × dim`.
    raw: Vec<f32>,
    /// L2-normalised rows, `size × dim`.
    normed: Vec<f32>,
    /// Squared norms of the normalised rows.
    sq: Vec<f32>,
    size: usize,
    dim: usize,
    pub stride: usize,
}

/// x / max(‖x‖, 1e-12), like `torch.nn.functional.normalize`.
fn normalize(v: &[f32], out: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    for (o, x) in out.iter_mut().zip(v) {
        *o = x / norm;
    }
}

impl VectorQuantize {
    pub fn new(vb: VarBuilder, input_dim: usize, size: usize, dim: usize, stride: usize) -> Result<Self> {
        let in_proj = Conv1d::new(vb.pp("in_proj"), input_dim, dim, ConvGeom::plain(1, 0), true)?;
        let out_proj = Conv1d::new(vb.pp("out_proj"), dim, input_dim, ConvGeom::plain(1, 0), true)?;
        let codebook = vb.pp("codebook").get((size, dim), "weight")?;
        let raw = codebook.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        let mut normed = vec![0f32; raw.len()];
        for (r, n) in raw.chunks(dim).zip(normed.chunks_mut(dim)) {
            normalize(r, n);
        }
        let sq = normed.chunks(dim).map(|n| n.iter().map(|x| x * x).sum()).collect();
        Ok(Self { in_proj, out_proj, codebook, raw, normed, sq, size, dim, stride })
    }

    pub fn device(&self) -> candle_core::Device {
        self.codebook.device().clone()
    }

    pub fn dtype(&self) -> DType {
        self.codebook.dtype()
    }

    /// Index of the nearest normalised codebook row to `e`, scored like the reference:
    /// (‖ê‖² − 2 ê·ĉ) + ‖ĉ‖², smallest first, the lowest index on ties.
    fn nearest(&self, e: &[f32], scratch: &mut [f32]) -> u32 {
        normalize(e, scratch);
        let se: f32 = scratch.iter().map(|x| x * x).sum();
        let mut best = 0usize;
        let mut best_d = f32::INFINITY;
        for (j, c) in self.normed.chunks(self.dim).enumerate() {
            let m: f32 = scratch.iter().zip(c).map(|(a, b)| a * b).sum();
            let d = (se - 2.0 * m) + self.sq[j];
            if d < best_d {
                best_d = d;
                best = j;
            }
        }
        best as u32
    }

    /// Codes `(batch, frames / stride)` and the quantised contribution `(batch, channels, frames)`.
    pub fn quantize(&self, residual: &Tensor) -> Result<(Tensor, Tensor)> {
        let z = pool_frames(residual, self.stride)?;
        let z_e = self.in_proj.forward(&z)?; // (b, dim, t)
        let (b, _, t) = z_e.dims3()?;
        let host = z_e.to_dtype(DType::F32)?.to_vec3::<f32>()?;
        let mut codes = Vec::with_capacity(b * t);
        let mut picked = vec![0f32; b * self.dim * t];
        let mut e = vec![0f32; self.dim];
        let mut scratch = vec![0f32; self.dim];
        for (bi, rows) in host.iter().enumerate() {
            for ti in 0..t {
                for (d, row) in rows.iter().enumerate() {
                    e[d] = if row[ti].is_nan() { 0.0 } else { row[ti] };
                }
                let code = self.nearest(&e, &mut scratch);
                codes.push(code);
                let entry = &self.raw[code as usize * self.dim..(code as usize + 1) * self.dim];
                for (d, v) in entry.iter().enumerate() {
                    picked[(bi * self.dim + d) * t + ti] = *v;
                }
            }
        }
        let dev = z_e.device();
        let z_q = Tensor::from_vec(picked, (b, self.dim, t), dev)?.to_dtype(z_e.dtype())?;
        // The reference's straight-through form z_e + (z_q − z_e), kept for bit-level parity.
        let z_q = (&z_e + (z_q - &z_e)?)?;
        let up = repeat_frames(&self.out_proj.forward(&z_q)?, self.stride)?;
        Ok((Tensor::from_vec(codes, (b, t), dev)?, up))
    }

    /// The contribution of `codes` `(batch, t)` to the latent: raw rows, projected up, repeated.
    pub fn decode_codes(&self, codes: &Tensor) -> Result<Tensor> {
        let (b, t) = codes.dims2()?;
        let flat = codes.to_dtype(DType::U32)?.flatten_all()?.to_vec1::<u32>()?;
        if let Some(bad) = flat.iter().find(|&&c| c as usize >= self.size) {
            candle_core::bail!("code {bad} is out of range for a codebook of {} entries", self.size);
        }
        let z_p = self
            .codebook
            .embedding(&Tensor::from_vec(flat, b * t, codes.device())?)?
            .reshape((b, t, self.dim))?
            .transpose(1, 2)?
            .contiguous()?;
        repeat_frames(&self.out_proj.forward(&z_p)?, self.stride)
    }
}
