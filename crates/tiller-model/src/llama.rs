//! Llama-architecture causal language model (SmolLM2 and relatives): RMSNorm,
//! grouped-query attention with rotary position embeddings (RoPE) and a SwiGLU
//! feed-forward network, inference with a [`KvCache`].
//!
//! Weights use the llama.cpp tensor names (`token_embd.weight`,
//! `blk.{i}.attn_q.weight`, …). llama.cpp's converter permutes the rows of
//! `attn_q` and `attn_k` within each head so that its "normal" RoPE can rotate
//! adjacent pairs `(x[2i], x[2i + 1])`. Loading undoes that permutation, so the
//! model rotates the Hugging Face pairs `(x[i], x[i + head_dim / 2])` and computes
//! the same function as the original checkpoint in `transformers`.

use std::collections::HashMap;

use burn::module::{ModuleMapper, Param};
use burn::nn::{Embedding, RmsNorm};
use burn::prelude::*;
use burn::tensor::FloatDType;
use burn::tensor::activation::{silu, softmax};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::ModelError;
use crate::gguf::GgufFile;
use crate::kv_cache::KvCache;

/// Hyper-parameters of a Llama-architecture model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    /// Number of transformer blocks.
    pub n_layers: usize,
    /// Width of the residual stream.
    pub d_model: usize,
    /// Number of query heads.
    pub n_heads: usize,
    /// Number of key/value heads; each serves `n_heads / n_kv_heads` query heads.
    pub n_kv_heads: usize,
    /// Hidden width of the SwiGLU feed-forward network.
    pub d_ff: usize,
    /// Vocabulary size (rows of the token embedding).
    pub vocab_size: usize,
    /// RoPE base: pair `i` of a head rotates by `position * rope_theta^(-2i / head_dim)`.
    pub rope_theta: f64,
    /// Epsilon added to the mean square in RMSNorm.
    pub rms_eps: f64,
    /// Maximum sequence length (prompt plus generated tokens) the model accepts.
    pub max_seq_len: usize,
    /// Beginning-of-sequence token, when the model defines one.
    pub bos_id: Option<u32>,
    /// End-of-sequence token; generation stops when the model emits it.
    pub eos_id: u32,
    /// Whether the output projection reuses the token embedding matrix.
    pub tied_embeddings: bool,
}

