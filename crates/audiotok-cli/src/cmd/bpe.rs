//! `audiotok bpe`: learn, apply and inspect BPE merge vocabularies over integer audio-token
//! streams (`audiotok_tokens::bpe`).
//!
//! Input goes through `audiotok_tokens::input`: text (one sequence per line, space-separated
//! integers), `.npy` (1-D: one stream; 2-D `[T, codebooks]`: one stream per codebook) and token
//! stores (one stream per scale). Single-stream variants take each sequence's time-interleaved
//! stream (a 2-D array row-major, SNAC scales depth-first); multi-scale variants (`cross-scale`,
//! `hierarchical`, `rl+cross-scale`) take the per-scale streams, in the ratios of the first
//! sequence (or `--scale-ratios`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use audiotok_features::npy;
use audiotok_tokens::bpe::{train, BpeError, BpeModel, Corpus, TrainerConfig, Variant};
use audiotok_tokens::input::{InputOptions, TokenInput};
use audiotok_tokens::store::{
    ScaleTokens, StoreMetadata, StoreOptions, StoreReader, StoreWriter, TokenRecord, METADATA_FILE,
};

/// Most merges (or vocabulary size) `bpe train` takes: ids stay far below 2^32.
const MAX_MERGES: usize = 1 << 30;
/// Longest run `rl` makes one symbol.
const MAX_RUN: i64 = 1 << 16;
/// Largest codebook (`bpe::TrainerConfig` refuses `u32::MAX / 4` and above).
const MAX_CODEBOOK: u32 = u32::MAX / 4 - 1;
/// Largest codes-per-coarsest-frame ratio of one scale.
const MAX_RATIO: i64 = 1024;
/// Most rows `bpe inspect --top` prints.
const MAX_TOP: usize = 1_000_000;

/// A clap parser of a `usize` in `lo..=hi`.
fn usize_in(lo: usize, hi: usize) -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(lo as u64..=hi as u64)
}

/// Arguments of `audiotok bpe`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Learn merges from token streams and write the model JSON.
    Train {
        /// Variant: plain, rl, thresholded (single stream); cross-scale, hierarchical, rl+cross-scale
        /// (per-scale streams from a token store or 2-D .npy).
        #[arg(long, default_value = "plain")]
        variant: String,
        /// Number of merges (give this or --vocab-size; at most 2^30).
        #[arg(long, value_parser = usize_in(1, MAX_MERGES))]
        merges: Option<usize>,
        /// Target vocabulary size: base symbols + merged symbols (at most 2^30).
        #[arg(long, value_parser = usize_in(1, MAX_MERGES))]
        vocab_size: Option<usize>,
        /// thresholded: stop when the best pair occurs fewer times than this (at least 1).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        min_freq: Option<u64>,
        /// rl: longest run that becomes one symbol (1 to 65536).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=MAX_RUN))]
        max_run: Option<u32>,
        /// Codebook size (default: largest id + 1; at most 2^30 - 2).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_CODEBOOK)))]
        codebook_size: Option<u32>,
        /// Multi-scale variants: codes per coarsest frame of each scale, e.g. 1,2,4 (default: from
        /// the first sequence's lengths; each 1 to 1024).
        #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=MAX_RATIO))]
        scale_ratios: Option<Vec<u32>>,
        /// hierarchical: merges given to the per-scale stage (default: half; at most 2^30).
        #[arg(long, value_parser = usize_in(0, MAX_MERGES))]
        scale_merges: Option<usize>,
        /// Token streams: text, .npy, token stores (.parquet or directory), or directories of them.
        #[arg(long, required = true)]
        input: Vec<PathBuf>,
        /// Model file to write.
        #[arg(long, short)]
        out: PathBuf,
    },
    /// Encode token streams with a model (same format out as in).
    Encode(Transform),
    /// Decode symbol streams back to base tokens.
    Decode(Transform),
    /// Merge table, longest merged symbols and (with --input) the compression ratio.
    Inspect {
        /// Model JSON.
        #[arg(long)]
        model: PathBuf,
        /// Optional token streams (or, for multi-scale models, a store or 2-D .npy) to measure
        /// compression on.
        #[arg(long)]
        input: Option<PathBuf>,
        /// Rows of the merge table to print (at most 10^6).
        #[arg(long, default_value_t = 20, value_parser = usize_in(0, MAX_TOP))]
        top: usize,
    },
    /// Export a plain model as an HF tokenizers `tokenizer.json` (code i as U+4E00+i).
    Export {
        /// Model JSON.
        #[arg(long)]
        model: PathBuf,
        /// Export format (only `hf`).
        #[arg(long, default_value = "hf")]
        format: String,
        /// Output file.
        #[arg(long, short)]
        out: PathBuf,
    },
}

