//! Stage 1: sample responses from the base model, score them with the reward
//! model and write them as a rollout dataset.

use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tiller_data::{FinishReason, Prompt, RolloutRecord, RolloutWriter};
use tiller_model::{ChatTemplate, Llama};
use tiller_reward::RewardModel;
use tokenizers::Tokenizer;

use crate::error::DecodeError;
use crate::sampling::{SamplingConfig, generate};

/// Settings of rollout generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutConfig {
    /// Responses sampled per prompt. Default 8.
    #[serde(default = "default_samples_per_prompt")]
    pub samples_per_prompt: usize,
    /// Sampling temperature; 0 is greedy. Default 1.0.
    #[serde(default = "default_one")]
    pub temperature: f32,
    /// Samples only from the `top_k` most likely tokens; 0 turns it off.
    /// Default 0.
    #[serde(default)]
    pub top_k: usize,
    /// Nucleus sampling mass; 1 turns it off and 0 is greedy. Default 1.0.
    #[serde(default = "default_one")]
    pub top_p: f32,
    /// Maximum response length in tokens, a final EOS or stop token included.
    /// Default 64.
    #[serde(default = "default_max_new_tokens")]
    pub max_new_tokens: usize,
    /// Token ids besides the model's EOS that end a response. Default none.
    #[serde(default)]
    pub stop_ids: Vec<u32>,
    /// Run seed; each prompt's generator is seeded from it and the prompt id.
    /// Default 0.
    #[serde(default)]
    pub seed: u64,
    /// Most likely tokens stored per response position for cached CD-Q
    /// targets; 0 stores no top-k columns. Default 20.
    #[serde(default = "default_topk_cache")]
    pub topk_cache: usize,
}

fn default_samples_per_prompt() -> usize {
    8
}

fn default_one() -> f32 {
    1.0
}

fn default_max_new_tokens() -> usize {
    64
}

fn default_topk_cache() -> usize {
    20
}

impl Default for RolloutConfig {
    fn default() -> Self {
        RolloutConfig {
            samples_per_prompt: default_samples_per_prompt(),
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            max_new_tokens: default_max_new_tokens(),
            stop_ids: Vec::new(),
            seed: 0,
            topk_cache: default_topk_cache(),
        }
    }
}

impl RolloutConfig {
    /// Returns the sampling settings for one prompt, seeded with
    /// [`prompt_seed`].
    pub fn sampling_for(&self, prompt_id: &str) -> SamplingConfig {
        SamplingConfig {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            max_new_tokens: self.max_new_tokens,
            stop_ids: self.stop_ids.clone(),
            seed: prompt_seed(self.seed, prompt_id),
        }
    }

    /// Returns the settings as JSON, for the `sampling` field of the rollout
    /// metadata.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// Derives the seed of one prompt from the run seed and the prompt id, so a
/// prompt's samples do not depend on which other prompts run or in what
/// order.
///
/// The seed is the first 8 bytes (little-endian) of
/// `SHA-256("tiller-prompt-seed" ‖ run_seed as 8 little-endian bytes ‖ prompt_id)`.
pub fn prompt_seed(run_seed: u64, prompt_id: &str) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(b"tiller-prompt-seed");
    hasher.update(run_seed.to_le_bytes());
    hasher.update(prompt_id.as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

/// The base model with the tokenizer and chat template that turn prompt
/// text into its input ids.
pub struct ChatModel<'a> {
    /// The frozen base model p.
    pub model: &'a Llama,
    /// Its tokenizer.
    pub tokenizer: &'a Tokenizer,
    /// Its chat template.
    pub template: &'a ChatTemplate,
}

/// Counts from one call of [`run_rollouts`].
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutSummary {
    /// Prompts processed.
    pub prompts: usize,
    /// Records written.
    pub responses: usize,
    /// Response tokens generated.
    pub tokens: usize,
    /// Mean reward over all responses (NaN when there are none).
    pub mean_reward: f64,
    /// Wall-clock time in seconds.
    pub elapsed_s: f64,
}

/// Returns the number of response tokens passed to the reward model, which
/// excludes a final EOS or stop token.
pub fn reward_token_count(token_count: usize, finish_reason: FinishReason) -> usize {
    match finish_reason {
        FinishReason::Eos | FinishReason::Stop => token_count.saturating_sub(1),
        FinishReason::Length => token_count,
    }
}

/// Applies the chat template to `prompt` and tokenizes it without adding
/// special tokens, because the template already contains them.
pub fn encode_prompt(
    tokenizer: &Tokenizer,
    template: &ChatTemplate,
    prompt: &Prompt,
) -> Result<Vec<u32>, DecodeError> {
    let text = template.apply_user(&prompt.prompt);
    let encoding = tokenizer
        .encode(text, false)
        .map_err(|error| DecodeError::Tokenizer {
            prompt_id: prompt.prompt_id.clone(),
            operation: "encode",
            message: error.to_string(),
        })?;
    Ok(encoding.get_ids().to_vec())
}

/// Decodes response ids to text without special tokens.
pub fn decode_response(
    tokenizer: &Tokenizer,
    prompt_id: &str,
    token_ids: &[u32],
) -> Result<String, DecodeError> {
    tokenizer
        .decode(token_ids, true)
        .map_err(|error| DecodeError::Tokenizer {
            prompt_id: prompt_id.to_string(),
            operation: "decode",
            message: error.to_string(),
        })
}

/// Scores one response and returns its reward, rejecting a non-finite value.
pub fn score_response(
    reward: &dyn RewardModel,
    prompt: &Prompt,
    sample_index: usize,
    response: &str,
    token_count: usize,
) -> Result<f32, DecodeError> {
    let value = reward.score(&prompt.prompt, response, token_count);
    if value.is_finite() {
        Ok(value)
    } else {
        Err(DecodeError::NonFiniteReward {
            prompt_id: prompt.prompt_id.clone(),
            sample_index,
            value,
        })
    }
}

/// Creates a progress bar over `len` prompts, or a hidden one.
pub(crate) fn prompt_progress(len: usize, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) = ProgressStyle::with_template(
        "{prefix} [{elapsed_precise}] {bar:30} {pos}/{len} prompts {msg}",
    ) {
        bar.set_style(style);
    }
    bar
}

