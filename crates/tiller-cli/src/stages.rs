//! The three stages of a run, each reading and writing the run directory.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use tiller_data::{RolloutMetadata, RolloutWriter};
use tiller_decode::eval::{ModelScorer, run_eval, write_eval_outputs};
use tiller_decode::rollout::{ChatModel, run_rollouts};
use tiller_decode::tokenwise::PrefixScorer;
use tiller_model::Scorer;
use tiller_train::TrainOptions;

use crate::base::{device, is_non_empty_dir, load_base_model, load_reward, load_split_prompts};
use crate::recipe::Recipe;

/// Rows per rollout shard file.
const ROWS_PER_SHARD: usize = 4096;

/// Marker written after the last rollout shard is closed. Its presence means
/// the rollout stage finished, so `tiller run` can skip it.
const ROLLOUT_SUMMARY: &str = "summary.json";

/// Stage 1: samples rollouts and writes Parquet shards to
/// `<run dir>/rollouts/`.
pub fn rollout(recipe: &Recipe, progress: bool) -> Result<()> {
    recipe.save_resolved()?;
    let dir = recipe.rollouts_dir();
    if dir.join(ROLLOUT_SUMMARY).exists() {
        tracing::info!(
            dir = %dir.display(),
            "rollouts already complete; skipping (delete the folder to sample again)"
        );
        warn_if_changed(
            &dir.join(ROLLOUT_SUMMARY),
            &rollout_settings(recipe)?,
            "rollouts",
        );
        return Ok(());
    }
    if is_non_empty_dir(&dir) {
        bail!(
            "rollout folder {} contains files from an unfinished run: delete it and rerun",
            dir.display()
        );
    }

    let start = Instant::now();
    let base = load_base_model(recipe)?;
    let reward = load_reward(recipe)?;
    let (prompts, heldout) = load_split_prompts(recipe)?;
    tracing::info!(
        rollout_prompts = prompts.len(),
        heldout_prompts = heldout.len(),
        "prompts split"
    );
    if prompts.is_empty() {
        bail!(
            "no rollout prompts in {}: add prompts, lower prompts.heldout_fraction or raise \
             prompts.rollout_prompts",
            recipe.prompts.path.display()
        );
    }

    let mut reward_settings = reward.settings();
    if let Some(object) = reward_settings.as_object_mut() {
        object.insert("name".into(), reward.name().into());
    }
    let metadata = RolloutMetadata::new(
        base.name.clone(),
        base.sha256.clone(),
        base.tokenizer_sha256.clone(),
        reward_settings,
        recipe.rollout.to_json(),
    );
    let mut writer = RolloutWriter::create(&dir, "rollouts", metadata, ROWS_PER_SHARD)?;
    let chat_model = ChatModel {
        model: &base.model,
        tokenizer: &base.tokenizer,
        template: &base.template,
    };
    let summary = run_rollouts(
        &chat_model,
        reward.as_ref(),
        &prompts,
        &recipe.rollout,
        &mut writer,
        progress,
    )?;
    let files = writer.finish()?;

    let seconds = start.elapsed().as_secs_f64();
    let record = serde_json::json!({
        "prompts": summary.prompts,
        "responses": summary.responses,
        "tokens": summary.tokens,
        "mean_reward": summary.mean_reward,
        "sampling_seconds": summary.elapsed_s,
        "stage_seconds": seconds,
        "tokens_per_second": summary.tokens as f64 / summary.elapsed_s.max(1e-9),
        "files": files,
        "settings": rollout_settings(recipe)?,
    });
    let summary_path = dir.join(ROLLOUT_SUMMARY);
    std::fs::write(&summary_path, serde_json::to_string_pretty(&record)?)
        .with_context(|| format!("failed to write {}", summary_path.display()))?;
    tracing::info!(
        responses = summary.responses,
        tokens = summary.tokens,
        tokens_per_second = format!("{:.1}", summary.tokens as f64 / summary.elapsed_s.max(1e-9)),
        seconds = format!("{seconds:.1}"),
        dir = %dir.display(),
        "rollout stage finished"
    );
    Ok(())
}

/// Record of the settings a finished training stage used, in the run
/// directory.
const TRAIN_RECORD: &str = "train.json";

/// Recipe sections that decide what the rollout stage produces.
fn rollout_settings(recipe: &Recipe) -> Result<serde_json::Value> {
    // The device and precision change the samples: each backend rounds
    // differently, and bf16 changes the base model's distribution.
    Ok(serde_json::json!({
        "device": recipe.run.device,
        "precision": recipe.run.precision,
        "model": serde_json::to_value(&recipe.model)?,
        "prompts": serde_json::to_value(&recipe.prompts)?,
        "reward": serde_json::to_value(&recipe.reward)?,
        "rollout": serde_json::to_value(&recipe.rollout)?,
    }))
}

/// Recipe sections that decide what the training stage produces.
fn train_settings(recipe: &Recipe) -> Result<serde_json::Value> {
    Ok(serde_json::json!({ "train": serde_json::to_value(&recipe.train)? }))
}

/// Warns when a skipped stage's recorded settings differ from the recipe's,
/// because its outputs then do not follow the recipe that was just saved.
fn warn_if_changed(record_path: &std::path::Path, current: &serde_json::Value, what: &str) {
    let recorded = std::fs::read_to_string(record_path)
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|record| record.get("settings").cloned());
    let Some(recorded) = recorded else {
        return;
    };
    let (Some(recorded), Some(current)) = (recorded.as_object(), current.as_object()) else {
        return;
    };
    let changed: Vec<&str> = current
        .iter()
        .filter(|(section, value)| recorded.get(*section) != Some(value))
        .map(|(section, _)| section.as_str())
        .collect();
    if !changed.is_empty() {
        tracing::warn!(
            sections = changed.join(", "),
            record = %record_path.display(),
            "the existing {what} came from other settings in these recipe sections, so \
             delete that output to apply the new settings"
        );
    }
}

