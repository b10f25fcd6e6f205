//! The training loop: batches, gradient accumulation, global-norm clipping,
//! AdamW with warmup and cosine decay, the Polyak target network, logging,
//! validation and checkpoints.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamGroup};
use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};
use tiller_model::{RewardNormalization, Scorer};

use crate::checkpoint::{self, CHECKPOINT_VERSION, CheckpointState};
use crate::cursor::DataCursor;
use crate::data::{Dataset, Example};
use crate::events::EventLog;
use crate::metrics::{self, ValidationMetrics};
use crate::objective::{self, TopkCompletion, positions_of};
use crate::{Objective, TrainConfig, TrainError};

/// Learning rate of optimizer step `step` (1-based) of `total_steps`:
/// linear warmup from `lr / warmup_steps` to `lr` over the first
/// `warmup_steps` steps, then cosine decay from `lr` to
/// `lr · min_lr_ratio` at `total_steps`.
pub fn learning_rate(config: &TrainConfig, step: usize, total_steps: usize) -> f64 {
    let peak = config.lr;
    if config.warmup_steps > 0 && step <= config.warmup_steps {
        return peak * step as f64 / config.warmup_steps as f64;
    }
    let floor = peak * config.min_lr_ratio;
    let decay_steps = total_steps.saturating_sub(config.warmup_steps).max(1);
    let progress = (step.saturating_sub(config.warmup_steps) as f64 / decay_steps as f64).min(1.0);
    floor + (peak - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
}

/// Builds AdamW with decoupled weight decay on weight matrices and
/// embeddings only: biases and layer-norm parameters (paths ending in
/// `bias`, `gamma` or `beta`, e.g. `head.bias` or `output_bias`) are not
/// decayed. Frozen parameters get no gradient, so AdamW skips them.
pub fn build_optimizer(config: &TrainConfig) -> ModuleOptimizer {
    let adamw = |weight_decay: f64| {
        AdamWConfig::new()
            .with_beta_1(config.betas[0] as f32)
            .with_beta_2(config.betas[1] as f32)
            .with_epsilon(config.epsilon as f32)
            .with_weight_decay(weight_decay as f32)
    };
    let no_decay = ParamGroup::from_regex(r"(^|[._])(bias|gamma|beta)$")
        .expect("the pattern is a valid regex");
    adamw(config.weight_decay)
        .init()
        .with_group(no_decay, adamw(0.0).build(), None)
}

/// Sums the squared entries of every gradient of `module`'s parameters.
struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    total: Option<Tensor<1>>,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.get::<D>(param.id) {
            let sum = grad.square().sum();
            self.total = Some(match self.total.take() {
                Some(total) => total + sum,
                None => sum,
            });
        }
    }
}

/// Returns the global L2 norm of the gradients, `sqrt(Σ_params Σ g²)`.
pub fn global_grad_norm(module: &Scorer, grads: &GradientsParams) -> f64 {
    let mut visitor = SquaredNorm { grads, total: None };
    module.visit(&mut visitor);
    match visitor.total {
        Some(total) => f64::from(total.into_scalar::<f32>()).sqrt(),
        None => 0.0,
    }
}

/// Multiplies every gradient of `module`'s parameters by `factor`.
struct ScaleGrads<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl ModuleVisitor for ScaleGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.remove::<D>(param.id) {
            self.grads
                .register::<D>(param.id, grad.mul_scalar(self.factor));
        }
    }
}

/// Collects every float parameter's values by module path.
#[derive(Default)]
struct ParamValues {
    path: Vec<String>,
    values: HashMap<String, TensorData>,
}

impl ModuleVisitor for ParamValues {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.values
            .insert(self.path.join("."), param.val().inner().into_data());
    }
}

/// Applies `θ' ← (1 − τ)·θ' + τ·θ` to every parameter of the target network
/// except the frozen ones, which stay bit-identical to the online copy.
struct PolyakUpdate {
    path: Vec<String>,
    online: HashMap<String, TensorData>,
    frozen: Vec<&'static str>,
    tau: f64,
}

