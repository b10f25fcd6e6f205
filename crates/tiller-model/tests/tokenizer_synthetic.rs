//! Tokenizer and chat template construction on a tiny GGUF written here, so
//! these checks run without the real model.

use std::path::PathBuf;

use tiller_model::{ChatTemplate, GgufFile, ModelError, SpecialTokens, tokenizer_from_gguf};

const META_U32: u32 = 4;
const META_I32: u32 = 5;
const META_BOOL: u32 = 7;
const META_STRING: u32 = 8;
const META_ARRAY: u32 = 9;

/// Byte-level spellings: "Ġ" is the space byte 0x20.
const TOKENS: [&str; 11] = [
    "<s>", "</s>", "a", "b", "ab", "Ġ", "Ġab", "1", "2", "ĠĠ", "<|x|>",
];
/// 3 = control (special), 4 = user-defined (added, not special), 1 = normal.
const TOKEN_TYPES: [i32; 11] = [3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 4];
const MERGES: [&str; 3] = ["a b", "Ġ ab", "Ġ Ġ"];

fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn kv(out: &mut Vec<u8>, key: &str, value_type: u32, value: &[u8]) {
    put_string(out, key);
    out.extend_from_slice(&value_type.to_le_bytes());
    out.extend_from_slice(value);
}

fn string_value(s: &str) -> Vec<u8> {
    let mut value = Vec::new();
    put_string(&mut value, s);
    value
}

fn string_array(values: &[&str]) -> Vec<u8> {
    let mut value = META_STRING.to_le_bytes().to_vec();
    value.extend_from_slice(&(values.len() as u64).to_le_bytes());
    for s in values {
        put_string(&mut value, s);
    }
    value
}

fn i32_array(values: &[i32]) -> Vec<u8> {
    let mut value = META_I32.to_le_bytes().to_vec();
    value.extend_from_slice(&(values.len() as u64).to_le_bytes());
    for v in values {
        value.extend_from_slice(&v.to_le_bytes());
    }
    value
}

/// Builds a GGUF with no tensors and the given tokenizer model, pre-tokenizer
/// and add_bos flag. BOS is `<s>` (0) and EOS `</s>` (1).
fn tokenizer_gguf(model: &str, pre: &str, add_bos: bool, template: &str) -> Vec<u8> {
    let mut kvs = Vec::new();
    kv(
        &mut kvs,
        "general.architecture",
        META_STRING,
        &string_value("llama"),
    );
    kv(
        &mut kvs,
        "tokenizer.ggml.model",
        META_STRING,
        &string_value(model),
    );
    kv(
        &mut kvs,
        "tokenizer.ggml.pre",
        META_STRING,
        &string_value(pre),
    );
    kv(
        &mut kvs,
        "tokenizer.ggml.tokens",
        META_ARRAY,
        &string_array(&TOKENS),
    );
    kv(
        &mut kvs,
        "tokenizer.ggml.token_type",
        META_ARRAY,
        &i32_array(&TOKEN_TYPES),
    );
    kv(
        &mut kvs,
        "tokenizer.ggml.merges",
        META_ARRAY,
        &string_array(&MERGES),
    );
    kv(
        &mut kvs,
        "tokenizer.ggml.bos_token_id",
        META_U32,
        &0u32.to_le_bytes(),
    );
    kv(
        &mut kvs,
        "tokenizer.ggml.eos_token_id",
        META_U32,
        &1u32.to_le_bytes(),
    );
    kv(
        &mut kvs,
        "tokenizer.ggml.add_bos_token",
        META_BOOL,
        &[u8::from(add_bos)],
    );
    kv(
        &mut kvs,
        "tokenizer.chat_template",
        META_STRING,
        &string_value(template),
    );

    let mut out = b"GGUF".to_vec();
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes()); // tensors
    out.extend_from_slice(&10u64.to_le_bytes()); // metadata KVs
    out.extend_from_slice(&kvs);
    out
}

const CHATML: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' \
     + message['content'] + '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}\
     {{ '<|im_start|>assistant\\n' }}{% endif %}";

fn open(bytes: &[u8]) -> (tempfile::TempDir, GgufFile) {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("tokenizer.gguf");
    std::fs::write(&path, bytes).unwrap();
    let gguf = GgufFile::open(&path).unwrap();
    (dir, gguf)
}

fn encode(gguf: &GgufFile, text: &str) -> Vec<u32> {
    let tokenizer = tokenizer_from_gguf(gguf).unwrap();
    tokenizer.encode(text, true).unwrap().get_ids().to_vec()
}