/// Lists the rollout shards of a finished rollout stage.
fn rollout_files(recipe: &Recipe) -> Result<Vec<PathBuf>> {
    let dir = recipe.rollouts_dir();
    if !dir.join(ROLLOUT_SUMMARY).exists() {
        bail!(
            "no finished rollouts in {}: run `tiller rollout` with this recipe first",
            dir.display()
        );
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("failed to list {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "parquet"))
        .collect();
    files.sort();
    Ok(files)
}

/// Stage 2: trains the scorer on the rollouts and exports it to
/// `<checkpoints_dir>/<run name>/`.
pub fn train(recipe: &Recipe, resume: bool, progress: bool) -> Result<()> {
    recipe.save_resolved()?;
    let export_dir = recipe.export_dir();
    let record_path = recipe.run_dir().join(TRAIN_RECORD);
    if !resume && export_dir.join("scorer.json").exists() {
        tracing::info!(
            dir = %export_dir.display(),
            "scorer already exported; skipping training (delete the folder to train again)"
        );
        warn_if_changed(&record_path, &train_settings(recipe)?, "scorer");
        return Ok(());
    }

    let files = rollout_files(recipe)?;
    let tokenizer_json = recipe.run_dir().join("tokenizer.json");
    if !tokenizer_json.exists() {
        bail!(
            "tokenizer {} not found: run `tiller rollout` with this recipe first",
            tokenizer_json.display()
        );
    }

    let options = TrainOptions {
        resume,
        progress,
        device: device(recipe)?,
        stop_after_step: None,
        base_model: Some(recipe.model.gguf.clone()),
    };
    let start = Instant::now();
    let summary = tiller_train::train(
        &recipe.train,
        &files,
        &recipe.run_dir(),
        &export_dir,
        &tokenizer_json,
        &options,
    )?;

    let record = serde_json::json!({ "settings": train_settings(recipe)? });
    std::fs::write(&record_path, serde_json::to_string_pretty(&record)?)
        .with_context(|| format!("failed to write {}", record_path.display()))?;
    tracing::info!(
        steps = summary.step,
        tokens_per_second = format!("{:.0}", summary.tokens_per_second),
        seconds = format!("{:.1}", start.elapsed().as_secs_f64()),
        export = %export_dir.display(),
        "train stage finished"
    );
    Ok(())
}

/// Stage 3: evaluates controlled decoding with the exported scorer against
/// best-of-N on held-out prompts, writing `<run dir>/eval/`.
pub fn eval(recipe: &Recipe, progress: bool) -> Result<()> {
    recipe.save_resolved()?;
    let export_dir = recipe.export_dir();
    if !export_dir.join("scorer.json").exists() {
        bail!(
            "no exported scorer in {}: run `tiller train` with this recipe first",
            export_dir.display()
        );
    }
    let start = Instant::now();
    let base = load_base_model(recipe)?;
    let (scorer, manifest) = Scorer::load_export(&export_dir, &device(recipe)?)?;
    if manifest.tokenizer_sha256 != base.tokenizer_sha256 {
        bail!(
            "scorer {} was trained with tokenizer {} but the base model's tokenizer is {}: \
             use the base model the scorer was trained on",
            export_dir.display(),
            manifest.tokenizer_sha256,
            base.tokenizer_sha256
        );
    }
    let reward = load_reward(recipe)?;
    let (_, heldout) = load_split_prompts(recipe)?;
    if heldout.is_empty() {
        bail!(
            "no held-out prompts in {}: raise prompts.heldout_fraction",
            recipe.prompts.path.display()
        );
    }

    let chat_model = ChatModel {
        model: &base.model,
        tokenizer: &base.tokenizer,
        template: &base.template,
    };
    let model_scorer = ModelScorer {
        scorer: &scorer,
        normalization: manifest.reward_normalization,
    };
    let scorers: [(&dyn PrefixScorer, f32); 1] = [(&model_scorer, 1.0)];
    let rows = run_eval(
        &chat_model,
        reward.as_ref(),
        &scorers,
        &heldout,
        &recipe.eval,
        progress,
    )?;

    let eval_dir = recipe.run_dir().join("eval");
    let title = format!("{}: reward vs KL", recipe.run.name);
    let outputs = write_eval_outputs(
        &eval_dir,
        Some(&recipe.run_dir().join("tensorboard").join("eval")),
        &rows,
        &title,
    )?;
    for row in &rows {
        tracing::info!(
            "eval {:<10} {:<12} reward {:+.4} [{:+.4}, {:+.4}] kl {:.4} ({}) win {}",
            row.method,
            row.setting,
            row.reward_mean,
            row.reward_ci95_low,
            row.reward_ci95_high,
            row.kl,
            row.kl_kind.as_str(),
            row.win_rate
                .map(|w| format!("{w:.3}"))
                .unwrap_or_else(|| "-".to_string()),
        );
    }
    tracing::info!(
        results = %outputs.csv.display(),
        plot = %outputs.plots.1.display(),
        seconds = format!("{:.1}", start.elapsed().as_secs_f64()),
        "eval stage finished"
    );
    Ok(())
}
