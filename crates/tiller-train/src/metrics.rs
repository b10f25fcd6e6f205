//! Validation metrics of a scorer on held-out rollouts, in reward units.
//!
//! - `mse`: mean over all states `s_t` of `(V(s_t) − r)²`. The states are
//!   `t = 0..=T` for the scalar head and `t = 1..=T` for the vocabulary head
//!   (where `V(s_t) = Q(s_{t-1}, y_t)`).
//! - `explained_variance`: `1 − Var(r − V) / Var(r)` over the same states.
//! - `prompt_value_correlation`: Pearson correlation over responses between
//!   the prompt-state value `V(s_0)` and `r`. For the vocabulary head,
//!   `V(s_0) = Σ_{z ∈ K} p(z|s_0) Q(s_0, z)` from the cached top-k at
//!   response position 0, completed like the `cdq` target, or `Q(s_0, y_1)`
//!   when there is no cache. Responses with no tokens have no vocabulary-head
//!   value and are skipped.

use burn::tensor::{Int, Tensor, TensorData};
use tiller_model::{RewardNormalization, Scorer, ScorerHead};

use crate::TrainError;
use crate::data::Example;
use crate::objective::TopkCompletion;

/// Validation results.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidationMetrics {
    /// Mean squared error of `V(s_t)` against the reward, over all states.
    pub mse: f64,
    /// `1 − Var(r − V) / Var(r)` over all states; NaN when `Var(r) = 0`.
    pub explained_variance: f64,
    /// Pearson correlation of `V(s_0)` with `r` over responses; NaN with
    /// fewer than 2 responses or a constant side.
    pub prompt_value_correlation: f64,
    /// Number of states scored.
    pub states: usize,
    /// Number of responses scored.
    pub responses: usize,
    /// `V(s_t)` of every state, in reward units, for the histogram.
    pub predictions: Vec<f32>,
}

