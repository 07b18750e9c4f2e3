//! [`MdsWriter`]: samples in, MDS shards and `index.json` out, byte-identical to `MDSWriter`.
//!
//! Shard layout (all integers little-endian u32):
//!
//! ```text
//! [n: samples] [offsets: n+1, absolute byte offsets of each sample and of the end]
//! [config: json.dumps(config, sort_keys=True), UTF-8] [sample 0] ... [sample n-1]
//! sample = [u32 size of each variable-size column, in column order] [column bytes, in column order]
//! ```
//!
//! Columns are sorted by name. Shard boundaries follow `streaming` exactly: a shard's size is
//! counted as `8 + len(config) + Σ(len(sample) + 4)` (precisely its file size), and a sample that
//! would push it past `size_limit` starts a new shard, even when the current one is empty (so a
//! first sample larger than the limit yields an empty `shard.00000.mds`, as in `streaming`).
//! Shards never exceed the u32 offset range: a sample that cannot fit is an error, and without a
//! size limit a shard is closed before its offsets would overflow (where `streaming` would wrap).
//!
//! Outputs are atomic: each shard is written to `.NAME.tmp`, synced and renamed, and
//! `index.json` is written last the same way, so an interrupted run never leaves an index that
//! points at a partial shard. Output depends only on the samples and options.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::codec::{Compression, HashAlgo};
use crate::encoding::Encoding;
use crate::error::{MdsError, Result};
use crate::index::{FileInfo, Index, ShardInfo, INDEX_BASENAME};
use crate::json::Json;
use crate::value::{encode_value, Sample};

/// `streaming`'s default shard size limit: 64 MiB.
pub const DEFAULT_SIZE_LIMIT: u64 = 1 << 26;

/// Writer options, mirroring `MDSWriter`'s keyword arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterOptions {
    /// Compression string (`"zstd"`, `"zstd:7"`); `None` for uncompressed shards.
    pub compression: Option<String>,
    /// Hash algorithms recorded for each file, sorted and unique (`["sha1", "xxh64"]`).
    pub hashes: Vec<String>,
    /// Shard size limit in bytes (`None` or `Some(0)`: one shard, up to the u32 offset range).
    /// Must be below 2^32. Default 64 MiB.
    pub size_limit: Option<u64>,
    /// Allow writing into a folder that already has entries: an existing `index.json` and
    /// `shard.*` files are deleted first; other files are left alone. Default `false`: a
    /// non-empty folder is an error.
    pub overwrite: bool,
    /// Encoding names registered as variable-size raw bytes ([`crate::Encoding::Raw`]), taking
    /// precedence over built-ins, as a custom class assigned into Python's `_encodings` does.
    /// Values for such columns are [`crate::Value::Bytes`]. Default: none.
    pub raw_encodings: Vec<String>,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            compression: None,
            hashes: Vec::new(),
            size_limit: Some(DEFAULT_SIZE_LIMIT),
            overwrite: false,
            raw_encodings: Vec::new(),
        }
    }
}

#[derive(Debug)]
struct Column {
    name: String,
    encoding: Encoding,
    fixed: Option<usize>,
}

/// Writes an MDS dataset into a folder. Call [`MdsWriter::finish`] to write the last shard and
/// `index.json`; dropping the writer without it leaves no index.
#[derive(Debug)]
pub struct MdsWriter {
    dir: PathBuf,
    columns: Vec<Column>,
    compression: Option<(String, Compression)>,
    hashes: Vec<HashAlgo>,
    size_limit: Option<u64>,
    config_text: Vec<u8>,
    template: ShardInfo,
    shards: Vec<ShardInfo>,
    /// Encoded samples of the shard being built, back to back.
    body: Vec<u8>,
    /// Encoded size of each sample in `body`.
    sizes: Vec<u32>,
    /// The shard's size counted as streaming counts it (= its file size).
    shard_size: u64,
}

impl MdsWriter {
    /// Creates the folder (if needed) and a writer for `columns` (name → encoding string, as
    /// `MDSWriter(columns=...)`).
    pub fn new<I, N, E>(dir: impl AsRef<Path>, columns: I, options: WriterOptions) -> Result<MdsWriter>
    where
        I: IntoIterator<Item = (N, E)>,
        N: Into<String>,
        E: AsRef<str>,
    {
        let dir = dir.as_ref().to_path_buf();
        let mut spec: Vec<(String, String)> =
            columns.into_iter().map(|(n, e)| (n.into(), e.as_ref().to_string())).collect();
        spec.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(w) = spec.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(MdsError::Config(format!("column `{}` given twice", w[0].0)));
        }
        let mut cols = Vec::with_capacity(spec.len());
        for (name, text) in &spec {
            let encoding = Encoding::parse_with_raw(text, name, &options.raw_encodings)?;
            let fixed = encoding.fixed_size();
            cols.push(Column { name: name.clone(), encoding, fixed });
        }

