//! The error type of the BPE module.

use super::Variant;

/// Everything that can go wrong while training, encoding, decoding, loading or exporting a BPE model.
#[derive(Debug, thiserror::Error)]
pub enum BpeError {
    /// The corpus (or a required part of it) holds no tokens.
    #[error("empty input: {0}")]
    Empty(&'static str),
    /// A token id is not below the declared codebook size.
    #[error(
        "token {token} at position {position} of sequence {sequence} (scale {scale}) is outside the codebook \
         (size {codebook_size})"
    )]
    TokenOutOfRange {
        /// The offending token.
        token: u32,
        /// Index of the sequence in the input (0 for a single sequence).
        sequence: usize,
        /// Scale index (0 for single-stream input).
        scale: usize,
        /// Position of the token in its stream.
        position: usize,
        /// The declared codebook size.
        codebook_size: u32,
    },
    /// Per-scale streams whose lengths are not in the declared ratios (or a wrong number of scales).
    #[error("sequence {sequence}: scale lengths {lengths:?} do not match the scale ratios {ratios:?}")]
    ScaleLengths {
        /// Index of the sequence in the input.
        sequence: usize,
        /// The lengths of the given streams, one per scale.
        lengths: Vec<usize>,
        /// The declared ratios (codes per coarsest frame, per scale).
        ratios: Vec<u32>,
    },
    /// An invalid [`TrainerConfig`](super::TrainerConfig).
    #[error("invalid BPE configuration: {0}")]
    Config(String),
    /// Single-stream input given to a multi-scale variant or the other way round.
    #[error("variant {variant} takes {expected}")]
    WrongInput {
        /// The model's or configuration's variant.
        variant: Variant,
        /// What it takes.
        expected: &'static str,
    },
    /// A symbol id that is not in the model's vocabulary (or ids that do not decode to whole frames).
    #[error("cannot decode: {0}")]
    Decode(String),
    /// The JSON is not an audiotok BPE model.
    #[error("not an audiotok BPE model file (format {found:?}, expected {expected:?})")]
    Format {
        /// The `format` field found (empty when missing).
        found: String,
        /// The format name this library writes.
        expected: &'static str,
    },
    /// The model file has a version this library does not read.
    #[error("unsupported audiotok BPE model version {found} (this build reads version {supported})")]
    Version {
        /// The version found in the file.
        found: u64,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// A model file that is well-formed JSON of the right format and version but inconsistent.
    #[error("invalid BPE model: {0}")]
    Model(String),
    /// The model cannot be exported in the requested form.
    #[error("cannot export: {0}")]
    Export(String),
    /// JSON (de)serialisation failed.
    #[error("model JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Result alias of the BPE module.
pub type Result<T> = std::result::Result<T, BpeError>;
