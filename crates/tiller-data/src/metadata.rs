//! Dataset-level metadata, stored as Parquet key-value metadata.

use std::path::Path;

use parquet::file::metadata::KeyValue;
use serde::{Deserialize, Serialize};

use crate::DataError;

/// Schema version this crate writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// Key of the schema version, a decimal integer.
pub const KEY_SCHEMA_VERSION: &str = "tiller.schema_version";
/// Key of the base model's name (e.g. its file name).
pub const KEY_BASE_MODEL: &str = "tiller.base_model";
/// Key of the SHA-256 (lowercase hex) of the base model file.
pub const KEY_BASE_MODEL_SHA256: &str = "tiller.base_model_sha256";
/// Key of the SHA-256 (lowercase hex) of the tokenizer source file.
pub const KEY_TOKENIZER_SHA256: &str = "tiller.tokenizer_sha256";
/// Key of the reward model's name and settings, a JSON value.
pub const KEY_REWARD: &str = "tiller.reward";
/// Key of the sampling settings, a JSON value.
pub const KEY_SAMPLING: &str = "tiller.sampling";

/// Every key [`RolloutMetadata`] writes, in the order it writes them.
pub const METADATA_KEYS: [&str; 6] = [
    KEY_SCHEMA_VERSION,
    KEY_BASE_MODEL,
    KEY_BASE_MODEL_SHA256,
    KEY_TOKENIZER_SHA256,
    KEY_REWARD,
    KEY_SAMPLING,
];

/// Facts about how a rollout dataset was produced, shared by all its shards.
///
/// Stored in each file's Parquet key-value metadata under the keys in
/// [`METADATA_KEYS`]. Strings are stored as they are, `reward` and `sampling`
/// as compact JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutMetadata {
    /// Schema version, [`SCHEMA_VERSION`] for files this crate writes.
    pub schema_version: u32,
    /// Base model name, for people reading the file.
    pub base_model: String,
    /// SHA-256 (lowercase hex) of the base model file.
    pub base_model_sha256: String,
    /// SHA-256 (lowercase hex) of the tokenizer source file.
    pub tokenizer_sha256: String,
    /// Reward model name and settings.
    pub reward: serde_json::Value,
    /// Sampling settings used to draw the responses.
    pub sampling: serde_json::Value,
}

impl RolloutMetadata {
    /// Creates metadata with the current [`SCHEMA_VERSION`].
    pub fn new(
        base_model: impl Into<String>,
        base_model_sha256: impl Into<String>,
        tokenizer_sha256: impl Into<String>,
        reward: serde_json::Value,
        sampling: serde_json::Value,
    ) -> Self {
        RolloutMetadata {
            schema_version: SCHEMA_VERSION,
            base_model: base_model.into(),
            base_model_sha256: base_model_sha256.into(),
            tokenizer_sha256: tokenizer_sha256.into(),
            reward,
            sampling,
        }
    }

    /// Encodes the metadata as Parquet key-value pairs, in the order of
    /// [`METADATA_KEYS`].
    pub fn to_key_values(&self) -> Vec<KeyValue> {
        vec![
            KeyValue::new(
                KEY_SCHEMA_VERSION.to_string(),
                self.schema_version.to_string(),
            ),
            KeyValue::new(KEY_BASE_MODEL.to_string(), self.base_model.clone()),
            KeyValue::new(
                KEY_BASE_MODEL_SHA256.to_string(),
                self.base_model_sha256.clone(),
            ),
            KeyValue::new(
                KEY_TOKENIZER_SHA256.to_string(),
                self.tokenizer_sha256.clone(),
            ),
            KeyValue::new(KEY_REWARD.to_string(), self.reward.to_string()),
            KeyValue::new(KEY_SAMPLING.to_string(), self.sampling.to_string()),
        ]
    }

    /// Decodes the metadata of the Parquet file at `path` from its key-value
    /// pairs. Keys outside [`METADATA_KEYS`] are ignored.
    ///
    /// # Errors
    ///
    /// [`DataError::MissingMetadataKey`] for an absent key,
    /// [`DataError::InvalidMetadata`] for a value that does not parse and
    /// [`DataError::UnsupportedSchemaVersion`] for a version other than
    /// [`SCHEMA_VERSION`].
    pub fn from_key_values(
        path: &Path,
        key_values: Option<&Vec<KeyValue>>,
    ) -> Result<Self, DataError> {
        let pairs: &[KeyValue] = key_values.map(Vec::as_slice).unwrap_or(&[]);
        let lookup = |key: &'static str| -> Result<String, DataError> {
            pairs
                .iter()
                .rev()
                .find(|pair| pair.key == key)
                .and_then(|pair| pair.value.clone())
                .ok_or_else(|| DataError::MissingMetadataKey {
                    path: path.to_path_buf(),
                    key,
                })
        };

