//! Audio lengths at the profile's rate, the hot path of packing.
//!
//! The reference decodes every file and resamples it (soxr HQ) only to take its length. The
//! resampled length is a closed form of the frame count ([`audiotok_audio::resampled_len`], proved
//! equal to decoding + resampling in this crate's and audiotok-audio's tests). Where the container
//! states the exact frame count (WAV's data chunk, FLAC's STREAMINFO, raw PCM, an MP3's Xing/Info
//! tag) only the header and the last packets are read: [`audiotok_audio::probe`] checks that the
//! stream really reaches the stated count, so a truncated file is an error, never the header's
//! length. Other files (Vorbis, MP3 without a Xing tag, FLAC without a total, float WAV, whose
//! samples are checked for NaN) are decoded, but not resampled.
//!
//! [`LengthMode::Decode`] decodes and resamples every file, as the reference does: slower, but
//! corruption inside a file (not only at its end) is then an error too.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use audiotok_audio::{count_frames, count_input_frames, load, load_input, resampled_len, LoadOptions};
use audiotok_core::{Input, Origin};

/// How lengths are obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LengthMode {
    /// From the container header where it is exact, else by decoding (default).
    #[default]
    Header,
    /// Always decode and resample.
    Decode,
}

/// The length of one file and how it was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioLength {
    /// Samples at the target rate (mono).
    pub samples: u64,
    /// Whether the header gave it (no decoding).
    pub from_header: bool,
}

/// The mono length of `path` at `rate` Hz.
///
/// Header mode ([`count_frames`], one open): the frame count a verified header states (the
/// stream is checked to reach it; float PCM is excluded, its samples are read for NaN), else the
/// frames counted by decoding without resampling; either way the resampled length is the closed form
/// [`resampled_len`] of it. Decode mode decodes and resamples, as the reference does.
pub fn audio_length(path: &Path, rate: u32, mode: LengthMode) -> Result<AudioLength, String> {
    if mode == LengthMode::Header {
        // One open: the verified header length where there is one, else a decode keeping nothing.
        let (info, frames) = count_frames(path).map_err(|e| e.to_string())?;
        let from_header = info.header_frames().is_some();
        return Ok(AudioLength { samples: resampled_len(frames, info.sample_rate, rate), from_header });
    }
    let audio = load(path, &LoadOptions::mono_at(rate)).map_err(|e| e.to_string())?;
    Ok(AudioLength { samples: audio.samples.len() as u64, from_header: false })
}

/// [`audio_length`] of any input: a file (exactly [`audio_length`]), a source's record (bytes
/// fetched on demand) or a segment (`audiotok_audio::open_input`).
pub fn input_length(input: &Input, rate: u32, mode: LengthMode) -> Result<AudioLength, String> {
    input.readable()?;
    if matches!(input.origin, Origin::Path) && input.clip.is_none() {
        return audio_length(&input.path, rate, mode);
    }
    if mode == LengthMode::Header {
        let (info, frames) = count_input_frames(input).map_err(|e| e.to_string())?;
        let from_header = input.clip.is_none() && info.header_frames().is_some();
        return Ok(AudioLength { samples: resampled_len(frames, info.sample_rate, rate), from_header });
    }
    let audio = load_input(input, &LoadOptions::mono_at(rate)).map_err(|e| e.to_string())?;
    Ok(AudioLength { samples: audio.samples.len() as u64, from_header: false })
}

/// Lengths of many files, each computed once.
#[derive(Debug, Default)]
pub struct LengthCache {
    lengths: HashMap<PathBuf, Result<AudioLength, String>>,
}

impl LengthCache {
    /// An empty cache.
    pub fn new() -> LengthCache {
        LengthCache::default()
    }

    /// Adds computed lengths.
    pub fn extend(&mut self, items: impl IntoIterator<Item = (PathBuf, Result<AudioLength, String>)>) {
        self.lengths.extend(items);
    }

    /// Whether `path` has an entry.
    pub fn contains(&self, path: &Path) -> bool {
        self.lengths.contains_key(path)
    }

    /// The entry for `path`.
    pub fn get(&self, path: &Path) -> Option<&Result<AudioLength, String>> {
        self.lengths.get(path)
    }

