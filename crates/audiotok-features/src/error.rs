//! Error type of the features crate.

/// Everything that can go wrong computing or storing features.
#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    /// The input signal cannot be processed (empty, non-finite, too short).
    #[error("invalid input: {0}")]
    Input(String),
    /// Array shape and data disagree.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A malformed or unsupported `.npy` file.
    #[error("npy: {0}")]
    Npy(String),
    /// An unknown profile or feature name, or a bad parameter.
    #[error("{0}")]
    Config(String),
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A job's output folder could not be created.
    #[cfg(feature = "job")]
    #[error("creating {}: {source}", path.display())]
    CreateDir {
        /// The folder.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A job's output file could not be written atomically.
    #[cfg(feature = "job")]
    #[error(transparent)]
    Write(#[from] audiotok_audio::atomic::WriteError),
    /// A job could not start (thread count, thread pool).
    #[cfg(feature = "job")]
    #[error(transparent)]
    Core(#[from] audiotok_core::CoreError),
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, FeatureError>;
