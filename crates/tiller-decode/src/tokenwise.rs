//! Tokenwise controlled decoding and the interfaces that controlled decoding
//! uses for the base model and the prefix scorers.
//!
//! At state `s_t` the policy is
//! `log π(z|s_t) = log_softmax(log p(z|s_t) + λ·Q(s_t, z))`, optionally with
//! its support cut to the base model's top-k tokens. Its KL to the base model
//! is computed exactly at every visited state and summed over the response,
//! so the mean over sampled responses is an unbiased estimate of the
//! sequence-level `KL(π ‖ p)`.
//!
//! The math works on plain log-prob slices. [`StepDecoder`] and
//! [`PrefixScorer`] are the thin interfaces to the base model and the scorer,
//! so the decoding loops can also run on small enumerable problems.

use rand::Rng;
use serde::{Deserialize, Serialize};
use tiller_data::FinishReason;

use crate::error::DecodeError;

/// A base model that decodes several rows of one prompt in lockstep and
/// returns full next-token log-probabilities at temperature 1 without
/// filtering.
pub trait StepDecoder {
    /// Returns the end-of-sequence token id.
    fn eos_id(&self) -> u32;

    /// Starts `rows` copies of `prompt_ids` and returns the next-token
    /// log-probs after the prompt, shape `[rows][vocab]`.
    fn prefill(&mut self, prompt_ids: &[u32], rows: usize) -> Result<Vec<Vec<f32>>, DecodeError>;

    /// Appends one token per row and returns the next-token log-probs,
    /// shape `[rows][vocab]`.
    fn step(&mut self, tokens: &[u32]) -> Result<Vec<Vec<f32>>, DecodeError>;

    /// Keeps, reorders or duplicates rows: row i of the new state is row
    /// `rows[i]` of the old one.
    fn select_rows(&mut self, rows: &[usize]) -> Result<(), DecodeError>;
}

/// A prefix scorer that values states. A sequence is the prompt ids followed
/// by the response ids so far, and its state is the last token.
pub trait PrefixScorer {
    /// Returns true when [`PrefixScorer::next_token_q`] is available, that is
    /// when the scorer has a vocabulary head.
    fn has_q_head(&self) -> bool {
        true
    }

    /// Returns `V(s)` for each full sequence.
    fn state_values(&self, sequences: &[Vec<u32>]) -> Result<Vec<f32>, DecodeError>;

    /// Returns `Q(s, z)` for every token z, shape `[sequences][vocab]`.
    fn next_token_q(&self, sequences: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, DecodeError>;
}

/// A weighted sum `Σ_i w_i · V_i` of prefix scorers, with weights set at
/// decode time.
pub struct WeightedScorers<'a> {
    /// The scorers and their weights.
    pub members: Vec<(&'a dyn PrefixScorer, f32)>,
}

impl PrefixScorer for WeightedScorers<'_> {
    fn has_q_head(&self) -> bool {
        self.members.iter().all(|(scorer, _)| scorer.has_q_head())
    }

    fn state_values(&self, sequences: &[Vec<u32>]) -> Result<Vec<f32>, DecodeError> {
        let mut total = vec![0.0f32; sequences.len()];
        for (scorer, weight) in &self.members {
            let values = scorer.state_values(sequences)?;
            check_len("scorer state values", sequences.len(), values.len())?;
            for (t, v) in total.iter_mut().zip(values) {
                *t += weight * v;
            }
        }
        Ok(total)
    }

