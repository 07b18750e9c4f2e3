//! Weight loading: safetensors in the HF cache layout, and mismatch reports.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use audiotok_codecs::{weights, Error};
use audiotok_features::npy;
use candle_core::{Device, Tensor};

fn tiny24() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/snac/tiny24")
}

#[test]
fn safetensors_in_the_hf_cache_layout_load_like_the_pickle() {
    let hub = tempfile::tempdir().unwrap();
    let repo = hub.path().join("models--acme--snac_tiny");
    let snap = repo.join("snapshots").join("0123abcd");
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), "0123abcd\n").unwrap();
    std::fs::copy(tiny24().join("config.json"), snap.join("config.json")).unwrap();
    // Re-save the published pickle's tensors, weight-norm pairs and all, as safetensors.
    let raw = weights::read_tensors(&tiny24().join("pytorch_model.bin")).unwrap();
    assert!(raw.keys().any(|k| k.ends_with("parametrizations.weight.original0")));
    candle_core::safetensors::save(&raw, snap.join("model.safetensors")).unwrap();

    let dir = weights::resolve_model_dir_in("acme/snac_tiny", Some(hub.path())).unwrap();
    assert_eq!(dir, snap);
    assert_eq!(weights::weights_file(&dir).unwrap(), snap.join("model.safetensors"));
    let a = weights::load_snac(dir.to_str().unwrap(), None, &Device::Cpu).unwrap();
    let b = weights::load_snac(tiny24().to_str().unwrap(), None, &Device::Cpu).unwrap();
    let input = npy::read(std::fs::File::open(tiny24().join("0p1s_input.npy")).unwrap()).unwrap().to_f32();
    assert_eq!(a.encode_samples(&input).unwrap(), b.encode_samples(&input).unwrap());

    let err = weights::resolve_model_dir_in("acme/absent", Some(hub.path())).unwrap_err();
    assert!(err.to_string().contains("models--acme--absent"), "{err}");
}

