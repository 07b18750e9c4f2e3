//! Finding and loading SNAC weights: published HF layouts, fine-tuned checkpoints, weight-norm folding,
//! and key checking that names every missing, unexpected and mis-shaped tensor.
//!
//! Accepted files:
//! - a model folder with `config.json` and `model.safetensors` or `pytorch_model.bin` (the published
//!   layout; the `.safetensors` file wins when both exist);
//! - the same folder inside the Hugging Face cache: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
//!   `~/.cache/huggingface/hub`, as `models--OWNER--NAME/snapshots/REV/` (the revision `refs/main`
//!   names, else the newest snapshot holding a `config.json`);
//! - a checkpoint (`--checkpoint best_model.pt`, `.pth`, `.bin`, `.ckpt` or `.safetensors`): a PyTorch
//!   zip archive (`torch.save`, torch ≥ 1.6) or safetensors file whose tensors form a SNAC state dict,
//!   either at the top level or nested one level under the key `state_dict` or `model` (tried in that
//!   order when the top level holds no tensors). Non-tensor entries (epoch counters, optimiser state in
//!   nested dicts) are ignored.
//!
//! Key normalisation, in this order: a prefix that every key shares among `module.` (DataParallel),
//! `_orig_mod.` (`torch.compile`) and `model.` is removed, repeatedly; weight-norm pairs are folded into
//! `weight = v · (g / ‖v‖)` (norm over every axis but the first, as `torch.nn.utils.weight_norm` with
//! `dim=0`), for both the parametrization names `X.parametrizations.weight.original0` (g) /
//! `original1` (v) and the older `X.weight_g` / `X.weight_v`. Tensors are converted to f32.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;

use crate::{Config, Error, Snac};

/// Prefixes stripped when every key carries them.
const PREFIXES: [&str; 3] = ["module.", "_orig_mod.", "model."];

/// Where the Hugging Face hub cache lives: `$HF_HUB_CACHE`, `$HF_HOME/hub`, or `~/.cache/huggingface/hub`.
pub fn hf_hub_cache() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HF_HUB_CACHE").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os("HF_HOME").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p).join("hub"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("huggingface").join("hub"))
}

/// Resolves a model given as a folder (holding `config.json`) or a hub id like
/// `hubertsiuzdak/snac_24khz` (looked up in the HF cache, never downloaded).
pub fn resolve_model_dir(spec: &str) -> Result<PathBuf, Error> {
    resolve_model_dir_in(spec, hf_hub_cache().as_deref())
}

/// [`resolve_model_dir`] with an explicit hub cache folder (`None`: folders only).
pub fn resolve_model_dir_in(spec: &str, hub: Option<&Path>) -> Result<PathBuf, Error> {
    let p = Path::new(spec);
    if p.is_dir() {
        if p.join("config.json").is_file() {
            return Ok(p.to_path_buf());
        }
        return Err(Error::NotFound(format!("{}: no config.json in this folder", p.display())));
    }
    let mut parts = spec.split('/');
    if let (Some(owner), Some(name), None) = (parts.next(), parts.next(), parts.next()) {
        if !owner.is_empty() && !name.is_empty() {
            let Some(hub) = hub else {
                return Err(Error::NotFound(format!("{spec}: not a folder, and no HF cache location (HOME unset)")));
            };
            let repo = hub.join(format!("models--{owner}--{name}"));
            return snapshot_dir(&repo).ok_or_else(|| {
                Error::NotFound(format!(
                    "{spec}: not a folder, and no snapshot with a config.json under {} (weights are never downloaded; \
                     fetch them with `huggingface-cli download {spec}` where a network is available)",
                    repo.display()
                ))
            });
        }
    }
    Err(Error::NotFound(format!("{spec}: no such model folder")))
}

