//! Loading rollouts into training examples, with the train/validation split
//! and the reward statistics.

use std::path::{Path, PathBuf};

use tiller_data::{RolloutMetadata, RolloutReader, RolloutRecord, Split, split_of};
use tiller_model::RewardNormalization;

use crate::{Objective, TrainConfig, TrainError};

/// One response, ready for batching.
///
/// `tokens` is the prompt (possibly cut at the front to fit `max_len`)
/// followed by the response, so state `s_t` ends at index
/// `prompt_len - 1 + t` for `t = 0..=T`.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// Prompt id of the rollout.
    pub prompt_id: String,
    /// Sample index of the rollout.
    pub sample_index: i32,
    /// Prompt ids followed by response ids.
    pub tokens: Vec<u32>,
    /// Number of prompt ids at the front of `tokens`, at least 1.
    pub prompt_len: usize,
    /// Reward of the response, in reward units.
    pub reward: f32,
    /// Cached base-model top-k per response position `i` (the distribution
    /// of `p(· | s_i)`): token ids.
    pub topk_ids: Option<Vec<Vec<u32>>>,
    /// Natural-log probabilities matching `topk_ids`.
    pub topk_logprobs: Option<Vec<Vec<f32>>>,
}

impl Example {
    /// Returns the number of response tokens `T`.
    pub fn response_len(&self) -> usize {
        self.tokens.len() - self.prompt_len
    }
}

/// Rollouts split into training and validation examples.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Metadata shared by every rollout file.
    pub metadata: RolloutMetadata,
    /// The first rollout file, for messages.
    pub first_file: PathBuf,
    /// Training examples in file order.
    pub train: Vec<Example>,
    /// Validation examples in file order.
    pub validation: Vec<Example>,
    /// Whether the files carry the cached top-k columns.
    pub has_topk: bool,
    /// Largest token id in any example, cached top-k ids included.
    pub max_token_id: u32,
    /// `(prompt_id, sample_index)` of the response that contains
    /// `max_token_id`, to name it in errors.
    pub max_token_at: Option<(String, i32)>,
    /// Prompts cut at the front to fit `max_len`.
    pub truncated_prompts: usize,
}

impl Dataset {
    /// Computes the reward standardisation over the training split: the mean
    /// and the population standard deviation, or the identity map when
    /// `normalize` is false. A standard deviation below 1e-8 (all rewards
    /// equal) is replaced by 1, so the map stays invertible.
    pub fn reward_normalization(&self, normalize: bool) -> RewardNormalization {
        if !normalize || self.train.is_empty() {
            return RewardNormalization::default();
        }
        let count = self.train.len() as f64;
        let mean = self.train.iter().map(|e| f64::from(e.reward)).sum::<f64>() / count;
        let variance = self
            .train
            .iter()
            .map(|e| (f64::from(e.reward) - mean).powi(2))
            .sum::<f64>()
            / count;
        let std = variance.sqrt();
        if std < 1e-8 {
            tracing::warn!(
                mean,
                "every training reward is equal; rewards are centred but not scaled"
            );
        }
        RewardNormalization {
            applied: true,
            mean,
            std: if std < 1e-8 { 1.0 } else { std },
        }
    }
}

