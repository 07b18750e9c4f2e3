#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use super::*;

fn record(i: usize) -> TokenRecord {
    // Three scales at ratios 1:2:4, the finest as [2, T] (two codebooks) to exercise shapes.
    let t = 3 + i;
    let s0: Vec<u32> = (0..t).map(|j| ((i * 7 + j * 3) % 11) as u32).collect();
    let s1: Vec<u32> = (0..2 * t).map(|j| ((i + j * j) % 13) as u32).collect();
    let s2: Vec<u32> = (0..4 * t).map(|j| ((i * 5 + j) % 4095) as u32).collect();
    TokenRecord {
        file_path: format!("audio/clip_{i:02}.wav"),
        duration: 0.25 * (i as f64 + 1.0),
        scales: vec![
            ScaleTokens::stream(s0),
            ScaleTokens::stream(s1),
            ScaleTokens { shape: vec![2, 2 * t as u64], tokens: s2 },
        ],
    }
}

fn opts() -> StoreOptions {
    let mut o = StoreOptions::new(3);
    o.batch_size = 2;
    o.codebook_sizes = Some(vec![4096; 3]);
    o.rates_hz = Some(vec![12.0, 23.0, 47.0]);
    o.top_k = 3;
    o
}

fn write_store(dir: &Path, n: usize) -> StoreMetadata {
    let mut w = StoreWriter::create(dir, opts()).unwrap();
    for i in 0..n {
        w.push(record(i)).unwrap();
    }
    w.finish().unwrap()
}

fn files_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    v.sort();
    v
}

#[test]
fn round_trip_and_metadata() {
    let tmp = tempfile::tempdir().unwrap();
    let meta = write_store(tmp.path(), 5);
    assert_eq!(existing_batches(tmp.path()).unwrap(), vec![0, 1, 2]);
    let reader = StoreReader::open(tmp.path()).unwrap();
    assert_eq!(reader.num_scales(), 3);
    let back: Vec<TokenRecord> = reader.records().collect::<Result<_>>().unwrap();
    let want: Vec<TokenRecord> = (0..5).map(record).collect();
    assert_eq!(back, want);
    // A single batch file reads on its own.
    let one: Vec<_> = StoreReader::open(&tmp.path().join("tokens_batch_0001.parquet"))
        .unwrap()
        .records()
        .collect::<Result<_>>()
        .unwrap();
    assert_eq!(one, want[2..4].to_vec());

    assert_eq!(meta, StoreMetadata::load(tmp.path()).unwrap());
    assert_eq!(meta.num_files, 5);
    assert_eq!(meta.total_duration_s, 0.25 * 15.0);
    assert_eq!(
        meta.batches,
        vec!["tokens_batch_0000.parquet", "tokens_batch_0001.parquet", "tokens_batch_0002.parquet"]
    );
    assert_eq!(meta.files[4], "audio/clip_04.wav");
    for (k, s) in meta.scales.iter().enumerate() {
        let mut counts = std::collections::BTreeMap::new();
        for r in &want {
            for &t in &r.scales[k].tokens {
                *counts.entry(t).or_insert(0u64) += 1;
            }
        }
        assert_eq!(s.total_tokens, counts.values().sum::<u64>());
        assert_eq!(s.unique, counts.len() as u64);
        assert_eq!(s.min, counts.keys().next().copied());
        assert_eq!(s.max, counts.keys().last().copied());
        let mut common: Vec<(u32, u64)> = counts.into_iter().collect();
        common.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        common.truncate(3);
        assert_eq!(s.most_common, common);
        assert_eq!(s.codebook_size, Some(4096));
        assert_eq!(s.observed_rate_hz, Some(s.total_tokens as f64 / 3.75));
    }
    assert_eq!(meta.scales[2].rate_hz, Some(47.0));
}

#[test]
fn reruns_give_identical_bytes() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_store(a.path(), 5);
    write_store(b.path(), 5);
    let (fa, fb) = (files_of(a.path()), files_of(b.path()));
    assert_eq!(fa.len(), 4);
    assert_eq!(fa, fb);
}

