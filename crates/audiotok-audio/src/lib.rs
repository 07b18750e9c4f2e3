//! # audiotok-audio
//!
//! Audio input for audiotok: decode a file with symphonia, check it, downmix it to mono, resample
//! it with libsoxr at HQ quality, cut it into fixed windows, and write float32 WAV.
//!
//! The one-call entry point is [`load`]: it streams the file packet by packet through downmix and
//! resampling, so memory is the decoded output plus constant buffers, with no whole-file copy per
//! stage. The result matches the Python stack audio LLM users rely on
//! (`soundfile.read` → `librosa.to_mono` → `soxr.resample(..., "HQ")`).
//!
//! ```no_run
//! use audiotok_audio::{load, LoadOptions};
//! let audio = load("clip.flac".as_ref(), &LoadOptions::mono_at(16_000))?;
//! assert_eq!(audio.sample_rate, 16_000);
//! # Ok::<(), audiotok_audio::AudioError>(())
//! ```

pub mod atomic;
pub mod decode;
mod error;
pub mod mix;
pub mod resample;
pub mod segment;
pub mod wav;

use std::path::Path;

pub use atomic::temp_path;
pub use decode::{probe, AudioInfo, Decoder};
pub use error::{AudioError, Result};
pub use resample::{resample, resampled_len, Resampler};
pub use segment::{Segment, TailPolicy};
pub use wav::write_wav_f32;

/// How [`load`] shapes the decoded signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoadOptions {
    /// Resample to this rate (Hz); `None` keeps the file's rate.
    pub target_rate: Option<u32>,
    /// Downmix to one channel by channel mean.
    pub mono: bool,
}

impl LoadOptions {
    /// Mono at `rate` Hz: what every feature extractor and codec wants.
    pub fn mono_at(rate: u32) -> Self {
        LoadOptions { target_rate: Some(rate), mono: true }
    }
}

/// A decoded signal.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    /// Samples, interleaved when `channels > 1`.
    pub samples: Vec<f32>,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Number of interleaved channels.
    pub channels: usize,
    /// What the container said about the source.
    pub source: AudioInfo,
}

impl Audio {
    /// Frames per channel.
    pub fn frames(&self) -> usize {
        self.samples.len() / self.channels.max(1)
    }

    /// Duration in seconds.
    pub fn duration_secs(&self) -> f64 {
        self.frames() as f64 / f64::from(self.sample_rate)
    }
}

fn check_finite(path: &Path, planes: &[Vec<f32>], first_frame: u64) -> Result<()> {
    for plane in planes {
        if let Some(i) = plane.iter().position(|s| !s.is_finite()) {
            return Err(AudioError::NonFinite { path: path.to_path_buf(), frame: first_frame + i as u64 });
        }
    }
    Ok(())
}

/// Decodes `path` and shapes it as `opts` asks.
///
/// Errors: the file cannot be read or decoded, holds no samples ([`AudioError::Empty`]), or holds
/// NaN/infinite samples ([`AudioError::NonFinite`]).
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Audio> {
    let mut dec = Decoder::open(path)?;
    let rate = dec.info().sample_rate;
    let to = opts.target_rate.unwrap_or(rate);
    let mut channels = dec.info().channels.max(1);
    let out_channels = if opts.mono { 1 } else { channels };
    let mut resamplers: Vec<Resampler> = Vec::new();
    let mut outs: Vec<Vec<f32>> = Vec::new();
    let mut mono_block = Vec::new();
    let expected = dec.info().frames.unwrap_or(0);
    let est = |n: u64| Resampler::output_cap(n, rate, to) as usize;
    loop {
        let start = dec.frames_decoded();
        let Some(planes) = dec.next_block()? else { break };
        check_finite(path, planes, start)?;
        if resamplers.is_empty() {
            channels = planes.len();
            let n = if opts.mono { 1 } else { channels };
            for _ in 0..n {
                resamplers.push(Resampler::new(rate, to)?);
                outs.push(Vec::with_capacity(est(expected)));
            }
        }
        if planes.len() != channels {
            return Err(AudioError::Corrupt {
                path: path.to_path_buf(),
                reason: format!("channel count changed from {channels} to {}", planes.len()),
            });
        }
        if opts.mono && rate == to {
            // No resampling: downmix straight into the output.
            mix::downmix_into(planes, &mut outs[0]);
        } else if opts.mono {
            mono_block.clear();
            mix::downmix_into(planes, &mut mono_block);
            resamplers[0].process(&mono_block, &mut outs[0])?;
        } else {
            for ((r, o), p) in resamplers.iter_mut().zip(outs.iter_mut()).zip(planes) {
                r.process(p, o)?;
            }
        }
    }
    if dec.frames_decoded() == 0 {
        return Err(AudioError::Empty { path: path.to_path_buf() });
    }
    for (r, o) in resamplers.into_iter().zip(outs.iter_mut()) {
        r.finish(o)?;
    }
    let source = dec.info().clone();
    let samples = interleave(outs);
    Ok(Audio { samples, sample_rate: to, channels: out_channels, source })
}

fn interleave(mut planes: Vec<Vec<f32>>) -> Vec<f32> {
    if planes.len() == 1 {
        return planes.pop().unwrap_or_default();
    }
    let n = planes.iter().map(Vec::len).min().unwrap_or(0);
    let mut out = Vec::with_capacity(n * planes.len());
    for i in 0..n {
        for p in &planes {
            out.push(p[i]);
        }
    }
    out
}
