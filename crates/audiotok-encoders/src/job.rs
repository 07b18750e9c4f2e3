//! The embed job (`audiotok embed`): audio files to one `.npy` of encoder outputs each, plus
//! `manifest.jsonl`.
//!
//! Inputs are taken in groups of `batch_size * 8` files: each group is decoded in parallel (mono,
//! 16 kHz, libsoxr HQ through `audiotok_audio::load`), every file cut into [windows](plan_windows),
//! the windows of the group sorted by length (length buckets) and embedded `batch_size` at a
//! time, and every file's windows joined and written (atomically) as soon as its group is done.
//! Clips in a batch never share a convolution, a norm or an attention key, so the numbers do not
//! depend on the batch a clip lands in, and the bytes do not depend on `jobs` or `batch_size`
//! (tested). Bad files (unreadable, NaN samples, shorter than the receptive field) are records
//! with their reason; the run goes on. Progress: the phase `embed`, counted in files.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use audiotok_audio::{atomic, load_input, LoadOptions};
use audiotok_core::observer::Phase;
use audiotok_core::{check_jobs, path_escaped, path_text, reason_about, thread_pool, Input, Observer};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::whisper::{tower_frames, MEL_FRAMES};
use crate::{Encoder, Error, ModelConfig, Net, Tap, WINDOW_SAMPLES};

/// The name of the phase the job reports.
const PHASE: &str = "embed";

/// Largest `batch_size`.
pub const MAX_BATCH_SIZE: usize = 256;

/// HuBERT / wav2vec2 windows: a file up to this many samples (30 s) is one window.
pub const W2V_MAX_WINDOW: usize = 480_000;
/// HuBERT / wav2vec2 windows of longer files: frames each window contributes (20 s).
pub const W2V_CORE_FRAMES: usize = 1000;
/// HuBERT / wav2vec2 windows of longer files: frames of context on each side (5 s).
pub const W2V_CONTEXT_FRAMES: usize = 250;

/// Which layers to write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layers {
    /// `last_hidden_state` (after the last norm / pool).
    Final,
    /// Every hidden state, 0 (input of layer 1) to N (raw output of layer N).
    All,
    /// These hidden-state indices.
    List(Vec<usize>),
}

/// Encoder output or Qwen2-Audio's projector output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// The encoder's tensors (`layers`).
    #[default]
    Encoder,
    /// The multi-modal projector's output (Qwen2-Audio; `layers` must be `final`).
    Projected,
}

/// Frame pooling.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pool {
    /// Every frame.
    #[default]
    None,
    /// The mean over the valid frames: one vector per clip (and layer).
    Mean,
}

/// Element type of the `.npy` files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutDtype {
    /// float32.
    #[default]
    F32,
    /// float16 (round to nearest even).
    F16,
}

impl OutDtype {
    fn name(self) -> &'static str {
        match self {
            OutDtype::F32 => "float32",
            OutDtype::F16 => "float16",
        }
    }
}

/// What to embed, and how. Plain data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbedOptions {
    /// A model folder or a hub id in the HF cache.
    pub model: String,
    /// Layers.
    pub layers: Layers,
    /// Stage.
    pub stage: Stage,
    /// Pooling.
    pub pool: Pool,
    /// Output element type.
    pub dtype: OutDtype,
    /// Windows per model call.
    pub batch_size: usize,
    /// Worker threads, 0 for one per core.
    pub jobs: usize,
}

impl EmbedOptions {
    /// `model` with the defaults: final layer, no pooling, float32, batches of 8, one thread per core.
    pub fn new(model: &str) -> Self {
        EmbedOptions {
            model: model.to_string(),
            layers: Layers::Final,
            stage: Stage::Encoder,
            pool: Pool::None,
            dtype: OutDtype::F32,
            batch_size: 8,
            jobs: 0,
        }
    }
}

