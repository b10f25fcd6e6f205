//! The data cursor: which training example comes next.
//!
//! Each epoch visits the training examples in an order drawn with a ChaCha8
//! generator. The cursor is the epoch, the index into that epoch's order and
//! the generator state at the start of the epoch, so a checkpoint restores
//! the exact order and position: a resumed run repeats no example and skips
//! none.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Serialisable state of a ChaCha8 generator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RngState {
    /// The 32-byte seed, lowercase hex.
    pub seed: String,
    /// Stream number.
    pub stream: u64,
    /// Position in the stream, in 32-bit words, as a decimal string (it
    /// can exceed the integers JSON numbers represent exactly).
    pub word_pos: String,
}

impl RngState {
    fn capture(rng: &ChaCha8Rng) -> RngState {
        let seed: String = rng
            .get_seed()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        RngState {
            seed,
            stream: rng.get_stream(),
            word_pos: rng.get_word_pos().to_string(),
        }
    }

    fn restore(&self) -> Result<ChaCha8Rng, String> {
        if self.seed.len() != 64 {
            return Err(format!("rng seed {:?} is not 64 hex digits", self.seed));
        }
        let mut seed = [0u8; 32];
        for (i, byte) in seed.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&self.seed[2 * i..2 * i + 2], 16)
                .map_err(|err| format!("rng seed {:?} is not hex: {err}", self.seed))?;
        }
        let word_pos: u128 = self
            .word_pos
            .parse()
            .map_err(|err| format!("rng word_pos {:?} is not an integer: {err}", self.word_pos))?;
        let mut rng = ChaCha8Rng::from_seed(seed);
        rng.set_stream(self.stream);
        rng.set_word_pos(word_pos);
        Ok(rng)
    }
}

/// Position of a [`DataCursor`], as stored in checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CursorState {
    /// Current epoch, from 0.
    pub epoch: usize,
    /// Examples of this epoch's order already consumed.
    pub index: usize,
    /// Generator state just before this epoch's order was drawn.
    pub epoch_rng: RngState,
}

/// Iterates over training example indices, epoch after epoch.
#[derive(Debug, Clone)]
pub struct DataCursor {
    len: usize,
    epoch: usize,
    index: usize,
    order: Vec<usize>,
    epoch_rng: RngState,
    rng: ChaCha8Rng,
}

impl DataCursor {
    /// Starts at epoch 0 over `len` examples, shuffling with `seed`.
    pub fn new(len: usize, seed: u64) -> DataCursor {
        let rng = ChaCha8Rng::seed_from_u64(seed);
        let mut cursor = DataCursor {
            len,
            epoch: 0,
            index: 0,
            order: Vec::new(),
            epoch_rng: RngState::capture(&rng),
            rng,
        };
        cursor.draw_order();
        cursor
    }

    /// Rebuilds the cursor of a checkpoint over the same `len` examples.
    pub fn restore(len: usize, state: &CursorState) -> Result<DataCursor, String> {
        if state.index > len {
            return Err(format!(
                "cursor index {} exceeds the {len} training examples; the rollouts changed since the checkpoint",
                state.index
            ));
        }
        let rng = state.epoch_rng.restore()?;
        let mut cursor = DataCursor {
            len,
            epoch: state.epoch,
            index: state.index,
            order: Vec::new(),
            epoch_rng: state.epoch_rng.clone(),
            rng,
        };
        cursor.draw_order();
        Ok(cursor)
    }

    /// Returns the state to store in a checkpoint.
    pub fn state(&self) -> CursorState {
        CursorState {
            epoch: self.epoch,
            index: self.index,
            epoch_rng: self.epoch_rng.clone(),
        }
    }

    /// Returns the current epoch, from 0.
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// Takes the next `count` example indices, moving into the next epoch
    /// (with a new order) when this one runs out.
    pub fn take(&mut self, count: usize) -> Vec<usize> {
        let mut taken = Vec::with_capacity(count);
        if self.len == 0 {
            return taken;
        }
        while taken.len() < count {
            if self.index == self.len {
                self.epoch += 1;
                self.index = 0;
                self.epoch_rng = RngState::capture(&self.rng);
                self.draw_order();
            }
            taken.push(self.order[self.index]);
            self.index += 1;
        }
        taken
    }

    fn draw_order(&mut self) {
        self.order = (0..self.len).collect();
        self.order.shuffle(&mut self.rng);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_epoch_is_a_permutation() {
        let mut cursor = DataCursor::new(5, 7);
        let mut first = cursor.take(5);
        first.sort();
        assert_eq!(first, vec![0, 1, 2, 3, 4]);
        let mut second = cursor.take(5);
        assert_eq!(cursor.epoch(), 1);
        second.sort();
        assert_eq!(second, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn epochs_use_new_orders() {
        let mut cursor = DataCursor::new(20, 7);
        let first = cursor.take(20);
        let second = cursor.take(20);
        assert_ne!(first, second);
    }

    #[test]
    fn restored_cursor_continues_exactly() {
        // Batches of 3 over 7 examples cross epoch boundaries; stopping after
        // any number of batches and restoring must continue the same stream.
        let mut uninterrupted = DataCursor::new(7, 11);
        let expected: Vec<usize> = (0..10).flat_map(|_| uninterrupted.take(3)).collect();
        for stop in 0..10 {
            let mut first = DataCursor::new(7, 11);
            let mut stream: Vec<usize> = (0..stop).flat_map(|_| first.take(3)).collect();
            let json = serde_json::to_string(&first.state()).unwrap();
            let state: CursorState = serde_json::from_str(&json).unwrap();
            let mut resumed = DataCursor::restore(7, &state).unwrap();
            stream.extend((stop..10).flat_map(|_| resumed.take(3)));
            assert_eq!(stream, expected, "stopped after {stop} batches");
        }
    }

    #[test]
    fn restore_rejects_index_past_data() {
        let mut state = DataCursor::new(3, 0).state();
        state.index = 4;
        assert!(DataCursor::restore(3, &state).is_err());
    }
}
