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
    /// The spectrogram the encoder sees (Whisper log-mel or mel-dB) as a colour image: time in
    /// seconds, mel bins with Hz ticks, a colour bar, the padding region marked.
    Features(FeaturesArgs),
    /// An embedding .npy (frames x dim, or layers x frames x dim) as heatmaps (small multiples, one
    /// colour scale) with the per-frame L2 norm, and its statistics and compression.
    Embed(EmbedArgs),
}

/// Arguments of `audiotok plot embed`.
#[derive(clap::Args)]
pub struct EmbedArgs {
    /// A float .npy of shape (frames, dim) or (layers, frames, dim).
    file: PathBuf,
    /// The audio it encodes (its length at --rate gives samples and ms per frame).
    #[arg(long)]
    audio: Option<PathBuf>,
    /// Sample rate the encoder took its input at.
    #[arg(long, default_value_t = 16000, value_parser = clap::value_parser!(u32).range(1..=i64::from(audiotok_audio::MAX_SAMPLE_RATE)))]
    rate: u32,
    /// Milliseconds a frame, when no --audio is given (20 for HuBERT/wav2vec2 and Whisper's encoder).
    #[arg(long, default_value_t = 20.0)]
    frame_ms: f64,
    /// The PNG to write (atomically).
    #[arg(long, short)]
    out: PathBuf,
    /// Print the statistics as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(serde::Serialize)]
struct EmbedSummary {
    file: String,
    png: String,
    layers: usize,
    frames: usize,
    dim: usize,
    ms_per_frame: f64,
    samples_per_frame: f64,
    per_layer: Vec<Stats>,
}

/// Spectrogram kinds `plot features` draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SpecKind {
    /// Whisper v3 / Qwen2-Audio log-mel, 128 bins.
    #[value(name = "whisper-128")]
    Whisper128,
    /// Whisper log-mel, 80 bins.
    #[value(name = "whisper-80")]
    Whisper80,
    /// librosa mel spectrogram in dB (128 bins, top 80 dB).
    #[value(name = "mel-db")]
    MelDb,
}

/// Arguments of `audiotok plot features`.
#[derive(clap::Args)]
pub struct FeaturesArgs {
    /// Audio file; decoded, downmixed and resampled to 16 kHz as `audiotok features` does.
    file: PathBuf,
    /// The features to draw.
    #[arg(long, value_enum)]
    kind: SpecKind,
    /// Draw Whisper's 30 s of padding (max-length, what the encoder sees) or only the signal (longest).
    #[arg(long, value_enum, default_value_t = Padding::MaxLength)]
    padding: Padding,
    /// The PNG to write (atomically).
    #[arg(long, short)]
    out: PathBuf,
}

/// Whisper padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Padding {
    /// Pad to 30 s (3000 frames).
    MaxLength,
    /// No padding.
    Longest,
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
        What::Features(a) => features(a),
        What::Embed(a) => embed(a),
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

/// Slaney mel (librosa's default, Whisper's bank): linear below 1 kHz, logarithmic above.
fn hz_to_mel(f: f64) -> f64 {
    let (f_sp, min_log_hz) = (200.0 / 3.0, 1000.0);
    let logstep = 6.4f64.ln() / 27.0;
    if f < min_log_hz {
        f / f_sp
    } else {
        min_log_hz / f_sp + (f / min_log_hz).ln() / logstep
    }
}

fn mel_to_hz(m: f64) -> f64 {
    let (f_sp, min_log_hz) = (200.0 / 3.0, 1000.0);
    let (min_log_mel, logstep) = (min_log_hz / f_sp, 6.4f64.ln() / 27.0);
    if m < min_log_mel {
        m * f_sp
    } else {
        min_log_hz * (logstep * (m - min_log_mel)).exp()
    }
}

/// Centre frequency of each of `n` mel bins over 0..`fmax` Hz.
fn mel_centres(n: usize, fmax: f64) -> Vec<f64> {
    let top = hz_to_mel(fmax);
    (1..=n).map(|i| mel_to_hz(top * i as f64 / (n + 1) as f64)).collect()
}

