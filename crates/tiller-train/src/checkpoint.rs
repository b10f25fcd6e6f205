//! Checkpoints under `<run_dir>/checkpoints/step-000120/`.
//!
//! A checkpoint directory contains:
//!
//! - `model.bpk`: scorer weights (burnpack, with the parameter ids the
//!   optimizer state refers to);
//! - `optimizer.bpk`: AdamW first and second moments and step counts per
//!   parameter (burn's `OptimizerRecord`);
//! - `target.bpk`: the Polyak target network, when `tau < 1`;
//! - `state.json`: [`CheckpointState`], i.e. the step (which is also the
//!   position of the learning-rate schedule), the data cursor with its RNG
//!   state, the reward normalisation and the configuration.
//!
//! Each checkpoint is written into `.tmp-step-000120` and then renamed, so a
//! crash leaves no partial `step-*` directory. Only the newest `keep_last`
//! checkpoints are kept.

use std::fs;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::ModuleRecord;
use serde::{Deserialize, Serialize};
use tiller_model::{RewardNormalization, Scorer};

use crate::cursor::CursorState;
use crate::{TrainConfig, TrainError};

/// Layout version of `state.json`.
pub const CHECKPOINT_VERSION: u32 = 1;

const MODEL_FILE: &str = "model.bpk";
const OPTIMIZER_FILE: &str = "optimizer.bpk";
const TARGET_FILE: &str = "target.bpk";
const STATE_FILE: &str = "state.json";
const STEP_PREFIX: &str = "step-";
const TEMPORARY_PREFIX: &str = ".tmp-";

/// Contents of `state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointState {
    /// Layout version ([`CHECKPOINT_VERSION`]).
    pub format_version: u32,
    /// Optimizer steps completed; the next step is `step + 1`.
    pub step: usize,
    /// Total optimizer steps of the run (end of the cosine schedule).
    pub total_steps: usize,
    /// Epoch of the data cursor, from 0.
    pub epoch: usize,
    /// Data cursor, including the shuffling RNG state.
    pub cursor: CursorState,
    /// Learning rate of the last step.
    pub learning_rate: f64,
    /// Scorer vocabulary size the run resolved.
    pub vocab_size: usize,
    /// Reward standardisation of the run.
    pub reward_normalization: RewardNormalization,
    /// Whether `target.bpk` is present.
    pub target_network: bool,
    /// Configuration of the run, as given.
    pub config: TrainConfig,
}

/// A checkpoint read back from disk.
pub struct LoadedCheckpoint {
    /// Its directory.
    pub dir: PathBuf,
    /// `state.json`.
    pub state: CheckpointState,
    /// Scorer weights.
    pub model: ModuleRecord,
    /// Optimizer state.
    pub optimizer: burn::optim::OptimizerRecord,
    /// Target network weights, when the run has one.
    pub target: Option<ModuleRecord>,
}

/// Returns the directory name of the checkpoint at `step`.
pub fn step_dir_name(step: usize) -> String {
    format!("{STEP_PREFIX}{step:06}")
}

