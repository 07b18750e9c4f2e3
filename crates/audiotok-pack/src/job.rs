//! The pack job: instruction rows with audio → packed token blocks in an MDS dataset, the whole
//! of `audiotok pack`, callable as it is by any front (the CLI, the Python bindings).
//!
//! [`pack`] runs on a thread pool of its own ([`PackOptions::jobs`]; never rayon's global pool):
//!
//! 1. The tokenizer loads on one worker while the rows are read ([`PackSource`]: row files, or
//!    rows given in memory) and each distinct audio file's length is measured once, in parallel
//!    (observer phase `audio`, counted in files).
//! 2. Rows are prepared (template, tokenization, placeholder expansion) in parallel, 2048 at a
//!    time, and kept in input order (phase `rows`). With greedy packing and [`OnError::Skip`],
//!    each chunk's completed blocks are encoded in parallel and written while the next chunk is
//!    prepared; otherwise every row is prepared first (best-fit decreasing needs every length;
//!    [`OnError::Fail`] writes nothing when a row is bad) and the blocks are written after
//!    (phase `blocks`, counted in blocks). Either way the blocks and bytes are the same.
//! 3. `rejects.jsonl` (one line per row left out, [`Reject::to_json_line`]) is written, and the
//!    dataset, built beside [`PackOptions::out`], is swapped in whole ([`StagedDir`]): a run that
//!    fails leaves the previous dataset as it was.
//!
//! The output never depends on the number of threads. The returned [`PackSummary`] serialises
//! to the object `audiotok pack --json` prints and carries the rejects.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use audiotok_core::observer::Phase;
use audiotok_core::Observer;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{
    efficiency, pack as pack_blocks, read_rows_with, rows_from_values, AudioTokenizer, BlockWriter, ChatTemplate,
    Document, GreedyPacker, LengthCache, PackConfig, PackError, Packer, Reject, Row, StagedDir, Strategy,
};

/// What to do with a bad row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Leave bad rows out, list them in `rejects.jsonl` and the summary.
    #[default]
    Skip,
    /// Stop before writing anything when a row is bad ([`PackError::BadRows`]).
    Fail,
}

/// What a pack job does (plain data: a front may store or send it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PackOptions {
    /// A `tokenizer.json`, or a Hugging Face model folder (`tokenizer.json`, or `vocab.json` +
    /// `merges.txt`, and the folder's chat template).
    pub tokenizer: PathBuf,
    /// The output folder. The dataset is built beside it and swapped in when complete; an
    /// existing folder must hold only a pack output.
    pub out: PathBuf,
    /// A Jinja chat template file for `messages` rows (default: the tokenizer folder's own, else
    /// the built-in Qwen2-Audio template).
    pub chat_template: Option<PathBuf>,
    /// Profile, block size, strategy, layout, labels, length mode, audio root, row size limit.
    pub config: PackConfig,
    /// What to do with a bad row.
    pub on_error: OnError,
    /// Worker threads (0: one per core; at most [`audiotok_core::MAX_JOBS`]).
    pub jobs: usize,
}

impl PackOptions {
    /// Options packing with `tokenizer` into `out` as `config` says; bad rows skipped, one
    /// thread per core, the tokenizer's own chat template.
    pub fn new(tokenizer: impl Into<PathBuf>, out: impl Into<PathBuf>, config: PackConfig) -> PackOptions {
        PackOptions {
            tokenizer: tokenizer.into(),
            out: out.into(),
            chat_template: None,
            config,
            on_error: OnError::Skip,
            jobs: 0,
        }
    }
}

/// Where the rows come from.
#[derive(Debug, Clone)]
pub enum PackSource {
    /// Row files, read in order: each a JSON array or JSONL ([`read_rows_with`]); rows are named
    /// `FILE:LINE` or `FILE[INDEX]`. A file that cannot be read or is not JSON at all is fatal.
    Files(Vec<PathBuf>),
    /// Rows given in memory, each the JSON object a JSONL line would hold ([`rows_from_values`]):
    /// row `i` is named `row i`, and a value that is not a row is a reject.
    Values(Vec<serde_json::Value>),
    /// Rows already built (their [`Row::source`] names them).
    Rows(Vec<Row>),
    /// Audio records (`audiotok_sources::collect`: Parquet rows, tar samples, cuts, manifest
    /// lines, files): one text row each, whose audio is the record and whose text is `template`
    /// with every `{field}` replaced by that field of the record's metadata ([`record_row`]).
    /// Lengths are measured on the records themselves ([`crate::input_length`]).
    Records {
        /// The records, in order.
        inputs: Vec<audiotok_core::Input>,
        /// The row text, e.g. `<|audio_bos|><|AUDIO|><|audio_eos|>{text}`.
        template: String,
    },
}