/// Arguments of `encode` and `decode`.
#[derive(clap::Args)]
struct Transform {
    /// Model JSON.
    #[arg(long)]
    model: PathBuf,
    /// encode: token streams (text, .npy; multi-scale models: a token store or 2-D .npy).
    /// decode: symbol streams (text, one sequence per line, or 1-D .npy).
    #[arg(long)]
    input: PathBuf,
    /// Output. encode: text (one line per sequence) or .npy (one sequence). decode: text or .npy
    /// for single-stream models; for multi-scale models a .npy ([T, scales], equal ratios only,
    /// one sequence) or a token store directory.
    #[arg(long)]
    output: PathBuf,
    /// decode, multi-scale, store output: take file_path and duration of each record from this
    /// store (same number of sequences), and its batch size, codebook sizes and rates; without it
    /// file_path is `INPUT:LINE` and duration 0.
    #[arg(long)]
    like: Option<PathBuf>,
}

/// Reads every sequence of `inputs` (text, `.npy`, token stores; see `audiotok_tokens::input`) as
/// one stream each: multi-scale and multi-codebook sequences are time-interleaved.
fn collect_streams(inputs: &[PathBuf], codebook_size: Option<u32>) -> Result<Vec<Vec<u32>>> {
    let input = TokenInput::open(inputs, InputOptions { codebook_size })?;
    let mut all = Vec::new();
    for seq in input.sequences() {
        let seq = seq?;
        let stream = match seq.scales.len() {
            1 => seq.scales.into_iter().next().unwrap_or_default(),
            _ => seq.interleaved().with_context(|| {
                format!("{}: scale lengths are not whole multiples of scale 0's, cannot interleave", seq.source)
            })?,
        };
        all.push(stream);
    }
    Ok(all)
}

fn read_streams(path: &Path, codebook_size: Option<u32>) -> Result<Vec<Vec<u32>>> {
    collect_streams(&[path.to_path_buf()], codebook_size)
}

/// Every sequence's scales as separate streams: `[scale][sequence]` (empty when the input has a
/// single scale).
fn read_scale_streams(path: &Path, codebook_size: Option<u32>) -> Result<Vec<Vec<Vec<u32>>>> {
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

/// One sequence as one stream per scale.
type MultiScale = Vec<Vec<u32>>;

/// Reads per-scale sequences for the multi-scale variants; every sequence must have the ratios
/// `ratios` (or, when `None`, those of the first sequence). Returns the sequences and the ratios.
fn collect_scales(
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
            (w, got) => bail!(
                "{}: scale lengths {:?} are not in the ratios {:?}{}",
                seq.source,
                seq.scales.iter().map(Vec::len).collect::<Vec<_>>(),
                w.as_ref().or(got.as_ref()),
                if ratios.is_some() { " (--scale-ratios)" } else { " of the first sequence" }
            ),
        }
        all.push(seq.scales);
    }
    let ratios = want.unwrap_or_default();
    if ratios.len() < 2 {
        bail!(
            "multi-scale variants need per-scale streams (a token store, or a 2-D [T, codebooks] .npy); \
             the input has one stream per sequence"
        );
    }
    Ok((all, ratios))
}

fn write_streams(path: &Path, streams: &[Vec<u32>]) -> Result<()> {
    let is_npy = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    if is_npy {
        if streams.len() != 1 {
            bail!("{}: .npy output holds one sequence, the input had {}", path.display(), streams.len());
        }
        let ids: Vec<i64> = streams[0].iter().map(|&x| i64::from(x)).collect();
        return crate::runner::write_atomic_with(path, |w| Ok(npy::write_i64(w, &[ids.len()], &ids)?));
    }
    let mut text = String::new();
    for s in streams {
        text.push_str(&s.iter().map(u32::to_string).collect::<Vec<_>>().join(" "));
        text.push('\n');
    }
    crate::runner::write_atomic(path, text.as_bytes())
}

fn load_model(path: &Path) -> Result<BpeModel> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
    BpeModel::from_json(&text).with_context(|| format!("{}: not a valid audiotok BPE model", path.display()))
}

