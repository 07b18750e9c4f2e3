//! `audiotok bpe` end to end: train, encode, decode (lossless), inspect, export, bad input.

#![allow(clippy::unwrap_used)] // Test helpers panic on broken fixtures by design.

use assert_cmd::Command;
use predicates::prelude::*;

fn audiotok() -> Command {
    Command::cargo_bin("audiotok").unwrap()
}

/// Runs `audiotok bpe encode|decode --model M --input IN --output OUT` and expects success.
/// Runs `audiotok bpe train FLAGS --input INPUT --out MODEL` and expects exit 2 with `message` on stderr.
fn train_fails(flags: &[&str], input: &std::path::Path, model: &std::path::Path, message: &str) {
    audiotok()
        .args(["bpe", "train"])
        .args(flags)
        .arg("--input")
        .arg(input)
        .arg("--out")
        .arg(model)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(message));
}

fn transform(verb: &str, model: &std::path::Path, input: &std::path::Path, output: &std::path::Path) {
    transform_like(verb, model, input, output, None);
}

/// `bpe encode|decode`, with `--like STORE` when given.
fn transform_like(
    verb: &str,
    model: &std::path::Path,
    input: &std::path::Path,
    output: &std::path::Path,
    like: Option<&std::path::Path>,
) {
    let mut cmd = audiotok();
    cmd.args(["bpe", verb, "--model"]).arg(model).arg("--input").arg(input).arg("--output").arg(output);
    if let Some(l) = like {
        cmd.arg("--like").arg(l);
    }
    cmd.assert().success();
}

/// A skewed corpus with runs, deterministic.
fn corpus() -> String {
    let mut x: u64 = 7;
    let mut lines = Vec::new();
    for _ in 0..40 {
        let mut line = Vec::new();
        for _ in 0..300 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let r = (x >> 33) % 100;
            let t = if r < 50 {
                r % 4
            } else if r < 80 {
                4 + r % 8
            } else {
                12 + r % 20
            };
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
fn train_encode_decode_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("codes.txt");
    std::fs::write(&input, corpus()).unwrap();
    let model = dir.path().join("model.json");
    for variant in ["plain", "rl", "thresholded"] {
        let mut cmd = audiotok();
        cmd.args(["bpe", "train", "--variant", variant, "--merges", "50", "--codebook-size", "64", "--input"])
            .arg(&input)
            .arg("--out")
            .arg(&model);
        if variant == "thresholded" {
            cmd.args(["--min-freq", "3"]);
        }
        cmd.assert().success();
        let enc = dir.path().join("enc.txt");
        let dec = dir.path().join("dec.txt");
        transform("encode", &model, &input, &enc);
        transform("decode", &model, &enc, &dec);
        assert_eq!(std::fs::read_to_string(&dec).unwrap(), corpus(), "{variant}");
        let enc_len: usize = std::fs::read_to_string(&enc).unwrap().split_whitespace().count();
        assert!(enc_len < corpus().split_whitespace().count(), "{variant} does not compress");
    }
    audiotok()
        .args(["bpe", "inspect", "--model"])
        .arg(&model)
        .arg("--input")
        .arg(&input)
        .assert()
        .success()
        .stdout(predicate::str::contains("compression:"));
    // The HF export is written for a plain model.
    audiotok()
        .args(["bpe", "train", "--merges", "20", "--input"])
        .arg(&input)
        .arg("--out")
        .arg(&model)
        .assert()
        .success();
    let hf = dir.path().join("tokenizer.json");
    audiotok()
        .args(["bpe", "export", "--format", "hf", "--model"])
        .arg(&model)
        .arg("--out")
        .arg(&hf)
        .assert()
        .success();
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(&hf).unwrap()).unwrap();
    assert_eq!(j["model"]["type"], "BPE");
}