fn snapshot_dir(repo: &Path) -> Option<PathBuf> {
    let snaps = repo.join("snapshots");
    if let Ok(rev) = std::fs::read_to_string(repo.join("refs").join("main")) {
        let d = snaps.join(rev.trim());
        if d.join("config.json").is_file() {
            return Some(d);
        }
    }
    let mut best: Option<(std::time::SystemTime, PathBuf)> = None;
    for entry in std::fs::read_dir(&snaps).ok()?.flatten() {
        let d = entry.path();
        if !d.join("config.json").is_file() {
            continue;
        }
        let t = entry.metadata().and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH);
        if best.as_ref().is_none_or(|(bt, bp)| (t, &d) > (*bt, bp)) {
            best = Some((t, d));
        }
    }
    best.map(|(_, d)| d)
}

/// The weights file of a model folder: `model.safetensors`, else `pytorch_model.bin`.
pub fn weights_file(dir: &Path) -> Result<PathBuf, Error> {
    for name in ["model.safetensors", "pytorch_model.bin"] {
        let p = dir.join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(Error::NotFound(format!("{}: neither model.safetensors nor pytorch_model.bin", dir.display())))
}

/// Reads the configuration of a model folder.
pub fn read_config(dir: &Path) -> Result<Config, Error> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::Io(path.clone(), e))?;
    Config::from_json(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
}

fn is_zip(path: &Path) -> Result<bool, Error> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| Error::Io(path.to_path_buf(), e))?;
    let mut magic = [0u8; 4];
    let n = f.read(&mut magic).map_err(|e| Error::Io(path.to_path_buf(), e))?;
    Ok(n == 4 && &magic == b"PK\x03\x04")
}

/// Opens a PyTorch checkpoint (`torch.save` zip) to read its tensors one at a time, after the
/// checks of [`check_pickles`] and [`check_pth_sizes`] (nothing is unpickled or executed; no
/// declared size is allocated before it is checked against the file): the state dict at the top
/// level, else nested under `state_dict`, else under `model`.
pub fn open_pth(path: &Path) -> Result<candle_core::pickle::PthTensors, Error> {
    let err = |e: candle_core::Error| Error::Weights(format!("{}: {e}", path.display()));
    check_pickles(path)?;
    for key in [None, Some("state_dict"), Some("model")] {
        let pth = match candle_core::pickle::PthTensors::new(path, key) {
            Ok(p) => p,
            Err(e) if key.is_some() => {
                let _ = e; // this nesting key is absent: try the next
                continue;
            }
            Err(e) => return Err(err(e)),
        };
        if pth.tensor_infos().is_empty() {
            continue;
        }
        check_pth_sizes(path, pth.tensor_infos())?;
        return Ok(pth);
    }
    Err(Error::Weights(format!("{}: no tensors at the top level nor under `state_dict` or `model`", path.display())))
}

fn read_pth(path: &Path) -> Result<HashMap<String, Tensor>, Error> {
    let err = |e: candle_core::Error| Error::Weights(format!("{}: {e}", path.display()));
    let pth = open_pth(path)?;
    let mut out = HashMap::new();
    for name in pth.tensor_infos().keys() {
        if let Some(t) = pth.get(name).map_err(err)? {
            out.insert(name.clone(), t);
        }
    }
    Ok(out)
}

/// Walks the checkpoint's pickle with audiotok-inspect's reader before candle reads it (nothing is
/// executed; globals other than torch.save's are kept opaque, as training checkpoints hold them): every
/// length must fit in what is left of the pickle (candle allocates a `BINUNICODE` string at the length
/// the pickle states, so a 10 KB checkpoint could ask for 4 GiB), memo copies are bounded, and every
/// tensor must lie inside its storage and the storage inside its zip entry.
fn check_pickles(path: &Path) -> Result<(), Error> {
    use audiotok_inspect::pickle::{read_pth, Mode};
    read_pth(path, Mode::Lenient).map(|_| ()).map_err(|e| Error::Weights(e.to_string()))
}

