//! `audiotok encode` / `audiotok decode` on the small SNAC fixture model (tests/fixtures/snac/tiny24,
//! made by tools/gen_snac_fixtures.py with the reference `snac` package).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use audiotok_features::npy::{self, NpyData};
use audiotok_tokens::store::StoreReader;
use predicates::prelude::*;

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(rel)
}

fn audiotok() -> Command {
    Command::cargo_bin("audiotok").unwrap()
}

fn model() -> String {
    fixture("snac/tiny24").display().to_string()
}

fn reference_codes(level: usize) -> Vec<u32> {
    let a = npy::read(std::fs::File::open(fixture(&format!("snac/tiny24/1s_codes{level}.npy"))).unwrap()).unwrap();
    match a.data {
        NpyData::Int(v) => v.into_iter().map(|c| c as u32).collect(),
        _ => panic!("codes are not integers"),
    }
}

fn files_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn whole_file_codes_equal_the_reference_and_decode_back() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    audiotok()
        .args(["encode", "--model", &model(), "--segment-length", "0", "--output"])
        .arg(&store)
        .arg("--input")
        .arg(fixture("audio/speech_1s.wav"))
        .assert()
        .success()
        .stderr(predicate::str::contains("encode: 1 records in 1 batches"));
    let reader = StoreReader::open(&store).unwrap();
    let recs: Vec<_> = reader.records().collect::<Result<_, _>>().unwrap();
    assert_eq!(recs.len(), 1);
    assert!(recs[0].file_path.ends_with("speech_1s.wav"));
    assert_eq!(recs[0].duration, 1.0);
    for level in 0..3 {
        // 16 kHz clip resampled by libsoxr HQ exactly as the fixture script's python-soxr did.
        assert_eq!(recs[0].scales[level].tokens, reference_codes(level), "level {level}");
    }

    let wavs = tmp.path().join("wav");
    audiotok().args(["decode", "--model", &model(), "--input"]).arg(&store).arg("--out").arg(&wavs).assert().success();
    let files = files_of(&wavs);
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].0, "000000_speech_1s.wav");
    let audio = audiotok_audio::load(&wavs.join(&files[0].0), &audiotok_audio::LoadOptions::default()).unwrap();
    assert_eq!(audio.sample_rate, 24000);
    let reference = npy::read(std::fs::File::open(fixture("snac/tiny24/1s_decoded.npy")).unwrap()).unwrap().to_f32();
    assert_eq!(audio.samples.len(), 24000, "cut to the record's duration");
    let d = audio.samples.iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(d <= 1e-4, "decoded audio differs from the reference by {d}");
}

#[test]
fn segments_batches_rejects_and_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let inputs =
        ["audio/speech_1s.wav", "audio/speech_0.1s.wav", "audio/formats/nan.wav", "audio/formats/zero_length.wav"];
    let run = || {
        let mut c = audiotok();
        c.args(["encode", "--model", &model(), "--segment-length", "0.4", "--batch-size", "2", "--output"]).arg(&store);
        c.arg("--input");
        for i in inputs {
            c.arg(fixture(i));
        }
        c
    };
    // 1 s = 24000 samples: two 0.4 s segments (9600) and a 4800-sample remainder; 0.1 s: one short segment.
    run()
        .assert()
        .code(1)
        .stderr(predicate::str::contains("nan.wav: non-finite sample (NaN or infinity) at frame 100"))
        .stderr(predicate::str::contains("zero_length.wav: shorter than one hop"))
        .stderr(predicate::str::contains("encode: 4 records in 2 batches (0 reused"))
        .stderr(predicate::str::contains("2 done, 2 failed"));
    let names: Vec<String> =
        StoreReader::open(&store).unwrap().records().map(|r| r.unwrap().file_path).collect::<Vec<_>>();
    let tails: Vec<&str> = names.iter().map(|n| n.rsplit('/').next().unwrap()).collect();
    assert_eq!(tails, ["speech_1s.wav#0", "speech_1s.wav#1", "speech_1s.wav#2", "speech_0.1s.wav#0"]);
    let first = files_of(&store);

    // A rerun reuses both batches; after losing one, only that one is encoded again; bytes are identical.
    run().assert().code(1).stderr(predicate::str::contains("(2 reused"));
    std::fs::remove_file(store.join("tokens_batch_0001.parquet")).unwrap();
    run().assert().code(1).stderr(predicate::str::contains("(1 reused"));
    assert_eq!(files_of(&store), first);

    // Decoding: one WAV per record, cut to its duration.
    let wavs = tmp.path().join("wav");
    audiotok().args(["decode", "--model", &model(), "--input"]).arg(&store).arg("--out").arg(&wavs).assert().success();
    let got: Vec<(String, usize)> = files_of(&wavs)
        .into_iter()
        .map(|(n, _)| {
            let a = audiotok_audio::load(&wavs.join(&n), &audiotok_audio::LoadOptions::default()).unwrap();
            (n, a.samples.len())
        })
        .collect();
    assert_eq!(
        got,
        [
            ("000000_speech_1s_seg0.wav".to_string(), 9600),
            ("000001_speech_1s_seg1.wav".to_string(), 9600),
            ("000002_speech_1s_seg2.wav".to_string(), 4800),
            ("000003_speech_0.1s_seg0.wav".to_string(), 2400)
        ]
    );
}

#[test]
fn checkpoint_of_another_configuration_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    audiotok()
        .args(["encode", "--model", &model(), "--checkpoint"])
        .arg(fixture("snac/tiny32/pytorch_model.bin"))
        .arg("--input")
        .arg(fixture("audio/speech_0.1s.wav"))
        .arg("--output")
        .arg(tmp.path().join("store"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "mis-shaped: encoder.block.2.block.4.weight (model [16, 8, 8], file [16, 8, 6])",
        ))
        .stderr(predicate::str::contains("missing: encoder.block.5.weight"))
        .stderr(predicate::str::contains("unexpected: decoder.model.2.norm.bias"));
}

#[test]
fn nested_checkpoint_and_noise_on_are_reproducible() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    audiotok()
        .args(["encode", "--model", &model(), "--segment-length", "0", "--checkpoint"])
        .arg(fixture("snac/tiny24/best_model.pt"))
        .arg("--input")
        .arg(fixture("audio/speech_0.1s.wav"))
        .arg("--output")
        .arg(&store)
        .assert()
        .success();
    let decode = |out: &Path, seed: &str| {
        audiotok()
            .args(["decode", "--model", &model(), "--noise", "on", "--seed", seed, "--input"])
            .arg(&store)
            .arg("--out")
            .arg(out)
            .assert()
            .success();
        files_of(out)
    };
    let a = decode(&tmp.path().join("a"), "7");
    let b = decode(&tmp.path().join("b"), "7");
    let c = decode(&tmp.path().join("c"), "8");
    assert_eq!(a, b);
    assert_ne!(a, c);
}
