//! The store reader: records from a store directory or one Parquet file (ours or pyarrow's).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Schema};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ProjectionMask;
use parquet::basic::Encoding;
use parquet::basic::PageType;
use parquet::column::page::PageReader;
use parquet::file::metadata::ParquetMetaData;
use parquet::file::serialized_reader::SerializedPageReader;

use super::{existing_batches, Result, ScaleTokens, StoreError, TokenRecord};

/// Rows decoded per Arrow batch while reading.
const READ_BATCH_ROWS: usize = 256;

/// Reads token records from a store directory or a single Parquet file (see the
/// [module docs](super)).
#[derive(Debug, Clone)]
pub struct StoreReader {
    files: Vec<PathBuf>,
    num_scales: usize,
}

impl StoreReader {
    /// Opens a store directory (its `tokens_batch_*.parquet` in index order or, when it has none,
    /// every `*.parquet` in name order) or one Parquet file, and reads the first file's schema.
    pub fn open(path: &Path) -> Result<Self> {
        let files = if path.is_dir() {
            let batches = existing_batches(path)?;
            if batches.is_empty() {
                let entries =
                    std::fs::read_dir(path).map_err(|source| StoreError::Io { path: path.to_path_buf(), source })?;
                let mut v = Vec::new();
                for e in entries {
                    let e = e.map_err(|source| StoreError::Io { path: path.to_path_buf(), source })?;
                    let p = e.path();
                    if p.is_file() && p.extension().is_some_and(|x| x == "parquet") {
                        v.push(p);
                    }
                }
                v.sort();
                v
            } else {
                batches.into_iter().map(|i| path.join(super::batch_file_name(i))).collect()
            }
        } else {
            vec![path.to_path_buf()]
        };
        let Some(first) = files.first() else {
            return Err(StoreError::Input {
                path: path.to_path_buf(),
                msg: "no Parquet files in this directory".into(),
            });
        };
        let builder = open_builder(first, false)?;
        let num_scales = Columns::resolve(first, builder.schema())?.num_scales();
        Ok(StoreReader { files, num_scales })
    }

    /// The Parquet files, in reading order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Number of scales (`tokens_scale_0 ..`) in the first file; every file must have as many.
    pub fn num_scales(&self) -> usize {
        self.num_scales
    }

    /// Iterates the records of every file in order. After the first error the iterator ends.
    pub fn records(&self) -> RecordIter {
        RecordIter {
            files: self.files.clone().into(),
            num_scales: self.num_scales,
            current: None,
            buffer: VecDeque::new(),
            failed: false,
        }
    }
}

impl StoreReader {
    /// Iterates the records of every file in order as Arrow [`RecordBatch`]es of up to `rows`
    /// records (at least 1) in the store's own schema ([`super::arrow_schema`]), whatever types
    /// the files use: each record is read and checked as [`StoreReader::records`] reads it. After
    /// the first error the iterator ends.
    pub fn batches(&self, rows: usize) -> BatchIter {
        BatchIter {
            records: self.records(),
            schema: super::arrow_schema(self.num_scales),
            rows: rows.max(1),
            last: self.files.last().cloned().unwrap_or_default(),
        }
    }
}

/// Iterator over the records of a [`StoreReader`] as Arrow batches ([`StoreReader::batches`]).
pub struct BatchIter {
    records: RecordIter,
    schema: arrow_schema::SchemaRef,
    rows: usize,
    /// The last file (named in an error once every file was read).
    last: PathBuf,
}

impl BatchIter {
    /// The schema of every batch.
    pub fn schema(&self) -> arrow_schema::SchemaRef {
        self.schema.clone()
    }
}

impl Iterator for BatchIter {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Result<RecordBatch>> {
        let mut chunk = Vec::with_capacity(self.rows.min(READ_BATCH_ROWS));
        for r in self.records.by_ref() {
            match r {
                Ok(r) => chunk.push(r),
                Err(e) => return Some(Err(e)),
            }
            if chunk.len() == self.rows {
                break;
            }
        }
        if chunk.is_empty() {
            return None;
        }
        let path = self.records.current.as_ref().map_or_else(|| self.last.clone(), |c| c.path.clone());
        Some(super::records_to_batch(&self.schema, &chunk).map_err(|e| StoreError::Input { path, msg: e.to_string() }))
    }
}

