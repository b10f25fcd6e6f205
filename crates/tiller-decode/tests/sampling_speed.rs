//! Decode speed of `generate` on the real SmolLM2-135M-Instruct model: 8
//! samples of 32 new tokens for one chat-templated prompt. Ignored by default
//! because it measures rather than checks; run it alone on an idle machine:
//!
//! ```text
//! cargo test --release -p tiller-decode --test sampling_speed -- --ignored --nocapture
//! ```
//!
//! The model is found in `$TILLER_MODELS` or `<repo>/models` (scripts/setup.sh).

use std::time::Instant;

use burn::prelude::*;
use tiller_decode::{SamplingConfig, generate};
use tiller_model::{ChatTemplate, GgufFile, Llama, tokenizer_from_gguf};

mod common;
use common::model_path;

#[test]
#[ignore = "measures decode speed on the real model"]
fn generate_speed_eight_samples() {
    let gguf = GgufFile::open(model_path()).unwrap();
    let started = Instant::now();
    let model = Llama::from_gguf(&gguf, &Device::flex()).unwrap();
    println!("model load: {:.2} s", started.elapsed().as_secs_f64());

    let text = ChatTemplate::from_gguf(&gguf)
        .unwrap()
        .apply_user("Write a one-sentence review of a coffee shop.");
    let tokenizer = tokenizer_from_gguf(&gguf).unwrap();
    let prompt = tokenizer.encode(text, false).unwrap().get_ids().to_vec();

    let config = SamplingConfig::new(32);
    for topk in [0, 20] {
        let mut rng = config.rng();
        let started = Instant::now();
        let generations = generate(&model, &prompt, 8, &config, topk, &mut rng).unwrap();
        let seconds = started.elapsed().as_secs_f64();
        let tokens: usize = generations.iter().map(|g| g.token_ids.len()).sum();
        println!(
            "generate n=8, 32 new tokens, {}-token prompt, topk {topk}: {tokens} tokens in \
             {seconds:.2} s = {:.1} tokens/s",
            prompt.len(),
            tokens as f64 / seconds
        );
    }
}
