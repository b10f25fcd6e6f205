//! The crate's error type.

use std::path::PathBuf;

/// Errors from reading model files, building tokenizers and rendering chat templates.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file could not be opened, read or written.
    #[error("failed to access {path}: {source}")]
    Io {
        /// The file that failed.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The file is not a GGUF file this reader can parse.
    #[error(
        "invalid GGUF file {path}: {reason}. Check that the file is a complete GGUF version 3 \
         file; run scripts/setup.sh to fetch the base model again"
    )]
    InvalidGguf {
        /// The GGUF file.
        path: PathBuf,
        /// Description of the problem, with the offending value.
        reason: String,
    },

    /// A metadata key is missing from a GGUF file.
    #[error("metadata key `{key}` not found in {path}")]
    MetadataNotFound {
        /// The GGUF file.
        path: PathBuf,
        /// The requested key.
        key: String,
    },

    /// A metadata value has the wrong type or is out of range for the request.
    #[error("invalid metadata value for `{key}` in {path}: {reason}")]
    InvalidMetadata {
        /// The GGUF file.
        path: PathBuf,
        /// The metadata key.
        key: String,
        /// Description of the problem, with the stored type or value.
        reason: String,
    },

    /// A tensor name is not in a GGUF file.
    #[error(
        "tensor `{name}` not found in {path}, which has {tensor_count} tensors; \
         list them with GgufFile::tensor_names"
    )]
    TensorNotFound {
        /// The GGUF file.
        path: PathBuf,
        /// The requested tensor name.
        name: String,
        /// Number of tensors in the file.
        tensor_count: usize,
    },

    /// A tensor is stored in a type that cannot be dequantized.
    #[error(
        "tensor `{name}` in {path} has type {ggml_type}, which cannot be dequantized; \
         supported types are F32, F16, Q8_0, Q4_0 and Q4_1"
    )]
    UnsupportedTensorType {
        /// The GGUF file.
        path: PathBuf,
        /// The tensor name.
        name: String,
        /// The tensor's GGML type, as GGML names it.
        ggml_type: String,
    },

    /// The tokenizer described by a GGUF file could not be built or saved.
    #[error("tokenizer from {path}: {reason}")]
    Tokenizer {
        /// The GGUF file, or the tokenizer.json being written.
        path: PathBuf,
        /// Description of the failure, with the offending value.
        reason: String,
    },

    /// A chat template could not be compiled, or does not insert the user message verbatim.
    #[error("chat template from {origin}: {reason}")]
    ChatTemplate {
        /// Origin of the template: a GGUF path or a caller-supplied name.
        origin: String,
        /// Description of the failure.
        reason: String,
    },

    /// The GGUF file describes an architecture other than llama.
    #[error(
        "{path} contains a `{architecture}` model, but only the llama architecture is \
         supported. Use a llama-architecture GGUF such as SmolLM2"
    )]
    UnsupportedArchitecture {
        /// The GGUF file.
        path: PathBuf,
        /// Its `general.architecture` value.
        architecture: String,
    },

    /// A model configuration value is invalid.
    #[error("invalid model configuration {field} = {value}: {hint}")]
    InvalidConfig {
        /// The offending configuration field.
        field: &'static str,
        /// Its value.
        value: String,
        /// The rule it breaks.
        hint: &'static str,
    },

    /// A set of in-memory weights lacks a tensor.
    #[error("tensor `{name}` not found in the in-memory weights: add it under its llama.cpp name")]
    MissingTensor {
        /// The requested tensor name.
        name: String,
    },

    /// A weight's shape differs from the one the model configuration implies.
    #[error(
        "tensor `{name}` has shape {actual:?}, expected {expected:?} from the model \
         configuration. Check that the weights and the metadata come from the same model"
    )]
    TensorShape {
        /// The tensor name.
        name: String,
        /// Shape implied by the configuration, PyTorch order.
        expected: Vec<usize>,
        /// Shape found, PyTorch order.
        actual: Vec<usize>,
    },

    /// A forward pass received no tokens.
    #[error(
        "token batch of shape [{batch}, {seq}] is empty: pass at least one row and one position"
    )]
    EmptyTokenBatch {
        /// Rows in the batch.
        batch: usize,
        /// Positions per row.
        seq: usize,
    },

    /// A token id is negative or not below the vocabulary size.
    #[error(
        "token id {token} is outside the vocabulary of {vocab_size} tokens. \
         Tokenize with the tokenizer of the same GGUF file"
    )]
    TokenOutOfRange {
        /// The offending id.
        token: i64,
        /// The model's vocabulary size.
        vocab_size: usize,
    },

    /// A sequence would exceed the model's context length.
    #[error(
        "a sequence of {needed} positions exceeds the model's context of {max_seq_len}. \
         Shorten the prompt or the number of new tokens"
    )]
    ContextOverflow {
        /// Positions the request needs.
        needed: usize,
        /// The model's maximum sequence length.
        max_seq_len: usize,
    },

    /// A token batch has a different number of rows than the KV cache it extends.
    #[error(
        "the token batch has {batch} rows but the KV cache has {cache_batch}. Pass one row \
         per cached row, or start from a new cache"
    )]
    CacheBatchMismatch {
        /// Rows in the cache.
        cache_batch: usize,
        /// Rows in the token batch.
        batch: usize,
    },

    /// A KV cache was filled by a model with a different number of layers.
    #[error(
        "the KV cache has {cache_layers} layers but the model has {model_layers}. \
         Use a cache filled by this model"
    )]
    CacheLayerMismatch {
        /// Layers in the cache.
        cache_layers: usize,
        /// Layers in the model.
        model_layers: usize,
    },

    /// A KV cache operation needs rows, but the cache is empty.
    #[error("{operation} needs a filled KV cache: run a forward pass first")]
    EmptyCache {
        /// The rejected operation.
        operation: &'static str,
    },

    /// `KvCache::repeat_batch` was asked for 0 copies.
    #[error("repeat_batch(0) would leave no rows: repeat each row at least once")]
    ZeroRepeat,

    /// `KvCache::select_rows` was given no rows.
    #[error("select_rows got an empty row list: keep at least one row")]
    EmptyRowSelection,

    /// A selected row is not in the KV cache.
    #[error("row {row} is out of range for a KV cache of {batch} rows")]
    CacheRowOutOfRange {
        /// The offending row index.
        row: usize,
        /// Rows in the cache.
        batch: usize,
    },

    /// Reading a tensor back to the host failed.
    #[error("failed to read the {what} tensor back to the host: {message}")]
    TensorRead {
        /// Description of the tensor's contents.
        what: &'static str,
        /// The backend's message.
        message: String,
    },

    /// A scorer configuration value is invalid.
    #[error("invalid scorer configuration: {field} = {value} {reason}")]
    InvalidScorerConfig {
        /// The offending field of `ScorerConfig`.
        field: &'static str,
        /// Its value.
        value: String,
        /// The rule it breaks.
        reason: String,
    },

    /// A scorer operation needs the other output head.
    #[error(
        "{operation} needs a scorer with the {expected} head, but this scorer has the {actual} \
         head; train or load a {expected}-head scorer"
    )]
    ScorerHeadMismatch {
        /// The rejected operation.
        operation: &'static str,
        /// The head it needs.
        expected: &'static str,
        /// The scorer's head.
        actual: &'static str,
    },

    /// A token sequence passed to a scorer is unusable.
    #[error("invalid scorer input in row {row}: {reason}")]
    InvalidScorerInput {
        /// 0-based index of the sequence in the batch.
        row: usize,
        /// The problem, with the offending value.
        reason: String,
    },

    /// An exported scorer lacks a tensor its architecture needs.
    #[error(
        "tensor `{name}` is missing from {path}; the export is incomplete or was written \
         for another scorer configuration"
    )]
    ScorerTensorMissing {
        /// The safetensors file.
        path: PathBuf,
        /// The module path of the missing tensor.
        name: String,
    },

    /// An exported scorer tensor has another shape than the manifest's
    /// configuration implies.
    #[error(
        "tensor `{name}` in {path} has shape {actual:?}, expected {expected:?} from the \
         manifest's configuration; check that scorer.json and scorer.safetensors belong together"
    )]
    ScorerTensorShape {
        /// The safetensors file.
        path: PathBuf,
        /// The module path of the tensor.
        name: String,
        /// Shape implied by the configuration.
        expected: Vec<usize>,
        /// Shape found in the file.
        actual: Vec<usize>,
    },

    /// An exported scorer (manifest or weights) is malformed.
    #[error("invalid scorer export {path}: {reason}")]
    InvalidScorerExport {
        /// The manifest or weights file.
        path: PathBuf,
        /// The problem, with the offending value.
        reason: String,
    },
}