impl ModuleMapper for PolyakUpdate {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let path = self.path.join(".");
        if self.frozen.contains(&path.as_str()) {
            return param;
        }
        let Some(online) = self.online.remove(&path) else {
            return param;
        };
        let tau = self.tau;
        param.map(|target| {
            let online = Tensor::<D>::from_data(online, &target.device());
            target.mul_scalar(1.0 - tau) + online.mul_scalar(tau)
        })
    }
}

/// Moves `target` towards `online` by the Polyak rate `tau`.
pub fn polyak_update(target: Scorer, online: &Scorer, tau: f64) -> Scorer {
    let mut values = ParamValues::default();
    online.visit(&mut values);
    let mut update = PolyakUpdate {
        path: Vec::new(),
        online: values.values,
        frozen: online.frozen_parameter_paths(),
        tau,
    };
    target.map(&mut update)
}

/// Measurements of one optimizer step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepStats {
    /// The step, from 1.
    pub step: usize,
    /// Loss of the step (the per-response mean, averaged over responses).
    pub loss: f64,
    /// Learning rate used.
    pub lr: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Prompt and response tokens fed forward, per second of wall time.
    pub tokens_per_second: f64,
    /// Mean base-model mass outside the cached top-k over bootstrapped
    /// positions (`cdq` only).
    pub missing_mass: Option<f64>,
}

/// Mutable state of a run.
pub struct Trainer<'a> {
    pub(crate) config: &'a TrainConfig,
    pub(crate) dataset: &'a Dataset,
    pub(crate) model: Scorer,
    pub(crate) target: Option<Scorer>,
    pub(crate) optimizer: ModuleOptimizer,
    pub(crate) cursor: DataCursor,
    pub(crate) step: usize,
    pub(crate) total_steps: usize,
    pub(crate) vocab_size: usize,
    pub(crate) normalization: RewardNormalization,
    pub(crate) completion: TopkCompletion,
    pub(crate) inference_device: Device,
    pub(crate) events: EventLog,
    pub(crate) checkpoints_dir: PathBuf,
    pub(crate) last_lr: f64,
}

