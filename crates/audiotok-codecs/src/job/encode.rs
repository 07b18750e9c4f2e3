//! The encode job: audio files to a resumable SNAC token store (see the [module docs](super)).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use audiotok_audio::{open_input, Resampler};
use audiotok_core::observer::Phase;
use audiotok_core::Observer;
use audiotok_core::{Input, Origin};
use audiotok_tokens::store::{self, ScaleTokens, StoreOptions, StoreReader, StoreWriter, TokenRecord};
use serde::{Deserialize, Serialize};

use super::{chain_text, file_sha1, serialize_path, sha1_hex, DeviceChoice, Failure, JobError};
use crate::Snac;

/// Longest segment, in seconds, however it is chosen (`segment_seconds` S, or a whole file with
/// 0): the model's activations grow with a segment's length (about 1 GB for 600 s at 24 kHz).
pub const MAX_SEGMENT_SECONDS: f64 = 600.0;
/// Most records per batch (they are held in memory until the batch is written).
pub const MAX_BATCH_SIZE: usize = 100_000;
/// Changes whenever this build's encode would give other codes for the same model, input and
/// options (it is part of every batch's reuse key, with the package version).
pub const ENCODE_PIPELINE: &str = "snac-encode-1 (downmix, soxr HQ resampling, zero-padded segments)";

/// The one message for a segment over [`MAX_SEGMENT_SECONDS`].
fn segment_cap(what: &str) -> String {
    format!(
        "{what}: segments are at most {MAX_SEGMENT_SECONDS:.0} s (memory grows with a segment's length); \
         use a --segment-length of at most {MAX_SEGMENT_SECONDS:.0}"
    )
}

/// Options of [`encode`] (the flags of `audiotok encode`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncodeOptions {
    /// SNAC model: a folder with `config.json` (+ `pytorch_model.bin` or `model.safetensors`), or a
    /// hub id such as `hubertsiuzdak/snac_24khz` found in the local Hugging Face cache.
    pub model: String,
    /// Fine-tuned weights replacing the model's (see [`crate::weights`]).
    pub checkpoint: Option<PathBuf>,
    /// Audio files, directories (walked recursively) or sources (Parquet, Arrow, tars, lhotse
    /// cuts, manifests), listed by [`audiotok_sources::collect`].
    pub inputs: Vec<PathBuf>,
    /// How sources among `inputs` are read (not serialised: the defaults detect every kind).
    #[serde(skip)]
    pub sources: audiotok_sources::SourceOptions,
    /// The token store directory to write (created if needed; batches already there are reused
    /// when they match).
    pub output: PathBuf,
    /// Segment length in seconds, at most [`MAX_SEGMENT_SECONDS`] (0: whole files, each at most
    /// that long). Default 4.
    pub segment_seconds: f64,
    /// Records (segments) per Parquet batch file, 1 to [`MAX_BATCH_SIZE`]. Default 100.
    pub batch_size: usize,
    /// Encode only the first N input files.
    pub max_files: Option<usize>,
    /// Threads (0: one per core; at most [`audiotok_core::MAX_JOBS`]).
    pub jobs: usize,
    /// Where the model runs.
    pub device: DeviceChoice,
}

impl EncodeOptions {
    /// The CLI's defaults for `model`, `inputs` and `output`: 4 s segments, batches of 100, one
    /// thread per core, [`DeviceChoice::Auto`].
    pub fn new(model: impl Into<String>, inputs: Vec<PathBuf>, output: impl Into<PathBuf>) -> Self {
        Self {
            model: model.into(),
            checkpoint: None,
            inputs,
            sources: audiotok_sources::SourceOptions::default(),
            output: output.into(),
            segment_seconds: 4.0,
            batch_size: 100,
            max_files: None,
            jobs: 0,
            device: DeviceChoice::Auto,
        }
    }

