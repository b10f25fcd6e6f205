use super::*;
use crate::ModelError;

fn config(head: ScorerHead) -> ScorerConfig {
    ScorerConfig {
        vocab_size: 7,
        layers: 2,
        width: 8,
        heads: 2,
        max_len: 6,
        head,
        base_embedding_dim: None,
    }
}

fn device() -> Device {
    Device::flex()
}

fn values_of(tensor: Tensor<3>) -> (Vec<usize>, Vec<f32>) {
    let dims = tensor.dims().to_vec();
    (dims, tensor.try_into_vec_as::<f32>().unwrap())
}

fn padded(rows: &[Vec<u32>], pad: u32, len: usize) -> Tensor<2, Int> {
    let mut flat = Vec::new();
    for row in rows {
        for i in 0..len {
            flat.push(i64::from(row.get(i).copied().unwrap_or(pad)));
        }
    }
    Tensor::<2, Int>::from_data(TensorData::new(flat, [rows.len(), len]), &device())
}

#[test]
fn config_rejects_width_not_divisible() {
    let mut bad = config(ScorerHead::Scalar);
    bad.width = 9;
    let err = bad.validate().unwrap_err();
    assert!(matches!(
        err,
        ModelError::InvalidScorerConfig { field: "width", .. }
    ));
    assert!(err.to_string().contains("heads (2)"), "{err}");
}

#[test]
fn config_rejects_zero_dimensions() {
    for field in ["vocab_size", "layers", "width", "heads", "max_len"] {
        let mut bad = config(ScorerHead::Scalar);
        match field {
            "vocab_size" => bad.vocab_size = 0,
            "layers" => bad.layers = 0,
            "width" => bad.width = 0,
            "heads" => bad.heads = 0,
            _ => bad.max_len = 0,
        }
        let err = bad.init(&device()).unwrap_err();
        assert!(err.to_string().contains(field), "{field}: {err}");
    }
}

#[test]
fn forward_shapes_per_head() {
    let tokens = padded(&[vec![1, 2, 3], vec![4, 5, 6]], 0, 3);
    let scalar = config(ScorerHead::Scalar).init(&device()).unwrap();
    assert_eq!(scalar.forward(tokens.clone()).dims(), [2, 3, 1]);
    let vocab = config(ScorerHead::Vocab).init(&device()).unwrap();
    assert_eq!(vocab.forward(tokens).dims(), [2, 3, 7]);
}

#[test]
fn init_is_deterministic_per_seed() {
    let tokens = padded(&[vec![1, 2, 3]], 0, 3);
    let a = config(ScorerHead::Scalar)
        .init_seeded(&device(), 5)
        .unwrap();
    let b = config(ScorerHead::Scalar)
        .init_seeded(&device(), 5)
        .unwrap();
    let c = config(ScorerHead::Scalar)
        .init_seeded(&device(), 6)
        .unwrap();
    let out_a = values_of(a.forward(tokens.clone())).1;
    assert_eq!(out_a, values_of(b.forward(tokens.clone())).1);
    assert_ne!(out_a, values_of(c.forward(tokens)).1);
}

#[test]
fn outputs_are_causal() {
    // Changing the token at position 3 must leave positions 0..=2 unchanged.
    let scorer = config(ScorerHead::Vocab).init(&device()).unwrap();
    let (_, first) = values_of(scorer.forward(padded(&[vec![1, 2, 3, 4]], 0, 4)));
    let (_, second) = values_of(scorer.forward(padded(&[vec![1, 2, 3, 6]], 0, 4)));
    let per_position = 7;
    assert_eq!(first[..3 * per_position], second[..3 * per_position]);
    assert_ne!(first[3 * per_position..], second[3 * per_position..]);
}

#[test]
fn right_padding_id_does_not_matter() {
    // The same sequence padded with id 0 and with id 6 (an "EOS") gives the
    // same outputs at its real positions.
    let scorer = config(ScorerHead::Scalar).init(&device()).unwrap();
    let rows = [vec![3, 1, 4], vec![1, 5, 2, 6, 5]];
    let (_, zero_pad) = values_of(scorer.forward(padded(&rows, 0, 5)));
    let (_, eos_pad) = values_of(scorer.forward(padded(&rows, 6, 5)));
    assert_eq!(zero_pad[..3], eos_pad[..3]);
    assert_eq!(zero_pad[5..], eos_pad[5..]);
}

