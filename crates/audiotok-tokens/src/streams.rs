//! Token streams for the BPE jobs: every sequence of some inputs as one stream
//! ([`collect_streams`]) or as per-scale streams ([`collect_scales`], [`read_scale_streams`]),
//! and symbol or token streams written back ([`write_streams`], [`write_scales`]).
//!
//! Input goes through [`crate::input`]: text (one sequence per line, space-separated integers),
//! `.npy` (1-D: one stream; 2-D `[T, codebooks]`: one stream per codebook) and token stores (one
//! stream per scale). A sequence with several scales becomes one stream by time interleaving
//! ([`TokenSequence::interleaved`](crate::input::TokenSequence::interleaved)).
//!
//! Output files are written by the caller's [`WriteFile`]: [`Atomic`], audiotok's atomic writer
//! ([`audiotok_core::atomic`]: through symlinks, into FIFOs and devices in place), is the one the
//! fronts pass; [`PlainFile`] is `std::fs::write`; a caller may pass its own (one that records
//! or refuses the writes, say). Token store outputs are written by [`StoreWriter`], atomically
//! per batch.

use std::io::Write;
use std::path::{Path, PathBuf};

use audiotok_features::npy;

use crate::input::{InputError, InputOptions, TokenInput};
use crate::store::{
    ScaleTokens, StoreError, StoreMetadata, StoreOptions, StoreReader, StoreWriter, TokenRecord, METADATA_FILE,
};

/// The error of a [`WriteFile`], passed on as it is.
pub type WriteError = Box<dyn std::error::Error + Send + Sync>;

/// Writes a user-named output file whole.
pub trait WriteFile {
    /// Writes `bytes` to `path`, replacing what is there.
    fn write_file(&self, path: &Path, bytes: &[u8]) -> Result<(), WriteError>;
}

impl<F: Fn(&Path, &[u8]) -> Result<(), WriteError>> WriteFile for F {
    fn write_file(&self, path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
        self(path, bytes)
    }
}

/// [`WriteFile`] by [`audiotok_core::atomic::write_with`], as every user-named output of
/// audiotok is written: a temporary sibling renamed over the file (a failure leaves it as it
/// was), a symlink's target replaced, a device, FIFO or `/dev/stdout` written in place. The error
/// is the atomic writer's [`audiotok_core::atomic::WriteError`] or the write's `io::Error`, boxed
/// as it is, so that a front can still tell a closed pipe (`--output /dev/stdout | head`) by
/// downcasting the chain.
#[derive(Debug, Clone, Copy, Default)]
pub struct Atomic;

impl WriteFile for Atomic {
    fn write_file(&self, path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
        audiotok_core::atomic::write_with(path, |w| w.write_all(bytes).map_err(WriteError::from))
    }
}

/// [`WriteFile`] by `std::fs::write` (not atomic: a reader may see a partial file).
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainFile;

impl WriteFile for PlainFile {
    fn write_file(&self, path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
        std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()).into())
    }
}

/// Errors of reading and writing streams; every message names the file (or the sequence).
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// An input cannot be read, or holds a bad token.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A token store (input, `--like`, or output) cannot be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A `.npy` output cannot be encoded.
    #[error(transparent)]
    Npy(#[from] audiotok_features::FeatureError),
    /// An output file cannot be written (the [`WriteFile`]'s error).
    #[error("{0}")]
    Write(#[source] WriteError),
    /// A multi-scale sequence that cannot be one stream.
    #[error("{sequence}: scale lengths are not whole multiples of scale 0's, cannot interleave")]
    NotInterleavable {
        /// The sequence (`file:line`, `file`, or the store record).
        sequence: String,
    },
    /// A sequence whose scale lengths are not in the ratios asked for (or the first sequence's).
    #[error(
        "{sequence}: scale lengths {lengths:?} are not in the ratios {ratios:?}{}",
        if *given { " (--scale-ratios)" } else { " of the first sequence" }
    )]
    Ratios {
        /// The sequence.
        sequence: String,
        /// Its scale lengths.
        lengths: Vec<usize>,
        /// The ratios it should have (`None` when neither it nor the first sequence has any).
        ratios: Option<Vec<u32>>,
        /// Whether the ratios were given (`--scale-ratios`) rather than taken from the first
        /// sequence.
        given: bool,
    },
    /// Per-scale streams wanted, one stream per sequence found.
    #[error(
        "multi-scale variants need per-scale streams (a token store, or a 2-D [T, codebooks] .npy); \
         the input has one stream per sequence"
    )]
    SingleStream,
    /// A `.npy` output of several sequences.
    #[error("{}: .npy output holds one sequence, the input had {count}", path.display())]
    NpyOneSequence {
        /// The output.
        path: PathBuf,
        /// Sequences to write.
        count: usize,
    },
    /// A `.npy` output of per-scale streams that is not one sequence of equal-rate scales.
    #[error(
        "{}: .npy output holds one sequence of equal-rate scales ([T, scales]); write a token store \
         directory instead",
        path.display()
    )]
    NpyScales {
        /// The output.
        path: PathBuf,
    },
    /// A `--like` store whose record count is not the number of sequences.
    #[error("--like {}: {records} records, the input has {sequences} sequences", store.display())]
    LikeCount {
        /// The store.
        store: PathBuf,
        /// Its records.
        records: usize,
        /// Sequences to write.
        sequences: usize,
    },
}

