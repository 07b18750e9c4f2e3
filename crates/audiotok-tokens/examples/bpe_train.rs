//! Trains an audio BPE model on a text corpus (one sequence per line, space-separated ids) and
//! reports the training time; used by `tools/bench_bpe.py`.
//!
//! ```text
//! cargo run --release -p audiotok-tokens --example bpe_train -- --train train.txt --codebook 4096 \
//!     --variant plain (--merges N | --vocab-size V) [--min-freq F] [--max-run R] [--eval heldout.txt] \
//!     [--model-out model.json] [--hf-out tokenizer.json] [--ids-out heldout.ids]
//! ```
//!
//! Prints one JSON object: training tokens, seconds (train only: reading, encoding and writing are
//! outside the timed span), tokens per second, merges, vocabulary size and the compression (base
//! tokens / encoded symbols) on the training and `--eval` corpora. `--ids-out` writes the encoded
//! `--eval` lines (our ids); `--hf-out` the HF `tokenizers` export (plain / thresholded only).
//! Single-stream variants only.

use std::error::Error;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::time::Instant;

use audiotok_tokens::bpe::{train, Corpus, TrainerConfig, Variant};

fn opt(args: &[String], name: &str) -> Result<Option<String>, Box<dyn Error>> {
    match args.iter().position(|a| a == name) {
        Some(i) => Ok(Some(args.get(i + 1).ok_or_else(|| format!("{name} needs a value"))?.clone())),
        None => Ok(None),
    }
}

fn parse<T: std::str::FromStr>(args: &[String], name: &str) -> Result<Option<T>, Box<dyn Error>> {
    match opt(args, name)? {
        Some(v) => Ok(Some(v.parse().map_err(|_| format!("bad value for {name}: {v}"))?)),
        None => Ok(None),
    }
}

fn read_corpus(path: &str) -> Result<Vec<Vec<u32>>, Box<dyn Error>> {
    let mut out = Vec::new();
    for line in BufReader::new(std::fs::File::open(path)?).lines() {
        let line = line?;
        let seq: Result<Vec<u32>, _> = line.split_ascii_whitespace().map(str::parse).collect();
        out.push(seq.map_err(|e| format!("{path}: {e}"))?);
    }
    Ok(out)
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let train_path = opt(&args, "--train")?.ok_or("missing --train")?;
    let variant: Variant = opt(&args, "--variant")?.unwrap_or_else(|| "plain".into()).parse()?;
    let codebook: u32 = parse(&args, "--codebook")?.ok_or("missing --codebook")?;
    let mut cfg = TrainerConfig::new(variant, codebook);
    cfg.merges = parse(&args, "--merges")?;
    cfg.vocab_size = parse(&args, "--vocab-size")?;
    cfg.min_freq = parse(&args, "--min-freq")?;
    if let Some(r) = parse(&args, "--max-run")? {
        cfg.max_run = r;
    }
    let corpus = read_corpus(&train_path)?;
    let tokens: usize = corpus.iter().map(Vec::len).sum();

    let t0 = Instant::now();
    let model = train(&cfg, &Corpus::Streams(&corpus))?;
    let secs = t0.elapsed().as_secs_f64();

    let train_stats = model.stats(Some(&Corpus::Streams(&corpus)))?;
    let mut report = serde_json::json!({
        "variant": variant.name(),
        "train_tokens": tokens,
        "train_seconds": secs,
        "train_tokens_per_s": tokens as f64 / secs,
        "merges": model.merges().len(),
        "base_size": model.base_size(),
        "vocab_size": model.vocab_size(),
        "train_compression": train_stats.compression.as_ref().map(|c| c.ratio),
    });
    if let Some(eval) = opt(&args, "--eval")? {
        let held = read_corpus(&eval)?;
        let t1 = Instant::now();
        let encoded = model.encode_corpus(&Corpus::Streams(&held))?;
        let enc_secs = t1.elapsed().as_secs_f64();
        let base: usize = held.iter().map(Vec::len).sum();
        let syms: usize = encoded.iter().map(Vec::len).sum();
        report["eval_tokens"] = base.into();
        report["eval_symbols"] = syms.into();
        report["eval_compression"] = (base as f64 / syms.max(1) as f64).into();
        report["encode_tokens_per_s"] = (base as f64 / enc_secs).into();
        if let Some(ids_out) = opt(&args, "--ids-out")? {
            let mut w = BufWriter::new(std::fs::File::create(ids_out)?);
            for e in &encoded {
                let t: Vec<String> = e.iter().map(u32::to_string).collect();
                writeln!(w, "{}", t.join(" "))?;
            }
            w.flush()?;
        }
    }
    if let Some(p) = opt(&args, "--model-out")? {
        std::fs::write(p, model.to_json()?)?;
    }
    if let Some(p) = opt(&args, "--hf-out")? {
        std::fs::write(p, model.to_hf_tokenizer_json()?)?;
    }
    println!("{report}");
    Ok(())
}
