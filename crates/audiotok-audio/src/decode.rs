//! Decoding with symphonia: WAV (PCM 8/16/24/32-bit, float 32/64, WAVE_FORMAT_EXTENSIBLE), FLAC,
//! MP3 and Ogg Vorbis.
//!
//! [`Decoder`] yields planar `f32` blocks one packet at a time, so a caller that reduces or
//! resamples each block keeps only its own output in memory. Anything that cannot be decoded is a
//! typed [`AudioError`] naming the file: an unknown container ([`AudioError::Unsupported`]), a codec
//! without a decoder (Opus, for example), corrupt or truncated data ([`AudioError::Corrupt`]).

use std::path::{Path, PathBuf};

use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, SeekMode, SeekTo, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::units::Timestamp;

use crate::error::{AudioError, Result};
use crate::source;

/// The highest sample rate audiotok accepts, for files and for requested rates (Hz): 768 kHz,
/// above every rate in use (DXD is 352.8 kHz). Higher values are refused with a reason rather
/// than handed to the resampler.
pub const MAX_SAMPLE_RATE: u32 = 768_000;

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
    /// Frames per channel when the container states it: exact (and, from [`probe`], verified
    /// against the end of the stream) when [`AudioInfo::states_exact_length`], else an estimate.
    pub frames: Option<u64>,
    /// Bits per sample of the stored data when the container states it.
    pub bits_per_sample: Option<u32>,
    /// Whether `frames` is exact: WAV's data chunk, FLAC's STREAMINFO, raw PCM, an MP3's
    /// Xing/Info frame count (less the LAME encoder delay and padding).
    pub exact_length: bool,
}

impl AudioInfo {
    /// Duration in seconds when the frame count is known.
    pub fn duration_secs(&self) -> Option<f64> {
        self.frames.map(|n| n as f64 / f64::from(self.sample_rate))
    }

    /// Whether the container's frame count is exact (WAV's data chunk, FLAC's STREAMINFO, raw
    /// PCM, an MP3's Xing/Info tag) rather than an estimate (MP3 without one, Vorbis): decoding
    /// must then yield exactly that many.
    pub fn states_exact_length(&self) -> bool {
        self.exact_length
    }

    /// The frame count when it can stand for a decode: exact, verified by [`probe`], non-zero,
    /// and not float PCM (whose samples must still be read to refuse NaN and infinity).
    pub fn header_frames(&self) -> Option<u64> {
        self.frames.filter(|&n| n > 0 && self.exact_length && !self.codec.starts_with("pcm_f"))
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
    byte_len: u64,
    /// The segment [`Decoder::set_clip`] asked for, in frames of the stream.
    clip: Option<FrameClip>,
}

/// A segment in frames: `[start, end)` of the stream, optionally one channel.
#[derive(Debug, Clone, Copy)]
struct FrameClip {
    start: u64,
    end: Option<u64>,
    channel: Option<usize>,
    /// Frames given out so far.
    emitted: u64,
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
        let (file, len) = source::open_source(path)?;
        Self::from_source(path, file, len)
    }

    /// A decoder over an encoded file held in memory (a Parquet cell, a tar member, a Python
    /// `bytes`), read exactly as [`Decoder::open`] reads the same bytes from disk. `name` stands for
    /// the bytes in errors and in [`AudioInfo::path`]; its extension, if any, is the container hint.
    pub fn from_bytes(name: &Path, bytes: Vec<u8>) -> Result<Self> {
        let (source, len) = source::memory_source(name, bytes)?;
        Self::from_source(name, source, len)
    }

