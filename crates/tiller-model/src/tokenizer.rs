//! The tokenizer and chat template that a GGUF file describes in its metadata.
//!
//! [`tokenizer_from_gguf`] rebuilds the byte-level BPE tokenizer from
//! `tokenizer.ggml.*` metadata as a `tokenizers::Tokenizer`, and
//! [`ChatTemplate`] renders the Jinja template in `tokenizer.chat_template`.

use std::path::Path;

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, PreTokenizerWrapper, Tokenizer};

use crate::{GgufFile, ModelError};

/// `tokenizer.ggml.token_type` values, as llama.cpp's `llama_token_type` defines them.
const TOKEN_TYPE_CONTROL: i32 = 3;
const TOKEN_TYPE_USER_DEFINED: i32 = 4;

/// Pre-tokenizer names (`tokenizer.ggml.pre`) that llama.cpp splits as each
/// digit alone, then the GPT-2 regex (llama.cpp src/llama-vocab.cpp,
/// `LLAMA_VOCAB_PRE_TYPE_SMOLLM` and the types it shares a case with).
const DIGIT_SPLIT_PRE_TOKENIZERS: &[&str] = &["smollm"];

/// Builds the tokenizer described by a GGUF file's `tokenizer.ggml.*` metadata.
///
/// Supports `tokenizer.ggml.model = "gpt2"` (byte-level BPE) with the
/// `smollm` pre-tokenizer, which llama.cpp defines as each digit split off on
/// its own, then the GPT-2 byte-level regex. Here that is a `Digits`
/// pre-tokenizer with `individual_digits` followed by `ByteLevel`.
/// Control tokens (token type 3) become special tokens and user-defined
/// tokens (type 4) plain added tokens, both matched whole in the input text.
/// BOS and EOS are added by `encode(.., true)` only when
/// `tokenizer.ggml.add_bos_token` / `add_eos_token` are true.
pub fn tokenizer_from_gguf(gguf: &GgufFile) -> Result<Tokenizer, ModelError> {
    let error = |reason: String| ModelError::Tokenizer {
        path: gguf.path().to_path_buf(),
        reason,
    };

    let model = gguf.metadata_str("tokenizer.ggml.model")?;
    if model != "gpt2" {
        return Err(error(format!(
            "tokenizer.ggml.model is `{model}`, but only `gpt2` (byte-level BPE) is supported"
        )));
    }
    let pre = gguf.metadata_str("tokenizer.ggml.pre")?;
    if !DIGIT_SPLIT_PRE_TOKENIZERS.contains(&pre) {
        return Err(error(format!(
            "tokenizer.ggml.pre is `{pre}`, but only {DIGIT_SPLIT_PRE_TOKENIZERS:?} are supported"
        )));
    }

    let tokens = gguf.metadata_str_array("tokenizer.ggml.tokens")?;
    let token_types = if gguf.contains_metadata("tokenizer.ggml.token_type") {
        gguf.metadata_i32_array("tokenizer.ggml.token_type")?
    } else {
        vec![1; tokens.len()]
    };
    if token_types.len() != tokens.len() {
        return Err(error(format!(
            "tokenizer.ggml.token_type has {} entries but tokenizer.ggml.tokens has {}",
            token_types.len(),
            tokens.len()
        )));
    }
    let vocab = vocab_from_tokens(&tokens).map_err(error)?;
    let merges = gguf
        .metadata_str_array("tokenizer.ggml.merges")?
        .into_iter()
        .enumerate()
        .map(|(i, merge)| match merge.split_once(' ') {
            Some((left, right)) => Ok((left.to_string(), right.to_string())),
            None => Err(error(format!(
                "merge #{i} `{merge}` is not two tokens separated by a space"
            ))),
        })
        .collect::<Result<Vec<_>, _>>()?;

    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| error(format!("invalid BPE vocabulary or merges: {e}")))?;
    let mut tokenizer = Tokenizer::new(bpe);
    let pre_tokenizers: Vec<PreTokenizerWrapper> = vec![
        Digits::new(true).into(),
        ByteLevel::new(false, true, true).into(),
    ];
    tokenizer.with_pre_tokenizer(Some(Sequence::new(pre_tokenizers)));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));

    let mut control = Vec::new();
    let mut user_defined = Vec::new();
    for (token, &token_type) in tokens.iter().zip(&token_types) {
        match token_type {
            TOKEN_TYPE_CONTROL => control.push(AddedToken::from(*token, true).normalized(false)),
            TOKEN_TYPE_USER_DEFINED => {
                user_defined.push(AddedToken::from(*token, false).normalized(false))
            }
            _ => {}
        }
    }
    tokenizer.add_special_tokens(&control);
    tokenizer.add_tokens(&user_defined);

    let special = SpecialTokens::from_gguf(gguf)?;
    if let Some(processor) = bos_eos_processor(&special, &tokens).map_err(error)? {
        tokenizer.with_post_processor(Some(processor));
    }
    Ok(tokenizer)
}

