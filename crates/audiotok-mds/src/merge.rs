//! Merging partitions into one dataset: [`merge_index`] writes one `index.json` over partitions
//! already in sub-folders of a root; [`merge_partitions`] (`audiotok mds merge`) first checks the
//! partitions and copies those outside the root into it.
//!
//! # `merge_index`
//!
//! As `streaming.base.util.merge_index(out_root)` for a local folder: every partition
//! `ROOT/<sub>/index.json` is found (files in sorted path order), each shard's `raw_data` and
//! `zip_data` basenames (and `raw_meta`/`zip_meta`, where set) are prefixed with the partition's
//! folder, and `ROOT/index.json` is written as `json.dump({"version": 2, "shards": [...]})`:
//! `version` first, no key sorting, each shard's keys in the order its partition file has them.
//!
//! Differences from `streaming`, which only matter for layouts `streaming` mishandles: only files
//! named `index.json` are partitions (`streaming` takes any `*.json` below the root and fails
//! on other files), and a partition nested deeper than one level is prefixed with its whole
//! relative path (`streaming` uses only the last folder name, producing paths that do not exist);
//! hidden folders (names starting with `.`, such as the temporary copies `audiotok mds merge`
//! makes) are not searched.
//!
//! # `merge_partitions`
//!
//! Every partition is checked before anything is written: its index opens and every shard it
//! lists is present. `out` may not be a partition or inside one (a copy would contain itself),
//! nor hold a partition below its top level (it would be merged twice); two partitions may not
//! share a folder name. Partitions outside `out` are copied in under a temporary name
//! (`.NAME.tmp-PID-N`, [`audiotok_core::atomic::temp_path`]; a killed merge's leftovers, which
//! [`audiotok_core::atomic::stale_temps`] lists, are removed first), then renamed into place,
//! and `index.json` is written last. On any failure what this run added is removed again (and
//! `out` itself when this run created it). Partitions already directly in `out` stay where they
//! are.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use audiotok_core::atomic::{stale_temps, temp_path};
use audiotok_core::observer::{Observer, Phase};
use serde::{Deserialize, Serialize};

use crate::error::{MdsError, Result};
use crate::index::{FileInfo, Index, INDEX_BASENAME};
use crate::json::Json;
use crate::packed::open_dataset;
use crate::writer::write_json_atomic;

/// Merges the partitions' `index.json` files under `root` into `root/index.json` (written
/// atomically) and returns the merged index. An existing `root/index.json` is replaced; no
/// partition at all is an error.
pub fn merge_index(root: impl AsRef<Path>) -> Result<Index> {
    let root = root.as_ref();
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    collect(root, root, &mut found)?;
    // streaming sorts the full paths; under one root that is the order of the relative paths.
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found.dedup_by(|a, b| a.0 == b.0);
    if found.is_empty() {
        // streaming logs a warning and writes nothing; an error is clearer.
        return Err(MdsError::Config(format!("no partition index.json below {}", root.display())));
    }

    let mut shards = Vec::new();
    for (rel, path) in &found {
        let text = fs::read(path).map_err(|e| MdsError::io(path, e))?;
        let obj =
            Json::parse_bytes(&text).map_err(|e| MdsError::Index { path: path.clone(), reason: e.to_string() })?;
        // Validate it as an index before touching it (streaming would fail on a bad one too).
        Index::from_json(&obj, path)?;
        let prefix = rel.strip_suffix(INDEX_BASENAME).unwrap_or(rel).trim_end_matches('/');
        let Some(Json::Array(list)) = obj.get("shards").cloned() else {
            return Err(MdsError::Index { path: path.clone(), reason: "missing `shards`".into() });
        };
        for mut shard in list {
            for key in ["raw_data", "zip_data", "raw_meta", "zip_meta"] {
                if let Some(file) = shard.get_mut(key) {
                    if !file.is_truthy() {
                        continue;
                    }
                    let base = file.get("basename").and_then(Json::as_str).map(str::to_string).ok_or_else(|| {
                        MdsError::Index { path: path.clone(), reason: format!("`{key}` without basename") }
                    })?;
                    if let Some(slot) = file.get_mut("basename") {
                        *slot = Json::Str(format!("{prefix}/{base}"));
                    }
                }
            }
            shards.push(shard);
        }
    }
    let merged = Json::Object(vec![("version".into(), Json::Int(2)), ("shards".into(), Json::Array(shards))]);
    let index = Index::from_json(&merged, &root.join(INDEX_BASENAME))?;
    write_json_atomic(root, INDEX_BASENAME, &merged, false)?;
    Ok(index)
}

/// What [`merge_partitions`] merges, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeOptions {
    /// Partition folders, each holding `index.json` and its shards.
    pub parts: Vec<PathBuf>,
    /// The merged dataset's root folder (created when missing).
    pub out: PathBuf,
}