impl LlamaConfig {
    /// Returns the width of one attention head, `d_model / n_heads`.
    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_heads.max(1)
    }

    /// Checks that the dimensions fit together.
    ///
    /// # Errors
    ///
    /// [`ModelError::InvalidConfig`] naming the first offending field.
    pub fn validate(&self) -> Result<(), ModelError> {
        let invalid = |field: &'static str, value: String, hint: &'static str| {
            Err(ModelError::InvalidConfig { field, value, hint })
        };
        let positive = [
            ("n_layers", self.n_layers),
            ("d_model", self.d_model),
            ("n_heads", self.n_heads),
            ("n_kv_heads", self.n_kv_heads),
            ("d_ff", self.d_ff),
            ("vocab_size", self.vocab_size),
            ("max_seq_len", self.max_seq_len),
        ];
        for (field, value) in positive {
            if value == 0 {
                return invalid(field, value.to_string(), "it must be positive");
            }
        }
        if !self.d_model.is_multiple_of(self.n_heads) {
            return invalid(
                "d_model",
                self.d_model.to_string(),
                "it must be a multiple of n_heads",
            );
        }
        if !self.head_dim().is_multiple_of(2) {
            return invalid(
                "d_model",
                self.d_model.to_string(),
                "d_model / n_heads must be even for the rotary embedding",
            );
        }
        if !self.n_heads.is_multiple_of(self.n_kv_heads) {
            return invalid(
                "n_kv_heads",
                self.n_kv_heads.to_string(),
                "n_heads must be a multiple of n_kv_heads",
            );
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            return invalid(
                "rope_theta",
                self.rope_theta.to_string(),
                "it must be a positive finite number",
            );
        }
        if !(self.rms_eps.is_finite() && self.rms_eps > 0.0) {
            return invalid(
                "rms_eps",
                self.rms_eps.to_string(),
                "it must be a positive finite number",
            );
        }
        for (field, id) in [("eos_id", Some(self.eos_id)), ("bos_id", self.bos_id)] {
            if let Some(id) = id
                && id as usize >= self.vocab_size
            {
                return invalid(field, id.to_string(), "it must be below vocab_size");
            }
        }
        Ok(())
    }

    /// Reads the configuration from the `llama.*` and `tokenizer.ggml.*` metadata
    /// of a GGUF file.
    ///
    /// Optional keys fall back to llama.cpp's defaults: `head_count_kv` to
    /// `head_count`, `rope.freq_base` to 10000, `vocab_size` to the rows of
    /// `token_embd.weight`. The output projection is tied when the file has no
    /// `output.weight`.
    ///
    /// # Errors
    ///
    /// [`ModelError::UnsupportedArchitecture`] unless `general.architecture` is
    /// `llama`, [`ModelError::MetadataNotFound`] or [`ModelError::InvalidMetadata`]
    /// for a missing or mistyped key, and [`ModelError::InvalidConfig`] for
    /// inconsistent values or a RoPE scaling that this model does not implement.
    pub fn from_gguf(gguf: &GgufFile) -> Result<Self, ModelError> {
        let architecture = gguf.architecture()?;
        if architecture != "llama" {
            return Err(ModelError::UnsupportedArchitecture {
                path: gguf.path().to_path_buf(),
                architecture: architecture.to_string(),
            });
        }

        let optional_u32 = |key: &str| -> Result<Option<u32>, ModelError> {
            match gguf.contains_metadata(key) {
                true => gguf.metadata_u32(key).map(Some),
                false => Ok(None),
            }
        };
        let n_heads = gguf.metadata_usize("llama.attention.head_count")?;
        let n_kv_heads = match optional_u32("llama.attention.head_count_kv")? {
            Some(heads) => heads as usize,
            None => n_heads,
        };
        let vocab_size = match optional_u32("llama.vocab_size")? {
            Some(size) => size as usize,
            None => gguf.tensor_info("token_embd.weight")?.shape[0],
        };
        let rope_theta = match gguf.contains_metadata("llama.rope.freq_base") {
            true => f64::from(gguf.metadata_f32("llama.rope.freq_base")?),
            false => 10_000.0,
        };
        let rms_eps = gguf.metadata_f32("llama.attention.layer_norm_rms_epsilon")?;
        let config = Self {
            n_layers: gguf.metadata_usize("llama.block_count")?,
            d_model: gguf.metadata_usize("llama.embedding_length")?,
            n_heads,
            n_kv_heads,
            d_ff: gguf.metadata_usize("llama.feed_forward_length")?,
            vocab_size,
            rope_theta,
            rms_eps: f64::from(rms_eps),
            max_seq_len: gguf.metadata_usize("llama.context_length")?,
            bos_id: optional_u32("tokenizer.ggml.bos_token_id")?,
            eos_id: gguf.metadata_u32("tokenizer.ggml.eos_token_id")?,
            tied_embeddings: !gguf.contains_tensor("output.weight"),
        };
        config.validate()?;

        if let Some(rope_dims) = optional_u32("llama.rope.dimension_count")?
            && rope_dims as usize != config.head_dim()
        {
            return Err(ModelError::InvalidConfig {
                field: "llama.rope.dimension_count",
                value: rope_dims.to_string(),
                hint: "only RoPE over the whole head (d_model / n_heads) is implemented",
            });
        }
        if gguf.contains_metadata("llama.rope.scaling.type") {
            let scaling = gguf.metadata_str("llama.rope.scaling.type")?;
            if scaling != "none" {
                return Err(ModelError::InvalidConfig {
                    field: "llama.rope.scaling.type",
                    value: scaling.to_string(),
                    hint: "RoPE scaling is not implemented, so use a model without it",
                });
            }
        }
        Ok(config)
    }

    /// Builds a model with random weights, for tests: [`LlamaConfig::init_random`]
    /// with seed 0.
    ///
    /// # Errors
    ///
    /// [`ModelError::InvalidConfig`] when the configuration is invalid.
    pub fn init(&self, device: &Device) -> Result<Llama, ModelError> {
        self.init_random(0, device)
    }

    /// Builds a model with seeded random weights, for tests. Every weight is
    /// uniform: the token embedding with variance 1, a projection `[d_out, d_in]`
    /// in `±1 / sqrt(d_in)` (the bound of burn's `Linear` initialiser), and the norm
    /// gains are 1. The same seed gives the same model.
    ///
    /// # Errors
    ///
    /// [`ModelError::InvalidConfig`] when the configuration is invalid.
    pub fn init_random(&self, seed: u64, device: &Device) -> Result<Llama, ModelError> {
        self.validate()?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut weights: HashMap<String, (Vec<usize>, Vec<f32>)> = HashMap::new();
        let mut add = |name: String, shape: Vec<usize>, bound: Option<f32>| {
            let count = shape.iter().product();
            let values = match bound {
                Some(bound) => (0..count)
                    .map(|_| rng.random_range(-bound..bound))
                    .collect(),
                None => vec![1.0; count],
            };
            weights.insert(name, (shape, values));
        };
        let projection =
            |d_out: usize, d_in: usize| (vec![d_out, d_in], Some(1.0 / (d_in as f32).sqrt()));
        let d_model = self.d_model;
        let q_rows = self.n_heads * self.head_dim();
        let kv_rows = self.n_kv_heads * self.head_dim();

        add(
            "token_embd.weight".into(),
            vec![self.vocab_size, d_model],
            Some(3.0f32.sqrt()),
        );
        for layer in 0..self.n_layers {
            let name = |tensor: &str| format!("blk.{layer}.{tensor}.weight");
            let tensors = [
                ("attn_q", projection(q_rows, d_model)),
                ("attn_k", projection(kv_rows, d_model)),
                ("attn_v", projection(kv_rows, d_model)),
                ("attn_output", projection(d_model, q_rows)),
                ("ffn_gate", projection(self.d_ff, d_model)),
                ("ffn_up", projection(self.d_ff, d_model)),
                ("ffn_down", projection(d_model, self.d_ff)),
                ("attn_norm", (vec![d_model], None)),
                ("ffn_norm", (vec![d_model], None)),
            ];
            for (tensor, (shape, bound)) in tensors {
                add(name(tensor), shape, bound);
            }
        }

        add("output_norm.weight".into(), vec![d_model], None);
        if !self.tied_embeddings {
            let (shape, bound) = projection(self.vocab_size, d_model);
            add("output.weight".into(), shape, bound);
        }
        Llama::from_weights(self, &weights, device)
    }
}

