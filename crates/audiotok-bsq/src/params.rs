//! The model's tensors: their names, shapes and initialisation, and loading/saving as safetensors with
//! a check that lists every missing, unexpected and mis-shaped tensor.
//!
//! Names (PyTorch `state_dict` style; `tools/bsq_reference.py` uses the same):
//! `{enc,dec}.pos_embed`, `{enc,dec}.blocks.{i}.{ln1,ln2}.{weight,bias}`,
//! `….attn.{qkv,proj}.{weight,bias}`, `….mlp.{fc1,fc2}.{weight,bias}`, with `conformer`:
//! `….conv.{ln,pw1,pw2}.*`, `….conv.dw.weight` (`[width, 1, kernel]`, no bias: BatchNorm follows, so a bias would get no gradient) and
//! `….conv.bn.{weight,bias,running_mean,running_var}` (the last two are buffers, not trained),
//! `{enc,dec}.ln_post.*`, `enc.patch_embed.*`, `quant.proj.*`, `dec.proj.*`, `dec.head.{fc,out}.*`.
//! Linear weights are `[out, in]`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};

use crate::{Config, Error, Mismatch, Rng};

/// How a tensor starts out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// All zeros.
    Zeros,
    /// All ones.
    Ones,
    /// Normal with this standard deviation.
    Normal(f64),
    /// Normal with this standard deviation, truncated at two deviations.
    TruncNormal(f64),
    /// Uniform in `[-b, b]`.
    Uniform(f64),
}

/// One tensor of the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    /// Its name in the weights file.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// How [`Params::init`] fills it.
    pub init: Init,
    /// Whether the optimiser trains it (`false`: a buffer such as BatchNorm's running statistics).
    pub trainable: bool,
}

fn push(out: &mut Vec<ParamSpec>, name: String, shape: Vec<usize>, init: Init, trainable: bool) {
    out.push(ParamSpec { name, shape, init, trainable });
}

fn linear(out: &mut Vec<ParamSpec>, name: &str, inp: usize, outp: usize) {
    push(out, format!("{name}.weight"), vec![outp, inp], Init::TruncNormal(0.02), true);
    push(out, format!("{name}.bias"), vec![outp], Init::Zeros, true);
}

fn norm(out: &mut Vec<ParamSpec>, name: &str, w: usize) {
    push(out, format!("{name}.weight"), vec![w], Init::Ones, true);
    push(out, format!("{name}.bias"), vec![w], Init::Zeros, true);
}

fn blocks(out: &mut Vec<ParamSpec>, cfg: &Config, prefix: &str, depth: usize) {
    let w = cfg.width;
    for i in 0..depth {
        let b = format!("{prefix}.blocks.{i}");
        norm(out, &format!("{b}.ln1"), w);
        linear(out, &format!("{b}.attn.qkv"), w, 3 * w);
        linear(out, &format!("{b}.attn.proj"), w, w);
        if cfg.conformer {
            let k = cfg.conv_kernel;
            norm(out, &format!("{b}.conv.ln"), w);
            linear(out, &format!("{b}.conv.pw1"), w, 2 * w);
            let bound = 1.0 / (k as f64).sqrt();
            push(out, format!("{b}.conv.dw.weight"), vec![w, 1, k], Init::Uniform(bound), true);
            norm(out, &format!("{b}.conv.bn"), w);
            push(out, format!("{b}.conv.bn.running_mean"), vec![w], Init::Zeros, false);
            push(out, format!("{b}.conv.bn.running_var"), vec![w], Init::Ones, false);
            linear(out, &format!("{b}.conv.pw2"), w, w);
        }
        norm(out, &format!("{b}.ln2"), w);
        linear(out, &format!("{b}.mlp.fc1"), w, cfg.mlp_hidden());
        linear(out, &format!("{b}.mlp.fc2"), cfg.mlp_hidden(), w);
    }
    norm(out, &format!("{prefix}.ln_post"), w);
}

/// Every tensor of the model `cfg` describes, in a fixed order.
pub fn spec(cfg: &Config) -> Vec<ParamSpec> {
    let mut out = Vec::new();
    let (w, n) = (cfg.width, cfg.max_tokens());
    linear(&mut out, "enc.patch_embed", cfg.patch_len(), w);
    push(&mut out, "enc.pos_embed".into(), vec![n, w], Init::Normal(0.02), true);
    blocks(&mut out, cfg, "enc", cfg.encoder_depth);
    linear(&mut out, "quant.proj", w, cfg.bits);
    linear(&mut out, "dec.proj", cfg.bits, w);
    push(&mut out, "dec.pos_embed".into(), vec![n, w], Init::Normal(0.02), true);
    blocks(&mut out, cfg, "dec", cfg.decoder_depth);
    linear(&mut out, "dec.head.fc", w, cfg.head_dim);
    linear(&mut out, "dec.head.out", cfg.head_dim, cfg.patch_len());
    out
}

/// The model's tensors as candle [`Var`]s (f32), trainable ones and buffers apart.
#[derive(Debug, Clone)]
pub struct Params {
    trainable: BTreeMap<String, Var>,
    buffers: BTreeMap<String, Var>,
    device: Device,
}