#[test]
fn npy_input_and_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("codes.txt");
    std::fs::write(&input, corpus()).unwrap();
    let model = dir.path().join("model.json");
    audiotok()
        .args(["bpe", "train", "--merges", "30", "--input"])
        .arg(&input)
        .arg("--out")
        .arg(&model)
        .assert()
        .success();
    let one: Vec<i64> = corpus().lines().next().unwrap().split_whitespace().map(|t| t.parse().unwrap()).collect();
    let npy_in = dir.path().join("one.npy");
    let mut bytes = Vec::new();
    audiotok_features::npy::write_i64(&mut bytes, &[one.len()], &one).unwrap();
    std::fs::write(&npy_in, bytes).unwrap();
    let enc = dir.path().join("enc.npy");
    let dec = dir.path().join("dec.npy");
    transform("encode", &model, &npy_in, &enc);
    transform("decode", &model, &enc, &dec);
    let back = audiotok_features::npy::read(&std::fs::read(&dec).unwrap()[..]).unwrap();
    assert_eq!(back.data, audiotok_features::npy::NpyData::Int(one));
}

#[test]
fn bad_input_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "1 2 3\n4 x 5\n").unwrap();
    let model = dir.path().join("m.json");
    train_fails(&["--merges", "5"], &bad, &model, "bad.txt: line 2: token 2 'x' is not a non-negative integer id");
    std::fs::write(&bad, "1 -2\n").unwrap();
    train_fails(&["--merges", "5"], &bad, &model, "bad.txt: line 1: token 2 '-2' is a negative id");
    std::fs::write(&bad, "1 2\n3 4 9\n").unwrap();
    train_fails(
        &["--merges", "5", "--codebook-size", "8"],
        &bad,
        &model,
        "bad.txt: line 2: token 3 '9' is not below the codebook size 8",
    );
    std::fs::write(&bad, "").unwrap();
    train_fails(&["--merges", "5"], &bad, &model, "no tokens");
    std::fs::write(&model, r#"{"format": "something-else", "version": 99}"#).unwrap();
    std::fs::write(&bad, "1 2\n").unwrap();
    audiotok()
        .args(["bpe", "encode", "--model"])
        .arg(&model)
        .arg("--input")
        .arg(&bad)
        .arg("--output")
        .arg(dir.path().join("o.txt"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("m.json"));
}

fn store_fixture() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tokens/pyarrow_store")
}

fn records(path: &std::path::Path) -> Vec<audiotok_tokens::store::TokenRecord> {
    audiotok_tokens::store::StoreReader::open(path).unwrap().records().collect::<Result<Vec<_>, _>>().unwrap()
}

#[test]
fn multi_scale_variants_round_trip_through_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_fixture();
    for variant in ["cross-scale", "hierarchical", "rl+cross-scale"] {
        let model = dir.path().join(format!("{variant}.json"));
        audiotok()
            .args(["bpe", "train", "--variant", variant, "--merges", "6", "--codebook-size", "4096", "--input"])
            .arg(&store)
            .arg("--out")
            .arg(&model)
            .assert()
            .success();
        let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&model).unwrap()).unwrap();
        assert_eq!(m["variant"], variant);
        let enc = dir.path().join(format!("{variant}.txt"));
        transform("encode", &model, &store, &enc);
        // One line of symbols per record.
        assert_eq!(std::fs::read_to_string(&enc).unwrap().lines().count(), 5);
        let dec = dir.path().join(format!("{variant}_store"));
        transform_like("decode", &model, &enc, &dec, Some(&store));
        // Lossless: same codes per scale, file paths and durations from --like. Shapes are 1-D on
        // output (the fixture's scale 2 is [2, 2T]): compare the codes.
        let (a, b) = (records(&store), records(&dec));
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!((&x.file_path, x.duration), (&y.file_path, y.duration));
            let codes = |r: &audiotok_tokens::store::TokenRecord| -> Vec<Vec<u32>> {
                r.scales.iter().map(|s| s.tokens.clone()).collect()
            };
            assert_eq!(codes(x), codes(y), "{variant}");
        }
        audiotok()
            .args(["bpe", "inspect", "--model"])
            .arg(&model)
            .arg("--input")
            .arg(&store)
            .assert()
            .success()
            .stdout(
                predicate::str::contains("compression: 105 base tokens")
                    .and(predicate::str::contains("scale 0: 15 tokens (1 per frame)"))
                    .and(predicate::str::contains("scale 2: 60 tokens (4 per frame)"))
                    .and(predicate::str::contains("15 frames: 7 codes -> ")),
            );
    }
    // A single-stream model on the store: the interleaved stream, then each scale alone.
    let model = dir.path().join("plain.json");
    audiotok()
        .args(["bpe", "train", "--variant", "plain", "--merges", "4", "--codebook-size", "4096", "--input"])
        .arg(&store)
        .arg("--out")
        .arg(&model)
        .assert()
        .success();
    audiotok().args(["bpe", "inspect", "--model"]).arg(&model).arg("--input").arg(&store).assert().success().stdout(
        predicate::str::contains("compression: 105 base tokens")
            .and(predicate::str::contains("scale 0 alone: 15 tokens -> "))
            .and(predicate::str::contains("scale 1 alone: 30 tokens -> "))
            .and(predicate::str::contains("scale 2 alone: 60 tokens -> ")),
    );
}

