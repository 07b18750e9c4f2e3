//! Features of in-memory signals and token counts from lengths.

use numpy::{PyArrayDyn, PyReadonlyArray1, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use audiotok_features::whisper::{Precision, WhisperPadding};
use audiotok_features::{Extractor, ExtractorOptions, FeatureKind, Features, Profile};

use crate::errors;

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(compute_features, m)?)?;
    m.add_function(wrap_pyfunction!(count_tokens_from_lengths, m)?)?;
    m.add_function(wrap_pyfunction!(compute_file_features, m)?)?;
    m.add("FEATURE_KINDS", FeatureKind::NAMES.to_vec())?;
    m.add("PROFILES", audiotok_features::profiles::NAMES.to_vec())?;
    Ok(())
}

/// The extractor options from the Python spellings.
pub(crate) fn options(padding: &str, precision: &str, frames: Option<usize>) -> PyResult<ExtractorOptions> {
    Ok(ExtractorOptions {
        whisper_padding: match padding {
            "max_length" => WhisperPadding::MaxLength,
            "longest" => WhisperPadding::Longest,
            _ => return Err(PyValueError::new_err(format!("padding {padding:?}: expected 'max_length' or 'longest'"))),
        },
        whisper_precision: match precision {
            "fast" => Precision::Fast,
            "exact" => Precision::Exact,
            _ => return Err(PyValueError::new_err(format!("precision {precision:?}: expected 'fast' or 'exact'"))),
        },
        meldb_frames: Some(frames),
    })
}

pub(crate) fn kind(name: &str) -> PyResult<FeatureKind> {
    name.parse().map_err(errors::feature)
}

/// Stacked features and, per signal, the ones of its Whisper attention mask.
type Stacked<'py> = (Bound<'py, PyArrayDyn<f32>>, Vec<Option<usize>>);

/// Stacks per-clip features of one shape into `(len, *shape)` without a further copy.
fn stacked(py: Python<'_>, feats: Vec<Features>) -> PyResult<Stacked<'_>> {
    let shape = feats.first().map(|f| f.shape.clone()).unwrap_or_default();
    if let Some((i, f)) = feats.iter().enumerate().find(|(_, f)| f.shape != shape) {
        return Err(PyValueError::new_err(format!(
            "signal {i} gives features of shape {:?}, signal 0 of shape {shape:?}: pad the signals to one length",
            f.shape
        )));
    }
    let mut dims = vec![feats.len()];
    dims.extend(&shape);
    let masks = feats.iter().map(|f| f.mask_ones).collect();
    let data: Vec<f32> = if feats.len() == 1 {
        feats.into_iter().next().map(|f| f.data).unwrap_or_default()
    } else {
        py.detach(|| feats.iter().flat_map(|f| f.data.iter().copied()).collect())
    };
    let arr = ndarray::ArrayD::from_shape_vec(dims, data).map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok((numpy::PyArray::from_owned_array(py, arr), masks))
}

/// Features of each signal (mono float32 at 16 kHz) for `kind` (`whisper-128`, `whisper-80`,
/// `wav2vec2`, `mel-db`), stacked into one array `(len(signals), *shape)`; with them, each
/// signal's count of ones in the Whisper attention mask (`None` for other kinds). Every signal
/// must give the same shape (Whisper `max_length` always does). `num_threads` > 1 computes the
/// signals on that many threads (a pool of this call's own); the GIL is released throughout.
#[pyfunction]
#[pyo3(
    signature = (signals, kind, *, padding = "max_length", precision = "fast", frames = Some(1024), num_threads = 1),
    text_signature = "(signals, kind, *, padding='max_length', precision='fast', frames=1024, num_threads=1)"
)]
fn compute_features<'py>(
    py: Python<'py>,
    signals: Vec<PyReadonlyArray1<'py, f32>>,
    kind: &str,
    padding: &str,
    precision: &str,
    frames: Option<usize>,
    num_threads: usize,
) -> PyResult<Stacked<'py>> {
    let kind = self::kind(kind)?;
    let opts = options(padding, precision, frames)?;
    let slices: Vec<&[f32]> = signals
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.as_slice()
                .map_err(|_| PyValueError::new_err(format!("signal {i} (shape {:?}) is not C-contiguous", s.shape())))
        })
        .collect::<PyResult<_>>()?;
    let feats = py
        .detach(|| -> Result<Vec<Features>, String> {
            let one =
                |ex: &mut Extractor, (i, x): (usize, &&[f32])| ex.compute(x).map_err(|e| format!("signal {i}: {e}"));
            if num_threads <= 1 {
                let mut ex = Extractor::new(kind, opts);
                return slices.iter().enumerate().map(|s| one(&mut ex, s)).collect();
            }
            compute_parallel(&slices, num_threads, kind, opts)
        })
        .map_err(errors::FeatureError::new_err)?;
    stacked(py, feats)
}

