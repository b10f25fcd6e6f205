//! The SmolLM2 tokenizer and chat template built from the GGUF metadata,
//! checked against the reference fixture written by scripts/reference_smollm2.py
//! (Hugging Face tokenizers with llama.cpp's "smollm" digit split).
//!
//! The model is found in `$TILLER_MODELS` or `<repo>/models`. These tests fail
//! when it is missing: run scripts/setup.sh to fetch it.

mod common;

use common::{model_path, reference_fixture as fixture};

use serde_json::Value;
use tiller_model::{
    ChatTemplate, GgufFile, SpecialTokens, save_tokenizer_json, tokenizer_from_gguf,
};
use tokenizers::Tokenizer;

fn ids(value: &Value) -> Vec<u32> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_u64().unwrap() as u32)
        .collect()
}

fn encode(tokenizer: &Tokenizer, text: &str) -> Vec<u32> {
    tokenizer.encode(text, true).unwrap().get_ids().to_vec()
}

fn tokenizer_cases(fixture: &Value) -> Vec<(String, Vec<u32>)> {
    fixture["tokenizer"]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|case| {
            (
                case["text"].as_str().unwrap().to_string(),
                ids(&case["ids"]),
            )
        })
        .collect()
}

#[test]
fn tokenizer_matches_reference_ids() {
    let gguf = GgufFile::open(model_path()).unwrap();
    let tokenizer = tokenizer_from_gguf(&gguf).unwrap();
    let cases = tokenizer_cases(&fixture());
    assert!(cases.len() >= 12, "fixture has {} cases", cases.len());
    for (text, expected) in &cases {
        assert_eq!(&encode(&tokenizer, text), expected, "ids of {text:?}");
    }
}

#[test]
fn tokenizer_splits_digits_before_byte_level() {
    let gguf = GgufFile::open(model_path()).unwrap();
    let tokenizer = tokenizer_from_gguf(&gguf).unwrap();
    // "  " before a digit stays one token (id 256, "ĠĠ") because the digit is
    // split off first. The GPT-2 regex alone would give "Ġ" (216) twice.
    assert_eq!(encode(&tokenizer, "a  1"), [81, 256, 33]);
    // Each digit is its own token: "1" is 33, ..., "5" is 37.
    assert_eq!(encode(&tokenizer, "12345"), [33, 34, 35, 36, 37]);
}

#[test]
fn tokenizer_round_trips_text() {
    let gguf = GgufFile::open(model_path()).unwrap();
    let tokenizer = tokenizer_from_gguf(&gguf).unwrap();
    for (text, expected) in tokenizer_cases(&fixture()) {
        let decoded = tokenizer.decode(&expected, false).unwrap();
        assert_eq!(decoded, text, "decode of the reference ids of {text:?}");
        let ids = encode(&tokenizer, &text);
        assert_eq!(
            tokenizer.decode(&ids, false).unwrap(),
            text,
            "round trip of {text:?}"
        );
    }
}

#[test]
fn tokenizer_special_tokens() {
    let gguf = GgufFile::open(model_path()).unwrap();
    let tokenizer = tokenizer_from_gguf(&gguf).unwrap();
    let special = SpecialTokens::from_gguf(&gguf).unwrap();
    assert_eq!(special.bos_id, Some(1));
    assert_eq!(special.eos_id, Some(2));
    assert_eq!(special.require_eos(&gguf).unwrap(), 2);
    assert_eq!(special.require_bos(&gguf).unwrap(), 1);
    assert!(!special.add_bos);
    assert!(!special.add_eos);
    assert_eq!(tokenizer.token_to_id("<|im_start|>"), Some(1));
    assert_eq!(tokenizer.token_to_id("<|im_end|>"), Some(2));
    assert_eq!(tokenizer.get_vocab_size(true), 49152);

    // Special tokens are dropped when decoding with skip_special_tokens.
    let ids = encode(&tokenizer, "<|im_start|>user\nhi<|im_end|>");
    assert_eq!(tokenizer.decode(&ids, true).unwrap(), "user\nhi");
    // No BOS is added to plain text.
    assert_eq!(encode(&tokenizer, "hi").first(), Some(&6004));
}

#[test]
fn chat_template_matches_reference() {
    let gguf = GgufFile::open(model_path()).unwrap();
    let tokenizer = tokenizer_from_gguf(&gguf).unwrap();
    let template = ChatTemplate::from_gguf(&gguf).unwrap();
    let fixture = fixture();
    let prompts = fixture["prompts"].as_array().unwrap();
    assert!(prompts.len() >= 3);
    for entry in prompts {
        let prompt = entry["prompt"].as_str().unwrap();
        let text = template.apply_user(prompt);
        assert_eq!(
            text,
            entry["chat_text"].as_str().unwrap(),
            "text of {prompt:?}"
        );
        assert_eq!(
            encode(&tokenizer, &text),
            ids(&entry["input_ids"]),
            "ids of {prompt:?}"
        );
    }
}

#[test]
fn chat_template_inserts_default_system_message() {
    let gguf = GgufFile::open(model_path()).unwrap();
    let template = ChatTemplate::from_gguf(&gguf).unwrap();
    assert_eq!(
        template.apply_user("hi"),
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging \
         Face<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    );
}

#[test]
fn tokenizer_json_reloads_with_same_ids() {
    let gguf = GgufFile::open(model_path()).unwrap();
    let tokenizer = tokenizer_from_gguf(&gguf).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    save_tokenizer_json(&tokenizer, &path).unwrap();
    let reloaded = Tokenizer::from_file(&path).unwrap();
    for (text, expected) in tokenizer_cases(&fixture()) {
        assert_eq!(
            encode(&reloaded, &text),
            expected,
            "reloaded ids of {text:?}"
        );
    }
}