    fn check(&self) -> Result<(), JobError> {
        if self.batch_size == 0 {
            return Err(JobError::Options("--batch-size must be at least 1".into()));
        }
        if self.batch_size > MAX_BATCH_SIZE {
            return Err(JobError::Options(format!(
                "--batch-size {}: at most {MAX_BATCH_SIZE} records per batch",
                self.batch_size
            )));
        }
        check_segment_seconds(self.segment_seconds)
    }
}

fn check_segment_seconds(seconds: f64) -> Result<(), JobError> {
    if !(seconds >= 0.0 && seconds.is_finite()) {
        return Err(JobError::Options(
            "--segment-length must be 0 (whole files) or a positive number of seconds".into(),
        ));
    }
    if seconds > MAX_SEGMENT_SECONDS {
        return Err(JobError::Options(segment_cap(&format!("--segment-length {seconds}"))));
    }
    Ok(())
}

/// Samples per segment of `seconds` at `rate` Hz for a model of hop `hop` (0: whole files), or
/// why `seconds` is refused (negative, not finite, over [`MAX_SEGMENT_SECONDS`], under one hop).
pub fn segment_samples(seconds: f64, rate: u32, hop: usize) -> Result<usize, JobError> {
    check_segment_seconds(seconds)?;
    let seg = (seconds * rate as f64).round() as usize;
    if seconds > 0.0 && seg < hop {
        return Err(JobError::Options(format!(
            "--segment-length {seconds} s is shorter than one hop ({hop} samples at {rate} Hz)"
        )));
    }
    Ok(seg)
}

/// Batches of an earlier run encoded again, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Redone {
    /// How many.
    pub batches: usize,
    /// Why, as a predicate of "N batches": `were made by another model`, `were made with other
    /// options (or another audiotok version)`, `hold other files`, `hold files whose content
    /// changed`, `could not be read or carry no reuse key (...)`.
    pub reason: String,
}

/// What [`encode`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EncodeSummary {
    /// The store directory.
    #[serde(serialize_with = "serialize_path")]
    pub output: PathBuf,
    /// Input files planned and in the store (encoded now or in reused batches).
    pub files: usize,
    /// Input files rejected, in input order, with their reasons.
    pub failures: Vec<Failure>,
    /// Files under directories skipped because they are not audio.
    pub ignored: usize,
    /// Records (segments) in the store.
    pub records: u64,
    /// Batch files in the store.
    pub batches: usize,
    /// Batches reused from an earlier run.
    pub reused_batches: usize,
    /// Batches on disk that did not match and were encoded again, by reason (in reason order).
    pub redone: Vec<Redone>,
    /// Seconds of audio encoded by this run (reused batches not counted).
    pub encoded_seconds: f64,
    /// Seconds of final remainders shorter than one hop, dropped.
    pub dropped_seconds: f64,
    /// Segments encoded by this run that reach full scale (|x| >= 1; encoded as they are).
    pub clipped_segments: usize,
    /// Segments encoded by this run that are digital silence.
    pub silent_segments: usize,
    /// The model's sample rate.
    pub sampling_rate: u32,
    /// The model's codebook size.
    pub codebook_size: usize,
}

/// What the plan knows about one input file.
struct Planned {
    /// The input (its `path`: the file, or a source record's id).
    input: Input,
    path: PathBuf,
    /// Mono samples at the model rate.
    len: usize,
    /// Segments (records) it yields.
    segments: usize,
    /// Samples of a final remainder shorter than one hop, dropped.
    dropped: usize,
    /// SHA-1 of its bytes.
    sha1: String,
}

/// Decodes an input once: frames per channel, sample rate; fails on NaN samples.
fn scan(input: &Input) -> Result<(u64, u32), String> {
    let path = input.path.as_path();
    let mut dec = open_input(input).map_err(|e| chain_text(&e))?;
    let rate = dec.info().sample_rate;
    let mut frames = 0u64;
    while let Some(planes) = dec.next_block().map_err(|e| chain_text(&e))? {
        for (ch, p) in planes.iter().enumerate() {
            if let Some(i) = p.iter().position(|x| !x.is_finite()) {
                return Err(format!(
                    "{}: non-finite sample (NaN or infinity) at frame {} of channel {ch}",
                    path.display(),
                    frames + i as u64
                ));
            }
        }
        frames += planes.first().map_or(0, |p| p.len() as u64);
    }
    Ok((frames, rate))
}

