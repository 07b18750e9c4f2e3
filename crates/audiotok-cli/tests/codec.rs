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

// ---- issue 16: hostile input ----

/// A copy of the tiny24 model folder with `config.json` replaced by `config`.
fn model_with_config(dir: &Path, config: &str) -> PathBuf {
    let m = dir.join("model");
    std::fs::create_dir_all(&m).unwrap();
    std::fs::copy(fixture("snac/tiny24/pytorch_model.bin"), m.join("pytorch_model.bin")).unwrap();
    std::fs::write(m.join("config.json"), config).unwrap();
    m
}

/// The tiny24 weights with every float tensor changed by `f` (saved as safetensors).
fn changed_weights(path: &Path, f: impl Fn(&str, &candle_core::Tensor) -> candle_core::Tensor) {
    let tensors = audiotok_codecs::weights::read_tensors(&fixture("snac/tiny24/pytorch_model.bin")).unwrap();
    let out: std::collections::HashMap<String, candle_core::Tensor> =
        tensors.iter().map(|(k, t)| (k.clone(), f(k, &t.to_dtype(candle_core::DType::F32).unwrap()))).collect();
    candle_core::safetensors::save(&out, path).unwrap();
}

fn encode_cmd(store: &Path, extra: &[&str], inputs: &[PathBuf]) -> Command {
    let mut c = audiotok();
    c.args(["encode", "--model", &model(), "--batch-size", "1"]).args(extra).arg("--output").arg(store);
    c.arg("--input").args(inputs);
    c
}

/// Batch files only (metadata.json aside), by name.
fn batches_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
    files_of(dir).into_iter().filter(|(n, _)| n.ends_with(".parquet")).collect()
}

/// An interrupted run: the last batch and metadata.json are gone.
fn interrupt(store: &Path) {
    std::fs::remove_file(store.join("metadata.json")).unwrap();
    let last = batches_of(store).last().unwrap().0.clone();
    std::fs::remove_file(store.join(last)).unwrap();
}

#[test]
fn resume_with_another_checkpoint_does_not_mix_models() {
    let tmp = tempfile::tempdir().unwrap();
    let other = tmp.path().join("other.safetensors");
    changed_weights(&other, |_, t| (t * 1.1).unwrap().sin().unwrap());
    let inputs = [fixture("audio/speech_1s.wav"), fixture("audio/speech_0.1s.wav")];
    let seg = ["--segment-length", "0.4"];
    let fresh = tmp.path().join("fresh");
    let with_other = [&seg[..], &["--checkpoint", other.to_str().unwrap()]].concat();
    encode_cmd(&fresh, &with_other, &inputs).assert().success();

    let store = tmp.path().join("store");
    encode_cmd(&store, &seg, &inputs).assert().success().stderr(predicate::str::contains("4 records in 4 batches"));
    assert_ne!(batches_of(&store), batches_of(&fresh), "the two models must give other codes");
    interrupt(&store);
    encode_cmd(&store, &with_other, &inputs)
        .assert()
        .success()
        .stderr(predicate::str::contains("(0 reused"))
        .stderr(predicate::str::contains("3 batches were made by another model"));
    assert_eq!(batches_of(&store), batches_of(&fresh));
    // The same inputs again: everything reused, nothing changes.
    encode_cmd(&store, &with_other, &inputs).assert().success().stderr(predicate::str::contains("(4 reused"));
    assert_eq!(batches_of(&store), batches_of(&fresh));
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(store.join("metadata.json")).unwrap()).unwrap();
    let prov = &meta["provenance"];
    assert_eq!(prov["weights"].as_str().unwrap(), other.display().to_string());
    assert_eq!(prov["segment_samples"].as_str().unwrap(), "9600");
    assert_eq!(prov["weights_sha1"].as_str().unwrap().len(), 40);
}

