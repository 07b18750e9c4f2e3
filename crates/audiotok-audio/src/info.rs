//! What the container says about each of many files, without decoding the audio: the rows of
//! `audiotok info`, for every front.
//!
//! [`InfoRow::probe`] is one input (the CLI prints each row as it comes); [`probe_all`] is a
//! batch on a thread pool of the job's own, rows in input order. A file that cannot be probed
//! is a row with its reason (naming the file), not an error.

use audiotok_core::{path_text, reason_about, run_parallel, CoreError, Input, Observer, Outcome};
use serde::{Deserialize, Serialize};

use crate::{probe_input, AudioInfo};

/// One file's facts, as `audiotok info --json` prints them (every field present, `null` when
/// unknown or when the file failed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InfoRow {
    /// The file ([`path_text`]: non-UTF-8 bytes written `\xNN`).
    pub path: String,
    /// Container short name (`wave`, `flac`, `mp3`, `ogg`).
    pub container: Option<String>,
    /// Codec short name.
    pub codec: Option<String>,
    /// Sample rate in Hz.
    pub sample_rate: Option<u32>,
    /// Channels.
    pub channels: Option<usize>,
    /// Frames per channel when the container states them (verified where exact).
    pub frames: Option<u64>,
    /// `frames` in seconds.
    pub duration_s: Option<f64>,
    /// Why the file could not be probed, naming it.
    pub error: Option<String>,
}

impl InfoRow {
    /// Probes one input ([`probe_input`]: a file, a source's record, a segment); an input the walk could not read fails with its reason.
    pub fn probe(input: &Input) -> InfoRow {
        let probed = input
            .readable()
            .and_then(|()| probe_input(input).map_err(|e| e.to_string()))
            .map_err(|e| reason_about(&input.path, e));
        InfoRow::new(input, probed)
    }

    /// Whether the file could not be probed.
    pub fn failed(&self) -> bool {
        self.error.is_some()
    }

    fn new(input: &Input, probed: Outcome<AudioInfo>) -> InfoRow {
        match probed {
            Ok(i) => InfoRow {
                path: path_text(&input.path),
                duration_s: i.duration_secs(),
                container: Some(i.container),
                codec: Some(i.codec),
                sample_rate: Some(i.sample_rate),
                channels: Some(i.channels),
                frames: i.frames,
                error: None,
            },
            Err(e) => InfoRow {
                path: path_text(&input.path),
                container: None,
                codec: None,
                sample_rate: None,
                channels: None,
                frames: None,
                duration_s: None,
                error: Some(e),
            },
        }
    }
}

/// [`InfoRow::probe`] of every input on `jobs` threads (0: one per core), rows in input order.
/// Progress goes to `observer` as the phase `info`, counted in files.
///
/// Errors: `jobs` out of range, or the threads could not be started.
pub fn probe_all(inputs: &[Input], jobs: usize, observer: &dyn Observer) -> Result<Vec<InfoRow>, CoreError> {
    let probed = run_parallel(
        inputs,
        jobs,
        "info",
        observer,
        || (),
        |_, _, input| probe_input(input).map_err(|e| e.to_string()),
    )?;
    Ok(inputs.iter().zip(probed).map(|(input, p)| InfoRow::new(input, p)).collect())
}
