//! Continuous encoders (`audiotok.encoders.Encoder`): audio arrays to HuBERT / wav2vec2,
//! Qwen2-Audio tower and Whisper encoder outputs, as `audiotok embed` computes them.

use std::path::PathBuf;

use audiotok_encoders::job::{self, ClipEmbedding, EmbedOptions, Layers, Pool, Stage};
use audiotok_encoders::{Encoder as Model, Tap};
use numpy::{IntoPyArray, PyArrayDyn, PyReadonlyArray1};
use pyo3::prelude::*;
use rayon::prelude::*;

use crate::errors::EmbedError;
use crate::progress::PyProgress;

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Encoder>()?;
    m.add_function(wrap_pyfunction!(embed_files_json, m)?)?;
    Ok(())
}

fn embed_err(e: impl std::error::Error + 'static) -> PyErr {
    EmbedError::new_err(audiotok_core::error_text(&e))
}

/// `"final"`, `"all"` or a list of hidden-state indices.
fn layers_of(layers: &Bound<'_, PyAny>) -> PyResult<Layers> {
    if let Ok(s) = layers.extract::<String>() {
        return match s.as_str() {
            "final" => Ok(Layers::Final),
            "all" => Ok(Layers::All),
            other => Err(EmbedError::new_err(format!(
                "layers {other:?}: expected \"final\", \"all\" or a list of hidden-state indices"
            ))),
        };
    }
    if let Ok(i) = layers.extract::<usize>() {
        return Ok(Layers::List(vec![i]));
    }
    layers.extract::<Vec<usize>>().map(Layers::List).map_err(|_| {
        EmbedError::new_err("layers: expected \"final\", \"all\", an index or a list of non-negative indices")
    })
}

fn stage_of(stage: &str) -> PyResult<Stage> {
    match stage {
        "encoder" => Ok(Stage::Encoder),
        "projected" => Ok(Stage::Projected),
        s => Err(EmbedError::new_err(format!("stage {s:?}: expected \"encoder\" or \"projected\""))),
    }
}

fn pool_of(pool: Option<&str>) -> PyResult<Pool> {
    match pool {
        None | Some("none") => Ok(Pool::None),
        Some("mean") => Ok(Pool::Mean),
        Some(p) => Err(EmbedError::new_err(format!("pool {p:?}: expected None, \"none\" or \"mean\""))),
    }
}

/// One clip's result: the array, or why it could not be embedded.
type ClipResult<'py> = (Option<Bound<'py, PyArrayDyn<f32>>>, Option<String>);

/// An encoder loaded as `audiotok embed --model` loads it (a folder with `config.json` and
/// safetensors, or a hub id in the local Hugging Face cache; a sharded Qwen2-Audio folder reads
/// only the audio tower and projector). Work runs without the GIL on a pool of `num_threads`
/// threads (0: one per core) built for each call.
#[pyclass(frozen, module = "audiotok._audiotok")]
pub struct Encoder {
    model_id: String,
    num_threads: usize,
    model: Model,
}

#[pymethods]
impl Encoder {
    #[new]
    #[pyo3(signature = (model, *, num_threads = 0))]
    fn new(py: Python<'_>, model: String, num_threads: usize) -> PyResult<Self> {
        audiotok_core::check_jobs(num_threads).map_err(embed_err)?;
        let loaded = py.detach(|| Model::load(&model)).map_err(embed_err)?;
        Ok(Self { model_id: model, num_threads, model: loaded })
    }

