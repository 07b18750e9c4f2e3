//! Audio BPE: round trips for every variant, hand-worked models, determinism, model files, errors.
#![allow(clippy::unwrap_used)]

use audiotok_tokens::bpe::{train, BpeError, BpeModel, Corpus, TrainerConfig, Variant, FORMAT_VERSION};
use proptest::prelude::*;

fn cfg(variant: Variant, codebook: u32, merges: usize) -> TrainerConfig {
    let mut c = TrainerConfig::new(variant, codebook);
    c.merges = Some(merges);
    if variant == Variant::Thresholded {
        c.min_freq = Some(2);
    }
    c
}

fn plain(corpus: &[Vec<u32>], codebook: u32, merges: usize) -> BpeModel {
    train(&cfg(Variant::Plain, codebook, merges), &Corpus::Streams(corpus)).unwrap()
}

// ---------------------------------------------------------------- hand-worked examples

#[test]
fn plain_two_merges_worked_example() {
    // Counts: (1,2) = 3 + 1 = 4, (2,1) = 2, (2,3) = 1. Merge 0: (1,2) -> 4, giving [4,4,4] and
    // [4,3]. Now (4,4) counts floor(3/2) = 1 and (4,3) counts 1: a tie, won by the smaller pair
    // (4,3) -> 5.
    let corpus = vec![vec![1, 2, 1, 2, 1, 2], vec![1, 2, 3]];
    let m = plain(&corpus, 4, 2);
    assert_eq!(m.merges(), vec![(1, 2, 4), (4, 3, 5)]);
    assert_eq!(m.base_size(), 4);
    assert_eq!(m.vocab_size(), 6);
    assert_eq!(m.encode(&corpus[0]).unwrap(), vec![4, 4, 4]);
    assert_eq!(m.encode(&corpus[1]).unwrap(), vec![5]);
    assert_eq!(m.encode(&[3, 1, 2, 3, 1]).unwrap(), vec![3, 5, 1]);
    assert_eq!(m.symbol_tokens(5), Some(&[1, 2, 3][..]));
    let json = m.to_json().unwrap();
    assert!(json.contains("\"format\": \"audiotok-bpe\""), "{json}");
    assert!(json.contains("\"variant\": \"plain\""), "{json}");
    assert!(json.contains("[1, 2, 4]") && json.contains("[4, 3, 5]"), "{json}");
    let st = m.stats(Some(&Corpus::Streams(&corpus))).unwrap();
    assert_eq!(st.compression.as_ref().unwrap().base_tokens, 9);
    assert_eq!(st.compression.as_ref().unwrap().encoded_symbols, 4);
    assert_eq!(st.longest[0].tokens, vec![1, 2, 3]);
}

#[test]
fn runs_merge_left_to_right() {
    // (0,0) counts floor(5/2) = 2 in a run of five; merging gives [2, 2, 0].
    let m = plain(&[vec![0, 0, 0, 0, 0, 1]], 2, 1);
    assert_eq!(m.merges(), vec![(0, 0, 2)]);
    assert_eq!(m.encode(&[0, 0, 0, 0, 0, 1]).unwrap(), vec![2, 2, 0, 1]);
    assert_eq!(m.encode(&[0, 0, 0]).unwrap(), vec![2, 0]);
}

#[test]
fn rl_worked_example() {
    // Runs: (5,3) (7,1) (5,3) (7,1) (5,2) with max_run 2 -> (5,2)(5,1) 7 (5,2)(5,1) 7 (5,2).
    // Base table: [5,2] -> id 8 (codebook 8). Pairs: (8,5) = 2, (5,7) = 2, (7,8) = 2: tie -> (5,7).
    let corpus = vec![vec![5, 5, 5, 7, 5, 5, 5, 7, 5, 5]];
    let mut c = cfg(Variant::Rl, 8, 1);
    c.max_run = 2;
    let m = train(&c, &Corpus::Streams(&corpus)).unwrap();
    assert_eq!(m.base_size(), 9);
    assert_eq!(m.merges(), vec![(5, 7, 9)]);
    assert_eq!(m.encode(&corpus[0]).unwrap(), vec![8, 9, 8, 9, 8]);
    assert_eq!(m.decode(&[8, 9, 8, 9, 8]).unwrap(), corpus[0]);
    assert!(m.to_json().unwrap().contains("[5, 2]"));
    // A held-out run longer than max_run is split.
    assert_eq!(m.encode(&[5, 5, 5, 5, 5]).unwrap(), vec![8, 8, 5]);
}

