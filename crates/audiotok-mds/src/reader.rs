//! [`MdsDataset`]: open a folder with `index.json`, read samples, verify shards.
//!
//! Opening checks the index (version 2, `mds` format, consistent columns) and refuses `pkl`
//! and image columns. Samples are read on demand: an uncompressed shard by seeking to the
//! sample's offsets, a compressed one by decompressing the shard (the last one is cached).
//! A folder where `streaming` has already decompressed a shard (both `.mds` and `.mds.zstd`
//! present) is read from the compressed file, which the index describes.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::codec::{Compression, HashAlgo};
use crate::encoding::Encoding;
use crate::error::{MdsError, Result};
use crate::index::{Index, ShardInfo, INDEX_BASENAME};
use crate::json::Json;
use crate::value::{decode_value, Sample};

#[derive(Debug)]
struct Shard {
    info: ShardInfo,
    encodings: Vec<Encoding>,
    compression: Option<Compression>,
    /// Global index of the shard's first sample.
    start: u64,
}

/// An MDS dataset opened for reading.
#[derive(Debug)]
pub struct MdsDataset {
    dir: PathBuf,
    index: Index,
    shards: Vec<Shard>,
    len: u64,
    cache: Mutex<Option<(usize, Arc<Vec<u8>>)>>,
}

/// What [`MdsDataset::verify`] checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VerifyReport {
    /// Shards checked.
    pub shards: u64,
    /// Samples decoded.
    pub samples: u64,
    /// Files whose hashes were compared (raw and compressed forms count separately).
    pub hashes_checked: u64,
    /// Hash algorithms listed in the index that this crate cannot compute (not checked).
    pub hashes_skipped: Vec<String>,
}

impl MdsDataset {
    /// Opens the dataset in `dir` (reads and checks `dir/index.json`).
    pub fn open(dir: impl AsRef<Path>) -> Result<MdsDataset> {
        MdsDataset::open_with_raw(dir, &[])
    }

    /// Opens the dataset in `dir` with the encoding names in `raw` registered as variable-size
    /// raw bytes ([`crate::Encoding::Raw`]), as a reader that registered custom encodings in
    /// Python would (for example `uint32` for the Qwen2-Audio packing notebook's shards).
    pub fn open_with_raw(dir: impl AsRef<Path>, raw: &[String]) -> Result<MdsDataset> {
        let dir = dir.as_ref().to_path_buf();
        let index = Index::load(&dir)?;
        let index_path = dir.join(crate::index::INDEX_BASENAME);
        let mut shards = Vec::with_capacity(index.shards.len());
        let mut start = 0u64;
        for (k, info) in index.shards.iter().enumerate() {
            let err = |reason: String| MdsError::Index {
                path: index_path.clone(),
                reason: format!("shard #{k} ({}): {reason}", info.raw_data.basename),
            };
            if info.version != 2 {
                return Err(err(format!("unsupported shard version {}", info.version)));
            }
            if info.format != "mds" {
                return Err(err(format!("unsupported shard format `{}` (only mds)", info.format)));
            }
            let n = info.column_names.len();
            if info.column_encodings.len() != n || info.column_sizes.len() != n {
                return Err(err("column_names, column_encodings and column_sizes differ in length".into()));
            }
            let mut encodings = Vec::with_capacity(n);
            for ((name, text), size) in info.column_names.iter().zip(&info.column_encodings).zip(&info.column_sizes) {
                let enc = Encoding::parse_with_raw(text, name, raw)?;
                let want = enc.fixed_size().map(|s| s as u64);
                // streaming treats a size of 0 as variable, like None.
                if *size != want && !(want.is_none() && *size == Some(0)) {
                    return Err(err(format!("column `{name}` ({text}) has size {size:?}, expected {want:?}")));
                }
                encodings.push(enc);
            }
            let compression = match &info.compression {
                Some(c) => Some(c.parse::<Compression>()?),
                None => None,
            };
            if compression.is_some() != info.zip_data.is_some() {
                return Err(err("compression and zip_data disagree".into()));
            }
            if info.samples > u64::from(u32::MAX) || info.raw_data.bytes > u64::from(u32::MAX) {
                return Err(err("larger than a shard's u32 offsets allow".into()));
            }
            for f in std::iter::once(&info.raw_data).chain(info.zip_data.as_ref()) {
                if !is_safe_relative(&f.basename) {
                    return Err(err(format!("unsafe file name `{}`", f.basename)));
                }
            }
            shards.push(Shard { info: info.clone(), encodings, compression, start });
            start = start.checked_add(info.samples).ok_or_else(|| err("sample count overflows".into()))?;
        }
        Ok(MdsDataset { dir, index, shards, len: start, cache: Mutex::new(None) })
    }

