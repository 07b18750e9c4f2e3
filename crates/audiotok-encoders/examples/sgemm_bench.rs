//! f32 GEMM rates at the encoders' shapes: the `gemm` crate (what candle's matmul calls, with its
//! own rayon parallelism or this crate's row split) against OpenBLAS (with `--features openblas`),
//! interleaved in one process, best of `REPEATS`. Prints one JSON line per shape and back end
//! (G multiply-adds per second).
//!
//! `cargo run --release -p audiotok-encoders --features openblas --example sgemm_bench -- THREADS REPEATS`

#![allow(unsafe_code)]

use std::time::Instant;

use audiotok_encoders::gemm::{sgemm_segments, Backend, View};

/// (name, m, k, n): HuBERT-base on a 10 s clip (499 frames), its conv stack (layer 1), the
/// Qwen2-Audio tower on a 30 s window (1500 frames), attention of one head.
const SHAPES: [(&str, usize, usize, usize); 9] = [
    ("hubert qkv/out 499x768x768", 499, 768, 768),
    ("hubert ff in 499x768x3072", 499, 768, 3072),
    ("hubert ff out 499x3072x768", 499, 3072, 768),
    ("hubert conv1 1599x1024x512", 1599, 1024, 512),
    ("tower attn 1500x1280x1280", 1500, 1280, 1280),
    ("tower fc1 1500x1280x5120", 1500, 1280, 5120),
    ("tower fc2 1500x5120x1280", 1500, 5120, 1280),
    ("hubert scores 499x64x499", 499, 64, 499),
    ("hubert context 499x499x64", 499, 499, 64),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let threads: usize = args.first().map(|s| s.parse()).transpose()?.unwrap_or(1);
    let repeats: usize = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(10);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
    let mut backends = vec![("gemm crate, row blocks", Some(Backend::Gemm)), ("gemm crate, its rayon", None)];
    if cfg!(feature = "openblas") {
        backends.push(("openblas, row blocks", Some(Backend::OpenBlas)));
    }
    for (name, m, k, n) in SHAPES {
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 104_729) % 1000) as f32 / 1000.0 - 0.5).collect();
        let mut c = vec![0f32; m * n];
        let mut best = vec![f64::INFINITY; backends.len()];
        for _ in 0..repeats {
            for (bi, (_, be)) in backends.iter().enumerate() {
                let t0 = Instant::now();
                pool.install(|| match be {
                    Some(be) => sgemm_segments(*be, &[m], n, k, View::new(&a, k), View::new(&b, n), 0.0, &mut c, n),
                    // SAFETY: the three buffers hold exactly (m, k), (k, n), (m, n).
                    None => unsafe {
                        gemm::gemm(
                            m,
                            n,
                            k,
                            c.as_mut_ptr(),
                            1,
                            n as isize,
                            false,
                            a.as_ptr(),
                            1,
                            k as isize,
                            b.as_ptr(),
                            1,
                            n as isize,
                            0.0,
                            1.0,
                            false,
                            false,
                            false,
                            if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None },
                        )
                    },
                });
                best[bi] = best[bi].min(t0.elapsed().as_secs_f64());
            }
        }
        for ((label, _), t) in backends.iter().zip(&best) {
            let rate = (m * n * k) as f64 / t / 1e9;
            println!("{{\"shape\": \"{name}\", \"threads\": {threads}, \"backend\": \"{label}\", \"g_madd_per_s\": {rate:.1}}}");
        }
    }
    Ok(())
}
