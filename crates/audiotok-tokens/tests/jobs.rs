//! The `audiotok bpe` jobs as a library: stream collection (text, `.npy`, the pyarrow store
//! fixture), writing streams and scales, and train / transform / inspect / export on files,
//! with the writes going through the caller's `WriteFile` and progress to its observer.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use audiotok_core::Silent;
use audiotok_features::npy;
use audiotok_tokens::bpe::job::{
    export_hf, inspect, load_model, train_files, transform, Direction, JobError, TrainOptions, TransformOptions,
};
use audiotok_tokens::bpe::Variant;
use audiotok_tokens::store::{ScaleTokens, StoreOptions, StoreReader, StoreWriter, TokenRecord};
use audiotok_tokens::streams::{
    collect_scales, collect_streams, read_scale_streams, write_scales, write_streams, PlainFile, StreamError,
    WriteError,
};

fn store_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tokens/pyarrow_store")
}

/// The fixture's records: `[record][scale]` codes, from the committed expectation.
fn expected_scales() -> Vec<Vec<Vec<u32>>> {
    let text = std::fs::read_to_string(store_fixture().with_file_name("pyarrow_store_expected.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r[2].as_array()
                .unwrap()
                .iter()
                .map(|s| s[1].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect())
                .collect()
        })
        .collect()
}

/// Every event an observer saw, as text.
type Log = audiotok_core::Recorder;

/// A `WriteFile` that records what it is asked to write, then writes it.
#[derive(Default)]
struct Recorder(Mutex<Vec<(PathBuf, usize)>>);

impl audiotok_tokens::streams::WriteFile for Recorder {
    fn write_file(&self, path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
        self.0.lock().unwrap().push((path.to_path_buf(), bytes.len()));
        std::fs::write(path, bytes)?;
        Ok(())
    }
}

#[test]
fn streams_of_the_store_are_interleaved_depth_first_and_scales_come_apart() {
    let store = store_fixture();
    let want = expected_scales();
    let streams = collect_streams(std::slice::from_ref(&store), None).unwrap();
    assert_eq!(streams.len(), 5);
    // Ratios 1:2:4, each frame depth-first: s0[f], s1[2f], s2[4f], s2[4f+1], s1[2f+1], ...
    let (s0, s1, s2) = (&want[0][0], &want[0][1], &want[0][2]);
    assert_eq!(streams[0][..7], [s0[0], s1[0], s2[0], s2[1], s1[1], s2[2], s2[3]]);
    assert_eq!(streams.iter().map(Vec::len).sum::<usize>(), 105);

    let (items, ratios) = collect_scales(std::slice::from_ref(&store), None, Some(4096)).unwrap();
    assert_eq!((items, ratios), (want.clone(), vec![1, 2, 4]));

    let per_scale = read_scale_streams(&store, None).unwrap();
    assert_eq!(per_scale.len(), 3);
    for (k, scale) in per_scale.iter().enumerate() {
        let col: Vec<Vec<u32>> = want.iter().map(|r| r[k].clone()).collect();
        assert_eq!(scale, &col, "scale {k}");
    }

    // Ratios asked for that the store does not have; ids past a codebook.
    let e = collect_scales(std::slice::from_ref(&store), Some(&[1, 3, 4]), None).unwrap_err();
    assert!(matches!(e, StreamError::Ratios { given: true, .. }), "{e}");
    assert!(e.to_string().ends_with("scale lengths [4, 8, 16] are not in the ratios Some([1, 3, 4]) (--scale-ratios)"));
    assert!(matches!(collect_streams(&[store], Some(100)).unwrap_err(), StreamError::Input(_)));
}

