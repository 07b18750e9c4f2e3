//! `audiotok mds` on datasets written by Python's `streaming` (committed fixtures) and by ours.

#![allow(clippy::unwrap_used)] // Test helpers panic on broken fixtures by design.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use audiotok_mds::{MdsWriter, NdArray, Sample, Value, WriterOptions};
use predicates::prelude::*;

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/mds").join(rel)
}

fn audiotok() -> Command {
    Command::cargo_bin("audiotok").unwrap()
}

/// `audiotok mds merge PARTS... --out OUT` (with a watchdog: a FIFO inside a partition must never
/// block it).
fn merge<P: AsRef<std::ffi::OsStr>>(
    parts: impl IntoIterator<Item = P>,
    out: impl AsRef<std::ffi::OsStr>,
) -> assert_cmd::assert::Assert {
    audiotok()
        .args(["mds", "merge"])
        .args(parts)
        .arg("--out")
        .arg(out)
        .timeout(std::time::Duration::from_secs(60))
        .assert()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Two packed blocks of 8 tokens: documents of 3 and 4 tokens, then one of 8.
fn packed(dir: &Path) {
    let cols = [("input_ids", "ndarray:int32"), ("seq_lengths", "ndarray:int32"), ("audio", "str")];
    let mut w = MdsWriter::new(dir, cols, WriterOptions::default()).unwrap();
    for (lengths, audio) in [(vec![3i32, 4], r#"["a.wav", "b.wav"]"#), (vec![8], r#"["c.flac"]"#)] {
        let mut s = Sample::new();
        s.insert("input_ids".into(), Value::NdArray(NdArray::from_vec(&[7i32; 8])));
        s.insert("seq_lengths".into(), Value::NdArray(NdArray::from_vec(&lengths)));
        s.insert("audio".into(), Value::Str(audio.into()));
        w.write(&s).unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn inspect_reports_packing_statistics() {
    let dir = tempfile::tempdir().unwrap();
    packed(dir.path());
    let out = audiotok().args(["mds", "inspect", "--json"]).arg(dir.path()).assert().success();
    let r: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(r["samples"], 2);
    let p = &r["packing"];
    assert_eq!((p["block_tokens"].as_u64(), p["real_tokens"].as_u64()), (Some(16), Some(15)));
    assert_eq!((p["documents"].as_u64(), p["audio_files"].as_u64()), (Some(3), Some(3)));
    assert!((p["efficiency"].as_f64().unwrap() - 15.0 / 16.0).abs() < 1e-12);
    audiotok()
        .args(["mds", "inspect"])
        .arg(fixture("zstd"))
        .assert()
        .success()
        .stdout(predicate::str::contains("compression: zstd"));
}

#[test]
fn verify_accepts_python_shards_and_catches_corruption() {
    audiotok().args(["mds", "verify"]).arg(fixture("zstd7_hashed")).assert().success();
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture("hashed"), dir.path());
    let shard = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("shard."))
        .unwrap();
    let mut bytes = std::fs::read(&shard).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(&shard, bytes).unwrap();
    audiotok().args(["mds", "verify"]).arg(dir.path()).assert().code(1).stderr(predicate::str::contains("FAILED"));
}

#[test]
fn merge_copies_outside_partitions_and_matches_streaming() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    for part in ["part10", "part2", "part_a"] {
        copy_dir(&fixture(&format!("partitioned/{part}")), &src.join(part));
    }
    let out = dir.path().join("merged");
    merge(["part10", "part2", "part_a"].map(|p| src.join(p)), &out).success();
    // streaming's merge_index over the same partitions wrote the committed index.json.
    assert_eq!(
        std::fs::read(out.join("index.json")).unwrap(),
        std::fs::read(fixture("partitioned/index.json")).unwrap()
    );
    audiotok().args(["mds", "verify"]).arg(&out).assert().success();
}

#[test]
fn show_prints_one_sample() {
    let dir = tempfile::tempdir().unwrap();
    packed(dir.path());
    audiotok()
        .args(["mds", "show", "--index", "1"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("seq_lengths: I32 [1] [8]").and(predicate::str::contains("c.flac")));
    audiotok().args(["mds", "show", "--index", "2"]).arg(dir.path()).assert().code(2);
}

#[test]
fn show_draws_the_block_diagonal_mask() {
    let dir = tempfile::tempdir().unwrap();
    packed(dir.path());
    let png_path = dir.path().join("mask.png");
    audiotok()
        .args(["mds", "show", "--index", "0", "--mask-size", "8", "--mask-png"])
        .arg(&png_path)
        .arg(dir.path())
        .assert()
        .success();
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png_path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    // The 8 x 8 mask enlarged 50 times (to 400 px) at (110, 60) inside a figure with axes.
    let (w, left, top, s) = (info.width as usize, 110usize, 60usize, 50usize);
    assert_eq!((info.width, info.height), (560, 60 + 400 + 110));
    let px = |x: usize, y: usize| {
        let i = (y * w + x) * 3;
        [buf[i], buf[i + 1], buf[i + 2]]
    };
    // Documents of 3 and 4 tokens, then one padding token: row q sees columns of its own document
    // up to q.
    let want: [&str; 8] =
        ["#.......", "##......", "###.....", "...#....", "...##...", "...###..", "...####.", "________"];
    for (q, row) in want.iter().enumerate() {
        let got: String = (0..8)
            .map(|c| match px(left + c * s + s / 2, top + q * s + s / 2) {
                [255, 255, 255] => '#',
                [64, 64, 64] => '_',
                [0, 0, 0] => '.',
                _ => '?',
            })
            .collect();
        assert_eq!(&got, row, "row {q}");
    }
    // The second document starts at token 3 (a red mark above column 3), the padding at token 7 (grey).
    assert_eq!(px(left + 3 * s, top - 6), [214, 39, 40]);
    assert_eq!(px(left + 7 * s, top - 6), [128, 128, 128]);
    assert_eq!(px(left + 5 * s, top - 6), [255, 255, 255]);
}

/// Every file below `dir` with its size, sorted: what a command must leave alone.
fn tree(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            if m.is_dir() {
                stack.push(e.path());
            }
            out.push((e.path().strip_prefix(dir).unwrap().to_path_buf(), if m.is_dir() { 0 } else { m.len() }));
        }
    }
    out.sort();
    out
}

