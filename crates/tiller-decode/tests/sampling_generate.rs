//! Batched generation and the stepwise decoder on a tiny random-weight Llama,
//! checked against full forward passes without a cache.

use burn::prelude::*;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use tiller_data::FinishReason;
use tiller_decode::base_decoder::tensor_rows;
use tiller_decode::sampling::log_softmax;
use tiller_decode::{BaseDecoder, DecodeError, SamplingConfig, generate};
use tiller_model::{KvCache, Llama, LlamaConfig, ModelError};

const EOS: u32 = 2;
const VOCAB: usize = 24;

fn tiny_model() -> Llama {
    let config = LlamaConfig {
        n_layers: 2,
        d_model: 32,
        n_heads: 4,
        n_kv_heads: 2,
        d_ff: 48,
        vocab_size: VOCAB,
        rope_theta: 10_000.0,
        rms_eps: 1e-5,
        max_seq_len: 40,
        bos_id: Some(1),
        eos_id: EOS,
        // A tied head on init_random's variance-1 embedding puts almost all mass
        // on the last input token. The untied head (uniform in ±1/sqrt(32)) gives
        // logits with a standard deviation of about sqrt(32 / (3 * 32)) = 0.58,
        // so every token has a fair chance.
        tied_embeddings: false,
    };
    config
        .init_random(7, &Device::flex())
        .expect("valid config")
}

/// Base log-probabilities of the token after `ids`, by one uncached forward pass.
fn reference_log_probs(model: &Llama, ids: &[u32]) -> Vec<f32> {
    let data: Vec<i64> = ids.iter().map(|&id| i64::from(id)).collect();
    let tokens = Tensor::from_data(TensorData::new(data, [1, ids.len()]), &Device::flex());
    let logits = model.forward_last(tokens, &mut KvCache::new()).unwrap();
    log_softmax(&tensor_rows(logits, "logits").unwrap()[0])
}

fn sampling(temperature: f32, max_new_tokens: usize, stop_ids: Vec<u32>) -> SamplingConfig {
    SamplingConfig {
        temperature,
        stop_ids,
        ..SamplingConfig::new(max_new_tokens)
    }
}

const PROMPT: [u32; 4] = [1, 9, 14, 6];

#[test]
fn generate_records_base_log_probs_and_finish_reasons() {
    let model = tiny_model();
    // Stop ids make some rows end early and leave the batch.
    let config = sampling(1.0, 10, vec![3, 4]);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let generations = generate(&model, &PROMPT, 6, &config, 5, &mut rng).unwrap();
    assert_eq!(generations.len(), 6);
    let finished_early = generations
        .iter()
        .filter(|g| g.finish_reason != FinishReason::Length)
        .count();
    assert!(finished_early > 0, "no row stopped; pick other stop ids");
    assert!(finished_early < 6, "every row stopped; pick other stop ids");

    for (index, generation) in generations.iter().enumerate() {
        let ids = &generation.token_ids;
        assert_eq!(generation.logprobs.len(), ids.len());
        assert_eq!(generation.topk_token_ids.len(), ids.len());
        assert_eq!(generation.topk_logprobs.len(), ids.len());
        let last = *ids.last().expect("at least one token");
        match generation.finish_reason {
            FinishReason::Eos => assert_eq!(last, EOS),
            FinishReason::Stop => assert!(config.stop_ids.contains(&last)),
            FinishReason::Length => assert_eq!(ids.len(), 10),
        }
        let ends = |id: &u32| *id == EOS || config.stop_ids.contains(id);
        assert!(
            !ids[..ids.len() - 1].iter().any(ends),
            "row {index} kept growing after a stop token: {ids:?}"
        );

        for t in 0..ids.len() {
            let context = [&PROMPT[..], &ids[..t]].concat();
            let expected = reference_log_probs(&model, &context);
            let got = generation.logprobs[t];
            let want = expected[ids[t] as usize];
            assert!(
                (got - want).abs() < 1e-4,
                "row {index} step {t}: log-prob {got}, uncached {want}"
            );
            let top = &generation.topk_logprobs[t];
            assert!(top.windows(2).all(|pair| pair[0] >= pair[1]));
            for (&id, &value) in generation.topk_token_ids[t].iter().zip(top) {
                assert!((value - expected[id as usize]).abs() < 1e-4);
            }
            assert!(got <= top[0] + 1e-6);
        }
    }
}

#[test]
fn generate_is_deterministic_for_a_seed() {
    let model = tiny_model();
    let config = sampling(1.0, 8, vec![]);
    let run = |seed| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        generate(&model, &PROMPT, 4, &config, 0, &mut rng).unwrap()
    };
    let first = run(21);
    assert_eq!(first, run(21));
    assert_ne!(first, run(22));
    assert!(first.iter().all(|g| g.topk_token_ids.is_empty()));
}