/// Result alias of the streams module.
pub type Result<T, E = StreamError> = std::result::Result<T, E>;

/// One sequence as one stream per scale, coarsest first.
pub type MultiScale = Vec<Vec<u32>>;

/// Every sequence of `inputs` (files or directories, see [`crate::input`]) as one stream:
/// multi-scale and multi-codebook sequences time-interleaved. Ids must be below `codebook_size`
/// when given.
pub fn collect_streams(inputs: &[PathBuf], codebook_size: Option<u32>) -> Result<Vec<Vec<u32>>> {
    let input = TokenInput::open(inputs, InputOptions { codebook_size })?;
    let mut all = Vec::new();
    for seq in input.sequences() {
        let seq = seq?;
        let stream = match seq.scales.len() {
            1 => seq.scales.into_iter().next().unwrap_or_default(),
            _ => seq.interleaved().ok_or_else(|| StreamError::NotInterleavable { sequence: seq.source.clone() })?,
        };
        all.push(stream);
    }
    Ok(all)
}

/// Every sequence's scales of `path` as separate streams, `[scale][sequence]`; empty when the
/// input has a single scale.
pub fn read_scale_streams(path: &Path, codebook_size: Option<u32>) -> Result<Vec<Vec<Vec<u32>>>> {
    let input = TokenInput::open(&[path.to_path_buf()], InputOptions { codebook_size })?;
    let mut per_scale: Vec<Vec<Vec<u32>>> = Vec::new();
    for seq in input.sequences() {
        let seq = seq?;
        if seq.scales.len() < 2 {
            return Ok(Vec::new());
        }
        per_scale.resize_with(per_scale.len().max(seq.scales.len()), Vec::new);
        for (k, s) in seq.scales.into_iter().enumerate() {
            per_scale[k].push(s);
        }
    }
    Ok(per_scale)
}

/// Per-scale sequences of `inputs` for the multi-scale variants; every sequence must have the
/// ratios `ratios` (or, when `None`, those of the first sequence; a sequence with every scale
/// empty passes). Returns the sequences and the ratios; fewer than two scales is
/// [`StreamError::SingleStream`].
pub fn collect_scales(
    inputs: &[PathBuf],
    ratios: Option<&[u32]>,
    codebook_size: Option<u32>,
) -> Result<(Vec<MultiScale>, Vec<u32>)> {
    let input = TokenInput::open(inputs, InputOptions { codebook_size })?;
    let mut all = Vec::new();
    let mut want: Option<Vec<u32>> = ratios.map(<[u32]>::to_vec);
    for seq in input.sequences() {
        let seq = seq?;
        let got = seq.ratios();
        match (&want, got) {
            (None, Some(r)) => want = Some(r),
            (Some(w), Some(r)) if *w == r => {}
            (Some(w), Some(r)) if seq.scales.iter().all(Vec::is_empty) && w.len() == r.len() => {}
            (w, got) => {
                return Err(StreamError::Ratios {
                    lengths: seq.scales.iter().map(Vec::len).collect(),
                    ratios: w.clone().or(got),
                    sequence: seq.source,
                    given: ratios.is_some(),
                })
            }
        }
        all.push(seq.scales);
    }
    let ratios = want.unwrap_or_default();
    if ratios.len() < 2 {
        return Err(StreamError::SingleStream);
    }
    Ok((all, ratios))
}