/// A batch damaged on disk (one flipped bit in its first column chunk, the footer intact) fails
/// its checksum: the resumed run encodes it again instead of reusing or aborting (issue 16).
#[test]
fn resume_encodes_a_damaged_batch_again() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = [fixture("audio/speech_0.1s.wav"), fixture("audio/speech_1s.wav")];
    let seg = ["--segment-length", "0"];
    let store = tmp.path().join("store");
    encode_cmd(&store, &seg, &inputs).assert().success();
    let first = batches_of(&store);
    let p1 = store.join(&first[1].0);
    let mut b = first[1].1.clone();
    b[10] ^= 0x10;
    std::fs::write(&p1, &b).unwrap();
    encode_cmd(&store, &seg, &inputs)
        .assert()
        .success()
        .stderr(predicate::str::contains("(1 reused"))
        .stderr(predicate::str::contains("1 batches could not be read"));
    assert_eq!(batches_of(&store), first);
}

#[test]
fn resume_with_other_options_does_not_reuse() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    // A 0.1 s file is one segment at both lengths: same record names, other options.
    let inputs = [fixture("audio/speech_0.1s.wav"), fixture("audio/speech_0.1s.wav")];
    encode_cmd(&store, &["--segment-length", "0.4"], &inputs).assert().success();
    interrupt(&store);
    encode_cmd(&store, &["--segment-length", "0.5"], &inputs)
        .assert()
        .success()
        .stderr(predicate::str::contains("(0 reused"))
        .stderr(predicate::str::contains("1 batches were made with other options"));
}

#[test]
fn resume_after_an_input_changed_encodes_it_again() {
    let tmp = tempfile::tempdir().unwrap();
    let audio = tmp.path().join("a.wav");
    let b = tmp.path().join("b.wav");
    std::fs::copy(fixture("audio/speech_1s.wav"), &audio).unwrap();
    std::fs::copy(fixture("audio/speech_1s.wav"), &b).unwrap();
    let inputs = [audio.clone(), b.clone()];
    let store = tmp.path().join("store");
    let seg = ["--segment-length", "0"];
    encode_cmd(&store, &seg, &inputs).assert().success();
    interrupt(&store);
    // Same path, same length, other samples.
    let samples: Vec<f32> = (0..24000).map(|i| (i as f32 * 0.05).sin() * 0.5).collect();
    audiotok_audio::write_wav_f32(&audio, &samples, 24000, 1).unwrap();
    encode_cmd(&store, &seg, &inputs)
        .assert()
        .success()
        .stderr(predicate::str::contains("(0 reused"))
        .stderr(predicate::str::contains("1 batches hold files whose content changed"));
    let fresh = tmp.path().join("fresh");
    encode_cmd(&fresh, &seg, &inputs).assert().success();
    assert_eq!(batches_of(&store), batches_of(&fresh));
}

#[test]
fn one_segment_length_cap_for_every_way_of_choosing_it() {
    let tmp = tempfile::tempdir().unwrap();
    let msg = "segments are at most 600 s";
    audiotok()
        .args(["encode", "--model", &model(), "--segment-length", "3600", "--output"])
        .arg(tmp.path().join("s"))
        .arg("--input")
        .arg(fixture("audio/speech_0.1s.wav"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!("--segment-length 3600: {msg}")));
    // Whole files (--segment-length 0): a 601 s file is refused with the same cap and reason.
    let long = tmp.path().join("long.wav");
    audiotok_audio::write_wav_f32(&long, &vec![0.0f32; 601 * 8000], 8000, 1).unwrap();
    audiotok()
        .args(["encode", "--model", &model(), "--segment-length", "0", "--output"])
        .arg(tmp.path().join("s0"))
        .arg("--input")
        .arg(&long)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!("long.wav: 601 s: {msg}")));
}