/// The SHA-1 that stands for an input in the reuse key: its file's, or its fetched bytes' for a
/// source record, combined with its segment when it has one.
fn input_sha1(input: &Input) -> Result<String, String> {
    let path = input.path.as_path();
    let whole = match &input.origin {
        Origin::Bytes(fetch) => {
            use sha1::Digest;
            let bytes = fetch.fetch()?;
            format!("{:x}", sha1::Sha1::digest(&bytes))
        }
        _ => file_sha1(input.file_path())
            .map_err(|(action, e)| format!("{}: {action}: {}", path.display(), chain_text(&e)))?,
    };
    Ok(match input.clip {
        Some(c) => sha1_hex(&[&whole, &format!("{:?} {:?} {:?}", c.start_s, c.duration_s, c.channel)]),
        None => whole,
    })
}

/// Plans one input, or the reason it is rejected.
fn plan_file(input: &Input, model_rate: u32, hop: usize, seg: usize) -> Result<Planned, String> {
    let path = input.path.as_path();
    let (frames, rate) = scan(input)?;
    if rate == 0 {
        return Err(format!("{}: no sample rate", path.display()));
    }
    let len = audiotok_audio::resampled_len(frames, rate, model_rate) as usize;
    if len < hop {
        return Err(format!(
            "{}: shorter than one hop ({len} samples at {model_rate} Hz < {hop}); SNAC has no frame for it",
            path.display()
        ));
    }
    let (segments, dropped) = if seg == 0 {
        let secs = len as f64 / model_rate as f64;
        if secs > MAX_SEGMENT_SECONDS {
            return Err(segment_cap(&format!("{}: {secs:.0} s", path.display())));
        }
        (1, 0)
    } else {
        let tail = len % seg;
        (len / seg + usize::from(tail >= hop), if tail < hop { tail } else { 0 })
    };
    let sha1 = input_sha1(input)?;
    Ok(Planned { input: input.clone(), path: path.to_path_buf(), len, segments, dropped, sha1 })
}

/// Cuts a growing buffer of samples into segments of `seg` samples (0: one segment of
/// everything); the last may be shorter, but only if it holds at least `hop` samples.
struct Segmenter {
    seg: usize,
    hop: usize,
    /// Samples not yet emitted.
    buf: Vec<f32>,
    /// Segments emitted.
    count: usize,
}

impl Segmenter {
    fn new(seg: usize, hop: usize) -> Self {
        Self { seg, hop, buf: Vec::new(), count: 0 }
    }

    /// Emits `(k, samples)` for every complete segment buffered.
    fn drain<E>(&mut self, emit: &mut impl FnMut(usize, &[f32]) -> Result<(), E>) -> Result<(), E> {
        if self.seg == 0 {
            return Ok(());
        }
        let mut start = 0;
        while self.buf.len() - start >= self.seg {
            emit(self.count, &self.buf[start..start + self.seg])?;
            self.count += 1;
            start += self.seg;
        }
        self.buf.drain(..start);
        Ok(())
    }

    /// Emits what is left; returns the number of segments emitted in all.
    fn finish<E>(mut self, emit: &mut impl FnMut(usize, &[f32]) -> Result<(), E>) -> Result<usize, E> {
        if self.seg == 0 {
            emit(0, &self.buf)?;
            return Ok(1);
        }
        self.drain(emit)?;
        if self.buf.len() >= self.hop {
            emit(self.count, &self.buf)?;
            self.count += 1;
        }
        Ok(self.count)
    }
}