#[test]
fn resume_reuses_finished_batches_and_gives_the_same_store() {
    let (full, part) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_store(full.path(), 5);
    // An interrupted run: batch 0 and 2 are in place, batch 1 and the metadata are missing.
    for name in ["tokens_batch_0000.parquet", "tokens_batch_0002.parquet"] {
        std::fs::copy(full.path().join(name), part.path().join(name)).unwrap();
    }
    let done = existing_batches(part.path()).unwrap();
    assert_eq!(done, vec![0, 2]);
    let all: Vec<TokenRecord> = (0..5).map(record).collect();
    let mut w = StoreWriter::create(part.path(), opts()).unwrap();
    let mut computed = Vec::new();
    for (b, chunk) in all.chunks(w.batch_size()).enumerate() {
        if done.contains(&b) {
            assert_eq!(w.reuse_batch(b).unwrap(), chunk.len());
        } else {
            w.write_batch(b, chunk).unwrap();
            computed.push(b);
        }
    }
    w.finish().unwrap();
    assert_eq!(computed, vec![1]);
    assert_eq!(files_of(full.path()), files_of(part.path()));
}

#[test]
fn finish_removes_stale_batches_of_a_longer_run() {
    let tmp = tempfile::tempdir().unwrap();
    write_store(tmp.path(), 7);
    assert_eq!(existing_batches(tmp.path()).unwrap(), vec![0, 1, 2, 3]);
    let meta = write_store(tmp.path(), 3);
    assert_eq!(existing_batches(tmp.path()).unwrap(), vec![0, 1]);
    assert_eq!(meta.batches.len(), 2);
    let n = StoreReader::open(tmp.path()).unwrap().records().count();
    assert_eq!(n, 3);
}

#[test]
fn writer_rejects_bad_records_and_order() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = StoreWriter::create(tmp.path(), opts()).unwrap();
    let mut r = record(0);
    r.scales.pop();
    assert!(w.push(r).unwrap_err().to_string().contains("2 scales, the store has 3"));
    let mut r = record(0);
    r.scales[1].shape = vec![5];
    assert!(w.push(r).unwrap_err().to_string().contains("does not hold"));
    let mut r = record(0);
    r.scales[2].tokens[3] = 4096;
    let e = w.push(r).unwrap_err().to_string();
    assert!(e.contains("code 4096 at position 3"), "{e}");
    let mut r = record(0);
    r.duration = f64::NAN;
    assert!(w.push(r).is_err());
    let e = w.write_batch(1, &[record(0)]).unwrap_err().to_string();
    assert!(e.contains("expected batch 0"), "{e}");
    let e = w.write_batch(0, &[record(0), record(1), record(2)]).unwrap_err().to_string();
    assert!(e.contains("batches hold 1 to 2"), "{e}");
    w.write_batch(0, &[record(0)]).unwrap();
    let e = w.write_batch(1, &[record(1)]).unwrap_err().to_string();
    assert!(e.contains("short (last) batch"), "{e}");
    assert!(StoreWriter::create(tmp.path(), StoreOptions::new(0)).is_err());
}

#[test]
fn batch_names() {
    assert_eq!(batch_file_name(3), "tokens_batch_0003.parquet");
    assert_eq!(batch_file_name(12345), "tokens_batch_12345.parquet");
    assert_eq!(parse_batch_file_name("tokens_batch_0042.parquet"), Some(42));
    assert_eq!(parse_batch_file_name("tokens_batch_12345.parquet"), Some(12345));
    assert_eq!(parse_batch_file_name("tokens_batch_042.parquet"), None);
    assert_eq!(parse_batch_file_name("tokens_batch_00042.parquet"), None);
    assert_eq!(parse_batch_file_name(".tokens_batch_0042.parquet.tmp"), None);
    assert!(existing_batches(Path::new("/nonexistent/store")).unwrap().is_empty());
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tokens").join(name)
}

/// The expected content of `pyarrow_store/` (see tools/store_golden.py, which wrote it).
fn pyarrow_expected() -> Vec<TokenRecord> {
    serde_json::from_str::<Vec<(String, f64, Vec<(Vec<u64>, Vec<u32>)>)>>(
        &std::fs::read_to_string(fixture("pyarrow_store_expected.json")).unwrap(),
    )
    .unwrap()
    .into_iter()
    .map(|(file_path, duration, scales)| TokenRecord {
        file_path,
        duration,
        scales: scales.into_iter().map(|(shape, tokens)| ScaleTokens { shape, tokens }).collect(),
    })
    .collect()
}

#[test]
fn reads_a_store_pyarrow_wrote() {
    let reader = StoreReader::open(&fixture("pyarrow_store")).unwrap();
    assert_eq!(reader.files().len(), 2);
    assert_eq!(reader.num_scales(), 3);
    let got: Vec<TokenRecord> = reader.records().collect::<Result<_>>().unwrap();
    assert_eq!(got, pyarrow_expected());
}

