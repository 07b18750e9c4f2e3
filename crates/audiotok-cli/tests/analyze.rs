//! `audiotok analyze` end to end: exact figures on a hand-computable input, stores, plots, errors.

#![allow(clippy::unwrap_used)] // Test helpers panic on broken fixtures by design.

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn audiotok() -> Command {
    Command::cargo_bin("audiotok").unwrap()
}

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tokens").join(name)
}

fn json_of(args: &[&str], input: &Path) -> Value {
    let out = audiotok().arg("analyze").arg(input).args(args).args(["--json", "-", "-q"]).assert().success();
    serde_json::from_slice(&out.get_output().stdout).unwrap()
}

#[test]
fn exact_figures_on_a_small_text_input() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.txt");
    std::fs::write(&p, "1 1 1 2 2 3\n\n3 1\n").unwrap();
    let r = json_of(&["--codebook-size", "8"], &p);
    assert_eq!(r["sequences"], 2);
    assert_eq!(r["num_scales"], 1);
    assert!(r["interleaved"].is_null());
    let s = &r["scales"][0];
    assert_eq!(s["total_tokens"], 8);
    assert_eq!(s["unique_tokens"], 3);
    assert_eq!(s["utilisation"], 0.375);
    assert_eq!(s["entropy_bits"], 1.5);
    assert_eq!(s["repetition_rate"], 0.5);
    assert_eq!(s["max_run_length"], 3);
    assert_eq!(s["run_length_histogram"], serde_json::json!([[1, 3], [2, 1], [3, 1]]));
    assert_eq!(s["unique_bigrams"], 5);
    assert_eq!(s["ngrams"][1]["total"], 6);
    assert_eq!(s["ngrams"][2]["unique"], 4);
    assert_eq!(s["top_k_coverage"][0], serde_json::json!([1, 0.5]));
    assert_eq!(r["recommendation"]["variant"], "rl");

    // The human report names the bands and the variant.
    audiotok()
        .arg("analyze")
        .arg(&p)
        .assert()
        .success()
        .stdout(predicate::str::contains("Gini").and(predicate::str::contains("Try --variant rl first.")));
}

#[test]
fn store_scales_interleaved_and_plots() {
    let dir = tempfile::tempdir().unwrap();
    let plots = dir.path().join("plots");
    let json = dir.path().join("r.json");
    audiotok()
        .arg("analyze")
        .arg(fixture("pyarrow_store"))
        .arg("--plots")
        .arg(&plots)
        .arg("--json")
        .arg(&json)
        .assert()
        .success()
        .stdout(predicate::str::contains("== interleaved =="));
    let r: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(r["num_scales"], 3);
    assert_eq!(r["scale_ratios"], serde_json::json!([1, 2, 4]));
    // 15 frames of 1 + 2 + 4 codes.
    assert_eq!(r["scales"][0]["total_tokens"], 15);
    assert_eq!(r["scales"][2]["total_tokens"], 60);
    assert_eq!(r["interleaved"]["total_tokens"], 105);
    for name in ["zipf.png", "runs_scale_0.png", "runs_scale_1.png", "runs_scale_2.png", "runs_interleaved.png"] {
        let f = std::fs::File::open(plots.join(name)).unwrap();
        let reader = png::Decoder::new(std::io::BufReader::new(f)).read_info().unwrap();
        let info = reader.info();
        assert_eq!((info.width, info.height), (900, 560), "{name}");
    }

    // One scale only: no interleaved stream.
    let r = json_of(&["--scale", "1"], &fixture("pyarrow_store"));
    assert_eq!(r["scales"].as_array().unwrap().len(), 1);
    assert_eq!(r["scales"][0]["name"], "scale 1");
    assert_eq!(r["scales"][0]["total_tokens"], 30);
    assert!(r["interleaved"].is_null());
}

