//! `audiotok plot`: pictures of audio as it goes through preprocessing, drawn by [`crate::plot`].

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use audiotok_audio::{load, LoadOptions};

/// Arguments of `audiotok plot`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand)]
enum What {
    /// The raw waveform above the wav2vec2-normalised one (zero mean, unit variance), time in
    /// seconds, with a summary (rate, duration, min/max, mean/std before and after).
    Waveform(WaveformArgs),
}

/// Arguments of `audiotok plot waveform`.
#[derive(clap::Args)]
pub struct WaveformArgs {
    /// Audio file (WAV, FLAC, MP3, Ogg Vorbis); downmixed to mono.
    file: PathBuf,
    /// Resample to this rate in Hz (libsoxr HQ) before normalising, as the feature extractor does.
    #[arg(long, default_value_t = 16000, value_parser = clap::value_parser!(u32).range(1..=i64::from(audiotok_audio::MAX_SAMPLE_RATE)))]
    rate: u32,
    /// The PNG to write (atomically).
    #[arg(long, short)]
    out: PathBuf,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Mean, standard deviation (population), min and max.
#[derive(serde::Serialize)]
struct Stats {
    min: f64,
    max: f64,
    mean: f64,
    std: f64,
}

fn stats(x: &[f32]) -> Stats {
    let n = x.len().max(1) as f64;
    let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = x.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
    let (min, max) =
        x.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(f64::from(v)), b.max(f64::from(v))));
    Stats { min, max, mean, std: var.sqrt() }
}

#[derive(serde::Serialize)]
struct WaveformSummary {
    file: String,
    png: String,
    sample_rate: u32,
    samples: usize,
    duration_s: f64,
    raw: Stats,
    normalised: Stats,
}

/// Runs `audiotok plot`.
pub fn run(args: Args) -> Result<ExitCode> {
    match args.what {
        What::Waveform(a) => waveform(a),
    }
}

fn waveform(a: WaveformArgs) -> Result<ExitCode> {
    let audio = load(&a.file, &LoadOptions::mono_at(a.rate))?;
    let norm = audiotok_features::wav2vec2::normalize(&audio.samples).data;
    let name = a.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let title = format!("{name} - {} Hz, {:.2} s", audio.sample_rate, audio.duration_secs());
    let (canvas, _) = crate::plot::waveforms(
        &title,
        audio.sample_rate,
        &[
            ("raw waveform", "amplitude", &audio.samples),
            ("wav2vec2-normalised (zero mean, unit variance)", "value", &norm),
        ],
    );
    canvas.save(&a.out).with_context(|| format!("writing {}", a.out.display()))?;
    let s = WaveformSummary {
        file: a.file.display().to_string(),
        png: a.out.display().to_string(),
        sample_rate: audio.sample_rate,
        samples: audio.samples.len(),
        duration_s: audio.duration_secs(),
        raw: stats(&audio.samples),
        normalised: stats(&norm),
    };
    let mut out = std::io::stdout().lock();
    if a.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&s)?)?;
    } else {
        writeln!(out, "{}: {} Hz, {} samples, {:.3} s -> {}", s.file, s.sample_rate, s.samples, s.duration_s, s.png)?;
        for (label, t) in [("raw", &s.raw), ("normalised", &s.normalised)] {
            writeln!(
                out,
                "  {label:<10} min {:>9.4}  max {:>9.4}  mean {:>10.6}  std {:>9.6}",
                t.min, t.max, t.mean, t.std
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