#[test]
fn merge_refuses_an_out_that_is_or_is_inside_a_partition() {
    let dir = tempfile::tempdir().unwrap();
    let part = dir.path().join("part2");
    copy_dir(&fixture("partitioned/part2"), &part);
    let alias = dir.path().join("alias");
    std::os::unix::fs::symlink("part2", &alias).unwrap();
    let before = tree(dir.path());
    for out in [part.clone(), part.join("merged"), alias.join("deep/merged")] {
        merge([&part], &out).code(2).stderr(predicate::str::contains("--out").and(predicate::str::contains("part2")));
        assert_eq!(tree(dir.path()), before, "--out {}", out.display());
    }
    // An --out holding a partition deeper than one level would merge it twice.
    let out = dir.path().join("root");
    copy_dir(&fixture("partitioned/part2"), &out.join("a/part2"));
    let before = tree(dir.path());
    merge([out.join("a/part2")], &out).code(2).stderr(predicate::str::contains("--out"));
    assert_eq!(tree(dir.path()), before);
}

#[test]
fn merge_checks_every_partition_before_copying_and_leaves_nothing_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    copy_dir(&fixture("partitioned/part10"), &src.join("part10"));
    copy_dir(&fixture("partitioned/part2"), &src.join("part2"));
    std::fs::write(src.join("part2/index.json"), b"{\"version\": 2, \"shards\": [").unwrap();
    let out = dir.path().join("merged");
    merge([src.join("part10"), src.join("part2")], &out).code(2).stderr(predicate::str::contains("part2"));
    assert!(!out.exists(), "a half-made {} was left", out.display());
    assert_eq!(names_in(dir.path()), ["src"]);

    // Into an existing --out: what was there stays, nothing is added.
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep.txt"), b"mine").unwrap();
    merge([src.join("part10"), src.join("part2")], &out).code(2);
    assert_eq!(names_in(&out), ["keep.txt"]);

    // Two partitions with one folder name would collide inside --out: refused before copying.
    let other = dir.path().join("other");
    copy_dir(&fixture("partitioned/part10"), &other.join("part10"));
    merge([src.join("part10"), other.join("part10")], &out).code(2).stderr(predicate::str::contains("part10"));
    assert_eq!(names_in(&out), ["keep.txt"]);
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn verify_rejects_an_index_listing_one_shard_twice() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture("partitioned/part2"), dir.path());
    let text = std::fs::read_to_string(dir.path().join("index.json")).unwrap();
    let (head, rest) = text.split_once("[{").unwrap();
    let (shard, tail) = rest.rsplit_once("}]").unwrap();
    let tripled = format!("{head}[{{{shard}}}, {{{shard}}}, {{{shard}}}]{tail}");
    std::fs::write(dir.path().join("index.json"), tripled).unwrap();
    audiotok()
        .args(["mds", "verify"])
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("shard.00000.mds").and(predicate::str::contains("listed 3 times")));
}

#[test]
fn merge_removes_what_it_copied_when_a_later_copy_fails() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    copy_dir(&fixture("partitioned/part10"), &src.join("part10"));
    copy_dir(&fixture("partitioned/part2"), &src.join("part2"));
    // A FIFO in a partition would block a copy forever: it is refused, after part10 was copied.
    assert!(std::process::Command::new("mkfifo").arg(src.join("part2/zz_pipe")).status().unwrap().success());
    let out = dir.path().join("merged");
    std::fs::create_dir(&out).unwrap();
    merge([src.join("part10"), src.join("part2")], &out)
        .code(2)
        .stderr(predicate::str::contains("zz_pipe").and(predicate::str::contains("not a regular file")));
    assert_eq!(names_in(&out), Vec::<String>::new());
}

#[test]
fn merge_refuses_a_partition_whose_shard_is_missing_before_copying() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    copy_dir(&fixture("partitioned/part10"), &src.join("part10"));
    copy_dir(&fixture("partitioned/part2"), &src.join("part2"));
    std::fs::remove_file(src.join("part2/shard.00000.mds.zstd")).unwrap();
    let out = dir.path().join("merged");
    merge([src.join("part10"), src.join("part2")], &out)
        .code(2)
        .stderr(predicate::str::contains("part2").and(predicate::str::contains("shard.00000.mds")));
    assert!(!out.exists());
}

#[test]
fn merge_removes_the_staged_copy_a_killed_merge_left() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    copy_dir(&fixture("partitioned/part10"), &src.join("part10"));
    let out = dir.path().join("merged");
    // What a merge killed while copying part10 leaves (no process has id 999999999), and one of a
    // live process (1), which stays.
    for stale in [".part10.tmp-999999999-0", ".part10.tmp-1-0"] {
        copy_dir(&fixture("partitioned/part10"), &out.join(stale));
    }
    merge([src.join("part10")], &out).success();
    assert_eq!(names_in(&out), [".part10.tmp-1-0", "index.json", "part10"]);
}
