//! `audiotok mds`: inspect, verify, merge and show MosaicML MDS datasets (any writer's; packed
//! instruction data gets token, document and packing statistics).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use audiotok_mds::{merge_index, DType, Index, MdsDataset, NdArray, Sample, Value};
use serde::Serialize;

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
        /// tokens of its own document) as a PNG: white visible, black masked, grey padding.
        #[arg(long, value_name = "FILE")]
        mask_png: Option<PathBuf>,
        /// Side of the mask image in pixels (a pixel is white if any of its cells is visible).
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

/// Opens a dataset, registering the Qwen2-Audio packing notebook's custom `uint32` encoding (a
/// variable-length u32 array) when the index shows it: a `uint32` column of variable size, which
/// the built-in fixed 4-byte `uint32` can never be.
fn open(dir: &Path) -> Result<MdsDataset> {
    let index = Index::load(dir)?;
    let custom = index.shards.iter().any(|s| {
        s.column_encodings.iter().zip(&s.column_sizes).any(|(e, size)| e == "uint32" && size.unwrap_or(0) == 0)
    });
    let raw = if custom { vec!["uint32".to_string()] } else { Vec::new() };
    Ok(MdsDataset::open_with_raw(dir, &raw)?)
}

/// Integers of column `name`: an integer ndarray, or the notebook's raw little-endian u32 bytes.
fn int_column(sample: &Sample, name: &str) -> Option<Vec<i64>> {
    match sample.get(name)? {
        Value::NdArray(a) => ints(a),
        Value::Bytes(b) if b.len() % 4 == 0 => {
            Some(b.chunks_exact(4).map(|c| i64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]]))).collect())
        }
        _ => None,
    }
}

/// Document lengths of a packed block: `seq_lengths`, or the notebook's `attention_mask`.
fn doc_lengths(sample: &Sample) -> Option<Vec<i64>> {
    match sample.get("seq_lengths") {
        Some(_) => int_column(sample, "seq_lengths"),
        None => match sample.get("attention_mask") {
            Some(Value::Bytes(_)) => int_column(sample, "attention_mask"),
            _ => None,
        },
    }
}

/// Integer elements of any integer array.
fn ints(a: &NdArray) -> Option<Vec<i64>> {
    let v: Vec<i64> = match a.dtype() {
        DType::U8 => a.to_vec::<u8>().ok()?.into_iter().map(i64::from).collect(),
        DType::I8 => a.to_vec::<i8>().ok()?.into_iter().map(i64::from).collect(),
        DType::U16 => a.to_vec::<u16>().ok()?.into_iter().map(i64::from).collect(),
        DType::I16 => a.to_vec::<i16>().ok()?.into_iter().map(i64::from).collect(),
        DType::U32 => a.to_vec::<u32>().ok()?.into_iter().map(i64::from).collect(),
        DType::I32 => a.to_vec::<i32>().ok()?.into_iter().map(i64::from).collect(),
        DType::I64 => a.to_vec::<i64>().ok()?,
        DType::U64 => a.to_vec::<u64>().ok()?.into_iter().map(|x| x as i64).collect(),
        _ => return None,
    };
    Some(v)
}

#[derive(Serialize, Default)]
struct Packing {
    block_tokens: u64,
    real_tokens: u64,
    documents: u64,
    audio_files: u64,
    efficiency: f64,
}

#[derive(Serialize)]
struct Inspect {
    dir: String,
    samples: u64,
    shards: usize,
    columns: Vec<String>,
    raw_bytes: u64,
    stored_bytes: u64,
    compression: Option<String>,
    hashes: Vec<String>,
    packing: Option<Packing>,
}

