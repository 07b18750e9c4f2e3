//! Errors of the writer's background shard threads reach the caller; nothing panics.
#![allow(clippy::unwrap_used)]

use audiotok_mds::{MdsError, MdsWriter, Sample, Value, WriterOptions};

fn sample(i: usize) -> Sample {
    let mut s = Sample::new();
    s.insert("data".into(), Value::Bytes(vec![i as u8; 1000]));
    s
}

fn small_shards() -> WriterOptions {
    // About four samples per shard.
    WriterOptions { hashes: vec!["sha1".into(), "xxh64".into()], size_limit: Some(4500), ..Default::default() }
}

/// The output folder vanishes while shards are being written: the failed background write is
/// reported by a later `write` or by `finish`, and no index is written.
#[test]
fn a_failed_background_shard_write_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let mut w = MdsWriter::new(&out, [("data", "bytes")], small_shards()).unwrap();
    for i in 0..6 {
        w.write(&sample(i)).unwrap();
    }
    std::fs::remove_dir_all(&out).unwrap();
    let mut result = Ok(());
    for i in 6..40 {
        result = w.write(&sample(i));
        if result.is_err() {
            break;
        }
    }
    let err = match result {
        Err(e) => e,
        Ok(()) => w.finish().unwrap_err(),
    };
    assert!(matches!(err, MdsError::Io { .. }), "{err:?}");
    assert!(!out.join("index.json").exists());
}

/// Only the last shard fails (finished by `finish` itself): `finish` returns its error.
#[test]
fn a_failed_last_shard_is_reported_by_finish() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let mut w = MdsWriter::new(&out, [("data", "bytes")], WriterOptions::default()).unwrap();
    w.write(&sample(0)).unwrap();
    std::fs::remove_dir_all(&out).unwrap();
    let err = w.finish().unwrap_err();
    assert!(matches!(err, MdsError::Io { .. }), "{err:?}");
}

/// A sample encoded for another writer's columns is refused, not written.
#[test]
fn samples_from_another_writer_s_encoder_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let a = MdsWriter::new(tmp.path().join("a"), [("data", "bytes")], WriterOptions::default()).unwrap();
    let mut b = MdsWriter::new(tmp.path().join("b"), [("data", "bytes")], WriterOptions::default()).unwrap();
    let foreign = a.encoder().encode(&sample(1)).unwrap();
    assert!(matches!(b.write_encoded(foreign), Err(MdsError::Config(_))));
    let own = b.encoder().encode(&sample(1)).unwrap();
    assert_eq!(own.len(), 4 + 1000);
    b.write_encoded(own).unwrap();
    assert_eq!(b.finish().unwrap().shards[0].samples, 1);
}

/// Dropping a writer while a shard is being finished waits for it: the shard is complete and
/// there is no index.
#[test]
fn dropping_the_writer_waits_for_the_shard_in_flight() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let mut w = MdsWriter::new(&out, [("data", "bytes")], small_shards()).unwrap();
    for i in 0..5 {
        w.write(&sample(i)).unwrap();
    }
    drop(w);
    let shard = std::fs::read(out.join("shard.00000.mds")).unwrap();
    assert_eq!(u32::from_le_bytes(shard[..4].try_into().unwrap()), 4);
    assert!(!out.join("index.json").exists());
    let leftovers: Vec<_> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
}

/// A background shard write fails once (here: its temporary file's name is taken by a folder)
/// and the caller, having been told by `write`, carries on. The failed shard's samples are
/// gone with its thread, so later calls must keep failing: `finish` must not write an index
/// that silently lacks them (the synchronous writer kept them and wrote them on the next try).
#[test]
fn samples_of_a_failed_background_shard_are_never_silently_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir_all(out.join(".shard.00001.mds.tmp")).unwrap();
    let opts = WriterOptions { overwrite: true, ..small_shards() };
    let mut w = MdsWriter::new(&out, [("data", "bytes")], opts).unwrap();
    let mut accepted = 0u64;
    let mut failed = false;
    for i in 0..40 {
        match w.write(&sample(i)) {
            Ok(()) => accepted += 1,
            Err(e) => {
                assert!(matches!(e, MdsError::Io { .. }), "{e:?}");
                if !failed {
                    // The cause goes away (space freed, say); the caller goes on.
                    std::fs::remove_dir(out.join(".shard.00001.mds.tmp")).unwrap();
                }
                failed = true;
            }
        }
    }
    assert!(failed, "the blocked shard write was never reported");
    match w.finish() {
        Err(_) => assert!(!out.join("index.json").exists()),
        Ok(index) => {
            let written: u64 = index.shards.iter().map(|s| s.samples).sum();
            assert_eq!(written, accepted, "samples accepted by `write` are missing from the index");
        }
    }
}

/// A symlink planted where the writer puts its temporary file must not redirect the write out of
/// the dataset folder: the link is replaced, its target untouched.
#[test]
fn a_planted_temporary_symlink_does_not_redirect_the_write() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let victim = tmp.path().join("victim.txt");
    std::fs::write(&victim, b"precious").unwrap();
    std::fs::create_dir_all(&out).unwrap();
    for name in [".index.json.tmp", ".shard.00000.mds.tmp"] {
        std::os::unix::fs::symlink(&victim, out.join(name)).unwrap();
    }
    let opts = WriterOptions { overwrite: true, ..small_shards() };
    let mut w = MdsWriter::new(&out, [("data", "bytes")], opts).unwrap();
    w.write(&sample(0)).unwrap();
    w.finish().unwrap();
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    for name in ["index.json", "shard.00000.mds"] {
        assert!(std::fs::symlink_metadata(out.join(name)).unwrap().file_type().is_file(), "{name}");
    }
}
