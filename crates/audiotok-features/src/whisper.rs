//! Whisper log-mel features, as transformers' `WhisperFeatureExtractor` computes them.
//!
//! 16 kHz input; n_fft 400, hop 160, periodic Hann, centred reflect padding; power spectrum of a
//! `complex64` STFT; Slaney mel bank over 0-8000 Hz in float64; `log10(max(x, 1e-10))` cast to
//! float32; the last frame dropped; floor at `max - 8`; `(x + 4) / 4`.
//!
//! With [`WhisperPadding::MaxLength`] (transformers' default `padding="max_length"`) the signal is
//! truncated or zero-padded to 30 s (480000 samples, 3000 frames); with
//! [`WhisperPadding::Longest`] it is used as is (`L / 160` frames).

use crate::mel::MelBank;
use crate::real::Real;
use crate::stft::{PadMode, Stft};
use crate::Features;

/// Samples in Whisper's 30 s window at 16 kHz.
pub const N_SAMPLES: usize = 480_000;
/// STFT hop in samples.
pub const HOP: usize = 160;
/// STFT size.
pub const N_FFT: usize = 400;

/// How the signal length is fixed before the STFT. Serialised `"max-length"` / `"longest"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WhisperPadding {
    /// Pad or truncate to 30 s, 3000 frames (`padding="max_length"`).
    #[default]
    MaxLength,
    /// No padding or truncation (`padding="longest"` for one clip).
    Longest,
}

/// The arithmetic the extractor runs in. Serialised `"fast"` / `"exact"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// float32 FFT, mel and log (as the torch path of transformers computes): within 1e-4 of
    /// the reference, and faster.
    #[default]
    Fast,
    /// float64 as transformers' numpy path, with its `complex64` rounding: bit-identical output.
    Exact,
}

/// The STFT and mel buffer in one precision.
struct Engine<T: Real> {
    stft: Stft<T>,
    mel: Vec<T>,
}

enum Engines {
    Fast(Engine<f32>),
    Exact(Engine<f64>),
}

/// A Whisper feature extractor with its planned FFT and mel bank.
pub struct Whisper {
    engine: Engines,
    bank: MelBank,
    padding: WhisperPadding,
    rows: Vec<f32>,
    computed: Vec<bool>,
}

impl<T: Real> Engine<T> {
    fn new(n_mels: usize) -> Self {
        Engine { stft: Stft::new(N_FFT, HOP), mel: vec![T::default(); n_mels] }
    }

    /// Writes the log10 mel row of every frame holding signal into `rows` (frame-major), marks it
    /// in `computed`, and returns one past the last such frame.
    fn log_mel(&mut self, bank: &MelBank, x: &[f32], n: usize, rows: &mut [f32], computed: &mut [bool]) -> usize {
        let n_mels = bank.n_mels();
        let floor = T::of_f64(1e-10);
        let mut last = 0;
        for (t, row) in rows.chunks_exact_mut(n_mels).enumerate() {
            if self.stft.frame(x, n, PadMode::Reflect, t, true) {
                bank.apply(self.stft.power(), &mut self.mel);
                for (r, &e) in row.iter_mut().zip(&self.mel) {
                    *r = (if e > floor { e } else { floor }).log10().to_f32();
                }
                computed[t] = true;
                last = t + 1;
            }
        }
        last
    }
}

impl Whisper {
    /// `n_mels` is 80 (Whisper v1-v2) or 128 (Whisper v3, Qwen2-Audio); [`Precision::Fast`].
    pub fn new(n_mels: usize, padding: WhisperPadding) -> Self {
        Self::with_precision(n_mels, padding, Precision::default())
    }

    /// An extractor computing in the given precision.
    pub fn with_precision(n_mels: usize, padding: WhisperPadding, precision: Precision) -> Self {
        Whisper {
            engine: match precision {
                Precision::Fast => Engines::Fast(Engine::new(n_mels)),
                Precision::Exact => Engines::Exact(Engine::new(n_mels)),
            },
            bank: MelBank::transformers(N_FFT / 2 + 1, n_mels, 0.0, 8000.0, 16_000),
            padding,
            rows: Vec::new(),
            computed: Vec::new(),
        }
    }

