//! Sampling from the base model: logit filtering (temperature, top-k, top-p) and
//! batched generation of several responses to one prompt with a shared KV cache.
//!
//! Per-row sampling runs on the host in f32 (accumulations in f64) on logits read
//! back from the model, which is fast enough for a vocabulary of 49152 tokens.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use serde::{Deserialize, Serialize};
use tiller_data::FinishReason;
use tiller_model::{Llama, ModelError};

use crate::base_decoder::{BaseDecoder, tensor_rows};
use crate::error::DecodeError;

/// Settings of base-model sampling.
///
/// Filters apply in the order temperature, top-k, top-p, so top-p measures mass
/// within the top-k tokens after temperature scaling. A temperature of 0 or a
/// top-p of 0 selects greedy decoding (argmax, ties to the lowest id).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SamplingConfig {
    /// Divides the logits before sampling; 0 means greedy. Must not be negative.
    pub temperature: f32,
    /// Keeps only the `top_k` most likely tokens; 0 keeps all.
    pub top_k: usize,
    /// Keeps the smallest set of most likely tokens whose probability mass is at
    /// least `top_p` (never fewer than one token); 1 keeps all, 0 means greedy.
    pub top_p: f32,
    /// Maximum number of response tokens, including a final EOS or stop token.
    pub max_new_tokens: usize,
    /// Token ids other than the model's EOS that end a response.
    pub stop_ids: Vec<u32>,
    /// Seed of the random number generator, see [`SamplingConfig::rng`].
    pub seed: u64,
}

impl SamplingConfig {
    /// Creates settings that sample from the base distribution itself:
    /// temperature 1, no top-k or top-p filtering, no stop ids, seed 0.
    pub fn new(max_new_tokens: usize) -> Self {
        Self {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            max_new_tokens,
            stop_ids: Vec::new(),
            seed: 0,
        }
    }

    /// Checks the temperature and top-p ranges.
    ///
    /// # Errors
    ///
    /// [`DecodeError::InvalidTemperature`] for a negative or NaN temperature
    /// (infinity is allowed and gives a uniform choice among the filtered tokens),
    /// and [`DecodeError::InvalidTopP`] for a top-p outside [0, 1] or NaN.
    pub fn validate(&self) -> Result<(), DecodeError> {
        if self.temperature.is_nan() || self.temperature < 0.0 {
            return Err(DecodeError::InvalidTemperature {
                value: self.temperature,
            });
        }
        if !(0.0..=1.0).contains(&self.top_p) {
            return Err(DecodeError::InvalidTopP { value: self.top_p });
        }
        Ok(())
    }

    /// Returns true when these settings select the argmax token.
    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0 || self.top_p == 0.0
    }

    /// Returns true when samples are draws from the unmodified base distribution
    /// (temperature 1, no top-k, top-p 1). Only such samples are on-policy for
    /// the base model.
    pub fn is_unfiltered(&self) -> bool {
        self.temperature == 1.0 && self.top_k == 0 && self.top_p >= 1.0
    }

    /// Creates the random number generator seeded with [`SamplingConfig::seed`].
    pub fn rng(&self) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(self.seed)
    }
}

/// One sampled response.
#[derive(Clone, Debug, PartialEq)]
pub struct Generation {
    /// Response token ids. An EOS or stop token that ended the response is the last id.
    pub token_ids: Vec<u32>,
    /// `log p(token_ids[t] | prompt, token_ids[..t])` under the base model at
    /// temperature 1 without filtering, one per token.
    pub logprobs: Vec<f32>,
    /// Per response position, the `topk` most likely ids of that same unfiltered
    /// distribution, most likely first. Empty when `topk` is 0.
    pub topk_token_ids: Vec<Vec<u32>>,
    /// The log-probabilities of `topk_token_ids`.
    pub topk_logprobs: Vec<Vec<f32>>,
    /// The reason the response ended.
    pub finish_reason: FinishReason,
}

impl Generation {
    fn empty() -> Self {
        Self {
            token_ids: Vec::new(),
            logprobs: Vec::new(),
            topk_token_ids: Vec::new(),
            topk_logprobs: Vec::new(),
            finish_reason: FinishReason::Length,
        }
    }
}

