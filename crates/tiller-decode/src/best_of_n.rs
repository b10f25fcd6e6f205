//! Best-of-N estimators computed from M ≥ N base samples of one prompt.
//!
//! Drawing M samples once and estimating every N ≤ M from them is cheaper
//! and has lower variance than drawing N fresh samples per setting. Every
//! estimator here is an average over all `C(M, N)` subsets of N samples, so
//! it is unbiased for the quantity that Best-of-N with N fresh draws would
//! have. The per-subset choice is the argmax of the reward, with ties broken
//! uniformly at random, as the decoder itself does.
//!
//! Order statistics: sort the rewards ascending as `r_(1) ≤ … ≤ r_(M)`.
//! The i-th smallest sample is the maximum of a random N-subset with
//! probability `w_i = C(i−1, N−1) / C(M, N)` (zero for `i < N`), because the
//! subset must contain it and N−1 of the i−1 samples below it.

use crate::error::DecodeError;
use crate::stats::WinRate;

/// KL upper bound of Best-of-N, `log N − (N−1)/N`, in nats.
///
/// The bound is 0 for `N ≤ 1`.
pub fn bon_kl_bound(n: usize) -> f64 {
    if n <= 1 {
        return 0.0;
    }
    let n = n as f64;
    n.ln() - (n - 1.0) / n
}

/// Estimates the KL of Best-of-N from `log ε`, the base log-probability of
/// the chosen response (`ε = p(y*|x)`, the sum of its token log-probs).
///
/// The estimate is
/// `(1−ε)^N · [log N + (N−1)·log(1−ε) − (N−1)/N] + (1−(1−ε)^N) · log((1−(1−ε)^N)/ε)`
/// and is clamped to `[0, log N − (N−1)/N]`. `(1−ε)^N` and `1 − (1−ε)^N` are
/// computed with `ln_1p` and `exp_m1`, and `log ε` is used directly, so a
/// long response does not lose the estimate to underflow of ε. A NaN
/// `log_epsilon` returns NaN, and `−∞` (ε = 0) returns the bound.
pub fn bon_kl_estimate(n: usize, log_epsilon: f64) -> f64 {
    let bound = bon_kl_bound(n);
    if log_epsilon.is_nan() {
        return f64::NAN;
    }
    if n <= 1 {
        return 0.0;
    }

    // ε ≥ 1 (a response the base model emits with certainty; a sum of f32
    // log-probs can also round slightly above 0). As ε → 1, (1−ε)^N → 0 and
    // (1−ε)^N · log(1−ε) → 0, while the second term tends to 1 · log(1/1) = 0,
    // so the limit is 0.
    if log_epsilon >= 0.0 {
        return 0.0;
    }
    // ε → 0: (1−ε)^N → 1 and 1 − (1−ε)^N ≈ Nε, so the second term is about
    // Nε · log N → 0 and the estimate tends to the bound. Below e^−700 the
    // difference from the bound is under 1e−300, and computing it would
    // divide subnormal numbers, so the limit is returned.
    if log_epsilon < -700.0 {
        return bound;
    }

    let nf = n as f64;
    let epsilon = log_epsilon.exp();
    let log_one_minus_eps = (-epsilon).ln_1p();
    let log_q = nf * log_one_minus_eps;
    let q = log_q.exp();
    let one_minus_q = -log_q.exp_m1();

    let first = q * (nf.ln() + (nf - 1.0) * log_one_minus_eps - (nf - 1.0) / nf);
    let second = if one_minus_q > 0.0 {
        one_minus_q * (one_minus_q.ln() - log_epsilon)
    } else {
        0.0
    };
    (first + second).clamp(0.0, bound)
}

/// Weights `w_i = C(i−1, N−1) / C(M, N)` of the ascending order statistics,
/// `i = 1 … M`, for the maximum of a random N-subset of M items.
///
/// Computed from the top down with the exact ratios `w_M = N/M` and
/// `w_{i−1} = w_i · (i−N)/(i−1)`, so no binomial coefficient is formed and
/// nothing overflows. The weights sum to 1.
pub fn order_statistic_weights(n: usize, m: usize) -> Result<Vec<f64>, DecodeError> {
    if n == 0 || n > m {
        return Err(DecodeError::BestOfNTooFewSamples { n, samples: m });
    }
    let mut weights = vec![0.0; m];
    let mut w = n as f64 / m as f64;
    for i in (n..=m).rev() {
        weights[i - 1] = w;
        if i > n {
            w *= (i - n) as f64 / (i - 1) as f64;
        }
    }
    Ok(weights)
}

/// Best-of-N estimates for one prompt from its M samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BonPromptEstimate {
    /// Unbiased estimate of `E[max reward of N draws]`.
    pub expected_max_reward: f64,
    /// Expected KL estimate over N-subsets, see [`bon_kl_estimate`].
    pub kl_estimate: f64,
    /// Win rate of the Best-of-N choice against an independent base draw,
    /// `None` when fewer than N+1 samples are available.
    pub win_rate: Option<WinRate>,
}

fn check_finite(rewards: &[f64]) -> Result<(), DecodeError> {
    match rewards.iter().enumerate().find(|(_, r)| !r.is_finite()) {
        Some((index, &value)) => Err(DecodeError::NonFiniteValue {
            what: "best-of-N reward".to_string(),
            index,
            value,
        }),
        None => Ok(()),
    }
}

