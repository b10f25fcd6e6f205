//! Training objectives: which scorer outputs are read, what they are
//! regressed onto, and the weighted squared-error loss.
//!
//! Notation: a response has `T` tokens `y_1 … y_T`, state `s_t` is the prompt
//! plus `y_1 … y_t`, and `r` is the reward (standardised when reward
//! normalisation is on).
//!
//! - `fudge`, scalar head: `V(s_t)` for `t = 0..=T`, target `r`.
//! - `fudge`, vocabulary head: `Q(s_{t-1}, y_t) = V(s_t)` for `t = 1..=T`,
//!   target `r`.
//! - `cdq` (vocabulary head): `Q(s_t, y_{t+1})` for `t = 0..T`, target `r`
//!   when `t + 1 = T`, else `Σ_{z ∈ K} p(z|s_{t+1}) · sg(Q(s_{t+1}, z))` over
//!   the cached top-k `K` at response position `t + 1`, completed as set by
//!   [`TopkCompletion`].
//!
//! # Loss averaging
//!
//! The loss is the squared error averaged over the valid positions of each
//! response, then averaged over the responses of the optimizer step, all
//! micro-batches together. So a response with `n_b` positions gives each of
//! them the weight `1 / (n_b · B)`, where `B` counts the responses of the
//! step that have at least one position. This differs from a plain sum over
//! positions, the form in which controlled-decoding losses are usually
//! written, which weights long responses more.

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use tiller_model::{RewardNormalization, Scorer, ScorerHead};

use crate::Objective;
use crate::data::Example;

/// Treatment of the base-model mass outside the cached top-k in the `cdq`
/// bootstrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopkCompletion {
    /// Add `1[y_{t+2} ∉ K] · sg(Q(s_{t+1}, y_{t+2}))`. Because `y_{t+2}` was
    /// drawn from `p(·|s_{t+1})`, this is an unbiased single-sample estimate
    /// of the missing term `Σ_{z ∉ K} p(z|s_{t+1}) Q(s_{t+1}, z)`. Valid only
    /// for rollouts sampled from the base model itself (temperature 1, no
    /// top-k or top-p).
    SampledToken,
    /// Renormalise the top-k probabilities to sum to 1. Biased whenever the
    /// top-k misses mass, but usable for any rollouts.
    Renormalize,
}

/// Returns the number of positions an example contributes to `objective`:
/// `T + 1` for `fudge` with the scalar head, `T` otherwise.
pub fn positions_of(example: &Example, objective: Objective, head: ScorerHead) -> usize {
    let response_len = example.response_len();
    match (objective, head) {
        (Objective::Fudge, ScorerHead::Scalar) => response_len + 1,
        _ => response_len,
    }
}

/// Index data of one micro-batch: where the scorer is read, at which token
/// ids, with which loss weights and targets.
///
/// "Rows" index the flattened hidden states `[batch · len, width]`, so row
/// `b · len + i` is the state that ends at token `i` of example `b`.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchPlan {
    /// Examples in the micro-batch.
    pub batch: usize,
    /// Padded length (longest example).
    pub len: usize,
    /// Token ids `[batch · len]`, right-padded with 0.
    pub tokens: Vec<i64>,
    /// Number of real (non-padding) tokens.
    pub real_tokens: usize,
    /// Row of each prediction `[N]`.
    pub pred_rows: Vec<i64>,
    /// Token id of each prediction `[N]` (the `z` of `Q(s, z)`; 0 for the
    /// scalar head).
    pub pred_ids: Vec<i64>,
    /// Loss weight of each prediction `[N]`.
    pub weights: Vec<f32>,
    /// 1 where the target is the reward, 0 where it is bootstrapped `[N]`.
    pub terminal: Vec<f32>,
    /// Reward of the prediction's response, in training units `[N]`.
    pub rewards: Vec<f32>,
    /// Bootstrap slots per prediction (`K + 1` for `cdq`, 0 for `fudge`).
    pub bootstrap_width: usize,
    /// Row of each bootstrap slot `[N · bootstrap_width]`.
    pub next_rows: Vec<i64>,
    /// Token id of each bootstrap slot `[N · bootstrap_width]`.
    pub next_ids: Vec<i64>,
    /// Weight of each bootstrap slot `[N · bootstrap_width]`; 0 for padding
    /// and for terminal predictions.
    pub next_weights: Vec<f32>,
    /// Sum over bootstrapped predictions of `1 - Σ_{z ∈ K} p(z|s_{t+1})`.
    pub missing_mass_sum: f64,
    /// Number of bootstrapped predictions.
    pub bootstrap_count: usize,
}

