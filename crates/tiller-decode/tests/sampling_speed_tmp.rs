use burn::prelude::*;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use std::time::Instant;
use tiller_decode::base_decoder::tensor_rows;
use tiller_decode::{BaseDecoder, SamplingConfig, generate};
use tiller_model::{GgufFile, Llama};

#[test]
fn speed() {
    let gguf = GgufFile::open("/work/main/models/SmolLM2-135M-Instruct.Q4_1.gguf").unwrap();
    let t = Instant::now();
    let model = Llama::from_gguf(&gguf, &Device::flex()).unwrap();
    println!("load {:.2}s", t.elapsed().as_secs_f64());
    let prompt: Vec<u32> = vec![
        1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 2, 198, 1, 4093, 198,
        19161, 253, 582, 29, 19429, 2797, 282, 253, 5476, 3705, 30, 2, 198, 1, 520, 9531, 198,
    ];
    for n in [1usize, 8, 16] {
        let mut d = BaseDecoder::new(&model);
        let _ = tensor_rows(d.prefill_logits(&prompt, n).unwrap(), "x").unwrap();
        let t = Instant::now();
        for s in 0..20 {
            let l = d.step_logits(&vec![200 + s; n]).unwrap();
            let _ = tensor_rows(l, "x").unwrap();
        }
        println!("n={n} step {:.1}ms", t.elapsed().as_secs_f64() * 1e3 / 20.0);
    }
    let config = SamplingConfig::new(32);
    for (n, topk) in [(8usize, 0usize), (8, 20)] {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let t = Instant::now();
        let g = generate(&model, &prompt, n, &config, topk, &mut rng).unwrap();
        let s = t.elapsed().as_secs_f64();
        let tokens: usize = g.iter().map(|g| g.token_ids.len()).sum();
        println!(
            "generate n={n} topk={topk}: {tokens} tokens in {s:.2}s = {:.1} tok/s",
            tokens as f64 / s
        );
    }
}
