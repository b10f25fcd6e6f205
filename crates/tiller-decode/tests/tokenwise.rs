//! Tokenwise and blockwise controlled decoding on an enumerable toy problem:
//! a vocabulary of 3 tokens (token 2 is EOS), responses of at most 4 tokens,
//! a fixed base distribution and fixed scorer values, all functions of the
//! response prefix.

use std::collections::HashMap;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tiller_data::FinishReason;
use tiller_decode::DecodeError;
use tiller_decode::blockwise::{BlockwiseConfig, blockwise_decode, blockwise_kl_bound};
use tiller_decode::tokenwise::{
    PrefixScorer, StepDecoder, TokenwiseConfig, WeightedScorers, kl_divergence, log_sum_exp,
    tokenwise_decode, tokenwise_log_policy,
};

const VOCAB: usize = 3;
const EOS: u32 = 2;
const MAX_LEN: usize = 4;
const PROMPT: [u32; 2] = [0, 1];

/// Base log-probs after response prefix `history`, as an f32 log-softmax.
fn base_log_probs(history: &[u32]) -> Vec<f32> {
    let t = history.len() as f32;
    let last = history.last().map_or(3.0, |&z| z as f32);
    let logits: Vec<f32> = (0..VOCAB)
        .map(|z| (1.0 + 1.3 * z as f32 + 0.7 * t + 0.4 * last).sin() * 1.5)
        .collect();
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = logits.iter().map(|l| (l - max).exp()).sum();
    logits.iter().map(|l| l - max - sum.ln()).collect()
}

/// Scorer value `Q(s, z)` after response prefix `history`.
fn toy_q(history: &[u32], z: u32) -> f32 {
    let ones = history.iter().filter(|&&t| t == 1).count() as f32;
    (0.9 * z as f32 + 0.5 * history.len() as f32 + 0.3 * ones).cos()
}

/// Decoder over the toy base distribution. It keeps every row's response
/// history, so tests can check what the decoding loop fed it.
struct ToyDecoder {
    histories: Vec<Vec<u32>>,
}

impl ToyDecoder {
    fn new() -> Self {
        ToyDecoder {
            histories: Vec::new(),
        }
    }
}

impl StepDecoder for ToyDecoder {
    fn eos_id(&self) -> u32 {
        EOS
    }

    fn prefill(&mut self, prompt_ids: &[u32], rows: usize) -> Result<Vec<Vec<f32>>, DecodeError> {
        assert_eq!(prompt_ids, PROMPT);
        self.histories = vec![Vec::new(); rows];
        Ok(vec![base_log_probs(&[]); rows])
    }

    fn step(&mut self, tokens: &[u32]) -> Result<Vec<Vec<f32>>, DecodeError> {
        assert_eq!(tokens.len(), self.histories.len());
        for (history, &token) in self.histories.iter_mut().zip(tokens) {
            history.push(token);
        }
        Ok(self.histories.iter().map(|h| base_log_probs(h)).collect())
    }

    fn select_rows(&mut self, rows: &[usize]) -> Result<(), DecodeError> {
        self.histories = rows.iter().map(|&r| self.histories[r].clone()).collect();
        Ok(())
    }
}

/// Scorer with the toy Q values, and `V(s) = ` number of token 1 in the
/// response, NaN when the response starts with `nan_first_token`.
struct ToyScorer {
    scale: f32,
    nan_first_token: Option<u32>,
}

impl PrefixScorer for ToyScorer {
    fn state_values(&self, sequences: &[Vec<u32>]) -> Result<Vec<f32>, DecodeError> {
        Ok(sequences
            .iter()
            .map(|s| {
                let response = &s[PROMPT.len()..];
                if self.nan_first_token.is_some()
                    && response.first() == self.nan_first_token.as_ref()
                {
                    f32::NAN
                } else {
                    self.scale * response.iter().filter(|&&t| t == 1).count() as f32
                }
            })
            .collect())
    }