#[test]
fn cross_scale_worked_example() {
    // Ratios 1:2, codebook 4: frames are (s0, s1a, s1b). Escapes are s*4 + c (ids 0..8); the two
    // distinct frames (0,0,1) and (1,2,3) are ids 8 and 9 (sorted). Sequence 9 8 9 8: (9,8) = 2.
    let item = vec![vec![1, 0, 1, 0], vec![2, 3, 0, 1, 2, 3, 0, 1]];
    let corpus = vec![item.clone()];
    let mut c = cfg(Variant::CrossScale, 4, 1);
    c.scale_ratios = vec![1, 2];
    let m = train(&c, &Corpus::Scales(&corpus)).unwrap();
    assert_eq!(m.base_size(), 10);
    assert_eq!(m.merges(), vec![(9, 8, 10)]);
    assert_eq!(m.encode_scales(&item).unwrap(), vec![10, 10]);
    assert_eq!(m.decode_scales(&[10, 10]).unwrap(), item);
    // An unseen frame (3,3,3) is written with escapes 3, 4+3, 4+3.
    let held = vec![vec![1, 3], vec![2, 3, 3, 3]];
    assert_eq!(m.encode_scales(&held).unwrap(), vec![9, 3, 7, 7]);
    assert_eq!(m.decode_scales(&[9, 3, 7, 7]).unwrap(), held);
    let st = m.stats(Some(&Corpus::Scales(&corpus))).unwrap();
    let comp = st.compression.unwrap();
    assert_eq!((comp.base_tokens, comp.frames, comp.encoded_symbols), (12, 4, 2));
    assert_eq!(comp.scale_tokens, vec![4, 8]);
}

#[test]
fn hierarchical_stages() {
    // Ratios 1:2, codebook 4: per-scale stage sees only the scale-1 pairs of each frame.
    let item = vec![vec![1, 1, 1, 1], vec![2, 3, 2, 3, 2, 3, 2, 3]];
    let mut c = cfg(Variant::Hierarchical, 4, 2);
    c.scale_ratios = vec![1, 2];
    c.scale_merges = Some(1);
    let m = train(&c, &Corpus::Scales(std::slice::from_ref(&item))).unwrap();
    // Stage 1: (4+2, 4+3) = (6, 7) -> 8. Stage 2 over [1, 8, 1, 8, 1, 8, 1, 8]: (1,8) -> 9.
    assert_eq!(m.merges(), vec![(6, 7, 8), (1, 8, 9)]);
    assert_eq!(m.stage_merges(), &[1, 1]);
    assert_eq!(m.encode_scales(&item).unwrap(), vec![9, 9, 9, 9]);
    assert_eq!(m.decode_scales(&[9, 9, 9, 9]).unwrap(), item);
    // The per-scale stage never merges across frames: (7, 6) spans two frames of scale 1.
    let m2 = BpeModel::from_json(&m.to_json().unwrap()).unwrap();
    assert_eq!(m2.encode_scales(&item).unwrap(), vec![9, 9, 9, 9]);
}

#[test]
fn vocab_size_and_threshold_stop() {
    let corpus = vec![vec![0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 4, 5]];
    let mut c = TrainerConfig::new(Variant::Plain, 6);
    c.vocab_size = Some(8);
    let m = train(&c, &Corpus::Streams(&corpus)).unwrap();
    assert_eq!(m.vocab_size(), 8);
    let mut t = TrainerConfig::new(Variant::Thresholded, 6);
    t.min_freq = Some(3);
    let m = train(&t, &Corpus::Streams(&corpus)).unwrap();
    // Ties at count 3 go to the smallest pair: (0,1) -> 6; then (2,3) -> 7 (before (6,2)); then
    // (6,7) -> 8; then every pair count is below 3.
    assert_eq!(m.merges(), vec![(0, 1, 6), (2, 3, 7), (6, 7, 8)]);
}

#[test]
fn training_is_deterministic() {
    let corpus: Vec<Vec<u32>> =
        (0..20).map(|i| (0..200).map(|j| ((i * 7 + j * j * 3 + j / 5) % 11) as u32).collect()).collect();
    for v in [Variant::Plain, Variant::Rl] {
        let a = train(&cfg(v, 11, 40), &Corpus::Streams(&corpus)).unwrap().to_json().unwrap();
        let b = train(&cfg(v, 11, 40), &Corpus::Streams(&corpus)).unwrap().to_json().unwrap();
        assert_eq!(a, b);
    }
}