/// The spectrogram of `x` (16 kHz mono) and its picture.
fn render_features(
    x: &[f32],
    kind: SpecKind,
    padding: Padding,
    title: &str,
) -> Result<(crate::plot::Canvas, crate::plot::ImageFrame, audiotok_features::Features)> {
    use audiotok_features::whisper::WhisperPadding;
    use audiotok_features::{Extractor, ExtractorOptions, FeatureKind};
    let fk = match kind {
        SpecKind::Whisper128 => FeatureKind::Whisper128,
        SpecKind::Whisper80 => FeatureKind::Whisper80,
        SpecKind::MelDb => FeatureKind::MelDb,
    };
    let whisper_padding = match padding {
        Padding::MaxLength => WhisperPadding::MaxLength,
        Padding::Longest => WhisperPadding::Longest,
    };
    let opts = ExtractorOptions { whisper_padding, meldb_frames: Some(None), ..Default::default() };
    let feats = Extractor::new(fk, opts).compute(x)?;
    let (rows, frames) = match feats.shape.as_slice() {
        [r, f] => (*r, *f),
        s => anyhow::bail!("features of shape {s:?}, not (bins, frames)"),
    };
    let centres = mel_centres(rows, 8000.0);
    let mut ticks = Vec::new();
    for hz in [0.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0] {
        // The (fractional) bin whose centre is at `hz`, by interpolation between centres.
        let row = match centres.iter().position(|&c| c >= hz) {
            Some(0) => 0.0,
            Some(i) => (i - 1) as f64 + (hz - centres[i - 1]) / (centres[i] - centres[i - 1]),
            None => (rows - 1) as f64,
        };
        let label = if hz >= 1000.0 { format!("{}k", hz / 1000.0) } else { format!("{hz}") };
        ticks.push((row, label));
    }
    let unit = if kind == SpecKind::MelDb { "dB" } else { "log10" };
    let pad_from = feats.mask_ones.filter(|&m| m < frames);
    let labels =
        crate::plot::SpecLabels { title, frame_s: 0.01, y_ticks: &ticks, ylabel: "frequency (Hz, mel scale)", unit };
    let (canvas, frame) = crate::plot::spectrogram(&labels, &feats.data, (rows, frames), pad_from);
    Ok((canvas, frame, feats))
}

