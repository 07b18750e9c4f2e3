//! `audiotok features`: one `.npy` of model input features per audio file, plus a manifest.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use audiotok_audio::{load, load_prefix, LoadOptions};
use audiotok_features::whisper::{Precision, WhisperPadding};
use audiotok_features::{npy, Extractor, ExtractorOptions, FeatureKind};
use serde::Serialize;

use crate::runner::{self, BatchArgs, Input, Summary};

/// Whisper padding, as the CLI spells it.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Padding {
    /// Pad or truncate to 30 s (3000 frames), as `padding="max_length"`.
    MaxLength,
    /// Keep the clip's own length, as `padding="longest"` on one clip.
    Longest,
}

/// Whisper arithmetic, as the CLI spells it.
#[derive(Clone, Copy, clap::ValueEnum)]
enum PrecisionArg {
    /// float32, within 1e-4 of transformers (as its torch path computes); faster.
    Fast,
    /// float64 as transformers' numpy path: bit-identical output.
    Exact,
}

/// Arguments of `audiotok features`.
#[derive(clap::Args)]
pub struct Args {
    /// Feature kind: whisper-128 (Whisper v3 / Qwen2-Audio log-mel), whisper-80, wav2vec2
    /// (normalised waveform for wav2vec2/HuBERT), mel-db (spectrogram-tokenizer input).
    #[arg(long, value_parser = parse_kind)]
    kind: FeatureKind,
    /// Output directory: `<stem>.npy` per input (sub-folders of directory inputs are kept) and
    /// `manifest.jsonl`.
    #[arg(long, short)]
    out: PathBuf,
    /// Whisper padding mode.
    #[arg(long, value_enum, default_value = "max-length")]
    padding: Padding,
    /// Whisper arithmetic.
    #[arg(long, value_enum, default_value = "fast")]
    precision: PrecisionArg,
    /// mel-db: crop or pad to this many frames (0: keep the clip's own length).
    #[arg(long, default_value_t = 1024)]
    frames: usize,
    #[command(flatten)]
    batch: BatchArgs,
}

fn parse_kind(s: &str) -> Result<FeatureKind, String> {
    s.parse().map_err(|e: audiotok_features::FeatureError| e.to_string())
}

#[derive(Serialize)]
struct Record {
    input: String,
    output: Option<String>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    samples: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shape: Option<Vec<usize>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mask_ones: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// `input` and `output` have non-UTF-8 bytes written `\xNN` (and `\` as `\\`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    path_escaped: bool,
}

struct Done {
    samples: usize,
    shape: Vec<usize>,
    mask_ones: Option<usize>,
}

fn output_rel(input: &Input) -> PathBuf {
    input.rel.with_extension("npy")
}

fn process(ex: &mut Extractor, kind: FeatureKind, padding: Padding, input: &Input, out: &Path) -> Result<Done> {
    let opts = LoadOptions::mono_at(kind.sample_rate());
    // Whisper's max-length padding reads only the first 30 s: decode only those (the whole
    // file's length still comes from its verified header, or a decode that keeps nothing).
    let whisper = matches!(kind, FeatureKind::Whisper80 | FeatureKind::Whisper128);
    let (audio, samples) = if whisper && matches!(padding, Padding::MaxLength) {
        load_prefix(&input.path, &opts, audiotok_features::whisper::N_SAMPLES)?
    } else {
        let a = load(&input.path, &opts)?;
        let n = a.samples.len() as u64;
        (a, n)
    };
    let f = ex.compute(&audio.samples).with_context(|| input.path.display().to_string())?;
    let dest = out.join(output_rel(input));
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    runner::write_atomic_with(&dest, |w| Ok(npy::write_f32(w, &f.shape, &f.data)?))?;
    let samples = usize::try_from(samples).context("audio length overflows")?;
    Ok(Done { samples, shape: f.shape, mask_ones: f.mask_ones })
}