#[test]
fn long_lines_and_long_runs() {
    // One 60k-code line (periodic with long runs) plus a line of one token repeated: positions, not
    // words, are the unit of work, so this is as cheap as many short lines.
    let mut line: Vec<u32> = Vec::new();
    for i in 0..3000u32 {
        line.extend([i % 7, (i * 3) % 11, 5, 5, 5, 5, 5, 5, 5, (i % 13) + 20]);
        line.extend(std::iter::repeat_n(i % 3, (i % 9) as usize + 1));
        line.extend([1, 2, 3, 4, 1, 2, 3, 4]);
    }
    let corpus = vec![line.clone(), vec![9; 5000]];
    for v in [Variant::Plain, Variant::Rl] {
        let m = train(&cfg(v, 40, 300), &Corpus::Streams(&corpus)).unwrap();
        for s in &corpus {
            let e = m.encode(s).unwrap();
            assert!(e.len() * 4 < s.len(), "{v}: {} -> {}", s.len(), e.len());
            assert_eq!(&m.decode(&e).unwrap(), s);
        }
    }
}

// ---------------------------------------------------------------- model files

#[test]
fn json_round_trip_and_version_errors() {
    let corpus = vec![vec![1, 2, 1, 2, 1, 2], vec![1, 2, 3]];
    let m = plain(&corpus, 4, 2);
    let json = m.to_json().unwrap();
    let back = BpeModel::from_json(&json).unwrap();
    assert_eq!(back.to_json().unwrap(), json);
    let v2 = json.replace(&format!("\"version\": {FORMAT_VERSION}"), "\"version\": 99");
    assert!(matches!(BpeModel::from_json(&v2), Err(BpeError::Version { found: 99, .. })));
    let other = json.replace("audiotok-bpe", "something-else");
    assert!(matches!(BpeModel::from_json(&other), Err(BpeError::Format { .. })));
    assert!(matches!(BpeModel::from_json("{\"model\": {}}"), Err(BpeError::Format { .. })));
    let bad = json.replace("[4, 3, 5]", "[4, 9, 5]");
    assert!(matches!(BpeModel::from_json(&bad), Err(BpeError::Model(_))));
}

// ---------------------------------------------------------------- errors

#[test]
fn input_errors() {
    let c = cfg(Variant::Plain, 4, 2);
    let e = train(&c, &Corpus::Streams(&[vec![0, 4]])).unwrap_err();
    assert!(matches!(e, BpeError::TokenOutOfRange { token: 4, position: 1, codebook_size: 4, .. }), "{e}");
    assert!(matches!(train(&c, &Corpus::Streams(&[])), Err(BpeError::Empty(_))));
    assert!(matches!(train(&c, &Corpus::Streams(&[vec![]])), Err(BpeError::Empty(_))));
    let m = plain(&[vec![1, 2, 1, 2]], 4, 1);
    assert!(matches!(m.encode(&[1, 7]), Err(BpeError::TokenOutOfRange { token: 7, .. })));
    assert!(matches!(m.decode(&[99]), Err(BpeError::Decode(_))));
    assert!(matches!(m.encode_scales(&[vec![1]]), Err(BpeError::WrongInput { .. })));

    let mut x = cfg(Variant::CrossScale, 4, 2);
    x.scale_ratios = vec![1, 2];
    let uneven = vec![vec![vec![1, 2], vec![0, 1, 2]]];
    assert!(matches!(train(&x, &Corpus::Scales(&uneven)), Err(BpeError::ScaleLengths { .. })));
    let wrong_scales = vec![vec![vec![1, 2]]];
    assert!(matches!(train(&x, &Corpus::Scales(&wrong_scales)), Err(BpeError::ScaleLengths { .. })));
    assert!(matches!(train(&x, &Corpus::Streams(&[vec![1]])), Err(BpeError::WrongInput { .. })));
    x.scale_ratios = vec![];
    assert!(matches!(train(&x, &Corpus::Scales(&uneven)), Err(BpeError::Config(_))));

    let mut both = cfg(Variant::Plain, 4, 2);
    both.vocab_size = Some(10);
    assert!(matches!(train(&both, &Corpus::Streams(&[vec![1]])), Err(BpeError::Config(_))));
    let none = TrainerConfig::new(Variant::Plain, 4);
    assert!(matches!(train(&none, &Corpus::Streams(&[vec![1]])), Err(BpeError::Config(_))));
    let mut th = TrainerConfig::new(Variant::Thresholded, 4);
    th.merges = Some(3);
    assert!(matches!(train(&th, &Corpus::Streams(&[vec![1]])), Err(BpeError::Config(_))));
}

