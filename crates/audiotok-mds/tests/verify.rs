//! (4) verify() catches corruption and names the shard (and sample); writer atomicity and
//! configuration errors.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use audiotok_mds::{MdsDataset, MdsError, MdsWriter, Sample, Value, WriterOptions};
use common::*;

fn copy_fixture(name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    copy_tree(&fixtures().join(name), &dir);
    (tmp, dir)
}

fn flip(path: &Path, at: usize) {
    let mut data = std::fs::read(path).unwrap();
    data[at] ^= 0x01;
    std::fs::write(path, data).unwrap();
}

/// Offset of the first sample's bytes in an uncompressed shard.
fn first_sample_offset(path: &Path) -> usize {
    let data = std::fs::read(path).unwrap();
    u32::from_le_bytes(data[4..8].try_into().unwrap()) as usize
}

#[test]
fn flipped_byte_in_hashed_shard_is_caught_by_hash() {
    let (_tmp, dir) = copy_fixture("hashed");
    let shard = dir.join("shard.00000.mds");
    // The first sample starts with its 3 variable-size column sizes, then the int32 `id`:
    // flipping a bit of `id` still decodes, so only the hash can see it.
    let at = first_sample_offset(&shard) + 12;
    flip(&shard, at);
    let ds = MdsDataset::open(&dir).unwrap();
    let err = ds.verify().unwrap_err();
    match &err {
        MdsError::Corrupt { shard, sample: None, reason } => {
            assert_eq!(shard, "shard.00000.mds");
            assert!(reason.starts_with("sha1 is "), "{reason}");
        }
        other => panic!("unexpected {other}"),
    }
    assert!(err.to_string().contains("shard.00000.mds"));
}

#[test]
fn flipped_byte_in_compressed_shard_is_caught() {
    let (_tmp, dir) = copy_fixture("zstd7_hashed");
    let shard = dir.join("shard.00001.mds.zstd");
    flip(&shard, 100);
    let ds = MdsDataset::open(&dir).unwrap();
    let err = ds.verify().unwrap_err();
    assert!(matches!(&err, MdsError::Corrupt { shard, .. } if shard == "shard.00001.mds.zstd"), "{err}");
}

#[test]
fn flipped_size_prefix_names_shard_and_sample() {
    let (_tmp, dir) = copy_fixture("multi_shard");
    let shard = dir.join("shard.00002.mds");
    // High byte of the first variable-size column's u32 size: the column now runs past the sample.
    let at = first_sample_offset(&shard) + 3;
    flip(&shard, at);
    let ds = MdsDataset::open(&dir).unwrap();
    let err = ds.verify().unwrap_err();
    assert!(matches!(&err, MdsError::Corrupt { shard, sample: Some(0), .. } if shard == "shard.00002.mds"), "{err}");
    assert!(err.to_string().starts_with("shard shard.00002.mds sample 0:"), "{err}");
    // Reading that sample reports the same place; shard.00000.mds is streaming's empty shard,
    // shard.00001.mds holds global sample 0, so shard.00002.mds starts at global sample 1.
    let err = ds.get(1).unwrap_err();
    assert!(matches!(&err, MdsError::Corrupt { sample: Some(0), .. }), "{err}");
    assert!(ds.get(0).is_ok());
}

#[test]
fn bad_offsets_and_counts_are_caught() {
    let (_tmp, dir) = copy_fixture("all_types");
    let shard = dir.join("shard.00000.mds");
    // Sample count in the header no longer matches the index.
    flip(&shard, 0);
    let err = MdsDataset::open(&dir).unwrap().verify().unwrap_err();
    assert!(err.to_string().contains("samples, index says"), "{err}");
    flip(&shard, 0);
    // An offset past the next one.
    let original = std::fs::read(&shard).unwrap();
    let mut data = original.clone();
    let next = u32::from_le_bytes(data[20..24].try_into().unwrap());
    data[16..20].copy_from_slice(&(next + 1).to_le_bytes());
    std::fs::write(&shard, &data).unwrap();
    let err = MdsDataset::open(&dir).unwrap().verify().unwrap_err();
    assert!(matches!(&err, MdsError::Corrupt { sample: Some(3), .. }), "{err}");
    std::fs::write(&shard, &original).unwrap();
    // A byte of the embedded config.
    flip(&shard, 4 + 4 * 9 + 20);
    let err = MdsDataset::open(&dir).unwrap().verify().unwrap_err();
    assert!(err.to_string().contains("config"), "{err}");
    flip(&shard, 4 + 4 * 9 + 20);
    MdsDataset::open(&dir).unwrap().verify().unwrap();
    // Truncation.
    let data = std::fs::read(&shard).unwrap();
    std::fs::write(&shard, &data[..data.len() - 1]).unwrap();
    let err = MdsDataset::open(&dir).unwrap().verify().unwrap_err();
    assert!(err.to_string().contains("index says"), "{err}");
    // A missing shard is an I/O error naming the file.
    std::fs::remove_file(&shard).unwrap();
    let err = MdsDataset::open(&dir).unwrap().verify().unwrap_err();
    assert!(matches!(&err, MdsError::Io { path, .. } if path.ends_with("shard.00000.mds")), "{err}");
}