impl Trainer<'_> {
    /// Runs one optimizer step over the next `batch_size · grad_accum`
    /// responses.
    pub fn step(&mut self) -> Result<StepStats, TrainError> {
        let started = Instant::now();
        let step = self.step + 1;
        let config = self.config;
        let indices = self.cursor.take(config.sequences_per_step());
        let examples: Vec<&Example> = indices.iter().map(|&i| &self.dataset.train[i]).collect();
        let step_sequences = examples
            .iter()
            .filter(|e| positions_of(e, config.objective, config.head) > 0)
            .count();

        let mut accumulator = GradientsAccumulator::<Scorer>::new();
        let mut loss = 0.0f64;
        let mut tokens = 0usize;
        let mut missing_mass = 0.0f64;
        let mut bootstrapped = 0usize;
        for micro in examples.chunks(config.batch_size) {
            let plan = objective::plan_batch(
                micro,
                config.objective,
                config.head,
                self.completion,
                &self.normalization,
                step_sequences,
            );
            tokens += plan.real_tokens;
            missing_mass += plan.missing_mass_sum;
            bootstrapped += plan.bootstrap_count;
            if plan.predictions() == 0 {
                continue;
            }
            let micro_loss = objective::micro_batch_loss(&self.model, self.target.as_ref(), &plan);
            loss += f64::from(micro_loss.clone().into_scalar::<f32>());
            let grads = GradientsParams::from_grads(micro_loss.backward(), &self.model);
            accumulator.accumulate(&self.model, grads);
        }
        if !loss.is_finite() {
            return Err(TrainError::NonFinite {
                step,
                quantity: "loss",
                value: loss,
            });
        }
        let mut grads = accumulator.grads();
        let grad_norm = global_grad_norm(&self.model, &grads);
        if !grad_norm.is_finite() {
            return Err(TrainError::NonFinite {
                step,
                quantity: "gradient norm",
                value: grad_norm,
            });
        }
        if config.clip_norm > 0.0 && grad_norm > config.clip_norm {
            let mut scale = ScaleGrads {
                grads: &mut grads,
                factor: config.clip_norm / grad_norm,
            };
            self.model.visit(&mut scale);
        }

        let lr = learning_rate(config, step, self.total_steps);
        self.model = self.optimizer.step(lr, self.model.clone(), grads);
        if let Some(target) = self.target.take() {
            self.target = Some(polyak_update(target, &self.model, config.tau));
        }
        self.step = step;
        self.last_lr = lr;

        let seconds = started.elapsed().as_secs_f64().max(1e-9);
        Ok(StepStats {
            step,
            loss,
            lr,
            grad_norm,
            tokens_per_second: tokens as f64 / seconds,
            missing_mass: (config.objective == Objective::Cdq && bootstrapped > 0)
                .then(|| missing_mass / bootstrapped as f64),
        })
    }

    /// Writes the step's scalars to TensorBoard.
    pub fn log_step(&mut self, stats: &StepStats) {
        let step = stats.step;
        self.events.scalar("train/loss", stats.loss, step);
        self.events.scalar("train/lr", stats.lr, step);
        self.events.scalar("train/grad_norm", stats.grad_norm, step);
        self.events
            .scalar("train/tokens_per_second", stats.tokens_per_second, step);
        if let Some(missing) = stats.missing_mass {
            self.events.scalar("train/missing_mass", missing, step);
        }
    }

    /// Scores the validation split; `None` when it is empty.
    pub fn validate(&mut self) -> Result<Option<ValidationMetrics>, TrainError> {
        if self.dataset.validation.is_empty() {
            return Ok(None);
        }
        let model = self.model.valid().to_device(&self.inference_device);
        let result = metrics::validate(
            &model,
            &self.dataset.validation,
            self.completion,
            &self.normalization,
            self.config.batch_size,
        )?;
        let step = self.step;
        self.events.scalar("val/mse", result.mse, step);
        self.events
            .scalar("val/explained_variance", result.explained_variance, step);
        self.events.scalar(
            "val/prompt_value_correlation",
            result.prompt_value_correlation,
            step,
        );
        self.events
            .histogram("val/predictions", &result.predictions, step);
        self.events.flush();
        Ok(Some(result))
    }

    /// Writes a checkpoint of the current step.
    pub fn save_checkpoint(&mut self) -> Result<PathBuf, TrainError> {
        let state = CheckpointState {
            format_version: CHECKPOINT_VERSION,
            step: self.step,
            total_steps: self.total_steps,
            epoch: self.cursor.epoch(),
            cursor: self.cursor.state(),
            learning_rate: self.last_lr,
            vocab_size: self.vocab_size,
            reward_normalization: self.normalization,
            target_network: self.target.is_some(),
            config: self.config.clone(),
        };
        let path = checkpoint::save(
            &self.checkpoints_dir,
            &state,
            &self.model,
            &self.optimizer,
            self.target.as_ref(),
            self.config.keep_last,
        )?;
        self.events.flush();
        tracing::info!(step = self.step, path = %path.display(), "checkpoint written");
        Ok(path)
    }
}

/// Formats the fixed step log line, e.g.
/// `step 120/600 loss 0.0123 lr 3.0e-4 grad_norm 0.812 tok/s 5312`.
pub fn step_line(stats: &StepStats, total_steps: usize) -> String {
    let mut line = format!(
        "step {}/{} loss {:.4} lr {:.1e} grad_norm {:.3} tok/s {:.0}",
        stats.step, total_steps, stats.loss, stats.lr, stats.grad_norm, stats.tokens_per_second
    );
    if let Some(missing) = stats.missing_mass {
        line.push_str(&format!(" missing_mass {missing:.4}"));
    }
    line
}

/// Formats the fixed validation log line.
pub fn validation_line(step: usize, metrics: &ValidationMetrics) -> String {
    format!(
        "val step {step} mse {:.4} explained_variance {:.3} prompt_value_correlation {:.3} states {}",
        metrics.mse, metrics.explained_variance, metrics.prompt_value_correlation, metrics.states
    )
}