    /// Files whose length came from the header, and files that were decoded.
    pub fn counts(&self) -> (usize, usize) {
        let ok = self.lengths.values().filter_map(|r| r.as_ref().ok());
        ok.fold((0, 0), |(h, d), l| if l.from_header { (h + 1, d) } else { (h, d + 1) })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn fixture(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/audio").join(rel)
    }

    /// The closed form from the header equals the length of the decoded, resampled signal.
    #[test]
    fn header_length_equals_decoded_length() {
        for rel in [
            "speech_0.1s.wav",
            "speech_1s.wav",
            "speech_7s.flac",
            "speech_7s_44k_stereo.flac",
            "formats/pcm_s24.wav",
            "formats/clip.flac",
        ] {
            let path = fixture(rel);
            for rate in [16_000, 24_000] {
                let fast = audio_length(&path, rate, LengthMode::Header).unwrap();
                let slow = audio_length(&path, rate, LengthMode::Decode).unwrap();
                assert!(fast.from_header && !slow.from_header, "{rel}");
                assert_eq!(fast.samples, slow.samples, "{rel} at {rate}");
            }
        }
    }

    #[test]
    fn mp3_is_decoded_and_a_truncated_wav_is_refused() {
        let ogg = audio_length(&fixture("formats/clip.ogg"), 16_000, LengthMode::Header).unwrap();
        assert!(!ogg.from_header);
        assert_eq!(
            ogg.samples,
            audio_length(&fixture("formats/clip.ogg"), 16_000, LengthMode::Decode).unwrap().samples
        );
        // An MP3 with a Xing/Info tag states its exact length.
        let mp3 = audio_length(&fixture("formats/clip.mp3"), 16_000, LengthMode::Header).unwrap();
        assert!(mp3.from_header);
        assert_eq!(
            mp3.samples,
            audio_length(&fixture("formats/clip.mp3"), 16_000, LengthMode::Decode).unwrap().samples
        );
        assert_eq!(audiotok_features::profiles::MAX_RATE, audiotok_audio::MAX_SAMPLE_RATE);
        let dir = tempfile::tempdir().unwrap();
        let cut = dir.path().join("cut.wav");
        let data = std::fs::read(fixture("speech_1s.wav")).unwrap();
        std::fs::write(&cut, &data[..data.len() / 2]).unwrap();
        let err = audio_length(&cut, 16_000, LengthMode::Header).unwrap_err();
        assert!(err.contains("truncated"), "{err}");
    }

    /// Header mode verifies the stated length: a FLAC cut short (even to 1 %, where no frame is
    /// left) is refused, as decoding refuses it, never given the header's length.
    #[test]
    fn a_truncated_flac_is_refused_in_header_mode() {
        let dir = tempfile::tempdir().unwrap();
        let data = std::fs::read(fixture("speech_7s.flac")).unwrap();
        for frac in [0.01, 0.5, 0.99] {
            let cut = dir.path().join("cut.flac");
            std::fs::write(&cut, &data[..(data.len() as f64 * frac) as usize]).unwrap();
            for mode in [LengthMode::Header, LengthMode::Decode] {
                let err = audio_length(&cut, 16_000, mode).unwrap_err();
                assert!(err.contains("cut.flac") && err.contains("truncated"), "{frac} {mode:?}: {err}");
            }
        }
        let err = audio_length(&fixture("formats/truncated.flac"), 16_000, LengthMode::Header).unwrap_err();
        assert!(err.contains("truncated"), "{err}");
    }

    /// A float WAV's samples are checked in header mode too: NaN is refused as decoding refuses it.
    #[test]
    fn a_nan_float_wav_is_refused_in_header_mode() {
        let err = audio_length(&fixture("formats/nan.wav"), 16_000, LengthMode::Header).unwrap_err();
        assert!(err.contains("nan.wav") && err.contains("non-finite sample") && err.contains("frame 100"), "{err}");
        let ok = audio_length(&fixture("formats/float32.wav"), 16_000, LengthMode::Header).unwrap();
        assert_eq!(ok.samples, 16_000);
    }

    /// A header claiming 2^36 frames never sizes an allocation: both modes end in a typed error.
    #[test]
    fn a_flac_claiming_2_pow_36_frames_is_an_error_in_both_modes() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = std::fs::read(fixture("formats/clip.flac")).unwrap();
        let mut x = u64::from_be_bytes(d[18..26].try_into().unwrap());
        x |= (1u64 << 36) - 1;
        d[18..26].copy_from_slice(&x.to_be_bytes());
        let huge = dir.path().join("huge.flac");
        std::fs::write(&huge, d).unwrap();
        for mode in [LengthMode::Header, LengthMode::Decode] {
            let err = audio_length(&huge, 16_000, mode).unwrap_err();
            assert!(err.contains("truncated"), "{mode:?}: {err}");
        }
    }
}
