//! Evaluation of decoding methods on held-out prompts: Best-of-N, blockwise
//! CD and tokenwise CD, each summarised as reward, KL and win rate against
//! base samples.
//!
//! Every setting runs on the same prompts. Base samples (temperature 1, no
//! filtering) are drawn once per prompt and serve three purposes: Best-of-N
//! for every N through the order-statistics estimators, the reference for
//! all win rates, and the base reward. Rewards are averaged per prompt first,
//! so every prompt has the same weight and the 95% interval is over prompts.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tiller_data::Prompt;
use tiller_model::{Llama, RewardNormalization, Scorer, ScorerHead};
use tiller_reward::RewardModel;

use crate::base_decoder::{BaseDecoder, tensor_rows};
use crate::best_of_n::{bon_kl_bound, bon_prompt_estimate};
use crate::blockwise::{BlockwiseConfig, blockwise_decode};
use crate::error::DecodeError;
use crate::plot::plot_frontier;
use crate::results::{
    KlKind, ResultRow, write_results_csv, write_results_parquet, write_tensorboard,
};
use crate::rollout::{
    ChatModel, decode_response, encode_prompt, prompt_progress, reward_token_count, score_response,
};
use crate::sampling::{SamplingConfig, generate};
use crate::stats::{WinRate, mean_ci95, mean_win_rate, pairwise_win_rate};
use crate::tokenwise::{
    CdResponse, PrefixScorer, StepDecoder, TokenwiseConfig, WeightedScorers, tokenwise_decode,
};

/// Settings of an evaluation run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    /// Held-out prompts evaluated: the first ones of the list passed in.
    /// Default 64.
    #[serde(default = "default_prompts")]
    pub prompts: usize,
    /// Best-of-N sizes, each at most `base_samples`. Default [1, 2, 4, 8, 16].
    #[serde(default = "default_bon_ns")]
    pub bon_ns: Vec<usize>,
    /// Base samples drawn once per prompt, at temperature 1 without
    /// filtering. Best-of-N win rates need `base_samples ≥ N + 1`, so the
    /// largest N of the defaults has none. Default 16.
    #[serde(default = "default_base_samples")]
    pub base_samples: usize,
    /// Block length M of blockwise CD, in tokens. Default 8.
    #[serde(default = "default_block_len")]
    pub block_len: usize,
    /// Candidate blocks K of blockwise CD. Default [2, 4, 8].
    #[serde(default = "default_ks")]
    pub ks: Vec<usize>,
    /// Guidance strengths λ of tokenwise CD; λ = 0 samples from p.
    /// Default [0, 0.5, 1, 2, 4].
    #[serde(default = "default_lambdas")]
    pub lambdas: Vec<f32>,
    /// Responses per prompt for blockwise and tokenwise CD. Default 4.
    #[serde(default = "default_cd_samples")]
    pub cd_samples: usize,
    /// Tokenwise CD samples only among the base top-k tokens; 0 uses the
    /// whole vocabulary, so λ = 0 is exactly p. Default 0.
    #[serde(default)]
    pub topk_candidates: usize,
    /// Maximum response length in tokens. Default 64.
    #[serde(default = "default_max_new_tokens")]
    pub max_new_tokens: usize,
    /// Token ids besides the model's EOS that end a response. Default none.
    #[serde(default)]
    pub stop_ids: Vec<u32>,
    /// Run seed; every method, setting and prompt gets its own generator
    /// derived from it. Default 0.
    #[serde(default)]
    pub seed: u64,
}

fn default_prompts() -> usize {
    64
}

fn default_bon_ns() -> Vec<usize> {
    vec![1, 2, 4, 8, 16]
}

fn default_base_samples() -> usize {
    16
}

fn default_block_len() -> usize {
    8
}

fn default_ks() -> Vec<usize> {
    vec![2, 4, 8]
}

fn default_lambdas() -> Vec<f32> {
    vec![0.0, 0.5, 1.0, 2.0, 4.0]
}

fn default_cd_samples() -> usize {
    4
}