/// Creates the progress bar, hidden unless `visible`.
pub fn progress_bar(visible: bool, total_steps: usize, start: usize) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total_steps as u64);
    if let Ok(style) =
        ProgressStyle::with_template("train [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
    {
        bar.set_style(style);
    }
    bar.set_position(start as u64);
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine() {
        // lr 1, warmup 10, total 110, floor 0.1:
        // step 5 → 0.5; step 10 → 1; step 60 is half-way through the decay:
        // 0.1 + 0.9 · 0.5 · (1 + cos(π/2)) = 0.55; step 110 → 0.1.
        let config = TrainConfig {
            lr: 1.0,
            warmup_steps: 10,
            min_lr_ratio: 0.1,
            ..TrainConfig::default()
        };
        assert!((learning_rate(&config, 5, 110) - 0.5).abs() < 1e-12);
        assert!((learning_rate(&config, 10, 110) - 1.0).abs() < 1e-12);
        assert!((learning_rate(&config, 60, 110) - 0.55).abs() < 1e-12);
        assert!((learning_rate(&config, 110, 110) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn no_warmup_starts_at_peak() {
        let config = TrainConfig {
            lr: 2.0,
            warmup_steps: 0,
            min_lr_ratio: 0.0,
            ..TrainConfig::default()
        };
        // Step 1 of 2: progress 1/2, 2 · 0.5 · (1 + 0) = 1.
        assert!((learning_rate(&config, 1, 2) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn step_line_format() {
        let stats = StepStats {
            step: 120,
            loss: 0.0123,
            lr: 3e-4,
            grad_norm: 0.812,
            tokens_per_second: 5312.4,
            missing_mass: None,
        };
        assert_eq!(
            step_line(&stats, 600),
            "step 120/600 loss 0.0123 lr 3.0e-4 grad_norm 0.812 tok/s 5312"
        );
    }
    fn tiny_scorer(device: &Device) -> Scorer {
        tiller_model::ScorerConfig {
            vocab_size: 5,
            layers: 1,
            width: 4,
            heads: 1,
            max_len: 4,
            head: tiller_model::ScorerHead::Scalar,
            base_embedding_dim: None,
        }
        .init_seeded(device, 0)
        .unwrap()
    }

    /// Gradients with entries 3 and 4 on the head bias and weight
    /// respectively, zero elsewhere: `Σ g² = 3² + 4 · 4² = 73`.
    fn known_grads(model: &Scorer) -> GradientsParams {
        let device = model.device();
        let mut grads = GradientsParams::new();
        grads.register::<1>(
            model.head.bias.as_ref().unwrap().id,
            Tensor::<1>::from_floats([3.0], &device),
        );
        grads.register::<2>(
            model.head.weight.id,
            Tensor::<2>::from_floats([[4.0], [4.0], [4.0], [4.0]], &device),
        );
        grads
    }

    #[test]
    fn global_norm_hand_value() {
        let model = tiny_scorer(&Device::flex());
        let grads = known_grads(&model);
        assert!((global_grad_norm(&model, &grads) - 73f64.sqrt()).abs() < 1e-6);
        assert_eq!(global_grad_norm(&model, &GradientsParams::new()), 0.0);
    }

    #[test]
    fn clipping_scales_to_norm() {
        // Scaling by 1 / sqrt(73) leaves a global norm of 1 and the bias
        // gradient 3 / sqrt(73).
        let model = tiny_scorer(&Device::flex());
        let mut grads = known_grads(&model);
        let factor = 1.0 / 73f64.sqrt();
        model.visit(&mut ScaleGrads {
            grads: &mut grads,
            factor,
        });
        assert!((global_grad_norm(&model, &grads) - 1.0).abs() < 1e-6);
        let bias = grads
            .get::<1>(model.head.bias.as_ref().unwrap().id)
            .unwrap()
            .try_into_vec_as::<f32>()
            .unwrap();
        assert!((f64::from(bias[0]) - 3.0 * factor).abs() < 1e-6);
    }

    #[test]
    fn polyak_moves_by_tau() {
        // θ' = 0.75 · θ'_old + 0.25 · θ for every parameter.
        let device = Device::flex();
        let online = tiny_scorer(&device);
        let zeros = tiny_scorer(&device).map(&mut ZeroParams);
        let updated = polyak_update(zeros, &online, 0.25);
        let expected = online.head.weight.val().mul_scalar(0.25);
        let actual = updated.head.weight.val();
        let difference = (expected - actual).abs().max().into_scalar::<f32>();
        assert!(difference < 1e-7);
    }

    struct ZeroParams;

    impl ModuleMapper for ZeroParams {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            param.map(|t| t.zeros_like())
        }
    }
}
