//! Features of many audio files: the pipeline of `audiotok features`, for every front.
//!
//! Each input is decoded and shaped by `audiotok_audio` (mono at the kind's sample rate; for
//! Whisper with [`WhisperPadding::MaxLength`] only the first 30 s are decoded, the whole length
//! coming from the verified header or a decode that keeps nothing), then featurised by an
//! [`Extractor`]. [`FileExtractor`] is that one step, input to [`Computed`]; both entries below
//! run it on a thread pool of the job's own (`audiotok_core::thread_pool`, never rayon's global
//! pool, so a forked process inherits no threads), with results in input order whatever the
//! scheduling:
//!
//! - [`write_features`] writes one `.npy` per input under an output folder (the input's path
//!   relative to its FILE|DIR argument, extension replaced: [`output_rel`]) and `manifest.jsonl`,
//!   one [`Record`] per input, and returns the records in a [`FeaturesSummary`]. Inputs whose
//!   output names clash (`a.wav` and `a.flac`) never overwrite each other: the first of them in
//!   input order that succeeds writes the file, every other one fails naming it.
//! - [`compute_files`] returns the arrays ([`Computed`]) and writes nothing.
//!
//! A bad file is a failure of its own (an [`Outcome`] holding a reason that names the file) and
//! the job goes on; only what stops the whole job (the output folder, the thread pool, the
//! manifest) is a [`FeatureError`]. Progress goes to the [`Observer`] as phases named
//! `features`, counted in files.

use std::collections::HashMap;
use std::error::Error;
use std::io::Write;
use std::path::{Path, PathBuf};

use audiotok_audio::atomic::{self, WriteError};
use audiotok_audio::{load_input, load_input_prefix, LoadOptions};
use audiotok_core::{check_jobs, path_escaped, path_text, reason_about, run_parallel, Input, Observer, Outcome};
use serde::{Deserialize, Serialize};

use crate::whisper::{Precision, WhisperPadding};
use crate::{meldb, npy, whisper, Extractor, ExtractorOptions, FeatureError, FeatureKind, Features};

/// The name of the phase the jobs report to their observer.
const PHASE: &str = "features";

/// What to compute, and on how many threads. Plain data, serialisable (the Python front pickles
/// it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeaturesOptions {
    /// The feature kind.
    pub kind: FeatureKind,
    /// Whisper kinds: pad or truncate to 30 s, or keep the clip's length.
    pub whisper_padding: WhisperPadding,
    /// Whisper kinds: float32 (fast) or bit-exact float64 arithmetic.
    pub whisper_precision: Precision,
    /// mel-dB: crop or pad to this many frames; `None` keeps the clip's own length (the CLI's
    /// `--frames 0`).
    pub meldb_frames: Option<usize>,
    /// Worker threads, 0 for one per core, at most [`audiotok_core::MAX_JOBS`].
    pub jobs: usize,
}

impl FeaturesOptions {
    /// `kind` with the CLI's defaults: Whisper max-length padding in float32, mel-dB 1024
    /// frames, one thread per core.
    pub fn new(kind: FeatureKind) -> Self {
        FeaturesOptions {
            kind,
            whisper_padding: WhisperPadding::default(),
            whisper_precision: Precision::default(),
            meldb_frames: meldb::MelDbConfig::default().frames,
            jobs: 0,
        }
    }

    /// The options of the [`Extractor`] these options plan.
    pub fn extractor_options(&self) -> ExtractorOptions {
        ExtractorOptions {
            whisper_padding: self.whisper_padding,
            whisper_precision: self.whisper_precision,
            meldb_frames: Some(self.meldb_frames),
        }
    }
}

/// The features of one input.
#[derive(Debug, Clone, PartialEq)]
pub struct Computed {
    /// Length of the whole decoded mono signal at the kind's sample rate, also when only its
    /// first 30 s were decoded (Whisper, max-length padding).
    pub samples: usize,
    /// The array, as [`Extractor::compute`] returns it.
    pub features: Features,
}

