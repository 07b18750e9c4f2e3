//! `index.json` (version 2) and the per-shard config, as `streaming` writes them.
//!
//! The writer's `index.json` is `json.dump({"version": 2, "shards": [...]}, sort_keys=True)`:
//! one line, no trailing newline, every object's keys sorted, `", "`/`": "` separators.
//! Each shard entry holds the shard-writing config (`column_encodings`, `column_names`,
//! `column_sizes`, `compression`, `format`, `hashes`, `size_limit`, `version`) plus `samples`,
//! `raw_data` and `zip_data` (`{"basename", "bytes", "hashes"}`, `zip_data` being `null` without
//! compression). The same config, `json.dumps(config, sort_keys=True)`, is stored inside each shard
//! after its offsets.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{MdsError, Result};
use crate::json::Json;

/// Basename of the index file.
pub const INDEX_BASENAME: &str = "index.json";

/// A dataset index: the shards in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    /// The shards, in sample order.
    pub shards: Vec<ShardInfo>,
}

/// One file of a shard: name, size, hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// File name relative to the dataset folder (`shard.00000.mds`, or `part/shard.00000.mds` in a
    /// merged index).
    pub basename: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Hash algorithm name → lowercase hex digest.
    pub hashes: BTreeMap<String, String>,
}

/// One shard's entry in the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    /// Encoding string of each column, in column order.
    pub column_encodings: Vec<String>,
    /// Column names, sorted.
    pub column_names: Vec<String>,
    /// Fixed size of each column, `None` for variable-size columns.
    pub column_sizes: Vec<Option<u64>>,
    /// Compression string (`zstd`, `zstd:7`), if any.
    pub compression: Option<String>,
    /// Shard format (`mds`).
    pub format: String,
    /// Hash algorithm names, sorted.
    pub hashes: Vec<String>,
    /// The uncompressed shard file.
    pub raw_data: FileInfo,
    /// Number of samples.
    pub samples: u64,
    /// The writer's size limit, if any.
    pub size_limit: Option<u64>,
    /// Shard version (2).
    pub version: u64,
    /// The compressed shard file, when compressed.
    pub zip_data: Option<FileInfo>,
}

impl FileInfo {
    pub(crate) fn to_json(&self) -> Json {
        Json::Object(vec![
            ("basename".into(), Json::Str(self.basename.clone())),
            ("bytes".into(), Json::from(self.bytes)),
            (
                "hashes".into(),
                Json::Object(self.hashes.iter().map(|(k, v)| (k.clone(), Json::Str(v.clone()))).collect()),
            ),
        ])
    }

    fn from_json(j: &Json, ctx: &dyn Fn(String) -> MdsError) -> Result<FileInfo> {
        let basename = j.get("basename").and_then(Json::as_str).ok_or_else(|| ctx("file without basename".into()))?;
        let bytes = j.get("bytes").and_then(Json::as_u64).ok_or_else(|| ctx(format!("{basename}: bad `bytes`")))?;
        let mut hashes = BTreeMap::new();
        match j.get("hashes") {
            Some(Json::Object(m)) => {
                for (k, v) in m {
                    let v = v.as_str().ok_or_else(|| ctx(format!("{basename}: hash `{k}` is not a string")))?;
                    hashes.insert(k.clone(), v.to_string());
                }
            }
            None | Some(Json::Null) => {}
            Some(_) => return Err(ctx(format!("{basename}: `hashes` is not an object"))),
        }
        Ok(FileInfo { basename: basename.to_string(), bytes, hashes })
    }
}