/// Encodes (or decodes) every input sequence with `model`, writes the result, and returns the
/// input and output lengths in total.
fn transform(t: &Transform, encode: bool) -> Result<(usize, usize)> {
    let (input, output) = (&t.input, &t.output);
    let model = load_model(&t.model)?;
    let ctx = |i: usize| format!("{}: sequence {}", input.display(), i + 1);
    if !model.variant().is_multi_scale() {
        let streams = read_streams(input, encode.then(|| model.codebook_size()))?;
        let out = streams
            .iter()
            .enumerate()
            .map(|(i, s)| if encode { model.encode(s) } else { model.decode(s) }.with_context(|| ctx(i)))
            .collect::<Result<Vec<_>>>()?;
        write_streams(output, &out)?;
        return Ok((streams.iter().map(Vec::len).sum(), out.iter().map(Vec::len).sum()));
    }
    if encode {
        let (items, _) =
            collect_scales(std::slice::from_ref(input), Some(model.scale_ratios()), Some(model.codebook_size()))?;
        let out = items
            .iter()
            .enumerate()
            .map(|(i, x)| model.encode_scales(x).with_context(|| ctx(i)))
            .collect::<Result<Vec<_>>>()?;
        write_streams(output, &out)?;
        let n = items.iter().flatten().map(Vec::len).sum();
        return Ok((n, out.iter().map(Vec::len).sum()));
    }
    let streams = read_streams(input, None)?;
    let items = streams
        .iter()
        .enumerate()
        .map(|(i, s)| model.decode_scales(s).with_context(|| ctx(i)))
        .collect::<Result<Vec<_>>>()?;
    write_scales(output, &items, input, t.like.as_deref(), model.scale_ratios())?;
    Ok((streams.iter().map(Vec::len).sum(), items.iter().flatten().map(Vec::len).sum()))
}

/// Writes decoded per-scale sequences: a 2-D `[T, scales]` .npy (equal ratios, one sequence) or a
/// token store directory.
fn write_scales(path: &Path, items: &[Vec<Vec<u32>>], input: &Path, like: Option<&Path>, ratios: &[u32]) -> Result<()> {
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy")) {
        if items.len() != 1 || ratios.iter().any(|&r| r != ratios[0]) {
            bail!(
                "{}: .npy output holds one sequence of equal-rate scales ([T, scales]); write a token store \
                 directory instead",
                path.display()
            );
        }
        let (c, t) = (items[0].len(), items[0][0].len());
        let data: Vec<i64> = (0..t).flat_map(|j| items[0].iter().map(move |s| i64::from(s[j]))).collect();
        return crate::runner::write_atomic_with(path, |w| Ok(npy::write_i64(w, &[t, c], &data)?));
    }
    let names: Vec<(String, f64)> = match like {
        Some(store) => {
            let recs = StoreReader::open(store)?.records().collect::<std::result::Result<Vec<_>, _>>()?;
            if recs.len() != items.len() {
                bail!("--like {}: {} records, the input has {} sequences", store.display(), recs.len(), items.len());
            }
            recs.into_iter().map(|r| (r.file_path, r.duration)).collect()
        }
        None => (0..items.len()).map(|i| (format!("{}:{}", input.display(), i + 1), 0.0)).collect(),
    };
    let mut opts = StoreOptions::new(ratios.len());
    // Like a store directory: its batch size, codebook sizes and rates too, so that a lossless
    // round trip gives the same files.
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