    fn next_token_q(&self, sequences: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, DecodeError> {
        let mut total: Option<Vec<Vec<f32>>> = None;
        for (scorer, weight) in &self.members {
            let q = scorer.next_token_q(sequences)?;
            check_len("scorer Q rows", sequences.len(), q.len())?;
            match total.as_mut() {
                None => {
                    total = Some(
                        q.into_iter()
                            .map(|row| row.into_iter().map(|v| weight * v).collect())
                            .collect(),
                    );
                }
                Some(total) => {
                    for (t_row, q_row) in total.iter_mut().zip(q) {
                        check_len("scorer Q vocabulary", t_row.len(), q_row.len())?;
                        for (t, v) in t_row.iter_mut().zip(q_row) {
                            *t += weight * v;
                        }
                    }
                }
            }
        }
        total.ok_or(DecodeError::NoScorers)
    }
}

pub(crate) fn check_len(what: &str, expected: usize, actual: usize) -> Result<(), DecodeError> {
    if expected == actual {
        Ok(())
    } else {
        Err(DecodeError::LengthMismatch {
            what: what.to_string(),
            expected,
            actual,
        })
    }
}

/// Returns `log Σ exp(x)` over the finite-or-`−∞` entries of `values`, or
/// `−∞` when every entry is `−∞`.
pub fn log_sum_exp(values: &[f64]) -> f64 {
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return max;
    }
    max + values.iter().map(|v| (v - max).exp()).sum::<f64>().ln()
}

/// Returns the indices of the `k` largest base log-probs, ties broken by the
/// lower index.
pub fn top_k_indices(log_probs: &[f32], k: usize) -> Vec<usize> {
    let descending = |a: &usize, b: &usize| log_probs[*b].total_cmp(&log_probs[*a]).then(a.cmp(b));
    let mut order: Vec<usize> = (0..log_probs.len()).collect();
    if k < order.len() {
        // Partition first, so a step costs O(vocab) and not O(vocab log vocab).
        order.select_nth_unstable_by(k, descending);
        order.truncate(k);
    }
    order.sort_by(descending);
    order
}

/// Computes the tokenwise CD policy `log π(·|s)` at one state, in f64.
///
/// `base_log_probs` is `log p(·|s)` and `q` is `Q(s, ·)`, both of length
/// vocab. With `top_k > 0` and smaller than the vocabulary, tokens outside
/// the base top-k get `log π = −∞`, so λ = 0 then gives p renormalised on
/// the top-k. With `top_k == 0` and `lambda == 0` the result is
/// `base_log_probs` unchanged, that is p itself, and `q` is not read.
/// Returns an error when the lengths differ or a Q value of a token in the
/// support is not finite.
pub fn tokenwise_log_policy(
    base_log_probs: &[f32],
    q: &[f32],
    lambda: f32,
    top_k: usize,
) -> Result<Vec<f64>, DecodeError> {
    let vocab = base_log_probs.len();
    let restricted = top_k > 0 && top_k < vocab;
    if lambda == 0.0 && !restricted {
        return Ok(base_log_probs.iter().map(|&v| f64::from(v)).collect());
    }
    if lambda != 0.0 {
        check_len("scorer Q vocabulary", vocab, q.len())?;
    }

    let mut logits = vec![f64::NEG_INFINITY; vocab];
    let support: Vec<usize> = if restricted {
        top_k_indices(base_log_probs, top_k)
    } else {
        (0..vocab).collect()
    };
    for z in support {
        let base = f64::from(base_log_probs[z]);
        let bonus = if lambda == 0.0 {
            0.0
        } else {
            let value = q[z];
            if !value.is_finite() {
                return Err(DecodeError::NonFiniteValue {
                    what: "scorer Q value for token".to_string(),
                    index: z,
                    value: f64::from(value),
                });
            }
            f64::from(lambda) * f64::from(value)
        };
        logits[z] = base + bonus;
    }
    let normaliser = log_sum_exp(&logits);
    Ok(logits.into_iter().map(|l| l - normaliser).collect())
}

