//! Encode throughput of the candle SNAC on one clip (f32 `.npy` at the model's rate), for
//! `tools/bench_snac.py`:
//!
//! ```sh
//! RAYON_NUM_THREADS=1 cargo run --release -p audiotok-codecs --example snac_encode_bench -- \
//!     bench-data/snac/snac_24khz bench-data/snac/bench_30s_24000.npy 3
//! ```
//!
//! Runs one warm-up encode, then REPEATS timed encodes, and prints one JSON line with the best and
//! median wall time and the throughput (seconds of audio per second) of the best run. The thread count
//! is rayon's (`RAYON_NUM_THREADS`), which candle's matrix products also use.

use std::path::Path;
use std::time::Instant;

use audiotok_codecs::weights;
use audiotok_features::npy;
use candle_core::Device;

type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> BoxResult<()> {
    let args: Vec<String> = std::env::args().collect();
    let (model_dir, input, repeats) = match args.as_slice() {
        [_, m, i] => (m.as_str(), Path::new(i), 3usize),
        [_, m, i, r] => (m.as_str(), Path::new(i), r.parse()?),
        _ => return Err("usage: snac_encode_bench MODEL_DIR INPUT.npy [REPEATS]".into()),
    };
    let model = weights::load_snac(model_dir, None, &Device::Cpu)?;
    let samples = npy::read(std::fs::File::open(input).map_err(|e| format!("{}: {e}", input.display()))?)?.to_f32();
    let seconds = samples.len() as f64 / model.config().sampling_rate as f64;
    let codes = model.encode_samples(&samples)?; // warm-up
    let mut times = Vec::with_capacity(repeats);
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        let c = model.encode_samples(&samples)?;
        times.push(t.elapsed().as_secs_f64());
        if c != codes {
            return Err("encoding is not deterministic".into());
        }
    }
    times.sort_by(f64::total_cmp);
    let best = times[0];
    let median = times[times.len() / 2];
    println!(
        "{{\"impl\": \"candle\", \"threads\": {}, \"audio_s\": {seconds:.3}, \"best_s\": {best:.4}, \"median_s\": {median:.4}, \"x_realtime\": {:.3}}}",
        rayon::current_num_threads(),
        seconds / best
    );
    Ok(())
}
