//! BSQ spectrogram tokenizers (`audiotok.bsq`): training, audio to codes and codes back to mel-db,
//! as `audiotok bsq train|encode|decode|eval` run them.

use std::path::PathBuf;

use audiotok_bsq::data::{unscale_db, SAMPLE_RATE};
use audiotok_bsq::infer::{self, Codes, DecodeOptions, EncodeOptions, Tokenizer, Weights};
use audiotok_bsq::{eval, job, TrainConfig};
use numpy::{IntoPyArray, PyArray2, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::BsqError;
use crate::progress::PyProgress;

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<BsqTokenizer>()?;
    m.add_function(wrap_pyfunction!(bsq_train_json, m)?)?;
    m.add_function(wrap_pyfunction!(bsq_encode_files_json, m)?)?;
    m.add_function(wrap_pyfunction!(bsq_decode_store_json, m)?)?;
    m.add_function(wrap_pyfunction!(bsq_evaluate_json, m)?)?;
    Ok(())
}

impl job::TrainObserver for PyProgress {}

fn bsq_err(e: impl std::error::Error + 'static) -> PyErr {
    BsqError::new_err(audiotok_core::error_text(&e))
}

fn weights_of(weights: &str) -> PyResult<Weights> {
    match weights {
        "ema" => Ok(Weights::Ema),
        "live" => Ok(Weights::Live),
        w => Err(BsqError::new_err(format!("weights {w:?}: expected \"ema\" or \"live\""))),
    }
}

fn json<T: serde::Serialize>(v: &T) -> PyResult<String> {
    serde_json::to_string(v).map_err(|e| BsqError::new_err(e.to_string()))
}

/// One clip's result: `(duration, scales)` or why it gives no codes.
type ClipCodes<'py> = (Option<f64>, Option<Vec<Bound<'py, PyArray2<u32>>>>, Option<String>);

/// A trained BSQ tokenizer, loaded as `audiotok bsq encode --model` loads it: a run folder (its
/// latest checkpoint) or a checkpoint folder; `weights` `"ema"` (the EMA weights where the
/// checkpoint has them) or `"live"`. Work runs without the GIL on a pool of `num_threads` threads
/// (0: one per core) built for each call.
#[pyclass(frozen, module = "audiotok._audiotok")]
pub struct BsqTokenizer {
    model_path: PathBuf,
    device: String,
    num_threads: usize,
    tok: Tokenizer,
}

impl BsqTokenizer {
    fn pool(&self) -> PyResult<rayon::ThreadPool> {
        audiotok_core::thread_pool(self.num_threads).map_err(bsq_err)
    }

    fn codes_array<'py>(&self, py: Python<'py>, codes: Codes) -> PyResult<Bound<'py, PyArray2<i64>>> {
        let v: Vec<i64> = codes.indices.iter().map(|&i| i64::from(i)).collect();
        let a = ndarray::Array2::from_shape_vec((codes.time_patches, codes.freq_patches), v)
            .map_err(|e| BsqError::new_err(e.to_string()))?;
        Ok(a.into_pyarray(py))
    }
}

#[pymethods]
impl BsqTokenizer {
    #[new]
    #[pyo3(signature = (model, *, weights = "ema", device = "cpu", num_threads = 0))]
    fn new(py: Python<'_>, model: PathBuf, weights: &str, device: &str, num_threads: usize) -> PyResult<Self> {
        audiotok_core::check_jobs(num_threads).map_err(bsq_err)?;
        let w = weights_of(weights)?;
        let dev = job::device(device).map_err(bsq_err)?;
        let tok = py.detach(|| Tokenizer::load(&model, w, &dev)).map_err(bsq_err)?;
        Ok(Self { model_path: model, device: device.to_string(), num_threads, tok })
    }

    /// The model's configuration as JSON text.
    fn config_json(&self) -> PyResult<String> {
        json(self.tok.config())
    }

    /// Bits per token `L` (codes run below `2^L`).
    #[getter]
    fn bits(&self) -> usize {
        self.tok.config().bits
    }

    /// Bits per group `g` (the group scales' codes run below `2^g`).
    #[getter]
    fn group_size(&self) -> usize {
        self.tok.config().group_size
    }

    /// Mel bins of the features.
    #[getter]
    fn n_mels(&self) -> usize {
        self.tok.config().n_mels
    }

    /// Frequency patches per time patch (the codes' second axis).
    #[getter]
    fn freq_patches(&self) -> usize {
        self.tok.config().freq_patches()
    }