#[test]
fn multi_scale_from_a_two_dimensional_npy() {
    let dir = tempfile::tempdir().unwrap();
    // [T, 3] codebooks at one rate, with recurring frames.
    let t = 200usize;
    let data: Vec<i64> = (0..t).flat_map(|i| [(i % 5) as i64, ((i / 2) % 3) as i64, (i % 2) as i64]).collect();
    let npy_in = dir.path().join("codes.npy");
    let mut bytes = Vec::new();
    audiotok_features::npy::write_i64(&mut bytes, &[t, 3], &data).unwrap();
    std::fs::write(&npy_in, bytes).unwrap();
    let model = dir.path().join("m.json");
    audiotok()
        .args(["bpe", "train", "--variant", "cross-scale", "--merges", "10", "--input"])
        .arg(&npy_in)
        .arg("--out")
        .arg(&model)
        .assert()
        .success();
    let enc = dir.path().join("enc.npy");
    let dec = dir.path().join("dec.npy");
    transform("encode", &model, &npy_in, &enc);
    let symbols = audiotok_features::npy::read(&std::fs::read(&enc).unwrap()[..]).unwrap();
    assert!(symbols.shape[0] < t, "frames merged: {:?}", symbols.shape);
    transform("decode", &model, &enc, &dec);
    let back = audiotok_features::npy::read(&std::fs::read(&dec).unwrap()[..]).unwrap();
    assert_eq!(back.shape, vec![t, 3]);
    assert_eq!(back.data, audiotok_features::npy::NpyData::Int(data));

    // Text input has one stream per sequence: not for multi-scale variants.
    let txt = dir.path().join("a.txt");
    std::fs::write(&txt, "1 2 3\n").unwrap();
    audiotok()
        .args(["bpe", "train", "--variant", "hierarchical", "--merges", "3", "--input"])
        .arg(&txt)
        .arg("--out")
        .arg(&model)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("multi-scale variants need per-scale streams"));
}

