//! HF datasets tables: Parquet shards (this module) and the column logic `save_to_disk`'s Arrow
//! files share with them ([`arrow`](crate::arrow)).
//!
//! datasets' `Audio` feature stores a struct `{bytes: binary, path: string}`; the schema metadata
//! key `huggingface` names the column (`{"info": {"features": {"audio": {"_type": "Audio"}}}}`).
//! Listing a shard reads every column but the audio bytes (Parquet leaves are read one by one, so
//! the bytes are never touched), keeping per row the audio's `path` and the other scalar columns
//! as [`Input::meta`]. A record's bytes are fetched when it is decoded: the thread that decodes it
//! reads its row group's bytes column once and keeps it for the next rows of that group.

use std::cell::RefCell;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt32Type, UInt64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Schema};
use audiotok_core::{Fetch, Input, Origin};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use serde_json::{Map, Value};

use crate::{audio_ext, record_id, record_rel, SourceOptions};

/// Which column holds the audio, and how.
#[derive(Debug, Clone)]
pub(crate) struct AudioColumn {
    /// Its name.
    pub name: String,
    /// A struct with `bytes` (and usually `path`); else a binary column of its own.
    pub is_struct: bool,
}

fn is_binary(t: &DataType) -> bool {
    matches!(t, DataType::Binary | DataType::LargeBinary | DataType::BinaryView)
}

/// The audio column of `schema`: `opts.audio_column`, else the one datasets' metadata types
/// `Audio`, else the first struct holding a binary `bytes`.
pub(crate) fn audio_column(schema: &Schema, opts: &SourceOptions) -> Result<AudioColumn, String> {
    let shape = |i: usize| -> Option<AudioColumn> {
        let f = schema.fields().get(i)?;
        match f.data_type() {
            DataType::Struct(children) if children.iter().any(|c| c.name() == "bytes" && is_binary(c.data_type())) => {
                Some(AudioColumn { name: f.name().clone(), is_struct: true })
            }
            t if is_binary(t) => Some(AudioColumn { name: f.name().clone(), is_struct: false }),
            _ => None,
        }
    };
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    if let Some(want) = &opts.audio_column {
        let i = schema.index_of(want).map_err(|_| format!("no column {want:?} (columns: {})", names.join(", ")))?;
        return shape(i)
            .ok_or_else(|| format!("column {want:?} holds no audio (a struct of bytes and path, or binary)"));
    }
    let typed =
        schema.metadata().get("huggingface").and_then(|m| serde_json::from_str::<Value>(m).ok()).and_then(|v| {
            let feats = v.get("info")?.get("features")?.as_object()?.clone();
            feats.into_iter().find(|(_, f)| f.get("_type").and_then(Value::as_str) == Some("Audio")).map(|(k, _)| k)
        });
    if let Some(name) = typed {
        if let Some(c) = schema.index_of(&name).ok().and_then(shape) {
            return Ok(c);
        }
    }
    (0..schema.fields().len()).filter_map(shape).find(|c| c.is_struct).ok_or_else(|| {
        format!(
            "no audio column (a struct of bytes and path; columns: {}); name one with --audio-column",
            names.join(", ")
        )
    })
}

