//! `audiotok params` against the reference counts of tools/gen_params_fixtures.py: sum(p.numel())
//! of models transformers / snac build at a fixed seed, and peft's get_nb_trainable_parameters().
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use audiotok_inspect::job::{params, ParamsOptions, ParamsReport, PartSpec};
use audiotok_inspect::lora::LoraSpec;
use audiotok_inspect::{arch, source, InspectError};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/params")
}

fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("reference.json")).unwrap()).unwrap()
}

fn model(rel: &str) -> String {
    fixtures().join(rel).display().to_string()
}

fn run(parts: &[(&str, String)], f: impl FnOnce(&mut ParamsOptions)) -> Result<ParamsReport, InspectError> {
    let mut o = ParamsOptions {
        parts: parts.iter().map(|(n, m)| PartSpec { name: n.to_string(), model: m.clone() }).collect(),
        ..Default::default()
    };
    f(&mut o);
    params(&o)
}

fn components(r: &ParamsReport) -> BTreeMap<String, u64> {
    r.parts[0].components.iter().map(|c| (c.name.clone(), c.params)).collect()
}

fn ref_components(v: &Value) -> BTreeMap<String, u64> {
    v["components"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap())).collect()
}

const TINY: [&str; 7] =
    ["qwen2-tied", "qwen2-tied-bin", "qwen3-sharded", "hubert", "wav2vec2-ctc", "whisper", "qwen2-audio"];

#[test]
fn header_counts_equal_sum_of_numel_by_component() {
    let refs = reference();
    for name in TINY {
        let r = run(&[("m", model(&format!("tiny/{name}")))], |_| {}).unwrap();
        let want = &refs["tiny"][name];
        assert_eq!(r.total, want["total"].as_u64().unwrap(), "{name}");
        assert_eq!(components(&r), ref_components(want), "{name}");
        assert_eq!((r.trainable, r.frozen), (0, r.total), "{name}");
    }
}

#[test]
fn tied_heads_are_counted_once_and_said_so() {
    let bin = run(&[("m", model("tiny/qwen2-tied-bin"))], |_| {}).unwrap();
    let t = &bin.parts[0].tied;
    assert_eq!(t.len(), 1);
    assert_eq!(
        (t[0].name.as_str(), t[0].same_as.as_str(), t[0].how.as_str()),
        ("lm_head.weight", "model.embed_tokens.weight", "storage")
    );
    let st = run(&[("m", model("tiny/qwen2-tied"))], |_| {}).unwrap();
    let t = &st.parts[0].tied;
    assert_eq!(t.len(), 1);
    assert_eq!((t[0].name.as_str(), t[0].how.as_str()), ("lm_head.weight", "config"));
    // Untied: nothing said.
    let q3 = run(&[("m", model("tiny/qwen3-sharded"))], |_| {}).unwrap();
    assert!(q3.parts[0].tied.is_empty());
    assert_eq!(q3.parts[0].files.len(), 3);
}

#[test]
fn config_only_gives_the_saved_names_and_shapes() {
    for name in ["qwen2-tied", "qwen3-sharded", "hubert", "wav2vec2-ctc", "whisper", "qwen2-audio"] {
        let loaded = source::load(&model(&format!("tiny/{name}")), false).unwrap();
        let mut saved: Vec<(String, Vec<u64>)> =
            loaded.tensors.iter().map(|t| (t.name.clone(), t.shape.clone())).collect();
        let (mut specs, _) = arch::tensors_of_config(&loaded.config.unwrap().1).unwrap();
        saved.sort();
        specs.sort();
        assert_eq!(specs, saved, "{name}");
    }
}

#[test]
fn config_only_equals_meta_device_builds_of_published_sizes() {
    let refs = reference();
    for (name, want) in refs["published"].as_object().unwrap() {
        let r = run(&[("m", model(&format!("published/{name}")))], |o| o.config_only = true).unwrap();
        assert_eq!(r.total, want["total"].as_u64().unwrap(), "{name}");
        assert_eq!(components(&r), ref_components(want), "{name}");
        assert_eq!(r.parts[0].counted_from, "config");
    }
    assert_eq!(refs["published"]["qwen3-8b"]["total"], 8_190_735_360u64);
}

