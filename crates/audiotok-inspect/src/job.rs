//! The `audiotok params` job: one or several named parts, each counted from its headers (or its
//! `config.json`), grouped into components, with trainable versus frozen under `--train` and LoRA
//! (given or read from a PEFT adapter), as one serialisable report. It reads a few KB per model and
//! takes milliseconds, so it reports no progress.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::components::{self, component, is_known, model_kind};
use crate::lora::{self, LoraSpec};
use crate::source::{self, Loaded};
use crate::{arch, Dtype, InspectError, TensorMeta};

/// One named part of the system (`--part NAME=MODEL`, or a plain MODEL named after its file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartSpec {
    /// Its name in the report.
    pub name: String,
    /// The MODEL (see [`crate::source`]).
    pub model: String,
}

/// What to count.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ParamsOptions {
    /// The parts, in report order.
    pub parts: Vec<PartSpec>,
    /// Count from `config.json` by the architecture's shape rules, reading no weights.
    pub config_only: bool,
    /// Group by the first N name segments even for known models (`None`: components for known
    /// models, 2 segments for others).
    pub depth: Option<usize>,
    /// Parts that are fully trainable (`all`: every part).
    pub train: Vec<String>,
    /// LoRA configurations.
    pub lora: Vec<LoraSpec>,
}

/// A component's count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComponentReport {
    /// Its name.
    pub name: String,
    /// Parameters (LoRA / adapter parameters included).
    pub params: u64,
    /// Of which trainable.
    pub trainable: u64,
    /// Tensors.
    pub tensors: usize,
}

/// Stored bytes of one dtype.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DtypeReport {
    /// The dtype.
    pub dtype: Dtype,
    /// Parameters stored in it.
    pub params: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// Bytes the weights need at three precisions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    /// 4 bytes a parameter.
    pub f32: u64,
    /// 2 bytes a parameter.
    pub bf16: u64,
    /// 1 byte a parameter.
    pub int8: u64,
}

impl Memory {
    fn of(params: u64) -> Memory {
        Memory { f32: params.saturating_mul(4), bf16: params.saturating_mul(2), int8: params }
    }
}

/// LoRA on a part.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoraReport {
    /// Where it came from: `--lora` or the adapter file.
    pub from: String,
    /// Rank.
    pub r: u64,
    /// `lora_alpha`.
    pub alpha: f64,
    /// Target suffixes.
    pub targets: Vec<String>,
    /// Adapted modules.
    pub modules: usize,
    /// Trainable LoRA parameters.
    pub params: u64,
}

/// Two names on one stored tensor, counted once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tied {
    /// The name not counted.
    pub name: String,
    /// The name counted.
    pub same_as: String,
    /// How it is known: `storage` (one torch.save storage) or `config` (`tie_word_embeddings`, the
    /// head omitted from the file).
    pub how: String,
}

/// One part's counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartReport {
    /// Its name.
    pub name: String,
    /// The MODEL as given.
    pub model: String,
    /// Files read (weights headers, or config.json with `--config-only`).
    pub files: Vec<String>,
    /// `model_type` (or `snac`), when known.
    pub model_type: Option<String>,
    /// `headers` or `config`.
    pub counted_from: String,
    /// Components: a known model's in data-flow order, others in first-appearance order.
    pub components: Vec<ComponentReport>,
    /// Stored parameters by dtype (LoRA from `--lora` excluded: it is not stored).
    pub dtypes: Vec<DtypeReport>,
    /// Parameters (tied weights once; LoRA included).
    pub total: u64,
    /// Trainable parameters.
    pub trainable: u64,
    /// Frozen parameters.
    pub frozen: u64,
    /// 100 · trainable / total.
    pub trainable_percent: f64,
    /// Weights memory.
    pub memory: Memory,
    /// Tied weights.
    pub tied: Vec<Tied>,
    /// LoRA applied.
    pub lora: Vec<LoraReport>,
    /// Things to know (an adapter without its base, ...).
    pub notes: Vec<String>,
}

/// The whole system.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParamsReport {
    /// The parts.
    pub parts: Vec<PartReport>,
    /// Sum over parts.
    pub total: u64,
    /// Trainable over parts.
    pub trainable: u64,
    /// Frozen over parts.
    pub frozen: u64,
    /// 100 · trainable / total.
    pub trainable_percent: f64,
    /// Weights memory of the whole.
    pub memory: Memory,
    /// Stored bytes of the whole.
    pub stored_bytes: u64,
}

fn percent(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        100.0 * a as f64 / b as f64
    }
}