/// A JSON value for a scalar cell (strings, numbers, booleans; null); `None` for other types.
fn cell_json(a: &ArrayRef, row: usize) -> Option<Value> {
    if a.is_null(row) {
        return Some(Value::Null);
    }
    Some(match a.data_type() {
        DataType::Utf8 => Value::from(a.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => Value::from(a.as_string::<i64>().value(row)),
        DataType::Utf8View => Value::from(a.as_string_view().value(row)),
        DataType::Boolean => Value::from(a.as_boolean().value(row)),
        DataType::Int8 => Value::from(a.as_primitive::<Int8Type>().value(row)),
        DataType::Int16 => Value::from(a.as_primitive::<Int16Type>().value(row)),
        DataType::Int32 => Value::from(a.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => Value::from(a.as_primitive::<Int64Type>().value(row)),
        DataType::UInt32 => Value::from(a.as_primitive::<UInt32Type>().value(row)),
        DataType::UInt64 => Value::from(a.as_primitive::<UInt64Type>().value(row)),
        DataType::Float32 => Value::from(f64::from(a.as_primitive::<Float32Type>().value(row))),
        DataType::Float64 => Value::from(a.as_primitive::<Float64Type>().value(row)),
        _ => return None,
    })
}

/// The audio `path` of `row` in the audio column `a` (a struct), if it has one.
fn audio_path(a: &ArrayRef, row: usize) -> Option<String> {
    let s = a.as_struct_opt()?;
    if s.is_null(row) {
        return None;
    }
    let p = s.column_by_name("path")?;
    match cell_json(p, row)? {
        Value::String(v) => Some(v),
        _ => None,
    }
}

/// The audio bytes of `row` in the audio column `a`: `Ok(None)` when null.
pub(crate) fn audio_bytes(a: &ArrayRef, row: usize) -> Result<Option<Vec<u8>>, String> {
    let col = match a.as_struct_opt() {
        Some(s) => {
            if s.is_null(row) {
                return Ok(None);
            }
            s.column_by_name("bytes").ok_or("the audio struct has no bytes field")?.clone()
        }
        None => a.clone(),
    };
    if col.is_null(row) {
        return Ok(None);
    }
    Ok(Some(match col.data_type() {
        DataType::Binary => col.as_binary::<i32>().value(row).to_vec(),
        DataType::LargeBinary => col.as_binary::<i64>().value(row).to_vec(),
        DataType::BinaryView => col.as_binary_view().value(row).to_vec(),
        t => return Err(format!("the audio bytes are {t}, not binary")),
    }))
}

/// Where a row's bytes are, for [`TableCell`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Locator {
    /// Parquet: row group, row in it.
    RowGroup(usize, usize),
    /// Arrow IPC stream: batch, row in it.
    Batch(usize, usize),
}

/// One row's audio of a Parquet or Arrow table, fetched on demand.
#[derive(Debug)]
pub(crate) struct TableCell {
    pub file: Arc<Path>,
    pub id: String,
    pub at: Locator,
    pub column: Arc<AudioColumn>,
    /// The audio struct's `path`, read when the bytes are null (relative to the table's folder).
    pub fallback: Option<String>,
}

impl Fetch for TableCell {
    fn fetch(&self) -> Result<Vec<u8>, String> {
        let bytes = match self.at {
            Locator::RowGroup(rg, row) => parquet_cell(&self.file, &self.column, rg, row),
            Locator::Batch(b, row) => crate::arrow::arrow_cell(&self.file, &self.column, b, row),
        }
        .map_err(|e| format!("{}: {e}", self.id))?;
        if let Some(b) = bytes {
            return Ok(b);
        }
        let Some(p) = &self.fallback else {
            return Err(format!("{}: the audio has neither bytes nor a path", self.id));
        };
        let file = self.file.parent().unwrap_or(Path::new(".")).join(p);
        std::fs::read(&file).map_err(|e| format!("{}: no bytes, and its path {}: {e}", self.id, file.display()))
    }
}

/// The bytes column of one row group, kept by the thread that read it.
struct GroupCache {
    file: Arc<Path>,
    group: usize,
    column: String,
    cells: Vec<Option<Vec<u8>>>,
}

thread_local! {
    static GROUP: RefCell<Option<GroupCache>> = const { RefCell::new(None) };
}

fn parquet_cell(file: &Arc<Path>, col: &AudioColumn, rg: usize, row: usize) -> Result<Option<Vec<u8>>, String> {
    GROUP.with(|cache| {
        let mut cache = cache.borrow_mut();
        let hit = cache
            .as_ref()
            .is_some_and(|c| c.group == rg && c.column == col.name && (Arc::ptr_eq(&c.file, file) || c.file == *file));
        if !hit {
            *cache = None;
            let cells = read_group(file, col, rg)?;
            *cache = Some(GroupCache { file: file.clone(), group: rg, column: col.name.clone(), cells });
        }
        let c = cache.as_ref().ok_or("row group cache")?;
        c.cells.get(row).cloned().ok_or_else(|| format!("row {row} is not in row group {rg}"))
    })
}

/// The audio bytes of every row of row group `rg` (only the bytes leaf is read).
fn read_group(file: &Path, col: &AudioColumn, rg: usize) -> Result<Vec<Option<Vec<u8>>>, String> {
    let f = File::open(file).map_err(|e| format!("opening {}: {e}", file.display()))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| e.to_string())?;
    let leaves: Vec<usize> = builder
        .parquet_schema()
        .columns()
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            let parts = c.path().parts();
            parts.first() == Some(&col.name) && (!col.is_struct || parts.get(1).map(String::as_str) == Some("bytes"))
        })
        .map(|(i, _)| i)
        .collect();
    let mask = ProjectionMask::leaves(builder.parquet_schema(), leaves);
    let reader = builder.with_row_groups(vec![rg]).with_projection(mask).build().map_err(|e| e.to_string())?;
    let mut cells = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| format!("row group {rg}: {e}"))?;
        let a = batch.column_by_name(&col.name).ok_or("the audio column is gone")?;
        for r in 0..batch.num_rows() {
            cells.push(audio_bytes(a, r)?);
        }
    }
    Ok(cells)
}

