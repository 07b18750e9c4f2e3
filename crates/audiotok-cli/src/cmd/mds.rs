//! `audiotok mds`: inspect, verify, merge and show MosaicML MDS datasets (any writer's; packed
//! instruction data gets token, document and packing statistics). The work is
//! `audiotok_mds`'s (`inspect`, `verify`, `merge_partitions`, `packed`); this module parses the
//! arguments and prints.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use audiotok_mds::packed::{doc_lengths, int_column, ints, mask_picture, open_dataset};
use audiotok_mds::{merge_partitions, MergeOptions, Value};

use crate::runner::Bars;

/// Arguments of `audiotok mds`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Samples, shards, columns, sizes; for packed data also tokens, documents, audio and packing
    /// efficiency (real tokens / block tokens).
    Inspect {
        /// Dataset folder (holding index.json).
        dir: PathBuf,
        /// Print JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Check every shard: sizes and hashes against index.json, offsets, counts, and that every
    /// sample decodes.
    Verify {
        /// Dataset folder (holding index.json).
        dir: PathBuf,
    },
    /// Merge the index.json files of partition sub-folders into one top-level index.json, as
    /// streaming's `merge_index(root)`. Partitions given outside `--out` are copied into it first.
    Merge {
        /// Partition folders (each holding index.json and its shards).
        #[arg(required = true)]
        parts: Vec<PathBuf>,
        /// The merged dataset's root folder.
        #[arg(long, short)]
        out: PathBuf,
    },
    /// Print one sample.
    Show {
        /// Dataset folder (holding index.json).
        dir: PathBuf,
        /// Sample index.
        #[arg(long, short, default_value_t = 0)]
        index: u64,
        /// Draw the packed block's attention mask (block-diagonal causal: a token sees earlier
        /// tokens of its own document) as a PNG: white visible, black masked, grey padding, token
        /// positions on both axes, document starts marked in red.
        #[arg(long, value_name = "FILE")]
        mask_png: Option<PathBuf>,
        /// Side of the mask in pixels before it is enlarged to at least 400 (a pixel is white if
        /// any of its cells is visible).
        #[arg(long, default_value_t = 1024)]
        mask_size: u32,
    },
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<ExitCode> {
    match args.command {
        Command::Inspect { dir, json } => inspect(&dir, json),
        Command::Verify { dir } => verify(&dir),
        Command::Merge { parts, out } => merge(&parts, &out),
        Command::Show { dir, index, mask_png, mask_size } => show(&dir, index, mask_png.as_deref(), mask_size),
    }
}

fn inspect(dir: &Path, json: bool) -> Result<ExitCode> {
    let report = audiotok_mds::inspect(dir, &Bars::default())?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(out, "{}: {} samples in {} shards", report.dir, report.samples, report.shards)?;
    writeln!(
        out,
        "bytes: {} raw, {} stored (compression: {}; hashes: {})",
        report.raw_bytes,
        report.stored_bytes,
        report.compression.as_deref().unwrap_or("none"),
        if report.hashes.is_empty() { "none".to_string() } else { report.hashes.join(", ") }
    )?;
    writeln!(out, "columns:")?;
    for c in &report.columns {
        writeln!(out, "  {c}")?;
    }
    if let Some(p) = &report.packing {
        writeln!(
            out,
            "packing: {} real tokens of {} ({:.2}% efficiency), {} documents, {} audio files",
            p.real_tokens,
            p.block_tokens,
            100.0 * p.efficiency,
            p.documents,
            p.audio_files
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(dir: &Path) -> Result<ExitCode> {
    let v = audiotok_mds::verify(dir)?;
    eprintln!("verify: {v}");
    Ok(if v.ok() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `mds merge`: `audiotok_mds::merge_partitions` (every partition checked first, staged copies,
/// rollback on failure).
fn merge(parts: &[PathBuf], out: &Path) -> Result<ExitCode> {
    let options = MergeOptions { parts: parts.to_vec(), out: out.to_path_buf() };
    let summary = merge_partitions(&options, &Bars::default())?;
    eprintln!(
        "merge: {} partitions, {} shards, {} samples -> {}",
        summary.partitions,
        summary.shards,
        summary.samples,
        out.join("index.json").display()
    );
    Ok(ExitCode::SUCCESS)
}

fn show(dir: &Path, i: u64, mask_png: Option<&Path>, mask_size: u32) -> Result<ExitCode> {
    let ds = open_dataset(dir)?;
    let sample = ds.get(i)?;
    if let Some(png_path) = mask_png {
        let block = match int_column(&sample, "input_ids") {
            Some(v) => v.len(),
            None => bail!("{}: sample {i} has no input_ids array: not a packed dataset", dir.display()),
        };
        let lengths = doc_lengths(&sample)
            .with_context(|| format!("{}: sample {i} has no integer seq_lengths", dir.display()))?;
        let lengths: Vec<usize> = lengths.iter().map(|&l| l.max(0) as usize).collect();
        let title = format!("sample {i}: {} documents in {block} tokens", lengths.len());
        write_mask_png(png_path, &title, block, &lengths, mask_size)?;
        eprintln!("show: mask of sample {i} ({} documents in {block} tokens) -> {}", lengths.len(), png_path.display());
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "sample {i} of {} ({})", ds.len(), dir.display())?;
    for name in ds.column_names() {
        let text = match sample.get(name) {
            None => "(missing)".to_string(),
            Some(Value::NdArray(a)) => match ints(a) {
                Some(v) => {
                    let head: Vec<String> = v.iter().take(32).map(i64::to_string).collect();
                    let more = if v.len() > 32 { format!(" ... ({} values)", v.len()) } else { String::new() };
                    format!("{:?} {:?} [{}]{more}", a.dtype(), a.shape(), head.join(", "))
                }
                None => format!("{:?} {:?} ({} bytes)", a.dtype(), a.shape(), a.data().len()),
            },
            Some(Value::Str(s)) => format!("{s:?}"),
            Some(Value::Json(j)) => j.to_python(false),
            Some(Value::Bytes(b)) => match int_column(&sample, name) {
                Some(v)
                    if ds.index().shards.first().is_some_and(|s| {
                        s.column_names.iter().zip(&s.column_encodings).any(|(n, e)| n == name && e == "uint32")
                    }) =>
                {
                    let head: Vec<String> = v.iter().take(32).map(i64::to_string).collect();
                    let more = if v.len() > 32 { format!(" ... ({} values)", v.len()) } else { String::new() };
                    format!("uint32 [{}]{more}", head.join(", "))
                }
                _ => format!("{} bytes", b.len()),
            },
            Some(other) => format!("{other:?}"),
        };
        writeln!(out, "  {name}: {text}")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Renders the block-diagonal causal mask of a packed block (`size` x `size` mask pixels) as a
/// figure with token axes and document starts ([`crate::plot::mask_figure`]).
fn write_mask_png(path: &Path, title: &str, block: usize, lengths: &[usize], size: u32) -> Result<()> {
    let picture = mask_picture(block, lengths, size);
    let (canvas, _) = crate::plot::mask_figure(title, picture.side, &picture.pixels, block, lengths);
    canvas.save(path)
}