    /// The dataset folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The parsed index.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Number of samples.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the dataset has no samples.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Column names (of the first shard; `streaming` allows shards to differ).
    pub fn column_names(&self) -> &[String] {
        self.shards.first().map_or(&[], |s| &s.info.column_names)
    }

    /// (shard number, index within the shard) of global sample `i`.
    fn locate(&self, i: u64) -> Result<(usize, u64)> {
        if i >= self.len {
            return Err(MdsError::OutOfRange { index: i, len: self.len });
        }
        // The first shard whose end is past i (empty shards are skipped naturally).
        let k = self.shards.partition_point(|s| s.start + s.info.samples <= i);
        Ok((k, i - self.shards[k].start))
    }

    /// Reads and decodes sample `i`.
    pub fn get(&self, i: u64) -> Result<Sample> {
        let (k, j) = self.locate(i)?;
        let shard = &self.shards[k];
        let data = if shard.compression.is_some() {
            let whole = self.shard_bytes_cached(k)?;
            let (begin, end) = sample_range(&whole, shard, j)?;
            whole[begin..end].to_vec()
        } else {
            read_sample_raw(&self.dir, shard, j)?
        };
        decode_sample(shard, j, &data)
    }

    /// Iterates over all samples in order (each shard is read once). A shard that cannot be
    /// read yields one error and the iteration goes on with the next shard.
    pub fn iter(&self) -> Iter<'_> {
        Iter { ds: self, shard: 0, sample: 0, data: None }
    }

    fn shard_bytes_cached(&self, k: usize) -> Result<Arc<Vec<u8>>> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((ck, data)) = cache.as_ref() {
            if *ck == k {
                return Ok(Arc::clone(data));
            }
        }
        let data = Arc::new(self.shard_bytes(k)?);
        *cache = Some((k, Arc::clone(&data)));
        Ok(data)
    }

    /// The shard's uncompressed bytes, checked against the index's sizes.
    fn shard_bytes(&self, k: usize) -> Result<Vec<u8>> {
        let shard = &self.shards[k];
        let raw = &shard.info.raw_data;
        let zip_on_disk = |zip: &crate::index::FileInfo| {
            // Without the compressed file, a decompressed copy (as streaming leaves) will do.
            self.dir.join(&zip.basename).exists() || !self.dir.join(&raw.basename).exists()
        };
        match (&shard.compression, &shard.info.zip_data) {
            (Some(c), Some(zip)) if zip_on_disk(zip) => {
                let zdata = read_sized(&self.dir, &zip.basename, zip.bytes)?;
                let expected = usize::try_from(raw.bytes).unwrap_or(usize::MAX);
                c.decompress(&zdata, expected).map_err(|e| MdsError::corrupt(&zip.basename, None, format!("zstd: {e}")))
            }
            _ => {
                let data = read_sized(&self.dir, &raw.basename, raw.bytes)?;
                Ok(data)
            }
        }
    }

    /// Checks every shard: file sizes and hashes against the index, the header (sample count,
    /// monotonic offsets, the embedded config equal to the index's), and that every sample
    /// decodes exactly. Stops at the first problem, naming the shard and sample.
    ///
    /// Without hashes in the index, corruption inside a value that still decodes (a flipped bit
    /// in an integer) cannot be detected.
    pub fn verify(&self) -> Result<VerifyReport> {
        self.verify_unique_files()?;
        let mut report = VerifyReport::default();
        for (k, shard) in self.shards.iter().enumerate() {
            let info = &shard.info;
            let mut check_hashes = |data: &[u8], f: &crate::index::FileInfo| -> Result<()> {
                for (algo, want) in &f.hashes {
                    match algo.parse::<HashAlgo>() {
                        Ok(h) => {
                            let got = h.hex_digest(data);
                            if got != *want {
                                return Err(MdsError::corrupt(
                                    &f.basename,
                                    None,
                                    format!("{algo} is {got}, index says {want}"),
                                ));
                            }
                            report.hashes_checked += 1;
                        }
                        Err(_) => {
                            if !report.hashes_skipped.contains(algo) {
                                report.hashes_skipped.push(algo.clone());
                            }
                        }
                    }
                }
                Ok(())
            };
            if let Some(zip) = info.zip_data.as_ref().filter(|z| self.dir.join(&z.basename).exists()) {
                let zdata = read_sized(&self.dir, &zip.basename, zip.bytes)?;
                check_hashes(&zdata, zip)?;
            }
            let raw = self.shard_bytes(k)?;
            check_hashes(&raw, &info.raw_data)?;
            // A decompressed copy left next to the compressed file must match too.
            if info.zip_data.is_some() {
                let rpath = self.dir.join(&info.raw_data.basename);
                if rpath.is_file() {
                    let copy = std::fs::read(&rpath).map_err(|e| MdsError::io(&rpath, e))?;
                    if copy != raw {
                        return Err(MdsError::corrupt(
                            &info.raw_data.basename,
                            None,
                            "differs from the decompressed .zstd shard",
                        ));
                    }
                }
            }
            self.verify_layout(shard, &raw)?;
            for j in 0..info.samples {
                let (b, e) = sample_range(&raw, shard, j)?;
                decode_sample(shard, j, &raw[b..e])?;
                report.samples += 1;
            }
            report.shards += 1;
        }
        Ok(report)
    }

    /// No file is listed twice (one shard listed three times would be read three times).
    fn verify_unique_files(&self) -> Result<()> {
        let mut seen: std::collections::HashMap<&str, Vec<usize>> = std::collections::HashMap::new();
        let mut order = Vec::new();
        for (k, shard) in self.shards.iter().enumerate() {
            for f in std::iter::once(&shard.info.raw_data).chain(shard.info.zip_data.as_ref()) {
                let at = seen.entry(f.basename.as_str()).or_default();
                if at.is_empty() {
                    order.push(f.basename.as_str());
                }
                at.push(k);
            }
        }
        for name in order {
            if let Some(at) = seen.get(name).filter(|at| at.len() > 1) {
                let list: Vec<String> = at.iter().map(usize::to_string).collect();
                return Err(MdsError::Index {
                    path: self.dir.join(INDEX_BASENAME),
                    reason: format!("file {name} listed {} times (shards {})", at.len(), list.join(", ")),
                });
            }
        }
        Ok(())
    }

    fn verify_layout(&self, shard: &Shard, raw: &[u8]) -> Result<()> {
        let name = &shard.info.raw_data.basename;
        let count = read_u32(raw, 0).ok_or_else(|| MdsError::corrupt(name, None, "shorter than its header"))?;
        if u64::from(count) != shard.info.samples {
            return Err(MdsError::corrupt(
                name,
                None,
                format!("holds {count} samples, index says {}", shard.info.samples),
            ));
        }
        let n = count as usize;
        let header = 4 + 4 * (n + 1);
        let offsets: Vec<u32> = (0..=n)
            .map(|j| read_u32(raw, 4 + 4 * j))
            .collect::<Option<_>>()
            .ok_or_else(|| MdsError::corrupt(name, None, "offsets truncated"))?;
        let first = offsets[0] as usize;
        if first < header || first > raw.len() {
            return Err(MdsError::corrupt(name, None, format!("first sample offset {first} is outside the file")));
        }
        for j in 0..n {
            if offsets[j] > offsets[j + 1] {
                return Err(MdsError::corrupt(name, Some(j as u64), "offsets decrease"));
            }
        }
        if offsets[n] as usize != raw.len() {
            return Err(MdsError::corrupt(
                name,
                None,
                format!("last offset {} is not the file size {}", offsets[n], raw.len()),
            ));
        }
        let config = Json::parse_bytes(&raw[header..first])
            .map_err(|e| MdsError::corrupt(name, None, format!("embedded config: {e}")))?;
        let expected = shard.info.config_json();
        if config.to_python(true) != expected.to_python(true) {
            return Err(MdsError::corrupt(name, None, "embedded config differs from the index entry"));
        }
        Ok(())
    }
}