#[test]
fn decode_like_a_store_gives_the_same_files() {
    use audiotok_tokens::store::{ScaleTokens, StoreOptions, StoreWriter, TokenRecord};
    let dir = tempfile::tempdir().unwrap();
    // Our own store: 5 records at 1:2 in batches of 2, with codebook sizes and rates.
    let store = dir.path().join("store");
    let mut opts = StoreOptions::new(2);
    opts.batch_size = 2;
    opts.codebook_sizes = Some(vec![64, 64]);
    opts.rates_hz = Some(vec![10.0, 20.0]);
    let mut w = StoreWriter::create(&store, opts).unwrap();
    for r in 0..5u32 {
        let frames = 6 + r as usize;
        let a: Vec<u32> = (0..frames as u32).map(|i| (i * 3 + r) % 7).collect();
        let b: Vec<u32> = (0..2 * frames as u32).map(|i| (i / 2 + r) % 5).collect();
        let scales = vec![ScaleTokens::stream(a), ScaleTokens::stream(b)];
        w.push(TokenRecord { file_path: format!("clip{r}.wav"), duration: frames as f64 / 10.0, scales }).unwrap();
    }
    w.finish().unwrap();
    let model = dir.path().join("m.json");
    audiotok()
        .args(["bpe", "train", "--variant", "cross-scale", "--merges", "8", "--codebook-size", "64", "--input"])
        .arg(&store)
        .arg("--out")
        .arg(&model)
        .assert()
        .success();
    let enc = dir.path().join("enc.txt");
    transform("encode", &model, &store, &enc);
    let dec = dir.path().join("dec");
    transform_like("decode", &model, &enc, &dec, Some(&store));
    // Same batch files and metadata.json, byte for byte.
    let names = |d: &std::path::Path| {
        let mut v: Vec<_> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name()).collect();
        v.sort();
        v
    };
    assert_eq!(names(&store), names(&dec));
    assert_eq!(names(&store).len(), 4, "3 batches + metadata.json");
    for n in names(&store) {
        assert_eq!(std::fs::read(store.join(&n)).unwrap(), std::fs::read(dec.join(&n)).unwrap(), "{n:?}");
    }
}

/// Issue 16: ids near 2^32 made the default codebook size (largest id + 1) wrap (an overflow
/// panic in debug builds, a codebook of 0 in release); now a clear error.
#[test]
fn ids_near_two_to_the_32_are_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.txt");
    let model = dir.path().join("m.json");
    std::fs::write(&input, "1 2 4294967295\n").unwrap();
    train_fails(&["--merges", "5"], &input, &model, "codebook_size 4294967296 (largest id + 1) is out of range");
    assert!(!model.exists());
}

/// Every numeric option of `bpe train` and `bpe inspect` is bounded: a value outside its range is a
/// clap error naming the flag and the range (issue 16).
#[test]
fn numeric_options_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("t.txt");
    std::fs::write(&input, corpus()).unwrap();
    let model = dir.path().join("m.json");
    let cases: [(&[&str], &str, &str); 8] = [
        (&["--merges"], "1099511627776", "1099511627776 is not in 1..=1073741824"),
        (&["--vocab-size"], "1099511627776", "1099511627776 is not in 1..=1073741824"),
        (&["--merges", "5", "--variant", "rl", "--max-run"], "0", "0 is not in 1..=65536"),
        (&["--merges", "5", "--variant", "rl", "--max-run"], "4294967295", "4294967295 is not in 1..=65536"),
        (&["--merges", "5", "--codebook-size"], "0", "0 is not in 1..=1073741822"),
        (&["--merges", "5", "--variant", "hierarchical", "--scale-ratios"], "1,4294967295", "is not in 1..=1024"),
        (
            &["--merges", "5", "--variant", "hierarchical", "--scale-merges"],
            "1099511627776",
            "is not in 0..=1073741824",
        ),
        (&["--variant", "thresholded", "--min-freq"], "0", "0 is not in 1.."),
    ];
    for (flags, value, why) in cases {
        let flag = flags.last().unwrap();
        // A list option names the element that is out of range.
        let value_named = value.rsplit(',').next().unwrap();
        audiotok()
            .args(["bpe", "train"])
            .args(flags)
            .arg(value)
            .arg("--input")
            .arg(&input)
            .arg("--out")
            .arg(&model)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(format!("invalid value '{value_named}' for '{flag} <")))
            .stderr(predicate::str::contains(why));
    }
    assert!(!model.exists());
    audiotok()
        .args(["bpe", "train", "--merges", "1073741824", "--input"])
        .arg(&input)
        .arg("--out")
        .arg(&model)
        .assert()
        .success();
    audiotok()
        .args(["bpe", "inspect", "--top", "1000001", "--model"])
        .arg(&model)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("invalid value '1000001' for '--top <"));
}
