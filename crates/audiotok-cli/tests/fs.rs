//! The file system as a hostile user leaves it (issue 16): outputs through symlinks, into FIFOs
//! and device nodes, stale temporary files, and walks over dangling links, loops and unreadable
//! folders.

#![allow(clippy::unwrap_used)] // Test helpers panic on broken fixtures by design.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use predicates::prelude::*;

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(rel)
}

fn audiotok() -> Command {
    Command::cargo_bin("audiotok").unwrap()
}

/// `audiotok features --kind mel-db --out OUT INPUT`, which must end with one file done and one
/// failed (exit 1); its stderr.
fn features_one_failed(out: &Path, input: &Path) -> String {
    let a = audiotok()
        .args(["features", "--kind", "mel-db", "--out"])
        .arg(out)
        .arg(input)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("features: 1 done, 1 failed"));
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

/// Names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

/// The bytes `convert` writes for the 1 s clip, written to a plain new file.
fn converted_bytes(dir: &Path) -> Vec<u8> {
    let plain = dir.join("plain.wav");
    audiotok().arg("convert").arg(fixture("audio/speech_1s.wav")).arg("--out").arg(&plain).assert().success();
    std::fs::read(plain).unwrap()
}

#[test]
fn output_through_a_symlink_replaces_its_target_and_keeps_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let want = converted_bytes(dir.path());
    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    std::fs::write(real.join("target.wav"), b"old").unwrap();
    let link = dir.path().join("link.wav");
    std::os::unix::fs::symlink("real/target.wav", &link).unwrap();
    audiotok().arg("convert").arg(fixture("audio/speech_1s.wav")).arg("--out").arg(&link).assert().success();
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link was replaced");
    assert_eq!(std::fs::read_link(&link).unwrap(), PathBuf::from("real/target.wav"));
    assert_eq!(std::fs::read(real.join("target.wav")).unwrap(), want);
    assert_eq!(names(&real), ["target.wav"], "temporary file left");
    assert_eq!(names(dir.path()), ["link.wav", "plain.wav", "real"]);

    // A dangling link gets its target created.
    let dangling = dir.path().join("dangling.wav");
    std::os::unix::fs::symlink("real/new.wav", &dangling).unwrap();
    audiotok().arg("convert").arg(fixture("audio/speech_1s.wav")).arg("--out").arg(&dangling).assert().success();
    assert!(std::fs::symlink_metadata(&dangling).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read(real.join("new.wav")).unwrap(), want);
}

#[test]
fn output_to_a_fifo_is_written_into_it() {
    let dir = tempfile::tempdir().unwrap();
    let want = converted_bytes(dir.path());
    let fifo = dir.path().join("pipe.wav");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let (tx, rx) = std::sync::mpsc::channel();
    let reader_path = fifo.clone();
    // The reader blocks in open until a writer opens the FIFO; if the FIFO is replaced instead it
    // never returns, hence the timeout below.
    std::thread::spawn(move || {
        let _ = tx.send(std::fs::read(&reader_path).unwrap());
    });
    audiotok().arg("convert").arg(fixture("audio/speech_1s.wav")).arg("--out").arg(&fifo).assert().success();
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(), "the FIFO was replaced");
    let got = rx.recv_timeout(Duration::from_secs(20)).expect("nothing was written into the FIFO");
    assert_eq!(got, want);
    assert_eq!(names(dir.path()), ["pipe.wav", "plain.wav"]);
}

#[test]
fn output_to_a_character_device_writes_it_and_leaves_the_device() {
    // Only through a link in a temporary folder: a bug here replaces the link, never /dev/null.
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("null.wav");
    std::os::unix::fs::symlink("/dev/null", &link).unwrap();
    audiotok().arg("convert").arg(fixture("audio/speech_1s.wav")).arg("--out").arg(&link).assert().success();
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link was replaced");
    assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());
    assert_eq!(names(dir.path()), ["null.wav"]);
}

