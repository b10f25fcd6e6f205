//! Training configuration: the `[train]` section of a recipe.

use serde::{Deserialize, Serialize};
use tiller_model::{ScorerConfig, ScorerHead};

use crate::TrainError;

/// Training objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// Monte-Carlo regression: every state's value is regressed onto the
    /// final reward of its response (FUDGE-style).
    #[default]
    Fudge,
    /// CD-Q: `Q(s_t, y_{t+1})` is regressed onto the reward at the last
    /// transition and onto `Σ_z p(z|s_{t+1}) · Q(s_{t+1}, z)` elsewhere, from
    /// the cached base-model top-k. Needs the vocabulary head.
    Cdq,
}

impl Objective {
    /// Returns the name used in configs and manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            Objective::Fudge => "fudge",
            Objective::Cdq => "cdq",
        }
    }
}

/// Hyperparameters of a training run.
///
/// Every field has a default, so an empty `[train]` section is valid. One
/// optimizer step consumes `batch_size · grad_accum` responses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Training objective, `fudge` or `cdq`. Default `fudge`.
    pub objective: Objective,
    /// Scorer output head, `scalar` or `vocab`; `cdq` needs `vocab`.
    /// Default `scalar`.
    pub head: ScorerHead,
    /// Number of transformer blocks. Default 2.
    pub layers: usize,
    /// Model width. Default 128.
    pub width: usize,
    /// Attention heads; must divide `width`. Default 4.
    pub heads: usize,
    /// Maximum prompt + response length the scorer reads, in tokens. Longer
    /// prompts lose their first tokens, and a response of `max_len` tokens or
    /// more is an error. Default 160.
    pub max_len: usize,
    /// Scorer vocabulary size. Default: the largest id in `tokenizer.json`
    /// plus one, or the largest id in the data plus one if that is larger.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vocab_size: Option<usize>,
    /// Peak learning rate of AdamW. Default 3e-4.
    pub lr: f64,
    /// Learning rate at the end of the cosine decay, as a fraction of `lr`.
    /// Default 0.1.
    pub min_lr_ratio: f64,
    /// Optimizer steps of linear warmup from 0 to `lr`. Default 20.
    pub warmup_steps: usize,
    /// Total optimizer steps. Default: derived from `epochs`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<usize>,
    /// Passes over the training split, used when `steps` is unset. Default 3.
    pub epochs: usize,
    /// Responses per micro-batch (one forward/backward pass). Default 16.
    pub batch_size: usize,
    /// Micro-batches whose gradients are summed into one optimizer step.
    /// Default 1.
    pub grad_accum: usize,
    /// Maximum global L2 norm of the gradient; larger gradients are scaled
    /// down to it. 0 disables clipping. Default 1.0.
    pub clip_norm: f64,
    /// Decoupled weight decay of AdamW, applied to weight matrices and
    /// embeddings but not to biases or layer norms. Default 0.01.
    pub weight_decay: f64,
    /// AdamW `(β1, β2)`. Default `[0.9, 0.999]`.
    pub betas: [f64; 2],
    /// AdamW ε. Default 1e-8.
    pub epsilon: f64,
    /// Polyak rate of the CD-Q target network, `θ' ← (1-τ)·θ' + τ·θ` after
    /// every step. 1 means no separate target network: the bootstrap reads
    /// the online scorer under stop-gradient. Default 1.0.
    pub tau: f64,
    /// Standardise rewards by the training split's mean and standard
    /// deviation; the manifest records both. Default true.
    pub normalize_rewards: bool,
    /// Fraction of prompts held out for validation, chosen by hashing
    /// `prompt_id`. 0 disables validation. Default 0.1.
    pub validation_fraction: f64,
    /// Salt of the validation split hash. Default `validation`.
    pub split_salt: String,
    /// Optimizer steps between validation passes; 0 validates only at the
    /// end. Default 50.
    pub eval_every: usize,
    /// Optimizer steps between log lines. Default 10.
    pub log_every: usize,
    /// Optimizer steps between checkpoints; 0 checkpoints only at the end.
    /// Default 100.
    pub checkpoint_every: usize,
    /// Checkpoints to keep; older ones are deleted. 0 keeps all. Default 3.
    pub keep_last: usize,
    /// Seed of weight initialisation and data shuffling. Default 0.
    pub seed: u64,
    /// Guidance strength λ written to the exported manifest as the decoding
    /// default. Default 1.0.
    pub default_lambda: f32,
    /// Initialise the scorer's token embedding from the base model's
    /// `token_embd.weight` (kept frozen, projected to `width`) and tie the
    /// vocabulary head to it. Needs the base GGUF (`TrainOptions::base_model`)
    /// and sets the vocabulary size to the table's row count. Checkpoints and
    /// the export then contain the table too: 49152 × 576 f32 is 113 MB for
    /// SmolLM2-135M, twice in a checkpoint when `tau < 1`. Default false.
    #[serde(skip_serializing_if = "is_false")]
    pub base_embeddings: bool,
}

/// Leaves `base_embeddings = false` out of serialised configs, so checkpoints
/// written before the field existed still resume.
fn is_false(value: &bool) -> bool {
    !*value
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            objective: Objective::Fudge,
            head: ScorerHead::Scalar,
            layers: 2,
            width: 128,
            heads: 4,
            max_len: 160,
            vocab_size: None,
            lr: 3e-4,
            min_lr_ratio: 0.1,
            warmup_steps: 20,
            steps: None,
            epochs: 3,
            batch_size: 16,
            grad_accum: 1,
            clip_norm: 1.0,
            weight_decay: 0.01,
            betas: [0.9, 0.999],
            epsilon: 1e-8,
            tau: 1.0,
            normalize_rewards: true,
            validation_fraction: 0.1,
            split_salt: "validation".to_string(),
            eval_every: 50,
            log_every: 10,
            checkpoint_every: 100,
            keep_last: 3,
            seed: 0,
            default_lambda: 1.0,
            base_embeddings: false,
        }
    }
}