        let version_text = lookup(KEY_SCHEMA_VERSION)?;
        let schema_version: u32 =
            version_text
                .trim()
                .parse()
                .map_err(
                    |error: std::num::ParseIntError| DataError::InvalidMetadata {
                        path: path.to_path_buf(),
                        key: KEY_SCHEMA_VERSION,
                        value: version_text.clone(),
                        reason: format!("expected a non-negative integer ({error})"),
                    },
                )?;
        if schema_version != SCHEMA_VERSION {
            return Err(DataError::UnsupportedSchemaVersion {
                path: path.to_path_buf(),
                found: schema_version,
                supported: SCHEMA_VERSION,
            });
        }

        Ok(RolloutMetadata {
            schema_version,
            base_model: lookup(KEY_BASE_MODEL)?,
            base_model_sha256: lookup(KEY_BASE_MODEL_SHA256)?,
            tokenizer_sha256: lookup(KEY_TOKENIZER_SHA256)?,
            reward: parse_json(path, KEY_REWARD, lookup(KEY_REWARD)?)?,
            sampling: parse_json(path, KEY_SAMPLING, lookup(KEY_SAMPLING)?)?,
        })
    }

    /// Lists `(key, self's value, other's value)` for every key on which the
    /// two disagree, with values as stored in the file.
    pub(crate) fn differences(
        &self,
        other: &RolloutMetadata,
    ) -> Vec<(&'static str, String, String)> {
        self.to_key_values()
            .into_iter()
            .zip(other.to_key_values())
            .zip(METADATA_KEYS)
            .filter(|((mine, theirs), _)| mine.value != theirs.value)
            .map(|((mine, theirs), key)| {
                (
                    key,
                    mine.value.unwrap_or_default(),
                    theirs.value.unwrap_or_default(),
                )
            })
            .collect()
    }
}

fn parse_json(
    path: &Path,
    key: &'static str,
    text: String,
) -> Result<serde_json::Value, DataError> {
    serde_json::from_str(&text).map_err(|error| DataError::InvalidMetadata {
        path: path.to_path_buf(),
        key,
        value: text.clone(),
        reason: format!("expected JSON ({error})"),
    })
}

/// Checks that a dataset was tokenised with the expected tokenizer.
///
/// Fingerprints compare as hex strings, ignoring case and surrounding
/// whitespace. `dataset_path` only labels the error.
///
/// # Errors
///
/// [`DataError::TokenizerMismatch`], naming both fingerprints, when they differ.
pub fn check_tokenizer(
    metadata: &RolloutMetadata,
    expected_sha256: &str,
    dataset_path: &Path,
) -> Result<(), DataError> {
    let found = metadata.tokenizer_sha256.trim();
    let expected = expected_sha256.trim();
    if found.eq_ignore_ascii_case(expected) {
        return Ok(());
    }
    Err(DataError::TokenizerMismatch {
        path: dataset_path.to_path_buf(),
        dataset_sha256: found.to_string(),
        expected_sha256: expected.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn sample() -> RolloutMetadata {
        RolloutMetadata::new(
            "model.gguf",
            "aa",
            "bb",
            serde_json::json!({"name": "length", "max_tokens": 64}),
            serde_json::json!({"temperature": 0.7}),
        )
    }

    #[test]
    fn key_values_round_trip() {
        let metadata = sample();
        let pairs = metadata.to_key_values();
        let keys: Vec<&str> = pairs.iter().map(|pair| pair.key.as_str()).collect();
        assert_eq!(keys, METADATA_KEYS);
        assert_eq!(pairs[0].value.as_deref(), Some("1"));
        assert_eq!(
            pairs[4].value.as_deref(),
            Some(r#"{"max_tokens":64,"name":"length"}"#)
        );

        let decoded =
            RolloutMetadata::from_key_values(Path::new("x.parquet"), Some(&pairs)).unwrap();
        assert_eq!(decoded, metadata);
    }

    #[test]
    fn missing_metadata_names_key() {
        let error = RolloutMetadata::from_key_values(Path::new("x.parquet"), None).unwrap_err();
        assert!(matches!(
            error,
            DataError::MissingMetadataKey {
                key: KEY_SCHEMA_VERSION,
                ..
            }
        ));
        assert!(error.to_string().contains("x.parquet"), "{error}");
    }

    #[test]
    fn differences_list_changed_keys() {
        let first = sample();
        let mut second = sample();
        second.base_model = "other.gguf".into();
        second.sampling = serde_json::json!({"temperature": 1.0});
        let keys: Vec<&str> = first
            .differences(&second)
            .into_iter()
            .map(|(key, _, _)| key)
            .collect();
        assert_eq!(keys, vec![KEY_BASE_MODEL, KEY_SAMPLING]);
        assert!(first.differences(&first.clone()).is_empty());
    }
}
