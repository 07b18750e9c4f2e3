//! `audiotok encode` / `audiotok decode`: audio to SNAC codes in a token store, and back to WAV.
//!
//! Encode plans the whole run first (every file is decoded once to count its frames and to find NaN
//! samples, and its bytes hashed; nothing is kept), so that record `i` always lands in batch
//! `i / batch_size`. Every batch file carries, in its Parquet key-value metadata, the model (SHA-1
//! of the config and of the weights file), the options that shape the codes, and a hash of its
//! records' names and input files' bytes: a rerun reuses a batch file only when all of these and
//! its file list match the plan, and encodes the rest again (saying why).
//! The second pass streams each file (decode → downmix → resample to the model rate → segments), so
//! memory stays bounded by one segment whatever the file's length.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use audiotok_audio::{Decoder, Resampler};
use audiotok_codecs::{weights, NoiseRng};
use audiotok_tokens::store::{self, ScaleTokens, StoreOptions, StoreReader, StoreWriter, TokenRecord};
use candle_core::Device;
use indicatif::{ProgressBar, ProgressStyle};

use crate::runner;

/// Longest segment, in seconds, however it is chosen (`--segment-length S`, or a whole file with
/// `--segment-length 0`): the model's activations grow with a segment's length (about 1 GB for
/// 600 s at 24 kHz).
const MAX_SEGMENT_SECONDS: f64 = 600.0;
/// Most records per batch (they are held in memory until the batch is written).
const MAX_BATCH_SIZE: usize = 100_000;
/// Changes whenever this build's encode would give other codes for the same model, input and
/// options (it is part of every batch's reuse key, with the package version).
const ENCODE_PIPELINE: &str = "snac-encode-1 (downmix, soxr HQ resampling, zero-padded segments)";

/// The one message for a segment over [`MAX_SEGMENT_SECONDS`].
fn segment_cap(what: &str) -> String {
    format!(
        "{what}: segments are at most {MAX_SEGMENT_SECONDS:.0} s (memory grows with a segment's length); \
         use a --segment-length of at most {MAX_SEGMENT_SECONDS:.0}"
    )
}

/// Arguments of `audiotok encode`.
#[derive(clap::Args)]
#[command(after_help = "Output: a token store: tokens_batch_XXXX.parquet (one row per segment: file_path, duration, \
tokens_scale_k / n_tokens_scale_k / shape_scale_k per codebook, coarsest first) and metadata.json. With segments, \
file_path is `PATH#K` (K = segment index from 0); with --segment-length 0 it is PATH.\n\n\
Bad input: files that cannot be decoded, hold NaN samples, or are shorter than one hop (512 samples at 24 kHz) are \
rejected with their reason and the run goes on (exit 1 at the end unless --keep-going). A last remainder shorter \
than one hop is dropped and counted in the summary; a longer one becomes a shorter last segment (zero-padded by the model). \
Silence and clipped audio are encoded as they are (samples are not clamped). A checkpoint of another \
configuration stops the run with the missing, unexpected and mis-shaped keys.")]
pub struct EncodeArgs {
    /// SNAC model: a folder with config.json (+ pytorch_model.bin or model.safetensors), or a hub id such as
    /// hubertsiuzdak/snac_24khz found in the local Hugging Face cache ($HF_HOME/hub); nothing is downloaded.
    #[arg(long)]
    model: String,
    /// Fine-tuned weights replacing the model's (a torch.save state dict, possibly nested under `model` or
    /// `state_dict`, `module.` prefixes allowed; or .safetensors).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Audio files or directories (walked recursively).
    #[arg(long, required = true, num_args = 1.., value_name = "FILE|DIR")]
    input: Vec<PathBuf>,
    /// The token store directory to write.
    #[arg(long)]
    output: PathBuf,
    /// Segment length in seconds, at most 600 (0: whole files, each at most 600 s).
    #[arg(long, default_value_t = 4.0)]
    segment_length: f64,
    /// Records (segments) per Parquet batch file (1 to 100000).
    #[arg(long, default_value_t = 100)]
    batch_size: usize,
    /// Encode only the first N input files.
    #[arg(long)]
    max_files: Option<usize>,
    /// Threads (0: one per core; at most 1024).
    #[arg(long, short, default_value_t = 0, value_parser = crate::runner::parse_jobs)]
    jobs: usize,
    /// Run `audiotok analyze` on the store afterwards.
    #[arg(long)]
    analyze: bool,
    /// Exit 0 even when some files were rejected.
    #[arg(long)]
    keep_going: bool,
}