    /// Feature frames per time patch (frames at 100 per second).
    #[getter]
    fn time_patch(&self) -> usize {
        self.tok.config().time_patch
    }

    /// The audio rate the features are computed at (Hz).
    #[getter]
    fn sampling_rate(&self) -> u32 {
        SAMPLE_RATE
    }

    /// Tokens per second of audio.
    #[getter]
    fn rate_hz(&self) -> f64 {
        self.tok.rate_hz()
    }

    /// The checkpoint folder loaded.
    #[getter]
    fn checkpoint(&self) -> String {
        audiotok_core::path_text(self.tok.checkpoint())
    }

    /// `"ema"` or `"live"`: the weights loaded.
    #[getter]
    fn weights(&self) -> String {
        self.tok.weights().to_string()
    }

    /// The token store layout of `audiotok bsq encode` as JSON text: `codebook_sizes`,
    /// `rates_hz`, `provenance` (what its `metadata.json` holds) and `num_scales`.
    #[pyo3(signature = (group_scales = true))]
    fn store_layout_json(&self, group_scales: bool) -> PyResult<String> {
        let so = self.tok.store_options(group_scales, 1).map_err(bsq_err)?;
        json(&serde_json::json!({
            "num_scales": so.num_scales,
            "codebook_sizes": so.codebook_sizes,
            "rates_hz": so.rates_hz,
            "provenance": so.provenance,
        }))
    }