fn check_lora(r: &ParamsReport, want: &Value, what: &str) {
    assert_eq!(r.trainable, want["trainable"].as_u64().unwrap(), "{what}");
    assert_eq!(r.total, want["all"].as_u64().unwrap(), "{what}");
}

#[test]
fn lora_counts_equal_peft() {
    let refs = reference();
    for name in TINY {
        for l in refs["tiny"][name]["lora"].as_array().unwrap() {
            let targets: Vec<String> =
                l["targets"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect();
            let spec = LoraSpec { r: l["r"].as_u64().unwrap(), alpha: 16.0, targets, part: None };
            let r = run(&[("m", model(&format!("tiny/{name}")))], |o| o.lora = vec![spec.clone()]).unwrap();
            check_lora(&r, l, name);
            assert_eq!(r.parts[0].lora[0].params, r.trainable);
        }
    }
    let want = &refs["published"]["hubert-xlarge"]["lora"][0];
    let spec: LoraSpec = "r=8,alpha=16,targets=q_proj,k_proj".parse().unwrap();
    let r = run(&[("m", model("published/hubert-xlarge"))], |o| {
        o.config_only = true;
        o.lora = vec![spec];
    })
    .unwrap();
    check_lora(&r, want, "hubert-xlarge");
    assert_eq!(r.trainable, 1_966_080);
}

#[test]
fn a_peft_adapter_folder_reads_as_peft_counts_it() {
    let want = &reference()["tiny"]["qwen3-adapter"];
    let r = run(&[("m", model("tiny/qwen3-adapter"))], |_| {}).unwrap();
    check_lora(&r, want, "adapter");
    let l = &r.parts[0].lora[0];
    assert_eq!((l.r, l.modules, l.targets.len()), (4, 4, 2));
    assert!(r.parts[0].notes.is_empty());
}

#[test]
fn the_asr_stack_counts_as_its_parts() {
    let want = &reference()["tiny"]["asr-stack"];
    let parts = [
        ("encoder", model("tiny/hubert")),
        ("projector", model("tiny/projector/projector.safetensors")),
        ("decoder", model("tiny/qwen3-sharded")),
    ];
    let r = run(&parts, |o| {
        o.train = vec!["projector".into()];
        o.lora = vec!["r=8,alpha=16,targets=q_proj,k_proj,part=decoder".parse().unwrap()];
    })
    .unwrap();
    let u = |k: &str| want[k].as_u64().unwrap();
    assert_eq!(r.parts[0].total, u("encoder"));
    assert_eq!(r.parts[1].total, u("projector"));
    assert_eq!(r.parts[1].trainable, u("projector"));
    assert_eq!(r.parts[2].total, u("decoder_all"));
    assert_eq!(r.parts[2].trainable, u("decoder_trainable"));
    assert_eq!(r.parts[0].trainable, 0);
    assert_eq!(r.total, u("encoder") + u("projector") + u("decoder_all"));
    assert_eq!(r.trainable, u("projector") + u("decoder_trainable"));
    assert_eq!(r.memory.bf16, r.total * 2);
    // Bad options name what is wrong.
    let e = run(&parts, |o| o.train = vec!["llm".into()]).unwrap_err().to_string();
    assert!(e.contains("--train llm: no such part"), "{e}");
    let e = run(&parts, |o| o.lora = vec!["r=8,targets=nothing_here".parse().unwrap()]).unwrap_err().to_string();
    assert!(e.contains("match no module"), "{e}");
}

#[test]
fn snac_groups_into_encoder_quantizer_decoder() {
    let want = &reference()["tiny"]["snac"];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/snac/tiny24");
    let r = run(&[("codec", dir.display().to_string())], |_| {}).unwrap();
    assert_eq!(r.total, want["total"].as_u64().unwrap());
    assert_eq!(components(&r), ref_components(want));
    assert_eq!(r.parts[0].model_type.as_deref(), Some("snac"));
}

#[test]
fn a_pickle_that_runs_code_is_refused_and_nothing_runs() {
    let marker = Path::new("/tmp/audiotok-params-pwned");
    let _ = std::fs::remove_file(marker);
    let e = run(&[("m", model("hostile/pytorch_model.bin"))], |_| {}).unwrap_err().to_string();
    assert!(e.contains("hostile/pytorch_model.bin") && e.contains("posix.system"), "{e}");
    assert!(!marker.exists());
}

#[test]
fn depth_groups_by_name_prefix() {
    let r = run(&[("m", model("tiny/qwen3-sharded"))], |o| o.depth = Some(3)).unwrap();
    let c = components(&r);
    assert_eq!(c.get("model.layers.0").copied(), Some(4704 / 2));
    assert_eq!(c.values().sum::<u64>(), 6768);
}

#[test]
fn training_checkpoints_read_leniently_and_state_dicts_strictly() {
    use audiotok_inspect::pickle::{read_pth, Mode};
    let snac = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/snac/tiny24");
    let plain = read_pth(&snac.join("pytorch_model.bin"), Mode::Strict).unwrap();
    let nested = read_pth(&snac.join("best_model.pt"), Mode::Lenient).unwrap();
    assert!(!plain.is_empty());
    // best_model.pt nests the (prefixed) state dict under `model`.
    assert_eq!(nested.len(), plain.len());
    let total = |v: &[audiotok_inspect::TensorMeta]| v.iter().map(|t| t.numel()).sum::<u64>();
    assert_eq!(total(&nested), total(&plain));
    assert_eq!(total(&plain), reference()["tiny"]["snac"]["total"].as_u64().unwrap());
}

/// Rewrites a torch.save zip with `cut` entries truncated to 4 bytes.
fn rewrite_zip(src: &Path, dst: &Path, cut: &str) {
    use std::io::{Read, Write};
    let mut zin = zip::ZipArchive::new(std::fs::File::open(src).unwrap()).unwrap();
    let mut zout = zip::ZipWriter::new(std::fs::File::create(dst).unwrap());
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..zin.len() {
        let mut e = zin.by_index(i).unwrap();
        let name = e.name().unwrap().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        if name.ends_with(cut) {
            data.truncate(4);
        }
        zout.start_file(name, opts).unwrap();
        zout.write_all(&data).unwrap();
    }
    zout.finish().unwrap();
}

#[test]
fn a_pickle_whose_tensor_passes_its_storage_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = fixtures().join("tiny/qwen2-tied-bin/pytorch_model.bin");
    let same = dir.path().join("same.bin");
    rewrite_zip(&src, &same, "no such entry");
    assert_eq!(source::read_file(&same).unwrap().len(), 27);
    let cut = dir.path().join("cut.bin");
    rewrite_zip(&src, &cut, "/data/0");
    let e = source::read_file(&cut).unwrap_err().to_string();
    assert!(e.contains("cut.bin") && e.contains("needs more than the 4 bytes of pytorch_model/data/0"), "{e}");
}

