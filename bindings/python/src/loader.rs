//! The packed-audio training loader's engine (`audiotok_loader`), for `audiotok.loader`.

use std::path::PathBuf;
use std::sync::Arc;

use audiotok_loader::{Block, LoaderOptions, PackedDataset, Plan, Prefetch};
use numpy::PyArray1;
use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::LoaderError;

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PackedBlocks>()?;
    m.add_class::<BlockIter>()?;
    m.add_function(wrap_pyfunction!(plan_json, m)?)?;
    Ok(())
}

fn loader_err(e: audiotok_loader::LoaderError) -> PyErr {
    LoaderError::new_err(audiotok_core::error_text(&e))
}

fn array<'py, T: numpy::Element>(py: Python<'py>, v: Vec<T>, shape: &[usize]) -> PyResult<Bound<'py, PyAny>> {
    if shape.len() == 1 {
        return Ok(PyArray1::from_vec(py, v).into_any());
    }
    let a = ndarray::ArrayD::from_shape_vec(shape.to_vec(), v).map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(numpy::PyArray::from_owned_array(py, a).into_any())
}

/// A block as a dict of numpy arrays (the buffers handed over, not copied).
fn block_dict(py: Python<'_>, b: Block, with_features: bool) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    let (t, n) = (b.input_ids.len(), b.audio.len());
    d.set_item("input_ids", array(py, b.input_ids, &[t])?)?;
    d.set_item("labels", array(py, b.labels, &[t])?)?;
    d.set_item("position_ids", array(py, b.position_ids, &[t])?)?;
    let docs = b.seq_lengths.len();
    d.set_item("seq_lengths", array(py, b.seq_lengths, &[docs])?)?;
    d.set_item("cu_seqlens", array(py, b.cu_seqlens, &[docs + 1])?)?;
    if with_features {
        d.set_item("input_features", array(py, b.input_features, &[n, b.n_mels, b.frames])?)?;
        d.set_item("feature_attention_mask", array(py, b.feature_attention_mask, &[n, b.frames])?)?;
    }
    d.set_item("audio", b.audio)?;
    d.set_item("index", b.index)?;
    Ok(d)
}

/// An `audiotok pack` output opened for training (`audiotok_loader::PackedDataset`).
#[pyclass(frozen, module = "audiotok._audiotok")]
pub struct PackedBlocks {
    inner: Arc<PackedDataset>,
}

impl PackedBlocks {
    /// `IndexError` unless block `i` exists.
    fn check(&self, i: u64) -> PyResult<()> {
        if i >= self.inner.len() {
            return Err(PyIndexError::new_err(format!("block {i} out of range for {} blocks", self.inner.len())));
        }
        Ok(())
    }
}

#[pymethods]
impl PackedBlocks {
    /// Opens `dir` with `options_json` (a serialised `LoaderOptions`).
    #[new]
    fn new(py: Python<'_>, dir: PathBuf, options_json: &str) -> PyResult<Self> {
        let options: LoaderOptions =
            serde_json::from_str(options_json).map_err(|e| PyValueError::new_err(format!("loader options: {e}")))?;
        let inner = py.detach(|| PackedDataset::open(&dir, options)).map_err(loader_err)?;
        Ok(Self { inner: Arc::new(inner) })
    }

    fn __len__(&self) -> usize {
        self.inner.len() as usize
    }

    /// Block `i` with its features (decoded and computed on this thread, the GIL released).
    fn block<'py>(&self, py: Python<'py>, i: u64) -> PyResult<Bound<'py, PyDict>> {
        self.check(i)?;
        let b = py.detach(|| self.inner.block(i, &mut self.inner.extractor())).map_err(loader_err)?;
        block_dict(py, b, true)
    }

    /// Block `i` without features: ids, labels, positions, lengths, audio paths.
    fn tokens<'py>(&self, py: Python<'py>, i: u64) -> PyResult<Bound<'py, PyDict>> {
        self.check(i)?;
        let b = py.detach(|| self.inner.tokens(i)).map_err(loader_err)?;
        block_dict(py, b, false)
    }

    /// The blocks `indices`, read on `num_threads` threads of the iterator's own, at most
    /// `window` ahead, yielded in order.
    #[pyo3(signature = (indices, *, num_threads = 2, window = 4))]
    fn prefetch(&self, indices: Vec<u64>, num_threads: usize, window: usize) -> PyResult<BlockIter> {
        if let Some(&i) = indices.iter().find(|&&i| i >= self.inner.len()) {
            self.check(i)?;
        }
        Ok(BlockIter { inner: Some(Prefetch::new(Arc::clone(&self.inner), indices, num_threads, window)) })
    }
}

/// The iterator of [`PackedBlocks::prefetch`].
#[pyclass(module = "audiotok._audiotok")]
pub struct BlockIter {
    inner: Option<Prefetch>,
}

#[pymethods]
impl BlockIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(it) = self.inner.as_mut() else { return Ok(None) };
        match py.detach(|| it.next()) {
            Some(r) => block_dict(py, r.map_err(loader_err)?, true).map(Some),
            None => {
                // Exhausted: the threads are joined now, not when Python frees the object.
                self.inner = None;
                Ok(None)
            }
        }
    }

    /// Stops the threads (they also stop when the iterator is exhausted or freed).
    fn close(&mut self, py: Python<'_>) {
        if let Some(it) = self.inner.take() {
            py.detach(|| drop(it));
        }
    }
}

/// `audiotok_loader::plan`: the block indices of `n` that the serialised `Plan` reads.
#[pyfunction]
fn plan_json(n: u64, plan_json: &str) -> PyResult<Vec<u64>> {
    let p: Plan = serde_json::from_str(plan_json).map_err(|e| PyValueError::new_err(format!("plan: {e}")))?;
    audiotok_loader::plan(n, &p).map_err(loader_err)
}
