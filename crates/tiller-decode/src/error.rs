//! Error type of the decoding crate.

use std::path::PathBuf;

/// Errors from decoding, evaluation and result output.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The base model failed, for example on a context overflow.
    #[error(transparent)]
    Model(#[from] tiller_model::ModelError),

    /// Writing or reading rollout data failed.
    #[error(transparent)]
    Data(#[from] tiller_data::DataError),

    /// The sampling temperature is negative or NaN.
    #[error("invalid temperature {value}: it must be 0 (greedy) or positive")]
    InvalidTemperature {
        /// The rejected value.
        value: f32,
    },

    /// The top-p value is outside [0, 1] or NaN.
    #[error("invalid top_p {value}: it must be in [0, 1] (1 disables it, 0 is greedy)")]
    InvalidTopP {
        /// The rejected value.
        value: f32,
    },

    /// Zero samples were requested.
    #[error("zero samples requested: ask for at least one response per prompt")]
    ZeroSamples,

    /// The prompt has no tokens.
    #[error("empty prompt: the prompt must contain at least one token")]
    EmptyPrompt,

    /// No logit of a row is finite.
    #[error("the model returned no finite logit for row {row}; check the model weights")]
    NoFiniteLogits {
        /// The decoder row.
        row: usize,
    },

    /// A decoder method was called before the first prefill.
    #[error("{operation} called before prefill: prefill a prompt first")]
    NotPrefilled {
        /// The method that was called.
        operation: &'static str,
    },

    /// The number of tokens passed to a step differs from the number of rows.
    #[error("expected one token per decoder row ({expected} rows) but got {actual} tokens")]
    RowCountMismatch {
        /// The number of rows.
        expected: usize,
        /// The number of tokens passed.
        actual: usize,
    },

    /// A tensor could not be read back to the host.
    #[error("failed to read {what} back from the device: {message}")]
    TensorRead {
        /// The tensor that was read.
        what: &'static str,
        /// The backend's message.
        message: String,
    },

    /// A statistic was requested over no values.
    #[error(
        "cannot compute {what} over zero values; check that the evaluation has prompts and samples"
    )]
    EmptyStatistic {
        /// The quantity that had no values.
        what: String,
    },

    /// A value that must be finite is NaN or infinite.
    #[error(
        "{what} at index {index} is {value}, but it must be finite; check the reward model and the scorer"
    )]
    NonFiniteValue {
        /// The quantity that is not finite.
        what: String,
        /// Position of the value in its list.
        index: usize,
        /// The rejected value.
        value: f64,
    },

    /// Best-of-N was requested with N = 0 or with fewer samples than N.
    #[error(
        "best-of-N with N = {n} needs 1 <= N <= samples, but {samples} samples were given; draw at least N samples per prompt"
    )]
    BestOfNTooFewSamples {
        /// The requested N.
        n: usize,
        /// The number of samples available.
        samples: usize,
    },

    /// Two lists that must have the same length do not.
    #[error("{what} has length {actual}, expected {expected}")]
    LengthMismatch {
        /// The list with the wrong length.
        what: String,
        /// The expected length.
        expected: usize,
        /// The actual length.
        actual: usize,
    },

    /// A file could not be read or written.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A results CSV file could not be read or written.
    #[error("CSV error on {}: {source}", path.display())]
    Csv {
        /// The CSV file.
        path: PathBuf,
        /// The underlying error.
        source: csv::Error,
    },

    /// A results Parquet file could not be read or written.
    #[error("Parquet error on {}: {source}", path.display())]
    Parquet {
        /// The Parquet file.
        path: PathBuf,
        /// The underlying error.
        source: parquet::errors::ParquetError,
    },

    /// A results Parquet file lacks a column or has it with another type.
    #[error("results file {} has no column {column:?} of the expected type; write it with write_results_parquet", path.display())]
    ResultsSchema {
        /// The Parquet file.
        path: PathBuf,
        /// The missing column.
        column: String,
    },

    /// A results file names an unknown KL kind.
    #[error("results file {} row {row}: invalid kl_kind {value:?}, expected exact, bound or estimate", path.display())]
    InvalidKlKind {
        /// The results file.
        path: PathBuf,
        /// Zero-based row index.
        row: usize,
        /// The rejected value.
        value: String,
    },

    /// A plot could not be drawn.
    #[error(
        "failed to draw plot {}: {message}; if the message mentions a font, install fontconfig \
         and a TrueType font (Debian packages fontconfig and fonts-dejavu-core)",
        path.display()
    )]
    Plot {
        /// The image file.
        path: PathBuf,
        /// The plotting library's message.
        message: String,
    },

    /// Controlled decoding with λ ≠ 0 or a combination of scorers got none.
    #[error("no prefix scorer given: pass at least one scorer, or use lambda = 0")]
    NoScorers,

    /// A policy gives no token a positive probability.
    #[error(
        "the decoding policy has no token with positive probability (vocabulary {vocab}); check the base log-probs and the scorer"
    )]
    NoSupport {
        /// The vocabulary size.
        vocab: usize,
    },

    /// Every candidate of an argmax scored NaN.
    #[error("all {candidates} candidates scored NaN; check the prefix scorer")]
    AllScoresNaN {
        /// The number of candidates.
        candidates: usize,
    },

    /// A decoding or evaluation setting is invalid.
    #[error("invalid {setting} {value}: {hint}")]
    InvalidSetting {
        /// The setting.
        setting: String,
        /// The rejected value.
        value: String,
        /// The accepted range or the fix.
        hint: String,
    },

    /// The tokenizer failed on a prompt or a response.
    #[error("failed to {operation} text of prompt {prompt_id}: {message}")]
    Tokenizer {
        /// The prompt id.
        prompt_id: String,
        /// `encode` or `decode`.
        operation: &'static str,
        /// The tokenizer's message.
        message: String,
    },

    /// The reward model returned NaN or an infinity.
    #[error(
        "reward model returned {value} for prompt {prompt_id} sample {sample_index}; rewards must be finite, so check the reward model"
    )]
    NonFiniteReward {
        /// The prompt id.
        prompt_id: String,
        /// The sample index within the prompt.
        sample_index: usize,
        /// The rejected value.
        value: f32,
    },
}
