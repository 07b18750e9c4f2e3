//! MosaicML MDS datasets: `audiotok.mds.MdsDataset` (read) and `merge_index`.

use std::path::PathBuf;

use audiotok_mds::{DType, Json, NdArray, Value};
use numpy::{Element, PyArray1, PyArrayDyn};
use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::errors::MdsError;

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<MdsDataset>()?;
    m.add_function(wrap_pyfunction!(merge_index, m)?)?;
    Ok(())
}

fn mds_err(e: audiotok_mds::MdsError) -> PyErr {
    MdsError::new_err(e.to_string())
}

/// An MDS dataset folder opened for random access, as `streaming.base.LocalDataset` reads it:
/// `len(ds)`, `ds[i]` (a dict of column name to value: `bytes`, `str`, `int`, `float`, JSON as
/// Python objects, `ndarray` columns as numpy arrays), both packing layouts (the notebook's
/// variable `uint32` columns come back as `numpy.uint32` arrays, as its registered encoding
/// decodes them). Pickles as its folder; the shards are reopened on unpickling.
#[pyclass(frozen, module = "audiotok._audiotok")]
pub struct MdsDataset {
    dir: PathBuf,
    inner: audiotok_mds::MdsDataset,
    /// Columns in the notebook's raw `uint32` encoding.
    raw_u32: Vec<String>,
}

#[pymethods]
impl MdsDataset {
    #[new]
    fn new(py: Python<'_>, dir: PathBuf) -> PyResult<Self> {
        let inner = py.detach(|| audiotok_mds::packed::open_dataset(&dir)).map_err(mds_err)?;
        let raw_u32 = notebook_columns(inner.index());
        Ok(Self { dir, inner, raw_u32 })
    }

    fn __len__(&self) -> usize {
        self.inner.len() as usize
    }

    /// The folder.
    #[getter]
    fn dir(&self) -> PathBuf {
        self.dir.clone()
    }

    /// Column names, in index order.
    #[getter]
    fn columns(&self) -> Vec<String> {
        self.inner.column_names().to_vec()
    }

    fn __getitem__<'py>(&self, py: Python<'py>, index: isize) -> PyResult<Bound<'py, PyDict>> {
        let n = self.inner.len() as isize;
        let i = if index < 0 { index + n } else { index };
        if i < 0 || i >= n {
            return Err(PyIndexError::new_err(format!("sample {index} out of range for {n} samples")));
        }
        let mut sample = py.detach(|| self.inner.get(i as u64)).map_err(mds_err)?;
        // Keys in column order, as streaming's sample dicts have them (a later shard's own
        // columns after them).
        let mut ordered: Vec<(String, Value)> = Vec::with_capacity(sample.len());
        for k in self.inner.column_names() {
            if let Some(v) = sample.remove(k) {
                ordered.push((k.clone(), v));
            }
        }
        ordered.extend(sample);
        let d = PyDict::new(py);
        for (k, v) in ordered {
            let value = match v {
                Value::Bytes(b) if self.raw_u32.contains(&k) => raw_u32(py, &b)?,
                other => value(py, other)?,
            };
            d.set_item(k, value)?;
        }
        Ok(d)
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, (PathBuf,))> {
        Ok((slf.get_type().into_any(), (slf.get().dir.clone(),)))
    }

    fn __repr__(&self) -> String {
        format!("MdsDataset({:?}, samples={})", self.dir.display().to_string(), self.inner.len())
    }
}

/// The columns in the notebook's custom `uint32` encoding (variable size), which
/// [`audiotok_mds::packed::open_dataset`] registers as raw bytes.
fn notebook_columns(index: &audiotok_mds::Index) -> Vec<String> {
    let mut out = Vec::new();
    for shard in &index.shards {
        for ((name, enc), size) in shard.column_names.iter().zip(&shard.column_encodings).zip(&shard.column_sizes) {
            if enc == audiotok_mds::packed::NOTEBOOK_UINT32 && size.unwrap_or(0) == 0 && !out.contains(name) {
                out.push(name.clone());
            }
        }
    }
    out
}

/// The notebook's custom `uint32`: raw little-endian u32s.
fn raw_u32<'py>(py: Python<'py>, b: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    if b.len() % 4 != 0 {
        return Err(MdsError::new_err(format!("a uint32 column holds {} bytes, not a multiple of 4", b.len())));
    }
    let v: Vec<u32> = b.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    Ok(PyArray1::from_vec(py, v).into_any())
}

fn typed<'py, T: audiotok_mds::Element + Element>(py: Python<'py>, a: &NdArray) -> PyResult<Bound<'py, PyAny>> {
    let v: Vec<T> = a.to_vec().map_err(|e| MdsError::new_err(e.to_string()))?;
    let arr =
        ndarray::ArrayD::from_shape_vec(a.shape().to_vec(), v).map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(PyArrayDyn::from_owned_array(py, arr).into_any())
}

fn array<'py>(py: Python<'py>, a: &NdArray) -> PyResult<Bound<'py, PyAny>> {
    match a.dtype() {
        DType::U8 => typed::<u8>(py, a),
        DType::I8 => typed::<i8>(py, a),
        DType::U16 => typed::<u16>(py, a),
        DType::I16 => typed::<i16>(py, a),
        DType::F16 => typed::<audiotok_mds::f16>(py, a),
        DType::U32 => typed::<u32>(py, a),
        DType::I32 => typed::<i32>(py, a),
        DType::F32 => typed::<f32>(py, a),
        DType::U64 => typed::<u64>(py, a),
        DType::I64 => typed::<i64>(py, a),
        DType::F64 => typed::<f64>(py, a),
    }
}

fn big_int<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    py.get_type::<pyo3::types::PyInt>().call1((text,))
}

fn json<'py>(py: Python<'py>, j: Json) -> PyResult<Bound<'py, PyAny>> {
    Ok(match j {
        Json::Null => py.None().into_bound(py),
        Json::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Json::Int(i) => i.into_pyobject(py)?.into_any(),
        Json::BigInt(s) => big_int(py, &s)?,
        Json::Float(f) => f.into_pyobject(py)?.into_any(),
        Json::Str(s) => s.into_pyobject(py)?.into_any(),
        Json::Array(items) => {
            let l = PyList::empty(py);
            for it in items {
                l.append(json(py, it)?)?;
            }
            l.into_any()
        }
        Json::Object(fields) => {
            let d = PyDict::new(py);
            for (k, v) in fields {
                d.set_item(k, json(py, v)?)?;
            }
            d.into_any()
        }
    })
}

fn value<'py>(py: Python<'py>, v: Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Bytes(b) => PyBytes::new(py, &b).into_any(),
        Value::Str(s) => s.into_pyobject(py)?.into_any(),
        Value::Int(i) => i.into_pyobject(py)?.into_any(),
        Value::UInt(u) => u.into_pyobject(py)?.into_any(),
        Value::Float(f) => f.into_pyobject(py)?.into_any(),
        Value::BigInt(s) => big_int(py, &s)?,
        Value::Decimal(s) => py.import("decimal")?.getattr("Decimal")?.call1((s,))?,
        Value::Json(j) => json(py, j)?,
        Value::NdArray(a) => array(py, &a)?,
    })
}

/// Writes `root/index.json` over the partitions' `index.json` files below `root`, as
/// `streaming.base.util.merge_index(root)` does for a local folder; returns the number of shards.
#[pyfunction]
fn merge_index(py: Python<'_>, root: PathBuf) -> PyResult<usize> {
    let idx = py.detach(|| audiotok_mds::merge_index(&root)).map_err(mds_err)?;
    Ok(idx.shards.len())
}