#[test]
fn hf_export_shape() {
    let m = plain(&[vec![1, 2, 1, 2, 1, 2], vec![1, 2, 3]], 4, 2);
    let j: serde_json::Value = serde_json::from_str(&m.to_hf_tokenizer_json().unwrap()).unwrap();
    assert_eq!(j["model"]["type"], "BPE");
    assert_eq!(j["model"]["vocab"]["\u{4E01}\u{4E02}"], 4);
    assert_eq!(j["model"]["vocab"]["\u{4E01}\u{4E02}\u{4E03}"], 5);
    assert_eq!(j["model"]["merges"][1][0], "\u{4E01}\u{4E02}");
    assert!(j["pre_tokenizer"].is_null());
    let rl = train(&cfg(Variant::Rl, 4, 1), &Corpus::Streams(&[vec![1, 1, 2, 1, 1, 2]])).unwrap();
    assert!(matches!(rl.to_hf_tokenizer_json(), Err(BpeError::Export(_))));
}

// ---------------------------------------------------------------- property tests

fn stream(codebook: u32) -> impl Strategy<Value = Vec<u32>> {
    // Tokens with runs: (token, run length) pieces.
    prop::collection::vec((0..codebook, 1usize..6), 0..25)
        .prop_map(|runs| runs.into_iter().flat_map(|(t, n)| std::iter::repeat_n(t, n)).collect())
}

