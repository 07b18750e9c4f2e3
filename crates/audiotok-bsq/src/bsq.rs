//! Binary Spherical Quantization (bsq-vit's `BinarySphericalQuantizer` with `l2_norm` and
//! `post_q_l2_norm`, `soft_entropy=True`), and the integer index of a code.
//!
//! `z` (already L2-normalised, `[..., L]`) is quantised to `sign(z)/√L` (`z > 0 → +1`, else `-1`) with
//! a straight-through gradient. The soft entropy splits `z` into `L/g` groups of `g` bits; for each
//! group the distribution over its `2^g` codes `c` (±1/√L, MSB-first) is `softmax(2·τ·(z_g · c))`.
//! The per-sample entropy is the mean over tokens of the sum over groups of each distribution's
//! entropy; the codebook entropy is the sum over groups of the entropy of the distribution averaged
//! over every token of the batch. Loss: `β·mean_tokens(‖ẑ − z‖²) + ζ·(γ0·H_ps − γ·H_cb)/τ`.

use candle_core::{Result, Tensor, D};

use crate::config::EntropyMode;
use crate::ops::{const_like, entropy_last, sigmoid, sign_pm1, softmax_last};
use crate::Config;

/// The quantiser's outputs for a batch of `M` tokens.
#[derive(Debug, Clone)]
pub struct Quantized {
    /// `sign(z)/√L` with the straight-through gradient to `z`, `[..., L]`.
    pub zq: Tensor,
    /// Commitment term `β·mean(‖ẑ − z‖²)` (scalar).
    pub commit: Tensor,
    /// Per-sample entropy `H_ps` (scalar).
    pub persample_entropy: Tensor,
    /// Codebook entropy `H_cb` (scalar).
    pub codebook_entropy: Tensor,
    /// `commit + ζ·(γ0·H_ps − γ·H_cb)/τ` (scalar).
    pub loss: Tensor,
    /// Batch-averaged group distributions `[L/g, 2^g]` (`[L, 2]` in the analytical mode).
    pub avg_prob: Tensor,
}

/// The `2^g` group codes as `±1` rows, MSB-first (row `d` has bit `j` = bit `g-1-j` of `d`).
pub fn group_codebook(g: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity((1 << g) * g);
    for d in 0..(1usize << g) {
        for j in 0..g {
            out.push(if (d >> (g - 1 - j)) & 1 == 1 { 1.0 } else { -1.0 });
        }
    }
    out
}

/// Quantises `z` (`[..., L]`, L2-normalised) and computes the loss terms.
pub fn quantize(z: &Tensor, cfg: &Config) -> Result<Quantized> {
    let l = cfg.bits;
    let scale = 1.0 / (l as f64).sqrt();
    let hard = sign_pm1(&z.detach())?;
    let zq = (z + (hard - z)?.detach())?;
    let zq = (zq * scale)?;
    let tau = cfg.inv_temperature;
    let tokens = z.elem_count() / l;
    let flat = z.reshape((tokens, l))?;
    let (persample_entropy, codebook_entropy, avg_prob) = match cfg.persample_entropy {
        EntropyMode::Group => {
            let (g, groups) = (cfg.group_size, cfg.groups());
            let cb = const_like(group_codebook(g), &[1 << g, g], z)?;
            let cb = (cb * scale)?;
            let zg = flat.reshape((tokens * groups, g))?;
            let logits = (zg.matmul(&cb.t()?)? * (2.0 * tau))?;
            let prob = softmax_last(&logits)?.reshape((tokens, groups, 1 << g))?;
            let hps = entropy_last(&prob)?.sum(D::Minus1)?.mean_all()?;
            let avg = prob.mean(0)?;
            let hcb = entropy_last(&avg)?.sum_all()?;
            (hps, hcb, avg)
        }
        EntropyMode::Analytical => {
            let p = sigmoid(&(&flat * (-4.0 * scale * tau))?)?;
            let one_minus = (p.neg()? + 1.0)?;
            let prob = Tensor::stack(&[&p, &one_minus], D::Minus1)?;
            let hps = entropy_last(&prob)?.sum(D::Minus1)?.mean_all()?;
            let avg = prob.mean(0)?;
            let hcb = entropy_last(&avg)?.sum_all()?;
            (hps, hcb, avg)
        }
    };
    let commit = ((zq.detach() - z)?.sqr()?.sum(D::Minus1)?.mean_all()? * cfg.beta)?;
    let penalty = ((&persample_entropy * cfg.gamma0)? - (&codebook_entropy * cfg.gamma)?)?;
    let loss = (&commit + (penalty * (cfg.zeta / tau))?)?;
    Ok(Quantized { zq, commit, persample_entropy, codebook_entropy, loss, avg_prob })
}

/// The MSB-first index of each code: `Σ_d bit_d · 2^(L-1-d)`, `bit_d = z_d > 0`. `z` is `[M·L]`
/// row-major (any values: only the signs count).
pub fn indices(z: &[f32], bits: usize) -> Vec<u32> {
    z.chunks_exact(bits).map(|row| row.iter().fold(0u32, |acc, &v| (acc << 1) | u32::from(v > 0.0))).collect()
}

/// The per-group MSB-first indices, `[M · L/g]` row-major (group 0 holds the first `g` bits).
pub fn group_indices(z: &[f32], group_size: usize) -> Vec<u32> {
    indices(z, group_size)
}

/// The inverse of [`indices`]: each index to its `L` signs `±1` (MSB first), `[M·L]` row-major.
pub fn codes(indices: &[u32], bits: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(indices.len() * bits);
    for &i in indices {
        for d in 0..bits {
            out.push(if (i >> (bits - 1 - d)) & 1 == 1 { 1.0 } else { -1.0 });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn msb_first() {
        assert_eq!(indices(&[1.0, -1.0, -1.0, 0.5, 0.0, 2.0], 3), vec![4, 5]);
        assert_eq!(codes(&[4, 5], 3), vec![1.0, -1.0, -1.0, 1.0, -1.0, 1.0]);
        assert_eq!(group_codebook(2), vec![-1.0, -1.0, -1.0, 1.0, 1.0, -1.0, 1.0, 1.0]);
        assert_eq!(group_indices(&[1.0, -1.0, -1.0, 0.5], 2), vec![2, 1]);
    }

    proptest! {
        #[test]
        fn index_and_codes_invert(bits in 1usize..=32, seed in any::<u64>(), n in 1usize..20) {
            let mut rng = crate::Rng::new(seed);
            let mask = if bits == 32 { u32::MAX } else { (1u32 << bits) - 1 };
            let idx: Vec<u32> = (0..n).map(|_| rng.next_u64() as u32 & mask).collect();
            let c = codes(&idx, bits);
            prop_assert_eq!(indices(&c, bits), idx.clone());
            // and from codes: any sign pattern survives the round trip
            let z: Vec<f32> = (0..n * bits).map(|_| rng.normal() as f32).collect();
            let back = codes(&indices(&z, bits), bits);
            for (a, b) in z.iter().zip(&back) {
                prop_assert_eq!(*b, if *a > 0.0 { 1.0 } else { -1.0 });
            }
        }
    }
}
