//! Reward models that score a finished response `y` to a prompt `x`.
//!
//! A reward model returns `r(x, y)`, the terminal value that prefix scorers
//! learn to predict. Two are provided:
//!
//! - [`VaderSentiment`]: the VADER compound sentiment score of the response,
//!   in `[-1, 1]`.
//! - [`LengthReward`]: `log(max(T, 1) / T_max)` for a response of `T` tokens.
//!
//! Both implement the object-safe [`RewardModel`] trait, so callers can hold
//! either as a `Box<dyn RewardModel>`.

#![warn(missing_docs)]

mod error;
mod length;
mod vader;

pub use error::RewardError;
pub use length::LengthReward;
pub use vader::{EMOJI_LEXICON_FILE_NAME, LEXICON_FILE_NAME, PolarityScores, VaderSentiment};

/// A reward `r(x, y)` for a finished response `y` to a prompt `x`.
///
/// Implementations are deterministic: the same inputs give the same reward.
pub trait RewardModel: Send + Sync {
    /// Short identifier of the reward, for logs and metadata (e.g. `"length"`).
    fn name(&self) -> &str;

    /// Settings that determine the reward (kind, parameters, lexicon
    /// fingerprints), recorded in rollout metadata so that datasets scored by
    /// different rewards are not mixed.
    fn settings(&self) -> serde_json::Value;

    /// Scores `response`, the completion generated for `prompt`.
    ///
    /// `response_token_count` is the number of response tokens, excluding a
    /// final EOS or stop token.
    fn score(&self, prompt: &str, response: &str, response_token_count: usize) -> f32;
}
