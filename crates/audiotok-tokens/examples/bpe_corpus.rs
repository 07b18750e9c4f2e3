//! Writes a synthetic codec-token corpus for the BPE tests and benchmark (`tools/bench_bpe.py`).
//!
//! ```text
//! cargo run --release -p audiotok-tokens --example bpe_corpus -- \
//!     --tokens 2000000 --line-len 1500 --codebook 4096 --seed 1 --sample-seed 2 --out train.txt
//! ```
//!
//! Text, one sequence per line, space-separated ids. Deterministic for given arguments. The stream is
//! a Zipf-skewed (exponent 1.1) token source with structure: every token has two preferred
//! successors (themselves Zipf-drawn, fixed by `--seed`), and runs of repeated tokens. Per position:
//! with probability 0.1 the previous token repeats 1 + Geometric(0.35) times, with probability 0.45
//! one of its successors follows, otherwise a fresh Zipf draw. `--seed` fixes the structure (the
//! successor table), `--sample-seed` the sampled stream: a held-out corpus uses the same `--seed`
//! with another `--sample-seed`.

use std::error::Error;
use std::io::{BufWriter, Write};

struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Zipf(Vec<f64>);

impl Zipf {
    fn new(n: usize, s: f64) -> Self {
        let mut cdf = Vec::with_capacity(n);
        let mut acc = 0.0;
        for k in 0..n {
            acc += 1.0 / ((k + 1) as f64).powf(s);
            cdf.push(acc);
        }
        for c in &mut cdf {
            *c /= acc;
        }
        Zipf(cdf)
    }

    fn sample(&self, rng: &mut Rng) -> u32 {
        let u = rng.unit();
        self.0.partition_point(|&c| c <= u).min(self.0.len() - 1) as u32
    }
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: Option<T>) -> Result<T, Box<dyn Error>> {
    match args.iter().position(|a| a == name) {
        Some(i) => {
            let v = args.get(i + 1).ok_or_else(|| format!("{name} needs a value"))?;
            v.parse().map_err(|_| format!("bad value for {name}: {v}").into())
        }
        None => default.ok_or_else(|| format!("missing {name}").into()),
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let tokens: usize = arg(&args, "--tokens", None)?;
    let line_len: usize = arg(&args, "--line-len", Some(1500))?;
    let codebook: usize = arg(&args, "--codebook", Some(4096))?;
    let seed: u64 = arg(&args, "--seed", Some(1))?;
    let sample_seed: u64 = arg(&args, "--sample-seed", Some(seed + 1))?;
    let out: String = arg(&args, "--out", None)?;
    if codebook == 0 || line_len == 0 {
        return Err("--codebook and --line-len must be positive".into());
    }
    let zipf = Zipf::new(codebook, 1.1);
    let mut srng = Rng(seed);
    let succ: Vec<[u32; 2]> = (0..codebook).map(|_| [zipf.sample(&mut srng), zipf.sample(&mut srng)]).collect();
    let mut rng = Rng(sample_seed ^ 0x5eed_0000_0000_0000);
    let mut w = BufWriter::new(std::fs::File::create(&out)?);
    let mut written = 0usize;
    while written < tokens {
        let n = line_len.min(tokens - written);
        let mut line: Vec<u32> = Vec::with_capacity(n);
        while line.len() < n {
            let r = rng.unit();
            match line.last().copied() {
                Some(p) if r < 0.1 => {
                    let mut k = 1;
                    while rng.unit() < 0.65 {
                        k += 1;
                    }
                    for _ in 0..k.min(n - line.len()) {
                        line.push(p);
                    }
                }
                Some(p) if r < 0.55 => line.push(succ[p as usize][(rng.next_u64() & 1) as usize]),
                _ => line.push(zipf.sample(&mut rng)),
            }
        }
        let text: Vec<String> = line.iter().map(u32::to_string).collect();
        writeln!(w, "{}", text.join(" "))?;
        written += n;
    }
    w.flush()?;
    Ok(())
}
