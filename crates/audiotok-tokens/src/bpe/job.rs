//! The jobs of `audiotok bpe` on files, for every front (the CLI, the Python bindings):
//! [`train_files`] (streams in, model file out), [`transform`] (encode or decode files with a
//! model file), [`inspect`] (a model's statistics and, with input, its compression) and
//! [`export_hf`]; [`load_model`] reads a model file. Options are plain data (serde), results are
//! summaries; files are written through the caller's [`WriteFile`] ([`crate::streams::Atomic`],
//! audiotok's atomic writer, for a front; see [`crate::streams`]).
//!
//! Single-stream variants take each sequence's time-interleaved stream; multi-scale variants
//! (`cross-scale`, `hierarchical`, `rl+cross-scale`) take the per-scale streams, in the ratios of
//! the first sequence (or [`TrainOptions::scale_ratios`]).
//!
//! The bounds below are those the CLI's options take ([`MAX_MERGES`], ...); the library itself
//! checks what [`TrainerConfig`] checks.

use std::path::{Path, PathBuf};

use audiotok_core::observer::{Observer, Phase};
use serde::{Deserialize, Serialize};

use super::{train, BpeError, BpeModel, BpeStats, CompressionStats, Corpus, TrainerConfig, Variant};
use crate::streams::{
    collect_scales, collect_streams, read_scale_streams, write_scales, write_streams, StreamError, WriteError,
    WriteFile,
};

/// Most merges (or vocabulary size) a training takes: ids stay far below 2^32.
pub const MAX_MERGES: usize = 1 << 30;
/// Longest run `rl` makes one symbol.
pub const MAX_RUN: i64 = 1 << 16;
/// Largest codebook ([`TrainerConfig`] refuses `u32::MAX / 4` and above).
pub const MAX_CODEBOOK: u32 = u32::MAX / 4 - 1;
/// Largest codes-per-coarsest-frame ratio of one scale.
pub const MAX_RATIO: i64 = 1024;