/// Maps token strings to ids. A string listed twice keeps its first id.
fn vocab_from_tokens(tokens: &[&str]) -> Result<Vocab, String> {
    let mut vocab = Vocab::with_capacity(tokens.len());
    let mut duplicates = 0usize;
    for (id, token) in tokens.iter().enumerate() {
        let id = u32::try_from(id).map_err(|_| format!("{} tokens exceed u32", tokens.len()))?;
        if vocab.contains_key(*token) {
            duplicates += 1;
        } else {
            vocab.insert(token.to_string(), id);
        }
    }
    if duplicates > 0 {
        // NOTE: the later ids of a duplicated string decode to nothing.
        tracing::warn!(duplicates, "tokenizer.ggml.tokens lists some strings twice");
    }
    Ok(vocab)
}

/// Template post-processor that adds BOS and/or EOS, or `None` when neither is requested.
fn bos_eos_processor(
    special: &SpecialTokens,
    tokens: &[&str],
) -> Result<Option<TemplateProcessing>, String> {
    let mut prefix = Vec::new();
    let mut suffix = Vec::new();
    let mut special_tokens = Vec::new();
    for (add, id, role, pieces) in [
        (special.add_bos, special.bos_id, "bos", &mut prefix),
        (special.add_eos, special.eos_id, "eos", &mut suffix),
    ] {
        if !add {
            continue;
        }
        let id = id.ok_or_else(|| {
            format!("tokenizer.ggml.add_{role}_token is true but tokenizer.ggml.{role}_token_id is missing")
        })?;
        let token = tokens[id as usize].to_string();
        pieces.push(token.clone());
        special_tokens.push((token, id));
    }
    if prefix.is_empty() && suffix.is_empty() {
        return Ok(None);
    }

    let sequence = |name: &str| {
        let mut pieces = prefix.clone();
        pieces.push(name.to_string());
        pieces.extend(suffix.iter().cloned());
        pieces
    };
    let mut pair = sequence("$A");
    pair.extend(sequence("$B:1"));
    let processor = TemplateProcessing::builder()
        .try_single(sequence("$A"))
        .and_then(|builder| builder.try_pair(pair))
        .map_err(|e| format!("invalid BOS/EOS template: {e}"))?
        .special_tokens(special_tokens)
        .build()
        .map_err(|e| format!("invalid BOS/EOS template: {e}"))?;
    Ok(Some(processor))
}

/// Writes a tokenizer as a `tokenizer.json` file that `Tokenizer::from_file`
/// (and Hugging Face `tokenizers` in Python) can load.
pub fn save_tokenizer_json(tokenizer: &Tokenizer, path: &Path) -> Result<(), ModelError> {
    tokenizer
        .save(path, false)
        .map_err(|e| ModelError::Tokenizer {
            path: path.to_path_buf(),
            reason: format!("failed to write tokenizer.json: {e}"),
        })
}

/// Special token ids and BOS/EOS flags from `tokenizer.ggml.*` metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialTokens {
    /// `tokenizer.ggml.bos_token_id`.
    pub bos_id: Option<u32>,
    /// `tokenizer.ggml.eos_token_id`: generation stops when the model emits it.
    pub eos_id: Option<u32>,
    /// `tokenizer.ggml.unknown_token_id`.
    pub unknown_id: Option<u32>,
    /// `tokenizer.ggml.padding_token_id`.
    pub padding_id: Option<u32>,
    /// `tokenizer.ggml.add_bos_token`, false when missing.
    pub add_bos: bool,
    /// `tokenizer.ggml.add_eos_token`, false when missing.
    pub add_eos: bool,
}

impl SpecialTokens {
    /// Reads the special token metadata and checks each id against the vocabulary size.
    pub fn from_gguf(gguf: &GgufFile) -> Result<Self, ModelError> {
        let vocab_size = gguf.metadata_array_len("tokenizer.ggml.tokens")?;
        let id = |name: &str| -> Result<Option<u32>, ModelError> {
            let key = format!("tokenizer.ggml.{name}");
            if !gguf.contains_metadata(&key) {
                return Ok(None);
            }
            let id = gguf.metadata_u32(&key)?;
            if id as usize >= vocab_size {
                return Err(ModelError::InvalidMetadata {
                    path: gguf.path().to_path_buf(),
                    key,
                    reason: format!("token id {id} is not below the vocabulary size {vocab_size}"),
                });
            }
            Ok(Some(id))
        };
        let flag = |name: &str| -> Result<bool, ModelError> {
            let key = format!("tokenizer.ggml.{name}");
            if gguf.contains_metadata(&key) {
                gguf.metadata_bool(&key)
            } else {
                Ok(false)
            }
        };
        Ok(Self {
            bos_id: id("bos_token_id")?,
            eos_id: id("eos_token_id")?,
            unknown_id: id("unknown_token_id")?,
            padding_id: id("padding_token_id")?,
            add_bos: flag("add_bos_token")?,
            add_eos: flag("add_eos_token")?,
        })
    }

    /// Returns the EOS id, or an error naming the missing key.
    pub fn require_eos(&self, gguf: &GgufFile) -> Result<u32, ModelError> {
        self.eos_id.ok_or_else(|| ModelError::MetadataNotFound {
            path: gguf.path().to_path_buf(),
            key: "tokenizer.ggml.eos_token_id".to_string(),
        })
    }