#[test]
fn bad_input_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.txt");
    std::fs::write(&p, "1 2\n3 -1\n").unwrap();
    audiotok()
        .arg("analyze")
        .arg(&p)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bad.txt: line 2: token 2 '-1' is a negative id"));
    std::fs::write(&p, "1 2\n3 9\n").unwrap();
    audiotok()
        .arg("analyze")
        .arg(&p)
        .args(["--codebook-size", "8"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bad.txt: line 2: token 2 '9' is not below the codebook size 8"));
    std::fs::write(&p, "").unwrap();
    audiotok().arg("analyze").arg(&p).assert().code(2).stderr(predicate::str::contains("bad.txt: no tokens"));
    audiotok()
        .arg("analyze")
        .arg(fixture("bad_negative_code.parquet"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bad_negative_code.parquet: row 1"));
    audiotok()
        .arg("analyze")
        .arg(fixture("pyarrow_store"))
        .args(["--scale", "5"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("scale 5 requested, the input has 3 scale(s)"));
}

/// `lines` lines of 2000 pseudo-random codes below 1000 (high entropy: nearly every n-gram of
/// order 3 and up is distinct), written to `dir/codes.txt`.
fn random_codes(dir: &Path, lines: usize, seed: u64) -> std::path::PathBuf {
    let mut x = seed;
    let mut text = String::new();
    for _ in 0..lines {
        let line: Vec<String> = (0..2000)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((x >> 33) % 1000).to_string()
            })
            .collect();
        text += &line.join(" ");
        text.push('\n');
    }
    let p = dir.join("codes.txt");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn memory_limit_spills_without_changing_figures() {
    let dir = tempfile::tempdir().unwrap();
    let spill = dir.path().join("spill");
    std::fs::create_dir(&spill).unwrap();
    // 60 lines of 2000 pseudo-random codes: about 120k distinct n-grams per order.
    let p = random_codes(dir.path(), 60, 7);
    let free = json_of(&["--memory", "unlimited"], &p);
    let mut tight = json_of(&["--memory", "1M", "--tmp-dir", spill.to_str().unwrap()], &p);
    assert_eq!(free["counting"]["spilled_runs"], 0);
    assert!(tight["counting"]["spilled_runs"].as_u64().unwrap() > 0, "{}", tight["counting"]);
    assert_eq!(tight["counting"]["memory_limit"], 1 << 20);
    tight["counting"] = free["counting"].clone();
    assert_eq!(tight, free);
    assert_eq!(std::fs::read_dir(&spill).unwrap().count(), 0);
    // The human summary says what was spilled; bad sizes and directories are refused.
    audiotok()
        .arg("analyze")
        .arg(&p)
        .args(["--memory", "1M", "--tmp-dir", spill.to_str().unwrap()])
        .assert()
        .success()
        .stderr(predicate::str::contains("n-gram counts spilled to disk"));
    audiotok()
        .arg("analyze")
        .arg(&p)
        .args(["--memory", "lots"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("expected a size such as 512M or 2G"));
    audiotok()
        .arg("analyze")
        .arg(&p)
        .args(["--tmp-dir", dir.path().join("nope").to_str().unwrap()])
        .assert()
        .failure()
        .stderr(predicate::str::contains("nope: not a directory"));
}

/// A tight --memory on a few MB of high-entropy codes spills hundreds of runs; the runs of a
/// counter are merged by levels, so they stay few open files even under a modest open-file limit
/// (64 here; before that merging the analysis failed with "Too many open files").
#[cfg(unix)]
#[test]
fn many_spilled_runs_do_not_exhaust_open_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = random_codes(dir.path(), 300, 11);
    let free = json_of(&["--memory", "unlimited"], &p);
    let bin = assert_cmd::cargo::cargo_bin("audiotok");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 64 && exec \"$0\" analyze \"$1\" --memory 1M --json - -q")
        .arg(&bin)
        .arg(&p)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut tight: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(tight["counting"]["spilled_runs"].as_u64().unwrap() > 0);
    tight["counting"] = free["counting"].clone();
    assert_eq!(tight, free);
}

/// An 8 KB `.npy` whose header claims 10^13 int64 elements (issue 16, bug 1).
fn npy_bomb(dir: &Path) -> std::path::PathBuf {
    let h = "{'descr': '<i8', 'fortran_order': False, 'shape': (10000000000000,), }\n";
    let mut v = b"\x93NUMPY\x01\x00".to_vec();
    v.extend_from_slice(&(h.len() as u16).to_le_bytes());
    v.extend_from_slice(h.as_bytes());
    v.resize(8192, 1);
    let p = dir.join("bomb.npy");
    std::fs::write(&p, v).unwrap();
    p
}

#[test]
fn npy_header_claiming_more_than_the_file_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = npy_bomb(dir.path());
    let want = "bomb.npy: header: npy: shape [10000000000000] needs 80000000000000 bytes of data, the file holds 8111";
    audiotok()
        .arg("analyze")
        .arg(&p)
        .timeout(std::time::Duration::from_secs(60))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(want));
    audiotok()
        .args(["bpe", "train", "--merges", "5", "--input"])
        .arg(&p)
        .arg("--out")
        .arg(dir.path().join("m.json"))
        .timeout(std::time::Duration::from_secs(60))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(want));
}

