//! Training of Tiller prefix scorers on rollout datasets.
//!
//! [`train`] reads rollout shards, splits them into training and validation
//! by `prompt_id`, fits a [`tiller_model::Scorer`] with one of the
//! [`Objective`]s, writes checkpoints and TensorBoard events into the run
//! directory and exports the trained scorer (`scorer.safetensors`,
//! `scorer.json`, `tokenizer.json`).
//!
//! Losses average the squared error over the valid positions of each
//! response, then over the responses of the optimizer step; see
//! [`objective`]. Checkpoints restore the weights, the AdamW moments, the
//! schedule position, the data cursor and its RNG. So a resumed run repeats
//! no batch, skips none and ends bit-identical to an uninterrupted run on
//! the flex CPU backend (see [`checkpoint`]). [`events`] describes how
//! TensorBoard logging continues on resume.

#![warn(missing_docs)]

pub mod checkpoint;
mod config;
pub mod cursor;
pub mod data;
mod error;
pub mod events;
pub mod metrics;
pub mod objective;
pub mod trainer;

use std::fs;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::Device;
use tiller_data::check_tokenizer;
use tiller_model::{GgufFile, RewardNormalization, Scorer, ScorerManifest, sha256_file};

pub use config::{Objective, TrainConfig};
pub use error::TrainError;
pub use metrics::ValidationMetrics;
pub use objective::TopkCompletion;
pub use trainer::StepStats;

use crate::cursor::DataCursor;
use crate::data::{Dataset, load_dataset, sampled_from_base, tokenizer_vocab_size};
use crate::events::EventLog;
use crate::trainer::{Trainer, build_optimizer, progress_bar, step_line, validation_line};

/// Settings of one invocation of [`train`] that are not hyperparameters.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Continue from the newest checkpoint in `<run_dir>/checkpoints` when
    /// there is one. Without it, existing checkpoints are an error.
    pub resume: bool,
    /// Draw a progress bar on standard error.
    pub progress: bool,
    /// Device to train on; autodiff is enabled on it. Default flex.
    pub device: Device,
    /// Stop after this optimizer step, writing a checkpoint but no export,
    /// as if the run were interrupted there.
    pub stop_after_step: Option<usize>,
    /// Base model GGUF whose `token_embd.weight` initialises the scorer when
    /// `train.base_embeddings` is on. Its SHA-256 must equal the rollout
    /// metadata's `base_model_sha256`. Ignored when the option is off.
    pub base_model: Option<PathBuf>,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            resume: false,
            progress: false,
            device: Device::flex(),
            stop_after_step: None,
            base_model: None,
        }
    }
}

/// Outcome of [`train`].
#[derive(Debug, Clone)]
pub struct TrainSummary {
    /// Optimizer steps completed in total, including resumed ones.
    pub step: usize,
    /// Optimizer steps of the whole run.
    pub total_steps: usize,
    /// Optimizer steps run by this invocation.
    pub steps_this_run: usize,
    /// Step at which this invocation resumed, if it did.
    pub resumed_from: Option<usize>,
    /// Epoch of the data cursor at the end, from 0.
    pub epoch: usize,
    /// Statistics of the last step run by this invocation.
    pub last_step: Option<StepStats>,
    /// Last validation result.
    pub validation: Option<ValidationMetrics>,
    /// Mean training throughput of this invocation, tokens per second.
    pub tokens_per_second: f64,
    /// Training and validation responses.
    pub examples: (usize, usize),
    /// Vocabulary size of the scorer.
    pub vocab_size: usize,
    /// Reward standardisation applied.
    pub reward_normalization: RewardNormalization,
    /// Newest checkpoint written.
    pub checkpoint: Option<PathBuf>,
    /// Export directory, when the run finished and exported.
    pub export_dir: Option<PathBuf>,
}