/// The row of record `index` of a [`PackSource::Records`]: text `template` with `{field}`
/// replaced by the record's metadata field `field` (strings as they are, other values as JSON;
/// `{{` and `}}` stand for braces), audio the record's id. Named in rejects by its id and index.
/// A field the record lacks is a [`crate::RejectReason::BadRow`].
pub fn record_row(index: usize, input: &audiotok_core::Input, template: &str) -> Result<Row, Reject> {
    let source = crate::RowSource::index(&input.path, index as u64);
    let meta: serde_json::Map<String, serde_json::Value> =
        input.meta.as_deref().and_then(|m| serde_json::from_str(m).ok()).unwrap_or_default();
    let bad = |msg: String| Reject { source: source.clone(), reason: crate::RejectReason::BadRow(msg) };
    let mut text = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        text.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            text.push_str(&tail[..1]);
            rest = &tail[2..];
            continue;
        }
        if tail.starts_with('}') {
            return Err(bad(format!("text template {template:?}: unmatched }}")));
        }
        let Some(end) = tail.find('}') else {
            return Err(bad(format!("text template {template:?}: unmatched {{")));
        };
        let name = &tail[1..end];
        match meta.get(name) {
            Some(serde_json::Value::String(v)) => text.push_str(v),
            Some(v) => text.push_str(&v.to_string()),
            None => {
                let have: Vec<&str> = meta.keys().map(String::as_str).collect();
                return Err(bad(format!("no field {name:?} in the record (fields: {})", have.join(", "))));
            }
        }
        rest = &tail[end + 1..];
    }
    text.push_str(rest);
    let audio = vec![audiotok_core::path_text(&input.path)];
    Ok(Row { source, content: crate::RowContent::Text(text), audio })
}

/// A value per packing strategy (in the summary's `efficiency` and `blocks_by_strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ByStrategy<T> {
    /// With best-fit decreasing.
    pub bfd: T,
    /// With greedy next-fit.
    pub greedy: T,
}

/// Wall-clock seconds of a pack job's phases: `setup + tokenize_and_expand + pack_and_write`
/// is the whole run. Within `setup` the tokenizer loads while the rows are read and the audio
/// lengths measured (their own durations are given); with greedy streaming, blocks are written
/// between chunks of rows (in `pack_and_write`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PhaseSeconds {
    /// Measuring the audio lengths.
    pub audio_lengths: f64,
    /// Loading the tokenizer.
    pub load_tokenizer: f64,
    /// Everything after tokenizing: packing, encoding and writing blocks, the swap.
    pub pack_and_write: f64,
    /// Reading (or parsing) the rows.
    pub read_rows: f64,
    /// From the start until the rows are tokenized: output checks, tokenizer, rows, lengths,
    /// chat template.
    pub setup: f64,
    /// Preparing the rows (template, tokenization, expansion).
    pub tokenize_and_expand: f64,
}

/// What a pack job did. Serialises to the object `audiotok pack --json` prints: its keys are in
/// alphabetical order (as `serde_json::json!` built it, the order every earlier run printed), so
/// the fields are declared so. The rejects are not part of it ([`PackSummary::rejects`]).
#[derive(Debug, Clone, Serialize)]
pub struct PackSummary {
    /// Distinct audio files the rows name.
    pub audio_files: usize,
    /// Audio files whose length needed a decode.
    pub audio_files_decoded: usize,
    /// Audio files whose length came from a verified header.
    pub audio_lengths_from_header: usize,
    /// `<|AUDIO|>` tokens in the packed rows.
    pub audio_tokens: usize,
    /// Tokens per block.
    pub block_size: usize,
    /// Blocks written.
    pub blocks: usize,
    /// Blocks each strategy gives for the packed rows (one of them is `blocks`).
    pub blocks_by_strategy: ByStrategy<usize>,
    /// Real tokens over block tokens, per strategy ([`efficiency`]).
    pub efficiency: ByStrategy<f64>,
    /// The output folder, as given.
    pub out: String,
    /// Rows packed.
    pub packed_rows: usize,
    /// Where the time went.
    pub phase_seconds: PhaseSeconds,
    /// Rows left out.
    pub rejected_rows: usize,
    /// Rows left out per [`RejectReason::kind`](crate::RejectReason::kind).
    pub rejects_by_kind: BTreeMap<String, usize>,
    /// Rows read (packed and rejected).
    pub rows: usize,
    /// `rows / seconds`.
    pub rows_per_second: f64,
    /// Wall-clock seconds of the whole job.
    pub seconds: f64,
    /// MDS shards written.
    pub shards: usize,
    /// The strategy used.
    pub strategy: Strategy,
    /// Tokens in the packed rows.
    pub tokens: usize,
    /// The rows left out, in input order, with their reasons (as in `rejects.jsonl`).
    #[serde(skip)]
    pub rejects: Vec<Reject>,
}