#[test]
fn text_and_npy_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let txt = dir.path().join("a.txt");
    std::fs::write(&txt, "1 2 3\n\n4 5\n").unwrap();
    assert_eq!(collect_streams(std::slice::from_ref(&txt), None).unwrap(), [vec![1, 2, 3], vec![4, 5]]);
    // One stream per sequence: no scales.
    assert!(read_scale_streams(&txt, None).unwrap().is_empty());
    let e = collect_scales(std::slice::from_ref(&txt), None, None).unwrap_err();
    assert!(matches!(e, StreamError::SingleStream), "{e}");

    // A 2-D [T, codebooks] .npy: equal rates, interleaved row-major.
    let arr = dir.path().join("c.npy");
    let mut bytes = Vec::new();
    npy::write_i64(&mut bytes, &[3, 2], &[1, 10, 2, 20, 3, 30]).unwrap();
    std::fs::write(&arr, bytes).unwrap();
    assert_eq!(collect_streams(std::slice::from_ref(&arr), None).unwrap(), [vec![1, 10, 2, 20, 3, 30]]);
    let (items, ratios) = collect_scales(&[arr], None, None).unwrap();
    assert_eq!((items, ratios), (vec![vec![vec![1, 2, 3], vec![10, 20, 30]]], vec![1, 1]));
}

#[test]
fn scales_that_do_not_interleave_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("odd");
    let mut w = StoreWriter::create(&store, StoreOptions::new(2)).unwrap();
    let scales = vec![ScaleTokens::stream(vec![1, 2, 3]), ScaleTokens::stream(vec![1, 2, 3, 4, 5])];
    w.push(TokenRecord { file_path: "x.wav".into(), duration: 1.0, scales }).unwrap();
    w.finish().unwrap();
    let e = collect_streams(&[store], None).unwrap_err();
    assert!(matches!(e, StreamError::NotInterleavable { .. }));
    assert!(e.to_string().ends_with("scale lengths are not whole multiples of scale 0's, cannot interleave"), "{e}");
}

#[test]
fn streams_and_scales_are_written_as_text_npy_or_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sink = Recorder::default();
    write_streams(&d.join("s.txt"), &[vec![1, 2], vec![], vec![3]], &sink).unwrap();
    assert_eq!(std::fs::read_to_string(d.join("s.txt")).unwrap(), "1 2\n\n3\n");
    write_streams(&d.join("s.NPY"), &[vec![7, 8, 9]], &sink).unwrap();
    let back = npy::read(&std::fs::read(d.join("s.NPY")).unwrap()[..]).unwrap();
    assert_eq!((back.shape, back.data), (vec![3], npy::NpyData::Int(vec![7, 8, 9])));
    assert_eq!(sink.0.lock().unwrap().len(), 2);
    let e = write_streams(&d.join("two.npy"), &[vec![1], vec![2]], &sink).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{}: .npy output holds one sequence, the input had 2", d.join("two.npy").display())
    );
    assert!(!d.join("two.npy").exists());

    // Scales: a [T, scales] array for one sequence of equal ratios, else a store.
    let one = vec![vec![vec![1, 2, 3], vec![4, 5, 6]]];
    write_scales(&d.join("x.npy"), &one, Path::new("in.txt"), None, &[1, 1], &sink).unwrap();
    let back = npy::read(&std::fs::read(d.join("x.npy")).unwrap()[..]).unwrap();
    assert_eq!((back.shape, back.data), (vec![3, 2], npy::NpyData::Int(vec![1, 4, 2, 5, 3, 6])));
    let e = write_scales(&d.join("y.npy"), &one, Path::new("in.txt"), None, &[1, 2], &sink).unwrap_err();
    assert!(matches!(e, StreamError::NpyScales { .. }), "{e}");

    let items = expected_scales();
    write_scales(&d.join("store"), &items, Path::new("in.txt"), None, &[1, 2, 4], &sink).unwrap();
    let recs: Vec<TokenRecord> = StoreReader::open(&d.join("store")).unwrap().records().map(Result::unwrap).collect();
    assert_eq!(recs.len(), 5);
    assert_eq!((recs[1].file_path.as_str(), recs[1].duration), ("in.txt:2", 0.0));
    // --like: names and durations from the store, whose record count must match.
    write_scales(&d.join("liked"), &items, Path::new("in.txt"), Some(&store_fixture()), &[1, 2, 4], &sink).unwrap();
    let recs: Vec<TokenRecord> = StoreReader::open(&d.join("liked")).unwrap().records().map(Result::unwrap).collect();
    assert_eq!((recs[0].file_path.as_str(), recs[0].duration), ("audio/a.wav", 9.703125));
    let e = write_scales(&d.join("short"), &items[..2], Path::new("in.txt"), Some(&store_fixture()), &[1, 2, 4], &sink)
        .unwrap_err();
    assert_eq!(e.to_string(), format!("--like {}: 5 records, the input has 2 sequences", store_fixture().display()));
    // Stores are written by the store writer, not the sink.
    assert_eq!(sink.0.lock().unwrap().len(), 3);
}

