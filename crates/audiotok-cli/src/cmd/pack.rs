//! `audiotok pack`: instruction rows with audio → packed token blocks in MDS shards.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use audiotok_features::profiles::Profile;
use audiotok_pack::{
    efficiency, pack, read_rows_with, BlockWriter, ChatTemplate, Document, GreedyPacker, Layout, LengthCache,
    LengthMode, PackConfig, Packer, Reject, Row, StagedDir, Strategy, TrainOn, DEFAULT_MAX_ROW_BYTES, MAX_BLOCK_SIZE,
};
use clap::ValueEnum;
use rayon::prelude::*;
use serde_json::json;

use crate::runner::{progress_bar, write_atomic};

#[derive(Clone, Copy, ValueEnum)]
enum StrategyArg {
    /// Next-fit in input order (the Qwen2-Audio notebook).
    Greedy,
    /// Best-fit decreasing (TRL's `pack_dataset(strategy="bfd")`): fewer, fuller blocks.
    Bfd,
}

#[derive(Clone, Copy, ValueEnum)]
enum Compat {
    /// The Qwen2-Audio packing notebook's layout: custom `uint32` columns input_ids, position_ids,
    /// attention_mask (document lengths), audio and text as str.
    Cooking,
}

#[derive(Clone, Copy, ValueEnum)]
enum TrainOnArg {
    /// Labels on every token except audio tokens and padding.
    All,
    /// Labels only inside assistant turns.
    Assistant,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum OnError {
    /// Leave bad rows out, list them in rejects.jsonl and the summary.
    Skip,
    /// Stop before writing anything at the first bad row.
    Fail,
}

#[derive(Clone, Copy, ValueEnum)]
enum LengthsArg {
    /// Exact lengths from WAV/FLAC headers; decode other formats.
    Header,
    /// Decode and resample every file (as the reference does).
    Decode,
}

/// Arguments of `audiotok pack`.
#[derive(clap::Args)]
#[command(after_help = "Rows: {\"text\": \"...<|AUDIO|>...\", \"audio\": \"a.wav\" | [\"a.wav\", ...]} or \
{\"messages\": [...], \"audio\": [...]}, as a JSON array file or JSONL. Each <|AUDIO|> becomes the profile's \
token count for its audio, wrapped in <|audio_bos|>..<|audio_eos|> unless already surrounded.\n\n\
Output: DIR/index.json + shards (MosaicML MDS), DIR/rejects.jsonl (one line per row left out, with its file, \
line or index, and reason).\n\n\
Example:\n  audiotok pack --tokenizer Qwen2-Audio-7B-Instruct/ --out packed/ rows.jsonl")]
pub struct Args {
    /// Row files: a JSON array or JSONL (one object per line).
    #[arg(required = true, value_name = "ROWS")]
    inputs: Vec<PathBuf>,
    /// Output folder. The dataset is built beside it and swapped in when complete, so a failed
    /// or killed rerun leaves the previous dataset; an existing folder must hold only a pack
    /// output.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// A tokenizer.json, or a Hugging Face model folder (tokenizer.json, or vocab.json + merges.txt).
    #[arg(long, value_name = "PATH")]
    tokenizer: PathBuf,
    /// Audio encoder whose token count replaces each placeholder.
    #[arg(long, default_value = "qwen2-audio")]
    profile: Profile,
    /// Tokens per block (1..=1048576).
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..=MAX_BLOCK_SIZE as i64))]
    block_size: u32,
    /// How rows are assigned to blocks.
    #[arg(long, value_enum, default_value = "greedy")]
    strategy: StrategyArg,
    /// Reproduce a reference's output layout exactly.
    #[arg(long, value_enum)]
    compat: Option<Compat>,
    /// Which tokens get labels (standard layout).
    #[arg(long, value_enum, default_value = "all")]
    train_on: TrainOnArg,
    /// What to do with a bad row.
    #[arg(long, value_enum, default_value = "skip")]
    on_error: OnError,
    /// Exit 0 even when no row was packed (every row rejected, or no rows).
    #[arg(long)]
    keep_going: bool,
    /// Row size limit in bytes: a JSONL line longer than this is rejected (`too_large`) without
    /// being read whole (1..=4294967296).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_ROW_BYTES,
          value_parser = clap::value_parser!(u64).range(1..=1 << 32))]
    max_row_bytes: u64,
    /// A Jinja chat template file for `messages` rows (default: the tokenizer folder's own, else
    /// the built-in Qwen2-Audio template).
    #[arg(long, value_name = "FILE")]
    chat_template: Option<PathBuf>,
    /// Folder that relative audio paths are resolved against (default: the current folder).
    /// Paths are stored as written in the rows.
    #[arg(long, value_name = "DIR")]
    audio_root: Option<PathBuf>,
    /// How audio lengths are found.
    #[arg(long, value_enum, default_value = "header")]
    lengths: LengthsArg,
    /// Worker threads (0: one per core; at most 1024).
    #[arg(long, short, default_value_t = 0, value_parser = crate::runner::parse_jobs)]
    jobs: usize,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
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
fn read_rows_and_lengths(inputs: &[PathBuf], cfg: &PackConfig) -> Result<Input> {
    let t = Instant::now();
    let mut rows: Vec<Result<Row, Reject>> = Vec::new();
    for input in inputs {
        rows.extend(read_rows_with(input, cfg.max_row_bytes)?);
    }
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
    let bar = progress_bar(paths.len() as u64, "audio", "files");
    let measured: Vec<_> = paths
        .par_iter()
        .map(|p| {
            let r = cfg.audio_length(p);
            bar.inc(1);
            (p.clone(), r)
        })
        .collect();
    bar.finish_and_clear();
    let mut lengths = LengthCache::new();
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
) -> Result<usize> {
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

/// Runs `audiotok pack`.
pub fn run(args: Args) -> Result<ExitCode> {
    let start = Instant::now();
    let layout = match args.compat {
        Some(Compat::Cooking) => Layout::Cooking,
        None => Layout::Standard,
    };
    let block_size = args.block_size as usize;
    let cfg = PackConfig {
        profile: args.profile.clone(),
        block_size,
        strategy: match args.strategy {
            StrategyArg::Greedy => Strategy::Greedy,
            StrategyArg::Bfd => Strategy::Bfd,
        },
        layout,
        train_on: match args.train_on {
            TrainOnArg::All => TrainOn::All,
            TrainOnArg::Assistant => TrainOn::Assistant,
        },
        length_mode: match args.lengths {
            LengthsArg::Header => LengthMode::Header,
            LengthsArg::Decode => LengthMode::Decode,
        },
        audio_root: args.audio_root.clone(),
        max_row_bytes: args.max_row_bytes,
    };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(args.jobs).build().context("starting the thread pool")?;
    // The new dataset is built beside --out and swapped in when complete (checked and cleaned
    // first, so a folder that cannot be replaced is refused before any work).
    let staged = StagedDir::new(&args.out)?;

    // 1. The tokenizer on one worker; meanwhile the rows (in input order) and the audio lengths
    //    (each distinct file once) on the other: they do not depend on each other.
    let (loaded, input) = pool.install(|| {
        rayon::join(
            || {
                let t = Instant::now();
                let tok = audiotok_pack::AudioTokenizer::load(&args.tokenizer);
                (tok, t.elapsed().as_secs_f64())
            },
            || read_rows_and_lengths(&args.inputs, &cfg),
        )
    });
    let (tokenizer, t_tokenizer) = (loaded.0?, loaded.1);
    let Input { rows, paths, lengths, read_seconds: t_read, lengths_seconds: t_lengths } = input?;
    let template = match &args.chat_template {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("{}: cannot read", p.display()))?;
            Some(ChatTemplate::new(&text, &p.display().to_string())?)
        }
        None => None,
    };
    let packer = Packer::new(cfg, tokenizer, template)?;
    let n_rows = rows.len();
    let t_setup = start.elapsed().as_secs_f64();

    // 2. Documents, blocks and output. With greedy packing (and --on-error skip) blocks are
    //    written while later rows are still being tokenized: each chunk of rows is prepared in
    //    parallel, its completed blocks are encoded in parallel and written in order, and full
    //    shards are hashed and written in the background. Otherwise every row is prepared
    //    first (BFD needs all lengths; --on-error fail writes nothing if a row is bad).
    let strategy = packer.config().strategy;
    let ids = packer.tokenizer().special_ids();
    let streaming = strategy == Strategy::Greedy && args.on_error == OnError::Skip;
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
    let bar = progress_bar(n_rows as u64, "rows", "rows");
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
                    bar.inc(1);
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
    bar.finish_and_clear();
    if args.on_error == OnError::Fail {
        if let Some(first) = rejects.first() {
            bail!("{first} (--on-error fail: nothing written; {} bad row(s) in all)", rejects.len());
        }
    }
    let writer = match writer {
        Some(mut w) => {
            let last: Vec<Vec<usize>> = greedy.finish().into_iter().collect();
            n_blocks += write_blocks(&pool, &mut w, &docs, &last, block_size)?;
            w
        }
        None => {
            let blocks = pack(&doc_lengths, block_size, strategy);
            let mut w = BlockWriter::create(staged.path(), layout, block_size, ids, false)?;
            let bar = progress_bar(blocks.len() as u64, "blocks", "blocks");
            for chunk in blocks.chunks(blocks_per_chunk(block_size)) {
                n_blocks += write_blocks(&pool, &mut w, &docs, chunk, block_size)?;
                bar.inc(chunk.len() as u64);
            }
            bar.finish_and_clear();
            w
        }
    };
    let index = writer.finish()?;

    // The other strategy's block count, for the efficiency comparison.
    let other = match strategy {
        Strategy::Greedy => Strategy::Bfd,
        Strategy::Bfd => Strategy::Greedy,
    };
    let other_blocks = pack(&doc_lengths, block_size, other).len();
    let mut rejects_text = String::new();
    for r in &rejects {
        rejects_text.push_str(&r.to_json_line());
        rejects_text.push('\n');
    }
    write_atomic(&staged.path().join("rejects.jsonl"), rejects_text.as_bytes())?;
    staged.commit()?;

    // 6. Summary.
    let elapsed = start.elapsed().as_secs_f64();
    let tokens: usize = doc_lengths.iter().sum();
    let (from_header, decoded) = lengths.counts();
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &rejects {
        *by_kind.entry(r.reason.kind()).or_default() += 1;
    }
    let eff = |n: usize| efficiency(&doc_lengths, n, block_size);
    let (greedy_blocks, bfd_blocks) = match strategy {
        Strategy::Greedy => (n_blocks, other_blocks),
        Strategy::Bfd => (other_blocks, n_blocks),
    };
    let summary = json!({
        "rows": n_rows,
        "packed_rows": doc_lengths.len(),
        "rejected_rows": rejects.len(),
        "rejects_by_kind": by_kind,
        "blocks": n_blocks,
        "shards": index.shards.len(),
        "block_size": args.block_size,
        "tokens": tokens,
        "audio_tokens": audio_tokens,
        "audio_files": paths.len(),
        "audio_lengths_from_header": from_header,
        "audio_files_decoded": decoded,
        "strategy": match strategy { Strategy::Greedy => "greedy", Strategy::Bfd => "bfd" },
        "efficiency": {"greedy": eff(greedy_blocks), "bfd": eff(bfd_blocks)},
        "blocks_by_strategy": {"greedy": greedy_blocks, "bfd": bfd_blocks},
        "seconds": elapsed,
        // Wall-clock seconds: setup + tokenize_and_expand + pack_and_write = seconds. Within
        // setup, the tokenizer loads while rows are read and audio lengths measured (their own
        // durations are given); with greedy packing, blocks are written between chunks of rows.
        "phase_seconds": {
            "setup": t_setup,
            "load_tokenizer": t_tokenizer,
            "read_rows": t_read,
            "audio_lengths": t_lengths,
            "tokenize_and_expand": t_tokenize,
            "pack_and_write": elapsed - t_setup - t_tokenize,
        },
        "rows_per_second": n_rows as f64 / elapsed.max(1e-9),
        "out": args.out.display().to_string(),
    });
    for r in rejects.iter().take(10) {
        eprintln!("  rejected {r}");
    }
    if rejects.len() > 10 {
        eprintln!("  ... and {} more (see {})", rejects.len() - 10, args.out.join("rejects.jsonl").display());
    }
    eprintln!(
        "pack: {} of {} rows in {} blocks of {} ({} tokens, {} audio) -> {}",
        doc_lengths.len(),
        n_rows,
        n_blocks,
        args.block_size,
        tokens,
        audio_tokens,
        args.out.display()
    );
    eprintln!(
        "      efficiency {:.1}% greedy ({} blocks), {:.1}% bfd ({} blocks); {} rejected; audio lengths: {} from headers, {} decoded; {:.2} s ({:.0} rows/s)",
        100.0 * eff(greedy_blocks),
        greedy_blocks,
        100.0 * eff(bfd_blocks),
        bfd_blocks,
        rejects.len(),
        from_header,
        decoded,
        elapsed,
        n_rows as f64 / elapsed.max(1e-9)
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    }
    if doc_lengths.is_empty() && !args.keep_going {
        eprintln!(
            "pack: no row was packed ({} rejected, see {}): exit 1 (--keep-going: exit 0)",
            rejects.len(),
            args.out.join("rejects.jsonl").display()
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