fn default_max_new_tokens() -> usize {
    64
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            prompts: default_prompts(),
            bon_ns: default_bon_ns(),
            base_samples: default_base_samples(),
            block_len: default_block_len(),
            ks: default_ks(),
            lambdas: default_lambdas(),
            cd_samples: default_cd_samples(),
            topk_candidates: 0,
            max_new_tokens: default_max_new_tokens(),
            stop_ids: Vec::new(),
            seed: 0,
        }
    }
}

fn invalid(setting: &str, value: impl std::fmt::Debug, hint: &str) -> DecodeError {
    DecodeError::InvalidSetting {
        setting: setting.to_string(),
        value: format!("{value:?}"),
        hint: hint.to_string(),
    }
}

impl EvalConfig {
    /// Checks ranges and that every N fits in the base samples.
    pub fn validate(&self) -> Result<(), DecodeError> {
        // The 95% interval is over prompts and needs a sample deviation.
        if self.prompts < 2 {
            return Err(invalid(
                "eval prompts",
                self.prompts,
                "evaluate at least 2 prompts, so the confidence interval is defined",
            ));
        }
        if self.base_samples == 0 {
            return Err(invalid(
                "eval base_samples",
                self.base_samples,
                "draw at least 1 base sample per prompt, the win-rate reference",
            ));
        }
        if let Some(n) = self
            .bon_ns
            .iter()
            .find(|&&n| n == 0 || n > self.base_samples)
        {
            return Err(invalid(
                "eval bon_ns entry",
                n,
                &format!("each N must be in 1..={} (base_samples)", self.base_samples),
            ));
        }
        if let Some(k) = self.ks.iter().find(|&&k| k == 0) {
            return Err(invalid("eval ks entry", k, "each K must be at least 1"));
        }
        if self.block_len == 0 {
            return Err(invalid(
                "eval block_len",
                self.block_len,
                "M must be at least 1",
            ));
        }
        if let Some(l) = self.lambdas.iter().find(|l| !l.is_finite()) {
            return Err(invalid("eval lambdas entry", l, "each λ must be finite"));
        }
        let has_cd = !self.ks.is_empty() || !self.lambdas.is_empty();
        if has_cd && self.cd_samples == 0 {
            return Err(invalid(
                "eval cd_samples",
                self.cd_samples,
                "sample at least 1 response per prompt, or empty ks and lambdas",
            ));
        }
        if self.max_new_tokens == 0 {
            return Err(invalid(
                "eval max_new_tokens",
                self.max_new_tokens,
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// Derives the seed of one method, setting and prompt from the run seed:
/// the first 8 bytes (little-endian) of the SHA-256 of a tag, the run seed
/// and the parts, each part followed by a zero byte.
pub fn derive_seed(run_seed: u64, parts: &[&str]) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(b"tiller-eval-seed");
    hasher.update(run_seed.to_le_bytes());
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

/// [`StepDecoder`] over the base model, reading log-probs back to the host.
pub struct LlamaStepDecoder<'m> {
    decoder: BaseDecoder<'m>,
}

impl<'m> LlamaStepDecoder<'m> {
    /// Creates a decoder over `model`.
    pub fn new(model: &'m Llama) -> Self {
        LlamaStepDecoder {
            decoder: BaseDecoder::new(model),
        }
    }
}

impl StepDecoder for LlamaStepDecoder<'_> {
    fn eos_id(&self) -> u32 {
        self.decoder.model().config().eos_id
    }

    fn prefill(&mut self, prompt_ids: &[u32], rows: usize) -> Result<Vec<Vec<f32>>, DecodeError> {
        tensor_rows(self.decoder.prefill(prompt_ids, rows)?, "base log-probs")
    }

    fn step(&mut self, tokens: &[u32]) -> Result<Vec<Vec<f32>>, DecodeError> {
        tensor_rows(self.decoder.step(tokens)?, "base log-probs")
    }

    fn select_rows(&mut self, rows: &[usize]) -> Result<(), DecodeError> {
        self.decoder.select_rows(rows)
    }
}

/// [`PrefixScorer`] over a trained [`Scorer`], returning values in reward
/// units: `v · std + mean` with the scorer's reward normalisation, so λ and
/// scorer weights mean the same for every scorer.
pub struct ModelScorer<'a> {
    /// The trained scorer.
    pub scorer: &'a Scorer,
    /// The reward standardisation the scorer was trained with.
    pub normalization: RewardNormalization,
}

impl PrefixScorer for ModelScorer<'_> {
    fn has_q_head(&self) -> bool {
        self.scorer.config().head == ScorerHead::Vocab
    }

    fn state_values(&self, sequences: &[Vec<u32>]) -> Result<Vec<f32>, DecodeError> {
        let values = self.scorer.state_values(sequences)?;
        Ok(values
            .into_iter()
            .map(|v| self.normalization.to_reward(f64::from(v)) as f32)
            .collect())
    }

    fn next_token_q(&self, sequences: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, DecodeError> {
        let q = tensor_rows(self.scorer.next_token_q(sequences)?, "scorer Q values")?;
        Ok(q.into_iter()
            .map(|row| {
                row.into_iter()
                    .map(|v| self.normalization.to_reward(f64::from(v)) as f32)
                    .collect()
            })
            .collect())
    }
}

/// Per-prompt results of one decoding setting, collected across prompts.
#[derive(Debug, Default)]
struct SettingTally {
    reward_means: Vec<f64>,
    kls: Vec<f64>,
    win_rates: Vec<Option<WinRate>>,
    tokens: u64,
    wall_s: f64,
}

impl SettingTally {
    fn to_row(
        &self,
        method: &str,
        setting: String,
        parameter: f64,
        samples_per_prompt: usize,
        kl_kind: KlKind,
        notes: String,
    ) -> Result<ResultRow, DecodeError> {
        let ci = mean_ci95(
            &self.reward_means,
            &format!("{method} {setting} mean reward"),
        )?;
        let kl = self.kls.iter().sum::<f64>() / self.kls.len().max(1) as f64;
        // A win rate is reported only when every prompt has one.
        let wins: Option<Vec<WinRate>> = self.win_rates.iter().copied().collect();
        let win = wins.and_then(|w| mean_win_rate(&w));
        Ok(ResultRow {
            method: method.to_string(),
            setting,
            parameter,
            prompts: self.reward_means.len() as u64,
            samples_per_prompt: samples_per_prompt as u64,
            reward_mean: ci.mean,
            reward_ci95_low: ci.lower(),
            reward_ci95_high: ci.upper(),
            kl,
            kl_kind,
            win_rate: win.map(|w| w.with_ties),
            win_rate_strict: win.map(|w| w.strict),
            tokens_generated: self.tokens,
            wall_time_s: self.wall_s,
            notes,
        })
    }
}

/// Scores CD responses of one prompt and records them in `tally`.
fn tally_cd_responses(
    chat_model: &ChatModel<'_>,
    reward: &dyn RewardModel,
    prompt: &Prompt,
    responses: &[CdResponse],
    base_rewards: &[f64],
    tally: &mut SettingTally,
) -> Result<(), DecodeError> {
    let mut rewards = Vec::with_capacity(responses.len());
    for (index, response) in responses.iter().enumerate() {
        let text = decode_response(chat_model.tokenizer, &prompt.prompt_id, &response.token_ids)?;
        let count = reward_token_count(response.token_ids.len(), response.finish_reason);
        rewards.push(f64::from(score_response(
            reward, prompt, index, &text, count,
        )?));
        tally.tokens += response.tokens_sampled as u64;
    }
    let n = rewards.len().max(1) as f64;
    tally.reward_means.push(rewards.iter().sum::<f64>() / n);
    tally
        .kls
        .push(responses.iter().map(|r| r.kl).sum::<f64>() / n);
    tally
        .win_rates
        .push(pairwise_win_rate(&rewards, base_rewards));
    Ok(())
}

/// Draws the base samples of one prompt, scores them and returns their
/// rewards and whole-response base log-probs.
fn draw_base_samples(
    chat_model: &ChatModel<'_>,
    reward: &dyn RewardModel,
    prompt: &Prompt,
    prompt_ids: &[u32],
    cfg: &EvalConfig,
    tally: &mut SettingTally,
) -> Result<(Vec<f64>, Vec<f64>), DecodeError> {
    let start = Instant::now();
    let sampling = SamplingConfig {
        stop_ids: cfg.stop_ids.clone(),
        ..SamplingConfig::new(cfg.max_new_tokens)
    };
    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(cfg.seed, &["base", &prompt.prompt_id]));
    let generations = generate(
        chat_model.model,
        prompt_ids,
        cfg.base_samples,
        &sampling,
        0,
        &mut rng,
    )?;

    let mut rewards = Vec::with_capacity(generations.len());
    let mut log_probs = Vec::with_capacity(generations.len());
    for (index, generation) in generations.iter().enumerate() {
        let text = decode_response(
            chat_model.tokenizer,
            &prompt.prompt_id,
            &generation.token_ids,
        )?;
        let count = reward_token_count(generation.token_ids.len(), generation.finish_reason);
        rewards.push(f64::from(score_response(
            reward, prompt, index, &text, count,
        )?));
        log_probs.push(
            generation
                .logprobs
                .iter()
                .map(|&l| f64::from(l))
                .sum::<f64>(),
        );
        tally.tokens += generation.token_ids.len() as u64;
    }
    tally.wall_s += start.elapsed().as_secs_f64();
    Ok((rewards, log_probs))
}

/// Tallies of every setting of an evaluation, in configuration order.
struct EvalTallies {
    base: SettingTally,
    bon: Vec<SettingTally>,
    blockwise: Vec<SettingTally>,
    tokenwise: Vec<SettingTally>,
}

impl EvalTallies {
    fn new(cfg: &EvalConfig) -> Self {
        let empty = |count: usize| (0..count).map(|_| SettingTally::default()).collect();
        EvalTallies {
            base: SettingTally::default(),
            bon: empty(cfg.bon_ns.len()),
            blockwise: empty(cfg.ks.len()),
            tokenwise: empty(cfg.lambdas.len()),
        }
    }