/// Trains a prefix scorer on `rollouts` and exports it to `export_dir`.
///
/// `run_dir` receives `checkpoints/` and `tensorboard/`. `tokenizer_json`
/// must be the tokenizer the rollouts were tokenised with (its SHA-256 must
/// equal the rollout metadata's `tokenizer_sha256`); it is copied into the
/// export.
pub fn train(
    config: &TrainConfig,
    rollouts: &[PathBuf],
    run_dir: &Path,
    export_dir: &Path,
    tokenizer_json: &Path,
    options: &TrainOptions,
) -> Result<TrainSummary, TrainError> {
    config.validate()?;
    let tokenizer_sha256 = sha256_file(tokenizer_json)?;
    let dataset = load_dataset(rollouts, config)?;
    check_tokenizer(&dataset.metadata, &tokenizer_sha256, &dataset.first_file)?;
    let base_embeddings = load_base_embeddings(config, options, &dataset)?;
    let vocab_size = match &base_embeddings {
        Some(table) => table_vocab_size(config, &dataset, table)?,
        None => resolve_vocab_size(config, &dataset, tokenizer_json)?,
    };
    let completion = topk_completion(config, &dataset);

    let checkpoints_dir = run_dir.join("checkpoints");
    let existing = checkpoint::list(&checkpoints_dir)?;
    if !options.resume
        && let Some((step, _)) = existing.last()
    {
        return Err(TrainError::CheckpointsExist {
            path: checkpoints_dir,
            step: *step,
        });
    }
    let resume_from = if options.resume {
        checkpoint::remove_partial(&checkpoints_dir)?;
        if existing.is_empty() {
            tracing::warn!(
                dir = %checkpoints_dir.display(),
                "--resume found no checkpoint; training from step 0"
            );
        }
        existing.last().cloned()
    } else {
        None
    };
    if dataset.validation.is_empty() && config.validation_fraction > 0.0 {
        tracing::warn!(
            validation_fraction = config.validation_fraction,
            "no rollout landed in the validation split, so no val/ metrics are written; \
             raise train.validation_fraction or add prompts"
        );
    }
    // Read and check the checkpoint before touching the event directory, so
    // a rejected resume leaves no empty event file behind.
    let loaded = match &resume_from {
        Some((_, path)) => {
            let loaded = checkpoint::load(path)?;
            checkpoint::check_resume_config(path, &loaded.state.config, config)?;
            Some(loaded)
        }
        None => None,
    };

    let device = options.device.clone().autodiff();
    let inference_device = options.device.clone().without_autodiff();
    let events = EventLog::open(&run_dir.join("tensorboard"), resume_from.is_some())?;
    let mut scorer_config = config.scorer_config(vocab_size);
    scorer_config.base_embedding_dim = base_embeddings.as_ref().map(|table| table.shape[1]);
    let mut trainer = match loaded {
        Some(loaded) => resume_trainer(
            config,
            &dataset,
            loaded,
            &scorer_config,
            completion,
            &device,
            &inference_device,
            events,
            checkpoints_dir.clone(),
        )?,
        None => {
            let mut model = scorer_config.init_seeded(&device, config.seed)?;
            if let Some(table) = base_embeddings {
                model = model.with_base_embeddings(&table.shape, table.values)?;
            }
            let target = (config.tau < 1.0).then(|| model.valid().to_device(&inference_device));
            let total_steps = total_steps(config, dataset.train.len());
            Trainer {
                config,
                dataset: &dataset,
                model,
                target,
                optimizer: build_optimizer(config),
                cursor: DataCursor::new(dataset.train.len(), config.seed),
                step: 0,
                total_steps,
                vocab_size,
                normalization: dataset.reward_normalization(config.normalize_rewards),
                completion,
                inference_device: inference_device.clone(),
                events,
                checkpoints_dir: checkpoints_dir.clone(),
                last_lr: 0.0,
            }
        }
    };

    tracing::info!(
        train = dataset.train.len(),
        validation = dataset.validation.len(),
        vocab_size,
        parameters = trainer.model.num_params(),
        objective = config.objective.as_str(),
        head = config.head.as_str(),
        total_steps = trainer.total_steps,
        start_step = trainer.step,
        "training a prefix scorer"
    );
    let outcome = run_loop(&mut trainer, options)?;
    let mut summary = TrainSummary {
        step: trainer.step,
        total_steps: trainer.total_steps,
        steps_this_run: outcome.steps,
        resumed_from: resume_from.map(|(step, _)| step),
        epoch: trainer.cursor.epoch(),
        last_step: outcome.last_step,
        validation: outcome.validation,
        tokens_per_second: outcome.tokens_per_second,
        examples: (dataset.train.len(), dataset.validation.len()),
        vocab_size,
        reward_normalization: trainer.normalization,
        checkpoint: outcome.checkpoint,
        export_dir: None,
    };
    if trainer.step >= trainer.total_steps {
        export(
            &trainer,
            &dataset,
            export_dir,
            tokenizer_json,
            &tokenizer_sha256,
        )?;
        summary.export_dir = Some(export_dir.to_path_buf());
    }
    Ok(summary)
}

