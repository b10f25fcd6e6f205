//! Tiny random-weight Llama: the KV cache, batch repetition and row selection
//! must give the same logits as full forward passes.

use burn::prelude::*;
use tiller_model::{KvCache, Llama, LlamaConfig, ModelError};

/// Two blocks, 4 query heads sharing 2 key/value heads (2 groups), head_dim 8.
fn tiny_config() -> LlamaConfig {
    LlamaConfig {
        n_layers: 2,
        d_model: 32,
        n_heads: 4,
        n_kv_heads: 2,
        d_ff: 48,
        vocab_size: 50,
        rope_theta: 10_000.0,
        rms_eps: 1e-5,
        max_seq_len: 64,
        bos_id: Some(1),
        eos_id: 2,
        tied_embeddings: true,
    }
}

fn tiny_model() -> Llama {
    tiny_config()
        .init_random(7, &Device::flex())
        .expect("valid config")
}

fn tokens(rows: &[Vec<u32>]) -> Tensor<2, Int> {
    let seq = rows[0].len();
    let ids: Vec<i64> = rows.iter().flatten().map(|&id| id as i64).collect();
    Tensor::from_data(TensorData::new(ids, [rows.len(), seq]), &Device::flex())
}

fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .into_data()
        .try_into_vec_as::<f32>()
        .expect("f32 data")
}

/// Largest absolute difference between two equally long slices.
fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Logits of the last position of each row, by one full forward pass per row.
fn reference_last_logits(model: &Llama, rows: &[Vec<u32>]) -> Vec<Vec<f32>> {
    rows.iter()
        .map(|row| {
            let mut cache = KvCache::new();
            let logits = model
                .forward(tokens(std::slice::from_ref(row)), &mut cache)
                .unwrap();
            let [_, seq, vocab] = logits.dims();
            values(logits.narrow(1, seq - 1, 1).reshape([vocab]))
        })
        .collect()
}

#[test]
fn incremental_decoding_matches_full_forward() {
    let model = tiny_model();
    let vocab = model.config().vocab_size;
    let rows = vec![
        vec![1, 7, 9, 13, 22, 5, 41, 3],
        vec![1, 30, 8, 8, 49, 0, 17, 26],
    ];
    let mut full_cache = KvCache::new();
    let full = values(model.forward(tokens(&rows), &mut full_cache).unwrap());
    assert_eq!(full_cache.len(), 8);

    // Prefill 3 positions, then a chunk of 2, then single tokens.
    let chunks = [(0, 3), (3, 5), (5, 6), (6, 7), (7, 8)];
    let mut cache = KvCache::new();
    for (start, end) in chunks {
        let chunk: Vec<Vec<u32>> = rows.iter().map(|row| row[start..end].to_vec()).collect();
        let logits = values(model.forward(tokens(&chunk), &mut cache).unwrap());
        assert_eq!(cache.len(), end);
        for (row, _) in rows.iter().enumerate() {
            for position in start..end {
                let got = &logits[(row * (end - start) + position - start) * vocab..][..vocab];
                let expected = &full[(row * 8 + position) * vocab..][..vocab];
                let difference = max_difference(got, expected);
                assert!(
                    difference < 1e-4,
                    "row {row} position {position}: max difference {difference}"
                );
            }
        }
    }
}

#[test]
fn forward_last_matches_last_position() {
    let model = tiny_model();
    let rows = vec![vec![1, 4, 9, 16], vec![1, 8, 27, 10]];
    let last = values(
        model
            .forward_last(tokens(&rows), &mut KvCache::new())
            .unwrap(),
    );
    let expected: Vec<f32> = reference_last_logits(&model, &rows).concat();
    assert!(max_difference(&last, &expected) < 1e-4);
}

#[test]
fn repeat_batch_continues_each_row_from_the_prompt() {
    let model = tiny_model();
    let prompt = vec![1, 11, 12, 13];
    let mut cache = KvCache::new();
    model
        .forward_last(tokens(std::slice::from_ref(&prompt)), &mut cache)
        .unwrap();
    cache.repeat_batch(3).unwrap();
    assert_eq!(cache.batch_size(), 3);
    assert_eq!(cache.len(), 4);

    let next = [20u32, 21, 22];
    let step: Vec<Vec<u32>> = next.iter().map(|&id| vec![id]).collect();
    let logits = values(model.forward_last(tokens(&step), &mut cache).unwrap());
    let expected_rows: Vec<Vec<u32>> = next
        .iter()
        .map(|&id| [prompt.clone(), vec![id]].concat())
        .collect();
    let expected = reference_last_logits(&model, &expected_rows).concat();
    assert!(max_difference(&logits, &expected) < 1e-4);
}

#[test]
fn select_rows_reorders_and_duplicates_rows() {
    let model = tiny_model();
    let rows = vec![vec![1, 3, 5], vec![1, 6, 9], vec![1, 40, 2]];
    let mut cache = KvCache::new();
    model.forward_last(tokens(&rows), &mut cache).unwrap();
    cache.select_rows(&[2, 0, 2, 1]).unwrap();
    assert_eq!(cache.batch_size(), 4);

    let next = [7u32, 8, 9, 10];
    let step: Vec<Vec<u32>> = next.iter().map(|&id| vec![id]).collect();
    let logits = values(model.forward_last(tokens(&step), &mut cache).unwrap());
    let expected_rows: Vec<Vec<u32>> = [2usize, 0, 2, 1]
        .iter()
        .zip(next)
        .map(|(&source, id)| [rows[source].clone(), vec![id]].concat())
        .collect();
    let expected = reference_last_logits(&model, &expected_rows).concat();
    assert!(max_difference(&logits, &expected) < 1e-4);
}

