//! `audiotok_audio::info`: the rows of `audiotok info` over the format fixtures.

#![allow(clippy::unwrap_used)] // Tests panic on broken fixtures by design.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use audiotok_audio::info::{probe_all, InfoRow};
use audiotok_core::{collect, Input, Observer, Silent};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/audio")
}

struct Count(AtomicU64);

impl Observer for Count {
    fn advance(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
}

#[test]
fn rows_state_the_header_facts_or_the_reason() {
    let inputs = collect(&[fixtures().join("formats")]).unwrap().files;
    let seen = Count(AtomicU64::new(0));
    let rows = probe_all(&inputs, 2, &seen).unwrap();
    assert_eq!(seen.0.load(Ordering::Relaxed), inputs.len() as u64);
    assert_eq!(rows.len(), inputs.len());
    for (input, row) in inputs.iter().zip(&rows) {
        assert_eq!(&InfoRow::probe(input), row, "{}", input.path.display());
        assert_eq!(row.path, input.path.to_str().unwrap());
    }
    let row = |name: &str| rows.iter().find(|r| r.path.ends_with(name)).unwrap();
    let flac = row("/clip.flac");
    assert!(!flac.failed());
    assert_eq!(flac.container.as_deref(), Some("flac"));
    let info = audiotok_audio::probe(&fixtures().join("formats/clip.flac")).unwrap();
    assert_eq!(
        (flac.sample_rate, flac.channels, flac.frames),
        (Some(info.sample_rate), Some(info.channels), info.frames)
    );
    assert_eq!(flac.duration_s, info.duration_secs());
    let opus = row("/clip.opus");
    assert!(opus.failed() && opus.error.as_deref().unwrap().contains("Opus"));
    assert_eq!((opus.container.as_ref(), opus.frames), (None, None));
}

#[test]
fn unreadable_inputs_fail_with_their_reason_and_rows_serialise_every_field() {
    let mut input = Input::file("/nowhere/link.wav");
    input.unreadable = Some("/nowhere/link.wav: dangling symlink (its target does not exist)".into());
    let rows = probe_all(std::slice::from_ref(&input), 1, &Silent).unwrap();
    assert_eq!(rows, [InfoRow::probe(&input)]);
    assert_eq!(
        serde_json::to_string(&rows[0]).unwrap(),
        r#"{"path":"/nowhere/link.wav","container":null,"codec":null,"sample_rate":null,"channels":null,"frames":null,"duration_s":null,"error":"/nowhere/link.wav: dangling symlink (its target does not exist)"}"#
    );
    assert!(probe_all(&[input], audiotok_core::MAX_JOBS + 1, &Silent).is_err());
}