/// What [`merge_partitions`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeSummary {
    /// Partitions merged.
    pub partitions: usize,
    /// Partitions copied into the root (the others were in it already).
    pub copied: usize,
    /// Shards of the merged index.
    pub shards: usize,
    /// Samples of the merged index.
    pub samples: u64,
    /// The merged `index.json` (`out` joined with it; non-UTF-8 bytes escaped as
    /// [`audiotok_core::path_text`] does).
    pub index: String,
}

/// Why [`merge_partitions`] merged nothing. Every variant's message names the path concerned.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// A partition's index cannot be read, or the merged index cannot be written.
    #[error(transparent)]
    Mds(#[from] MdsError),
    /// A file operation failed; `context` says which (`creating PATH`, `copying A to B`, ...).
    #[error("{context}: {source}")]
    Io {
        /// The operation and its path(s).
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The current folder (to resolve a relative `out`) cannot be read.
    #[error("{0}")]
    CurrentDir(#[source] std::io::Error),
    /// A shard a partition's index lists is not there.
    #[error("{}: shard {shard} listed in index.json is missing; nothing was merged", part.display())]
    MissingShard {
        /// The partition.
        part: PathBuf,
        /// The shard's basename.
        shard: String,
    },
    /// `out` is a partition or inside one.
    #[error(
        "--out {} is the partition {} or inside it: merging would copy the partition into itself",
        out.display(),
        part.display()
    )]
    OutInsidePartition {
        /// `out` as given.
        out: PathBuf,
        /// The partition.
        part: PathBuf,
    },
    /// A partition path without a last component (`/`).
    #[error("{}: no folder name", part.display())]
    NoFolderName {
        /// The partition.
        part: PathBuf,
    },
    /// Two partitions whose folders have one name.
    #[error("two partitions are named {name}: they would be one folder in {}", out.display())]
    SameName {
        /// The folder name (lossy).
        name: String,
        /// `out` as given.
        out: PathBuf,
    },
    /// A partition inside `out` but not directly in it.
    #[error(
        "--out {} holds the partition {} below its top level, where merging would take it twice; \
         name --out's own sub-folders or partitions outside it",
        out.display(),
        part.display()
    )]
    NestedPartition {
        /// `out` as given.
        out: PathBuf,
        /// The partition.
        part: PathBuf,
    },
    /// The name a copied partition would take in `out` is taken.
    #[error("{}: already exists in {}; rename the partition", dest.display(), out.display())]
    AlreadyExists {
        /// The name in `out`.
        dest: PathBuf,
        /// `out` as given.
        out: PathBuf,
    },
    /// Something in a partition other than folders and regular files (a FIFO, a device, a
    /// symlinked folder, a dangling link), which the copy refuses rather than block or loop.
    #[error("{}: not a regular file or folder; a partition is copied only with those", path.display())]
    NotRegular {
        /// The entry.
        path: PathBuf,
    },
    /// A path none of whose ancestors exists.
    #[error("{}: cannot resolve", path.display())]
    Unresolvable {
        /// The path.
        path: PathBuf,
    },
}

/// An [`MergeError::Io`] with `context`.
fn io_err(context: impl FnOnce() -> String) -> impl FnOnce(std::io::Error) -> MergeError {
    move |source| MergeError::Io { context: context(), source }
}