/// Whether the decoder's noise layers run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Noise {
    /// Skip them: deterministic output, equal to the reference with noise disabled.
    Off,
    /// Add N(0, 1) noise as the reference does at inference, from a generator seeded by --seed per record.
    On,
}

/// Arguments of `audiotok decode`.
#[derive(clap::Args)]
#[command(after_help = "Writes one float32 WAV per record at the model's rate, named NNNNNN_<name>.wav (NNNNNN = \
record index in the store, <name> = the file stem of file_path, `#K` written as `_segK`), cut to the record's \
duration. A stem longer than 100 bytes is cut (at a character boundary) and followed by `~` and the first 16 hex \
digits of the SHA-1 of file_path. Batches that metadata.json lists, or gaps in the batch numbers, are reported as \
failures (exit 1). With --noise on, record i uses the generator seeded with seed + i, so reruns give identical files.")]
pub struct DecodeArgs {
    /// SNAC model (as for `audiotok encode`).
    #[arg(long)]
    model: String,
    /// Fine-tuned weights replacing the model's.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// A token store directory or one of its .parquet files.
    #[arg(long)]
    input: PathBuf,
    /// Directory for the WAV files.
    #[arg(long)]
    out: PathBuf,
    /// Decoder noise layers.
    #[arg(long, value_enum, default_value_t = Noise::Off)]
    noise: Noise,
    /// Seed of the noise generator (with --noise on); record i uses seed + i (mod 2^64).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Decode only the first N records.
    #[arg(long)]
    max_records: Option<usize>,
    /// Threads (0: one per core; at most 1024).
    #[arg(long, short, default_value_t = 0, value_parser = crate::runner::parse_jobs)]
    jobs: usize,
}

fn set_threads(jobs: usize) -> Result<()> {
    if jobs > 0 {
        // candle's matrix products read the same variable as rayon; set before any pool starts.
        std::env::set_var("RAYON_NUM_THREADS", jobs.to_string());
        rayon::ThreadPoolBuilder::new().num_threads(jobs).build_global().context("starting the thread pool")?;
    }
    Ok(())
}

/// Loads the model; warns about `config.json` fields that took the snac package's defaults.
fn load_model(model: &str, checkpoint: Option<&Path>) -> Result<weights::LoadedSnac> {
    // CPU, or the first CUDA GPU when built with `--features cuda` and one is present.
    let device = Device::cuda_if_available(0).context("opening the CUDA device")?;
    let loaded =
        weights::load_snac_from(model, checkpoint, &device).with_context(|| format!("loading SNAC model {model}"))?;
    let defaults = serde_json::to_value(audiotok_codecs::Config::default()).unwrap_or_default();
    for field in &loaded.defaulted {
        eprintln!(
            "warning: {}: no {field}: using the snac package's default {} (SNAC.__init__)",
            loaded.config_path.display(),
            defaults.get(field).map_or_else(|| "?".to_string(), |v| v.to_string())
        );
    }
    Ok(loaded)
}

/// SHA-1 (hex) of a file's bytes, streamed.
fn file_sha1(path: &Path) -> Result<String> {
    use sha1::Digest;
    let mut f = std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut h = sha1::Sha1::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).with_context(|| format!("{}: reading", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("{:x}", h.finalize()))
}

fn sha1_hex(parts: &[&str]) -> String {
    use sha1::Digest;
    let mut h = sha1::Sha1::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    format!("{:x}", h.finalize())
}