#[test]
fn mismatches_name_missing_unexpected_and_misshaped_keys() {
    let mut t =
        weights::normalize_state_dict(weights::read_tensors(&tiny24().join("pytorch_model.bin")).unwrap()).unwrap();
    t.remove("quantizer.quantizers.1.codebook.weight").unwrap();
    t.insert("extra.weight".into(), Tensor::zeros(3, candle_core::DType::F32, &Device::Cpu).unwrap());
    t.insert("encoder.block.0.bias".into(), Tensor::zeros(5, candle_core::DType::F32, &Device::Cpu).unwrap());
    let cfg = weights::read_config(&tiny24()).unwrap();
    match weights::snac_from_tensors(&cfg, t, &Device::Cpu, "test.bin") {
        Err(Error::Mismatch(m)) => {
            assert_eq!(m.missing, ["quantizer.quantizers.1.codebook.weight"]);
            assert_eq!(m.unexpected, ["extra.weight"]);
            assert_eq!(m.misshaped, [("encoder.block.0.bias".to_string(), vec![4], vec![5])]);
            let text = Error::Mismatch(m).to_string();
            assert!(text.starts_with("test.bin: the weights do not fit"), "{text}");
        }
        other => panic!("expected a mismatch, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn unreadable_files_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let junk = tmp.path().join("best_model.pt");
    std::fs::write(&junk, b"not a checkpoint").unwrap();
    let err = weights::read_tensors(&junk).unwrap_err().to_string();
    assert!(err.contains("best_model.pt: not a PyTorch zip archive"), "{err}");
    let err = weights::read_tensors(&tmp.path().join("absent.pt")).unwrap_err().to_string();
    assert!(err.contains("absent.pt: no such file"), "{err}");
    let err = weights::resolve_model_dir_in(tmp.path().to_str().unwrap(), None).unwrap_err().to_string();
    assert!(err.contains("no config.json"), "{err}");
}

/// A safetensors file: 8-byte little-endian header length, the header, the data.
fn safetensors_bytes(declared_len: u64, header: &str, data: &[u8]) -> Vec<u8> {
    let mut v = declared_len.to_le_bytes().to_vec();
    v.extend_from_slice(header.as_bytes());
    v.extend_from_slice(data);
    v
}

#[test]
fn hostile_safetensors_headers_are_typed_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let ok = r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
    let st = |header: &str| safetensors_bytes(header.len() as u64, header, &[0; 8]);
    let cases: [(&str, Vec<u8>, &str); 5] = [
        ("huge_header", safetensors_bytes(1 << 60, ok, &[0; 8]), "header"),
        ("short_header", safetensors_bytes(ok.len() as u64 + 100, ok, &[0; 8]), "header"),
        ("offsets_past_the_data", st(r#"{"w":{"dtype":"F32","shape":[1024],"data_offsets":[0,4096]}}"#), ""),
        (
            "overflowing_shape",
            st(r#"{"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}}"#),
            "overflow",
        ),
        ("truncated", 8u64.to_le_bytes()[..5].to_vec(), "header"),
    ];
    for (name, bytes, want) in cases {
        let path = tmp.path().join(format!("{name}.safetensors"));
        std::fs::write(&path, bytes).unwrap();
        let e = weights::read_tensors(&path).unwrap_err();
        assert!(matches!(e, Error::Weights(_)), "{name}: {e}");
        let msg = e.to_string();
        assert!(msg.contains(&path.display().to_string()) && msg.to_lowercase().contains(want), "{name}: {msg}");
    }
    // The well-formed one loads.
    let path = tmp.path().join("ok.safetensors");
    std::fs::write(&path, safetensors_bytes(ok.len() as u64, ok, &[0; 8])).unwrap();
    assert_eq!(weights::read_tensors(&path).unwrap()["w"].dims(), [2]);
}

#[test]
fn a_config_far_larger_than_its_weights_is_a_mismatch_not_an_allocation() {
    let text = std::fs::read_to_string(tiny24().join("config.json")).unwrap();
    let mut cfg: serde_json::Value = serde_json::from_str(&text).unwrap();
    cfg["decoder_dim"] = 65536.into();
    cfg["encoder_dim"] = 4096.into();
    let cfg = audiotok_codecs::Config::from_json(&cfg.to_string()).unwrap();
    let raw =
        weights::normalize_state_dict(weights::read_tensors(&tiny24().join("pytorch_model.bin")).unwrap()).unwrap();
    let e = weights::snac_from_tensors(&cfg, raw, &Device::Cpu, "tiny24").unwrap_err();
    assert!(matches!(e, Error::Mismatch(_)), "{e}");
    assert!(e.to_string().contains("mis-shaped: encoder.block.0.weight"), "{e}");
}

#[test]
fn non_finite_weights_are_refused() {
    let mut raw =
        weights::normalize_state_dict(weights::read_tensors(&tiny24().join("pytorch_model.bin")).unwrap()).unwrap();
    let name = "decoder.model.0.weight";
    let t = &raw[name];
    let mut v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    v[5] = f32::INFINITY;
    let bad = Tensor::from_vec(v, t.shape(), &Device::Cpu).unwrap();
    raw.insert(name.to_string(), bad);
    let cfg = weights::read_config(&tiny24()).unwrap();
    let e = weights::snac_from_tensors(&cfg, raw, &Device::Cpu, "tiny24").unwrap_err().to_string();
    assert!(e.contains("tiny24: decoder.model.0.weight: non-finite value (NaN or infinity) at element 5"), "{e}");
}

/// The fuzz harness's snac-pth case 1054 (campaign seed 1): two bytes of the tiny24 checkpoint
/// set to 0xff made candle's unpickler allocate 4 GiB for one string (an abort under a 4 GiB
/// limit). Now a typed error naming the file, with nothing allocated at the stated size.
#[test]
fn a_pickle_stating_a_4_gib_string_is_an_error_not_an_allocation() {
    let mut bytes = std::fs::read(tiny24().join("pytorch_model.bin")).unwrap();
    bytes[10525] = 0xff;
    bytes[10526] = 0xff;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pytorch_model.bin");
    std::fs::write(&path, &bytes).unwrap();
    let err = weights::read_tensors(&path).unwrap_err();
    assert!(matches!(err, Error::Weights(_)), "{err}");
    assert!(err.to_string().contains("pytorch_model.bin"), "{err}");
}