/// Reads every rollout in `paths`, checks it against `config` and splits
/// it by `prompt_id`.
pub fn load_dataset(paths: &[PathBuf], config: &TrainConfig) -> Result<Dataset, TrainError> {
    let reader = RolloutReader::open(paths)?;
    let first_file = reader
        .files()
        .first()
        .cloned()
        .unwrap_or_else(|| PathBuf::from("(none)"));
    let has_topk = reader.has_topk();
    if config.objective == Objective::Cdq && !has_topk {
        return Err(TrainError::MissingRolloutField {
            objective: Objective::Cdq.as_str(),
            what: "the cached top-k columns topk_token_ids and topk_logprobs",
            hint: "regenerate the rollouts with a top-k cache (rollout topk > 0)",
        });
    }

    let mut dataset = Dataset {
        metadata: reader.metadata().clone(),
        first_file,
        train: Vec::new(),
        validation: Vec::new(),
        has_topk,
        max_token_id: 0,
        max_token_at: None,
        truncated_prompts: 0,
    };
    for record in reader.records() {
        let record = record?;
        let split = split_of(
            &record.prompt_id,
            &config.split_salt,
            config.validation_fraction,
        );
        let (example, truncated) = to_example(record, config.max_len, config.objective)?;
        if truncated {
            dataset.truncated_prompts += 1;
        }
        let cached_ids = example.topk_ids.iter().flatten().flatten();
        let max_id = example.tokens.iter().chain(cached_ids).copied().max();
        if let Some(id) = max_id
            && (dataset.max_token_at.is_none() || id > dataset.max_token_id)
        {
            dataset.max_token_id = id;
            dataset.max_token_at = Some((example.prompt_id.clone(), example.sample_index));
        }
        match split {
            Split::Train => dataset.train.push(example),
            Split::Validation => dataset.validation.push(example),
        }
    }
    if dataset.train.is_empty() {
        return Err(TrainError::NoTrainingData {
            records: dataset.validation.len(),
            validation: dataset.validation.len(),
        });
    }
    if dataset.truncated_prompts > 0 {
        tracing::warn!(
            truncated = dataset.truncated_prompts,
            max_len = config.max_len,
            "prompts were cut at the front so prompt + response fits max_len; raise train.max_len to keep them whole"
        );
    }
    Ok(dataset)
}

/// Converts a record, cutting the prompt at the front when prompt + response
/// exceeds `max_len`. Returns the example and whether the prompt was cut.
fn to_example(
    record: RolloutRecord,
    max_len: usize,
    objective: Objective,
) -> Result<(Example, bool), TrainError> {
    let invalid = |reason: String| TrainError::InvalidRollout {
        prompt_id: record.prompt_id.clone(),
        sample_index: record.sample_index,
        reason,
    };
    let response_len = record.response_token_ids.len();
    if record.prompt_token_ids.is_empty() {
        return Err(invalid(
            "prompt_token_ids is empty, so the prompt state s_0 has no token".to_string(),
        ));
    }
    if response_len >= max_len {
        return Err(invalid(format!(
            "the response has {response_len} tokens but max_len is {max_len}; raise train.max_len above {response_len}"
        )));
    }
    if objective == Objective::Cdq {
        let ids = record.topk_token_ids.as_deref().unwrap_or(&[]);
        if let Some(position) = ids.iter().position(Vec::is_empty) {
            return Err(invalid(format!(
                "the cached top-k list at response position {position} is empty, so the cdq target is undefined"
            )));
        }
    }
    let keep = record.prompt_token_ids.len().min(max_len - response_len);
    let cut = record.prompt_token_ids.len() - keep;
    let mut tokens = record.prompt_token_ids[cut..].to_vec();
    tokens.extend_from_slice(&record.response_token_ids);
    let example = Example {
        prompt_id: record.prompt_id,
        sample_index: record.sample_index,
        tokens,
        prompt_len: keep,
        reward: record.reward,
        topk_ids: record.topk_token_ids,
        topk_logprobs: record.topk_logprobs,
    };
    Ok((example, cut > 0))
}

/// Decides whether rollouts were sampled from the base distribution itself
/// (temperature 1, no top-k, no top-p), from the `sampling` metadata.
///
/// Reads the keys `temperature`, `top_k` and `top_p`; a missing
/// `temperature` counts as unknown and returns false, a missing `top_k` or
/// `top_p` counts as off.
pub fn sampled_from_base(sampling: &serde_json::Value) -> bool {
    let number = |key: &str| sampling.get(key).and_then(serde_json::Value::as_f64);
    let Some(temperature) = number("temperature") else {
        return false;
    };
    let top_k_off = number("top_k").is_none_or(|k| k == 0.0);
    let top_p_off = number("top_p").is_none_or(|p| p >= 1.0);
    (temperature - 1.0).abs() < 1e-6 && top_k_off && top_p_off
}

