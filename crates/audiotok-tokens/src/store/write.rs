//! The store writer: batches of records, atomically, then `metadata.json`; every file through
//! [`audiotok_core::atomic::AtomicFile::replace`] (`.NAME.tmp` created fresh, so a link planted
//! there cannot redirect the write, synced, renamed over `NAME`).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use arrow_schema::SchemaRef;
use audiotok_core::atomic::{AtomicFile, WriteError};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use super::{
    arrow_schema, batch_file_name, existing_batches, records_to_batch, Result, ScaleMetadata, StoreError,
    StoreMetadata, StoreReader, TokenRecord, METADATA_FILE, METADATA_FORMAT, METADATA_VERSION,
};

/// Options of a [`StoreWriter`]. [`StoreOptions::new`] gives the defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreOptions {
    /// Number of scales every record has.
    pub num_scales: usize,
    /// Records per batch file (default 1000).
    pub batch_size: usize,
    /// Codebook size per scale, when known: codes must be below it, and it goes to the metadata.
    pub codebook_sizes: Option<Vec<u32>>,
    /// Frame rate per scale in Hz, when known (metadata only).
    pub rates_hz: Option<Vec<f64>>,
    /// How many most common codes per scale the metadata lists (default 20).
    pub top_k: usize,
    /// What made the store (free-form `key: value`), written to `metadata.json` and to every batch
    /// file's Parquet key-value metadata (see [`super::batch_tags`]). Default empty: nothing written.
    pub provenance: BTreeMap<String, String>,
}

impl StoreOptions {
    /// Defaults for records of `num_scales` scales: batches of 1000, no codebook sizes or rates,
    /// 20 most common codes per scale in the metadata.
    pub fn new(num_scales: usize) -> Self {
        StoreOptions {
            num_scales,
            batch_size: 1000,
            codebook_sizes: None,
            rates_hz: None,
            top_k: 20,
            provenance: BTreeMap::new(),
        }
    }
}

/// Per-scale running statistics for the metadata.
#[derive(Default)]
struct ScaleAcc {
    total: u64,
    counts: HashMap<u32, u64>,
}

/// Writes a token store directory (see the [module docs](super)).
pub struct StoreWriter {
    dir: PathBuf,
    opts: StoreOptions,
    schema: SchemaRef,
    /// Records pushed but not yet written.
    pending: Vec<TokenRecord>,
    /// Index of the next batch to write or reuse.
    next: usize,
    /// Set once a short (final) batch was written or reused.
    closed: bool,
    files: Vec<String>,
    total_duration: f64,
    acc: Vec<ScaleAcc>,
}

