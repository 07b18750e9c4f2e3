//! Neural audio codecs (`audiotok.codecs.SNAC`): audio arrays to codes and back, as the `snac`
//! package's `SNAC.encode` / `SNAC.decode` and as `audiotok encode` / `decode` compute them.

use std::path::PathBuf;

use audiotok_codecs::job::{self, DeviceChoice};
use audiotok_codecs::{NoiseRng, Snac as Model};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use rayon::prelude::*;

use crate::errors::CodecError;
use crate::progress::PyProgress;

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Snac>()?;
    m.add_function(wrap_pyfunction!(encode_files_json, m)?)?;
    m.add_function(wrap_pyfunction!(decode_store_json, m)?)?;
    Ok(())
}

/// Options JSON (the job's options less `device`) with `device` put in.
fn with_device<T: serde::de::DeserializeOwned>(options_json: &str, device: &str) -> PyResult<T> {
    let mut v: serde_json::Value =
        serde_json::from_str(options_json).map_err(|e| CodecError::new_err(format!("options: {e}")))?;
    let d = serde_json::to_value(device_choice(device)?).map_err(|e| CodecError::new_err(e.to_string()))?;
    if let Some(o) = v.as_object_mut() {
        o.insert("device".into(), d);
    }
    serde_json::from_value(v).map_err(|e| CodecError::new_err(format!("options: {e}")))
}

/// Runs `audiotok_codecs::job::encode` (what `audiotok encode` runs) with `options_json` (an
/// `EncodeOptions` without its `device`) on `device`, the GIL released; `progress(phase, done,
/// total)` is called as it goes. Returns the summary (`audiotok encode --json`'s object) as JSON
/// text.
#[pyfunction]
#[pyo3(signature = (options_json, *, device = "cpu", progress = None))]
fn encode_files_json(
    py: Python<'_>,
    options_json: &str,
    device: &str,
    progress: Option<Py<PyAny>>,
) -> PyResult<String> {
    let options: job::EncodeOptions = with_device(options_json, device)?;
    let observer = PyProgress::new(progress);
    py.detach(|| {
        let summary = job::encode(&options, &observer).map_err(codec_err)?;
        serde_json::to_string(&summary).map_err(|e| CodecError::new_err(e.to_string()))
    })
}

/// Runs `audiotok_codecs::job::decode` (what `audiotok decode` runs) as [`encode_files_json`]
/// runs the encode job.
#[pyfunction]
#[pyo3(signature = (options_json, *, device = "cpu", progress = None))]
fn decode_store_json(
    py: Python<'_>,
    options_json: &str,
    device: &str,
    progress: Option<Py<PyAny>>,
) -> PyResult<String> {
    let options: job::DecodeOptions = with_device(options_json, device)?;
    let observer = PyProgress::new(progress);
    py.detach(|| {
        let summary = job::decode(&options, &observer).map_err(codec_err)?;
        serde_json::to_string(&summary).map_err(|e| CodecError::new_err(e.to_string()))
    })
}

fn codec_err(e: impl std::error::Error + 'static) -> PyErr {
    CodecError::new_err(audiotok_core::error_text(&e))
}

fn device_choice(device: &str) -> PyResult<DeviceChoice> {
    match device {
        "auto" => Ok(DeviceChoice::Auto),
        "cpu" => Ok(DeviceChoice::Cpu),
        "cuda" => Ok(DeviceChoice::Cuda(0)),
        d => match d.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => Ok(DeviceChoice::Cuda(n)),
            _ => Err(CodecError::new_err(format!("device {d:?}: expected \"cpu\", \"auto\", \"cuda\" or \"cuda:N\""))),
        },
    }
}

/// A SNAC model loaded as `audiotok encode --model` loads it (a folder with `config.json`, or a
/// hub id in the local Hugging Face cache; `checkpoint` replaces its weights). Work runs without
/// the GIL on a thread pool of `num_threads` threads (0: one per core) built for each call.
/// (`audiotok.codecs.SNAC` pickles as its arguments.)
#[pyclass(frozen, module = "audiotok._audiotok")]
pub struct Snac {
    model_id: String,
    device: String,
    num_threads: usize,
    model: Model,
}

impl Snac {
    fn pool(&self) -> PyResult<rayon::ThreadPool> {
        audiotok_core::thread_pool(self.num_threads).map_err(codec_err)
    }

    /// One clip's codes, checked, as the model takes them.
    fn codes_of(&self, codes: &[Vec<i64>]) -> PyResult<Vec<Vec<u32>>> {
        let mut out = Vec::with_capacity(codes.len());
        for (k, c) in codes.iter().enumerate() {
            let mut v = Vec::with_capacity(c.len());
            for (i, &x) in c.iter().enumerate() {
                v.push(
                    u32::try_from(x).map_err(|_| CodecError::new_err(format!("codes[{k}][{i}]: {x} is not a code")))?,
                );
            }
            out.push(v);
        }
        Ok(out)
    }
}

