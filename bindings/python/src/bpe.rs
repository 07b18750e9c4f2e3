//! Audio BPE models (`audiotok.bpe.BpeModel`): encode and decode integer token streams.

use std::path::PathBuf;

use audiotok_tokens::bpe::BpeModel as Model;
use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;

use crate::errors::BpeError;

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<BpeModel>()
}

fn bpe_err(e: impl std::error::Error + 'static) -> PyErr {
    BpeError::new_err(audiotok_core::error_text(&e))
}

/// A BPE model made by `audiotok bpe train` (its JSON file), as `audiotok bpe encode/decode` use
/// it. Pickles as its JSON.
#[pyclass(frozen, module = "audiotok._audiotok")]
pub struct BpeModel {
    inner: Model,
}

fn ids(a: &PyReadonlyArray1<'_, u32>) -> Vec<u32> {
    a.as_slice().map_or_else(|_| a.as_array().to_vec(), <[u32]>::to_vec)
}

#[pymethods]
impl BpeModel {
    /// Reads a model file.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let inner = py.detach(|| audiotok_tokens::bpe::job::load_model(&path)).map_err(bpe_err)?;
        Ok(Self { inner })
    }

    /// Learns a model over token streams in memory (`variant` of the single-stream ones:
    /// `plain`, `rl`, `thresholded`, ...), as `audiotok bpe train` does over files: `merges`
    /// merges (or a `vocab_size`), tokens below `codebook_size`.
    #[staticmethod]
    #[pyo3(signature = (streams, *, codebook_size, merges = None, vocab_size = None, variant = "plain"))]
    fn train(
        py: Python<'_>,
        streams: Vec<PyReadonlyArray1<'_, u32>>,
        codebook_size: u32,
        merges: Option<usize>,
        vocab_size: Option<usize>,
        variant: &str,
    ) -> PyResult<Self> {
        let v: audiotok_tokens::bpe::Variant = variant.parse().map_err(bpe_err)?;
        let mut cfg = audiotok_tokens::bpe::TrainerConfig::new(v, codebook_size);
        cfg.merges = merges;
        cfg.vocab_size = vocab_size;
        let seqs: Vec<Vec<u32>> = streams.iter().map(ids).collect();
        let inner = py
            .detach(|| audiotok_tokens::bpe::train(&cfg, &audiotok_tokens::bpe::Corpus::Streams(&seqs)))
            .map_err(bpe_err)?;
        Ok(Self { inner })
    }

    /// A model from its JSON text.
    #[staticmethod]
    fn from_json(text: &str) -> PyResult<Self> {
        Ok(Self { inner: Model::from_json(text).map_err(bpe_err)? })
    }

    /// The model as JSON text (the file format).
    fn to_json(&self) -> PyResult<String> {
        self.inner.to_json().map_err(bpe_err)
    }

    /// The variant (`plain`, `rl`, `cross-scale`, ...).
    #[getter]
    fn variant(&self) -> PyResult<String> {
        let v = serde_json::to_value(self.inner.variant()).map_err(|e| BpeError::new_err(e.to_string()))?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// Size of the base token alphabet.
    #[getter]
    fn codebook_size(&self) -> u32 {
        self.inner.codebook_size()
    }

    /// Symbols in all (base symbols plus merges).
    #[getter]
    fn vocab_size(&self) -> u32 {
        self.inner.vocab_size()
    }

    /// Encodes one token stream (single-stream variants) to symbols, uint32.
    fn encode<'py>(&self, py: Python<'py>, tokens: PyReadonlyArray1<'py, u32>) -> PyResult<Bound<'py, PyArray1<u32>>> {
        let x = ids(&tokens);
        let out = py.detach(|| self.inner.encode(&x)).map_err(bpe_err)?;
        Ok(PyArray1::from_vec(py, out))
    }

    /// Decodes symbols back to the token stream (single-stream variants).
    fn decode<'py>(&self, py: Python<'py>, symbols: PyReadonlyArray1<'py, u32>) -> PyResult<Bound<'py, PyArray1<u32>>> {
        let x = ids(&symbols);
        let out = py.detach(|| self.inner.decode(&x)).map_err(bpe_err)?;
        Ok(PyArray1::from_vec(py, out))
    }

    /// Encodes one multi-scale item (one stream per scale, lengths in the model's ratios).
    fn encode_scales<'py>(
        &self,
        py: Python<'py>,
        scales: Vec<PyReadonlyArray1<'py, u32>>,
    ) -> PyResult<Bound<'py, PyArray1<u32>>> {
        let x: Vec<Vec<u32>> = scales.iter().map(ids).collect();
        let out = py.detach(|| self.inner.encode_scales(&x)).map_err(bpe_err)?;
        Ok(PyArray1::from_vec(py, out))
    }

    /// Decodes symbols back to per-scale streams (multi-scale variants).
    fn decode_scales<'py>(
        &self,
        py: Python<'py>,
        symbols: PyReadonlyArray1<'py, u32>,
    ) -> PyResult<Vec<Bound<'py, PyArray1<u32>>>> {
        let x = ids(&symbols);
        let out = py.detach(|| self.inner.decode_scales(&x)).map_err(bpe_err)?;
        Ok(out.into_iter().map(|v| PyArray1::from_vec(py, v)).collect())
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, (String,))> {
        let json = slf.get().inner.to_json().map_err(bpe_err)?;
        Ok((slf.get_type().getattr("from_json")?, (json,)))
    }

    fn __repr__(&self) -> String {
        format!(
            "BpeModel(variant={:?}, codebook_size={}, vocab_size={})",
            self.variant().unwrap_or_default(),
            self.inner.codebook_size(),
            self.inner.vocab_size()
        )
    }
}
