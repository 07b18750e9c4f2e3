//! Golden tests against datasets written by the Python `streaming` package (0.13.0), committed in
//! tests/fixtures/mds/ by tools/gen_mds_fixtures.py.
#![allow(clippy::unwrap_used)]

mod common;

use audiotok_mds::json::py_float_repr;
use audiotok_mds::{merge_index, Index, Json, MdsDataset, MdsError, MdsWriter, Sample, WriterOptions};
use common::*;

const PLAIN: [&str; 5] = ["all_types", "zstd", "zstd7_hashed", "multi_shard", "hashed"];

fn read_all(ds: &MdsDataset) -> Vec<Sample> {
    ds.iter().collect::<Result<Vec<_>, _>>().unwrap()
}

/// (1) Our reader decodes every Python-written dataset to the values StreamingDataset returns.
#[test]
fn reader_reads_python_datasets() {
    let exp = expected();
    for name in PLAIN {
        let entry = dataset(&exp, name);
        let cols = columns(entry);
        let ds = MdsDataset::open(fixtures().join(name)).unwrap();
        let decoded = entry.get("decoded").and_then(Json::as_array).unwrap();
        assert_eq!(ds.len(), decoded.len() as u64, "{name}");
        let got = read_all(&ds);
        for (i, (sample, want)) in got.iter().zip(decoded).enumerate() {
            assert_eq!(sample_form(&cols, sample), form_text(&cols, want), "{name} sample {i} (iter)");
            let random = ds.get(i as u64).unwrap();
            assert_eq!(sample_form(&cols, &random), form_text(&cols, want), "{name} sample {i} (get)");
        }
        // Reading back the inputs: decoded values equal what was written except where the
        // encoding rounds (float16/float32); the all_types expectations cover those.
        assert!(matches!(ds.get(ds.len()), Err(MdsError::OutOfRange { .. })));
    }
}

#[test]
fn reader_reads_generated_large_zstd_dataset() {
    let exp = expected();
    let entry = dataset(&exp, "zstd_large");
    let ds = MdsDataset::open(fixtures().join("zstd_large")).unwrap();
    let want = large_samples(entry);
    assert_eq!(read_all(&ds), want);
    assert_eq!(ds.get(7).unwrap(), want[7]);
}

#[test]
fn reader_reads_merged_partitions() {
    let exp = expected();
    let entry = dataset(&exp, "partitioned");
    let cols = columns(entry);
    let ds = MdsDataset::open(fixtures().join("partitioned")).unwrap();
    let decoded = entry.get("decoded").and_then(Json::as_array).unwrap();
    let got = read_all(&ds);
    assert_eq!(got.len(), decoded.len());
    for (sample, want) in got.iter().zip(decoded) {
        assert_eq!(sample_form(&cols, sample), form_text(&cols, want));
    }
    ds.verify().unwrap();
}

/// Every Python-written dataset verifies cleanly, hashes included.
#[test]
fn python_datasets_verify() {
    for name in PLAIN.iter().chain(&["zstd_large"]) {
        let ds = MdsDataset::open(fixtures().join(name)).unwrap();
        let report = ds.verify().unwrap();
        assert_eq!(report.samples, ds.len(), "{name}");
        assert!(report.hashes_skipped.is_empty());
        if *name == "zstd7_hashed" {
            // sha1 + xxh64 of the compressed and the raw form of each of 2 shards.
            assert_eq!(report.hashes_checked, 8);
        }
    }
}

fn write_dataset(
    dir: &std::path::Path,
    cols: &[(String, String)],
    options: WriterOptions,
    samples: &[Sample],
) -> Index {
    let mut w = MdsWriter::new(dir, cols.iter().map(|(n, e)| (n.as_str(), e.as_str())), options).unwrap();
    for s in samples {
        w.write(s).unwrap();
    }
    w.finish().unwrap()
}

fn assert_same_files(python: &std::path::Path, ours: &std::path::Path, name: &str) {
    let a = files(python);
    let b = files(ours);
    let names_a: Vec<&str> = a.iter().map(|(n, _)| n.as_str()).collect();
    let names_b: Vec<&str> = b.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names_a, names_b, "{name}: file lists differ");
    for ((n, x), (_, y)) in a.iter().zip(&b) {
        if x != y {
            let at = x.iter().zip(y).position(|(p, q)| p != q).unwrap_or(x.len().min(y.len()));
            let ctx = |d: &[u8]| d[at.saturating_sub(40)..(at + 40).min(d.len())].escape_ascii().to_string();
            panic!(
                "{name}/{n} differs at byte {at} ({} vs {} bytes):\npython: {}\nours:   {}",
                x.len(),
                y.len(),
                ctx(x),
                ctx(y)
            );
        }
    }
}

/// (2) Given the same samples and options, our writer produces the same bytes as MDSWriter.
#[test]
fn writer_is_byte_identical_to_python() {
    let exp = expected();
    for name in PLAIN {
        let entry = dataset(&exp, name);
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join(name);
        let index = write_dataset(&out, &columns(entry), options(entry), &samples(entry, "samples"));
        assert_same_files(&fixtures().join(name), &out, name);
        assert_eq!(index, Index::load(&fixtures().join(name)).unwrap());
    }
}

