//! The token store (`audiotok.tokens.TokenStore`): its records as Arrow batches handed to pyarrow
//! (or any reader of the Arrow PyCapsule interface) through the Arrow C stream interface, without
//! a copy; `write_store`, records in to a store written as `audiotok encode` writes one.

use std::ffi::CStr;
use std::path::PathBuf;

use arrow_array::ffi::FFI_ArrowSchema;
use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::{ArrowError, SchemaRef};
use audiotok_tokens::store::{
    BatchIter, ScaleTokens, StoreMetadata, StoreOptions, StoreReader, StoreWriter, TokenRecord, METADATA_FILE,
};
use numpy::PyReadonlyArray1;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

use crate::errors::TokensError;

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<TokenStore>()?;
    m.add_class::<StoreWriterHandle>()?;
    m.add_function(wrap_pyfunction!(write_store, m)?)
}

/// One scale of many records as flat arrays: every record's codes concatenated, the start of
/// each record's codes (`n + 1` offsets), and each record's shape the same way.
type FlatScale<'py> =
    (PyReadonlyArray1<'py, u32>, PyReadonlyArray1<'py, i64>, PyReadonlyArray1<'py, i64>, PyReadonlyArray1<'py, i64>);

/// Records from flat arrays (see [`FlatScale`]), checked: one duration per record, offsets in
/// range, shapes not negative.
fn records_of(
    dir: &std::path::Path,
    file_paths: Vec<String>,
    durations: PyReadonlyArray1<'_, f64>,
    scales: &[FlatScale<'_>],
) -> PyResult<Vec<TokenRecord>> {
    let n = file_paths.len();
    let bad = |msg: String| TokensError::new_err(format!("{}: {msg}", dir.display()));
    let durations = durations.as_array();
    if durations.len() != n {
        return Err(bad(format!("{} durations for {n} records", durations.len())));
    }
    let mut records: Vec<TokenRecord> = file_paths
        .into_iter()
        .zip(durations.iter())
        .map(|(file_path, &duration)| TokenRecord { file_path, duration, scales: Vec::with_capacity(scales.len()) })
        .collect();
    for (k, (codes, offsets, shapes, shape_offsets)) in scales.iter().enumerate() {
        let (codes, offsets) = (codes.as_array(), offsets.as_array());
        let (shapes, shape_offsets) = (shapes.as_array(), shape_offsets.as_array());
        if offsets.len() != n + 1 || shape_offsets.len() != n + 1 {
            return Err(bad(format!("scale {k}: offsets must have one entry per record and one more ({})", n + 1)));
        }
        let span = |o: &ndarray::ArrayView1<'_, i64>, i: usize, len: usize| -> PyResult<std::ops::Range<usize>> {
            let (a, b) = (o[i], o[i + 1]);
            if a < 0 || b < a || b as usize > len {
                return Err(bad(format!("scale {k}, record {i}: offsets {a}..{b} outside 0..{len}")));
            }
            Ok(a as usize..b as usize)
        };
        for (i, rec) in records.iter_mut().enumerate() {
            let tokens: Vec<u32> = codes.slice(ndarray::s![span(&offsets, i, codes.len())?]).to_vec();
            let shape_span = span(&shape_offsets, i, shapes.len())?;
            let mut shape = Vec::with_capacity(shape_span.len());
            for &d in shapes.slice(ndarray::s![shape_span]) {
                shape.push(u64::try_from(d).map_err(|_| bad(format!("scale {k}, record {i}: negative shape {d}")))?);
            }
            rec.scales.push(ScaleTokens { shape, tokens });
        }
    }
    Ok(records)
}

fn store_options(
    num_scales: usize,
    batch_size: usize,
    codebook_sizes: Option<Vec<u32>>,
    rates_hz: Option<Vec<f64>>,
    provenance: Option<std::collections::BTreeMap<String, String>>,
) -> StoreOptions {
    let mut opts = StoreOptions::new(num_scales);
    opts.batch_size = batch_size;
    opts.codebook_sizes = codebook_sizes;
    opts.rates_hz = rates_hz;
    opts.provenance = provenance.unwrap_or_default();
    opts
}