fn inspect(dir: &Path, json: bool) -> Result<ExitCode> {
    let ds = open(dir)?;
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
        let mut p = Packing::default();
        for (i, sample) in ds.iter().enumerate() {
            let sample = sample?;
            let ids = int_column(&sample, "input_ids")
                .with_context(|| format!("{}: sample {i}: input_ids is not an integer array", dir.display()))?
                .len() as u64;
            let lengths = doc_lengths(&sample).with_context(|| {
                format!("{}: sample {i}: no integer seq_lengths (or notebook attention_mask)", dir.display())
            })?;
            p.block_tokens += ids;
            p.real_tokens += lengths.iter().map(|&l| l.max(0) as u64).sum::<u64>();
            p.documents += lengths.len() as u64;
            // `audio` holds a JSON list of paths, as a str column or a json column.
            p.audio_files += match sample.get("audio") {
                Some(Value::Str(s)) => serde_json::from_str::<Vec<String>>(s).map_or(0, |v| v.len() as u64),
                Some(Value::Json(j)) => j.as_array().map_or(0, |a| a.len() as u64),
                _ => 0,
            };
        }
        p.efficiency = p.real_tokens as f64 / (p.block_tokens.max(1)) as f64;
        Some(p)
    } else {
        None
    };
    let report = Inspect {
        dir: dir.display().to_string(),
        samples: ds.len(),
        shards: index.shards.len(),
        columns,
        raw_bytes,
        stored_bytes,
        compression: first.and_then(|s| s.compression.clone()),
        hashes: first.map(|s| s.hashes.clone()).unwrap_or_default(),
        packing,
    };
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
    let ds = open(dir)?;
    match ds.verify() {
        Ok(r) => {
            eprintln!(
                "verify: {}: ok: {} shards, {} samples, {} file hashes checked{}",
                dir.display(),
                r.shards,
                r.samples,
                r.hashes_checked,
                if r.hashes_skipped.is_empty() {
                    String::new()
                } else {
                    format!(" ({} not checked: unsupported)", r.hashes_skipped.join(", "))
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("verify: {}: FAILED: {e}", dir.display());
            Ok(ExitCode::from(1))
        }
    }
}

/// Copies the folder `from` to the new folder `to`: folders and regular files (a symlink to a
/// file is copied as the file); anything else (a FIFO, a device, a symlinked folder, a dangling
/// link) is an error naming it, so that the copy never blocks or loops.
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry.with_context(|| format!("reading {}", from.display()))?;
        let (src, dest) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().with_context(|| src.display().to_string())?;
        let meta = std::fs::metadata(&src).with_context(|| format!("{}: cannot read", src.display()))?;
        if kind.is_dir() {
            copy_dir(&src, &dest)?;
        } else if meta.is_file() {
            std::fs::copy(&src, &dest).with_context(|| format!("copying {} to {}", src.display(), dest.display()))?;
        } else {
            bail!("{}: not a regular file or folder; a partition is copied only with those", src.display());
        }
    }
    Ok(())
}

/// `path` with symlinks resolved, also when it does not exist yet (its deepest existing ancestor
/// is resolved and the rest appended), and the first missing ancestor, which creating `path`
/// would create.
fn resolve_new(path: &Path) -> Result<(PathBuf, Option<PathBuf>)> {
    let abs = if path.is_absolute() { path.to_path_buf() } else { std::env::current_dir()?.join(path) };
    let mut missing = Vec::new();
    let mut at = abs.as_path();
    loop {
        match at.canonicalize() {
            Ok(real) => {
                let first_missing = missing.last().map(|name: &&std::ffi::OsStr| real.join(name));
                let mut full = real;
                for name in missing.iter().rev() {
                    full.push(name);
                }
                return Ok((full, first_missing));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (Some(parent), Some(name)) = (at.parent(), at.file_name()) else {
                    bail!("{}: cannot resolve", path.display());
                };
                missing.push(name);
                at = parent;
            }
            Err(e) => return Err(e).with_context(|| format!("{}: cannot resolve", at.display())),
        }
    }
}

