//! MosaicML MDS datasets: `audiotok.mds.MdsDataset` (read), `MdsWriter` (write, as
//! `streaming.MDSWriter` writes) and `merge_index`.

use std::path::PathBuf;
use std::sync::Mutex;

use audiotok_mds::{DType, Json, NdArray, Value};
use numpy::{Element, PyArray1, PyArrayDyn};
use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMemoryView, PyString, PyTuple};

use crate::errors::MdsError;

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<MdsDataset>()?;
    m.add_class::<MdsWriter>()?;
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

/// Writes an MDS dataset folder exactly as `streaming.MDSWriter` does (same shard bytes, shard
/// boundaries and `index.json`): `write(sample)` for each sample (a dict with exactly the
/// columns), then `finish()`. Shards are written atomically; `index.json` last.
#[pyclass(module = "audiotok._audiotok")]
pub struct MdsWriter {
    inner: Mutex<Option<audiotok_mds::MdsWriter>>,
    /// Column name to encoding text.
    columns: Vec<(String, String)>,
    dir: PathBuf,
}

impl MdsWriter {
    fn with_writer<T>(&self, f: impl FnOnce(&mut audiotok_mds::MdsWriter) -> PyResult<T>) -> PyResult<T> {
        let mut guard = self.inner.lock().map_err(|_| MdsError::new_err("the writer was poisoned by a panic"))?;
        match guard.as_mut() {
            Some(w) => f(w),
            None => Err(MdsError::new_err(format!("the writer of {} is already finished", self.dir.display()))),
        }
    }
}

#[pymethods]
impl MdsWriter {
    #[new]
    #[pyo3(
        signature = (out, columns, *, compression = None, hashes = None, size_limit = Some(67108864), overwrite = false),
        text_signature = "(out, columns, *, compression=None, hashes=None, size_limit=67108864, overwrite=False)"
    )]
    fn new(
        py: Python<'_>,
        out: PathBuf,
        columns: Vec<(String, String)>,
        compression: Option<String>,
        hashes: Option<Vec<String>>,
        size_limit: Option<u64>,
        overwrite: bool,
    ) -> PyResult<Self> {
        let options = audiotok_mds::WriterOptions {
            compression,
            hashes: hashes.unwrap_or_default(),
            size_limit,
            overwrite,
            raw_encodings: Vec::new(),
        };
        let spec = columns.clone();
        let w = py.detach(|| audiotok_mds::MdsWriter::new(&out, spec, options)).map_err(mds_err)?;
        Ok(Self { inner: Mutex::new(Some(w)), columns, dir: out })
    }

    /// Adds one sample: a dict holding exactly the columns.
    fn write(&self, py: Python<'_>, sample: &Bound<'_, PyDict>) -> PyResult<()> {
        let mut s = audiotok_mds::Sample::new();
        for (name, encoding) in &self.columns {
            let v = sample
                .get_item(name)?
                .ok_or_else(|| MdsError::new_err(format!("the sample has no column `{name}`")))?;
            let value = to_value(py, &v, encoding)
                .map_err(|e| MdsError::new_err(format!("column `{name}` ({encoding}): {e}")))?;
            s.insert(name.clone(), value);
        }
        if sample.len() != self.columns.len() {
            let extra: Vec<String> = sample
                .keys()
                .iter()
                .filter_map(|k| k.extract::<String>().ok())
                .filter(|k| !self.columns.iter().any(|(n, _)| n == k))
                .collect();
            return Err(MdsError::new_err(format!("the sample has columns the writer has not: {extra:?}")));
        }
        self.with_writer(|w| {
            let encoded = w.encoder().encode(&s).map_err(mds_err)?;
            py.detach(|| w.write_encoded(encoded)).map_err(mds_err)
        })
    }

    /// Writes the last shard and `index.json`; returns the number of shards.
    fn finish(&self, py: Python<'_>) -> PyResult<usize> {
        let w = {
            let mut guard = self.inner.lock().map_err(|_| MdsError::new_err("the writer was poisoned by a panic"))?;
            guard.take()
        };
        let w =
            w.ok_or_else(|| MdsError::new_err(format!("the writer of {} is already finished", self.dir.display())))?;
        let index = py.detach(|| w.finish()).map_err(mds_err)?;
        Ok(index.shards.len())
    }

    /// The output folder.
    #[getter]
    fn out(&self) -> PathBuf {
        self.dir.clone()
    }

    /// Whether `finish` has run.
    #[getter]
    fn finished(&self) -> bool {
        self.inner.lock().map(|g| g.is_none()).unwrap_or(true)
    }
}