        let compression = match options.compression.as_deref() {
            None | Some("") => None,
            Some(text) => Some((text.to_string(), text.parse::<Compression>()?)),
        };
        let mut hashes = Vec::with_capacity(options.hashes.len());
        for (k, h) in options.hashes.iter().enumerate() {
            if k > 0 && options.hashes[k - 1] >= *h {
                return Err(MdsError::Config("hashes must be unique and in sorted order".into()));
            }
            hashes.push(h.parse::<HashAlgo>()?);
        }
        let size_limit = match options.size_limit {
            None | Some(0) => None,
            Some(l) if l >= 1 << 32 => {
                return Err(MdsError::Config(format!(
                    "size_limit must be less than 2**32 (sample offsets are u32), got {l}"
                )))
            }
            Some(l) => Some(l),
        };

        let template = ShardInfo {
            column_encodings: spec.iter().map(|(_, e)| e.clone()).collect(),
            column_names: spec.iter().map(|(n, _)| n.clone()).collect(),
            column_sizes: cols.iter().map(|c| c.fixed.map(|s| s as u64)).collect(),
            compression: compression.as_ref().map(|(t, _)| t.clone()),
            format: "mds".into(),
            hashes: options.hashes.clone(),
            raw_data: FileInfo { basename: String::new(), bytes: 0, hashes: Default::default() },
            samples: 0,
            size_limit,
            version: 2,
            zip_data: None,
        };
        let config_text = template.config_json().to_python(true).into_bytes();

        prepare_dir(&dir, options.overwrite)?;
        let shard_size = 8 + config_text.len() as u64;
        Ok(MdsWriter {
            dir,
            columns: cols,
            compression,
            hashes,
            size_limit,
            config_text,
            template,
            shards: Vec::new(),
            body: Vec::new(),
            sizes: Vec::new(),
            shard_size,
        })
    }

    /// The output folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Encodes `sample` as `MDSWriter.encode_sample` does.
    fn encode_sample(&self, sample: &Sample) -> Result<Vec<u8>> {
        if sample.len() != self.columns.len() || self.columns.iter().any(|c| !sample.contains_key(&c.name)) {
            let missing: Vec<&str> =
                self.columns.iter().filter(|c| !sample.contains_key(&c.name)).map(|c| c.name.as_str()).collect();
            let extra: Vec<&str> =
                sample.keys().filter(|k| !self.columns.iter().any(|c| &c.name == *k)).map(String::as_str).collect();
            return Err(MdsError::SampleColumns(format!("missing {missing:?}, unknown {extra:?}")));
        }
        let mut head = Vec::new();
        let mut body = Vec::new();
        for (col, value) in self.columns.iter().zip(sample.values()) {
            let enc_err = |reason: String| MdsError::Encode {
                column: col.name.clone(),
                encoding: col.encoding.to_string(),
                reason,
            };
            let datum = encode_value(&col.encoding, value).map_err(enc_err)?;
            match col.fixed {
                None => {
                    let n = u32::try_from(datum.len())
                        .map_err(|_| MdsError::SampleTooLarge { size: datum.len() as u64 })?;
                    head.extend_from_slice(&n.to_le_bytes());
                }
                Some(size) if size != datum.len() => {
                    return Err(enc_err(format!(
                        "encoded to {} bytes, the column's fixed size is {size}",
                        datum.len()
                    )));
                }
                Some(_) => {}
            }
            body.extend_from_slice(&datum);
        }
        head.extend_from_slice(&body);
        Ok(head)
    }

    /// Adds one sample (keys must be exactly the columns), possibly writing out a full shard first.
    pub fn write(&mut self, sample: &Sample) -> Result<()> {
        let data = self.encode_sample(sample)?;
        let add = data.len() as u64 + 4;
        let header = 8 + self.config_text.len() as u64;
        if header + add > u64::from(u32::MAX) {
            return Err(MdsError::SampleTooLarge { size: data.len() as u64 });
        }
        let limit = self.size_limit.unwrap_or(u64::from(u32::MAX));
        let over = match self.size_limit {
            // streaming flushes whenever the limit would be passed, even an empty shard.
            Some(_) => limit < self.shard_size + add,
            None => !self.sizes.is_empty() && limit < self.shard_size + add,
        };
        if over {
            self.flush_shard()?;
        }
        self.shard_size += add;
        self.sizes.push(data.len() as u32);
        self.body.extend_from_slice(&data);
        Ok(())
    }

    /// Writes the pending shard, as `JointWriter.flush_shard` + `MDSWriter.encode_joint_shard`.
    fn flush_shard(&mut self) -> Result<()> {
        let n = self.sizes.len();
        let header_len = 4 + 4 * (n + 1) + self.config_text.len();
        let mut raw = Vec::with_capacity(header_len + self.body.len());
        raw.extend_from_slice(&(n as u32).to_le_bytes());
        let mut offset = header_len as u64;
        raw.extend_from_slice(&(offset as u32).to_le_bytes());
        for &s in &self.sizes {
            offset += u64::from(s);
            raw.extend_from_slice(&(offset as u32).to_le_bytes());
        }
        raw.extend_from_slice(&self.config_text);
        raw.extend_from_slice(&self.body);
        debug_assert_eq!(raw.len() as u64, self.shard_size);

        let raw_basename = format!("shard.{:05}.mds", self.shards.len());
        let raw_info = self.file_info(&raw, raw_basename.clone());
        let zip_info = match &self.compression {
            Some((_, c)) => {
                let zip = c.compress(&raw).map_err(|e| MdsError::io(self.dir.join(&raw_basename), e))?;
                let info = self.file_info(&zip, format!("{raw_basename}.{}", c.extension()));
                write_atomic(&self.dir, &info.basename, &zip)?;
                Some(info)
            }
            None => {
                write_atomic(&self.dir, &raw_basename, &raw)?;
                None
            }
        };
        let mut shard = self.template.clone();
        shard.samples = n as u64;
        shard.raw_data = raw_info;
        shard.zip_data = zip_info;
        self.shards.push(shard);

        self.body.clear();
        self.sizes.clear();
        self.shard_size = 8 + self.config_text.len() as u64;
        Ok(())
    }

    fn file_info(&self, data: &[u8], basename: String) -> FileInfo {
        let hashes = self.hashes.iter().map(|h| (h.name().to_string(), h.hex_digest(data))).collect();
        FileInfo { basename, bytes: data.len() as u64, hashes }
    }

    /// Writes the last shard (if it has samples) and then `index.json`; returns the index.
    pub fn finish(mut self) -> Result<Index> {
        if !self.sizes.is_empty() {
            self.flush_shard()?;
        }
        let index = Index { shards: std::mem::take(&mut self.shards) };
        write_atomic(&self.dir, INDEX_BASENAME, index.to_python_json().as_bytes())?;
        Ok(index)
    }
}

