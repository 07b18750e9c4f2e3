//! Short-time power spectra with planned real FFTs.
//!
//! Frames are read straight from the caller's signal: centre padding (reflect or zeros) and the
//! zero padding up to a fixed length are index arithmetic, never a padded copy. Frames that lie
//! wholly in zero padding are reported as such instead of being transformed, which is most of the
//! work saved for a short clip padded to Whisper's 30 s.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

use crate::real::Real;

/// How the signal is extended by `n_fft / 2` samples on both sides (`center=True`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PadMode {
    /// Mirror without repeating the edge sample (`np.pad(mode="reflect")`): transformers.
    Reflect,
    /// Zeros (`np.pad(mode="constant")`): librosa's default since 0.10.
    Constant,
}

/// A planned STFT of one size with a periodic Hann window, computed in `T` (`f64` or `f32`).
pub struct Stft<T: Real = f64> {
    n_fft: usize,
    hop: usize,
    window: Vec<T>,
    fft: Arc<dyn RealToComplex<T>>,
    input: Vec<T>,
    spectrum: Vec<Complex<T>>,
    scratch: Vec<Complex<T>>,
    power: Vec<T>,
}

/// `np.pad(..., mode="reflect")` index for any `j`, including pads longer than the signal.
fn reflect(j: i64, n: i64) -> i64 {
    if n == 1 {
        return 0;
    }
    let p = 2 * (n - 1);
    let m = j.rem_euclid(p);
    if m >= n {
        p - m
    } else {
        m
    }
}

/// Periodic Hann window (`np.hanning(n + 1)[:-1]`, `scipy.signal.get_window("hann", n)`).
pub fn hann_periodic(n: usize) -> Vec<f64> {
    (0..n).map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos()).collect()
}

impl<T: Real> Stft<T> {
    /// A planned STFT of `n_fft` points every `hop` samples.
    pub fn new(n_fft: usize, hop: usize) -> Self {
        let fft = RealFftPlanner::<T>::new().plan_fft_forward(n_fft);
        let input = fft.make_input_vec();
        let spectrum = fft.make_output_vec();
        let scratch = fft.make_scratch_vec();
        Stft {
            n_fft,
            hop,
            window: hann_periodic(n_fft).into_iter().map(T::of_f64).collect(),
            input,
            power: vec![T::default(); spectrum.len()],
            spectrum,
            scratch,
            fft,
        }
    }

    /// Number of frequency bins (`n_fft / 2 + 1`).
    pub fn bins(&self) -> usize {
        self.n_fft / 2 + 1
    }

    /// Number of centred frames over a signal of `len` samples: `1 + len / hop`.
    pub fn frames(&self, len: usize) -> usize {
        1 + len / self.hop
    }

    /// The power spectrum of the last frame computed.
    pub fn power(&self) -> &[T] {
        &self.power
    }

    /// Computes the power spectrum of frame `t` of the signal `x` extended with zeros to `len`
    /// samples and centre-padded with `mode`. With `complex64`, the spectrum is rounded to single
    /// precision before squaring (transformers stores its STFT as `complex64`).
    ///
    /// Returns `false`, leaving the power untouched, when every sample of the frame is zero.
    pub fn frame(&mut self, x: &[f32], len: usize, mode: PadMode, t: usize, complex64: bool) -> bool {
        let pad = (self.n_fft / 2) as i64;
        let n = len as i64;
        let real = x.len().min(len) as i64;
        let j0 = (t * self.hop) as i64 - pad;
        let j1 = j0 + self.n_fft as i64; // exclusive
                                         // A frame past the real samples whose reflection (if any) also stays past them is zero.
        if j0 >= real && (j1 <= n || (mode == PadMode::Constant) || 2 * n - 1 - j1 >= real) && n > pad {
            return false;
        }
        if j0 >= 0 && j1 <= real {
            let src = &x[j0 as usize..j1 as usize];
            for ((d, &s), &w) in self.input.iter_mut().zip(src).zip(&self.window) {
                *d = T::of_f32(s) * w;
            }
        } else {
            let mut any = false;
            for k in 0..self.n_fft {
                let j = j0 + k as i64;
                let idx = if (0..n).contains(&j) {
                    Some(j)
                } else {
                    match mode {
                        PadMode::Reflect => Some(reflect(j, n)),
                        PadMode::Constant => None,
                    }
                };
                let s = match idx {
                    Some(i) if i < real => {
                        any = true;
                        T::of_f32(x[i as usize])
                    }
                    _ => T::default(),
                };
                self.input[k] = s * self.window[k];
            }
            if !any {
                return false;
            }
        }
        // The buffers are sized by the plan, so processing cannot fail.
        if self.fft.process_with_scratch(&mut self.input, &mut self.spectrum, &mut self.scratch).is_err() {
            return false;
        }
        for (p, &c) in self.power.iter_mut().zip(&self.spectrum) {
            *p = T::power(c, complex64);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_matches_numpy() {
        // np.pad([0,1,2,3], 5, mode="reflect") -> [1 2 3 2 1 | 0 1 2 3 | 2 1 0 1 2]
        let got: Vec<i64> = (-5..9).map(|j| reflect(j, 4)).collect();
        assert_eq!(got, vec![1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1, 2]);
    }

    #[test]
    fn dc_frame_power() {
        let mut s = Stft::<f64>::new(8, 4);
        let x = vec![1.0f32; 64];
        assert!(s.frame(&x, 64, PadMode::Reflect, 4, false));
        // Sum of a periodic Hann window of 8 is 4: DC power 16.
        assert!((s.power()[0] - 16.0).abs() < 1e-9);
        assert!(s.power()[2] < 1e-12);
    }

    #[test]
    fn zero_frames_are_skipped() {
        let mut s = Stft::<f64>::new(8, 4);
        let x = vec![1.0f32; 10];
        assert!(s.frame(&x, 100, PadMode::Reflect, 3, false));
        assert!(!s.frame(&x, 100, PadMode::Reflect, 5, false));
        // The reflection at the end of a zero tail is still zero.
        assert!(!s.frame(&x, 100, PadMode::Reflect, 25, false));
        assert!(!s.frame(&x, 10, PadMode::Constant, 4, false));
    }
}
