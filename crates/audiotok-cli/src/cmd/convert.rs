//! `audiotok convert`: decode, downmix and resample one file to a float32 WAV.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use audiotok_audio::{load, write_wav_f32, LoadOptions};

/// Arguments of `audiotok convert`.
#[derive(clap::Args)]
pub struct Args {
    /// Input audio file (WAV, FLAC, MP3, Ogg Vorbis).
    input: PathBuf,
    /// Output sample rate in Hz, 1 to 768000 (default: keep the input's), resampled with libsoxr
    /// HQ.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(audiotok_audio::MAX_SAMPLE_RATE)))]
    rate: Option<u32>,
    /// Downmix to one channel (mean of the channels).
    #[arg(long)]
    mono: bool,
    /// Output WAV file (32-bit float), written atomically.
    #[arg(long, short)]
    out: PathBuf,
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<ExitCode> {
    let audio = load(&args.input, &LoadOptions { target_rate: args.rate, mono: args.mono })?;
    let channels = u16::try_from(audio.channels).context("too many channels for WAV")?;
    write_wav_f32(&args.out, &audio.samples, audio.sample_rate, channels)?;
    eprintln!(
        "convert: {} -> {} ({} Hz, {} ch, {:.3} s)",
        args.input.display(),
        args.out.display(),
        audio.sample_rate,
        audio.channels,
        audio.duration_secs()
    );
    Ok(ExitCode::SUCCESS)
}