/// Checks the sizes a checkpoint's pickle declares before any tensor is read (candle allocates a
/// tensor's declared size before reading its bytes): every tensor's extent (offset + elements ×
/// element size, computed without overflow) must fit in the file, and all of them together in
/// twice the file (tensors may share storage). torch.save stores tensor data uncompressed.
fn check_pth_sizes(path: &Path, infos: &HashMap<String, candle_core::pickle::TensorInfo>) -> Result<(), Error> {
    let file_len = std::fs::metadata(path).map_err(|e| Error::Io(path.to_path_buf(), e))?.len();
    let mut names: Vec<&String> = infos.keys().collect();
    names.sort();
    let mut total = 0u64;
    for name in names {
        let info = &infos[name];
        let extent = info
            .layout
            .dims()
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d as u64))
            .and_then(|n| n.checked_mul(info.dtype.size_in_bytes() as u64))
            .and_then(|n| n.checked_add(info.layout.start_offset() as u64));
        let Some(extent) = extent.filter(|&e| e <= file_len) else {
            return Err(Error::Weights(format!(
                "{}: tensor {name} declares shape {:?} of {:?} at byte offset {}: more data than the whole \
                 file ({file_len} bytes)",
                path.display(),
                info.layout.dims(),
                info.dtype,
                info.layout.start_offset()
            )));
        };
        total = total.saturating_add(extent);
        if total > file_len.saturating_mul(2) {
            return Err(Error::Weights(format!(
                "{}: the tensors declare more than twice the file's {file_len} bytes of data",
                path.display()
            )));
        }
    }
    Ok(())
}

/// Reads every tensor of a safetensors file or a PyTorch zip checkpoint (see the module docs), as stored.
pub fn read_tensors(path: &Path) -> Result<HashMap<String, Tensor>, Error> {
    if !path.is_file() {
        return Err(Error::NotFound(format!("{}: no such file", path.display())));
    }
    if path.extension().is_some_and(|e| e == "safetensors") {
        // The safetensors crate bounds the header (100 MB) and checks every offset and shape against
        // the buffer (overflow-checked) before a tensor is made; the file is read once, whole.
        let data = std::fs::read(path).map_err(|e| Error::Io(path.to_path_buf(), e))?;
        return candle_core::safetensors::load_buffer(&data, &Device::Cpu)
            .map_err(|e| Error::Weights(format!("{}: {e}", path.display())));
    }
    if !is_zip(path)? {
        return Err(Error::Weights(format!(
            "{}: not a PyTorch zip archive nor a .safetensors file (legacy torch.save files from torch < 1.6 \
             are not read: re-save with a current torch)",
            path.display()
        )));
    }
    read_pth(path)
}

/// Removes shared wrapper prefixes and folds weight-norm pairs (see the module docs).
pub fn normalize_state_dict(mut tensors: HashMap<String, Tensor>) -> Result<HashMap<String, Tensor>, Error> {
    loop {
        let strip = PREFIXES.iter().find(|p| !tensors.is_empty() && tensors.keys().all(|k| k.starts_with(*p)));
        match strip {
            Some(p) => tensors = tensors.into_iter().map(|(k, v)| (k[p.len()..].to_string(), v)).collect(),
            None => break,
        }
    }
    let pairs =
        [(".parametrizations.weight.original0", ".parametrizations.weight.original1"), (".weight_g", ".weight_v")];
    let mut out = HashMap::with_capacity(tensors.len());
    let mut names: Vec<String> = tensors.keys().cloned().collect();
    names.sort();
    for name in names {
        let Some(t) = tensors.get(&name) else { continue };
        let mut folded = false;
        for (g_suffix, v_suffix) in pairs {
            if let Some(stem) = name.strip_suffix(g_suffix) {
                if let Some(v) = tensors.get(&format!("{stem}{v_suffix}")) {
                    let w = fold_weight_norm(t, v).map_err(|e| Error::Weights(format!("{stem}: {e}")))?;
                    out.insert(format!("{stem}.weight"), w);
                    folded = true;
                }
            } else if let Some(stem) = name.strip_suffix(v_suffix) {
                if tensors.contains_key(&format!("{stem}{g_suffix}")) {
                    folded = true; // consumed with its g
                }
            }
        }
        if !folded {
            let t = t.to_dtype(DType::F32).map_err(|e| Error::Weights(format!("{name}: {e}")))?;
            out.insert(name, t);
        }
    }
    Ok(out)
}