/// Reads the vocabulary size implied by a Hugging Face `tokenizer.json`: the
/// largest id in `model.vocab` or `added_tokens`, plus one. Returns `None`
/// when the file lists no ids.
pub fn tokenizer_vocab_size(path: &Path) -> Result<Option<usize>, TrainError> {
    let text = std::fs::read_to_string(path).map_err(TrainError::io(path))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|err| TrainError::InvalidConfig {
            field: "tokenizer_json",
            value: path.display().to_string(),
            reason: format!("not valid JSON: {err}"),
        })?;
    let mut max_id: Option<u64> = None;
    let mut note = |id: Option<u64>| {
        if let Some(id) = id {
            max_id = Some(max_id.map_or(id, |m| m.max(id)));
        }
    };
    match json.pointer("/model/vocab") {
        Some(serde_json::Value::Object(vocab)) => {
            for id in vocab.values() {
                note(id.as_u64());
            }
        }
        // Unigram models list [piece, score] pairs; the id is the index.
        Some(serde_json::Value::Array(pieces)) if !pieces.is_empty() => {
            note(Some(pieces.len() as u64 - 1));
        }
        _ => {}
    }
    if let Some(serde_json::Value::Array(added)) = json.get("added_tokens") {
        for token in added {
            note(token.get("id").and_then(serde_json::Value::as_u64));
        }
    }
    Ok(max_id.map(|id| id as usize + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn base_sampling_detected() {
        assert!(sampled_from_base(
            &json!({"temperature": 1.0, "top_k": 0, "top_p": 1.0})
        ));
        assert!(sampled_from_base(&json!({"temperature": 1})));
        assert!(!sampled_from_base(&json!({"temperature": 0.7})));
        assert!(!sampled_from_base(
            &json!({"temperature": 1.0, "top_k": 40})
        ));
        assert!(!sampled_from_base(
            &json!({"temperature": 1.0, "top_p": 0.9})
        ));
        assert!(!sampled_from_base(&json!({})));
    }

    #[test]
    fn vocab_size_from_tokenizer_json() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.json");
        std::fs::write(
            &path,
            r#"{"model": {"vocab": {"a": 0, "b": 5}}, "added_tokens": [{"id": 9, "content": "<eos>"}]}"#,
        )
        .unwrap();
        assert_eq!(tokenizer_vocab_size(&path).unwrap(), Some(10));
    }

    fn record(prompt: Vec<u32>, response: Vec<u32>) -> RolloutRecord {
        RolloutRecord {
            prompt_id: "p".to_string(),
            sample_index: 0,
            prompt: String::new(),
            response: String::new(),
            response_logprobs: vec![0.0; response.len()],
            prompt_token_ids: prompt,
            response_token_ids: response,
            reward: 1.0,
            finish_reason: tiller_data::FinishReason::Eos,
            topk_token_ids: None,
            topk_logprobs: None,
        }
    }

    #[test]
    fn long_prompt_cut_at_front() {
        let (example, cut) =
            to_example(record(vec![1, 2, 3, 4], vec![5, 6]), 4, Objective::Fudge).unwrap();
        assert!(cut);
        assert_eq!(example.tokens, vec![3, 4, 5, 6]);
        assert_eq!(example.prompt_len, 2);
        assert_eq!(example.response_len(), 2);
    }

    #[test]
    fn response_at_max_len_rejected() {
        let err = to_example(record(vec![1], vec![5, 6, 7]), 3, Objective::Fudge).unwrap_err();
        assert!(err.to_string().contains("raise train.max_len"), "{err}");
    }
}