/// A source of f32 weights by llama.cpp tensor name, with PyTorch row-major
/// shapes (`[out, in]` for a linear weight).
pub trait WeightSource {
    /// Returns true when the source has a tensor of this name.
    fn contains(&self, name: &str) -> bool;

    /// Returns the tensor's shape and row-major values.
    ///
    /// # Errors
    ///
    /// Whatever the source raises for a missing or unreadable tensor.
    fn tensor_f32(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>), ModelError>;
}

impl WeightSource for GgufFile {
    fn contains(&self, name: &str) -> bool {
        self.contains_tensor(name)
    }

    fn tensor_f32(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>), ModelError> {
        GgufFile::tensor_f32(self, name)
    }
}

/// In-memory weights, mostly for tests: name to (shape, row-major values).
impl WeightSource for HashMap<String, (Vec<usize>, Vec<f32>)> {
    fn contains(&self, name: &str) -> bool {
        self.contains_key(name)
    }

    fn tensor_f32(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>), ModelError> {
        self.get(name)
            .cloned()
            .ok_or_else(|| ModelError::MissingTensor {
                name: name.to_string(),
            })
    }
}

/// A bias-free linear map whose weight is stored `[d_out, d_in]`, the layout of
/// PyTorch and GGUF.
///
/// It computes `y = (W · xᵀ)ᵀ`. When `x` has few rows, as in decoding, burn-flex
/// 0.22's gemm runs this orientation faster than `x · W` with `W` stored
/// `[d_in, d_out]` like burn's `Linear`. One measurement, on a 2-core AMD EPYC:
/// 60 distinct 576 → 1536 maps of 8 rows took 17 ms against 28 ms.
#[derive(Module, Debug)]
pub struct Projection {
    /// `[d_out, d_in]`.
    weight: Param<Tensor<2>>,
}

impl Projection {
    /// Maps `x` `[.., d_in]` to `[.., d_out]`.
    fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        project(x, self.weight.val())
    }
}

/// Computes `x · Wᵀ` for `x` `[.., d_in]` and `weight` `[d_out, d_in]` as `(W · xᵀ)ᵀ`.
fn project<const D: usize>(x: Tensor<D>, weight: Tensor<2>) -> Tensor<D> {
    let mut dims = x.dims();
    let d_in = dims[D - 1];
    let rows = dims[..D - 1].iter().product();
    let [d_out, _] = weight.dims();
    let output = weight
        .matmul(x.reshape([rows, d_in]).transpose())
        .transpose();
    dims[D - 1] = d_out;
    output.reshape(dims)
}

