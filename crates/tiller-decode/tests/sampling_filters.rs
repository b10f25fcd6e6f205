//! Logit filtering and token choice on hand-made distributions.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use tiller_decode::DecodeError;
use tiller_decode::sampling::{SamplingConfig, log_softmax, sample_token, top_k};

fn config(temperature: f32, top_k: usize, top_p: f32) -> SamplingConfig {
    SamplingConfig {
        temperature,
        top_k,
        top_p,
        ..SamplingConfig::new(16)
    }
}

/// Log-probabilities of p = [0.5, 0.3, 0.15, 0.05].
fn four_way() -> Vec<f32> {
    [0.5f32, 0.3, 0.15, 0.05].iter().map(|p| p.ln()).collect()
}

/// Counts how often each id is drawn in `draws` samples.
fn histogram(log_probs: &[f32], config: &SamplingConfig, draws: usize, seed: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut counts = vec![0; log_probs.len()];
    for _ in 0..draws {
        let id = sample_token(log_probs, config, &mut rng).expect("a finite entry");
        counts[id as usize] += 1;
    }
    counts
}

#[test]
fn log_softmax_matches_hand_values() {
    // logits [0, ln 3] give p = [1/4, 3/4].
    let output = log_softmax(&[0.0, 3.0f32.ln()]);
    assert!((output[0] - 0.25f32.ln()).abs() < 1e-6, "{output:?}");
    assert!((output[1] - 0.75f32.ln()).abs() < 1e-6, "{output:?}");
}

#[test]
fn log_softmax_has_no_nan_at_extreme_logits() {
    let cases: [&[f32]; 5] = [
        &[f32::MAX, f32::MIN, 0.0],
        &[f32::INFINITY, 1.0, f32::INFINITY],
        &[f32::NAN, 0.0],
        &[f32::NEG_INFINITY, f32::NEG_INFINITY],
        &[1e30, -1e30, 1e30],
    ];
    for logits in cases {
        let output = log_softmax(logits);
        assert!(
            output.iter().all(|x| !x.is_nan()),
            "{logits:?} -> {output:?}"
        );
    }
    // Two +inf logits share the mass: log(1/2) each.
    let shared = log_softmax(&[f32::INFINITY, 1.0, f32::INFINITY]);
    assert!((shared[0] + 2.0f32.ln()).abs() < 1e-6);
    assert_eq!(shared[1], f32::NEG_INFINITY);
    // f32::MAX takes all the mass: MIN - MAX overflows to -inf, 0 - MAX stays finite.
    let dominant = log_softmax(&[f32::MAX, f32::MIN, 0.0]);
    assert_eq!(dominant[0], 0.0);
    assert_eq!(dominant[1], f32::NEG_INFINITY);
}

#[test]
fn top_k_sorts_and_breaks_ties_by_id() {
    let (ids, values) = top_k(&[0.1, 0.5, 0.5, -1.0, 0.3], 3);
    assert_eq!(ids, vec![1, 2, 4]);
    assert_eq!(values, vec![0.5, 0.5, 0.3]);
    let (all, _) = top_k(&[0.2, 0.1], 5);
    assert_eq!(all, vec![0, 1]);
    let (none, _) = top_k(&[0.2, 0.1], 0);
    assert!(none.is_empty());
}

#[test]
fn greedy_settings_take_the_argmax_without_drawing() {
    let log_probs = [-2.0f32, -0.5, -0.5, -3.0];
    for settings in [
        config(0.0, 0, 1.0),
        config(1.0, 0, 0.0),
        config(0.7, 3, 0.0),
    ] {
        assert!(settings.is_greedy());
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut untouched = rng.clone();
        // Ties go to the lower id.
        assert_eq!(sample_token(&log_probs, &settings, &mut rng), Some(1));
        assert_eq!(rng.next_u64(), untouched.next_u64(), "greedy must not draw");
    }
}

#[test]
fn top_k_one_always_picks_the_argmax() {
    let counts = histogram(&four_way(), &config(1.0, 1, 1.0), 500, 1);
    assert_eq!(counts, vec![500, 0, 0, 0]);
}

#[test]
fn top_k_two_keeps_two_tokens() {
    // Renormalised over the top two: p(0) = 0.5 / 0.8 = 0.625.
    let counts = histogram(&four_way(), &config(1.0, 2, 1.0), 4000, 2);
    assert_eq!(counts[2] + counts[3], 0, "{counts:?}");
    let share = counts[0] as f64 / 4000.0;
    // Standard error sqrt(0.625 * 0.375 / 4000) = 0.0077; allow 5 of them.
    assert!((share - 0.625).abs() < 0.04, "share of id 0 is {share}");
}

