//! Finding and reading a model's tensor headers.
//!
//! A MODEL is one of:
//! - a folder with `model.safetensors.index.json` (its shards), `model.safetensors`,
//!   `pytorch_model.bin.index.json` (its shards), `pytorch_model.bin`, or exactly one other
//!   `*.safetensors` file (first match wins), and usually `config.json`;
//! - a PEFT adapter folder (`adapter_config.json` + `adapter_model.safetensors` or
//!   `adapter_model.bin`); its base model (`base_model_name_or_path`, tried relative to the adapter
//!   folder, then as a folder or hub id) is read too when it is found;
//! - a single `.safetensors` file, or a `.bin` / `.pt` / `.pth` torch.save zip (a `config.json`
//!   beside it is used);
//! - a hub id `OWNER/NAME` found in the local Hugging Face cache (`$HF_HUB_CACHE`, `$HF_HOME/hub` or
//!   `~/.cache/huggingface/hub`; the snapshot `refs/main` names, else the newest): never downloaded.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::pickle::{self, Mode};
use crate::{safetensors, InspectError, TensorMeta};

/// A model's tensors and the files they came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The folder or file the MODEL resolved to.
    pub path: PathBuf,
    /// The weight files read (headers only), in the order read.
    pub files: Vec<PathBuf>,
    /// The tensors, as stored (tied torch.save tensors appear under each name).
    pub tensors: Vec<TensorMeta>,
    /// `config.json`, when there is one.
    pub config: Option<(PathBuf, Value)>,
    /// The adapter, for a PEFT adapter folder (then `tensors` are the base model's, when found).
    pub adapter: Option<Adapter>,
}

/// A PEFT LoRA adapter folder.
#[derive(Debug, Clone)]
pub struct Adapter {
    /// Its `adapter_config.json`.
    pub config_path: PathBuf,
    /// The weights file.
    pub file: PathBuf,
    /// `r`.
    pub r: u64,
    /// `lora_alpha`.
    pub alpha: f64,
    /// `target_modules` (a regex string becomes one entry).
    pub targets: Vec<String>,
    /// `base_model_name_or_path` as written.
    pub base: Option<String>,
    /// Where the base was found, if it was.
    pub base_path: Option<PathBuf>,
    /// The adapter's tensors (names as saved: `base_model.model.…lora_A.weight`).
    pub tensors: Vec<TensorMeta>,
}

/// Where the Hugging Face hub cache lives: `$HF_HUB_CACHE`, `$HF_HOME/hub`, or `~/.cache/huggingface/hub`.
pub fn hf_hub_cache() -> Option<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|p| !p.is_empty()).map(PathBuf::from);
    var("HF_HUB_CACHE")
        .or_else(|| var("HF_HOME").map(|h| h.join("hub")))
        .or_else(|| var("HOME").map(|h| h.join(".cache").join("huggingface").join("hub")))
}

/// Resolves a MODEL to an existing file or folder (see the module docs).
pub fn resolve(spec: &str) -> Result<PathBuf, InspectError> {
    let p = Path::new(spec);
    if p.exists() {
        return Ok(p.to_path_buf());
    }
    let mut parts = spec.split('/');
    if let (Some(owner), Some(name), None) = (parts.next(), parts.next(), parts.next()) {
        if !owner.is_empty() && !name.is_empty() && !owner.starts_with('.') {
            if let Some(hub) = hf_hub_cache() {
                let repo = hub.join(format!("models--{owner}--{name}"));
                if let Some(d) = snapshot(&repo) {
                    return Ok(d);
                }
                return Err(InspectError::NotFound(format!(
                    "{spec}: no such file or folder, and no snapshot under {} (nothing is downloaded)",
                    repo.display()
                )));
            }
        }
    }
    Err(InspectError::NotFound(format!("{spec}: no such file or folder")))
}

