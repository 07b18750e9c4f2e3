//! Parity with transformers 5.23.0 on models it initialised at fixed seeds
//! (tests/fixtures/embed, made by tools/gen_embed_fixtures.py), batching and frame skipping.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use audiotok_encoders::whisper::{MelWindow, MEL_FRAMES};
use audiotok_encoders::{Encoder, Net, Tap};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/embed")
}

fn npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let a = audiotok_features::npy::read(std::io::BufReader::new(f)).unwrap();
    (a.shape.clone(), a.to_f32())
}

fn clip(i: usize) -> Vec<f32> {
    npy(&fixtures().join(format!("audio_{i}.npy"))).1
}

fn std(x: &[f32]) -> f64 {
    let n = x.len() as f64;
    let m = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    (x.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / n).sqrt()
}

fn max_diff(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(&x, &y)| (x as f64 - y as f64).abs()).fold(0.0, f64::max)
}

/// `got` within 1e-3 x the reference's standard deviation of `want` (the bound).
fn close(what: &str, got: &[f32], want: &[f32]) {
    let d = max_diff(got, want);
    let s = std(want);
    assert!(d <= 1e-3 * s, "{what}: max abs diff {d:e} > 1e-3 x std {s:e}");
}

fn hidden_taps(n: usize) -> Vec<Tap> {
    (0..=n).map(Tap::Hidden).collect()
}

fn check_wav2vec2(name: &str) {
    let dir = fixtures().join(name);
    let enc = Encoder::load_dir(&dir).unwrap();
    let n = enc.num_layers();
    let clips = [clip(0), clip(1)];
    let taps = hidden_taps(n);
    let mut single = Vec::new();
    for (i, c) in clips.iter().enumerate() {
        let (shape, want) = npy(&dir.join(format!("ref_{i}_layers.npy")));
        let got = &enc.embed(&[c], &taps).unwrap()[0];
        assert_eq!([n + 1, got.frames, got.dim], shape[..], "{name} clip {i} layers shape");
        let per = got.frames * got.dim;
        for k in 0..=n {
            close(
                &format!("{name} clip {i} layer {k}"),
                &got.data[k * per..(k + 1) * per],
                &want[k * per..(k + 1) * per],
            );
        }
        let (fshape, fwant) = npy(&dir.join(format!("ref_{i}_final.npy")));
        let fin = &enc.embed(&[c], &[Tap::Final]).unwrap()[0];
        assert_eq!([fin.frames, fin.dim], fshape[..]);
        close(&format!("{name} clip {i} final"), &fin.data, &fwant);
        single.push(fin.clone());
    }
    // Frames: (L - 400) / 320 + 1.
    assert_eq!(single[0].frames, (48000 - 400) / 320 + 1);
    assert_eq!(single[0].frames, 149);
    // A batch (both clips, the short one first and twice: four clips) equals one clip at a time.
    let batch = enc.embed(&[&clips[1], &clips[0], &clips[1], &clips[0]], &[Tap::Final]).unwrap();
    for (b, s) in batch.iter().zip([&single[1], &single[0], &single[1], &single[0]]) {
        assert_eq!(b.frames, s.frames);
        let d = max_diff(&b.data, &s.data);
        assert!(d <= 1e-5 * std(&s.data), "{name}: batched differs from unbatched by {d:e}");
    }
}

#[test]
fn hubert_group_norm_post_ln_weight_g_v() {
    check_wav2vec2("hubert_group");
}

/// The same model as `pytorch_model.bin` (tools/gen_embed_bin_fixture.py: `torch.save` of the
/// state dict, one tensor a view into a larger storage) gives the same numbers, bit for bit.
#[test]
fn pytorch_model_bin_gives_the_safetensors_model() {
    let st = Encoder::load_dir(&fixtures().join("hubert_group")).unwrap();
    let bin = Encoder::load_dir(&fixtures().join("hubert_group_bin")).unwrap();
    let mut taps = hidden_taps(st.num_layers());
    taps.push(Tap::Final);
    for i in 0..2 {
        let c = clip(i);
        let a = st.embed(&[&c], &taps).unwrap();
        let b = bin.embed(&[&c], &taps).unwrap();
        assert_eq!(a[0].data, b[0].data, "clip {i}");
    }
    // A truncated checkpoint, and a sharded .bin index, are clear errors naming the folder's file.
    let tmp = tempfile::tempdir().unwrap();
    for f in ["config.json", "preprocessor_config.json"] {
        std::fs::copy(fixtures().join("hubert_group_bin").join(f), tmp.path().join(f)).unwrap();
    }
    let bytes = std::fs::read(fixtures().join("hubert_group_bin/pytorch_model.bin")).unwrap();
    std::fs::write(tmp.path().join("pytorch_model.bin"), &bytes[..bytes.len() / 2]).unwrap();
    let e = Encoder::load_dir(tmp.path()).unwrap_err().to_string();
    assert!(e.contains("pytorch_model.bin"), "{e}");
    std::fs::remove_file(tmp.path().join("pytorch_model.bin")).unwrap();
    std::fs::write(tmp.path().join("pytorch_model.bin.index.json"), "{}").unwrap();
    let e = Encoder::load_dir(tmp.path()).unwrap_err().to_string();
    assert!(e.contains("sharded pytorch_model.bin.index.json"), "{e}");
}

#[test]
fn hubert_ctc_layer_norm_pre_ln_conv_bias_parametrizations() {
    check_wav2vec2("hubert_layer_ctc");
}

#[test]
fn hubert_pos_conv_batch_norm_unnormalised_input() {
    check_wav2vec2("hubert_bn");
}