#[test]
fn top_p_keeps_smallest_sufficient_set() {
    // 0.5 < 0.75 <= 0.5 + 0.3, so ids 0 and 1 are kept.
    let counts = histogram(&four_way(), &config(1.0, 0, 0.75), 4000, 3);
    assert_eq!(counts[2] + counts[3], 0, "{counts:?}");
    assert!(counts[1] > 0);
    // 0.4 <= 0.5: only the argmax.
    let counts = histogram(&four_way(), &config(1.0, 0, 0.4), 500, 4);
    assert_eq!(counts, vec![500, 0, 0, 0]);
    // 1 keeps every token; p(3) = 0.05 gives about 200 of 4000 draws.
    let counts = histogram(&four_way(), &config(1.0, 0, 1.0), 4000, 5);
    assert!(counts.iter().all(|&count| count > 100), "{counts:?}");
}

#[test]
fn top_p_ranks_past_the_first_block() {
    // 1000 equally likely tokens: top_p 0.5 needs 500 of them, more than the
    // first ranked block of 64.
    let flat = vec![-(1000.0f32).ln(); 1000];
    let counts = histogram(&flat, &config(1.0, 0, 0.5), 5000, 6);
    let used = counts.iter().filter(|&&count| count > 0).count();
    assert!(
        counts[500..].iter().all(|&count| count == 0),
        "ids past 500 drawn"
    );
    assert!(used > 400, "only {used} ids drawn");
}

#[test]
fn extreme_temperatures_stay_finite() {
    // A tiny temperature sends every other weight to exp(-huge) = 0.
    let counts = histogram(&four_way(), &config(1e-30, 0, 1.0), 200, 7);
    assert_eq!(counts, vec![200, 0, 0, 0]);
    // An infinite temperature flattens the distribution: about 1000 draws each.
    let counts = histogram(&four_way(), &config(f32::INFINITY, 0, 1.0), 4000, 8);
    assert!(counts.iter().all(|&count| count > 800), "{counts:?}");
}

#[test]
fn extreme_logits_give_a_token() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let raw = [f32::MAX, f32::MIN, 0.0, f32::NEG_INFINITY];
    for settings in [
        config(1.0, 0, 1.0),
        config(0.5, 2, 0.9),
        config(0.0, 0, 1.0),
    ] {
        assert_eq!(sample_token(&raw, &settings, &mut rng), Some(0));
        let from_log_softmax = log_softmax(&raw);
        assert_eq!(
            sample_token(&from_log_softmax, &settings, &mut rng),
            Some(0)
        );
    }
    let nothing = [f32::NEG_INFINITY, f32::NAN];
    assert_eq!(sample_token(&nothing, &config(1.0, 0, 1.0), &mut rng), None);
    assert_eq!(sample_token(&nothing, &config(0.0, 0, 1.0), &mut rng), None);
}

#[test]
fn same_seed_gives_same_tokens() {
    let settings = config(0.9, 3, 0.95);
    let draw = |seed| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..64)
            .map(|_| sample_token(&four_way(), &settings, &mut rng).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(draw(11), draw(11));
    assert_ne!(draw(11), draw(12));
}

#[test]
fn validate_rejects_out_of_range_settings() {
    assert!(matches!(
        config(-0.1, 0, 1.0).validate(),
        Err(DecodeError::InvalidTemperature { .. })
    ));
    assert!(matches!(
        config(f32::NAN, 0, 1.0).validate(),
        Err(DecodeError::InvalidTemperature { .. })
    ));
    for top_p in [-0.1, 1.5, f32::NAN] {
        assert!(matches!(
            config(1.0, 0, top_p).validate(),
            Err(DecodeError::InvalidTopP { .. })
        ));
    }
    assert!(config(0.0, 0, 0.0).validate().is_ok());
    assert!(config(2.0, 40, 1.0).validate().is_ok());
}

#[test]
fn unfiltered_means_base_sampling() {
    assert!(SamplingConfig::new(8).is_unfiltered());
    assert!(!config(1.0, 5, 1.0).is_unfiltered());
    assert!(!config(0.8, 0, 1.0).is_unfiltered());
    assert!(!config(1.0, 0, 0.9).is_unfiltered());
}