    /// Number of mel bands.
    pub fn n_mels(&self) -> usize {
        self.bank.n_mels()
    }

    /// The number of ones in the feature attention mask for a signal of `len` samples:
    /// `ceil(min(len, 480000) / 160)` in max-length mode, capped by the frame count.
    pub fn mask_ones(&self, len: usize) -> usize {
        let (n, frames) = self.geometry(len);
        len.min(n).div_ceil(HOP).min(frames)
    }

    fn geometry(&self, len: usize) -> (usize, usize) {
        match self.padding {
            WhisperPadding::MaxLength => (N_SAMPLES, N_SAMPLES / HOP),
            WhisperPadding::Longest => (len, len / HOP),
        }
    }

    /// Features of one 16 kHz clip: shape `(n_mels, frames)`, C order.
    pub fn compute(&mut self, x: &[f32]) -> Features {
        let n_mels = self.bank.n_mels();
        let (n, frames) = self.geometry(x.len());
        let x = &x[..x.len().min(n)];
        // Frame-major log-mel first (contiguous rows vectorise), transposed at the end. Frames
        // wholly in zero padding are not transformed: their log-mel is the constant log10(1e-10).
        let silent = (1e-10f64).log10() as f32;
        self.rows.resize(n_mels * frames, silent);
        self.computed.clear();
        self.computed.resize(frames, false);
        let (rows, computed) = (&mut self.rows[..n_mels * frames], &mut self.computed[..]);
        let last = match &mut self.engine {
            Engines::Fast(e) => e.log_mel(&self.bank, x, n, rows, computed),
            Engines::Exact(e) => e.log_mel(&self.bank, x, n, rows, computed),
        };
        let rows = &mut self.rows[..n_mels * frames];
        for (row, _) in rows.chunks_exact_mut(n_mels).zip(&self.computed).take(last).filter(|(_, &c)| !c) {
            row.fill(silent);
        }
        let mut max = rows[..last * n_mels].iter().fold(f32::NEG_INFINITY, |a, &b| if b > a { b } else { a });
        if last < frames {
            max = max.max(silent);
        }
        let floor = max - 8.0;
        let tail = (silent.max(floor) + 4.0) / 4.0;
        let mut out = vec![0f32; n_mels * frames];
        const BLOCK: usize = 16;
        for t0 in (0..last).step_by(BLOCK) {
            let t1 = (t0 + BLOCK).min(last);
            for m in 0..n_mels {
                let dst = &mut out[m * frames + t0..m * frames + t1];
                for (k, d) in dst.iter_mut().enumerate() {
                    let v = rows[(t0 + k) * n_mels + m];
                    *d = (if v > floor { v } else { floor } + 4.0) / 4.0;
                }
            }
        }
        for m in 0..n_mels {
            out[m * frames + last..(m + 1) * frames].fill(tail);
        }
        Features { shape: vec![n_mels, frames], data: out, mask_ones: Some(self.mask_ones(x.len())) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_masks() {
        let mut w = Whisper::new(80, WhisperPadding::MaxLength);
        let x: Vec<f32> = (0..16080).map(|i| (i as f32 * 0.05).sin() * 0.1).collect();
        let f = w.compute(&x[..16000]);
        assert_eq!(f.shape, vec![80, 3000]);
        assert_eq!(f.mask_ones, Some(100));
        assert_eq!(w.mask_ones(16001), 101);
        assert_eq!(w.mask_ones(600_000), 3000);
        let mut l = Whisper::new(128, WhisperPadding::Longest);
        let g = l.compute(&x[..16080]);
        assert_eq!(g.shape, vec![128, 100]);
        assert_eq!(g.mask_ones, Some(100));
    }

    #[test]
    fn floor_is_max_minus_eight() {
        let mut w = Whisper::new(128, WhisperPadding::MaxLength);
        let x: Vec<f32> = (0..8000).map(|i| (i as f32 * 0.3).sin()).collect();
        let f = w.compute(&x);
        let max = f.data.iter().cloned().fold(f32::MIN, f32::max);
        let min = f.data.iter().cloned().fold(f32::MAX, f32::min);
        assert!((max - min - 2.0).abs() < 1e-5, "{max} {min}");
    }
}