/// Counters and results of [`run_loop`].
struct LoopOutcome {
    steps: usize,
    last_step: Option<StepStats>,
    validation: Option<ValidationMetrics>,
    tokens_per_second: f64,
    checkpoint: Option<PathBuf>,
}

fn run_loop(trainer: &mut Trainer<'_>, options: &TrainOptions) -> Result<LoopOutcome, TrainError> {
    let config = trainer.config;
    let total = trainer.total_steps;
    let stop = options.stop_after_step.unwrap_or(total).min(total);
    let bar = progress_bar(options.progress, total, trainer.step);
    let mut outcome = LoopOutcome {
        steps: 0,
        last_step: None,
        validation: None,
        tokens_per_second: 0.0,
        checkpoint: None,
    };
    let mut throughput_sum = 0.0;
    let mut checkpointed_at = None;
    while trainer.step < stop {
        let stats = trainer.step()?;
        trainer.log_step(&stats);
        let step = stats.step;
        let last = step == stop;
        if config.log_every > 0 && (step % config.log_every == 0 || step == 1 || last) {
            let line = step_line(&stats, total);
            bar.suspend(|| {
                // The `metric.` fields repeat the line for JSON consumers;
                // the text console hides them.
                tracing::info!(
                    metric.step = step,
                    metric.loss = stats.loss,
                    metric.lr = stats.lr,
                    metric.grad_norm = stats.grad_norm,
                    metric.tokens_per_second = stats.tokens_per_second,
                    "{line}"
                )
            });
        }
        bar.set_position(step as u64);
        bar.set_message(format!("loss {:.4}", stats.loss));
        throughput_sum += stats.tokens_per_second;
        outcome.steps += 1;
        outcome.last_step = Some(stats);

        let validate_now =
            step == total || (config.eval_every > 0 && step % config.eval_every == 0);
        if validate_now && let Some(metrics) = trainer.validate()? {
            let line = validation_line(step, &metrics);
            bar.suspend(|| {
                tracing::info!(
                    metric.step = step,
                    metric.mse = metrics.mse,
                    metric.explained_variance = metrics.explained_variance,
                    metric.prompt_value_correlation = metrics.prompt_value_correlation,
                    "{line}"
                )
            });
            outcome.validation = Some(metrics);
        }
        let checkpoint_now =
            last || (config.checkpoint_every > 0 && step % config.checkpoint_every == 0);
        if checkpoint_now {
            let path = bar.suspend(|| trainer.save_checkpoint())?;
            outcome.checkpoint = Some(path);
            checkpointed_at = Some(step);
        }
    }
    bar.finish_and_clear();
    if outcome.steps > 0 {
        outcome.tokens_per_second = throughput_sum / outcome.steps as f64;
    }
    // A resumed run that had already finished writes nothing new; make sure
    // its final checkpoint exists.
    if checkpointed_at.is_none() && outcome.steps == 0 && trainer.step > 0 {
        let newest = checkpoint::list(&trainer.checkpoints_dir)?;
        outcome.checkpoint = newest.last().map(|(_, path)| path.clone());
    }
    trainer.events.flush();
    Ok(outcome)
}

/// Number of optimizer steps of the run.
fn total_steps(config: &TrainConfig, train_examples: usize) -> usize {
    config.steps.unwrap_or_else(|| {
        (config.epochs * train_examples)
            .div_ceil(config.sequences_per_step())
            .max(1)
    })
}