    /// The model's family: `"wav2vec2"` (HuBERT, wav2vec2, data2vec-audio), `"qwen2_audio"` or `"whisper"`.
    #[getter]
    fn family(&self) -> &'static str {
        self.model.config.family()
    }

    /// Encoder layers (hidden states run 0 to this).
    #[getter]
    fn num_layers(&self) -> usize {
        self.model.num_layers()
    }

    /// The shortest clip (16 kHz samples) with an output frame.
    #[getter]
    fn min_samples(&self) -> usize {
        self.model.min_samples()
    }

    /// SHA-1 of the folder's `config.json` (as `manifest.jsonl` records it).
    #[getter]
    fn config_sha1(&self) -> String {
        self.model.config_sha1.clone()
    }

    /// The model folder the weights were read from.
    #[getter]
    fn model_dir(&self) -> String {
        self.model.dir.display().to_string()
    }

    /// `(labels, dim, frame_rate_hz)` of what `layers` and `stage` select (labels as
    /// `manifest.jsonl`'s `layers`: `"final"`, `"projected"` or an index).
    #[pyo3(signature = (layers = None, stage = "encoder"))]
    fn describe(&self, layers: Option<&Bound<'_, PyAny>>, stage: &str) -> PyResult<(Vec<String>, usize, f64)> {
        let taps = self.taps(layers, stage)?;
        let first = taps.first().copied().unwrap_or(Tap::Final);
        Ok((taps.iter().map(job::tap_label).collect(), self.model.dim(first), self.model.frame_rate(first)))
    }

    /// Embeds mono clips at `rate` Hz (resampled to 16 kHz with libsoxr HQ as `audiotok embed`
    /// resamples files), each as `audiotok embed` embeds a file (windows of long clips joined,
    /// clips sorted by length and embedded `batch_size` at a time: the numbers do not depend on
    /// the batch). Returns `(array, error)` per clip: float32 `(frames, dim)` for one layer,
    /// `(layers, frames, dim)` for several (`pool="mean"`: `(dim,)` / `(layers, dim)`), or `None`
    /// and why (too short for the model, a non-finite sample).
    #[pyo3(signature = (clips, rate, *, layers = None, stage = "encoder", pool = None, batch_size = 8))]
    #[allow(clippy::too_many_arguments)]
    fn embed<'py>(
        &self,
        py: Python<'py>,
        clips: Vec<PyReadonlyArray1<'py, f32>>,
        rate: u32,
        layers: Option<&Bound<'py, PyAny>>,
        stage: &str,
        pool: Option<&str>,
        batch_size: usize,
    ) -> PyResult<Vec<ClipResult<'py>>> {
        if batch_size == 0 || batch_size > job::MAX_BATCH_SIZE {
            return Err(EmbedError::new_err(format!("batch_size {batch_size}: 1 to {}", job::MAX_BATCH_SIZE)));
        }
        let taps = self.taps(layers, stage)?;
        let pool_kind = pool_of(pool)?;
        let raw: Vec<Vec<f32>> = clips.iter().map(|c| c.as_array().to_vec()).collect();
        let threads = audiotok_core::thread_pool(self.num_threads).map_err(embed_err)?;
        let results: Vec<Result<ClipEmbedding, String>> = py.detach(|| {
            threads.install(|| {
                let resampled: Vec<Result<Vec<f32>, String>> = raw
                    .into_par_iter()
                    .map(|x| {
                        if rate == 16_000 {
                            Ok(x)
                        } else {
                            audiotok_audio::resample(&x, rate, 16_000).map_err(|e| audiotok_core::error_text(&e))
                        }
                    })
                    .collect();
                let ok: Vec<&[f32]> = resampled.iter().filter_map(|r| r.as_ref().ok().map(|v| v.as_slice())).collect();
                let mut embedded = job::embed_clips(&self.model, &taps, &ok, pool_kind, batch_size).into_iter();
                resampled
                    .iter()
                    .map(|r| match r {
                        Ok(_) => embedded.next().unwrap_or_else(|| Err("internal: clip not embedded".into())),
                        Err(e) => Err(e.clone()),
                    })
                    .collect()
            })
        });
        results
            .into_iter()
            .map(|r| match r {
                Ok(e) => {
                    let arr = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&e.shape), e.data)
                        .map_err(|err| EmbedError::new_err(err.to_string()))?;
                    Ok((Some(arr.into_pyarray(py)), None))
                }
                Err(e) => Ok((None, Some(e))),
            })
            .collect()
    }

    fn __repr__(&self) -> String {
        format!(
            "Encoder({:?}, family={:?}, num_layers={})",
            self.model_id,
            self.model.config.family(),
            self.model.num_layers()
        )
    }

    /// Pickles as its arguments (the weights are read again where it is unpickled).
    fn __getnewargs_ex__(&self) -> ((String,), std::collections::HashMap<String, usize>) {
        ((self.model_id.clone(),), [("num_threads".to_string(), self.num_threads)].into_iter().collect())
    }
}

impl Encoder {
    fn taps(&self, layers: Option<&Bound<'_, PyAny>>, stage: &str) -> PyResult<Vec<Tap>> {
        let layers = match layers {
            None => Layers::Final,
            Some(l) => layers_of(l)?,
        };
        job::taps(&self.model, &layers, stage_of(stage)?).map_err(embed_err)
    }
}

/// Runs `audiotok_encoders::job::embed_files` (what `audiotok embed` runs) on `inputs` (files,
/// or folders walked for audio as the CLI walks them) into `out`, with `options_json` (an
/// `EmbedOptions`), the GIL released; `progress(phase, done, total)` is called as it goes.
/// Returns the summary (`audiotok embed --json`'s object) as JSON text.
#[pyfunction]
#[pyo3(signature = (inputs, out, options_json, *, progress = None))]
fn embed_files_json(
    py: Python<'_>,
    inputs: Vec<PathBuf>,
    out: PathBuf,
    options_json: &str,
    progress: Option<Py<PyAny>>,
) -> PyResult<String> {
    let options: EmbedOptions =
        serde_json::from_str(options_json).map_err(|e| EmbedError::new_err(format!("options: {e}")))?;
    let observer = PyProgress::new(progress);
    py.detach(|| {
        let found = audiotok_core::collect(&inputs).map_err(embed_err)?;
        let summary = job::embed_files(&found.files, &out, &options, &observer).map_err(embed_err)?;
        serde_json::to_string(&summary).map_err(|e| EmbedError::new_err(e.to_string()))
    })
}