/// Every numeric option is bounded: a value outside its range is a clap error naming the flag
/// and the range (issue 16), before any input is read.
#[test]
fn numeric_options_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.txt");
    std::fs::write(&p, "1 2 3\n").unwrap();
    let cases: [(&str, &str, &str); 7] = [
        ("--memory", "0", "a size from 1M to 64T"),
        ("--memory", "1", "a size from 1M to 64T"),
        ("--memory", "1e30", "a size from 1M to 64T"),
        ("--memory", "65T", "a size from 1M to 64T"),
        ("--codebook-size", "0", "0 is not in 1..=4294967295"),
        ("--max-n", "0", "0 is not in 1..=7"),
        ("--max-n", "100000", "100000 is not in 1..=7"),
    ];
    for (flag, value, why) in cases {
        audiotok()
            .arg("analyze")
            .arg(&p)
            .args([flag, value])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(format!("invalid value '{value}' for '{flag} <")))
            .stderr(predicate::str::contains(why));
    }
    // The bounds themselves are accepted.
    audiotok().arg("analyze").arg(&p).args(["--memory", "1M", "--max-n", "7", "-q"]).assert().success();
}

/// Peak resident memory (VmHWM, KiB) of `audiotok analyze ARGS INPUT`, polled from /proc while it
/// runs (VmHWM only grows, so the last reading before exit is the peak up to then).
#[cfg(target_os = "linux")]
fn peak_rss_kib(args: &[&str], input: &Path) -> u64 {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("audiotok"))
        .arg("analyze")
        .arg(input)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    loop {
        if let Ok(text) = std::fs::read_to_string(&status) {
            if let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak = peak.max(kib);
            }
        }
        if let Some(st) = child.try_wait().unwrap() {
            assert!(st.success(), "analyze failed: {st}");
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(peak > 0, "no memory reading of the child");
    peak
}

/// One line of 8M tokens (16 MB of text): analyze reads it in bounded pieces, so its peak memory
/// is that of the same tokens in lines of 1000 plus a few MiB, not that plus the line as a String
/// and a Vec<u32> (about 3x the line: 48 MB more).
#[cfg(target_os = "linux")]
#[test]
fn one_huge_line_costs_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let lines = dir.path().join("lines.txt");
    let mut text = ("7 ".repeat(999) + "7\n").repeat(8 << 10);
    std::fs::write(&lines, &text).unwrap();
    let big = dir.path().join("big.txt");
    text = text.replace('\n', " ");
    text.push('\n');
    std::fs::write(&big, text).unwrap();
    let args = ["--max-n", "1", "--memory", "4M", "-q"];
    let base = peak_rss_kib(&args, &lines);
    let peak = peak_rss_kib(&args, &big);
    assert!(peak < base + (16 << 10), "peak {peak} KiB on one 16 MB line, {base} KiB on lines of 1000 tokens");
}