/// Returns the permutation that sorts `rewards` ascending.
fn ascending_order(rewards: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..rewards.len()).collect();
    order.sort_by(|&a, &b| rewards[a].total_cmp(&rewards[b]));
    order
}

/// Unbiased estimate of `E[max reward of N draws]` from M ≥ N rewards of
/// one prompt: `Σ_i w_i · r_(i)` over the ascending order statistics.
///
/// Returns an error when `n` is 0 or exceeds the number of rewards, or when a
/// reward is not finite.
pub fn expected_max_reward(rewards: &[f64], n: usize) -> Result<f64, DecodeError> {
    check_finite(rewards)?;
    let weights = order_statistic_weights(n, rewards.len())?;
    let order = ascending_order(rewards);
    Ok(order
        .iter()
        .zip(&weights)
        .map(|(&index, w)| w * rewards[index])
        .sum())
}

/// Expected value of `values[chosen]` where `chosen` is the reward argmax of
/// a uniformly random N-subset, with ties broken uniformly at random.
///
/// Breaking ties at random is the same as drawing a random order within each
/// group of equal rewards and taking the highest-ranked subset member. Each
/// rank in a tie group then contains each of the group's members with equal
/// probability, so each rank carries the group's mean value.
pub fn expected_value_of_choice(
    rewards: &[f64],
    values: &[f64],
    n: usize,
) -> Result<f64, DecodeError> {
    check_finite(rewards)?;
    if values.len() != rewards.len() {
        return Err(DecodeError::LengthMismatch {
            what: "best-of-N values per sample".to_string(),
            expected: rewards.len(),
            actual: values.len(),
        });
    }
    let weights = order_statistic_weights(n, rewards.len())?;
    let order = ascending_order(rewards);

    let mut total = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && rewards[order[end]] == rewards[order[start]] {
            end += 1;
        }
        let group_mean =
            order[start..end].iter().map(|&i| values[i]).sum::<f64>() / (end - start) as f64;
        let group_weight: f64 = weights[start..end].iter().sum();
        total += group_weight * group_mean;
        start = end;
    }
    Ok(total)
}

/// Returns `C(k, n) / C(total, n)` as the product `Π_{j<n} (k−j)/(total−j)`,
/// which is 0 when `k < n`.
fn binomial_ratio(k: usize, total: usize, n: usize) -> f64 {
    if k < n {
        return 0.0;
    }
    (0..n)
        .map(|j| (k - j) as f64 / (total - j) as f64)
        .product()
}

/// Unbiased win rate of Best-of-N against an independent base draw, from
/// M ≥ N+1 rewards of one prompt.
///
/// The estimate averages over every base sample j and every N-subset of the
/// other M−1 samples. If `a` of the others are below `r_j` and `t` equal it,
/// the subset maximum is below `r_j` with probability `C(a, N)/C(M−1, N)`
/// and at most `r_j` with probability `C(a+t, N)/C(M−1, N)`. Ties count one
/// half in `with_ties` and as losses in `strict`. Returns `Ok(None)` when
/// fewer than N+1 rewards are given, because no base draw is left over.
pub fn bon_win_rate(rewards: &[f64], n: usize) -> Result<Option<WinRate>, DecodeError> {
    check_finite(rewards)?;
    let m = rewards.len();
    if n == 0 {
        return Err(DecodeError::BestOfNTooFewSamples { n, samples: m });
    }
    if m < n + 1 {
        return Ok(None);
    }
    let others = m - 1;
    let mut with_ties = 0.0;
    let mut strict = 0.0;
    for (j, &base) in rewards.iter().enumerate() {
        let mut below = 0;
        let mut equal = 0;
        for (i, &r) in rewards.iter().enumerate() {
            if i == j {
                continue;
            }
            if r < base {
                below += 1;
            } else if r == base {
                equal += 1;
            }
        }
        let p_below = binomial_ratio(below, others, n);
        let p_at_most = binomial_ratio(below + equal, others, n);
        let p_win = 1.0 - p_at_most;
        let p_tie = p_at_most - p_below;
        with_ties += p_win + 0.5 * p_tie;
        strict += p_win;
    }
    Ok(Some(WinRate {
        with_ties: with_ties / m as f64,
        strict: strict / m as f64,
    }))
}

/// Computes every Best-of-N estimate for one prompt.
///
/// `rewards[i]` and `log_probs[i]` belong to sample i, where `log_probs[i]` is
/// the base log-probability of the whole response (the sum of its token
/// log-probs). The KL estimate is the expectation over N-subsets of
/// [`bon_kl_estimate`] at the subset's chosen response.
pub fn bon_prompt_estimate(
    rewards: &[f64],
    log_probs: &[f64],
    n: usize,
) -> Result<BonPromptEstimate, DecodeError> {
    if let Some((index, &value)) = log_probs.iter().enumerate().find(|(_, lp)| lp.is_nan()) {
        return Err(DecodeError::NonFiniteValue {
            what: "best-of-N response log-probability".to_string(),
            index,
            value,
        });
    }
    let kl_values: Vec<f64> = log_probs.iter().map(|&lp| bon_kl_estimate(n, lp)).collect();
    Ok(BonPromptEstimate {
        expected_max_reward: expected_max_reward(rewards, n)?,
        kl_estimate: expected_value_of_choice(rewards, &kl_values, n)?,
        win_rate: bon_win_rate(rewards, n)?,
    })
}
