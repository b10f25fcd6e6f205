//! End-to-end tests of [`train`] on small synthetic rollouts.

use std::path::{Path, PathBuf};

use tiller_data::{FinishReason, RolloutMetadata, RolloutReader, RolloutRecord, RolloutWriter};
use tiller_model::{ScorerHead, sha256_file};

use super::*;
use crate::events::{event_files, read_events};

const VOCAB: u32 = 16;
const EOS: u32 = 15;

struct Fixture {
    dir: tempfile::TempDir,
    rollouts: Vec<PathBuf>,
    tokenizer: PathBuf,
    /// Base model GGUF whose SHA-256 the rollout metadata records, when the
    /// fixture has one.
    base_model: Option<PathBuf>,
}

impl Fixture {
    fn run_dir(&self, name: &str) -> PathBuf {
        self.dir.path().join("runs").join(name)
    }

    fn export_dir(&self, name: &str) -> PathBuf {
        self.dir.path().join("exports").join(name)
    }
}

/// Width of the token embedding table in the synthetic base model.
const BASE_DIM: usize = 4;

/// Entries of the synthetic `[16, 4]` base embedding table, row-major:
/// `E[z][k] = ((7z + 3k) mod 11) / 10 − 0.5`.
fn base_table() -> Vec<f32> {
    (0..VOCAB as usize)
        .flat_map(|z| (0..BASE_DIM).map(move |k| ((7 * z + 3 * k) % 11) as f32 / 10.0 - 0.5))
        .collect()
}

/// Writes a GGUF version 3 file with no metadata and one F32 tensor,
/// `token_embd.weight` `[16, 4]`. Layout: magic, u32 version, u64 tensor
/// and metadata counts, the tensor info (u64-length name, u32 n_dims, u64
/// dims innermost first, u32 type 0 = F32, u64 offset), zero padding to the
/// default 32-byte alignment, then the data.
fn write_base_gguf(path: &Path) {
    let mut out = Vec::new();
    out.extend_from_slice(b"GGUF");
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&1u64.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    let name = "token_embd.weight";
    out.extend_from_slice(&(name.len() as u64).to_le_bytes());
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&2u32.to_le_bytes());
    out.extend_from_slice(&(BASE_DIM as u64).to_le_bytes());
    out.extend_from_slice(&u64::from(VOCAB).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    out.resize(out.len().div_ceil(32) * 32, 0);
    for value in base_table() {
        out.extend_from_slice(&value.to_le_bytes());
    }
    std::fs::write(path, out).unwrap();
}

/// Writes a `tokenizer.json` with ids 0..16 and 8 prompts × 3 responses of
/// 1–5 tokens, with a 3-entry top-k cache, sampled "from the base model".
fn fixture() -> Fixture {
    build_fixture(false)
}

/// [`fixture`] whose rollout metadata records the SHA-256 of a synthetic
/// base model GGUF (see [`write_base_gguf`]).
fn fixture_with_base_model() -> Fixture {
    build_fixture(true)
}

fn build_fixture(with_base_model: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let tokenizer = dir.path().join("tokenizer.json");
    let vocab: Vec<String> = (0..VOCAB).map(|id| format!("\"t{id}\": {id}")).collect();
    std::fs::write(
        &tokenizer,
        format!(
            "{{\"model\": {{\"vocab\": {{{}}}}}, \"added_tokens\": []}}",
            vocab.join(", ")
        ),
    )
    .unwrap();

    let sha = sha256_file(&tokenizer).unwrap();
    let base_model = with_base_model.then(|| {
        let path = dir.path().join("tiny.gguf");
        write_base_gguf(&path);
        path
    });
    let base_sha = match &base_model {
        Some(path) => sha256_file(path).unwrap(),
        None => "00".repeat(32),
    };
    let metadata = RolloutMetadata::new(
        "tiny.gguf",
        base_sha,
        sha,
        serde_json::json!({"name": "count7"}),
        serde_json::json!({"temperature": 1.0, "top_k": 0, "top_p": 1.0}),
    );

    let shards = dir.path().join("rollouts");
    let mut writer = RolloutWriter::create(&shards, "rollouts", metadata, 10).unwrap();
    for prompt in 0..8u32 {
        for sample in 0..3u32 {
            // A fixed pseudo-random response over ids 4..=14, ending in EOS
            // unless it hits 5 tokens.
            let len = 1 + ((prompt * 7 + sample * 3) % 5) as usize;
            let mut response: Vec<u32> = (0..len as u32)
                .map(|i| 4 + (prompt * 5 + sample * 11 + i * 3) % 11)
                .collect();
            let finish_reason = if len < 5 {
                *response.last_mut().unwrap() = EOS;
                FinishReason::Eos
            } else {
                FinishReason::Length
            };

            let sevens = response.iter().filter(|&&z| z == 7 || z == 10).count();
            let record = RolloutRecord {
                prompt_id: format!("p{prompt}"),
                sample_index: sample as i32,
                prompt: String::new(),
                response: String::new(),
                prompt_token_ids: vec![1, 2, 3 + prompt % 4],
                response_logprobs: vec![-1.0; len],
                topk_token_ids: Some(vec![vec![7, 10, EOS]; len]),
                topk_logprobs: Some(vec![vec![0.4f32.ln(), 0.2f32.ln(), 0.1f32.ln()]; len]),
                response_token_ids: std::mem::take(&mut response),
                reward: sevens as f32 - 0.2 * len as f32,
                finish_reason,
            };
            writer.write(&record).unwrap();
        }
    }
    let rollouts = writer.finish().unwrap();

    Fixture {
        dir,
        rollouts,
        tokenizer,
        base_model,
    }
}

