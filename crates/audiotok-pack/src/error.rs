//! Errors: fatal ones ([`PackError`]) stop a run; row-level problems are [`Reject`]s that a run
//! records and skips (or stops on, with `--on-error fail`: [`PackError::BadRows`]).

use std::fmt;
use std::path::{Path, PathBuf};

/// A fatal error: bad configuration, an unreadable tokenizer or input file, or an output failure.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// The tokenizer could not be loaded or lacks what packing needs.
    #[error("tokenizer {path}: {reason}")]
    Tokenizer {
        /// The tokenizer file or folder.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A chat template failed to compile.
    #[error("chat template ({origin}): {reason}")]
    Template {
        /// Where the template came from (a file, `tokenizer_config.json`, or `built-in`).
        origin: String,
        /// What went wrong.
        reason: String,
    },
    /// An input file could not be read or is not JSON / JSONL at all.
    #[error("{path}: {reason}")]
    Input {
        /// The input file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Invalid options.
    #[error("{0}")]
    Config(String),
    /// Writing the MDS output failed.
    #[error(transparent)]
    Mds(#[from] audiotok_mds::MdsError),
    /// Other I/O on an output file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file the options name (a chat template) could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    CannotRead {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An atomic write of an output file (`rejects.jsonl`) failed, naming the file and the step.
    #[error(transparent)]
    Write(#[from] audiotok_audio::atomic::WriteError),
    /// Writing the bytes of `rejects.jsonl` into its temporary file failed (the message is the
    /// system's, as the CLI has always printed it).
    #[error("{0}")]
    WriteRejects(#[source] std::io::Error),
    /// The job could not start (its thread pool).
    #[error(transparent)]
    Core(#[from] audiotok_core::CoreError),
    /// [`OnError::Fail`](crate::job::OnError::Fail) and some rows are bad: nothing was written.
    #[error("{first} (nothing written; {count} bad row(s) in all)")]
    BadRows {
        /// The first bad row, in input order.
        first: Box<Reject>,
        /// How many rows are bad.
        count: usize,
    },
}

/// Where a row comes from: its file and 1-based line (JSONL) or 0-based array index (JSON), or
/// for rows given in memory (no file) its 0-based index in the list, like a JSON array's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RowSource {
    /// The input file; `None` for a row given in memory.
    pub file: Option<PathBuf>,
    /// Line number (JSONL) or index (JSON array, or the list of in-memory rows).
    pub at: RowAt,
}

impl RowSource {
    /// Line `line` (1-based) of the JSONL file `file`.
    pub fn line(file: &Path, line: u64) -> RowSource {
        RowSource { file: Some(file.to_path_buf()), at: RowAt::Line(line) }
    }

    /// Item `index` (0-based) of the JSON array file `file`.
    pub fn index(file: &Path, index: u64) -> RowSource {
        RowSource { file: Some(file.to_path_buf()), at: RowAt::Index(index) }
    }

    /// Item `index` (0-based) of the rows given in memory.
    pub fn memory(index: u64) -> RowSource {
        RowSource { file: None, at: RowAt::Index(index) }
    }
}

/// The position of a row within its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RowAt {
    /// 1-based line of a JSONL file.
    Line(u64),
    /// 0-based index in a JSON array.
    Index(u64),
}

/// `FILE:LINE` (JSONL), `FILE[INDEX]` (JSON array), `row INDEX` (in memory).
impl fmt::Display for RowSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.at) {
            (Some(file), RowAt::Line(l)) => write!(f, "{}:{l}", file.display()),
            (Some(file), RowAt::Index(i)) => write!(f, "{}[{i}]", file.display()),
            (None, RowAt::Line(l)) => write!(f, "line {l}"),
            (None, RowAt::Index(i)) => write!(f, "row {i}"),
        }
    }
}

