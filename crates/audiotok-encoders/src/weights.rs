//! Model folders and their weights: safetensors, single or sharded through
//! `model.safetensors.index.json`, or a single `pytorch_model.bin` (a `torch.save` zip: its pickle
//! walked and checked by audiotok-inspect's reader, never executed; tensors read one at a time),
//! read tensor by tensor. Safetensors win when a folder has both; a sharded
//! `pytorch_model.bin.index.json` is refused (the published multi-shard models ship safetensors).
//!
//! Only the shards holding a tensor of the wanted namespaces are opened, and of those only the
//! byte ranges of the wanted tensors are read (positional reads of the header's offsets: a
//! Qwen2-Audio-7B folder costs its 0.6 B audio parameters, never the LLM's). A folder is given as a
//! path or as a hub id looked up in the HF cache (as `audiotok_codecs::weights` does; nothing is
//! downloaded).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use candle_core::{DType, Device, Tensor};

use crate::{Error, Mismatch, Result};

pub use audiotok_codecs::weights::{hf_hub_cache, resolve_model_dir};

/// Largest safetensors header read (the 7B model's shards have headers of a few hundred KB).
const MAX_HEADER: u64 = 64 << 20;

#[derive(Debug, Clone)]
struct Entry {
    file: PathBuf,
    dtype: DType,
    shape: Vec<usize>,
    start: u64,
    len: u64,
    /// In the folder's `pytorch_model.bin` (read through [`Pth`]), not at `start..start + len`.
    pth: bool,
}

/// A `pytorch_model.bin` opened for reading tensor by tensor.
struct Pth(candle_core::pickle::PthTensors);

impl std::fmt::Debug for Pth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pth").field("tensors", &self.0.tensor_infos().len()).finish()
    }
}

/// The tensors of a model folder under some namespaces, with their locations; read on demand.
#[derive(Debug)]
pub struct Store {
    entries: BTreeMap<String, Entry>,
    /// Every tensor name of the folder (also the ones outside the namespaces).
    all: BTreeSet<String>,
    pth: Option<Pth>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Io(path.to_path_buf(), e)
}

fn parse_dtype(s: &str) -> Option<DType> {
    Some(match s {
        "F32" => DType::F32,
        "F16" => DType::F16,
        "BF16" => DType::BF16,
        "F64" => DType::F64,
        "I64" => DType::I64,
        "U8" => DType::U8,
        "U32" => DType::U32,
        _ => return None,
    })
}

/// The kept entries of a header, and every name in it.
type Header = (Vec<(String, Entry)>, Vec<String>);

/// A mis-shaped tensor: (name, shape the model needs, shape in the file).
type Misshaped = (String, Vec<usize>, Vec<usize>);

/// Reads one safetensors header: (name -> entry) for the names `keep` accepts, and every name.
fn read_header(path: &Path, keep: &dyn Fn(&str) -> bool) -> Result<Header> {
    let bad = |m: String| Error::Weights(format!("{}: {m}", path.display()));
    let mut f = File::open(path).map_err(io(path))?;
    let size = f.metadata().map_err(io(path))?.len();
    let mut n = [0u8; 8];
    f.read_exact(&mut n).map_err(|_| bad("shorter than a safetensors header".into()))?;
    let n = u64::from_le_bytes(n);
    if n > MAX_HEADER || n + 8 > size {
        return Err(bad(format!("header length {n} does not fit the file ({size} bytes)")));
    }
    let mut h = vec![0u8; n as usize];
    f.read_exact(&mut h).map_err(io(path))?;
    let v: serde_json::Value = serde_json::from_slice(&h).map_err(|e| bad(format!("header is not JSON: {e}")))?;
    let obj = v.as_object().ok_or_else(|| bad("header is not a JSON object".into()))?;
    let data_start = 8 + n;
    let mut out = Vec::new();
    let mut names = Vec::new();
    for (name, info) in obj {
        if name == "__metadata__" {
            continue;
        }
        names.push(name.clone());
        if !keep(name) {
            continue;
        }
        let dt = info.get("dtype").and_then(|d| d.as_str()).unwrap_or_default();
        let dtype = parse_dtype(dt).ok_or_else(|| bad(format!("{name}: unsupported dtype {dt:?}")))?;
        let shape: Vec<usize> = info
            .get("shape")
            .and_then(|s| s.as_array())
            .map(|a| a.iter().filter_map(|d| d.as_u64().map(|d| d as usize)).collect())
            .ok_or_else(|| bad(format!("{name}: no shape")))?;
        let offs: Vec<u64> = info
            .get("data_offsets")
            .and_then(|s| s.as_array())
            .map(|a| a.iter().filter_map(|d| d.as_u64()).collect())
            .unwrap_or_default();
        let [s, e] = offs[..] else { return Err(bad(format!("{name}: bad data_offsets"))) };
        let elems = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d as u64));
        let want = elems.and_then(|el| el.checked_mul(dtype.size_in_bytes() as u64));
        if e < s || Some(e - s) != want || data_start + e > size {
            return Err(bad(format!("{name}: data_offsets [{s}, {e}] do not fit its shape {shape:?} or the file")));
        }
        out.push((
            name.clone(),
            Entry { file: path.to_path_buf(), dtype, shape, start: data_start + s, len: e - s, pth: false },
        ));
    }
    Ok((out, names))
}