#[test]
fn cache_grows_past_its_first_capacity() {
    // 64 positions cross no chunk boundary, so use a longer context: the cache
    // allocates 128 positions at a time.
    let config = LlamaConfig {
        max_seq_len: 200,
        ..tiny_config()
    };
    let model = config.init_random(7, &Device::flex()).unwrap();
    let row: Vec<u32> = (0..140).map(|i| (i * 7 % 50) as u32).collect();
    let mut cache = KvCache::new();
    model
        .forward_last(tokens(&[row[..126].to_vec()]), &mut cache)
        .unwrap();
    let mut last = Vec::new();
    for &id in &row[126..] {
        last = values(model.forward_last(tokens(&[vec![id]]), &mut cache).unwrap());
    }
    assert_eq!(cache.len(), 140);
    let expected = reference_last_logits(&model, &[row]).concat();
    assert!(max_difference(&last, &expected) < 1e-4);
}

#[test]
fn cloned_cache_is_independent() {
    let model = tiny_model();
    let mut cache = KvCache::new();
    model
        .forward_last(tokens(&[vec![1, 2, 3]]), &mut cache)
        .unwrap();
    let snapshot = cache.clone();
    model.forward_last(tokens(&[vec![4]]), &mut cache).unwrap();
    let mut branch = snapshot.clone();
    let logits = values(model.forward_last(tokens(&[vec![5]]), &mut branch).unwrap());
    assert_eq!(snapshot.len(), 3);
    assert_eq!(cache.len(), 4);
    let expected = reference_last_logits(&model, &[vec![1, 2, 3, 5]]).concat();
    assert!(max_difference(&logits, &expected) < 1e-4);
}

#[test]
fn untied_output_projection_is_used() {
    let config = LlamaConfig {
        tied_embeddings: false,
        ..tiny_config()
    };
    let model = config.init_random(7, &Device::flex()).unwrap();
    let logits = model
        .forward(tokens(&[vec![1, 2, 3]]), &mut KvCache::new())
        .unwrap();
    assert_eq!(logits.dims(), [1, 3, 50]);
}

#[test]
fn forward_rejects_invalid_input() {
    let model = tiny_model();
    let mut cache = KvCache::new();

    let out_of_range = model.forward(tokens(&[vec![1, 50]]), &mut cache);
    assert!(matches!(
        out_of_range,
        Err(ModelError::TokenOutOfRange { token: 50, .. })
    ));
    assert!(cache.is_empty(), "a rejected pass must not touch the cache");

    model.forward(tokens(&[vec![1, 2]]), &mut cache).unwrap();
    let wrong_batch = model.forward(tokens(&[vec![3], vec![4]]), &mut cache);
    assert!(matches!(
        wrong_batch,
        Err(ModelError::CacheBatchMismatch {
            cache_batch: 1,
            batch: 2
        })
    ));

    let too_long = model.forward(tokens(&[vec![3; 63]]), &mut cache);
    assert!(matches!(
        too_long,
        Err(ModelError::ContextOverflow {
            needed: 65,
            max_seq_len: 64
        })
    ));
    assert_eq!(cache.len(), 2);
}

#[test]
fn cache_rejects_invalid_rows() {
    let model = tiny_model();
    let mut empty = KvCache::new();
    assert!(matches!(
        empty.repeat_batch(2),
        Err(ModelError::EmptyCache { .. })
    ));

    let mut cache = KvCache::new();
    model.forward(tokens(&[vec![1, 2]]), &mut cache).unwrap();
    assert!(matches!(cache.repeat_batch(0), Err(ModelError::ZeroRepeat)));
    assert!(matches!(
        cache.select_rows(&[]),
        Err(ModelError::EmptyRowSelection)
    ));
    assert!(matches!(
        cache.select_rows(&[0, 1]),
        Err(ModelError::CacheRowOutOfRange { row: 1, batch: 1 })
    ));
    assert_eq!(cache.batch_size(), 1);
}

#[test]
fn config_validation_names_the_field() {
    let bad_heads = LlamaConfig {
        n_kv_heads: 3,
        ..tiny_config()
    };
    assert!(matches!(
        bad_heads.validate(),
        Err(ModelError::InvalidConfig {
            field: "n_kv_heads",
            ..
        })
    ));
    let bad_eos = LlamaConfig {
        eos_id: 50,
        ..tiny_config()
    };
    assert!(matches!(
        bad_eos.validate(),
        Err(ModelError::InvalidConfig {
            field: "eos_id",
            ..
        })
    ));
    let bad_theta = LlamaConfig {
        rope_theta: 0.0,
        ..tiny_config()
    };
    assert!(matches!(
        bad_theta.validate(),
        Err(ModelError::InvalidConfig {
            field: "rope_theta",
            ..
        })
    ));
}