/// Errors of the BPE jobs; every message names the file (and the sequence) concerned.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Reading or writing streams failed.
    #[error(transparent)]
    Streams(#[from] StreamError),
    /// Training, encoding statistics or serialising failed.
    #[error(transparent)]
    Bpe(#[from] BpeError),
    /// The model file cannot be read.
    #[error("{}: cannot read: {source}", path.display())]
    ModelRead {
        /// The model file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The model file is not a valid model.
    #[error("{}: not a valid audiotok BPE model: {source}", path.display())]
    ModelInvalid {
        /// The model file.
        path: PathBuf,
        /// Why.
        #[source]
        source: BpeError,
    },
    /// One sequence cannot be encoded or decoded.
    #[error("{}: sequence {sequence}: {source}", input.display())]
    Sequence {
        /// The input file.
        input: PathBuf,
        /// The sequence's number, from 1.
        sequence: usize,
        /// Why.
        #[source]
        source: BpeError,
    },
    /// An output file cannot be written (the [`WriteFile`]'s error).
    #[error("{0}")]
    Write(#[source] WriteError),
}

/// Result alias of the BPE jobs.
pub type Result<T, E = JobError> = std::result::Result<T, E>;

/// Reads the model file `path`.
pub fn load_model(path: &Path) -> Result<BpeModel> {
    let text =
        std::fs::read_to_string(path).map_err(|source| JobError::ModelRead { path: path.to_path_buf(), source })?;
    BpeModel::from_json(&text).map_err(|source| JobError::ModelInvalid { path: path.to_path_buf(), source })
}

/// What [`train_files`] learns from, and where the model goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainOptions {
    /// The variant.
    pub variant: Variant,
    /// Number of merges (this or `vocab_size`).
    pub merges: Option<usize>,
    /// Target vocabulary size: base symbols + merged symbols.
    pub vocab_size: Option<usize>,
    /// `thresholded`: stop when the best pair occurs fewer times than this.
    pub min_freq: Option<u64>,
    /// `rl` variants: longest run that becomes one symbol (default 16).
    pub max_run: Option<u32>,
    /// Codebook size (default: largest id + 1).
    pub codebook_size: Option<u32>,
    /// Multi-scale variants: codes per coarsest frame of each scale (default: from the first
    /// sequence's lengths). A single-stream variant refuses them.
    pub scale_ratios: Option<Vec<u32>>,
    /// `hierarchical`: merges given to the per-scale stage (default: half).
    pub scale_merges: Option<usize>,
    /// Token streams: text, `.npy`, token stores, or directories of them.
    pub inputs: Vec<PathBuf>,
    /// The model file to write.
    pub out: PathBuf,
}

impl TrainOptions {
    /// Options for `variant` over `inputs` into `out`, every other option unset.
    pub fn new(variant: Variant, inputs: Vec<PathBuf>, out: PathBuf) -> Self {
        TrainOptions {
            variant,
            merges: None,
            vocab_size: None,
            min_freq: None,
            max_run: None,
            codebook_size: None,
            scale_ratios: None,
            scale_merges: None,
            inputs,
            out,
        }
    }
}

/// What [`train_files`] did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainSummary {
    /// Sequences trained on.
    pub sequences: usize,
    /// Their tokens.
    pub tokens: usize,
    /// Merges learned.
    pub merges: usize,
    /// The model's vocabulary size.
    pub vocab_size: u32,
    /// Seconds the training took (reading and writing not included).
    pub train_seconds: f64,
}

/// Reads the streams of `options.inputs`, learns a model and writes it (JSON) to `options.out`
/// with `sink`. The training reports no progress.
pub fn train_files(options: &TrainOptions, sink: &dyn WriteFile) -> Result<TrainSummary> {
    let variant = options.variant;
    let (streams, items, ratios) = if variant.is_multi_scale() {
        let (items, ratios) = collect_scales(&options.inputs, options.scale_ratios.as_deref(), options.codebook_size)?;
        (Vec::new(), items, ratios)
    } else {
        // Ratios given to a single-stream variant are refused by the configuration.
        (
            collect_streams(&options.inputs, options.codebook_size)?,
            Vec::new(),
            options.scale_ratios.clone().unwrap_or_default(),
        )
    };
    let max_id = streams.iter().flatten().chain(items.iter().flatten().flatten()).copied().max().unwrap_or(0);
    let size = match options.codebook_size {
        Some(s) => s,
        None => max_id.checked_add(1).ok_or_else(|| {
            BpeError::Config(format!("codebook_size {} (largest id + 1) is out of range", u64::from(max_id) + 1))
        })?,
    };
    let mut cfg = TrainerConfig::new(variant, size);
    cfg.merges = options.merges;
    cfg.vocab_size = options.vocab_size;
    cfg.min_freq = options.min_freq;
    cfg.scale_ratios = ratios;
    cfg.scale_merges = options.scale_merges;
    if let Some(r) = options.max_run {
        cfg.max_run = r;
    }
    let t0 = std::time::Instant::now();
    let corpus = if variant.is_multi_scale() { Corpus::Scales(&items) } else { Corpus::Streams(&streams) };
    let model = train(&cfg, &corpus)?;
    let train_seconds = t0.elapsed().as_secs_f64();
    sink.write_file(&options.out, model.to_json()?.as_bytes()).map_err(JobError::Write)?;
    Ok(TrainSummary {
        sequences: streams.len() + items.len(),
        tokens: streams.iter().chain(items.iter().flatten()).map(Vec::len).sum(),
        merges: model.merges().len(),
        vocab_size: model.vocab_size(),
        train_seconds,
    })
}

/// Which way [`transform`] goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    /// Token streams to symbol streams.
    Encode,
    /// Symbol streams back to token streams.
    Decode,
}

/// What [`transform`] reads and writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransformOptions {
    /// Encode or decode.
    pub direction: Direction,
    /// The model file.
    pub model: PathBuf,
    /// Encode: token streams (text, `.npy`; multi-scale models: a token store or 2-D `.npy`).
    /// Decode: symbol streams (text, one sequence per line, or 1-D `.npy`).
    pub input: PathBuf,
    /// Encode: text (one line per sequence) or `.npy` (one sequence). Decode: text or `.npy`
    /// for single-stream models; for multi-scale models a `.npy` (`[T, scales]`, equal ratios
    /// only, one sequence) or a token store directory.
    pub output: PathBuf,
    /// Decode, multi-scale, store output: take each record's file_path and duration from this
    /// store (same number of sequences), and its batch size, codebook sizes and rates.
    pub like: Option<PathBuf>,
}

/// What [`transform`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransformSummary {
    /// Sequences transformed.
    pub sequences: usize,
    /// Ids read (tokens to encode, symbols to decode), all sequences together.
    pub input_len: usize,
    /// Ids written.
    pub output_len: usize,
}

