//! Tests of means, confidence intervals, win rates and the tie-aware argmax.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tiller_decode::DecodeError;
use tiller_decode::stats::{
    WinRate, argmax_random_tie, mean_ci95, mean_win_rate, pairwise_win_rate,
};

#[test]
fn ci_matches_hand_computation() {
    // Values 1..=5: mean 3, squared deviations 4+1+0+1+4 = 10, so
    // sd = sqrt(10/4) = 1.5811388 and half-width = 1.959964 · sd / sqrt(5)
    // = 1.3859038.
    let ci = mean_ci95(&[1.0, 2.0, 3.0, 4.0, 5.0], "test").unwrap();
    assert_eq!(ci.n, 5);
    assert!((ci.mean - 3.0).abs() < 1e-12);
    assert!((ci.sd - 1.581_138_830_084_19).abs() < 1e-12);
    assert!((ci.half_width - 1.385_903_824_349_678).abs() < 1e-12);
    assert!((ci.lower() - (3.0 - 1.385_903_824_349_678)).abs() < 1e-12);
    assert!((ci.upper() - (3.0 + 1.385_903_824_349_678)).abs() < 1e-12);
}

#[test]
fn ci_of_uneven_values() {
    // Values 0.5, 0.5, 1.5: mean 5/6, squared deviations 1/9 + 1/9 + 4/9 =
    // 2/3, so sd = sqrt(1/3) = 0.5773503 and half-width = 1.959964 · sd /
    // sqrt(3) = 0.6533213.
    let ci = mean_ci95(&[0.5, 0.5, 1.5], "test").unwrap();
    assert!((ci.mean - 5.0 / 6.0).abs() < 1e-12);
    assert!((ci.sd - (1.0f64 / 3.0).sqrt()).abs() < 1e-12);
    assert!((ci.half_width - 0.653_321_328_180_018_2).abs() < 1e-12);
}

#[test]
fn ci_of_one_value_has_no_width() {
    let ci = mean_ci95(&[2.5], "test").unwrap();
    assert_eq!(ci.mean, 2.5);
    assert!(ci.sd.is_nan());
    assert!(ci.half_width.is_nan());
}

#[test]
fn ci_of_constant_values_is_a_point() {
    let ci = mean_ci95(&[0.25; 4], "test").unwrap();
    assert_eq!(ci.mean, 0.25);
    assert_eq!(ci.sd, 0.0);
    assert_eq!(ci.half_width, 0.0);
}

#[test]
fn ci_rejects_empty_and_nan() {
    assert!(matches!(
        mean_ci95(&[], "reward"),
        Err(DecodeError::EmptyStatistic { .. })
    ));
    match mean_ci95(&[1.0, f64::NAN], "reward") {
        Err(DecodeError::NonFiniteValue { index, .. }) => assert_eq!(index, 1),
        other => panic!("expected NonFiniteValue, got {other:?}"),
    }
    assert!(mean_ci95(&[f64::INFINITY], "reward").is_err());
}

#[test]
fn win_rate_counts_ties_half() {
    // Pairs (1,1) tie, (1,0) win, (2,1) win, (2,0) win: 3 wins and 1 tie of
    // 4 pairs, so 3.5/4 with ties and 3/4 strict.
    let win = pairwise_win_rate(&[1.0, 2.0], &[1.0, 0.0]).unwrap();
    assert_eq!(win.with_ties, 0.875);
    assert_eq!(win.strict, 0.75);
}

#[test]
fn win_rate_all_ties() {
    let win = pairwise_win_rate(&[0.0, 0.0], &[0.0, 0.0, 0.0]).unwrap();
    assert_eq!(win.with_ties, 0.5);
    assert_eq!(win.strict, 0.0);
}

#[test]
fn win_rate_against_itself_is_half() {
    // Comparing a set with itself is symmetric: wins and losses balance, so
    // the win rate with ties is exactly one half.
    let values = [0.1, 0.7, 0.7, -0.3, 0.2];
    let win = pairwise_win_rate(&values, &values).unwrap();
    assert!((win.with_ties - 0.5).abs() < 1e-15);
    assert!(win.strict < 0.5);
}

#[test]
fn win_rate_nan_loses() {
    let win = pairwise_win_rate(&[f64::NAN], &[0.0]).unwrap();
    assert_eq!(win.with_ties, 0.0);
    assert_eq!(win.strict, 0.0);
    let win = pairwise_win_rate(&[0.0], &[f64::NAN]).unwrap();
    assert_eq!(win.with_ties, 0.0);
}

#[test]
fn win_rate_of_empty_is_none() {
    assert!(pairwise_win_rate(&[], &[1.0]).is_none());
    assert!(pairwise_win_rate(&[1.0], &[]).is_none());
    assert!(mean_win_rate(&[]).is_none());
}

#[test]
fn mean_win_rate_weights_prompts_equally() {
    let rates = [
        WinRate {
            with_ties: 1.0,
            strict: 0.5,
        },
        WinRate {
            with_ties: 0.0,
            strict: 0.0,
        },
    ];
    let mean = mean_win_rate(&rates).unwrap();
    assert_eq!(mean.with_ties, 0.5);
    assert_eq!(mean.strict, 0.25);
}

#[test]
fn argmax_breaks_ties_uniformly() {
    let scores = [1.0, 3.0, 3.0, 0.0, 3.0];
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut counts = [0usize; 5];
    let draws = 30_000;
    for _ in 0..draws {
        counts[argmax_random_tie(&scores, &mut rng).unwrap()] += 1;
    }
    assert_eq!(counts[0], 0);
    assert_eq!(counts[3], 0);
    // Each tied index has probability 1/3; the standard deviation of its
    // count is sqrt(30000 · 1/3 · 2/3) ≈ 82, so 500 is over 6 sigma.
    for index in [1, 2, 4] {
        assert!(
            (counts[index] as i64 - 10_000).abs() < 500,
            "index {index} chosen {} times of {draws}",
            counts[index]
        );
    }
}

#[test]
fn argmax_is_reproducible_with_seed() {
    let scores = [2.0, 2.0, 2.0, 2.0];
    let draw = |seed| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..20)
            .map(|_| argmax_random_tie(&scores, &mut rng).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(draw(3), draw(3));
    assert_ne!(draw(3), draw(4));
}

#[test]
fn argmax_nan_never_wins() {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for _ in 0..100 {
        assert_eq!(
            argmax_random_tie(&[f32::NAN, -1.0, f32::NAN], &mut rng),
            Some(1)
        );
        assert_eq!(
            argmax_random_tie(&[f32::NAN, f32::NEG_INFINITY], &mut rng),
            Some(1)
        );
    }
    assert_eq!(argmax_random_tie(&[f32::NAN, f32::NAN], &mut rng), None);
    assert_eq!(argmax_random_tie(&[], &mut rng), None);
}

#[test]
fn argmax_single_max_draws_nothing() {
    // A unique maximum must not consume randomness, so the stream after it
    // matches a fresh generator's.
    let mut used = ChaCha8Rng::seed_from_u64(5);
    assert_eq!(argmax_random_tie(&[0.0, 4.0, 1.0], &mut used), Some(1));
    let mut fresh = ChaCha8Rng::seed_from_u64(5);
    let ties = [1.0, 1.0, 1.0];
    assert_eq!(
        argmax_random_tie(&ties, &mut used),
        argmax_random_tie(&ties, &mut fresh)
    );
}
