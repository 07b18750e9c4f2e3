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

// ---- issue 16: hostile input ----

/// `n` good rows (1 s of audio each) as JSONL.
fn good_rows(dir: &Path, name: &str, n: usize) -> PathBuf {
    let mut text = String::new();
    for i in 0..n {
        let row = serde_json::json!({
            "text": format!("<|im_start|>user\n<|AUDIO|>\nrow {i}<|im_end|>\n<|im_start|>assistant\nok<|im_end|>\n"),
            "audio": audio("speech_1s.wav"),
        });
        text.push_str(&format!("{row}\n"));
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

/// `audiotok pack` under bash with a file-size limit of `kib` KiB: past it a write raises SIGXFSZ
/// (the run is killed midway, as by SIGKILL) or, with `ignore` (the signal ignored), fails with
/// EFBIG (as on a full disk).
fn pack_with_file_limit(rows: &Path, out: &Path, kib: u64, ignore: bool) -> std::process::Output {
    let bin = assert_cmd::cargo::cargo_bin("audiotok");
    let trap = if ignore { "trap '' XFSZ; " } else { "" };
    let script = format!("{trap}ulimit -f {kib}; exec \"$0\" \"$@\"");
    std::process::Command::new("bash")
        .arg("-c")
        .arg(script)
        .arg(bin)
        .args(["pack", "--block-size", "512", "--tokenizer"])
        .arg(tokenizer_dir())
        .arg("--out")
        .arg(out)
        .arg(rows)
        .output()
        .unwrap()
}

/// Bug 7: a rerun that dies or fails midway leaves the previous dataset complete and
/// byte-identical at --out; the next good run replaces it and removes what the dead run left.
#[test]
fn a_rerun_that_dies_or_fails_midway_leaves_the_old_dataset() {
    let tmp = tempfile::tempdir().unwrap();
    let parent = tmp.path().join("datasets");
    std::fs::create_dir(&parent).unwrap();
    let out = parent.join("packed");
    let small = good_rows(tmp.path(), "small.jsonl", 4);
    let big = good_rows(tmp.path(), "big.jsonl", 3000);
    pack(&small, &out, &["--block-size", "512"]).success();
    let old = files(&out);
    assert!(old.iter().any(|(n, _)| n == "index.json"));

    // Killed midway (SIGXFSZ when the big shard passes 256 KiB).
    let killed = pack_with_file_limit(&big, &out, 256, false);
    assert!(!killed.status.success(), "{killed:?}");
    assert_eq!(files(&out), old, "the killed rerun changed the old dataset");
    // A write error midway (EFBIG, like ENOSPC): an error naming the file, old dataset intact,
    // nothing of the failed run left beside it.
    let failed = pack_with_file_limit(&big, &out, 256, true);
    assert_eq!(failed.status.code(), Some(2), "{failed:?}");
    assert_eq!(files(&out), old, "the failed rerun changed the old dataset");

    // A good rerun replaces it, and clears what the killed run left in the parent folder.
    pack(&big, &out, &["--block-size", "512"]).success();
    assert_ne!(files(&out), old);
    audiotok().args(["mds", "verify"]).arg(&out).assert().success();
    assert_eq!(names(&parent), ["packed"]);
    let ds = MdsDataset::open(&out).unwrap();
    assert!(ds.len() > 100);
}

/// Bug 7: --out that holds other files is not replaced (a swap would delete them).
#[test]
fn an_out_folder_with_foreign_files_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let rows = good_rows(tmp.path(), "rows.jsonl", 2);
    let a = pack(&rows, &out, &[]).code(2);
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(err.contains("notes.txt") && err.contains("not a pack output"), "{err}");
    assert_eq!(names(&out), ["notes.txt"]);
}

/// Bug 10: a JSONL line over --max-row-bytes is skipped without being read whole and rejected with
/// its line number; the lines after it are read normally.
#[test]
fn a_jsonl_line_over_the_row_limit_is_rejected_with_its_line() {
    let tmp = tempfile::tempdir().unwrap();
    let rows = tmp.path().join("rows.jsonl");
    let good = serde_json::json!({"text": "hello", "audio": null}).to_string();
    let huge = serde_json::json!({"text": "a ".repeat(2 << 20)}).to_string();
    std::fs::write(&rows, format!("{good}\n{huge}\n{good}\n")).unwrap();
    let out = tmp.path().join("out");
    let a = pack(&rows, &out, &["--max-row-bytes", "1048576", "--json"]).success();
    let summary: serde_json::Value = serde_json::from_slice(&a.get_output().stdout).unwrap();
    assert_eq!(summary["packed_rows"], 2);
    let rejects = std::fs::read_to_string(out.join("rejects.jsonl")).unwrap();
    let r: serde_json::Value = serde_json::from_str(rejects.trim()).unwrap();
    assert_eq!(r["line"], 2);
    assert_eq!(r["kind"], "too_large");
    assert!(r["reason"].as_str().unwrap().contains("1048576"), "{r}");
}

/// Bug 10: a row whose text cannot fit a block is rejected before it is tokenized.
#[test]
fn a_row_too_long_for_a_block_is_rejected_before_tokenizing() {
    let tmp = tempfile::tempdir().unwrap();
    let rows = tmp.path().join("rows.jsonl");
    let good = serde_json::json!({"text": "hello"}).to_string();
    let long = serde_json::json!({"text": "word ".repeat(1 << 20)}).to_string();
    std::fs::write(&rows, format!("{good}\n{long}\n")).unwrap();
    let out = tmp.path().join("out");
    pack(&rows, &out, &["--block-size", "512"]).success();
    let rejects = std::fs::read_to_string(out.join("rejects.jsonl")).unwrap();
    let r: serde_json::Value = serde_json::from_str(rejects.trim()).unwrap();
    assert_eq!((r["line"].as_u64(), r["kind"].as_str()), (Some(2), Some("too_long")));
    assert!(r["reason"].as_str().unwrap().contains("before tokenizing"), "{r}");
}

/// Every row rejected: exit 1 (the dataset and rejects.jsonl are still written), 0 with
/// --keep-going.
#[test]
fn every_row_rejected_exits_1_unless_keep_going() {
    let tmp = tempfile::tempdir().unwrap();
    let rows = tmp.path().join("rows.jsonl");
    std::fs::write(&rows, "{oops\n{\"text\": 5}\n").unwrap();
    let out = tmp.path().join("out");
    let a = pack(&rows, &out, &[]).code(1);
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(err.contains("no row was packed"), "{err}");
    assert_eq!(std::fs::read_to_string(out.join("rejects.jsonl")).unwrap().lines().count(), 2);
    pack(&rows, &out, &["--keep-going"]).success();
}

/// Invalid UTF-8 on one JSONL line is a reject naming the file and line; the other lines pack.
#[test]
fn invalid_utf8_is_a_reject_with_its_line() {
    let tmp = tempfile::tempdir().unwrap();
    let rows = tmp.path().join("rows.jsonl");
    let mut bytes = b"{\"text\": \"fine\"}\n{\"text\": \"bad ".to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe]);
    bytes.extend_from_slice(b"\"}\n{\"text\": \"also fine\"}\n");
    std::fs::write(&rows, bytes).unwrap();
    let out = tmp.path().join("out");
    let a = pack(&rows, &out, &["--json"]).success();
    let summary: serde_json::Value = serde_json::from_slice(&a.get_output().stdout).unwrap();
    assert_eq!(summary["packed_rows"], 2);
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(err.contains("rows.jsonl:2") && err.contains("UTF-8"), "{err}");
    let r: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(out.join("rejects.jsonl")).unwrap().trim()).unwrap();
    assert_eq!((r["line"].as_u64(), r["kind"].as_str()), (Some(2), Some("malformed_json")));
}

