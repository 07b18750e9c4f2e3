//! Audio in: `load` (a path or bytes in memory), `info`, `resample`.

use std::path::PathBuf;

use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1};
use pyo3::prelude::*;

use crate::errors;

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<AudioInfo>()?;
    m.add_function(wrap_pyfunction!(load, m)?)?;
    m.add_function(wrap_pyfunction!(load_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(info, m)?)?;
    m.add_function(wrap_pyfunction!(resample, m)?)?;
    Ok(())
}

/// What a file's container says about its audio (`audiotok.info`), named as soundfile names it.
#[pyclass(frozen, get_all, module = "audiotok._audiotok")]
pub struct AudioInfo {
    /// The file, as given.
    name: PathBuf,
    /// Sample rate in Hz.
    samplerate: u32,
    /// Number of channels.
    channels: usize,
    /// Frames per channel: verified against the end of the stream when `exact_length`, an
    /// estimate otherwise, `None` when the container states none.
    frames: Option<u64>,
    /// `frames / samplerate`.
    duration: Option<f64>,
    /// Container (`wave`, `flac`, `mp3`, `ogg`).
    format: String,
    /// Codec (`pcm_s16le`, `flac`, `mp3`, `vorbis`, ...).
    subtype: String,
    /// Bits per stored sample, when stated.
    bits_per_sample: Option<u32>,
    /// Whether `frames` is exact.
    exact_length: bool,
}

#[pymethods]
impl AudioInfo {
    fn __repr__(&self) -> String {
        let opt = |v: Option<String>| v.unwrap_or_else(|| "None".into());
        format!(
            "AudioInfo(name={:?}, samplerate={}, channels={}, frames={}, duration={}, format={:?}, subtype={:?}, exact_length={})",
            self.name.display().to_string(),
            self.samplerate,
            self.channels,
            opt(self.frames.map(|f| f.to_string())),
            opt(self.duration.map(|d| format!("{d:.6}"))),
            self.format,
            self.subtype,
            if self.exact_length { "True" } else { "False" }
        )
    }
}

/// Decodes `path`, downmixes to mono when `mono`, and resamples to `sr` Hz with libsoxr HQ
/// (`None` keeps the file's rate), as `librosa.load(path, sr=sr, mono=mono)` does with its default
/// `res_type="soxr_hq"`. Returns `(samples, rate)`: float32, shape `(n,)` when mono, else
/// `(channels, n)`.
#[pyfunction]
#[pyo3(signature = (path, sr = Some(16000), mono = true), text_signature = "(path, sr=16000, mono=True)")]
fn load<'py>(py: Python<'py>, path: PathBuf, sr: Option<u32>, mono: bool) -> PyResult<(Bound<'py, PyAny>, u32)> {
    let opts = audiotok_audio::LoadOptions { target_rate: sr, mono };
    let audio = py.detach(|| audiotok_audio::load(&path, &opts)).map_err(errors::audio)?;
    audio_to_py(py, audio)
}

/// [`load`] for an encoded file held in memory (`bytes`): the same samples as the same bytes on
/// disk give. `name` stands for them in errors (a record id such as `shard.parquet#12`); its
/// extension, if any, hints the container.
#[pyfunction]
#[pyo3(signature = (data, sr = Some(16000), mono = true, name = "<bytes>"), text_signature = "(data, sr=16000, mono=True, name='<bytes>')")]
fn load_bytes<'py>(
    py: Python<'py>,
    data: &[u8],
    sr: Option<u32>,
    mono: bool,
    name: &str,
) -> PyResult<(Bound<'py, PyAny>, u32)> {
    let opts = audiotok_audio::LoadOptions { target_rate: sr, mono };
    let name = PathBuf::from(name);
    let data = data.to_vec();
    let audio = py.detach(|| audiotok_audio::load_bytes(&name, data, &opts)).map_err(errors::audio)?;
    audio_to_py(py, audio)
}

/// `(samples, rate)` as librosa returns them: `(n,)` when mono, else `(channels, n)`.
fn audio_to_py(py: Python<'_>, audio: audiotok_audio::Audio) -> PyResult<(Bound<'_, PyAny>, u32)> {
    let rate = audio.sample_rate;
    let channels = audio.channels.max(1);
    if channels == 1 {
        return Ok((audio.samples.into_pyarray(py).into_any(), rate));
    }
    // Interleaved frames to channel rows, as librosa returns them.
    let frames = audio.samples.len() / channels;
    let planar = py.detach(|| {
        let mut out = vec![0f32; frames * channels];
        for (f, frame) in audio.samples.chunks_exact(channels).enumerate() {
            for (c, &v) in frame.iter().enumerate() {
                out[c * frames + f] = v;
            }
        }
        out
    });
    let arr = ndarray::Array2::from_shape_vec((channels, frames), planar)
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?;
    Ok((PyArray2::from_owned_array(py, arr).into_any(), rate))
}

/// The container's facts about `path` (the stated length verified by decoding the file's end).
#[pyfunction]
fn info(py: Python<'_>, path: PathBuf) -> PyResult<AudioInfo> {
    let i = py.detach(|| audiotok_audio::probe(&path)).map_err(errors::audio)?;
    Ok(AudioInfo {
        duration: i.duration_secs(),
        exact_length: i.states_exact_length(),
        name: path,
        samplerate: i.sample_rate,
        channels: i.channels,
        frames: i.frames,
        format: i.container,
        subtype: i.codec,
        bits_per_sample: i.bits_per_sample,
    })
}

/// Resamples a mono float32 signal from `orig_sr` to `target_sr` Hz with libsoxr HQ, as
/// `librosa.resample(y, orig_sr=..., target_sr=...)` does with `res_type="soxr_hq"`.
#[pyfunction]
#[pyo3(signature = (y, *, orig_sr, target_sr))]
fn resample<'py>(
    py: Python<'py>,
    y: PyReadonlyArray1<'py, f32>,
    orig_sr: u32,
    target_sr: u32,
) -> PyResult<Bound<'py, PyArray1<f32>>> {
    let out = match y.as_slice() {
        Ok(x) => py.detach(|| audiotok_audio::resample(x, orig_sr, target_sr)),
        Err(_) => {
            let x = y.as_array().to_vec();
            py.detach(|| audiotok_audio::resample(&x, orig_sr, target_sr))
        }
    }
    .map_err(errors::audio)?;
    Ok(out.into_pyarray(py))
}