/// Lists complete checkpoints in `dir` as `(step, path)`, oldest first.
pub fn list(dir: &Path) -> Result<Vec<(usize, PathBuf)>, TrainError> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(TrainError::io(dir))? {
        let entry = entry.map_err(TrainError::io(dir))?;
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(step) = name
            .strip_prefix(STEP_PREFIX)
            .and_then(|digits| digits.parse::<usize>().ok())
        else {
            continue;
        };
        if entry.path().join(STATE_FILE).is_file() {
            found.push((step, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// Writes a checkpoint into `dir` and deletes all but the newest
/// `keep_last` (0 keeps all). Returns the checkpoint's directory.
pub fn save(
    dir: &Path,
    state: &CheckpointState,
    model: &Scorer,
    optimizer: &ModuleOptimizer,
    target: Option<&Scorer>,
    keep_last: usize,
) -> Result<PathBuf, TrainError> {
    fs::create_dir_all(dir).map_err(TrainError::io(dir))?;
    let name = step_dir_name(state.step);
    let temporary = dir.join(format!("{TEMPORARY_PREFIX}{name}"));
    if temporary.exists() {
        fs::remove_dir_all(&temporary).map_err(TrainError::io(&temporary))?;
    }
    fs::create_dir_all(&temporary).map_err(TrainError::io(&temporary))?;

    let record_error = |path: PathBuf| {
        move |err: burn::store::RecordError| TrainError::InvalidCheckpoint {
            path,
            reason: format!("failed to write: {err}"),
        }
    };
    let model_path = temporary.join(MODEL_FILE);
    model
        .clone()
        .into_record()
        .save(&model_path)
        .map_err(record_error(model_path.clone()))?;
    let optimizer_path = temporary.join(OPTIMIZER_FILE);
    optimizer
        .save(&optimizer_path)
        .map_err(record_error(optimizer_path.clone()))?;
    if let Some(target) = target {
        let target_path = temporary.join(TARGET_FILE);
        target
            .clone()
            .into_record()
            .save(&target_path)
            .map_err(record_error(target_path.clone()))?;
    }
    let state_path = temporary.join(STATE_FILE);
    let text =
        serde_json::to_string_pretty(state).map_err(|err| TrainError::InvalidCheckpoint {
            path: state_path.clone(),
            reason: format!("failed to serialise: {err}"),
        })?;
    fs::write(&state_path, text + "\n").map_err(TrainError::io(&state_path))?;

    let final_dir = dir.join(&name);
    if final_dir.exists() {
        fs::remove_dir_all(&final_dir).map_err(TrainError::io(&final_dir))?;
    }
    fs::rename(&temporary, &final_dir).map_err(TrainError::io(&final_dir))?;
    prune(dir, keep_last)?;
    Ok(final_dir)
}

/// Deletes all but the newest `keep_last` checkpoints (0 keeps all).
fn prune(dir: &Path, keep_last: usize) -> Result<(), TrainError> {
    if keep_last == 0 {
        return Ok(());
    }
    let checkpoints = list(dir)?;
    let excess = checkpoints.len().saturating_sub(keep_last);
    for (_, path) in &checkpoints[..excess] {
        fs::remove_dir_all(path).map_err(TrainError::io(path))?;
    }
    Ok(())
}

/// Deletes `.tmp-*` directories left by an interrupted checkpoint write.
pub fn remove_partial(dir: &Path) -> Result<(), TrainError> {
    if !dir.exists() {
        return Ok(());
    }
    for entry in fs::read_dir(dir).map_err(TrainError::io(dir))? {
        let entry = entry.map_err(TrainError::io(dir))?;
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(TEMPORARY_PREFIX)
        {
            let path = entry.path();
            tracing::warn!(path = %path.display(), "deleting a partial checkpoint");
            fs::remove_dir_all(&path).map_err(TrainError::io(&path))?;
        }
    }
    Ok(())
}

/// Reads the checkpoint in `path`.
pub fn load(path: &Path) -> Result<LoadedCheckpoint, TrainError> {
    let invalid = |file: &str, reason: String| TrainError::InvalidCheckpoint {
        path: path.join(file),
        reason: format!(
            "{reason}; delete {} to resume from the previous checkpoint",
            path.display()
        ),
    };
    let state_path = path.join(STATE_FILE);
    let text = fs::read_to_string(&state_path).map_err(TrainError::io(&state_path))?;
    let state: CheckpointState = serde_json::from_str(&text)
        .map_err(|err| invalid(STATE_FILE, format!("invalid JSON: {err}")))?;
    if state.format_version != CHECKPOINT_VERSION {
        return Err(invalid(
            STATE_FILE,
            format!(
                "format_version {} is not supported (expected {CHECKPOINT_VERSION})",
                state.format_version
            ),
        ));
    }
    let model = ModuleRecord::load(path.join(MODEL_FILE))
        .map_err(|err| invalid(MODEL_FILE, err.to_string()))?;
    let optimizer = burn::optim::OptimizerRecord::load(path.join(OPTIMIZER_FILE))
        .map_err(|err| invalid(OPTIMIZER_FILE, err.to_string()))?;
    let target = if state.target_network {
        Some(
            ModuleRecord::load(path.join(TARGET_FILE))
                .map_err(|err| invalid(TARGET_FILE, err.to_string()))?,
        )
    } else {
        None
    };
    Ok(LoadedCheckpoint {
        dir: path.to_path_buf(),
        state,
        model,
        optimizer,
        target,
    })
}

/// Fields that only change logging, checkpointing or the exported λ, so a
/// resumed run may change them without changing the trained weights.
const RESUMABLE_FIELDS: [&str; 5] = [
    "eval_every",
    "log_every",
    "checkpoint_every",
    "keep_last",
    "default_lambda",
];

/// Fails unless `current` equals the checkpoint's configuration in every
/// field that affects training.
pub fn check_resume_config(
    checkpoint: &Path,
    saved: &TrainConfig,
    current: &TrainConfig,
) -> Result<(), TrainError> {
    let to_map = |config: &TrainConfig| match serde_json::to_value(config) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let saved = to_map(saved);
    let current = to_map(current);
    let mut keys: Vec<&String> = saved.keys().chain(current.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        if RESUMABLE_FIELDS.contains(&key.as_str()) {
            continue;
        }
        let before = saved.get(key).cloned().unwrap_or(serde_json::Value::Null);
        let after = current.get(key).cloned().unwrap_or(serde_json::Value::Null);
        if before != after {
            return Err(TrainError::ResumeConfigMismatch {
                path: checkpoint.to_path_buf(),
                field: key.clone(),
                checkpoint: before.to_string(),
                current: after.to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_names_sort_numerically() {
        assert_eq!(step_dir_name(120), "step-000120");
        assert_eq!(step_dir_name(1_234_567), "step-1234567");
    }

    #[test]
    fn resume_config_rejects_lr_change() {
        let saved = TrainConfig::default();
        let current = TrainConfig {
            lr: 1e-3,
            ..TrainConfig::default()
        };
        let err = check_resume_config(Path::new("ck"), &saved, &current).unwrap_err();
        assert!(err.to_string().contains("train.lr"), "{err}");
    }

    #[test]
    fn resume_config_allows_logging_changes() {
        let saved = TrainConfig::default();
        let current = TrainConfig {
            log_every: 1,
            eval_every: 3,
            keep_last: 9,
            ..TrainConfig::default()
        };
        assert!(check_resume_config(Path::new("ck"), &saved, &current).is_ok());
    }
}