/// `mds merge`: every partition is checked first; `--out` may not be, or be inside, a partition,
/// nor hold one deeper than its top level; partitions outside `--out` are copied in under a
/// temporary name and renamed into place; `index.json` is written last. On any failure what this
/// run added is removed again (and `--out` itself when this run created it).
fn merge(parts: &[PathBuf], out: &Path) -> Result<ExitCode> {
    let mut resolved = Vec::with_capacity(parts.len());
    for part in parts {
        let ds = open(part)?;
        for shard in &ds.index().shards {
            let there = |f: &audiotok_mds::FileInfo| part.join(&f.basename).is_file();
            if !there(&shard.raw_data) && !shard.zip_data.as_ref().is_some_and(there) {
                bail!(
                    "{}: shard {} listed in index.json is missing; nothing was merged",
                    part.display(),
                    shard.raw_data.basename
                );
            }
        }
        let canon = part.canonicalize().with_context(|| format!("{}: cannot resolve", part.display()))?;
        resolved.push(canon);
    }
    let (root, created) = resolve_new(out)?;
    let mut copies: Vec<(&Path, PathBuf)> = Vec::new();
    let mut names = std::collections::HashSet::new();
    for (part, canon) in parts.iter().zip(&resolved) {
        if root.starts_with(canon) {
            bail!(
                "--out {} is the partition {} or inside it: merging would copy the partition into itself",
                out.display(),
                part.display()
            );
        }
        let name = canon.file_name().with_context(|| format!("{}: no folder name", part.display()))?;
        if !names.insert(name.to_os_string()) {
            bail!("two partitions are named {}: they would be one folder in {}", name.to_string_lossy(), out.display());
        }
        if canon.parent() == Some(root.as_path()) {
            continue;
        }
        if canon.starts_with(&root) {
            bail!(
                "--out {} holds the partition {} below its top level, where merging would take it twice; \
                 name --out's own sub-folders or partitions outside it",
                out.display(),
                part.display()
            );
        }
        let dest = root.join(name);
        if std::fs::symlink_metadata(&dest).is_ok() {
            bail!("{}: already exists in {}; rename the partition", dest.display(), out.display());
        }
        copies.push((part.as_path(), dest));
    }

    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", out.display()))?;
    let mut placed: Vec<PathBuf> = Vec::new();
    let built = (|| -> Result<Index> {
        let mut staged = Vec::new();
        for (part, dest) in &copies {
            // A copy staged by a merge that was killed is removed first.
            for stale in audiotok_audio::atomic::stale_temps(dest) {
                let _ = if std::fs::symlink_metadata(&stale).is_ok_and(|m| m.is_dir()) {
                    std::fs::remove_dir_all(&stale)
                } else {
                    std::fs::remove_file(&stale)
                };
            }
            let tmp = audiotok_audio::temp_path(dest);
            placed.push(tmp.clone());
            copy_dir(part, &tmp)?;
            staged.push((tmp, dest));
        }
        for (tmp, dest) in staged {
            std::fs::rename(&tmp, dest).with_context(|| format!("renaming {} to {}", tmp.display(), dest.display()))?;
            placed.push(dest.clone());
        }
        Ok(merge_index(&root)?)
    })();
    let index = match built {
        Ok(index) => index,
        Err(e) => {
            for p in placed.iter().rev() {
                let _ = std::fs::remove_dir_all(p);
            }
            if let Some(top) = created {
                let _ = std::fs::remove_dir_all(top);
            }
            return Err(e);
        }
    };
    eprintln!(
        "merge: {} partitions, {} shards, {} samples -> {}",
        parts.len(),
        index.shards.len(),
        index.num_samples(),
        out.join("index.json").display()
    );
    Ok(ExitCode::SUCCESS)
}

fn show(dir: &Path, i: u64, mask_png: Option<&Path>, mask_size: u32) -> Result<ExitCode> {
    let ds = open(dir)?;
    let sample = ds.get(i)?;
    if let Some(png_path) = mask_png {
        let block = match int_column(&sample, "input_ids") {
            Some(v) => v.len(),
            None => bail!("{}: sample {i} has no input_ids array: not a packed dataset", dir.display()),
        };
        let lengths = doc_lengths(&sample)
            .with_context(|| format!("{}: sample {i} has no integer seq_lengths", dir.display()))?;
        let lengths: Vec<usize> = lengths.iter().map(|&l| l.max(0) as usize).collect();
        write_mask_png(png_path, block, &lengths, mask_size)?;
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

/// Document number of every token of a block (`None` for padding).
fn documents(block: usize, lengths: &[usize]) -> Vec<Option<u32>> {
    let mut doc = Vec::with_capacity(block);
    for (d, &l) in lengths.iter().enumerate() {
        doc.extend(std::iter::repeat_n(Some(d as u32), l));
    }
    doc.resize(block, None);
    doc.truncate(block);
    doc
}

/// Renders the block-diagonal causal mask of a packed block as a `size` x `size` grey PNG.
fn write_mask_png(path: &Path, block: usize, lengths: &[usize], size: u32) -> Result<()> {
    let doc = documents(block, lengths);
    let side = (size as usize).clamp(1, block.max(1));
    // Pixel (r, c) covers query rows [r*block/side, (r+1)*block/side) and the same key columns.
    let span = |p: usize| (p * block / side, ((p + 1) * block / side).max(p * block / side + 1).min(block));
    let mut pixels = vec![0u8; side * side];
    for r in 0..side {
        let (r0, r1) = span(r);
        let padding = (r0..r1).all(|q| doc[q].is_none());
        for c in 0..side {
            let (c0, c1) = span(c);
            let visible = (r0..r1).any(|q| doc[q].is_some_and(|d| (c0..c1.min(q + 1)).any(|k| doc[k] == Some(d))));
            pixels[r * side + c] = if visible {
                255
            } else if padding {
                64
            } else {
                0
            };
        }
    }
    crate::runner::write_atomic_with(path, |w| {
        let mut enc = png::Encoder::new(w, side as u32, side as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().context("writing PNG header")?;
        writer.write_image_data(&pixels).context("writing PNG data")?;
        writer.finish().context("finishing PNG")?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_and_padding() {
        assert_eq!(documents(6, &[2, 3]), vec![Some(0), Some(0), Some(1), Some(1), Some(1), None]);
        assert_eq!(documents(3, &[2, 3]), vec![Some(0), Some(0), Some(1)]);
    }
}