#[test]
fn state_values_independent_of_batch() {
    let scorer = config(ScorerHead::Scalar).init(&device()).unwrap();
    let alone = scorer.state_values(&[vec![3, 1, 4]]).unwrap();
    let batched = scorer
        .state_values(&[vec![1, 5, 2, 6, 5], vec![3, 1, 4], vec![2]])
        .unwrap();
    assert_eq!(batched.len(), 3);
    assert!(
        (alone[0] - batched[1]).abs() < 1e-6,
        "{alone:?} {batched:?}"
    );
}

#[test]
fn state_values_scalar_reads_last_position() {
    let scorer = config(ScorerHead::Scalar).init(&device()).unwrap();
    let (_, out) = values_of(scorer.forward(padded(&[vec![3, 1, 4]], 0, 3)));
    let values = scorer.state_values(&[vec![3, 1, 4]]).unwrap();
    assert!((values[0] - out[2]).abs() < 1e-6);
}

#[test]
fn state_values_vocab_reads_q_of_last_token() {
    // V(tokens) = Q(tokens[..L-1], tokens[L-1]): position L-2 = 1, id 4.
    let scorer = config(ScorerHead::Vocab).init(&device()).unwrap();
    let (_, out) = values_of(scorer.forward(padded(&[vec![3, 1, 4]], 0, 3)));
    let values = scorer.state_values(&[vec![3, 1, 4]]).unwrap();
    assert!((values[0] - out[7 + 4]).abs() < 1e-6);
}

#[test]
fn state_values_vocab_needs_two_tokens() {
    let scorer = config(ScorerHead::Vocab).init(&device()).unwrap();
    let err = scorer.state_values(&[vec![1, 2], vec![3]]).unwrap_err();
    assert!(
        matches!(err, ModelError::InvalidScorerInput { row: 1, .. }),
        "{err}"
    );
}

#[test]
fn state_values_keep_last_max_len_tokens() {
    let scorer = config(ScorerHead::Scalar).init(&device()).unwrap();
    let long = vec![1, 2, 3, 4, 5, 6, 1, 2];
    let window = long[2..].to_vec();
    let values = scorer.state_values(&[long, window]).unwrap();
    assert!((values[0] - values[1]).abs() < 1e-6);
}

#[test]
fn token_id_out_of_range_rejected() {
    let scorer = config(ScorerHead::Scalar).init(&device()).unwrap();
    let err = scorer.state_values(&[vec![1, 7]]).unwrap_err();
    assert!(err.to_string().contains("token id 7"), "{err}");
    let err = scorer.try_forward(&[vec![1; 7]]).unwrap_err();
    assert!(err.to_string().contains("max_len 6"), "{err}");
}

#[test]
fn next_token_q_matches_forward() {
    let scorer = config(ScorerHead::Vocab).init(&device()).unwrap();
    let (_, out) = values_of(scorer.forward(padded(&[vec![3, 1, 4], vec![2, 2]], 0, 3)));
    let q = scorer
        .next_token_q(&[vec![3, 1, 4], vec![2, 2]])
        .unwrap()
        .try_into_vec_as::<f32>()
        .unwrap();
    // Row 0 reads position 2, row 1 reads position 1 of the [2, 3, 7] output.
    for z in 0..7 {
        assert!((q[z] - out[2 * 7 + z]).abs() < 1e-6);
        assert!((q[7 + z] - out[3 * 7 + 7 + z]).abs() < 1e-6);
    }
}

#[test]
fn next_token_q_rejects_scalar_head() {
    let scorer = config(ScorerHead::Scalar).init(&device()).unwrap();
    let err = scorer.next_token_q(&[vec![1]]).unwrap_err();
    assert!(
        matches!(err, ModelError::ScorerHeadMismatch { .. }),
        "{err}"
    );
}

#[test]
fn head_at_matches_forward_gather() {
    let scorer = config(ScorerHead::Vocab).init(&device()).unwrap();
    let tokens = padded(&[vec![3, 1, 4], vec![2, 2, 5]], 0, 3);
    let (_, out) = values_of(scorer.forward(tokens.clone()));
    let hidden = scorer.hidden(tokens).reshape([6, 8]);
    let rows = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 4, 5], [3]), &device());
    let ids = Tensor::<1, Int>::from_data(TensorData::new(vec![6i64, 0, 3], [3]), &device());
    let q = scorer
        .head_at(hidden, rows, ids)
        .try_into_vec_as::<f32>()
        .unwrap();
    let expected = [out[6], out[4 * 7], out[5 * 7 + 3]];
    for (actual, expected) in q.iter().zip(expected) {
        assert!((actual - expected).abs() < 1e-5, "{actual} vs {expected}");
    }
}

