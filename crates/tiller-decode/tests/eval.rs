//! Tests of evaluation settings, result files, plots, TensorBoard output and
//! an end-to-end evaluation with a tiny random model.

use std::str::FromStr;

use burn::tensor::Device;
use tiller_data::Prompt;
use tiller_decode::DecodeError;
use tiller_decode::eval::{
    EvalConfig, LlamaStepDecoder, ModelScorer, derive_seed, run_eval, write_eval_outputs,
};
use tiller_decode::plot::plot_frontier;
use tiller_decode::results::{
    KlKind, ResultRow, read_results_csv, read_results_parquet, write_results_csv,
    write_results_parquet, write_tensorboard,
};
use tiller_decode::rollout::ChatModel;
use tiller_decode::tokenwise::{PrefixScorer, StepDecoder};
use tiller_model::{ChatTemplate, LlamaConfig, RewardNormalization, ScorerConfig, ScorerHead};
use tiller_reward::LengthReward;
use tokenizers::Tokenizer;

fn sample_rows() -> Vec<ResultRow> {
    let row =
        |method: &str, setting: &str, parameter: f64, kl: f64, kind, win: Option<f64>| ResultRow {
            method: method.to_string(),
            setting: setting.to_string(),
            parameter,
            prompts: 10,
            samples_per_prompt: 16,
            reward_mean: 0.1 + kl / 4.0,
            reward_ci95_low: kl / 4.0,
            reward_ci95_high: 0.2 + kl / 4.0,
            kl,
            kl_kind: kind,
            win_rate: win,
            win_rate_strict: win.map(|w| w - 0.1),
            tokens_generated: 1234,
            wall_time_s: 1.5,
            notes: "with, a comma and \"quotes\"".to_string(),
        };
    vec![
        row("best_of_n", "N=1", 1.0, 0.0, KlKind::Bound, Some(0.5)),
        row("best_of_n", "N=4", 4.0, 0.636, KlKind::Bound, Some(0.7)),
        row("best_of_n", "N=4", 4.0, 0.52, KlKind::Estimate, Some(0.7)),
        row("best_of_n", "N=16", 16.0, 1.835, KlKind::Bound, None),
        row("blockwise", "K=2,M=8", 2.0, 0.4, KlKind::Bound, Some(0.6)),
        row("tokenwise", "lambda=0", 0.0, 0.0, KlKind::Exact, Some(0.5)),
        row("tokenwise", "lambda=1", 1.0, 0.3, KlKind::Exact, Some(0.65)),
        // One prompt gives no interval; the plot must skip the bar.
        ResultRow {
            reward_ci95_low: f64::NAN,
            reward_ci95_high: f64::NAN,
            ..row("tokenwise", "lambda=2", 2.0, 0.9, KlKind::Exact, Some(0.8))
        },
    ]
}

/// Compares rows field by field, treating NaN as equal to NaN.
fn assert_rows_equal(actual: &[ResultRow], expected: &[ResultRow]) {
    assert_eq!(actual.len(), expected.len());
    let same = |a: f64, b: f64| a == b || (a.is_nan() && b.is_nan());
    for (a, e) in actual.iter().zip(expected) {
        assert_eq!(a.method, e.method);
        assert_eq!(a.setting, e.setting);
        assert_eq!(a.parameter, e.parameter);
        assert_eq!(a.prompts, e.prompts);
        assert_eq!(a.samples_per_prompt, e.samples_per_prompt);
        assert_eq!(a.reward_mean, e.reward_mean);
        assert!(same(a.reward_ci95_low, e.reward_ci95_low));
        assert!(same(a.reward_ci95_high, e.reward_ci95_high));
        assert_eq!(a.kl, e.kl);
        assert_eq!(a.kl_kind, e.kl_kind);
        assert_eq!(a.win_rate, e.win_rate);
        assert_eq!(a.win_rate_strict, e.win_rate_strict);
        assert_eq!(a.tokens_generated, e.tokens_generated);
        assert_eq!(a.wall_time_s, e.wall_time_s);
        assert_eq!(a.notes, e.notes);
    }
}

