//! One tokenwise controlled-decoding step on the real base model gives the
//! same log-probabilities on every compiled backend as on flex.
//!
//! Compiled only with a GPU backend feature; the devices come from
//! `TILLER_PARITY_DEVICES` (comma-separated, e.g. `tch-cuda:0,vulkan`) or
//! default to each compiled backend that runs without a GPU:
//!
//! ```text
//! cargo test --release -p tiller-decode --features tch --test backend_parity -- --nocapture
//! ```
#![cfg(any(feature = "wgpu", feature = "tch"))]

use burn::prelude::*;
use tiller_decode::BaseDecoder;
use tiller_decode::base_decoder::tensor_rows;
use tiller_decode::tokenwise::{tokenwise_log_policy, top_k_indices};
use tiller_model::device::parity_devices;
use tiller_model::{
    ChatTemplate, GgufFile, Llama, Precision, ScorerConfig, ScorerHead, tokenizer_from_gguf,
};

mod common;
use common::model_path;

/// Tokens compared per row: the base model's most likely ones, where the
/// log-probabilities are large enough for a difference to change a sample.
const COMPARED: usize = 50;

/// Largest accepted difference of a log-probability from flex's, in nats,
/// when the base model runs in f32; measured: 2.9e-5 on tch-cpu, 1.4e-4 on
/// wgpu over lavapipe.
const F32_TOLERANCE: f64 = 2e-3;

/// The same for a base model in bf16: its 8-bit mantissa leaves about two
/// significant digits in each activation.
const BF16_TOLERANCE: f64 = 0.5;

/// The same for f16: a 10-bit mantissa, three significant digits.
const F16_TOLERANCE: f64 = 0.1;

/// Strength of the scorer's pull on the policy, as in the quickstart sweep.
const LAMBDA: f32 = 4.0;

/// Log-probabilities of one tokenwise step on `device`: the base model's
/// next-token `log p` after the prompt and after one more token per row,
/// and the CD policy `log π ∝ log p + λ·Q` at the second state.
struct Step {
    base: Vec<Vec<f32>>,
    policy: Vec<Vec<f64>>,
    /// The token appended to each of the two rows.
    next: [u32; 2],
}

/// Runs the step on `device`, appending the tokens in `next`. With `None`
/// it appends the two most likely tokens, as the flex reference does. The
/// other devices reuse the reference's tokens, so rounding that reorders
/// tokens cannot make them compare different states.
fn decode_step(
    device: &Device,
    precision: Precision,
    prompt: &[u32],
    vocab: usize,
    next: Option<[u32; 2]>,
) -> Step {
    let gguf = GgufFile::open(model_path()).unwrap();
    let model = Llama::from_gguf(&gguf, device)
        .unwrap()
        .cast(precision.dtype());
    let mut decoder = BaseDecoder::new(&model);
    let first = tensor_rows(decoder.prefill(prompt, 2).unwrap(), "log-probs").unwrap();
    // Two different continuations, so the step runs a batch of two on the
    // cache the prefill filled.
    let next = next.unwrap_or_else(|| {
        let order = top_k_indices(&first[0], 2);
        [order[0] as u32, order[1] as u32]
    });
    let second = tensor_rows(decoder.step(&next).unwrap(), "log-probs").unwrap();

    let scorer = ScorerConfig {
        vocab_size: vocab,
        layers: 2,
        width: 64,
        heads: 4,
        max_len: 256,
        head: ScorerHead::Vocab,
        base_embedding_dim: None,
    }
    .init_seeded(device, 11)
    .unwrap();
    let prefixes: Vec<Vec<u32>> = next
        .iter()
        .map(|&token| prompt.iter().copied().chain([token]).collect())
        .collect();
    let q = tensor_rows(scorer.next_token_q(&prefixes).unwrap(), "Q").unwrap();
    let policy = second
        .iter()
        .zip(&q)
        .map(|(log_p, q)| tokenwise_log_policy(log_p, q, LAMBDA, 0).unwrap())
        .collect();
    let mut base = first;
    base.extend(second);
    Step { base, policy, next }
}

/// Largest difference over each row's `COMPARED` most likely tokens (by the
/// reference row). A NaN on either side counts as an infinite difference.
fn worst_difference<T: Copy + Into<f64>>(reference: &[Vec<T>], other: &[Vec<T>]) -> f64 {
    reference
        .iter()
        .zip(other)
        .flat_map(|(a, b)| {
            let as_f32: Vec<f32> = a.iter().map(|&v| v.into() as f32).collect();
            top_k_indices(&as_f32, COMPARED)
                .into_iter()
                .map(move |z| (a[z].into() - b[z].into()).abs())
        })
        .map(|difference| {
            if difference.is_nan() {
                f64::INFINITY
            } else {
                difference
            }
        })
        .fold(0.0, f64::max)
}

#[test]
fn backend_parity_tokenwise_step_matches_flex() {
    let gguf = GgufFile::open(model_path()).unwrap();
    let tokenizer = tokenizer_from_gguf(&gguf).unwrap();
    let text = ChatTemplate::from_gguf(&gguf)
        .unwrap()
        .apply_user("Tell me about your favourite park.");
    let prompt = tokenizer.encode(text, false).unwrap().get_ids().to_vec();
    let vocab = tokenizer.get_vocab_size(true);
    drop(gguf);

    let reference = decode_step(&Device::flex(), Precision::F32, &prompt, vocab, None);
    let devices = parity_devices().unwrap();
    assert!(!devices.is_empty(), "no device to compare with flex");
    for spec in devices {
        for (precision, tolerance) in [
            (Precision::F32, F32_TOLERANCE),
            (Precision::Bf16, BF16_TOLERANCE),
            (Precision::F16, F16_TOLERANCE),
        ] {
            let device = match spec.open(precision) {
                Ok(device) => device,
                // Not every adapter supports bf16 or f16, but f32 must always work.
                Err(err) if precision != Precision::F32 => {
                    println!("{spec} {precision}: skipped, {err}");
                    continue;
                }
                Err(err) => panic!("{err}"),
            };
            let step = decode_step(&device, precision, &prompt, vocab, Some(reference.next));
            let base = worst_difference(&reference.base, &step.base);
            let policy = worst_difference(&reference.policy, &step.policy);
            println!(
                "{spec} {precision}: largest log-prob difference from flex {base:.2e} (base), \
                 {policy:.2e} (CD policy), over the top {COMPARED} tokens of 4 rows"
            );
            assert!(
                base <= tolerance && policy <= tolerance,
                "{spec} {precision}: log-probs differ from flex by {base:.2e} (base) and \
                 {policy:.2e} (policy), more than {tolerance:.0e} nats"
            );
        }
    }
}
