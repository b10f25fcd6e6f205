//! Prefix scorer: a small causal pre-norm transformer trained from scratch.
//!
//! A state `s_t` is the prompt plus the first `t` response tokens, and the
//! scorer reads it at the hidden state of its last token. Two heads exist:
//!
//! - [`ScorerHead::Scalar`]: one value per position, `V(s)`.
//! - [`ScorerHead::Vocab`]: one value per vocabulary entry per position,
//!   `Q(s, z) = V(s ⊕ z)`, so `V(s_{t+1}) = Q(s_t, y_{t+1})`.
//!
//! Architecture, per block (pre-norm, as in GPT-2):
//! `x += Wo·attn(LN(x))`, then `x += W2·gelu(W1·LN(x))` with an MLP width of
//! `4 · width`. Positions use a learned embedding table of `max_len` rows
//! added to the token embedding, so position `i` is the `i`-th token of the
//! sequence passed to the scorer. Attention is causal, so the output at
//! position `i` depends on `tokens[..=i]` only and right padding never
//! changes the outputs at real positions. A final layer norm precedes the
//! head.
//!
//! With [`ScorerConfig::base_embedding_dim`] set, the token embedding is a
//! frozen copy of the base model's table `E` `[vocab_size, d_base]` (no
//! gradient, so no optimizer update and no weight decay), followed by a
//! trainable projection `d_base -> width`. The vocabulary head is then tied
//! to `E`: `Q(s, z) = (h_s · W_out) · E_z + b_z` with `W_out`
//! `[width, d_base]` and `b` `[vocab_size]`, so a token seen rarely in
//! training still gets a value through its embedding. The scalar head is
//! unchanged.
//!
//! Linear weights are stored as `[in, out]` (burn's row layout, `y = x·W + b`),
//! the transpose of PyTorch's `nn.Linear.weight`.

mod export;

pub use export::{RewardNormalization, ScorerManifest, ScorerTensorInfo};

use burn::module::{Module, Param};
use burn::nn::{Embedding, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::activation::gelu;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::ModelError;

/// Epsilon of every layer norm in the scorer.
const LAYER_NORM_EPSILON: f64 = 1e-5;
/// Hidden width of the MLP, as a multiple of the model width.
const MLP_RATIO: usize = 4;
/// Standard deviation of the normal initialisation of embeddings and linear
/// weights (GPT-2's value).
const INIT_STD: f64 = 0.02;

/// Output head of a [`Scorer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScorerHead {
    /// One value per position: `V(s)`, output shape `[B, L, 1]`.
    #[default]
    Scalar,
    /// One value per vocabulary entry per position: `Q(s, z) = V(s ⊕ z)`,
    /// output shape `[B, L, vocab_size]`.
    Vocab,
}

impl ScorerHead {
    /// Returns the name used in configs and manifests (`scalar` or `vocab`).
    pub fn as_str(self) -> &'static str {
        match self {
            ScorerHead::Scalar => "scalar",
            ScorerHead::Vocab => "vocab",
        }
    }
}

/// Shape of a [`Scorer`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScorerConfig {
    /// Number of token ids the embedding accepts; must cover the tokenizer.
    pub vocab_size: usize,
    /// Number of transformer blocks.
    pub layers: usize,
    /// Model width (embedding and residual size).
    pub width: usize,
    /// Number of attention heads; must divide `width`.
    pub heads: usize,
    /// Maximum sequence length in tokens (rows of the position table).
    pub max_len: usize,
    /// Output head.
    pub head: ScorerHead,
    /// Width `d_base` of the base model's token embedding table. When set,
    /// the scorer embeds tokens with a frozen copy of that table (see
    /// [`Scorer::with_base_embeddings`]) projected to `width`, and the
    /// vocabulary head is tied to it. Default: unset (a trainable
    /// `[vocab_size, width]` table).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_embedding_dim: Option<usize>,
}