fn tiny_config(objective: Objective, head: ScorerHead) -> TrainConfig {
    TrainConfig {
        objective,
        head,
        layers: 1,
        width: 16,
        heads: 2,
        max_len: 12,
        lr: 1e-2,
        warmup_steps: 2,
        steps: Some(6),
        batch_size: 3,
        grad_accum: 2,
        validation_fraction: 0.25,
        eval_every: 2,
        log_every: 1,
        checkpoint_every: 2,
        keep_last: 2,
        seed: 4,
        ..TrainConfig::default()
    }
}

fn run(
    fixture: &Fixture,
    config: &TrainConfig,
    name: &str,
    options: &TrainOptions,
) -> Result<TrainSummary, TrainError> {
    train(
        config,
        &fixture.rollouts,
        &fixture.run_dir(name),
        &fixture.export_dir(name),
        &fixture.tokenizer,
        options,
    )
}

fn weights(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("scorer.safetensors")).unwrap()
}

/// Steps of every summary event in each event file of `dir`, file by file.
fn logged_steps(dir: &Path, tag: &str) -> Vec<Vec<i64>> {
    event_files(dir)
        .unwrap()
        .iter()
        .map(|file| {
            read_events(file)
                .unwrap()
                .iter()
                .filter(|e| {
                    e.get_summary()
                        .get_value()
                        .iter()
                        .any(|v| v.get_tag() == tag)
                })
                .map(|e| e.get_step())
                .collect()
        })
        .collect()
}

fn assert_resume_bit_identical(config: TrainConfig) {
    assert_resume_bit_identical_on(&fixture(), config, &TrainOptions::default());
}

/// Trains 6 steps in one go and as 3 + 3 resumed steps with `options`
/// (plus `stop_after_step` / `resume`), and compares the two runs.
fn assert_resume_bit_identical_on(fixture: &Fixture, config: TrainConfig, options: &TrainOptions) {
    let full = run(fixture, &config, "full", options).unwrap();
    assert_eq!(full.step, 6);
    assert!(full.export_dir.is_some());

    let interrupted = TrainOptions {
        stop_after_step: Some(3),
        ..options.clone()
    };
    let first = run(fixture, &config, "resumed", &interrupted).unwrap();
    assert_eq!(first.step, 3);
    assert!(
        first.export_dir.is_none(),
        "an interrupted run must not export"
    );
    let resumed = TrainOptions {
        resume: true,
        ..options.clone()
    };
    let second = run(fixture, &config, "resumed", &resumed).unwrap();
    assert_eq!(second.resumed_from, Some(3));
    assert_eq!(second.steps_this_run, 3);
    assert_eq!(second.step, 6);
    assert_eq!(second.epoch, full.epoch);

    assert!(
        weights(&fixture.export_dir("full")) == weights(&fixture.export_dir("resumed")),
        "resumed weights differ from the uninterrupted run"
    );
    let full_loss = full.last_step.as_ref().unwrap().loss;
    let resumed_loss = second.last_step.as_ref().unwrap().loss;
    assert_eq!(full_loss.to_bits(), resumed_loss.to_bits());

    // TensorBoard: the interrupted file contains steps 1..=3, the resumed one
    // continues at 4 and never goes back.
    let events = fixture.run_dir("resumed").join("tensorboard");
    assert_eq!(
        logged_steps(&events, "train/loss"),
        vec![vec![1, 2, 3], vec![4, 5, 6]]
    );
    assert_eq!(logged_steps(&events, "val/mse"), vec![vec![2], vec![4, 6]]);

    // keep_last = 2: checkpoints at 4 and 6 remain (3 and 2 were pruned).
    let kept_steps: Vec<usize> = checkpoint::list(&fixture.run_dir("resumed").join("checkpoints"))
        .unwrap()
        .into_iter()
        .map(|(step, _)| step)
        .collect();
    assert_eq!(kept_steps, vec![4, 6]);
}