/// Streams a file as mono audio at `to` Hz, calling `emit(k, samples)` per segment of `seg`
/// samples (the last may be shorter but at least `hop`; 0 = one segment of the whole file).
fn stream_segments(
    input: &Input,
    to: u32,
    seg: usize,
    hop: usize,
    mut emit: impl FnMut(usize, &[f32]) -> Result<(), JobError>,
) -> Result<usize, JobError> {
    let path = input.path.as_path();
    let mut dec = open_input(input)?;
    let from = dec.info().sample_rate;
    let mut rs = if from == to {
        None
    } else {
        Some(Resampler::new(from, to).map_err(|source| JobError::Resampler { path: path.to_path_buf(), source })?)
    };
    let resampling = |source| JobError::Resampling { path: path.to_path_buf(), source };
    let mut mono = Vec::new();
    let mut segments = Segmenter::new(seg, hop);
    while let Some(planes) = dec.next_block()? {
        mono.clear();
        audiotok_audio::mix::downmix_into(planes, &mut mono);
        match rs.as_mut() {
            Some(r) => r.process(&mono, &mut segments.buf).map_err(resampling)?,
            None => segments.buf.extend_from_slice(&mono),
        }
        segments.drain(&mut emit)?;
    }
    if let Some(r) = rs {
        r.finish(&mut segments.buf).map_err(resampling)?;
    }
    segments.finish(&mut emit)
}

/// A record's `file_path`: the path, with `#K` for segment K unless whole files are encoded.
fn record_name(path: &Path, seg: usize, k: usize) -> String {
    if seg == 0 {
        path.display().to_string()
    } else {
        format!("{}#{k}", path.display())
    }
}

/// One segment's codes ([`encode_audio`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncodedSegment {
    /// Its duration in seconds (samples at the model rate / rate).
    pub duration: f64,
    /// Its codes, one vector per codebook, coarsest first.
    pub codes: Vec<Vec<u32>>,
}

/// Encodes mono `samples` at `rate` Hz as the encode job encodes a file's samples: resampled to
/// the model's rate (libsoxr HQ, as streamed), cut into segments of `segment_seconds` (0: one
/// segment of everything), a last remainder shorter than one hop dropped. Refuses non-finite
/// samples, audio shorter than one hop and whole clips over [`MAX_SEGMENT_SECONDS`].
///
/// Runs on the current rayon pool (see the [module docs](super)).
pub fn encode_audio(
    model: &Snac,
    samples: &[f32],
    rate: u32,
    segment_seconds: f64,
) -> Result<Vec<EncodedSegment>, JobError> {
    let cfg = model.config();
    let to = cfg.sampling_rate as u32;
    let hop = cfg.hop_length();
    let seg = segment_samples(segment_seconds, to, hop)?;
    if rate == 0 {
        return Err(JobError::Input("no sample rate".into()));
    }
    if let Some(i) = samples.iter().position(|x| !x.is_finite()) {
        return Err(JobError::Input(format!("non-finite sample (NaN or infinity) at sample {i}")));
    }
    let mut segments = Segmenter::new(seg, hop);
    if rate == to {
        segments.buf.extend_from_slice(samples);
    } else {
        let mut rs = Resampler::new(rate, to)?;
        rs.process(samples, &mut segments.buf)?;
        rs.finish(&mut segments.buf)?;
    }
    let len = segments.buf.len();
    if len < hop {
        return Err(JobError::Input(format!(
            "shorter than one hop ({len} samples at {to} Hz < {hop}); SNAC has no frame for it"
        )));
    }
    if seg == 0 && len as f64 / to as f64 > MAX_SEGMENT_SECONDS {
        return Err(JobError::Input(segment_cap(&format!("{:.0} s", len as f64 / to as f64))));
    }
    let mut out = Vec::new();
    segments.finish(&mut |_, s: &[f32]| -> Result<(), JobError> {
        out.push(EncodedSegment { duration: s.len() as f64 / to as f64, codes: model.encode_samples(s)? });
        Ok(())
    })?;
    Ok(out)
}