#[test]
fn a_rerun_removes_stale_temporary_files_of_dead_processes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.wav");
    // No process has id 999999999 (pid_max is at most 2^22); process 1 is always alive.
    for name in [".x.wav.tmp-999999999", ".x.wav.tmp-999999998-3", ".x.wav.tmp-1", ".y.wav.tmp-999999999"] {
        std::fs::write(dir.path().join(name), b"partial").unwrap();
    }
    audiotok().arg("convert").arg(fixture("audio/speech_1s.wav")).arg("--out").arg(&out).assert().success();
    assert_eq!(names(dir.path()), [".x.wav.tmp-1", ".y.wav.tmp-999999999", "x.wav"]);
}

#[test]
fn an_output_that_is_a_folder_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.wav");
    std::fs::create_dir(&out).unwrap();
    audiotok()
        .arg("convert")
        .arg(fixture("audio/speech_1s.wav"))
        .arg("--out")
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("out.wav").and(predicate::str::contains("is a directory")));
    assert!(out.is_dir());
    assert_eq!(names(dir.path()), ["out.wav"]);
}

/// A folder with one good file, a dangling link, a link loop and (when permissions bind, i.e. not
/// as root) an unreadable sub-folder.
fn hostile_folder() -> (tempfile::TempDir, bool) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(fixture("audio/speech_1s.wav"), d.join("a_good.wav")).unwrap();
    std::os::unix::fs::symlink("nowhere.wav", d.join("b_dangling.wav")).unwrap();
    std::fs::create_dir(d.join("c_loop")).unwrap();
    std::os::unix::fs::symlink("..", d.join("c_loop/up")).unwrap();
    let locked = d.join("d_locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::copy(fixture("audio/speech_1s.wav"), locked.join("hidden.wav")).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let locked_binds = std::fs::read_dir(&locked).is_err();
    if !locked_binds {
        // Root reads it anyway: make it readable again so that it holds a normal good file.
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    (dir, locked_binds)
}

#[test]
fn a_walk_error_is_a_failure_of_that_path_and_the_rest_is_processed() {
    let (dir, locked_binds) = hostile_folder();
    let (done, failed) = if locked_binds { (1, 3) } else { (2, 2) };
    let out = audiotok()
        .args(["count", "--profile", "hubert", "--json"])
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!("count: {done} done, {failed} failed")));
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stderr.contains("b_dangling.wav"), "{stderr}");
    assert!(stderr.contains("c_loop/up"), "{stderr}");
    if locked_binds {
        assert!(stderr.contains("d_locked"), "{stderr}");
    }
    let report: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(report["totals"]["files"], done);
    assert_eq!(report["failed"].as_array().unwrap().len(), failed);
    audiotok().args(["count", "--profile", "hubert", "--keep-going"]).arg(dir.path()).assert().success();

    // features lists the failures in its manifest too.
    let feats = tempfile::tempdir().unwrap();
    audiotok()
        .args(["features", "--kind", "mel-db", "--out"])
        .arg(feats.path())
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!("features: {done} done, {failed} failed")));
    let manifest = std::fs::read_to_string(feats.path().join("manifest.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = manifest.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), done + failed);
    assert_eq!(rows.iter().filter(|r| r["status"] == "failed").count(), failed);
    assert!(feats.path().join("a_good.npy").is_file());
    let _ = std::fs::set_permissions(dir.path().join("d_locked"), std::fs::Permissions::from_mode(0o755));
}

#[test]
fn jobs_is_bounded_with_a_clear_message() {
    for cmd in [&["count", "--profile", "hubert"][..], &["features", "--kind", "mel-db", "--out", "unused"][..]] {
        audiotok()
            .args(cmd)
            .args(["--jobs", "100000", "missing.wav"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("--jobs").and(predicate::str::contains("at most 1024")));
    }
    for cmd in [&["pack", "--jobs", "5000"][..], &["encode", "--jobs", "5000"][..], &["decode", "--jobs", "5000"][..]] {
        audiotok()
            .args(cmd)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("--jobs").and(predicate::str::contains("at most 1024")));
    }
}

#[test]
fn a_feature_stem_collision_names_both_inputs_and_the_one_written() {
    // x.flac (sorted first) is not audio and writes nothing; x.wav must still get x.npy.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.flac"), b"not a flac file at all").unwrap();
    std::fs::copy(fixture("audio/speech_1s.wav"), dir.path().join("x.wav")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let stderr = features_one_failed(out.path(), dir.path());
    assert!(!stderr.contains("already written"), "{stderr}");
    assert!(out.path().join("x.npy").is_file());

    // Both good: the first in input order writes x.npy, the second is refused naming both.
    std::fs::copy(fixture("audio/speech_7s.flac"), dir.path().join("x.flac")).unwrap();
    let stderr = features_one_failed(out.path(), dir.path());
    let want = format!(
        "{}: output x.npy is written for {} (same name once the extension is replaced); rename one of them",
        dir.path().join("x.wav").display(),
        dir.path().join("x.flac").display()
    );
    assert!(stderr.contains(&want), "{stderr}");
    let manifest = std::fs::read_to_string(out.path().join("manifest.jsonl")).unwrap();
    let ok: Vec<serde_json::Value> =
        manifest.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()).collect();
    assert_eq!(ok[0]["status"], "ok");
    assert_eq!(ok[0]["output"], "x.npy");
    assert_eq!(ok[1]["status"], "failed");
}

#[test]
fn non_utf8_file_names_are_escaped_not_mangled() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join(std::ffi::OsStr::from_bytes(b"good\xff.wav"));
    let bad = dir.path().join(std::ffi::OsStr::from_bytes(b"bad\xfe.wav"));
    std::fs::copy(fixture("audio/speech_1s.wav"), &good).unwrap();
    std::fs::write(&bad, b"not audio").unwrap();
    let feats = tempfile::tempdir().unwrap();
    let stderr = features_one_failed(feats.path(), dir.path());
    assert!(stderr.contains(r"bad\xfe.wav"), "{stderr}");
    let manifest = std::fs::read_to_string(feats.path().join("manifest.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = manifest.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows[0]["input"], format!(r"{}/bad\xfe.wav", dir.path().display()));
    assert_eq!(rows[0]["path_escaped"], true);
    assert_eq!(rows[1]["input"], format!(r"{}/good\xff.wav", dir.path().display()));
    assert_eq!(rows[1]["output"], r"good\xff.npy");
    assert_eq!(rows[1]["path_escaped"], true);
    assert!(feats.path().join(std::ffi::OsStr::from_bytes(b"good\xff.npy")).is_file());
    // count's JSON escapes the same way.
    let out = audiotok().args(["count", "--profile", "hubert", "--json"]).arg(&good).assert().success();
    let report: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(report["files"][0]["path"], format!(r"{}/good\xff.wav", dir.path().display()));
}

#[test]
fn dev_stdout_redirected_to_a_file_is_written_into_that_open_file() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let want = converted_bytes(dir.path());
    let captured = dir.path().join("captured.wav");
    let file = std::fs::File::create(&captured).unwrap();
    let ino = std::fs::metadata(&captured).unwrap().ino();
    let status = std::process::Command::new(assert_cmd::cargo::cargo_bin("audiotok"))
        .arg("convert")
        .arg(fixture("audio/speech_1s.wav"))
        .args(["--out", "/dev/stdout"])
        .stdout(file)
        .status()
        .unwrap();
    assert!(status.success());
    // The shell's file itself got the bytes: it was not replaced by a new file.
    assert_eq!(std::fs::metadata(&captured).unwrap().ino(), ino);
    assert_eq!(std::fs::read(&captured).unwrap(), want);
    assert_eq!(names(dir.path()), ["captured.wav", "plain.wav"]);
}

#[test]
fn a_fifo_in_a_walked_folder_is_a_failure_not_dropped_silently_nor_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("audio/speech_1s.wav"), dir.path().join("a.wav")).unwrap();
    assert!(std::process::Command::new("mkfifo").arg(dir.path().join("b.wav")).status().unwrap().success());
    assert!(std::process::Command::new("mkfifo").arg(dir.path().join("c.txt")).status().unwrap().success());
    audiotok()
        .args(["count", "--profile", "hubert"])
        .arg(dir.path())
        .timeout(Duration::from_secs(60))
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("count: 1 done, 1 failed")
                .and(predicate::str::contains("b.wav: not a regular file (a FIFO, socket or device)"))
                .and(predicate::str::contains("1 non-audio files ignored")),
        );
}