#[test]
fn resume_bit_identical_fudge_scalar() {
    assert_resume_bit_identical(tiny_config(Objective::Fudge, ScorerHead::Scalar));
}

#[test]
fn resume_bit_identical_cdq_target_network() {
    let config = TrainConfig {
        tau: 0.5,
        ..tiny_config(Objective::Cdq, ScorerHead::Vocab)
    };
    assert_resume_bit_identical(config);
}

fn base_embedding_config() -> TrainConfig {
    TrainConfig {
        base_embeddings: true,
        tau: 0.5,
        ..tiny_config(Objective::Cdq, ScorerHead::Vocab)
    }
}

fn base_model_options(fixture: &Fixture) -> TrainOptions {
    TrainOptions {
        base_model: fixture.base_model.clone(),
        ..TrainOptions::default()
    }
}

#[test]
fn resume_bit_identical_base_embeddings() {
    let fixture = fixture_with_base_model();
    let options = base_model_options(&fixture);
    assert_resume_bit_identical_on(&fixture, base_embedding_config(), &options);
}

#[test]
fn base_table_frozen_through_training() {
    // After 6 AdamW steps with weight decay 0.01 and lr 1e-2, the exported
    // table must still equal the GGUF's bit for bit, while the trainable
    // projection has moved away from its initial values.
    let fixture = fixture_with_base_model();
    let config = base_embedding_config();
    let summary = run(&fixture, &config, "frozen", &base_model_options(&fixture)).unwrap();
    let (scorer, manifest) =
        Scorer::load_export(&summary.export_dir.unwrap(), &Device::flex()).unwrap();
    assert_eq!(manifest.config.base_embedding_dim, Some(BASE_DIM));
    assert_eq!(manifest.config.vocab_size, VOCAB as usize);
    let table = scorer
        .token_embedding
        .weight
        .val()
        .try_into_vec_as::<f32>()
        .unwrap();
    let expected = base_table();
    assert_eq!(table.len(), expected.len());
    for (index, (actual, wanted)) in table.iter().zip(&expected).enumerate() {
        assert_eq!(actual.to_bits(), wanted.to_bits(), "entry {index}");
    }

    let initial = tiller_model::ScorerConfig {
        base_embedding_dim: Some(BASE_DIM),
        ..config.scorer_config(VOCAB as usize)
    }
    .init_seeded(&Device::flex(), config.seed)
    .unwrap();
    let projection = |s: &Scorer| {
        s.input_projection
            .as_ref()
            .unwrap()
            .weight
            .val()
            .try_into_vec_as::<f32>()
            .unwrap()
    };
    assert_ne!(projection(&scorer), projection(&initial));
}

#[test]
fn base_embeddings_need_base_model() {
    let fixture = fixture_with_base_model();
    let err = run(
        &fixture,
        &base_embedding_config(),
        "missing",
        &TrainOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, TrainError::MissingBaseModel), "{err}");
    assert!(err.to_string().contains("base_model"), "{err}");
}

#[test]
fn base_model_mismatch_names_both() {
    // The plain fixture records base_model_sha256 = "00" × 32.
    let fixture = fixture();
    let other = fixture.dir.path().join("other.gguf");
    write_base_gguf(&other);
    let options = TrainOptions {
        base_model: Some(other.clone()),
        ..TrainOptions::default()
    };
    let err = run(&fixture, &base_embedding_config(), "mismatch", &options).unwrap_err();
    let message = err.to_string();
    assert!(message.contains(&"00".repeat(32)), "{message}");
    assert!(message.contains(&sha256_file(&other).unwrap()), "{message}");
}

