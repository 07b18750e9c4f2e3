//! Sources as inputs of `info`, `count`, `features`: the outputs equal those of the same clips as
//! files, byte for byte; records carry their ids and metadata; bad rows are recorded, the run goes
//! on. Fixtures: tests/fixtures/sources (tools/gen_source_fixtures.py).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

fn fx(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/sources").join(rel)
}

fn audiotok() -> Command {
    Command::cargo_bin("audiotok").unwrap()
}

fn clips() -> Vec<PathBuf> {
    ["clips/c0.flac", "clips/c1.wav", "clips/c2.mp3", "clips/c3.flac"].iter().map(|c| fx(c)).collect()
}

fn manifest(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("manifest.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn features(out: &Path, inputs: &[PathBuf], extra: &[&str]) -> assert_cmd::assert::Assert {
    audiotok()
        .args(["features", "--kind", "whisper-80", "--padding", "longest", "-j", "2", "--out"])
        .arg(out)
        .args(extra)
        .args(inputs)
        .assert()
}

#[test]
fn features_of_parquet_rows_are_the_bytes_of_the_files() {
    let tmp = tempfile::tempdir().unwrap();
    let (from_files, from_rows) = (tmp.path().join("files"), tmp.path().join("rows"));
    features(&from_files, &clips(), &[]).success();
    features(&from_rows, &[fx("parquet")], &[]).success();
    let m = manifest(&from_rows);
    assert_eq!(m.len(), 4);
    for (k, clip) in clips().iter().enumerate() {
        let (shard, row) = if k < 3 { ("train-00000-of-00002", k) } else { ("train-00001-of-00002", 0) };
        let rec = &m[k];
        assert_eq!(rec["input"], format!("{}#{row}", fx(&format!("parquet/{shard}.parquet")).display()));
        assert_eq!(rec["output"], format!("{shard}/{row}.npy"));
        assert_eq!(rec["status"], "ok");
        assert!(rec["meta"]["text"].is_string());
        let stem = clip.file_stem().unwrap().to_str().unwrap();
        let a = std::fs::read(from_files.join(format!("{stem}.npy"))).unwrap();
        let b = std::fs::read(from_rows.join(format!("{shard}/{row}.npy"))).unwrap();
        assert_eq!(a, b, "{stem}");
    }
    // Rerun: identical bytes.
    let again = tmp.path().join("again");
    features(&again, &[fx("parquet")], &[]).success();
    assert_eq!(
        std::fs::read(again.join("manifest.jsonl")).unwrap(),
        std::fs::read(from_rows.join("manifest.jsonl")).unwrap()
    );
}

#[test]
fn features_of_tars_save_to_disk_and_manifests_match_the_files() {
    let tmp = tempfile::tempdir().unwrap();
    let files = tmp.path().join("files");
    features(&files, &clips(), &[]).success();
    for (src, names) in [
        (
            "wds/shard-000000.tar.gz",
            [
                "shard-000000/sample0000",
                "shard-000000/sample0001",
                "shard-000000/sample0002",
                "shard-000000/sample0003",
            ],
        ),
        ("saved", ["data-00000-of-00001/0", "data-00000-of-00001/1", "data-00000-of-00001/2", "data-00000-of-00001/3"]),
    ] {
        let out = tmp.path().join(src.replace('/', "_"));
        features(&out, &[fx(src)], &[]).success();
        for (clip, name) in clips().iter().zip(names) {
            let stem = clip.file_stem().unwrap().to_str().unwrap();
            assert_eq!(
                std::fs::read(files.join(format!("{stem}.npy"))).unwrap(),
                std::fs::read(out.join(format!("{name}.npy"))).unwrap(),
                "{src} {name}"
            );
        }
    }
    // A CSV manifest: whole files and segments; the missing file is a recorded failure.
    let out = tmp.path().join("csv");
    features(&out, &[fx("manifest.csv")], &[]).code(1).stderr(predicates::str::contains("missing.flac"));
    let m = manifest(&out);
    assert_eq!(m.iter().map(|r| r["status"].as_str().unwrap()).collect::<Vec<_>>(), ["ok", "ok", "ok", "failed", "ok"]);
    assert_eq!(m[1]["samples"], 20000);
    assert_eq!(m[1]["meta"]["text"], "brown fox");
    assert_eq!(std::fs::read(files.join("c0.npy")).unwrap(), std::fs::read(out.join("manifest/0.npy")).unwrap());
}

#[test]
fn bad_rows_are_recorded_and_the_run_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o");
    let bad = fx("bad.parquet");
    features(&out, &[bad.clone(), fx("noaudio.parquet")], &[])
        .code(1)
        .stderr(predicates::str::contains("features: 1 done, 3 failed"));
    let m = manifest(&out);
    assert_eq!(m.len(), 4);
    assert_eq!(m[0]["status"], "ok");
    assert!(m[1]["error"].as_str().unwrap().starts_with(&format!("{}#1: unsupported audio", bad.display())));
    assert_eq!(m[2]["error"], format!("{}#2: the audio has neither bytes nor a path", bad.display()));
    assert!(m[3]["error"].as_str().unwrap().contains("noaudio.parquet: no audio column"));
    features(&tmp.path().join("o2"), &[bad], &["--keep-going"]).success();
}