#[test]
fn greedy_generate_follows_the_argmax() {
    let model = tiny_model();
    let config = sampling(0.0, 8, vec![]);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let generations = generate(&model, &PROMPT, 2, &config, 0, &mut rng).unwrap();
    assert_eq!(generations[0], generations[1]);
    let ids = &generations[0].token_ids;
    for t in 0..ids.len() {
        let expected = reference_log_probs(&model, &[&PROMPT[..], &ids[..t]].concat());
        let best =
            expected
                .iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |best, (id, &value)| {
                    if value > best.1 { (id, value) } else { best }
                });
        assert_eq!(ids[t] as usize, best.0, "step {t}");
    }
}

#[test]
fn zero_new_tokens_returns_empty_responses() {
    let model = tiny_model();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let generations = generate(&model, &PROMPT, 3, &sampling(1.0, 0, vec![]), 4, &mut rng).unwrap();
    assert_eq!(generations.len(), 3);
    for generation in generations {
        assert!(generation.token_ids.is_empty());
        assert_eq!(generation.finish_reason, FinishReason::Length);
    }
}

#[test]
fn generate_rejects_invalid_requests() {
    let model = tiny_model();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let config = sampling(1.0, 4, vec![]);
    assert!(matches!(
        generate(&model, &PROMPT, 0, &config, 0, &mut rng),
        Err(DecodeError::ZeroSamples)
    ));
    assert!(matches!(
        generate(&model, &[], 2, &config, 0, &mut rng),
        Err(DecodeError::EmptyPrompt)
    ));
    assert!(matches!(
        generate(&model, &PROMPT, 2, &sampling(-1.0, 4, vec![]), 0, &mut rng),
        Err(DecodeError::InvalidTemperature { .. })
    ));
    // 4 prompt tokens + 38 new ones need 41 positions; the context is 40.
    assert!(matches!(
        generate(&model, &PROMPT, 2, &sampling(1.0, 38, vec![]), 0, &mut rng),
        Err(DecodeError::Model(ModelError::ContextOverflow {
            needed: 41,
            max_seq_len: 40
        }))
    ));
    assert!(matches!(
        generate(&model, &[1, VOCAB as u32], 2, &config, 0, &mut rng),
        Err(DecodeError::Model(ModelError::TokenOutOfRange { .. }))
    ));
}

#[test]
fn base_decoder_steps_match_uncached_passes() {
    let model = tiny_model();
    let mut decoder = BaseDecoder::new(&model);
    let first = tensor_rows(decoder.prefill(&PROMPT, 3).unwrap(), "log-probs").unwrap();
    assert_eq!(decoder.rows(), 3);
    assert_eq!(decoder.len(), PROMPT.len());
    let expected = reference_log_probs(&model, &PROMPT);
    for row in &first {
        assert_eq!(row.len(), VOCAB);
        assert!(row.iter().zip(&expected).all(|(a, b)| (a - b).abs() < 1e-4));
    }

    let step = tensor_rows(decoder.step(&[10, 11, 12]).unwrap(), "log-probs").unwrap();
    for (row, token) in step.iter().zip([10u32, 11, 12]) {
        let expected = reference_log_probs(&model, &[&PROMPT[..], &[token]].concat());
        assert!(row.iter().zip(&expected).all(|(a, b)| (a - b).abs() < 1e-4));
    }

    // Continue rows 2 and 0 (twice), as blockwise decoding does with its best block.
    decoder.select_rows(&[2, 2, 0]).unwrap();
    let step = tensor_rows(decoder.step(&[13, 14, 15]).unwrap(), "log-probs").unwrap();
    let histories = [[12u32, 13], [12, 14], [10, 15]];
    for (row, history) in step.iter().zip(histories) {
        let expected = reference_log_probs(&model, &[&PROMPT[..], &history].concat());
        assert!(row.iter().zip(&expected).all(|(a, b)| (a - b).abs() < 1e-4));
    }
    assert_eq!(decoder.len(), PROMPT.len() + 2);
}

#[test]
fn base_decoder_rejects_misuse() {
    let model = tiny_model();
    let mut decoder = BaseDecoder::new(&model);
    assert!(matches!(
        decoder.step(&[3]),
        Err(DecodeError::NotPrefilled { .. })
    ));
    assert!(matches!(
        decoder.select_rows(&[0]),
        Err(DecodeError::NotPrefilled { .. })
    ));
    decoder.prefill(&PROMPT, 2).unwrap();
    assert!(matches!(
        decoder.step(&[3]),
        Err(DecodeError::RowCountMismatch {
            expected: 2,
            actual: 1
        })
    ));
    assert!(matches!(
        decoder.select_rows(&[2]),
        Err(DecodeError::Model(ModelError::CacheRowOutOfRange {
            row: 2,
            batch: 2
        }))
    ));
    assert!(matches!(
        decoder.step(&[3, VOCAB as u32]),
        Err(DecodeError::Model(ModelError::TokenOutOfRange { .. }))
    ));
    assert_eq!(
        decoder.len(),
        PROMPT.len(),
        "a failed step must not advance"
    );
}