/// What stops the whole job.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The model could not be loaded.
    #[error("{0}")]
    Model(#[from] Error),
    /// Bad options.
    #[error("{0}")]
    Options(String),
    /// Threads.
    #[error(transparent)]
    Core(#[from] audiotok_core::CoreError),
    /// The output folder could not be created.
    #[error("creating {}: {}", .0.display(), .1)]
    CreateDir(PathBuf, std::io::Error),
    /// The manifest could not be written.
    #[error("writing the manifest: {0}")]
    Manifest(#[from] atomic::WriteError),
}

/// Whether an input's embedding was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Written.
    Ok,
    /// Not written; `error` says why.
    Failed,
}

/// One line of `manifest.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The input file.
    pub input: String,
    /// The `.npy` written, relative to the output folder.
    pub output: Option<String>,
    /// Written or failed.
    pub status: Status,
    /// Decoded mono samples at 16 kHz.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<usize>,
    /// Output frames (1 with `--pool mean`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames: Option<usize>,
    /// Output width.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dim: Option<usize>,
    /// The tensors written, outermost axis of a multi-layer array first (`"final"`,
    /// `"projected"` or a hidden-state index).
    pub layers: Vec<String>,
    /// Output frames per second (before pooling).
    pub frame_rate_hz: f64,
    /// `float32` or `float16`.
    pub dtype: String,
    /// The model as given.
    pub model: String,
    /// SHA-1 of its `config.json`.
    pub config_sha1: String,
    /// Why the input failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `input` / `output` have non-UTF-8 bytes escaped.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub path_escaped: bool,
}

/// What [`embed_files`] did (serialises to the CLI's `--json` object).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmbedSummary {
    /// One record per input, in input order (the manifest's lines).
    pub records: Vec<Record>,
    /// Inputs written.
    pub done: usize,
    /// Inputs that failed.
    pub failed: usize,
    /// Seconds of audio written.
    pub audio_secs: f64,
}

/// The taps for options on a model (errors: a projector asked of a model without one, indices
/// past the last layer, taps of different frame rates in one array).
pub fn taps(enc: &Encoder, layers: &Layers, stage: Stage) -> Result<Vec<Tap>, JobError> {
    let n = enc.num_layers();
    let bad = |m: String| Err(JobError::Options(m));
    if stage == Stage::Projected {
        if *layers != Layers::Final {
            return bad("--stage projected writes the projector output: leave --layers at final".into());
        }
        match &enc.net {
            Net::Tower(t) if t.has_projector() => return Ok(vec![Tap::Projected]),
            _ => return bad(format!("--stage projected: {} has no multi_modal_projector", enc.dir.display())),
        }
    }
    let t = match layers {
        Layers::Final => vec![Tap::Final],
        Layers::All => (0..=n).map(Tap::Hidden).collect(),
        Layers::List(l) => {
            if l.is_empty() {
                return bad("--layers: an empty list".into());
            }
            if let Some(k) = l.iter().find(|&&k| k > n) {
                return bad(format!("--layers {k}: the model has hidden states 0 to {n}"));
            }
            let mut seen = HashSet::new();
            if let Some(k) = l.iter().find(|k| !seen.insert(**k)) {
                return bad(format!("--layers: {k} twice"));
            }
            l.iter().map(|&k| Tap::Hidden(k)).collect()
        }
    };
    Ok(t)
}

/// One window of a file: `[start, end)` samples, and which of its output frames to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First sample.
    pub start: usize,
    /// One past the last sample.
    pub end: usize,
    /// First output frame kept.
    pub keep_from: usize,
    /// Output frames kept.
    pub keep: usize,
}