/// Decodes files and featurises them, one at a time: the per-input step of [`compute_files`]
/// and [`write_features`], kept planned (FFT plans, buffers) across files. One per thread.
pub struct FileExtractor {
    extractor: Extractor,
    kind: FeatureKind,
    prefix_only: bool,
}

impl FileExtractor {
    /// Plans the extractor `options` describe (`options.jobs` is not used).
    pub fn new(options: &FeaturesOptions) -> Self {
        let whisper = matches!(options.kind, FeatureKind::Whisper80 | FeatureKind::Whisper128);
        FileExtractor {
            extractor: Extractor::new(options.kind, options.extractor_options()),
            kind: options.kind,
            prefix_only: whisper && options.whisper_padding == WhisperPadding::MaxLength,
        }
    }

    /// The features of the audio file at `path`, or why there are none (a reason naming the
    /// file, as the jobs report it).
    pub fn compute(&mut self, path: &Path) -> Outcome<Computed> {
        self.compute_input(&Input::file(path))
    }

    /// The features of any input (a file, a source's record, a segment: see
    /// `audiotok_audio::load_input`), or why there are none (a reason naming the input).
    pub fn compute_input(&mut self, input: &Input) -> Outcome<Computed> {
        input.readable().and_then(|()| self.compute_raw(input)).map_err(|e| reason_about(&input.path, e))
    }

    /// [`compute_input`](Self::compute_input) without the reason's path made exact (the parallel
    /// runner does that for every failure of a job).
    fn compute_raw(&mut self, input: &Input) -> Outcome<Computed> {
        let path = input.path.as_path();
        let opts = LoadOptions::mono_at(self.kind.sample_rate());
        // Whisper's max-length padding reads only the first 30 s: decode only those (the whole
        // file's length still comes from its verified header, or a decode that keeps nothing).
        let (audio, samples) = if self.prefix_only {
            load_input_prefix(input, &opts, whisper::N_SAMPLES).map_err(|e| error_chain(&e))?
        } else {
            let a = load_input(input, &opts).map_err(|e| error_chain(&e))?;
            let n = a.samples.len() as u64;
            (a, n)
        };
        let features =
            self.extractor.compute(&audio.samples).map_err(|e| format!("{}: {}", path.display(), error_chain(&e)))?;
        let samples = usize::try_from(samples).map_err(|e| format!("audio length overflows: {}", error_chain(&e)))?;
        Ok(Computed { samples, features })
    }
}

/// The features of every input, in input order, each an array or the reason it failed; nothing
/// is written. All arrays are held in memory: give it a batch, not a corpus.
///
/// Inputs come from [`audiotok_core::collect`] (FILE|DIR arguments) or [`Input::file`] (paths).
/// Errors: `options.jobs` out of range, or the threads could not be started.
pub fn compute_files(
    inputs: &[Input],
    options: &FeaturesOptions,
    observer: &dyn Observer,
) -> Result<Vec<Outcome<Computed>>, FeatureError> {
    check_jobs(options.jobs)?;
    let make = || FileExtractor::new(options);
    Ok(run_parallel(inputs, options.jobs, PHASE, observer, make, |fx, _, input| fx.compute_raw(input))?)
}

/// Whether an input's features were written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The `.npy` file was written.
    Ok,
    /// Nothing was written; the record says why.
    Failed,
}

/// One line of `manifest.jsonl`: what became of one input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The input file ([`path_text`]).
    pub input: String,
    /// The `.npy` written, relative to the output folder ([`output_rel`]); `None` on failure.
    pub output: Option<String>,
    /// Written or failed.
    pub status: Status,
    /// Length of the decoded mono signal at the kind's sample rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<usize>,
    /// `samples` in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    /// The array's shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<Vec<usize>>,
    /// Leading frames (or samples) of real signal, the rest padding (see [`Features`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask_ones: Option<usize>,
    /// Why the input failed, naming the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `input` and `output` have non-UTF-8 bytes written `\xNN` (and `\` as `\\`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub path_escaped: bool,
    /// A source record's other fields (columns, json/txt siblings, supervision text), as
    /// [`Input::meta`]; absent for plain files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<serde_json::Value>,
}

