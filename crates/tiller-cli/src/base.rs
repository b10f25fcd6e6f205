//! Loading the parts every stage shares: the base model, its tokenizer and
//! chat template, the reward model, the prompts and their split.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::tensor::Device;
use tiller_data::{Prompt, Split, load_prompts, split_of};
use tiller_model::{
    ChatTemplate, GgufFile, Llama, save_tokenizer_json, sha256_file, tokenizer_from_gguf,
};
use tiller_reward::{LengthReward, RewardModel, VaderSentiment};
use tokenizers::Tokenizer;

use crate::recipe::{Recipe, RewardKind};

/// The frozen base model with its tokenizer, template and fingerprints.
pub struct BaseModel {
    /// The llama-family network.
    pub model: Llama,
    /// Tokenizer built from the GGUF metadata.
    pub tokenizer: Tokenizer,
    /// The model's chat template.
    pub template: ChatTemplate,
    /// Name recorded in datasets and manifests: the GGUF file name.
    pub name: String,
    /// SHA-256 of the GGUF file.
    pub sha256: String,
    /// SHA-256 of the tokenizer as saved to `<run dir>/tokenizer.json`.
    pub tokenizer_sha256: String,
}

/// Opens the compute device a recipe names. Its first operation runs here,
/// so a missing driver or library is reported before any stage starts.
pub fn device(recipe: &Recipe) -> Result<Device> {
    let (spec, precision) = recipe.device_spec()?;
    Ok(spec.open(precision)?)
}

/// Loads the base model and writes its tokenizer to the run directory.
pub fn load_base_model(recipe: &Recipe) -> Result<BaseModel> {
    let path = &recipe.model.gguf;
    if !path.exists() {
        anyhow::bail!(
            "base model {} not found: run scripts/setup.sh to fetch it, or set model.gguf",
            path.display()
        );
    }
    let start = Instant::now();
    let gguf = GgufFile::open(path)?;
    let (_, precision) = recipe.device_spec()?;
    let model = Llama::from_gguf(&gguf, &device(recipe)?)?.cast(precision.dtype());
    let tokenizer = tokenizer_from_gguf(&gguf)?;
    let template = ChatTemplate::from_gguf(&gguf)?;
    let sha256 = sha256_file(path)?;

    let run_dir = recipe.run_dir();
    std::fs::create_dir_all(&run_dir)
        .with_context(|| format!("failed to create run directory {}", run_dir.display()))?;
    let tokenizer_json = run_dir.join("tokenizer.json");
    save_tokenizer_json(&tokenizer, &tokenizer_json)?;
    let tokenizer_sha256 = sha256_file(&tokenizer_json)?;

    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    tracing::info!(
        model = %path.display(),
        seconds = format!("{:.1}", start.elapsed().as_secs_f64()),
        "base model loaded"
    );
    Ok(BaseModel {
        model,
        tokenizer,
        template,
        name,
        sha256,
        tokenizer_sha256,
    })
}

/// Builds the reward model the recipe names.
pub fn load_reward(recipe: &Recipe) -> Result<Box<dyn RewardModel>> {
    let reward: Box<dyn RewardModel> = match recipe.reward.kind {
        RewardKind::Sentiment => {
            let dir = &recipe.reward.lexicon_dir;
            let vader = VaderSentiment::from_models_dir(dir).with_context(|| {
                format!(
                    "failed to load the VADER lexicons from reward.lexicon_dir = {}",
                    dir.display()
                )
            })?;
            Box::new(vader)
        }
        RewardKind::Length => Box::new(LengthReward::new(recipe.reward.max_tokens)?),
    };
    Ok(reward)
}

/// Loads the prompts and returns `(rollout prompts, held-out prompts)`,
/// split by hashing each `prompt_id`.
pub fn load_split_prompts(recipe: &Recipe) -> Result<(Vec<Prompt>, Vec<Prompt>)> {
    let prompts = load_prompts(&recipe.prompts.path)?;
    let (mut rollout, heldout): (Vec<Prompt>, Vec<Prompt>) =
        prompts.into_iter().partition(|prompt| {
            split_of(
                &prompt.prompt_id,
                &recipe.prompts.heldout_salt,
                recipe.prompts.heldout_fraction,
            ) == Split::Train
        });
    if let Some(limit) = recipe.prompts.rollout_prompts {
        rollout.truncate(limit);
    }
    Ok((rollout, heldout))
}

/// Returns whether `dir` exists and contains at least one entry.
pub fn is_non_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false)
}