impl ScorerConfig {
    /// Checks that every dimension is positive and `width` splits into
    /// `heads` equal parts.
    pub fn validate(&self) -> Result<(), ModelError> {
        let positive = [
            ("vocab_size", self.vocab_size),
            ("layers", self.layers),
            ("width", self.width),
            ("heads", self.heads),
            ("max_len", self.max_len),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(ModelError::InvalidScorerConfig {
                    field,
                    value: value.to_string(),
                    reason: "must be at least 1".to_string(),
                });
            }
        }
        if self.base_embedding_dim == Some(0) {
            return Err(ModelError::InvalidScorerConfig {
                field: "base_embedding_dim",
                value: "0".to_string(),
                reason: "must be at least 1 when set".to_string(),
            });
        }
        if !self.width.is_multiple_of(self.heads) {
            return Err(ModelError::InvalidScorerConfig {
                field: "width",
                value: self.width.to_string(),
                reason: format!("must be a multiple of heads ({})", self.heads),
            });
        }
        if self.vocab_size > i32::MAX as usize {
            return Err(ModelError::InvalidScorerConfig {
                field: "vocab_size",
                value: self.vocab_size.to_string(),
                reason: format!("must be at most {}", i32::MAX),
            });
        }
        Ok(())
    }

    /// Returns the number of outputs per position: 1 for the scalar head,
    /// `vocab_size` for the vocabulary head.
    pub fn head_outputs(&self) -> usize {
        match self.head {
            ScorerHead::Scalar => 1,
            ScorerHead::Vocab => self.vocab_size,
        }
    }

    /// Builds a scorer with weights drawn from seed 0; see
    /// [`init_seeded`](Self::init_seeded).
    pub fn init(&self, device: &Device) -> Result<Scorer, ModelError> {
        self.init_seeded(device, 0)
    }

    /// Builds a scorer with weights drawn from a ChaCha8 generator seeded
    /// with `seed`, so the same seed gives bit-identical weights on every
    /// backend: embeddings and linear weights `N(0, 0.02²)`, the residual
    /// output projections (`attn.wo`, `mlp.proj`) `N(0, (0.02/√(2·layers))²)`
    /// as in GPT-2, biases 0, layer norms γ = 1 and β = 0. With
    /// `base_embedding_dim` set, the frozen token table starts as zeros and
    /// [`Scorer::with_base_embeddings`] fills it.
    pub fn init_seeded(&self, device: &Device, seed: u64) -> Result<Scorer, ModelError> {
        self.validate()?;
        let mut init = Init::Normal(Box::new(ChaCha8Rng::seed_from_u64(seed)));
        Ok(Scorer::build(self, device, &mut init))
    }

    /// Builds a scorer whose weights are all zero (layer norm γ = 1), as the
    /// target of a weight load.
    pub(crate) fn init_zeros(&self, device: &Device) -> Result<Scorer, ModelError> {
        self.validate()?;
        Ok(Scorer::build(self, device, &mut Init::Zeros))
    }
}

/// Source of initial weights.
enum Init {
    Normal(Box<ChaCha8Rng>),
    Zeros,
}

impl Init {
    /// Draws `n` values from `N(0, std²)` (Box-Muller on the ChaCha8 stream),
    /// or returns zeros.
    fn normal(&mut self, n: usize, std: f64) -> Vec<f32> {
        match self {
            Init::Zeros => vec![0.0; n],
            Init::Normal(rng) => {
                let mut values = Vec::with_capacity(n);
                while values.len() < n {
                    // 1 - u lies in (0, 1], so the logarithm is finite.
                    let u1: f64 = 1.0 - rng.random::<f64>();
                    let u2: f64 = rng.random::<f64>();
                    let radius = (-2.0 * u1.ln()).sqrt() * std;
                    let angle = std::f64::consts::TAU * u2;
                    values.push((radius * angle.cos()) as f32);
                    if values.len() < n {
                        values.push((radius * angle.sin()) as f32);
                    }
                }
                values
            }
        }
    }