/// A Python value as the column's encoding takes it (as `streaming`'s encodings accept it).
fn to_value(py: Python<'_>, v: &Bound<'_, PyAny>, encoding: &str) -> PyResult<Value> {
    if v.is_instance_of::<PyBytes>() || v.is_instance_of::<PyByteArray>() || v.is_instance_of::<PyMemoryView>() {
        // Bytes pass through every encoding, as streaming's `mds_encode` passes them.
        let b: Vec<u8> = py.import("builtins")?.getattr("bytes")?.call1((v,))?.extract()?;
        return Ok(Value::Bytes(b));
    }
    let kind = encoding.split(':').next().unwrap_or(encoding);
    Ok(match kind {
        "str" => Value::Str(v.extract()?),
        "json" => Value::Json(to_json(v)?),
        "ndarray" => {
            let np = py.import("numpy")?;
            let a = np.getattr("ascontiguousarray")?.call1((v,))?;
            let dtype = a.getattr("dtype")?;
            let a = if dtype.getattr("byteorder")?.extract::<String>()? == ">" {
                a.call_method1("astype", (dtype.call_method1("newbyteorder", ("<",))?,))?
            } else {
                a
            };
            let name: String = a.getattr("dtype")?.getattr("name")?.extract()?;
            let dt = DType::from_name(&name)
                .ok_or_else(|| PyValueError::new_err(format!("numpy dtype {name} has no MDS ndarray encoding")))?;
            let shape: Vec<usize> = a.getattr("shape")?.extract()?;
            let data: Vec<u8> = a.call_method0("tobytes")?.extract()?;
            Value::NdArray(NdArray::from_bytes(dt, shape, data).map_err(|e| PyValueError::new_err(e.to_string()))?)
        }
        "str_decimal" => Value::Decimal(v.str()?.extract()?),
        "float16" | "float32" | "float64" | "str_float" => Value::Float(v.extract::<f64>()?),
        _ => int_value(py, v)?,
    })
}

/// An integer (Python `int` or a numpy integer) as the narrowest [`Value`] that holds it.
fn int_value(py: Python<'_>, v: &Bound<'_, PyAny>) -> PyResult<Value> {
    let i = py.import("operator")?.getattr("index")?.call1((v,))?;
    if let Ok(x) = i.extract::<i64>() {
        return Ok(Value::Int(x));
    }
    if let Ok(x) = i.extract::<u64>() {
        return Ok(Value::UInt(x));
    }
    Ok(Value::BigInt(i.str()?.extract()?))
}

/// A dict key as `json.dumps` writes it: strings as they are; `int`, `float`, `bool` and `None`
/// as their JSON text; anything else refused (as `json.dumps` refuses it).
fn json_key(k: &Bound<'_, PyAny>) -> PyResult<String> {
    if k.is_instance_of::<PyString>() {
        return k.extract();
    }
    if k.is_none() {
        return Ok("null".into());
    }
    if k.is_instance_of::<PyBool>() {
        return Ok(if k.extract::<bool>()? { "true" } else { "false" }.into());
    }
    if k.is_instance_of::<PyInt>() {
        return k.str()?.extract();
    }
    if k.is_instance_of::<PyFloat>() {
        return Ok(audiotok_mds::Json::Float(k.extract()?).to_python(false));
    }
    Err(PyValueError::new_err(format!("keys must be str, int, float, bool or None, not {}", k.get_type().name()?)))
}

/// A Python object as `json.dumps` would see it (dict keys must be strings, key order kept).
fn to_json(v: &Bound<'_, PyAny>) -> PyResult<Json> {
    if v.is_none() {
        return Ok(Json::Null);
    }
    if v.is_instance_of::<PyBool>() {
        return Ok(Json::Bool(v.extract()?));
    }
    if v.is_instance_of::<PyInt>() {
        if let Ok(x) = v.extract::<i64>() {
            return Ok(Json::Int(x));
        }
        return Ok(Json::BigInt(v.str()?.extract()?));
    }
    if v.is_instance_of::<PyFloat>() {
        return Ok(Json::Float(v.extract()?));
    }
    if v.is_instance_of::<PyString>() {
        return Ok(Json::Str(v.extract()?));
    }
    if let Ok(d) = v.cast::<PyDict>() {
        let mut fields = Vec::with_capacity(d.len());
        for (k, item) in d.iter() {
            fields.push((json_key(&k)?, to_json(&item)?));
        }
        return Ok(Json::Object(fields));
    }
    if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
        return Ok(Json::Array(v.try_iter()?.map(|it| to_json(&it?)).collect::<PyResult<_>>()?));
    }
    Err(PyValueError::new_err(format!("{} is not JSON serializable", v.get_type().name()?)))
}
