//! The job APIs (`job::pack`, `count::count_files`) as a front calls them: the golden rows packed
//! from their file and from memory give the reference's shards byte for byte, the summary is the
//! `--json` object, the observer sees the phases; counts of the audio fixtures.
//! (The Qwen2 BPE files come from tools/fetch_qwen_tokenizer.sh, which `.ci/run` calls.)
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use audiotok_core::{Input, Observer, Silent};
use audiotok_features::profiles::Profile;
use audiotok_pack::count::{count_files, count_lengths};
use audiotok_pack::job::{pack, OnError, PackOptions, PackSource};
use audiotok_pack::{Layout, PackConfig, PackError, RowSource, Strategy, TrainOn};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixtures() -> PathBuf {
    root().join("tests/fixtures/pack")
}

fn tokenizer_dir() -> PathBuf {
    let dir = fixtures().join("qwen2-tokenizer");
    assert!(dir.join("vocab.json").is_file(), "{} is missing: run tools/fetch_qwen_tokenizer.sh", dir.display());
    dir
}

/// Every event an observer gets, as text.
#[derive(Default)]
struct Log {
    events: Mutex<Vec<String>>,
    advanced: Mutex<Vec<u64>>,
}

impl Observer for Log {
    fn begin(&self, phase: &str, total: u64, unit: &str) {
        self.events.lock().unwrap().push(format!("begin {phase} {total} {unit}"));
        self.advanced.lock().unwrap().push(0);
    }
    fn advance(&self, n: u64) {
        if let Some(last) = self.advanced.lock().unwrap().last_mut() {
            *last += n;
        }
    }
    fn end(&self) {
        self.events.lock().unwrap().push("end".into());
    }
}

impl Log {
    /// `(begin event, items advanced)` per phase, and whether every phase ended.
    fn phases(&self) -> (Vec<(String, u64)>, bool) {
        let events = self.events.lock().unwrap();
        let begins: Vec<String> = events.iter().filter(|e| e.starts_with("begin")).cloned().collect();
        let ends = events.iter().filter(|e| *e == "end").count();
        let advanced = self.advanced.lock().unwrap().clone();
        (begins.into_iter().zip(advanced).collect(), ends == events.len() / 2 && events.len() % 2 == 0)
    }
}