impl Store {
    /// Opens the safetensors of a model folder, keeping the tensors whose names `keep` accepts.
    pub fn open(dir: &Path, keep: &dyn Fn(&str) -> bool) -> Result<Store> {
        let index = dir.join("model.safetensors.index.json");
        let single = dir.join("model.safetensors");
        let mut entries = BTreeMap::new();
        let mut all = BTreeSet::new();
        if index.is_file() {
            let text = std::fs::read_to_string(&index).map_err(io(&index))?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| Error::Weights(format!("{}: not JSON: {e}", index.display())))?;
            let map = v
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| Error::Weights(format!("{}: no weight_map object", index.display())))?;
            let mut files = BTreeSet::new();
            for (name, file) in map {
                all.insert(name.clone());
                if keep(name) {
                    let file = file.as_str().ok_or_else(|| {
                        Error::Weights(format!("{}: {name}: the file is not a string", index.display()))
                    })?;
                    if file.contains('/') || file.contains('\\') || file == ".." {
                        return Err(Error::Weights(format!("{}: {name}: bad shard name {file:?}", index.display())));
                    }
                    files.insert(file.to_string());
                }
            }
            for file in files {
                let path = dir.join(&file);
                if !path.is_file() {
                    return Err(Error::NotFound(format!(
                        "{}: shard {file} named by the index is missing",
                        dir.display()
                    )));
                }
                let (es, _) = read_header(&path, keep)?;
                entries.extend(es);
            }
        } else if single.is_file() {
            let (es, names) = read_header(&single, keep)?;
            entries.extend(es);
            all.extend(names);
        } else if dir.join("pytorch_model.bin").is_file() {
            let path = dir.join("pytorch_model.bin");
            let pth = audiotok_codecs::weights::open_pth(&path).map_err(|e| Error::Weights(e.to_string()))?;
            for (name, info) in pth.tensor_infos() {
                all.insert(name.clone());
                if keep(name) {
                    let entry = Entry {
                        file: path.clone(),
                        dtype: info.dtype,
                        shape: info.layout.dims().to_vec(),
                        start: 0,
                        len: 0,
                        pth: true,
                    };
                    entries.insert(name.clone(), entry);
                }
            }
            return Ok(Store { entries, all, pth: Some(Pth(pth)) });
        } else if dir.join("pytorch_model.bin.index.json").is_file() {
            return Err(Error::NotFound(format!(
                "{}: a sharded pytorch_model.bin.index.json; audiotok embed reads sharded safetensors \
                 (model.safetensors.index.json) or a single pytorch_model.bin: convert it with transformers' \
                 save_pretrained(safe_serialization=True)",
                dir.display()
            )));
        } else {
            return Err(Error::NotFound(format!(
                "{}: neither model.safetensors nor model.safetensors.index.json",
                dir.display()
            )));
        }
        Ok(Store { entries, all, pth: None })
    }

    /// Every tensor name of the folder.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.all.iter().map(String::as_str)
    }

    /// Whether the folder holds `name` (in the kept namespaces).
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// The shape of a kept tensor.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.entries.get(name).map(|e| e.shape.as_slice())
    }

    /// Reads a kept tensor as f32 on the CPU.
    pub fn read(&self, name: &str) -> Result<Tensor> {
        let e = self.entries.get(name).ok_or_else(|| Error::Weights(format!("no tensor {name}")))?;
        if let (true, Some(Pth(pth))) = (e.pth, &self.pth) {
            let t = pth
                .get(name)
                .map_err(|err| Error::Weights(format!("{}: {name}: {err}", e.file.display())))?
                .ok_or_else(|| Error::Weights(format!("{}: no tensor {name}", e.file.display())))?;
            return Ok(t.to_dtype(DType::F32)?);
        }
        let mut f = File::open(&e.file).map_err(io(&e.file))?;
        f.seek(SeekFrom::Start(e.start)).map_err(io(&e.file))?;
        let mut buf = vec![0u8; e.len as usize];
        f.read_exact(&mut buf).map_err(io(&e.file))?;
        let t = Tensor::from_raw_buffer(&buf, e.dtype, &e.shape, &Device::Cpu)
            .map_err(|err| Error::Weights(format!("{}: {name}: {err}", e.file.display())))?;
        Ok(t.to_dtype(DType::F32)?)
    }
}