/// Encodes (or decodes) every sequence of `options.input` with the model `options.model` and
/// writes the result to `options.output` (files with `sink`, token stores directly). Progress:
/// the phase `encode` or `decode`, counted in sequences, on `observer`.
pub fn transform(
    options: &TransformOptions,
    observer: &dyn Observer,
    sink: &dyn WriteFile,
) -> Result<TransformSummary> {
    let (input, output) = (&options.input, &options.output);
    let encode = options.direction == Direction::Encode;
    let phase = if encode { "encode" } else { "decode" };
    let model = load_model(&options.model)?;
    let at = |i: usize| move |source| JobError::Sequence { input: input.clone(), sequence: i + 1, source };
    let one = std::slice::from_ref(input);
    if !model.variant().is_multi_scale() {
        let streams = collect_streams(one, encode.then(|| model.codebook_size()))?;
        let progress = Phase::begin(observer, phase, streams.len() as u64, "sequences");
        let out = streams
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let r = if encode { model.encode(s) } else { model.decode(s) }.map_err(at(i));
                progress.advance(1);
                r
            })
            .collect::<Result<Vec<_>>>()?;
        drop(progress);
        write_streams(output, &out, sink)?;
        return Ok(TransformSummary {
            sequences: streams.len(),
            input_len: streams.iter().map(Vec::len).sum(),
            output_len: out.iter().map(Vec::len).sum(),
        });
    }
    if encode {
        let (items, _) = collect_scales(one, Some(model.scale_ratios()), Some(model.codebook_size()))?;
        let progress = Phase::begin(observer, phase, items.len() as u64, "sequences");
        let out = items
            .iter()
            .enumerate()
            .map(|(i, x)| {
                let r = model.encode_scales(x).map_err(at(i));
                progress.advance(1);
                r
            })
            .collect::<Result<Vec<_>>>()?;
        drop(progress);
        write_streams(output, &out, sink)?;
        return Ok(TransformSummary {
            sequences: items.len(),
            input_len: items.iter().flatten().map(Vec::len).sum(),
            output_len: out.iter().map(Vec::len).sum(),
        });
    }
    let streams = collect_streams(one, None)?;
    let progress = Phase::begin(observer, phase, streams.len() as u64, "sequences");
    let items = streams
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let r = model.decode_scales(s).map_err(at(i));
            progress.advance(1);
            r
        })
        .collect::<Result<Vec<_>>>()?;
    drop(progress);
    write_scales(output, &items, input, options.like.as_deref(), model.scale_ratios(), sink)?;
    Ok(TransformSummary {
        sequences: streams.len(),
        input_len: streams.iter().map(Vec::len).sum(),
        output_len: items.iter().flatten().map(Vec::len).sum(),
    })
}

/// What [`inspect`] found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelReport {
    /// The model's statistics (merge table, longest symbols; compression on the input, when
    /// given).
    pub stats: BpeStats,
    /// The model's scale ratios (empty or `[1]` for single-stream models).
    pub scale_ratios: Vec<u32>,
    /// A single-stream model on a multi-scale input: its compression on each scale's streams
    /// alone, by scale (empty otherwise).
    pub scales_alone: Vec<Option<CompressionStats>>,
}

/// The statistics of the model file `model`, with its compression on `input` when given (for a
/// multi-scale model, `input` is a token store or 2-D `.npy`).
pub fn inspect(model: &Path, input: Option<&Path>) -> Result<ModelReport> {
    let m = load_model(model)?;
    let multi = m.variant().is_multi_scale();
    let (streams, items) = match input {
        Some(p) if multi => {
            (Vec::new(), collect_scales(&[p.to_path_buf()], Some(m.scale_ratios()), Some(m.codebook_size()))?.0)
        }
        Some(p) => (collect_streams(&[p.to_path_buf()], Some(m.codebook_size()))?, Vec::new()),
        None => (Vec::new(), Vec::new()),
    };
    let corpus = match input {
        None => None,
        Some(_) if multi => Some(Corpus::Scales(&items)),
        Some(_) => Some(Corpus::Streams(&streams)),
    };
    let stats = m.stats(corpus.as_ref())?;
    let mut scales_alone = Vec::new();
    if let (Some(_), Some(p), false) = (&stats.compression, input, multi) {
        for streams in read_scale_streams(p, Some(m.codebook_size()))? {
            scales_alone.push(m.stats(Some(&Corpus::Streams(&streams)))?.compression);
        }
    }
    Ok(ModelReport { stats, scale_ratios: m.scale_ratios().to_vec(), scales_alone })
}

/// Exports the plain model file `model` as an HF tokenizers `tokenizer.json` (code `i` as
/// `U+4E00 + i`) to `out` with `sink`.
pub fn export_hf(model: &Path, out: &Path, sink: &dyn WriteFile) -> Result<()> {
    let m = load_model(model)?;
    sink.write_file(out, m.to_hf_tokenizer_json()?.as_bytes()).map_err(JobError::Write)
}
