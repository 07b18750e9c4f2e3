//! Times `stats::Analyzer` over token files (profiling aid; the benchmark is tools/bench_analyze.py).
//!
//! `cargo run --release -p audiotok-tokens --example analyze_time -- DIR [MAX_N]`

use std::path::PathBuf;

use audiotok_tokens::input::{InputOptions, TokenInput};
use audiotok_tokens::stats::{Analyzer, AnalyzerOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = PathBuf::from(args.first().ok_or("usage: analyze_time DIR [MAX_N]")?);
    let max_n = args.get(1).map_or(Ok(7), |s| s.parse())?;
    let t0 = std::time::Instant::now();
    let input = TokenInput::open(&[dir], InputOptions::default())?;
    let mut a = Analyzer::new(AnalyzerOptions { max_n, ..AnalyzerOptions::default() });
    for s in input.sequences() {
        a.add(&s?)?;
    }
    let t1 = t0.elapsed().as_secs_f64();
    let r = a.finish()?;
    let s = &r.scales[0];
    println!(
        "{} tokens: read+add {t1:.3} s, total {:.3} s; unique n-grams {:?}",
        s.total_tokens,
        t0.elapsed().as_secs_f64(),
        s.ngrams.iter().map(|g| g.unique).collect::<Vec<_>>()
    );
    Ok(())
}