/// How a file of `len` samples is cut.
///
/// - HuBERT / wav2vec2: up to 30 s, one window (the whole file). Longer: windows contributing
///   1000 frames (20 s) each, with up to 250 frames (5 s) of context on either side that are
///   computed and dropped; window starts are multiples of the 320-sample hop, so every kept
///   frame sees the same samples as in one pass and the frames join without gaps or overlaps
///   (`(len - 400) / 320 + 1` frames in all). Only the context is cut: a frame differs from a
///   one-pass computation by what attention and the GroupNorm statistics see beyond 5 s.
/// - Qwen2-Audio / Whisper: consecutive 30 s windows, each computed as the reference computes
///   one clip (Whisper: 1500 frames per window, the last one padded; Qwen2-Audio: its valid rows).
pub fn plan_windows(config: &ModelConfig, len: usize) -> Vec<Window> {
    match config {
        ModelConfig::Wav2Vec2(c) => {
            let frames = c.frames(len);
            if len <= W2V_MAX_WINDOW || frames == 0 {
                return vec![Window { start: 0, end: len, keep_from: 0, keep: frames }];
            }
            let hop = c.hop();
            let rf = c.receptive_field();
            let mut out = Vec::new();
            let mut f0 = 0;
            while f0 < frames {
                let f1 = (f0 + W2V_CORE_FRAMES).min(frames);
                let w0 = f0.saturating_sub(W2V_CONTEXT_FRAMES);
                let w1 = (f1 + W2V_CONTEXT_FRAMES).min(frames);
                let start = w0 * hop;
                let end = ((w1 - 1) * hop + rf).min(len);
                out.push(Window { start, end, keep_from: f0 - w0, keep: f1 - f0 });
                f0 = f1;
            }
            out
        }
        ModelConfig::Qwen2Audio { .. } | ModelConfig::Whisper(_) => {
            let n = len.div_ceil(WINDOW_SAMPLES).max(1);
            (0..n)
                .map(|i| {
                    let start = i * WINDOW_SAMPLES;
                    let end = ((i + 1) * WINDOW_SAMPLES).min(len);
                    Window { start, end, keep_from: 0, keep: usize::MAX }
                })
                .collect()
        }
    }
}

/// Where the embedding of `input` goes, relative to the output folder.
pub fn output_rel(input: &Input) -> PathBuf {
    input.rel.with_extension("npy")
}

/// A tap's label as `manifest.jsonl`'s `layers` writes it: `"final"`, `"projected"` or the
/// hidden-state index.
pub fn tap_label(t: &Tap) -> String {
    match t {
        Tap::Hidden(k) => k.to_string(),
        Tap::Final => "final".into(),
        Tap::Projected => "projected".into(),
    }
}

/// An embedded file.
struct Done {
    samples: usize,
    frames: usize,
    dim: usize,
}

