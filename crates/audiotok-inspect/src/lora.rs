//! PEFT's LoRA parameter rule, from shapes alone.
//!
//! A module is adapted when its name equals a target or ends with `.` + target (PEFT's rule for a
//! list of `target_modules`) and it has a weight of two or more axes `[out, in, ...]` (Linear,
//! Embedding, Conv): LoRA adds `A: [r, in·k]` and `B: [out, r]`, i.e. `r · (out + in·k)` trainable
//! parameters with `bias="none"` (k: the product of a convolution's kernel axes, 1 for a Linear).

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::TensorMeta;

/// `--lora r=8,alpha=16,targets=q_proj,k_proj[,part=decoder]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoraSpec {
    /// The rank.
    pub r: u64,
    /// `lora_alpha` (reported; it does not change the count).
    pub alpha: f64,
    /// Module-name suffixes to adapt.
    pub targets: Vec<String>,
    /// The part it applies to (`None`: every part).
    pub part: Option<String>,
}

impl FromStr for LoraSpec {
    type Err = String;

    /// Comma-separated `key=value` pairs; names after `targets=` without `=` are more targets.
    fn from_str(s: &str) -> Result<Self, String> {
        let (mut r, mut alpha, mut targets, mut part) = (None, None, Vec::new(), None);
        let mut in_targets = false;
        for item in s.split(',').map(str::trim).filter(|x| !x.is_empty()) {
            match item.split_once('=') {
                Some(("r", v)) => {
                    in_targets = false;
                    r = Some(
                        v.parse::<u64>()
                            .ok()
                            .filter(|&r| r > 0)
                            .ok_or_else(|| format!("r={v}: not a positive integer"))?,
                    );
                }
                Some(("alpha", v)) => {
                    in_targets = false;
                    alpha = Some(
                        v.parse::<f64>()
                            .ok()
                            .filter(|a| a.is_finite())
                            .ok_or_else(|| format!("alpha={v}: not a number"))?,
                    );
                }
                Some(("targets", v)) => {
                    in_targets = true;
                    targets.push(v.to_string());
                }
                Some(("part", v)) => {
                    in_targets = false;
                    part = Some(v.to_string());
                }
                Some((k, _)) => return Err(format!("{k}: unknown LoRA setting (r, alpha, targets, part)")),
                None if in_targets => targets.push(item.to_string()),
                None => return Err(format!("{item}: expected key=value (r, alpha, targets, part)")),
            }
        }
        targets.retain(|t| !t.is_empty());
        let r = r.ok_or("r=N is required")?;
        if targets.is_empty() {
            return Err("targets=NAME[,NAME...] is required".into());
        }
        Ok(LoraSpec { r, alpha: alpha.unwrap_or(r as f64 * 2.0), targets, part })
    }
}

/// Whether PEFT adapts module `module` for `targets`.
pub fn matches(module: &str, targets: &[String]) -> bool {
    targets.iter().any(|t| module == t || module.strip_suffix(t.as_str()).is_some_and(|p| p.ends_with('.')))
}

/// The adapted weights: (tensor name, LoRA parameters) for each tensor `MODULE.weight` of two or
/// more axes whose module matches.
pub fn adapted<'a>(
    tensors: impl IntoIterator<Item = &'a TensorMeta>,
    r: u64,
    targets: &[String],
) -> Vec<(String, u64)> {
    tensors
        .into_iter()
        .filter(|t| t.shape.len() >= 2)
        .filter_map(|t| {
            let module = t.name.strip_suffix(".weight")?;
            matches(module, targets).then(|| {
                let rest: u64 = t.shape[1..].iter().fold(1u64, |a, &d| a.saturating_mul(d));
                (t.name.clone(), r.saturating_mul(t.shape[0].saturating_add(rest)))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn spec_parses_targets_lists() {
        let s: LoraSpec = "r=8,alpha=16,targets=q_proj,k_proj,part=decoder".parse().unwrap();
        assert_eq!(
            s,
            LoraSpec {
                r: 8,
                alpha: 16.0,
                targets: vec!["q_proj".into(), "k_proj".into()],
                part: Some("decoder".into())
            }
        );
        let s: LoraSpec = "targets=q_proj,r=4".parse().unwrap();
        assert_eq!((s.r, s.alpha, s.targets.len(), s.part), (4, 8.0, 1, None));
        assert!("r=0,targets=q".parse::<LoraSpec>().unwrap_err().contains("r=0"));
        assert!("r=8".parse::<LoraSpec>().unwrap_err().contains("targets"));
        assert!("r=8,targets=q,beta=2".parse::<LoraSpec>().unwrap_err().contains("beta"));
    }

    #[test]
    fn suffix_rule_is_peft_s() {
        let t = vec!["q_proj".to_string()];
        assert!(matches("model.layers.0.self_attn.q_proj", &t));
        assert!(matches("q_proj", &t));
        assert!(!matches("model.layers.0.self_attn.xq_proj", &t));
    }
}