    fn param<const D: usize>(
        &mut self,
        shape: [usize; D],
        std: f64,
        device: &Device,
    ) -> Param<Tensor<D>> {
        let values = self.normal(shape.iter().product(), std);
        Param::from_data(TensorData::new(values, shape), device)
    }

    fn linear(&mut self, d_input: usize, d_output: usize, std: f64, device: &Device) -> Linear {
        Linear {
            weight: self.param([d_input, d_output], std, device),
            bias: Some(Param::from_data(
                TensorData::new(vec![0.0f32; d_output], [d_output]),
                device,
            )),
        }
    }

    fn embedding(&mut self, rows: usize, width: usize, device: &Device) -> Embedding {
        Embedding {
            weight: self.param([rows, width], INIT_STD, device),
        }
    }
}

/// Builds the frozen `[rows, width]` table for the base model's token
/// embeddings. It is zeros until [`Scorer::with_base_embeddings`] fills it.
fn frozen_embedding(rows: usize, width: usize, device: &Device) -> Embedding {
    let values = vec![0.0f32; rows * width];
    Embedding {
        weight: Param::from_data(TensorData::new(values, [rows, width]), device)
            .set_require_grad(false),
    }
}

fn layer_norm(width: usize, device: &Device) -> LayerNorm {
    LayerNormConfig::new(width)
        .with_epsilon(LAYER_NORM_EPSILON)
        .init(device)
}

/// Causal multi-head self-attention.
#[derive(Module, Debug)]
pub struct Attention {
    /// Query projection, `[width, width]`.
    pub wq: Linear,
    /// Key projection, `[width, width]`.
    pub wk: Linear,
    /// Value projection, `[width, width]`.
    pub wv: Linear,
    /// Output projection, `[width, width]`.
    pub wo: Linear,
    heads: usize,
}

impl Attention {
    /// Maps `[B, L, W]` to `[B, L, W]`; position `i` attends to `0..=i`.
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [batch, len, width] = x.dims();
        let head_dim = width / self.heads;
        let split = |t: Tensor<3>| {
            t.reshape([batch, len, self.heads, head_dim])
                .swap_dims(1, 2)
        };
        let q = split(self.wq.forward(x.clone()));
        let k = split(self.wk.forward(x.clone()));
        let v = split(self.wv.forward(x));
        let options = AttentionModuleOptions {
            scale: None,
            softcap: None,
            is_causal: true,
        };
        // [B, H, L, Dh] -> [B, L, H, Dh] -> [B, L, W]
        let context = attention(q, k, v, None, None, options)
            .swap_dims(1, 2)
            .reshape([batch, len, width]);
        self.wo.forward(context)
    }
}

/// Position-wise feed-forward network with a GELU.
#[derive(Module, Debug)]
pub struct Mlp {
    /// Expansion, `[width, 4·width]`.
    pub fc: Linear,
    /// Projection back, `[4·width, width]`.
    pub proj: Linear,
}

/// One pre-norm transformer block.
#[derive(Module, Debug)]
pub struct Block {
    /// Norm before attention.
    pub attn_norm: LayerNorm,
    /// Causal self-attention.
    pub attn: Attention,
    /// Norm before the MLP.
    pub mlp_norm: LayerNorm,
    /// Feed-forward network.
    pub mlp: Mlp,
}

impl Block {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = x.clone() + self.attn.forward(self.attn_norm.forward(x));
        let h = self.mlp.fc.forward(self.mlp_norm.forward(x.clone()));
        x + self.mlp.proj.forward(gelu(h))
    }
}