/// Embeds every input into `out` (created if missing): `<stem>.npy` per input ([`output_rel`])
/// and `manifest.jsonl`. Inputs whose output names clash: the first in input order is embedded,
/// the others fail naming it.
pub fn embed_files(
    inputs: &[Input],
    out: &Path,
    options: &EmbedOptions,
    observer: &dyn Observer,
) -> Result<EmbedSummary, JobError> {
    check_jobs(options.jobs)?;
    if options.batch_size == 0 || options.batch_size > MAX_BATCH_SIZE {
        return Err(JobError::Options(format!("--batch-size {}: 1 to {MAX_BATCH_SIZE}", options.batch_size)));
    }
    let enc = Encoder::load(&options.model)?;
    let taps = taps(&enc, &options.layers, options.stage)?;
    std::fs::create_dir_all(out).map_err(|e| JobError::CreateDir(out.to_path_buf(), e))?;
    let pool = thread_pool(options.jobs)?;
    let progress = Phase::begin(observer, PHASE, inputs.len() as u64, "files");
    let mut results: Vec<Result<Done, String>> = Vec::with_capacity(inputs.len());
    let mut claimed: std::collections::HashMap<PathBuf, usize> = std::collections::HashMap::new();
    let group = options.batch_size * 8;
    pool.install(|| {
        for (g, chunk) in inputs.chunks(group).enumerate() {
            let base = g * group;
            // Clashing output names: only the first input of a name is embedded.
            let clash: Vec<Option<String>> = chunk
                .iter()
                .enumerate()
                .map(|(i, input)| {
                    let rel = output_rel(input);
                    let first = *claimed.entry(rel.clone()).or_insert(base + i);
                    (first != base + i).then(|| {
                        format!(
                            "output {} is written for {} (same name once the extension is replaced); rename one of them",
                            path_text(&rel),
                            inputs.get(first).map_or_else(String::new, |f| path_text(&f.path))
                        )
                    })
                })
                .collect();
            let decoded: Vec<Result<Vec<f32>, String>> = chunk
                .par_iter()
                .zip(&clash)
                .map(|(input, clash)| {
                    if let Some(c) = clash {
                        return Err(c.clone());
                    }
                    input.readable()?;
                    let a = load_input(input, &LoadOptions::mono_at(16_000)).map_err(|e| error_chain(&e))?;
                    Ok(a.samples)
                })
                .collect();
            let clips: Vec<Result<&[f32], String>> =
                decoded.iter().map(|d| d.as_ref().map(|s| s.as_slice()).map_err(Clone::clone)).collect();
            let embedded = embed_group(&enc, &taps, options.pool, options.batch_size, &clips);
            for ((input, d), e) in chunk.iter().zip(&decoded).zip(embedded) {
                let r = match (d, e) {
                    (Err(e), _) => Err(e.clone()),
                    (Ok(_), Err(e)) => Err(e),
                    (Ok(samples), Ok(arr)) => write_npy(out, input, options.dtype, arr, samples.len()),
                };
                results.push(r.map_err(|e| {
                    let shown = input.path.display().to_string();
                    let e = if e.contains(&shown) { e } else { format!("{shown}: {e}") };
                    reason_about(&input.path, e)
                }));
                progress.advance(1);
            }
        }
    });
    drop(progress);
    let rate = enc.frame_rate(taps.first().copied().unwrap_or(Tap::Final));
    let labels: Vec<String> = taps.iter().map(tap_label).collect();
    let mut manifest = String::new();
    let mut records = Vec::with_capacity(inputs.len());
    let (mut done, mut failed, mut audio_secs) = (0, 0, 0.0);
    for (input, r) in inputs.iter().zip(results) {
        let ok = r.is_ok();
        let (samples, frames, dim, error) = match r {
            Ok(d) => {
                done += 1;
                audio_secs += d.samples as f64 / 16_000.0;
                (Some(d.samples), Some(d.frames), Some(d.dim), None)
            }
            Err(e) => {
                failed += 1;
                (None, None, None, Some(e))
            }
        };
        let rec = Record {
            input: path_text(&input.path),
            output: ok.then(|| path_text(&output_rel(input))),
            status: if ok { Status::Ok } else { Status::Failed },
            samples,
            frames,
            dim,
            layers: labels.clone(),
            frame_rate_hz: rate,
            dtype: options.dtype.name().into(),
            model: options.model.clone(),
            config_sha1: enc.config_sha1.clone(),
            error,
            path_escaped: path_escaped(&input.path),
        };
        manifest.push_str(&serde_json::to_string(&rec).unwrap_or_default());
        manifest.push('\n');
        records.push(rec);
    }
    let bytes = manifest.as_bytes();
    let mut f = atomic::AtomicFile::create(&out.join("manifest.jsonl"))?;
    f.write_all(bytes)?;
    f.commit(false)?;
    Ok(EmbedSummary { records, done, failed, audio_secs })
}

/// A file's joined output: `(taps, frames, dim)`.
struct Array {
    taps: usize,
    frames: usize,
    dim: usize,
    data: Vec<f32>,
    /// Valid frames for `--pool mean` (Whisper's windows carry padded frames).
    valid: Vec<bool>,
}

/// One clip's output as [`embed_files`] writes it to its `.npy`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipEmbedding {
    /// The array's shape: `(frames, dim)` for one tap, `(taps, frames, dim)` for several; with
    /// [`Pool::Mean`] `(dim,)` / `(taps, dim)`.
    pub shape: Vec<usize>,
    /// The elements in C order.
    pub data: Vec<f32>,
    /// Output frames (1 when pooled).
    pub frames: usize,
    /// Output width.
    pub dim: usize,
}

/// Embeds decoded 16 kHz mono clips of any length exactly as [`embed_files`] embeds files: each
/// clip cut into [windows](plan_windows), the windows of all clips sorted by length and embedded
/// `batch_size` at a time, joined back per clip, pooled as `pool` says. The numbers do not depend
/// on `batch_size` or on the other clips. A clip shorter than the model's receptive field, with a
/// non-finite sample, or whose batch failed gets its error text; the others are unaffected.
/// Runs on the current rayon pool.
pub fn embed_clips(
    enc: &Encoder,
    taps: &[Tap],
    clips: &[&[f32]],
    pool: Pool,
    batch_size: usize,
) -> Vec<Result<ClipEmbedding, String>> {
    let clips: Vec<Result<&[f32], String>> = clips.iter().map(|c| Ok(*c)).collect();
    embed_group(enc, taps, pool, batch_size.clamp(1, MAX_BATCH_SIZE), &clips)
}

