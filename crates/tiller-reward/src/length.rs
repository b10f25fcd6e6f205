use crate::{RewardError, RewardModel};

/// Response-length reward `r = log(max(T, 1) / T_max)` (natural log).
///
/// `T` is the response length in tokens and `T_max` the configured maximum,
/// as in the length reward of Mudgal et al. (2024), "Controlled Decoding from
/// Language Models". The reward is 0 at `T = T_max` and negative below it.
///
/// `log(0)` is `-inf`, so an empty response (`T = 0`) is scored as if it had
/// one token, `log(1 / T_max)`: the lowest reward and still finite, because
/// the reward column of a rollout file must be finite. A response
/// longer than `T_max` is not clamped and scores above 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LengthReward {
    max_tokens: usize,
}

impl LengthReward {
    /// Creates the reward for responses of at most `max_tokens` tokens.
    ///
    /// Returns [`RewardError::InvalidMaxTokens`] when `max_tokens` is 0.
    pub fn new(max_tokens: usize) -> Result<Self, RewardError> {
        if max_tokens == 0 {
            return Err(RewardError::InvalidMaxTokens { max_tokens });
        }
        Ok(Self { max_tokens })
    }

    /// Maximum response length `T_max`, in tokens.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }
}

impl RewardModel for LengthReward {
    fn name(&self) -> &str {
        "length"
    }

    fn settings(&self) -> serde_json::Value {
        serde_json::json!({
            "kind": "length",
            "max_tokens": self.max_tokens,
            "formula": "ln(max(T, 1) / max_tokens)",
        })
    }

    fn score(&self, _prompt: &str, _response: &str, response_token_count: usize) -> f32 {
        // Computed in f64 so that the ratio of two large counts keeps its
        // precision before the cast.
        let tokens = response_token_count.max(1) as f64;
        (tokens / self.max_tokens as f64).ln() as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_rejects_zero_max() {
        let error = LengthReward::new(0).unwrap_err();
        assert!(matches!(
            error,
            RewardError::InvalidMaxTokens { max_tokens: 0 }
        ));
        assert!(error.to_string().contains("at least 1"), "{error}");
    }

    #[test]
    fn length_full_response_scores_zero() {
        let reward = LengthReward::new(64).unwrap();
        assert_eq!(reward.score("p", "r", 64), 0.0);
    }

    #[test]
    fn length_half_response() {
        // ln(32 / 64) = -ln 2 = -0.693147...
        let reward = LengthReward::new(64).unwrap();
        let score = reward.score("p", "r", 32);
        assert!((score - (-std::f32::consts::LN_2)).abs() < 1e-6, "{score}");
    }

    #[test]
    fn length_empty_counts_as_one() {
        // T = 0 is clamped to 1: ln(1 / 100) = -ln 100 = -4.605170...
        let reward = LengthReward::new(100).unwrap();
        let empty = reward.score("p", "", 0);
        let one_token = reward.score("p", "x", 1);
        assert!((empty - (-4.605_170_2)).abs() < 1e-5, "{empty}");
        assert_eq!(empty, one_token);
        assert!(empty.is_finite());
    }

    #[test]
    fn length_over_max_is_positive() {
        // ln(20 / 10) = ln 2.
        let reward = LengthReward::new(10).unwrap();
        let score = reward.score("p", "r", 20);
        assert!((score - std::f32::consts::LN_2).abs() < 1e-6, "{score}");
    }

    #[test]
    fn length_max_one_scores_zero_for_empty() {
        // T_max = 1: ln(max(0, 1) / 1) = 0.
        let reward = LengthReward::new(1).unwrap();
        assert_eq!(reward.score("p", "", 0), 0.0);
    }

    #[test]
    fn length_ignores_texts() {
        let reward = LengthReward::new(8).unwrap();
        assert_eq!(reward.score("a", "b", 4), reward.score("c", "dddd", 4));
    }

    #[test]
    fn length_settings_and_name() {
        let reward: Box<dyn RewardModel> = Box::new(LengthReward::new(48).unwrap());
        assert_eq!(reward.name(), "length");
        let settings = reward.settings();
        assert_eq!(settings["kind"], "length");
        assert_eq!(settings["max_tokens"], 48);
    }
}