/// [`compute_features`] on `threads` threads (audiotok-core's runner, a pool of this call's own),
/// results in signal order.
fn compute_parallel(
    slices: &[&[f32]],
    threads: usize,
    kind: FeatureKind,
    opts: ExtractorOptions,
) -> Result<Vec<Features>, String> {
    let inputs: Vec<audiotok_core::Input> =
        (0..slices.len()).map(|i| audiotok_core::Input::file(format!("signal {i}"))).collect();
    let out = audiotok_core::run_parallel(
        &inputs,
        threads,
        "features",
        &audiotok_core::Silent,
        || Extractor::new(kind, opts),
        |ex, i, _| match slices.get(i) {
            Some(x) => ex.compute(x).map_err(|e| format!("signal {i}: {e}")),
            None => Err(format!("signal {i}: missing")),
        },
    )
    .map_err(|e| e.to_string())?;
    out.into_iter().collect()
}

/// Per file of `paths`: decoded mono at 16 kHz and featurised for `kind` on `num_threads` threads
/// (0: one per core; a pool of this call's own), in input order, the GIL released
/// (`audiotok_features::job::compute_files`, what `audiotok features` computes). Each entry is
/// `(features, mask_ones, samples, None)` or, for a file that failed, `(None, None, None,
/// reason)`; `samples` is the whole decoded length (Whisper max-length decodes only 30 s).
#[pyfunction]
#[pyo3(
    signature = (paths, kind, *, padding = "max_length", precision = "fast", frames = Some(1024), num_threads = 0, progress = None),
    text_signature = "(paths, kind, *, padding='max_length', precision='fast', frames=1024, num_threads=0, progress=None)"
)]
#[allow(clippy::too_many_arguments)]
fn compute_file_features<'py>(
    py: Python<'py>,
    paths: Vec<std::path::PathBuf>,
    kind: &str,
    padding: &str,
    precision: &str,
    frames: Option<usize>,
    num_threads: usize,
    progress: Option<Py<PyAny>>,
) -> PyResult<Vec<FileFeatures<'py>>> {
    let kind = self::kind(kind)?;
    let ex = options(padding, precision, frames)?;
    let opts = audiotok_features::job::FeaturesOptions {
        kind,
        whisper_padding: ex.whisper_padding,
        whisper_precision: ex.whisper_precision,
        meldb_frames: frames,
        jobs: num_threads,
    };
    let observer = crate::progress::PyProgress::new(progress);
    let inputs: Vec<audiotok_core::Input> = paths.into_iter().map(audiotok_core::Input::file).collect();
    let results =
        py.detach(|| audiotok_features::job::compute_files(&inputs, &opts, &observer)).map_err(errors::feature)?;
    results
        .into_iter()
        .map(|r| match r {
            Ok(c) => {
                let arr = ndarray::ArrayD::from_shape_vec(c.features.shape.clone(), c.features.data)
                    .map_err(|e| PyValueError::new_err(e.to_string()))?;
                Ok((Some(numpy::PyArray::from_owned_array(py, arr)), c.features.mask_ones, Some(c.samples), None))
            }
            Err(reason) => Ok((None, None, None, Some(reason))),
        })
        .collect()
}

/// One file's entry of [`compute_file_features`].
type FileFeatures<'py> = (Option<Bound<'py, PyArrayDyn<f32>>>, Option<usize>, Option<usize>, Option<String>);

/// Audio tokens for clips of `lengths` samples (at the profile's rate) under `profile`: per
/// clip, the tokens of each codebook scale.
#[pyfunction]
fn count_tokens_from_lengths(py: Python<'_>, lengths: Vec<u64>, profile: &str) -> PyResult<Vec<Vec<u64>>> {
    let p: Profile = profile.parse().map_err(errors::feature)?;
    Ok(py.detach(|| lengths.iter().map(|&n| p.count(n).per_scale).collect()))
}
