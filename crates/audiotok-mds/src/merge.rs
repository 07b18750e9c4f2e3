//! [`merge_index`]: one `index.json` over partitions written into sub-folders.
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

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{MdsError, Result};
use crate::index::{Index, INDEX_BASENAME};
use crate::json::Json;
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
