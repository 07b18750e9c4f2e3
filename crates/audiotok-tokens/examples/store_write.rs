//! Writes a token store from records given as JSON, for tools/store_golden.py.
//!
//! `cargo run --release -p audiotok-tokens --example store_write -- RECORDS.json OUT_DIR BATCH_SIZE`
//!
//! RECORDS.json: `{"codebook_sizes": [..] | null, "rates_hz": [..] | null, "records":
//! [[file_path, duration, [[shape, tokens], ...]], ...]}`.

use std::path::PathBuf;

use audiotok_tokens::store::{ScaleTokens, StoreOptions, StoreWriter, TokenRecord};

/// `[file_path, duration, [[shape, tokens], ...]]`.
type JsonRecord = (String, f64, Vec<(Vec<u64>, Vec<u32>)>);

#[derive(serde::Deserialize)]
struct Input {
    codebook_sizes: Option<Vec<u32>>,
    rates_hz: Option<Vec<f64>>,
    records: Vec<JsonRecord>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [records, out, batch] = args.as_slice() else {
        return Err("usage: store_write RECORDS.json OUT_DIR BATCH_SIZE".into());
    };
    let input: Input = serde_json::from_str(&std::fs::read_to_string(records)?)?;
    let num_scales = input.records.first().map_or(1, |r| r.2.len());
    let mut opts = StoreOptions::new(num_scales);
    opts.batch_size = batch.parse()?;
    opts.codebook_sizes = input.codebook_sizes;
    opts.rates_hz = input.rates_hz;
    let mut w = StoreWriter::create(&PathBuf::from(out), opts)?;
    for (file_path, duration, scales) in input.records {
        let scales = scales.into_iter().map(|(shape, tokens)| ScaleTokens { shape, tokens }).collect();
        w.push(TokenRecord { file_path, duration, scales })?;
    }
    let meta = w.finish()?;
    eprintln!("wrote {} records in {} batches to {out}", meta.num_files, meta.batches.len());
    Ok(())
}