/// Computes `KL(π ‖ p) = Σ_z π(z) · (log π(z) − log p(z))` at one state, in
/// nats.
///
/// `base_log_probs` is renormalised in f64 first, so rounding in the f32
/// log-softmax does not bias the sum. Terms with `π(z) = 0` are zero. When
/// `policy_log_probs` is `base_log_probs` itself, every term is exactly zero.
/// Rounding can leave a tiny negative sum, so the result is clamped at 0.
pub fn kl_divergence(policy_log_probs: &[f64], base_log_probs: &[f32]) -> f64 {
    let base: Vec<f64> = base_log_probs.iter().map(|&v| f64::from(v)).collect();
    let identical = policy_log_probs.iter().zip(&base).all(|(a, b)| a == b);
    if identical {
        return 0.0;
    }
    let base_normaliser = log_sum_exp(&base);
    let mut kl = 0.0;
    for (&log_pi, &log_p) in policy_log_probs.iter().zip(&base) {
        if log_pi == f64::NEG_INFINITY {
            continue;
        }
        kl += log_pi.exp() * (log_pi - (log_p - base_normaliser));
    }
    kl.max(0.0)
}

/// Draws a token from normalised log-probs by inverting the cumulative sum.
///
/// Returns an error when every entry is `−∞` or NaN.
pub fn sample_log_probs<R: Rng + ?Sized>(
    log_probs: &[f64],
    rng: &mut R,
) -> Result<u32, DecodeError> {
    let total: f64 = log_probs
        .iter()
        .filter(|v| !v.is_nan())
        .map(|v| v.exp())
        .sum();
    if total.is_nan() || total <= 0.0 || total.is_infinite() {
        return Err(DecodeError::NoSupport {
            vocab: log_probs.len(),
        });
    }
    let target = rng.random::<f64>() * total;
    let mut cumulative = 0.0;
    let mut last_positive = 0;
    for (z, v) in log_probs.iter().enumerate() {
        if v.is_nan() {
            continue;
        }
        let p = v.exp();
        if p > 0.0 {
            last_positive = z;
            cumulative += p;
            if target < cumulative {
                return Ok(z as u32);
            }
        }
    }
    // Rounding can leave `target` just above the final cumulative sum.
    Ok(last_positive as u32)
}

/// Settings of tokenwise controlled decoding for one λ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenwiseConfig {
    /// Weight λ of the scorer's Q values. Default 1.0; 0 samples from p.
    #[serde(default = "default_lambda")]
    pub lambda: f32,
    /// Restricts the policy to the base top-k tokens at each state; 0 uses
    /// the whole vocabulary. Default 0.
    #[serde(default)]
    pub top_k: usize,
    /// Responses sampled per prompt. Default 4.
    #[serde(default = "default_samples")]
    pub samples: usize,
    /// Maximum response length in tokens. Default 64.
    #[serde(default = "default_max_new_tokens")]
    pub max_new_tokens: usize,
    /// Token ids besides EOS that end a response. Default none.
    #[serde(default)]
    pub stop_ids: Vec<u32>,
}

fn default_lambda() -> f32 {
    1.0
}

fn default_samples() -> usize {
    4
}

fn default_max_new_tokens() -> usize {
    64
}

impl Default for TokenwiseConfig {
    fn default() -> Self {
        TokenwiseConfig {
            lambda: default_lambda(),
            top_k: 0,
            samples: default_samples(),
            max_new_tokens: default_max_new_tokens(),
            stop_ids: Vec::new(),
        }
    }
}

/// One response of a controlled decoding method.
#[derive(Debug, Clone, PartialEq)]
pub struct CdResponse {
    /// Response token ids, an emitted EOS or stop token included.
    pub token_ids: Vec<u32>,
    /// Base log-prob `log p(y_t|s_{t−1})` of each response token.
    pub base_log_probs: Vec<f32>,
    /// Reason the response ended.
    pub finish_reason: FinishReason,
    /// KL of this response in nats: the exact per-token sum for tokenwise CD,
    /// the bound for blockwise CD.
    pub kl: f64,
    /// Tokens sampled from the base model for this response, discarded
    /// blocks included.
    pub tokens_sampled: usize,
}

