//! One module per subcommand.

pub mod analyze;
pub mod bpe;
pub mod bsq;
pub mod codec;
pub mod convert;
pub mod count;
pub mod embed;
pub mod features;
pub mod info;
pub mod mds;
pub mod pack;
pub mod params;
pub mod plot;