/// What the plan knows about one input file.
struct Planned {
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

/// Decodes a file once: frames per channel, sample rate; fails on NaN samples.
fn scan(path: &Path) -> Result<(u64, u32)> {
    let mut dec = Decoder::open(path)?;
    let rate = dec.info().sample_rate;
    let mut frames = 0u64;
    while let Some(planes) = dec.next_block()? {
        for (ch, p) in planes.iter().enumerate() {
            if let Some(i) = p.iter().position(|x| !x.is_finite()) {
                bail!(
                    "{}: non-finite sample (NaN or infinity) at frame {} of channel {ch}",
                    path.display(),
                    frames + i as u64
                );
            }
        }
        frames += planes.first().map_or(0, |p| p.len() as u64);
    }
    Ok((frames, rate))
}

fn plan_file(path: &Path, model_rate: u32, hop: usize, seg: usize) -> Result<Planned> {
    let (frames, rate) = scan(path)?;
    if rate == 0 {
        bail!("{}: no sample rate", path.display());
    }
    let len = audiotok_audio::resampled_len(frames, rate, model_rate) as usize;
    if len < hop {
        bail!(
            "{}: shorter than one hop ({len} samples at {model_rate} Hz < {hop}); SNAC has no frame for it",
            path.display()
        );
    }
    let (segments, dropped) = if seg == 0 {
        let secs = len as f64 / model_rate as f64;
        if secs > MAX_SEGMENT_SECONDS {
            bail!("{}", segment_cap(&format!("{}: {secs:.0} s", path.display())));
        }
        (1, 0)
    } else {
        let tail = len % seg;
        (len / seg + usize::from(tail >= hop), if tail < hop { tail } else { 0 })
    };
    Ok(Planned { path: path.to_path_buf(), len, segments, dropped, sha1: file_sha1(path)? })
}

/// Streams a file as mono audio at `to` Hz, calling `emit(k, samples)` per segment of `seg` samples (the
/// last may be shorter but at least `hop`; 0 = one segment of the whole file).
fn stream_segments(
    path: &Path,
    to: u32,
    seg: usize,
    hop: usize,
    mut emit: impl FnMut(usize, &[f32]) -> Result<()>,
) -> Result<usize> {
    let mut dec = Decoder::open(path)?;
    let from = dec.info().sample_rate;
    let mut rs =
        if from == to { None } else { Some(Resampler::new(from, to).with_context(|| format!("{}", path.display()))?) };
    let mut mono = Vec::new();
    let mut buf: Vec<f32> = Vec::new();
    let mut k = 0;
    let mut flush = |buf: &mut Vec<f32>, last: bool, k: &mut usize| -> Result<()> {
        if seg == 0 {
            return Ok(());
        }
        let mut start = 0;
        while buf.len() - start >= seg {
            emit(*k, &buf[start..start + seg])?;
            *k += 1;
            start += seg;
        }
        buf.drain(..start);
        if last && buf.len() >= hop {
            emit(*k, buf)?;
            *k += 1;
        }
        Ok(())
    };
    while let Some(planes) = dec.next_block()? {
        mono.clear();
        audiotok_audio::mix::downmix_into(planes, &mut mono);
        match rs.as_mut() {
            Some(r) => r.process(&mono, &mut buf).with_context(|| format!("{}: resampling", path.display()))?,
            None => buf.extend_from_slice(&mono),
        }
        flush(&mut buf, false, &mut k)?;
    }
    if let Some(r) = rs {
        r.finish(&mut buf).with_context(|| format!("{}: resampling", path.display()))?;
    }
    if seg == 0 {
        emit(0, &buf)?;
        return Ok(1);
    }
    flush(&mut buf, true, &mut k)?;
    Ok(k)
}

fn record_name(path: &Path, seg: usize, k: usize) -> String {
    if seg == 0 {
        path.display().to_string()
    } else {
        format!("{}#{k}", path.display())
    }
}

/// Runs `audiotok encode`.
pub fn run_encode(args: EncodeArgs) -> Result<ExitCode> {
    let t0 = runner::start();
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    if args.batch_size > MAX_BATCH_SIZE {
        bail!("--batch-size {}: at most {MAX_BATCH_SIZE} records per batch", args.batch_size);
    }
    if !(args.segment_length >= 0.0 && args.segment_length.is_finite()) {
        bail!("--segment-length must be 0 (whole files) or a positive number of seconds");
    }
    if args.segment_length > MAX_SEGMENT_SECONDS {
        bail!("{}", segment_cap(&format!("--segment-length {}", args.segment_length)));
    }
    set_threads(args.jobs)?;
    let loaded = load_model(&args.model, args.checkpoint.as_deref())?;
    let model = &loaded.model;
    let cfg = model.config().clone();
    let rate = cfg.sampling_rate as u32;
    let hop = cfg.hop_length();
    let seg = (args.segment_length * rate as f64).round() as usize;
    if args.segment_length > 0.0 && seg < hop {
        bail!("--segment-length {} s is shorter than one hop ({hop} samples at {rate} Hz)", args.segment_length);
    }
    let mut inputs = runner::collect(&args.input)?;
    if let Some(n) = args.max_files {
        inputs.files.truncate(n);
    }

    // Pass 1: plan.
    let bar = progress(inputs.files.len() as u64, "scan");
    let mut planned = Vec::new();
    let mut failed: Vec<(&Path, String)> = Vec::new();
    for input in &inputs.files {
        match input.readable().map_err(anyhow::Error::msg).and_then(|()| plan_file(&input.path, rate, hop, seg)) {
            Ok(p) => planned.push(p),
            Err(e) => failed.push((&input.path, format!("{e:#}"))),
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let records: Vec<(String, &str)> = planned
        .iter()
        .flat_map(|p| (0..p.segments).map(move |k| (record_name(&p.path, seg, k), p.sha1.as_str())))
        .collect();
    let names: Vec<&str> = records.iter().map(|(n, _)| n.as_str()).collect();
    let n_batches = names.len().div_ceil(args.batch_size);

    // The reuse key (see the module docs): model, options, and each batch's inputs.
    let config_sha1 = sha1_hex(&[&serde_json::to_string(&cfg)?]);
    let weights_sha1 = file_sha1(&loaded.weights_path)?;
    let model_key = format!("config {config_sha1}, weights {weights_sha1}");
    let options_key = format!(
        "audiotok {}; {ENCODE_PIPELINE}; sampling_rate {rate}; segment_samples {seg}; batch_size {}",
        env!("CARGO_PKG_VERSION"),
        args.batch_size
    );
    let batch_range = |b: usize| b * args.batch_size..((b + 1) * args.batch_size).min(names.len());
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
    std::fs::create_dir_all(&args.output).with_context(|| format!("{}: cannot create", args.output.display()))?;
    let existing = store::existing_batches(&args.output)?;
    let mut reuse = vec![false; n_batches];
    let mut redone: BTreeMap<&str, usize> = BTreeMap::new();
    for &b in existing.iter().filter(|&&b| b < n_batches) {
        let file = args.output.join(store::batch_file_name(b));
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
    for (why, n) in &redone {
        eprintln!("note: {n} batches {why}: encoding them again");
    }

    let mut opts = StoreOptions::new(cfg.n_codebooks());
    opts.batch_size = args.batch_size;
    opts.codebook_sizes = Some(vec![cfg.codebook_size as u32; cfg.n_codebooks()]);
    opts.rates_hz = Some(cfg.vq_strides.iter().map(|s| rate as f64 / (hop * s) as f64).collect());
    opts.provenance = [
        ("model", args.model.clone()),
        ("config", loaded.config_path.display().to_string()),
        ("config_sha1", config_sha1.clone()),
        ("weights", loaded.weights_path.display().to_string()),
        ("weights_sha1", weights_sha1.clone()),
        ("pipeline", options_key.clone()),
        ("sampling_rate", rate.to_string()),
        ("segment_samples", seg.to_string()),
        ("batch_size", args.batch_size.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut writer = StoreWriter::create(&args.output, opts)?;

    // Pass 2: stream, encode, write.
    let total_samples: usize = planned.iter().map(|p| p.len).sum();
    let bar = progress(total_samples as u64, "encode");
    let mut pending: Vec<TokenRecord> = Vec::with_capacity(args.batch_size);
    let mut index = 0usize;
    let mut encoded_s = 0.0;
    let mut clipped_segments = 0usize;
    let mut silent_segments = 0usize;
    for p in &planned {
        let got = stream_segments(&p.path, rate, seg, hop, |k, samples| {
            let b = index / args.batch_size;
            bar.inc(samples.len() as u64);
            if !reuse[b] {
                if samples.iter().any(|x| x.abs() >= 1.0) {
                    clipped_segments += 1;
                }
                if samples.iter().all(|&x| x == 0.0) {
                    silent_segments += 1;
                }
                let codes = model.encode_samples(samples).with_context(|| format!("{}: encoding", p.path.display()))?;
                encoded_s += samples.len() as f64 / rate as f64;
                pending.push(TokenRecord {
                    file_path: record_name(&p.path, seg, k),
                    duration: samples.len() as f64 / rate as f64,
                    scales: codes.into_iter().map(ScaleTokens::stream).collect(),
                });
            }
            index += 1;
            let batch_done = index % args.batch_size == 0 || index == names.len();
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
            bail!("{}: yielded {got} segments where the scan planned {}", p.path.display(), p.segments);
        }
    }
    bar.finish_and_clear();
    let meta = writer.finish()?;

    let reused = reuse.iter().filter(|&&r| r).count();
    let dropped: usize = planned.iter().map(|p| p.dropped).sum();
    eprintln!(
        "encode: {} records in {} batches ({} reused from an earlier run) -> {}",
        meta.num_files,
        meta.batches.len(),
        reused,
        args.output.display()
    );
    if dropped > 0 {
        eprintln!("note: {:.3} s of final remainders shorter than one hop dropped", dropped as f64 / rate as f64);
    }
    if clipped_segments > 0 || silent_segments > 0 {
        eprintln!(
            "note: {clipped_segments} segments reach full scale (|x| >= 1), {silent_segments} are digital silence"
        );
    }
    let summary = runner::Summary {
        label: "encode",
        done: planned.len(),
        failed,
        ignored: inputs.ignored,
        audio_secs: encoded_s,
        elapsed: t0.elapsed(),
    };
    let code = summary.finish(args.keep_going);
    if args.analyze {
        analyze(&args.output, cfg.codebook_size)?;
    }
    Ok(code)
}

fn analyze(dir: &Path, codebook_size: usize) -> Result<()> {
    use clap::{Args as _, FromArgMatches as _};
    let command = crate::cmd::analyze::Args::augment_args(clap::Command::new("analyze"));
    let m = command.try_get_matches_from([
        "analyze".to_string(),
        dir.display().to_string(),
        "--codebook-size".to_string(),
        codebook_size.to_string(),
    ])?;
    let a = crate::cmd::analyze::Args::from_arg_matches(&m)?;
    crate::cmd::analyze::run(a).map(|_| ())
}

fn progress(len: u64, label: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(&format!("{label} [{{bar:30}}] {{percent}}%  {{elapsed_precise}} (eta {{eta}})"))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// Longest stem (bytes) kept whole in a decoded WAV's name; longer ones are cut and get a hash.
const MAX_STEM_BYTES: usize = 100;

fn wav_name(index: usize, file_path: &str) -> String {
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

/// Runs `audiotok decode`.
pub fn run_decode(args: DecodeArgs) -> Result<ExitCode> {
    let t0 = Instant::now();
    set_threads(args.jobs)?;
    let loaded = load_model(&args.model, args.checkpoint.as_deref())?;
    let model = &loaded.model;
    let cfg = model.config().clone();
    let reader = StoreReader::open(&args.input)?;
    let missing = if args.input.is_dir() { store::missing_batches(&args.input)? } else { Vec::new() };
    if reader.num_scales() != cfg.n_codebooks() {
        bail!(
            "{}: {} scales, but the model has {} codebooks",
            args.input.display(),
            reader.num_scales(),
            cfg.n_codebooks()
        );
    }
    std::fs::create_dir_all(&args.out).with_context(|| format!("{}: cannot create", args.out.display()))?;
    let bar = ProgressBar::new_spinner();
    let mut done = 0usize;
    let mut failed: Vec<(&Path, String)> = missing
        .iter()
        .map(|(name, why)| (args.input.as_path(), format!("{}: missing ({why})", args.input.join(name).display())))
        .collect();
    let mut audio_s = 0.0;
    for (i, rec) in reader.records().enumerate() {
        if args.max_records.is_some_and(|n| i >= n) {
            break;
        }
        let rec = rec?;
        let codes: Vec<Vec<u32>> = rec.scales.iter().map(|s| s.tokens.clone()).collect();
        let mut rng = (args.noise == Noise::On).then(|| NoiseRng::new(args.seed.wrapping_add(i as u64)));
        match model.decode_codes(&codes, rng.as_mut()) {
            Ok(mut samples) => {
                let want = (rec.duration * cfg.sampling_rate as f64).round() as usize;
                if want > 0 && want < samples.len() {
                    samples.truncate(want);
                }
                let path = args.out.join(wav_name(i, &rec.file_path));
                match audiotok_audio::write_wav_f32(&path, &samples, cfg.sampling_rate as u32, 1) {
                    Ok(()) => {
                        audio_s += samples.len() as f64 / cfg.sampling_rate as f64;
                        done += 1;
                    }
                    Err(e) => failed.push((
                        &args.input,
                        format!(
                            "{} record {i} ({}): writing {}: {e}",
                            args.input.display(),
                            rec.file_path,
                            path.display()
                        ),
                    )),
                }
            }
            Err(e) => {
                failed.push((&args.input, format!("{} record {i} ({}): {e}", args.input.display(), rec.file_path)))
            }
        }
        bar.set_message(format!("{done} records"));
        bar.tick();
    }
    bar.finish_and_clear();
    let summary =
        runner::Summary { label: "decode", done, failed, ignored: 0, audio_secs: audio_s, elapsed: t0.elapsed() };
    Ok(summary.finish(false))
}