    /// Runs every method and setting on one prompt.
    fn evaluate_prompt(
        &mut self,
        chat_model: &ChatModel<'_>,
        reward: &dyn RewardModel,
        scorer: Option<&dyn PrefixScorer>,
        prompt: &Prompt,
        cfg: &EvalConfig,
    ) -> Result<(), DecodeError> {
        let prompt_ids = encode_prompt(chat_model.tokenizer, chat_model.template, prompt)?;

        // Base samples, shared by Best-of-N and every win rate.
        let (base_rewards, base_log_probs) =
            draw_base_samples(chat_model, reward, prompt, &prompt_ids, cfg, &mut self.base)?;
        for (tally, &n) in self.bon.iter_mut().zip(&cfg.bon_ns) {
            let estimate = bon_prompt_estimate(&base_rewards, &base_log_probs, n)?;
            tally.reward_means.push(estimate.expected_max_reward);
            tally.kls.push(estimate.kl_estimate);
            tally.win_rates.push(estimate.win_rate);
        }

        for (tally, &k) in self.blockwise.iter_mut().zip(&cfg.ks) {
            let start = Instant::now();
            let block_cfg = BlockwiseConfig {
                blocks: k,
                block_len: cfg.block_len,
                samples: cfg.cd_samples,
                max_new_tokens: cfg.max_new_tokens,
                stop_ids: cfg.stop_ids.clone(),
            };
            let setting = format!("K={k}");
            let seed = derive_seed(cfg.seed, &["blockwise", &setting, &prompt.prompt_id]);
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut decoder = LlamaStepDecoder::new(chat_model.model);
            // `run_eval` checked that a scorer exists when `ks` is not empty.
            let scorer = scorer.ok_or(DecodeError::NoScorers)?;
            let responses =
                blockwise_decode(&mut decoder, scorer, &prompt_ids, &block_cfg, &mut rng)?;
            tally_cd_responses(chat_model, reward, prompt, &responses, &base_rewards, tally)?;
            tally.wall_s += start.elapsed().as_secs_f64();
        }

        for (tally, &lambda) in self.tokenwise.iter_mut().zip(&cfg.lambdas) {
            let start = Instant::now();
            let token_cfg = TokenwiseConfig {
                lambda,
                top_k: cfg.topk_candidates,
                samples: cfg.cd_samples,
                max_new_tokens: cfg.max_new_tokens,
                stop_ids: cfg.stop_ids.clone(),
            };
            let setting = format!("lambda={lambda}");
            let seed = derive_seed(cfg.seed, &["tokenwise", &setting, &prompt.prompt_id]);
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut decoder = LlamaStepDecoder::new(chat_model.model);
            let responses =
                tokenwise_decode(&mut decoder, scorer, &prompt_ids, &token_cfg, &mut rng)?;
            tally_cd_responses(chat_model, reward, prompt, &responses, &base_rewards, tally)?;
            tally.wall_s += start.elapsed().as_secs_f64();
        }
        Ok(())
    }
}

/// Runs the evaluation on the first `cfg.prompts` of `prompts` (all of them
/// when the list is shorter) and returns one row per method and setting, two
/// per Best-of-N size: the KL bound and the KL estimate.
///
/// `scorers` are combined as `Σ_i w_i · V_i` in reward units. They are needed
/// when `cfg.ks` is not empty or `cfg.lambdas` contains a λ ≠ 0, and tokenwise
/// CD with λ ≠ 0 needs every scorer to have a vocabulary head.
pub fn run_eval(
    chat_model: &ChatModel<'_>,
    reward: &dyn RewardModel,
    scorers: &[(&dyn PrefixScorer, f32)],
    prompts: &[Prompt],
    cfg: &EvalConfig,
    show_progress: bool,
) -> Result<Vec<ResultRow>, DecodeError> {
    cfg.validate()?;
    if prompts.is_empty() {
        return Err(DecodeError::EmptyStatistic {
            what: "evaluation prompts".to_string(),
        });
    }
    let guided_lambda = cfg.lambdas.iter().any(|&l| l != 0.0);
    if (!cfg.ks.is_empty() || guided_lambda) && scorers.is_empty() {
        return Err(DecodeError::NoScorers);
    }
    if guided_lambda && scorers.iter().any(|(s, _)| !s.has_q_head()) {
        return Err(invalid(
            "eval lambdas",
            &cfg.lambdas,
            "tokenwise CD with λ ≠ 0 needs scorers with a vocab head; use such scorers or set lambdas = [0]",
        ));
    }
    let mix = WeightedScorers {
        members: scorers.to_vec(),
    };
    let scorer: Option<&dyn PrefixScorer> = if scorers.is_empty() { None } else { Some(&mix) };
    let prompts = &prompts[..cfg.prompts.min(prompts.len())];
    if prompts.len() < 2 {
        return Err(invalid(
            "held-out prompts",
            prompts.len(),
            "the evaluation needs at least 2 held-out prompts; raise prompts.heldout_fraction",
        ));
    }
    if prompts.len() < cfg.prompts {
        tracing::warn!(
            requested = cfg.prompts,
            available = prompts.len(),
            "fewer held-out prompts than eval.prompts; evaluating all of them"
        );
    }

    let bar = prompt_progress(prompts.len(), show_progress);
    bar.set_prefix("eval");
    tracing::info!(prompts = prompts.len(), "evaluation started");
    let mut tallies = EvalTallies::new(cfg);
    let start = Instant::now();
    for (index, prompt) in prompts.iter().enumerate() {
        tallies.evaluate_prompt(chat_model, reward, scorer, prompt, cfg)?;
        bar.inc(1);
        tracing::info!(
            prompt_id = %prompt.prompt_id,
            done = index + 1,
            total = prompts.len(),
            seconds = start.elapsed().as_secs_f64(),
            "evaluated prompt"
        );
    }
    bar.finish_and_clear();

    let rows = collect_rows(cfg, &tallies)?;
    tracing::info!(rows = rows.len(), "evaluation finished");
    Ok(rows)
}

/// Turns the tallies into result rows, in configuration order.
fn collect_rows(cfg: &EvalConfig, tallies: &EvalTallies) -> Result<Vec<ResultRow>, DecodeError> {
    let base = &tallies.base;
    let m = cfg.base_samples;
    let mut rows = Vec::new();
    for (tally, &n) in tallies.bon.iter().zip(&cfg.bon_ns) {
        // Best-of-N cost, scaled from the shared M-sample draw.
        let share = n as f64 / m as f64;
        let scaled = SettingTally {
            reward_means: tally.reward_means.clone(),
            kls: tally.kls.clone(),
            win_rates: tally.win_rates.clone(),
            tokens: (base.tokens as f64 * share).round() as u64,
            wall_s: base.wall_s * share,
        };
        let mut notes = format!(
            "estimated from {m} base samples per prompt with the unbiased order-statistics \
             estimator over all N-subsets; tokens and wall time are those of the {m}-sample \
             draw scaled by N/{m}"
        );
        if n + 1 > m {
            notes.push_str(&format!(
                "; no win rate because it needs at least N+1 = {} samples",
                n + 1
            ));
        }
        let setting = format!("N={n}");
        let mut bound_row = scaled.to_row(
            "best_of_n",
            setting.clone(),
            n as f64,
            m,
            KlKind::Bound,
            format!("{notes}; KL is the bound log N - (N-1)/N"),
        )?;
        bound_row.kl = bon_kl_bound(n);
        rows.push(bound_row);
        rows.push(scaled.to_row(
            "best_of_n",
            setting,
            n as f64,
            m,
            KlKind::Estimate,
            format!(
                "{notes}; KL is the estimate from the base probability of the chosen response, \
                 averaged over N-subsets and prompts"
            ),
        )?);
    }
    for (tally, &k) in tallies.blockwise.iter().zip(&cfg.ks) {
        rows.push(tally.to_row(
            "blockwise",
            format!("K={k},M={}", cfg.block_len),
            k as f64,
            cfg.cd_samples,
            KlKind::Bound,
            "KL is the bound (log K - (K-1)/K) * ceil(L/M) for L decoded tokens".to_string(),
        )?);
    }
    for (tally, &lambda) in tallies.tokenwise.iter().zip(&cfg.lambdas) {
        let support = if cfg.topk_candidates > 0 {
            format!(
                "policy restricted to the base top-{} tokens; ",
                cfg.topk_candidates
            )
        } else {
            String::new()
        };
        rows.push(tally.to_row(
            "tokenwise",
            format!("lambda={lambda}"),
            f64::from(lambda),
            cfg.cd_samples,
            KlKind::Exact,
            format!(
                "{support}KL is the exact per-token KL summed over each response, \
                 averaged over sampled responses"
            ),
        )?);
    }
    Ok(rows)
}

/// Paths written by [`write_eval_outputs`].
#[derive(Debug, Clone, PartialEq)]
pub struct EvalOutputs {
    /// `results.csv`.
    pub csv: PathBuf,
    /// `results.parquet`.
    pub parquet: PathBuf,
    /// TensorBoard event directory, when one was requested.
    pub tensorboard: Option<PathBuf>,
    /// `frontier.svg` and `frontier.png`.
    pub plots: (PathBuf, PathBuf),
}

/// Writes `results.csv`, `results.parquet`, the TensorBoard scalars (when
/// `tensorboard_dir` is given) and the frontier plots into `dir`.
///
/// The data files are written before the plots, so they exist even when
/// plotting fails, for example for lack of system fonts.
pub fn write_eval_outputs(
    dir: &Path,
    tensorboard_dir: Option<&Path>,
    rows: &[ResultRow],
    title: &str,
) -> Result<EvalOutputs, DecodeError> {
    std::fs::create_dir_all(dir).map_err(|source| DecodeError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let csv = dir.join("results.csv");
    let parquet = dir.join("results.parquet");
    write_results_csv(&csv, rows)?;
    write_results_parquet(&parquet, rows)?;
    let tensorboard = tensorboard_dir
        .map(|logdir| write_tensorboard(logdir, rows))
        .transpose()?;
    let plots = plot_frontier(dir, rows, title)?;
    Ok(EvalOutputs {
        csv,
        parquet,
        tensorboard,
        plots,
    })
}
