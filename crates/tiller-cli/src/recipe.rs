//! Recipes: one TOML file that drives every stage of a run.
//!
//! A recipe has the sections `[run]`, `[model]`, `[prompts]`, `[reward]`,
//! `[rollout]`, `[train]` and `[eval]`. Every section rejects unknown keys,
//! and the error lists the valid ones. `--set section.key=value` overrides
//! any field before the recipe is checked. The value is read as a TOML value
//! (`--set train.lr=3e-4`, `--set eval.lambdas=[0.0,2.0]`), and it falls back
//! to a string when it does not parse as one (`--set run.name=trial`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use tiller_decode::eval::EvalConfig;
use tiller_decode::rollout::RolloutConfig;
use tiller_model::{DeviceSpec, Precision};
use tiller_train::TrainConfig;

/// A parsed and checked recipe.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// Run identity and output locations.
    pub run: RunSection,
    /// The frozen base model.
    pub model: ModelSection,
    /// The prompts file and the held-out split.
    pub prompts: PromptsSection,
    /// The reward model that scores responses.
    pub reward: RewardSection,
    /// Stage 1: sampling rollouts from the base model.
    #[serde(default)]
    pub rollout: RolloutConfig,
    /// Stage 2: fitting the prefix scorer.
    #[serde(default)]
    pub train: TrainConfig,
    /// Stage 3: controlled decoding against best-of-N.
    #[serde(default)]
    pub eval: EvalConfig,
}

/// The `[run]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    /// Run name: the run directory is `<runs_dir>/<name>` and the exported
    /// scorer goes to `<checkpoints_dir>/<name>`.
    pub name: String,
    /// Folder that contains run directories. Default `runs`.
    #[serde(default = "default_runs_dir")]
    pub runs_dir: PathBuf,
    /// Folder that contains exported scorers. Default `checkpoints`.
    #[serde(default = "default_checkpoints_dir")]
    pub checkpoints_dir: PathBuf,
    /// Compute device: `flex` (the CPU backend, always built in), `wgpu`,
    /// `vulkan`, `tch-cpu` or `tch-cuda[:N]` (each needs its cargo
    /// feature). Default `flex`.
    #[serde(default = "default_device")]
    pub device: String,
    /// Float type of the frozen base model during rollout and eval: `f32`,
    /// or `bf16`/`f16` on a GPU backend that supports them. The scorer
    /// always trains in f32. Default `f32`.
    #[serde(default = "default_precision")]
    pub precision: String,
}

/// The `[model]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// Path of the base model's GGUF file.
    pub gguf: PathBuf,
}

/// The `[prompts]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptsSection {
    /// JSON-lines file of `{"prompt_id", "prompt"}` objects.
    pub path: PathBuf,
    /// Fraction of prompts held out for evaluation, chosen by hashing
    /// `prompt_id`. Default 0.2.
    #[serde(default = "default_heldout_fraction")]
    pub heldout_fraction: f64,
    /// Salt of the held-out hash; change it to draw another split. Default
    /// `heldout`.
    #[serde(default = "default_heldout_salt")]
    pub heldout_salt: String,
    /// Uses only the first this many non-held-out prompts for rollouts, in
    /// file order. Default: all of them.
    #[serde(default)]
    pub rollout_prompts: Option<usize>,
}

/// Reward model that scores responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RewardKind {
    /// VADER compound sentiment of the response, in [-1, 1].
    Sentiment,
    /// `log(T / T_max)` for a response of T tokens.
    Length,
}

/// The `[reward]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewardSection {
    /// `sentiment` or `length`.
    pub kind: RewardKind,
    /// Folder with `vader_lexicon.txt` and `vader_emoji_lexicon.txt`, for
    /// `sentiment`. Default `models`.
    #[serde(default = "default_lexicon_dir")]
    pub lexicon_dir: PathBuf,
    /// `T_max` of the length reward, in tokens. Default 48.
    #[serde(default = "default_length_max_tokens")]
    pub max_tokens: usize,
}

