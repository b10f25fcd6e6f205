//! Tests of the Best-of-N estimators against enumeration of every subset.

use tiller_decode::DecodeError;
use tiller_decode::best_of_n::{
    bon_kl_bound, bon_kl_estimate, bon_prompt_estimate, bon_win_rate, expected_max_reward,
    expected_value_of_choice, order_statistic_weights,
};

/// Rewards with ties, so every tie rule is exercised.
const REWARDS: [f64; 7] = [0.3, -1.0, 0.3, 2.0, 0.0, 2.0, 0.3];

/// Returns every subset of `0..m` with `n` members, as bit masks.
fn subsets(m: usize, n: usize) -> Vec<u32> {
    (0u32..(1 << m))
        .filter(|mask| mask.count_ones() as usize == n)
        .collect()
}

fn members(mask: u32, m: usize) -> Vec<usize> {
    (0..m).filter(|i| mask & (1 << i) != 0).collect()
}

/// Indices of the subset's maximum rewards (several when tied).
fn argmaxes(rewards: &[f64], subset: &[usize]) -> Vec<usize> {
    let best = subset
        .iter()
        .map(|&i| rewards[i])
        .fold(f64::NEG_INFINITY, f64::max);
    subset
        .iter()
        .copied()
        .filter(|&i| rewards[i] == best)
        .collect()
}

#[test]
fn expected_max_matches_enumeration() {
    let m = REWARDS.len();
    for n in 1..=m {
        let all = subsets(m, n);
        let exact: f64 = all
            .iter()
            .map(|&mask| {
                members(mask, m)
                    .iter()
                    .map(|&i| REWARDS[i])
                    .fold(f64::NEG_INFINITY, f64::max)
            })
            .sum::<f64>()
            / all.len() as f64;
        let estimate = expected_max_reward(&REWARDS, n).unwrap();
        assert!(
            (estimate - exact).abs() < 1e-12,
            "N = {n}: estimator {estimate}, enumeration {exact}"
        );
    }
}

#[test]
fn expected_max_of_one_is_mean() {
    let mean = REWARDS.iter().sum::<f64>() / REWARDS.len() as f64;
    assert!((expected_max_reward(&REWARDS, 1).unwrap() - mean).abs() < 1e-12);
    assert_eq!(expected_max_reward(&REWARDS, REWARDS.len()).unwrap(), 2.0);
}

#[test]
fn choice_value_matches_enumeration_with_random_ties() {
    // A per-sample value unrelated to the reward order, such as a KL term.
    let values = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];
    let m = REWARDS.len();
    for n in 1..=m {
        let all = subsets(m, n);
        let mut exact = 0.0;
        for &mask in &all {
            let winners = argmaxes(&REWARDS, &members(mask, m));
            // Ties are broken uniformly, so each tied maximum has equal share.
            exact += winners.iter().map(|&i| values[i]).sum::<f64>() / winners.len() as f64;
        }
        exact /= all.len() as f64;
        let estimate = expected_value_of_choice(&REWARDS, &values, n).unwrap();
        assert!(
            (estimate - exact).abs() < 1e-9,
            "N = {n}: estimator {estimate}, enumeration {exact}"
        );
    }
}

#[test]
fn win_rate_matches_enumeration() {
    let m = REWARDS.len();
    for n in 1..m {
        let mut with_ties = 0.0;
        let mut strict = 0.0;
        let mut pairs = 0usize;
        for mask in subsets(m, n) {
            let best = members(mask, m)
                .iter()
                .map(|&i| REWARDS[i])
                .fold(f64::NEG_INFINITY, f64::max);
            for j in (0..m).filter(|j| mask & (1 << j) == 0) {
                pairs += 1;
                if best > REWARDS[j] {
                    with_ties += 1.0;
                    strict += 1.0;
                } else if best == REWARDS[j] {
                    with_ties += 0.5;
                }
            }
        }
        let win = bon_win_rate(&REWARDS, n).unwrap().unwrap();
        assert!(
            (win.with_ties - with_ties / pairs as f64).abs() < 1e-12,
            "N = {n}: with ties {} vs {}",
            win.with_ties,
            with_ties / pairs as f64
        );
        assert!(
            (win.strict - strict / pairs as f64).abs() < 1e-12,
            "N = {n}: strict {} vs {}",
            win.strict,
            strict / pairs as f64
        );
    }
}

#[test]
fn win_rate_of_best_of_one_is_half_with_ties() {
    // N = 1 is a base sample against a base sample: symmetric, so one half.
    let win = bon_win_rate(&REWARDS, 1).unwrap().unwrap();
    assert!((win.with_ties - 0.5).abs() < 1e-12);
}

#[test]
fn win_rate_needs_one_spare_sample() {
    assert_eq!(bon_win_rate(&REWARDS, REWARDS.len()).unwrap(), None);
    assert!(bon_win_rate(&REWARDS, REWARDS.len() - 1).unwrap().is_some());
}

