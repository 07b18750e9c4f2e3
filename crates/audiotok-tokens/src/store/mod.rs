//! The token store: discrete audio tokens of many files in Parquet batches plus a `metadata.json`.
//!
//! # Layout
//!
//! A store is a directory:
//!
//! ```text
//! tokens_batch_0000.parquet   records 0 .. N-1
//! tokens_batch_0001.parquet   records N .. 2N-1
//! ...
//! metadata.json               written last, once every batch is in place
//! ```
//!
//! Each batch holds one row per audio file with these columns, for each scale `k` (coarsest first):
//!
//! | column | Arrow type | meaning |
//! |---|---|---|
//! | `file_path` | string | the source file |
//! | `duration` | float64 | its duration in seconds |
//! | `tokens_scale_k` | list<int32> | the scale's codes, flattened row-major |
//! | `n_tokens_scale_k` | int64 | the number of codes (length of `tokens_scale_k`) |
//! | `shape_scale_k` | list<int64> | the shape before flattening (e.g. `[T]` or `[codebooks, T]`) |
//!
//! Pandas/pyarrow read the batch files as they are:
//! `pd.read_parquet(sorted(glob.glob(f"{dir}/tokens_batch_*.parquet")))`, or the directory with
//! `pd.read_parquet(dir, ignore_prefixes=[".", "_", "metadata"])` (a bare `pd.read_parquet(dir)`
//! would try `metadata.json` as Parquet too: pyarrow's datasets skip only names starting with `.`
//! or `_`). `tools/store_golden.py` checks both directions. `metadata.json` ([`StoreMetadata`]) holds the file list, the total duration and,
//! per scale, the token count, min/max, number of distinct codes, the most common codes and, when
//! the writer was told, the codebook size and frame rate.
//!
//! # Writing and resuming
//!
//! [`StoreWriter`] takes [`TokenRecord`]s in input order. Batch `b` always holds records
//! `b*N .. (b+1)*N` of that order (`N` = [`StoreOptions::batch_size`]), so a job that was stopped
//! can be resumed: [`existing_batches`] lists the batch files already in place (each was written to
//! a temporary name and renamed, so a present file is complete); for those, call
//! [`StoreWriter::reuse_batch`] (reads the file back for the metadata) instead of recomputing
//! the records, and [`StoreWriter::write_batch`] for the others, in batch order:
//!
//! ```no_run
//! use audiotok_tokens::store::{existing_batches, StoreOptions, StoreWriter, TokenRecord};
//! # fn encode(path: &str) -> TokenRecord { unimplemented!() }
//! # fn main() -> audiotok_tokens::store::Result<()> {
//! let inputs: Vec<String> = vec![/* audio files, in a fixed order */];
//! let dir = std::path::Path::new("out/tokens");
//! let opts = StoreOptions::new(3); // three scales
//! let done = existing_batches(dir)?;
//! let mut w = StoreWriter::create(dir, opts)?;
//! for (b, chunk) in inputs.chunks(w.batch_size()).enumerate() {
//!     if done.contains(&b) {
//!         w.reuse_batch(b)?;
//!     } else {
//!         let records: Vec<TokenRecord> = chunk.iter().map(|p| encode(p)).collect();
//!         w.write_batch(b, &records)?;
//!     }
//! }
//! let meta = w.finish()?; // writes metadata.json
//! # Ok(()) }
//! ```
//!
//! Or simply [`StoreWriter::push`] records one by one and [`StoreWriter::finish`]. Rerunning with the
//! same input gives byte-identical files (Parquet written by this build, zstd-compressed, no
//! timestamps). `finish` removes batch files past the last one written (left by an earlier run
//! over more input), so the directory always matches its metadata.
//!
//! # Reading
//!
//! [`StoreReader::open`] takes a store directory (its `tokens_batch_*.parquet` in index order) or
//! one Parquet file, and iterates [`TokenRecord`]s. It reads files pyarrow writes with its
//! defaults (snappy), our columns in any order and other columns ignored; strings may be `string`,
//! `large_string` or `string_view`, integers any width, lists `list` or `large_list`. Errors name
//! the file, and the row for bad values (nulls, negative codes, counts or shapes that disagree).
//!
//! # Checksums
//!
//! Every batch file we write records in its footer ([`CHECKSUM_KEY`], `audiotok.crc32`) the CRC32
//! of its bytes up to the end of its row group (leading magic, page headers, pages); the reader
//! verifies it before reading a file's records, and a mismatch is [`StoreError::Checksum`]. Page
//! CRC32s (pyarrow's `write_page_checksum=True`) are verified as each page is read. Files with
//! neither (pyarrow's defaults, stores written before checksums) read as before; pyarrow ignores
//! the entry. Not covered: the page index and the footer itself, whose damage
//! [`StoreReader`] refuses by its footer checks or which decoding does not use.