#[test]
fn reads_pyarrow_variants_of_the_schema() {
    // Shuffled columns, an extra column, large_string/large_list, int64 codes, zstd and no
    // compression: same records.
    let want = pyarrow_expected();
    for name in ["variant_shuffled_snappy.parquet", "variant_large_types_zstd.parquet", "variant_int64_plain.parquet"] {
        let got: Vec<TokenRecord> =
            StoreReader::open(&fixture(name)).unwrap().records().collect::<Result<_>>().unwrap();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn clear_errors_for_bad_pyarrow_files() {
    let cases = [
        ("bad_missing_shape.parquet", "missing column \"shape_scale_1\""),
        ("bad_float_tokens.parquet", "column \"tokens_scale_0\" has type"),
        ("bad_negative_code.parquet", "row 1: tokens_scale_0: code -1 at position 2"),
        ("bad_count_mismatch.parquet", "row 2: n_tokens_scale_1 is 5 but tokens_scale_1 holds 6 codes"),
        ("bad_null_path.parquet", "row 0: file_path is null"),
    ];
    for (name, want) in cases {
        let err = match StoreReader::open(&fixture(name)) {
            Err(e) => e,
            Ok(r) => r.records().find_map(|r| r.err()).unwrap(),
        };
        let msg = err.to_string();
        assert!(msg.contains(name) && msg.contains(want), "{name}: {msg}");
    }
    let err = StoreReader::open(&fixture("pyarrow_store_expected.json")).unwrap_err().to_string();
    assert!(err.contains("not a readable Parquet file"), "{err}");
}

#[test]
fn batch_tags_and_provenance_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.provenance.insert("model".into(), "m1".into());
    let mut w = StoreWriter::create(tmp.path(), o).unwrap();
    let tags: std::collections::BTreeMap<String, String> = [("inputs".to_string(), "abc".to_string())].into();
    w.write_batch_tagged(0, &[record(0), record(1)], &tags).unwrap();
    w.write_batch(1, &[record(2)]).unwrap();
    let meta = w.finish().unwrap();
    let b0 = batch_tags(&tmp.path().join(batch_file_name(0))).unwrap();
    assert_eq!(b0.into_iter().collect::<Vec<_>>(), [("inputs".into(), "abc".into()), ("model".into(), "m1".into())]);
    let b1 = batch_tags(&tmp.path().join(batch_file_name(1))).unwrap();
    assert_eq!(b1.into_iter().collect::<Vec<_>>(), [("model".to_string(), "m1".to_string())]);
    assert_eq!(StoreMetadata::load(tmp.path()).unwrap(), meta);
    assert_eq!(meta.provenance.get("model").map(String::as_str), Some("m1"));
    // Untagged stores have no tags, and their metadata.json has no provenance key (bytes unchanged).
    let plain = tmp.path().join("plain");
    write_store(&plain, 3);
    assert!(batch_tags(&plain.join(batch_file_name(0))).unwrap().is_empty());
    assert!(!std::fs::read_to_string(plain.join(METADATA_FILE)).unwrap().contains("provenance"));
}

#[test]
fn missing_batches_are_listed() {
    let tmp = tempfile::tempdir().unwrap();
    write_store(tmp.path(), 7); // batches 0..=3
    assert!(missing_batches(tmp.path()).unwrap().is_empty());
    std::fs::remove_file(tmp.path().join(batch_file_name(1))).unwrap();
    std::fs::remove_file(tmp.path().join(batch_file_name(3))).unwrap();
    assert_eq!(
        missing_batches(tmp.path()).unwrap(),
        [(batch_file_name(1), "listed in metadata.json"), (batch_file_name(3), "listed in metadata.json")]
    );
    std::fs::remove_file(tmp.path().join(METADATA_FILE)).unwrap();
    assert_eq!(missing_batches(tmp.path()).unwrap(), [(batch_file_name(1), "a gap in the batch numbers")]);
    // A hostile batch number is one range, not 10^19 names.
    std::fs::write(tmp.path().join(batch_file_name(usize::MAX)), b"").unwrap();
    let got = missing_batches(tmp.path()).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].0, format!("{} … {}", batch_file_name(3), batch_file_name(usize::MAX - 1)));
}

/// Opens and reads every record of `path`: `Ok(records)` or the first typed error.
fn read_all(path: &Path) -> Result<Vec<TokenRecord>> {
    StoreReader::open(path)?.records().collect()
}