/// One transformer block: pre-norm attention and pre-norm SwiGLU, each added to
/// the residual stream.
#[derive(Module, Debug)]
pub struct LlamaBlock {
    attn_norm: RmsNorm,
    /// Query, key and value projections stacked: output features
    /// `[q (n_heads * head_dim) | k (n_kv_heads * head_dim) | v (n_kv_heads * head_dim)]`.
    attn_qkv: Projection,
    attn_output: Projection,
    ffn_norm: RmsNorm,
    /// Gate and up projections stacked: output features `[gate (d_ff) | up (d_ff)]`.
    ffn_gate_up: Projection,
    ffn_down: Projection,
}

/// A Llama-architecture causal language model.
#[derive(Module, Debug)]
pub struct Llama {
    token_embedding: Embedding,
    blocks: Vec<LlamaBlock>,
    output_norm: RmsNorm,
    /// Output projection to the vocabulary; `None` when tied to the embedding.
    output: Option<Projection>,
    #[module(skip)]
    config: LlamaConfig,
}

/// Rotary embedding tables for the positions of one forward pass.
struct Rope {
    /// `cos(angle)` per position and head column, `[1, 1, seq, head_dim]`.
    cos: Tensor<4>,
    /// `sin(angle)`, same shape.
    sin: Tensor<4>,
}

/// Inputs of the current forward pass that every block shares.
struct Pass<'a> {
    rope: &'a Rope,
    /// Additive causal mask `[1, 1, groups * seq, cached + seq]` (0 or -inf), or
    /// `None` for a single new token, which may attend to every position.
    causal_bias: Option<&'a Tensor<4>>,
    n_heads: usize,
    n_kv_heads: usize,
    head_dim: usize,
}

impl Llama {
    /// Loads a model from a GGUF file: configuration from its metadata, weights
    /// dequantized to f32 (about 540 MB for SmolLM2-135M).
    ///
    /// # Errors
    ///
    /// See [`LlamaConfig::from_gguf`] and [`Llama::from_weights`].
    pub fn from_gguf(gguf: &GgufFile, device: &Device) -> Result<Self, ModelError> {
        let config = LlamaConfig::from_gguf(gguf)?;
        Self::from_weights(&config, gguf, device)
    }

    /// Loads a model from weights named as in llama.cpp GGUF files. The output
    /// projection is tied to the token embedding when `output.weight` is absent.
    ///
    /// # Errors
    ///
    /// [`ModelError::InvalidConfig`] for an invalid `config`,
    /// [`ModelError::TensorShape`] when a tensor does not have the shape the
    /// configuration implies, and whatever `source` raises for a missing tensor.
    pub fn from_weights(
        config: &LlamaConfig,
        source: &impl WeightSource,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let mut config = config.clone();
        config.tied_embeddings = !source.contains("output.weight");
        config.validate()?;
        let loader = Loader {
            source,
            config: &config,
            device,
        };
        let d_model = config.d_model;
        let token_embedding = Embedding {
            weight: loader.matrix_as_is("token_embd.weight", config.vocab_size, d_model)?,
        };
        let blocks = (0..config.n_layers)
            .map(|layer| loader.block(layer))
            .collect::<Result<Vec<_>, _>>()?;
        let output_norm = loader.norm("output_norm.weight")?;
        let output = if config.tied_embeddings {
            None
        } else {
            Some(loader.linear("output.weight", config.vocab_size, d_model)?)
        };
        Ok(Self {
            token_embedding,
            blocks,
            output_norm,
            output,
            config,
        })
    }

    /// Returns the model's configuration.
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// Returns the device holding the weights.
    pub fn device(&self) -> Device {
        self.token_embedding.weight.val().device()
    }

    /// Returns the float type of the weights and of the activations between
    /// blocks.
    pub fn dtype(&self) -> FloatDType {
        self.token_embedding.weight.val().dtype().into()
    }

