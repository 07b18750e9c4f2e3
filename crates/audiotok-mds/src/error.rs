//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while writing, reading, verifying or merging MDS datasets.
///
/// Errors about stored data name the shard file (its basename as the index gives it) and, where
/// one is concerned, the sample index within that shard.
#[derive(Debug, thiserror::Error)]
pub enum MdsError {
    /// An I/O operation on `path` failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An encoding string that names no encoding `streaming` defines.
    #[error("unknown MDS encoding `{0}`")]
    UnknownEncoding(String),
    /// An encoding string that names a known encoding in a malformed way (bad ndarray dtype/shape).
    #[error("invalid MDS encoding `{encoding}`: {reason}")]
    InvalidEncoding {
        /// The encoding string.
        encoding: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A pickle (`pkl`) column: refused for reading and writing, as it allows arbitrary code execution.
    #[error("column `{column}` uses the pickle encoding `pkl`, which is unsafe and not supported")]
    PickleRefused {
        /// The column's name.
        column: String,
    },
    /// An image encoding (`pil`, `jpeg`, `png`, their lists, `jpeg_array`): out of scope.
    #[error("column `{column}` uses the image encoding `{encoding}`, which audiotok-mds does not support")]
    UnsupportedImageEncoding {
        /// The column's name.
        column: String,
        /// The encoding string.
        encoding: String,
    },
    /// A compression string `streaming` does not know, or a level outside the family's range.
    #[error("invalid compression `{0}` (expected e.g. `zstd` or `zstd:7`)")]
    InvalidCompression(String),
    /// A compression `streaming` knows but this crate does not implement (br, bz2, gz, snappy).
    #[error("compression `{0}` is not supported (only zstd is)")]
    UnsupportedCompression(String),
    /// A hash algorithm this crate does not implement.
    #[error("hash algorithm `{0}` is not supported (supported: sha1, xxh64)")]
    UnsupportedHash(String),
    /// Invalid writer configuration (columns, hashes order, size limit, output folder).
    #[error("invalid writer configuration: {0}")]
    Config(String),
    /// A value that does not fit its column's encoding.
    #[error("column `{column}` ({encoding}): {reason}")]
    Encode {
        /// The column's name.
        column: String,
        /// The column's encoding string.
        encoding: String,
        /// Why the value was refused.
        reason: String,
    },
    /// A sample lacking a column, or carrying a key that is not a column.
    #[error("sample does not match the columns: {0}")]
    SampleColumns(String),
    /// A single sample too large for a shard's u32 offsets.
    #[error("sample of {size} bytes cannot fit in a shard (offsets are u32)")]
    SampleTooLarge {
        /// The encoded sample size in bytes.
        size: u64,
    },
    /// A malformed or unsupported `index.json`.
    #[error("{path}: invalid index: {reason}")]
    Index {
        /// The index file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Shard data that contradicts the index or cannot be decoded.
    #[error("shard {shard}{}: {reason}", sample.map(|s| format!(" sample {s}")).unwrap_or_default())]
    Corrupt {
        /// The shard's basename as written in the index.
        shard: String,
        /// The sample index within the shard, where the problem concerns one sample.
        sample: Option<u64>,
        /// What is wrong.
        reason: String,
    },
    /// A global sample index past the end of the dataset.
    #[error("sample index {index} out of range (dataset has {len} samples)")]
    OutOfRange {
        /// The index asked for.
        index: u64,
        /// The number of samples.
        len: u64,
    },
    /// A background thread of the writer (finishing a shard, hashing it) panicked.
    #[error("MDS writer thread failed: {0}")]
    Worker(String),
    /// Invalid JSON text (an index, a shard's config, or a `json` column).
    #[error("invalid JSON at byte {offset}: {reason}")]
    Json {
        /// Byte offset of the problem in the text.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
}

impl MdsError {
    /// An [`MdsError::Io`] for `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        MdsError::Io { path: path.into(), source }
    }

    /// An [`MdsError::Corrupt`].
    pub(crate) fn corrupt(shard: &str, sample: Option<u64>, reason: impl Into<String>) -> Self {
        MdsError::Corrupt { shard: shard.to_string(), sample, reason: reason.into() }
    }
}

/// The crate's result type.
pub type Result<T, E = MdsError> = std::result::Result<T, E>;
