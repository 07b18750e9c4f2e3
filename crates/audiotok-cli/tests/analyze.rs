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