/// Creates `dir` and checks it is empty, or clears our own outputs from it when `overwrite`.
fn prepare_dir(dir: &Path, overwrite: bool) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| MdsError::io(dir, e))?;
    let entries = fs::read_dir(dir).map_err(|e| MdsError::io(dir, e))?;
    let mut ours = Vec::new();
    let mut any = false;
    for entry in entries {
        let entry = entry.map_err(|e| MdsError::io(dir, e))?;
        any = true;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == INDEX_BASENAME || (name.starts_with("shard.") && entry.path().is_file()) {
            ours.push(name);
        }
    }
    if !any {
        return Ok(());
    }
    if !overwrite {
        return Err(MdsError::Config(format!(
            "output folder {} is not empty (set overwrite to replace)",
            dir.display()
        )));
    }
    // The index goes first, so a crash here leaves no index pointing at deleted shards.
    ours.sort_by_key(|n| n != INDEX_BASENAME);
    for name in ours {
        let p = dir.join(&name);
        fs::remove_file(&p).map_err(|e| MdsError::io(&p, e))?;
    }
    Ok(())
}

/// Writes `DIR/NAME` atomically: `.NAME.tmp`, fsync, rename.
pub(crate) fn write_atomic(dir: &Path, name: &str, data: &[u8]) -> Result<()> {
    let path = dir.join(name);
    let tmp = match path.file_name() {
        Some(f) => path.with_file_name(format!(".{}.tmp", f.to_string_lossy())),
        None => return Err(MdsError::Config(format!("bad output file name `{name}`"))),
    };
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, &path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        MdsError::io(&path, e)
    })
}

/// Writes `DIR/NAME` atomically as Python's `json.dump(value, f, sort_keys=sort_keys)` would.
pub(crate) fn write_json_atomic(dir: &Path, name: &str, value: &Json, sort_keys: bool) -> Result<()> {
    write_atomic(dir, name, value.to_python(sort_keys).as_bytes())
}