fn multi(codebook: u32) -> impl Strategy<Value = (Vec<u32>, Vec<Vec<Vec<u32>>>)> {
    let ratios = prop::sample::select(vec![vec![1u32], vec![1, 2], vec![1, 2, 4], vec![1, 3], vec![2, 3]]);
    ratios.prop_flat_map(move |r| {
        let fl: u32 = r.iter().sum();
        // Frames drawn from a small pool so that tuples repeat, with runs of identical frames.
        let frame = prop::collection::vec(0..codebook, fl as usize);
        let pool = prop::collection::vec(frame, 1..5);
        let items = prop::collection::vec(prop::collection::vec((0usize..5, 1usize..4), 0..12), 1..5);
        (Just(r), pool, items).prop_map(|(r, pool, items)| {
            let items = items
                .into_iter()
                .map(|frames| {
                    let mut scales: Vec<Vec<u32>> = vec![Vec::new(); r.len()];
                    for (f, n) in frames {
                        let fr = &pool[f % pool.len()];
                        for _ in 0..n {
                            let mut j = 0;
                            for (s, &k) in r.iter().enumerate() {
                                scales[s].extend_from_slice(&fr[j..j + k as usize]);
                                j += k as usize;
                            }
                        }
                    }
                    scales
                })
                .collect();
            (r, items)
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn single_stream_round_trip(
        corpus in prop::collection::vec(stream(5), 1..6),
        held in prop::collection::vec(stream(5), 0..4),
        merges in 0usize..30,
        max_run in 1u32..5,
        min_symbol_count in 1u64..3,
        vi in 0usize..3,
    ) {
        prop_assume!(corpus.iter().any(|s| !s.is_empty()));
        let v = [Variant::Plain, Variant::Rl, Variant::Thresholded][vi];
        let mut c = cfg(v, 5, merges);
        c.max_run = max_run;
        c.min_symbol_count = min_symbol_count;
        let m = train(&c, &Corpus::Streams(&corpus)).unwrap();
        for s in corpus.iter().chain(&held) {
            let e = m.encode(s).unwrap();
            prop_assert!(e.len() <= s.len());
            prop_assert_eq!(&m.decode(&e).unwrap(), s);
        }
        let back = BpeModel::from_json(&m.to_json().unwrap()).unwrap();
        for s in &held {
            prop_assert_eq!(back.encode(s).unwrap(), m.encode(s).unwrap());
        }
    }

    #[test]
    fn multi_scale_round_trip(
        (ratios, corpus) in multi(4),
        held_codes in prop::collection::vec(0u32..4, 0..64),
        merges in 0usize..30,
        max_run in 1u32..4,
        min_symbol_count in 1u64..3,
        vi in 0usize..3,
    ) {
        prop_assume!(corpus.iter().any(|it| !it[0].is_empty()));
        let v = [Variant::CrossScale, Variant::Hierarchical, Variant::RlCrossScale][vi];
        let mut c = cfg(v, 4, merges);
        c.scale_ratios = ratios.clone();
        c.max_run = max_run;
        c.min_symbol_count = min_symbol_count;
        let m = train(&c, &Corpus::Scales(&corpus)).unwrap();
        // A held-out item of random codes (mostly unseen frames).
        let fl: usize = ratios.iter().map(|&r| r as usize).sum();
        let frames = held_codes.len() / fl;
        let mut held: Vec<Vec<u32>> = vec![Vec::new(); ratios.len()];
        for f in 0..frames {
            let mut j = f * fl;
            for (s, &r) in ratios.iter().enumerate() {
                held[s].extend_from_slice(&held_codes[j..j + r as usize]);
                j += r as usize;
            }
        }
        for item in corpus.iter().chain(std::iter::once(&held)) {
            let e = m.encode_scales(item).unwrap();
            prop_assert_eq!(&m.decode_scales(&e).unwrap(), item);
        }
        let back = BpeModel::from_json(&m.to_json().unwrap()).unwrap();
        prop_assert_eq!(back.encode_scales(&held).unwrap(), m.encode_scales(&held).unwrap());
    }

    #[test]
    fn deterministic_json(corpus in prop::collection::vec(stream(6), 1..5), merges in 0usize..20) {
        prop_assume!(corpus.iter().any(|s| !s.is_empty()));
        let a = train(&cfg(Variant::Plain, 6, merges), &Corpus::Streams(&corpus)).unwrap().to_json().unwrap();
        let b = train(&cfg(Variant::Plain, 6, merges), &Corpus::Streams(&corpus)).unwrap().to_json().unwrap();
        prop_assert_eq!(a, b);
    }
}

/// A model file of `variant` over codes `0..codebook`, with the given base table and merges.
fn model_json(variant: &str, codebook: u32, max_run: Option<u32>, symbols: &[Vec<u32>], merges: &[[u32; 3]]) -> String {
    let size = codebook + symbols.len() as u32;
    let vocab = merges.iter().map(|m| m[2] + 1).max().unwrap_or(size).max(size);
    serde_json::json!({
        "format": "audiotok-bpe", "version": FORMAT_VERSION, "variant": variant,
        "base": {
            "codebook_size": codebook, "scale_ratios": [], "max_run": max_run, "size": size,
            "id_layout": "", "symbols": symbols,
        },
        "vocab_size": vocab, "tie_break": "",
        "stages": [{"name": "bpe", "merges": merges.len(), "scope": ""}],
        "merges": merges,
    })
    .to_string()
}

/// Issue 16, bug 11: a 1 KB model whose merges double a symbol 60 times (2^61 codes) is refused at
/// load, with the symbol, its length and the limit, before anything is expanded; so is a base run
/// symbol longer than the limit. A symbol exactly at the limit loads.
#[test]
fn expansion_bombs_are_refused_at_load() {
    let mut merges = vec![[0, 0, 100]];
    merges.extend((0..60).map(|i| [100 + i, 100 + i, 101 + i]));
    let json = model_json("plain", 100, None, &[], &merges);
    assert!(json.len() < 2048);
    let err = BpeModel::from_json(&json).unwrap_err();
    assert!(matches!(err, BpeError::Model(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "invalid BPE model: merge 20 makes symbol 120 stand for 2097152 base tokens, above the limit of 1048576"
    );
    // Symbol 119 (merge 19) is 2^20 codes, exactly the limit.
    let m = BpeModel::from_json(&model_json("plain", 100, None, &[], &merges[..20])).unwrap();
    assert_eq!(m.symbol_tokens(119).unwrap().len(), 1 << 20);

    let json = model_json("rl", 4, Some(u32::MAX), &[vec![1, u32::MAX]], &[]);
    let err = BpeModel::from_json(&json).unwrap_err().to_string();
    assert_eq!(err, "invalid BPE model: base symbol 4 stands for 4294967295 base tokens, above the limit of 1048576");
}
