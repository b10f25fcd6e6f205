//! Base-model support for Tiller: GGUF reading and dequantization, the
//! tokenizer and chat template stored in a GGUF file, and file fingerprints.
//!
//! ```no_run
//! use tiller_model::{ChatTemplate, GgufFile, tokenizer_from_gguf};
//!
//! let gguf = GgufFile::open("models/SmolLM2-135M-Instruct.Q4_1.gguf")?;
//! let (shape, weights) = gguf.tensor_f32("token_embd.weight")?; // shape [vocab, d_model]
//! let tokenizer = tokenizer_from_gguf(&gguf)?;
//! let text = ChatTemplate::from_gguf(&gguf)?.apply_user("What is 12 plus 30?");
//! let ids = tokenizer.encode(text, false).map_err(|e| e.to_string())?.get_ids().to_vec();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

pub mod device;
mod error;
pub mod fingerprint;
pub mod gguf;
pub mod kv_cache;
pub mod llama;
pub mod scorer;
pub mod tokenizer;

pub use device::{DeviceError, DeviceSpec, Precision, compiled_backends};
pub use error::ModelError;
pub use fingerprint::sha256_file;
pub use gguf::{GGmlType, GgufFile, TensorInfo};
pub use kv_cache::KvCache;
pub use llama::{Llama, LlamaBlock, LlamaConfig, WeightSource};
pub use scorer::{
    RewardNormalization, Scorer, ScorerConfig, ScorerHead, ScorerManifest, ScorerTensorInfo,
};
pub use tokenizer::{ChatTemplate, SpecialTokens, save_tokenizer_json, tokenizer_from_gguf};