#[test]
fn results_csv_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.csv");
    let rows = sample_rows();
    write_results_csv(&path, &rows).unwrap();
    assert_rows_equal(&read_results_csv(&path).unwrap(), &rows);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("method,setting,parameter,"));
    assert!(text.contains(",bound,"));
}

#[test]
fn results_parquet_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.parquet");
    let rows = sample_rows();
    write_results_parquet(&path, &rows).unwrap();
    assert_rows_equal(&read_results_parquet(&path).unwrap(), &rows);
}

#[test]
fn results_read_missing_file_is_error() {
    let dir = tempfile::tempdir().unwrap();
    assert!(read_results_parquet(&dir.path().join("absent.parquet")).is_err());
    assert!(read_results_csv(&dir.path().join("absent.csv")).is_err());
}

#[test]
fn plot_files_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let (svg, png) = plot_frontier(dir.path(), &sample_rows(), "test frontier").unwrap();
    let svg_text = std::fs::read_to_string(&svg).unwrap();
    assert!(svg_text.contains("<svg"));
    assert!(svg_text.contains("tokenwise (exact)"));
    let png_bytes = std::fs::read(&png).unwrap();
    assert!(png_bytes.len() > 1000);
    assert_eq!(&png_bytes[..8], b"\x89PNG\r\n\x1a\n");
}

#[test]
fn plot_without_points_is_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = sample_rows();
    for row in &mut rows {
        row.kl = f64::NAN;
    }
    assert!(plot_frontier(dir.path(), &rows, "empty").is_err());
}

#[test]
fn tensorboard_events_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let logdir = dir.path().join("tb");
    write_tensorboard(&logdir, &sample_rows()).unwrap();
    let files: Vec<_> = std::fs::read_dir(&logdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    let bytes = std::fs::read(&files[0]).unwrap();
    let contains = |tag: &str| bytes.windows(tag.len()).any(|w| w == tag.as_bytes());
    assert!(contains("eval/best_of_n/reward"));
    assert!(contains("eval/best_of_n/kl"));
    assert!(contains("eval/best_of_n/kl_bound"));
    assert!(contains("eval/tokenwise/kl"));
    assert!(contains("eval/blockwise/kl"));
    assert!(!contains("eval/tokenwise/kl_exact"));
}

#[test]
fn eval_config_defaults_and_unknown_fields() {
    let cfg: EvalConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, EvalConfig::default());
    assert_eq!(cfg.bon_ns, vec![1, 2, 4, 8, 16]);
    assert_eq!(cfg.base_samples, 16);
    assert_eq!(cfg.ks, vec![2, 4, 8]);
    assert!(cfg.lambdas.contains(&0.0));
    cfg.validate().unwrap();
    let unknown: Result<EvalConfig, _> = serde_json::from_str(r#"{"bon_n": [1]}"#);
    assert!(unknown.is_err());
}

#[test]
fn eval_config_validation() {
    let bad = [
        EvalConfig {
            bon_ns: vec![1, 32],
            ..EvalConfig::default()
        },
        EvalConfig {
            bon_ns: vec![0],
            ..EvalConfig::default()
        },
        EvalConfig {
            ks: vec![0],
            ..EvalConfig::default()
        },
        EvalConfig {
            block_len: 0,
            ..EvalConfig::default()
        },
        EvalConfig {
            lambdas: vec![f32::NAN],
            ..EvalConfig::default()
        },
        EvalConfig {
            cd_samples: 0,
            ..EvalConfig::default()
        },
        EvalConfig {
            prompts: 0,
            ..EvalConfig::default()
        },
    ];
    for cfg in bad {
        assert!(
            matches!(cfg.validate(), Err(DecodeError::InvalidSetting { .. })),
            "accepted {cfg:?}"
        );
    }
}

#[test]
fn derived_seeds_differ_by_part() {
    assert_eq!(
        derive_seed(1, &["base", "p1"]),
        derive_seed(1, &["base", "p1"])
    );
    assert_ne!(
        derive_seed(1, &["base", "p1"]),
        derive_seed(2, &["base", "p1"])
    );
    assert_ne!(
        derive_seed(1, &["base", "p1"]),
        derive_seed(1, &["base", "p2"])
    );
    // Part boundaries matter: "ab" + "c" is not "a" + "bc".
    assert_ne!(derive_seed(1, &["ab", "c"]), derive_seed(1, &["a", "bc"]));
}