/// Prefix scorer module; see the module documentation for the architecture.
#[derive(Module, Debug)]
pub struct Scorer {
    /// Token embedding, `[vocab_size, width]`, or the frozen base table
    /// `[vocab_size, d_base]` when `base_embedding_dim` is set.
    pub token_embedding: Embedding,
    /// Projection of the base embeddings to the model width,
    /// `[d_base, width]`; present only when `base_embedding_dim` is set.
    pub input_projection: Option<Linear>,
    /// Learned position embedding, `[max_len, width]`.
    pub position_embedding: Embedding,
    /// Transformer blocks.
    pub blocks: Vec<Block>,
    /// Norm after the last block.
    pub final_norm: LayerNorm,
    /// Output head: `[width, 1]` (scalar), `[width, vocab_size]`
    /// (vocabulary), or `W_out` `[width, d_base]` without a bias for the
    /// vocabulary head tied to the base embeddings.
    pub head: Linear,
    /// Per-token bias `b` `[vocab_size]` of the tied vocabulary head.
    pub output_bias: Option<Param<Tensor<1>>>,
    #[module(skip)]
    config: ScorerConfig,
}

impl Scorer {
    fn build(config: &ScorerConfig, device: &Device, init: &mut Init) -> Scorer {
        let width = config.width;
        let residual_std = INIT_STD / (2.0 * config.layers as f64).sqrt();
        let (token_embedding, input_projection) = match config.base_embedding_dim {
            None => (init.embedding(config.vocab_size, width, device), None),
            Some(base_dim) => (
                frozen_embedding(config.vocab_size, base_dim, device),
                Some(init.linear(base_dim, width, INIT_STD, device)),
            ),
        };
        let position_embedding = init.embedding(config.max_len, width, device);
        let blocks = (0..config.layers)
            .map(|_| Block {
                attn_norm: layer_norm(width, device),
                attn: Attention {
                    wq: init.linear(width, width, INIT_STD, device),
                    wk: init.linear(width, width, INIT_STD, device),
                    wv: init.linear(width, width, INIT_STD, device),
                    wo: init.linear(width, width, residual_std, device),
                    heads: config.heads,
                },
                mlp_norm: layer_norm(width, device),
                mlp: Mlp {
                    fc: init.linear(width, MLP_RATIO * width, INIT_STD, device),
                    proj: init.linear(MLP_RATIO * width, width, residual_std, device),
                },
            })
            .collect();
        let (head, output_bias) = match (config.head, config.base_embedding_dim) {
            (ScorerHead::Vocab, Some(base_dim)) => {
                let mut projection = init.linear(width, base_dim, INIT_STD, device);
                projection.bias = None;
                let bias = Param::from_data(
                    TensorData::new(vec![0.0f32; config.vocab_size], [config.vocab_size]),
                    device,
                );
                (projection, Some(bias))
            }
            _ => (
                init.linear(width, config.head_outputs(), INIT_STD, device),
                None,
            ),
        };
        Scorer {
            token_embedding,
            input_projection,
            position_embedding,
            blocks,
            final_norm: layer_norm(width, device),
            head,
            output_bias,
            config: config.clone(),
        }
    }

    /// Copies the base model's token embedding table into the frozen
    /// embedding, e.g. from `GgufFile::tensor_f32("token_embd.weight")`.
    ///
    /// `shape` must be `[vocab_size, base_embedding_dim]` and `values` its
    /// row-major entries. The table stays frozen: it receives no gradient,
    /// so the optimizer neither updates nor decays it. Fails when the scorer
    /// has no `base_embedding_dim` or the shape differs.
    pub fn with_base_embeddings(
        mut self,
        shape: &[usize],
        values: Vec<f32>,
    ) -> Result<Scorer, ModelError> {
        let Some(base_dim) = self.config.base_embedding_dim else {
            return Err(ModelError::InvalidScorerConfig {
                field: "base_embedding_dim",
                value: "unset".to_string(),
                reason: "must be set to load base embeddings".to_string(),
            });
        };
        let expected = [self.config.vocab_size, base_dim];
        if shape != expected || values.len() != expected[0] * expected[1] {
            return Err(ModelError::InvalidScorerConfig {
                field: "base_embedding_dim",
                value: base_dim.to_string(),
                reason: format!(
                    "the base embedding table has shape {shape:?} ({} values), but the scorer \
                     expects [vocab_size, base_embedding_dim] = {expected:?}",
                    values.len()
                ),
            });
        }
        let device = self.token_embedding.weight.lazy_device();
        let id = self.token_embedding.weight.id;
        let table = Tensor::<2>::from_data(TensorData::new(values, expected), &device);
        self.token_embedding.weight = Param::initialized(id, table).set_require_grad(false);
        Ok(self)
    }