impl TrainConfig {
    /// Checks ranges and combinations that serde cannot.
    pub fn validate(&self) -> Result<(), TrainError> {
        let invalid = |field: &'static str, value: String, reason: &str| {
            Err(TrainError::InvalidConfig {
                field,
                value,
                reason: reason.to_string(),
            })
        };

        if self.objective == Objective::Cdq && self.head != ScorerHead::Vocab {
            return invalid(
                "head",
                self.head.as_str().to_string(),
                "the cdq objective needs head = \"vocab\"",
            );
        }

        let positive = [
            ("layers", self.layers),
            ("width", self.width),
            ("heads", self.heads),
            ("max_len", self.max_len),
            ("batch_size", self.batch_size),
            ("grad_accum", self.grad_accum),
        ];
        for (field, value) in positive {
            if value == 0 {
                return invalid(field, value.to_string(), "must be at least 1");
            }
        }

        if self.max_len < 2 {
            return invalid(
                "max_len",
                self.max_len.to_string(),
                "must be at least 2 (one prompt token and one response token)",
            );
        }

        if !self.width.is_multiple_of(self.heads) {
            return invalid(
                "width",
                self.width.to_string(),
                "must be a multiple of heads",
            );
        }

        if self.vocab_size == Some(0) {
            return invalid("vocab_size", "0".to_string(), "must be at least 1");
        }

        if self.steps == Some(0) {
            return invalid("steps", "0".to_string(), "must be at least 1");
        }

        if self.steps.is_none() && self.epochs == 0 {
            return invalid(
                "epochs",
                "0".to_string(),
                "must be at least 1 when steps is unset",
            );
        }

        if !(self.lr.is_finite() && self.lr > 0.0) {
            return invalid("lr", self.lr.to_string(), "must be a positive number");
        }

        if !(0.0..=1.0).contains(&self.min_lr_ratio) {
            return invalid(
                "min_lr_ratio",
                self.min_lr_ratio.to_string(),
                "must lie in [0, 1]",
            );
        }

        if !(self.clip_norm.is_finite() && self.clip_norm >= 0.0) {
            return invalid(
                "clip_norm",
                self.clip_norm.to_string(),
                "must be 0 (off) or a positive number",
            );
        }

        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return invalid(
                "weight_decay",
                self.weight_decay.to_string(),
                "must be 0 or a positive number",
            );
        }

        for (index, beta) in self.betas.iter().enumerate() {
            if !(0.0..1.0).contains(beta) {
                return invalid(
                    if index == 0 { "betas[0]" } else { "betas[1]" },
                    beta.to_string(),
                    "must lie in [0, 1)",
                );
            }
        }

        if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
            return invalid(
                "epsilon",
                self.epsilon.to_string(),
                "must be a positive number",
            );
        }

        if !(self.tau > 0.0 && self.tau <= 1.0) {
            return invalid("tau", self.tau.to_string(), "must lie in (0, 1]");
        }

        if !(0.0..1.0).contains(&self.validation_fraction) {
            return invalid(
                "validation_fraction",
                self.validation_fraction.to_string(),
                "must lie in [0, 1)",
            );
        }

        if !self.default_lambda.is_finite() {
            return invalid(
                "default_lambda",
                self.default_lambda.to_string(),
                "must be a finite number",
            );
        }
        Ok(())
    }

    /// Returns the scorer shape for a vocabulary of `vocab_size` ids, with a
    /// trainable token embedding; [`train`](crate::train) sets
    /// `base_embedding_dim` when `base_embeddings` is on.
    pub fn scorer_config(&self, vocab_size: usize) -> ScorerConfig {
        ScorerConfig {
            vocab_size,
            layers: self.layers,
            width: self.width,
            heads: self.heads,
            max_len: self.max_len,
            head: self.head,
            base_embedding_dim: None,
        }
    }

    /// Returns the number of responses one optimizer step consumes.
    pub fn sequences_per_step(&self) -> usize {
        self.batch_size * self.grad_accum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_section_gives_defaults() {
        let config: TrainConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(config, TrainConfig::default());
        assert!(config.validate().is_ok());
    }

    #[test]
    fn unknown_field_rejected() {
        let err = serde_json::from_str::<TrainConfig>(r#"{"learning_rate": 1.0}"#).unwrap_err();
        assert!(
            err.to_string().contains("unknown field `learning_rate`"),
            "{err}"
        );
    }

    #[test]
    fn cdq_needs_vocab_head() {
        let config = TrainConfig {
            objective: Objective::Cdq,
            ..TrainConfig::default()
        };
        let err = config.validate().unwrap_err();
        assert!(err.to_string().contains("vocab"), "{err}");
    }

    #[test]
    fn width_must_split_into_heads() {
        let config = TrainConfig {
            width: 130,
            ..TrainConfig::default()
        };
        let err = config.validate().unwrap_err();
        assert!(err.to_string().contains("width"), "{err}");
    }

    #[test]
    fn tau_range_checked() {
        for tau in [0.0, 1.5, f64::NAN] {
            let config = TrainConfig {
                tau,
                ..TrainConfig::default()
            };
            assert!(config.validate().is_err(), "tau {tau}");
        }
    }
}
