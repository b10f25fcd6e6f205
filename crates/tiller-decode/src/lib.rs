//! Decoding from a frozen base model: batched sampling with a KV cache, a
//! stepwise decoder that controlled-decoding methods steer, and evaluation.
#![warn(missing_docs)]

pub mod base_decoder;
pub mod best_of_n;
pub mod blockwise;
pub mod error;
pub mod eval;
pub mod plot;
pub mod results;
pub mod rollout;
pub mod sampling;
pub mod stats;
pub mod tokenwise;

pub use base_decoder::BaseDecoder;
pub use error::DecodeError;
pub use sampling::{Generation, SamplingConfig, generate};