// End-to-end evaluation with a tiny random model and a word-level tokenizer.

const WORDS: [&str; 10] = ["[UNK]", "a", "b", "c", "d", "e", "f", "g", "h", "<eos>"];
const EOS_ID: u32 = 9;

fn tiny_tokenizer() -> Tokenizer {
    let vocab: Vec<String> = WORDS
        .iter()
        .enumerate()
        .map(|(id, word)| format!("\"{word}\": {id}"))
        .collect();
    let json = format!(
        r#"{{
            "version": "1.0", "truncation": null, "padding": null,
            "added_tokens": [{{"id": {EOS_ID}, "content": "<eos>", "single_word": false,
                "lstrip": false, "rstrip": false, "normalized": false, "special": true}}],
            "normalizer": null, "pre_tokenizer": {{"type": "Whitespace"}},
            "post_processor": null, "decoder": null,
            "model": {{"type": "WordLevel", "vocab": {{{}}}, "unk_token": "[UNK]"}}
        }}"#,
        vocab.join(", ")
    );
    Tokenizer::from_str(&json).unwrap()
}

/// Returns a chat template that passes the user message through unchanged.
fn tiny_template() -> ChatTemplate {
    ChatTemplate::from_source(
        "{% for message in messages %}{{ message['content'] }}{% endfor %}",
        "",
        "<eos>",
        "test template",
    )
    .unwrap()
}

fn tiny_llama_config() -> LlamaConfig {
    LlamaConfig {
        n_layers: 1,
        d_model: 16,
        n_heads: 2,
        n_kv_heads: 1,
        d_ff: 32,
        vocab_size: WORDS.len(),
        rope_theta: 10_000.0,
        rms_eps: 1e-5,
        max_seq_len: 64,
        bos_id: None,
        eos_id: EOS_ID,
        tied_embeddings: false,
    }
}

fn tiny_scorer_config(head: ScorerHead) -> ScorerConfig {
    ScorerConfig {
        vocab_size: WORDS.len(),
        layers: 1,
        width: 16,
        heads: 2,
        max_len: 64,
        head,
        base_embedding_dim: None,
    }
}

fn prompts() -> Vec<Prompt> {
    ["a b c", "d e", "f g h", "b b"]
        .iter()
        .enumerate()
        .map(|(i, text)| Prompt {
            prompt_id: format!("p{i}"),
            prompt: text.to_string(),
        })
        .collect()
}

fn small_eval_config() -> EvalConfig {
    EvalConfig {
        prompts: 3,
        bon_ns: vec![1, 2, 4],
        base_samples: 4,
        block_len: 2,
        ks: vec![2],
        lambdas: vec![0.0, 1.0],
        cd_samples: 2,
        topk_candidates: 0,
        max_new_tokens: 5,
        stop_ids: Vec::new(),
        seed: 3,
    }
}

