//! Parity with the reference Python `snac` package on the small committed fixtures
//! (tests/fixtures/snac/, made by tools/gen_snac_fixtures.py): codes equal, latents and decoded audio
//! within 1e-4.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use audiotok_codecs::{weights, Snac};
use audiotok_features::npy::{self, NpyData};
use candle_core::{Device, Tensor};

fn fixture_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/snac").join(name)
}

fn read_npy(path: &std::path::Path) -> npy::NpyArray {
    npy::read(std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn read_codes(path: &std::path::Path) -> Vec<u32> {
    match read_npy(path).data {
        NpyData::Int(v) => v.into_iter().map(|c| u32::try_from(c).unwrap()).collect(),
        other => panic!("{}: codes are not integers: {other:?}", path.display()),
    }
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn check_clip(model: &Snac, dir: &std::path::Path, stem: &str) {
    let input = read_npy(&dir.join(format!("{stem}_input.npy"))).to_f32();
    let want: Vec<Vec<u32>> =
        (0..model.config().n_codebooks()).map(|i| read_codes(&dir.join(format!("{stem}_codes{i}.npy")))).collect();

    // Latent before quantisation.
    let x = Tensor::from_slice(&input, (1, 1, input.len()), &Device::Cpu).unwrap();
    let latent = model.encode_latent(&model.preprocess(&x).unwrap()).unwrap();
    let latent = latent.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let want_latent = read_npy(&dir.join(format!("{stem}_latent.npy"))).to_f32();
    let scale = want_latent.iter().fold(0f32, |m, v| m.max(v.abs())).max(1.0);
    let d = max_abs_diff(&latent, &want_latent);
    assert!(d <= 1e-4 * scale, "{stem}: latent max abs diff {d} (scale {scale})");

    // Codes: every position equal.
    let got = model.encode_samples(&input).unwrap();
    assert_eq!(got.len(), want.len());
    for (level, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g.len(), w.len(), "{stem}: level {level} length");
        let same = g.iter().zip(w).filter(|(a, b)| a == b).count();
        assert_eq!(same, w.len(), "{stem}: level {level}: {same}/{} codes equal", w.len());
    }

    // Decoding the reference codes, noise off.
    let decoded = model.decode_codes(&want, None).unwrap();
    let want_audio = read_npy(&dir.join(format!("{stem}_decoded.npy"))).to_f32();
    let d = max_abs_diff(&decoded, &want_audio);
    assert!(d <= 1e-4, "{stem}: decoded max abs diff {d}");
}

#[test]
fn tiny24_matches_reference() {
    let dir = fixture_dir("tiny24");
    let model = weights::load_snac(dir.to_str().unwrap(), None, &Device::Cpu).unwrap();
    assert_eq!(model.config().n_codebooks(), 3);
    check_clip(&model, &dir, "1s");
    check_clip(&model, &dir, "0p1s");
}

#[test]
fn tiny32_with_attention_matches_reference() {
    let dir = fixture_dir("tiny32");
    let model = weights::load_snac(dir.to_str().unwrap(), None, &Device::Cpu).unwrap();
    assert_eq!(model.config().attn_window_size, Some(32));
    check_clip(&model, &dir, "1s");
}

#[test]
fn nested_legacy_checkpoint_loads_the_same_weights() {
    let dir = fixture_dir("tiny24");
    let ckpt = dir.join("best_model.pt");
    let model = weights::load_snac(dir.to_str().unwrap(), Some(&ckpt), &Device::Cpu).unwrap();
    check_clip(&model, &dir, "1s");
}