/// A clip the model cannot embed: shorter than its receptive field, or with a non-finite sample.
fn check_clip(enc: &Encoder, s: &[f32]) -> Result<(), String> {
    if s.len() < enc.min_samples() {
        return Err(format!(
            "{} samples ({:.3} s): shorter than the model's receptive field of {} samples",
            s.len(),
            s.len() as f64 / 16_000.0,
            enc.min_samples()
        ));
    }
    if let Some(j) = s.iter().position(|v| !v.is_finite()) {
        return Err(format!("non-finite sample (NaN or infinity) at sample {j}"));
    }
    Ok(())
}

/// Embeds the decoded clips of a group: windows sorted by length, `batch_size` per call, joined
/// back per clip and pooled.
fn embed_group(
    enc: &Encoder,
    taps: &[Tap],
    pool: Pool,
    batch_size: usize,
    decoded: &[Result<&[f32], String>],
) -> Vec<Result<ClipEmbedding, String>> {
    let decoded: Vec<Result<&[f32], String>> =
        decoded.iter().map(|d| d.clone().and_then(|s| check_clip(enc, s).map(|()| s))).collect();
    struct Item {
        file: usize,
        win: usize,
        w: Window,
    }
    let mut items = Vec::new();
    let mut nwin = vec![0usize; decoded.len()];
    for (f, d) in decoded.iter().enumerate() {
        if let Ok(s) = d {
            let ws = plan_windows(&enc.config, s.len());
            nwin[f] = ws.len();
            items.extend(ws.into_iter().enumerate().map(|(win, w)| Item { file: f, win, w }));
        }
    }
    // Length buckets: windows of similar length share a batch (stable: ties keep input order).
    items.sort_by_key(|it| std::cmp::Reverse(it.w.end - it.w.start));
    let mut outs: Vec<Vec<Option<Result<crate::Embedding, String>>>> = nwin.iter().map(|&n| vec![None; n]).collect();
    for batch in items.chunks(batch_size) {
        let clips: Vec<&[f32]> = batch
            .iter()
            .map(|it| match &decoded[it.file] {
                Ok(s) => &s[it.w.start..it.w.end],
                Err(_) => &[][..],
            })
            .collect();
        match enc.embed(&clips, taps) {
            Ok(es) => {
                for (it, e) in batch.iter().zip(es) {
                    outs[it.file][it.win] = Some(Ok(e));
                }
            }
            Err(e) => {
                let msg = crate_error_text(&e);
                for it in batch {
                    outs[it.file][it.win] = Some(Err(msg.clone()));
                }
            }
        }
    }
    let whisper = matches!(enc.config, ModelConfig::Whisper(_));
    decoded
        .iter()
        .zip(outs)
        .enumerate()
        .map(|(f, (d, wins))| {
            let s = d.as_ref().map_err(Clone::clone)?;
            let ws = plan_windows(&enc.config, s.len());
            let mut parts = Vec::new();
            for (w, e) in ws.iter().zip(wins) {
                let e = e.ok_or_else(|| format!("internal: window of file {f} not embedded"))??;
                parts.push((*w, e));
            }
            pooled(join(parts, taps.len(), whisper)?, pool)
        })
        .collect()
}

fn crate_error_text(e: &Error) -> String {
    error_chain(e)
}