/// Names a plain MODEL after its last path segment (a hub id after its name).
pub fn default_name(model: &str) -> String {
    let t = model.trim_end_matches('/');
    t.rsplit('/').next().filter(|s| !s.is_empty()).unwrap_or(t).to_string()
}

/// Runs the job.
pub fn params(opts: &ParamsOptions) -> Result<ParamsReport, InspectError> {
    if opts.parts.is_empty() {
        return Err(InspectError::Options("no MODEL given".into()));
    }
    let mut seen = std::collections::HashSet::new();
    for p in &opts.parts {
        if !seen.insert(p.name.as_str()) {
            return Err(InspectError::Options(format!("part {:?} is named twice", p.name)));
        }
    }
    for t in &opts.train {
        if t != "all" && !seen.contains(t.as_str()) {
            return Err(InspectError::Options(format!("--train {t}: no such part (parts: {})", names(opts))));
        }
    }
    for l in &opts.lora {
        if let Some(p) = &l.part {
            if !seen.contains(p.as_str()) {
                return Err(InspectError::Options(format!("--lora part={p}: no such part (parts: {})", names(opts))));
            }
        }
    }
    let mut parts = Vec::new();
    let mut lora_hits = vec![0usize; opts.lora.len()];
    for spec in &opts.parts {
        let loaded = source::load(&spec.model, opts.config_only)?;
        parts.push(part(spec, loaded, opts, &mut lora_hits)?);
    }
    for (l, hits) in opts.lora.iter().zip(&lora_hits) {
        if *hits == 0 {
            return Err(InspectError::Options(format!(
                "--lora targets {:?} match no module with a weight of two or more axes{}",
                l.targets,
                l.part.as_ref().map(|p| format!(" in part {p}")).unwrap_or_default()
            )));
        }
    }
    let total = parts.iter().map(|p| p.total).sum();
    let trainable = parts.iter().map(|p| p.trainable).sum();
    let stored_bytes = parts.iter().flat_map(|p| &p.dtypes).map(|d| d.bytes).sum();
    Ok(ParamsReport {
        total,
        trainable,
        frozen: total - trainable,
        trainable_percent: percent(trainable, total),
        memory: Memory::of(total),
        stored_bytes,
        parts,
    })
}

/// A torch.save tensor's identity: storage key, offset, shape, stride.
type StorageKey<'a> = (&'a str, u64, &'a [u64], &'a [u64]);

fn names(opts: &ParamsOptions) -> String {
    opts.parts.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")
}