impl ShardInfo {
    /// The shard-writing config as `MDSWriter.get_config()` builds it (before sorting).
    pub(crate) fn config_json(&self) -> Json {
        Json::Object(vec![
            ("version".into(), Json::from(self.version)),
            ("format".into(), Json::Str(self.format.clone())),
            ("compression".into(), self.compression.clone().map_or(Json::Null, Json::Str)),
            ("hashes".into(), Json::Array(self.hashes.iter().cloned().map(Json::Str).collect())),
            ("size_limit".into(), self.size_limit.map_or(Json::Null, Json::from)),
            ("column_names".into(), Json::Array(self.column_names.iter().cloned().map(Json::Str).collect())),
            ("column_encodings".into(), Json::Array(self.column_encodings.iter().cloned().map(Json::Str).collect())),
            (
                "column_sizes".into(),
                Json::Array(self.column_sizes.iter().map(|s| s.map_or(Json::Null, Json::from)).collect()),
            ),
        ])
    }

    pub(crate) fn to_json(&self) -> Json {
        let mut obj = vec![
            ("samples".into(), Json::from(self.samples)),
            ("raw_data".into(), self.raw_data.to_json()),
            ("zip_data".into(), self.zip_data.as_ref().map_or(Json::Null, FileInfo::to_json)),
        ];
        if let Json::Object(cfg) = self.config_json() {
            obj.extend(cfg);
        }
        Json::Object(obj)
    }

    /// Parses one shard entry. Fields are checked for type; meaning (encodings, format) is
    /// checked by the reader.
    pub(crate) fn from_json(j: &Json, ctx: &dyn Fn(String) -> MdsError) -> Result<ShardInfo> {
        let strings = |key: &str| -> Result<Vec<String>> {
            j.get(key)
                .and_then(Json::as_array)
                .ok_or_else(|| ctx(format!("shard lacks `{key}`")))?
                .iter()
                .map(|v| v.as_str().map(str::to_string).ok_or_else(|| ctx(format!("`{key}` holds a non-string"))))
                .collect()
        };
        let opt_u64 = |key: &str| -> Result<Option<u64>> {
            match j.get(key) {
                None | Some(Json::Null) => Ok(None),
                Some(v) => match v.as_u64() {
                    Some(u) => Ok(Some(u)),
                    None => match v.as_str().map(parse_bytes) {
                        Some(Ok(u)) => Ok(Some(u)),
                        _ => Err(ctx(format!("bad `{key}`"))),
                    },
                },
            }
        };
        let column_sizes = j
            .get("column_sizes")
            .and_then(Json::as_array)
            .ok_or_else(|| ctx("shard lacks `column_sizes`".into()))?
            .iter()
            .map(|v| match v {
                Json::Null => Ok(None),
                _ => v.as_u64().map(Some).ok_or_else(|| ctx("`column_sizes` holds a non-integer".into())),
            })
            .collect::<Result<Vec<_>>>()?;
        let raw_data =
            FileInfo::from_json(j.get("raw_data").ok_or_else(|| ctx("shard lacks `raw_data`".into()))?, ctx)?;
        let zip_data = match j.get("zip_data") {
            None | Some(Json::Null) => None,
            Some(z) => Some(FileInfo::from_json(z, ctx)?),
        };
        let compression = match j.get("compression") {
            None | Some(Json::Null) => None,
            Some(Json::Str(s)) if s.is_empty() => None,
            Some(Json::Str(s)) => Some(s.clone()),
            Some(_) => return Err(ctx("`compression` is not a string".into())),
        };
        let hashes = match j.get("hashes") {
            None | Some(Json::Null) => Vec::new(),
            Some(_) => strings("hashes")?,
        };
        Ok(ShardInfo {
            column_encodings: strings("column_encodings")?,
            column_names: strings("column_names")?,
            column_sizes,
            compression,
            format: j
                .get("format")
                .and_then(Json::as_str)
                .ok_or_else(|| ctx("shard lacks `format`".into()))?
                .to_string(),
            hashes,
            raw_data,
            samples: j.get("samples").and_then(Json::as_u64).ok_or_else(|| ctx("shard lacks `samples`".into()))?,
            size_limit: opt_u64("size_limit")?,
            version: j.get("version").and_then(Json::as_u64).ok_or_else(|| ctx("shard lacks `version`".into()))?,
            zip_data,
        })
    }
}