fn snapshot(repo: &Path) -> Option<PathBuf> {
    let snaps = repo.join("snapshots");
    if let Ok(rev) = std::fs::read_to_string(repo.join("refs").join("main")) {
        let d = snaps.join(rev.trim());
        if d.is_dir() {
            return Some(d);
        }
    }
    let mut best: Option<(std::time::SystemTime, PathBuf)> = None;
    for entry in std::fs::read_dir(&snaps).ok()?.flatten() {
        let d = entry.path();
        let t = entry.metadata().and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH);
        if d.is_dir() && best.as_ref().is_none_or(|(bt, bp)| (t, &d) > (*bt, bp)) {
            best = Some((t, d));
        }
    }
    best.map(|(_, d)| d)
}

fn read_json(path: &Path) -> Result<Value, InspectError> {
    let text = std::fs::read_to_string(path).map_err(|e| InspectError::Io(path.to_path_buf(), e))?;
    serde_json::from_str(&text).map_err(|e| InspectError::Config(path.to_path_buf(), format!("not JSON: {e}")))
}

fn config_beside(dir: &Path) -> Result<Option<(PathBuf, Value)>, InspectError> {
    let p = dir.join("config.json");
    if p.is_file() {
        Ok(Some((p.clone(), read_json(&p)?)))
    } else {
        Ok(None)
    }
}

/// Reads one weights file's tensors by its kind (safetensors by extension, else a torch.save zip).
pub fn read_file(path: &Path) -> Result<Vec<TensorMeta>, InspectError> {
    if path.extension().is_some_and(|e| e == "safetensors") {
        Ok(safetensors::read_header(path)?.tensors)
    } else {
        pickle::read_pth(path, Mode::Strict)
    }
}

/// Files read and their tensors.
type Weights = (Vec<PathBuf>, Vec<TensorMeta>);

/// Reads a sharded checkpoint's index and its shards' headers; every name the index maps must be in
/// its shard, and every shard tensor in the index.
fn read_sharded(index: &Path) -> Result<Weights, InspectError> {
    let bad = |m: String| InspectError::Config(index.to_path_buf(), m);
    let v = read_json(index)?;
    let map = v.get("weight_map").and_then(Value::as_object).ok_or_else(|| bad("no weight_map object".into()))?;
    let dir = index.parent().unwrap_or(Path::new("."));
    let mut shards: Vec<&str> = Vec::new();
    for (name, file) in map {
        let file = file.as_str().ok_or_else(|| bad(format!("weight_map.{name} is not a file name")))?;
        if file.contains('/') || file.contains('\\') || file.starts_with('.') {
            return Err(bad(format!("weight_map.{name}: {file:?} is not a file of this folder")));
        }
        if !shards.contains(&file) {
            shards.push(file);
        }
    }
    shards.sort_unstable();
    let mut files = Vec::new();
    let mut tensors = Vec::new();
    for shard in shards {
        let path = dir.join(shard);
        let got = read_file(&path)?;
        for t in &got {
            if map.get(&t.name).and_then(Value::as_str) != Some(shard) {
                return Err(bad(format!("{shard} holds {}, which the weight_map does not place there", t.name)));
            }
        }
        files.push(path);
        tensors.extend(got);
    }
    if tensors.len() != map.len() {
        let have: std::collections::HashSet<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
        let mut missing: Vec<&String> = map.keys().filter(|k| !have.contains(k.as_str())).collect();
        missing.sort();
        return Err(bad(format!("the weight_map names tensors no shard holds: {missing:?}")));
    }
    Ok((files, tensors))
}

