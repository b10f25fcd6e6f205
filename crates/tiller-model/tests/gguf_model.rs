//! The real SmolLM2-135M-Instruct GGUF: metadata, tensor index, dequantized
//! values against the reference fixture written by scripts/reference_smollm2.py,
//! and the file's SHA-256.
//!
//! The model is found in `$TILLER_MODELS` or `<repo>/models`. These tests fail
//! when it is missing: run scripts/setup.sh to fetch it.

mod common;

use common::{model_path, reference_fixture as fixture};

use tiller_model::{GGmlType, GgufFile, sha256_file};

fn open_model() -> GgufFile {
    GgufFile::open(model_path()).unwrap()
}

#[test]
fn model_metadata_matches_smollm2() {
    let gguf = open_model();
    assert_eq!(gguf.architecture().unwrap(), "llama");
    assert_eq!(gguf.metadata_u32("llama.block_count").unwrap(), 30);
    assert_eq!(gguf.metadata_u32("llama.embedding_length").unwrap(), 576);
    assert_eq!(
        gguf.metadata_u32("llama.feed_forward_length").unwrap(),
        1536
    );
    assert_eq!(gguf.metadata_u32("llama.attention.head_count").unwrap(), 9);
    assert_eq!(
        gguf.metadata_u32("llama.attention.head_count_kv").unwrap(),
        3
    );
    assert_eq!(gguf.metadata_u32("llama.context_length").unwrap(), 8192);
    assert_eq!(gguf.metadata_u32("llama.vocab_size").unwrap(), 49152);
    assert_eq!(gguf.metadata_u32("llama.rope.dimension_count").unwrap(), 64);
    assert_eq!(gguf.metadata_f32("llama.rope.freq_base").unwrap(), 1e5);
    assert_eq!(
        gguf.metadata_f32("llama.attention.layer_norm_rms_epsilon")
            .unwrap(),
        1e-5
    );
    assert_eq!(gguf.metadata_str("tokenizer.ggml.pre").unwrap(), "smollm");
    assert_eq!(
        gguf.metadata_array_len("tokenizer.ggml.tokens").unwrap(),
        49152
    );
}

#[test]
fn model_tensor_index() {
    let gguf = open_model();
    // 30 blocks of 9 tensors, token_embd.weight and output_norm.weight.
    assert_eq!(gguf.tensor_names().len(), 30 * 9 + 2);
    // Tied embeddings: there is no separate output projection.
    assert!(!gguf.contains_tensor("output.weight"));

    let embedding = gguf.tensor_info("token_embd.weight").unwrap();
    assert_eq!(embedding.ggml_type, GGmlType::Q8_0);
    assert_eq!(embedding.shape, [49152, 576]);

    // 3 KV heads of 64 dimensions: [192, 576] as a PyTorch linear weight.
    let key = gguf.tensor_info("blk.0.attn_k.weight").unwrap();
    assert_eq!(key.ggml_type, GGmlType::Q4_1);
    assert_eq!(key.shape, [192, 576]);
    let down = gguf.tensor_info("blk.29.ffn_down.weight").unwrap();
    assert_eq!(down.shape, [576, 1536]);
}

#[test]
fn model_tensors_match_reference_values() {
    let gguf = open_model();
    let fixture = fixture();
    let samples = fixture["tensors"].as_array().unwrap();
    assert!(!samples.is_empty());
    for sample in samples {
        let name = sample["name"].as_str().unwrap();
        let (shape, values) = gguf.tensor_f32(name).unwrap();
        let expected_shape: Vec<usize> = sample["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(shape, expected_shape, "{name} shape");
        assert_eq!(values.len(), shape.iter().product::<usize>(), "{name}");

        // Both sides compute d * q (+ m) in f32, so the values agree exactly.
        let first: Vec<f32> = sample["first_values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(values[..first.len()], first[..], "{name} first values");
        let last: Vec<f32> = sample["last_values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(
            values[values.len() - last.len()..],
            last[..],
            "{name} last values"
        );

        // numpy sums in a different order; f64 rounding over 28M terms stays
        // far below 1e-9 relative.
        let sum: f64 = values.iter().map(|&v| f64::from(v)).sum();
        let expected_sum = sample["sum"].as_f64().unwrap();
        assert!(
            (sum - expected_sum).abs() <= 1e-9 * expected_sum.abs().max(1.0),
            "{name} sum {sum} vs reference {expected_sum}"
        );
    }
}

#[test]
fn model_sha256_matches_fixture() {
    let fixture = fixture();
    let expected = fixture["model"]["sha256"].as_str().unwrap();
    assert_eq!(sha256_file(&model_path()).unwrap(), expected);
}
