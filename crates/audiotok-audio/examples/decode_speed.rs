//! Decoding throughput of [`audiotok_audio::Decoder`] alone (no downmix, no resampling).
//!
//! ```text
//! cargo build --release -p audiotok-audio --example decode_speed
//! target/release/examples/decode_speed FILE...
//! ```
//!
//! Decodes every file given on the command line to planar `f32`, counts the frames and prints the
//! total audio duration, the wall-clock time spent and the speed as a multiple of real time. The
//! last line is `audio_s=... wall_s=... xrt=... files=... frames=...` for scripts
//! (tools/bench_features.py reads it).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use audiotok_audio::Decoder;

fn main() -> ExitCode {
    let paths: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if paths.is_empty() {
        eprintln!("usage: decode_speed FILE...");
        return ExitCode::from(2);
    }

    let mut audio_secs = 0.0f64;
    let mut total_frames = 0u64;
    // Touch every decoded sample so the work cannot be optimised away.
    let mut checksum = 0.0f64;
    let start = Instant::now();
    for path in &paths {
        let mut dec = match Decoder::open(path) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let rate = dec.info().sample_rate;
        let mut frames = 0u64;
        loop {
            match dec.next_block() {
                Ok(Some(planes)) => {
                    if let Some(first) = planes.first() {
                        frames += first.len() as u64;
                        checksum += f64::from(first.last().copied().unwrap_or(0.0));
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        total_frames += frames;
        audio_secs += frames as f64 / f64::from(rate);
    }
    let wall = start.elapsed().as_secs_f64();
    let xrt = if wall > 0.0 { audio_secs / wall } else { f64::INFINITY };

    println!("files: {}", paths.len());
    println!("audio: {audio_secs:.3} s ({total_frames} frames per channel)");
    println!("wall:  {wall:.4} s");
    println!("speed: {xrt:.1}x realtime");
    // Keeps `checksum` observable without cluttering the output.
    if checksum.is_nan() {
        println!("note: NaN samples seen");
    }
    println!("audio_s={audio_secs:.6} wall_s={wall:.6} xrt={xrt:.3} files={} frames={total_frames}", paths.len());
    ExitCode::SUCCESS
}