/// Whether `path` names a `.npy` file (any case).
fn is_npy(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy"))
}

/// Writes streams to `path` with `sink`: a `.npy` path gets one 1-D int64 array (one sequence
/// only), any other path text, one line of space-separated ids per stream.
pub fn write_streams(path: &Path, streams: &[Vec<u32>], sink: &dyn WriteFile) -> Result<()> {
    let bytes = if is_npy(path) {
        let [one] = streams else {
            return Err(StreamError::NpyOneSequence { path: path.to_path_buf(), count: streams.len() });
        };
        let ids: Vec<i64> = one.iter().map(|&x| i64::from(x)).collect();
        let mut bytes = Vec::new();
        npy::write_i64(&mut bytes, &[ids.len()], &ids)?;
        bytes
    } else {
        let mut text = String::new();
        for s in streams {
            text.push_str(&s.iter().map(u32::to_string).collect::<Vec<_>>().join(" "));
            text.push('\n');
        }
        text.into_bytes()
    };
    sink.write_file(path, &bytes).map_err(StreamError::Write)
}

/// Writes decoded per-scale sequences to `path`: a `.npy` path gets one 2-D `[T, scales]` int64
/// array (one sequence of equal ratios only, written with `sink`); any other path becomes a token
/// store directory. A store's records take `file_path` and `duration` from the store `like` (same
/// number of records; its batch size, codebook sizes and rates too, so that a lossless round
/// trip gives the same files), or are named `INPUT:N` (from 1) with duration 0.
pub fn write_scales(
    path: &Path,
    items: &[MultiScale],
    input: &Path,
    like: Option<&Path>,
    ratios: &[u32],
    sink: &dyn WriteFile,
) -> Result<()> {
    if is_npy(path) {
        let [one] = items else { return Err(StreamError::NpyScales { path: path.to_path_buf() }) };
        if ratios.iter().any(|&r| Some(&r) != ratios.first()) {
            return Err(StreamError::NpyScales { path: path.to_path_buf() });
        }
        let (c, t) = (one.len(), one.first().map_or(0, Vec::len));
        let data: Vec<i64> = (0..t).flat_map(|j| one.iter().map(move |s| i64::from(s[j]))).collect();
        let mut bytes = Vec::new();
        npy::write_i64(&mut bytes, &[t, c], &data)?;
        return sink.write_file(path, &bytes).map_err(StreamError::Write);
    }
    let names: Vec<(String, f64)> = match like {
        Some(store) => {
            let recs = StoreReader::open(store)?.records().collect::<std::result::Result<Vec<_>, _>>()?;
            if recs.len() != items.len() {
                return Err(StreamError::LikeCount {
                    store: store.to_path_buf(),
                    records: recs.len(),
                    sequences: items.len(),
                });
            }
            recs.into_iter().map(|r| (r.file_path, r.duration)).collect()
        }
        None => (0..items.len()).map(|i| (format!("{}:{}", input.display(), i + 1), 0.0)).collect(),
    };
    let mut opts = StoreOptions::new(ratios.len());
    if let Some(meta) = like.filter(|d| d.join(METADATA_FILE).is_file()).map(StoreMetadata::load).transpose()? {
        if meta.scales.len() == ratios.len() {
            opts.batch_size = meta.batch_size.max(1);
            opts.codebook_sizes = meta.scales.iter().map(|s| s.codebook_size).collect();
            opts.rates_hz = meta.scales.iter().map(|s| s.rate_hz).collect();
        }
    }
    let mut w = StoreWriter::create(path, opts)?;
    for ((file_path, duration), scales) in names.into_iter().zip(items) {
        let scales = scales.iter().map(|s| ScaleTokens::stream(s.clone())).collect();
        w.push(TokenRecord { file_path, duration, scales })?;
    }
    w.finish()?;
    Ok(())
}