/// weight = v · (g / ‖v‖), the norm taken over every axis but the first (in f64, rounded to f32).
fn fold_weight_norm(g: &Tensor, v: &Tensor) -> candle_core::Result<Tensor> {
    let v = v.to_dtype(DType::F32)?;
    let g = g.to_dtype(DType::F32)?;
    let rows = v.dim(0)?;
    if g.elem_count() != rows {
        candle_core::bail!("weight norm g {:?} does not match v {:?}", g.shape(), v.shape());
    }
    let norm = v.to_dtype(DType::F64)?.reshape((rows, ()))?.sqr()?.sum_keepdim(1)?.sqrt()?.to_dtype(DType::F32)?;
    let mut shape = vec![rows];
    shape.extend(std::iter::repeat_n(1, v.rank() - 1));
    let factor = (g.reshape(rows)?.reshape((rows, 1))? / norm)?.reshape(shape)?;
    v.broadcast_mul(&factor)
}

#[derive(Default)]
struct Record {
    used: BTreeSet<String>,
    missing: Vec<String>,
    misshaped: Vec<(String, Vec<usize>, Vec<usize>)>,
}

/// A VarBuilder backend over a tensor map that records what the model asks for instead of failing at the
/// first problem, so that one error can name every missing, unexpected and mis-shaped key.
struct Checked {
    tensors: HashMap<String, Tensor>,
    record: Arc<Mutex<Record>>,
    /// Largest stand-in (elements) made for a missing or mis-shaped tensor: the file's own element
    /// count, so that a configuration far larger than its weights stops the build instead of
    /// allocating what it states (the layers copy their weights out at construction).
    budget: usize,
}

impl Checked {
    fn stand_in(&self, s: Shape, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        if s.dims().iter().try_fold(1usize, |a, &d| a.checked_mul(d)).is_none_or(|n| n > self.budget) {
            candle_core::bail!("{name}: the model's shape {s:?} is larger than all the file's tensors together");
        }
        placeholder(s, dtype, dev)
    }
}

impl SimpleBackend for Checked {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _h: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let mut rec = self.record.lock().map_err(|_| candle_core::Error::Msg("poisoned lock".into()))?;
        match self.tensors.get(name) {
            Some(t) if t.shape() == &s => {
                rec.used.insert(name.to_string());
                t.to_dtype(dtype)?.to_device(dev)
            }
            Some(t) => {
                rec.used.insert(name.to_string());
                rec.misshaped.push((name.to_string(), s.dims().to_vec(), t.dims().to_vec()));
                drop(rec);
                self.stand_in(s, name, dtype, dev)
            }
            None => {
                rec.missing.push(name.to_string());
                drop(rec);
                self.stand_in(s, name, dtype, dev)
            }
        }
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        match self.tensors.get(name) {
            Some(t) => t.to_dtype(dtype)?.to_device(dev),
            None => candle_core::bail!("no tensor {name}"),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }
}

/// A stand-in for a tensor the file lacks or has in another shape (the build goes on so that one
/// error names every problem): one element broadcast to the shape (layers copy what they use).
fn placeholder(s: Shape, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
    Tensor::ones((), dtype, dev)?.broadcast_as(s)
}