#[test]
fn parameter_paths_follow_module_fields() {
    let scorer = config(ScorerHead::Vocab).init(&device()).unwrap();
    let names: Vec<String> = scorer.tensor_infos().into_iter().map(|t| t.name).collect();
    for expected in [
        "token_embedding.weight",
        "position_embedding.weight",
        "blocks.0.attn.wq.weight",
        "blocks.1.mlp.proj.bias",
        "blocks.0.attn_norm.gamma",
        "final_norm.beta",
        "head.weight",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} not in {names:?}"
        );
    }
}

#[test]
fn export_round_trip_identical_outputs() {
    let dir = tempfile::tempdir().unwrap();
    for head in [ScorerHead::Scalar, ScorerHead::Vocab] {
        let scorer = config(head).init_seeded(&device(), 3).unwrap();
        let mut manifest = ScorerManifest::new(scorer.config());
        manifest.objective = "fudge".to_string();
        manifest.tokenizer_sha256 = "ab".repeat(32);
        manifest.reward_normalization = RewardNormalization {
            applied: true,
            mean: 0.25,
            std: 2.0,
        };
        let export = dir.path().join(head.as_str());
        scorer.save_export(&export, &manifest).unwrap();
        let (loaded, read) = Scorer::load_export(&export, &device()).unwrap();
        assert_eq!(read.objective, "fudge");
        assert_eq!(read.reward_normalization, manifest.reward_normalization);
        assert_eq!(read.tensors, scorer.tensor_infos());
        let tokens = padded(&[vec![3, 1, 4, 1, 5]], 0, 5);
        assert_eq!(
            values_of(scorer.forward(tokens.clone())),
            values_of(loaded.forward(tokens))
        );
    }
}

/// Rewrites `scorer.safetensors` in `dir` with `edit` applied to the tensor
/// list.
fn rewrite_weights(dir: &std::path::Path, edit: impl Fn(&mut Vec<(String, Vec<usize>, Vec<u8>)>)) {
    let path = dir.join("scorer.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| (name, view.shape().to_vec(), view.data().to_vec()))
        .collect();
    edit(&mut tensors);
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(name, shape, data)| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), data)
                    .unwrap();
            (name.clone(), view)
        })
        .collect();
    safetensors::tensor::serialize_to_file(views, None, &path).unwrap();
}

#[test]
fn export_missing_tensor_named() {
    let dir = tempfile::tempdir().unwrap();
    let scorer = config(ScorerHead::Scalar).init(&device()).unwrap();
    scorer
        .save_export(dir.path(), &ScorerManifest::new(scorer.config()))
        .unwrap();
    rewrite_weights(dir.path(), |tensors| {
        tensors.retain(|(name, _, _)| name != "blocks.1.attn.wk.weight")
    });
    let err = Scorer::load_export(dir.path(), &device()).unwrap_err();
    assert!(
        matches!(&err, ModelError::ScorerTensorMissing { name, .. } if name == "blocks.1.attn.wk.weight"),
        "{err}"
    );
}

#[test]
fn export_misshaped_tensor_named() {
    let dir = tempfile::tempdir().unwrap();
    let scorer = config(ScorerHead::Scalar).init(&device()).unwrap();
    scorer
        .save_export(dir.path(), &ScorerManifest::new(scorer.config()))
        .unwrap();
    // final_norm.gamma is [8]; store 4 values as [2, 2] instead.
    rewrite_weights(dir.path(), |tensors| {
        for (name, shape, data) in tensors.iter_mut() {
            if name == "final_norm.gamma" {
                *shape = vec![2, 2];
                data.truncate(16);
            }
        }
    });
    let err = Scorer::load_export(dir.path(), &device()).unwrap_err();
    match &err {
        ModelError::ScorerTensorShape {
            name,
            expected,
            actual,
            ..
        } => {
            assert_eq!(name, "final_norm.gamma");
            assert_eq!(expected, &vec![8]);
            assert_eq!(actual, &vec![2, 2]);
        }
        other => panic!("unexpected error {other}"),
    }
}

