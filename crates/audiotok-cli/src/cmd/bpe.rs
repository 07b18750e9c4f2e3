//! `audiotok bpe`: learn, apply and inspect BPE merge vocabularies over integer audio-token
//! streams (`audiotok_tokens::bpe`).
//!
//! Streams come from text (one sequence per line, space-separated integers) or `.npy` (a 1-D
//! integer array is one sequence; 2-D `[T, codebooks]` is read row-major). The multi-scale variants
//! need per-scale streams and come with the token store.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use audiotok_features::npy;
use audiotok_tokens::bpe::{train, BpeModel, Corpus, TrainerConfig, Variant};
use audiotok_tokens::input::{InputOptions, TokenInput};

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
        /// Variant: plain, rl, thresholded (single-stream variants).
        #[arg(long, default_value = "plain")]
        variant: String,
        /// Number of merges (give this or --vocab-size).
        #[arg(long)]
        merges: Option<usize>,
        /// Target vocabulary size: base symbols + merged symbols.
        #[arg(long)]
        vocab_size: Option<usize>,
        /// thresholded: stop when the best pair occurs fewer times than this.
        #[arg(long)]
        min_freq: Option<u64>,
        /// rl: longest run that becomes one symbol.
        #[arg(long)]
        max_run: Option<u32>,
        /// Codebook size (default: largest id + 1).
        #[arg(long)]
        codebook_size: Option<u32>,
        /// Token streams: text or .npy files, or directories of them.
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
        /// Optional token streams to measure compression on.
        #[arg(long)]
        input: Option<PathBuf>,
        /// Rows of the merge table to print.
        #[arg(long, default_value_t = 20)]
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
    /// Text file (one sequence per line) or 1-D .npy file.
    #[arg(long)]
    input: PathBuf,
    /// Output file (.npy: one 1-D array; otherwise text).
    #[arg(long)]
    output: PathBuf,
}

/// Reads every sequence of `inputs` (text, `.npy`, token stores; see `audiotok_tokens::input`) as
/// one stream each: multi-scale and multi-codebook sequences are time-interleaved.
fn collect_streams(inputs: &[PathBuf]) -> Result<Vec<Vec<u32>>> {
    let input = TokenInput::open(inputs, InputOptions::default())?;
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

fn read_streams(path: &Path) -> Result<Vec<Vec<u32>>> {
    collect_streams(&[path.to_path_buf()])
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

/// Applies `f` (encode or decode) to every input sequence, writes the result, and returns the
/// input and output lengths in total.
fn transform(
    t: &Transform,
    f: impl Fn(&BpeModel, &[u32]) -> audiotok_tokens::bpe::Result<Vec<u32>>,
) -> Result<(usize, usize)> {
    let (input, output) = (&t.input, &t.output);
    let model = load_model(&t.model)?;
    let streams = read_streams(input)?;
    let out = streams
        .iter()
        .enumerate()
        .map(|(i, s)| f(&model, s).with_context(|| format!("{}: sequence {}", input.display(), i + 1)))
        .collect::<Result<Vec<_>>>()?;
    write_streams(output, &out)?;
    Ok((streams.iter().map(Vec::len).sum(), out.iter().map(Vec::len).sum()))
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<ExitCode> {
    match args.command {
        Command::Train { variant, merges, vocab_size, min_freq, max_run, codebook_size, input, out } => {
            let variant: Variant = variant.parse().with_context(|| format!("--variant {variant}"))?;
            if variant.is_multi_scale() {
                bail!(
                    "variant {} needs per-scale streams, which come from the token store (not yet in the CLI)",
                    variant.name()
                );
            }
            if merges.is_none() && vocab_size.is_none() {
                bail!("give --merges N or --vocab-size V");
            }
            let streams = collect_streams(&input)?;
            let max_id = streams.iter().flatten().copied().max().unwrap_or(0);
            let size = codebook_size.unwrap_or(max_id + 1);
            let mut cfg = TrainerConfig::new(variant, size);
            cfg.merges = merges;
            cfg.vocab_size = vocab_size;
            cfg.min_freq = min_freq;
            if let Some(r) = max_run {
                cfg.max_run = r;
            }
            let t0 = std::time::Instant::now();
            let model = train(&cfg, &Corpus::Streams(&streams))?;
            crate::runner::write_atomic(&out, model.to_json()?.as_bytes())?;
            let tokens: usize = streams.iter().map(Vec::len).sum();
            eprintln!(
                "bpe train: {} sequences, {tokens} tokens, {} merges -> vocabulary {} in {:.2} s -> {}",
                streams.len(),
                model.merges().len(),
                model.vocab_size(),
                t0.elapsed().as_secs_f64(),
                out.display()
            );
        }
        Command::Encode(t) => {
            let (a, b) = transform(&t, BpeModel::encode)?;
            eprintln!("bpe encode: {a} tokens -> {b} symbols ({:.3}x)", a as f64 / b.max(1) as f64);
        }
        Command::Decode(t) => {
            transform(&t, BpeModel::decode)?;
        }
        Command::Inspect { model, input, top } => {
            let m = load_model(&model)?;
            let streams = input.as_deref().map(read_streams).transpose()?;
            let corpus = streams.as_ref().map(|s| Corpus::Streams(s));
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
            if let Some(c) = stats.compression {
                println!(
                    "compression: {} base tokens -> {} symbols: {:.4}x over {} sequences",
                    c.base_tokens, c.encoded_symbols, c.ratio, c.sequences
                );
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
