//! The BSQ spectrogram tokenizer (issue 12) on [candle](https://github.com/huggingface/candle).
//!
//! A mel-db spectrogram scaled to `[-1, 1]` is cut into `freq_patch x time_patch` patches, embedded,
//! passed through pre-LN transformer blocks (optionally with a Conformer convolution module), projected
//! to `L` dimensions, L2-normalised and quantised by Binary Spherical Quantization ([`bsq`], as
//! bsq-vit's `BinarySphericalQuantizer`): every patch becomes an `L`-bit code, stored as an MSB-first
//! integer index. A transformer decoder maps the codes back to the spectrogram.
//!
//! [`Config`] (validated), [`Params`] (names, shapes, init, safetensors load/save with a full
//! mismatch report), [`BsqModel`] (forward, losses, indices), all differentiable in candle and
//! checked against a PyTorch reference (`tools/bsq_reference.py`); [`train::Trainer`] (one update,
//! checkpoints that resume exactly); [`data`] (audio folders and manifests to mel-db crops);
//! [`job::train`] (the training run of `audiotok bsq train`); [`infer`] (a trained
//! [`infer::Tokenizer`]: whole files to codes and back, the encode and decode jobs); [`eval`]
//! (reconstruction and code statistics with baselines); [`griffinlim`] (mel-db to audio).
//!
//! ```
//! # fn main() -> Result<(), audiotok_bsq::Error> {
//! use audiotok_bsq::{BsqModel, Config, Mode, Params};
//! let cfg = Config { n_mels: 16, crop_frames: 32, freq_patch: 8, time_patch: 8, width: 16,
//!     encoder_depth: 1, decoder_depth: 1, heads: 2, head_dim: 16, bits: 6, group_size: 3,
//!     conv_kernel: 3, ..Config::default() };
//! let dev = candle_core::Device::Cpu;
//! let model = BsqModel::new(&cfg, Params::init(&cfg, 0, &dev)?)?;
//! let x = candle_core::Tensor::zeros((1, 16, 32), candle_core::DType::F32, &dev)?;
//! let idx = model.encode_indices(&x)?; // 2 x 4 patches, each a 6-bit code
//! assert_eq!(idx.len(), 8);
//! let y = model.decode_indices(&idx, 1)?;
//! assert_eq!(y.dims(), &[1, 16, 32]);
//! # let _ = Mode::Eval; Ok(()) }
//! ```

pub mod bsq;
mod config;
pub mod data;
mod error;
pub mod eval;
pub mod griffinlim;
pub mod infer;
pub mod job;
mod model;
pub mod ops;
pub mod optim;
pub mod params;
mod rng;
pub mod train;

pub use config::{Config, EntropyMode};
pub use data::{DataConfig, Dataset, Split};
pub use error::{Error, Mismatch};
pub use model::{BsqModel, Forward, Losses, Mode, ReconLoss, BN_EPS, BN_MOMENTUM, LN_EPS};
pub use params::Params;
pub use rng::Rng;
pub use train::{StepMetrics, TrainConfig, Trainer};