fn features(a: FeaturesArgs) -> Result<ExitCode> {
    let audio = load(&a.file, &LoadOptions::mono_at(16_000))?;
    let name = a.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let kind = match a.kind {
        SpecKind::Whisper128 => "whisper-128",
        SpecKind::Whisper80 => "whisper-80",
        SpecKind::MelDb => "mel-db",
    };
    let what = if a.kind == SpecKind::MelDb { "mel spectrogram (dB)" } else { "log-mel" };
    let title = format!("{name} - {kind} {what}, {:.2} s", audio.duration_secs());
    let (canvas, _, feats) = render_features(&audio.samples, a.kind, a.padding, &title)?;
    canvas.save(&a.out).with_context(|| format!("writing {}", a.out.display()))?;
    let (lo, hi) = feats.data.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(x, y), &v| (x.min(v), y.max(v)));
    println!(
        "{}: {kind} {:?} (bins x frames, 10 ms a frame), {} frames of signal, values {lo:.4} to {hi:.4} -> {}",
        a.file.display(),
        feats.shape,
        feats.mask_ones.unwrap_or(0),
        a.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn embed(a: EmbedArgs) -> Result<ExitCode> {
    use audiotok_features::npy::{self, NpyData};
    let f = std::fs::File::open(&a.file).with_context(|| format!("{}", a.file.display()))?;
    let arr = npy::read(std::io::BufReader::new(f)).with_context(|| format!("{}", a.file.display()))?;
    let data: Vec<f32> = match arr.data {
        NpyData::F32(v) => v,
        NpyData::F64(v) => v.into_iter().map(|x| x as f32).collect(),
        _ => anyhow::bail!("{}: an embedding must hold floats", a.file.display()),
    };
    let (layers, frames, dim) = match arr.shape.as_slice() {
        [f, d] => (1, *f, *d),
        [l, f, d] => (*l, *f, *d),
        s => anyhow::bail!("{}: shape {s:?}: expected (frames, dim) or (layers, frames, dim)", a.file.display()),
    };
    if layers == 0 || frames == 0 || dim == 0 || layers > 64 {
        anyhow::bail!(
            "{}: shape {:?}: needs 1 to 64 layers and at least one frame and dim",
            a.file.display(),
            arr.shape
        );
    }
    let (ms_per_frame, samples_per_frame) = match &a.audio {
        Some(p) => {
            let audio = load(p, &LoadOptions::mono_at(a.rate))?;
            let spf = audio.samples.len() as f64 / frames as f64;
            (1000.0 * spf / f64::from(a.rate), spf)
        }
        None => (a.frame_ms, a.frame_ms * f64::from(a.rate) / 1000.0),
    };
    let per = frames * dim;
    let named: Vec<(String, &[f32])> =
        (0..layers).map(|l| (format!("layer {l}"), &data[l * per..(l + 1) * per])).collect();
    let name = a.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let title = format!("{name} - {layers} x {frames} frames x {dim} dims, {ms_per_frame:.1} ms a frame");
    let (canvas, _) = crate::plot::embeddings(&title, &named, frames, dim, ms_per_frame / 1000.0);
    canvas.save(&a.out).with_context(|| format!("writing {}", a.out.display()))?;
    let s = EmbedSummary {
        file: a.file.display().to_string(),
        png: a.out.display().to_string(),
        layers,
        frames,
        dim,
        ms_per_frame,
        samples_per_frame,
        per_layer: named.iter().map(|(_, d)| stats(d)).collect(),
    };
    let mut out = std::io::stdout().lock();
    if a.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&s)?)?;
    } else {
        writeln!(
            out,
            "{}: {layers} layer(s) x {frames} frames x {dim} dims; {samples_per_frame:.1} samples ({ms_per_frame:.2} ms) a frame -> {}",
            s.file, s.png
        )?;
        for (l, t) in s.per_layer.iter().enumerate() {
            writeln!(
                out,
                "  layer {l:<3} min {:>9.4}  max {:>9.4}  mean {:>10.6}  std {:>9.6}",
                t.min, t.max, t.mean, t.std
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn slaney_mel_round_trips() {
        for f in [0.0, 440.0, 999.0, 1000.0, 4000.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(f)) - f).abs() < 1e-9, "{f}");
        }
        assert!((hz_to_mel(1000.0) - 15.0).abs() < 1e-12);
    }

    /// A linear sweep 300 Hz -> 6 kHz over 2 s: in every sampled column, the brightest pixel is in
    /// the mel bin whose centre is nearest the sweep's frequency at that time (within a bin).
    #[test]
    fn a_sine_sweep_puts_its_brightest_pixel_on_the_sweep() {
        let (rate, secs, f0, f1) = (16_000.0, 2.0, 300.0, 6000.0);
        let n = (rate * secs) as usize;
        let x: Vec<f32> = (0..n)
            .map(|i| {
                let t = i as f64 / rate;
                (0.5 * (2.0 * std::f64::consts::PI * (f0 * t + (f1 - f0) * t * t / (2.0 * secs))).sin()) as f32
            })
            .collect();
        for kind in [SpecKind::Whisper80, SpecKind::Whisper128, SpecKind::MelDb] {
            let (c, f, feats) = render_features(&x, kind, Padding::Longest, "sweep").unwrap();
            let rows = feats.shape[0];
            let centres = mel_centres(rows, 8000.0);
            let lum = |p: [u8; 3]| 0.2126 * f64::from(p[0]) + 0.7152 * f64::from(p[1]) + 0.0722 * f64::from(p[2]);
            let (l, t, r, b) = f.area;
            let mut checked = 0;
            for x in (l + 20..r - 20).step_by(37) {
                let frame = f.frame_at(x);
                let time = frame as f64 * 0.01;
                if !(0.1..secs - 0.1).contains(&time) {
                    continue;
                }
                let y = (t..=b).max_by(|&p, &q| lum(c.get(x, p)).total_cmp(&lum(c.get(x, q)))).unwrap();
                let shown = f.row_at(y);
                let hz = f0 + (f1 - f0) * time / secs;
                let want =
                    (0..rows).min_by(|&i, &j| (centres[i] - hz).abs().total_cmp(&(centres[j] - hz).abs())).unwrap();
                assert!(
                    shown.abs_diff(want) <= 1,
                    "{kind:?} t={time:.2}s: brightest bin {shown}, sweep at bin {want} ({hz:.0} Hz)"
                );
                checked += 1;
            }
            assert!(checked > 15, "{checked}");
        }
    }

    /// With max-length padding, the padding starts at the column of the signal's end.
    #[test]
    fn padding_is_marked_where_the_signal_ends() {
        let x = vec![0.1f32; 16_000];
        let (c, f, feats) = render_features(&x, SpecKind::Whisper80, Padding::MaxLength, "pad").unwrap();
        assert_eq!(feats.shape, vec![80, 3000]);
        let p = feats.mask_ones.unwrap();
        assert_eq!(p, 100);
        let xp = f.x_of_frame(p as f64);
        let (_, top, _, bottom) = f.area;
        assert_eq!(c.get(xp, (top + bottom) / 2), [255, 255, 255]);
    }
}