    /// Converts every weight to `dtype` (bf16 or f16 on a GPU halves the
    /// memory and the bandwidth). The logits stay f32: [`Llama::forward`]
    /// casts them back before they leave the model, so log-softmax, KL and
    /// sampling always see f32.
    pub fn cast(self, dtype: FloatDType) -> Self {
        struct Cast(FloatDType);
        impl ModuleMapper for Cast {
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
                let dtype = self.0;
                param.map(|tensor| tensor.cast(dtype))
            }
        }
        self.map(&mut Cast(dtype))
    }

    /// Runs `tokens` (`[batch, seq]`) after the positions in `cache` and returns the
    /// logits `[batch, seq, vocab_size]`. Position `j` predicts the token after `tokens[.., j]`.
    ///
    /// New tokens attend causally to each other and to every cached position, and
    /// their positions continue from `cache.len()`. The cache grows by `seq`. All
    /// rows share one length (no padding).
    ///
    /// # Errors
    ///
    /// See [`Llama::forward_hidden`].
    pub fn forward(
        &self,
        tokens: Tensor<2, Int>,
        cache: &mut KvCache,
    ) -> Result<Tensor<3>, ModelError> {
        let hidden = self.forward_hidden(tokens, cache)?;
        Ok(self.project_to_vocab(hidden))
    }

    /// Same as [`Llama::forward`] but projects only the last position to the
    /// vocabulary and returns its logits, `[batch, vocab_size]`. Use this when
    /// decoding, because the output projection is the largest matrix in the model.
    ///
    /// # Errors
    ///
    /// See [`Llama::forward_hidden`].
    pub fn forward_last(
        &self,
        tokens: Tensor<2, Int>,
        cache: &mut KvCache,
    ) -> Result<Tensor<2>, ModelError> {
        let hidden = self.forward_hidden(tokens, cache)?;
        let [batch, seq, d_model] = hidden.dims();
        let last = hidden.narrow(1, seq - 1, 1).reshape([batch, d_model]);
        Ok(self.project_to_vocab(last))
    }

    /// Runs the transformer blocks and the final RMSNorm and returns the hidden
    /// states `[batch, seq, d_model]` that the output projection reads.
    ///
    /// # Errors
    ///
    /// The cache is unchanged when an error is returned.
    ///
    /// - [`ModelError::EmptyTokenBatch`] for a batch or sequence of length 0.
    /// - [`ModelError::TokenOutOfRange`] for an id at or past the vocabulary size.
    /// - [`ModelError::CacheBatchMismatch`] when `tokens` has a different number of
    ///   rows than a non-empty `cache`.
    /// - [`ModelError::CacheLayerMismatch`] for a cache filled by a model of
    ///   another depth.
    /// - [`ModelError::ContextOverflow`] past `max_seq_len` positions.
    pub fn forward_hidden(
        &self,
        tokens: Tensor<2, Int>,
        cache: &mut KvCache,
    ) -> Result<Tensor<3>, ModelError> {
        let [batch, seq] = tokens.dims();
        self.check_input(&tokens, cache)?;
        let device = tokens.device();
        let start = cache.len();
        let head_dim = self.config.head_dim();
        let groups = self.config.n_heads / self.config.n_kv_heads;
        let dtype = self.dtype();
        let rope = self.rope_tables(start, seq, &device, dtype);
        let causal_bias = (seq > 1).then(|| causal_bias(groups, seq, start, &device, dtype));
        let pass = Pass {
            rope: &rope,
            causal_bias: causal_bias.as_ref(),
            n_heads: self.config.n_heads,
            n_kv_heads: self.config.n_kv_heads,
            head_dim,
        };
        let mut x = self.token_embedding.forward(tokens);
        for (layer, block) in self.blocks.iter().enumerate() {
            x = block.forward(x, layer, cache, &pass);
        }
        cache.advance(seq);
        debug_assert_eq!(cache.batch_size(), batch);
        Ok(rms_norm(&self.output_norm, x))
    }

    /// Applies the output projection to hidden states `[.., d_model]`.
    /// The logits are f32 whatever the weights' type.
    fn project_to_vocab<const D: usize>(&self, hidden: Tensor<D>) -> Tensor<D> {
        let logits = match &self.output {
            Some(output) => output.forward(hidden),
            // Tied weights: the embedding `[vocab_size, d_model]` is the output weight.
            None => project(hidden, self.token_embedding.weight.val()),
        };
        logits.cast(FloatDType::F32)
    }

    /// Validates the inputs of a forward pass before anything touches the cache.
    fn check_input(&self, tokens: &Tensor<2, Int>, cache: &KvCache) -> Result<(), ModelError> {
        let [batch, seq] = tokens.dims();
        if batch == 0 || seq == 0 {
            return Err(ModelError::EmptyTokenBatch { batch, seq });
        }
        if !cache.is_empty() && cache.batch_size() != batch {
            return Err(ModelError::CacheBatchMismatch {
                cache_batch: cache.batch_size(),
                batch,
            });
        }
        if cache.num_layers() != 0 && cache.num_layers() != self.config.n_layers {
            return Err(ModelError::CacheLayerMismatch {
                cache_layers: cache.num_layers(),
                model_layers: self.config.n_layers,
            });
        }
        let needed = cache.len() + seq;
        if needed > self.config.max_seq_len {
            return Err(ModelError::ContextOverflow {
                needed,
                max_seq_len: self.config.max_seq_len,
            });
        }
        let ids =
            tokens
                .to_data()
                .try_into_vec_as::<i64>()
                .map_err(|error| ModelError::TensorRead {
                    what: "token ids",
                    message: format!("{error:?}"),
                })?;
        let vocab = self.config.vocab_size as i64;
        if let Some(&token) = ids.iter().find(|&&id| id < 0 || id >= vocab) {
            return Err(ModelError::TokenOutOfRange {
                token,
                vocab_size: self.config.vocab_size,
            });
        }
        Ok(())
    }

    /// Builds the RoPE tables for positions `start .. start + seq`.
    ///
    /// Column `c` of a head pairs with column `c ± head_dim / 2` (Hugging Face
    /// `rotate_half`) and both rotate by `position · θ^(-2i / head_dim)` with
    /// `i = c mod head_dim / 2`. Angles are computed in f64, then rounded to f32.
    fn rope_tables(&self, start: usize, seq: usize, device: &Device, dtype: FloatDType) -> Rope {
        let head_dim = self.config.head_dim();
        let half = head_dim / 2;
        let inverse_frequencies: Vec<f64> = (0..half)
            .map(|i| {
                self.config
                    .rope_theta
                    .powf(-2.0 * i as f64 / head_dim as f64)
            })
            .collect();
        let mut cos = Vec::with_capacity(seq * head_dim);
        let mut sin = Vec::with_capacity(seq * head_dim);
        for position in start..start + seq {
            for column in 0..head_dim {
                let angle = position as f64 * inverse_frequencies[column % half];
                cos.push(angle.cos() as f32);
                sin.push(angle.sin() as f32);
            }
        }
        let shape = [1, 1, seq, head_dim];
        Rope {
            cos: Tensor::<4>::from_data(TensorData::new(cos, shape), device).cast(dtype),
            sin: Tensor::<4>::from_data(TensorData::new(sin, shape), device).cast(dtype),
        }
    }
}