/// The first tensor (by name) holding a NaN or an infinity, with the flat index of that element.
fn first_non_finite(tensors: &HashMap<String, Tensor>) -> Result<Option<(String, usize)>, Error> {
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    for name in names {
        let t = &tensors[name];
        if !t.dtype().is_float() {
            continue;
        }
        let err = |e: candle_core::Error| Error::Weights(format!("{name}: {e}"));
        let v = t.flatten_all().and_then(|f| f.to_dtype(DType::F32)).and_then(|f| f.to_vec1::<f32>()).map_err(err)?;
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            return Ok(Some((name.clone(), i)));
        }
    }
    Ok(None)
}

/// Builds a model from a normalised state dict, checking that its keys and shapes are exactly the model's.
/// `source` names the file in errors.
pub fn snac_from_tensors(
    cfg: &Config,
    tensors: HashMap<String, Tensor>,
    device: &Device,
    source: &str,
) -> Result<Snac, Error> {
    cfg.validate()?;
    if let Some((name, i)) = first_non_finite(&tensors)? {
        return Err(Error::Weights(format!(
            "{source}: {name}: non-finite value (NaN or infinity) at element {i}; the model would give \
             meaningless codes"
        )));
    }
    let names: BTreeSet<String> = tensors.keys().cloned().collect();
    let record = Arc::new(Mutex::new(Record::default()));
    let budget = tensors.values().map(|t| t.elem_count()).sum::<usize>().max(1 << 20);
    let backend = Checked { tensors, record: record.clone(), budget };
    let vb = VarBuilder::from_backend(Box::new(backend), DType::F32, device.clone());
    let built = Snac::new(cfg, vb);
    let rec = record.lock().map_err(|_| Error::Weights("poisoned lock".into()))?;
    let unexpected: Vec<String> = names.difference(&rec.used).cloned().collect();
    let mismatched = !rec.missing.is_empty() || !rec.misshaped.is_empty();
    match built {
        Ok(m) if !mismatched && unexpected.is_empty() => return Ok(m),
        Ok(_) => {}
        // A build stopped by a mismatch (a stand-in over the budget) reports the mismatches so far.
        Err(_) if mismatched => {}
        Err(e) => return Err(Error::Weights(format!("{source}: {e}"))),
    }
    Err(Error::Mismatch(Box::new(crate::error::Mismatch {
        source: source.to_string(),
        missing: rec.missing.clone(),
        unexpected,
        misshaped: rec.misshaped.clone(),
    })))
}

/// Loads a model folder (see [`resolve_model_dir`]); `checkpoint`, when given, replaces the folder's
/// weights (the folder still supplies `config.json`).
pub fn load_snac(model: &str, checkpoint: Option<&Path>, device: &Device) -> Result<Snac, Error> {
    load_snac_from(model, checkpoint, device).map(|l| l.model)
}

/// A model with where it came from ([`load_snac_from`]).
#[derive(Debug)]
pub struct LoadedSnac {
    /// The model.
    pub model: Snac,
    /// Its `config.json`.
    pub config_path: PathBuf,
    /// Fields that `config.json` lacks, which took `SNAC.__init__`'s defaults (see [`Config`]).
    pub defaulted: Vec<&'static str>,
    /// The weights file read.
    pub weights_path: PathBuf,
}

/// [`load_snac`], also saying which files were read and which config fields were defaulted.
pub fn load_snac_from(model: &str, checkpoint: Option<&Path>, device: &Device) -> Result<LoadedSnac, Error> {
    let dir = resolve_model_dir(model)?;
    let config_path = dir.join("config.json");
    let text = std::fs::read_to_string(&config_path).map_err(|e| Error::Io(config_path.clone(), e))?;
    let cfg = Config::from_json(&text).map_err(|e| Error::Config(format!("{}: {e}", config_path.display())))?;
    let file = match checkpoint {
        Some(c) => c.to_path_buf(),
        None => weights_file(&dir)?,
    };
    let tensors = normalize_state_dict(read_tensors(&file)?)?;
    let model = snac_from_tensors(&cfg, tensors, device, &file.display().to_string())?;
    Ok(LoadedSnac { model, defaulted: Config::defaulted_fields(&text), config_path, weights_path: file })
}
