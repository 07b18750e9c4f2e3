//! The `audiotok mds` jobs as a library: document lengths and masks of packed blocks in both
//! layouts (the committed `audiotok pack` fixtures), inspect and verify reports, and
//! `merge_partitions`' refusals, rollback and progress.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use audiotok_core::Silent;
use audiotok_mds::packed::{attention_mask, doc_lengths, documents, int_column, mask_picture, open_dataset, VISIBLE};
use audiotok_mds::{inspect, merge_partitions, verify, MergeError, MergeOptions, Value};
use common::{copy_tree, fixtures};

fn pack_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/pack").join(name)
}

/// Every event an observer saw, as text.
type Log = audiotok_core::Recorder;

/// Per sample of a packed fixture: the block size, the document lengths and the position ids.
fn blocks(dir: &Path) -> Vec<(usize, Vec<i64>, Vec<i64>)> {
    let ds = open_dataset(dir).unwrap();
    ds.iter()
        .map(|s| {
            let s = s.unwrap();
            let block = int_column(&s, "input_ids").unwrap().len();
            (block, doc_lengths(&s).unwrap(), int_column(&s, "position_ids").unwrap())
        })
        .collect()
}

#[test]
fn doc_lengths_of_both_layouts_match_the_position_ids() {
    let mut all = Vec::new();
    for name in ["cooking_512", "standard_512_bfd_assistant"] {
        let found = blocks(&pack_fixture(name));
        assert_eq!(found.len(), 3, "{name}");
        let mut lengths = Vec::new();
        for (block, lens, positions) in found {
            assert_eq!(block, 512, "{name}");
            assert!(lens.iter().all(|&l| l > 0) && lens.iter().sum::<i64>() <= 512, "{name}: {lens:?}");
            // Position ids restart at 0 with every document.
            let mut at = 0;
            for &l in &lens {
                let want: Vec<i64> = (0..l).collect();
                assert_eq!(positions[at..at + l as usize], want[..], "{name}");
                at += l as usize;
            }
            // The mask: query q of a document sees its position + 1 keys; padding sees none.
            let lens: Vec<usize> = lens.iter().map(|&l| l as usize).collect();
            let mask = attention_mask(block, &lens);
            let docs = documents(block, &lens);
            for q in 0..block {
                let seen = mask[q * block..(q + 1) * block].iter().filter(|&&v| v).count();
                let want = if docs[q].is_some() { positions[q] as usize + 1 } else { 0 };
                assert_eq!(seen, want, "{name}: row {q}");
            }
            let picture = mask_picture(block, &lens, 64);
            assert_eq!((picture.side, picture.pixels.len()), (64, 64 * 64));
            assert_eq!(picture.pixels[0], VISIBLE);
            lengths.extend(lens);
        }
        // The same 17 documents, whatever the layout and packing.
        lengths.sort_unstable();
        assert_eq!((lengths.len(), lengths.iter().sum::<usize>()), (17, 1293), "{name}");
        all.push(lengths);
    }
    assert_eq!(all[0], all[1]);
}

#[test]
fn inspect_reports_packing_in_both_layouts_and_the_observer_sees_the_samples() {
    for name in ["cooking_512", "standard_512_bfd_assistant"] {
        let log = Log::default();
        let r = inspect(&pack_fixture(name), &log).unwrap();
        assert_eq!((r.samples, r.shards), (3, 1));
        let p = r.packing.unwrap();
        assert_eq!((p.block_tokens, p.real_tokens, p.documents, p.audio_files), (1536, 1293, 17, 18), "{name}");
        assert!((p.efficiency - 1293.0 / 1536.0).abs() < 1e-12);
        assert_eq!(log.events(), ["begin inspect 3 samples", "advance 1", "advance 1", "advance 1", "end"]);
        assert_eq!(r.hashes, ["sha1", "xxh64"]);
    }
    // Not packed: no packing figures, no samples read.
    let log = Log::default();
    let r = inspect(&fixtures().join("zstd"), &log).unwrap();
    assert_eq!(r.compression.as_deref(), Some("zstd"));
    assert!(r.packing.is_none() && log.events().is_empty());
    // The JSON the CLI prints, key order included.
    let text = serde_json::to_string(&r).unwrap();
    assert!(text.starts_with("{\"dir\":") && text.ends_with(",\"packing\":null}"), "{text}");
}