/// The weights of a model folder (see the module docs), `None` when it has none.
fn folder_weights(dir: &Path) -> Result<Option<Weights>, InspectError> {
    for index in ["model.safetensors.index.json", "pytorch_model.bin.index.json"] {
        let p = dir.join(index);
        if p.is_file() {
            return read_sharded(&p).map(Some);
        }
    }
    for single in ["model.safetensors", "pytorch_model.bin"] {
        let p = dir.join(single);
        if p.is_file() {
            return Ok(Some((vec![p.clone()], read_file(&p)?)));
        }
    }
    let mut others: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| InspectError::Io(dir.to_path_buf(), e))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors") && p.is_file())
        .collect();
    others.sort();
    match others.as_slice() {
        [one] => Ok(Some((vec![one.clone()], read_file(one)?))),
        _ => Ok(None),
    }
}

/// Reads a MODEL's headers (or, with `config_only`, only its `config.json`: then `tensors` is empty).
pub fn load(spec: &str, config_only: bool) -> Result<Loaded, InspectError> {
    let path = resolve(spec)?;
    if path.is_file() {
        let config = config_beside(path.parent().unwrap_or(Path::new(".")))?;
        let tensors = if config_only { Vec::new() } else { read_file(&path)? };
        let files = if config_only { Vec::new() } else { vec![path.clone()] };
        return Ok(Loaded { path, files, tensors, config, adapter: None });
    }
    let adapter_config = path.join("adapter_config.json");
    if adapter_config.is_file() {
        return load_adapter(&path, &adapter_config, config_only);
    }
    let config = config_beside(&path)?;
    if config_only {
        if config.is_none() {
            return Err(InspectError::NotFound(format!("{}: no config.json in this folder", path.display())));
        }
        return Ok(Loaded { path, files: Vec::new(), tensors: Vec::new(), config, adapter: None });
    }
    let Some((files, tensors)) = folder_weights(&path)? else {
        return Err(InspectError::NotFound(format!(
            "{}: no model.safetensors(.index.json), pytorch_model.bin(.index.json), single *.safetensors or \
             adapter_config.json in this folder",
            path.display()
        )));
    };
    Ok(Loaded { path, files, tensors, config, adapter: None })
}

fn load_adapter(dir: &Path, config_path: &Path, config_only: bool) -> Result<Loaded, InspectError> {
    let bad = |m: String| InspectError::Config(config_path.to_path_buf(), m);
    let c = read_json(config_path)?;
    let peft_type = c.get("peft_type").and_then(Value::as_str).unwrap_or("LORA");
    if peft_type != "LORA" {
        return Err(bad(format!("peft_type {peft_type}: only LORA adapters are read")));
    }
    let r = c.get("r").and_then(Value::as_u64).ok_or_else(|| bad("r is missing or not an integer".into()))?;
    let alpha = c.get("lora_alpha").and_then(Value::as_f64).unwrap_or(8.0);
    let targets = match c.get("target_modules") {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    };
    let file = ["adapter_model.safetensors", "adapter_model.bin"]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            InspectError::NotFound(format!(
                "{}: adapter_config.json but no adapter_model.safetensors or .bin",
                dir.display()
            ))
        })?;
    let adapter_tensors = read_file(&file)?;
    let base = c.get("base_model_name_or_path").and_then(Value::as_str).map(str::to_string);
    let base_path = base.as_deref().and_then(|b| {
        let rel = dir.join(b);
        if rel.is_dir() {
            Some(rel)
        } else {
            resolve(b).ok().filter(|p| p.is_dir())
        }
    });
    let (files, tensors, config) = match &base_path {
        Some(bp) => {
            let loaded = load(&bp.to_string_lossy(), config_only)?;
            (loaded.files, loaded.tensors, loaded.config)
        }
        None => (Vec::new(), Vec::new(), None),
    };
    let mut all_files = vec![file.clone()];
    all_files.extend(files);
    let adapter = Adapter {
        config_path: config_path.to_path_buf(),
        file,
        r,
        alpha,
        targets,
        base,
        base_path,
        tensors: adapter_tensors,
    };
    Ok(Loaded { path: dir.to_path_buf(), files: all_files, tensors, config, adapter: Some(adapter) })
}
