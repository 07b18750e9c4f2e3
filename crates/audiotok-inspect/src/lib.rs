//! Look inside model checkpoints without loading them (`audiotok params`).
//!
//! Shapes and dtypes come from the headers: [`safetensors`] reads a safetensors file's JSON header
//! (single, or sharded with `model.safetensors.index.json`), [`pickle`] walks a `torch.save` zip's
//! pickle opcodes (never unpickling: nothing named in the file is imported or called), [`arch`]
//! gives the tensors of a known architecture from `config.json` alone. [`source`] finds the files of
//! a model folder, hub id (local cache only), single file or PEFT adapter folder; [`components`]
//! groups tensors into the parts users name; [`lora`] applies PEFT's LoRA rule; [`job::params`]
//! puts it together into a serialisable [`job::ParamsReport`].

pub mod arch;
pub mod components;
mod dtype;
mod error;
pub mod job;
pub mod lora;
pub mod pickle;
pub mod safetensors;
pub mod source;

pub use dtype::Dtype;
pub use error::InspectError;

/// One tensor as a checkpoint's header describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorMeta {
    /// Its key in the state dict.
    pub name: String,
    /// Element type.
    pub dtype: Dtype,
    /// Shape.
    pub shape: Vec<u64>,
    /// Where a torch.save tensor's data lives (tensors on one storage at one offset, size and stride
    /// are the same parameter: tied weights); `None` for safetensors and config-only tensors.
    pub storage: Option<StorageRef>,
}

/// A torch.save tensor's place in its storage.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StorageRef {
    /// The storage's key (its file `ARCHIVE/data/KEY` in the zip).
    pub key: String,
    /// Offset in elements.
    pub offset: u64,
    /// Strides in elements.
    pub stride: Vec<u64>,
}

impl TensorMeta {
    /// Number of elements (saturating: headers are checked before this is used).
    pub fn numel(&self) -> u64 {
        self.shape.iter().fold(1u64, |a, &d| a.saturating_mul(d))
    }
}