fn resolve_vocab_size(
    config: &TrainConfig,
    dataset: &Dataset,
    tokenizer_json: &Path,
) -> Result<usize, TrainError> {
    let needed = dataset.max_token_id as usize + 1;
    if let Some(size) = config.vocab_size {
        if size < needed {
            return Err(TrainError::InvalidConfig {
                field: "vocab_size",
                value: size.to_string(),
                reason: format!(
                    "the rollouts contain token id {}; use at least {needed}",
                    dataset.max_token_id
                ),
            });
        }
        return Ok(size);
    }
    let Some(from_tokenizer) = tokenizer_vocab_size(tokenizer_json)? else {
        return Ok(needed);
    };
    if needed > from_tokenizer {
        let (prompt_id, sample_index) = dataset.max_token_at.clone().unwrap_or_default();
        return Err(TrainError::TokenIdOutOfVocabulary {
            path: dataset.first_file.clone(),
            id: dataset.max_token_id,
            prompt_id,
            sample_index,
            vocab_size: from_tokenizer,
            tokenizer: tokenizer_json.to_path_buf(),
        });
    }
    Ok(from_tokenizer)
}

/// The base model's token embedding table, `[rows, d_base]` row-major.
struct EmbeddingTable {
    shape: Vec<usize>,
    values: Vec<f32>,
}

/// Name of the token embedding tensor in llama.cpp GGUF files.
const TOKEN_EMBEDDING_TENSOR: &str = "token_embd.weight";

/// Reads `token_embd.weight` from `options.base_model` when
/// `base_embeddings` is on, after checking the file's SHA-256 against the
/// rollout metadata.
fn load_base_embeddings(
    config: &TrainConfig,
    options: &TrainOptions,
    dataset: &Dataset,
) -> Result<Option<EmbeddingTable>, TrainError> {
    if !config.base_embeddings {
        return Ok(None);
    }
    let path = options
        .base_model
        .as_ref()
        .ok_or(TrainError::MissingBaseModel)?;
    let actual = sha256_file(path)?;
    let expected = &dataset.metadata.base_model_sha256;
    if !actual.eq_ignore_ascii_case(expected) {
        return Err(TrainError::BaseModelMismatch {
            path: path.clone(),
            actual,
            rollouts: dataset.first_file.clone(),
            expected: expected.clone(),
        });
    }
    let (shape, values) = GgufFile::open(path)?.tensor_f32(TOKEN_EMBEDDING_TENSOR)?;
    if shape.len() != 2 {
        return Err(TrainError::InvalidConfig {
            field: "base_embeddings",
            value: "true".to_string(),
            reason: format!(
                "{TOKEN_EMBEDDING_TENSOR} in {} has shape {shape:?}, expected [vocab, d_base]",
                path.display()
            ),
        });
    }
    tracing::info!(
        path = %path.display(),
        rows = shape[0],
        dimension = shape[1],
        "loaded frozen base token embeddings"
    );
    Ok(Some(EmbeddingTable { shape, values }))
}

/// Vocabulary size with base embeddings: the table's row count, which must
/// cover every token id of the rollouts and agree with `vocab_size` if set.
fn table_vocab_size(
    config: &TrainConfig,
    dataset: &Dataset,
    table: &EmbeddingTable,
) -> Result<usize, TrainError> {
    let rows = table.shape[0];
    if let Some(size) = config.vocab_size
        && size != rows
    {
        return Err(TrainError::InvalidConfig {
            field: "vocab_size",
            value: size.to_string(),
            reason: format!(
                "base_embeddings fixes the vocabulary to the {rows} rows of \
                 {TOKEN_EMBEDDING_TENSOR}. Unset vocab_size or set it to {rows}"
            ),
        });
    }
    if dataset.max_token_id as usize >= rows {
        return Err(TrainError::InvalidConfig {
            field: "base_embeddings",
            value: "true".to_string(),
            reason: format!(
                "the rollouts contain token id {} but {TOKEN_EMBEDDING_TENSOR} has only {rows} \
                 rows. Were the rollouts sampled from another model?",
                dataset.max_token_id
            ),
        });
    }
    Ok(rows)
}

