//! The embed job: outputs equal the model's, byte-identical whatever the batch size and threads,
//! windows of long files, bad inputs recorded, weight-key errors.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use audiotok_core::{Input, Silent};
use audiotok_encoders::job::{
    embed_clips, embed_files, plan_windows, taps, EmbedOptions, Layers, OutDtype, Pool, Stage, Status,
};
use audiotok_encoders::{Encoder, Error, Tap};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/embed")
}

fn npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let a = audiotok_features::npy::read(std::fs::File::open(path).unwrap()).unwrap();
    (a.shape.clone(), a.to_f32())
}

fn clip(i: usize) -> Vec<f32> {
    npy(&fixtures().join(format!("audio_{i}.npy"))).1
}

fn wav(dir: &Path, name: &str, x: &[f32]) -> Input {
    let p = dir.join(name);
    audiotok_audio::write_wav_f32(&p, x, 16_000, 1).unwrap();
    Input::file(p)
}

fn model(name: &str) -> String {
    fixtures().join(name).to_str().unwrap().to_string()
}

#[test]
fn outputs_equal_the_model_and_bytes_do_not_depend_on_batching() {
    let tmp = tempfile::tempdir().unwrap();
    let a = clip(0);
    let b = clip(1);
    let long: Vec<f32> = a.iter().chain(&b).chain(&a).copied().collect();
    let inputs = vec![wav(tmp.path(), "a.wav", &a), wav(tmp.path(), "b.wav", &b), wav(tmp.path(), "c.wav", &long)];
    for name in ["hubert_group", "qwen2_audio", "whisper"] {
        let mut opts = EmbedOptions::new(&model(name));
        opts.layers = Layers::List(vec![1, 2]);
        opts.batch_size = 1;
        opts.jobs = 1;
        let o1 = tmp.path().join(format!("{name}-1"));
        let s1 = embed_files(&inputs, &o1, &opts, &Silent).unwrap();
        assert_eq!((s1.done, s1.failed), (3, 0), "{:?}", s1.records);
        opts.batch_size = 3;
        opts.jobs = 2;
        let o2 = tmp.path().join(format!("{name}-3"));
        embed_files(&inputs, &o2, &opts, &Silent).unwrap();
        for f in ["a.npy", "b.npy", "c.npy", "manifest.jsonl"] {
            assert_eq!(std::fs::read(o1.join(f)).unwrap(), std::fs::read(o2.join(f)).unwrap(), "{name} {f}");
        }
        // The file's array is the model's output on the decoded samples.
        let enc = Encoder::load_dir(&fixtures().join(name)).unwrap();
        let want = &enc.embed(&[&b], &[Tap::Hidden(1), Tap::Hidden(2)]).unwrap()[0];
        let (shape, got) = npy(&o1.join("b.npy"));
        assert_eq!(shape, [2, want.frames, want.dim]);
        assert_eq!(got, want.data);
        let rec = &s1.records[1];
        assert_eq!(rec.frames, Some(want.frames));
        assert_eq!(rec.layers, ["1", "2"]);
    }
}

#[test]
fn in_memory_clips_equal_the_job_files_and_one_bad_clip_spoils_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let a = clip(0);
    let b = clip(1);
    let long: Vec<f32> = a.iter().chain(&b).chain(&a).copied().collect();
    let inputs = vec![wav(tmp.path(), "a.wav", &a), wav(tmp.path(), "long.wav", &long)];
    let mut nan = b.clone();
    nan[100] = f32::NAN;
    let short = vec![0.1f32; 10];
    for (name, pool) in [("hubert_group", Pool::None), ("qwen2_audio", Pool::Mean), ("whisper", Pool::None)] {
        let mut opts = EmbedOptions::new(&model(name));
        opts.layers = Layers::List(vec![0, 2]);
        opts.pool = pool;
        let out = tmp.path().join(name);
        embed_files(&inputs, &out, &opts, &Silent).unwrap();
        let enc = Encoder::load_dir(&fixtures().join(name)).unwrap();
        let t = taps(&enc, &opts.layers, opts.stage).unwrap();
        let want: Vec<_> = ["a.npy", "long.npy"].iter().map(|f| npy(&out.join(f))).collect();
        for batch in [1, 4] {
            let got = embed_clips(&enc, &t, &[&short, &a, &nan, &long], pool, batch);
            assert_eq!(got.len(), 4);
            // The towers take any clip with samples; wav2vec2 needs its receptive field.
            if name == "hubert_group" {
                let too_short = got[0].as_ref().unwrap_err();
                assert!(too_short.contains("receptive field"), "{too_short}");
            } else {
                assert!(got[0].is_ok(), "{name}: {:?}", got[0]);
            }
            assert!(got[2].as_ref().unwrap_err().contains("non-finite"), "{:?}", got[2]);
            for (g, (shape, data)) in [&got[1], &got[3]].iter().zip(&want) {
                let g = g.as_ref().unwrap();
                assert_eq!(&g.shape, shape, "{name} batch {batch}");
                assert_eq!(&g.data, data, "{name} batch {batch}");
            }
        }
    }
}