/// Numeric options are bounded with a message naming the option, not an abort.
#[test]
fn out_of_range_numeric_options_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let rows = good_rows(tmp.path(), "rows.jsonl", 1);
    let out = tmp.path().join("out");
    for (opt, value) in
        [("--block-size", "2147483648"), ("--block-size", "0"), ("--jobs", "100000"), ("--max-row-bytes", "0")]
    {
        let a = pack(&rows, &out, &[opt, value]).code(2);
        let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
        assert!(err.contains(opt) && err.contains(value), "{opt} {value}: {err}");
        assert!(!out.exists());
    }
}

/// An audio so short that the profile gives it 0 tokens is a reject with its reason.
#[test]
fn zero_token_audio_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let clip = tmp.path().join("tiny.wav");
    audiotok_audio::wav::write_wav_f32(&clip, &[0.1; 100], 16_000, 1).unwrap();
    let rows = tmp.path().join("rows.jsonl");
    let row = serde_json::json!({"text": "<|AUDIO|> tiny", "audio": clip.display().to_string()});
    std::fs::write(&rows, format!("{row}\n{{\"text\": \"ok\"}}\n")).unwrap();
    let out = tmp.path().join("out");
    pack(&rows, &out, &[]).success();
    let r: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(out.join("rejects.jsonl")).unwrap().trim()).unwrap();
    assert_eq!((r["line"].as_u64(), r["kind"].as_str()), (Some(1), Some("audio")));
    assert!(r["reason"].as_str().unwrap().contains("0 tokens"), "{r}");
}

