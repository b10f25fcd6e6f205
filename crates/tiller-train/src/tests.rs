//! End-to-end tests of [`train`] on small synthetic rollouts.

use std::path::{Path, PathBuf};

use tiller_data::{FinishReason, RolloutMetadata, RolloutRecord, RolloutWriter};
use tiller_model::{ScorerHead, sha256_file};

use super::*;
use crate::events::{event_files, read_events};

const VOCAB: u32 = 16;
const EOS: u32 = 15;

struct Fixture {
    dir: tempfile::TempDir,
    rollouts: Vec<PathBuf>,
    tokenizer: PathBuf,
}

impl Fixture {
    fn run_dir(&self, name: &str) -> PathBuf {
        self.dir.path().join("runs").join(name)
    }

    fn export_dir(&self, name: &str) -> PathBuf {
        self.dir.path().join("exports").join(name)
    }
}

/// Writes a `tokenizer.json` with ids 0..16 and 8 prompts × 3 responses of
/// 1–5 tokens, with a 3-entry top-k cache, sampled "from the base model".
fn fixture() -> Fixture {
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
    let metadata = RolloutMetadata::new(
        "tiny.gguf",
        "00".repeat(32),
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
    let fixture = fixture();
    let full = run(&fixture, &config, "full", &TrainOptions::default()).unwrap();
    assert_eq!(full.step, 6);
    assert!(full.export_dir.is_some());

    let interrupted = TrainOptions {
        stop_after_step: Some(3),
        ..TrainOptions::default()
    };
    let first = run(&fixture, &config, "resumed", &interrupted).unwrap();
    assert_eq!(first.step, 3);
    assert!(
        first.export_dir.is_none(),
        "an interrupted run must not export"
    );
    let resumed = TrainOptions {
        resume: true,
        ..TrainOptions::default()
    };
    let second = run(&fixture, &config, "resumed", &resumed).unwrap();
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