#[test]
fn bad_index_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(matches!(MdsDataset::open(tmp.path()), Err(MdsError::Io { .. })));
    std::fs::write(tmp.path().join("index.json"), "{\"version\": 3, \"shards\": []}").unwrap();
    assert!(matches!(MdsDataset::open(tmp.path()), Err(MdsError::Index { .. })));
    std::fs::write(tmp.path().join("index.json"), "{\"version\": 2, \"shards\": [{}]}").unwrap();
    assert!(matches!(MdsDataset::open(tmp.path()), Err(MdsError::Index { .. })));
    std::fs::write(tmp.path().join("index.json"), "not json").unwrap();
    assert!(matches!(MdsDataset::open(tmp.path()), Err(MdsError::Index { .. })));
    // A basename escaping the folder is refused.
    let text = std::fs::read_to_string(fixtures().join("hashed/index.json")).unwrap();
    std::fs::write(tmp.path().join("index.json"), text.replace("\"shard.00000.mds\"", "\"../x.mds\"")).unwrap();
    let err = MdsDataset::open(tmp.path()).unwrap_err();
    assert!(err.to_string().contains("unsafe file name"), "{err}");
}

fn sample(id: i64, text: &str) -> Sample {
    let mut s = Sample::new();
    s.insert("id".into(), Value::Int(id));
    s.insert("text".into(), Value::Str(text.into()));
    s
}

#[test]
fn writer_outputs_are_atomic_and_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = WriterOptions { size_limit: Some(200), ..Default::default() };
    let cols = [("id", "int64"), ("text", "str")];
    let mut w = MdsWriter::new(tmp.path().join("a"), cols, opts.clone()).unwrap();
    for i in 0..20 {
        w.write(&sample(i, &"x".repeat(i as usize * 3))).unwrap();
    }
    // Before finish: full shards exist, no index, no temporary files.
    let names: Vec<String> = files(&tmp.path().join("a")).into_iter().map(|(n, _)| n).collect();
    assert!(!names.is_empty());
    assert!(names.iter().all(|n| n.starts_with("shard.") && !n.ends_with(".tmp")), "{names:?}");
    let index = w.finish().unwrap();
    assert!(index.shards.len() > 3);
    let mut w = MdsWriter::new(tmp.path().join("b"), cols, opts).unwrap();
    for i in 0..20 {
        w.write(&sample(i, &"x".repeat(i as usize * 3))).unwrap();
    }
    w.finish().unwrap();
    assert_eq!(files(&tmp.path().join("a")), files(&tmp.path().join("b")));
    let ds = MdsDataset::open(tmp.path().join("a")).unwrap();
    assert_eq!(ds.len(), 20);
    assert_eq!(ds.get(19).unwrap(), sample(19, &"x".repeat(57)));
    ds.verify().unwrap();
}

#[test]
fn writer_refuses_bad_config_and_samples() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("d");
    let cols = [("id", "int64"), ("text", "str")];
    let bad = |o: WriterOptions| MdsWriter::new(&d, cols, o).unwrap_err();
    assert!(matches!(bad(WriterOptions { size_limit: Some(1 << 32), ..Default::default() }), MdsError::Config(_)));
    let unsorted = WriterOptions { hashes: vec!["xxh64".into(), "sha1".into()], ..Default::default() };
    assert!(matches!(bad(unsorted), MdsError::Config(_)));
    let md5 = WriterOptions { hashes: vec!["md5".into()], ..Default::default() };
    assert!(matches!(bad(md5), MdsError::UnsupportedHash(_)));
    let gz = WriterOptions { compression: Some("gz".into()), ..Default::default() };
    assert!(matches!(bad(gz), MdsError::UnsupportedCompression(_)));
    let lvl = WriterOptions { compression: Some("zstd:30".into()), ..Default::default() };
    assert!(matches!(bad(lvl), MdsError::InvalidCompression(_)));
    assert!(matches!(
        MdsWriter::new(&d, [("a", "str"), ("a", "int")], WriterOptions::default()),
        Err(MdsError::Config(_))
    ));
    assert!(matches!(
        MdsWriter::new(&d, [("a", "float128")], WriterOptions::default()),
        Err(MdsError::UnknownEncoding(_))
    ));

    let mut w = MdsWriter::new(&d, cols, WriterOptions::default()).unwrap();
    let mut s = sample(1, "a");
    s.remove("text");
    assert!(matches!(w.write(&s), Err(MdsError::SampleColumns(_))));
    let mut s = sample(1, "a");
    s.insert("extra".into(), Value::Int(0));
    assert!(matches!(w.write(&s), Err(MdsError::SampleColumns(_))));
    let mut s = sample(1, "a");
    s.insert("id".into(), Value::Str("1".into()));
    let err = w.write(&s).unwrap_err();
    assert!(matches!(&err, MdsError::Encode { column, .. } if column == "id"), "{err}");
    // Pre-encoded bytes are accepted as streaming does, but must fit a fixed-size column.
    let mut s = sample(1, "a");
    s.insert("id".into(), Value::Bytes(vec![1, 2, 3]));
    assert!(matches!(w.write(&s), Err(MdsError::Encode { .. })));
    s.insert("id".into(), Value::Bytes(vec![1, 0, 0, 0, 0, 0, 0, 0]));
    w.write(&s).unwrap();
    w.finish().unwrap();
    assert_eq!(MdsDataset::open(&d).unwrap().get(0).unwrap(), sample(1, "a"));

    // A non-empty folder needs overwrite; overwrite removes only our own files.
    assert!(matches!(MdsWriter::new(&d, cols, WriterOptions::default()), Err(MdsError::Config(_))));
    std::fs::write(d.join("notes.txt"), "keep").unwrap();
    let w = MdsWriter::new(&d, cols, WriterOptions { overwrite: true, ..Default::default() }).unwrap();
    assert!(!d.join("index.json").exists() && !d.join("shard.00000.mds").exists());
    let index = w.finish().unwrap();
    assert!(index.shards.is_empty());
    assert!(d.join("notes.txt").exists());
    assert_eq!(std::fs::read_to_string(d.join("index.json")).unwrap(), "{\"shards\": [], \"version\": 2}");
    assert_eq!(MdsDataset::open(&d).unwrap().len(), 0);
}

