//! Encoded files held in memory (`load_bytes`, `Decoder::from_bytes`) decode exactly as the same
//! bytes read from disk, and fail with the same reasons, named by the caller's record id.

#![allow(clippy::unwrap_used)] // Test helpers panic on broken fixtures by design.

use std::path::{Path, PathBuf};

use audiotok_audio::{load, load_bytes, AudioError, Decoder, LoadOptions};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/audio")
}

const RAW: LoadOptions = LoadOptions { target_rate: None, mono: false };

#[test]
fn bytes_in_memory_decode_as_the_file_does() {
    for name in [
        "formats/pcm_u8.wav",
        "formats/pcm_s24.wav",
        "formats/float64.wav",
        "formats/extensible_s16_stereo.wav",
        "formats/clip.flac",
        "formats/clip.mp3",
        "formats/clip.ogg",
        "speech_7s_44k_stereo.flac",
    ] {
        let path = fixtures().join(name);
        let bytes = std::fs::read(&path).unwrap();
        for opts in [RAW, LoadOptions::mono_at(16_000), LoadOptions::mono_at(24_000)] {
            let want = load(&path, &opts).unwrap();
            let got = load_bytes(Path::new(name), bytes.clone(), &opts).unwrap();
            assert_eq!(got.samples, want.samples, "{name} {opts:?}");
            assert_eq!((got.sample_rate, got.channels), (want.sample_rate, want.channels), "{name}");
            assert_eq!(got.source.path, Path::new(name));
            assert_eq!(got.source.exact_length, want.source.exact_length, "{name}");
            assert_eq!(got.source.frames, want.source.frames, "{name}");
        }
    }
}

#[test]
fn without_an_extension_the_container_is_found_from_the_bytes() {
    for name in ["clip.flac", "clip.mp3", "clip.ogg", "pcm_s16.wav"] {
        let path = fixtures().join("formats").join(name);
        let want = load(&path, &RAW).unwrap();
        let got = load_bytes(Path::new("shard.parquet#3"), std::fs::read(&path).unwrap(), &RAW).unwrap();
        assert_eq!(got.samples, want.samples, "{name}");
    }
}

#[test]
fn a_streamed_wav_in_memory_is_repaired_as_on_disk() {
    let orig = fixtures().join("formats/pcm_s16.wav");
    let want = load(&orig, &RAW).unwrap();
    let mut d = std::fs::read(&orig).unwrap();
    let at = d.windows(4).position(|w| w == b"data").unwrap();
    d[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    d[at + 4..at + 8].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(load_bytes(Path::new("piped.wav"), d, &RAW).unwrap().samples, want.samples);
}

#[test]
fn bad_bytes_fail_with_the_reason_a_file_gets_and_the_callers_name() {
    let id = Path::new("train-00000.parquet#7");
    let cases: [(&str, Vec<u8>); 4] = [
        ("empty", Vec::new()),
        ("text", b"not audio at all, just some text bytes".to_vec()),
        ("truncated flac", {
            let d = std::fs::read(fixtures().join("formats/clip.flac")).unwrap();
            d[..d.len() / 2].to_vec()
        }),
        ("nan", std::fs::read(fixtures().join("formats/nan.wav")).unwrap()),
    ];
    for (what, bytes) in cases {
        let err = load_bytes(id, bytes, &RAW).unwrap_err();
        let path = match &err {
            AudioError::Corrupt { path, .. }
            | AudioError::Unsupported { path, .. }
            | AudioError::NonFinite { path, .. }
            | AudioError::Empty { path } => path.clone(),
            other => panic!("{what}: unexpected error {other:?}"),
        };
        assert_eq!(path, id, "{what}: {err}");
        assert!(err.to_string().contains("train-00000.parquet#7"), "{what}: {err}");
    }
    // The same reasons as the files on disk.
    let on_disk = load(&fixtures().join("formats/nan.wav"), &RAW).unwrap_err().to_string();
    let in_memory =
        load_bytes(id, std::fs::read(fixtures().join("formats/nan.wav")).unwrap(), &RAW).unwrap_err().to_string();
    assert_eq!(
        in_memory.replace("train-00000.parquet#7", "X"),
        on_disk.replace(&fixtures().join("formats/nan.wav").display().to_string(), "X")
    );
}

#[test]
fn a_decoder_over_bytes_streams_blocks() {
    let path = fixtures().join("formats/clip.flac");
    let mut dec = Decoder::from_bytes(Path::new("clip.flac"), std::fs::read(&path).unwrap()).unwrap();
    let mut frames = 0;
    while let Some(planes) = dec.next_block().unwrap() {
        frames += planes[0].len();
    }
    assert_eq!(frames as u64, dec.info().frames.unwrap());
    let mut dec = Decoder::from_bytes(Path::new("clip.flac"), std::fs::read(&path).unwrap()).unwrap();
    dec.verify_stated_length().unwrap();
}
