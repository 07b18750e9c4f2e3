//! Mel spectrogram in dB for spectrogram tokenizers (BSQ / AudioMAE style).
//!
//! `librosa.power_to_db(librosa.feature.melspectrogram(y, sr=16000, n_fft=1024, hop_length=160,
//! n_mels=128), ref=np.max, top_db=80)`: centred zero padding, periodic Hann, power 2, Slaney mel
//! bank over 0-8000 Hz; dB relative to the clip's maximum, so values lie in `[-80, 0]`. Optionally
//! cropped or padded (with -80 dB, silence on this scale) to a fixed frame count.

use crate::fastmath;
use crate::mel::MelBank;
use crate::stft::{PadMode, Stft};
use crate::Features;

/// Settings of the mel-dB extractor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MelDbConfig {
    /// Input rate (Hz).
    pub sample_rate: u32,
    /// FFT size.
    pub n_fft: usize,
    /// Hop in samples.
    pub hop: usize,
    /// Mel bands.
    pub n_mels: usize,
    /// Dynamic range kept below the maximum (dB).
    pub top_db: f64,
    /// Crop or pad to this many frames (`None`: `1 + L / hop` frames).
    pub frames: Option<usize>,
}

impl Default for MelDbConfig {
    fn default() -> Self {
        MelDbConfig { sample_rate: 16_000, n_fft: 1024, hop: 160, n_mels: 128, top_db: 80.0, frames: Some(1024) }
    }
}

/// A mel-dB extractor with its planned FFT and mel bank.
pub struct MelDb {
    cfg: MelDbConfig,
    stft: Stft,
    bank: MelBank,
    mel: Vec<f64>,
}

impl MelDb {
    /// Plans the extractor.
    pub fn new(cfg: MelDbConfig) -> Self {
        let bank = MelBank::librosa(cfg.n_fft, cfg.n_mels, 0.0, f64::from(cfg.sample_rate) / 2.0, cfg.sample_rate);
        MelDb { stft: Stft::new(cfg.n_fft, cfg.hop), mel: vec![0.0; cfg.n_mels], bank, cfg }
    }

    /// Features of one clip at the configured rate: shape `(n_mels, frames)`, C order.
    pub fn compute(&mut self, x: &[f32]) -> Features {
        let n_mels = self.cfg.n_mels;
        let frames = self.stft.frames(x.len());
        let mut s = vec![0f64; n_mels * frames];
        let mut max = 0f64;
        for t in 0..frames {
            if self.stft.frame(x, x.len(), PadMode::Constant, t, false) {
                self.bank.apply(self.stft.power(), &mut self.mel);
                for (m, &e) in self.mel.iter().enumerate() {
                    s[m * frames + t] = e;
                    max = max.max(e);
                }
            }
        }
        let amin = 1e-10f64;
        let reference = 10.0 * max.max(amin).log10();
        let mut db: Vec<f64> = s.iter().map(|&v| 10.0 * fastmath::log10(v.max(amin)) - reference).collect();
        let top = db.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let floor = top - self.cfg.top_db;
        for v in &mut db {
            *v = v.max(floor);
        }
        let out_frames = self.cfg.frames.unwrap_or(frames);
        let mut data = vec![floor as f32; n_mels * out_frames];
        let keep = frames.min(out_frames);
        for m in 0..n_mels {
            for t in 0..keep {
                data[m * out_frames + t] = db[m * frames + t] as f32;
            }
        }
        Features { shape: vec![n_mels, out_frames], data, mask_ones: Some(keep) }
    }
}
