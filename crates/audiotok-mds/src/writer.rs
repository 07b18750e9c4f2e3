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
//! Outputs are atomic ([`audiotok_core::atomic::AtomicFile::replace`]): each shard is written to
//! `.NAME.tmp`, synced and renamed, and `index.json` is written last the same way, so an
//! interrupted run never leaves an index that points at a partial shard. Output depends only on
//! the samples and options.
//!
//! Work is spread so that callers can keep the writer fed from many threads:
//! - encoding: [`MdsWriter::encoder`] gives a [`SampleEncoder`] (`Send + Sync`) that encodes
//!   samples anywhere, in parallel; [`MdsWriter::write_encoded`] then only appends them in order;
//! - finishing a shard (its header, the hashes, the file write, fsync and rename) happens on a
//!   background thread while the next shard fills, each hash on a thread of its own beside the
//!   write, straight from the encoded samples (no shard-sized copy). At most one shard is in
//!   flight: the next full shard, or [`MdsWriter::finish`], waits for it first and returns its
//!   error, if any. `index.json` is written after every shard is on disk.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use audiotok_core::atomic::{AtomicFile, WriteError};

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

/// One sample encoded as `MDSWriter.encode_sample` encodes it, for [`MdsWriter::write_encoded`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedSample {
    data: Vec<u8>,
    schema: u64,
}

impl EncodedSample {
    /// The encoded bytes (variable-size column lengths, then the columns' bytes).
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the sample encoded to no bytes (no columns).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// Encodes samples for one writer's columns. Cheap to clone and `Send + Sync`: encode samples
/// on any threads, then hand them to [`MdsWriter::write_encoded`] in order.
#[derive(Debug, Clone)]
pub struct SampleEncoder {
    columns: Arc<[Column]>,
    /// Identifies the writer whose columns these are.
    schema: u64,
}

/// Source of [`SampleEncoder::schema`] ids.
static NEXT_SCHEMA: AtomicU64 = AtomicU64::new(0);

impl SampleEncoder {
    /// Encodes `sample` (keys must be exactly the columns) as `MDSWriter.encode_sample` does.
    pub fn encode(&self, sample: &Sample) -> Result<EncodedSample> {
        let columns = &self.columns;
        if sample.len() != columns.len() || columns.iter().any(|c| !sample.contains_key(&c.name)) {
            let missing: Vec<&str> =
                columns.iter().filter(|c| !sample.contains_key(&c.name)).map(|c| c.name.as_str()).collect();
            let extra: Vec<&str> =
                sample.keys().filter(|k| !columns.iter().any(|c| &c.name == *k)).map(String::as_str).collect();
            return Err(MdsError::SampleColumns(format!("missing {missing:?}, unknown {extra:?}")));
        }
        let mut datums = Vec::with_capacity(columns.len());
        let mut head = Vec::new();
        for (col, value) in columns.iter().zip(sample.values()) {
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
            datums.push(datum);
        }
        let mut data = Vec::with_capacity(head.len() + datums.iter().map(Vec::len).sum::<usize>());
        data.extend_from_slice(&head);
        for d in &datums {
            data.extend_from_slice(d);
        }
        Ok(EncodedSample { data, schema: self.schema })
    }
}

/// Writes an MDS dataset into a folder. Call [`MdsWriter::finish`] to write the last shard and
/// `index.json`; dropping the writer without it leaves no index (a shard still being finished
/// in the background is waited for).
#[derive(Debug)]
pub struct MdsWriter {
    dir: PathBuf,
    encoder: SampleEncoder,
    compression: Option<Compression>,
    hashes: Vec<HashAlgo>,
    size_limit: Option<u64>,
    config_text: Arc<[u8]>,
    template: ShardInfo,
    shards: Vec<ShardInfo>,
    /// Encoded samples of the shard being built.
    samples: Vec<Vec<u8>>,
    /// The shard's size counted as streaming counts it (= its file size).
    shard_size: u64,
    /// The previous shard, being finished on a background thread.
    in_flight: Option<JoinHandle<Result<ShardInfo>>>,
    /// A shard whose background write failed: its samples are gone, so every later call fails.
    failed_shard: Option<PathBuf>,
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
        let config_text: Arc<[u8]> = template.config_json().to_python(true).into_bytes().into();

        prepare_dir(&dir, options.overwrite)?;
        let shard_size = 8 + config_text.len() as u64;
        let encoder = SampleEncoder { columns: cols.into(), schema: NEXT_SCHEMA.fetch_add(1, Ordering::Relaxed) };
        Ok(MdsWriter {
            dir,
            encoder,
            compression: compression.map(|(_, c)| c),
            hashes,
            size_limit,
            config_text,
            template,
            shards: Vec::new(),
            samples: Vec::new(),
            shard_size,
            in_flight: None,
            failed_shard: None,
        })
    }

