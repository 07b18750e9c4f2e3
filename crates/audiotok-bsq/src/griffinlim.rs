//! Mel-db back to a waveform, as a listening aid (not a vocoder): the mel power is mapped to a
//! linear magnitude by the pseudo-inverse of the mel bank, then Griffin-Lim estimates a phase.
//!
//! This is librosa's `feature.inverse.mel_to_audio(M, sr=16000, n_fft=1024, hop_length=160,
//! power=2, n_iter, momentum=0.99)` with two documented differences, both for reproducibility:
//! - the magnitude is `sqrt(max(pinv(mel_basis) @ M, 0))` where librosa refines that same start
//!   by non-negative least squares (L-BFGS-B);
//! - the phase starts at zero (`griffinlim(init=None)`), not at random.
//!
//! `M = 10^(dB/10)` (the features are dB relative to the clip's maximum, so the loudness is
//! relative). The STFT and its inverse are librosa's: periodic Hann window, centred frames with
//! zero padding, inverse by windowed overlap-add divided by the window's sum of squares, output
//! length `hop · (frames − 1)`. Checked against librosa on `tests/fixtures/griffinlim/` (made by
//! `tools/gen_bsq_griffinlim_fixture.py`).

use std::sync::Arc;

use audiotok_features::mel::MelBank;
use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use crate::data::{HOP, N_FFT, SAMPLE_RATE};

/// Planned transforms and the mel bank's pseudo-inverse.
pub struct GriffinLim {
    n_mels: usize,
    window: Vec<f64>,
    fwd: Arc<dyn RealToComplex<f64>>,
    inv: Arc<dyn ComplexToReal<f64>>,
    /// `[bins, n_mels]`, row-major.
    pinv: Vec<f64>,
}

/// Solves `L Lᵀ x = b` in place for a Cholesky factor `l` (`n x n`, lower, row-major).
fn cholesky(a: &mut [f64], n: usize) {
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[j * n + k] * a[j * n + k];
        }
        let d = d.max(1e-300).sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / d;
        }
    }
}

fn cholesky_solve(l: &[f64], n: usize, b: &mut [f64]) {
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= l[i * n + k] * b[k];
        }
        b[i] = s / l[i * n + i];
    }
    for i in (0..n).rev() {
        let mut s = b[i];
        for k in i + 1..n {
            s -= l[k * n + i] * b[k];
        }
        b[i] = s / l[i * n + i];
    }
}

impl GriffinLim {
    /// For features of `n_mels` bins (16 kHz, n_fft 1024, hop 160, librosa's Slaney mel bank).
    pub fn new(n_mels: usize) -> GriffinLim {
        let bins = N_FFT / 2 + 1;
        let bank = MelBank::librosa(N_FFT, n_mels, 0.0, f64::from(SAMPLE_RATE) / 2.0, SAMPLE_RATE);
        // The dense bank A [n_mels, bins], column by column.
        let mut a = vec![0f64; n_mels * bins];
        let mut e = vec![0f64; bins];
        let mut col = vec![0f64; n_mels];
        for k in 0..bins {
            e[k] = 1.0;
            bank.apply(&e, &mut col);
            e[k] = 0.0;
            for (m, &v) in col.iter().enumerate() {
                a[m * bins + k] = v;
            }
        }
        // pinv(A) = Aᵀ (A Aᵀ)⁻¹ (A has full row rank; its condition number is about 5).
        let mut g = vec![0f64; n_mels * n_mels];
        for i in 0..n_mels {
            for j in 0..=i {
                let s: f64 = (0..bins).map(|k| a[i * bins + k] * a[j * bins + k]).sum();
                g[i * n_mels + j] = s;
                g[j * n_mels + i] = s;
            }
        }
        cholesky(&mut g, n_mels);
        let mut pinv = vec![0f64; bins * n_mels];
        let mut row = vec![0f64; n_mels];
        for k in 0..bins {
            for (m, r) in row.iter_mut().enumerate() {
                *r = a[m * bins + k];
            }
            cholesky_solve(&g, n_mels, &mut row);
            pinv[k * n_mels..(k + 1) * n_mels].copy_from_slice(&row);
        }
        let mut planner = RealFftPlanner::<f64>::new();
        let window = audiotok_features::stft::hann_periodic(N_FFT);
        GriffinLim { n_mels, window, fwd: planner.plan_fft_forward(N_FFT), inv: planner.plan_fft_inverse(N_FFT), pinv }
    }