impl StoreWriter {
    /// Creates `dir` (and its parents) if needed and a writer for it. Existing batch files are kept
    /// until they are rewritten, reused, or removed by [`StoreWriter::finish`].
    pub fn create(dir: &Path, opts: StoreOptions) -> Result<Self> {
        let bad = |msg: String| StoreError::Input { path: dir.to_path_buf(), msg };
        if opts.num_scales == 0 {
            return Err(bad("a store needs at least one scale".into()));
        }
        if opts.batch_size == 0 {
            return Err(bad("batch_size must be at least 1".into()));
        }
        if opts.codebook_sizes.as_ref().is_some_and(|c| c.len() != opts.num_scales) {
            return Err(bad(format!("codebook_sizes must have one entry per scale ({})", opts.num_scales)));
        }
        if opts.rates_hz.as_ref().is_some_and(|r| r.len() != opts.num_scales) {
            return Err(bad(format!("rates_hz must have one entry per scale ({})", opts.num_scales)));
        }
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io { path: dir.to_path_buf(), source })?;
        let schema = arrow_schema(opts.num_scales);
        let acc = (0..opts.num_scales).map(|_| ScaleAcc::default()).collect();
        Ok(StoreWriter {
            dir: dir.to_path_buf(),
            opts,
            schema,
            pending: Vec::new(),
            next: 0,
            closed: false,
            files: Vec::new(),
            total_duration: 0.0,
            acc,
        })
    }

    /// Records per batch.
    pub fn batch_size(&self) -> usize {
        self.opts.batch_size
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Index of the next batch [`write_batch`](Self::write_batch) or
    /// [`reuse_batch`](Self::reuse_batch) expects.
    pub fn next_batch(&self) -> usize {
        self.next
    }

    /// Adds one record; writes a batch file when `batch_size` records are pending. Returns the path
    /// of the batch written, if any. Cannot be mixed with `write_batch`/`reuse_batch` mid-batch.
    pub fn push(&mut self, record: TokenRecord) -> Result<Option<PathBuf>> {
        self.check(&record, self.pending.len())?;
        self.pending.push(record);
        if self.pending.len() == self.opts.batch_size {
            let records = std::mem::take(&mut self.pending);
            return self.write_batch(self.next, &records).map(Some);
        }
        Ok(None)
    }

    /// Writes batch `index` (which must be [`next_batch`](Self::next_batch)) from `records`: exactly
    /// `batch_size` of them, or fewer for the last batch. Written to `.NAME.tmp` in the store
    /// directory, synced and renamed ([`AtomicFile::replace`]), so the batch file appears complete
    /// or not at all.
    pub fn write_batch(&mut self, index: usize, records: &[TokenRecord]) -> Result<PathBuf> {
        self.write_batch_tagged(index, records, &BTreeMap::new())
    }

    /// [`write_batch`](Self::write_batch), recording `tags` (with [`StoreOptions::provenance`]; a tag
    /// wins over a provenance entry of the same key) in the file's Parquet key-value metadata, under
    /// [`super::BATCH_TAG_PREFIX`]; [`super::batch_tags`] reads them back.
    pub fn write_batch_tagged(
        &mut self,
        index: usize,
        records: &[TokenRecord],
        tags: &BTreeMap<String, String>,
    ) -> Result<PathBuf> {
        self.check_order(index, records.len(), "write")?;
        for (i, r) in records.iter().enumerate() {
            self.check(r, i)?;
        }
        let batch = records_to_batch(&self.schema, records)
            .map_err(|e| StoreError::Input { path: self.dir.clone(), msg: format!("building the batch: {e}") })?;
        let path = self.dir.join(batch_file_name(index));
        let parquet_err =
            |e: parquet::errors::ParquetError| StoreError::Parquet { path: path.clone(), msg: e.to_string() };
        let mut file = AtomicFile::replace(&path).map_err(write_err)?;
        let tmp = file.written_path().to_path_buf();
        let mut all = self.opts.provenance.clone();
        all.extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        if all.contains_key(super::CHECKSUM_TAG) {
            return Err(StoreError::Input {
                path: self.dir.clone(),
                msg: format!("the tag {:?} is reserved for the batch checksum", super::CHECKSUM_TAG),
            });
        }
        let kvs: Vec<KeyValue> =
            all.into_iter().map(|(k, v)| KeyValue::new(format!("{}{k}", super::BATCH_TAG_PREFIX), v)).collect();
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).map_err(parquet_err)?))
            .set_max_row_group_row_count(Some(records.len().max(1)))
            .set_key_value_metadata((!kvs.is_empty()).then_some(kvs))
            .build();
        let mut w = ArrowWriter::try_new(Crc32Writer::new(file.writer()), self.schema.clone(), Some(props))
            .map_err(parquet_err)?;
        w.write(&batch).map_err(parquet_err)?;
        // The row group is complete once flushed; `sync` empties the writer's buffer into ours, so
        // the hash covers every byte before the page index and footer.
        w.flush().map_err(parquet_err)?;
        w.sync().map_err(|source| StoreError::Io { path: tmp, source })?;
        let (crc, covered) = (w.inner().hasher.clone().finalize(), w.inner().len);
        if covered != w.bytes_written() as u64 {
            return Err(StoreError::Parquet {
                path: path.clone(),
                msg: format!("checksummed {covered} bytes, the Parquet writer wrote {}", w.bytes_written()),
            });
        }
        w.append_key_value_metadata(KeyValue::new(
            super::CHECKSUM_KEY.to_string(),
            super::checksum_value(crc, covered),
        ));
        w.into_inner().map_err(parquet_err)?;
        file.commit(true).map_err(write_err)?;
        for r in records {
            self.account(r);
        }
        self.advance(records.len());
        Ok(path)
    }

    /// Takes batch `index` (which must be [`next_batch`](Self::next_batch)) as already written: reads
    /// the file back, checks it has this store's scales and `batch_size` records (fewer only for
    /// the last batch), and counts its records into the metadata. Returns the number of records.
    pub fn reuse_batch(&mut self, index: usize) -> Result<usize> {
        let path = self.dir.join(batch_file_name(index));
        let reader = StoreReader::open(&path)?;
        if reader.num_scales() != self.opts.num_scales {
            return Err(StoreError::Schema {
                path,
                msg: format!("has {} scales, this store {}", reader.num_scales(), self.opts.num_scales),
            });
        }
        let records = reader.records().collect::<Result<Vec<_>>>()?;
        self.check_order(index, records.len(), "reuse")?;
        for (i, r) in records.iter().enumerate() {
            self.check(r, i).map_err(|e| StoreError::Row { path: path.clone(), row: i, msg: e.to_string() })?;
        }
        for r in &records {
            self.account(r);
        }
        self.advance(records.len());
        Ok(records.len())
    }

    /// Writes the pending records (if any) as the last batch, removes batch files left past it by
    /// an earlier run, writes `metadata.json` (atomically, last) and returns its content.
    pub fn finish(mut self) -> Result<StoreMetadata> {
        if !self.pending.is_empty() {
            let records = std::mem::take(&mut self.pending);
            self.write_batch(self.next, &records)?;
        }
        for stale in existing_batches(&self.dir)?.into_iter().filter(|&i| i >= self.next) {
            let p = self.dir.join(batch_file_name(stale));
            std::fs::remove_file(&p).map_err(|source| StoreError::Io { path: p, source })?;
        }
        let meta = self.metadata();
        let mut json = serde_json::to_string_pretty(&meta)
            .map_err(|e| StoreError::Metadata { path: self.dir.join(METADATA_FILE), msg: e.to_string() })?;
        json.push('\n');
        let mut f = AtomicFile::replace(&self.dir.join(METADATA_FILE)).map_err(write_err)?;
        f.write_all(json.as_bytes()).map_err(write_err)?;
        f.commit(true).map_err(write_err)?;
        Ok(meta)
    }

    fn check_order(&self, index: usize, n: usize, what: &str) -> Result<()> {
        let bad = |msg: String| StoreError::Input { path: self.dir.clone(), msg };
        if !self.pending.is_empty() {
            return Err(bad(format!("cannot {what} batch {index}: {} pushed records are pending", self.pending.len())));
        }
        if self.closed {
            return Err(bad(format!("cannot {what} batch {index}: a short (last) batch was already written")));
        }
        if index != self.next {
            return Err(bad(format!("batches go in order: expected batch {}, got {index}", self.next)));
        }
        if n == 0 || n > self.opts.batch_size {
            return Err(bad(format!("batch {index} has {n} records; batches hold 1 to {}", self.opts.batch_size)));
        }
        Ok(())
    }

    fn check(&self, r: &TokenRecord, i: usize) -> Result<()> {
        let bad = |msg: String| StoreError::Input {
            path: self.dir.clone(),
            msg: format!("record {i} ({}): {msg}", r.file_path),
        };
        if r.scales.len() != self.opts.num_scales {
            return Err(bad(format!("{} scales, the store has {}", r.scales.len(), self.opts.num_scales)));
        }
        if !r.duration.is_finite() || r.duration < 0.0 {
            return Err(bad(format!("duration {} is not a finite non-negative number", r.duration)));
        }
        for (k, s) in r.scales.iter().enumerate() {
            let product = s.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
            if product != Some(s.tokens.len() as u64) {
                return Err(bad(format!("scale {k}: shape {:?} does not hold {} codes", s.shape, s.tokens.len())));
            }
            if s.shape.iter().any(|&d| d > i64::MAX as u64) {
                return Err(bad(format!("scale {k}: shape {:?} too large", s.shape)));
            }
            let limit = self.opts.codebook_sizes.as_ref().map_or(i32::MAX as u32 + 1, |c| c[k]);
            if let Some((pos, &t)) = s.tokens.iter().enumerate().find(|(_, &t)| t >= limit) {
                return Err(bad(format!("scale {k}: code {t} at position {pos} is not below {limit}")));
            }
        }
        Ok(())
    }

    fn account(&mut self, r: &TokenRecord) {
        self.files.push(r.file_path.clone());
        self.total_duration += r.duration;
        for (acc, s) in self.acc.iter_mut().zip(&r.scales) {
            acc.total += s.tokens.len() as u64;
            for &t in &s.tokens {
                *acc.counts.entry(t).or_insert(0) += 1;
            }
        }
    }

    fn advance(&mut self, n: usize) {
        if n < self.opts.batch_size {
            self.closed = true;
        }
        self.next += 1;
    }

    fn metadata(&self) -> StoreMetadata {
        let scales = self
            .acc
            .iter()
            .enumerate()
            .map(|(k, acc)| {
                let mut common: Vec<(u32, u64)> = acc.counts.iter().map(|(&t, &c)| (t, c)).collect();
                common.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                common.truncate(self.opts.top_k);
                ScaleMetadata {
                    scale: k,
                    total_tokens: acc.total,
                    min: acc.counts.keys().min().copied(),
                    max: acc.counts.keys().max().copied(),
                    unique: acc.counts.len() as u64,
                    most_common: common,
                    codebook_size: self.opts.codebook_sizes.as_ref().map(|c| c[k]),
                    rate_hz: self.opts.rates_hz.as_ref().map(|r| r[k]),
                    observed_rate_hz: (self.total_duration > 0.0).then(|| acc.total as f64 / self.total_duration),
                }
            })
            .collect();
        StoreMetadata {
            format: METADATA_FORMAT.into(),
            version: METADATA_VERSION,
            num_files: self.files.len() as u64,
            total_duration_s: self.total_duration,
            batch_size: self.opts.batch_size,
            batches: (0..self.next).map(batch_file_name).collect(),
            files: self.files.clone(),
            scales,
            provenance: self.opts.provenance.clone(),
        }
    }
}

/// A writer that hashes (CRC32) and counts what goes through it.
struct Crc32Writer<W> {
    inner: W,
    hasher: crc32fast::Hasher,
    len: u64,
}

impl<W> Crc32Writer<W> {
    fn new(inner: W) -> Self {
        Crc32Writer { inner, hasher: crc32fast::Hasher::new(), len: 0 }
    }
}

impl<W: Write> Write for Crc32Writer<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        let done = buf.get(..n).unwrap_or(buf);
        self.hasher.update(done);
        self.len += done.len() as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// An atomic write's error as the store reports it: naming the temporary file (creating,
/// writing, syncing) or the batch or metadata file (renaming into place).
fn write_err(e: WriteError) -> StoreError {
    StoreError::Io { path: e.path, source: e.source }
}