/// Why a row was left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectReason {
    /// The line is not valid JSON.
    MalformedJson(String),
    /// Valid JSON, but not a row this tool understands.
    BadRow(String),
    /// An audio file could not be read or decoded.
    Audio {
        /// The path as written in the row.
        path: String,
        /// The decoder's error.
        reason: String,
    },
    /// The number of `<|AUDIO|>` placeholders differs from the number of audio paths.
    PlaceholderMismatch {
        /// Placeholders in the (rendered) text.
        placeholders: usize,
        /// Audio paths in the row.
        audios: usize,
    },
    /// The chat template failed on this row's messages.
    Template(String),
    /// Tokenization failed.
    Tokenizer(String),
    /// The row (a JSONL line) is longer than the row byte limit; it was skipped without being
    /// read whole.
    TooLarge {
        /// Bytes on the line (without its line ending).
        bytes: u64,
        /// The limit (`--max-row-bytes`).
        limit: u64,
    },
    /// Known before tokenizing: the row cannot fit a block whatever its tokenization (a lower
    /// bound on its tokens from its text length and its audio token counts).
    CannotFit {
        /// The lower bound on the row's tokens.
        at_least: u64,
        /// Bytes of text.
        text_bytes: usize,
        /// Audio tokens of the row.
        audio_tokens: u64,
        /// The block size.
        block_size: usize,
    },
    /// After expansion the row is longer than a block.
    TooLong {
        /// Tokens in the row.
        tokens: usize,
        /// The block size.
        block_size: usize,
    },
}

impl RejectReason {
    /// A short machine-readable kind (`malformed_json`, `too_long`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            RejectReason::MalformedJson(_) => "malformed_json",
            RejectReason::BadRow(_) => "bad_row",
            RejectReason::Audio { .. } => "audio",
            RejectReason::PlaceholderMismatch { .. } => "placeholder_mismatch",
            RejectReason::Template(_) => "template",
            RejectReason::Tokenizer(_) => "tokenizer",
            RejectReason::TooLarge { .. } => "too_large",
            RejectReason::CannotFit { .. } | RejectReason::TooLong { .. } => "too_long",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::MalformedJson(e) => write!(f, "malformed JSON: {e}"),
            RejectReason::BadRow(e) => write!(f, "bad row: {e}"),
            RejectReason::Audio { reason, .. } => write!(f, "audio: {reason}"),
            RejectReason::PlaceholderMismatch { placeholders, audios } => write!(
                f,
                "{placeholders} <|AUDIO|> placeholder(s) but {audios} audio path(s); they must match one to one"
            ),
            RejectReason::Template(e) => write!(f, "chat template: {e}"),
            RejectReason::Tokenizer(e) => write!(f, "tokenizer: {e}"),
            RejectReason::TooLarge { bytes, limit } => write!(
                f,
                "the line has {bytes} bytes, over the row limit of {limit} bytes (--max-row-bytes); skipped unread"
            ),
            RejectReason::CannotFit { at_least, text_bytes, audio_tokens, block_size } => write!(
                f,
                "at least {at_least} tokens ({text_bytes} bytes of text, {audio_tokens} audio tokens), longer than \
                 the block size {block_size}: rejected before tokenizing"
            ),
            RejectReason::TooLong { tokens, block_size } => {
                write!(f, "{tokens} tokens after audio expansion, longer than the block size {block_size}")
            }
        }
    }
}

/// A row left out, with where it came from and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// The row's file and position.
    pub source: RowSource,
    /// Why.
    pub reason: RejectReason,
}

impl Reject {
    /// The `rejects.jsonl` line for this row (without the newline): `{"file", "line" | "index",
    /// "kind", "audio" (audio rejects), "reason"}`; a row given in memory has no `"file"`, its
    /// `"index"` is its position in the list.
    pub fn to_json_line(&self) -> String {
        let mut m = serde_json::Map::new();
        if let Some(file) = &self.source.file {
            m.insert("file".into(), file.display().to_string().into());
        }
        match self.source.at {
            RowAt::Line(l) => m.insert("line".into(), l.into()),
            RowAt::Index(i) => m.insert("index".into(), i.into()),
        };
        m.insert("kind".into(), self.reason.kind().into());
        if let RejectReason::Audio { path, .. } = &self.reason {
            m.insert("audio".into(), path.clone().into());
        }
        m.insert("reason".into(), self.reason.to_string().into());
        serde_json::Value::Object(m).to_string()
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source, self.reason)
    }
}