    /// The linear magnitude `[bins, frames]` (row-major) of mel-db `[n_mels, frames]`:
    /// `sqrt(max(pinv(A) · 10^(dB/10), 0))`.
    pub fn magnitude(&self, mel_db: &[f32], frames: usize) -> Vec<f64> {
        let (m, bins) = (self.n_mels, N_FFT / 2 + 1);
        let power: Vec<f64> = mel_db.iter().map(|&d| 10f64.powf(f64::from(d) / 10.0)).collect();
        let mut out = vec![0f64; bins * frames];
        for k in 0..bins {
            let p = &self.pinv[k * m..(k + 1) * m];
            for t in 0..frames {
                let s: f64 = (0..m).map(|j| p[j] * power[j * frames + t]).sum();
                out[k * frames + t] = s.max(0.0).sqrt();
            }
        }
        out
    }

    /// librosa's `istft(center=True)` of `spec` (`[frames][bins]`): `hop · (frames − 1)` samples.
    fn istft(&self, spec: &[Vec<Complex<f64>>]) -> Vec<f64> {
        let n = spec.len();
        let half = N_FFT / 2;
        let full = N_FFT + HOP * (n - 1);
        let mut buf = vec![0f64; full];
        let mut wss = vec![0f64; full];
        let mut input = self.inv.make_input_vec();
        let mut frame = self.inv.make_output_vec();
        let scale = 1.0 / N_FFT as f64;
        for (t, s) in spec.iter().enumerate() {
            input.copy_from_slice(s);
            // irfft ignores the imaginary parts of the DC and Nyquist bins.
            input[0].im = 0.0;
            input[half].im = 0.0;
            // Cannot fail: the lengths are the plan's and the edge bins are real.
            let _ = self.inv.process(&mut input, &mut frame);
            for i in 0..N_FFT {
                buf[t * HOP + i] += frame[i] * scale * self.window[i];
                wss[t * HOP + i] += self.window[i] * self.window[i];
            }
        }
        let len = HOP * (n - 1);
        (0..len)
            .map(|i| {
                let w = wss[i + half];
                if w > f64::MIN_POSITIVE {
                    buf[i + half] / w
                } else {
                    buf[i + half]
                }
            })
            .collect()
    }

    /// librosa's `stft(center=True, pad_mode="constant")` of `y`: `1 + len / hop` frames.
    fn stft(&self, y: &[f64]) -> Vec<Vec<Complex<f64>>> {
        let half = N_FFT / 2;
        let frames = 1 + y.len() / HOP;
        let mut input = self.fwd.make_input_vec();
        let mut out = Vec::with_capacity(frames);
        for t in 0..frames {
            for (i, v) in input.iter_mut().enumerate() {
                let j = (t * HOP + i) as isize - half as isize;
                let x = if j >= 0 && (j as usize) < y.len() { y[j as usize] } else { 0.0 };
                *v = x * self.window[i];
            }
            let mut spec = self.fwd.make_output_vec();
            let _ = self.fwd.process(&mut input, &mut spec);
            out.push(spec);
        }
        out
    }

    /// Griffin-Lim as librosa's `griffinlim(S, n_iter, hop_length=160, n_fft=1024, momentum,
    /// init=None)` on a magnitude `[bins, frames]` (row-major).
    pub fn griffin_lim(&self, mag: &[f64], frames: usize, n_iter: usize, momentum: f64) -> Vec<f64> {
        let bins = N_FFT / 2 + 1;
        if frames < 2 {
            return Vec::new();
        }
        let s: Vec<Vec<f64>> = (0..frames).map(|t| (0..bins).map(|k| mag[k * frames + t]).collect()).collect();
        let mut angles: Vec<Vec<Complex<f64>>> =
            s.iter().map(|row| row.iter().map(|&v| Complex::new(v, 0.0)).collect()).collect();
        let mut tprev: Option<Vec<Vec<Complex<f64>>>> = None;
        let m = momentum / (1.0 + momentum);
        for _ in 0..n_iter {
            let inverse = self.istft(&angles);
            let rebuilt = self.stft(&inverse);
            for t in 0..frames {
                for k in 0..bins {
                    let mut a = rebuilt[t][k];
                    if let Some(p) = &tprev {
                        a -= p[t][k] * m;
                    }
                    a /= a.norm() + f64::MIN_POSITIVE;
                    angles[t][k] = a * s[t][k];
                }
            }
            tprev = Some(rebuilt);
        }
        self.istft(&angles)
    }

    /// A 16 kHz waveform of mel-db `[n_mels, frames]` (values in dB): [`magnitude`](Self::magnitude)
    /// then [`griffin_lim`](Self::griffin_lim) with momentum 0.99.
    pub fn mel_to_audio(&self, mel_db: &[f32], frames: usize, n_iter: usize) -> Vec<f32> {
        let mag = self.magnitude(mel_db, frames);
        self.griffin_lim(&mag, frames, n_iter, 0.99).into_iter().map(|v| v as f32).collect()
    }
}
