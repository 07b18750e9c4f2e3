//! `audiotok params`: parameter counts of models by component, trainable versus frozen, from the
//! headers of their files. The job is [`audiotok_inspect::job::params`]; here are the arguments and
//! the printing.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Result};
use audiotok_inspect::job::{self, default_name, ParamsOptions, ParamsReport, PartReport, PartSpec};
use audiotok_inspect::lora::LoraSpec;

/// Arguments of `audiotok params`.
#[derive(clap::Args)]
#[command(after_help = "MODEL: a model folder (model.safetensors, sharded model.safetensors.index.json, \
pytorch_model.bin, or one *.safetensors; config.json names the type), a PEFT adapter folder (adapter_config.json + \
adapter_model.safetensors; its base model is read too when found), a single .safetensors or torch.save .bin/.pt file, \
or a hub id found in the local Hugging Face cache (nothing is downloaded). Only headers are read: a pickle is walked, \
never unpickled, and one naming anything but torch.save's own globals is refused.\n\n\
Components for qwen2/qwen3 (embeddings, layers, norm, head), hubert/wav2vec2 (feature_cnn, feature_projection, \
positional_conv, transformer, head), whisper (encoder, decoder), qwen2_audio (audio_tower, projector, language_model) \
and SNAC (encoder, quantizer, decoder); other models by name prefix (--depth). Tied weights are counted once.\n\n\
Examples:\n  audiotok params Qwen/Qwen3-8B --lora r=16,alpha=32,targets=q_proj,k_proj,v_proj,o_proj\n  \
audiotok params --part encoder=hubert-large --part projector=proj.safetensors \\\n      \
--part decoder=qwen3 --train projector --lora r=8,alpha=16,targets=q_proj,k_proj,part=decoder\n  \
audiotok params --config-only path/to/config-folder --json")]
pub struct Args {
    /// Models, each a part named after its folder or file.
    #[arg(value_name = "MODEL")]
    models: Vec<String>,
    /// A named part of a composite system, NAME=MODEL (repeatable; in the order given, after plain MODELs).
    #[arg(long, value_name = "NAME=MODEL", value_parser = parse_part)]
    part: Vec<PartSpec>,
    /// A part that is fully trainable (repeatable; `all` for every part).
    #[arg(long, value_name = "PART")]
    train: Vec<String>,
    /// LoRA as PEFT adds it: r=N,alpha=A,targets=NAME[,NAME...][,part=PART] (r·(in+out) per adapted weight
    /// whose module name ends in a target; bias none). Repeatable.
    #[arg(long, value_name = "SPEC", value_parser = parse_lora)]
    lora: Vec<LoraSpec>,
    /// Count from config.json alone by the architecture's shape rules (no weights needed).
    #[arg(long)]
    config_only: bool,
    /// Group by the first N segments of the tensor names (default: named components for known models, 2 otherwise).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=64))]
    depth: Option<u64>,
    /// Print the report as one JSON document on stdout.
    #[arg(long)]
    json: bool,
}

fn parse_part(s: &str) -> Result<PartSpec, String> {
    match s.split_once('=') {
        Some((name, model)) if !name.is_empty() && !model.is_empty() => {
            Ok(PartSpec { name: name.to_string(), model: model.to_string() })
        }
        _ => Err(format!("{s}: expected NAME=MODEL")),
    }
}

fn parse_lora(s: &str) -> Result<LoraSpec, String> {
    s.parse()
}

/// Runs `audiotok params`.
pub fn run(args: Args) -> Result<ExitCode> {
    let mut parts: Vec<PartSpec> = Vec::new();
    for m in &args.models {
        let base = default_name(m);
        let mut name = base.clone();
        let mut k = 2;
        while parts.iter().any(|p| p.name == name) || args.part.iter().any(|p| p.name == name) {
            name = format!("{base}-{k}");
            k += 1;
        }
        parts.push(PartSpec { name, model: m.clone() });
    }
    parts.extend(args.part);
    if parts.is_empty() {
        bail!("give at least one MODEL or --part NAME=MODEL (see --help)");
    }
    let opts = ParamsOptions {
        parts,
        config_only: args.config_only,
        depth: args.depth.map(|d| d as usize),
        train: args.train,
        lora: args.lora,
    };
    let report = job::params(&opts)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        print_report(&mut out, &report)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes in binary units.
fn bytes(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", units[u])
    }
}

fn print_part(out: &mut impl Write, p: &PartReport) -> std::io::Result<()> {
    let kind = p.model_type.as_deref().unwrap_or("unknown type");
    let files = match p.files.len() {
        1 => "1 file".to_string(),
        n => format!("{n} files"),
    };
    writeln!(out, "{} ({}; {kind}; {files}, from {})", p.name, p.model, p.counted_from)?;
    let w = p.components.iter().map(|c| c.name.len()).max().unwrap_or(9).max(9);
    writeln!(out, "  {:<w$} {:>16} {:>16} {:>8}", "component", "params", "trainable", "tensors")?;
    for c in &p.components {
        writeln!(out, "  {:<w$} {:>16} {:>16} {:>8}", c.name, thousands(c.params), thousands(c.trainable), c.tensors)?;
    }
    let stored: Vec<String> =
        p.dtypes.iter().map(|d| format!("{} {} params ({})", d.dtype, thousands(d.params), bytes(d.bytes))).collect();
    if !stored.is_empty() {
        let label = if p.counted_from == "config" { "as configured" } else { "stored" };
        writeln!(out, "  {label}: {}", stored.join(", "))?;
    }
    for t in &p.tied {
        let how = if t.how == "storage" { "one storage" } else { "tie_word_embeddings" };
        writeln!(out, "  tied: {} = {} ({how}; counted once)", t.name, t.same_as)?;
    }
    for l in &p.lora {
        writeln!(
            out,
            "  LoRA r={} alpha={} on {} ({}): {} modules, {} trainable",
            l.r,
            l.alpha,
            l.targets.join(","),
            l.from,
            l.modules,
            thousands(l.params)
        )?;
    }
    for n in &p.notes {
        writeln!(out, "  note: {n}")?;
    }
    Ok(())
}

fn print_report(out: &mut impl Write, r: &ParamsReport) -> std::io::Result<()> {
    for p in &r.parts {
        print_part(out, p)?;
        writeln!(out)?;
    }
    let w = r.parts.iter().map(|p| p.name.len()).max().unwrap_or(4).max(4);
    writeln!(out, "{:<w$} {:>16} {:>16} {:>16} {:>12}", "part", "total", "trainable", "frozen", "trainable %")?;
    let row = |out: &mut dyn Write, name: &str, t: u64, tr: u64, f: u64, pc: f64| {
        writeln!(out, "{name:<w$} {:>16} {:>16} {:>16} {:>11.4}%", thousands(t), thousands(tr), thousands(f), pc)
    };
    for p in &r.parts {
        row(out, &p.name, p.total, p.trainable, p.frozen, p.trainable_percent)?;
    }
    if r.parts.len() > 1 {
        row(out, "all", r.total, r.trainable, r.frozen, r.trainable_percent)?;
    }
    writeln!(
        out,
        "\ntrainable params: {} || all params: {} || trainable%: {:.4}",
        thousands(r.trainable),
        thousands(r.total),
        r.trainable_percent
    )?;
    writeln!(
        out,
        "weights memory: {} at f32, {} at bf16, {} at int8 (as stored or configured: {})",
        bytes(r.memory.f32),
        bytes(r.memory.bf16),
        bytes(r.memory.int8),
        bytes(r.stored_bytes)
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(8_190_735_360), "8,190,735,360");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 << 30), "3.00 GiB");
    }
}