fn metadata_json(meta: &StoreMetadata) -> PyResult<String> {
    serde_json::to_string(meta).map_err(|e| TokensError::new_err(e.to_string()))
}

/// Writes a token store at `dir` from records given as flat arrays (see [`FlatScale`]), in
/// order, as `StoreWriter` writes it for the CLI: batches of `batch_size` records, each atomic,
/// then `metadata.json`. Returns the metadata as JSON text.
#[pyfunction]
#[pyo3(signature = (dir, file_paths, durations, scales, *, batch_size = 1000, codebook_sizes = None, rates_hz = None, provenance = None))]
#[allow(clippy::too_many_arguments)]
fn write_store(
    py: Python<'_>,
    dir: PathBuf,
    file_paths: Vec<String>,
    durations: PyReadonlyArray1<'_, f64>,
    scales: Vec<FlatScale<'_>>,
    batch_size: usize,
    codebook_sizes: Option<Vec<u32>>,
    rates_hz: Option<Vec<f64>>,
    provenance: Option<std::collections::BTreeMap<String, String>>,
) -> PyResult<String> {
    let records = records_of(&dir, file_paths, durations, &scales)?;
    let opts = store_options(scales.len(), batch_size, codebook_sizes, rates_hz, provenance);
    let meta = py
        .detach(|| -> Result<StoreMetadata, audiotok_tokens::store::StoreError> {
            let mut w = StoreWriter::create(&dir, opts)?;
            for r in records {
                w.push(r)?;
            }
            w.finish()
        })
        .map_err(store_err)?;
    metadata_json(&meta)
}

/// A token store written a few records at a time (bounded memory: at most one batch of records
/// is held), as `write_store` writes it in one call: `push(file_paths, durations, scales)` with
/// flat arrays per call, then `finish()` (the metadata as JSON text). A writer dropped unfinished
/// leaves no `metadata.json`: the store is not readable, and its batches are reused by a rerun.
#[pyclass(name = "StoreWriter", module = "audiotok._audiotok")]
pub struct StoreWriterHandle {
    dir: PathBuf,
    num_scales: usize,
    writer: Option<StoreWriter>,
}

#[pymethods]
impl StoreWriterHandle {
    #[new]
    #[pyo3(signature = (dir, num_scales, *, batch_size = 1000, codebook_sizes = None, rates_hz = None, provenance = None))]
    fn new(
        dir: PathBuf,
        num_scales: usize,
        batch_size: usize,
        codebook_sizes: Option<Vec<u32>>,
        rates_hz: Option<Vec<f64>>,
        provenance: Option<std::collections::BTreeMap<String, String>>,
    ) -> PyResult<Self> {
        let opts = store_options(num_scales, batch_size, codebook_sizes, rates_hz, provenance);
        let writer = StoreWriter::create(&dir, opts).map_err(store_err)?;
        Ok(Self { dir, num_scales, writer: Some(writer) })
    }

    /// Appends records (flat arrays, as `write_store` takes them) after those pushed before.
    fn push(
        &mut self,
        py: Python<'_>,
        file_paths: Vec<String>,
        durations: PyReadonlyArray1<'_, f64>,
        scales: Vec<FlatScale<'_>>,
    ) -> PyResult<()> {
        if scales.len() != self.num_scales {
            return Err(TokensError::new_err(format!(
                "{}: {} scales given to a store of {}",
                self.dir.display(),
                scales.len(),
                self.num_scales
            )));
        }
        let records = records_of(&self.dir, file_paths, durations, &scales)?;
        let w = self.writer.as_mut().ok_or_else(|| TokensError::new_err("the store is already finished"))?;
        py.detach(|| -> Result<(), audiotok_tokens::store::StoreError> {
            for r in records {
                w.push(r)?;
            }
            Ok(())
        })
        .map_err(store_err)
    }

