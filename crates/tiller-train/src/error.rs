//! The crate's error type.

use std::path::PathBuf;

use tiller_data::DataError;
use tiller_model::ModelError;

/// Errors from loading rollouts, training, checkpointing and exporting.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A training configuration value is invalid.
    #[error("invalid train configuration: {field} = {value}: {reason}")]
    InvalidConfig {
        /// The offending `[train]` field.
        field: &'static str,
        /// Its value.
        value: String,
        /// The rule it breaks.
        reason: String,
    },

    /// Reading or validating the rollout files failed.
    #[error(transparent)]
    Data(#[from] DataError),

    /// Building, running or exporting the scorer failed.
    #[error(transparent)]
    Model(#[from] ModelError),

    /// A rollout record cannot be used for training.
    #[error("rollout {prompt_id}/{sample_index} cannot be trained on: {reason}")]
    InvalidRollout {
        /// The record's prompt id.
        prompt_id: String,
        /// The record's sample index.
        sample_index: i32,
        /// The problem and its fix.
        reason: String,
    },

    /// A rollout token id lies outside the tokenizer's vocabulary.
    #[error(
        "rollouts {path} contain token id {id} (prompt_id {prompt_id:?}, sample_index \
         {sample_index}), outside the vocabulary of {vocab_size} tokens of {tokenizer}: \
         regenerate the rollouts with this tokenizer, or set train.vocab_size when the model's \
         vocabulary is larger than the tokenizer's"
    )]
    TokenIdOutOfVocabulary {
        /// First rollout file of the dataset.
        path: PathBuf,
        /// The offending token id.
        id: u32,
        /// Prompt of the response that contains it.
        prompt_id: String,
        /// Sample index of that response.
        sample_index: i32,
        /// Tokens in the tokenizer's vocabulary.
        vocab_size: usize,
        /// The tokenizer file.
        tokenizer: PathBuf,
    },

    /// No rollout landed in the training split.
    #[error(
        "no training data: {records} rollouts were read and {validation} of them fall in the \
         validation split; lower validation_fraction or add rollouts"
    )]
    NoTrainingData {
        /// Rollouts read.
        records: usize,
        /// Rollouts in the validation split.
        validation: usize,
    },

    /// The rollouts lack a field the objective needs.
    #[error("the {objective} objective needs {what}; {hint}")]
    MissingRolloutField {
        /// The configured objective.
        objective: &'static str,
        /// The missing data.
        what: &'static str,
        /// How to produce it.
        hint: &'static str,
    },

    /// The loss or the gradient became NaN or infinite; nothing was written
    /// for this step.
    #[error(
        "non-finite {quantity} ({value}) at step {step}; no checkpoint was written for this step. \
         Lower lr, enable clip_norm or check the rewards"
    )]
    NonFinite {
        /// The optimizer step (1-based) that produced it.
        step: usize,
        /// `loss` or `gradient norm`.
        quantity: &'static str,
        /// The value.
        value: f64,
    },

    /// `train.base_embeddings` is on but no base model file was given.
    #[error(
        "train.base_embeddings = true needs the base model GGUF, but TrainOptions::base_model \
         is unset. Pass the rollouts' base model file or set base_embeddings = false"
    )]
    MissingBaseModel,

    /// The base model file is not the one the rollouts were sampled from.
    #[error(
        "base model {path} has SHA-256 {actual}, but the rollouts in {rollouts} were sampled \
         from a model with base_model_sha256 {expected}. Pass the rollouts' base model file"
    )]
    BaseModelMismatch {
        /// The base model file given.
        path: PathBuf,
        /// Its SHA-256, hex.
        actual: String,
        /// The rollout file whose metadata was checked.
        rollouts: PathBuf,
        /// `base_model_sha256` from the rollout metadata.
        expected: String,
    },

    /// A file or directory could not be read or written.
    #[error("failed to access {path}: {source}")]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A checkpoint is malformed or does not belong to this run.
    #[error("invalid checkpoint {path}: {reason}")]
    InvalidCheckpoint {
        /// The checkpoint directory or file.
        path: PathBuf,
        /// The problem.
        reason: String,
    },

    /// The run directory already contains checkpoints of another run.
    #[error(
        "{path} already contains checkpoints (newest: step {step}): pass --resume to continue \
         that run, or delete {path} to train from scratch"
    )]
    CheckpointsExist {
        /// The checkpoints directory.
        path: PathBuf,
        /// Step of the newest checkpoint.
        step: usize,
    },

    /// Resuming with a configuration that changes the training computation.
    #[error(
        "cannot resume from {path}: train.{field} is {current} but the checkpoint was trained \
         with {checkpoint}; restore the setting or start a new run"
    )]
    ResumeConfigMismatch {
        /// The checkpoint directory.
        path: PathBuf,
        /// The differing field.
        field: String,
        /// The checkpoint's value, as JSON.
        checkpoint: String,
        /// The current value, as JSON.
        current: String,
    },

    /// The TensorBoard event directory could not be prepared or read.
    #[error("TensorBoard events in {path}: {reason}")]
    TensorBoard {
        /// The event directory or file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}

impl TrainError {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> TrainError {
        let path = path.into();
        move |source| TrainError::Io { path, source }
    }
}