#[test]
fn export_loads_with_manifest() {
    let fixture = fixture();
    let config = tiny_config(Objective::Cdq, ScorerHead::Vocab);
    let summary = run(&fixture, &config, "export", &TrainOptions::default()).unwrap();
    let export = summary.export_dir.unwrap();

    let (scorer, manifest) = Scorer::load_export(&export, &Device::flex()).unwrap();
    assert_eq!(manifest.objective, "cdq");
    assert_eq!(manifest.head, ScorerHead::Vocab);
    assert_eq!(manifest.config.vocab_size, VOCAB as usize);
    assert_eq!(
        manifest.tokenizer_sha256,
        sha256_file(&fixture.tokenizer).unwrap()
    );
    assert_eq!(manifest.base_model, "tiny.gguf");
    assert_eq!(manifest.reward_model["name"], "count7");
    assert!(manifest.reward_normalization.applied);
    assert_eq!(manifest.reward_normalization, summary.reward_normalization);
    assert!(export.join("tokenizer.json").is_file());

    // The newest checkpoint contains the same weights as the export.
    let newest = checkpoint::list(&fixture.run_dir("export").join("checkpoints"))
        .unwrap()
        .pop()
        .unwrap();
    let loaded = checkpoint::load(&newest.1).unwrap();
    let from_checkpoint = config
        .scorer_config(VOCAB as usize)
        .init(&Device::flex())
        .unwrap()
        .load_record(loaded.model);

    let sequences = vec![vec![1, 2, 3, 7, 10], vec![1, 2, 4, 15]];
    assert_eq!(
        scorer.state_values(&sequences).unwrap(),
        from_checkpoint.state_values(&sequences).unwrap()
    );
}

#[test]
fn tokenizer_mismatch_names_both() {
    let fixture = fixture();
    let other = fixture.dir.path().join("other.json");
    std::fs::write(&other, "{}").unwrap();
    let config = tiny_config(Objective::Fudge, ScorerHead::Scalar);
    let err = train(
        &config,
        &fixture.rollouts,
        &fixture.run_dir("mismatch"),
        &fixture.export_dir("mismatch"),
        &other,
        &TrainOptions::default(),
    )
    .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains(&sha256_file(&fixture.tokenizer).unwrap()),
        "{message}"
    );
    assert!(message.contains(&sha256_file(&other).unwrap()), "{message}");
}

#[test]
fn non_finite_loss_stops_before_checkpoint() {
    // lr 1e30 blows the weights up on the first update, so the loss of a
    // later step overflows. The error names that step, and no checkpoint at
    // or after it exists.
    let fixture = fixture();
    let config = TrainConfig {
        lr: 1e30,
        warmup_steps: 0,
        clip_norm: 0.0,
        checkpoint_every: 1,
        keep_last: 0,
        ..tiny_config(Objective::Fudge, ScorerHead::Scalar)
    };
    let err = run(&fixture, &config, "nan", &TrainOptions::default()).unwrap_err();
    let TrainError::NonFinite { step, .. } = err else {
        panic!("expected a non-finite error, got {err}");
    };
    assert!(step >= 2, "step {step}");
    assert!(err.to_string().contains(&format!("step {step}")), "{err}");
    let written: Vec<usize> = checkpoint::list(&fixture.run_dir("nan").join("checkpoints"))
        .unwrap()
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(written, (1..step).collect::<Vec<_>>());
}

#[test]
fn existing_checkpoints_need_resume() {
    let fixture = fixture();
    let config = TrainConfig {
        steps: Some(2),
        ..tiny_config(Objective::Fudge, ScorerHead::Scalar)
    };
    run(&fixture, &config, "twice", &TrainOptions::default()).unwrap();
    let err = run(&fixture, &config, "twice", &TrainOptions::default()).unwrap_err();
    assert!(
        matches!(err, TrainError::CheckpointsExist { step: 2, .. }),
        "{err}"
    );
}

#[test]
fn resume_rejects_changed_lr() {
    let fixture = fixture();
    let config = tiny_config(Objective::Fudge, ScorerHead::Scalar);
    let interrupted = TrainOptions {
        stop_after_step: Some(1),
        ..TrainOptions::default()
    };
    run(&fixture, &config, "changed", &interrupted).unwrap();
    let changed = TrainConfig { lr: 5e-3, ..config };
    let resumed = TrainOptions {
        resume: true,
        ..TrainOptions::default()
    };
    let err = run(&fixture, &changed, "changed", &resumed).unwrap_err();
    assert!(err.to_string().contains("train.lr"), "{err}");
}