/// The byte range of a Parquet file's footer: its Thrift metadata, length and closing magic.
fn footer_range(bytes: &[u8]) -> std::ops::Range<usize> {
    let n = bytes.len();
    let len = u32::from_le_bytes(bytes[n - 8..n - 4].try_into().unwrap()) as usize;
    n - 8 - len..n
}

/// Every single-byte flip (two masks) of the footer of a pyarrow batch and of one of ours: each
/// open and read ends in `Ok` or a typed error (issue 16, bug 2: some panicked in arrow-ipc).
#[test]
fn every_footer_byte_flip_is_ok_or_a_typed_error() {
    let tmp = tempfile::tempdir().unwrap();
    let ours = tmp.path().join("ours");
    write_store(&ours, 2);
    let mut tried = 0;
    for src in [fixture("pyarrow_store/tokens_batch_0000.parquet"), ours.join("tokens_batch_0000.parquet")] {
        let good = std::fs::read(&src).unwrap();
        let want = read_all(&src).unwrap();
        let bad = tmp.path().join("tokens_batch_0000.parquet");
        for at in footer_range(&good) {
            for mask in [0x01u8, 0xff] {
                let mut b = good.clone();
                b[at] ^= mask;
                std::fs::write(&bad, &b).unwrap();
                match read_all(&bad) {
                    Ok(got) => assert_eq!(got.len(), want.len(), "{}: byte {at} ^ {mask:#x}", src.display()),
                    Err(e) => assert!(e.to_string().contains("tokens_batch_0000.parquet"), "{e}"),
                }
                tried += 1;
            }
        }
    }
    assert!(tried > 2000, "{tried}");
}

/// A resumed run reuses a batch whose only damage is in the footer's `ARROW:schema` (which made
/// arrow-ipc panic, and is not needed), and does not reuse one it cannot read: `reuse_batch` fails
/// with a typed error, so the caller writes that batch again (encode's resume does exactly this).
#[test]
fn resume_reads_or_refuses_a_damaged_batch() {
    let tmp = tempfile::tempdir().unwrap();
    write_store(tmp.path(), 6);
    let p1 = tmp.path().join("tokens_batch_0001.parquet");
    let mut b = std::fs::read(&p1).unwrap();
    // A flip inside the `ARROW:schema` footer metadata that made arrow-ipc panic ("Type NONE").
    let at = b.windows(12).position(|w| w == b"ARROW:schema").unwrap() + 116;
    b[at] ^= 0x01;
    std::fs::write(&p1, &b).unwrap();
    let p2 = tmp.path().join("tokens_batch_0002.parquet");
    let b = std::fs::read(&p2).unwrap();
    std::fs::write(&p2, &b[..b.len() / 2]).unwrap();
    let mut w = StoreWriter::create(tmp.path(), opts()).unwrap();
    assert_eq!(w.reuse_batch(0).unwrap(), 2);
    assert_eq!(w.reuse_batch(1).unwrap(), 2);
    let err = w.reuse_batch(2).unwrap_err();
    assert!(matches!(&err, StoreError::Parquet { path, .. } if path == &p2), "{err:?}");
    w.write_batch(2, &[record(4), record(5)]).unwrap();
    w.finish().unwrap();
    let back: Vec<TokenRecord> = StoreReader::open(tmp.path()).unwrap().records().collect::<Result<_>>().unwrap();
    assert_eq!(back, (0..6).map(record).collect::<Vec<_>>());
}

/// The byte range of a Parquet file's column chunks (page headers and pages): after the leading
/// magic, up to the end of the last chunk (the page index and footer follow).
fn data_range(path: &Path) -> std::ops::Range<usize> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let end = reader.metadata().row_groups().iter().flat_map(|rg| rg.columns()).map(|c| {
        let (start, len) = c.byte_range();
        start + len
    });
    4..end.max().unwrap() as usize
}