/// One segment's `(duration, codes per codebook)`.
type Segment<'py> = (f64, Vec<Bound<'py, PyArray1<u32>>>);

#[pymethods]
impl Snac {
    #[new]
    #[pyo3(signature = (model, *, checkpoint = None, device = "cpu", num_threads = 0))]
    fn new(
        py: Python<'_>,
        model: String,
        checkpoint: Option<PathBuf>,
        device: &str,
        num_threads: usize,
    ) -> PyResult<Self> {
        let choice = device_choice(device)?;
        audiotok_core::check_jobs(num_threads).map_err(codec_err)?;
        let observer = PyProgress::new(None);
        let loaded =
            py.detach(|| job::load_model(&model, checkpoint.as_deref(), choice, &observer)).map_err(codec_err)?;
        Ok(Self { model_id: model, device: device.to_string(), num_threads, model: loaded.model })
    }

    /// The model's sample rate in Hz.
    #[getter]
    fn sampling_rate(&self) -> usize {
        self.model.config().sampling_rate
    }

    /// Samples per frame of the finest codebook's stride 1 (the encoder's total stride).
    #[getter]
    fn hop_length(&self) -> usize {
        self.model.config().hop_length()
    }

    /// The number of codebooks (scales), coarsest first.
    #[getter]
    fn n_codebooks(&self) -> usize {
        self.model.config().n_codebooks()
    }

    /// Entries per codebook.
    #[getter]
    fn codebook_size(&self) -> usize {
        self.model.config().codebook_size
    }

    /// Codes per second of each codebook (coarsest first), as `audiotok encode` records them.
    #[getter]
    fn rates_hz(&self) -> Vec<f64> {
        self.model.config().token_rates_hz()
    }

    /// Each codebook's stride in frames (coarsest first).
    #[getter]
    fn vq_strides(&self) -> Vec<usize> {
        self.model.config().vq_strides.clone()
    }

    /// The configuration as JSON text (the fields of `config.json`, defaults filled in).
    fn config_json(&self) -> PyResult<String> {
        serde_json::to_string(self.model.config()).map_err(|e| CodecError::new_err(e.to_string()))
    }