/// What [`write_features`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeaturesSummary {
    /// One record per input, in input order: the lines of `manifest.jsonl`.
    pub records: Vec<Record>,
    /// Inputs whose `.npy` was written.
    pub done: usize,
    /// Inputs that failed.
    pub failed: usize,
    /// Seconds of audio in the inputs written.
    pub audio_secs: f64,
}

impl FeaturesSummary {
    /// `(index of the input, reason)` of every failure, in input order.
    pub fn failures(&self) -> impl Iterator<Item = (usize, &str)> {
        self.records.iter().enumerate().filter_map(|(i, r)| r.error.as_deref().map(|e| (i, e)))
    }
}

/// Where the features of `input` go, relative to the output folder: its path relative to its
/// FILE|DIR argument with the extension replaced by `npy`.
pub fn output_rel(input: &Input) -> PathBuf {
    input.rel.with_extension("npy")
}

/// Computes the features of every input and writes them under `out` (created if missing): one
/// `.npy` per input at [`output_rel`], each written atomically, and `manifest.jsonl` holding
/// the returned records, one JSON line per input in input order. Output bytes do not depend on
/// `options.jobs` or scheduling.
///
/// Inputs whose output names clash never overwrite each other: the first of them in input order
/// that succeeds writes the file and every other one fails naming it; one that fails writes
/// nothing, so the next of its group is tried in another round (another `features` phase).
///
/// Errors: `options.jobs` out of range, `out` cannot be created, the threads cannot be started,
/// or the manifest cannot be written. Failed inputs are records, not errors.
pub fn write_features(
    inputs: &[Input],
    out: &Path,
    options: &FeaturesOptions,
    observer: &dyn Observer,
) -> Result<FeaturesSummary, FeatureError> {
    check_jobs(options.jobs)?;
    std::fs::create_dir_all(out).map_err(|source| FeatureError::CreateDir { path: out.to_path_buf(), source })?;
    let results = run_without_clashes(inputs, out, options, observer)?;
    let rate = f64::from(options.kind.sample_rate());
    let mut manifest = String::new();
    let mut records = Vec::with_capacity(inputs.len());
    let (mut done, mut failed, mut audio_secs) = (0, 0, 0.0);
    for (input, r) in inputs.iter().zip(results) {
        let rec = match r {
            Ok(d) => {
                done += 1;
                audio_secs += d.samples as f64 / rate;
                Record {
                    input: path_text(&input.path),
                    output: Some(path_text(&output_rel(input))),
                    status: Status::Ok,
                    samples: Some(d.samples),
                    duration_s: Some(d.samples as f64 / rate),
                    shape: Some(d.shape),
                    mask_ones: d.mask_ones,
                    error: None,
                    path_escaped: path_escaped(&input.path),
                    meta: input_meta(input),
                }
            }
            Err(e) => {
                failed += 1;
                Record {
                    input: path_text(&input.path),
                    output: None,
                    status: Status::Failed,
                    samples: None,
                    duration_s: None,
                    shape: None,
                    mask_ones: None,
                    error: Some(e),
                    path_escaped: path_escaped(&input.path),
                    meta: input_meta(input),
                }
            }
        };
        // A record always serialises; the conversion only gives the impossible error a type.
        manifest.push_str(&serde_json::to_string(&rec).map_err(std::io::Error::from)?);
        manifest.push('\n');
        records.push(rec);
    }
    let bytes = manifest.as_bytes();
    atomic::write_with(&out.join("manifest.jsonl"), |w| w.write_all(bytes).map_err(FeatureError::from))?;
    Ok(FeaturesSummary { records, done, failed, audio_secs })
}

/// An input's [`Input::meta`] as JSON (it is always a JSON object; text that is not is kept as a
/// string).
fn input_meta(input: &Input) -> Option<serde_json::Value> {
    let m = input.meta.as_deref()?;
    Some(serde_json::from_str(m).unwrap_or_else(|_| serde_json::Value::from(m)))
}

/// What a written input leaves for its record.
struct Done {
    samples: usize,
    shape: Vec<usize>,
    mask_ones: Option<usize>,
}