/// Joins a file's windows along the frame axis, per tap.
fn join(parts: Vec<(Window, crate::Embedding)>, taps: usize, whisper: bool) -> Result<Array, String> {
    let dim = parts.first().map_or(0, |(_, e)| e.dim);
    let mut frames = 0;
    let mut spans = Vec::new();
    let mut valid = Vec::new();
    for (w, e) in &parts {
        let from = w.keep_from.min(e.frames);
        let n = w.keep.min(e.frames - from);
        spans.push((from, n));
        frames += n;
        let ok_frames = if whisper { tower_frames((w.end - w.start).div_ceil(160).min(MEL_FRAMES)) } else { n };
        valid.extend((0..n).map(|i| i < ok_frames));
    }
    let mut data = Vec::with_capacity(taps * frames * dim);
    for t in 0..taps {
        for ((_, e), &(from, n)) in parts.iter().zip(&spans) {
            let base = t * e.frames * dim;
            data.extend_from_slice(&e.data[base + from * dim..base + (from + n) * dim]);
        }
    }
    Ok(Array { taps, frames, dim, data, valid })
}

/// The array as written: all frames, or their mean over the valid ones.
fn pooled(arr: Array, pool: Pool) -> Result<ClipEmbedding, String> {
    let Array { taps, frames, dim, data, valid } = arr;
    match pool {
        Pool::None => {
            let shape = if taps == 1 { vec![frames, dim] } else { vec![taps, frames, dim] };
            Ok(ClipEmbedding { shape, data, frames, dim })
        }
        Pool::Mean => {
            let n = valid.iter().filter(|&&v| v).count();
            if n == 0 {
                return Err("no valid output frame to pool".into());
            }
            let mut pooled = vec![0f64; taps * dim];
            for t in 0..taps {
                for (f, _) in valid.iter().enumerate().filter(|(_, &v)| v) {
                    let row = &data[(t * frames + f) * dim..(t * frames + f + 1) * dim];
                    for (p, &x) in pooled[t * dim..(t + 1) * dim].iter_mut().zip(row) {
                        *p += f64::from(x);
                    }
                }
            }
            let pooled: Vec<f32> = pooled.iter().map(|&s| (s / n as f64) as f32).collect();
            let shape = if taps == 1 { vec![dim] } else { vec![taps, dim] };
            Ok(ClipEmbedding { shape, data: pooled, frames: 1, dim })
        }
    }
}

fn write_npy(out: &Path, input: &Input, dtype: OutDtype, arr: ClipEmbedding, samples: usize) -> Result<Done, String> {
    let dest = out.join(output_rel(input));
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("creating {}: {e}", parent.display()))?;
    }
    let bytes = npy_bytes(&arr.shape, &arr.data, dtype);
    let write = || -> Result<(), atomic::WriteError> {
        let mut f = atomic::AtomicFile::create(&dest)?;
        f.write_all(&bytes)?;
        f.commit(false)
    };
    write().map_err(|e| error_chain(&e))?;
    Ok(Done { samples, frames: arr.frames, dim: arr.dim })
}

/// A `.npy` (version 1.0, as `np.save` writes it) of `<f4` or `<f2` elements.
pub fn npy_bytes(shape: &[usize], data: &[f32], dtype: OutDtype) -> Vec<u8> {
    let mut v = Vec::new();
    match dtype {
        OutDtype::F32 => {
            // Writing into a Vec cannot fail.
            let _ = audiotok_features::npy::write_f32(&mut v, shape, data);
        }
        OutDtype::F16 => {
            let dims = match shape {
                [one] => format!("({one},)"),
                _ => format!("({})", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
            };
            let mut h = format!("{{'descr': '<f2', 'fortran_order': False, 'shape': {dims}, }}").into_bytes();
            // As np.save: room for the first dimension to grow to 21 digits, then spaces up to a
            // multiple of 64 bytes with the 10-byte preamble and the final newline.
            let first = shape.first().map_or(0, |d| d.to_string().len());
            let growth = if shape.is_empty() { 0 } else { 21 - first.min(21) };
            let pad = 64 - (10 + h.len() + growth + 1) % 64;
            h.extend(std::iter::repeat_n(b' ', growth + pad));
            h.push(b'\n');
            v.extend_from_slice(b"\x93NUMPY\x01\x00");
            v.extend_from_slice(&(h.len() as u16).to_le_bytes());
            v.extend_from_slice(&h);
            v.reserve(data.len() * 2);
            for &x in data {
                v.extend_from_slice(&half::f16::from_f32(x).to_le_bytes());
            }
        }
    }
    v
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let t = c.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        cause = c.source();
    }
    text
}