#[test]
fn tokenizer_applies_merges_and_adds_bos() {
    let (_dir, gguf) = open(&tokenizer_gguf("gpt2", "smollm", true, CHATML));
    // BOS, "ab" (merge a+b), "Ġab" (merge Ġ+ab), then digits one by one.
    assert_eq!(encode(&gguf, "ab ab12"), [0, 4, 6, 7, 8]);
    // The control token <s> in the text is matched whole.
    assert_eq!(encode(&gguf, "<s>ab"), [0, 0, 4]);
    // The user-defined token <|x|> is matched whole too.
    assert_eq!(encode(&gguf, "ab<|x|>a"), [0, 4, 10, 2]);
}

#[test]
fn tokenizer_splits_digits_first() {
    let (_dir, gguf) = open(&tokenizer_gguf("gpt2", "smollm", false, CHATML));
    // Digits split first leave "a  " for the GPT-2 regex, whose trailing
    // whitespace run "  " merges to "ĠĠ" (9). Without the digit split the
    // regex would cut " " + " 1" and give "Ġ" (5) twice.
    assert_eq!(encode(&gguf, "a  1"), [2, 9, 7]);
}

#[test]
fn tokenizer_adds_no_bos_when_metadata_says_false() {
    let (_dir, gguf) = open(&tokenizer_gguf("gpt2", "smollm", false, CHATML));
    assert_eq!(encode(&gguf, "ab"), [4]);
    let special = SpecialTokens::from_gguf(&gguf).unwrap();
    assert_eq!(special.bos_id, Some(0));
    assert_eq!(special.eos_id, Some(1));
    assert!(!special.add_bos);
}

#[test]
fn tokenizer_decodes_byte_level() {
    let (_dir, gguf) = open(&tokenizer_gguf("gpt2", "smollm", true, CHATML));
    let tokenizer = tokenizer_from_gguf(&gguf).unwrap();
    assert_eq!(
        tokenizer.decode(&[0, 4, 6, 7, 8], false).unwrap(),
        "<s>ab ab12"
    );
    assert_eq!(tokenizer.decode(&[0, 4, 6, 7, 8], true).unwrap(), "ab ab12");
}

#[test]
fn tokenizer_rejects_other_models() {
    let (_dir, gguf) = open(&tokenizer_gguf("llama", "smollm", false, CHATML));
    let error = tokenizer_from_gguf(&gguf).unwrap_err();
    assert!(matches!(error, ModelError::Tokenizer { .. }), "{error}");
    assert!(error.to_string().contains("`llama`"), "{error}");
}

#[test]
fn tokenizer_rejects_other_pre_tokenizers() {
    let (_dir, gguf) = open(&tokenizer_gguf("gpt2", "qwen2", false, CHATML));
    let error = tokenizer_from_gguf(&gguf).unwrap_err();
    assert!(error.to_string().contains("`qwen2`"), "{error}");
}

#[test]
fn chat_template_from_gguf_renders_chatml() {
    let (_dir, gguf) = open(&tokenizer_gguf("gpt2", "smollm", false, CHATML));
    let template = ChatTemplate::from_gguf(&gguf).unwrap();
    assert_eq!(
        template.apply_user("Hi there"),
        "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n"
    );
    assert_eq!(template.prefix(), "<|im_start|>user\n");
    assert_eq!(template.suffix(), "<|im_end|>\n<|im_start|>assistant\n");
    assert_eq!(template.source(), CHATML);
}

#[test]
fn chat_template_passes_bos_token() {
    let source = "{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}{% endfor %}\
                  {% if add_generation_prompt %} =>{% endif %}{{ eos_token }}";
    let template = ChatTemplate::from_source(source, "<s>", "</s>", "test").unwrap();
    assert_eq!(template.apply_user("x"), "<s>[user] x =></s>");
}

#[test]
fn chat_template_trims_blocks_like_transformers() {
    // transformers renders with trim_blocks and lstrip_blocks, so the newline
    // after a block tag and the indentation before it disappear.
    let source = "{% for m in messages %}\n    {% if m.role == 'user' %}\nU: {{ m.content }}\n    {% endif %}\n{% endfor %}";
    let template = ChatTemplate::from_source(source, "", "", "test").unwrap();
    assert_eq!(template.apply_user("q"), "U: q\n");
}

#[test]
fn chat_template_rejects_trimmed_content() {
    let source = "{% for m in messages %}<{{ m.content | trim }}>{% endfor %}";
    let error = ChatTemplate::from_source(source, "", "", "test").unwrap_err();
    assert!(matches!(error, ModelError::ChatTemplate { .. }), "{error}");
}

#[test]
fn chat_template_reports_raise_exception() {
    let source = "{{ raise_exception('only system messages') }}";
    let error = ChatTemplate::from_source(source, "", "", "test").unwrap_err();
    assert!(
        error.to_string().contains("only system messages"),
        "{error}"
    );
}

#[test]
fn chat_template_reports_syntax_errors() {
    let error = ChatTemplate::from_source("{% for m in messages %}", "", "", "broken").unwrap_err();
    assert!(error.to_string().contains("broken"), "{error}");
}