    /// Returns the BOS id, or an error naming the missing key.
    pub fn require_bos(&self, gguf: &GgufFile) -> Result<u32, ModelError> {
        self.bos_id.ok_or_else(|| ModelError::MetadataNotFound {
            path: gguf.path().to_path_buf(),
            key: "tokenizer.ggml.bos_token_id".to_string(),
        })
    }
}

/// A chat template, compiled for single-user-message prompts.
///
/// Rendering follows transformers' `apply_chat_template` settings
/// (`trim_blocks`, `lstrip_blocks`, `raise_exception`, with `messages`,
/// `add_generation_prompt`, `bos_token` and `eos_token` in the context).
/// The template is rendered once at construction with two probe messages,
/// which yields the text before and after the user message. After that,
/// [`ChatTemplate::apply_user`] only concatenates strings and cannot fail.
///
/// NOTE: a template whose output depends on what the message says (say, a
/// test for a keyword) passes the probes but renders other messages with the
/// probes' branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatTemplate {
    source: String,
    prefix: String,
    suffix: String,
}

/// Probe user messages. Surrounding whitespace, quotes, `<`, `&` and mixed
/// case expose a template that trims, escapes or re-cases the message.
const PROBES: [&str; 2] = [
    " \n<Tiller probe \"ONE\" & 'one'>\t ",
    "\ttiller-PROBE two\u{2028}< >&\n",
];

impl ChatTemplate {
    /// Compiles `tokenizer.chat_template`, with `bos_token` and `eos_token`
    /// set from the token strings of the BOS and EOS ids (empty when absent).
    pub fn from_gguf(gguf: &GgufFile) -> Result<Self, ModelError> {
        let source = gguf.metadata_str("tokenizer.chat_template")?;
        let special = SpecialTokens::from_gguf(gguf)?;
        let tokens = gguf.metadata_str_array("tokenizer.ggml.tokens")?;
        let text = |id: Option<u32>| id.map_or("", |id| tokens[id as usize]);
        Self::from_source(
            source,
            text(special.bos_id),
            text(special.eos_id),
            &gguf.path().display().to_string(),
        )
    }

    /// Compiles a Jinja chat template; `origin` names it in error messages.
    ///
    /// Fails when the template does not compile or render, or when it does not
    /// insert the user message unchanged (for example `content | trim`).
    pub fn from_source(
        source: &str,
        bos_token: &str,
        eos_token: &str,
        origin: &str,
    ) -> Result<Self, ModelError> {
        let error = |reason: String| ModelError::ChatTemplate {
            origin: origin.to_string(),
            reason,
        };
        let mut parts = Vec::with_capacity(PROBES.len());
        for probe in PROBES {
            let rendered = render_single_user(source, probe, bos_token, eos_token)
                .map_err(|e| error(format!("failed to render a user message: {e:#}")))?;
            let mut pieces = rendered.split(probe);
            let (Some(prefix), Some(suffix), None) = (pieces.next(), pieces.next(), pieces.next())
            else {
                return Err(error(format!(
                    "the rendered prompt does not contain the user message exactly once, so \
                     the template changes it; rendered: {rendered:?}"
                )));
            };
            parts.push((prefix.to_string(), suffix.to_string()));
        }
        if parts[0] != parts[1] {
            return Err(error(
                "the text around the user message depends on the message itself".to_string(),
            ));
        }
        let (prefix, suffix) = parts.swap_remove(0);
        Ok(Self {
            source: source.to_string(),
            prefix,
            suffix,
        })
    }

    /// Renders one user message with the generation prompt appended, e.g. for
    /// SmolLM2 `<|im_start|>system\n…<|im_end|>\n<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n`.
    pub fn apply_user(&self, prompt: &str) -> String {
        let mut text = String::with_capacity(self.prefix.len() + prompt.len() + self.suffix.len());
        text.push_str(&self.prefix);
        text.push_str(prompt);
        text.push_str(&self.suffix);
        text
    }

    /// Returns the text before the user message, including any default system message.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Returns the text after the user message, ending with the generation prompt.
    pub fn suffix(&self) -> &str {
        &self.suffix
    }

    /// Returns the Jinja source.
    pub fn source(&self) -> &str {
        &self.source
    }
}

/// Renders `source` for `messages = [{role: "user", content}]` and `add_generation_prompt = true`.
fn render_single_user(
    source: &str,
    content: &str,
    bos_token: &str,
    eos_token: &str,
) -> Result<String, minijinja::Error> {
    let mut env = minijinja::Environment::new();
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()?,
    );
    env.add_function("raise_exception", |message: String| -> Result<(), _> {
        Err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("the template raised: {message}"),
        ))
    });
    let messages = vec![minijinja::context! { role => "user", content => content }];
    let context = minijinja::context! {
        messages => messages,
        add_generation_prompt => true,
        bos_token => bos_token,
        eos_token => eos_token,
    };
    env.render_str(source, context)
}
