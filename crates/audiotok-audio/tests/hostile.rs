//! Hostile input (issue 16): sizes stated by headers never drive allocation, a stream that ends
//! short of its stated length is a truncation error for probing as well as decoding, streamed
//! WAVs without sizes are read to the end of the file, and non-regular files are refused without
//! blocking.

#![allow(clippy::unwrap_used)] // Test helpers panic on broken fixtures by design.

use std::path::{Path, PathBuf};
use std::time::Duration;

use audiotok_audio::{load, probe, AudioError, LoadOptions};

fn formats() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/audio/formats")
}

const RAW: LoadOptions = LoadOptions { target_rate: None, mono: false };

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// clip.flac with STREAMINFO's 36-bit total-samples field set to all ones (2^36 - 1 frames).
fn huge_flac() -> Vec<u8> {
    let mut d = std::fs::read(formats().join("clip.flac")).unwrap();
    let mut x = u64::from_be_bytes(d[18..26].try_into().unwrap());
    x |= (1u64 << 36) - 1;
    d[18..26].copy_from_slice(&x.to_be_bytes());
    d
}

/// clip.mp3 whose Info tag claims 2^31 MPEG frames.
fn huge_mp3() -> Vec<u8> {
    let mut d = std::fs::read(formats().join("clip.mp3")).unwrap();
    let at = d.windows(4).position(|w| w == b"Info").unwrap();
    assert_eq!(d[at + 7] & 1, 1, "the Info tag of clip.mp3 states a frame count");
    d[at + 8..at + 12].copy_from_slice(&0x8000_0000u32.to_be_bytes());
    d
}

fn cut(name: &str, frac: f64) -> Vec<u8> {
    let d = std::fs::read(formats().join(name)).unwrap();
    d[..(d.len() as f64 * frac) as usize].to_vec()
}

fn assert_truncated(r: Result<impl std::fmt::Debug, AudioError>, what: &str) {
    match r {
        Err(AudioError::Corrupt { reason, .. }) => assert!(reason.contains("truncated"), "{what}: {reason}"),
        other => panic!("{what}: expected a truncation error, got {other:?}"),
    }
}

#[test]
fn a_flac_claiming_2_pow_36_frames_is_truncated_not_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "huge.flac", &huge_flac());
    assert_truncated(load(&p, &RAW), "load");
    assert_truncated(load(&p, &LoadOptions::mono_at(24_000)), "load at 24 kHz");
    assert_truncated(probe(&p), "probe");
}

#[test]
fn an_mp3_claiming_2_pow_31_mpeg_frames_is_truncated_not_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "huge.mp3", &huge_mp3());
    assert_truncated(load(&p, &RAW), "load");
    assert_truncated(probe(&p), "probe");
}

#[test]
fn probing_a_truncated_flac_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    for frac in [0.01, 0.3, 0.9, 0.999] {
        let p = write(dir.path(), "cut.flac", &cut("clip.flac", frac));
        assert_truncated(probe(&p), &format!("probe of clip.flac cut to {frac}"));
        assert_truncated(load(&p, &RAW), &format!("load of clip.flac cut to {frac}"));
    }
    assert_truncated(probe(&formats().join("truncated.flac")), "truncated.flac");
}

#[test]
fn a_truncated_mp3_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    for frac in [0.3, 0.6, 0.9] {
        let p = write(dir.path(), "cut.mp3", &cut("clip.mp3", frac));
        assert_truncated(load(&p, &RAW), &format!("load of clip.mp3 cut to {frac}"));
        assert_truncated(probe(&p), &format!("probe of clip.mp3 cut to {frac}"));
    }
    // The intact file states and decodes exactly its length (encoder delay and padding removed).
    let p = formats().join("clip.mp3");
    assert_eq!(probe(&p).unwrap().frames, Some(16_000));
    assert_eq!(load(&p, &RAW).unwrap().frames(), 16_000);
}

fn data_offset(d: &[u8]) -> usize {
    d.windows(4).position(|w| w == b"data").unwrap()
}

#[test]
fn a_wav_whose_header_claims_more_than_the_file_is_refused_by_probe() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = std::fs::read(formats().join("pcm_s16.wav")).unwrap();
    let at = data_offset(&d);
    d[at + 4..at + 8].copy_from_slice(&(32_000u32 * 10).to_le_bytes());
    let p = write(dir.path(), "long.wav", &d);
    assert_truncated(probe(&p), "probe");
    assert_truncated(load(&p, &RAW), "load");
}

#[test]
fn streamed_wavs_without_sizes_are_read_to_the_end_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let orig = formats().join("pcm_s16.wav");
    let want = load(&orig, &RAW).unwrap();
    let d = std::fs::read(&orig).unwrap();
    let at = data_offset(&d);
    // ffmpeg writing to a pipe: RIFF and data sizes 0xFFFFFFFF; a writer killed before it could
    // patch its header: both sizes as first written (RIFF 8 or 0, data 0). An odd trailing byte
    // (half a sample) is not a frame.
    for (riff, data, tail) in [(u32::MAX, u32::MAX, 0), (u32::MAX, u32::MAX, 1), (8, 0, 0), (0, 0, 0), (0, u32::MAX, 1)]
    {
        let mut s = d.clone();
        s[4..8].copy_from_slice(&riff.to_le_bytes());
        s[at + 4..at + 8].copy_from_slice(&data.to_le_bytes());
        s.extend(std::iter::repeat_n(0u8, tail));
        let p = write(dir.path(), "piped.wav", &s);
        let what = format!("RIFF {riff:#x}, data {data:#x}, {tail} extra bytes");
        let info = probe(&p).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(info.frames, Some(16_000), "{what}");
        let a = load(&p, &RAW).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(a.samples, want.samples, "{what}");
    }
}

fn within(secs: u64, f: impl FnOnce() -> String + Send + 'static) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs)).expect("did not return in time (blocked)")
}

#[test]
fn non_regular_files_are_refused_with_their_kind_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("folder.wav");
    std::fs::create_dir(&folder).unwrap();
    let fifo = dir.path().join("fifo.wav");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    for (path, kind) in [(folder, "a directory"), (fifo, "a FIFO"), (PathBuf::from("/dev/zero"), "a character device")]
    {
        let p = path.clone();
        let msg = within(10, move || match load(&p, &RAW) {
            Err(e) => e.to_string(),
            Ok(_) => "decoded".into(),
        });
        assert!(msg.contains(&format!("not a regular file ({kind})")), "{}: {msg}", path.display());
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        let p = path.clone();
        let msg = within(10, move || match probe(&p) {
            Err(e) => e.to_string(),
            Ok(_) => "probed".into(),
        });
        assert!(msg.contains(&format!("not a regular file ({kind})")), "{}: {msg}", path.display());
    }
}

#[test]
fn absurd_sample_rates_are_refused() {
    let clip = formats().join("clip.flac");
    for rate in [u32::MAX, 1_000_000_000] {
        match load(&clip, &LoadOptions::mono_at(rate)) {
            Err(AudioError::InvalidParameter(m)) => assert!(m.contains(&rate.to_string()), "{m}"),
            other => panic!("{rate}: {other:?}"),
        }
    }
}
