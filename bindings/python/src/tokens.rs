//! The token store (`audiotok.tokens.TokenStore`): its records as Arrow batches handed to pyarrow
//! (or any reader of the Arrow PyCapsule interface) through the Arrow C stream interface, without
//! a copy.

use std::ffi::CStr;
use std::path::PathBuf;

use arrow_array::ffi::FFI_ArrowSchema;
use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::{ArrowError, SchemaRef};
use audiotok_tokens::store::{BatchIter, StoreMetadata, StoreReader, METADATA_FILE};
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

use crate::errors::TokensError;

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<TokenStore>()
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