/// Samples `cfg.samples_per_prompt` responses to each prompt, scores them
/// and writes one [`RolloutRecord`] per response to `writer`.
///
/// Each prompt is chat-templated, tokenized and sampled with its own
/// generator seeded by [`prompt_seed`]. Records carry the top
/// `cfg.topk_cache` tokens of every position when it is above 0. The caller
/// creates the writer (with `cfg.to_json()` as the sampling metadata) and
/// calls its `finish`. With `show_progress` a bar shows prompts done and
/// generated tokens per second.
pub fn run_rollouts(
    chat_model: &ChatModel<'_>,
    reward: &dyn RewardModel,
    prompts: &[Prompt],
    cfg: &RolloutConfig,
    writer: &mut RolloutWriter,
    show_progress: bool,
) -> Result<RolloutSummary, DecodeError> {
    if cfg.samples_per_prompt == 0 {
        return Err(DecodeError::ZeroSamples);
    }
    if cfg.max_new_tokens == 0 {
        return Err(DecodeError::InvalidSetting {
            setting: "rollout max_new_tokens".to_string(),
            value: "0".to_string(),
            hint: "allow at least 1 new token, or every response is empty".to_string(),
        });
    }
    let start = Instant::now();
    let bar = prompt_progress(prompts.len(), show_progress);
    bar.set_prefix("rollouts");
    tracing::info!(
        prompts = prompts.len(),
        samples_per_prompt = cfg.samples_per_prompt,
        max_new_tokens = cfg.max_new_tokens,
        "rollouts started"
    );

    let mut summary = RolloutSummary {
        prompts: 0,
        responses: 0,
        tokens: 0,
        mean_reward: f64::NAN,
        elapsed_s: 0.0,
    };
    let mut reward_sum = 0.0;
    for prompt in prompts {
        let prompt_ids = encode_prompt(chat_model.tokenizer, chat_model.template, prompt)?;
        let sampling = cfg.sampling_for(&prompt.prompt_id);
        let mut rng = ChaCha8Rng::seed_from_u64(sampling.seed);
        let generations = generate(
            chat_model.model,
            &prompt_ids,
            cfg.samples_per_prompt,
            &sampling,
            cfg.topk_cache,
            &mut rng,
        )?;

        for (index, generation) in generations.into_iter().enumerate() {
            let response = decode_response(
                chat_model.tokenizer,
                &prompt.prompt_id,
                &generation.token_ids,
            )?;
            let count = reward_token_count(generation.token_ids.len(), generation.finish_reason);
            let value = score_response(reward, prompt, index, &response, count)?;
            summary.tokens += generation.token_ids.len();
            reward_sum += f64::from(value);
            let with_topk = cfg.topk_cache > 0;
            let record = RolloutRecord {
                prompt_id: prompt.prompt_id.clone(),
                sample_index: index as i32,
                prompt: prompt.prompt.clone(),
                response,
                prompt_token_ids: prompt_ids.clone(),
                response_token_ids: generation.token_ids,
                reward: value,
                finish_reason: generation.finish_reason,
                response_logprobs: generation.logprobs,
                topk_token_ids: with_topk.then_some(generation.topk_token_ids),
                topk_logprobs: with_topk.then_some(generation.topk_logprobs),
            };
            writer.write(&record)?;
            summary.responses += 1;
        }

        summary.prompts += 1;
        let elapsed = start.elapsed().as_secs_f64();
        bar.inc(1);
        bar.set_message(format!(
            "{:.1} tokens/s",
            summary.tokens as f64 / elapsed.max(1e-9)
        ));
    }
    bar.finish_and_clear();

    summary.elapsed_s = start.elapsed().as_secs_f64();
    if summary.responses > 0 {
        summary.mean_reward = reward_sum / summary.responses as f64;
    }
    tracing::info!(
        prompts = summary.prompts,
        responses = summary.responses,
        tokens = summary.tokens,
        mean_reward = summary.mean_reward,
        elapsed_s = summary.elapsed_s,
        "rollouts finished"
    );
    Ok(summary)
}