#[test]
fn export_extra_tensor_named() {
    let dir = tempfile::tempdir().unwrap();
    let scorer = config(ScorerHead::Scalar).init(&device()).unwrap();
    scorer
        .save_export(dir.path(), &ScorerManifest::new(scorer.config()))
        .unwrap();
    rewrite_weights(dir.path(), |tensors| {
        tensors.push(("extra.weight".to_string(), vec![1], vec![0; 4]))
    });
    let err = Scorer::load_export(dir.path(), &device()).unwrap_err();
    assert!(err.to_string().contains("extra.weight"), "{err}");
}

#[test]
fn export_bytes_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let scorer = config(ScorerHead::Vocab).init_seeded(&device(), 9).unwrap();
    let manifest = ScorerManifest::new(scorer.config());
    let mut files = Vec::new();
    for name in ["a", "b"] {
        scorer
            .save_export(&dir.path().join(name), &manifest)
            .unwrap();
        files.push((
            std::fs::read(dir.path().join(name).join("scorer.safetensors")).unwrap(),
            std::fs::read(dir.path().join(name).join("scorer.json")).unwrap(),
        ));
    }
    assert!(files[0] == files[1], "two exports of one scorer differ");
}

/// Width of the base embedding table in the tests below.
const BASE_DIM: usize = 3;

/// `config(head)` with a frozen `[7, 3]` base table.
fn base_config(head: ScorerHead) -> ScorerConfig {
    ScorerConfig {
        base_embedding_dim: Some(BASE_DIM),
        ..config(head)
    }
}

/// Row-major `[7, 3]` table with entries `E[z][k] = 0.1·(z + 1) − 0.2·k`.
fn base_table() -> Vec<f32> {
    (0..7)
        .flat_map(|z| (0..BASE_DIM).map(move |k| 0.1 * (z as f32 + 1.0) - 0.2 * k as f32))
        .collect()
}

fn base_scorer(head: ScorerHead, device: &Device) -> Scorer {
    base_config(head)
        .init_seeded(device, 11)
        .unwrap()
        .with_base_embeddings(&[7, BASE_DIM], base_table())
        .unwrap()
}

#[test]
fn tied_head_matches_explicit_formula() {
    // Q(s, z) = Σ_k (Σ_j h_j · W_out[j][k]) · E[z][k] + b_z, computed with
    // plain loops from the hidden states, W_out and a bias b_z = 0.01·z.
    let mut scorer = base_scorer(ScorerHead::Vocab, &device());
    let bias: Vec<f32> = (0..7).map(|z| 0.01 * z as f32).collect();
    scorer.output_bias = Some(Param::from_data(
        TensorData::new(bias.clone(), [7]),
        &device(),
    ));
    let tokens = padded(&[vec![3, 1, 4], vec![2, 6, 5]], 0, 3);

    let hidden = scorer
        .hidden(tokens.clone())
        .try_into_vec_as::<f32>()
        .unwrap();
    let w_out = scorer.head.weight.val().try_into_vec_as::<f32>().unwrap();
    assert_eq!(scorer.head.weight.val().dims(), [8, BASE_DIM]);
    assert!(scorer.head.bias.is_none());
    let table = base_table();
    let mut expected = Vec::new();
    for position in 0..6 {
        let h = &hidden[position * 8..(position + 1) * 8];
        let projected: Vec<f32> = (0..BASE_DIM)
            .map(|k| (0..8).map(|j| h[j] * w_out[j * BASE_DIM + k]).sum())
            .collect();
        for z in 0..7 {
            let dot: f32 = (0..BASE_DIM)
                .map(|k| projected[k] * table[z * BASE_DIM + k])
                .sum();
            expected.push(dot + bias[z]);
        }
    }

    let (dims, out) = values_of(scorer.forward(tokens.clone()));
    assert_eq!(dims, [2, 3, 7]);
    for (actual, wanted) in out.iter().zip(&expected) {
        assert!((actual - wanted).abs() < 1e-5, "{actual} vs {wanted}");
    }

    // head_at gathers rows of E: (row 0, z 6), (row 4, z 0), (row 5, z 3).
    let flat = scorer.hidden(tokens).reshape([6, 8]);
    let rows = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 4, 5], [3]), &device());
    let ids = Tensor::<1, Int>::from_data(TensorData::new(vec![6i64, 0, 3], [3]), &device());
    let q = scorer
        .head_at(flat, rows, ids)
        .try_into_vec_as::<f32>()
        .unwrap();
    let gathered = [expected[6], expected[4 * 7], expected[5 * 7 + 3]];
    for (actual, wanted) in q.iter().zip(gathered) {
        assert!((actual - wanted).abs() < 1e-5, "{actual} vs {wanted}");
    }

    // next_token_q at the last state of row 1 is position 5.
    let next = scorer
        .next_token_q(&[vec![2, 6, 5]])
        .unwrap()
        .try_into_vec_as::<f32>()
        .unwrap();
    for z in 0..7 {
        assert!((next[z] - expected[5 * 7 + z]).abs() < 1e-5);
    }
}