/// Rows prepared per parallel step (with greedy packing, blocks are written between steps).
const ROWS_PER_CHUNK: usize = 2048;
/// Blocks encoded per parallel step, at most: fewer for large blocks, so that a step holds about
/// 64 MiB of encoded blocks (a block is 12 bytes a token in three int32 columns, plus copies).
const BLOCKS_PER_CHUNK: usize = 256;

/// Blocks of `block_size` tokens encoded per parallel step.
fn blocks_per_chunk(block_size: usize) -> usize {
    ((64 << 20) / (16 * block_size.max(1))).clamp(1, BLOCKS_PER_CHUNK)
}

/// The rows of all inputs, the distinct audio files they name and their lengths.
struct Input {
    rows: Vec<Result<Row, Reject>>,
    paths: Vec<PathBuf>,
    lengths: LengthCache,
    read_seconds: f64,
    lengths_seconds: f64,
}

/// Reads the rows in input order, then measures each distinct audio file once, in parallel.
fn read_rows_and_lengths(source: PackSource, cfg: &PackConfig, observer: &dyn Observer) -> Result<Input, PackError> {
    let t = Instant::now();
    let mut premeasured = LengthCache::new();
    let rows: Vec<Result<Row, Reject>> = match source {
        PackSource::Files(files) => {
            let mut rows = Vec::new();
            for file in &files {
                rows.extend(read_rows_with(file, cfg.max_row_bytes)?);
            }
            rows
        }
        PackSource::Values(values) => rows_from_values(values),
        PackSource::Rows(rows) => rows.into_iter().map(Ok).collect(),
        PackSource::Records { inputs, template } => {
            let rate = cfg.profile.sample_rate();
            let progress = Phase::begin(observer, "audio", inputs.len() as u64, "files");
            let measured: Vec<_> = inputs
                .par_iter()
                .map(|i| {
                    let r = crate::input_length(i, rate, cfg.length_mode);
                    progress.advance(1);
                    (cfg.resolve(&audiotok_core::path_text(&i.path)), r)
                })
                .collect();
            drop(progress);
            premeasured.extend(measured);
            inputs.iter().enumerate().map(|(k, i)| record_row(k, i, &template)).collect()
        }
    };
    let read_seconds = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut seen = HashSet::new();
    let paths: Vec<PathBuf> = rows
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .flat_map(|r| r.audio.iter())
        .map(|p| cfg.resolve(p))
        .filter(|p| seen.insert(p.clone()))
        .collect();
    let mut lengths = premeasured;
    let todo: Vec<PathBuf> = paths.iter().filter(|p| !lengths.contains(p)).cloned().collect();
    let progress = Phase::begin(observer, "audio", todo.len() as u64, "files");
    let measured: Vec<_> = todo
        .par_iter()
        .map(|p| {
            let r = cfg.audio_length(p);
            progress.advance(1);
            (p.clone(), r)
        })
        .collect();
    drop(progress);
    lengths.extend(measured);
    Ok(Input { rows, paths, lengths, read_seconds, lengths_seconds: t.elapsed().as_secs_f64() })
}

/// The prepared documents by row order, from `base` on: with greedy streaming, documents of
/// written blocks are released, so memory holds one chunk of rows and the open block, not the
/// whole dataset.
#[derive(Default)]
struct Documents {
    base: usize,
    docs: VecDeque<Document>,
}

impl Documents {
    /// Index the next document gets.
    fn next_index(&self) -> usize {
        self.base + self.docs.len()
    }

    fn push(&mut self, d: Document) {
        self.docs.push_back(d);
    }

    /// Document `i` (not yet released).
    fn get(&self, i: usize) -> &Document {
        &self.docs[i - self.base]
    }

    /// Drops the documents before index `i`.
    fn release_before(&mut self, i: usize) {
        while self.base < i && self.docs.pop_front().is_some() {
            self.base += 1;
        }
    }
}