/// Every single-bit flip inside the column chunks (page headers and data pages) of a batch we
/// wrote is a typed error naming the file; none yields changed records (issue 16: 3 of 60 flips
/// changed analyze results silently). Our writer records a CRC32 of the bytes before the footer.
#[test]
fn every_data_byte_flip_is_an_error_or_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let ours = tmp.path().join("ours");
    write_store(&ours, 2);
    let src = ours.join("tokens_batch_0000.parquet");
    let good = std::fs::read(&src).unwrap();
    let want = read_all(&src).unwrap();
    let bad = tmp.path().join("tokens_batch_0000.parquet");
    let (mut errors, mut silent) = (0, Vec::new());
    for at in data_range(&src) {
        let mut b = good.clone();
        b[at] ^= 0x10;
        std::fs::write(&bad, &b).unwrap();
        match read_all(&bad) {
            Ok(got) if got == want => {}
            Ok(_) => silent.push(at),
            Err(e) => {
                assert!(e.to_string().contains("tokens_batch_0000.parquet"), "{e}");
                errors += 1;
            }
        }
    }
    assert!(silent.is_empty(), "flips at {silent:?} changed the records silently");
    assert_eq!(errors, data_range(&src).len(), "every flip in the checksummed bytes is an error");
}

/// A checksum mismatch is its own error kind, naming the file; `batch_tags` (what encode's resume
/// reads to decide on reuse) refuses the file too, so a resumed run writes that batch again.
#[test]
fn checksum_mismatch_is_a_typed_error_and_blocks_reuse() {
    let tmp = tempfile::tempdir().unwrap();
    write_store(tmp.path(), 4);
    let p1 = tmp.path().join("tokens_batch_0001.parquet");
    let mut b = std::fs::read(&p1).unwrap();
    // A byte in the middle of the column chunks: a data page of some column.
    let r = data_range(&p1);
    b[(r.start + r.end) / 2] ^= 0x01;
    std::fs::write(&p1, &b).unwrap();
    let err = read_all(&p1).unwrap_err();
    let text = err.to_string();
    assert!(format!("{err:?}").starts_with("Checksum"), "{err:?}");
    assert!(text.starts_with(&p1.display().to_string()) && text.contains("checksum mismatch"), "{text}");
    let err = batch_tags(&p1).unwrap_err();
    assert!(format!("{err:?}").starts_with("Checksum"), "{err:?}");
    // Resume: batch 0 reused, batch 1 refused, written again: the store is whole and as before.
    let mut w = StoreWriter::create(tmp.path(), opts()).unwrap();
    assert_eq!(w.reuse_batch(0).unwrap(), 2);
    assert!(w.reuse_batch(1).is_err());
    w.write_batch(1, &[record(2), record(3)]).unwrap();
    w.finish().unwrap();
    assert_eq!(read_all(tmp.path()).unwrap(), (0..4).map(record).collect::<Vec<_>>());
}

/// Our checksum sits in the footer's key-value metadata (`audiotok.crc32`), and files without it
/// (pyarrow's) read as before.
#[test]
fn checksum_is_recorded_in_the_footer() {
    let tmp = tempfile::tempdir().unwrap();
    write_store(tmp.path(), 2);
    let p = tmp.path().join("tokens_batch_0000.parquet");
    let b = std::fs::read(&p).unwrap();
    let r = data_range(&p);
    let crc = crc32fast::hash(&b[..r.end]);
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let reader = SerializedFileReader::new(std::fs::File::open(&p).unwrap()).unwrap();
    let kv = reader.metadata().file_metadata().key_value_metadata().unwrap().clone();
    let v = kv.iter().find(|k| k.key == "audiotok.crc32").and_then(|k| k.value.clone()).unwrap();
    assert_eq!(v, format!("{crc:08x} 0..{}", r.end));
    assert!(!batch_tags(&p).unwrap().contains_key("crc32"), "the checksum is not a tag");
}

/// Page CRC32s that pyarrow writes (`write_page_checksum=True`) are verified: the file reads,
/// and a flip inside a page is a typed error naming the file ("Page CRC checksum mismatch").
#[test]
fn pyarrow_page_checksums_are_verified() {
    let src = fixture("variant_page_checksums.parquet");
    assert_eq!(read_all(&src).unwrap(), pyarrow_expected());
    let good = std::fs::read(&src).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("variant_page_checksums.parquet");
    let (mut crc_errors, mut silent) = (0, Vec::new());
    for at in data_range(&src) {
        let mut b = good.clone();
        b[at] ^= 0x10;
        std::fs::write(&bad, &b).unwrap();
        match read_all(&bad) {
            Ok(got) if got == pyarrow_expected() => {}
            Ok(_) => silent.push(at),
            Err(e) => {
                let text = e.to_string();
                assert!(text.contains("variant_page_checksums.parquet"), "{text}");
                crc_errors += usize::from(text.contains("Page CRC checksum mismatch"));
            }
        }
    }
    assert!(silent.is_empty(), "flips at {silent:?} changed the records silently");
    assert!(crc_errors > data_range(&src).len() / 2, "{crc_errors} CRC errors");
}

