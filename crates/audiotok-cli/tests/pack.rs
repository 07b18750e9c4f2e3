//! `audiotok pack`: rejects, reproducibility, labels, and byte equality with the reference
//! notebook's shards (fixtures from tools/gen_pack_fixtures.py; the Qwen2 BPE files come from
//! tools/fetch_qwen_tokenizer.sh, which `.ci/run` calls).

#![allow(clippy::unwrap_used)] // Test helpers panic on broken fixtures by design.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use audiotok_mds::{MdsDataset, Value};
use audiotok_pack::AudioTokenizer;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tokenizer_dir() -> PathBuf {
    let dir = root().join("tests/fixtures/pack/qwen2-tokenizer");
    assert!(dir.join("vocab.json").is_file(), "{} missing: run tools/fetch_qwen_tokenizer.sh", dir.display());
    dir
}

fn audio(rel: &str) -> String {
    root().join("tests/fixtures/audio").join(rel).display().to_string()
}

fn audiotok() -> Command {
    Command::cargo_bin("audiotok").unwrap()
}

fn pack(rows: &Path, out: &Path, extra: &[&str]) -> assert_cmd::assert::Assert {
    audiotok().arg("pack").arg("--tokenizer").arg(tokenizer_dir()).arg("--out").arg(out).args(extra).arg(rows).assert()
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap())
        })
        .collect();
    v.sort();
    v
}