/// Runs `job` on every input, where inputs that map to one output file (`a.wav` and `a.flac` both
/// give `a.npy`) never overwrite each other: the first of them in input order that succeeds
/// writes it, and every later one fails naming it. One that fails writes nothing, so the next
/// one of its group is tried in another round. Results come back in input order.
fn run_without_clashes<I, F>(inputs: &[Input], jobs: usize, make: &I, job: &F) -> Result<Vec<runner::Outcome<Done>>>
where
    I: Fn() -> Extractor + Sync + Send,
    F: Fn(&mut Extractor, usize, &Input) -> runner::Outcome<Done> + Sync + Send,
{
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
    let mut results: Vec<Option<runner::Outcome<Done>>> = std::iter::repeat_with(|| None).take(inputs.len()).collect();
    let ok = |results: &[Option<runner::Outcome<Done>>], i: usize| matches!(results.get(i), Some(Some(Ok(_))));
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
        let out = runner::run_parallel(&batch, jobs, "features", make, job)?;
        for (&i, r) in round.iter().zip(out) {
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
                let by = w.and_then(|w| inputs.get(w)).map_or_else(String::new, |w| runner::path_text(&w.path));
                Err(format!(
                    "{}: output {} is written for {by} (same name once the extension is replaced); rename one of them",
                    runner::path_text(&input.path),
                    runner::path_text(&output_rel(input)),
                ))
            })
        })
        .collect())
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<ExitCode> {
    let t0 = runner::start();
    let inputs = runner::collect(&args.batch.inputs)?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let opts = ExtractorOptions {
        whisper_padding: match args.padding {
            Padding::MaxLength => WhisperPadding::MaxLength,
            Padding::Longest => WhisperPadding::Longest,
        },
        whisper_precision: match args.precision {
            PrecisionArg::Fast => Precision::Fast,
            PrecisionArg::Exact => Precision::Exact,
        },
        meldb_frames: Some((args.frames > 0).then_some(args.frames)),
    };
    let kind = args.kind;
    let make = || Extractor::new(kind, opts);
    let job = |ex: &mut Extractor, _: usize, input: &Input| {
        process(ex, kind, args.padding, input, &args.out).map_err(|e| format!("{e:#}"))
    };
    let results = run_without_clashes(&inputs.files, args.batch.jobs, &make, &job)?;
    let rate = f64::from(kind.sample_rate());
    let mut manifest = String::new();
    let mut failed = Vec::new();
    let mut audio_secs = 0.0;
    for (input, r) in inputs.files.iter().zip(&results) {
        let rec = match r {
            Ok(d) => {
                audio_secs += d.samples as f64 / rate;
                Record {
                    input: runner::path_text(&input.path),
                    output: Some(runner::path_text(&output_rel(input))),
                    status: "ok",
                    samples: Some(d.samples),
                    duration_s: Some(d.samples as f64 / rate),
                    shape: Some(d.shape.clone()),
                    mask_ones: d.mask_ones,
                    error: None,
                    path_escaped: runner::path_escaped(&input.path),
                }
            }
            Err(e) => {
                failed.push((input.path.as_path(), e.clone()));
                Record {
                    input: runner::path_text(&input.path),
                    output: None,
                    status: "failed",
                    samples: None,
                    duration_s: None,
                    shape: None,
                    mask_ones: None,
                    error: Some(e.clone()),
                    path_escaped: runner::path_escaped(&input.path),
                }
            }
        };
        manifest.push_str(&serde_json::to_string(&rec)?);
        manifest.push('\n');
    }
    runner::write_atomic(&args.out.join("manifest.jsonl"), manifest.as_bytes())?;
    let summary = Summary {
        label: "features",
        done: results.iter().filter(|r| r.is_ok()).count(),
        failed,
        ignored: inputs.ignored,
        audio_secs,
        elapsed: t0.elapsed(),
    };
    Ok(summary.finish(args.batch.keep_going))
}
