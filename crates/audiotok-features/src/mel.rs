//! Slaney-scale, Slaney-normalised mel filter banks, stored sparse.
//!
//! Two constructions are provided because the references differ in detail: transformers'
//! `mel_filter_bank` (float64 weights over `linspace(0, sr // 2, bins)`) for Whisper, and librosa's
//! `filters.mel` (weights rounded to float32, `rfftfreq` bins) for mel-dB.

use crate::real::Real;

/// Hz to mel on the Slaney scale (linear below 1 kHz, logarithmic above).
pub fn hz_to_mel(f: f64) -> f64 {
    let logstep = 27.0 / 6.4f64.ln();
    if f >= 1000.0 {
        15.0 + (f / 1000.0).ln() * logstep
    } else {
        3.0 * f / 200.0
    }
}

/// Mel to Hz on the Slaney scale.
pub fn mel_to_hz(m: f64) -> f64 {
    let logstep = 6.4f64.ln() / 27.0;
    if m >= 15.0 {
        1000.0 * (logstep * (m - 15.0)).exp()
    } else {
        200.0 * m / 3.0
    }
}

/// One triangular filter: consecutive weights starting at FFT bin `start`.
#[derive(Debug, Clone, PartialEq)]
struct Filter {
    start: usize,
    weights: Vec<f64>,
    weights32: Vec<f32>,
}

/// A mel filter bank over `bins` FFT bins, non-zero weights only.
#[derive(Debug, Clone, PartialEq)]
pub struct MelBank {
    bins: usize,
    filters: Vec<Filter>,
}

fn linspace(a: f64, b: f64, n: usize) -> Vec<f64> {
    // numpy: a + i * step, with the last value set to b exactly.
    let step = (b - a) / (n - 1) as f64;
    let mut v: Vec<f64> = (0..n).map(|i| a + i as f64 * step).collect();
    if let Some(last) = v.last_mut() {
        *last = b;
    }
    v
}

impl MelBank {
    fn from_dense(bins: usize, dense: Vec<Vec<f64>>) -> Self {
        let filters = dense
            .into_iter()
            .map(|row| {
                let start = row.iter().position(|&w| w != 0.0).unwrap_or(0);
                let end = row.iter().rposition(|&w| w != 0.0).map_or(start, |e| e + 1);
                let weights = row[start..end].to_vec();
                Filter { start, weights32: weights.iter().map(|&w| w as f32).collect(), weights }
            })
            .collect();
        MelBank { bins, filters }
    }

    fn triangles(fft_freqs: &[f64], mel_f: &[f64], n_mels: usize, round_f32: bool) -> Vec<Vec<f64>> {
        (0..n_mels)
            .map(|i| {
                let (lo, mid, hi) = (mel_f[i], mel_f[i + 1], mel_f[i + 2]);
                let enorm = 2.0 / (hi - lo);
                fft_freqs
                    .iter()
                    .map(|&f| {
                        let down = (f - lo) / (mid - lo);
                        let up = (hi - f) / (hi - mid);
                        let w = down.min(up).max(0.0);
                        if round_f32 {
                            // librosa stores float32 weights, then scales them in float64 and stores float32 again.
                            f64::from((f64::from(w as f32) * enorm) as f32)
                        } else {
                            w * enorm
                        }
                    })
                    .collect()
            })
            .collect()
    }

    /// transformers' `mel_filter_bank(bins, n_mels, fmin, fmax, sr, norm="slaney", mel_scale="slaney")`.
    pub fn transformers(bins: usize, n_mels: usize, fmin: f64, fmax: f64, sr: u32) -> Self {
        let fft_freqs = linspace(0.0, f64::from(sr / 2), bins);
        let mel_f: Vec<f64> =
            linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2).into_iter().map(mel_to_hz).collect();
        Self::from_dense(bins, Self::triangles(&fft_freqs, &mel_f, n_mels, false))
    }

    /// librosa's `filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin, fmax)` (float32 weights).
    pub fn librosa(n_fft: usize, n_mels: usize, fmin: f64, fmax: f64, sr: u32) -> Self {
        let bins = n_fft / 2 + 1;
        // np.fft.rfftfreq(n_fft, 1 / sr): k * (1 / (n_fft * (1 / sr))).
        let val = 1.0 / (n_fft as f64 * (1.0 / f64::from(sr)));
        let fft_freqs: Vec<f64> = (0..bins).map(|k| k as f64 * val).collect();
        let mel_f: Vec<f64> =
            linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2).into_iter().map(mel_to_hz).collect();
        Self::from_dense(bins, Self::triangles(&fft_freqs, &mel_f, n_mels, true))
    }

    /// Number of mel bands.
    pub fn n_mels(&self) -> usize {
        self.filters.len()
    }

    /// Number of FFT bins the bank expects.
    pub fn bins(&self) -> usize {
        self.bins
    }

    /// Number of stored (non-zero) weights.
    pub fn nnz(&self) -> usize {
        self.filters.iter().map(|f| f.weights.len()).sum()
    }

    /// Mel energies of one power spectrum: `out[m] = sum_k w[m][k] * power[k]`, in `f64` or `f32`.
    pub fn apply<T: Real>(&self, power: &[T], out: &mut [T]) {
        for (o, f) in out.iter_mut().zip(&self.filters) {
            let w = T::weights(&f.weights, &f.weights32);
            let p = &power[f.start..f.start + w.len()];
            // Four independent partial sums: a single running sum is bound by add latency.
            let mut acc = [T::default(); 4];
            let (wc, pc) = (w.chunks_exact(4), p.chunks_exact(4));
            let (wr, pr) = (wc.remainder(), pc.remainder());
            for (w4, p4) in wc.zip(pc) {
                for j in 0..4 {
                    acc[j] = acc[j] + w4[j] * p4[j];
                }
            }
            let mut tail = T::default();
            for (&w, &x) in wr.iter().zip(pr) {
                tail = tail + w * x;
            }
            *o = (acc[0] + acc[2]) + (acc[1] + acc[3]) + tail;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mel_scale_round_trips() {
        for f in [0.0, 100.0, 999.0, 1000.0, 4000.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(f)) - f).abs() < 1e-9);
        }
        assert!((hz_to_mel(1000.0) - 15.0).abs() < 1e-12);
    }

    #[test]
    fn whisper_bank_is_sparse_and_normalised() {
        let b = MelBank::transformers(201, 128, 0.0, 8000.0, 16000);
        assert_eq!(b.n_mels(), 128);
        assert!(b.nnz() < 201 * 4, "{}", b.nnz());
        // Slaney normalisation: each triangle's area in Hz is 1 (weights * bin width ~ 1).
        let mut out = vec![0.0f64; 128];
        b.apply(&vec![1.0f64; 201], &mut out);
        // Low filters are narrower than the 40 Hz bin spacing and sample the triangle unevenly.
        for (m, o) in out.iter().enumerate().skip(64) {
            assert!((o * 40.0 - 1.0).abs() < 0.2, "mel {m}: {o}");
        }
    }
}
