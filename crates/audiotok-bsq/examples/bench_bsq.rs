//! Speed of one training update and of encoding, for `tools/bench_bsq.py` (which runs the PyTorch
//! reference on the same configuration and threads and prints the ratio).
//!
//! `cargo run --release -p audiotok-bsq --example bench_bsq -- CONFIG.json BATCH FRAMES STEPS`
//! prints one JSON line: `{"train_steps_per_s": .., "encode_crops_per_s": .., "params": ..}`.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use audiotok_bsq::optim::OptimConfig;
use audiotok_bsq::{Config, Rng, TrainConfig, Trainer};
use candle_core::{Device, Tensor};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: bench_bsq CONFIG.json BATCH FRAMES STEPS");
        std::process::exit(2);
    }
    let model = Config::from_json(&std::fs::read_to_string(&args[1]).unwrap()).unwrap();
    let (batch, frames, steps): (usize, usize, usize) =
        (args[2].parse().unwrap(), args[3].parse().unwrap(), args[4].parse().unwrap());
    let cfg = TrainConfig {
        model: model.clone(),
        optim: OptimConfig { warmup_steps: 10, ..OptimConfig::default() },
        total_steps: 1000,
        ..TrainConfig::default()
    };
    let dev = Device::Cpu;
    let mut t = Trainer::new(cfg, &dev).unwrap();
    let mut rng = Rng::new(1);
    let make = |rng: &mut Rng| {
        let v: Vec<f32> = (0..batch * model.n_mels * frames).map(|_| (rng.uniform() * 2.0 - 1.0) as f32).collect();
        Tensor::from_vec(v, (batch, model.n_mels, frames), &dev).unwrap()
    };
    let x = make(&mut rng);
    t.step(&x).unwrap(); // warm-up
    let start = Instant::now();
    for _ in 0..steps {
        t.step(&x).unwrap();
    }
    let train = steps as f64 / start.elapsed().as_secs_f64();
    let m = t.model();
    m.encode_indices(&x).unwrap();
    let start = Instant::now();
    for _ in 0..steps {
        m.encode_indices(&x).unwrap();
    }
    let encode = (steps * batch) as f64 / start.elapsed().as_secs_f64();
    println!(
        "{{\"train_steps_per_s\": {train:.4}, \"encode_crops_per_s\": {encode:.3}, \"params\": {}}}",
        m.params().count()
    );
}