/// Returns the finish reason of `token`, or `None` when it does not end the
/// response.
pub(crate) fn finish_of(token: u32, eos_id: u32, stop_ids: &[u32]) -> Option<FinishReason> {
    if token == eos_id {
        Some(FinishReason::Eos)
    } else if stop_ids.contains(&token) {
        Some(FinishReason::Stop)
    } else {
        None
    }
}

/// Returns `Q(s, ·)` at the current state of each row in `rows`.
fn query_q(
    scorer: &dyn PrefixScorer,
    prompt_ids: &[u32],
    responses: &[CdResponse],
    rows: &[usize],
) -> Result<Vec<Vec<f32>>, DecodeError> {
    let sequences: Vec<Vec<u32>> = rows
        .iter()
        .map(|&r| [prompt_ids, &responses[r].token_ids].concat())
        .collect();
    let q = scorer.next_token_q(&sequences)?;
    check_len("scorer Q rows", sequences.len(), q.len())?;
    Ok(q)
}

/// Samples `cfg.samples` responses to one prompt with tokenwise CD.
///
/// The scorer is queried only while λ ≠ 0, and only for unfinished rows.
/// A row that emits EOS or a stop token leaves the decoder batch through
/// [`StepDecoder::select_rows`].
pub fn tokenwise_decode<R: Rng + ?Sized>(
    decoder: &mut dyn StepDecoder,
    scorer: Option<&dyn PrefixScorer>,
    prompt_ids: &[u32],
    cfg: &TokenwiseConfig,
    rng: &mut R,
) -> Result<Vec<CdResponse>, DecodeError> {
    let rows = cfg.samples;
    let eos_id = decoder.eos_id();
    let mut responses: Vec<CdResponse> = (0..rows)
        .map(|_| CdResponse {
            token_ids: Vec::new(),
            base_log_probs: Vec::new(),
            finish_reason: FinishReason::Length,
            kl: 0.0,
            tokens_sampled: 0,
        })
        .collect();
    if rows == 0 || cfg.max_new_tokens == 0 {
        return Ok(responses);
    }
    let scorer = match (cfg.lambda != 0.0, scorer) {
        (true, Some(s)) => Some(s),
        (true, None) => return Err(DecodeError::NoScorers),
        (false, _) => None,
    };

    let mut log_probs = decoder.prefill(prompt_ids, rows)?;
    check_len("decoder rows", rows, log_probs.len())?;
    // `active[row]` is the response that decoder row `row` extends.
    let mut active: Vec<usize> = (0..rows).collect();
    for step in 0..cfg.max_new_tokens {
        let q_rows = match scorer {
            Some(scorer) => Some(query_q(scorer, prompt_ids, &responses, &active)?),
            None => None,
        };

        let mut kept_rows = Vec::with_capacity(active.len());
        let mut next_tokens = Vec::with_capacity(active.len());
        for (row, &index) in active.iter().enumerate() {
            let q = q_rows.as_ref().map_or(&[][..], |q| q[row].as_slice());
            let policy = tokenwise_log_policy(&log_probs[row], q, cfg.lambda, cfg.top_k)?;
            let token = sample_log_probs(&policy, rng)?;
            let response = &mut responses[index];
            response.kl += kl_divergence(&policy, &log_probs[row]);
            response.token_ids.push(token);
            response.base_log_probs.push(log_probs[row][token as usize]);
            response.tokens_sampled += 1;
            match finish_of(token, eos_id, &cfg.stop_ids) {
                Some(reason) => response.finish_reason = reason,
                None => {
                    kept_rows.push(row);
                    next_tokens.push(token);
                }
            }
        }

        if kept_rows.is_empty() || step + 1 == cfg.max_new_tokens {
            break;
        }
        if kept_rows.len() < active.len() {
            decoder.select_rows(&kept_rows)?;
            active = kept_rows.iter().map(|&row| active[row]).collect();
        }
        log_probs = decoder.step(&next_tokens)?;
        check_len("decoder rows", active.len(), log_probs.len())?;
    }
    Ok(responses)
}
