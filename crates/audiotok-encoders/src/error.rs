//! Errors of the encoders crate.

use std::path::PathBuf;

pub use audiotok_codecs::Mismatch;

/// Errors of configuration, weight loading and inference.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad or unsupported `config.json`.
    #[error("{0}")]
    Config(String),
    /// A model folder or file that is not there.
    #[error("{0}")]
    NotFound(String),
    /// A file that could not be read.
    #[error("{}: {}", .0.display(), .1)]
    Io(PathBuf, std::io::Error),
    /// A weights file that could not be parsed.
    #[error("bad weights: {0}")]
    Weights(String),
    /// Weights whose keys or shapes do not match the model (every problem listed).
    #[error("{0}")]
    Mismatch(Box<Mismatch>),
    /// Audio the model cannot embed (too short, non-finite samples).
    #[error("{0}")]
    Input(String),
    /// A failure inside candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