    fn from_source<R>(path: &Path, mut file: source::PatchedFile<R>, len: u64) -> Result<Self>
    where
        R: std::io::Read + std::io::Seek + Send + Sync + 'static,
    {
        if len == 0 {
            return Err(corrupt(path, "empty file (0 bytes)"));
        }
        // Read before the container takes the bytes; it only counts for MP3.
        let mp3_exact = source::mp3_states_frame_count(path, &mut file, len)?;
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(0))
            .map_err(|source| AudioError::Io { path: path.to_path_buf(), source })?;
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
        if sample_rate > MAX_SAMPLE_RATE {
            return Err(corrupt(path, format!("sample rate {sample_rate} Hz is over {MAX_SAMPLE_RATE} Hz")));
        }
        let channels = params.channels.as_ref().map(|c| c.count()).unwrap_or(0);
        // Containers that state an exact length: a decoded length short of it means truncation.
        let exact_length =
            container == "wave" || codec == "flac" || codec.starts_with("pcm") || (codec == "mp3" && mp3_exact);
        let info = AudioInfo {
            path: path.to_path_buf(),
            container,
            codec,
            sample_rate,
            channels,
            frames: num_frames,
            bits_per_sample: params.bits_per_sample,
            exact_length,
        };
        Ok(Decoder { info, format, decoder, track_id, planes: Vec::new(), frames_done: 0, byte_len: len, clip: None })
    }

    /// The file's size in bytes.
    pub fn byte_len(&self) -> u64 {
        self.byte_len
    }

    /// The exact frame count the header states, if it does.
    fn stated_frames(&self) -> Option<u64> {
        self.info.frames.filter(|_| self.info.exact_length)
    }

    /// Checks that the stream really reaches the frame count its header states, without decoding
    /// it all: seeks to the last stated frame, then demuxes and decodes every packet from there to
    /// the end of the stream, which must end exactly at the stated count. A file cut short fails
    /// the seek or ends early: a truncation error. Nothing to check when the header states no
    /// exact length. The decoder is left at the end of the stream.
    ///
    /// This costs a few packets for WAV and FLAC (FLAC frames carry their own position, found by
    /// bisection), and a scan of the frame headers (no decoding) for MP3, whose frames do not.
    pub fn verify_stated_length(&mut self) -> Result<()> {
        let Some(expected) = self.stated_frames().filter(|&n| n > 0) else { return Ok(()) };
        let path = self.info.path.clone();
        let short =
            |detail: String| corrupt(&path, format!("truncated: the header states {expected} frames but {detail}"));
        let last = i64::try_from(expected - 1).map_err(|_| short("that is out of range".into()))?;
        let to = SeekTo::Timestamp { ts: Timestamp::from(last), track_id: self.track_id };
        match self.format.seek(SeekMode::Accurate, to) {
            Ok(_) => {}
            Err(SymError::SeekError(_)) => return Err(short(format!("frame {last} cannot be found"))),
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(short(format!("the file ends before frame {last}")))
            }
            Err(e) => return Err(map_sym(&path, e)),
        }
        self.decoder.reset();
        let mut end: Option<i64> = None;
        loop {
            let packet = match self.format.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Err(short(format!("the file ends before frame {last}")))
                }
                Err(e) => return Err(map_sym(&path, e)),
            };
            if packet.track_id != self.track_id {
                continue;
            }
            // The packet's valid frames end at its timestamp plus the frames the decoder gives
            // for it (it trims encoder delay and padding); packets wholly trimmed (past the
            // stated end) hold none.
            let frames = self.decoder.decode(&packet).map_err(|e| map_sym(&path, e))?.frames() as u64;
            if frames > 0 {
                let valid = packet.trim_start.get().saturating_add(frames);
                let packet_end = packet.pts.get().saturating_add(i64::try_from(valid).unwrap_or(i64::MAX));
                end = Some(end.map_or(packet_end, |e| e.max(packet_end)));
            }
        }
        self.frames_done = expected;
        match end {
            Some(e) if e == expected as i64 => Ok(()),
            Some(e) if e < expected as i64 => Err(short(format!("the stream ends at frame {e}"))),
            Some(e) => Err(corrupt(&path, format!("the header states {expected} frames but the stream runs to {e}"))),
            None => Err(short(format!("no packet holds frame {last}"))),
        }
    }

    /// The container's description of the stream.
    pub fn info(&self) -> &AudioInfo {
        &self.info
    }

    /// Frames per channel decoded so far (of the segment, after [`Decoder::set_clip`]).
    pub fn frames_decoded(&self) -> u64 {
        self.clip.map_or(self.frames_done, |c| c.emitted)
    }

    /// Restricts what [`Decoder::next_block`] gives to a segment of the stream: `frames` frames
    /// (to the end of the stream when `None`) from frame `start`, at the stream's own rate, and
    /// only channel `channel` when one is named. Call it before decoding. WAV and FLAC seek to
    /// `start` (FLAC frames carry their position; a WAV's is its byte offset); other containers
    /// decode from the beginning and drop what comes before. A segment that starts or ends past
    /// the end of the stream is an error (corrupt: the source says there is audio there).
    pub fn set_clip(&mut self, start: u64, frames: Option<u64>, channel: Option<usize>) -> Result<()> {
        let path = self.info.path.clone();
        if let Some(c) = channel {
            if self.info.channels > 0 && c >= self.info.channels {
                return Err(AudioError::InvalidParameter(format!(
                    "{}: channel {c} asked for, the stream has {}",
                    path.display(),
                    self.info.channels
                )));
            }
        }
        if self.frames_done != 0 || self.clip.is_some() {
            return Err(AudioError::InvalidParameter(format!("{}: segment set after decoding began", path.display())));
        }
        let end = frames.map(|n| start.saturating_add(n));
        if start > 0 && (self.info.container == "wave" || self.info.codec == "flac") {
            let ts = i64::try_from(start).map_err(|_| corrupt(&path, format!("segment start {start} out of range")))?;
            let to = SeekTo::Timestamp { ts: Timestamp::from(ts), track_id: self.track_id };
            match self.format.seek(SeekMode::Accurate, to) {
                Ok(seeked) => {
                    self.decoder.reset();
                    self.frames_done = u64::try_from(seeked.actual_ts.get()).unwrap_or(0);
                }
                Err(SymError::SeekError(_)) => {
                    return Err(corrupt(&path, format!("segment starts at frame {start}, past the end of the stream")))
                }
                Err(e) => return Err(map_sym(&path, e)),
            }
        }
        self.clip = Some(FrameClip { start, end, channel, emitted: 0 });
        Ok(())
    }

    /// Decodes the next packet into planar `f32` (one `Vec` per channel, all of the same length).
    /// Returns `Ok(None)` at the end of the stream (or of the segment). Corrupt packets and
    /// truncation are errors: a file is never returned with silently missing audio.
    pub fn next_block(&mut self) -> Result<Option<&[Vec<f32>]>> {
        let Some(mut clip) = self.clip else { return self.next_stream_block() };
        let path = self.info.path.clone();
        loop {
            let at = self.frames_done;
            if clip.end.is_some_and(|e| at >= e) {
                return Ok(None);
            }
            let Some(planes) = self.next_stream_block()? else {
                let end_of_stream = self.frames_done;
                if end_of_stream <= clip.start || clip.end.is_some_and(|e| e > end_of_stream) {
                    let wanted = clip.end.map_or_else(
                        || format!("from frame {}", clip.start),
                        |e| format!("frames {} to {e}", clip.start),
                    );
                    return Err(corrupt(
                        &path,
                        format!("segment {wanted} asked for, but the stream ends at frame {end_of_stream}"),
                    ));
                }
                return Ok(None);
            };
            let n = planes.first().map_or(0, Vec::len) as u64;
            if at + n <= clip.start {
                continue;
            }
            let lo = clip.start.saturating_sub(at) as usize;
            let hi = clip.end.map_or(n, |e| e.min(at + n) - at) as usize;
            for p in &mut self.planes {
                p.truncate(hi);
                p.drain(..lo);
            }
            if let Some(c) = clip.channel {
                if c >= self.planes.len() {
                    return Err(AudioError::InvalidParameter(format!(
                        "{}: channel {c} asked for, the stream has {}",
                        path.display(),
                        self.planes.len()
                    )));
                }
                self.planes.swap(0, c);
                self.planes.truncate(1);
            }
            clip.emitted += (hi - lo) as u64;
            self.clip = Some(clip);
            return Ok(Some(&self.planes));
        }
    }

    fn next_stream_block(&mut self) -> Result<Option<&[Vec<f32>]>> {
        let path = self.info.path.clone();
        loop {
            let packet = match self.format.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => {
                    if let Some(expected) = self.stated_frames() {
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

/// Reads the container header of `path` and, where it states an exact length, checks that the
/// stream reaches it ([`Decoder::verify_stated_length`]): the length of a file that `probe`
/// accepts is what decoding it gives. The audio is not decoded, except its last packets.
pub fn probe(path: &Path) -> Result<AudioInfo> {
    let mut d = Decoder::open(path)?;
    d.verify_stated_length()?;
    Ok(d.info)
}

/// The number of frames per channel in `path`: the verified header length
/// ([`AudioInfo::header_frames`]) when there is one, else by decoding every packet (keeping
/// none; NaN and infinity refused, and truncation against a stated length). Zero frames is
/// [`AudioError::Empty`].
pub fn count_frames(path: &Path) -> Result<(AudioInfo, u64)> {
    let mut d = Decoder::open(path)?;
    let n = d.remaining_frames()?;
    if n == 0 {
        return Err(AudioError::Empty { path: path.to_path_buf() });
    }
    Ok((d.info, n))
}

impl Decoder {
    /// The frame count of the whole stream, from wherever decoding stands: the verified header
    /// length when [`AudioInfo::header_frames`] gives one, else by decoding the rest.
    pub fn remaining_frames(&mut self) -> Result<u64> {
        if self.info.header_frames().is_some() && self.clip.is_none() {
            self.verify_stated_length()?;
            return Ok(self.frames_done);
        }
        let path = self.info.path.clone();
        loop {
            let start = self.frames_decoded();
            let Some(planes) = self.next_block()? else { break };
            crate::check_finite(&path, planes, start)?;
        }
        Ok(self.frames_decoded())
    }
}
