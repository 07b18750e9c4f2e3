//! # audiotok-features
//!
//! Model inputs computed from mono signals, each matching a reference implementation:
//!
//! - [`whisper`]: transformers' `WhisperFeatureExtractor` log-mel (80 or 128 bins).
//! - [`wav2vec2`]: the wav2vec2 / HuBERT zero-mean unit-variance normalisation.
//! - [`meldb`]: librosa mel spectrogram in dB relative to the maximum (spectrogram tokenizers).
//! - [`profiles`]: audio token counts per encoder (Qwen2-Audio, Whisper, HuBERT, SNAC, ...).
//! - [`npy`]: NumPy `.npy` reading and writing.
//!
//! [`Extractor`] puts the feature kinds behind one interface. With the `job` feature, the `job`
//! module runs it over many files (decoded and featurised on a thread pool of its own), writing
//! `.npy` files and a manifest (`job::write_features`, what `audiotok features` runs) or
//! returning the arrays (`job::compute_files`).

mod error;
mod fastmath;
#[cfg(feature = "job")]
pub mod job;
pub mod mel;
pub mod meldb;
pub mod npy;
pub mod profiles;
mod real;
pub mod stft;
pub mod wav2vec2;
pub mod whisper;

use std::fmt;
use std::str::FromStr;

pub use error::{FeatureError, Result};
#[cfg(feature = "job")]
pub use job::{compute_files, write_features, Computed, FeaturesOptions, FeaturesSummary, FileExtractor};
pub use profiles::{Profile, TokenCount};
pub use real::Real;

/// A computed feature array.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    /// Shape, outermost first (`(n_mels, frames)` for spectrograms, `(samples,)` for waveforms).
    pub shape: Vec<usize>,
    /// Values in C order.
    pub data: Vec<f32>,
    /// Leading frames (or samples) that hold real signal, the rest being padding: the number of
    /// ones in the attention mask.
    pub mask_ones: Option<usize>,
}

/// The feature kinds audiotok computes. Serialised in CLI spelling (`"whisper-128"`, ...;
/// `"hubert"` is read as [`FeatureKind::Wav2Vec2`]), as [`Display`](fmt::Display) and
/// [`FromStr`] spell them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FeatureKind {
    /// Whisper log-mel, 128 bins (Whisper v3, Qwen2-Audio).
    #[serde(rename = "whisper-128")]
    Whisper128,
    /// Whisper log-mel, 80 bins.
    #[serde(rename = "whisper-80")]
    Whisper80,
    /// Normalised waveform for wav2vec2 / HuBERT.
    #[serde(rename = "wav2vec2", alias = "hubert")]
    Wav2Vec2,
    /// Mel spectrogram in dB for spectrogram tokenizers.
    #[serde(rename = "mel-db")]
    MelDb,
}

impl FeatureKind {
    /// Every kind, in CLI spelling.
    pub const NAMES: &'static [&'static str] = &["whisper-128", "whisper-80", "wav2vec2", "mel-db"];

    /// The sample rate the kind expects its input at.
    pub fn sample_rate(self) -> u32 {
        16_000
    }
}

impl fmt::Display for FeatureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            FeatureKind::Whisper128 => "whisper-128",
            FeatureKind::Whisper80 => "whisper-80",
            FeatureKind::Wav2Vec2 => "wav2vec2",
            FeatureKind::MelDb => "mel-db",
        })
    }
}

impl FromStr for FeatureKind {
    type Err = FeatureError;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "whisper-128" => FeatureKind::Whisper128,
            "whisper-80" => FeatureKind::Whisper80,
            "wav2vec2" | "hubert" => FeatureKind::Wav2Vec2,
            "mel-db" => FeatureKind::MelDb,
            _ => {
                return Err(FeatureError::Config(format!(
                    "unknown feature kind '{s}'; known: {}",
                    Self::NAMES.join(", ")
                )))
            }
        })
    }
}

/// Options shared by the extractors built from a [`FeatureKind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExtractorOptions {
    /// Whisper padding mode.
    pub whisper_padding: whisper::WhisperPadding,
    /// Whisper arithmetic: float32 (default) or bit-exact float64.
    pub whisper_precision: whisper::Precision,
    /// Frames for mel-dB (`None`: no crop or pad; default 1024 through [`meldb::MelDbConfig`]).
    pub meldb_frames: Option<Option<usize>>,
}

/// One planned extractor of any kind; reuse it across clips (plans and buffers are kept).
pub enum Extractor {
    /// Whisper log-mel.
    Whisper(whisper::Whisper),
    /// wav2vec2 normalisation.
    Wav2Vec2,
    /// mel-dB.
    MelDb(meldb::MelDb),
}

impl Extractor {
    /// Plans an extractor.
    pub fn new(kind: FeatureKind, opts: ExtractorOptions) -> Self {
        match kind {
            FeatureKind::Whisper128 => {
                Extractor::Whisper(whisper::Whisper::with_precision(128, opts.whisper_padding, opts.whisper_precision))
            }
            FeatureKind::Whisper80 => {
                Extractor::Whisper(whisper::Whisper::with_precision(80, opts.whisper_padding, opts.whisper_precision))
            }
            FeatureKind::Wav2Vec2 => Extractor::Wav2Vec2,
            FeatureKind::MelDb => {
                let mut cfg = meldb::MelDbConfig::default();
                if let Some(f) = opts.meldb_frames {
                    cfg.frames = f;
                }
                Extractor::MelDb(meldb::MelDb::new(cfg))
            }
        }
    }

    /// Features of one mono clip at the kind's sample rate. Empty or non-finite input is an error.
    pub fn compute(&mut self, x: &[f32]) -> Result<Features> {
        if x.is_empty() {
            return Err(FeatureError::Input("empty signal".into()));
        }
        // A branch-free scan first (it vectorises); the position only when it fails.
        if !x.iter().fold(true, |ok, v| ok & v.is_finite()) {
            let i = x.iter().position(|v| !v.is_finite()).unwrap_or(0);
            return Err(FeatureError::Input(format!("non-finite sample at index {i}")));
        }
        Ok(match self {
            Extractor::Whisper(w) => w.compute(x),
            Extractor::Wav2Vec2 => wav2vec2::normalize(x),
            Extractor::MelDb(m) => m.compute(x),
        })
    }
}