mod arrow;
mod read;
mod write;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use arrow::{arrow_schema, records_to_batch};
pub use read::{BatchIter, RecordIter, StoreReader};
pub use write::{StoreOptions, StoreWriter};

/// The `format` field of `metadata.json`.
pub const METADATA_FORMAT: &str = "audiotok-token-store";
/// The version of the store layout this build writes (and reads).
pub const METADATA_VERSION: u32 = 1;
/// The metadata file name inside a store directory.
pub const METADATA_FILE: &str = "metadata.json";

/// The codes of one scale of one file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScaleTokens {
    /// Shape before flattening (`[T]`, `[codebooks, T]`, ...); its product is `tokens.len()`.
    pub shape: Vec<u64>,
    /// The codes, flattened row-major.
    pub tokens: Vec<u32>,
}

impl ScaleTokens {
    /// A 1-D stream: shape `[tokens.len()]`.
    pub fn stream(tokens: Vec<u32>) -> Self {
        ScaleTokens { shape: vec![tokens.len() as u64], tokens }
    }
}

/// One audio file's tokens: one row of a batch.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TokenRecord {
    /// The source file.
    pub file_path: String,
    /// Its duration in seconds.
    pub duration: f64,
    /// One entry per scale, coarsest first.
    pub scales: Vec<ScaleTokens>,
}

/// Per-scale summary in `metadata.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaleMetadata {
    /// Scale index (0 = coarsest).
    pub scale: usize,
    /// Codes over all files.
    pub total_tokens: u64,
    /// Smallest code (absent when the scale holds no code).
    pub min: Option<u32>,
    /// Largest code.
    pub max: Option<u32>,
    /// Number of distinct codes.
    pub unique: u64,
    /// The most common codes as `[code, count]`, by count descending, then code ascending.
    pub most_common: Vec<(u32, u64)>,
    /// Declared codebook size, when known.
    pub codebook_size: Option<u32>,
    /// Declared frame rate in Hz, when known.
    pub rate_hz: Option<f64>,
    /// Codes per second of audio over the store (`total_tokens / total_duration_s`).
    pub observed_rate_hz: Option<f64>,
}

/// The content of `metadata.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreMetadata {
    /// Always [`METADATA_FORMAT`].
    pub format: String,
    /// Layout version ([`METADATA_VERSION`]).
    pub version: u32,
    /// Number of records (files).
    pub num_files: u64,
    /// Sum of the durations in seconds.
    pub total_duration_s: f64,
    /// Records per batch file (the last may hold fewer).
    pub batch_size: usize,
    /// The batch file names, in order.
    pub batches: Vec<String>,
    /// The `file_path` of every record, in store order (record `i` is in batch `i / batch_size`).
    pub files: Vec<String>,
    /// One entry per scale.
    pub scales: Vec<ScaleMetadata>,
    /// What made the store, as the writer was told ([`StoreOptions::provenance`]): for `audiotok
    /// encode`, the model, its weights' hash and the options. Absent when empty (and in stores
    /// written before it existed).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub provenance: BTreeMap<String, String>,
}