/// Hands a model builder its tensors by name under a prefix, recording every missing and
/// mis-shaped one instead of stopping at the first, and which were used, so that
/// [`Loader::finish`] can name every problem in one error.
pub struct Loader<'a> {
    store: &'a Store,
    prefix: String,
    device: Device,
    used: Mutex<BTreeSet<String>>,
    missing: Mutex<Vec<String>>,
    misshaped: Mutex<Vec<Misshaped>>,
    source: String,
}

impl<'a> Loader<'a> {
    /// A loader over `store` reading `prefix + name`.
    pub fn new(store: &'a Store, prefix: &str, device: &Device, source: &str) -> Self {
        Loader {
            store,
            prefix: prefix.to_string(),
            device: device.clone(),
            used: Mutex::default(),
            missing: Mutex::default(),
            misshaped: Mutex::default(),
            source: source.to_string(),
        }
    }

    /// The same store and records under another prefix (appended).
    pub fn full(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Whether the tensor exists.
    pub fn has(&self, name: &str) -> bool {
        self.store.contains(&self.full(name))
    }

    /// Marks a present tensor as used without reading it (buffers inference ignores).
    pub fn skip(&self, name: &str) {
        let full = self.full(name);
        if self.store.contains(&full) {
            if let Ok(mut u) = self.used.lock() {
                u.insert(full);
            }
        }
    }

    /// The tensor `name` of shape `shape`; a stand-in of zeros (and a record) when missing or mis-shaped.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let full = self.full(name);
        let lock_err = || Error::Weights("poisoned lock".into());
        match self.store.shape(&full) {
            Some(s) if s == shape => {
                self.used.lock().map_err(|_| lock_err())?.insert(full.clone());
                let t = self.store.read(&full)?;
                if let Some(i) = t.flatten_all()?.to_vec1::<f32>()?.iter().position(|x| !x.is_finite()) {
                    return Err(Error::Weights(format!(
                        "{}: {full}: non-finite value (NaN or infinity) at element {i}",
                        self.source
                    )));
                }
                Ok(t.to_device(&self.device)?)
            }
            Some(s) => {
                self.used.lock().map_err(|_| lock_err())?.insert(full.clone());
                self.misshaped.lock().map_err(|_| lock_err())?.push((full, shape.to_vec(), s.to_vec()));
                Ok(Tensor::zeros(shape, DType::F32, &self.device)?)
            }
            None => {
                self.missing.lock().map_err(|_| lock_err())?.push(full);
                Ok(Tensor::zeros(shape, DType::F32, &self.device)?)
            }
        }
    }

    /// Ends the build: an error naming every missing, mis-shaped and unexpected tensor (unexpected:
    /// a tensor whose name starts with one of `namespaces` that the model did not ask for).
    pub fn finish(self, namespaces: &[String]) -> Result<()> {
        let lock_err = || Error::Weights("poisoned lock".into());
        let used = self.used.into_inner().map_err(|_| lock_err())?;
        let missing = self.missing.into_inner().map_err(|_| lock_err())?;
        let misshaped = self.misshaped.into_inner().map_err(|_| lock_err())?;
        let unexpected: Vec<String> = self
            .store
            .names()
            .filter(|n| namespaces.iter().any(|ns| n.starts_with(ns.as_str())) && !used.contains(*n))
            .map(str::to_string)
            .collect();
        if missing.is_empty() && misshaped.is_empty() && unexpected.is_empty() {
            return Ok(());
        }
        Err(Error::Mismatch(Box::new(Mismatch { source: self.source, missing, unexpected, misshaped })))
    }
}

/// The SHA-1 of a file, hex (the manifest's `config.json` hash).
pub fn sha1_file(path: &Path) -> Result<String> {
    use sha1::Digest;
    let bytes = std::fs::read(path).map_err(io(path))?;
    let d = sha1::Sha1::digest(&bytes);
    Ok(d.iter().map(|b| format!("{b:02x}")).collect())
}
