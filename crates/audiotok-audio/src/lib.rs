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
//!
//! [`info`] probes many files (headers, verified lengths) into the rows `audiotok info` prints.

/// The atomic writer, [`audiotok_core::atomic`], kept here under its old name.
pub use audiotok_core::atomic;
pub mod decode;
mod error;
pub mod info;
pub mod mix;
pub mod resample;
pub mod segment;
mod source;
pub mod wav;

use std::path::Path;

use audiotok_core::{Input, Origin};

pub use atomic::temp_path;
pub use decode::{count_frames, probe, AudioInfo, Decoder, MAX_SAMPLE_RATE};
pub use error::{AudioError, Result};
pub use info::InfoRow;
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

pub(crate) fn check_finite(path: &Path, planes: &[Vec<f32>], first_frame: u64) -> Result<()> {
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
    load_inner(path, opts, None).map(|(audio, _)| audio)
}

/// Like [`load`], but keeps only the first `max_frames` frames of the shaped signal (per channel,
/// at the target rate), and returns with them the length of the whole shaped signal. These frames
/// are exactly the first `max_frames` that [`load`] gives. After them the file is not resampled
/// and nothing is kept: its length is the verified header length where there is one
/// ([`AudioInfo::header_frames`]), else it is decoded to the end (NaN, corruption and truncation
/// are then errors as in [`load`]). Memory is bounded by `max_frames`, whatever the file's length.
pub fn load_prefix(path: &Path, opts: &LoadOptions, max_frames: usize) -> Result<(Audio, u64)> {
    load_inner(path, opts, Some(max_frames))
}

fn check_rate(rate: u32) -> Result<()> {
    if rate == 0 || rate > MAX_SAMPLE_RATE {
        return Err(AudioError::InvalidParameter(format!(
            "sample rate {rate} Hz is out of range (1 to {MAX_SAMPLE_RATE} Hz)"
        )));
    }
    Ok(())
}

/// [`load`] for an encoded file held in memory (a Parquet cell, a tar member, a Python `bytes`):
/// the same samples as [`load`] gives for the same bytes on disk. `name` stands for the bytes in
/// errors and in [`AudioInfo::path`] (a record id such as `shard.parquet#12`); its extension, if
/// any, hints the container.
pub fn load_bytes(name: &Path, bytes: Vec<u8>, opts: &LoadOptions) -> Result<Audio> {
    if let Some(r) = opts.target_rate {
        check_rate(r)?;
    }
    shape(Decoder::from_bytes(name, bytes)?, opts, None).map(|(audio, _)| audio)
}

/// Opens what `input` names for decoding: its file ([`Input::file_path`]) or its fetched bytes
/// ([`Origin::Bytes`], named by the record id [`Input::path`]), restricted to its [`Input::clip`]
/// (segment and channel, see [`Decoder::set_clip`]). An input a walk or a source could not read
/// fails with its reason ([`AudioError::Source`]).
pub fn open_input(input: &Input) -> Result<Decoder> {
    if let Some(reason) = &input.unreadable {
        return Err(AudioError::Source { id: input.path.clone(), reason: reason.clone() });
    }
    let mut dec = match &input.origin {
        Origin::Path => Decoder::open(&input.path)?,
        Origin::File(file) => Decoder::open(file)?,
        Origin::Bytes(fetch) => {
            let bytes = fetch.fetch().map_err(|reason| AudioError::Source { id: input.path.clone(), reason })?;
            Decoder::from_bytes(&input.path, bytes)?
        }
    };
    if let Some(clip) = input.clip {
        let rate = f64::from(dec.info().sample_rate);
        let frames = |s: f64| -> Result<u64> {
            if !(s.is_finite() && s >= 0.0) {
                return Err(AudioError::InvalidParameter(format!(
                    "{}: segment time {s} s is not a time",
                    input.path.display()
                )));
            }
            Ok((s * rate).round() as u64)
        };
        let start = frames(clip.start_s)?;
        let len = clip.duration_s.map(frames).transpose()?;
        dec.set_clip(start, len, clip.channel)?;
    }
    Ok(dec)
}

/// [`load`] for any input: a file, a source's record (bytes fetched on demand), a segment of
/// either ([`open_input`]). For a plain file it is exactly [`load`].
pub fn load_input(input: &Input, opts: &LoadOptions) -> Result<Audio> {
    load_input_prefix_inner(input, opts, None).map(|(a, _)| a)
}

/// [`load_prefix`] for any input ([`load_input`]).
pub fn load_input_prefix(input: &Input, opts: &LoadOptions, max_frames: usize) -> Result<(Audio, u64)> {
    load_input_prefix_inner(input, opts, Some(max_frames))
}

