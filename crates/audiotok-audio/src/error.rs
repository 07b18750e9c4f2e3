//! Error type of the audio crate.
//!
//! Every error that concerns a file names the file. Errors are split, as symphonia does, into the
//! kind of problem (unsupported, corrupt, empty, non-finite) so that callers can record a reason and
//! skip the file.

use std::path::PathBuf;

/// Everything that can go wrong while reading, converting or writing audio.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// The file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The container or codec is not one audiotok decodes (e.g. Opus, NIST SPHERE, not audio).
    #[error("{path}: unsupported audio: {reason}")]
    Unsupported {
        /// The file concerned.
        path: PathBuf,
        /// What was not supported.
        reason: String,
    },
    /// The path names something other than a regular file (a directory, FIFO, device or
    /// socket): refused before it is opened, so that a FIFO cannot block the reader.
    #[error("{path}: not a regular file ({kind})")]
    NotAFile {
        /// The path concerned.
        path: PathBuf,
        /// What it is: `a directory`, `a FIFO`, `a character device`, `a block device`,
        /// `a socket`.
        kind: &'static str,
    },
    /// The file is recognised but its data is invalid or cut short.
    #[error("{path}: corrupt or truncated audio: {reason}")]
    Corrupt {
        /// The file concerned.
        path: PathBuf,
        /// What the decoder reported.
        reason: String,
    },
    /// The file decodes to zero samples.
    #[error("{path}: no audio samples (zero-length audio)")]
    Empty {
        /// The file concerned.
        path: PathBuf,
    },
    /// The decoded signal holds NaN or infinite samples.
    #[error("{path}: non-finite sample (NaN or infinity) at frame {frame}")]
    NonFinite {
        /// The file concerned.
        path: PathBuf,
        /// First frame (per channel) holding a non-finite value.
        frame: u64,
    },
    /// The resampler rejected its parameters or failed.
    #[error("resampling {from} Hz -> {to} Hz failed: {reason}")]
    Resample {
        /// Input rate.
        from: u32,
        /// Output rate.
        to: u32,
        /// libsoxr's message.
        reason: String,
    },
    /// A source (a Parquet shard, a tar, a manifest) could not give this record's bytes, or a
    /// walk could not read the path.
    #[error("{reason}")]
    Source {
        /// The record's id (a path, `shard.parquet#12`, `shard.tar#key`, a cut id).
        id: PathBuf,
        /// Why, as the source reports it, naming the record.
        reason: String,
    },
    /// A parameter given by the caller is out of range.
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
}

impl From<crate::atomic::WriteError> for AudioError {
    fn from(e: crate::atomic::WriteError) -> Self {
        AudioError::Io { path: e.path, source: e.source }
    }
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, AudioError>;