/// The golden rows (paths relative to the repository root) as JSON values, one per line; a line
/// that is not JSON is kept as a string (a bad row), so row `i` is line `i + 1`.
fn rows_in_memory() -> Vec<Value> {
    std::fs::read_to_string(fixtures().join("rows.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| Value::String(l.to_string())))
        .collect()
}

fn config(layout: Layout, block_size: usize, strategy: Strategy, train_on: TrainOn) -> PackConfig {
    let mut cfg = PackConfig::new(Profile::Qwen2Audio);
    cfg.layout = layout;
    cfg.block_size = block_size;
    cfg.strategy = strategy;
    cfg.train_on = train_on;
    cfg.audio_root = Some(root());
    cfg
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap()
}

/// Lines (JSONL) or indexes (in memory) of the rows in `rejects.jsonl`, with their kinds.
fn rejected(dir: &Path, key: &str) -> Vec<(u64, String)> {
    String::from_utf8(read(dir, "rejects.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v[key].as_u64().unwrap(), v["kind"].as_str().unwrap().to_string())
        })
        .collect()
}

/// The four reference outputs of tools/gen_pack_fixtures.py, packed through the job API from the
/// row file and from rows in memory: the same shards as the reference, byte for byte, and the
/// same rows left out (named by line, or by index in memory).
#[test]
fn in_memory_rows_pack_to_the_same_bytes_as_the_row_file() {
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("expected_rejects.json")).unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        ("cooking_4096", config(Layout::Cooking, 4096, Strategy::Greedy, TrainOn::All)),
        ("cooking_512", config(Layout::Cooking, 512, Strategy::Greedy, TrainOn::All)),
        ("standard_4096_greedy_all", config(Layout::Standard, 4096, Strategy::Greedy, TrainOn::All)),
        ("standard_512_bfd_assistant", config(Layout::Standard, 512, Strategy::Bfd, TrainOn::Assistant)),
    ];
    for (name, cfg) in cases {
        let bfd = cfg.strategy == Strategy::Bfd;
        let from_file = tmp.path().join(format!("{name}_file"));
        let from_memory = tmp.path().join(format!("{name}_memory"));
        let mut options = PackOptions::new(tokenizer_dir(), &from_file, cfg);
        options.jobs = 2;
        let file_log = Log::default();
        let a = pack(&options, PackSource::Files(vec![fixtures().join("rows.jsonl")]), &file_log).unwrap();
        options.out = from_memory.clone();
        let memory_log = Log::default();
        let b = pack(&options, PackSource::Values(rows_in_memory()), &memory_log).unwrap();

        let reference = fixtures().join(name);
        for f in ["index.json", "shard.00000.mds"] {
            assert!(read(&from_file, f) == read(&reference, f), "{name}/{f}: the file run differs from the reference");
            assert!(read(&from_memory, f) == read(&from_file, f), "{name}/{f}: rows in memory differ from the file");
        }
        let lines: Vec<u64> =
            expected["rejects"][name].as_array().unwrap().iter().map(|r| r["line"].as_u64().unwrap()).collect();
        let by_line = rejected(&from_file, "line");
        let by_index = rejected(&from_memory, "index");
        assert_eq!(by_line.iter().map(|r| r.0).collect::<Vec<_>>(), lines, "{name}");
        assert_eq!(by_index.iter().map(|r| r.0 + 1).collect::<Vec<_>>(), lines, "{name}");
        for ((_, file_kind), (_, memory_kind)) in by_line.iter().zip(&by_index) {
            // The line that is not JSON was given as a string: a bad row rather than bad JSON.
            let kind = if file_kind == "malformed_json" { "bad_row" } else { file_kind.as_str() };
            assert_eq!(kind, memory_kind, "{name}");
        }
        // In memory, rows are named by their index, and rejects.jsonl has no file.
        assert!(b.rejects.iter().all(|r| r.source.file.is_none()), "{name}");
        assert!(!String::from_utf8(read(&from_memory, "rejects.jsonl")).unwrap().contains("\"file\""));
        let first = &b.rejects[0];
        assert_eq!(first.source, RowSource::memory(lines[0] - 1));
        assert!(first.to_string().starts_with(&format!("row {}: ", lines[0] - 1)), "{first}");

        // The summaries agree (but for the timings and the folder) and count what was written.
        for s in [&a, &b] {
            assert_eq!((s.rows, s.rejected_rows, s.rejects.len()), (30, lines.len(), lines.len()), "{name}");
            assert_eq!(s.packed_rows + s.rejected_rows, s.rows);
            assert_eq!(s.shards, 1);
            assert_eq!(s.strategy, cfg_strategy(bfd));
            assert_eq!(s.rejects_by_kind.values().sum::<usize>(), s.rejected_rows);
            let chosen = if bfd { s.blocks_by_strategy.bfd } else { s.blocks_by_strategy.greedy };
            assert_eq!(chosen, s.blocks);
        }
        assert_eq!(
            (a.blocks, a.tokens, a.audio_tokens, a.packed_rows),
            (b.blocks, b.tokens, b.audio_tokens, b.packed_rows)
        );
        assert_eq!(a.out, from_file.display().to_string());

        // Phases: audio (files), rows, and blocks when they are written after every row (BFD).
        for log in [&file_log, &memory_log] {
            let (phases, all_ended) = log.phases();
            assert!(all_ended, "{name}: a phase was left open");
            let mut want = vec![(format!("begin audio {} files", a.audio_files), a.audio_files as u64)];
            want.push(("begin rows 30 rows".to_string(), 30));
            if bfd {
                want.push((format!("begin blocks {} blocks", a.blocks), a.blocks as u64));
            }
            assert_eq!(phases, want, "{name}");
        }
    }
}