#[test]
fn base_embeddings_shape_checked() {
    let scorer = base_config(ScorerHead::Scalar).init(&device()).unwrap();
    let err = scorer
        .with_base_embeddings(&[7, 4], vec![0.0; 28])
        .unwrap_err();
    assert!(err.to_string().contains("[7, 3]"), "{err}");

    let plain = config(ScorerHead::Scalar).init(&device()).unwrap();
    let err = plain
        .with_base_embeddings(&[7, BASE_DIM], base_table())
        .unwrap_err();
    assert!(err.to_string().contains("base_embedding_dim"), "{err}");

    let mut zero = base_config(ScorerHead::Scalar);
    zero.base_embedding_dim = Some(0);
    assert!(zero.validate().is_err());
}

#[test]
fn base_table_gets_no_gradient() {
    // The frozen table has no gradient; the projection and the head do.
    let device = device().autodiff();
    for head in [ScorerHead::Scalar, ScorerHead::Vocab] {
        let scorer = base_scorer(head, &device);
        let tokens =
            Tensor::<2, Int>::from_data(TensorData::new(vec![3i64, 1, 4], [1, 3]), &device);
        let grads = scorer.forward(tokens).sum().backward();
        assert!(
            scorer.token_embedding.weight.val().grad(&grads).is_none(),
            "{head:?}: the frozen table received a gradient"
        );
        let projection = &scorer.input_projection.as_ref().unwrap().weight;
        assert!(projection.val().grad(&grads).is_some(), "{head:?}");
        assert!(scorer.head.weight.val().grad(&grads).is_some(), "{head:?}");
    }
}

#[test]
fn base_scalar_head_unchanged_shape() {
    let scorer = base_scorer(ScorerHead::Scalar, &device());
    let tokens = padded(&[vec![3, 1, 4]], 0, 3);
    assert_eq!(scorer.forward(tokens).dims(), [1, 3, 1]);
    assert_eq!(scorer.head.weight.val().dims(), [8, 1]);
    assert!(scorer.output_bias.is_none());
}

#[test]
fn base_export_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    for head in [ScorerHead::Scalar, ScorerHead::Vocab] {
        let scorer = base_scorer(head, &device());
        let export = dir.path().join(head.as_str());
        scorer
            .save_export(&export, &ScorerManifest::new(scorer.config()))
            .unwrap();
        let (loaded, manifest) = Scorer::load_export(&export, &device()).unwrap();
        assert_eq!(manifest.config.base_embedding_dim, Some(BASE_DIM));

        let listed: Vec<(&str, &[usize])> = manifest
            .tensors
            .iter()
            .map(|t| (t.name.as_str(), t.shape.as_slice()))
            .collect();
        assert!(listed.contains(&("token_embedding.weight", &[7, BASE_DIM][..])));
        assert!(listed.contains(&("input_projection.weight", &[BASE_DIM, 8][..])));
        let tied = listed.contains(&("output_bias", &[7][..]));
        assert_eq!(tied, head == ScorerHead::Vocab, "{listed:?}");

        let table = loaded
            .token_embedding
            .weight
            .val()
            .try_into_vec_as::<f32>()
            .unwrap();
        assert_eq!(table, base_table());
        let tokens = padded(&[vec![3, 1, 4, 1, 5]], 0, 5);
        assert_eq!(
            values_of(scorer.forward(tokens.clone())),
            values_of(loaded.forward(tokens))
        );
    }
}

#[test]
fn manifest_without_base_field_loads() {
    // Manifests written before base_embedding_dim existed lack the key.
    let text =
        r#"{"vocab_size": 7, "layers": 2, "width": 8, "heads": 2, "max_len": 6, "head": "vocab"}"#;
    let parsed: ScorerConfig = serde_json::from_str(text).unwrap();
    assert_eq!(parsed, config(ScorerHead::Vocab));
    let written = serde_json::to_string(&parsed).unwrap();
    assert!(!written.contains("base_embedding_dim"), "{written}");
}
