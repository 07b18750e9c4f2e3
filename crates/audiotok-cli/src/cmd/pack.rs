//! `audiotok pack`: instruction rows with audio → packed token blocks in MDS shards.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use audiotok_features::profiles::Profile;
use audiotok_pack::job::{self, OnError, PackOptions, PackSource};
use audiotok_pack::{
    Layout, LengthMode, PackConfig, PackError, Strategy, TrainOn, DEFAULT_MAX_ROW_BYTES, MAX_BLOCK_SIZE,
};
use clap::ValueEnum;

use crate::runner::Bars;

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

#[derive(Clone, Copy, ValueEnum)]
enum OnErrorArg {
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
Audio sources instead of rows (--text-column or --text-template): each record of a Parquet shard, \
save_to_disk folder, webdataset tar, lhotse cuts or manifest is one row, its text from its own fields.\n\n\
Examples:\n  audiotok pack --tokenizer Qwen2-Audio-7B-Instruct/ --out packed/ rows.jsonl\n  \
audiotok pack --tokenizer Qwen2-Audio-7B-Instruct/ --out packed/ --text-column sentence train-00000-of-00010.parquet")]
pub struct Args {
    /// Row files: a JSON array or JSONL (one object per line); with --text-column or
    /// --text-template, audio sources (Parquet, Arrow, tars, lhotse cuts, manifests, files).
    #[arg(required = true, value_name = "ROWS|SOURCE")]
    inputs: Vec<PathBuf>,
    /// Read the inputs as audio sources: one row per record, the text
    /// `<|audio_bos|><|AUDIO|><|audio_eos|>{COLUMN}` from the record's column (Parquet column,
    /// tar json/txt sibling, manifest column, lhotse supervision `text`).
    #[arg(long, value_name = "COLUMN", conflicts_with = "text_template")]
    text_column: Option<String>,
    /// Read the inputs as audio sources, the row text this template of record fields
    /// (`{field}`; `{{`/`}}` for braces), e.g. "<|AUDIO|>Transcribe: {text}".
    #[arg(long, value_name = "TEMPLATE")]
    text_template: Option<String>,
    #[command(flatten)]
    sources: crate::runner::SourceArgs,
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
    on_error: OnErrorArg,
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

impl Args {
    /// The job's options.
    fn options(&self) -> PackOptions {
        let config = PackConfig {
            profile: self.profile.clone(),
            block_size: self.block_size as usize,
            strategy: match self.strategy {
                StrategyArg::Greedy => Strategy::Greedy,
                StrategyArg::Bfd => Strategy::Bfd,
            },
            layout: match self.compat {
                Some(Compat::Cooking) => Layout::Cooking,
                None => Layout::Standard,
            },
            train_on: match self.train_on {
                TrainOnArg::All => TrainOn::All,
                TrainOnArg::Assistant => TrainOn::Assistant,
            },
            length_mode: match self.lengths {
                LengthsArg::Header => LengthMode::Header,
                LengthsArg::Decode => LengthMode::Decode,
            },
            audio_root: self.audio_root.clone(),
            max_row_bytes: self.max_row_bytes,
        };
        PackOptions {
            tokenizer: self.tokenizer.clone(),
            out: self.out.clone(),
            chat_template: self.chat_template.clone(),
            config,
            on_error: match self.on_error {
                OnErrorArg::Skip => OnError::Skip,
                OnErrorArg::Fail => OnError::Fail,
            },
            jobs: self.jobs,
        }
    }
}

/// Runs `audiotok pack`.
pub fn run(args: Args) -> Result<ExitCode> {
    let options = args.options();
    let template = match (&args.text_column, &args.text_template) {
        (Some(c), _) => Some(format!("<|audio_bos|><|AUDIO|><|audio_eos|>{{{c}}}")),
        (None, Some(t)) => Some(t.clone()),
        (None, None) => None,
    };
    let source = match template {
        Some(template) => {
            let inputs = crate::runner::collect(&args.inputs, &args.sources)?.files;
            PackSource::Records { inputs, template }
        }
        None => PackSource::Files(args.inputs.clone()),
    };
    let s = match job::pack(&options, source, &Bars::default()) {
        Ok(s) => s,
        Err(PackError::BadRows { first, count }) => {
            bail!("{first} (--on-error fail: nothing written; {count} bad row(s) in all)")
        }
        Err(e) => return Err(e.into()),
    };
    let rejects_file = || args.out.join("rejects.jsonl").display().to_string();
    for r in s.rejects.iter().take(10) {
        eprintln!("  rejected {r}");
    }
    if s.rejects.len() > 10 {
        eprintln!("  ... and {} more (see {})", s.rejects.len() - 10, rejects_file());
    }
    eprintln!(
        "pack: {} of {} rows in {} blocks of {} ({} tokens, {} audio) -> {}",
        s.packed_rows,
        s.rows,
        s.blocks,
        s.block_size,
        s.tokens,
        s.audio_tokens,
        args.out.display()
    );
    eprintln!(
        "      efficiency {:.1}% greedy ({} blocks), {:.1}% bfd ({} blocks); {} rejected; audio lengths: {} from headers, {} decoded; {:.2} s ({:.0} rows/s)",
        100.0 * s.efficiency.greedy,
        s.blocks_by_strategy.greedy,
        100.0 * s.efficiency.bfd,
        s.blocks_by_strategy.bfd,
        s.rejected_rows,
        s.audio_lengths_from_header,
        s.audio_files_decoded,
        s.seconds,
        s.rows_per_second
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    }
    if s.packed_rows == 0 && !args.keep_going {
        eprintln!(
            "pack: no row was packed ({} rejected, see {}): exit 1 (--keep-going: exit 0)",
            s.rejected_rows,
            rejects_file()
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