impl Params {
    /// Fresh parameters for `cfg`, drawn from `seed` in [`spec`] order.
    pub fn init(cfg: &Config, seed: u64, device: &Device) -> Result<Params, Error> {
        cfg.validate()?;
        let mut rng = Rng::new(seed);
        let mut tensors = HashMap::new();
        for s in spec(cfg) {
            let len: usize = s.shape.iter().product();
            let data: Vec<f32> = match s.init {
                Init::Zeros => vec![0.0; len],
                Init::Ones => vec![1.0; len],
                Init::Normal(std) => (0..len).map(|_| (rng.normal() * std) as f32).collect(),
                Init::TruncNormal(std) => (0..len).map(|_| rng.trunc_normal(std) as f32).collect(),
                Init::Uniform(b) => (0..len).map(|_| ((rng.uniform() * 2.0 - 1.0) * b) as f32).collect(),
            };
            tensors.insert(s.name, Tensor::from_vec(data, s.shape, &Device::Cpu)?);
        }
        Params::from_tensors(cfg, tensors, "initialised parameters", device)
    }

    /// Parameters from named tensors (converted to f32 on `device`); every missing, unexpected and
    /// mis-shaped name is listed in one [`Error::Mismatch`] naming `source`.
    pub fn from_tensors(
        cfg: &Config,
        mut tensors: HashMap<String, Tensor>,
        source: &str,
        device: &Device,
    ) -> Result<Params, Error> {
        cfg.validate()?;
        let mut m = Mismatch { source: source.to_string(), missing: vec![], unexpected: vec![], misshaped: vec![] };
        let mut trainable = BTreeMap::new();
        let mut buffers = BTreeMap::new();
        for s in spec(cfg) {
            match tensors.remove(&s.name) {
                None => m.missing.push(s.name),
                Some(t) if t.dims() != s.shape.as_slice() => m.misshaped.push((s.name, s.shape, t.dims().to_vec())),
                Some(t) => {
                    let v = Var::from_tensor(&t.to_dtype(DType::F32)?.to_device(device)?)?;
                    if s.trainable {
                        trainable.insert(s.name, v);
                    } else {
                        buffers.insert(s.name, v);
                    }
                }
            }
        }
        m.unexpected = tensors.into_keys().collect();
        m.unexpected.sort();
        if !(m.missing.is_empty() && m.unexpected.is_empty() && m.misshaped.is_empty()) {
            return Err(Error::Mismatch(Box::new(m)));
        }
        Ok(Params { trainable, buffers, device: device.clone() })
    }

    /// Loads a safetensors file written by [`Params::save`] or by `tools/bsq_reference.py`.
    pub fn load(cfg: &Config, path: &Path, device: &Device) -> Result<Params, Error> {
        let bytes = std::fs::read(path).map_err(|e| Error::Io(path.to_path_buf(), e))?;
        let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
            .map_err(|e| Error::Weights(path.to_path_buf(), e.to_string()))?;
        Params::from_tensors(cfg, tensors.into_iter().collect(), &path.display().to_string(), device)
    }

    /// Writes every tensor (trainable and buffers) as safetensors, atomically.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let map: HashMap<String, Tensor> = self.tensors().into_iter().collect();
        let bytes = safetensors_bytes(&map)?;
        audiotok_core::atomic::write_with(path, |w| {
            std::io::Write::write_all(w, &bytes).map_err(|e| Error::Io(path.to_path_buf(), e))
        })
    }

    /// Every tensor by name (a cheap handle on the same storage).
    pub fn tensors(&self) -> BTreeMap<String, Tensor> {
        self.trainable.iter().chain(self.buffers.iter()).map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect()
    }

    /// The trainable variables by name.
    pub fn trainable(&self) -> &BTreeMap<String, Var> {
        &self.trainable
    }

    /// The buffers (not trained) by name.
    pub fn buffers(&self) -> &BTreeMap<String, Var> {
        &self.buffers
    }

    /// Number of trainable scalars.
    pub fn count(&self) -> usize {
        self.trainable.values().map(|v| v.elem_count()).sum()
    }

    /// The device the tensors live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The tensor `name` (trainable or buffer).
    pub(crate) fn get(&self, name: &str) -> Result<Tensor, Error> {
        self.trainable
            .get(name)
            .or_else(|| self.buffers.get(name))
            .map(|v| v.as_tensor().clone())
            .ok_or_else(|| Error::Config(format!("no tensor {name} in the parameters")))
    }

    /// The variable `name` (trainable or buffer).
    pub(crate) fn var(&self, name: &str) -> Result<Var, Error> {
        self.trainable
            .get(name)
            .or_else(|| self.buffers.get(name))
            .cloned()
            .ok_or_else(|| Error::Config(format!("no tensor {name} in the parameters")))
    }
}

/// Serialises tensors as a safetensors file in memory (names sorted, so the bytes are reproducible).
pub fn safetensors_bytes(map: &HashMap<String, Tensor>) -> Result<Vec<u8>, Error> {
    let mut sorted: Vec<(&String, &Tensor)> = map.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let views: Vec<(String, Tensor)> =
        sorted.into_iter().map(|(k, t)| Ok((k.clone(), t.to_device(&Device::Cpu)?))).collect::<Result<_, Error>>()?;
    safetensors::serialize(views, None).map_err(|e| Error::Weights("<memory>".into(), e.to_string()))
}
