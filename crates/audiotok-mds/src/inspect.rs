//! What a dataset holds ([`inspect`]) and whether its shards are sound ([`verify`]), as reports
//! a front prints or serialises (`audiotok mds inspect --json` prints [`InspectReport`] as it is).
//!
//! Any writer's dataset is read (see [`open_dataset`]); packed instruction data (an `input_ids`
//! column with `seq_lengths` or the notebook's `attention_mask`) also gets token, document and
//! packing statistics ([`Packing`]).

use std::fmt;
use std::path::{Path, PathBuf};

use audiotok_core::observer::{Observer, Phase};
use serde::{Deserialize, Serialize};

use crate::error::MdsError;
use crate::packed::{doc_lengths, int_column, open_dataset};
use crate::reader::VerifyReport;
use crate::value::Value;

/// Why [`inspect`] could not report on a dataset.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The dataset cannot be opened or a sample cannot be read.
    #[error(transparent)]
    Mds(#[from] MdsError),
    /// A packed dataset's sample whose `input_ids` is not an integer array.
    #[error("{}: sample {sample}: input_ids is not an integer array", dir.display())]
    NotIntegerIds {
        /// The dataset folder.
        dir: PathBuf,
        /// The sample's global index.
        sample: usize,
    },
    /// A packed dataset's sample without integer document lengths.
    #[error("{}: sample {sample}: no integer seq_lengths (or notebook attention_mask)", dir.display())]
    NoLengths {
        /// The dataset folder.
        dir: PathBuf,
        /// The sample's global index.
        sample: usize,
    },
}

/// Token, document and packing totals of a packed dataset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Packing {
    /// Tokens of all blocks (`input_ids` elements), padding included.
    pub block_tokens: u64,
    /// Tokens of the documents (the sum of the document lengths).
    pub real_tokens: u64,
    /// Documents.
    pub documents: u64,
    /// Audio files named by the `audio` column (a JSON list of paths, `str` or `json`).
    pub audio_files: u64,
    /// `real_tokens / block_tokens` (0 for no blocks).
    pub efficiency: f64,
}

/// What [`inspect`] found: the dataset's size and layout, and packing figures for packed data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InspectReport {
    /// The dataset folder as given (lossy for a non-UTF-8 path).
    pub dir: String,
    /// Samples.
    pub samples: u64,
    /// Shards.
    pub shards: usize,
    /// `NAME: ENCODING` of each column, as the first shard lists them.
    pub columns: Vec<String>,
    /// Bytes of the uncompressed shards.
    pub raw_bytes: u64,
    /// Bytes as stored (the compressed shards where compressed).
    pub stored_bytes: u64,
    /// The first shard's compression, if any.
    pub compression: Option<String>,
    /// The first shard's hash algorithms.
    pub hashes: Vec<String>,
    /// Packing figures, for packed data only.
    pub packing: Option<Packing>,
}

/// Reports on the dataset in `dir`. For packed data every sample is read (the phase `inspect`,
/// counted in samples, on `observer`); otherwise only the index.
pub fn inspect(dir: &Path, observer: &dyn Observer) -> Result<InspectReport, InspectError> {
    let ds = open_dataset(dir)?;
    let index = ds.index();
    let first = index.shards.first();
    let columns = first
        .map(|s| s.column_names.iter().zip(&s.column_encodings).map(|(n, e)| format!("{n}: {e}")).collect())
        .unwrap_or_default();
    let raw_bytes = index.shards.iter().map(|s| s.raw_data.bytes).sum();
    let stored_bytes = index.shards.iter().map(|s| s.zip_data.as_ref().map_or(s.raw_data.bytes, |z| z.bytes)).sum();
    let names = ds.column_names();
    let packed =
        names.iter().any(|n| n == "input_ids") && names.iter().any(|n| n == "seq_lengths" || n == "attention_mask");
    let packing = if packed {
        let progress = Phase::begin(observer, "inspect", ds.len(), "samples");
        let mut p = Packing::default();
        for (i, sample) in ds.iter().enumerate() {
            let sample = sample?;
            let ids = int_column(&sample, "input_ids")
                .ok_or_else(|| InspectError::NotIntegerIds { dir: dir.to_path_buf(), sample: i })?
                .len() as u64;
            let lengths =
                doc_lengths(&sample).ok_or_else(|| InspectError::NoLengths { dir: dir.to_path_buf(), sample: i })?;
            p.block_tokens += ids;
            p.real_tokens += lengths.iter().map(|&l| l.max(0) as u64).sum::<u64>();
            p.documents += lengths.len() as u64;
            // `audio` holds a JSON list of paths, as a str column or a json column.
            p.audio_files += match sample.get("audio") {
                Some(Value::Str(s)) => serde_json::from_str::<Vec<String>>(s).map_or(0, |v| v.len() as u64),
                Some(Value::Json(j)) => j.as_array().map_or(0, |a| a.len() as u64),
                _ => 0,
            };
            progress.advance(1);
        }
        p.efficiency = p.real_tokens as f64 / (p.block_tokens.max(1)) as f64;
        Some(p)
    } else {
        None
    };
    Ok(InspectReport {
        dir: dir.display().to_string(),
        samples: ds.len(),
        shards: index.shards.len(),
        columns,
        raw_bytes,
        stored_bytes,
        compression: first.and_then(|s| s.compression.clone()),
        hashes: first.map(|s| s.hashes.clone()).unwrap_or_default(),
        packing,
    })
}

/// The outcome of [`verify`]: what was checked, or why the dataset failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    /// The dataset folder as given (lossy for a non-UTF-8 path).
    pub dir: String,
    /// What was checked, when every check passed.
    pub report: Option<VerifyReport>,
    /// The first problem found, when one was.
    pub failure: Option<String>,
}

impl Verification {
    /// Whether every check passed.
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }
}

/// `DIR: ok: N shards, N samples, N file hashes checked[ (ALGOS not checked: unsupported)]`, or
/// `DIR: FAILED: REASON`.
impl fmt::Display for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.failure, &self.report) {
            (Some(e), _) => write!(f, "{}: FAILED: {e}", self.dir),
            (None, Some(r)) => {
                write!(
                    f,
                    "{}: ok: {} shards, {} samples, {} file hashes checked",
                    self.dir, r.shards, r.samples, r.hashes_checked
                )?;
                if !r.hashes_skipped.is_empty() {
                    write!(f, " ({} not checked: unsupported)", r.hashes_skipped.join(", "))?;
                }
                Ok(())
            }
            (None, None) => write!(f, "{}: ok", self.dir),
        }
    }
}

/// Checks every shard of the dataset in `dir` ([`MdsDataset::verify`](crate::MdsDataset::verify):
/// sizes and hashes against `index.json`, offsets, counts, every sample decoding). A dataset that
/// cannot be opened is an error; a failed check is a [`Verification`] saying so.
pub fn verify(dir: &Path) -> Result<Verification, MdsError> {
    let ds = open_dataset(dir)?;
    let dir = dir.display().to_string();
    Ok(match ds.verify() {
        Ok(r) => Verification { dir, report: Some(r), failure: None },
        Err(e) => Verification { dir, report: None, failure: Some(e.to_string()) },
    })
}