#[test]
fn training_lowers_validation_error() {
    // 40 steps of fudge on the synthetic rewards must beat the first
    // validation pass.
    let fixture = fixture();
    let config = TrainConfig {
        steps: Some(40),
        eval_every: 1,
        checkpoint_every: 0,
        lr: 3e-3,
        ..tiny_config(Objective::Fudge, ScorerHead::Scalar)
    };
    let summary = run(&fixture, &config, "learns", &TrainOptions::default()).unwrap();
    let events = fixture.run_dir("learns").join("tensorboard");
    let file = &event_files(&events).unwrap()[0];
    let mse: Vec<f32> = read_events(file)
        .unwrap()
        .iter()
        .flat_map(|e| e.get_summary().get_value().to_vec())
        .filter(|v| v.get_tag() == "val/mse")
        .map(|v| v.get_simple_value())
        .collect();
    assert_eq!(mse.len(), 40);
    let last = summary.validation.unwrap().mse as f32;
    assert!(last < mse[0], "first {} last {last}", mse[0]);
}

/// Throughput of the default scorer shape on 64 synthetic responses of 64
/// tokens after 30-token prompts, vocabulary 49152. Prints tokens/s per
/// objective; run with `--ignored --nocapture`.
#[test]
#[ignore = "measurement, not a check"]
fn throughput_default_scorer() {
    let dir = tempfile::tempdir().unwrap();
    let tokenizer = dir.path().join("tokenizer.json");
    std::fs::write(
        &tokenizer,
        r#"{"model": {"vocab": {"a": 0, "z": 49151}}, "added_tokens": []}"#,
    )
    .unwrap();
    let metadata = RolloutMetadata::new(
        "synthetic.gguf",
        "00".repeat(32),
        sha256_file(&tokenizer).unwrap(),
        serde_json::json!({"name": "synthetic"}),
        serde_json::json!({"temperature": 1.0}),
    );
    let mut writer = RolloutWriter::create(&dir.path().join("r"), "r", metadata, 1000).unwrap();
    for i in 0..64u32 {
        let response: Vec<u32> = (0..64).map(|t| (i * 131 + t * 977) % 49152).collect();
        writer
            .write(&RolloutRecord {
                prompt_id: format!("p{i}"),
                sample_index: 0,
                prompt: String::new(),
                response: String::new(),
                prompt_token_ids: (0..30).map(|t| (i + t * 7) % 49152).collect(),
                response_logprobs: vec![-1.0; 64],
                topk_token_ids: Some(vec![(0..20).collect(); 64]),
                topk_logprobs: Some(vec![vec![-4.0; 20]; 64]),
                response_token_ids: response,
                reward: (i % 5) as f32,
                finish_reason: FinishReason::Length,
            })
            .unwrap();
    }
    let rollouts = writer.finish().unwrap();
    for (objective, head) in [
        (Objective::Fudge, ScorerHead::Scalar),
        (Objective::Cdq, ScorerHead::Vocab),
    ] {
        let config = TrainConfig {
            objective,
            head,
            steps: Some(4),
            validation_fraction: 0.0,
            checkpoint_every: 0,
            ..TrainConfig::default()
        };
        let name = objective.as_str();
        let summary = train(
            &config,
            &rollouts,
            &dir.path().join("runs").join(name),
            &dir.path().join("exports").join(name),
            &tokenizer,
            &TrainOptions::default(),
        )
        .unwrap();
        eprintln!(
            "{name} {} head: {:.0} tokens/s over {} steps of {} responses",
            head.as_str(),
            summary.tokens_per_second,
            summary.steps_this_run,
            config.sequences_per_step()
        );
    }
}