/// A skewed corpus with runs, deterministic.
fn corpus() -> String {
    let mut x: u64 = 7;
    let mut lines = Vec::new();
    for _ in 0..20 {
        let mut line = Vec::new();
        for _ in 0..200 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let r = (x >> 33) % 100;
            let t = if r < 50 { r % 4 } else { 4 + r % 12 };
            line.push(t.to_string());
            if r % 7 == 0 {
                line.push(t.to_string());
            }
        }
        lines.push(line.join(" "));
    }
    lines.join("\n") + "\n"
}

#[test]
fn train_transform_inspect_export_on_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = d.join("codes.txt");
    std::fs::write(&input, corpus()).unwrap();
    let tokens = corpus().split_whitespace().count();

    let mut opts = TrainOptions::new(Variant::Plain, vec![input.clone()], d.join("m.json"));
    opts.merges = Some(30);
    let sink = Recorder::default();
    let s = train_files(&opts, &sink).unwrap();
    assert_eq!((s.sequences, s.tokens, s.merges), (20, tokens, 30));
    assert_eq!(s.vocab_size, 16 + 30, "codebook from the largest id");
    assert_eq!(sink.0.lock().unwrap()[0].0, d.join("m.json"));
    let model = load_model(&d.join("m.json")).unwrap();
    assert_eq!(model.merges().len(), 30);

    // Encode, then decode back: lossless; the observer sees one phase each.
    let log = Log::default();
    let t = TransformOptions {
        direction: Direction::Encode,
        model: d.join("m.json"),
        input: input.clone(),
        output: d.join("enc.txt"),
        like: None,
    };
    let enc = transform(&t, &log, &PlainFile).unwrap();
    assert_eq!((enc.sequences, enc.input_len), (20, tokens));
    assert!(enc.output_len < tokens);
    let back =
        TransformOptions { direction: Direction::Decode, input: d.join("enc.txt"), output: d.join("dec.txt"), ..t };
    let dec = transform(&back, &log, &PlainFile).unwrap();
    assert_eq!((dec.input_len, dec.output_len), (enc.output_len, tokens));
    assert_eq!(std::fs::read_to_string(d.join("dec.txt")).unwrap(), corpus());
    let mut want = vec!["begin encode 20 sequences".to_string()];
    want.extend(std::iter::repeat_n("advance 1".to_string(), 20));
    want.push("end".into());
    want.push("begin decode 20 sequences".into());
    want.extend(std::iter::repeat_n("advance 1".to_string(), 20));
    want.push("end".into());
    assert_eq!(log.events(), want);

    let r = inspect(&d.join("m.json"), Some(&input)).unwrap();
    let c = r.stats.compression.unwrap();
    assert_eq!((c.base_tokens, c.encoded_symbols), (tokens as u64, enc.output_len as u64));
    assert!(r.scales_alone.is_empty());
    export_hf(&d.join("m.json"), &d.join("tokenizer.json"), &PlainFile).unwrap();
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(d.join("tokenizer.json")).unwrap()).unwrap();
    assert_eq!(j["model"]["type"], "BPE");

    // A single-stream model on the store: each scale alone too.
    let mut opts = TrainOptions::new(Variant::Plain, vec![store_fixture()], d.join("s.json"));
    (opts.merges, opts.codebook_size) = (Some(4), Some(4096));
    train_files(&opts, &PlainFile).unwrap();
    let r = inspect(&d.join("s.json"), Some(&store_fixture())).unwrap();
    let alone: Vec<u64> = r.scales_alone.iter().map(|c| c.as_ref().unwrap().base_tokens).collect();
    assert_eq!(alone, [15, 30, 60]);
}