fn cfg_strategy(bfd: bool) -> Strategy {
    if bfd {
        Strategy::Bfd
    } else {
        Strategy::Greedy
    }
}

/// The summary serialises to the object `audiotok pack --json` has always printed: these keys,
/// in this (alphabetical) order; the rejects are not in it.
#[test]
fn the_summary_is_the_json_object_of_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let rows = vec![
        serde_json::json!({"text": "<|im_start|>user\n<|AUDIO|>\nhi<|im_end|>\n", "audio": "tests/fixtures/audio/speech_1s.wav"}),
        serde_json::json!({"text": 5}),
    ];
    let options =
        PackOptions::new(tokenizer_dir(), &out, config(Layout::Standard, 256, Strategy::Greedy, TrainOn::All));
    let s = pack(&options, PackSource::Values(rows), &Silent).unwrap();
    let text = serde_json::to_string(&s).unwrap();
    let keys = [
        "audio_files",
        "audio_files_decoded",
        "audio_lengths_from_header",
        "audio_tokens",
        "block_size",
        "blocks",
        "blocks_by_strategy",
        "efficiency",
        "out",
        "packed_rows",
        "phase_seconds",
        "rejected_rows",
        "rejects_by_kind",
        "rows",
        "rows_per_second",
        "seconds",
        "shards",
        "strategy",
        "tokens",
    ];
    let at: Vec<usize> = keys.iter().map(|k| text.find(&format!("\"{k}\":")).unwrap()).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v.as_object().unwrap().len(), keys.len(), "{text}");
    assert_eq!(v["blocks_by_strategy"], serde_json::json!({"bfd": 1, "greedy": 1}));
    assert_eq!(v["rejects_by_kind"], serde_json::json!({"bad_row": 1}));
    assert_eq!(
        (v["rows"].as_u64(), v["packed_rows"].as_u64(), v["strategy"].as_str()),
        (Some(2), Some(1), Some("greedy"))
    );
    let phases: Vec<&String> = v["phase_seconds"].as_object().unwrap().keys().collect();
    assert_eq!(
        phases,
        ["audio_lengths", "load_tokenizer", "pack_and_write", "read_rows", "setup", "tokenize_and_expand"]
    );
    assert_eq!(s.rejects[0].to_string(), "row 1: bad row: `text` must be a string, found a number");
    assert_eq!(
        s.rejects[0].to_json_line(),
        r#"{"index":1,"kind":"bad_row","reason":"bad row: `text` must be a string, found a number"}"#
    );
}

/// With OnError::Fail a bad row stops the job before anything is written; other errors leave
/// the output folder alone too.
#[test]
fn failing_jobs_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let mut options =
        PackOptions::new(tokenizer_dir(), &out, config(Layout::Standard, 4096, Strategy::Greedy, TrainOn::All));
    options.on_error = OnError::Fail;
    let e = pack(&options, PackSource::Values(rows_in_memory()), &Silent).unwrap_err();
    match &e {
        PackError::BadRows { first, count } => {
            assert_eq!(first.source, RowSource::memory(1));
            assert_eq!(*count, 7);
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().starts_with("row 1: audio: ") && e.to_string().contains("does_not_exist.wav"), "{e}");
    assert!(e.to_string().ends_with(" (nothing written; 7 bad row(s) in all)"), "{e}");
    assert!(!out.exists());
    let names = |d: &Path| std::fs::read_dir(d).unwrap().count();
    assert_eq!(names(tmp.path()), 0, "the stage folder was left");

    options.on_error = OnError::Skip;
    options.tokenizer = tmp.path().join("no-tokenizer");
    let e = pack(&options, PackSource::Rows(Vec::new()), &Silent).unwrap_err();
    assert!(matches!(e, PackError::Tokenizer { .. }), "{e}");
    options.tokenizer = tokenizer_dir();
    options.chat_template = Some(tmp.path().join("missing.jinja"));
    let e = pack(&options, PackSource::Rows(Vec::new()), &Silent).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{}: cannot read: No such file or directory (os error 2)", tmp.path().join("missing.jinja").display())
    );
    assert!(!out.exists());
    assert_eq!(names(tmp.path()), 0);
}