/// Iterator over a dataset's samples, from [`MdsDataset::iter`].
#[derive(Debug)]
pub struct Iter<'a> {
    ds: &'a MdsDataset,
    shard: usize,
    sample: u64,
    data: Option<Vec<u8>>,
}

impl Iterator for Iter<'_> {
    type Item = Result<Sample>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let shard = self.ds.shards.get(self.shard)?;
            if self.sample >= shard.info.samples {
                self.shard += 1;
                self.sample = 0;
                self.data = None;
                continue;
            }
            if self.data.is_none() {
                match self.ds.shard_bytes(self.shard) {
                    Ok(d) => self.data = Some(d),
                    Err(e) => {
                        self.shard += 1;
                        self.sample = 0;
                        return Some(Err(e));
                    }
                }
            }
            let j = self.sample;
            self.sample += 1;
            let whole = self.data.as_deref().unwrap_or_default();
            return Some(sample_range(whole, shard, j).and_then(|(b, e)| decode_sample(shard, j, &whole[b..e])));
        }
    }
}

/// Whether `name` is a relative path that stays inside the dataset folder.
fn is_safe_relative(name: &str) -> bool {
    let p = Path::new(name);
    !name.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)))
}

fn read_u32(data: &[u8], at: usize) -> Option<u32> {
    let b = data.get(at..at + 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// The byte range of sample `j` in the whole shard `data`.
fn sample_range(data: &[u8], shard: &Shard, j: u64) -> Result<(usize, usize)> {
    let name = &shard.info.raw_data.basename;
    let at = 4 + 4 * j as usize;
    let (begin, end) = match (read_u32(data, at), read_u32(data, at + 4)) {
        (Some(b), Some(e)) => (b as usize, e as usize),
        _ => return Err(MdsError::corrupt(name, Some(j), "offsets truncated")),
    };
    let header = 4 + 4 * (shard.info.samples as usize + 1);
    if begin < header || begin > end || end > data.len() {
        return Err(MdsError::corrupt(
            name,
            Some(j),
            format!("bad offsets {begin}..{end} (file has {} bytes)", data.len()),
        ));
    }
    Ok((begin, end))
}

/// Reads sample `j` of an uncompressed shard by seeking, as `MDSReader.get_sample_data`.
fn read_sample_raw(dir: &Path, shard: &Shard, j: u64) -> Result<Vec<u8>> {
    let name = &shard.info.raw_data.basename;
    let path = dir.join(name);
    let io = |e| MdsError::io(&path, e);
    let mut f = File::open(&path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    let mut pair = [0u8; 8];
    f.seek(SeekFrom::Start(4 + 4 * j)).map_err(io)?;
    f.read_exact(&mut pair).map_err(|_| MdsError::corrupt(name, Some(j), "offsets truncated"))?;
    let begin = u64::from(u32::from_le_bytes([pair[0], pair[1], pair[2], pair[3]]));
    let end = u64::from(u32::from_le_bytes([pair[4], pair[5], pair[6], pair[7]]));
    let header = 4 + 4 * (shard.info.samples + 1);
    if begin < header || begin > end || end > len {
        return Err(MdsError::corrupt(name, Some(j), format!("bad offsets {begin}..{end} (file has {len} bytes)")));
    }
    let mut data = vec![0u8; (end - begin) as usize];
    f.seek(SeekFrom::Start(begin)).map_err(io)?;
    f.read_exact(&mut data).map_err(io)?;
    Ok(data)
}

/// Decodes sample `j` of `shard` from its bytes, as `MDSReader.decode_sample` (but strictly:
/// sizes must cover the sample exactly).
fn decode_sample(shard: &Shard, j: u64, data: &[u8]) -> Result<Sample> {
    let name = &shard.info.raw_data.basename;
    let mut sizes = Vec::with_capacity(shard.encodings.len());
    let mut idx = 0usize;
    for (enc, size) in shard.encodings.iter().zip(&shard.info.column_sizes) {
        match size {
            Some(s) if *s > 0 => sizes.push(*s as usize),
            _ => {
                let s = read_u32(data, idx)
                    .ok_or_else(|| MdsError::corrupt(name, Some(j), format!("truncated size of a {enc} column")))?;
                sizes.push(s as usize);
                idx += 4;
            }
        }
    }
    let mut sample = Sample::new();
    for ((col, enc), size) in shard.info.column_names.iter().zip(&shard.encodings).zip(sizes) {
        let end = idx
            .checked_add(size)
            .filter(|e| *e <= data.len())
            .ok_or_else(|| MdsError::corrupt(name, Some(j), format!("column `{col}` runs past the sample")))?;
        let value = decode_value(enc, &data[idx..end])
            .map_err(|r| MdsError::corrupt(name, Some(j), format!("column `{col}` ({enc}): {r}")))?;
        sample.insert(col.clone(), value);
        idx = end;
    }
    if idx != data.len() {
        return Err(MdsError::corrupt(name, Some(j), format!("{} trailing bytes after the columns", data.len() - idx)));
    }
    Ok(sample)
}

/// Reads `dir/basename`, checking that it holds the `bytes` the index states.
fn read_sized(dir: &Path, basename: &str, bytes: u64) -> Result<Vec<u8>> {
    let path = dir.join(basename);
    let data = std::fs::read(&path).map_err(|e| MdsError::io(&path, e))?;
    if data.len() as u64 != bytes {
        return Err(MdsError::corrupt(basename, None, format!("file has {} bytes, index says {bytes}", data.len())));
    }
    Ok(data)
}