    /// Codes of one mono clip at `rate` Hz, as `audiotok bsq encode` encodes a file: resampled to
    /// 16 kHz with libsoxr HQ, mel-db features, consecutive crops (the tail padded to a patch),
    /// `crops_per_call` crops per model call. Returns int64 `[time_patches, freq_patches]`
    /// (MSB-first indices below `2^bits`, time-major). An empty, non-finite or silent clip raises
    /// `BsqError`.
    #[pyo3(signature = (samples, rate, *, crops_per_call = 8))]
    fn encode<'py>(
        &self,
        py: Python<'py>,
        samples: PyReadonlyArray1<'py, f32>,
        rate: u32,
        crops_per_call: usize,
    ) -> PyResult<Bound<'py, PyArray2<i64>>> {
        let x = samples.as_array().to_vec();
        let pool = self.pool()?;
        let (_, codes) =
            py.detach(|| pool.install(|| self.tok.encode_audio("audio", &x, rate, crops_per_call))).map_err(bsq_err)?;
        self.codes_array(py, codes)
    }

    /// Codes of scaled mel-db features (float32 `[n_mels, frames]`, values in `[-1, 1]`, as the
    /// model is trained on): int64 `[time_patches, freq_patches]`.
    #[pyo3(signature = (mel, *, crops_per_call = 8))]
    fn encode_mel<'py>(
        &self,
        py: Python<'py>,
        mel: PyReadonlyArray2<'py, f32>,
        crops_per_call: usize,
    ) -> PyResult<Bound<'py, PyArray2<i64>>> {
        let shape = mel.shape().to_vec();
        if shape[0] != self.tok.config().n_mels {
            return Err(BsqError::new_err(format!(
                "features of shape {shape:?}: expected [{}, frames]",
                self.tok.config().n_mels
            )));
        }
        let x: Vec<f32> = mel.as_array().iter().copied().collect();
        let pool = self.pool()?;
        let codes =
            py.detach(|| pool.install(|| self.tok.encode_mel(&x, shape[1], crops_per_call))).map_err(bsq_err)?;
        self.codes_array(py, codes)
    }

    /// Clips as `audiotok bsq encode` encodes files, for a token store: per clip `(duration,
    /// scales, None)` (scales uint32 `[time_patches, freq_patches]` each: scale 0, then the group
    /// scales when `group_scales` and `g < L`) or `(None, None, reason)`, the reason naming the
    /// clip by `names[i]` (default `clip i`).
    #[pyo3(signature = (clips, rate, *, names = None, group_scales = true, crops_per_call = 8))]
    #[allow(clippy::too_many_arguments)]
    fn encode_clips<'py>(
        &self,
        py: Python<'py>,
        clips: Vec<PyReadonlyArray1<'py, f32>>,
        rate: u32,
        names: Option<Vec<String>>,
        group_scales: bool,
        crops_per_call: usize,
    ) -> PyResult<Vec<ClipCodes<'py>>> {
        if names.as_ref().is_some_and(|n| n.len() != clips.len()) {
            return Err(BsqError::new_err("names: one per clip"));
        }
        let names: Vec<String> = names.unwrap_or_else(|| (0..clips.len()).map(|i| format!("clip {i}")).collect());
        let raw: Vec<Vec<f32>> = clips.iter().map(|c| c.as_array().to_vec()).collect();
        let pool = self.pool()?;
        let got: Vec<Result<(f64, Vec<audiotok_tokens::store::ScaleTokens>), String>> = py.detach(|| {
            pool.install(|| {
                raw.iter()
                    .enumerate()
                    .map(|(i, x)| {
                        let (d, codes) = self
                            .tok
                            .encode_audio(&names[i], x, rate, crops_per_call)
                            .map_err(|e| audiotok_core::error_text(&e))?;
                        Ok((d, self.tok.scales(&codes, group_scales)))
                    })
                    .collect()
            })
        });
        got.into_iter()
            .map(|r| match r {
                Err(e) => Ok((None, None, Some(e))),
                Ok((d, scales)) => {
                    let arrays = scales
                        .into_iter()
                        .map(|s| {
                            let (t, f) = (s.shape[0] as usize, s.shape[1] as usize);
                            ndarray::Array2::from_shape_vec((t, f), s.tokens)
                                .map(|a| a.into_pyarray(py))
                                .map_err(|e| BsqError::new_err(e.to_string()))
                        })
                        .collect::<PyResult<Vec<_>>>()?;
                    Ok((Some(d), Some(arrays), None))
                }
            })
            .collect()
    }

    /// Mel-db (float32 `[n_mels, frames]`, in dB, `[-80, 0]`) of codes (`[time_patches,
    /// freq_patches]` or flat, time-major), decoded crop by crop; `frames` keeps the first
    /// `frames` (a file's own length, as `audiotok bsq decode` cuts the tail's padding).
    #[pyo3(signature = (codes, *, frames = None))]
    fn decode<'py>(
        &self,
        py: Python<'py>,
        codes: PyReadonlyArray1<'py, i64>,
        frames: Option<usize>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let mut idx = Vec::with_capacity(codes.len());
        for (i, &c) in codes.as_array().iter().enumerate() {
            idx.push(u32::try_from(c).map_err(|_| BsqError::new_err(format!("codes[{i}]: {c} is not a code")))?);
        }
        let pool = self.pool()?;
        let (n, mel) = py.detach(|| pool.install(|| self.tok.decode(&idx))).map_err(bsq_err)?;
        let keep = frames.unwrap_or(n).min(n);
        let m = self.tok.config().n_mels;
        let mut db = Vec::with_capacity(m * keep);
        for r in 0..m {
            db.extend(mel[r * n..r * n + keep].iter().map(|&v| unscale_db(v)));
        }
        let a = ndarray::Array2::from_shape_vec((m, keep), db).map_err(|e| BsqError::new_err(e.to_string()))?;
        Ok(a.into_pyarray(py))
    }

    /// The mono 16 kHz signal's mel-db features as the model takes them (float32 `[n_mels,
    /// frames]`, scaled to `[-1, 1]`).
    fn features<'py>(
        &self,
        py: Python<'py>,
        samples: PyReadonlyArray1<'py, f32>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let x = samples.as_array().to_vec();
        let m = self.tok.config().n_mels;
        let (frames, feats) = py.detach(|| {
            let mut mel = audiotok_features::meldb::MelDb::new(audiotok_bsq::data::meldb_config(m));
            audiotok_bsq::data::features(&mut mel, &x)
        });
        let a = ndarray::Array2::from_shape_vec((m, frames), feats).map_err(|e| BsqError::new_err(e.to_string()))?;
        Ok(a.into_pyarray(py))
    }

    fn __repr__(&self) -> String {
        let c = self.tok.config();
        format!(
            "BsqTokenizer({:?}, bits={}, group_size={}, n_mels={}, weights={:?})",
            audiotok_core::path_text(&self.model_path),
            c.bits,
            c.group_size,
            c.n_mels,
            self.tok.weights()
        )
    }

    /// Pickles as its arguments (the weights are read again where it is unpickled).
    fn __getnewargs_ex__<'py>(&self, py: Python<'py>) -> PyResult<((PathBuf,), Bound<'py, PyDict>)> {
        let kw = PyDict::new(py);
        kw.set_item("weights", self.tok.weights())?;
        kw.set_item("device", &self.device)?;
        kw.set_item("num_threads", self.num_threads)?;
        Ok(((self.model_path.clone(),), kw))
    }
}