/// Runs the subcommand.
pub fn run(args: Args) -> Result<ExitCode> {
    match args.command {
        Command::Train {
            variant,
            merges,
            vocab_size,
            min_freq,
            max_run,
            codebook_size,
            scale_ratios,
            scale_merges,
            input,
            out,
        } => {
            let variant: Variant = variant.parse().with_context(|| format!("--variant {variant}"))?;
            if merges.is_none() && vocab_size.is_none() && !(variant == Variant::Thresholded && min_freq.is_some()) {
                bail!("give --merges N or --vocab-size V");
            }
            let (streams, items, ratios) = if variant.is_multi_scale() {
                let (items, ratios) = collect_scales(&input, scale_ratios.as_deref(), codebook_size)?;
                (Vec::new(), items, ratios)
            } else {
                if scale_ratios.is_some() {
                    bail!("--scale-ratios is for the multi-scale variants");
                }
                (collect_streams(&input, codebook_size)?, Vec::new(), Vec::new())
            };
            let max_id = streams.iter().flatten().chain(items.iter().flatten().flatten()).copied().max().unwrap_or(0);
            let size = match codebook_size {
                Some(s) => s,
                None => max_id.checked_add(1).ok_or_else(|| {
                    BpeError::Config(format!(
                        "codebook_size {} (largest id + 1) is out of range",
                        u64::from(max_id) + 1
                    ))
                })?,
            };
            let mut cfg = TrainerConfig::new(variant, size);
            cfg.merges = merges;
            cfg.vocab_size = vocab_size;
            cfg.min_freq = min_freq;
            cfg.scale_ratios = ratios;
            cfg.scale_merges = scale_merges;
            if let Some(r) = max_run {
                cfg.max_run = r;
            }
            let t0 = std::time::Instant::now();
            let corpus = if variant.is_multi_scale() { Corpus::Scales(&items) } else { Corpus::Streams(&streams) };
            let model = train(&cfg, &corpus)?;
            crate::runner::write_atomic(&out, model.to_json()?.as_bytes())?;
            let tokens: usize = streams.iter().chain(items.iter().flatten()).map(Vec::len).sum();
            eprintln!(
                "bpe train: {} sequences, {tokens} tokens, {} merges -> vocabulary {} in {:.2} s -> {}",
                streams.len() + items.len(),
                model.merges().len(),
                model.vocab_size(),
                t0.elapsed().as_secs_f64(),
                out.display()
            );
        }
        Command::Encode(t) => {
            let (a, b) = transform(&t, true)?;
            eprintln!("bpe encode: {a} tokens -> {b} symbols ({:.3}x)", a as f64 / b.max(1) as f64);
        }
        Command::Decode(t) => {
            let (a, b) = transform(&t, false)?;
            eprintln!("bpe decode: {a} symbols -> {b} tokens -> {}", t.output.display());
        }
        Command::Inspect { model, input, top } => {
            let m = load_model(&model)?;
            let (streams, items) = match input.as_deref() {
                Some(p) if m.variant().is_multi_scale() => {
                    (Vec::new(), collect_scales(&[p.to_path_buf()], Some(m.scale_ratios()), Some(m.codebook_size()))?.0)
                }
                Some(p) => (read_streams(p, Some(m.codebook_size()))?, Vec::new()),
                None => (Vec::new(), Vec::new()),
            };
            let corpus = match input {
                None => None,
                Some(_) if m.variant().is_multi_scale() => Some(Corpus::Scales(&items)),
                Some(_) => Some(Corpus::Streams(&streams)),
            };
            let stats = m.stats(corpus.as_ref())?;
            println!(
                "{}: variant {}, base {} symbols, vocabulary {}, {} merges",
                model.display(),
                stats.variant.name(),
                stats.base_size,
                stats.vocab_size,
                stats.merges
            );
            println!("first merges (rank: left + right -> id, base tokens):");
            for r in stats.merge_table.iter().take(top) {
                println!("  {:>6}: {} + {} -> {} ({} tokens)", r.rank, r.left, r.right, r.id, r.tokens);
            }
            println!("longest symbols:");
            for s in stats.longest.iter().take(top.min(10)) {
                println!("  {}: {:?}", s.id, s.tokens);
            }
            if let Some(c) = &stats.compression {
                println!(
                    "compression: {} base tokens -> {} symbols: {:.4}x over {} sequences",
                    c.base_tokens, c.encoded_symbols, c.ratio, c.sequences
                );
            }
            // Per scale: a multi-scale model's symbols span scales, so give each scale's share of
            // the tokens and the symbols per coarsest frame; a single-stream model is also applied
            // to each scale's stream alone.
            match (&stats.compression, input.as_deref()) {
                (Some(c), Some(_)) if m.variant().is_multi_scale() => {
                    for (k, t) in c.scale_tokens.iter().enumerate() {
                        println!(
                            "  scale {k}: {t} tokens ({} per frame)",
                            m.scale_ratios().get(k).copied().unwrap_or(0)
                        );
                    }
                    if let Some(spf) = c.symbols_per_frame {
                        let codes: u32 = m.scale_ratios().iter().sum();
                        println!("  {} frames: {codes} codes -> {spf:.4} symbols per frame", c.frames);
                    }
                }
                (Some(_), Some(p)) => {
                    for (k, streams) in read_scale_streams(p, Some(m.codebook_size()))?.iter().enumerate() {
                        if let Some(c) = m.stats(Some(&Corpus::Streams(streams)))?.compression {
                            println!(
                                "  scale {k} alone: {} tokens -> {} symbols: {:.4}x",
                                c.base_tokens, c.encoded_symbols, c.ratio
                            );
                        }
                    }
                }
                _ => {}
            }
        }
        Command::Export { model, format, out } => {
            if format != "hf" {
                bail!("unknown export format '{format}' (only hf)");
            }
            let m = load_model(&model)?;
            crate::runner::write_atomic(&out, m.to_hf_tokenizer_json()?.as_bytes())?;
            eprintln!("bpe export: {} -> {}", model.display(), out.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