/// Merges the partitions `options.parts` into the dataset `options.out` (see the [module
/// docs](self)): checks, copies (the phase `merge`, counted in partitions, on `observer`), then
/// [`merge_index`]. On failure nothing this run added is left.
pub fn merge_partitions(options: &MergeOptions, observer: &dyn Observer) -> Result<MergeSummary, MergeError> {
    let (parts, out) = (&options.parts, options.out.as_path());
    let mut resolved = Vec::with_capacity(parts.len());
    for part in parts {
        let ds = open_dataset(part)?;
        for shard in &ds.index().shards {
            let there = |f: &FileInfo| part.join(&f.basename).is_file();
            if !there(&shard.raw_data) && !shard.zip_data.as_ref().is_some_and(there) {
                return Err(MergeError::MissingShard { part: part.clone(), shard: shard.raw_data.basename.clone() });
            }
        }
        let canon = part.canonicalize().map_err(io_err(|| format!("{}: cannot resolve", part.display())))?;
        resolved.push(canon);
    }
    let (root, created) = resolve_new(out)?;
    let mut copies: Vec<(&Path, PathBuf)> = Vec::new();
    let mut names = HashSet::new();
    for (part, canon) in parts.iter().zip(&resolved) {
        if root.starts_with(canon) {
            return Err(MergeError::OutInsidePartition { out: out.to_path_buf(), part: part.clone() });
        }
        let name = canon.file_name().ok_or_else(|| MergeError::NoFolderName { part: part.clone() })?;
        if !names.insert(name.to_os_string()) {
            return Err(MergeError::SameName { name: name.to_string_lossy().into_owned(), out: out.to_path_buf() });
        }
        if canon.parent() == Some(root.as_path()) {
            continue;
        }
        if canon.starts_with(&root) {
            return Err(MergeError::NestedPartition { out: out.to_path_buf(), part: part.clone() });
        }
        let dest = root.join(name);
        if fs::symlink_metadata(&dest).is_ok() {
            return Err(MergeError::AlreadyExists { dest, out: out.to_path_buf() });
        }
        copies.push((part.as_path(), dest));
    }

    fs::create_dir_all(&root).map_err(io_err(|| format!("creating {}", out.display())))?;
    let mut placed: Vec<PathBuf> = Vec::new();
    let built = (|| -> Result<Index, MergeError> {
        let progress = (!copies.is_empty()).then(|| Phase::begin(observer, "merge", copies.len() as u64, "partitions"));
        let mut staged = Vec::new();
        for (part, dest) in &copies {
            // A copy staged by a merge that was killed is removed first.
            for stale in stale_temps(dest) {
                let _ = if fs::symlink_metadata(&stale).is_ok_and(|m| m.is_dir()) {
                    fs::remove_dir_all(&stale)
                } else {
                    fs::remove_file(&stale)
                };
            }
            let tmp = temp_path(dest);
            placed.push(tmp.clone());
            copy_dir(part, &tmp)?;
            staged.push((tmp, dest));
            if let Some(p) = &progress {
                p.advance(1);
            }
        }
        for (tmp, dest) in staged {
            fs::rename(&tmp, dest).map_err(io_err(|| format!("renaming {} to {}", tmp.display(), dest.display())))?;
            placed.push(dest.clone());
        }
        drop(progress);
        Ok(merge_index(&root)?)
    })();
    let index = match built {
        Ok(index) => index,
        Err(e) => {
            for p in placed.iter().rev() {
                let _ = fs::remove_dir_all(p);
            }
            if let Some(top) = created {
                let _ = fs::remove_dir_all(top);
            }
            return Err(e);
        }
    };
    Ok(MergeSummary {
        partitions: parts.len(),
        copied: copies.len(),
        shards: index.shards.len(),
        samples: index.num_samples(),
        index: audiotok_core::path_text(&out.join(INDEX_BASENAME)),
    })
}

/// Copies the folder `from` to the new folder `to`: folders and regular files (a symlink to a
/// file is copied as the file); anything else (a FIFO, a device, a symlinked folder, a dangling
/// link) is an error naming it, so that the copy never blocks or loops.
fn copy_dir(from: &Path, to: &Path) -> Result<(), MergeError> {
    fs::create_dir(to).map_err(io_err(|| format!("creating {}", to.display())))?;
    for entry in fs::read_dir(from).map_err(io_err(|| format!("reading {}", from.display())))? {
        let entry = entry.map_err(io_err(|| format!("reading {}", from.display())))?;
        let (src, dest) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().map_err(io_err(|| src.display().to_string()))?;
        let meta = fs::metadata(&src).map_err(io_err(|| format!("{}: cannot read", src.display())))?;
        if kind.is_dir() {
            copy_dir(&src, &dest)?;
        } else if meta.is_file() {
            fs::copy(&src, &dest).map_err(io_err(|| format!("copying {} to {}", src.display(), dest.display())))?;
        } else {
            return Err(MergeError::NotRegular { path: src });
        }
    }
    Ok(())
}

/// `path` with symlinks resolved, also when it does not exist yet (its deepest existing ancestor
/// is resolved and the rest appended), and the first missing ancestor, which creating `path`
/// would create.
fn resolve_new(path: &Path) -> Result<(PathBuf, Option<PathBuf>), MergeError> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map_err(MergeError::CurrentDir)?.join(path)
    };
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
                    return Err(MergeError::Unresolvable { path: path.to_path_buf() });
                };
                missing.push(name);
                at = parent;
            }
            Err(e) => return Err(io_err(|| format!("{}: cannot resolve", at.display()))(e)),
        }
    }
}

/// Collects `(relative path with '/', absolute path)` of every `index.json` strictly below `root`.
fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<()> {
    let entries = fs::read_dir(dir).map_err(|e| MdsError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| MdsError::io(dir, e))?;
        let path = entry.path();
        let ft = entry.file_type().map_err(|e| MdsError::io(&path, e))?;
        if ft.is_dir() {
            // Hidden folders (`.NAME.tmp-PID-N`: a copy cut short by a kill) are not partitions.
            if !entry.file_name().as_encoded_bytes().starts_with(b".") {
                collect(root, &path, out)?;
            }
        } else if dir != root && entry.file_name() == INDEX_BASENAME {
            let rel = path
                .strip_prefix(root)
                .map_err(|_| MdsError::Config(format!("{} is outside {}", path.display(), root.display())))?;
            let parts: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            out.push((parts.join("/"), path));
        }
    }
    Ok(())
}