/// Samples `n` responses to one prompt.
///
/// The prompt is prefilled once with batch 1, its cache is repeated to `n` rows,
/// and all rows then decode one token per step. A row that emits the model's EOS
/// (`finish_reason` eos) or one of `config.stop_ids` (stop) leaves the batch; the
/// others end after `config.max_new_tokens` tokens (length). Rows draw from `rng`
/// in row order at every step, so the same seed gives the same responses.
/// `config.seed` is not read here: seed `rng` with [`SamplingConfig::rng`].
///
/// # Errors
///
/// [`DecodeError::InvalidTemperature`] or [`DecodeError::InvalidTopP`] for invalid
/// settings, [`DecodeError::ZeroSamples`], [`DecodeError::EmptyPrompt`],
/// [`DecodeError::Model`] for a prompt plus response longer than the model's
/// context or an id outside its vocabulary, and [`DecodeError::NoFiniteLogits`]
/// when the model outputs no finite logit.
pub fn generate(
    model: &Llama,
    prompt_ids: &[u32],
    n: usize,
    config: &SamplingConfig,
    topk: usize,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<Generation>, DecodeError> {
    config.validate()?;
    if n == 0 {
        return Err(DecodeError::ZeroSamples);
    }
    if prompt_ids.is_empty() {
        return Err(DecodeError::EmptyPrompt);
    }
    // The last sampled token is never fed back, so the context needs at most
    // prompt + max_new_tokens - 1 positions.
    let needed = prompt_ids.len() + config.max_new_tokens.saturating_sub(1);
    let max_seq_len = model.config().max_seq_len;
    if needed > max_seq_len {
        return Err(ModelError::ContextOverflow {
            needed,
            max_seq_len,
        }
        .into());
    }
    let mut generations = vec![Generation::empty(); n];
    if config.max_new_tokens == 0 {
        return Ok(generations);
    }

    let eos = model.config().eos_id;
    let mut decoder = BaseDecoder::new(model);
    let mut logits = tensor_rows(decoder.prefill_logits(prompt_ids, n)?, "logits")?;
    // `active[row]` is the generation that decoder row `row` extends.
    let mut active: Vec<usize> = (0..n).collect();
    for step in 0..config.max_new_tokens {
        let mut kept_rows = Vec::with_capacity(active.len());
        let mut next_tokens = Vec::with_capacity(active.len());
        for (row, &index) in active.iter().enumerate() {
            let log_probs = log_softmax(&logits[row]);
            let token =
                sample_token(&log_probs, config, rng).ok_or(DecodeError::NoFiniteLogits { row })?;
            let generation = &mut generations[index];
            generation.token_ids.push(token);
            generation.logprobs.push(log_probs[token as usize]);
            if topk > 0 {
                let (ids, values) = top_k(&log_probs, topk);
                generation.topk_token_ids.push(ids);
                generation.topk_logprobs.push(values);
            }
            if token == eos {
                generation.finish_reason = FinishReason::Eos;
            } else if config.stop_ids.contains(&token) {
                generation.finish_reason = FinishReason::Stop;
            } else {
                kept_rows.push(row);
                next_tokens.push(token);
            }
        }
        if kept_rows.is_empty() || step + 1 == config.max_new_tokens {
            break;
        }
        if kept_rows.len() < active.len() {
            decoder.select_rows(&kept_rows)?;
            active = kept_rows.iter().map(|&row| active[row]).collect();
        }
        logits = tensor_rows(decoder.step_logits(&next_tokens)?, "logits")?;
    }
    Ok(generations)
}

/// Computes `log_softmax` of one logit row.
///
/// NaN logits get probability 0. When some logits are `+inf`, they share the
/// whole mass equally. When no logit is finite or `+inf`, every output is `-inf`.
pub fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits
        .iter()
        .copied()
        .filter(|x| !x.is_nan())
        .fold(f32::NEG_INFINITY, f32::max);
    if max == f32::INFINITY {
        let count = logits.iter().filter(|&&x| x == f32::INFINITY).count();
        let share = -(count as f32).ln();
        return logits
            .iter()
            .map(|&x| {
                if x == f32::INFINITY {
                    share
                } else {
                    f32::NEG_INFINITY
                }
            })
            .collect();
    }
    if max == f32::NEG_INFINITY {
        return vec![f32::NEG_INFINITY; logits.len()];
    }
    let sum: f64 = logits
        .iter()
        .filter(|x| !x.is_nan())
        .map(|&x| f64::from(x - max).exp())
        .sum();
    let log_sum = sum.ln() as f32;
    logits
        .iter()
        .map(|&x| {
            if x.is_nan() {
                f32::NEG_INFINITY
            } else {
                x - max - log_sum
            }
        })
        .collect()
}

/// Returns the `k` largest entries of `values` (ids and values), largest first,
/// ties to the lower id. NaN entries rank below every number.
pub fn top_k(values: &[f32], k: usize) -> (Vec<u32>, Vec<f32>) {
    let mut ids: Vec<u32> = (0..values.len() as u32).collect();
    let k = k.min(ids.len());
    partial_sort_descending(&mut ids, values, k);
    ids.truncate(k);
    let top = ids.iter().map(|&id| values[id as usize]).collect();
    (ids, top)
}