impl StoreMetadata {
    /// Reads `metadata.json` from a store directory.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(METADATA_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| StoreError::Io { path: path.clone(), source })?;
        let meta: StoreMetadata =
            serde_json::from_str(&text).map_err(|e| StoreError::Metadata { path: path.clone(), msg: e.to_string() })?;
        if meta.format != METADATA_FORMAT || meta.version != METADATA_VERSION {
            return Err(StoreError::Metadata {
                path,
                msg: format!(
                    "format {:?} version {} (this build reads {METADATA_FORMAT:?} version {METADATA_VERSION})",
                    meta.format, meta.version
                ),
            });
        }
        Ok(meta)
    }
}

/// Errors of the token store. Every variant names the file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading, writing, renaming or listing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The Parquet/Arrow layer failed (not a Parquet file, corrupt page, unsupported codec...).
    #[error("{path}: {msg}")]
    Parquet {
        /// The Parquet file.
        path: PathBuf,
        /// What the Parquet library said.
        msg: String,
    },
    /// A column is missing or has a type the store does not take.
    #[error("{path}: {msg}")]
    Schema {
        /// The Parquet file.
        path: PathBuf,
        /// Which column and what is wrong.
        msg: String,
    },
    /// The file's bytes disagree with the checksum its footer records ([`CHECKSUM_KEY`]), or the
    /// checksum entry is unreadable: the file is damaged.
    #[error("{path}: {msg}")]
    Checksum {
        /// The Parquet file.
        path: PathBuf,
        /// What disagrees.
        msg: String,
    },
    /// A bad value in one row.
    #[error("{path}: row {row}: {msg}")]
    Row {
        /// The Parquet file.
        path: PathBuf,
        /// Row index in that file (0-based).
        row: usize,
        /// What is wrong.
        msg: String,
    },
    /// A record given to the writer is invalid, or batches were given out of order.
    #[error("{path}: {msg}")]
    Input {
        /// The store directory.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// `metadata.json` is unreadable or of another format or version.
    #[error("{path}: {msg}")]
    Metadata {
        /// The metadata file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
}

/// Result alias of the store module.
pub type Result<T> = std::result::Result<T, StoreError>;

/// The file name of batch `index`: `tokens_batch_0000.parquet`, ... (at least four digits).
pub fn batch_file_name(index: usize) -> String {
    format!("tokens_batch_{index:04}.parquet")
}

/// The batch index of a file name made by [`batch_file_name`], if it is one.
pub fn parse_batch_file_name(name: &str) -> Option<usize> {
    let digits = name.strip_prefix("tokens_batch_")?.strip_suffix(".parquet")?;
    if digits.len() < 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let index: usize = digits.parse().ok()?;
    (batch_file_name(index) == name).then_some(index)
}

/// The key-value metadata entry of a batch file's footer that holds the CRC32 of the file's bytes
/// before its page index and footer (the leading magic and every column chunk): `"{crc:08x}
/// 0..{end}"`, CRC32 (IEEE, as zlib's) of bytes `0..end`. Our writer always records it; the reader
/// verifies it when present (files of other writers have none and read as before): a mismatch is
/// [`StoreError::Checksum`].
pub const CHECKSUM_KEY: &str = "audiotok.crc32";
/// [`CHECKSUM_KEY`] without [`BATCH_TAG_PREFIX`]: not a tag (reserved, not listed by [`batch_tags`]).
pub const CHECKSUM_TAG: &str = "crc32";

/// The value of [`CHECKSUM_KEY`] for the CRC32 `crc` of bytes `0..end`.
pub(crate) fn checksum_value(crc: u32, end: u64) -> String {
    format!("{crc:08x} 0..{end}")
}

/// Parses a [`CHECKSUM_KEY`] value: `(crc, end)`.
pub(crate) fn parse_checksum_value(v: &str) -> Option<(u32, u64)> {
    let (crc, range) = v.split_once(' ')?;
    let end = range.strip_prefix("0..")?;
    let digits = |s: &str, hex: bool| {
        !s.is_empty() && s.bytes().all(|b| if hex { b.is_ascii_hexdigit() } else { b.is_ascii_digit() })
    };
    if crc.len() != 8 || !digits(crc, true) || !digits(end, false) {
        return None;
    }
    Some((u32::from_str_radix(crc, 16).ok()?, end.parse().ok()?))
}

/// Prefix of this store's keys in a batch file's Parquet key-value metadata.
pub const BATCH_TAG_PREFIX: &str = "audiotok.";

/// The tags a batch file was written with ([`StoreWriter::write_batch_tagged`] and
/// [`StoreOptions::provenance`]), read from its Parquet footer (key-value metadata under
/// [`BATCH_TAG_PREFIX`], prefix removed). Empty for files written without tags or by other tools.
///
/// The file is opened as the reader opens it, its footer checked and its checksum
/// ([`CHECKSUM_KEY`]) verified: a damaged batch is an error here, so encode's resume, which reuses
/// a batch only when its tags match, writes a damaged one again.
pub fn batch_tags(path: &Path) -> Result<BTreeMap<String, String>> {
    let builder = read::open_builder(path, true)?;
    let mut out = BTreeMap::new();
    for kv in builder.metadata().file_metadata().key_value_metadata().into_iter().flatten() {
        if let (Some(k), Some(v)) = (kv.key.strip_prefix(BATCH_TAG_PREFIX), kv.value.as_ref()) {
            if k != CHECKSUM_TAG {
                out.insert(k.to_string(), v.clone());
            }
        }
    }
    Ok(out)
}

/// Batches of the store `dir` that should be there but are not: those its `metadata.json` lists
/// (when it has one), then gaps in the numbers of the batch files present (counted from 0). Each
/// entry is `(name, why)`; a gap of more than [`MAX_LISTED_GAP`] numbers is one entry `FIRST … LAST`.
pub fn missing_batches(dir: &Path) -> Result<Vec<(String, &'static str)>> {
    let present = existing_batches(dir)?;
    let mut out: Vec<(String, &'static str)> = Vec::new();
    let mut listed = std::collections::BTreeSet::new();
    if dir.join(METADATA_FILE).is_file() {
        for name in StoreMetadata::load(dir)?.batches {
            let index = parse_batch_file_name(&name);
            if let Some(i) = index {
                listed.insert(i);
            }
            if index.is_none_or(|i| present.binary_search(&i).is_err()) {
                out.push((name, "listed in metadata.json"));
            }
        }
    }
    let mut expect = 0usize;
    for &i in &present {
        if i - expect > MAX_LISTED_GAP {
            let name = format!("{} … {}", batch_file_name(expect), batch_file_name(i - 1));
            out.push((name, "a gap in the batch numbers"));
        } else {
            for g in (expect..i).filter(|g| !listed.contains(g)) {
                out.push((batch_file_name(g), "a gap in the batch numbers"));
            }
        }
        expect = i.saturating_add(1);
    }
    Ok(out)
}

/// Gaps longer than this are reported by [`missing_batches`] as one range.
pub const MAX_LISTED_GAP: usize = 100;

/// Indices of the batch files present in `dir`, ascending (empty when `dir` does not exist).
///
/// Batches are written to a temporary name and renamed, so every listed file is complete.
pub fn existing_batches(dir: &Path) -> Result<Vec<usize>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(StoreError::Io { path: dir.to_path_buf(), source }),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| StoreError::Io { path: dir.to_path_buf(), source })?;
        if let Some(i) = entry.file_name().to_str().and_then(parse_batch_file_name) {
            if entry.path().is_file() {
                out.push(i);
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

#[cfg(test)]
mod tests;