/// Iterator over the records of a [`StoreReader`].
pub struct RecordIter {
    files: VecDeque<PathBuf>,
    num_scales: usize,
    current: Option<Current>,
    buffer: VecDeque<TokenRecord>,
    failed: bool,
}

struct Current {
    path: PathBuf,
    reader: ParquetRecordBatchReader,
    /// Rows of this file already decoded (row numbers in errors are per file).
    row: usize,
}

impl Iterator for RecordIter {
    type Item = Result<TokenRecord>;

    fn next(&mut self) -> Option<Result<TokenRecord>> {
        loop {
            if self.failed {
                return None;
            }
            if let Some(r) = self.buffer.pop_front() {
                return Some(Ok(r));
            }
            let step = self.fill();
            match step {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

impl RecordIter {
    /// Decodes the next Arrow batch into the buffer; `false` when every file is done.
    fn fill(&mut self) -> Result<bool> {
        loop {
            if let Some(cur) = &mut self.current {
                match cur.reader.next() {
                    Some(Ok(batch)) => {
                        let first_row = cur.row;
                        cur.row += batch.num_rows();
                        decode_batch(&cur.path, &batch, first_row, self.num_scales, &mut self.buffer)?;
                        return Ok(true);
                    }
                    Some(Err(e)) => {
                        return Err(StoreError::Parquet { path: cur.path.clone(), msg: e.to_string() });
                    }
                    None => self.current = None,
                }
            }
            let Some(path) = self.files.pop_front() else {
                return Ok(false);
            };
            let builder = open_builder(&path, true)?;
            let cols = Columns::resolve(&path, builder.schema())?;
            if cols.num_scales() != self.num_scales {
                return Err(StoreError::Schema {
                    path,
                    msg: format!("has {} scales, the first file of this store {}", cols.num_scales(), self.num_scales),
                });
            }
            let mask = ProjectionMask::roots(builder.parquet_schema(), cols.indices());
            let reader = builder
                .with_projection(mask)
                .with_batch_size(READ_BATCH_ROWS)
                .build()
                .map_err(|e| StoreError::Parquet { path: path.clone(), msg: e.to_string() })?;
            self.current = Some(Current { path, reader, row: 0 });
        }
    }
}

/// Opens one Parquet file: its footer decoded and validated before any page is read.
///
/// The Arrow schema a writer may store in the footer (`ARROW:schema`, an IPC flatbuffer) is not
/// decoded: arrow-ipc panics on some corrupt ones, and this reader needs only the Parquet schema
/// (columns are found by name and their types checked by [`Columns::resolve`]). The column chunk
/// layout is checked by [`check_layout`], where the Parquet crate would assert or misread.
///
/// With `verify`, the checksum our writer records ([`super::CHECKSUM_KEY`]) is verified when the
/// footer has one ([`verify_checksum`]); page CRCs (pyarrow's `write_page_checksum`) are verified
/// by the Parquet crate as each page is read. Only the schema is needed without `verify`.
pub(super) fn open_builder(path: &Path, verify: bool) -> Result<ParquetRecordBatchReaderBuilder<File>> {
    let file = File::open(path).map_err(|source| StoreError::Io { path: path.to_path_buf(), source })?;
    let len = file.metadata().map_err(|source| StoreError::Io { path: path.to_path_buf(), source })?.len();
    let options = ArrowReaderOptions::new().with_skip_arrow_metadata(true);
    let meta = ArrowReaderMetadata::load(&file, options).map_err(|e| StoreError::Parquet {
        path: path.to_path_buf(),
        msg: format!("not a readable Parquet file: {e}"),
    })?;
    check_layout(meta.metadata(), len).map_err(|msg| StoreError::Parquet {
        path: path.to_path_buf(),
        msg: format!("corrupt Parquet footer: {msg}"),
    })?;
    if verify && !verify_checksum(path, &file, meta.metadata(), len)? {
        check_pages(path, &file, meta.metadata())?;
    }
    Ok(ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta))
}

/// Verifies the footer's [`super::CHECKSUM_KEY`] entry, when it has one: the CRC32 of bytes
/// `0..end`, where `end` must lie before the footer and cover every column chunk (so no page is
/// read unchecked whatever the footer says). Reads those bytes once. `Ok(false)`: the file has no
/// such entry (pyarrow's, older stores).
fn verify_checksum(path: &Path, file: &File, meta: &ParquetMetaData, file_len: u64) -> Result<bool> {
    let bad = |msg: String| StoreError::Checksum { path: path.to_path_buf(), msg };
    let kvs = meta.file_metadata().key_value_metadata();
    let Some(entry) = kvs.into_iter().flatten().find(|kv| kv.key == super::CHECKSUM_KEY) else {
        return Ok(false);
    };
    let value = entry.value.as_deref().unwrap_or("");
    let Some((want, end)) = super::parse_checksum_value(value) else {
        return Err(bad(format!("unreadable checksum entry {:?} = {value:?} in the footer", super::CHECKSUM_KEY)));
    };
    let chunks_end = meta
        .row_groups()
        .iter()
        .flat_map(|rg| rg.columns())
        .map(|c| {
            // Not `byte_range`, which asserts (check_layout has refused negative values already).
            let start = c.dictionary_page_offset().unwrap_or(c.data_page_offset());
            u64::try_from(start).unwrap_or(0).saturating_add(u64::try_from(c.compressed_size()).unwrap_or(0))
        })
        .max()
        .unwrap_or(4);
    if end > file_len.saturating_sub(8) || end < chunks_end {
        return Err(bad(format!(
            "the checksum covers bytes 0..{end}, but the column chunks end at {chunks_end} and the file \
             holds {file_len} bytes (damaged footer)"
        )));
    }
    let io = |source| StoreError::Io { path: path.to_path_buf(), source };
    let mut reader = file;
    reader.seek(SeekFrom::Start(0)).map_err(io)?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut left = end;
    while left > 0 {
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let chunk = buf.get_mut(..n).unwrap_or_default();
        reader.read_exact(chunk).map_err(io)?;
        hasher.update(chunk);
        left -= n as u64;
    }
    let got = hasher.finalize();
    if got != want {
        return Err(bad(format!(
            "checksum mismatch: the CRC32 of bytes 0..{end} is {got:08x}, the footer records {want:08x} \
             (the file is damaged)"
        )));
    }
    Ok(true)
}

/// For a file without our checksum: walks every column chunk's pages (headers checked, pages
/// decompressed, page CRCs verified when present) and checks that each page with a body holds
/// values and that the data pages add up to the chunk's value count. A page whose header claims 0
/// values over a non-empty body otherwise reaches a division by zero in the Parquet crate's string
/// decoder.
fn check_pages(path: &Path, file: &File, meta: &ParquetMetaData) -> Result<()> {
    let bad =
        |msg: String| StoreError::Parquet { path: path.to_path_buf(), msg: format!("corrupt Parquet page: {msg}") };
    let io = |source| StoreError::Io { path: path.to_path_buf(), source };
    let shared = Arc::new(file.try_clone().map_err(io)?);
    for (g, rg) in meta.row_groups().iter().enumerate() {
        let rows = usize::try_from(rg.num_rows()).unwrap_or(0);
        for (c, col) in rg.columns().iter().enumerate() {
            let at = || format!("row group {g}, column {c} ({})", col.column_path());
            let mut pages = SerializedPageReader::new(Arc::clone(&shared), col, rows, None)
                .map_err(|e| bad(format!("{}: {e}", at())))?;
            let mut values = 0u64;
            let mut index = 0usize;
            while let Some(page) = pages.get_next_page().map_err(|e| bad(format!("{}: {e}", at())))? {
                let dictionary = page.page_type() == PageType::DICTIONARY_PAGE;
                if page.num_values() == 0 && !page.buffer().is_empty() {
                    let kind = if dictionary { "dictionary" } else { "data" };
                    return Err(bad(format!("{}: {kind} page {index} claims 0 values", at())));
                }
                if !dictionary {
                    values += u64::from(page.num_values());
                }
                index += 1;
            }
            if i64::try_from(values).ok() != Some(col.num_values()) {
                return Err(bad(format!(
                    "{}: the pages hold {values} values, the footer says {}",
                    at(),
                    col.num_values()
                )));
            }
        }
    }
    Ok(())
}

/// Checks that every column chunk the footer describes lies inside the file (between the leading
/// magic and the footer), with its dictionary page first when it lists a dictionary encoding, and
/// that row and value counts are not negative. A flipped byte in the footer otherwise reaches
/// asserts and `expect`s of the Parquet crate (negative offsets, a dictionary page skipped).
fn check_layout(meta: &ParquetMetaData, file_len: u64) -> std::result::Result<(), String> {
    let end = file_len.saturating_sub(8);
    for (g, rg) in meta.row_groups().iter().enumerate() {
        if rg.num_rows() < 0 {
            return Err(format!("row group {g} has {} rows", rg.num_rows()));
        }
        for (c, col) in rg.columns().iter().enumerate() {
            let at = || format!("row group {g}, column {c} ({})", col.column_path());
            let data = col.data_page_offset();
            let dict = col.dictionary_page_offset();
            let start = dict.unwrap_or(data);
            let size = col.compressed_size();
            if start < 4 || size < 0 || col.uncompressed_size() < 0 || col.num_values() < 0 {
                return Err(format!(
                    "{}: offset {start}, size {size}, uncompressed size {}, {} values",
                    at(),
                    col.uncompressed_size(),
                    col.num_values()
                ));
            }
            if (start as u64).checked_add(size as u64).is_none_or(|e| e > end) || data as u64 >= end {
                return Err(format!(
                    "{}: bytes {start}..{} lie outside the file's data",
                    at(),
                    start as i128 + size as i128
                ));
            }
            if dict.is_some_and(|d| d >= data) {
                return Err(format!("{}: dictionary page at {start} is not before the data pages at {data}", at()));
            }
            let dictionary_encoded =
                col.encodings().any(|e| matches!(e, Encoding::RLE_DICTIONARY | Encoding::PLAIN_DICTIONARY));
            if dictionary_encoded && dict.is_none() {
                return Err(format!("{}: dictionary-encoded but no dictionary page offset", at()));
            }
        }
    }
    Ok(())
}

/// Root column indices of our columns in one file, types checked.
struct Columns {
    file_path: usize,
    duration: usize,
    /// Per scale: tokens, n_tokens, shape.
    scales: Vec<[usize; 3]>,
}

impl Columns {
    fn resolve(path: &Path, schema: &Schema) -> Result<Self> {
        let err = |msg: String| StoreError::Schema { path: path.to_path_buf(), msg };
        let find = |name: &str, ok: fn(&DataType) -> bool, want: &str| -> Result<usize> {
            let (i, f) = schema.column_with_name(name).ok_or_else(|| err(format!("missing column {name:?}")))?;
            if !ok(f.data_type()) {
                return Err(err(format!("column {name:?} has type {}, expected {want}", f.data_type())));
            }
            Ok(i)
        };
        let file_path = find("file_path", is_string, "string")?;
        let duration = find("duration", |t| matches!(t, DataType::Float64 | DataType::Float32), "float64")?;
        let mut ks: Vec<usize> = schema
            .fields()
            .iter()
            .filter_map(|f| f.name().strip_prefix("tokens_scale_").and_then(|d| d.parse::<usize>().ok()))
            .collect();
        ks.sort_unstable();
        if ks.is_empty() {
            return Err(err("missing column \"tokens_scale_0\" (no tokens_scale_k column at all)".into()));
        }
        if let Some(missing) = (0..ks.len()).find(|&k| ks[k] != k) {
            return Err(err(format!("missing column \"tokens_scale_{missing}\" (scales must be numbered 0, 1, ...)")));
        }
        let mut scales = Vec::with_capacity(ks.len());
        for k in 0..ks.len() {
            scales.push([
                find(&format!("tokens_scale_{k}"), is_int_list, "list<int32>")?,
                find(&format!("n_tokens_scale_{k}"), is_int, "int64")?,
                find(&format!("shape_scale_{k}"), is_int_list, "list<int64>")?,
            ]);
        }
        Ok(Columns { file_path, duration, scales })
    }

    fn num_scales(&self) -> usize {
        self.scales.len()
    }

    fn indices(&self) -> Vec<usize> {
        let mut v = vec![self.file_path, self.duration];
        v.extend(self.scales.iter().flatten());
        v
    }
}

fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

fn is_int(t: &DataType) -> bool {
    t.is_integer()
}

fn is_int_list(t: &DataType) -> bool {
    matches!(t, DataType::List(f) | DataType::LargeList(f) if f.data_type().is_integer())
}

/// Decodes one Arrow batch (columns already type-checked by [`Columns::resolve`]).
fn decode_batch(
    path: &Path,
    batch: &RecordBatch,
    first_row: usize,
    num_scales: usize,
    out: &mut VecDeque<TokenRecord>,
) -> Result<()> {
    let row_err = |i: usize, msg: String| StoreError::Row { path: path.to_path_buf(), row: first_row + i, msg };
    let col = |name: &str| -> Result<&ArrayRef> {
        batch
            .column_by_name(name)
            .ok_or_else(|| StoreError::Schema { path: path.to_path_buf(), msg: format!("missing column {name:?}") })
    };
    let n = batch.num_rows();
    let paths = strings(col("file_path")?);
    let durations = floats(col("duration")?);
    let mut scales = Vec::with_capacity(num_scales);
    for k in 0..num_scales {
        let tokens = IntList::new(col(&format!("tokens_scale_{k}"))?);
        let counts = col(&format!("n_tokens_scale_{k}"))?;
        let counts = (counts.clone(), ints(counts));
        let shapes = IntList::new(col(&format!("shape_scale_{k}"))?);
        scales.push((tokens, counts, shapes));
    }
    for i in 0..n {
        let file_path = paths[i].clone().ok_or_else(|| row_err(i, "file_path is null".into()))?;
        let duration = durations[i].ok_or_else(|| row_err(i, "duration is null".into()))?;
        if !duration.is_finite() || duration < 0.0 {
            return Err(row_err(i, format!("duration {duration} is not a finite non-negative number")));
        }
        let mut rec = TokenRecord { file_path, duration, scales: Vec::with_capacity(num_scales) };
        for (k, (tokens, (count_arr, counts), shapes)) in scales.iter().enumerate() {
            let codes = tokens.row(i).ok_or_else(|| row_err(i, format!("tokens_scale_{k} is null")))?;
            if let Some(p) = tokens.first_null(i) {
                return Err(row_err(i, format!("tokens_scale_{k}: null code at position {p}")));
            }
            let mut v = Vec::with_capacity(codes.len());
            for (p, &t) in codes.iter().enumerate() {
                let t = u32::try_from(t)
                    .map_err(|_| row_err(i, format!("tokens_scale_{k}: code {t} at position {p} is not a valid id")))?;
                v.push(t);
            }
            if count_arr.is_null(i) {
                return Err(row_err(i, format!("n_tokens_scale_{k} is null")));
            }
            if counts[i] != v.len() as i64 {
                return Err(row_err(
                    i,
                    format!("n_tokens_scale_{k} is {} but tokens_scale_{k} holds {} codes", counts[i], v.len()),
                ));
            }
            let dims = shapes.row(i).ok_or_else(|| row_err(i, format!("shape_scale_{k} is null")))?;
            if shapes.first_null(i).is_some() || dims.iter().any(|&d| d < 0) {
                return Err(row_err(i, format!("shape_scale_{k} {dims:?} has a null or negative dimension")));
            }
            let shape: Vec<u64> = dims.iter().map(|&d| d as u64).collect();
            if shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d)) != Some(v.len() as u64) {
                return Err(row_err(i, format!("shape_scale_{k} {shape:?} does not hold {} codes", v.len())));
            }
            rec.scales.push(ScaleTokens { shape, tokens: v });
        }
        out.push_back(rec);
    }
    Ok(())
}

fn strings(a: &ArrayRef) -> Vec<Option<String>> {
    match a.data_type() {
        DataType::Utf8 => a.as_string::<i32>().iter().map(|s| s.map(str::to_owned)).collect(),
        DataType::LargeUtf8 => a.as_string::<i64>().iter().map(|s| s.map(str::to_owned)).collect(),
        _ => a.as_string_view().iter().map(|s| s.map(str::to_owned)).collect(),
    }
}

fn floats(a: &ArrayRef) -> Vec<Option<f64>> {
    match a.data_type() {
        DataType::Float32 => a.as_primitive::<Float32Type>().iter().map(|x| x.map(f64::from)).collect(),
        _ => a.as_primitive::<Float64Type>().iter().collect(),
    }
}

/// The values of an integer array as `i64` (nulls read as 0: check validity separately; `u64` above
/// `i64::MAX` reads as `i64::MAX`).
fn ints(a: &dyn Array) -> Vec<i64> {
    fn conv<T: arrow_array::ArrowPrimitiveType>(a: &dyn Array, f: impl Fn(T::Native) -> i64) -> Vec<i64> {
        a.as_primitive::<T>().values().iter().map(|&x| f(x)).collect()
    }
    match a.data_type() {
        DataType::Int8 => conv::<Int8Type>(a, i64::from),
        DataType::Int16 => conv::<Int16Type>(a, i64::from),
        DataType::Int32 => conv::<Int32Type>(a, i64::from),
        DataType::Int64 => conv::<Int64Type>(a, |x| x),
        DataType::UInt8 => conv::<UInt8Type>(a, i64::from),
        DataType::UInt16 => conv::<UInt16Type>(a, i64::from),
        DataType::UInt32 => conv::<UInt32Type>(a, i64::from),
        _ => conv::<UInt64Type>(a, |x| i64::try_from(x).unwrap_or(i64::MAX)),
    }
}

/// A `list<int>` or `large_list<int>` column: offsets and the child values as `i64`.
struct IntList {
    array: ArrayRef,
    offsets: Vec<usize>,
    values: Vec<i64>,
    child: ArrayRef,
}

impl IntList {
    fn new(a: &ArrayRef) -> Self {
        let (offsets, child): (Vec<usize>, ArrayRef) = match a.data_type() {
            DataType::LargeList(_) => {
                let l = a.as_list::<i64>();
                (l.value_offsets().iter().map(|&o| o as usize).collect(), l.values().clone())
            }
            _ => {
                let l = a.as_list::<i32>();
                (l.value_offsets().iter().map(|&o| o as usize).collect(), l.values().clone())
            }
        };
        let values = ints(child.as_ref());
        IntList { array: a.clone(), offsets, values, child }
    }

    /// Row `i`'s values, `None` when the row is null.
    fn row(&self, i: usize) -> Option<&[i64]> {
        if self.array.is_null(i) {
            return None;
        }
        Some(&self.values[self.offsets[i]..self.offsets[i + 1]])
    }

    /// Position within row `i` of its first null element.
    fn first_null(&self, i: usize) -> Option<usize> {
        if self.child.null_count() == 0 {
            return None;
        }
        (self.offsets[i]..self.offsets[i + 1]).find(|&j| self.child.is_null(j)).map(|j| j - self.offsets[i])
    }
}