#[test]
fn a_shard_index_that_lies_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = fixtures().join("tiny/qwen3-sharded");
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
    }
    let index_path = dir.path().join("model.safetensors.index.json");
    let mut index: Value = serde_json::from_str(&std::fs::read_to_string(&index_path).unwrap()).unwrap();
    let good = index.clone();
    index["weight_map"]["model.extra.weight"] = "model-00001-of-00003.safetensors".into();
    std::fs::write(&index_path, index.to_string()).unwrap();
    let e = source::load(&dir.path().display().to_string(), false).unwrap_err().to_string();
    assert!(e.contains("the weight_map names tensors no shard holds: [\"model.extra.weight\"]"), "{e}");
    // Move a tensor of a shard holding several to another shard in the map.
    let mut index = good.clone();
    let map = good["weight_map"].as_object().unwrap();
    let shard_of = |n: &str| map[n].as_str().unwrap().to_string();
    let name = map.keys().find(|n| map.values().filter(|v| v.as_str().unwrap() == shard_of(n)).count() > 1).unwrap();
    let other = map.values().map(|v| v.as_str().unwrap()).find(|v| *v != shard_of(name)).unwrap();
    index["weight_map"][name.as_str()] = other.into();
    std::fs::write(&index_path, index.to_string()).unwrap();
    let e = source::load(&dir.path().display().to_string(), false).unwrap_err().to_string();
    assert!(e.contains("which the weight_map does not place there"), "{e}");
    let mut index = good;
    index["weight_map"]["model.norm.weight"] = "../outside.safetensors".into();
    std::fs::write(&index_path, index.to_string()).unwrap();
    let e = source::load(&dir.path().display().to_string(), false).unwrap_err().to_string();
    assert!(e.contains("is not a file of this folder"), "{e}");
}