/// Encodes audio files into a SNAC token store, resumably (see the [module docs](super)).
///
/// Phases: `scan` (files), `encode` (samples at the model rate). Warnings: `config.json` fields
/// that took the snac package's defaults. A file that cannot be encoded is a [`Failure`] in the
/// summary; an error stops the run (bad options, the model, the store, a file that changed
/// between the passes).
pub fn encode(opts: &EncodeOptions, observer: &dyn Observer) -> Result<EncodeSummary, JobError> {
    opts.check()?;
    let pool = audiotok_core::thread_pool(opts.jobs)?;
    pool.install(|| encode_on_pool(opts, observer))
}

fn encode_on_pool(opts: &EncodeOptions, observer: &dyn Observer) -> Result<EncodeSummary, JobError> {
    let loaded = super::load_model(&opts.model, opts.checkpoint.as_deref(), opts.device, observer)?;
    let model = &loaded.model;
    let cfg = model.config().clone();
    let rate = cfg.sampling_rate as u32;
    let hop = cfg.hop_length();
    let seg = segment_samples(opts.segment_seconds, rate, hop)?;
    let batch_size = opts.batch_size;
    let mut inputs = audiotok_sources::collect(&opts.inputs, &opts.sources)?;
    if let Some(n) = opts.max_files {
        inputs.files.truncate(n);
    }

    // Pass 1: plan.
    let progress = Phase::begin(observer, "scan", inputs.files.len() as u64, "files");
    let mut planned = Vec::new();
    let mut failures = Vec::new();
    for input in &inputs.files {
        match input.readable().and_then(|()| plan_file(input, rate, hop, seg)) {
            Ok(p) => planned.push(p),
            Err(reason) => failures.push(Failure { path: input.path.clone(), reason }),
        }
        progress.advance(1);
    }
    drop(progress);
    let records: Vec<(String, &str)> = planned
        .iter()
        .flat_map(|p| (0..p.segments).map(move |k| (record_name(&p.path, seg, k), p.sha1.as_str())))
        .collect();
    let names: Vec<&str> = records.iter().map(|(n, _)| n.as_str()).collect();
    let n_batches = names.len().div_ceil(batch_size);

    // The reuse key (see the module docs): model, options, and each batch's inputs.
    let config_sha1 = sha1_hex(&[&serde_json::to_string(&cfg)?]);
    let weights_sha1 = file_sha1(&loaded.weights_path).map_err(|(action, source)| JobError::Io {
        path: loaded.weights_path.clone(),
        action,
        source,
    })?;
    let model_key = format!("config {config_sha1}, weights {weights_sha1}");
    let options_key = format!(
        "audiotok {}; {ENCODE_PIPELINE}; sampling_rate {rate}; segment_samples {seg}; batch_size {batch_size}",
        env!("CARGO_PKG_VERSION"),
    );
    let batch_range = |b: usize| b * batch_size..((b + 1) * batch_size).min(names.len());
    let inputs_key = |b: usize| {
        let parts: Vec<&str> = records[batch_range(b)].iter().flat_map(|(n, h)| [n.as_str(), *h]).collect();
        sha1_hex(&parts)
    };
    let tags_of = |b: usize| -> BTreeMap<String, String> {
        [("reuse_model", model_key.clone()), ("reuse_options", options_key.clone()), ("reuse_inputs", inputs_key(b))]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    };

    // Batches already on disk are reused when their key and file list match the plan.
    std::fs::create_dir_all(&opts.output).map_err(|source| JobError::Io {
        path: opts.output.clone(),
        action: "cannot create",
        source,
    })?;
    let existing = store::existing_batches(&opts.output)?;
    let mut reuse = vec![false; n_batches];
    let mut redone: BTreeMap<&str, usize> = BTreeMap::new();
    for &b in existing.iter().filter(|&&b| b < n_batches) {
        let file = opts.output.join(store::batch_file_name(b));
        let tags = store::batch_tags(&file).unwrap_or_default();
        let want = tags_of(b);
        let why = if !tags.contains_key("reuse_model") {
            Some("could not be read or carry no reuse key (written before audiotok recorded one)")
        } else if tags.get("reuse_model") != want.get("reuse_model") {
            Some("were made by another model")
        } else if tags.get("reuse_options") != want.get("reuse_options") {
            Some("were made with other options (or another audiotok version)")
        } else if tags.get("reuse_inputs") != want.get("reuse_inputs") {
            let same_names = StoreReader::open(&file)
                .ok()
                .map(|r| r.records().map(|rec| rec.map(|r| r.file_path)).collect::<Result<Vec<_>, _>>())
                .and_then(|r| r.ok())
                .is_some_and(|got| got == names[batch_range(b)]);
            Some(if same_names { "hold files whose content changed" } else { "hold other files" })
        } else {
            None
        };
        match why {
            Some(w) => *redone.entry(w).or_insert(0) += 1,
            None => reuse[b] = true,
        }
    }

    let mut store_opts = StoreOptions::new(cfg.n_codebooks());
    store_opts.batch_size = batch_size;
    store_opts.codebook_sizes = Some(vec![cfg.codebook_size as u32; cfg.n_codebooks()]);
    store_opts.rates_hz = Some(cfg.token_rates_hz());
    store_opts.provenance = [
        ("model", opts.model.clone()),
        ("config", loaded.config_path.display().to_string()),
        ("config_sha1", config_sha1.clone()),
        ("weights", loaded.weights_path.display().to_string()),
        ("weights_sha1", weights_sha1.clone()),
        ("pipeline", options_key.clone()),
        ("sampling_rate", rate.to_string()),
        ("segment_samples", seg.to_string()),
        ("batch_size", batch_size.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut writer = StoreWriter::create(&opts.output, store_opts)?;

    // Pass 2: stream, encode, write.
    let total_samples: usize = planned.iter().map(|p| p.len).sum();
    let progress = Phase::begin(observer, "encode", total_samples as u64, "samples");
    let mut pending: Vec<TokenRecord> = Vec::with_capacity(batch_size);
    let mut index = 0usize;
    let mut encoded_s = 0.0;
    let mut clipped_segments = 0usize;
    let mut silent_segments = 0usize;
    for p in &planned {
        let got = stream_segments(&p.input, rate, seg, hop, |k, samples| {
            let b = index / batch_size;
            progress.advance(samples.len() as u64);
            if !reuse[b] {
                if samples.iter().any(|x| x.abs() >= 1.0) {
                    clipped_segments += 1;
                }
                if samples.iter().all(|&x| x == 0.0) {
                    silent_segments += 1;
                }
                let codes = model
                    .encode_samples(samples)
                    .map_err(|source| JobError::Encoding { path: p.path.clone(), source })?;
                encoded_s += samples.len() as f64 / rate as f64;
                pending.push(TokenRecord {
                    file_path: record_name(&p.path, seg, k),
                    duration: samples.len() as f64 / rate as f64,
                    scales: codes.into_iter().map(ScaleTokens::stream).collect(),
                });
            }
            index += 1;
            let batch_done = index % batch_size == 0 || index == names.len();
            if batch_done {
                if reuse[b] {
                    writer.reuse_batch(b)?;
                } else {
                    writer.write_batch_tagged(b, &pending, &tags_of(b))?;
                    pending.clear();
                }
            }
            Ok(())
        })?;
        if got != p.segments {
            return Err(JobError::Replanned { path: p.path.clone(), got, planned: p.segments });
        }
    }
    drop(progress);
    let meta = writer.finish()?;

    let dropped: usize = planned.iter().map(|p| p.dropped).sum();
    Ok(EncodeSummary {
        output: opts.output.clone(),
        files: planned.len(),
        failures,
        ignored: inputs.ignored,
        records: meta.num_files,
        batches: meta.batches.len(),
        reused_batches: reuse.iter().filter(|&&r| r).count(),
        redone: redone.into_iter().map(|(reason, batches)| Redone { batches, reason: reason.to_string() }).collect(),
        encoded_seconds: encoded_s,
        dropped_seconds: dropped as f64 / rate as f64,
        clipped_segments,
        silent_segments,
        sampling_rate: rate,
        codebook_size: cfg.codebook_size,
    })
}
