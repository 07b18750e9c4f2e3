//! The decode job: a SNAC token store back to WAV files (see the [module docs](super)).

use std::path::{Path, PathBuf};

use audiotok_core::observer::Phase;
use audiotok_core::Observer;
use audiotok_tokens::store::{self, StoreMetadata, StoreReader};
use serde::{Deserialize, Serialize};

use super::{serialize_path, sha1_hex, DeviceChoice, Failure, JobError};
use crate::{Error, NoiseRng, Snac};

/// Longest stem (bytes) kept whole in a decoded WAV's name; longer ones are cut and get a hash.
pub const MAX_STEM_BYTES: usize = 100;

/// Options of [`decode`] (the flags of `audiotok decode`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecodeOptions {
    /// SNAC model (as for [`super::EncodeOptions::model`]).
    pub model: String,
    /// Fine-tuned weights replacing the model's.
    pub checkpoint: Option<PathBuf>,
    /// A token store directory or one of its `.parquet` files.
    pub input: PathBuf,
    /// Directory for the WAV files (created if needed).
    pub out: PathBuf,
    /// Whether the decoder's noise layers run: `N(0, 1)` noise as the reference adds at
    /// inference, record `i` from a generator seeded with `seed + i` (mod 2^64). Off (the
    /// default): deterministic, equal to the reference with noise disabled.
    pub noise: bool,
    /// Seed of the noise generator.
    pub seed: u64,
    /// Decode only the first N records.
    pub max_records: Option<usize>,
    /// Threads (0: one per core; at most [`audiotok_core::MAX_JOBS`]).
    pub jobs: usize,
    /// Where the model runs.
    pub device: DeviceChoice,
}

impl DecodeOptions {
    /// The CLI's defaults for `model`, `input` and `out`: noise off, seed 0, every record, one
    /// thread per core, [`DeviceChoice::Auto`].
    pub fn new(model: impl Into<String>, input: impl Into<PathBuf>, out: impl Into<PathBuf>) -> Self {
        Self {
            model: model.into(),
            checkpoint: None,
            input: input.into(),
            out: out.into(),
            noise: false,
            seed: 0,
            max_records: None,
            jobs: 0,
            device: DeviceChoice::Auto,
        }
    }
}

/// What [`decode`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecodeSummary {
    /// The WAV directory.
    #[serde(serialize_with = "serialize_path")]
    pub out: PathBuf,
    /// Records decoded and written.
    pub records: usize,
    /// Missing batches first, then records that could not be decoded or written, with reasons.
    pub failures: Vec<Failure>,
    /// The missing batches' file names (each also a failure).
    pub missing_batches: Vec<String>,
    /// Seconds of audio written.
    pub audio_seconds: f64,
    /// The model's sample rate (that of every WAV).
    pub sampling_rate: u32,
}