/// The training job of `audiotok bsq train`: `config_json` (a `TrainConfig`; `None` with
/// `resume`: the run's own), `data` (audio files, folders, `.jsonl`/`.csv` manifests), the run
/// folder `out`; `stop_at` stops with a checkpoint after that update. The GIL is released;
/// `progress(phase, done, total)` is called as it goes (phases `features`, in files, and
/// `train`, in steps). Returns the summary (`audiotok bsq train --json`'s object plus `log`, the
/// lines of `metrics.jsonl`) as JSON text. (The loss-curve PNG is the CLI's.)
#[pyfunction]
#[pyo3(signature = (config_json, data, out, *, resume = false, stop_at = None, device = "cpu", progress = None))]
#[allow(clippy::too_many_arguments)]
fn bsq_train_json(
    py: Python<'_>,
    config_json: Option<&str>,
    data: Vec<PathBuf>,
    out: PathBuf,
    resume: bool,
    stop_at: Option<u64>,
    device: &str,
    progress: Option<Py<PyAny>>,
) -> PyResult<String> {
    let config = match config_json {
        None if resume => None,
        None => return Err(BsqError::new_err("a configuration is needed for a new run (optional only with resume)")),
        Some(text) => {
            let c: TrainConfig = serde_json::from_str(text)
                .map_err(|e| BsqError::new_err(format!("not a BSQ training configuration: {e}")))?;
            c.validate().map_err(bsq_err)?;
            Some(c)
        }
    };
    let dev = job::device(device).map_err(bsq_err)?;
    let opts = job::TrainOptions { config, data, out, resume, stop_at };
    let observer = PyProgress::new(progress);
    py.detach(|| {
        let summary = job::train(&opts, &dev, &observer).map_err(bsq_err)?;
        json(&summary)
    })
}

/// The job of `audiotok bsq encode`: `inputs` (files or folders) to the token store `output`.
/// Returns its `--json` summary as JSON text.
#[pyfunction]
#[pyo3(signature = (model, inputs, output, *, weights = "ema", batch_size = 1000, crops_per_call = 8,
                    group_scales = true, device = "cpu", progress = None))]
#[allow(clippy::too_many_arguments)]
fn bsq_encode_files_json(
    py: Python<'_>,
    model: PathBuf,
    inputs: Vec<PathBuf>,
    output: PathBuf,
    weights: &str,
    batch_size: usize,
    crops_per_call: usize,
    group_scales: bool,
    device: &str,
    progress: Option<Py<PyAny>>,
) -> PyResult<String> {
    let opts = EncodeOptions {
        model,
        inputs,
        output,
        weights: weights_of(weights)?,
        batch_size,
        crops_per_call,
        group_scales,
    };
    let dev = job::device(device).map_err(bsq_err)?;
    let observer = PyProgress::new(progress);
    py.detach(|| json(&infer::encode(&opts, &dev, &observer).map_err(bsq_err)?))
}

/// The job of `audiotok bsq decode`: every record of the store `input` to `out/<name>.npy`
/// (mel-db in dB) and, with `wav_iters`, a Griffin-Lim `.wav`. Returns the records decoded as
/// JSON text.
#[pyfunction]
#[pyo3(signature = (model, input, out, *, weights = "ema", wav_iters = None, device = "cpu", progress = None))]
#[allow(clippy::too_many_arguments)]
fn bsq_decode_store_json(
    py: Python<'_>,
    model: PathBuf,
    input: PathBuf,
    out: PathBuf,
    weights: &str,
    wav_iters: Option<usize>,
    device: &str,
    progress: Option<Py<PyAny>>,
) -> PyResult<String> {
    let opts = DecodeOptions { model, input, out, weights: weights_of(weights)?, wav_iters };
    let dev = job::device(device).map_err(bsq_err)?;
    let observer = PyProgress::new(progress);
    py.detach(|| json(&infer::decode(&opts, &dev, &observer).map_err(bsq_err)?))
}

/// The report of `audiotok bsq eval --json` on `data` as JSON text.
#[pyfunction]
#[pyo3(signature = (model, data, *, weights = "ema", device = "cpu", progress = None))]
fn bsq_evaluate_json(
    py: Python<'_>,
    model: PathBuf,
    data: Vec<PathBuf>,
    weights: &str,
    device: &str,
    progress: Option<Py<PyAny>>,
) -> PyResult<String> {
    let opts = eval::EvalOptions { model, data, weights: weights_of(weights)? };
    let dev = job::device(device).map_err(bsq_err)?;
    let observer = PyProgress::new(progress);
    py.detach(|| json(&eval::evaluate(&opts, &dev, &observer).map_err(bsq_err)?))
}
