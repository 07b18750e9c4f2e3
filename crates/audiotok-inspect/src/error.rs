//! The crate's error.

use std::path::PathBuf;

/// Why a model could not be inspected. Every variant names the file (and the key or byte) at fault.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// A file could not be read.
    #[error("{}: {}", .0.display(), .1)]
    Io(PathBuf, #[source] std::io::Error),
    /// No model at the given place.
    #[error("{0}")]
    NotFound(String),
    /// A safetensors header that is cut, not JSON, or lies about its tensors.
    #[error("{}: {}", .0.display(), .1)]
    Safetensors(PathBuf, String),
    /// A PyTorch checkpoint that is not a torch.save zip, or whose pickle is refused.
    #[error("{}: {}", .0.display(), .1)]
    Pickle(PathBuf, String),
    /// A config.json or adapter_config.json that cannot be used.
    #[error("{}: {}", .0.display(), .1)]
    Config(PathBuf, String),
    /// Options that do not fit the models (an unknown part, a LoRA target that matches nothing).
    #[error("{0}")]
    Options(String),
}