/// Scores `examples` in chunks of `batch_size` with `model` (which should
/// be on a device without autodiff).
pub fn validate(
    model: &Scorer,
    examples: &[Example],
    completion: TopkCompletion,
    normalization: &RewardNormalization,
    batch_size: usize,
) -> Result<ValidationMetrics, TrainError> {
    let head = model.config().head;
    let mut state_values: Vec<(f64, f64)> = Vec::new();
    let mut prompt_values: Vec<(f64, f64)> = Vec::new();
    for chunk in examples.chunks(batch_size.max(1)) {
        let chunk: Vec<&Example> = chunk
            .iter()
            .filter(|e| head == ScorerHead::Scalar || e.response_len() > 0)
            .collect();
        if chunk.is_empty() {
            continue;
        }
        let query = ValidationQuery::build(&chunk, head, completion);
        let values = query.evaluate(model)?;
        for (value, slot) in values.iter().zip(&query.slots) {
            let reward = f64::from(chunk[slot.example].reward);
            let value = normalization.to_reward(f64::from(*value));
            match slot.kind {
                SlotKind::State => state_values.push((value, reward)),
                SlotKind::Prompt => prompt_values.push((value, reward)),
            }
        }
    }
    Ok(summarise(&state_values, &prompt_values))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotKind {
    /// One `V(s_t)` of the state metrics.
    State,
    /// The prompt value `V(s_0)` of one response.
    Prompt,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    example: usize,
    kind: SlotKind,
}

/// Head reads of one chunk: each value is `Σ_j weight_j · head(row_j, id_j)`
/// over the reads `reads[start..end]` of its slot.
struct ValidationQuery {
    batch: usize,
    len: usize,
    tokens: Vec<i64>,
    rows: Vec<i64>,
    ids: Vec<i64>,
    weights: Vec<f32>,
    /// Range of reads per slot.
    ranges: Vec<(usize, usize)>,
    slots: Vec<Slot>,
}

impl ValidationQuery {
    fn build(chunk: &[&Example], head: ScorerHead, completion: TopkCompletion) -> ValidationQuery {
        let len = chunk.iter().map(|e| e.tokens.len()).max().unwrap_or(1);
        let mut query = ValidationQuery {
            batch: chunk.len(),
            len,
            tokens: vec![0; chunk.len() * len],
            rows: Vec::new(),
            ids: Vec::new(),
            weights: Vec::new(),
            ranges: Vec::new(),
            slots: Vec::new(),
        };
        for (b, example) in chunk.iter().enumerate() {
            for (i, &id) in example.tokens.iter().enumerate() {
                query.tokens[b * len + i] = i64::from(id);
            }
            let base = b * len;
            let prompt_len = example.prompt_len;
            let response_len = example.response_len();
            match head {
                ScorerHead::Scalar => {
                    for t in 0..=response_len {
                        query.push(b, SlotKind::State, &[(base + prompt_len - 1 + t, 0, 1.0)]);
                    }
                    query.push(b, SlotKind::Prompt, &[(base + prompt_len - 1, 0, 1.0)]);
                }
                ScorerHead::Vocab => {
                    for t in 1..=response_len {
                        let id = example.tokens[prompt_len - 1 + t];
                        query.push(b, SlotKind::State, &[(base + prompt_len - 2 + t, id, 1.0)]);
                    }
                    let reads = prompt_value_reads(example, base + prompt_len - 1, completion);
                    query.push(b, SlotKind::Prompt, &reads);
                }
            }
        }
        query
    }

    fn push(&mut self, example: usize, kind: SlotKind, reads: &[(usize, u32, f32)]) {
        let start = self.rows.len();
        for &(row, id, weight) in reads {
            self.rows.push(row as i64);
            self.ids.push(i64::from(id));
            self.weights.push(weight);
        }
        self.ranges.push((start, self.rows.len()));
        self.slots.push(Slot { example, kind });
    }

    fn evaluate(&self, model: &Scorer) -> Result<Vec<f32>, TrainError> {
        let device = model.device();
        let ints = |values: &[i64]| {
            Tensor::<1, Int>::from_data(TensorData::new(values.to_vec(), [values.len()]), &device)
        };
        let tokens = Tensor::<2, Int>::from_data(
            TensorData::new(self.tokens.clone(), [self.batch, self.len]),
            &device,
        );
        let hidden = model
            .hidden(tokens)
            .reshape([self.batch * self.len, model.config().width]);
        let reads = model
            .head_at(hidden, ints(&self.rows), ints(&self.ids))
            .try_into_vec_as::<f32>()
            .map_err(|err| {
                TrainError::Model(tiller_model::ModelError::TensorRead {
                    what: "validation value",
                    message: err.to_string(),
                })
            })?;
        Ok(self
            .ranges
            .iter()
            .map(|&(start, end)| {
                (start..end)
                    .map(|j| reads[j] * self.weights[j])
                    .sum::<f32>()
            })
            .collect())
    }
}

/// Reads whose weighted sum is the vocabulary head's `V(s_0)` at `row`.
fn prompt_value_reads(
    example: &Example,
    row: usize,
    completion: TopkCompletion,
) -> Vec<(usize, u32, f32)> {
    let first = example.tokens[example.prompt_len];
    let (Some(ids), Some(logprobs)) = (
        example.topk_ids.as_ref().and_then(|lists| lists.first()),
        example
            .topk_logprobs
            .as_ref()
            .and_then(|lists| lists.first()),
    ) else {
        return vec![(row, first, 1.0)];
    };
    if ids.is_empty() {
        return vec![(row, first, 1.0)];
    }
    let probs: Vec<f64> = logprobs.iter().map(|&lp| f64::from(lp).exp()).collect();
    let mass: f64 = probs.iter().sum();
    let scale = match completion {
        TopkCompletion::SampledToken => 1.0,
        TopkCompletion::Renormalize => 1.0 / mass,
    };
    let mut reads: Vec<(usize, u32, f32)> = ids
        .iter()
        .zip(&probs)
        .map(|(&z, &p)| (row, z, (p * scale) as f32))
        .collect();
    if completion == TopkCompletion::SampledToken && !ids.contains(&first) {
        reads.push((row, first, 1.0));
    }
    reads
}

fn summarise(states: &[(f64, f64)], prompts: &[(f64, f64)]) -> ValidationMetrics {
    let n = states.len() as f64;
    let mse = states.iter().map(|(v, r)| (v - r).powi(2)).sum::<f64>() / n;
    let residuals: Vec<f64> = states.iter().map(|(v, r)| r - v).collect();
    let rewards: Vec<f64> = states.iter().map(|(_, r)| *r).collect();
    let explained_variance = 1.0 - variance(&residuals) / variance(&rewards);
    let prompt_value_correlation = pearson(prompts);
    ValidationMetrics {
        mse,
        explained_variance,
        prompt_value_correlation,
        states: states.len(),
        responses: prompts.len(),
        predictions: states.iter().map(|(v, _)| *v as f32).collect(),
    }
}

fn variance(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n
}

/// Pearson correlation of the pairs; NaN with fewer than 2 pairs or a
/// constant side.
fn pearson(pairs: &[(f64, f64)]) -> f64 {
    if pairs.len() < 2 {
        return f64::NAN;
    }
    let n = pairs.len() as f64;
    let mean_x = pairs.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = pairs.iter().map(|p| p.1).sum::<f64>() / n;
    let mut cov = 0.0;
    let mut var_x = 0.0;
    let mut var_y = 0.0;
    for (x, y) in pairs {
        cov += (x - mean_x) * (y - mean_y);
        var_x += (x - mean_x).powi(2);
        var_y += (y - mean_y).powi(2);
    }
    if var_x == 0.0 || var_y == 0.0 {
        return f64::NAN;
    }
    cov / (var_x * var_y).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_hand_values() {
        // States (V, r): (1, 2), (3, 2), (2, 4), (4, 4).
        // mse = (1 + 1 + 4 + 0) / 4 = 1.5.
        // r − V = 1, −1, 2, 0: mean 0.5, variance (0.25 + 2.25 + 2.25 + 0.25) / 4 = 1.25.
        // r = 2, 2, 4, 4: variance 1. Explained variance 1 − 1.25 = −0.25.
        let states = [(1.0, 2.0), (3.0, 2.0), (2.0, 4.0), (4.0, 4.0)];
        // Prompts (V0, r): (1, 2), (3, 4): perfectly correlated.
        let prompts = [(1.0, 2.0), (3.0, 4.0)];
        let m = summarise(&states, &prompts);
        assert!((m.mse - 1.5).abs() < 1e-12);
        assert!((m.explained_variance + 0.25).abs() < 1e-12);
        assert!((m.prompt_value_correlation - 1.0).abs() < 1e-12);
        assert_eq!(m.states, 4);
        assert_eq!(m.responses, 2);
    }

    #[test]
    fn correlation_undefined_cases() {
        assert!(pearson(&[(1.0, 1.0)]).is_nan());
        assert!(pearson(&[(1.0, 1.0), (1.0, 2.0)]).is_nan());
        // Anti-correlated: (1, 2), (2, 1).
        assert!((pearson(&[(1.0, 2.0), (2.0, 1.0)]) + 1.0).abs() < 1e-12);
    }

    #[test]
    fn vocab_prompt_value_uses_topk() {
        // Top-k at position 0: {4: 0.5, 5: 0.25}; y_1 = 6 lies outside.
        let example = Example {
            prompt_id: "p".into(),
            sample_index: 0,
            tokens: vec![1, 6, 2],
            prompt_len: 1,
            reward: 1.0,
            topk_ids: Some(vec![vec![4, 5], vec![2]]),
            topk_logprobs: Some(vec![vec![0.5f32.ln(), 0.25f32.ln()], vec![0.0]]),
        };
        let sampled = prompt_value_reads(&example, 0, TopkCompletion::SampledToken);
        assert_eq!(sampled.len(), 3);
        assert_eq!((sampled[2].1, sampled[2].2), (6, 1.0));
        let renormalised = prompt_value_reads(&example, 0, TopkCompletion::Renormalize);
        assert_eq!(renormalised.len(), 2);
        assert!((renormalised[0].2 - 2.0 / 3.0).abs() < 1e-6);
        assert!((renormalised[1].2 - 1.0 / 3.0).abs() < 1e-6);
    }
}
