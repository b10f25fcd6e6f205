//! One rollout row in memory.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Reason that generation of a response stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FinishReason {
    /// The model emitted its end-of-sequence token, which is the last
    /// element of `response_token_ids`.
    Eos,
    /// The model emitted another stop token, which is the last element of
    /// `response_token_ids`.
    Stop,
    /// The response reached the token limit, and no end token was added.
    Length,
}

impl FinishReason {
    /// Returns the value stored in the `finish_reason` column.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Eos => "eos",
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
        }
    }
}

impl fmt::Display for FinishReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FinishReason {
    /// The unrecognised text.
    type Err = String;

    /// Parses `eos`, `stop` or `length` (exact, lowercase).
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "eos" => Ok(FinishReason::Eos),
            "stop" => Ok(FinishReason::Stop),
            "length" => Ok(FinishReason::Length),
            other => Err(other.to_string()),
        }
    }
}

/// One sampled response to one prompt, with its reward: a row of a rollout
/// file.
///
/// Invariants, checked by the writer and the reader: `response_logprobs`
/// has one entry per response token, each top-k list has one inner list per
/// response token, and the `i`-th inner lists of `topk_token_ids` and
/// `topk_logprobs` have equal lengths.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutRecord {
    /// Stable prompt id, which the train/validation split hashes.
    pub prompt_id: String,
    /// Index of this response among the prompt's samples, from 0.
    pub sample_index: i32,
    /// Prompt text.
    pub prompt: String,
    /// Response text, decoded without special tokens.
    pub response: String,
    /// Token ids of the full model input before the response (after any chat
    /// template), never empty.
    pub prompt_token_ids: Vec<u32>,
    /// Sampled token ids, including a final EOS or stop token when
    /// `finish_reason` is `Eos` or `Stop`. May be empty.
    pub response_token_ids: Vec<u32>,
    /// Reward of the full response, finite.
    pub reward: f32,
    /// Reason that generation stopped.
    pub finish_reason: FinishReason,
    /// Natural-log probability of each response token under the base model at
    /// temperature 1 without top-k or top-p filtering, finite.
    pub response_logprobs: Vec<f32>,
    /// For each response position, the ids of the base model's most likely
    /// next tokens.
    pub topk_token_ids: Option<Vec<Vec<u32>>>,
    /// Natural-log probabilities matching `topk_token_ids` entry by entry.
    pub topk_logprobs: Option<Vec<Vec<f32>>>,
}

#[cfg(test)]
mod tests {
    use super::FinishReason;

    #[test]
    fn finish_reason_text_round_trip() {
        for reason in [FinishReason::Eos, FinishReason::Stop, FinishReason::Length] {
            assert_eq!(reason.as_str().parse::<FinishReason>(), Ok(reason));
            assert_eq!(reason.to_string(), reason.as_str());
        }
        assert_eq!("EOS".parse::<FinishReason>(), Err("EOS".to_string()));
        assert_eq!("".parse::<FinishReason>(), Err(String::new()));
    }
}
