//! Errors of the codecs crate.

use std::path::PathBuf;

/// Keys that did not match between a state dict and the model.
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

fn list(names: &[String]) -> String {
    const SHOWN: usize = 12;
    let mut s = names.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > SHOWN {
        s.push_str(&format!(", … ({} more)", names.len() - SHOWN));
    }
    s
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: the weights do not fit this configuration", self.source)?;
        if !self.misshaped.is_empty() {
            let items: Vec<String> =
                self.misshaped.iter().map(|(n, want, got)| format!("{n} (model {want:?}, file {got:?})")).collect();
            write!(f, "; {} mis-shaped: {}", items.len(), list(&items))?;
        }
        if !self.missing.is_empty() {
            write!(f, "; {} missing: {}", self.missing.len(), list(&self.missing))?;
        }
        if !self.unexpected.is_empty() {
            write!(f, "; {} unexpected: {}", self.unexpected.len(), list(&self.unexpected))?;
        }
        if !self.misshaped.is_empty() {
            write!(f, " (is the checkpoint from another configuration?)")?;
        }
        Ok(())
    }
}

/// Errors of configuration, weight loading and inference.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad `config.json`.
    #[error("bad SNAC configuration: {0}")]
    Config(String),
    /// A model folder or file that is not there.
    #[error("{0}")]
    NotFound(String),
    /// A file that could not be read.
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// A weights file that could not be parsed.
    #[error("bad weights: {0}")]
    Weights(String),
    /// Weights whose keys or shapes do not match the model.
    #[error("{0}")]
    Mismatch(Box<Mismatch>),
    /// A failure inside candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}