#[test]
fn multi_scale_round_trip_through_a_store_like_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut opts = TrainOptions::new(Variant::CrossScale, vec![store_fixture()], d.join("m.json"));
    (opts.merges, opts.codebook_size) = (Some(6), Some(4096));
    let s = train_files(&opts, &PlainFile).unwrap();
    assert_eq!((s.sequences, s.tokens), (5, 105));
    let enc = TransformOptions {
        direction: Direction::Encode,
        model: d.join("m.json"),
        input: store_fixture(),
        output: d.join("enc.txt"),
        like: None,
    };
    transform(&enc, &Silent, &PlainFile).unwrap();
    let dec = TransformOptions {
        direction: Direction::Decode,
        input: d.join("enc.txt"),
        output: d.join("dec"),
        like: Some(store_fixture()),
        ..enc
    };
    let sum = transform(&dec, &Silent, &PlainFile).unwrap();
    assert_eq!(sum.output_len, 105);
    let recs: Vec<TokenRecord> = StoreReader::open(&d.join("dec")).unwrap().records().map(Result::unwrap).collect();
    let codes: Vec<Vec<Vec<u32>>> = recs.iter().map(|r| r.scales.iter().map(|s| s.tokens.clone()).collect()).collect();
    assert_eq!(codes, expected_scales());
    let r = inspect(&d.join("m.json"), Some(&store_fixture())).unwrap();
    assert_eq!(r.scale_ratios, [1, 2, 4]);
    assert_eq!(r.stats.compression.unwrap().scale_tokens, [15, 30, 60]);
}

/// A `WriteFile` (a plain function) that refuses every write.
fn refuse(path: &Path, _: &[u8]) -> Result<(), WriteError> {
    Err(format!("{}: refused", path.display()).into())
}

#[test]
fn job_errors_name_the_file_and_the_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let e = load_model(&d.join("missing.json")).unwrap_err();
    assert!(matches!(e, JobError::ModelRead { .. }));
    assert!(e.to_string().starts_with(&format!("{}: cannot read: ", d.join("missing.json").display())), "{e}");
    std::fs::write(d.join("bad.json"), r#"{"format": "x", "version": 1}"#).unwrap();
    let e = load_model(&d.join("bad.json")).unwrap_err();
    assert!(e.to_string().starts_with(&format!("{}: not a valid audiotok BPE model: ", d.join("bad.json").display())));

    let input = d.join("codes.txt");
    std::fs::write(&input, corpus()).unwrap();
    let mut opts = TrainOptions::new(Variant::Plain, vec![input.clone()], d.join("m.json"));
    opts.merges = Some(5);
    let e = train_files(&opts, &refuse).unwrap_err();
    assert_eq!(e.to_string(), format!("{}: refused", d.join("m.json").display()));
    assert!(matches!(e, JobError::Write(_)));
    train_files(&opts, &PlainFile).unwrap();

    std::fs::write(d.join("sym.txt"), "1 2\n3 99999\n").unwrap();
    let t = TransformOptions {
        direction: Direction::Decode,
        model: d.join("m.json"),
        input: d.join("sym.txt"),
        output: d.join("out.txt"),
        like: None,
    };
    let e = transform(&t, &Silent, &PlainFile).unwrap_err();
    assert!(matches!(e, JobError::Sequence { sequence: 2, .. }), "{e}");
    assert!(e.to_string().starts_with(&format!("{}: sequence 2: cannot decode: ", d.join("sym.txt").display())));
    assert!(!d.join("out.txt").exists());

    // Ratios given to a single-stream variant are refused by the configuration.
    opts.scale_ratios = Some(vec![1, 2]);
    assert!(matches!(train_files(&opts, &PlainFile).unwrap_err(), JobError::Bpe(_)));
}