/// Messages that are not `{"role": str, "content": str | [object]}` are rejects with a reason.
#[test]
fn malformed_messages_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let rows = tmp.path().join("rows.jsonl");
    let lines = [
        r#"{"messages": [5]}"#,
        r#"{"messages": [{"content": "no role"}]}"#,
        r#"{"messages": [{"role": "user"}]}"#,
        r#"{"messages": [{"role": "user", "content": 7}]}"#,
        r#"{"messages": [{"role": "user", "content": [3]}]}"#,
        r#"{"messages": [{"role": "user", "content": [{"type": "text", "text": "fine"}]}]}"#,
    ];
    std::fs::write(&rows, lines.join("\n") + "\n").unwrap();
    let out = tmp.path().join("out");
    let a = pack(&rows, &out, &["--json"]).success();
    let summary: serde_json::Value = serde_json::from_slice(&a.get_output().stdout).unwrap();
    assert_eq!(summary["packed_rows"], 1);
    let rejects: Vec<serde_json::Value> = std::fs::read_to_string(out.join("rejects.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<(u64, &str)> =
        rejects.iter().map(|r| (r["line"].as_u64().unwrap(), r["kind"].as_str().unwrap())).collect();
    assert_eq!(got, [(1, "bad_row"), (2, "bad_row"), (3, "bad_row"), (4, "bad_row"), (5, "bad_row")]);
    assert!(rejects[0]["reason"].as_str().unwrap().contains("message 0"), "{}", rejects[0]);
}

/// A chat template that loops without end runs out of fuel: a reject naming the row.
#[test]
fn a_runaway_chat_template_is_a_reject() {
    let tmp = tempfile::tempdir().unwrap();
    let template = tmp.path().join("t.jinja");
    std::fs::write(
        &template,
        "{% for a in range(100000) %}{% for b in range(100000) %}{% for c in range(100000) %}{% endfor %}{% endfor %}{% endfor %}",
    )
    .unwrap();
    let rows = tmp.path().join("rows.jsonl");
    std::fs::write(&rows, "{\"text\": \"plain\"}\n{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n")
        .unwrap();
    let out = tmp.path().join("out");
    let bin = assert_cmd::cargo::cargo_bin("audiotok");
    // Without fuel this never ends: give it a minute, then kill it.
    let mut child = std::process::Command::new(bin)
        .args(["pack", "--json", "--tokenizer"])
        .arg(tokenizer_dir())
        .arg("--chat-template")
        .arg(&template)
        .arg("--out")
        .arg(&out)
        .arg(&rows)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if t.elapsed().as_secs() > 60 {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(status.is_some_and(|s| s.success()), "the template did not stop: {status:?}");
    let r: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(out.join("rejects.jsonl")).unwrap().trim()).unwrap();
    assert_eq!((r["line"].as_u64(), r["kind"].as_str()), (Some(2), Some("template")));
    assert!(r["reason"].as_str().unwrap().contains("fuel"), "{r}");
}