    /// The output folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// An encoder for this writer's columns, to encode samples on other threads.
    pub fn encoder(&self) -> SampleEncoder {
        self.encoder.clone()
    }

    /// Adds one sample (keys must be exactly the columns), possibly sending a full shard off
    /// to be written first.
    pub fn write(&mut self, sample: &Sample) -> Result<()> {
        let encoded = self.encoder.encode(sample)?;
        self.write_encoded(encoded)
    }

    /// Adds one sample encoded by this writer's [`SampleEncoder`], possibly sending a full shard
    /// off to be written first. Fails with the error of the previous shard's background write,
    /// if it failed.
    pub fn write_encoded(&mut self, sample: EncodedSample) -> Result<()> {
        self.check_not_failed()?;
        if sample.schema != self.encoder.schema {
            return Err(MdsError::Config("sample encoded by another writer's encoder".into()));
        }
        let data = sample.data;
        let add = data.len() as u64 + 4;
        let header = 8 + self.config_text.len() as u64;
        if header + add > u64::from(u32::MAX) {
            return Err(MdsError::SampleTooLarge { size: data.len() as u64 });
        }
        let limit = self.size_limit.unwrap_or(u64::from(u32::MAX));
        let over = match self.size_limit {
            // streaming flushes whenever the limit would be passed, even an empty shard.
            Some(_) => limit < self.shard_size + add,
            None => !self.samples.is_empty() && limit < self.shard_size + add,
        };
        if over {
            self.flush_shard()?;
        }
        self.shard_size += add;
        self.samples.push(data);
        Ok(())
    }

    /// Sends the pending shard to a background thread, as `JointWriter.flush_shard` +
    /// `MDSWriter.encode_joint_shard`, after the shard before it is done.
    fn flush_shard(&mut self) -> Result<()> {
        self.collect_in_flight()?;
        let job = ShardJob {
            dir: self.dir.clone(),
            index: self.shards.len(),
            config_text: Arc::clone(&self.config_text),
            samples: std::mem::take(&mut self.samples),
            compression: self.compression,
            hashes: self.hashes.clone(),
            template: self.template.clone(),
        };
        debug_assert_eq!(job.file_size(), self.shard_size);
        let spawned = std::thread::Builder::new().name("mds-shard".into()).spawn(move || job.run());
        let handle = match spawned {
            Ok(h) => h,
            Err(e) => {
                // The shard's samples went with the job.
                self.failed_shard = Some(self.dir.join(raw_shard_name(self.shards.len())));
                return Err(MdsError::io(&self.dir, e));
            }
        };
        self.in_flight = Some(handle);
        self.shard_size = 8 + self.config_text.len() as u64;
        Ok(())
    }