#[test]
fn inspect_names_the_sample_without_lengths() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bad");
    let cols = [("input_ids", "ndarray:int32"), ("seq_lengths", "str")];
    let mut w = audiotok_mds::MdsWriter::new(&dir, cols, Default::default()).unwrap();
    let mut s = audiotok_mds::Sample::new();
    s.insert("input_ids".into(), Value::NdArray(audiotok_mds::NdArray::from_vec(&[1i32, 2])));
    s.insert("seq_lengths".into(), Value::Str("2".into()));
    w.write(&s).unwrap();
    w.finish().unwrap();
    let e = inspect(&dir, &Silent).unwrap_err().to_string();
    assert_eq!(e, format!("{}: sample 0: no integer seq_lengths (or notebook attention_mask)", dir.display()));
}

#[test]
fn verify_reports_success_and_failure_as_the_cli_prints_them() {
    let v = verify(&fixtures().join("hashed")).unwrap();
    assert!(v.ok());
    let dir = fixtures().join("hashed");
    assert_eq!(v.to_string(), format!("{}: ok: 1 shards, 6 samples, 2 file hashes checked", dir.display()));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("hashed");
    copy_tree(&fixtures().join("hashed"), &dir);
    let shard = dir.join("shard.00000.mds");
    let mut bytes = std::fs::read(&shard).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(&shard, bytes).unwrap();
    let v = verify(&dir).unwrap();
    assert!(!v.ok() && v.report.is_none());
    assert!(v.to_string().starts_with(&format!("{}: FAILED: ", dir.display())), "{v}");
    assert!(verify(&tmp.path().join("missing")).is_err());
}

/// `partitioned/NAME` copied to `DIR/NAME`.
fn part(dir: &Path, name: &str) -> PathBuf {
    let to = dir.join(name);
    copy_tree(&fixtures().join("partitioned").join(name), &to);
    to
}

/// Every path below `dir`, sorted, relative.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if std::fs::symlink_metadata(&p).unwrap().is_dir() {
                stack.push(p.clone());
            }
            out.push(p.strip_prefix(dir).unwrap().to_path_buf());
        }
    }
    out.sort();
    out
}

fn merge(parts: &[PathBuf], out: &Path) -> Result<audiotok_mds::MergeSummary, MergeError> {
    merge_partitions(&MergeOptions { parts: parts.to_vec(), out: out.to_path_buf() }, &Silent)
}

#[test]
fn merge_copies_with_progress_and_matches_streaming() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let parts: Vec<PathBuf> = ["part10", "part2", "part_a"].iter().map(|n| part(&src, n)).collect();
    let out = tmp.path().join("merged");
    // A staged copy a killed merge left is removed; a live process's stays.
    copy_tree(&fixtures().join("partitioned/part10"), &out.join(".part10.tmp-999999999-0"));
    std::fs::create_dir(out.join(".part10.tmp-1-0")).unwrap();
    let log = Log::default();
    let summary = merge_partitions(&MergeOptions { parts, out: out.clone() }, &log).unwrap();
    assert_eq!((summary.partitions, summary.copied), (3, 3));
    assert_eq!(summary.index, out.join("index.json").to_str().unwrap());
    assert_eq!(
        std::fs::read(out.join("index.json")).unwrap(),
        std::fs::read(fixtures().join("partitioned/index.json")).unwrap()
    );
    let ds = audiotok_mds::MdsDataset::open(&out).unwrap();
    assert_eq!((ds.len(), ds.index().shards.len()), (summary.samples, summary.shards));
    ds.verify().unwrap();
    assert_eq!(log.events(), ["begin merge 3 partitions", "advance 1", "advance 1", "advance 1", "end"]);
    let top: Vec<_> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(top.len(), 5, "{top:?}: .part10.tmp-1-0, index.json and the three partitions");
    assert!(!out.join(".part10.tmp-999999999-0").exists());

    // Again, in place: the partitions are --out's own sub-folders now; nothing is copied.
    let log = Log::default();
    let inside: Vec<PathBuf> = ["part10", "part2", "part_a"].iter().map(|n| out.join(n)).collect();
    let again = merge_partitions(&MergeOptions { parts: inside, out: out.clone() }, &log).unwrap();
    assert_eq!((again.copied, again.shards), (0, summary.shards));
    assert!(log.events().is_empty());
}