fn mixed_rows(dir: &Path) -> PathBuf {
    let rows = [
        format!(
            r#"{{"text": "<|im_start|>user\n<|AUDIO|>\nWhat is said?<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n", "audio": "{}"}}"#,
            audio("speech_1s.wav")
        ),
        "{not json".to_string(),
        format!(r#"{{"text": "two <|AUDIO|> <|AUDIO|>", "audio": ["{}"]}}"#, audio("speech_1s.wav")),
        format!(r#"{{"text": "gone <|AUDIO|>", "audio": "{}"}}"#, audio("does_not_exist.wav")),
        format!(r#"{{"text": "long <|AUDIO|>", "audio": "{}"}}"#, audio("speech_45s.flac")),
        format!(
            r#"{{"messages": [{{"role": "user", "content": [{{"type": "audio", "audio_url": "{}"}}, {{"type": "text", "text": "Describe it."}}]}}, {{"role": "assistant", "content": "Speech."}}]}}"#,
            audio("speech_7s.flac")
        ),
        r#"{"text": "text only, no audio", "audio": null}"#.to_string(),
        format!(r#"{{"text": "<|AUDIO|> undecodable", "audio": "{}"}}"#, audio("formats/text.wav")),
    ];
    let path = dir.join("rows.jsonl");
    std::fs::write(&path, rows.join("\n") + "\n").unwrap();
    path
}

#[test]
fn bad_rows_are_rejected_with_reasons_and_output_is_reproducible() {
    let tmp = tempfile::tempdir().unwrap();
    let rows = mixed_rows(tmp.path());
    let out1 = tmp.path().join("one");
    let out2 = tmp.path().join("two");
    let a = pack(&rows, &out1, &["--block-size", "512", "--jobs", "1", "--json"]).success();
    let summary: serde_json::Value = serde_json::from_slice(&a.get_output().stdout).unwrap();
    assert_eq!(summary["rows"], 8);
    assert_eq!(summary["packed_rows"], 3);
    assert_eq!(summary["rejected_rows"], 5);
    let rejects = std::fs::read_to_string(out1.join("rejects.jsonl")).unwrap();
    let kinds: Vec<(u64, String)> = rejects
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["line"].as_u64().unwrap(), v["kind"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(
        kinds,
        [
            (2, "malformed_json".to_string()),
            (3, "placeholder_mismatch".to_string()),
            (4, "audio".to_string()),
            (5, "too_long".to_string()),
            (8, "audio".to_string())
        ]
    );
    assert!(rejects.contains("does_not_exist.wav"), "{rejects}");

    // Same bytes with another thread count, and on a rerun into the same folder.
    pack(&rows, &out2, &["--block-size", "512", "--jobs", "2"]).success();
    assert_eq!(files(&out1), files(&out2));
    pack(&rows, &out1, &["--block-size", "512", "--jobs", "2"]).success();
    assert_eq!(files(&out1), files(&out2));
    audiotok().args(["mds", "verify"]).arg(&out1).assert().success();
}

/// With greedy packing and --on-error skip, blocks are written while later rows are still being
/// tokenized (2048 rows at a time); with --on-error fail every row is prepared first. On rows
/// that are all good, over several such chunks, both give the same bytes, whatever --jobs.
#[test]
fn blocks_written_while_rows_are_tokenized_equal_blocks_written_after() {
    let tmp = tempfile::tempdir().unwrap();
    let clips = [audio("speech_1s.wav"), audio("speech_7s.flac"), audio("speech_0.1s.wav")];
    let mut text = String::new();
    for i in 0..5000 {
        let words = "word ".repeat(i % 37);
        text.push_str(&format!(
            r#"{{"text": "<|im_start|>user\n<|AUDIO|>\nrow {i}: {words}<|im_end|>\n<|im_start|>assistant\nok<|im_end|>\n", "audio": "{}"}}"#,
            clips[i % clips.len()]
        ));
        text.push('\n');
    }
    let rows = tmp.path().join("rows.jsonl");
    std::fs::write(&rows, text).unwrap();
    let outputs: Vec<_> = [("skip", "1"), ("skip", "2"), ("fail", "2")]
        .iter()
        .map(|(on_error, jobs)| {
            let out = tmp.path().join(format!("{on_error}_{jobs}"));
            let a =
                pack(&rows, &out, &["--block-size", "512", "--on-error", on_error, "--jobs", jobs, "--json"]).success();
            let summary: serde_json::Value = serde_json::from_slice(&a.get_output().stdout).unwrap();
            assert_eq!(summary["packed_rows"], 5000);
            assert!(summary["blocks"].as_u64().unwrap() > 1000);
            files(&out)
        })
        .collect();
    assert_eq!(outputs[0], outputs[1]);
    assert_eq!(outputs[0], outputs[2]);
}

#[test]
fn on_error_fail_stops_before_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let rows = mixed_rows(tmp.path());
    let out = tmp.path().join("out");
    let a = pack(&rows, &out, &["--on-error", "fail"]).failure();
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(err.contains("rows.jsonl:2") && err.contains("malformed JSON"), "{err}");
    assert!(!out.join("index.json").exists());
}

#[test]
fn labels_mask_audio_padding_and_non_assistant_tokens() {
    let tmp = tempfile::tempdir().unwrap();
    let rows = tmp.path().join("rows.jsonl");
    let text = "<|im_start|>user\n<|AUDIO|>\nWhat is said?<|im_end|>\n<|im_start|>assistant\nHello there.<|im_end|>\n";
    let row = serde_json::json!({"text": text, "audio": audio("speech_1s.wav")});
    std::fs::write(&rows, format!("{row}\n{row}\n")).unwrap();
    let tok = AudioTokenizer::load(&tokenizer_dir()).unwrap();
    let ids = tok.special_ids();
    let answer = tok.encode("Hello there.<|im_end|>").unwrap().ids;

    for (train_on, strategy) in [("all", "greedy"), ("assistant", "bfd")] {
        let out = tmp.path().join(train_on);
        pack(&rows, &out, &["--block-size", "256", "--train-on", train_on, "--strategy", strategy]).success();
        let ds = MdsDataset::open(&out).unwrap();
        assert_eq!(ds.len(), 1);
        let s = ds.get(0).unwrap();
        let arr = |name: &str| match &s[name] {
            Value::NdArray(a) => a.to_vec::<i32>().unwrap(),
            other => panic!("{name}: {other:?}"),
        };
        let (input, labels, pos, lens) = (arr("input_ids"), arr("labels"), arr("position_ids"), arr("seq_lengths"));
        assert_eq!(input.len(), 256);
        let doc = lens[0] as usize;
        assert_eq!(lens, [doc as i32, doc as i32]);
        // 1 s of audio = 25 tokens, wrapped in audio_bos/eos.
        assert_eq!(input.iter().filter(|&&t| t == ids.audio as i32).count(), 50);
        assert_eq!(&pos[..3], &[0, 1, 2]);
        assert_eq!(pos[doc], 0);
        assert!(pos[2 * doc..].iter().all(|&p| p == 0));
        assert!(input[2 * doc..].iter().all(|&t| t == ids.pad as i32));
        for (i, (&t, &l)) in input.iter().zip(&labels).enumerate() {
            let audio_tok = [ids.audio, ids.audio_bos, ids.audio_eos].contains(&(t as u32));
            if i >= 2 * doc || audio_tok {
                assert_eq!(l, -100, "position {i}");
            } else if train_on == "all" {
                assert_eq!(l, t, "position {i}");
            }
        }
        if train_on == "assistant" {
            let trained: Vec<u32> = labels.iter().filter(|&&l| l != -100).map(|&l| l as u32).collect();
            let twice: Vec<u32> = answer.iter().chain(&answer).copied().collect();
            assert_eq!(trained, twice);
        }
    }
}

/// The four reference outputs of tools/gen_pack_fixtures.py: the notebook loop (cooking layout,
/// MDSWriter with its custom `uint32` encoding) and the standard layout, byte for byte, with the
/// same rows left out.
#[test]
fn output_is_byte_identical_to_the_reference() {
    let fixtures = root().join("tests/fixtures/pack");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("expected_rejects.json")).unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str]); 4] = [
        ("cooking_4096", &["--compat", "cooking", "--block-size", "4096"]),
        ("cooking_512", &["--compat", "cooking", "--block-size", "512"]),
        ("standard_4096_greedy_all", &["--block-size", "4096"]),
        ("standard_512_bfd_assistant", &["--block-size", "512", "--strategy", "bfd", "--train-on", "assistant"]),
    ];
    for (name, args) in cases {
        let out = tmp.path().join(name);
        // Row audio paths are relative to the repository root, as the reference ran.
        audiotok()
            .current_dir(root())
            .arg("pack")
            .arg("--tokenizer")
            .arg(tokenizer_dir())
            .arg("--out")
            .arg(&out)
            .args(args)
            .arg("tests/fixtures/pack/rows.jsonl")
            .assert()
            .success();
        let reference = fixtures.join(name);
        for f in ["index.json", "shard.00000.mds"] {
            let ours = std::fs::read(out.join(f)).unwrap();
            assert!(ours == std::fs::read(reference.join(f)).unwrap(), "{name}/{f} differs from the reference");
        }
        let theirs: Vec<u64> =
            expected["rejects"][name].as_array().unwrap().iter().map(|r| r["line"].as_u64().unwrap()).collect();
        let ours: Vec<u64> = std::fs::read_to_string(out.join("rejects.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["line"].as_u64().unwrap())
            .collect();
        assert_eq!(ours, theirs, "{name}: rejected lines");
    }
}
