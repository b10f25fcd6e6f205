//! Rollout generation with a tiny random model and a word-level tokenizer,
//! written through the rollout writer and read back.

use std::str::FromStr;

use burn::tensor::Device;
use tiller_data::{
    FinishReason, Prompt, RolloutMetadata, RolloutReader, RolloutRecord, RolloutWriter,
};
use tiller_decode::rollout::{
    ChatModel, RolloutConfig, prompt_seed, reward_token_count, run_rollouts,
};
use tiller_model::{ChatTemplate, Llama, LlamaConfig};
use tiller_reward::{LengthReward, RewardModel};
use tokenizers::Tokenizer;

const WORDS: [&str; 8] = ["[UNK]", "a", "b", "c", "d", "e", "f", "<eos>"];
const EOS_ID: u32 = 7;
const MAX_NEW_TOKENS: usize = 6;

fn tiny_tokenizer() -> Tokenizer {
    let vocab: Vec<String> = WORDS
        .iter()
        .enumerate()
        .map(|(id, word)| format!("\"{word}\": {id}"))
        .collect();
    let json = format!(
        r#"{{
            "version": "1.0", "truncation": null, "padding": null,
            "added_tokens": [{{"id": {EOS_ID}, "content": "<eos>", "single_word": false,
                "lstrip": false, "rstrip": false, "normalized": false, "special": true}}],
            "normalizer": null, "pre_tokenizer": {{"type": "Whitespace"}},
            "post_processor": null, "decoder": null,
            "model": {{"type": "WordLevel", "vocab": {{{}}}, "unk_token": "[UNK]"}}
        }}"#,
        vocab.join(", ")
    );
    Tokenizer::from_str(&json).unwrap()
}

fn tiny_model() -> Llama {
    LlamaConfig {
        n_layers: 1,
        d_model: 16,
        n_heads: 2,
        n_kv_heads: 1,
        d_ff: 32,
        vocab_size: WORDS.len(),
        rope_theta: 10_000.0,
        rms_eps: 1e-5,
        max_seq_len: 64,
        bos_id: None,
        eos_id: EOS_ID,
        tied_embeddings: false,
    }
    .init(&Device::flex())
    .unwrap()
}

fn prompts() -> Vec<Prompt> {
    ["a b", "c d e", "f"]
        .iter()
        .enumerate()
        .map(|(i, text)| Prompt {
            prompt_id: format!("p{i}"),
            prompt: text.to_string(),
        })
        .collect()
}

/// Runs rollouts for `prompts` into a fresh directory and reads them back.
fn rollouts(
    model: &Llama,
    prompts: &[Prompt],
    cfg: &RolloutConfig,
    reward: &dyn RewardModel,
) -> Vec<RolloutRecord> {
    let tokenizer = tiny_tokenizer();
    let template = ChatTemplate::from_source(
        "{% for message in messages %}{{ message['content'] }}{% endfor %}",
        "",
        "<eos>",
        "test template",
    )
    .unwrap();
    let chat_model = ChatModel {
        model,
        tokenizer: &tokenizer,
        template: &template,
    };
    let dir = tempfile::tempdir().unwrap();
    let metadata = RolloutMetadata::new(
        "tiny",
        "0".repeat(64),
        "0".repeat(64),
        reward.settings(),
        cfg.to_json(),
    );
    let mut writer = RolloutWriter::create(dir.path(), "rollouts", metadata, 100).unwrap();
    let summary = run_rollouts(&chat_model, reward, prompts, cfg, &mut writer, false).unwrap();
    let paths = writer.finish().unwrap();

    assert_eq!(summary.prompts, prompts.len());
    assert_eq!(summary.responses, prompts.len() * cfg.samples_per_prompt);
    let records: Vec<RolloutRecord> = RolloutReader::open(&paths)
        .unwrap()
        .records()
        .map(|r| r.unwrap())
        .collect();
    let tokens: usize = records.iter().map(|r| r.response_token_ids.len()).sum();
    assert_eq!(summary.tokens, tokens);
    records
}

fn small_config() -> RolloutConfig {
    RolloutConfig {
        samples_per_prompt: 3,
        max_new_tokens: MAX_NEW_TOKENS,
        topk_cache: 4,
        seed: 9,
        ..RolloutConfig::default()
    }
}

#[test]
fn rollout_records_are_complete() {
    let model = tiny_model();
    let reward = LengthReward::new(MAX_NEW_TOKENS).unwrap();
    let cfg = small_config();
    let records = rollouts(&model, &prompts(), &cfg, &reward);
    assert_eq!(records.len(), 9);

    for record in &records {
        let tokens = &record.response_token_ids;
        assert_eq!(record.response_logprobs.len(), tokens.len());
        assert!(record.response_logprobs.iter().all(|&l| l <= 0.0));
        let topk_ids = record.topk_token_ids.as_ref().unwrap();
        assert_eq!(topk_ids.len(), tokens.len());
        assert!(topk_ids.iter().all(|ids| ids.len() == 4));
        assert!(tokens.len() <= MAX_NEW_TOKENS);
        match record.finish_reason {
            FinishReason::Eos => assert_eq!(tokens.last(), Some(&EOS_ID)),
            FinishReason::Length => assert_eq!(tokens.len(), MAX_NEW_TOKENS),
            FinishReason::Stop => panic!("no stop ids were configured"),
        }
        // The response text never contains the special EOS token.
        assert!(!record.response.contains("<eos>"));
        // The reward counts tokens without the final EOS.
        let count = reward_token_count(tokens.len(), record.finish_reason);
        assert_eq!(
            record.reward,
            reward.score(&record.prompt, &record.response, count)
        );
    }
    let indices: Vec<i32> = records
        .iter()
        .filter(|r| r.prompt_id == "p1")
        .map(|r| r.sample_index)
        .collect();
    assert_eq!(indices, vec![0, 1, 2]);
}

#[test]
fn rollout_does_not_depend_on_order() {
    let model = tiny_model();
    let reward = LengthReward::new(MAX_NEW_TOKENS).unwrap();
    let cfg = small_config();
    let forward = rollouts(&model, &prompts(), &cfg, &reward);
    let mut reversed_prompts = prompts();
    reversed_prompts.reverse();
    let reversed = rollouts(&model, &reversed_prompts[..2], &cfg, &reward);

    for record in &reversed {
        let same = forward
            .iter()
            .find(|r| r.prompt_id == record.prompt_id && r.sample_index == record.sample_index)
            .unwrap();
        assert_eq!(same.response_token_ids, record.response_token_ids);
    }
}

#[test]
fn prompt_seeds_differ() {
    assert_eq!(prompt_seed(1, "p0"), prompt_seed(1, "p0"));
    assert_ne!(prompt_seed(1, "p0"), prompt_seed(1, "p1"));
    assert_ne!(prompt_seed(1, "p0"), prompt_seed(2, "p0"));
}

#[test]
fn rollout_config_rejects_unknown_fields() {
    let cfg: RolloutConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, RolloutConfig::default());
    assert_eq!(cfg.topk_cache, 20);
    let unknown: Result<RolloutConfig, _> = serde_json::from_str(r#"{"temprature": 0.5}"#);
    assert!(unknown.is_err());
}