/// A compressed dataset whose shards streaming has decompressed in place (and whose .zstd files
/// are gone) still reads and verifies against the raw sizes and hashes.
#[test]
fn decompressed_copies_are_read_when_zip_is_gone() {
    let (_tmp, dir) = copy_fixture("zstd7_hashed");
    let ds = MdsDataset::open(&dir).unwrap();
    let want: Vec<Sample> = ds.iter().map(Result::unwrap).collect();
    for shard in &ds.index().shards {
        let zip = shard.zip_data.as_ref().unwrap();
        let c: audiotok_mds::Compression = shard.compression.as_deref().unwrap().parse().unwrap();
        let data = std::fs::read(dir.join(&zip.basename)).unwrap();
        let raw = c.decompress(&data, shard.raw_data.bytes as usize).unwrap();
        std::fs::write(dir.join(&shard.raw_data.basename), raw).unwrap();
    }
    // Both forms present: verify checks they agree.
    ds.verify().unwrap();
    for shard in &ds.index().shards {
        std::fs::remove_file(dir.join(&shard.zip_data.as_ref().unwrap().basename)).unwrap();
    }
    let ds = MdsDataset::open(&dir).unwrap();
    assert_eq!(ds.iter().map(Result::unwrap).collect::<Vec<_>>(), want);
    let report = ds.verify().unwrap();
    assert_eq!(report.hashes_checked, 4);
}

#[test]
fn merge_without_partitions_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("empty_part")).unwrap();
    assert!(matches!(audiotok_mds::merge_index(tmp.path()), Err(MdsError::Config(_))));
    assert!(!tmp.path().join("index.json").exists());
}

#[test]
fn registered_raw_encoding_overrides_a_builtin_name() {
    // The packing notebook registers `uint32` as a variable-length u32 array.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("raw");
    let opts = WriterOptions { raw_encodings: vec!["uint32".into()], ..Default::default() };
    let mut w = MdsWriter::new(&dir, [("ids", "uint32"), ("text", "str")], opts).unwrap();
    let rows: [&[u32]; 2] = [&[1, 2, 3], &[70000]];
    for ids in rows {
        let mut s = Sample::new();
        s.insert("ids".into(), Value::Bytes(ids.iter().flat_map(|v| v.to_le_bytes()).collect()));
        s.insert("text".into(), Value::Str(String::new()));
        w.write(&s).unwrap();
    }
    let index = w.finish().unwrap();
    assert_eq!(index.shards[0].column_encodings, ["uint32", "str"]);
    assert_eq!(index.shards[0].column_sizes, [None, None]);
    // Without the registration, `uint32` is the fixed 4-byte scalar and the index disagrees.
    assert!(matches!(MdsDataset::open(&dir).unwrap_err(), MdsError::Index { .. }));
    let ds = MdsDataset::open_with_raw(&dir, &["uint32".to_string()]).unwrap();
    assert_eq!(ds.get(0).unwrap()["ids"], Value::Bytes(vec![1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0]));
    assert_eq!(ds.get(1).unwrap()["ids"], Value::Bytes(70000u32.to_le_bytes().to_vec()));
    ds.verify().unwrap();
}