/// Builds the additive causal mask for `seq` new tokens after `start` cached ones,
/// `[1, 1, groups * seq, start + seq]`. Row `r` is query position
/// `start + r mod seq` (the rows of the `groups` query heads that share a key/value
/// head are stacked), and it may attend to key positions up to its own.
fn causal_bias(
    groups: usize,
    seq: usize,
    start: usize,
    device: &Device,
    dtype: FloatDType,
) -> Tensor<4> {
    let keys = start + seq;
    let mut bias = Vec::with_capacity(groups * seq * keys);
    for _ in 0..groups {
        for query in 0..seq {
            let last_visible = start + query;
            bias.extend((0..keys).map(|key| {
                if key <= last_visible {
                    0.0f32
                } else {
                    f32::NEG_INFINITY
                }
            }));
        }
    }
    Tensor::<4>::from_data(TensorData::new(bias, [1, 1, groups * seq, keys]), device).cast(dtype)
}

/// RMSNorm with the mean of squares taken in f32: in f16 the squares of
/// SmolLM2's larger activations overflow to infinity. A no-op cast in f32.
fn rms_norm(norm: &RmsNorm, x: Tensor<3>) -> Tensor<3> {
    let dtype = x.dtype();
    let x = x.cast(FloatDType::F32);
    let mean_square = x.clone().square().mean_dim(2);
    let normalized = x / (mean_square + norm.epsilon).sqrt();
    normalized.cast(dtype) * norm.gamma.val().unsqueeze()
}

impl LlamaBlock {
    fn forward(&self, x: Tensor<3>, layer: usize, cache: &mut KvCache, pass: &Pass) -> Tensor<3> {
        let attention = self.attention(rms_norm(&self.attn_norm, x.clone()), layer, cache, pass);
        let x = x + attention;
        let feed_forward = self.feed_forward(rms_norm(&self.ffn_norm, x.clone()));
        x + feed_forward
    }

