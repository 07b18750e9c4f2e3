//! Criterion benchmarks of audio BPE training and encoding on a synthetic Zipf-like corpus
//! (`cargo bench -p audiotok-tokens --bench bpe`). The cross-tool comparison is tools/bench_bpe.py.
#![allow(missing_docs, clippy::unwrap_used)]

use audiotok_tokens::bpe::{train, Corpus, TrainerConfig, Variant};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// Deterministic skewed tokens with repeated bigrams and runs, `lines` lines of `len` codes.
fn corpus(lines: usize, len: usize, codebook: u32) -> Vec<Vec<u32>> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..lines)
        .map(|_| {
            let mut v: Vec<u32> = Vec::with_capacity(len);
            while v.len() < len {
                let r = next();
                let t = match v.last() {
                    Some(&p) if r % 10 == 0 => p,
                    Some(&p) if r % 10 < 5 => (p * 7 + 3) % codebook,
                    _ => ((r >> 8) % u64::from(codebook)) as u32 / (1 + (r >> 40) % 16) as u32,
                };
                v.push(t);
            }
            v
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let data = corpus(134, 1500, 4096);
    let tokens: usize = data.iter().map(Vec::len).sum();
    let mut g = c.benchmark_group("bpe");
    g.sample_size(10);
    g.throughput(Throughput::Elements(tokens as u64));
    for v in [Variant::Plain, Variant::Rl] {
        let mut cfg = TrainerConfig::new(v, 4096);
        cfg.merges = Some(4096);
        g.bench_function(format!("train_{v}_200k_4096_merges"), |b| {
            b.iter(|| train(&cfg, &Corpus::Streams(&data)).unwrap())
        });
        let model = train(&cfg, &Corpus::Streams(&data)).unwrap();
        g.bench_function(format!("encode_{v}_200k"), |b| {
            b.iter(|| model.encode_corpus(&Corpus::Streams(&data)).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