    /// Codes of one mono clip at `rate` Hz (resampled to the model's rate with libsoxr HQ as
    /// `audiotok encode` resamples): one int64 array per codebook, coarsest first.
    fn encode<'py>(
        &self,
        py: Python<'py>,
        samples: PyReadonlyArray1<'py, f32>,
        rate: u32,
    ) -> PyResult<Vec<Bound<'py, PyArray1<i64>>>> {
        let x = samples.as_array().to_vec();
        let pool = self.pool()?;
        let segments =
            py.detach(|| pool.install(|| job::encode_audio(&self.model, &x, rate, 0.0))).map_err(codec_err)?;
        let codes = segments.into_iter().next().map(|s| s.codes).unwrap_or_default();
        Ok(codes.into_iter().map(|c| c.into_iter().map(i64::from).collect::<Vec<_>>().into_pyarray(py)).collect())
    }

    /// A clip cut as `audiotok encode` cuts a file: resampled to the model's rate, segments of
    /// `segment_seconds` (0: one segment), a last remainder shorter than one hop dropped. Returns
    /// `(duration, codes)` per segment, codes one uint32 array per codebook (a token store's
    /// record `path#k` per segment, `path` alone when there is one segment of everything).
    #[pyo3(signature = (samples, rate, segment_seconds))]
    fn encode_segments<'py>(
        &self,
        py: Python<'py>,
        samples: PyReadonlyArray1<'py, f32>,
        rate: u32,
        segment_seconds: f64,
    ) -> PyResult<Vec<Segment<'py>>> {
        let x = samples.as_array().to_vec();
        let pool = self.pool()?;
        let segments = py
            .detach(|| pool.install(|| job::encode_audio(&self.model, &x, rate, segment_seconds)))
            .map_err(codec_err)?;
        Ok(segments
            .into_iter()
            .map(|s| (s.duration, s.codes.into_iter().map(|c| c.into_pyarray(py)).collect()))
            .collect())
    }

    /// Codes of a batch of mono clips of one length (rows of `samples`) at `rate` Hz: one
    /// `[batch, frames]` int64 array per codebook. Rows are encoded in parallel, each exactly as
    /// [`Snac::encode`] encodes it.
    fn encode_batch<'py>(
        &self,
        py: Python<'py>,
        samples: PyReadonlyArray2<'py, f32>,
        rate: u32,
    ) -> PyResult<Vec<Bound<'py, PyArray2<i64>>>> {
        let a = samples.as_array();
        let rows: Vec<Vec<f32>> = a.rows().into_iter().map(|r| r.to_vec()).collect();
        let pool = self.pool()?;
        let per_row = py
            .detach(|| {
                pool.install(|| {
                    rows.par_iter()
                        .enumerate()
                        .map(|(i, r)| {
                            job::encode_audio(&self.model, r, rate, 0.0)
                                .map(|s| s.into_iter().next().map(|s| s.codes).unwrap_or_default())
                                .map_err(|e| format!("row {i}: {}", audiotok_core::error_text(&e)))
                        })
                        .collect::<Result<Vec<_>, String>>()
                })
            })
            .map_err(CodecError::new_err)?;
        let n = self.model.config().n_codebooks();
        let mut out = Vec::with_capacity(n);
        for k in 0..n {
            let t = per_row.first().map_or(0, |r| r[k].len());
            let flat: Vec<i64> = per_row.iter().flat_map(|r| r[k].iter().map(|&c| i64::from(c))).collect();
            let arr = ndarray::Array2::from_shape_vec((per_row.len(), t), flat)
                .map_err(|e| CodecError::new_err(format!("codebook {k}: {e}")))?;
            out.push(arr.into_pyarray(py));
        }
        Ok(out)
    }

    /// Audio (float32 at the model's rate, the padded length) of one clip's codes (one array per
    /// codebook, coarsest first), as `audiotok decode` decodes a record; cut to `duration`
    /// seconds when given and shorter. `noise_seed`: `None` leaves the decoder's noise layers out
    /// (deterministic: the reference with noise disabled), a seed adds their N(0, 1) noise from
    /// that seed.
    #[pyo3(signature = (codes, *, duration = 0.0, noise_seed = None))]
    fn decode<'py>(
        &self,
        py: Python<'py>,
        codes: Vec<PyReadonlyArray1<'py, i64>>,
        duration: f64,
        noise_seed: Option<u64>,
    ) -> PyResult<Bound<'py, PyArray1<f32>>> {
        let raw: Vec<Vec<i64>> = codes.iter().map(|c| c.as_array().to_vec()).collect();
        let codes = self.codes_of(&raw)?;
        let pool = self.pool()?;
        let mut rng = noise_seed.map(NoiseRng::new);
        let audio = py
            .detach(|| pool.install(|| job::decode_audio(&self.model, &codes, duration, rng.as_mut())))
            .map_err(codec_err)?;
        Ok(audio.into_pyarray(py))
    }

    /// Audio of a batch of clips' codes (one `[batch, frames]` array per codebook): `[batch,
    /// samples]` float32, each row decoded as [`Snac::decode`] decodes it (row `i` with noise
    /// seed `noise_seed + i` when one is given).
    #[pyo3(signature = (codes, *, noise_seed = None))]
    fn decode_batch<'py>(
        &self,
        py: Python<'py>,
        codes: Vec<PyReadonlyArray2<'py, i64>>,
        noise_seed: Option<u64>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let arrays: Vec<_> = codes.iter().map(|c| c.as_array()).collect();
        let batch = arrays.first().map_or(0, |a| a.nrows());
        if let Some((k, a)) = arrays.iter().enumerate().find(|(_, a)| a.nrows() != batch) {
            return Err(CodecError::new_err(format!("codes[{k}] has {} rows, codes[0] {batch}", a.nrows())));
        }
        let rows: Vec<Vec<Vec<u32>>> = (0..batch)
            .map(|i| {
                let raw: Vec<Vec<i64>> = arrays.iter().map(|a| a.row(i).to_vec()).collect();
                self.codes_of(&raw).map_err(|e| CodecError::new_err(format!("row {i}: {e}")))
            })
            .collect::<PyResult<_>>()?;
        let pool = self.pool()?;
        let audio = py
            .detach(|| {
                pool.install(|| {
                    rows.par_iter()
                        .enumerate()
                        .map(|(i, c)| {
                            let mut rng = noise_seed.map(|s| NoiseRng::new(s.wrapping_add(i as u64)));
                            job::decode_audio(&self.model, c, 0.0, rng.as_mut())
                                .map_err(|e| format!("row {i}: {}", audiotok_core::error_text(&e)))
                        })
                        .collect::<Result<Vec<_>, String>>()
                })
            })
            .map_err(CodecError::new_err)?;
        let t = audio.first().map_or(0, Vec::len);
        let flat: Vec<f32> = audio.into_iter().flatten().collect();
        let arr = ndarray::Array2::from_shape_vec((batch, t), flat).map_err(|e| CodecError::new_err(e.to_string()))?;
        Ok(arr.into_pyarray(py))
    }

    fn __repr__(&self) -> String {
        format!(
            "SNAC({:?}, sampling_rate={}, n_codebooks={}, device={:?})",
            self.model_id,
            self.model.config().sampling_rate,
            self.model.config().n_codebooks(),
            self.device
        )
    }
}