    /// Writes the last batch and `metadata.json`; returns the metadata as JSON text.
    fn finish(&mut self, py: Python<'_>) -> PyResult<String> {
        let w = self.writer.take().ok_or_else(|| TokensError::new_err("the store is already finished"))?;
        let meta = py.detach(|| w.finish()).map_err(store_err)?;
        metadata_json(&meta)
    }
}

fn store_err(e: impl std::error::Error + 'static) -> PyErr {
    TokensError::new_err(audiotok_core::error_text(&e))
}

const STREAM: &CStr = c"arrow_array_stream";
const SCHEMA: &CStr = c"arrow_schema";

/// A token store directory (made by `audiotok encode`, or Parquet batches pyarrow wrote), or one
/// of its Parquet files, opened for reading. Its records stream out as Arrow record batches in
/// the store's schema (`file_path`, `duration`, then per scale `tokens_scale_k` list<int32>,
/// `n_tokens_scale_k` int64, `shape_scale_k` list<int64>) through `__arrow_c_stream__`: every
/// record read and checked as `audiotok bpe`/`decode` read them (checksums verified), on the
/// reading thread without the GIL. Pickles as its path.
#[pyclass(frozen, module = "audiotok._audiotok")]
pub struct TokenStore {
    path: PathBuf,
    reader: StoreReader,
}

#[pymethods]
impl TokenStore {
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let reader = py.detach(|| StoreReader::open(&path)).map_err(store_err)?;
        Ok(Self { path, reader })
    }

    /// The directory or file opened.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// The number of scales (`tokens_scale_0 ..`).
    #[getter]
    fn num_scales(&self) -> usize {
        self.reader.num_scales()
    }

    /// The Parquet files, in reading order.
    #[getter]
    fn files(&self) -> Vec<PathBuf> {
        self.reader.files().to_vec()
    }

    /// The store's `metadata.json` as JSON text, checked for its format and version; `None` when
    /// the path is a file or the directory has none (pyarrow's batches).
    fn metadata_json(&self, py: Python<'_>) -> PyResult<Option<String>> {
        if !self.path.is_dir() || !self.path.join(METADATA_FILE).is_file() {
            return Ok(None);
        }
        let meta = py.detach(|| StoreMetadata::load(&self.path)).map_err(store_err)?;
        serde_json::to_string(&meta).map(Some).map_err(|e| TokensError::new_err(e.to_string()))
    }

    /// The Arrow schema of the records, as an `arrow_schema` PyCapsule.
    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        let schema = audiotok_tokens::store::arrow_schema(self.reader.num_scales());
        let ffi = FFI_ArrowSchema::try_from(schema.as_ref()).map_err(store_err)?;
        PyCapsule::new_with_value(py, ffi, SCHEMA)
    }

    /// The records as an Arrow C stream (an `arrow_array_stream` PyCapsule) of batches of up to
    /// `batch_rows` records (default 1024). `requested_schema` is not used: the stream has the store's schema.
    #[pyo3(signature = (requested_schema = None, *, batch_rows = 1024))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
        batch_rows: usize,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        let batches = self.reader.batches(batch_rows);
        let stream = FFI_ArrowArrayStream::new(Box::new(Batches { schema: batches.schema(), batches }));
        PyCapsule::new_with_value(py, stream, STREAM)
    }

    fn __reduce__(slf: &Bound<'_, Self>) -> PyResult<(Py<PyAny>, (PathBuf,))> {
        Ok((slf.get_type().into_any().unbind(), (slf.get().path.clone(),)))
    }

    fn __repr__(&self) -> String {
        format!(
            "TokenStore({:?}, files={}, scales={})",
            self.path.display().to_string(),
            self.reader.files().len(),
            self.reader.num_scales()
        )
    }
}

/// A store's batches as an Arrow [`RecordBatchReader`] (for the C stream).
struct Batches {
    schema: SchemaRef,
    batches: BatchIter,
}

impl Iterator for Batches {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.batches.next().map(|r| r.map_err(|e| ArrowError::ExternalError(audiotok_core::error_text(&e).into())))
    }
}

impl RecordBatchReader for Batches {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}
