//! A stepwise decoder over the frozen base model, for controlled decoding: the
//! caller picks every next token (tokenwise CD) or block of tokens (blockwise
//! CD) and the decoder returns the base model's next-token distribution.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use tiller_model::{KvCache, Llama};

use crate::error::DecodeError;

/// Decodes `n` continuations of one prompt step by step with a shared KV cache.
///
/// Rows are continuations. [`BaseDecoder::prefill`] creates them from a prompt,
/// [`BaseDecoder::step`] appends one token to each, and
/// [`BaseDecoder::select_rows`] drops, reorders or duplicates them. Every method
/// returns, per row, the base model's distribution over the next token at
/// temperature 1 without filtering.
#[derive(Debug)]
pub struct BaseDecoder<'model> {
    model: &'model Llama,
    cache: KvCache,
}

impl<'model> BaseDecoder<'model> {
    /// Creates a decoder without a prompt.
    pub fn new(model: &'model Llama) -> Self {
        Self {
            model,
            cache: KvCache::new(),
        }
    }

    /// Returns the base model.
    pub fn model(&self) -> &'model Llama {
        self.model
    }

    /// Returns the number of positions (prompt plus appended tokens) per row.
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    /// Returns true before the first prefill.
    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }

    /// Returns the number of rows (0 before the first prefill).
    pub fn rows(&self) -> usize {
        self.cache.batch_size()
    }

    /// Returns the KV cache, for example to clone it as a checkpoint.
    pub fn cache(&self) -> &KvCache {
        &self.cache
    }

    /// Discards any previous state, runs `prompt_ids` once with batch 1 and
    /// repeats the result to `n` rows. Returns the next-token log-probabilities
    /// `[n, vocab_size]` (f32, identical rows).
    ///
    /// # Errors
    ///
    /// [`DecodeError::EmptyPrompt`], [`DecodeError::ZeroSamples`] and
    /// [`DecodeError::Model`] for ids outside the vocabulary or a prompt longer
    /// than the model's context.
    pub fn prefill(&mut self, prompt_ids: &[u32], n: usize) -> Result<Tensor<2>, DecodeError> {
        Ok(log_softmax(self.prefill_logits(prompt_ids, n)?, 1))
    }

    /// Same as [`BaseDecoder::prefill`] but returns raw logits `[n, vocab_size]`.
    ///
    /// # Errors
    ///
    /// See [`BaseDecoder::prefill`].
    pub fn prefill_logits(
        &mut self,
        prompt_ids: &[u32],
        n: usize,
    ) -> Result<Tensor<2>, DecodeError> {
        if prompt_ids.is_empty() {
            return Err(DecodeError::EmptyPrompt);
        }
        if n == 0 {
            return Err(DecodeError::ZeroSamples);
        }
        let mut cache = KvCache::new();
        let tokens = self.token_tensor(prompt_ids, [1, prompt_ids.len()]);
        let logits = self.model.forward_last(tokens, &mut cache)?;
        cache.repeat_batch(n)?;
        self.cache = cache;
        Ok(logits.repeat_dim(0, n))
    }

    /// Appends `tokens[row]` to each row and returns the next-token
    /// log-probabilities `[rows, vocab_size]`.
    ///
    /// # Errors
    ///
    /// [`DecodeError::NotPrefilled`] before the first prefill,
    /// [`DecodeError::RowCountMismatch`] unless there is exactly one token per
    /// row, and [`DecodeError::Model`] for an id outside the vocabulary or a
    /// sequence longer than the model's context. The state is unchanged after an
    /// error.
    pub fn step(&mut self, tokens: &[u32]) -> Result<Tensor<2>, DecodeError> {
        Ok(log_softmax(self.step_logits(tokens)?, 1))
    }

    /// Same as [`BaseDecoder::step`] but returns raw logits `[rows, vocab_size]`.
    ///
    /// # Errors
    ///
    /// See [`BaseDecoder::step`].
    pub fn step_logits(&mut self, tokens: &[u32]) -> Result<Tensor<2>, DecodeError> {
        let rows = self.rows();
        if rows == 0 {
            return Err(DecodeError::NotPrefilled { operation: "step" });
        }
        if tokens.len() != rows {
            return Err(DecodeError::RowCountMismatch {
                expected: rows,
                actual: tokens.len(),
            });
        }
        let tokens = self.token_tensor(tokens, [rows, 1]);
        Ok(self.model.forward_last(tokens, &mut self.cache)?)
    }

    /// Keeps rows `rows[0], rows[1], …` of the current state, so rows can be
    /// dropped, reordered or duplicated (for example to continue every row from
    /// the best of several candidate blocks).
    ///
    /// # Errors
    ///
    /// [`DecodeError::NotPrefilled`] before the first prefill and
    /// [`DecodeError::Model`] for an empty selection or an index at or past
    /// [`BaseDecoder::rows`].
    pub fn select_rows(&mut self, rows: &[usize]) -> Result<(), DecodeError> {
        if self.rows() == 0 {
            return Err(DecodeError::NotPrefilled {
                operation: "select_rows",
            });
        }
        Ok(self.cache.select_rows(rows)?)
    }

    fn token_tensor(&self, ids: &[u32], shape: [usize; 2]) -> Tensor<2, Int> {
        let ids: Vec<i64> = ids.iter().map(|&id| i64::from(id)).collect();
        Tensor::from_data(TensorData::new(ids, shape), &self.model.device())
    }
}

/// Reads a `[rows, columns]` tensor back to the host as one `Vec` per row.
///
/// # Errors
///
/// [`DecodeError::TensorRead`] naming `what` when the backend cannot read it.
pub fn tensor_rows(tensor: Tensor<2>, what: &'static str) -> Result<Vec<Vec<f32>>, DecodeError> {
    let [_, columns] = tensor.dims();
    let read_error = |message: String| DecodeError::TensorRead { what, message };
    let values = tensor
        .try_into_data()
        .map_err(|error| read_error(format!("{error:?}")))?
        .try_into_vec_as::<f32>()
        .map_err(|error| read_error(format!("{error:?}")))?;
    Ok(values.chunks(columns.max(1)).map(<[f32]>::to_vec).collect())
}