#[test]
fn weights_sum_to_one() {
    for (n, m) in [(1, 1), (1, 16), (4, 16), (16, 16), (500, 1000), (3, 10_000)] {
        let weights = order_statistic_weights(n, m).unwrap();
        let total: f64 = weights.iter().sum();
        assert!((total - 1.0).abs() < 1e-9, "N = {n}, M = {m}: sum {total}");
        assert!(weights.iter().all(|w| w.is_finite() && *w >= 0.0));
        assert!(weights[..n - 1].iter().all(|&w| w == 0.0));
    }
}

#[test]
fn weights_hand_computed() {
    // M = 4, N = 2: w_i = C(i-1, 1) / C(4, 2) = (i-1)/6 for i = 1..4.
    let weights = order_statistic_weights(2, 4).unwrap();
    let expected = [0.0, 1.0 / 6.0, 2.0 / 6.0, 3.0 / 6.0];
    for (w, e) in weights.iter().zip(expected) {
        assert!((w - e).abs() < 1e-15);
    }
}

#[test]
fn too_few_samples_is_error() {
    assert!(matches!(
        expected_max_reward(&[1.0, 2.0], 3),
        Err(DecodeError::BestOfNTooFewSamples { n: 3, samples: 2 })
    ));
    assert!(expected_max_reward(&[1.0], 0).is_err());
    assert!(expected_max_reward(&[1.0, f64::NAN], 1).is_err());
}

#[test]
fn kl_bound_values() {
    assert_eq!(bon_kl_bound(1), 0.0);
    // log 2 - 1/2 = 0.1931472, log 16 - 15/16 = 1.8350887.
    assert!((bon_kl_bound(2) - 0.193_147_180_559_945_3).abs() < 1e-15);
    assert!((bon_kl_bound(16) - (16f64.ln() - 15.0 / 16.0)).abs() < 1e-15);
}

#[test]
fn kl_estimate_hand_computed() {
    // N = 2, ε = 1/2: (1-ε)^N = 1/4, so
    // 1/4 · [log 2 + log(1/2) - 1/2] + 3/4 · log((3/4)/(1/2))
    // = -0.125 + 0.75 · log 1.5 = 0.1790988.
    let estimate = bon_kl_estimate(2, 0.5f64.ln());
    assert!((estimate - 0.179_098_831_081_123_3).abs() < 1e-12);
}

#[test]
fn kl_estimate_within_bound() {
    for n in [1, 2, 3, 4, 8, 16, 64] {
        let bound = bon_kl_bound(n);
        for log_epsilon in [
            -2000.0, -700.5, -699.0, -50.0, -5.0, -1.0, -0.1, -1e-6, -1e-12, 0.0, 1e-6,
        ] {
            let estimate = bon_kl_estimate(n, log_epsilon);
            assert!(
                (0.0..=bound).contains(&estimate),
                "N = {n}, log ε = {log_epsilon}: {estimate} outside [0, {bound}]"
            );
        }
    }
}

#[test]
fn kl_estimate_limits() {
    let bound = bon_kl_bound(8);
    // ε → 0 gives the bound, also when ε underflows to 0.
    assert_eq!(bon_kl_estimate(8, f64::NEG_INFINITY), bound);
    assert_eq!(bon_kl_estimate(8, -1e6), bound);
    assert!((bon_kl_estimate(8, -699.0) - bound).abs() < 1e-12);
    assert!((bon_kl_estimate(8, -40.0) - bound).abs() < 1e-12);
    // ε = 1 gives 0, also when the log-prob sum rounds above 0.
    assert_eq!(bon_kl_estimate(8, 0.0), 0.0);
    assert_eq!(bon_kl_estimate(8, 1e-7), 0.0);
    assert!(bon_kl_estimate(8, -1e-9) < 1e-6);
    // N = 1 is the base model itself.
    assert_eq!(bon_kl_estimate(1, -3.0), 0.0);
    assert!(bon_kl_estimate(8, f64::NAN).is_nan());
}

#[test]
fn kl_estimate_falls_as_epsilon_grows() {
    let mut previous = f64::INFINITY;
    for log_epsilon in [-30.0, -10.0, -3.0, -1.0, -0.3, -0.01] {
        let estimate = bon_kl_estimate(4, log_epsilon);
        assert!(
            estimate <= previous + 1e-12,
            "not monotone at log ε = {log_epsilon}"
        );
        previous = estimate;
    }
}

#[test]
fn prompt_estimate_combines_parts() {
    let log_probs = [-3.0, -1.0, -20.0, -0.5, -2.0, -8.0, -4.0];
    let estimate = bon_prompt_estimate(&REWARDS, &log_probs, 3).unwrap();
    assert_eq!(
        estimate.expected_max_reward,
        expected_max_reward(&REWARDS, 3).unwrap()
    );
    let kl_values: Vec<f64> = log_probs.iter().map(|&lp| bon_kl_estimate(3, lp)).collect();
    assert_eq!(
        estimate.kl_estimate,
        expected_value_of_choice(&REWARDS, &kl_values, 3).unwrap()
    );
    assert!(estimate.kl_estimate <= bon_kl_bound(3));
    assert!(estimate.win_rate.is_some());
    assert!(bon_prompt_estimate(&REWARDS, &[f64::NAN; 7], 3).is_err());
    assert!(bon_prompt_estimate(&REWARDS, &[0.0; 6], 3).is_err());
}