/// What a row of a table lists: everything but the audio bytes.
pub(crate) fn row_meta(batch: &RecordBatch, col: &AudioColumn, row: usize) -> (Option<String>, String) {
    let mut meta = Map::new();
    let mut path = None;
    for (f, a) in batch.schema().fields().iter().zip(batch.columns()) {
        if f.name() == &col.name {
            path = audio_path(a, row);
            if let Some(p) = &path {
                meta.insert("audio_path".into(), Value::from(p.as_str()));
            }
            continue;
        }
        if let Some(v) = cell_json(a, row) {
            meta.insert(f.name().clone(), v);
        }
    }
    (path, Value::Object(meta).to_string())
}

/// A record of row `row` (counted over the whole table) of `file`.
pub(crate) fn table_input(
    file: &Arc<Path>,
    col: &Arc<AudioColumn>,
    at: Locator,
    row: usize,
    path: Option<String>,
    meta: String,
) -> Input {
    let id = record_id(file, row);
    let ext = path.as_deref().and_then(audio_ext);
    let rel = record_rel(file, &row.to_string(), ext.as_deref());
    let cell = TableCell { file: file.clone(), id: id.display().to_string(), at, column: col.clone(), fallback: path };
    Input { origin: Origin::Bytes(Arc::new(cell)), meta: Some(meta.into()), ..Input::found(id, rel) }
}

/// Lists the rows of the Parquet shard `path` into `out`.
pub(crate) fn parquet_records(path: &Path, opts: &SourceOptions, out: &mut Vec<Input>) {
    if let Err(reason) = list_parquet(path, opts, out) {
        let rel = record_rel(path, "_", None);
        out.push(Input::failed(path.to_path_buf(), rel, format!("{}: {reason}", path.display())));
    }
}

fn list_parquet(path: &Path, opts: &SourceOptions, out: &mut Vec<Input>) -> Result<(), String> {
    let f = File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| format!("not a Parquet file: {e}"))?;
    let col = Arc::new(audio_column(builder.schema(), opts)?);
    let groups: Vec<usize> =
        builder.metadata().row_groups().iter().map(|g| usize::try_from(g.num_rows()).unwrap_or(0)).collect();
    // Every leaf but the audio bytes.
    let leaves: Vec<usize> = builder
        .parquet_schema()
        .columns()
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            let parts = c.path().parts();
            !(parts.first() == Some(&col.name) && (!col.is_struct || parts.get(1).map(String::as_str) == Some("bytes")))
        })
        .map(|(i, _)| i)
        .collect();
    let mask = ProjectionMask::leaves(builder.parquet_schema(), leaves);
    let reader = builder.with_projection(mask).build().map_err(|e| e.to_string())?;
    let file: Arc<Path> = Arc::from(path);
    let (mut row, mut group, mut in_group) = (0usize, 0usize, 0usize);
    for batch in reader {
        let batch = batch.map_err(|e| format!("row {row}: {e}"))?;
        for r in 0..batch.num_rows() {
            while groups.get(group).is_some_and(|&n| in_group >= n) {
                group += 1;
                in_group = 0;
            }
            let (audio_path, meta) = if batch.schema().index_of(&col.name).is_ok() {
                row_meta(&batch, &col, r)
            } else {
                let (_, m) = row_meta(&batch, &AudioColumn { name: String::new(), is_struct: false }, r);
                (None, m)
            };
            out.push(table_input(&file, &col, Locator::RowGroup(group, in_group), row, audio_path, meta));
            row += 1;
            in_group += 1;
        }
    }
    Ok(())
}
