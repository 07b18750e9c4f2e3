//! Decoding with symphonia: WAV (PCM 8/16/24/32-bit, float 32/64, WAVE_FORMAT_EXTENSIBLE), FLAC,
//! MP3 and Ogg Vorbis.
//!
//! [`Decoder`] yields planar `f32` blocks one packet at a time, so a caller that reduces or
//! resamples each block keeps only its own output in memory. Anything that cannot be decoded is a
//! typed [`AudioError`] naming the file: an unknown container ([`AudioError::Unsupported`]), a codec
//! without a decoder (Opus, for example), corrupt or truncated data ([`AudioError::Corrupt`]).

use std::fs::File;
use std::path::{Path, PathBuf};

use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

use crate::error::{AudioError, Result};

/// What the container says about a file, before decoding it.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioInfo {
    /// The file.
    pub path: PathBuf,
    /// Container short name as symphonia reports it (`wave`, `flac`, `mp3`, `ogg`).
    pub container: String,
    /// Codec short name (`pcm_s16le`, `flac`, `mp3`, `vorbis`, ...).
    pub codec: String,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Number of channels.
    pub channels: usize,
    /// Frames per channel when the container states it (exact for WAV and FLAC).
    pub frames: Option<u64>,
    /// Bits per sample of the stored data when the container states it.
    pub bits_per_sample: Option<u32>,
}

impl AudioInfo {
    /// Duration in seconds when the frame count is known.
    pub fn duration_secs(&self) -> Option<f64> {
        self.frames.map(|n| n as f64 / f64::from(self.sample_rate))
    }

    /// Whether the container's frame count is exact (WAV's data chunk, FLAC's STREAMINFO, raw
    /// PCM) rather than an estimate (MP3, Vorbis): decoding must then yield exactly that many.
    pub fn states_exact_length(&self) -> bool {
        self.container == "wave" || self.codec == "flac" || self.codec.starts_with("pcm")
    }
}

/// A streaming decoder over one file's first audio track.
pub struct Decoder {
    info: AudioInfo,
    format: Box<dyn FormatReader>,
    decoder: Box<dyn AudioDecoder>,
    track_id: u32,
    planes: Vec<Vec<f32>>,
    frames_done: u64,
    exact_length: bool,
}

fn corrupt(path: &Path, reason: impl Into<String>) -> AudioError {
    AudioError::Corrupt { path: path.to_path_buf(), reason: reason.into() }
}

fn unsupported(path: &Path, reason: impl Into<String>) -> AudioError {
    AudioError::Unsupported { path: path.to_path_buf(), reason: reason.into() }
}

/// A readable name for codecs audiotok has no decoder for.
fn codec_name(id: symphonia::core::codecs::audio::AudioCodecId) -> String {
    use symphonia::core::codecs::audio::well_known::*;
    let name = match id {
        CODEC_ID_OPUS => "Opus",
        CODEC_ID_SPEEX => "Speex",
        CODEC_ID_AAC => "AAC",
        CODEC_ID_ALAC => "ALAC",
        CODEC_ID_WAVPACK => "WavPack",
        _ => return format!("id {id}"),
    };
    format!("{name} ({id})")
}

/// Maps a symphonia error met while probing or decoding into our error kinds.
fn map_sym(path: &Path, err: SymError) -> AudioError {
    match err {
        SymError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            corrupt(path, "unexpected end of file (truncated)")
        }
        SymError::IoError(e) => AudioError::Io { path: path.to_path_buf(), source: e },
        SymError::DecodeError(msg) => corrupt(path, msg),
        SymError::Unsupported(msg) => unsupported(path, msg),
        SymError::LimitError(msg) => corrupt(path, format!("limit reached: {msg}")),
        SymError::SeekError(_) => corrupt(path, "seek error"),
        SymError::ResetRequired => unsupported(path, "chained streams (track list changed)"),
        other => corrupt(path, other.to_string()),
    }
}

