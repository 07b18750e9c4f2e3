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
