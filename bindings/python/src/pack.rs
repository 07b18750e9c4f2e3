//! Packing rows into MDS blocks (`audiotok.pack`) and token counts of files.

use std::path::PathBuf;

use audiotok_pack::job::{PackOptions, PackSource};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::errors::PackError;
use crate::progress::PyProgress;

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(pack_json, m)?)?;
    m.add_function(wrap_pyfunction!(count_files_json, m)?)?;
    m.add("DEFAULT_MAX_ROW_BYTES", audiotok_pack::DEFAULT_MAX_ROW_BYTES)?;
    Ok(())
}

/// Runs `audiotok_pack::job::pack` with `options_json` (a serialised `PackOptions`) over row
/// files (`files`) or in-memory rows (`rows_json`, a JSON array of row objects), the GIL
/// released; `progress(phase, done, total)` is called as it goes. Returns `(summary, rejects)`
/// as JSON text: the summary is the object `audiotok pack --json` prints, the rejects the lines
/// of `rejects.jsonl`.
#[pyfunction]
#[pyo3(signature = (options_json, *, files = None, rows_json = None, progress = None))]
fn pack_json(
    py: Python<'_>,
    options_json: &str,
    files: Option<Vec<PathBuf>>,
    rows_json: Option<String>,
    progress: Option<Py<PyAny>>,
) -> PyResult<(String, Vec<String>)> {
    let options: PackOptions =
        serde_json::from_str(options_json).map_err(|e| PyValueError::new_err(format!("pack options: {e}")))?;
    let observer = PyProgress::new(progress);
    py.detach(|| {
        let source = match (files, rows_json) {
            (Some(f), None) => PackSource::Files(f),
            (None, Some(text)) => {
                let rows: Vec<serde_json::Value> =
                    serde_json::from_str(&text).map_err(|e| PackError::new_err(format!("rows: {e}")))?;
                PackSource::Values(rows)
            }
            _ => return Err(PyValueError::new_err("give either files or rows")),
        };
        let summary = audiotok_pack::job::pack(&options, source, &observer)
            .map_err(|e| PackError::new_err(audiotok_core::error_text(&e)))?;
        let rejects = summary.rejects.iter().map(|r| r.to_json_line()).collect();
        let text = serde_json::to_string(&summary).map_err(|e| PackError::new_err(e.to_string()))?;
        Ok((text, rejects))
    })
}

/// Token counts of audio files for `profile` (`audiotok count --json`'s report as JSON text):
/// verified header lengths where the container states one, else a decode keeping nothing.
#[pyfunction]
#[pyo3(signature = (paths, profile, *, num_threads = 0, progress = None))]
fn count_files_json(
    py: Python<'_>,
    paths: Vec<PathBuf>,
    profile: &str,
    num_threads: usize,
    progress: Option<Py<PyAny>>,
) -> PyResult<String> {
    let profile: audiotok_features::Profile = profile.parse().map_err(crate::errors::feature)?;
    let observer = PyProgress::new(progress);
    py.detach(|| {
        let inputs: Vec<audiotok_core::Input> = paths.into_iter().map(audiotok_core::Input::file).collect();
        let report = audiotok_pack::count::count_files(&inputs, &profile, num_threads, &observer)
            .map_err(|e| PackError::new_err(audiotok_core::error_text(&e)))?;
        serde_json::to_string(&report).map_err(|e| PackError::new_err(e.to_string()))
    })
}