fn default_runs_dir() -> PathBuf {
    PathBuf::from("runs")
}

fn default_checkpoints_dir() -> PathBuf {
    PathBuf::from("checkpoints")
}

fn default_device() -> String {
    "flex".to_string()
}

fn default_precision() -> String {
    "f32".to_string()
}

fn default_heldout_fraction() -> f64 {
    0.2
}

fn default_heldout_salt() -> String {
    "heldout".to_string()
}

fn default_lexicon_dir() -> PathBuf {
    PathBuf::from("models")
}

fn default_length_max_tokens() -> usize {
    48
}

impl Recipe {
    /// Reads a recipe file, applies `section.key=value` overrides and checks
    /// the result.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Recipe> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read recipe {}", path.display()))?;
        let mut table: toml::Table = toml::from_str(&text)
            .with_context(|| format!("invalid TOML in recipe {}", path.display()))?;
        for item in overrides {
            apply_override(&mut table, item)?;
        }
        let parsed: Result<Recipe, _> = toml::Value::Table(table).try_into();
        let recipe = match parsed {
            Ok(recipe) => recipe,
            // `--set` reads values as TOML, so `run.name=nan` or `=123` is a
            // number, not a string.
            Err(err) if !overrides.is_empty() => {
                return Err(anyhow::Error::new(err).context(format!(
                    "invalid recipe {} after --set overrides (values are read as TOML: \
                     quote a string that looks like a number, e.g. --set 'run.name=\"123\"')",
                    path.display()
                )));
            }
            Err(err) => {
                return Err(
                    anyhow::Error::new(err).context(format!("invalid recipe {}", path.display()))
                );
            }
        };
        recipe.check()?;
        Ok(recipe)
    }

    /// Parses `run.device` and `run.precision`.
    pub fn device_spec(&self) -> Result<(DeviceSpec, Precision)> {
        let device = self.run.device.parse().context("invalid run.device")?;
        let precision = self
            .run
            .precision
            .parse()
            .context("invalid run.precision")?;
        Ok((device, precision))
    }

    /// Checks values that serde cannot: ranges and supported choices.
    fn check(&self) -> Result<()> {
        if self.run.name.is_empty() || self.run.name.contains(['/', '\\']) {
            bail!(
                "invalid run.name {:?}: use a non-empty name without path separators",
                self.run.name
            );
        }
        let (device, precision) = self.device_spec()?;
        device
            .check(precision)
            .context("invalid run.device or run.precision")?;
        if !(0.0 < self.prompts.heldout_fraction && self.prompts.heldout_fraction < 1.0) {
            bail!(
                "invalid prompts.heldout_fraction {}: expected a value strictly between 0 and 1",
                self.prompts.heldout_fraction
            );
        }
        if self.reward.kind == RewardKind::Length && self.reward.max_tokens == 0 {
            bail!("invalid reward.max_tokens 0: expected at least 1 token");
        }
        // Reject bad stage settings before any stage spends minutes.
        self.train.validate()?;
        self.eval.validate()?;
        Ok(())
    }

    /// Run directory: recipe, TensorBoard events, logs, rollouts,
    /// checkpoints and results.
    pub fn run_dir(&self) -> PathBuf {
        self.run.runs_dir.join(&self.run.name)
    }

    /// Folder of the exported scorer.
    pub fn export_dir(&self) -> PathBuf {
        self.run.checkpoints_dir.join(&self.run.name)
    }

    /// Folder of the rollout shards.
    pub fn rollouts_dir(&self) -> PathBuf {
        self.run_dir().join("rollouts")
    }

    /// Writes the resolved recipe (after overrides and defaults) to the run
    /// directory as `recipe.toml`.
    pub fn save_resolved(&self) -> Result<PathBuf> {
        let dir = self.run_dir();
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("failed to create run directory {}", dir.display()))?;
        let path = dir.join("recipe.toml");
        let text = toml::to_string_pretty(self).context("failed to serialise the recipe")?;
        std::fs::write(&path, text)
            .with_context(|| format!("failed to write {}", path.display()))?;
        Ok(path)
    }
}