    /// Waits for the shard being finished in the background and records it. When it failed,
    /// its samples are lost with its thread: the writer is marked failed.
    fn collect_in_flight(&mut self) -> Result<()> {
        if let Some(handle) = self.in_flight.take() {
            let done = handle.join().map_err(|e| MdsError::Worker(panic_text(&*e))).and_then(|r| r);
            match done {
                Ok(shard) => self.shards.push(shard),
                Err(e) => {
                    self.failed_shard = Some(self.dir.join(raw_shard_name(self.shards.len())));
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Fails once a shard could not be written (its error was returned then).
    fn check_not_failed(&self) -> Result<()> {
        match &self.failed_shard {
            Some(path) => Err(MdsError::io(
                path,
                std::io::Error::other("this shard could not be written (reported earlier): the dataset is incomplete"),
            )),
            None => Ok(()),
        }
    }

    /// Writes the last shard (if it has samples), waits for every shard, then writes
    /// `index.json`; returns the index.
    pub fn finish(mut self) -> Result<Index> {
        self.check_not_failed()?;
        if !self.samples.is_empty() {
            self.flush_shard()?;
        }
        self.collect_in_flight()?;
        let index = Index { shards: std::mem::take(&mut self.shards) };
        write_atomic(&self.dir, INDEX_BASENAME, index.to_python_json().as_bytes())?;
        Ok(index)
    }
}

impl Drop for MdsWriter {
    fn drop(&mut self) {
        // Never leave a thread writing into the folder after the writer is gone.
        if let Some(handle) = self.in_flight.take() {
            let _ = handle.join();
        }
    }
}

/// The file name of shard `index` (uncompressed), as `MDSWriter` names it.
fn raw_shard_name(index: usize) -> String {
    format!("shard.{index:05}.mds")
}

/// A full shard to finish: everything it needs, owned, for a background thread.
struct ShardJob {
    dir: PathBuf,
    index: usize,
    config_text: Arc<[u8]>,
    samples: Vec<Vec<u8>>,
    compression: Option<Compression>,
    hashes: Vec<HashAlgo>,
    template: ShardInfo,
}

impl ShardJob {
    /// The shard file's size before compression.
    fn file_size(&self) -> u64 {
        8 + self.config_text.len() as u64 + self.samples.iter().map(|s| s.len() as u64 + 4).sum::<u64>()
    }

    /// Header, hashes, atomic write; the shard's index entry.
    fn run(self) -> Result<ShardInfo> {
        let n = self.samples.len();
        let header_len = 4 + 4 * (n + 1) + self.config_text.len();
        let mut header = Vec::with_capacity(4 * (n + 2));
        header.extend_from_slice(&(n as u32).to_le_bytes());
        let mut offset = header_len as u64;
        header.extend_from_slice(&(offset as u32).to_le_bytes());
        for s in &self.samples {
            offset += s.len() as u64;
            header.extend_from_slice(&(offset as u32).to_le_bytes());
        }
        let mut parts: Vec<&[u8]> = Vec::with_capacity(n + 2);
        parts.push(&header);
        parts.push(&self.config_text);
        parts.extend(self.samples.iter().map(Vec::as_slice));
        let raw_basename = raw_shard_name(self.index);
        let (raw_data, zip_data) = match &self.compression {
            None => {
                let hashes = hash_and_write(&self.dir, &raw_basename, &parts, &self.hashes)?;
                (FileInfo { basename: raw_basename, bytes: offset, hashes }, None)
            }
            Some(c) => {
                let raw = parts.concat();
                let zip = c.compress(&raw).map_err(|e| MdsError::io(self.dir.join(&raw_basename), e))?;
                let zip_basename = format!("{raw_basename}.{}", c.extension());
                let zip_hashes = hash_and_write(&self.dir, &zip_basename, &[&zip], &self.hashes)?;
                let raw_hashes = self.hashes.iter().map(|h| (h.name().to_string(), h.hex_digest(&raw))).collect();
                (
                    FileInfo { basename: raw_basename, bytes: raw.len() as u64, hashes: raw_hashes },
                    Some(FileInfo { basename: zip_basename, bytes: zip.len() as u64, hashes: zip_hashes }),
                )
            }
        };
        let mut shard = self.template;
        shard.samples = n as u64;
        shard.raw_data = raw_data;
        shard.zip_data = zip_data;
        Ok(shard)
    }
}

/// Writes `DIR/NAME` atomically from `parts` while each of `algos` hashes them on a thread of
/// its own; returns the digests by name.
fn hash_and_write(dir: &Path, name: &str, parts: &[&[u8]], algos: &[HashAlgo]) -> Result<BTreeMap<String, String>> {
    std::thread::scope(|scope| {
        let mut hashers = Vec::with_capacity(algos.len());
        for &algo in algos {
            let spawned = std::thread::Builder::new()
                .name("mds-hash".into())
                .spawn_scoped(scope, move || algo.hex_digest_parts(parts));
            match spawned {
                Ok(h) => hashers.push((algo, Some(h))),
                // No thread to be had: hash here instead.
                Err(_) => hashers.push((algo, None)),
            }
        }
        let written = write_atomic_parts(dir, name, parts);
        let mut digests = BTreeMap::new();
        for (algo, handle) in hashers {
            let digest = match handle {
                Some(h) => h.join().map_err(|e| MdsError::Worker(panic_text(&*e)))?,
                None => algo.hex_digest_parts(parts),
            };
            digests.insert(algo.name().to_string(), digest);
        }
        written?;
        Ok(digests)
    })
}

/// The message of a panic payload.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panicked".into())
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

/// Writes `DIR/NAME` atomically: `.NAME.tmp`, fsync, rename ([`AtomicFile::replace`]).
pub(crate) fn write_atomic(dir: &Path, name: &str, data: &[u8]) -> Result<()> {
    write_atomic_parts(dir, name, &[data])
}

/// Writes the concatenation of `parts` to `DIR/NAME` atomically: `.NAME.tmp`, fsync, rename
/// ([`AtomicFile::replace`]: the temporary is created fresh, so a file or link already at its
/// name cannot redirect the write out of `dir`). Every error names `DIR/NAME`.
fn write_atomic_parts(dir: &Path, name: &str, parts: &[&[u8]]) -> Result<()> {
    let path = dir.join(name);
    let io = |e: WriteError| MdsError::io(&path, e.source);
    let mut file = AtomicFile::replace(&path).map_err(io)?;
    for p in parts {
        file.write_all(p).map_err(io)?;
    }
    file.commit(true).map_err(io)
}

/// Writes `DIR/NAME` atomically as Python's `json.dump(value, f, sort_keys=sort_keys)` would.
pub(crate) fn write_json_atomic(dir: &Path, name: &str, value: &Json, sort_keys: bool) -> Result<()> {
    write_atomic(dir, name, value.to_python(sort_keys).as_bytes())
}