fn topk_completion(config: &TrainConfig, dataset: &Dataset) -> TopkCompletion {
    if sampled_from_base(&dataset.metadata.sampling) {
        return TopkCompletion::SampledToken;
    }
    if config.objective == Objective::Cdq {
        tracing::warn!(
            sampling = %dataset.metadata.sampling,
            "the rollouts were not sampled from the base model itself (temperature 1, no top-k or top-p), \
             so the cdq target renormalises the cached top-k and is biased where the top-k misses mass"
        );
    }
    TopkCompletion::Renormalize
}

#[allow(clippy::too_many_arguments)]
fn resume_trainer<'a>(
    config: &'a TrainConfig,
    dataset: &'a Dataset,
    loaded: checkpoint::LoadedCheckpoint,
    scorer_config: &tiller_model::ScorerConfig,
    completion: TopkCompletion,
    device: &Device,
    inference_device: &Device,
    events: EventLog,
    checkpoints_dir: PathBuf,
) -> Result<Trainer<'a>, TrainError> {
    let path = loaded.dir.clone();
    let vocab_size = scorer_config.vocab_size;
    let invalid = |reason: String| TrainError::InvalidCheckpoint {
        path: path.clone(),
        reason,
    };

    if loaded.state.vocab_size != vocab_size {
        return Err(invalid(format!(
            "the checkpoint's vocabulary has {} ids but this run resolved {vocab_size}",
            loaded.state.vocab_size
        )));
    }

    let normalization = dataset.reward_normalization(config.normalize_rewards);
    if loaded.state.reward_normalization != normalization {
        return Err(invalid(format!(
            "the reward normalisation changed from {:?} to {normalization:?}; the rollouts differ from the checkpoint's",
            loaded.state.reward_normalization
        )));
    }

    // The checkpoint record contains the frozen base table too, so the
    // loaded table is the one the run trained with.
    let model = scorer_config
        .init_seeded(device, config.seed)?
        .try_load_record(loaded.model)
        .map_err(|err| invalid(format!("model weights do not fit: {err}")))?;
    let target = match loaded.target {
        Some(record) => Some(
            scorer_config
                .init_seeded(inference_device, config.seed)?
                .try_load_record(record)
                .map_err(|err| invalid(format!("target weights do not fit: {err}")))?,
        ),
        None => None,
    };

    let cursor = DataCursor::restore(dataset.train.len(), &loaded.state.cursor).map_err(invalid)?;
    tracing::info!(step = loaded.state.step, path = %path.display(), "resuming from checkpoint");
    Ok(Trainer {
        config,
        dataset,
        model,
        target,
        optimizer: build_optimizer(config).load_record(loaded.optimizer),
        cursor,
        step: loaded.state.step,
        total_steps: loaded.state.total_steps,
        vocab_size,
        normalization,
        completion,
        inference_device: inference_device.clone(),
        events,
        checkpoints_dir,
        last_lr: loaded.state.learning_rate,
    })
}

fn export(
    trainer: &Trainer<'_>,
    dataset: &Dataset,
    export_dir: &Path,
    tokenizer_json: &Path,
    tokenizer_sha256: &str,
) -> Result<(), TrainError> {
    let model: Scorer = trainer.model.valid().to_device(&trainer.inference_device);
    let mut manifest = ScorerManifest::new(model.config());
    manifest.objective = trainer.config.objective.as_str().to_string();
    manifest.base_model = dataset.metadata.base_model.clone();
    manifest.base_model_sha256 = dataset.metadata.base_model_sha256.clone();
    manifest.tokenizer_sha256 = tokenizer_sha256.to_string();
    manifest.reward_model = dataset.metadata.reward.clone();
    manifest.reward_normalization = trainer.normalization;
    manifest.default_lambda = trainer.config.default_lambda;
    model.save_export(export_dir, &manifest)?;
    let copy = export_dir.join("tokenizer.json");
    let same_file = match (fs::canonicalize(tokenizer_json), fs::canonicalize(&copy)) {
        (Ok(source), Ok(destination)) => source == destination,
        _ => false,
    };
    if !same_file {
        fs::copy(tokenizer_json, &copy).map_err(TrainError::io(&copy))?;
    }
    tracing::info!(dir = %export_dir.display(), step = trainer.step, "scorer exported");
    Ok(())
}

#[cfg(test)]
mod tests;
