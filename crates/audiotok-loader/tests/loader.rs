//! The loader on `audiotok pack`'s golden outputs (tests/fixtures/pack, both layouts).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use audiotok_loader::{plan, LoaderOptions, PackedDataset, Plan, Prefetch};
use audiotok_mds::{MdsWriter, Sample, Value, WriterOptions};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn open(name: &str) -> PackedDataset {
    let opts = LoaderOptions { audio_root: Some(root()), ..LoaderOptions::default() };
    PackedDataset::open(root().join("tests/fixtures/pack").join(name), opts).unwrap()
}

#[test]
fn both_layouts_give_the_same_blocks() {
    let std = open("standard_4096_greedy_all");
    let cooking = open("cooking_4096");
    assert_eq!(std.len(), 2);
    assert_eq!(cooking.len(), 2);
    let (mut fa, mut fb) = (std.extractor(), cooking.extractor());
    for i in 0..std.len() {
        let a = std.block(i, &mut fa).unwrap();
        let b = cooking.block(i, &mut fb).unwrap();
        // The cooking layout stores no labels: computed, they equal the standard layout's.
        assert_eq!(a, b, "block {i}");
        assert_eq!(a.input_ids.len(), 4096);
        assert_eq!(*a.cu_seqlens.last().unwrap(), a.seq_lengths.iter().sum::<i32>());
        for (d, w) in a.cu_seqlens.windows(2).enumerate() {
            let (s, e) = (w[0] as usize, w[1] as usize);
            assert_eq!(a.labels[s], -100, "document {d} starts unlabelled");
            assert!(a.position_ids[s..e].iter().copied().eq(0..(e - s) as i64));
        }
        let used = *a.cu_seqlens.last().unwrap() as usize;
        assert!(a.labels[used..].iter().all(|&l| l == -100));
        assert!(a.input_ids.iter().zip(&a.labels).all(|(&t, &l)| !(151_646..=151_648).contains(&t) || l == -100));
        assert_eq!(a.input_features.len(), a.audio.len() * 128 * 3000);
        assert_eq!(a.feature_attention_mask.len(), a.audio.len() * 3000);
    }
}

#[test]
fn features_are_the_extractors_and_the_mask_counts_its_frames() {
    let ds = open("cooking_512");
    let mut fx = ds.extractor();
    let b = ds.block(0, &mut fx).unwrap();
    let mut direct = ds.extractor();
    for (k, p) in b.audio.iter().enumerate() {
        let c = direct.compute(&root().join(p)).unwrap();
        assert_eq!(&b.input_features[k * 384_000..(k + 1) * 384_000], &c.features.data[..]);
        let ones: i32 = b.feature_attention_mask[k * 3000..(k + 1) * 3000].iter().sum();
        assert_eq!(ones as usize, c.features.mask_ones.unwrap());
        assert_eq!(ones as usize, c.samples.div_ceil(160).min(3000));
    }
}

#[test]
fn prefetch_yields_the_plan_in_order_whatever_the_threads() {
    let ds = Arc::new(open("cooking_512"));
    let mut fx = ds.extractor();
    let order = plan(ds.len(), &Plan { shuffle: true, seed: 1, ..Plan::default() }).unwrap();
    let want: Vec<_> = order.iter().map(|&i| ds.block(i, &mut fx).unwrap()).collect();
    for (threads, window) in [(1, 1), (2, 2), (3, 8)] {
        let got: Vec<_> = Prefetch::new(Arc::clone(&ds), order.clone(), threads, window).map(Result::unwrap).collect();
        assert_eq!(got, want);
    }
    // Dropped early: the threads stop.
    let mut it = Prefetch::new(Arc::clone(&ds), order.clone(), 2, 2);
    assert!(it.next().is_some());
    drop(it);
}

/// A cooking-layout block of `ids` naming `audio`.
fn write_block(dir: &Path, ids: &[u32], lengths: &[u32], audio: &str) {
    let cols = vec![
        ("input_ids", "uint32"),
        ("position_ids", "uint32"),
        ("attention_mask", "uint32"),
        ("audio", "str"),
        ("text", "str"),
    ];
    let opts = WriterOptions { raw_encodings: vec!["uint32".into()], ..WriterOptions::default() };
    let mut w = MdsWriter::new(dir, cols, opts).unwrap();
    let le = |v: &[u32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let mut s = Sample::new();
    s.insert("input_ids".into(), Value::Bytes(le(ids)));
    s.insert("position_ids".into(), Value::Bytes(le(&(0..ids.len() as u32).collect::<Vec<_>>())));
    s.insert("attention_mask".into(), Value::Bytes(le(lengths)));
    s.insert("audio".into(), Value::Str(audio.into()));
    s.insert("text".into(), Value::Str(String::new()));
    w.write(&s).unwrap();
    w.finish().unwrap();
}

#[test]
fn mismatches_and_bad_audio_are_errors_naming_the_block() {
    let tmp = tempfile::tempdir().unwrap();
    let clip = root().join("tests/fixtures/audio/speech_1s.wav");
    // 1 s of audio gives 25 features; the block has 3 <|AUDIO|> tokens.
    let dir = tmp.path().join("mismatch");
    write_block(
        &dir,
        &[1, 151_647, 151_646, 151_646, 151_646, 151_648, 2],
        &[7],
        &format!("[{:?}]", clip.display().to_string()),
    );
    let ds = PackedDataset::open(&dir, LoaderOptions::default()).unwrap();
    let e = ds.block(0, &mut ds.extractor()).unwrap_err().to_string();
    assert_eq!(e, format!("{}: block 0: 3 <|AUDIO|> tokens, but its 1 audio(s) give 25 audio features", dir.display()));
    let dir = tmp.path().join("missing");
    write_block(&dir, &[1, 2], &[2], "[\"nope.wav\"]");
    let ds =
        PackedDataset::open(&dir, LoaderOptions { audio_root: Some(tmp.path().into()), ..LoaderOptions::default() })
            .unwrap();
    let e = ds.block(0, &mut ds.extractor()).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}: block 0: audio 0: ", dir.display())) && e.contains("nope.wav"), "{e}");
    let dir = tmp.path().join("long");
    write_block(&dir, &[1, 2], &[3], "[]");
    let ds = PackedDataset::open(&dir, LoaderOptions::default()).unwrap();
    assert!(ds
        .tokens(0)
        .unwrap_err()
        .to_string()
        .ends_with("block 0: document lengths add up to more than its 2 tokens"));
    let e = PackedDataset::open(root().join("tests/fixtures/mds/all_types"), LoaderOptions::default()).unwrap_err();
    assert!(e.to_string().contains("not an audiotok pack output"), "{e}");
}
