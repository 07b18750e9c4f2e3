//! `audiotok params` end to end: the figures of tools/gen_params_fixtures.py's references, the
//! table, --json, and refusals that name the file.

#![allow(clippy::unwrap_used)] // Test helpers panic on broken fixtures by design.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn audiotok() -> Command {
    Command::cargo_bin("audiotok").unwrap()
}

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/params").join(rel)
}

fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("reference.json")).unwrap()).unwrap()
}

#[test]
fn json_report_of_the_asr_stack_equals_the_references() {
    let want = &reference()["tiny"]["asr-stack"];
    let out = audiotok()
        .arg("params")
        .arg("--part")
        .arg(format!("encoder={}", fixture("tiny/hubert").display()))
        .arg("--part")
        .arg(format!("projector={}", fixture("tiny/projector/projector.safetensors").display()))
        .arg("--part")
        .arg(format!("decoder={}", fixture("tiny/qwen3-sharded").display()))
        .args(["--train", "projector", "--lora", "r=8,alpha=16,targets=q_proj,k_proj,part=decoder", "--json"])
        .assert()
        .success();
    let r: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let u = |k: &str| want[k].as_u64().unwrap();
    assert_eq!(r["total"].as_u64().unwrap(), u("encoder") + u("projector") + u("decoder_all"));
    assert_eq!(r["trainable"].as_u64().unwrap(), u("projector") + u("decoder_trainable"));
    let names: Vec<&str> = r["parts"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["encoder", "projector", "decoder"]);
    assert_eq!(r["parts"][0]["components"][0]["name"], "feature_cnn");
}

#[test]
fn table_prints_components_tied_weights_and_peft_s_line() {
    let want = &reference()["tiny"]["qwen2-tied-bin"];
    let lora = &want["lora"][0];
    let line = format!("trainable params: {} || all params: {} ||", lora["trainable"].as_u64().unwrap(), {
        let n = lora["all"].as_u64().unwrap();
        format!("{},{:03}", n / 1000, n % 1000)
    });
    audiotok()
        .arg("params")
        .arg(fixture("tiny/qwen2-tied-bin"))
        .args(["--lora", "r=8,alpha=16,targets=q_proj,k_proj"])
        .assert()
        .success()
        .stdout(predicate::str::contains("qwen2-tied-bin ("))
        .stdout(predicate::str::contains(
            "tied: lm_head.weight = model.embed_tokens.weight (one storage; counted once)",
        ))
        .stdout(predicate::str::contains(line))
        .stdout(predicate::str::contains("embeddings"));
}

#[test]
fn config_only_prints_the_published_total() {
    audiotok()
        .args(["params", "--config-only", "--json"])
        .arg(fixture("published/qwen3-8b"))
        .assert()
        .success()
        .stdout(predicate::str::contains("\"total\": 8190735360"));
}

#[test]
fn a_pickle_that_runs_code_is_refused_naming_the_file() {
    let marker = Path::new("/tmp/audiotok-params-pwned");
    let _ = std::fs::remove_file(marker);
    audiotok()
        .arg("params")
        .arg(fixture("hostile/pytorch_model.bin"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("hostile/pytorch_model.bin"))
        .stderr(predicate::str::contains("posix.system"));
    assert!(!marker.exists());
}

#[test]
fn a_lying_safetensors_header_is_refused_naming_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("lie.safetensors");
    let header = br#"{"w":{"dtype":"F32","shape":[1000000],"data_offsets":[0,4000000]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&[0u8; 16]);
    std::fs::write(&p, bytes).unwrap();
    audiotok()
        .arg("params")
        .arg(&p)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("lie.safetensors: tensor w: data_offsets [0, 4000000] run past the end"));
    audiotok()
        .args(["params", "--lora", "r=8"])
        .arg(&p)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("targets=NAME"));
    audiotok()
        .arg("params")
        .arg(dir.path().join("nope"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("nope: no such file"));
}