/// Encodes `blocks` (documents by index) in parallel, [`blocks_per_chunk`] at a time, and writes
/// them in order; returns how many were written.
fn write_blocks(
    pool: &rayon::ThreadPool,
    writer: &mut BlockWriter,
    docs: &Documents,
    blocks: &[Vec<usize>],
    block_size: usize,
) -> Result<usize, PackError> {
    for chunk in blocks.chunks(blocks_per_chunk(block_size)) {
        let encoded: Vec<_> = pool.install(|| {
            chunk
                .par_iter()
                .map(|b| {
                    let members: Vec<&Document> = b.iter().map(|&i| docs.get(i)).collect();
                    writer.encode(&members)
                })
                .collect()
        });
        for e in encoded {
            writer.write_encoded(e?)?;
        }
    }
    Ok(blocks.len())
}

/// Packs the rows of `source` as `options` say into the MDS dataset at [`PackOptions::out`]
/// (with `rejects.jsonl`), reporting progress to `observer` (phases `audio`, `rows`, and
/// `blocks` when the blocks are written after every row is prepared); see the module
/// documentation for the steps.
///
/// Bad rows are rejects, not errors: they are left out and listed in the summary and
/// `rejects.jsonl` (with [`OnError::Fail`], the first one stops the job before anything is
/// written: [`PackError::BadRows`]). Errors are what stops a job: options or an output folder
/// that cannot be used, an unreadable tokenizer, chat template or row file, an output write.
/// Any error leaves the previous dataset at `out` as it was. A job that packs no row still
/// writes its (empty) dataset and `rejects.jsonl`; the summary says so (`packed_rows` 0).
pub fn pack(options: &PackOptions, source: PackSource, observer: &dyn Observer) -> Result<PackSummary, PackError> {
    let start = Instant::now();
    let cfg = options.config.clone();
    let (layout, block_size) = (cfg.layout, cfg.block_size);
    let pool = audiotok_core::thread_pool(options.jobs)?;
    // The new dataset is built beside `out` and swapped in when complete (checked and cleaned
    // first, so a folder that cannot be replaced is refused before any work).
    let staged = StagedDir::new(&options.out)?;

    // 1. The tokenizer on one worker; meanwhile the rows (in input order) and the audio lengths
    //    (each distinct file once) on the other: they do not depend on each other.
    let (loaded, input) = pool.install(|| {
        rayon::join(
            || {
                let t = Instant::now();
                let tok = AudioTokenizer::load(&options.tokenizer);
                (tok, t.elapsed().as_secs_f64())
            },
            || read_rows_and_lengths(source, &cfg, observer),
        )
    });
    let (tokenizer, t_tokenizer) = (loaded.0?, loaded.1);
    let Input { rows, paths, lengths, read_seconds: t_read, lengths_seconds: t_lengths } = input?;
    let template = match &options.chat_template {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).map_err(|source| PackError::CannotRead { path: p.clone(), source })?;
            Some(ChatTemplate::new(&text, &p.display().to_string())?)
        }
        None => None,
    };
    let packer = Packer::new(cfg, tokenizer, template)?;
    let n_rows = rows.len();
    let t_setup = start.elapsed().as_secs_f64();

    // 2. Documents, blocks and output. With greedy packing (and OnError::Skip) blocks are
    //    written while later rows are still being tokenized: each chunk of rows is prepared in
    //    parallel, its completed blocks are encoded in parallel and written in order, and full
    //    shards are hashed and written in the background. Otherwise every row is prepared
    //    first (BFD needs all lengths; OnError::Fail writes nothing if a row is bad).
    let strategy = packer.config().strategy;
    let ids = packer.tokenizer().special_ids();
    let streaming = strategy == Strategy::Greedy && options.on_error == OnError::Skip;
    let mut writer =
        if streaming { Some(BlockWriter::create(staged.path(), layout, block_size, ids, false)?) } else { None };
    let mut greedy = GreedyPacker::new(block_size);
    let mut docs = Documents::default();
    // Kept per document for the summary (documents themselves are released once written).
    let mut doc_lengths: Vec<usize> = Vec::with_capacity(n_rows);
    let mut audio_tokens = 0usize;
    let mut rejects = Vec::new();
    let mut n_blocks = 0usize;
    let mut t_tokenize = 0.0;
    let progress = Phase::begin(observer, "rows", n_rows as u64, "rows");
    // Rows are consumed a chunk at a time (their text is dropped once tokenized).
    let mut remaining = rows.into_iter();
    loop {
        let chunk: Vec<Result<Row, Reject>> = remaining.by_ref().take(ROWS_PER_CHUNK).collect();
        if chunk.is_empty() {
            break;
        }
        let t = Instant::now();
        let prepared: Vec<Result<Document, Reject>> = pool.install(|| {
            chunk
                .par_iter()
                .map(|r| {
                    let out = match r {
                        Ok(row) => packer
                            .prepare(row, &lengths)
                            .map_err(|reason| Reject { source: row.source.clone(), reason }),
                        Err(rej) => Err(rej.clone()),
                    };
                    progress.advance(1);
                    out
                })
                .collect()
        });
        t_tokenize += t.elapsed().as_secs_f64();
        let mut ready = Vec::new();
        for p in prepared {
            match p {
                Ok(d) => {
                    if streaming {
                        ready.extend(greedy.push(docs.next_index(), d.ids.len()));
                    }
                    doc_lengths.push(d.ids.len());
                    audio_tokens += d.ids.iter().filter(|&&t| t == ids.audio).count();
                    docs.push(d);
                }
                Err(r) => rejects.push(r),
            }
        }
        if let Some(w) = writer.as_mut() {
            n_blocks += write_blocks(&pool, w, &docs, &ready, block_size)?;
            docs.release_before(greedy.first_open().unwrap_or(docs.next_index()));
        }
    }
    drop(progress);
    if options.on_error == OnError::Fail {
        if let Some(first) = rejects.first() {
            return Err(PackError::BadRows { first: Box::new(first.clone()), count: rejects.len() });
        }
    }
    let writer = match writer {
        Some(mut w) => {
            let last: Vec<Vec<usize>> = greedy.finish().into_iter().collect();
            n_blocks += write_blocks(&pool, &mut w, &docs, &last, block_size)?;
            w
        }
        None => {
            let blocks = pack_blocks(&doc_lengths, block_size, strategy);
            let mut w = BlockWriter::create(staged.path(), layout, block_size, ids, false)?;
            let progress = Phase::begin(observer, "blocks", blocks.len() as u64, "blocks");
            for chunk in blocks.chunks(blocks_per_chunk(block_size)) {
                n_blocks += write_blocks(&pool, &mut w, &docs, chunk, block_size)?;
                progress.advance(chunk.len() as u64);
            }
            drop(progress);
            w
        }
    };
    let index = writer.finish()?;

    // The other strategy's block count, for the efficiency comparison.
    let other = match strategy {
        Strategy::Greedy => Strategy::Bfd,
        Strategy::Bfd => Strategy::Greedy,
    };
    let other_blocks = pack_blocks(&doc_lengths, block_size, other).len();
    let mut rejects_text = String::new();
    for r in &rejects {
        rejects_text.push_str(&r.to_json_line());
        rejects_text.push('\n');
    }
    audiotok_audio::atomic::write_with(&staged.path().join("rejects.jsonl"), |w| {
        w.write_all(rejects_text.as_bytes()).map_err(PackError::WriteRejects)
    })?;
    staged.commit()?;

    // 3. Summary.
    let elapsed = start.elapsed().as_secs_f64();
    let (from_header, decoded) = lengths.counts();
    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    for r in &rejects {
        *by_kind.entry(r.reason.kind().to_string()).or_default() += 1;
    }
    let eff = |n: usize| efficiency(&doc_lengths, n, block_size);
    let (greedy_blocks, bfd_blocks) = match strategy {
        Strategy::Greedy => (n_blocks, other_blocks),
        Strategy::Bfd => (other_blocks, n_blocks),
    };
    Ok(PackSummary {
        audio_files: paths.len(),
        audio_files_decoded: decoded,
        audio_lengths_from_header: from_header,
        audio_tokens,
        block_size,
        blocks: n_blocks,
        blocks_by_strategy: ByStrategy { bfd: bfd_blocks, greedy: greedy_blocks },
        efficiency: ByStrategy { bfd: eff(bfd_blocks), greedy: eff(greedy_blocks) },
        out: options.out.display().to_string(),
        packed_rows: doc_lengths.len(),
        phase_seconds: PhaseSeconds {
            audio_lengths: t_lengths,
            load_tokenizer: t_tokenizer,
            pack_and_write: elapsed - t_setup - t_tokenize,
            read_rows: t_read,
            setup: t_setup,
            tokenize_and_expand: t_tokenize,
        },
        rejected_rows: rejects.len(),
        rejects_by_kind: by_kind,
        rows: n_rows,
        rows_per_second: n_rows as f64 / elapsed.max(1e-9),
        seconds: elapsed,
        shards: index.shards.len(),
        strategy,
        tokens: doc_lengths.iter().sum(),
        rejects,
    })
}