/// The features of one input, written to `out`.
fn write_one(fx: &mut FileExtractor, input: &Input, out: &Path) -> Outcome<Done> {
    let Computed { samples, features: f } = fx.compute_raw(input)?;
    let dest = out.join(output_rel(input));
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("creating {}: {}", parent.display(), error_chain(&e)))?;
    }
    atomic::write_with(&dest, |w| npy::write_f32(w, &f.shape, &f.data).map_err(NpyWrite::Npy)).map_err(
        |e| match e {
            NpyWrite::Atomic(e) => error_chain(&e),
            NpyWrite::Npy(e) => error_chain(&e),
        },
    )?;
    Ok(Done { samples, shape: f.shape, mask_ones: f.mask_ones })
}

/// How writing one `.npy` failed.
enum NpyWrite {
    /// Creating, writing or renaming the file.
    Atomic(WriteError),
    /// Encoding the array.
    Npy(FeatureError),
}

impl From<WriteError> for NpyWrite {
    fn from(e: WriteError) -> Self {
        NpyWrite::Atomic(e)
    }
}

/// Runs [`write_one`] on every input, where inputs that map to one output file never overwrite
/// each other (see [`write_features`]). Results come back in input order.
fn run_without_clashes(
    inputs: &[Input],
    out: &Path,
    options: &FeaturesOptions,
    observer: &dyn Observer,
) -> Result<Vec<Outcome<Done>>, FeatureError> {
    let mut members: Vec<Vec<usize>> = Vec::new();
    let mut ids: HashMap<PathBuf, usize> = HashMap::new();
    for (i, input) in inputs.iter().enumerate() {
        let next = members.len();
        let g = *ids.entry(output_rel(input)).or_insert(next);
        if g == next {
            members.push(Vec::new());
        }
        if let Some(m) = members.get_mut(g) {
            m.push(i);
        }
    }
    let mut results: Vec<Option<Outcome<Done>>> = std::iter::repeat_with(|| None).take(inputs.len()).collect();
    let ok = |results: &[Option<Outcome<Done>>], i: usize| matches!(results.get(i), Some(Some(Ok(_))));
    let make = || FileExtractor::new(options);
    let job = |fx: &mut FileExtractor, _: usize, input: &Input| write_one(fx, input, out);
    loop {
        // The next untried input of every output name not written yet.
        let mut round = Vec::new();
        for m in &members {
            if m.iter().any(|&i| ok(&results, i)) {
                continue;
            }
            if let Some(&next) = m.iter().find(|&&i| results.get(i).is_some_and(Option::is_none)) {
                round.push(next);
            }
        }
        if round.is_empty() {
            break;
        }
        round.sort_unstable();
        let batch: Vec<Input> = round.iter().filter_map(|&i| inputs.get(i).cloned()).collect();
        let done = run_parallel(&batch, options.jobs, PHASE, observer, make, job)?;
        for (&i, r) in round.iter().zip(done) {
            if let Some(slot) = results.get_mut(i) {
                *slot = Some(r);
            }
        }
    }
    let mut writer: Vec<Option<usize>> = vec![None; inputs.len()];
    for m in &members {
        let w = m.iter().copied().find(|&i| ok(&results, i));
        for &i in m {
            if let Some(slot) = writer.get_mut(i) {
                *slot = w;
            }
        }
    }
    Ok(results
        .into_iter()
        .zip(inputs)
        .zip(writer)
        .map(|((r, input), w)| {
            r.unwrap_or_else(|| {
                let by = w.and_then(|w| inputs.get(w)).map_or_else(String::new, |w| path_text(&w.path));
                Err(format!(
                    "{}: output {} is written for {by} (same name once the extension is replaced); rename one of them",
                    path_text(&input.path),
                    path_text(&output_rel(input)),
                ))
            })
        })
        .collect())
}

/// `e` and its sources joined by ": ", every one of them (as `anyhow` writes an error with
/// `{:#}`): the reasons the CLI has always recorded, kept byte for byte.
fn error_chain(e: &(dyn Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