#[test]
fn hub_ids_resolve_in_the_local_cache_only() {
    let hub = tempfile::tempdir().unwrap();
    let snap = hub.path().join("models--acme--tiny/snapshots/abc123");
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::create_dir_all(hub.path().join("models--acme--tiny/refs")).unwrap();
    std::fs::write(hub.path().join("models--acme--tiny/refs/main"), "abc123\n").unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixtures().join("tiny/whisper").join(f), snap.join(f)).unwrap();
    }
    // The only test that sets the variable; the other tests name folders.
    std::env::set_var("HF_HUB_CACHE", hub.path());
    let r = run(&[("m", "acme/tiny".to_string())], |_| {}).unwrap();
    assert_eq!(r.total, reference()["tiny"]["whisper"]["total"].as_u64().unwrap());
    let e = run(&[("m", "acme/other".to_string())], |_| {}).unwrap_err().to_string();
    assert!(
        e.contains("acme/other: no such file or folder, and no snapshot under") && e.contains("nothing is downloaded"),
        "{e}"
    );
}

#[test]
fn snac_shape_rules_give_the_saved_tensors_and_published_sizes() {
    let refs = reference();
    let snac = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/snac");
    for (dir, key) in [("tiny24", "snac"), ("tiny32", "snac32")] {
        let loaded = source::load(&snac.join(dir).display().to_string(), false).unwrap();
        let mut saved: Vec<(String, Vec<u64>)> =
            loaded.tensors.iter().map(|t| (t.name.clone(), t.shape.clone())).collect();
        let (mut specs, _) = arch::tensors_of_config(&loaded.config.unwrap().1).unwrap();
        saved.sort();
        specs.sort();
        assert_eq!(specs, saved, "{dir}");
        for config_only in [false, true] {
            let r = run(&[("codec", snac.join(dir).display().to_string())], |o| o.config_only = config_only).unwrap();
            assert_eq!(r.total, refs["tiny"][key]["total"].as_u64().unwrap(), "{dir} {config_only}");
            assert_eq!(components(&r), ref_components(&refs["tiny"][key]), "{dir}");
        }
    }
    // tiny32's two attention blocks save a rotary inv_freq buffer each: left out and said so.
    let r = run(&[("codec", snac.join("tiny32").display().to_string())], |_| {}).unwrap();
    assert_eq!(refs["tiny"]["snac32"]["buffers"].as_array().unwrap().len(), 2);
    assert!(r.parts[0].notes.iter().any(|n| n.starts_with("2 persistent buffer")), "{:?}", r.parts[0].notes);
    for name in ["snac_24khz", "snac_32khz", "snac_44khz"] {
        let r = run(&[("codec", model(&format!("published/{name}")))], |o| o.config_only = true).unwrap();
        assert_eq!(r.total, refs["published"][name]["total"].as_u64().unwrap(), "{name}");
    }
}