    /// Grouped-query attention over the cached and new positions.
    ///
    /// The `groups = n_heads / n_kv_heads` query heads that share a key/value head
    /// are stacked along the sequence axis, `[batch, n_kv_heads, groups * seq,
    /// head_dim]`, so one matmul per key/value head serves them all and the keys and
    /// values are never repeated per query head. Query head `h` uses key/value head
    /// `h / groups`, as in Hugging Face `repeat_kv`.
    fn attention(&self, x: Tensor<3>, layer: usize, cache: &mut KvCache, pass: &Pass) -> Tensor<3> {
        let [batch, seq, _] = x.dims();
        let Pass {
            n_heads,
            n_kv_heads,
            head_dim,
            ..
        } = *pass;
        let groups = n_heads / n_kv_heads;
        let qkv = self.attn_qkv.forward(x);
        let split_heads = |start: usize, heads: usize| {
            qkv.clone()
                .narrow(2, start * head_dim, heads * head_dim)
                .reshape([batch, seq, heads, head_dim])
                .swap_dims(1, 2)
        };
        let queries = split_heads(0, n_heads);
        let keys = split_heads(n_heads, n_kv_heads);
        let values = split_heads(n_heads + n_kv_heads, n_kv_heads);

        let scale = 1.0 / (head_dim as f64).sqrt();
        let queries = rotate(queries, pass.rope).mul_scalar(scale);
        let keys = rotate(keys, pass.rope);
        let (keys, values) = cache.append(layer, keys, values);

        let queries = queries.reshape([batch, n_kv_heads, groups * seq, head_dim]);
        let mut scores = queries.matmul(keys.swap_dims(2, 3));
        if let Some(bias) = pass.causal_bias {
            scores = scores + bias.clone();
        }
        // Softmax in f32: half-precision exponentials lose the small
        // attention weights.
        let dtype = values.dtype();
        let weights = softmax(scores.cast(FloatDType::F32), 3).cast(dtype);
        let context = weights.matmul(values);
        let context = context
            .reshape([batch, n_heads, seq, head_dim])
            .swap_dims(1, 2)
            .reshape([batch, seq, n_heads * head_dim]);
        self.attn_output.forward(context)
    }

    /// SwiGLU: `down(silu(gate(x)) * up(x))`.
    fn feed_forward(&self, x: Tensor<3>) -> Tensor<3> {
        let gate_up = self.ffn_gate_up.forward(x);
        let d_ff = gate_up.dims()[2] / 2;
        let gate = gate_up.clone().narrow(2, 0, d_ff);
        let up = gate_up.narrow(2, d_ff, d_ff);
        self.ffn_down.forward(silu(gate) * up)
    }
}

/// Applies RoPE to `x` `[batch, heads, seq, head_dim]`:
/// `x · cos + rotate_half(x) · sin` with `rotate_half(x) = [-x₂, x₁]` for the
/// halves `x₁ = x[.., :head_dim / 2]` and `x₂ = x[.., head_dim / 2:]`.
fn rotate(x: Tensor<4>, rope: &Rope) -> Tensor<4> {
    let head_dim = x.dims()[3];
    let half = head_dim / 2;
    let first = x.clone().narrow(3, 0, half);
    let second = x.clone().narrow(3, half, half);
    let rotated = Tensor::cat(vec![second.neg(), first], 3);
    x * rope.cos.clone() + rotated * rope.sin.clone()
}

/// Builds modules from a [`WeightSource`], checking every shape.
struct Loader<'a, S: WeightSource> {
    source: &'a S,
    config: &'a LlamaConfig,
    device: &'a Device,
}