    /// Returns the module paths of the frozen parameters (no gradient, no
    /// optimizer update): `token_embedding.weight` with base embeddings,
    /// none otherwise.
    pub fn frozen_parameter_paths(&self) -> Vec<&'static str> {
        match self.config.base_embedding_dim {
            Some(_) => vec!["token_embedding.weight"],
            None => Vec::new(),
        }
    }

    /// Returns the configuration this scorer was built with.
    pub fn config(&self) -> &ScorerConfig {
        &self.config
    }

    /// Returns the device of the scorer's weights.
    pub fn device(&self) -> Device {
        self.head.weight.lazy_device()
    }

    /// Computes the head outputs for right-padded token ids `[B, L]`:
    /// `[B, L, 1]` for the scalar head, `[B, L, vocab_size]` for the
    /// vocabulary head. The output at position `i` is the scorer's output for
    /// the state `tokens[..=i]`.
    ///
    /// # Panics
    ///
    /// Panics if `L > max_len` or a token id is not below `vocab_size`;
    /// [`try_forward`](Self::try_forward) checks both and returns an error.
    pub fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        let hidden = self.hidden(tokens);
        if self.output_bias.is_none() {
            return self.head.forward(hidden);
        }
        let [batch, len, width] = hidden.dims();
        self.head_all(hidden.reshape([batch * len, width]))
            .reshape([batch, len, self.config.vocab_size])
    }

    /// Evaluates the head on flattened hidden states `[N, width]`, giving
    /// `[N, 1]` or `[N, vocab_size]`. The tied head computes
    /// `(h · W_out) · Eᵀ + b`.
    fn head_all(&self, hidden: Tensor<2>) -> Tensor<2> {
        match &self.output_bias {
            None => self.head.forward(hidden),
            Some(bias) => {
                let table = self.token_embedding.weight.val();
                // [N, d_base] x [d_base, vocab] -> [N, vocab]
                self.head.forward(hidden).matmul(table.transpose()) + bias.val().unsqueeze::<2>()
            }
        }
    }

    /// Checks the lengths and token ids of `rows`, right-pads them with id 0
    /// and runs [`forward`](Self::forward). Returns `[B, L_max, outputs]`.
    pub fn try_forward(&self, rows: &[Vec<u32>]) -> Result<Tensor<3>, ModelError> {
        let (tokens, _lengths) = self.pad_rows(rows, false)?;
        Ok(self.forward(tokens))
    }

    /// Computes the hidden states after the final layer norm, `[B, L, width]`,
    /// for right-padded token ids `[B, L]` with `L <= max_len`.
    pub fn hidden(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        let [batch, len] = tokens.dims();
        let device = tokens.device();
        let positions = Tensor::<1, Int>::arange(0..len as i64, &device)
            .reshape([1, len])
            .expand([batch, len]);
        let mut embedded = self.token_embedding.forward(tokens);
        if let Some(projection) = &self.input_projection {
            embedded = projection.forward(embedded);
        }
        let mut x = embedded + self.position_embedding.forward(positions);
        for block in &self.blocks {
            x = block.forward(x);
        }
        self.final_norm.forward(x)
    }

    /// Evaluates the head at selected rows of flattened hidden states.
    ///
    /// `hidden` is `[N, width]` (e.g. `[B·L, width]` from
    /// [`hidden`](Self::hidden)), and `rows` `[M]` indexes into it. Returns
    /// `[M]`. The scalar head ignores `token_ids` and returns `V` at each
    /// row. The vocabulary head returns `Q(row, token_ids[m])` from the
    /// selected head columns only, so it never builds an `[M, vocab]` tensor.
    /// The tied vocabulary head gathers the selected rows of the frozen
    /// table instead: `(h · W_out) · E_z + b_z`.
    pub fn head_at(
        &self,
        hidden: Tensor<2>,
        rows: Tensor<1, Int>,
        token_ids: Tensor<1, Int>,
    ) -> Tensor<1> {
        let selected = hidden.select(0, rows);
        if let Some(output_bias) = &self.output_bias {
            let [count, _] = selected.dims();
            // [M, d_base] projections and the [M, d_base] rows E_z.
            let projected = self.head.forward(selected);
            let embeddings = self
                .token_embedding
                .weight
                .val()
                .select(0, token_ids.clone());
            return (projected * embeddings).sum_dim(1).reshape([count])
                + output_bias.val().select(0, token_ids);
        }
        let weight = self.head.weight.val();
        let bias = self
            .head
            .bias
            .as_ref()
            .map(|bias| bias.val())
            .expect("scorer heads are built with a bias");
        match self.config.head {
            ScorerHead::Scalar => {
                let [count, _] = selected.dims();
                (selected.matmul(weight) + bias.unsqueeze::<2>()).reshape([count])
            }
            ScorerHead::Vocab => {
                // [W, M] columns of the head, transposed to [M, W].
                let columns = weight.select(1, token_ids.clone()).transpose();
                let [count, _] = columns.dims();
                (selected * columns).sum_dim(1).reshape([count]) + bias.select(0, token_ids)
            }
        }
    }

    /// Computes the value of each full sequence, i.e. of its last state.
    ///
    /// Scalar head: the output at the last token. Vocabulary head:
    /// `Q(tokens[..L-1], tokens[L-1])`, the output at position `L-2` for the
    /// last token id, which needs at least 2 tokens. A sequence longer than
    /// `max_len` is cut to its last `max_len` tokens. Padding is internal,
    /// so the result does not depend on how the caller would have padded.
    pub fn state_values(&self, sequences: &[Vec<u32>]) -> Result<Vec<f32>, ModelError> {
        if sequences.is_empty() {
            return Ok(Vec::new());
        }
        let min_len = match self.config.head {
            ScorerHead::Scalar => 1,
            ScorerHead::Vocab => 2,
        };
        let windows = self.windows(sequences, min_len)?;
        let (tokens, lengths) = self.pad_rows(&windows, true)?;
        let [batch, len] = tokens.dims();
        let hidden = self
            .hidden(tokens)
            .reshape([batch * len, self.config.width]);

        let mut rows = Vec::with_capacity(batch);
        let mut ids = Vec::with_capacity(batch);
        for (b, (window, length)) in windows.iter().zip(&lengths).enumerate() {
            let position = match self.config.head {
                ScorerHead::Scalar => length - 1,
                ScorerHead::Vocab => length - 2,
            };
            rows.push((b * len + position) as i64);
            ids.push(i64::from(window[length - 1]));
        }

        let device = self.device();
        let rows = Tensor::<1, Int>::from_data(TensorData::new(rows, [batch]), &device);
        let ids = Tensor::<1, Int>::from_data(TensorData::new(ids, [batch]), &device);
        let values = self.head_at(hidden, rows, ids);
        values
            .try_into_vec_as::<f32>()
            .map_err(|err| ModelError::TensorRead {
                what: "scorer value",
                message: err.to_string(),
            })
    }

    /// Computes `Q(s, z)` for every token z at the last state of each
    /// sequence: `[B, vocab_size]`. Vocabulary head only. A sequence longer
    /// than `max_len` is cut to its last `max_len` tokens.
    pub fn next_token_q(&self, sequences: &[Vec<u32>]) -> Result<Tensor<2>, ModelError> {
        if self.config.head != ScorerHead::Vocab {
            return Err(ModelError::ScorerHeadMismatch {
                operation: "next_token_q",
                expected: ScorerHead::Vocab.as_str(),
                actual: self.config.head.as_str(),
            });
        }
        if sequences.is_empty() {
            return Err(ModelError::InvalidScorerInput {
                row: 0,
                reason: "no sequences were given".to_string(),
            });
        }
        let windows = self.windows(sequences, 1)?;
        let (tokens, lengths) = self.pad_rows(&windows, true)?;
        let [batch, len] = tokens.dims();
        let hidden = self
            .hidden(tokens)
            .reshape([batch * len, self.config.width]);
        let rows: Vec<i64> = lengths
            .iter()
            .enumerate()
            .map(|(b, length)| (b * len + length - 1) as i64)
            .collect();
        let rows = Tensor::<1, Int>::from_data(TensorData::new(rows, [batch]), &self.device());
        Ok(self.head_all(hidden.select(0, rows)))
    }

    /// Cuts each sequence to its last `max_len` tokens and checks that it
    /// has at least `min_len`.
    fn windows(&self, sequences: &[Vec<u32>], min_len: usize) -> Result<Vec<Vec<u32>>, ModelError> {
        sequences
            .iter()
            .enumerate()
            .map(|(row, sequence)| {
                if sequence.len() < min_len {
                    return Err(ModelError::InvalidScorerInput {
                        row,
                        reason: format!(
                            "the sequence has {} tokens but the {} head needs at least {min_len}",
                            sequence.len(),
                            self.config.head.as_str()
                        ),
                    });
                }
                let start = sequence.len().saturating_sub(self.config.max_len);
                Ok(sequence[start..].to_vec())
            })
            .collect()
    }

    /// Checks ids and lengths, then right-pads with id 0 into `[B, L_max]`.
    /// Returns the tensor and each row's length. Empty rows are an error
    /// when `reject_empty` is true and pad to all zeros otherwise.
    fn pad_rows(
        &self,
        rows: &[Vec<u32>],
        reject_empty: bool,
    ) -> Result<(Tensor<2, Int>, Vec<usize>), ModelError> {
        let max_row = rows.iter().map(Vec::len).max().unwrap_or(0);
        for (row, ids) in rows.iter().enumerate() {
            if ids.len() > self.config.max_len {
                return Err(ModelError::InvalidScorerInput {
                    row,
                    reason: format!(
                        "the sequence has {} tokens, more than max_len {}",
                        ids.len(),
                        self.config.max_len
                    ),
                });
            }
            if reject_empty && ids.is_empty() {
                return Err(ModelError::InvalidScorerInput {
                    row,
                    reason: "the sequence is empty".to_string(),
                });
            }
            if let Some(&id) = ids
                .iter()
                .find(|&&id| id as usize >= self.config.vocab_size)
            {
                return Err(ModelError::InvalidScorerInput {
                    row,
                    reason: format!(
                        "token id {id} is not below vocab_size {}; was the scorer trained with another tokenizer?",
                        self.config.vocab_size
                    ),
                });
            }
        }
        let len = max_row.max(1);
        let mut flat = vec![0i64; rows.len() * len];
        for (b, ids) in rows.iter().enumerate() {
            for (i, &id) in ids.iter().enumerate() {
                flat[b * len + i] = i64::from(id);
            }
        }
        let tokens =
            Tensor::<2, Int>::from_data(TensorData::new(flat, [rows.len(), len]), &self.device());
        Ok((tokens, rows.iter().map(Vec::len).collect()))
    }
}

#[cfg(test)]
mod tests;