/// Samples encoded on other threads ([`MdsWriter::encoder`]) and written in order with
/// `write_encoded` give the same bytes as MDSWriter too.
#[test]
fn writer_from_samples_encoded_on_other_threads_is_byte_identical_to_python() {
    let exp = expected();
    for name in PLAIN {
        let entry = dataset(&exp, name);
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join(name);
        let cols = columns(entry);
        let mut w = MdsWriter::new(&out, cols.iter().map(|(n, e)| (n.as_str(), e.as_str())), options(entry)).unwrap();
        let all = samples(entry, "samples");
        let encoder = w.encoder();
        let encoded: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = all
                .chunks(3)
                .map(|chunk| {
                    let encoder = encoder.clone();
                    scope.spawn(move || chunk.iter().map(|s| encoder.encode(s).unwrap()).collect::<Vec<_>>())
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        for e in encoded {
            w.write_encoded(e).unwrap();
        }
        let index = w.finish().unwrap();
        assert_same_files(&fixtures().join(name), &out, name);
        assert_eq!(index, Index::load(&fixtures().join(name)).unwrap());
    }
}

/// The 1.4 MB zstd shard: libzstd's multi-threaded output, as python-zstd produces it.
#[test]
fn writer_large_zstd_is_byte_identical_to_python() {
    let exp = expected();
    let entry = dataset(&exp, "zstd_large");
    let tmp = tempfile::tempdir().unwrap();
    write_dataset(tmp.path(), &columns(entry), options(entry), &large_samples(entry));
    assert_same_files(&fixtures().join("zstd_large"), tmp.path(), "zstd_large");
}

/// (5) merge_index over Python's partitions equals streaming's merged index.json byte for byte,
/// and our writer + merge reproduces the whole partitioned tree.
#[test]
fn merge_index_matches_python() {
    let root = fixtures().join("partitioned");
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("partitioned");
    copy_tree(&root, &copy);
    std::fs::remove_file(copy.join("index.json")).unwrap();
    let merged = merge_index(&copy).unwrap();
    assert_eq!(std::fs::read(copy.join("index.json")).unwrap(), std::fs::read(root.join("index.json")).unwrap());
    assert_eq!(merged.shards.len(), Index::load(&root).unwrap().shards.len());
    assert_eq!(merged.shards[0].raw_data.basename, "part10/shard.00000.mds");

    // Rerunning over an existing merged index gives the same bytes again.
    merge_index(&copy).unwrap();
    assert_eq!(std::fs::read(copy.join("index.json")).unwrap(), std::fs::read(root.join("index.json")).unwrap());

    let exp = expected();
    let entry = dataset(&exp, "partitioned");
    let ours = tmp.path().join("ours");
    if let Some(Json::Object(parts)) = entry.get("partitions") {
        for (pname, p) in parts {
            write_dataset(&ours.join(pname), &columns(p), options(p), &samples(p, "samples"));
        }
    }
    merge_index(&ours).unwrap();
    assert_same_files(&root, &ours, "partitioned");
}

/// (6) pkl columns are refused by the reader and the writer.
#[test]
fn pickle_columns_rejected() {
    let err = MdsDataset::open(fixtures().join("pkl")).unwrap_err();
    assert!(matches!(&err, MdsError::PickleRefused { column } if column == "obj"), "{err}");
    assert!(err.to_string().contains("pkl"));
    let tmp = tempfile::tempdir().unwrap();
    let err = MdsWriter::new(tmp.path(), [("obj", "pkl")], WriterOptions::default()).unwrap_err();
    assert!(matches!(err, MdsError::PickleRefused { .. }));
    // And image encodings, out of scope.
    let err = MdsWriter::new(tmp.path(), [("img", "jpeg")], WriterOptions::default()).unwrap_err();
    assert!(matches!(err, MdsError::UnsupportedImageEncoding { .. }));
}

/// Python's repr(float) on random and special doubles.
#[test]
fn float_repr_matches_python() {
    let text = std::fs::read(fixtures().join("float_repr.json")).unwrap();
    let pairs = Json::parse_bytes(&text).unwrap();
    let pairs = pairs.as_array().unwrap();
    assert!(pairs.len() > 300);
    for p in pairs {
        let p = p.as_array().unwrap();
        let bits = u64::from_str_radix(p[0].as_str().unwrap(), 16).unwrap();
        let x = f64::from_bits(bits);
        assert_eq!(py_float_repr(x), p[1].as_str().unwrap(), "bits {bits:016x}");
    }
}

/// The multi_shard fixture starts with streaming's empty shard (first sample over the limit).
#[test]
fn first_sample_over_limit_gives_empty_first_shard() {
    let index = Index::load(&fixtures().join("multi_shard")).unwrap();
    assert_eq!(index.shards[0].samples, 0);
    assert!(index.shards[1..].iter().all(|s| s.samples >= 1));
}