impl BatchPlan {
    /// Returns the number of predictions `N`.
    pub fn predictions(&self) -> usize {
        self.pred_rows.len()
    }
}

/// Builds the [`BatchPlan`] of a micro-batch.
///
/// `step_sequences` is `B` of the module documentation: the number of
/// responses with at least one position in the whole optimizer step (see
/// [`positions_of`]). `cdq` needs the cached top-k on every example with a
/// bootstrapped position; the loader checks this.
pub fn plan_batch(
    examples: &[&Example],
    objective: Objective,
    head: ScorerHead,
    completion: TopkCompletion,
    normalization: &RewardNormalization,
    step_sequences: usize,
) -> BatchPlan {
    let len = examples
        .iter()
        .map(|e| e.tokens.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let mut tokens = vec![0i64; examples.len() * len];
    let mut plan = BatchPlan {
        batch: examples.len(),
        len,
        tokens: Vec::new(),
        real_tokens: 0,
        pred_rows: Vec::new(),
        pred_ids: Vec::new(),
        weights: Vec::new(),
        terminal: Vec::new(),
        rewards: Vec::new(),
        bootstrap_width: 0,
        next_rows: Vec::new(),
        next_ids: Vec::new(),
        next_weights: Vec::new(),
        missing_mass_sum: 0.0,
        bootstrap_count: 0,
    };
    if objective == Objective::Cdq {
        let widest = examples
            .iter()
            .filter_map(|e| e.topk_ids.as_ref())
            .flat_map(|lists| lists.iter().map(Vec::len))
            .max()
            .unwrap_or(0);
        plan.bootstrap_width = widest + 1;
    }

    for (b, example) in examples.iter().enumerate() {
        for (i, &id) in example.tokens.iter().enumerate() {
            tokens[b * len + i] = i64::from(id);
        }
        plan.real_tokens += example.tokens.len();
        let count = positions_of(example, objective, head);
        if count == 0 {
            continue;
        }
        let weight = 1.0 / (count as f64 * step_sequences.max(1) as f64);
        let reward = normalization.normalize(f64::from(example.reward)) as f32;
        let base = b * len;
        let prompt_len = example.prompt_len;
        let response_len = example.response_len();
        match (objective, head) {
            (Objective::Fudge, ScorerHead::Scalar) => {
                // V(s_t) sits at the last token of s_t, index P - 1 + t.
                for t in 0..=response_len {
                    plan.push_terminal(base + prompt_len - 1 + t, 0, weight, reward);
                }
            }
            (Objective::Fudge, ScorerHead::Vocab) => {
                // V(s_t) = Q(s_{t-1}, y_t): index P - 2 + t, token y_t at P - 1 + t.
                for t in 1..=response_len {
                    let id = example.tokens[prompt_len - 1 + t];
                    plan.push_terminal(base + prompt_len - 2 + t, id, weight, reward);
                }
            }
            (Objective::Cdq, _) => {
                for t in 0..response_len {
                    let row = base + prompt_len - 1 + t;
                    let id = example.tokens[prompt_len + t];
                    if t + 1 == response_len {
                        plan.push_terminal(row, id, weight, reward);
                    } else {
                        plan.push_bootstrap(example, t, row, id, weight, reward, completion);
                    }
                }
            }
        }
    }
    plan.tokens = tokens;
    plan
}

impl BatchPlan {
    fn push_terminal(&mut self, row: usize, id: u32, weight: f64, reward: f32) {
        self.pred_rows.push(row as i64);
        self.pred_ids.push(i64::from(id));
        self.weights.push(weight as f32);
        self.terminal.push(1.0);
        self.rewards.push(reward);
        for _ in 0..self.bootstrap_width {
            self.next_rows.push(row as i64);
            self.next_ids.push(0);
            self.next_weights.push(0.0);
        }
    }

    /// Adds the prediction `Q(s_t, y_{t+1})` at `row` with the bootstrap
    /// slots of `s_{t+1}` (row + 1).
    #[allow(clippy::too_many_arguments)]
    fn push_bootstrap(
        &mut self,
        example: &Example,
        t: usize,
        row: usize,
        id: u32,
        weight: f64,
        reward: f32,
        completion: TopkCompletion,
    ) {
        self.pred_rows.push(row as i64);
        self.pred_ids.push(i64::from(id));
        self.weights.push(weight as f32);
        self.terminal.push(0.0);
        self.rewards.push(reward);

        let next_row = row as i64 + 1;
        let empty: Vec<u32> = Vec::new();
        let empty_logprobs: Vec<f32> = Vec::new();
        // The top-k at response position t + 1 is p(· | s_{t+1}).
        let ids = example
            .topk_ids
            .as_ref()
            .and_then(|lists| lists.get(t + 1))
            .unwrap_or(&empty);
        let logprobs = example
            .topk_logprobs
            .as_ref()
            .and_then(|lists| lists.get(t + 1))
            .unwrap_or(&empty_logprobs);
        let probs: Vec<f64> = logprobs.iter().map(|&lp| f64::from(lp).exp()).collect();
        let mass: f64 = probs.iter().sum();
        self.missing_mass_sum += (1.0 - mass).max(0.0);
        self.bootstrap_count += 1;

        let scale = match completion {
            TopkCompletion::SampledToken => 1.0,
            TopkCompletion::Renormalize if mass > 0.0 => 1.0 / mass,
            TopkCompletion::Renormalize => 0.0,
        };
        for (&z, &p) in ids.iter().zip(&probs) {
            self.next_rows.push(next_row);
            self.next_ids.push(i64::from(z));
            self.next_weights.push((p * scale) as f32);
        }
        // The sampled next token y_{t+2} completes the top-k when it fell
        // outside it; it exists because t + 1 < T.
        let sampled = example.tokens[example.prompt_len + t + 1];
        let outside = !ids.contains(&sampled);
        self.next_rows.push(next_row);
        self.next_ids.push(i64::from(sampled));
        self.next_weights
            .push(if completion == TopkCompletion::SampledToken && outside {
                1.0
            } else {
                0.0
            });
        for _ in ids.len() + 1..self.bootstrap_width {
            self.next_rows.push(next_row);
            self.next_ids.push(0);
            self.next_weights.push(0.0);
        }
    }
}

/// Weighted squared error `Σ_n w_n · (pred_n − target_n)²`, shape `[1]`.
/// With the weights of [`plan_batch`] this is the per-response mean, averaged
/// over the step's responses.
pub fn weighted_squared_error(pred: Tensor<1>, target: Tensor<1>, weights: Tensor<1>) -> Tensor<1> {
    let error = pred - target;
    (error.clone() * error * weights).sum()
}

/// CD-Q target per prediction:
/// `terminal · r + (1 − terminal) · Σ_k next_weight_k · next_q_k`.
///
/// `next_q` and `next_weights` are `[N, K + 1]`, the others `[N]`; `next_q`
/// must carry no gradient (stop-gradient or a target network).
pub fn cdq_target(
    next_q: Tensor<2>,
    next_weights: Tensor<2>,
    terminal: Tensor<1>,
    rewards: Tensor<1>,
) -> Tensor<1> {
    let [count, _] = next_q.dims();
    let bootstrap = (next_q * next_weights).sum_dim(1).reshape([count]);
    let continuing = terminal.clone().neg().add_scalar(1.0);
    terminal * rewards + continuing * bootstrap
}

/// Tensors of a [`BatchPlan`] on one device.
pub struct PlanTensors {
    /// `[batch, len]` token ids.
    pub tokens: Tensor<2, Int>,
    /// `[N]`.
    pub pred_rows: Tensor<1, Int>,
    /// `[N]`.
    pub pred_ids: Tensor<1, Int>,
    /// `[N]`.
    pub weights: Tensor<1>,
    /// `[N]`.
    pub terminal: Tensor<1>,
    /// `[N]`.
    pub rewards: Tensor<1>,
    /// `[N · (K + 1)]`, present for `cdq`.
    pub next_rows: Option<Tensor<1, Int>>,
    /// `[N · (K + 1)]`, present for `cdq`.
    pub next_ids: Option<Tensor<1, Int>>,
    /// `[N, K + 1]`, present for `cdq`.
    pub next_weights: Option<Tensor<2>>,
}

impl BatchPlan {
    /// Copies the plan to `device`.
    pub fn to_tensors(&self, device: &Device) -> PlanTensors {
        let n = self.predictions();
        let ints = |values: &[i64]| {
            Tensor::<1, Int>::from_data(TensorData::new(values.to_vec(), [values.len()]), device)
        };
        let floats = |values: &[f32]| {
            Tensor::<1>::from_data(TensorData::new(values.to_vec(), [values.len()]), device)
        };
        let bootstrap = self.bootstrap_width > 0;
        PlanTensors {
            tokens: Tensor::<2, Int>::from_data(
                TensorData::new(self.tokens.clone(), [self.batch, self.len]),
                device,
            ),
            pred_rows: ints(&self.pred_rows),
            pred_ids: ints(&self.pred_ids),
            weights: floats(&self.weights),
            terminal: floats(&self.terminal),
            rewards: floats(&self.rewards),
            next_rows: bootstrap.then(|| ints(&self.next_rows)),
            next_ids: bootstrap.then(|| ints(&self.next_ids)),
            next_weights: bootstrap.then(|| {
                Tensor::<2>::from_data(
                    TensorData::new(self.next_weights.clone(), [n, self.bootstrap_width]),
                    device,
                )
            }),
        }
    }
}

/// Computes the loss of one micro-batch, `[1]`, on the device of `model`.
///
/// For `cdq`, the bootstrap reads `target` when given (a Polyak target
/// network on a device without autodiff) and otherwise a gradient-free copy
/// of `model` on the same hidden states. The plan must have at least one
/// prediction.
pub fn micro_batch_loss(model: &Scorer, target: Option<&Scorer>, plan: &BatchPlan) -> Tensor<1> {
    let device = model.device();
    let tensors = plan.to_tensors(&device);
    let width = model.config().width;
    let rows = plan.batch * plan.len;
    let hidden = model.hidden(tensors.tokens.clone()).reshape([rows, width]);
    let pred = model.head_at(hidden.clone(), tensors.pred_rows, tensors.pred_ids);
    let target_values = match (tensors.next_rows, tensors.next_ids, tensors.next_weights) {
        (Some(next_rows), Some(next_ids), Some(next_weights)) => {
            let next_q = match target {
                Some(target) => {
                    let target_device = target.device();
                    let tokens = tensors.tokens.inner().to_device(&target_device);
                    let target_hidden = target.hidden(tokens).reshape([rows, width]);
                    target.head_at(
                        target_hidden,
                        next_rows.inner().to_device(&target_device),
                        next_ids.inner().to_device(&target_device),
                    )
                }
                None => model
                    .valid()
                    .head_at(hidden.inner(), next_rows.inner(), next_ids.inner()),
            };
            let next_q = next_q
                .reshape([plan.predictions(), plan.bootstrap_width])
                .to_device(&device);
            cdq_target(next_q, next_weights, tensors.terminal, tensors.rewards)
        }
        _ => tensors.rewards,
    };
    weighted_squared_error(pred, target_values, tensors.weights)
}

#[cfg(test)]
mod tests;