fn part(
    spec: &PartSpec,
    loaded: Loaded,
    opts: &ParamsOptions,
    lora_hits: &mut [usize],
) -> Result<PartReport, InspectError> {
    let kind = loaded.config.as_ref().and_then(|(_, c)| model_kind(c));
    let mut notes = Vec::new();
    let (tensors, files, counted_from) = if opts.config_only {
        let Some((path, config)) = &loaded.config else {
            return Err(InspectError::NotFound(format!(
                "{}: --config-only needs a config.json",
                loaded.path.display()
            )));
        };
        let (specs, dtype) = arch::tensors_of_config(config).map_err(|m| InspectError::Config(path.clone(), m))?;
        let tensors: Vec<TensorMeta> =
            specs.into_iter().map(|(name, shape)| TensorMeta { name, dtype, shape, storage: None }).collect();
        (tensors, vec![path.display().to_string()], "config")
    } else {
        let files = loaded.files.iter().map(|f| f.display().to_string()).collect();
        (loaded.tensors.clone(), files, "headers")
    };

    // Tied weights: one torch.save storage under two names, or a head the config ties and the file omits.
    let mut tied = Vec::new();
    let mut firsts: HashMap<StorageKey, &str> = HashMap::new();
    let mut counted: Vec<&TensorMeta> = Vec::with_capacity(tensors.len());
    let mut buffers = 0usize;
    for t in &tensors {
        if let Some(s) = &t.storage {
            match firsts.entry((s.key.as_str(), s.offset, t.shape.as_slice(), s.stride.as_slice())) {
                std::collections::hash_map::Entry::Occupied(e) => {
                    tied.push(Tied { name: t.name.clone(), same_as: e.get().to_string(), how: "storage".into() });
                    continue;
                }
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(&t.name);
                }
            }
        }
        if kind.as_deref().is_some_and(|k| arch::is_buffer(k, &t.name)) {
            buffers += 1;
            continue;
        }
        counted.push(t);
    }
    if buffers > 0 {
        notes.push(format!("{buffers} persistent buffer tensor(s) (not parameters) left out of the counts"));
    }
    if let (Some(k), Some((_, config))) = (kind.as_deref(), &loaded.config) {
        if let Some((head, embed, default)) = components::tied_head(k) {
            let flag_cfg = if k == "qwen2_audio" { config.get("text_config").unwrap_or(config) } else { config };
            let names: std::collections::HashSet<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
            if arch::tied(flag_cfg, default) && !names.contains(head) && names.contains(embed) {
                tied.push(Tied { name: head.into(), same_as: embed.into(), how: "config".into() });
            }
        }
    }

    let known = kind.as_deref().filter(|k| is_known(k) && opts.depth.is_none());
    let depth = opts.depth.unwrap_or(2);
    let comp_of = |name: &str| component(known, name, depth);
    let mut comps: Vec<ComponentReport> = Vec::new();
    let add = |comps: &mut Vec<ComponentReport>, name: String, params: u64, trainable: u64| match comps
        .iter_mut()
        .find(|c| c.name == name)
    {
        Some(c) => {
            c.params += params;
            c.trainable += trainable;
            c.tensors += 1;
        }
        None => comps.push(ComponentReport { name, params, trainable, tensors: 1 }),
    };
    let fully = opts.train.iter().any(|t| t == "all" || *t == spec.name);
    let mut dtypes: BTreeMap<Dtype, (u64, u64)> = BTreeMap::new();
    for t in &counted {
        let n = t.numel();
        add(&mut comps, comp_of(&t.name), n, if fully { n } else { 0 });
        let e = dtypes.entry(t.dtype).or_default();
        e.0 += n;
        e.1 += n.saturating_mul(t.dtype.size());
    }

    let mut loras = Vec::new();
    if let Some(a) = &loaded.adapter {
        let mut params = 0u64;
        let mut modules = 0usize;
        for t in &a.tensors {
            let n = t.numel();
            params += n;
            if t.name.contains(".lora_A.") {
                modules += 1;
            }
            let base = t.name.strip_prefix("base_model.model.").unwrap_or(&t.name);
            add(&mut comps, comp_of(base), n, n);
            let e = dtypes.entry(t.dtype).or_default();
            e.0 += n;
            e.1 += n.saturating_mul(t.dtype.size());
        }
        loras.push(LoraReport {
            from: a.file.display().to_string(),
            r: a.r,
            alpha: a.alpha,
            targets: a.targets.clone(),
            modules,
            params,
        });
        if a.base_path.is_none() {
            notes.push(format!(
                "the adapter's base model {:?} was not found: only the adapter's own parameters are counted",
                a.base.as_deref().unwrap_or("(unnamed)")
            ));
        }
    }
    for (i, l) in opts.lora.iter().enumerate() {
        if l.part.as_ref().is_some_and(|p| *p != spec.name) {
            continue;
        }
        let hits = lora::adapted(counted.iter().copied(), l.r, &l.targets);
        if hits.is_empty() {
            continue;
        }
        lora_hits[i] += hits.len();
        let mut params = 0;
        for (name, n) in &hits {
            params += n;
            add(&mut comps, comp_of(name), *n, *n);
        }
        loras.push(LoraReport {
            from: "--lora".into(),
            r: l.r,
            alpha: l.alpha,
            targets: l.targets.clone(),
            modules: hits.len(),
            params,
        });
    }
    // `add` counted LoRA entries as tensors; keep `tensors` the stored tensors of the component.
    let total: u64 = comps.iter().map(|c| c.params).sum();
    let trainable: u64 = comps.iter().map(|c| c.trainable).sum();
    let mut tensor_counts: HashMap<String, usize> = HashMap::new();
    for t in &counted {
        *tensor_counts.entry(comp_of(&t.name)).or_default() += 1;
    }
    if let Some(a) = &loaded.adapter {
        for t in &a.tensors {
            let base = t.name.strip_prefix("base_model.model.").unwrap_or(&t.name);
            *tensor_counts.entry(comp_of(base)).or_default() += 1;
        }
    }
    for c in &mut comps {
        c.tensors = tensor_counts.get(&c.name).copied().unwrap_or(0);
    }
    if let Some(k) = known {
        let order = components::order(k);
        // Stable: components outside the order keep their first-appearance order, after the named ones.
        comps.sort_by_key(|c| order.iter().position(|o| *o == c.name).unwrap_or(order.len()));
    }
    Ok(PartReport {
        name: spec.name.clone(),
        model: spec.model.clone(),
        files,
        model_type: kind,
        counted_from: counted_from.into(),
        components: comps,
        dtypes: dtypes.into_iter().map(|(dtype, (params, bytes))| DtypeReport { dtype, params, bytes }).collect(),
        total,
        trainable,
        frozen: total - trainable,
        trainable_percent: percent(trainable, total),
        memory: Memory::of(total),
        tied,
        lora: loras,
        notes,
    })
}