fn load_input_prefix_inner(input: &Input, opts: &LoadOptions, limit: Option<usize>) -> Result<(Audio, u64)> {
    if let Some(r) = opts.target_rate {
        check_rate(r)?;
    }
    shape(open_input(input)?, opts, limit)
}

/// [`probe`] for any input: the header facts of its file or bytes, with the length verified.
/// For a segment, `frames` is the segment's length, counted by decoding it.
pub fn probe_input(input: &Input) -> Result<AudioInfo> {
    let mut dec = open_input(input)?;
    if input.clip.is_some() {
        let n = dec.remaining_frames()?;
        let mut info = dec.info().clone();
        info.frames = Some(n);
        if input.clip.is_some_and(|c| c.channel.is_some()) {
            info.channels = 1;
        }
        return Ok(info);
    }
    dec.verify_stated_length()?;
    Ok(dec.info().clone())
}

/// [`count_frames`] for any input ([`open_input`]): the frames per channel of its file, bytes or
/// segment, at its own rate: the verified header length where there is one (whole inputs), else
/// by decoding (keeping nothing). Zero frames is [`AudioError::Empty`].
pub fn count_input_frames(input: &Input) -> Result<(AudioInfo, u64)> {
    let mut dec = open_input(input)?;
    let n = dec.remaining_frames()?;
    if n == 0 {
        return Err(AudioError::Empty { path: input.path.clone() });
    }
    Ok((dec.info().clone(), n))
}

fn load_inner(path: &Path, opts: &LoadOptions, limit: Option<usize>) -> Result<(Audio, u64)> {
    if let Some(r) = opts.target_rate {
        check_rate(r)?;
    }
    shape(Decoder::open(path)?, opts, limit)
}

/// Decodes what `dec` reads to its end, downmixed and resampled as `opts` asks, keeping the first
/// `limit` frames when there is one.
fn shape(mut dec: Decoder, opts: &LoadOptions, limit: Option<usize>) -> Result<(Audio, u64)> {
    let path = dec.info().path.clone();
    let path = path.as_path();
    let rate = dec.info().sample_rate;
    let to = opts.target_rate.unwrap_or(rate);
    let mut channels = dec.info().channels.max(1);
    let mut resamplers: Vec<Resampler> = Vec::new();
    let mut outs: Vec<Vec<f32>> = Vec::new();
    let mut mono_block = Vec::new();
    // The header's frame count is only a hint for the first allocation: it is capped by the
    // file's size in bytes (no codec stores more than one frame per byte on average except
    // silence, for which the buffers then grow as decoded), so a header claiming 2^36 frames
    // cannot make an allocation the file does not back. A limit caps it too.
    let hint = dec.info().frames.unwrap_or(0).min(dec.byte_len());
    let est = |n: u64| {
        let n = Resampler::output_cap(n, rate, to);
        limit.map_or(n, |l| n.min(l as u64)) as usize
    };
    let mut full = false;
    loop {
        let start = dec.frames_decoded();
        let Some(planes) = dec.next_block()? else { break };
        check_finite(path, planes, start)?;
        if resamplers.is_empty() {
            channels = planes.len();
            let n = if opts.mono { 1 } else { channels };
            for _ in 0..n {
                resamplers.push(Resampler::new(rate, to)?);
                outs.push(Vec::with_capacity(est(hint)));
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
        // Output the resampler has emitted is final (flushing only appends its tail), so once
        // every channel holds `limit` frames they are those of the whole signal.
        if let Some(l) = limit {
            if outs.iter().all(|o| o.len() >= l) {
                full = true;
                break;
            }
        }
    }
    let out_channels = outs.len().max(1);
    if full {
        let total_in = dec.remaining_frames()?;
        let total = resample::resampled_len(total_in, rate, to);
        let l = limit.unwrap_or(usize::MAX);
        for o in &mut outs {
            o.truncate(l);
        }
        let source = dec.info().clone();
        return Ok((Audio { samples: interleave(outs), sample_rate: to, channels: out_channels, source }, total));
    }
    if dec.frames_decoded() == 0 {
        return Err(AudioError::Empty { path: path.to_path_buf() });
    }
    for (r, o) in resamplers.into_iter().zip(outs.iter_mut()) {
        r.finish(o)?;
    }
    let total = outs.iter().map(Vec::len).min().unwrap_or(0) as u64;
    if let Some(l) = limit {
        for o in &mut outs {
            o.truncate(l);
        }
    }
    let samples = interleave(outs);
    Ok((Audio { samples, sample_rate: to, channels: out_channels, source: dec.info().clone() }, total))
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
