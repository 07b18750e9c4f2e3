//! Full-size parity check against a fixture folder made by `tools/gen_snac_fixtures.py --full`:
//!
//! ```sh
//! cargo run --release -p audiotok-codecs --example snac_parity -- bench-data/snac/snac_24khz 7s
//! ```
//!
//! Prints, per codebook, how many codes equal the reference's, the latent's and the decoded audio's max
//! abs difference, and the wall time of encode and decode.

use std::path::Path;
use std::time::Instant;

use audiotok_codecs::weights;
use audiotok_features::npy::{self, NpyData};
use candle_core::{Device, Tensor};

type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

fn read(path: &Path) -> BoxResult<npy::NpyArray> {
    Ok(npy::read(std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?)?)
}

fn main() -> BoxResult<()> {
    let args: Vec<String> = std::env::args().collect();
    let (dir, stem) = match args.as_slice() {
        [_, dir, stem] => (Path::new(dir), stem.as_str()),
        _ => return Err("usage: snac_parity FIXTURE_DIR CLIP_STEM".into()),
    };
    let t = Instant::now();
    let model = weights::load_snac(&dir.display().to_string(), None, &Device::Cpu)?;
    println!("loaded {} in {:.2} s", dir.display(), t.elapsed().as_secs_f64());
    let input = read(&dir.join(format!("{stem}_input.npy")))?.to_f32();

    let t = Instant::now();
    let x = Tensor::from_slice(&input, (1, 1, input.len()), &Device::Cpu)?;
    let latent = model.encode_latent(&model.preprocess(&x)?)?.flatten_all()?.to_vec1::<f32>()?;
    let want_latent = read(&dir.join(format!("{stem}_latent.npy")))?.to_f32();
    let dl = latent.iter().zip(&want_latent).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    let scale = want_latent.iter().fold(0f32, |m, v| m.max(v.abs()));
    println!("latent: max abs diff {dl:.3e} (max |latent| {scale:.3e})");

    let codes = model.encode_samples(&input)?;
    let enc_s = t.elapsed().as_secs_f64();
    let mut want = Vec::new();
    let (mut same_all, mut total) = (0usize, 0usize);
    for (i, got) in codes.iter().enumerate() {
        let w: Vec<u32> = match read(&dir.join(format!("{stem}_codes{i}.npy")))?.data {
            NpyData::Int(v) => v.into_iter().map(|c| c as u32).collect(),
            _ => return Err("codes are not integers".into()),
        };
        let same = got.iter().zip(&w).filter(|(a, b)| a == b).count();
        let distinct = w.iter().collect::<std::collections::BTreeSet<_>>().len();
        println!("codebook {i}: {same}/{} equal ({distinct} distinct codes in the reference)", w.len());
        same_all += same;
        total += w.len();
        want.push(w);
    }
    println!("codes: {same_all}/{total} equal ({:.4} %)", 100.0 * same_all as f64 / total as f64);

    let t = Instant::now();
    let decoded = model.decode_codes(&want, None)?;
    let dec_s = t.elapsed().as_secs_f64();
    let want_audio = read(&dir.join(format!("{stem}_decoded.npy")))?.to_f32();
    if decoded.len() != want_audio.len() {
        return Err(format!("decoded {} samples, reference {}", decoded.len(), want_audio.len()).into());
    }
    let da = decoded.iter().zip(&want_audio).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    println!("decoded audio (noise off): max abs diff {da:.3e}");
    println!(
        "encode {enc_s:.2} s, decode {dec_s:.2} s for {:.2} s of audio",
        input.len() as f64 / model.config().sampling_rate as f64
    );
    Ok(())
}