impl Decoder {
    /// Opens `path`, probes its container and prepares a decoder for its first audio track.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| AudioError::Io { path: path.to_path_buf(), source: e })?;
        let len = file.metadata().map_err(|e| AudioError::Io { path: path.to_path_buf(), source: e })?.len();
        if len == 0 {
            return Err(corrupt(path, "empty file (0 bytes)"));
        }
        let mss = MediaSourceStream::new(Box::new(file), Default::default());
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        let format = symphonia::default::get_probe()
            .probe(&hint, mss, FormatOptions::default(), MetadataOptions::default())
            .map_err(|e| match e {
                SymError::Unsupported(_) => unsupported(path, "not a recognised audio container"),
                other => map_sym(path, other),
            })?;
        let container = format.format_info().short_name.to_string();
        let track = format.default_track(TrackType::Audio).ok_or_else(|| unsupported(path, "no audio track"))?;
        let track_id = track.id;
        let num_frames = track.num_frames;
        let params = track
            .codec_params
            .as_ref()
            .and_then(|p| p.audio())
            .ok_or_else(|| unsupported(path, "no audio codec parameters"))?
            .clone();
        let registry = symphonia::default::get_codecs();
        let codec = registry
            .get_audio_decoder(params.codec)
            .map(|d| d.codec.info.short_name.to_string())
            .ok_or_else(|| unsupported(path, format!("no decoder for codec {}", codec_name(params.codec))))?;
        let decoder =
            registry.make_audio_decoder(&params, &AudioDecoderOptions::default()).map_err(|e| map_sym(path, e))?;
        let sample_rate =
            params.sample_rate.filter(|&r| r > 0).ok_or_else(|| corrupt(path, "sample rate missing or zero"))?;
        let channels = params.channels.as_ref().map(|c| c.count()).unwrap_or(0);
        let info = AudioInfo {
            path: path.to_path_buf(),
            container,
            codec,
            sample_rate,
            channels,
            frames: num_frames,
            bits_per_sample: params.bits_per_sample,
        };
        // Containers that state an exact length: a decoded length short of it means truncation.
        let exact_length = info.states_exact_length();
        Ok(Decoder { info, format, decoder, track_id, planes: Vec::new(), frames_done: 0, exact_length })
    }

    /// The container's description of the stream.
    pub fn info(&self) -> &AudioInfo {
        &self.info
    }

    /// Frames per channel decoded so far.
    pub fn frames_decoded(&self) -> u64 {
        self.frames_done
    }

    /// Decodes the next packet into planar `f32` (one `Vec` per channel, all of the same length).
    /// Returns `Ok(None)` at the end of the stream. Corrupt packets and truncation are errors: a
    /// file is never returned with silently missing audio.
    pub fn next_block(&mut self) -> Result<Option<&[Vec<f32>]>> {
        let path = self.info.path.clone();
        loop {
            let packet = match self.format.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => {
                    if let (true, Some(expected)) = (self.exact_length, self.info.frames) {
                        if self.frames_done < expected {
                            return Err(corrupt(
                                &path,
                                format!(
                                    "truncated: decoded {} of {} frames the header states",
                                    self.frames_done, expected
                                ),
                            ));
                        }
                    }
                    return Ok(None);
                }
                Err(e) => return Err(map_sym(&path, e)),
            };
            if packet.track_id != self.track_id {
                continue;
            }
            let buf = self.decoder.decode(&packet).map_err(|e| map_sym(&path, e))?;
            if buf.frames() == 0 {
                continue;
            }
            buf.copy_to_vecs_planar::<f32>(&mut self.planes);
            let n = buf.frames();
            if self.info.channels == 0 {
                self.info.channels = self.planes.len();
            }
            self.frames_done += n as u64;
            return Ok(Some(&self.planes));
        }
    }
}

/// Reads the container header of `path` without decoding the audio.
pub fn probe(path: &Path) -> Result<AudioInfo> {
    Decoder::open(path).map(|d| d.info)
}