#[test]
fn final_projected_pool_and_f16() {
    let tmp = tempfile::tempdir().unwrap();
    let a = clip(0);
    let inputs = vec![wav(tmp.path(), "a.wav", &a)];
    let mut opts = EmbedOptions::new(&model("qwen2_audio"));
    opts.stage = Stage::Projected;
    opts.pool = Pool::Mean;
    let out = tmp.path().join("p");
    let s = embed_files(&inputs, &out, &opts, &Silent).unwrap();
    assert_eq!(s.done, 1);
    let (shape, got) = npy(&out.join("a.npy"));
    let (rshape, want) = npy(&fixtures().join("qwen2_audio/ref_0_projected.npy"));
    assert_eq!(shape, [rshape[1]]);
    for (d, &g) in got.iter().enumerate() {
        let m: f64 = (0..rshape[0]).map(|f| f64::from(want[f * rshape[1] + d])).sum::<f64>() / rshape[0] as f64;
        assert!((f64::from(g) - m).abs() < 1e-3, "dim {d}: {g} vs {m}");
    }
    assert_eq!(s.records[0].frame_rate_hz, 25.0);
    // float16: the same values rounded.
    let mut opts = EmbedOptions::new(&model("hubert_group"));
    opts.dtype = OutDtype::F16;
    let o16 = tmp.path().join("h16");
    embed_files(&inputs, &o16, &opts, &Silent).unwrap();
    opts.dtype = OutDtype::F32;
    let o32 = tmp.path().join("h32");
    embed_files(&inputs, &o32, &opts, &Silent).unwrap();
    let bytes = std::fs::read(o16.join("a.npy")).unwrap();
    assert!(bytes.windows(5).any(|w| w == b"'<f2'"));
    let (_, f32s) = npy(&o32.join("a.npy"));
    let data = &bytes[bytes.len() - f32s.len() * 2..];
    for (i, &x) in f32s.iter().enumerate() {
        let h = half::f16::from_le_bytes([data[2 * i], data[2 * i + 1]]);
        assert_eq!(h, half::f16::from_f32(x));
    }
    assert_eq!(bytes.len() % 2, 0);
    assert_eq!((bytes.len() - f32s.len() * 2) % 64, 0, "header aligned to 64 bytes");
}

#[test]
fn bad_inputs_are_recorded_and_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let good = wav(tmp.path(), "good.wav", &clip(1));
    let short = wav(tmp.path(), "short.wav", &vec![0.1f32; 399]);
    let mut nan = clip(1);
    nan[5000] = f32::NAN;
    let nan = wav(tmp.path(), "nan.wav", &nan);
    let junk = tmp.path().join("junk.wav");
    std::fs::write(&junk, b"not audio at all").unwrap();
    let inputs = vec![good, short, nan, Input::file(junk)];
    let out = tmp.path().join("o");
    let s = embed_files(&inputs, &out, &EmbedOptions::new(&model("hubert_group")), &Silent).unwrap();
    assert_eq!((s.done, s.failed), (1, 3));
    let st: Vec<Status> = s.records.iter().map(|r| r.status).collect();
    assert_eq!(st, [Status::Ok, Status::Failed, Status::Failed, Status::Failed]);
    let err = |i: usize| s.records[i].error.clone().unwrap();
    assert!(
        err(1).contains("short.wav") && err(1).contains("399 samples") && err(1).contains("receptive field of 400"),
        "{}",
        err(1)
    );
    assert!(err(2).contains("nan.wav") && err(2).to_lowercase().contains("nan"), "{}", err(2));
    assert!(err(3).contains("junk.wav"), "{}", err(3));
    assert!(!out.join("short.npy").exists());
    let manifest = std::fs::read_to_string(out.join("manifest.jsonl")).unwrap();
    assert_eq!(manifest.lines().count(), 4);
}

#[test]
fn long_hubert_files_are_windowed_without_gaps() {
    let cfg = Encoder::load_dir(&fixtures().join("hubert_group")).unwrap().config;
    for len in [480_000usize, 480_001, 700_000, 2 * 3600 * 16_000 + 123] {
        let ws = plan_windows(&cfg, len);
        let total: usize = ws.iter().map(|w| w.keep).sum();
        assert_eq!(total, (len - 400) / 320 + 1, "len {len}");
        let mut next = 0;
        for w in &ws {
            assert_eq!(w.start % 320, 0);
            assert_eq!(w.start / 320 + w.keep_from, next, "len {len}: frames join");
            assert!(w.end - w.start <= 480_000 + 400);
            next += w.keep;
        }
    }
    // A 70 s file through the job: as many frames as one pass would give.
    let tmp = tempfile::tempdir().unwrap();
    let a = clip(0);
    let long: Vec<f32> = a.iter().cycle().take(70 * 16_000 + 77).copied().collect();
    let inputs = vec![wav(tmp.path(), "long.wav", &long)];
    let s = embed_files(&inputs, &tmp.path().join("o"), &EmbedOptions::new(&model("hubert_group")), &Silent).unwrap();
    assert_eq!(s.records[0].frames, Some((long.len() - 400) / 320 + 1));
}

