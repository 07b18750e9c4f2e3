//! Errors of the BSQ crate.

use std::path::PathBuf;

/// Tensors that did not match between a weights file and the model configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The weights file.
    pub source: String,
    /// Tensors the model needs that the file lacks.
    pub missing: Vec<String>,
    /// Tensors in the file that the model does not use.
    pub unexpected: Vec<String>,
    /// (name, shape the model needs, shape in the file).
    pub misshaped: Vec<(String, Vec<usize>, Vec<usize>)>,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: the weights do not fit this configuration", self.source)?;
        if !self.misshaped.is_empty() {
            let items: Vec<String> =
                self.misshaped.iter().map(|(n, want, got)| format!("{n} (model {want:?}, file {got:?})")).collect();
            write!(f, "; {} mis-shaped: {}", items.len(), items.join(", "))?;
        }
        if !self.missing.is_empty() {
            write!(f, "; {} missing: {}", self.missing.len(), self.missing.join(", "))?;
        }
        if !self.unexpected.is_empty() {
            write!(f, "; {} unexpected: {}", self.unexpected.len(), self.unexpected.join(", "))?;
        }
        if !self.misshaped.is_empty() {
            write!(f, " (is the checkpoint from another configuration?)")?;
        }
        Ok(())
    }
}

/// Errors of configuration, weights and model computation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration that cannot build a model (the message names the field).
    #[error("bad BSQ configuration: {0}")]
    Config(String),
    /// Training data that cannot be used (no usable clip, a bad manifest, a bad feature file).
    #[error("{0}")]
    Data(String),
    /// An input of the wrong shape or range.
    #[error("bad input: {0}")]
    Input(String),
    /// A clip that gives no codes (empty, not finite, silent, not resampled): a reject, the reason
    /// naming the clip; the job goes on.
    #[error("{0}")]
    Clip(String),
    /// A file that could not be read or written.
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// A weights file that could not be parsed.
    #[error("{0}: bad weights: {1}")]
    Weights(PathBuf, String),
    /// Weights whose names or shapes do not match the configuration.
    #[error("{0}")]
    Mismatch(Box<Mismatch>),
    /// An output that could not be written (the previous file, if any, is left as it was).
    #[error(transparent)]
    Write(#[from] audiotok_core::atomic::WriteError),
    /// A loss or gradient that is not finite: training stops before the update.
    #[error("step {step}: the {what} is not finite (NaN or infinite); the last checkpoint is kept")]
    NonFinite {
        /// The update that failed (1-based).
        step: u64,
        /// `loss` or `gradient norm`.
        what: String,
    },
    /// A failure inside candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}
