//! Key/value cache for incremental decoding with [`Llama`](crate::llama::Llama).

use burn::prelude::*;

use crate::error::ModelError;

/// Positions added to a layer's buffer each time it runs out of room. Growing in
/// fixed chunks copies the cache once per chunk instead of once per token.
const CAPACITY_CHUNK: usize = 128;

/// Attention keys and values of every layer for the tokens decoded so far.
///
/// All rows share one length, because a batch contains samples of a single prompt.
/// Keys are stored after the rotary embedding. Cloning is cheap: the clone shares
/// the buffers until either side appends, and an append then copies.
#[derive(Clone, Debug, Default)]
pub struct KvCache {
    /// One entry per layer once the first forward pass has run, empty before.
    /// An entry is `None` only while that layer is being updated.
    layers: Vec<Option<LayerKv>>,
    /// Cached positions per row.
    len: usize,
}

/// One layer's cache buffers.
#[derive(Clone, Debug)]
struct LayerKv {
    /// Keys, `[batch, n_kv_heads, capacity, head_dim]`. Positions from the cache
    /// length up to `capacity` are unused scratch.
    keys: Tensor<4>,
    /// Values, same shape and layout as `keys`.
    values: Tensor<4>,
}

impl KvCache {
    /// Creates an empty cache. The first forward pass sets its batch size.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the number of cached positions per row.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Returns true when no position is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Returns the number of rows, or 0 for an empty cache.
    pub fn batch_size(&self) -> usize {
        match self.layers.first() {
            Some(Some(layer)) if self.len > 0 => layer.keys.dims()[0],
            _ => 0,
        }
    }

    /// Returns the number of cached layers (0 before the first forward pass).
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Repeats every row `n` times in place: row `r` becomes rows `r * n .. r * n + n`.
    /// For a one-row cache of a prefilled prompt, this yields `n` identical rows.
    ///
    /// # Errors
    ///
    /// [`ModelError::EmptyCache`] for an empty cache and
    /// [`ModelError::ZeroRepeat`] for `n == 0`.
    pub fn repeat_batch(&mut self, n: usize) -> Result<(), ModelError> {
        if n == 0 {
            return Err(ModelError::ZeroRepeat);
        }
        let batch = self.require_rows("repeat_batch")?;
        if n == 1 {
            return Ok(());
        }
        let rows: Vec<usize> = (0..batch)
            .flat_map(|row| std::iter::repeat_n(row, n))
            .collect();
        self.gather_rows(&rows);
        Ok(())
    }

    /// Replaces the rows with `rows[0], rows[1], …` of the current cache, so rows can
    /// be dropped, reordered or duplicated (for example to continue from the best
    /// of several candidate blocks).
    ///
    /// # Errors
    ///
    /// [`ModelError::EmptyCache`] for an empty cache,
    /// [`ModelError::EmptyRowSelection`] for an empty `rows`, and
    /// [`ModelError::CacheRowOutOfRange`] for an index at or past the batch size.
    pub fn select_rows(&mut self, rows: &[usize]) -> Result<(), ModelError> {
        let batch = self.require_rows("select_rows")?;
        if rows.is_empty() {
            return Err(ModelError::EmptyRowSelection);
        }
        if let Some(&row) = rows.iter().find(|&&row| row >= batch) {
            return Err(ModelError::CacheRowOutOfRange { row, batch });
        }
        let identity = rows.len() == batch && rows.iter().enumerate().all(|(i, &r)| i == r);
        if !identity {
            self.gather_rows(rows);
        }
        Ok(())
    }

    /// Returns the batch size, or an error naming `operation` when the cache is empty.
    fn require_rows(&self, operation: &'static str) -> Result<usize, ModelError> {
        match self.batch_size() {
            0 => Err(ModelError::EmptyCache { operation }),
            batch => Ok(batch),
        }
    }

    /// Gathers `rows` (already checked to be in range) along the batch dimension.
    fn gather_rows(&mut self, rows: &[usize]) {
        let Some(Some(first)) = self.layers.first() else {
            return;
        };
        let device = first.keys.device();
        let indices: Vec<i64> = rows.iter().map(|&row| row as i64).collect();
        let indices = Tensor::<1, Int>::from_data(TensorData::new(indices, [rows.len()]), &device);
        for layer in self.layers.iter_mut().flatten() {
            layer.keys = layer.keys.clone().select(0, indices.clone());
            layer.values = layer.values.clone().select(0, indices.clone());
        }
    }

    /// Writes `keys` and `values` (`[batch, n_kv_heads, new, head_dim]`) for layer
    /// `layer` at positions `len() .. len() + new`, and returns views of the whole
    /// cached sequence, `[batch, n_kv_heads, len() + new, head_dim]`.
    ///
    /// The caller has checked that the batch size matches and calls this for layers
    /// `0, 1, …` in order, then [`KvCache::advance`] once.
    pub(crate) fn append(
        &mut self,
        layer: usize,
        keys: Tensor<4>,
        values: Tensor<4>,
    ) -> (Tensor<4>, Tensor<4>) {
        let [batch, kv_heads, new, head_dim] = keys.dims();
        let start = self.len;
        let end = start + new;
        if layer == self.layers.len() {
            self.layers.push(None);
        }
        let capacity = end.next_multiple_of(CAPACITY_CHUNK);
        let mut entry = match self.layers[layer].take() {
            Some(entry) if end > entry.keys.dims()[2] => entry.grow(start, capacity),
            Some(entry) => entry,
            None => LayerKv::zeros([batch, kv_heads, capacity, head_dim], &keys),
        };
        // When no clone shares the buffers and the caller dropped the previous views,
        // burn-flex 0.22 writes in place instead of copying the cache.
        let region = [0..batch, 0..kv_heads, start..end, 0..head_dim];
        entry.keys = entry.keys.slice_assign(region.clone(), keys);
        entry.values = entry.values.slice_assign(region, values);
        let all_keys = entry.keys.clone().narrow(2, 0, end);
        let all_values = entry.values.clone().narrow(2, 0, end);
        self.layers[layer] = Some(entry);
        (all_keys, all_values)
    }

    /// Advances the cached length by `new` positions after every layer has appended.
    pub(crate) fn advance(&mut self, new: usize) {
        self.len += new;
    }
}

impl LayerKv {
    /// Allocates zeroed buffers of `shape`, `[batch, kv_heads, capacity, head_dim]`.
    fn zeros(shape: [usize; 4], like: &Tensor<4>) -> Self {
        let zeros = || Tensor::<4>::zeros(shape, &like.device()).cast(like.dtype());
        Self {
            keys: zeros(),
            values: zeros(),
        }
    }

    /// Returns buffers of `capacity` positions that start with the first `len` positions of `self`.
    fn grow(self, len: usize, capacity: usize) -> Self {
        let [batch, kv_heads, _, head_dim] = self.keys.dims();
        let device = self.keys.device();
        let dtype = self.keys.dtype();
        let extra = [batch, kv_heads, capacity - len, head_dim];
        let extend = |buffer: Tensor<4>| {
            let zeros = Tensor::<4>::zeros(extra, &device).cast(dtype);
            Tensor::cat(vec![buffer.narrow(2, 0, len), zeros], 2)
        };
        Self {
            keys: extend(self.keys),
            values: extend(self.values),
        }
    }
}