/// Chooses the next token from one row of base log-probabilities (or logits,
/// which give the same result) under `config`'s filters.
///
/// Returns `None` when no entry is finite. Greedy settings return the argmax
/// without drawing from `rng`; other settings draw one `f64` from `rng`.
pub fn sample_token(log_probs: &[f32], config: &SamplingConfig, rng: &mut impl Rng) -> Option<u32> {
    let max = log_probs
        .iter()
        .copied()
        .filter(|x| x.is_finite())
        .fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return None;
    }
    if config.is_greedy() {
        return log_probs.iter().position(|&x| x == max).map(|id| id as u32);
    }
    let candidates = filtered_candidates(log_probs, max, config);
    let total: f64 = candidates.iter().map(|&(_, weight)| weight).sum();
    let mut threshold = rng.random::<f64>() * total;
    for &(id, weight) in &candidates {
        if threshold < weight {
            return Some(id);
        }
        threshold -= weight;
    }
    // Rounding left a sliver past the last weight: take the last positive one.
    candidates
        .iter()
        .rev()
        .find(|&&(_, weight)| weight > 0.0)
        .map(|&(id, _)| id)
}

/// Returns the tokens that survive the temperature, top-k and top-p filters with
/// their unnormalised probabilities `exp((x - max) / temperature)`, in id order
/// when no filter ranks them and by descending value otherwise.
///
/// `max` is the largest finite entry, so the best token has weight 1 and no
/// weight overflows or turns NaN, whatever the temperature. Entries that are not
/// finite and weights that underflow to 0 are dropped.
fn filtered_candidates(values: &[f32], max: f32, config: &SamplingConfig) -> Vec<(u32, f64)> {
    let temperature = f64::from(config.temperature);
    let mut candidates: Vec<(u32, f64)> = values
        .iter()
        .enumerate()
        .filter(|(_, x)| x.is_finite())
        .map(|(id, &x)| (id as u32, (f64::from(x - max) / temperature).exp()))
        .filter(|&(_, weight)| weight > 0.0)
        .collect();
    if config.top_k > 0 && config.top_k < candidates.len() {
        partial_sort_descending(&mut candidates, values, config.top_k);
        candidates.truncate(config.top_k);
    }
    if config.top_p < 1.0 {
        nucleus(&mut candidates, values, f64::from(config.top_p));
    }
    candidates
}

/// Keeps the smallest prefix of `candidates`, by descending value, whose share of
/// their total weight is at least `top_p`, and never fewer than one candidate.
///
/// Sorting all 49152 tokens each step would dominate sampling, so candidates are
/// ranked in growing blocks (64, 256, …) until the mass is reached.
fn nucleus(candidates: &mut Vec<(u32, f64)>, values: &[f32], top_p: f64) {
    let total: f64 = candidates.iter().map(|&(_, weight)| weight).sum();
    let target = top_p * total;
    let mut ranked = 64.min(candidates.len());
    loop {
        partial_sort_descending(candidates, values, ranked);
        let mut mass = 0.0;
        for position in 0..ranked {
            mass += candidates[position].1;
            if mass >= target {
                candidates.truncate(position + 1);
                return;
            }
        }
        if ranked == candidates.len() {
            // Rounding kept the mass just below the target: keep everything.
            return;
        }
        ranked = (ranked * 4).min(candidates.len());
    }
}

/// Moves the `count` entries whose ids have the largest values (ties to the lower
/// id, NaN last) to the front of `entries`, sorted in that order. The rest stay
/// unordered.
fn partial_sort_descending<T: Copy + HasId>(entries: &mut [T], values: &[f32], count: usize) {
    let key = |entry: &T| {
        let value = values[entry.id() as usize];
        if value.is_nan() {
            f32::NEG_INFINITY
        } else {
            value
        }
    };
    let rank = |a: &T, b: &T| key(b).total_cmp(&key(a)).then(a.id().cmp(&b.id()));
    if count == 0 {
        return;
    }
    if count < entries.len() {
        entries.select_nth_unstable_by(count - 1, rank);
    }
    entries[..count].sort_unstable_by(rank);
}

/// A token id, alone or with its sampling weight.
trait HasId {
    fn id(&self) -> u32;
}

impl HasId for u32 {
    fn id(&self) -> u32 {
        *self
    }
}

impl HasId for (u32, f64) {
    fn id(&self) -> u32 {
        self.0
    }
}