#[test]
fn merge_refusals_name_the_paths_and_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let p2 = part(d, "part2");
    std::os::unix::fs::symlink("part2", d.join("alias")).unwrap();
    let before = tree(d);
    for out in [p2.clone(), p2.join("merged"), d.join("alias/deep/merged")] {
        let e = merge(std::slice::from_ref(&p2), &out).unwrap_err();
        assert!(matches!(e, MergeError::OutInsidePartition { .. }), "{e}");
        assert_eq!(
            e.to_string(),
            format!(
                "--out {} is the partition {} or inside it: merging would copy the partition into itself",
                out.display(),
                p2.display()
            )
        );
        assert_eq!(tree(d), before);
    }

    // A partition below --out's top level would be merged twice.
    let root = d.join("root");
    let nested = part(&root.join("a"), "part2");
    let e = merge(std::slice::from_ref(&nested), &root).unwrap_err();
    assert!(matches!(e, MergeError::NestedPartition { .. }), "{e}");

    // Two partitions with one folder name.
    let other = part(&d.join("other"), "part2");
    let out = d.join("merged");
    let e = merge(&[p2.clone(), other], &out).unwrap_err();
    assert_eq!(e.to_string(), format!("two partitions are named part2: they would be one folder in {}", out.display()));
    assert!(!out.exists());

    // The name a copy would take is taken.
    std::fs::create_dir_all(out.join("part2")).unwrap();
    let e = merge(std::slice::from_ref(&p2), &out).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{}: already exists in {}; rename the partition", out.join("part2").display(), out.display())
    );

    // A shard the index lists is missing: refused before anything is copied.
    let p10 = part(d, "part10");
    let broken = part(&d.join("broken"), "part_a");
    std::fs::remove_file(broken.join("shard.00003.mds")).unwrap();
    let fresh = d.join("fresh");
    let e = merge(&[p10, broken.clone()], &fresh).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{}: shard shard.00003.mds listed in index.json is missing; nothing was merged", broken.display())
    );
    assert!(!fresh.exists());

    // An unreadable index.
    std::fs::write(p2.join("index.json"), b"{\"version\": 2, \"shards\": [").unwrap();
    let e = merge(std::slice::from_ref(&p2), &fresh).unwrap_err();
    assert!(matches!(e, MergeError::Mds(_)), "{e}");
    assert!(!fresh.exists());
}

#[test]
fn merge_rolls_back_what_it_copied_when_a_later_copy_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let p10 = part(&src, "part10");
    let p2 = part(&src, "part2");
    // A socket in a partition is neither a file nor a folder: refused, after part10 was copied.
    let _listener = std::os::unix::net::UnixListener::bind(p2.join("zz_socket")).unwrap();
    for (out, existed) in [(tmp.path().join("new/merged"), false), (tmp.path().join("existing"), true)] {
        if existed {
            std::fs::create_dir(&out).unwrap();
            std::fs::write(out.join("keep.txt"), b"mine").unwrap();
        }
        let log = Log::default();
        let e = merge_partitions(&MergeOptions { parts: vec![p10.clone(), p2.clone()], out: out.clone() }, &log)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{}: not a regular file or folder; a partition is copied only with those",
                p2.join("zz_socket").display()
            )
        );
        assert!(matches!(e, MergeError::NotRegular { .. }));
        // The phase ended although the job failed.
        assert_eq!(log.events(), ["begin merge 2 partitions", "advance 1", "end"]);
        if existed {
            assert_eq!(tree(&out), [PathBuf::from("keep.txt")]);
        } else {
            // --out and the folder above it, which this run created, are gone.
            assert!(!tmp.path().join("new").exists());
        }
    }
}
