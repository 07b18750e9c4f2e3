//! The codec jobs: audio files to a SNAC token store ([`encode`]) and a token store back to WAV
//! files ([`decode`]), for every front (the `audiotok encode` / `audiotok decode` commands, the
//! Python bindings). A job takes plain-data options ([`EncodeOptions`], [`DecodeOptions`]) and an
//! [`Observer`] for its progress and warnings, and returns a summary that lists what failed and
//! why; it prints nothing.
//!
//! **Encode** plans the whole run first (phase `scan`: every file is decoded once to count its
//! frames and to find NaN samples, and its bytes hashed; nothing is kept), so that record `i`
//! always lands in batch `i / batch_size`. Every batch file carries, in its Parquet key-value
//! metadata, the model (SHA-1 of the config and of the weights file), the options that shape the
//! codes, and a hash of its records' names and input files' bytes: a rerun reuses a batch file
//! only when all of these and its file list match the plan, and encodes the rest again (the
//! summary's [`EncodeSummary::redone`] says why). The second pass (phase `encode`, counted in
//! samples at the model rate) streams each file (decode → downmix → libsoxr HQ resampling to the
//! model rate → segments → model), so memory stays bounded by one segment plus one batch of codes
//! whatever the file's length. A file that cannot be read, holds NaN samples or is shorter than
//! one hop is a failure with its reason; the run goes on.
//!
//! **Decode** writes one float32 WAV per record (phase `decode`, counted in records), named by
//! [`wav_name`], cut to the record's duration; batches that `metadata.json` lists, or gaps in
//! the batch numbers, are failures.
//!
//! **In memory**: [`encode_audio`] encodes already-decoded mono samples at any rate exactly as the
//! encode job encodes a file's samples (same resampling and segments), [`decode_audio`] decodes
//! one record's codes as the decode job does, and [`load_model`] loads a model as the jobs do.
//!
//! **Threads.** Each job runs on a rayon pool of its own with `jobs` threads
//! ([`audiotok_core::thread_pool`]; 0: one per core), never on rayon's global pool, so a forked
//! process does not inherit one. The model's CPU kernels and candle's matrix products run their
//! parallel loops on the current pool, hence on the job's. candle splits a matrix product into
//! `RAYON_NUM_THREADS` parts (else one per physical core); a library does not set environment
//! variables, so the `audiotok` CLI sets it to `--jobs` itself. [`encode_audio`] and
//! [`decode_audio`] run on whatever pool they are called in (wrap them in
//! `audiotok_core::thread_pool(n)?.install(..)` to bound them).

mod decode;
mod encode;

use std::io::Read;
use std::path::{Path, PathBuf};

use audiotok_audio::AudioError;
use audiotok_core::{CoreError, Observer};
use audiotok_tokens::store::StoreError;
use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::{weights, Config, Error};

pub use decode::{decode, decode_audio, wav_name, DecodeOptions, DecodeSummary, MAX_STEM_BYTES};
pub use encode::{
    encode, encode_audio, segment_samples, EncodeOptions, EncodeSummary, EncodedSegment, Redone, ENCODE_PIPELINE,
    MAX_BATCH_SIZE, MAX_SEGMENT_SECONDS,
};

/// Where the model runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// The first CUDA GPU when the crate is built with `--features cuda` and one is present,
    /// else the CPU (what the CLI does).
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// The CUDA GPU of this ordinal (needs `--features cuda`).
    Cuda(usize),
}

impl DeviceChoice {
    /// Opens the device.
    pub fn open(self) -> Result<Device, JobError> {
        let device = match self {
            DeviceChoice::Auto => Device::cuda_if_available(0),
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Cuda(ordinal) => Device::new_cuda(ordinal),
        };
        device.map_err(|source| JobError::Device { source })
    }
}

/// An input (or a store's batch) that failed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The file concerned (for decode, the store).
    #[serde(serialize_with = "serialize_path")]
    pub path: PathBuf,
    /// What went wrong; it names the file.
    pub reason: String,
}