#[test]
fn wav2vec2_ctc_layer_norm_pre_ln_weight_g_v() {
    check_wav2vec2("wav2vec2_layer_ctc");
}

#[test]
fn wav2vec2_ctc_group_norm_post_ln() {
    check_wav2vec2("wav2vec2_group");
}

#[test]
fn qwen2_audio_tower_and_projector_from_sharded_folder() {
    let dir = fixtures().join("qwen2_audio");
    let enc = Encoder::load_dir(&dir).unwrap();
    let n = enc.num_layers();
    let clips = [clip(0), clip(1)];
    let mut singles = Vec::new();
    for (i, c) in clips.iter().enumerate() {
        let (shape, want) = npy(&dir.join(format!("ref_{i}_layers.npy")));
        let got = &enc.embed(&[c], &hidden_taps(n)).unwrap()[0];
        assert_eq!([n + 1, got.frames, got.dim], shape[..], "clip {i} layers shape");
        let per = got.frames * got.dim;
        for k in 0..=n {
            close(
                &format!("qwen2 clip {i} layer {k}"),
                &got.data[k * per..(k + 1) * per],
                &want[k * per..(k + 1) * per],
            );
        }
        for (tap, file) in [(Tap::Final, "final"), (Tap::Projected, "projected")] {
            let (shape, want) = npy(&dir.join(format!("ref_{i}_{file}.npy")));
            let got = &enc.embed(&[c], &[tap]).unwrap()[0];
            assert_eq!([got.frames, got.dim], shape[..], "clip {i} {file} shape");
            close(&format!("qwen2 clip {i} {file}"), &got.data, &want);
            singles.push(got.clone());
        }
    }
    // The output rows are (((L-1)//2+1)-2)//2+1 for L = ceil(samples / 160) mel frames: 75 for 3 s.
    assert_eq!(singles[0].frames, 75);
    assert_eq!(singles[2].frames, (((21937usize.div_ceil(160) - 1) / 2 + 1) - 2) / 2 + 1);
    let batch = enc.embed(&[&clips[1], &clips[0]], &[Tap::Final]).unwrap();
    for (b, s) in batch.iter().zip([&singles[2], &singles[0]]) {
        let d = max_diff(&b.data, &s.data);
        assert!(d <= 1e-5 * std(&s.data), "batched differs from unbatched by {d:e}");
    }
}

#[test]
fn whisper_encoder_full_window() {
    let dir = fixtures().join("whisper");
    let enc = Encoder::load_dir(&dir).unwrap();
    let n = enc.num_layers();
    let c = clip(1);
    let (shape, want) = npy(&dir.join("ref_0_layers.npy"));
    let got = &enc.embed(&[&c], &hidden_taps(n)).unwrap()[0];
    assert_eq!([n + 1, got.frames, got.dim], shape[..]);
    assert_eq!(got.frames, 1500);
    let per = got.frames * got.dim;
    for k in 0..=n {
        close(&format!("whisper layer {k}"), &got.data[k * per..(k + 1) * per], &want[k * per..(k + 1) * per]);
    }
    let (_, fwant) = npy(&dir.join("ref_0_final.npy"));
    close("whisper final", &enc.embed(&[&c], &[Tap::Final]).unwrap()[0].data, &fwant);
}

/// A deterministic speech-like signal (harmonics under a syllable envelope).
fn signal(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2654435761).max(1);
    (0..n)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            let t = i as f32 / 16000.0;
            let env = 0.5 * (1.0 + (2.0 * std::f32::consts::PI * 3.1 * t).sin());
            let f0 = 120.0 + 30.0 * (t * 4.0).sin();
            let x: f32 = (1..6).map(|k| (2.0 * std::f32::consts::PI * f0 * k as f32 * t).sin() / k as f32).sum();
            0.2 * env * x + 0.01 * ((s as f32 / u32::MAX as f32) - 0.5)
        })
        .collect()
}

/// Work only where it counts: computing the valid frames alone equals the full masked
/// computation over all 3000 mel frames, at several lengths (multiples of 160 and not, one
/// frame, exactly 30 s).
#[test]
fn qwen2_audio_frame_skipping_equals_full_masked_computation() {
    let enc = Encoder::load_dir(&fixtures().join("qwen2_audio")).unwrap();
    let Net::Tower(tower) = &enc.net else { panic!("not a tower") };
    let mut ex = audiotok_features::whisper::Whisper::new(128, audiotok_features::whisper::WhisperPadding::MaxLength);
    let taps = [Tap::Hidden(0), Tap::Hidden(1), Tap::Hidden(2), Tap::Final, Tap::Projected];
    for (i, &len) in [480, 1000, 16_000, 47_999, 160 * 1234 + 77, 479_840, 480_000].iter().enumerate() {
        let x = signal(len, i as u32 + 1);
        let f = ex.compute(&x);
        let w = MelWindow { mel: f.data, valid: f.mask_ones.unwrap() };
        assert_eq!(w.valid, len.div_ceil(160).min(MEL_FRAMES));
        let fast = tower.forward_mels(std::slice::from_ref(&w), &taps, true).unwrap();
        let full = tower.forward_mels(std::slice::from_ref(&w), &taps, false).unwrap();
        for (k, (a, b)) in fast[0].iter().zip(&full[0]).enumerate() {
            assert_eq!(a.dims(), b.dims(), "len {len} tap {k}");
            let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let d = max_diff(&a, &b);
            assert!(d <= 1e-5 * std(&b).max(1e-6), "len {len} tap {k}: skipping differs by {d:e}");
        }
    }
}