#[test]
fn count_and_info_of_sources_equal_those_of_the_files() {
    let count = |inputs: &[PathBuf]| -> Value {
        let out = audiotok().args(["count", "--profile", "qwen2-audio", "--json"]).args(inputs).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let files = count(&clips());
    for src in ["parquet", "saved", "wds/shard-000000.tar", "wds/shard-000000.tar.gz"] {
        let rows = count(&[fx(src)]);
        assert_eq!(rows["totals"], files["totals"], "{src}");
        assert_eq!(rows["histogram"], files["histogram"], "{src}");
        let tokens = |v: &Value| v["files"].as_array().unwrap().iter().map(|f| f["tokens"].clone()).collect::<Vec<_>>();
        assert_eq!(tokens(&rows), tokens(&files), "{src}");
    }
    let cuts = count(&[fx("lhotse/cuts.jsonl.gz")]);
    let paths: Vec<&str> = cuts["files"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["long-0", "long-1", "c1-right"]);
    assert_eq!(cuts["files"][0]["samples"], 16000);

    let info = |inputs: &[PathBuf]| -> Vec<Value> {
        let out = audiotok().args(["info", "--json"]).args(inputs).output().unwrap();
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    let want = info(&clips());
    let got = info(&[fx("wds/shard-000000.tar")]);
    for (g, w) in got.iter().zip(&want) {
        for k in ["container", "codec", "sample_rate", "channels", "frames"] {
            assert_eq!(g[k], w[k], "{k}");
        }
        assert!(g["path"].as_str().unwrap().contains("shard-000000.tar#sample000"));
    }
    audiotok()
        .args(["info"])
        .arg(fx("wds/truncated.tar"))
        .assert()
        .code(1)
        .stdout(predicates::str::contains("truncated: member sample0003.flac"));
}

#[test]
fn pack_from_parquet_rows_equals_pack_from_the_extracted_files() {
    let tok = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/pack/qwen2-tokenizer");
    assert!(tok.join("vocab.json").is_file(), "{} missing: run tools/fetch_qwen_tokenizer.sh", tok.display());
    let tmp = tempfile::tempdir().unwrap();
    // The same rows, written by hand over the extracted files.
    let texts = ["hello world", "good day", "one two three", "audio tokens"];
    let rows = tmp.path().join("rows.jsonl");
    let lines: Vec<String> = clips()
        .iter()
        .zip(texts)
        .map(|(c, t)| {
            serde_json::json!({"text": format!("<|audio_bos|><|AUDIO|><|audio_eos|>{t}"), "audio": c.display().to_string()})
                .to_string()
        })
        .collect();
    std::fs::write(&rows, lines.join("\n") + "\n").unwrap();
    let pack = |out: &Path, extra: &[&str], inputs: &[PathBuf]| {
        audiotok()
            .args(["pack", "--block-size", "64", "--tokenizer"])
            .arg(&tok)
            .arg("--out")
            .arg(out)
            .args(extra)
            .args(inputs)
            .assert()
            .success();
    };
    let (a, b) = (tmp.path().join("files"), tmp.path().join("parquet"));
    pack(&a, &[], &[rows]);
    pack(&b, &["--text-column", "text"], &[fx("parquet")]);
    let (da, db) = (audiotok_mds::MdsDataset::open(&a).unwrap(), audiotok_mds::MdsDataset::open(&b).unwrap());
    assert_eq!(da.len(), db.len());
    assert!(da.len() >= 2);
    let ids: Vec<String> = (0..3)
        .map(|r| format!("{}#{r}", fx("parquet/train-00000-of-00002.parquet").display()))
        .chain([format!("{}#0", fx("parquet/train-00001-of-00002.parquet").display())])
        .collect();
    for i in 0..da.len() {
        let (mut sa, sb) = (da.get(i).unwrap(), db.get(i).unwrap());
        // Every column equal, the audio names mapped from files to record ids.
        if let Some(audiotok_mds::Value::Json(j)) = sa.get_mut("audio") {
            let mut text = j.to_python(false);
            for (c, id) in clips().iter().zip(&ids) {
                text = text.replace(&c.display().to_string(), id);
            }
            let audio = audiotok_mds::Value::Json(audiotok_mds::Json::parse(&text).unwrap());
            sa.insert("audio".into(), audio);
        }
        assert_eq!(sa, sb, "block {i}");
    }
    // A template naming a field the records lack: every row rejected, naming the field.
    let c = tmp.path().join("bad");
    audiotok()
        .args(["pack", "--tokenizer"])
        .arg(&tok)
        .arg("--out")
        .arg(&c)
        .args(["--text-template", "<|AUDIO|>{sentence}"])
        .arg(fx("parquet"))
        .assert()
        .code(1);
    let rejects = std::fs::read_to_string(c.join("rejects.jsonl")).unwrap();
    assert_eq!(rejects.lines().count(), 4);
    assert!(rejects.contains("no field \\\"sentence\\\" in the record"), "{rejects}");
}

#[test]
fn encode_from_a_tar_and_a_manifest_equals_encoding_the_files() {
    use audiotok_tokens::store::StoreReader;
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/snac/tiny24");
    let tmp = tempfile::tempdir().unwrap();
    let encode = |store: &Path, inputs: &[PathBuf]| {
        let mut c = audiotok();
        c.args(["encode", "--model"]).arg(&model).args(["--segment-length", "0.4", "--output"]).arg(store);
        c.arg("--input").args(inputs);
        c.assert().success();
        StoreReader::open(store).unwrap().records().collect::<Result<Vec<_>, _>>().unwrap()
    };
    let files = encode(&tmp.path().join("files"), &clips());
    let tar = fx("wds/shard-000000.tar.gz");
    let rows = encode(&tmp.path().join("tar"), std::slice::from_ref(&tar));
    assert_eq!(files.len(), rows.len());
    for (f, r) in files.iter().zip(&rows) {
        assert_eq!((&f.scales, f.duration), (&r.scales, r.duration));
        assert!(r.file_path.starts_with(&format!("{}#sample000", tar.display())), "{}", r.file_path);
    }
    // A segment of a manifest line: the codes of its samples only, named by the record.
    let cuts = encode(&tmp.path().join("cuts"), &[fx("lhotse/cuts.jsonl.gz")]);
    let names: Vec<&str> = cuts.iter().map(|r| r.file_path.as_str()).collect();
    assert_eq!(names, ["long-0#0", "long-0#1", "long-0#2", "long-1#0", "long-1#1", "c1-right#0", "c1-right#1"]);
}

#[test]
fn embed_of_save_to_disk_rows_is_the_bytes_of_the_files() {
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/embed/hubert_group");
    let tmp = tempfile::tempdir().unwrap();
    let embed = |out: &Path, inputs: &[PathBuf]| {
        audiotok()
            .args(["embed", "--model"])
            .arg(&model)
            .args(["-j", "1", "--out"])
            .arg(out)
            .args(inputs)
            .assert()
            .success();
    };
    let (a, b) = (tmp.path().join("files"), tmp.path().join("saved"));
    embed(&a, &clips());
    embed(&b, &[fx("saved")]);
    for (k, clip) in clips().iter().enumerate() {
        let stem = clip.file_stem().unwrap().to_str().unwrap();
        assert_eq!(
            std::fs::read(a.join(format!("{stem}.npy"))).unwrap(),
            std::fs::read(b.join(format!("data-00000-of-00001/{k}.npy"))).unwrap(),
            "{stem}"
        );
    }
    let m = manifest(&b);
    assert_eq!(m[2]["input"], format!("{}#2", fx("saved/data-00000-of-00001.arrow").display()));
}