impl<S: WeightSource> Loader<'_, S> {
    /// Reads `name` and checks that its shape is `expected`.
    fn read(&self, name: &str, expected: &[usize]) -> Result<Vec<f32>, ModelError> {
        let (shape, values) = self.source.tensor_f32(name)?;
        if shape != expected || values.len() != expected.iter().product::<usize>() {
            return Err(ModelError::TensorShape {
                name: name.to_string(),
                expected: expected.to_vec(),
                actual: shape,
            });
        }
        Ok(values)
    }

    /// Reads a `[rows, columns]` matrix and keeps its layout.
    fn matrix_as_is(
        &self,
        name: &str,
        rows: usize,
        columns: usize,
    ) -> Result<Param<Tensor<2>>, ModelError> {
        let values = self.read(name, &[rows, columns])?;
        Ok(Param::from_data(
            TensorData::new(values, [rows, columns]),
            self.device,
        ))
    }

    /// Reads a linear weight `[d_out, d_in]`.
    fn linear(&self, name: &str, d_out: usize, d_in: usize) -> Result<Projection, ModelError> {
        let weight = self.read(name, &[d_out, d_in])?;
        Ok(self.stacked(vec![weight], d_out, d_in))
    }

    /// Builds one [`Projection`] whose output features are the rows of `parts`
    /// (each `[rows, d_in]`, row-major), in order. `d_out` is their total row count.
    fn stacked(&self, parts: Vec<Vec<f32>>, d_out: usize, d_in: usize) -> Projection {
        let weight = parts.concat();
        Projection {
            weight: Param::from_data(TensorData::new(weight, [d_out, d_in]), self.device),
        }
    }

    fn norm(&self, name: &str) -> Result<RmsNorm, ModelError> {
        let gamma = self.read(name, &[self.config.d_model])?;
        Ok(RmsNorm {
            gamma: Param::from_data(TensorData::new(gamma, [self.config.d_model]), self.device),
            epsilon: self.config.rms_eps,
        })
    }

    fn block(&self, layer: usize) -> Result<LlamaBlock, ModelError> {
        let config = self.config;
        let d_model = config.d_model;
        let head_dim = config.head_dim();
        let q_rows = config.n_heads * head_dim;
        let kv_rows = config.n_kv_heads * head_dim;
        let name = |tensor: &str| format!("blk.{layer}.{tensor}.weight");

        let q = self.read(&name("attn_q"), &[q_rows, d_model])?;
        let k = self.read(&name("attn_k"), &[kv_rows, d_model])?;
        let v = self.read(&name("attn_v"), &[kv_rows, d_model])?;
        let q = unpermute_rope_rows(&q, config.n_heads, head_dim, d_model);
        let k = unpermute_rope_rows(&k, config.n_kv_heads, head_dim, d_model);
        let attn_qkv = self.stacked(vec![q, k, v], q_rows + 2 * kv_rows, d_model);

        let gate = self.read(&name("ffn_gate"), &[config.d_ff, d_model])?;
        let up = self.read(&name("ffn_up"), &[config.d_ff, d_model])?;
        let ffn_gate_up = self.stacked(vec![gate, up], 2 * config.d_ff, d_model);

        Ok(LlamaBlock {
            attn_norm: self.norm(&name("attn_norm"))?,
            attn_qkv,
            attn_output: self.linear(&name("attn_output"), d_model, q_rows)?,
            ffn_norm: self.norm(&name("ffn_norm"))?,
            ffn_gate_up,
            ffn_down: self.linear(&name("ffn_down"), d_model, config.d_ff)?,
        })
    }
}

/// Undoes llama.cpp's RoPE row permutation of a `[heads * head_dim, d_in]` query
/// or key weight.
///
/// llama.cpp's Hugging Face converter (`LlamaModel.permute`) reshapes each
/// head's rows to `[2, head_dim / 2]` and swaps the two axes, so Hugging Face row
/// `a · head_dim / 2 + i` (`a ∈ {0, 1}`) lands at GGUF row `2i + a`. This function
/// maps every GGUF row back to its Hugging Face position.
pub fn unpermute_rope_rows(weight: &[f32], heads: usize, head_dim: usize, d_in: usize) -> Vec<f32> {
    let half = head_dim / 2;
    let mut output = vec![0.0f32; weight.len()];
    for head in 0..heads {
        for hf_row in 0..head_dim {
            let gguf_row = 2 * (hf_row % half) + hf_row / half;
            let source = (head * head_dim + gguf_row) * d_in;
            let target = (head * head_dim + hf_row) * d_in;
            output[target..target + d_in].copy_from_slice(&weight[source..source + d_in]);
        }
    }
    output
}

#[cfg(test)]
mod tests {
    use super::unpermute_rope_rows;

    #[test]
    fn unpermute_restores_hugging_face_row_order() {
        // Two heads of head_dim 4 (half 2) over d_in 1. Hugging Face row
        // a * 2 + i sits at GGUF row 2i + a, so each head's GGUF rows contain the
        // Hugging Face rows [0, 2, 1, 3]: values 10..13 for head 0, 20..23 for head 1.
        let gguf = [10.0, 12.0, 11.0, 13.0, 20.0, 22.0, 21.0, 23.0];
        let hf = unpermute_rope_rows(&gguf, 2, 4, 1);
        assert_eq!(hf, vec![10.0, 11.0, 12.0, 13.0, 20.0, 21.0, 22.0, 23.0]);
    }

    #[test]
    fn unpermute_moves_whole_rows() {
        // One head of head_dim 4 over d_in 2: GGUF row r contains [r, 100 + r].
        let gguf: Vec<f32> = (0..4).flat_map(|r| [r as f32, 100.0 + r as f32]).collect();
        let hf = unpermute_rope_rows(&gguf, 1, 4, 2);
        assert_eq!(hf, vec![0.0, 100.0, 2.0, 102.0, 1.0, 101.0, 3.0, 103.0]);
    }
}