impl Index {
    /// Total number of samples.
    pub fn num_samples(&self) -> u64 {
        self.shards.iter().map(|s| s.samples).sum()
    }

    /// The index as `json.dump(obj, sort_keys=True)` writes it (what `MDSWriter` produces).
    pub fn to_python_json(&self) -> String {
        let obj = Json::Object(vec![
            ("version".into(), Json::Int(2)),
            ("shards".into(), Json::Array(self.shards.iter().map(ShardInfo::to_json).collect())),
        ]);
        obj.to_python(true)
    }

    /// Parses `index.json` text; `path` only names the file in errors.
    pub fn parse(text: &[u8], path: &Path) -> Result<Index> {
        let j =
            Json::parse_bytes(text).map_err(|e| MdsError::Index { path: path.to_path_buf(), reason: e.to_string() })?;
        Index::from_json(&j, path)
    }

    /// Reads and parses `DIR/index.json`.
    pub fn load(dir: &Path) -> Result<Index> {
        let path = dir.join(INDEX_BASENAME);
        let text = std::fs::read(&path).map_err(|e| MdsError::io(&path, e))?;
        Index::parse(&text, &path)
    }

    pub(crate) fn from_json(j: &Json, path: &Path) -> Result<Index> {
        let err = |reason: String| MdsError::Index { path: path.to_path_buf(), reason };
        match j.get("version").and_then(Json::as_i64) {
            Some(2) => {}
            Some(v) => return Err(err(format!("unsupported version {v}, expected 2"))),
            None => return Err(err("missing `version`".into())),
        }
        let shards = j.get("shards").and_then(Json::as_array).ok_or_else(|| err("missing `shards`".into()))?;
        let mut out = Vec::with_capacity(shards.len());
        for (k, s) in shards.iter().enumerate() {
            let ctx = |reason: String| err(format!("shard #{k}: {reason}"));
            out.push(ShardInfo::from_json(s, &ctx)?);
        }
        Ok(Index { shards: out })
    }
}

/// `streaming.base.util.bytes_to_int`: a byte count, plain (`"1024"`, `"1024b"`) or with a
/// binary unit (`"64mb"`, `"1.5kb"`; kb, mb, gb, tb, pb, eb, zb, yb are powers of 1024).
pub fn parse_bytes(text: &str) -> Result<u64> {
    let t = text.trim().to_ascii_lowercase();
    let bad = || MdsError::Config(format!("unsupported byte size `{text}` (e.g. 1024, 100kb, 64mb)"));
    const UNITS: [(&str, u32); 8] =
        [("kb", 1), ("mb", 2), ("gb", 3), ("tb", 4), ("pb", 5), ("eb", 6), ("zb", 7), ("yb", 8)];
    for (suffix, power) in UNITS {
        if let Some(num) = t.strip_suffix(suffix) {
            let x: f64 = num.trim().parse().map_err(|_| bad())?;
            let v = x * 1024f64.powi(power as i32);
            if !v.is_finite() || v < 0.0 || v >= u64::MAX as f64 {
                return Err(bad());
            }
            return Ok(v as u64);
        }
    }
    let digits = t.strip_suffix('b').unwrap_or(&t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    digits.parse().map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bytes_to_int() {
        assert_eq!(parse_bytes("1024").unwrap(), 1024);
        assert_eq!(parse_bytes("100b").unwrap(), 100);
        assert_eq!(parse_bytes("100kb").unwrap(), 102_400);
        assert_eq!(parse_bytes("64MB").unwrap(), 1 << 26);
        assert_eq!(parse_bytes("1.5kb").unwrap(), 1536);
        assert!(parse_bytes("12xb").is_err());
        assert!(parse_bytes("").is_err());
    }
}