/// The options are plain data: they go through JSON and come back the same.
#[test]
fn options_round_trip_through_serde() {
    let mut cfg = config(Layout::Cooking, 512, Strategy::Bfd, TrainOn::Assistant);
    cfg.profile = "custom:fps=12.5,rate=24000".parse().unwrap();
    let mut options = PackOptions::new("tok", "out", cfg);
    options.on_error = OnError::Fail;
    options.chat_template = Some("t.jinja".into());
    let text = serde_json::to_string(&options).unwrap();
    assert!(text.contains(r#""profile":"custom:fps=12.5,rate=24000""#), "{text}");
    assert!(text.contains(r#""layout":"cooking""#) && text.contains(r#""on_error":"fail""#), "{text}");
    let back: PackOptions = serde_json::from_str(&text).unwrap();
    assert_eq!(serde_json::to_string(&back).unwrap(), text);
    assert_eq!(back.config.profile, options.config.profile);
    let bad = text.replace("custom:fps=12.5,rate=24000", "no-such-encoder");
    assert!(serde_json::from_str::<PackOptions>(&bad).unwrap_err().to_string().contains("unknown profile"));
}

/// `count_files` on the audio fixtures: the counts `audiotok count` prints, failures with their
/// reasons in input order, the `count` phase, and the same counts from the lengths alone.
#[test]
fn count_files_counts_tokens_and_reports_failures() {
    let audio = root().join("tests/fixtures/audio");
    let inputs: Vec<Input> =
        ["speech_7s.flac", "speech_30s.flac", "formats/text.wav", "speech_45s.flac", "speech_7s_44k_stereo.flac"]
            .iter()
            .map(|f| Input::file(audio.join(f)))
            .collect();
    let log = Log::default();
    let r = count_files(&inputs, &Profile::Qwen2Audio, 2, &log).unwrap();
    assert_eq!(r.files.iter().map(|f| f.total).collect::<Vec<_>>(), [175, 750, 750, 175]);
    assert_eq!((r.totals.files, r.totals.failed, r.totals.total, r.totals.tokens.clone()), (4, 1, 1850, vec![1850]));
    assert_eq!((r.profile.as_str(), r.sample_rate), ("qwen2-audio", 16_000));
    assert_eq!(r.failed.len(), 1);
    assert_eq!(r.failed[0].file, audio.join("formats/text.wav"));
    assert!(
        r.failed[0].error.contains("text.wav") && r.failed[0].error.contains("not a recognised audio"),
        "{:?}",
        r.failed
    );
    assert_eq!(r.histogram.iter().map(|b| b.files).sum::<usize>(), 4);
    assert_eq!(r.histogram[3].files, 2, "two 7 s clips in [5, 10)");
    assert_eq!(log.phases(), (vec![("begin count 5 files".to_string(), 5)], true));

    let lengths: Vec<u64> = r.files.iter().map(|f| f.samples).collect();
    let from_lengths = count_lengths(&Profile::Qwen2Audio, &lengths);
    for (f, c) in r.files.iter().zip(&from_lengths) {
        assert_eq!((f.total, &f.tokens, f.duration_s), (c.total, &c.tokens, c.duration_s));
    }

    // The JSON document: its keys in order, failures without the skipped path.
    let text = serde_json::to_string(&r).unwrap();
    let at: Vec<usize> = ["profile", "sample_rate", "files", "failed", "totals", "histogram"]
        .iter()
        .map(|k| text.find(&format!("\"{k}\":")).unwrap())
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["failed"][0].as_object().unwrap().keys().collect::<Vec<_>>(), ["error", "path"]);
    let snac = count_files(&inputs[..1], &Profile::Snac24, 1, &Silent).unwrap();
    assert_eq!(snac.files[0].tokens.len(), 3);
    assert_eq!(snac.totals.tokens.len(), 3);
}