#[test]
fn bad_options_and_other_model_types_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = vec![wav(tmp.path(), "a.wav", &clip(1))];
    let mut o = EmbedOptions::new(&model("hubert_group"));
    o.stage = Stage::Projected;
    let e = embed_files(&inputs, &tmp.path().join("o"), &o, &Silent).unwrap_err().to_string();
    assert!(e.contains("no multi_modal_projector"), "{e}");
    let mut o = EmbedOptions::new(&model("hubert_group"));
    o.layers = Layers::List(vec![3]);
    let e = embed_files(&inputs, &tmp.path().join("o"), &o, &Silent).unwrap_err().to_string();
    assert!(e.contains("hidden states 0 to 2"), "{e}");
    // A folder of another model type.
    let other = tmp.path().join("snac");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("config.json"), r#"{"model_type": "bert", "hidden_size": 8}"#).unwrap();
    let e = Encoder::load_dir(&other).unwrap_err().to_string();
    assert!(e.contains("config.json") && e.contains("\"bert\"") && e.contains("hubert, wav2vec2"), "{e}");
}

/// Copies a fixture folder with its safetensors rewritten by `edit`.
fn edited(name: &str, dst: &Path, edit: impl Fn(&mut std::collections::HashMap<String, candle_core::Tensor>)) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(fixtures().join(name)).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dst.join(p.file_name().unwrap())).unwrap();
    }
    let st = dst.join("model.safetensors");
    let mut t = candle_core::safetensors::load(&st, &candle_core::Device::Cpu).unwrap();
    edit(&mut t);
    candle_core::safetensors::save(&t, &st).unwrap();
}

#[test]
fn weights_errors_list_every_missing_unexpected_and_misshaped_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bad");
    edited("hubert_layer_ctc", &dir, |t| {
        t.remove("hubert.encoder.layers.1.fc_missing");
        t.remove("hubert.encoder.layers.0.attention.q_proj.bias");
        t.remove("hubert.feature_projection.projection.bias");
        let w = t.remove("hubert.encoder.layers.1.attention.k_proj.weight").unwrap();
        t.insert("hubert.encoder.layers.1.attention.k_proj.weight".into(), w.narrow(0, 0, 8).unwrap());
        t.insert(
            "hubert.encoder.extra.weight".into(),
            candle_core::Tensor::zeros(3, candle_core::DType::F32, &candle_core::Device::Cpu).unwrap(),
        );
        // A head outside the model's namespace is ignored.
        t.insert(
            "classifier.weight".into(),
            candle_core::Tensor::zeros(3, candle_core::DType::F32, &candle_core::Device::Cpu).unwrap(),
        );
    });
    let e = Encoder::load_dir(&dir).unwrap_err();
    let Error::Mismatch(m) = &e else { panic!("{e}") };
    assert_eq!(
        m.missing,
        ["hubert.feature_projection.projection.bias", "hubert.encoder.layers.0.attention.q_proj.bias"]
    );
    assert_eq!(m.unexpected, ["hubert.encoder.extra.weight"]);
    assert_eq!(
        m.misshaped,
        [("hubert.encoder.layers.1.attention.k_proj.weight".to_string(), vec![16, 16], vec![8, 16])]
    );
    let text = e.to_string();
    assert!(text.contains("2 missing") && text.contains("1 unexpected") && text.contains("1 mis-shaped"), "{text}");
    // Non-finite weights are refused naming the tensor.
    let dir = tmp.path().join("nan");
    edited("hubert_group", &dir, |t| {
        let w = t.remove("encoder.layer_norm.weight").unwrap();
        let mut v = w.to_vec1::<f32>().unwrap();
        v[3] = f32::NAN;
        t.insert("encoder.layer_norm.weight".into(), candle_core::Tensor::new(v, &candle_core::Device::Cpu).unwrap());
    });
    let e = Encoder::load_dir(&dir).unwrap_err().to_string();
    assert!(e.contains("encoder.layer_norm.weight") && e.contains("element 3"), "{e}");
}

/// Past 30 s the Qwen2-Audio tower runs consecutive 30 s windows: its rows are what
/// `audiotok count --profile qwen2-audio-windows` counts (and `qwen2-audio` up to 30 s).
#[test]
fn long_clips_on_the_tower_give_the_rows_the_windows_profile_counts() {
    use audiotok_features::profiles::Profile;
    let enc = Encoder::load(&model("qwen2_audio")).unwrap();
    let base = clip(0);
    for n in [16_000usize, 480_000, 480_001, 720_000, 1_000_000] {
        let x: Vec<f32> = (0..n).map(|i| base[i % base.len()]).collect();
        let got = embed_clips(&enc, &[Tap::Final], &[&x], Pool::None, 1).remove(0).unwrap();
        let want = Profile::Qwen2AudioWindows.count(n as u64).total() as usize;
        assert_eq!(got.frames, want, "{n} samples");
        if n <= 480_000 {
            assert_eq!(got.frames as u64, Profile::Qwen2Audio.count(n as u64).total(), "{n} samples");
        }
    }
}