#[test]
fn config_fields_follow_the_snac_package() {
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture("snac/tiny24/config.json")).unwrap();
    let mut cfg: serde_json::Value = serde_json::from_str(&text).unwrap();
    // Missing: SNAC.__init__'s default (44100) is taken, and said.
    let rate = cfg.as_object_mut().unwrap().remove("sampling_rate").unwrap();
    let m = model_with_config(&tmp.path().join("a"), &cfg.to_string());
    audiotok()
        .args(["encode", "--model", m.to_str().unwrap(), "--output"])
        .arg(tmp.path().join("s"))
        .arg("--input")
        .arg(fixture("audio/speech_0.1s.wav"))
        .assert()
        .success()
        .stderr(predicate::str::contains(format!(
            "{}: no sampling_rate: using the snac package's default 44100",
            m.join("config.json").display()
        )));
    // A misspelt field is an error naming it (snac's SNAC(**config) raises TypeError on it).
    cfg.as_object_mut().unwrap().insert("sample_rate".into(), rate);
    let m = model_with_config(&tmp.path().join("b"), &cfg.to_string());
    audiotok()
        .args(["encode", "--model", m.to_str().unwrap(), "--output"])
        .arg(tmp.path().join("s2"))
        .arg("--input")
        .arg(fixture("audio/speech_0.1s.wav"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(m.join("config.json").display().to_string()))
        .stderr(predicate::str::contains("unknown field `sample_rate`"));
}

#[test]
fn non_finite_weights_are_refused_naming_the_tensor() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("nan.safetensors");
    changed_weights(&bad, |k, t| {
        if k == "quantizer.quantizers.1.codebook.weight" {
            (t * f64::NAN).unwrap()
        } else {
            t.clone()
        }
    });
    audiotok()
        .args(["encode", "--model", &model(), "--checkpoint", bad.to_str().unwrap(), "--output"])
        .arg(tmp.path().join("s"))
        .arg("--input")
        .arg(fixture("audio/speech_0.1s.wav"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "quantizer.quantizers.1.codebook.weight: non-finite value (NaN or infinity) at element 0",
        ));
}

#[test]
fn numeric_options_are_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    audiotok()
        .args(["encode", "--model", &model(), "--batch-size", "1000000000000", "--output"])
        .arg(tmp.path().join("s"))
        .arg("--input")
        .arg(fixture("audio/speech_0.1s.wav"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--batch-size 1000000000000: at most 100000 records per batch"));
    audiotok()
        .args(["decode", "--model", &model(), "--jobs", "100000", "--input"])
        .arg(tmp.path().join("s"))
        .arg("--out")
        .arg(tmp.path().join("w"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("100000 threads: at most 1024"));
}

/// A store of two 0.1 s records (codes of the tiny24 shape) named `names`, batches of one.
fn store_named(dir: &Path, names: &[String]) {
    use audiotok_tokens::store::{ScaleTokens, StoreOptions, StoreWriter, TokenRecord};
    let mut opts = StoreOptions::new(3);
    opts.batch_size = 1;
    let mut w = StoreWriter::create(dir, opts).unwrap();
    for n in names {
        let scales = [2usize, 4, 8].iter().map(|&l| ScaleTokens::stream((0..l as u32).collect())).collect();
        w.push(TokenRecord { file_path: n.clone(), duration: 0.1, scales }).unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn decode_bounds_output_names() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let long = format!("/data/{}.wav#3", "é".repeat(300));
    store_named(&store, &[long, "/data/x.wav".into()]);
    let wavs = tmp.path().join("wav");
    audiotok().args(["decode", "--model", &model(), "--input"]).arg(&store).arg("--out").arg(&wavs).assert().success();
    let names: Vec<String> = files_of(&wavs).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names.len(), 2);
    assert!(names[0].starts_with(&format!("000000_{}", "é".repeat(40))), "{}", names[0]);
    assert!(names[0].ends_with("_seg3.wav"));
    assert!(names[0].len() <= 200, "{} bytes", names[0].len());
    assert_eq!(names[1], "000001_x.wav");
}

#[test]
fn decode_reports_a_missing_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    store_named(&store, &["a.wav".into(), "b.wav".into(), "c.wav".into()]);
    std::fs::remove_file(store.join("tokens_batch_0001.parquet")).unwrap();
    let wavs = tmp.path().join("wav");
    audiotok()
        .args(["decode", "--model", &model(), "--input"])
        .arg(&store)
        .arg("--out")
        .arg(&wavs)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("tokens_batch_0001.parquet: missing (listed in metadata.json)"))
        .stderr(predicate::str::contains("2 done, 1 failed"));
    assert_eq!(files_of(&wavs).len(), 2);
}