#[test]
fn run_eval_end_to_end() {
    let device = Device::flex();
    let model = tiny_llama_config().init(&device).unwrap();
    let tokenizer = tiny_tokenizer();
    let template = tiny_template();
    let scorer = tiny_scorer_config(ScorerHead::Vocab)
        .init_seeded(&device, 1)
        .unwrap();
    let model_scorer = ModelScorer {
        scorer: &scorer,
        normalization: RewardNormalization::default(),
    };
    let reward = LengthReward::new(5).unwrap();
    let chat_model = ChatModel {
        model: &model,
        tokenizer: &tokenizer,
        template: &template,
    };
    let scorers: Vec<(&dyn PrefixScorer, f32)> = vec![(&model_scorer, 1.0)];
    let cfg = small_eval_config();

    let rows = run_eval(&chat_model, &reward, &scorers, &prompts(), &cfg, false).unwrap();
    // 3 Best-of-N sizes × 2 KL kinds + 1 K + 2 λ.
    assert_eq!(rows.len(), 9);
    for row in &rows {
        assert_eq!(row.prompts, 3, "{row:?}");
        assert!(row.reward_mean.is_finite());
        assert!(row.kl >= 0.0);
        assert!(row.tokens_generated > 0);
    }
    let bon: Vec<&ResultRow> = rows.iter().filter(|r| r.method == "best_of_n").collect();
    // Best-of-N reward cannot fall as N grows.
    let estimates: Vec<&&ResultRow> = bon
        .iter()
        .filter(|r| r.kl_kind == KlKind::Estimate)
        .collect();
    assert!(
        estimates
            .windows(2)
            .all(|w| w[1].reward_mean >= w[0].reward_mean - 1e-12)
    );
    // N = 1 is base sampling: KL 0 and a win rate of one half against base.
    assert_eq!(bon[0].kl, 0.0);
    assert!((bon[0].win_rate.unwrap() - 0.5).abs() < 1e-12);
    // N = 4 = base_samples leaves no spare sample for a win rate.
    assert!(
        bon.iter()
            .filter(|r| r.setting == "N=4")
            .all(|r| r.win_rate.is_none())
    );
    let tokenwise_zero = rows
        .iter()
        .find(|r| r.method == "tokenwise" && r.parameter == 0.0)
        .unwrap();
    assert_eq!(tokenwise_zero.kl, 0.0);
    assert_eq!(tokenwise_zero.kl_kind, KlKind::Exact);

    // The same seed reproduces every number but the wall times.
    let again = run_eval(&chat_model, &reward, &scorers, &prompts(), &cfg, false).unwrap();
    for (a, b) in rows.iter().zip(&again) {
        assert_eq!(a.reward_mean, b.reward_mean);
        assert_eq!(a.kl, b.kl);
        assert_eq!(a.win_rate, b.win_rate);
    }

    let dir = tempfile::tempdir().unwrap();
    let outputs =
        write_eval_outputs(dir.path(), Some(&dir.path().join("tb")), &rows, "tiny").unwrap();
    assert!(outputs.csv.exists());
    assert!(outputs.parquet.exists());
    assert!(std::fs::metadata(&outputs.plots.1).unwrap().len() > 0);
    assert_eq!(
        read_results_parquet(&outputs.parquet).unwrap().len(),
        rows.len()
    );
}

#[test]
fn run_eval_rejects_scalar_scorer_for_tokenwise() {
    let device = Device::flex();
    let model = tiny_llama_config().init(&device).unwrap();
    let tokenizer = tiny_tokenizer();
    let template = tiny_template();
    let scorer = tiny_scorer_config(ScorerHead::Scalar)
        .init_seeded(&device, 2)
        .unwrap();

    let model_scorer = ModelScorer {
        scorer: &scorer,
        normalization: RewardNormalization::default(),
    };
    let reward = LengthReward::new(5).unwrap();
    let chat_model = ChatModel {
        model: &model,
        tokenizer: &tokenizer,
        template: &template,
    };
    let scorers: Vec<(&dyn PrefixScorer, f32)> = vec![(&model_scorer, 1.0)];

    let result = run_eval(
        &chat_model,
        &reward,
        &scorers,
        &prompts(),
        &small_eval_config(),
        false,
    );
    assert!(matches!(result, Err(DecodeError::InvalidSetting { .. })));

    // Without scorers, CD settings cannot run at all.
    let result = run_eval(
        &chat_model,
        &reward,
        &[],
        &prompts(),
        &small_eval_config(),
        false,
    );
    assert!(matches!(result, Err(DecodeError::NoScorers)));
}

#[test]
fn llama_step_decoder_matches_shapes() {
    let model = tiny_llama_config().init(&Device::flex()).unwrap();
    let mut decoder = LlamaStepDecoder::new(&model);
    assert_eq!(decoder.eos_id(), EOS_ID);
    let rows = decoder.prefill(&[1, 2, 3], 3).unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.len() == WORDS.len()));
    // Rows are log-probs: each sums to 1 in probability.
    for row in &rows {
        let total: f64 = row.iter().map(|&v| f64::from(v).exp()).sum();
        assert!((total - 1.0).abs() < 1e-4);
    }
    decoder.select_rows(&[2, 2, 0]).unwrap();
    let next = decoder.step(&[4, 5, 6]).unwrap();
    assert_eq!(next.len(), 3);
}