    fn next_token_q(&self, sequences: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, DecodeError> {
        Ok(sequences
            .iter()
            .map(|s| {
                let history = &s[PROMPT.len()..];
                (0..VOCAB as u32)
                    .map(|z| self.scale * toy_q(history, z))
                    .collect()
            })
            .collect())
    }
}

const SCORER: ToyScorer = ToyScorer {
    scale: 1.0,
    nan_first_token: None,
};

/// Exact base log-probs in f64, renormalised.
fn exact_base(history: &[u32]) -> Vec<f64> {
    let base: Vec<f64> = base_log_probs(history)
        .iter()
        .map(|&v| f64::from(v))
        .collect();
    let normaliser = log_sum_exp(&base);
    base.iter().map(|v| v - normaliser).collect()
}

/// Tokenwise policy written out independently of the library:
/// `π(z) ∝ p(z) · exp(λ Q(z))`, computed in f64.
fn exact_policy(history: &[u32], lambda: f64) -> Vec<f64> {
    let base = exact_base(history);
    let unnormalised: Vec<f64> = (0..VOCAB)
        .map(|z| base[z].exp() * (lambda * f64::from(toy_q(history, z as u32))).exp())
        .collect();
    let total: f64 = unnormalised.iter().sum();
    unnormalised.iter().map(|u| u / total).collect()
}

/// Returns every complete response: one that ends with EOS or has `MAX_LEN`
/// tokens.
fn all_responses() -> Vec<Vec<u32>> {
    let mut done = Vec::new();
    let mut open = vec![Vec::new()];
    while let Some(prefix) = open.pop() {
        for z in 0..VOCAB as u32 {
            let mut next = prefix.clone();
            next.push(z);
            if z == EOS || next.len() == MAX_LEN {
                done.push(next);
            } else {
                open.push(next);
            }
        }
    }
    done
}

/// Probability of `response` under the per-prefix distribution `policy`.
fn sequence_prob(response: &[u32], policy: &dyn Fn(&[u32]) -> Vec<f64>) -> f64 {
    (0..response.len())
        .map(|t| policy(&response[..t])[response[t] as usize])
        .product()
}

/// Sequence-level `KL(π ‖ p) = Σ_y π(y) log(π(y)/p(y))` by enumeration.
fn exact_sequence_kl(lambda: f64) -> f64 {
    all_responses()
        .iter()
        .map(|y| {
            let pi = sequence_prob(y, &|h| exact_policy(h, lambda));
            let p = sequence_prob(y, &|h| exact_base(h).iter().map(|v| v.exp()).collect());
            pi * (pi / p).ln()
        })
        .sum()
}

/// Computes the library's per-token KL at prefix `history`.
fn library_step_kl(history: &[u32], lambda: f32, top_k: usize) -> f64 {
    let base = base_log_probs(history);
    let q: Vec<f32> = (0..VOCAB as u32).map(|z| toy_q(history, z)).collect();
    let policy = tokenwise_log_policy(&base, &q, lambda, top_k).unwrap();
    kl_divergence(&policy, &base)
}

#[test]
fn policy_matches_independent_formula() {
    for history in [vec![], vec![1], vec![0, 1, 0]] {
        let base = base_log_probs(&history);
        let q: Vec<f32> = (0..VOCAB as u32).map(|z| toy_q(&history, z)).collect();
        let policy = tokenwise_log_policy(&base, &q, 1.5, 0).unwrap();
        let expected = exact_policy(&history, 1.5);
        for z in 0..VOCAB {
            assert!(
                (policy[z].exp() - expected[z]).abs() < 1e-6,
                "history {history:?} token {z}"
            );
        }
    }
}

#[test]
fn summed_token_kl_equals_sequence_kl() {
    // E_π[Σ_t KL(π(·|s_t) ‖ p(·|s_t))] over every reachable prefix, using the
    // library's KL, must equal the sequence-level KL by enumeration.
    for lambda in [0.5f32, 1.0, 3.0] {
        let mut expected_token_sum = 0.0;
        for y in all_responses() {
            let pi_y = sequence_prob(&y, &|h| exact_policy(h, f64::from(lambda)));
            let path_kl: f64 = (0..y.len())
                .map(|t| library_step_kl(&y[..t], lambda, 0))
                .sum();
            expected_token_sum += pi_y * path_kl;
        }
        let exact = exact_sequence_kl(f64::from(lambda));
        assert!(exact > 0.01);
        assert!(
            (expected_token_sum - exact).abs() < 1e-6,
            "λ = {lambda}: token sum {expected_token_sum}, enumeration {exact}"
        );
    }
}

#[test]
fn lambda_zero_returns_base_exactly() {
    let base = base_log_probs(&[1, 0]);
    let policy = tokenwise_log_policy(&base, &[], 0.0, 0).unwrap();
    for z in 0..VOCAB {
        assert_eq!(policy[z], f64::from(base[z]));
    }
    assert_eq!(kl_divergence(&policy, &base), 0.0);
}

#[test]
fn top_k_restricts_support() {
    // λ = 0 on the top 2 tokens is p renormalised on them, so the KL is
    // -log(mass of the top 2).
    let history = [0u32];
    let base = base_log_probs(&history);
    let policy = tokenwise_log_policy(&base, &[0.0; VOCAB], 0.0, 2).unwrap();
    let excluded = (0..VOCAB)
        .min_by(|&a, &b| base[a].total_cmp(&base[b]))
        .unwrap();
    assert_eq!(policy[excluded], f64::NEG_INFINITY);
    let exact = exact_base(&history);
    let kept_mass: f64 = (0..VOCAB)
        .filter(|&z| z != excluded)
        .map(|z| exact[z].exp())
        .sum();
    let kl = kl_divergence(&policy, &base);
    assert!(
        (kl + kept_mass.ln()).abs() < 1e-9,
        "kl {kl}, -log mass {}",
        -kept_mass.ln()
    );
}

#[test]
fn non_finite_q_is_error() {
    let base = base_log_probs(&[]);
    assert!(tokenwise_log_policy(&base, &[0.0, f32::NAN, 0.0], 1.0, 0).is_err());
    assert!(tokenwise_log_policy(&base, &[0.0, 0.0], 1.0, 0).is_err());
}

/// Counts each distinct response among `responses`.
fn frequencies(responses: &[Vec<u32>]) -> HashMap<Vec<u32>, usize> {
    let mut counts = HashMap::new();
    for r in responses {
        *counts.entry(r.clone()).or_insert(0) += 1;
    }
    counts
}

/// Checks sampled frequencies against `prob(y)` with a 5-sigma band.
fn assert_distribution(responses: &[Vec<u32>], prob: &dyn Fn(&[u32]) -> f64) {
    let counts = frequencies(responses);
    let n = responses.len() as f64;
    let mut total = 0.0;
    for y in all_responses() {
        let p = prob(&y);
        total += p;
        let observed = *counts.get(&y).unwrap_or(&0) as f64;
        let sigma = (n * p * (1.0 - p)).sqrt().max(1.0);
        assert!(
            (observed - n * p).abs() < 5.0 * sigma,
            "response {y:?}: observed {observed}, expected {}",
            n * p
        );
    }
    assert!((total - 1.0).abs() < 1e-9);
}

#[test]
fn tokenwise_samples_follow_policy() {
    let lambda = 2.0f32;
    let cfg = TokenwiseConfig {
        lambda,
        top_k: 0,
        samples: 20_000,
        max_new_tokens: MAX_LEN,
        stop_ids: Vec::new(),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let responses = tokenwise_decode(
        &mut ToyDecoder::new(),
        Some(&SCORER),
        &PROMPT,
        &cfg,
        &mut rng,
    )
    .unwrap();
    assert_eq!(responses.len(), 20_000);

    for response in &responses {
        let y = &response.token_ids;
        // The response KL is the exact per-token sum along its own path.
        let path_kl: f64 = (0..y.len())
            .map(|t| library_step_kl(&y[..t], lambda, 0))
            .sum();
        assert!((response.kl - path_kl).abs() < 1e-12);
        // Base log-probs are the decoder's, token by token.
        for t in 0..y.len() {
            assert_eq!(
                response.base_log_probs[t],
                base_log_probs(&y[..t])[y[t] as usize]
            );
        }
        let ends_with_eos = y.last() == Some(&EOS);
        assert_eq!(response.finish_reason == FinishReason::Eos, ends_with_eos);
        assert_eq!(
            response.finish_reason == FinishReason::Length,
            !ends_with_eos
        );
        assert!(ends_with_eos || y.len() == MAX_LEN);
        assert_eq!(response.tokens_sampled, y.len());
    }
    let sampled: Vec<Vec<u32>> = responses.iter().map(|r| r.token_ids.clone()).collect();
    assert_distribution(&sampled, &|y| {
        sequence_prob(y, &|h| exact_policy(h, f64::from(lambda)))
    });

    // The mean response KL estimates the sequence-level KL. Its standard
    // error is below 0.01 here, so 0.05 is a 5-sigma band.
    let mean_kl = responses.iter().map(|r| r.kl).sum::<f64>() / responses.len() as f64;
    let exact = exact_sequence_kl(f64::from(lambda));
    assert!(
        (mean_kl - exact).abs() < 0.05,
        "mean {mean_kl}, exact {exact}"
    );
}

#[test]
fn tokenwise_lambda_zero_samples_base() {
    let cfg = TokenwiseConfig {
        lambda: 0.0,
        top_k: 0,
        samples: 20_000,
        max_new_tokens: MAX_LEN,
        stop_ids: Vec::new(),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    // No scorer is needed at λ = 0.
    let responses =
        tokenwise_decode(&mut ToyDecoder::new(), None, &PROMPT, &cfg, &mut rng).unwrap();
    assert!(responses.iter().all(|r| r.kl == 0.0));
    let sampled: Vec<Vec<u32>> = responses.iter().map(|r| r.token_ids.clone()).collect();
    assert_distribution(&sampled, &|y| {
        sequence_prob(y, &|h| exact_base(h).iter().map(|v| v.exp()).collect())
    });
}

#[test]
fn tokenwise_stop_ids_end_responses() {
    let cfg = TokenwiseConfig {
        lambda: 1.0,
        top_k: 0,
        samples: 200,
        max_new_tokens: MAX_LEN,
        stop_ids: vec![1],
    };
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let responses = tokenwise_decode(
        &mut ToyDecoder::new(),
        Some(&SCORER),
        &PROMPT,
        &cfg,
        &mut rng,
    )
    .unwrap();
    let mut stops = 0;
    for response in &responses {
        let y = &response.token_ids;
        // Only the final token may end the response.
        assert!(y[..y.len() - 1].iter().all(|&t| t == 0));
        match response.finish_reason {
            FinishReason::Stop => {
                stops += 1;
                assert_eq!(*y.last().unwrap(), 1);
            }
            FinishReason::Eos => assert_eq!(*y.last().unwrap(), EOS),
            FinishReason::Length => assert_eq!(y.len(), MAX_LEN),
        }
    }
    assert!(stops > 0);
}

#[test]
fn tokenwise_without_scorer_is_error() {
    let cfg = TokenwiseConfig {
        lambda: 1.0,
        samples: 2,
        max_new_tokens: MAX_LEN,
        ..TokenwiseConfig::default()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let result = tokenwise_decode(&mut ToyDecoder::new(), None, &PROMPT, &cfg, &mut rng);
    assert!(matches!(result, Err(DecodeError::NoScorers)));
}

#[test]
fn tokenwise_config_rejects_unknown_fields() {
    let parsed: Result<TokenwiseConfig, _> =
        serde_json::from_str(r#"{"lambda": 1.0, "lamda": 2.0}"#);
    assert!(parsed.is_err());
    let parsed: TokenwiseConfig = serde_json::from_str(r#"{"top_k": 5}"#).unwrap();
    assert_eq!(parsed.lambda, 1.0);
    assert_eq!(parsed.top_k, 5);
}

#[test]
fn weighted_scorers_add_values() {
    let double = ToyScorer {
        scale: 2.0,
        nan_first_token: None,
    };
    let mix = WeightedScorers {
        members: vec![(&SCORER, 0.5), (&double, 3.0)],
    };
    let sequences = vec![[PROMPT.as_slice(), &[1, 1, 0]].concat()];
    // V = 2 ones: 0.5 · 2 + 3 · (2 · 2) = 13.
    assert_eq!(mix.state_values(&sequences).unwrap(), vec![13.0]);
    let q = mix.next_token_q(&sequences).unwrap();
    for z in 0..VOCAB as u32 {
        let expected = 0.5 * toy_q(&[1, 1, 0], z) + 3.0 * 2.0 * toy_q(&[1, 1, 0], z);
        assert!((q[0][z as usize] - expected).abs() < 1e-6);
    }
    let empty = WeightedScorers { members: vec![] };
    assert!(matches!(
        empty.next_token_q(&sequences),
        Err(DecodeError::NoScorers)
    ));
}

#[test]
fn blockwise_bound_hand_computed() {
    // K = 4, M = 3, L = 7: (log 4 - 3/4) · ceil(7/3) = 0.6362944 · 3.
    let bound = blockwise_kl_bound(4, 3, 7);
    assert!((bound - 3.0 * (4f64.ln() - 0.75)).abs() < 1e-12);
    assert_eq!(blockwise_kl_bound(1, 3, 7), 0.0);
    assert_eq!(blockwise_kl_bound(4, 3, 0), 0.0);
    assert!((blockwise_kl_bound(2, 2, 4) - 2.0 * (2f64.ln() - 0.5)).abs() < 1e-12);
}

fn block_cfg(blocks: usize, block_len: usize, samples: usize) -> BlockwiseConfig {
    BlockwiseConfig {
        blocks,
        block_len,
        samples,
        max_new_tokens: MAX_LEN,
        stop_ids: Vec::new(),
    }
}

#[test]
fn blockwise_with_one_block_samples_base() {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let cfg = block_cfg(1, 2, 10_000);
    let responses =
        blockwise_decode(&mut ToyDecoder::new(), &SCORER, &PROMPT, &cfg, &mut rng).unwrap();
    assert!(responses.iter().all(|r| r.kl == 0.0));
    let sampled: Vec<Vec<u32>> = responses.iter().map(|r| r.token_ids.clone()).collect();
    assert_distribution(&sampled, &|y| {
        sequence_prob(y, &|h| exact_base(h).iter().map(|v| v.exp()).collect())
    });
}

#[test]
fn blockwise_raises_value_and_reports_bound() {
    let ones = |responses: &[tiller_decode::tokenwise::CdResponse]| {
        responses
            .iter()
            .map(|r| r.token_ids.iter().filter(|&&t| t == 1).count() as f64)
            .sum::<f64>()
            / responses.len() as f64
    };
    let mut rng = ChaCha8Rng::seed_from_u64(22);
    let base = blockwise_decode(
        &mut ToyDecoder::new(),
        &SCORER,
        &PROMPT,
        &block_cfg(1, 2, 2000),
        &mut rng,
    )
    .unwrap();
    let mut decoder = ToyDecoder::new();
    let guided = blockwise_decode(
        &mut decoder,
        &SCORER,
        &PROMPT,
        &block_cfg(8, 2, 2000),
        &mut rng,
    )
    .unwrap();
    // The scorer counts token 1, so keeping the best of 8 blocks must raise
    // the mean count clearly (it is below 2 and its sd below 1.5).
    assert!(
        ones(&guided) > ones(&base) + 0.3,
        "guided {} base {}",
        ones(&guided),
        ones(&base)
    );

    for response in &guided {
        let len = response.token_ids.len();
        assert!(len <= MAX_LEN);
        assert_eq!(response.kl, blockwise_kl_bound(8, 2, len));
        assert_eq!(
            response.finish_reason == FinishReason::Eos,
            response.token_ids.last() == Some(&EOS)
        );
        // 8 rows sample every position of every round, unless all of a
        // round's rows stop early.
        assert!(response.tokens_sampled >= len);
        assert!(response.tokens_sampled <= 8 * len.div_ceil(2) * 2);
    }

    // After the last round every decoder row continues the kept prefix.
    let last = guided.last().unwrap();
    let rounds = last.token_ids.len().div_ceil(2);
    let kept_before_last_round = &last.token_ids[..2 * (rounds - 1)];
    for history in &decoder.histories {
        assert!(
            history.starts_with(kept_before_last_round),
            "row {history:?}, kept {kept_before_last_round:?}"
        );
    }
}

#[test]
fn blockwise_nan_never_wins() {
    let scorer = ToyScorer {
        scale: 1.0,
        nan_first_token: Some(1),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(23);
    // One block covers the whole response, so a response starting with
    // token 1 could only be kept through a NaN value. The base model starts
    // with token 1 with probability about 0.14, so about 300 · 0.14 of the
    // responses would without the NaN rule, and all 8 candidates start with
    // it with probability 0.14^8, below 1e-6.
    let cfg = BlockwiseConfig {
        blocks: 8,
        block_len: MAX_LEN,
        samples: 300,
        max_new_tokens: MAX_LEN,
        stop_ids: Vec::new(),
    };
    let responses =
        blockwise_decode(&mut ToyDecoder::new(), &scorer, &PROMPT, &cfg, &mut rng).unwrap();
    assert!(responses.iter().all(|r| r.token_ids[0] != 1));
}

/// Scorer whose every value is NaN.
struct NanScorer;

impl PrefixScorer for NanScorer {
    fn state_values(&self, sequences: &[Vec<u32>]) -> Result<Vec<f32>, DecodeError> {
        Ok(vec![f32::NAN; sequences.len()])
    }

    fn next_token_q(&self, sequences: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, DecodeError> {
        Ok(vec![vec![f32::NAN; VOCAB]; sequences.len()])
    }
}

#[test]
fn blockwise_all_nan_is_error() {
    let mut rng = ChaCha8Rng::seed_from_u64(24);
    let result = blockwise_decode(
        &mut ToyDecoder::new(),
        &NanScorer,
        &PROMPT,
        &block_cfg(4, 2, 1),
        &mut rng,
    );
    assert!(matches!(
        result,
        Err(DecodeError::AllScoresNaN { candidates: 4 })
    ));
    let result = blockwise_decode(
        &mut ToyDecoder::new(),
        &NanScorer,
        &PROMPT,
        &block_cfg(0, 2, 1),
        &mut rng,
    );
    assert!(matches!(result, Err(DecodeError::InvalidSetting { .. })));
}
