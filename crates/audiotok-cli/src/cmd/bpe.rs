//! `audiotok bpe`: learn, apply and inspect BPE merge vocabularies over integer audio-token
//! streams (`audiotok_tokens::bpe`). The work is `audiotok_tokens::bpe::job`'s (and
//! `audiotok_tokens::streams`'); this module parses the arguments and prints. Output files go
//! through `audiotok_tokens::streams::Atomic`, the atomic writer of every CLI output, whose
//! errors keep the `io::Error` visible to `main`'s closed-stdout check
//! (`--output /dev/stdout | head`).
//!
//! Input goes through `audiotok_tokens::input`: text (one sequence per line, space-separated
//! integers), `.npy` (1-D: one stream; 2-D `[T, codebooks]`: one stream per codebook) and token
//! stores (one stream per scale). Single-stream variants take each sequence's time-interleaved
//! stream (a 2-D array row-major, SNAC scales depth-first); multi-scale variants (`cross-scale`,
//! `hierarchical`, `rl+cross-scale`) take the per-scale streams, in the ratios of the first
//! sequence (or `--scale-ratios`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use audiotok_tokens::bpe::job::{
    export_hf, inspect, train_files, transform, Direction, TrainOptions, TransformOptions, MAX_CODEBOOK, MAX_MERGES,
    MAX_RATIO, MAX_RUN,
};
use audiotok_tokens::bpe::Variant;
use audiotok_tokens::streams::Atomic;

use crate::runner::Bars;

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

impl Transform {
    /// The job's options.
    fn options(&self, direction: Direction) -> TransformOptions {
        TransformOptions {
            direction,
            model: self.model.clone(),
            input: self.input.clone(),
            output: self.output.clone(),
            like: self.like.clone(),
        }
    }
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
            if !variant.is_multi_scale() && scale_ratios.is_some() {
                bail!("--scale-ratios is for the multi-scale variants");
            }
            let options = TrainOptions {
                variant,
                merges,
                vocab_size,
                min_freq,
                max_run,
                codebook_size,
                scale_ratios,
                scale_merges,
                inputs: input,
                out,
            };
            let s = train_files(&options, &Atomic)?;
            eprintln!(
                "bpe train: {} sequences, {} tokens, {} merges -> vocabulary {} in {:.2} s -> {}",
                s.sequences,
                s.tokens,
                s.merges,
                s.vocab_size,
                s.train_seconds,
                options.out.display()
            );
        }
        Command::Encode(t) => {
            let s = transform(&t.options(Direction::Encode), &Bars::default(), &Atomic)?;
            let (a, b) = (s.input_len, s.output_len);
            eprintln!("bpe encode: {a} tokens -> {b} symbols ({:.3}x)", a as f64 / b.max(1) as f64);
        }
        Command::Decode(t) => {
            let s = transform(&t.options(Direction::Decode), &Bars::default(), &Atomic)?;
            eprintln!("bpe decode: {} symbols -> {} tokens -> {}", s.input_len, s.output_len, t.output.display());
        }
        Command::Inspect { model, input, top } => {
            let report = inspect(&model, input.as_deref())?;
            let stats = &report.stats;
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
                (Some(c), Some(_)) if stats.variant.is_multi_scale() => {
                    for (k, t) in c.scale_tokens.iter().enumerate() {
                        println!(
                            "  scale {k}: {t} tokens ({} per frame)",
                            report.scale_ratios.get(k).copied().unwrap_or(0)
                        );
                    }
                    if let Some(spf) = c.symbols_per_frame {
                        let codes: u32 = report.scale_ratios.iter().sum();
                        println!("  {} frames: {codes} codes -> {spf:.4} symbols per frame", c.frames);
                    }
                }
                (Some(_), Some(_)) => {
                    for (k, c) in report.scales_alone.iter().enumerate() {
                        if let Some(c) = c {
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
            export_hf(&model, &out, &Atomic)?;
            eprintln!("bpe export: {} -> {}", model.display(), out.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