#[test]
fn token_id_beyond_tokenizer_rejected() {
    let fixture = fixture();
    let metadata = RolloutReader::open(&fixture.rollouts)
        .unwrap()
        .metadata()
        .clone();
    let shards = fixture.dir.path().join("bad-rollouts");
    let mut writer = RolloutWriter::create(&shards, "rollouts", metadata, 10).unwrap();
    let outside = VOCAB + 3;
    for prompt in 0..4u32 {
        let response = if prompt == 2 {
            vec![4, outside]
        } else {
            vec![4, 5]
        };
        writer
            .write(&RolloutRecord {
                prompt_id: format!("p{prompt}"),
                sample_index: 0,
                prompt: String::new(),
                response: String::new(),
                prompt_token_ids: vec![1, 2],
                response_logprobs: vec![-1.0; 2],
                topk_token_ids: Some(vec![vec![7, 10, EOS]; 2]),
                topk_logprobs: Some(vec![vec![0.4f32.ln(), 0.2f32.ln(), 0.1f32.ln()]; 2]),
                response_token_ids: response,
                reward: 0.5,
                finish_reason: FinishReason::Length,
            })
            .unwrap();
    }
    let rollouts = writer.finish().unwrap();

    let config = tiny_config(Objective::Fudge, ScorerHead::Scalar);
    let err = train(
        &config,
        &rollouts,
        &fixture.run_dir("outside"),
        &fixture.export_dir("outside"),
        &fixture.tokenizer,
        &TrainOptions::default(),
    )
    .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains(&format!("token id {outside}")),
        "{message}"
    );
    assert!(message.contains("\"p2\""), "{message}");
    assert!(message.contains("train.vocab_size"), "{message}");
    assert!(!fixture.export_dir("outside").exists());
}

/// Values of `tag` in the first event file under `dir`, in step order.
#[cfg(any(feature = "wgpu", feature = "tch"))]
fn logged_values(dir: &Path, tag: &str) -> Vec<f32> {
    let file = &event_files(dir).unwrap()[0];
    read_events(file)
        .unwrap()
        .iter()
        .flat_map(|e| e.get_summary().get_value().to_vec())
        .filter(|v| v.get_tag() == tag)
        .map(|v| v.get_simple_value())
        .collect()
}

/// Largest relative difference between two loss curves the parity test
/// accepts: f32 kernels on different backends sum in different orders, and
/// 20 AdamW steps carry those last-bit differences forward.
#[cfg(any(feature = "wgpu", feature = "tch"))]
const PARITY_TOLERANCE: f32 = 1e-4;

/// The same 20-step run (fixed seed) of each objective on flex and on every
/// device `TILLER_PARITY_DEVICES` names (default: each compiled CPU-capable
/// backend) gives the same training and validation losses.
#[cfg(any(feature = "wgpu", feature = "tch"))]
#[test]
fn backend_parity_training_matches_flex() {
    let fixture = fixture();
    let devices = tiller_model::device::parity_devices().unwrap();
    assert!(!devices.is_empty(), "no device to compare with flex");
    for (objective, head) in [
        (Objective::Fudge, ScorerHead::Scalar),
        (Objective::Cdq, ScorerHead::Vocab),
    ] {
        let config = TrainConfig {
            steps: Some(20),
            eval_every: 5,
            checkpoint_every: 0,
            ..tiny_config(objective, head)
        };
        let curves = |name: &str, device: Device| {
            let options = TrainOptions {
                device,
                ..TrainOptions::default()
            };
            run(&fixture, &config, name, &options).unwrap();
            let events = fixture.run_dir(name).join("tensorboard");
            (
                logged_values(&events, "train/loss"),
                logged_values(&events, "val/mse"),
            )
        };
        let reference = curves(&format!("{objective:?}-flex"), Device::flex());
        assert_eq!(reference.0.len(), 20);
        for spec in &devices {
            let device = spec.open(tiller_model::Precision::F32).unwrap();
            let other = curves(&format!("{objective:?}-{spec}"), device);
            let worst = reference
                .0
                .iter()
                .chain(&reference.1)
                .zip(other.0.iter().chain(&other.1))
                .map(|(a, b)| (a - b).abs() / a.abs().max(1.0))
                .fold(0.0f32, f32::max);
            println!("{objective:?} on {spec}: largest relative loss difference {worst:.2e}");
            assert_eq!(reference.0.len(), other.0.len());
            assert_eq!(reference.1.len(), other.1.len());
            assert!(
                worst <= PARITY_TOLERANCE,
                "{objective:?} on {spec}: losses differ from flex by {worst:.2e} (relative), \
                 more than {PARITY_TOLERANCE:.0e}\nflex: {:?}\n{spec}: {:?}",
                reference.0,
                other.0
            );
        }
    }
}