/// Applies one `section.key=value` override to the raw recipe table.
fn apply_override(table: &mut toml::Table, item: &str) -> Result<()> {
    let Some((key, raw_value)) = item.split_once('=') else {
        bail!("invalid --set {item:?}: expected section.key=value");
    };
    let Some((section, field)) = key.trim().split_once('.') else {
        bail!("invalid --set {item:?}: the key must be section.key, e.g. train.lr");
    };
    let value = parse_override_value(raw_value.trim());
    let entry = table
        .entry(section.to_string())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let Some(section_table) = entry.as_table_mut() else {
        bail!("invalid --set {item:?}: `{section}` is not a section");
    };
    section_table.insert(field.to_string(), value);
    Ok(())
}

/// Reads a value as TOML (number, bool, array, quoted string), else as a
/// bare string.
fn parse_override_value(raw: &str) -> toml::Value {
    let wrapped = format!("value = {raw}");
    match toml::from_str::<toml::Table>(&wrapped) {
        Ok(mut parsed) => parsed
            .remove("value")
            .unwrap_or_else(|| toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[run]
name = "t"
[model]
gguf = "m.gguf"
[prompts]
path = "p.jsonl"
[reward]
kind = "length"
"#;

    fn write_recipe(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recipe.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn override_number_and_string() {
        let (_dir, path) = write_recipe(MINIMAL);
        let sets = [
            "prompts.rollout_prompts=9".to_string(),
            "run.name=other".to_string(),
        ];
        let recipe = Recipe::load(&path, &sets).unwrap();
        assert_eq!(recipe.prompts.rollout_prompts, Some(9));
        assert_eq!(recipe.run.name, "other");
    }

    #[test]
    fn unknown_key_lists_valid_ones() {
        let (_dir, path) = write_recipe(MINIMAL);
        let err = Recipe::load(&path, &["run.nmae=1".to_string()]).unwrap_err();
        let message = format!("{err:#}");
        assert!(message.contains("unknown field `nmae`"), "{message}");
        assert!(message.contains("runs_dir"), "{message}");
    }

    #[test]
    fn unknown_section_rejected() {
        let (_dir, path) = write_recipe(MINIMAL);
        let err = Recipe::load(&path, &["trian.lr=1".to_string()]).unwrap_err();
        assert!(format!("{err:#}").contains("trian"));
    }

    #[test]
    fn malformed_override_rejected() {
        let (_dir, path) = write_recipe(MINIMAL);
        let err = Recipe::load(&path, &["seed".to_string()]).unwrap_err();
        assert!(format!("{err:#}").contains("section.key=value"));
    }

    #[test]
    fn heldout_fraction_range_checked() {
        let (_dir, path) = write_recipe(MINIMAL);
        let err = Recipe::load(&path, &["prompts.heldout_fraction=1.5".to_string()]).unwrap_err();
        assert!(format!("{err:#}").contains("heldout_fraction"));
    }

    #[test]
    fn stage_settings_checked_at_load() {
        let (_dir, path) = write_recipe(MINIMAL);
        let err = Recipe::load(&path, &["eval.prompts=1".to_string()]).unwrap_err();
        assert!(format!("{err:#}").contains("eval prompts"), "{err:#}");
    }

    #[test]
    fn numeric_override_for_string_hints_quoting() {
        let (_dir, path) = write_recipe(MINIMAL);
        let err = Recipe::load(&path, &["run.name=123".to_string()]).unwrap_err();
        let message = format!("{err:#}");
        assert!(message.contains("run.name"), "{message}");
        assert!(message.contains("quote a string"), "{message}");
    }
}