/// Found by the fuzz harness (store case 4478): in a pyarrow batch (no checksum of ours), the first
/// page header's value count (the `file_path` dictionary) set to 0 over a non-empty body reached a division by zero in the
/// Parquet crate's string decoder. The page walk refuses it, naming the file and the page.
#[test]
fn a_data_page_claiming_zero_values_is_an_error_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(fixture("variant_large_types_zstd.parquet")).unwrap();
    bytes[14] = 0;
    let path = tmp.path().join("zero.parquet");
    std::fs::write(&path, &bytes).unwrap();
    let err = read_all(&path).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StoreError::Parquet { .. }), "{text}");
    assert!(text.contains("zero.parquet") && text.contains("page 0 claims 0 values"), "{text}");
    // The untouched file still reads.
    assert!(read_all(&fixture("variant_large_types_zstd.parquet")).is_ok());
}

/// The records of Arrow batches in the store's schema, read back column by column.
fn records_of_batches(batches: &[arrow_array::RecordBatch]) -> Vec<TokenRecord> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int32Type, Int64Type};
    let mut out = Vec::new();
    for b in batches {
        let scales = (b.num_columns() - 2) / 3;
        for row in 0..b.num_rows() {
            let list_i32 = |c: usize| -> Vec<u32> {
                b.column(c)
                    .as_list::<i32>()
                    .value(row)
                    .as_primitive::<Int32Type>()
                    .values()
                    .iter()
                    .map(|&v| v as u32)
                    .collect()
            };
            let list_i64 = |c: usize| -> Vec<u64> {
                b.column(c)
                    .as_list::<i32>()
                    .value(row)
                    .as_primitive::<Int64Type>()
                    .values()
                    .iter()
                    .map(|&v| v as u64)
                    .collect()
            };
            let record = TokenRecord {
                file_path: b.column(0).as_string::<i32>().value(row).to_string(),
                duration: b.column(1).as_primitive::<Float64Type>().value(row),
                scales: (0..scales)
                    .map(|k| {
                        let tokens = list_i32(2 + 3 * k);
                        let n = b.column(3 + 3 * k).as_primitive::<Int64Type>().value(row);
                        assert_eq!(n as usize, tokens.len());
                        ScaleTokens { shape: list_i64(4 + 3 * k), tokens }
                    })
                    .collect(),
            };
            out.push(record);
        }
    }
    out
}

#[test]
fn arrow_batches_hold_the_records_in_the_store_schema() {
    let tmp = tempfile::tempdir().unwrap();
    write_store(tmp.path(), 5);
    let reader = StoreReader::open(tmp.path()).unwrap();
    for rows in [1, 2, 3, 100] {
        let it = reader.batches(rows);
        assert_eq!(it.schema(), arrow_schema(3));
        let batches: Vec<_> = it.collect::<Result<_>>().unwrap();
        // Batches span the store's files: 5 records in ceil(5 / rows) batches.
        assert_eq!(batches.len(), 5usize.div_ceil(rows), "rows {rows}");
        assert!(batches.iter().all(|b| b.schema() == arrow_schema(3) && b.num_rows() <= rows));
        assert_eq!(records_of_batches(&batches), (0..5).map(record).collect::<Vec<_>>(), "rows {rows}");
    }
    // pyarrow's variants of the schema come out in ours.
    for name in ["pyarrow_store", "variant_large_types_zstd.parquet", "variant_int64_plain.parquet"] {
        let batches: Vec<_> = StoreReader::open(&fixture(name)).unwrap().batches(2).collect::<Result<_>>().unwrap();
        assert!(batches.iter().all(|b| b.schema() == arrow_schema(3)), "{name}");
        assert_eq!(records_of_batches(&batches), pyarrow_expected(), "{name}");
    }
    // A bad row ends the iteration with its error.
    let mut it = StoreReader::open(&fixture("bad_negative_code.parquet")).unwrap().batches(8);
    let err = it.next().unwrap().unwrap_err().to_string();
    assert!(err.contains("row 1: tokens_scale_0: code -1"), "{err}");
    assert!(it.next().is_none());
}

#[test]
fn records_to_batch_refuses_a_record_of_other_scales() {
    let mut r = record(0);
    r.scales.pop();
    let err = records_to_batch(&arrow_schema(3), &[record(1), r]).unwrap_err().to_string();
    assert!(err.contains("record 1 (audio/clip_00.wav) has 2 scales, the store 3"), "{err}");
}
