//! `datasets.save_to_disk` folders: `state.json` lists the data files, each an Arrow IPC stream
//! (`data-00000-of-00001.arrow`) holding the same columns as the Parquet shards, bytes embedded.
//! IPC files (the random-access format) are read too.
//!
//! A stream is read in order: listing reads it once, batch by batch; the thread that decodes a
//! record keeps its reader open at the batch it last read, so rows taken in order cost one pass.

use std::cell::RefCell;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_ipc::reader::{FileReader, StreamReader};
use serde_json::Value;

use crate::columns::{audio_column, row_meta, table_input, AudioColumn, Locator};
use crate::{record_rel, Input, SourceOptions};

/// The data files of a `save_to_disk` folder, as its `state.json` lists them (else every
/// `*.arrow` in it, sorted).
pub(crate) fn saved_files(dir: &Path) -> Vec<PathBuf> {
    let listed = std::fs::read_to_string(dir.join("state.json"))
        .ok()
        .and_then(|s| serde_json::from_str::<Value>(&s).ok())
        .and_then(|v| {
            let files = v.get("_data_files")?.as_array()?;
            Some(files.iter().filter_map(|f| f.get("filename")?.as_str().map(|n| dir.join(n))).collect::<Vec<_>>())
        });
    if let Some(files) = listed.filter(|f| !f.is_empty()) {
        return files;
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "arrow"))
        .collect();
    files.sort();
    files
}

/// An Arrow file opened for reading batches in order.
enum Batches {
    Stream(StreamReader<BufReader<File>>),
    File(FileReader<BufReader<File>>),
}

impl Batches {
    fn open(path: &Path) -> Result<Batches, String> {
        let mut f = File::open(path).map_err(|e| format!("cannot read: {e}"))?;
        let mut magic = [0u8; 6];
        let is_file = f.read_exact(&mut magic).is_ok() && &magic == b"ARROW1";
        let f = File::open(path).map_err(|e| format!("cannot read: {e}"))?;
        let r = BufReader::new(f);
        Ok(if is_file {
            Batches::File(FileReader::try_new(r, None).map_err(|e| format!("not an Arrow IPC file: {e}"))?)
        } else {
            Batches::Stream(StreamReader::try_new(r, None).map_err(|e| format!("not an Arrow IPC stream: {e}"))?)
        })
    }

    fn schema(&self) -> arrow_schema::SchemaRef {
        match self {
            Batches::Stream(s) => s.schema(),
            Batches::File(f) => f.schema(),
        }
    }

    fn next_batch(&mut self) -> Option<Result<RecordBatch, String>> {
        match self {
            Batches::Stream(s) => s.next().map(|r| r.map_err(|e| e.to_string())),
            Batches::File(f) => f.next().map(|r| r.map_err(|e| e.to_string())),
        }
    }
}

/// Lists the rows of the Arrow file `path` into `out`.
pub(crate) fn arrow_records(path: &Path, opts: &SourceOptions, out: &mut Vec<Input>) {
    if let Err(reason) = list_arrow(path, opts, out) {
        let rel = record_rel(path, "_", None);
        out.push(Input::failed(path.to_path_buf(), rel, format!("{}: {reason}", path.display())));
    }
}

fn list_arrow(path: &Path, opts: &SourceOptions, out: &mut Vec<Input>) -> Result<(), String> {
    let mut batches = Batches::open(path)?;
    let col = Arc::new(audio_column(&batches.schema(), opts)?);
    let file: Arc<Path> = Arc::from(path);
    let (mut row, mut b) = (0usize, 0usize);
    while let Some(batch) = batches.next_batch() {
        let batch = batch.map_err(|e| format!("batch {b} (row {row}): {e}"))?;
        for r in 0..batch.num_rows() {
            let (audio_path, meta) = row_meta(&batch, &col, r);
            out.push(table_input(&file, &col, Locator::Batch(b, r), row, audio_path, meta));
            row += 1;
        }
        b += 1;
    }
    Ok(())
}

/// An open Arrow file and the batch it last gave, kept by the thread that read it.
struct ArrowCache {
    file: Arc<Path>,
    reader: Batches,
    /// The index of the next batch the reader gives.
    next: usize,
    current: Option<(usize, ArrayRef)>,
}

thread_local! {
    static ARROW: RefCell<Option<ArrowCache>> = const { RefCell::new(None) };
}

/// The audio bytes of row `row` of batch `b` of `file`.
pub(crate) fn arrow_cell(file: &Arc<Path>, col: &AudioColumn, b: usize, row: usize) -> Result<Option<Vec<u8>>, String> {
    ARROW.with(|cache| {
        let mut cache = cache.borrow_mut();
        let usable = cache.as_ref().is_some_and(|c| {
            (Arc::ptr_eq(&c.file, file) || c.file == *file)
                && (c.next <= b || c.current.as_ref().is_some_and(|(i, _)| *i == b))
        });
        if !usable {
            *cache = Some(ArrowCache { file: file.clone(), reader: Batches::open(file)?, next: 0, current: None });
        }
        let c = cache.as_mut().ok_or("arrow cache")?;
        while c.current.as_ref().is_none_or(|(i, _)| *i != b) {
            let batch = c.reader.next_batch().ok_or_else(|| format!("batch {b} is past the end of the file"))??;
            let a = batch.column_by_name(&col.name).ok_or("the audio column is gone")?.clone();
            c.current = Some((c.next, a));
            c.next += 1;
        }
        let (_, a) = c.current.as_ref().ok_or("arrow cache")?;
        crate::columns::audio_bytes(a, row)
    })
}