/// The WAV file name of record `index` whose `file_path` is `file_path`: `NNNNNN_<stem>.wav`
/// (`NNNNNN` = the index, `<stem>` = the file stem with characters other than alphanumerics and
/// `-_.` replaced by `_`), `#K` written as `_segK`. A stem longer than [`MAX_STEM_BYTES`] is cut
/// (at a character boundary) and followed by `~` and the first 16 hex digits of the SHA-1 of
/// `file_path`.
pub fn wav_name(index: usize, file_path: &str) -> String {
    let (path, seg) = match file_path.rsplit_once('#') {
        Some((p, k)) if k.len() <= 20 && k.parse::<usize>().is_ok() => (p, Some(k)),
        _ => (file_path, None),
    };
    let stem = Path::new(path).file_stem().and_then(|s| s.to_str()).unwrap_or("record");
    let mut stem: String =
        stem.chars().map(|c| if c.is_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    if stem.len() > MAX_STEM_BYTES {
        let mut cut = MAX_STEM_BYTES;
        while !stem.is_char_boundary(cut) {
            cut -= 1;
        }
        stem.truncate(cut);
        stem.push('~');
        stem.push_str(&sha1_hex(&[file_path])[..16]);
    }
    match seg {
        Some(k) => format!("{index:06}_{stem}_seg{k}.wav"),
        None => format!("{index:06}_{stem}.wav"),
    }
}

/// Decodes one record's codes (one vector per codebook, coarsest first) to mono samples at the
/// model's rate, cut to `duration` seconds when that is shorter than the decoded (padded) length
/// and not 0, as the decode job does. `noise`: see [`Snac::decode_codes`].
///
/// Runs on the current rayon pool (see the [module docs](super)).
pub fn decode_audio(
    model: &Snac,
    codes: &[Vec<u32>],
    duration: f64,
    noise: Option<&mut NoiseRng>,
) -> Result<Vec<f32>, Error> {
    let mut samples = model.decode_codes(codes, noise)?;
    let want = (duration * model.config().sampling_rate as f64).round() as usize;
    if want > 0 && want < samples.len() {
        samples.truncate(want);
    }
    Ok(samples)
}

/// Decodes a token store to one WAV per record (see the [module docs](super)).
///
/// Phase: `decode` (records; its total is the store's `metadata.json` count, or
/// `max_records`, or 0 when neither is known). Warnings: `config.json` fields that took the snac
/// package's defaults. Missing batches and records that fail are [`Failure`]s in the summary; an
/// error stops the run (the model, an unreadable store, a store of another codebook count).
pub fn decode(opts: &DecodeOptions, observer: &dyn Observer) -> Result<DecodeSummary, JobError> {
    let pool = audiotok_core::thread_pool(opts.jobs)?;
    pool.install(|| decode_on_pool(opts, observer))
}

fn decode_on_pool(opts: &DecodeOptions, observer: &dyn Observer) -> Result<DecodeSummary, JobError> {
    let loaded = super::load_model(&opts.model, opts.checkpoint.as_deref(), opts.device, observer)?;
    let model = &loaded.model;
    let cfg = model.config();
    let rate = cfg.sampling_rate as u32;
    let input = &opts.input;
    let reader = StoreReader::open(input)?;
    let missing = if input.is_dir() { store::missing_batches(input)? } else { Vec::new() };
    if reader.num_scales() != cfg.n_codebooks() {
        return Err(JobError::Scales {
            path: input.clone(),
            scales: reader.num_scales(),
            codebooks: cfg.n_codebooks(),
        });
    }
    std::fs::create_dir_all(&opts.out).map_err(|source| JobError::Io {
        path: opts.out.clone(),
        action: "cannot create",
        source,
    })?;
    let known = input.is_dir().then(|| StoreMetadata::load(input).ok()).flatten().map(|m| m.num_files as usize);
    let total = match (known, opts.max_records) {
        (Some(n), Some(m)) => n.min(m),
        (Some(n), None) => n,
        (None, Some(m)) => m,
        (None, None) => 0,
    };
    let progress = Phase::begin(observer, "decode", total as u64, "records");
    let mut done = 0usize;
    let mut failures: Vec<Failure> = missing
        .iter()
        .map(|(name, why)| Failure {
            path: input.clone(),
            reason: format!("{}: missing ({why})", input.join(name).display()),
        })
        .collect();
    let mut audio_s = 0.0;
    for (i, rec) in reader.records().enumerate() {
        if opts.max_records.is_some_and(|n| i >= n) {
            break;
        }
        let rec = rec?;
        let codes: Vec<Vec<u32>> = rec.scales.iter().map(|s| s.tokens.clone()).collect();
        let mut rng = opts.noise.then(|| NoiseRng::new(opts.seed.wrapping_add(i as u64)));
        let fail = |what: String| Failure {
            path: input.clone(),
            reason: format!("{} record {i} ({}): {what}", input.display(), rec.file_path),
        };
        match decode_audio(model, &codes, rec.duration, rng.as_mut()) {
            Ok(samples) => {
                let path = opts.out.join(wav_name(i, &rec.file_path));
                match audiotok_audio::write_wav_f32(&path, &samples, rate, 1) {
                    Ok(()) => {
                        audio_s += samples.len() as f64 / rate as f64;
                        done += 1;
                    }
                    Err(e) => failures.push(fail(format!("writing {}: {e}", path.display()))),
                }
            }
            Err(e) => failures.push(fail(e.to_string())),
        }
        progress.advance(1);
    }
    drop(progress);
    Ok(DecodeSummary {
        out: opts.out.clone(),
        records: done,
        failures,
        missing_batches: missing.into_iter().map(|(name, _)| name).collect(),
        audio_seconds: audio_s,
        sampling_rate: rate,
    })
}