/// What stops a codec job (a bad file is a [`Failure`] in the summary instead).
///
/// The messages are those the `audiotok` CLI prints (option names included).
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// An option out of range.
    #[error("{0}")]
    Options(String),
    /// In-memory audio that cannot be encoded ([`encode_audio`]).
    #[error("{0}")]
    Input(String),
    /// Walking the inputs or starting the thread pool failed.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// An input argument does not exist, or the inputs hold no audio.
    #[error(transparent)]
    Sources(#[from] audiotok_sources::SourceError),
    /// The device could not be opened.
    #[error("opening the CUDA device: {source}")]
    Device {
        /// candle's error.
        source: candle_core::Error,
    },
    /// The model could not be loaded.
    #[error("loading SNAC model {model}: {source}")]
    Model {
        /// The model as given (folder or hub id).
        model: String,
        /// Why.
        source: Error,
    },
    /// A file or folder could not be created, opened or read.
    #[error("{path}: {action}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// `cannot create`, `cannot open` or `reading`.
        action: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// Decoding an input failed after its scan succeeded.
    #[error(transparent)]
    Audio(#[from] AudioError),
    /// No resampler for an input's rate.
    #[error("{path}: {source}")]
    Resampler {
        /// The input.
        path: PathBuf,
        /// libsoxr's refusal.
        source: AudioError,
    },
    /// Resampling an input failed.
    #[error("{path}: resampling: {source}")]
    Resampling {
        /// The input.
        path: PathBuf,
        /// libsoxr's error.
        source: AudioError,
    },
    /// The model failed on an input's segment.
    #[error("{path}: encoding: {source}")]
    Encoding {
        /// The input.
        path: PathBuf,
        /// candle's error.
        source: candle_core::Error,
    },
    /// An input gave another number of segments than its scan (it changed during the run).
    #[error("{path}: yielded {got} segments where the scan planned {planned}")]
    Replanned {
        /// The input.
        path: PathBuf,
        /// Segments the second pass yielded.
        got: usize,
        /// Segments the scan planned.
        planned: usize,
    },
    /// A store whose records have another number of scales than the model has codebooks.
    #[error("{path}: {scales} scales, but the model has {codebooks} codebooks")]
    Scales {
        /// The store.
        path: PathBuf,
        /// Scales of its records.
        scales: usize,
        /// Codebooks of the model.
        codebooks: usize,
    },
    /// Reading or writing the token store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The model failed (in-memory entries).
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// The configuration could not be serialised for its hash.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// Loads a SNAC model (a folder with `config.json`, or a hub id in the local Hugging Face cache;
/// `checkpoint` replaces its weights) on `device`, as the jobs do; each `config.json` field that
/// took the snac package's default is an [`Observer::warn`].
pub fn load_model(
    model: &str,
    checkpoint: Option<&Path>,
    device: DeviceChoice,
    observer: &dyn Observer,
) -> Result<weights::LoadedSnac, JobError> {
    let device = device.open()?;
    let loaded = weights::load_snac_from(model, checkpoint, &device)
        .map_err(|source| JobError::Model { model: model.to_string(), source })?;
    let defaults = serde_json::to_value(Config::default()).unwrap_or_default();
    for field in &loaded.defaulted {
        observer.warn(&format!(
            "{}: no {field}: using the snac package's default {} (SNAC.__init__)",
            loaded.config_path.display(),
            defaults.get(field).map_or_else(|| "?".to_string(), |v| v.to_string())
        ));
    }
    Ok(loaded)
}

/// SHA-1 (hex) of a file's bytes, streamed; on failure, what failed (`cannot open`, `reading`).
fn file_sha1(path: &Path) -> Result<String, (&'static str, std::io::Error)> {
    use sha1::Digest;
    let mut f = std::fs::File::open(path).map_err(|e| ("cannot open", e))?;
    let mut h = sha1::Sha1::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| ("reading", e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("{:x}", h.finalize()))
}

/// SHA-1 (hex) of `parts`, each followed by a NUL byte.
fn sha1_hex(parts: &[&str]) -> String {
    use sha1::Digest;
    let mut h = sha1::Sha1::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    format!("{:x}", h.finalize())
}

/// An error and every cause below it, joined by ": " (as a failure reason).
fn chain_text(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// Serialises a path as [`audiotok_core::path_text`] writes it (non-UTF-8 bytes escaped).
fn serialize_path<S: serde::Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&audiotok_core::path_text(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_text_joins_every_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let e = AudioError::Io { path: PathBuf::from("a.wav"), source: io };
        assert_eq!(chain_text(&e), "a.wav: gone: gone");
        assert_eq!(sha1_hex(&["a"]).len(), 40);
    }
}
