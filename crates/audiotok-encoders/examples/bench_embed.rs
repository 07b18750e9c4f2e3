//! Times `Encoder::embed` on clips (float32 `.npy`, 16 kHz), one clip per call, on a pool of
//! `--threads` threads (run with `RAYON_NUM_THREADS` set to the same count, as the CLI does).
//! Prints one JSON line: audio seconds, wall seconds, audio seconds per second, the GEMM back end.
//! With `BENCH_EMBED_OUT=DIR`, also writes each clip's final output to `DIR/<i>.npy` (for the
//! parity check of tools/bench_embed.py).
//!
//! `cargo run --release -p audiotok-encoders --features openblas --example bench_embed -- MODEL_DIR THREADS REPEATS CLIP.npy...`

use std::path::Path;
use std::time::Instant;

use audiotok_encoders::{Encoder, Tap};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, threads, repeats, clips @ ..] = &args[..] else {
        return Err("usage: bench_embed MODEL_DIR THREADS REPEATS CLIP.npy...".into());
    };
    let threads: usize = threads.parse()?;
    let repeats: usize = repeats.parse()?;
    let enc = Encoder::load_dir(Path::new(model))?;
    let mut data = Vec::new();
    for c in clips {
        let a = audiotok_features::npy::read(std::fs::File::open(c)?)?;
        data.push(a.to_f32());
    }
    let pool = audiotok_core::thread_pool(threads)?;
    let (secs, audio) = pool.install(|| -> Result<(f64, f64), audiotok_encoders::Error> {
        // Warm-up on the first clip.
        if let Some(first) = data.first() {
            enc.embed(&[first], &[Tap::Final])?;
        }
        let mut best = f64::INFINITY;
        let audio: f64 = data.iter().map(|d| d.len() as f64 / 16_000.0).sum();
        for _ in 0..repeats.max(1) {
            let t0 = Instant::now();
            for d in &data {
                enc.embed(&[d], &[Tap::Final])?;
            }
            best = best.min(t0.elapsed().as_secs_f64());
        }
        if let Ok(dir) = std::env::var("BENCH_EMBED_OUT") {
            for (i, d) in data.iter().enumerate() {
                let e = enc.embed(&[d], &[Tap::Final])?.remove(0);
                let f = std::fs::File::create(Path::new(&dir).join(format!("{i}.npy")))
                    .map_err(|e| audiotok_encoders::Error::Input(e.to_string()))?;
                audiotok_features::npy::write_f32(f, &[e.frames, e.dim], &e.data)
                    .map_err(|e| audiotok_encoders::Error::Input(e.to_string()))?;
            }
        }
        Ok((best, audio))
    })?;
    println!(
        "{{\"audio_s\": {audio:.3}, \"wall_s\": {secs:.4}, \"audio_s_per_s\": {:.3}, \"gemm\": \"{}\"}}",
        audio / secs,
        audiotok_encoders::gemm::Backend::get().name()
    );
    Ok(())
}
