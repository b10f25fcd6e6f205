//! Deterministic train/validation split by prompt id.
//!
//! A prompt's split depends only on its id and a salt, never on the order or
//! the number of prompts, so every response of one prompt lands in the same
//! split and adding prompts never moves an existing one.

use sha2::{Digest, Sha256};

use crate::{DataError, Prompt};

/// Part of the data that a prompt belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// Used for training.
    Train,
    /// Held out for validation.
    Validation,
}

/// Hashes a prompt id into a position in `[0, 1)`.
///
/// The hash is `SHA-256(salt || 0x00 || prompt_id)` over the UTF-8 bytes,
/// where the zero byte keeps `("ab", "c")` and `("a", "bc")` apart. Its first
/// 8 bytes, read as a big-endian `u64`, keep their top 53 bits and are divided
/// by 2^53, so the position is exact in an `f64`.
pub fn split_position(prompt_id: &str, salt: &str) -> f64 {
    let mut hasher = Sha256::new();
    hasher.update(salt.as_bytes());
    hasher.update([0u8]);
    hasher.update(prompt_id.as_bytes());
    let digest = hasher.finalize();

    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let top_53_bits = u64::from_be_bytes(first) >> 11;
    top_53_bits as f64 / (1u64 << 53) as f64
}

/// Assigns a prompt to a split: [`Split::Validation`] when
/// [`split_position`] is below `validation_fraction`, else [`Split::Train`].
///
/// A fraction of 0 or less (and NaN) puts every prompt in training, and a
/// fraction of 1 or more puts every prompt in validation. Use
/// [`split_prompts`] to reject such fractions instead.
pub fn split_of(prompt_id: &str, salt: &str, validation_fraction: f64) -> Split {
    if split_position(prompt_id, salt) < validation_fraction {
        Split::Validation
    } else {
        Split::Train
    }
}

/// Splits prompts into `(train, validation)` with [`split_of`], keeping the
/// input order within each part.
///
/// # Errors
///
/// [`DataError::InvalidValidationFraction`] unless `0 <= validation_fraction <= 1`.
pub fn split_prompts(
    prompts: &[Prompt],
    salt: &str,
    validation_fraction: f64,
) -> Result<(Vec<Prompt>, Vec<Prompt>), DataError> {
    if !(0.0..=1.0).contains(&validation_fraction) {
        return Err(DataError::InvalidValidationFraction {
            value: validation_fraction,
        });
    }

    let mut train = Vec::new();
    let mut validation = Vec::new();
    for prompt in prompts {
        match split_of(&prompt.prompt_id, salt, validation_fraction) {
            Split::Train => train.push(prompt.clone()),
            Split::Validation => validation.push(prompt.clone()),
        }
    }
    Ok((train, validation))
}
