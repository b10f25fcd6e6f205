//! Prompts, train/validation splits and rollout datasets for Tiller.
//!
//! - [`load_prompts`] reads a JSONL prompts file, and [`split_of`] /
//!   [`split_prompts`] assign each prompt to training or validation by a
//!   salted SHA-256 of its id.
//! - [`RolloutWriter`] writes sampled responses ([`RolloutRecord`]) with their
//!   rewards to sharded Parquet files, and [`RolloutReader`] streams them
//!   back, validating every row.
//! - [`check_tokenizer`] rejects a dataset tokenised by a different tokenizer
//!   than the one a scorer expects.
//!
//! # Rollout file schema
//!
//! One row per response. Version [`SCHEMA_VERSION`] has these columns:
//!
//! | column | Arrow type | content |
//! |---|---|---|
//! | `prompt_id` | utf8 | stable prompt id, non-empty |
//! | `sample_index` | int32 | index of the response among the prompt's samples, from 0 |
//! | `prompt`, `response` | utf8 | text |
//! | `prompt_token_ids` | list<int32> | model input before the response, at least one id |
//! | `response_token_ids` | list<int32> | sampled ids, including a final EOS or stop id |
//! | `reward` | float32 | reward of the full response, finite |
//! | `finish_reason` | utf8 | `eos`, `stop` or `length` |
//! | `response_logprobs` | list<float32> | base-model log-probability of each response token at temperature 1, unfiltered |
//! | `topk_token_ids` (optional) | list<list<int32>> | per response position, the most likely next-token ids |
//! | `topk_logprobs` (optional) | list<list<float32>> | their log-probabilities |
//!
//! The two top-k columns are present together or not at all, in every file of
//! a dataset. The writer declares every column and list item non-nullable.
//! The reader also accepts nullable declarations and other list item names (as
//! pyarrow writes them), but rejects any null value, and it ignores columns it
//! does not know.
//!
//! ## Empty responses and null lists
//!
//! An empty list `[]` in `response_token_ids` is a valid response with zero
//! tokens: its only state, `s_0` (the prompt alone), is terminal, and its
//! `response_logprobs` and top-k lists are also `[]`. A null
//! `response_token_ids` is an error ("write [] for an empty response"),
//! because it does not say whether the response is empty or missing. Null
//! values are errors in every other column too, and so are null entries
//! inside lists.
//!
//! ## Validation
//!
//! The writer checks each record before writing it and the reader checks each
//! row after decoding it. An error names the file, the 0-based row within that
//! file, the column and the offending value. The checks are:
//!
//! - every required column is present with the type above;
//! - `reward` and every log-probability are finite (not NaN or ±inf);
//! - `response_logprobs` and both outer top-k lists have one entry per
//!   response token, and each inner `topk_logprobs` list is as long as the
//!   matching inner `topk_token_ids` list;
//! - token ids lie in `0..=i32::MAX`, so they round-trip through int32;
//! - `finish_reason` is one of the three values;
//! - `prompt_id` is non-empty, `sample_index` is non-negative and
//!   `prompt_token_ids` is non-empty.
//!
//! # Metadata keys
//!
//! Every file stores [`RolloutMetadata`] as Parquet key-value metadata, and
//! all files opened together must store the same values:
//!
//! | key | value |
//! |---|---|
//! | `tiller.schema_version` | decimal integer, [`SCHEMA_VERSION`] |
//! | `tiller.base_model` | base model name |
//! | `tiller.base_model_sha256` | SHA-256 of the base model file, lowercase hex |
//! | `tiller.tokenizer_sha256` | SHA-256 of the tokenizer source file, lowercase hex |
//! | `tiller.reward` | JSON: reward model name and settings |
//! | `tiller.sampling` | JSON: sampling settings |
//!
//! The Parquet writer also stores the Arrow schema under `ARROW:schema`.
//!
//! # Example
//!
//! ```
//! use tiller_data::{FinishReason, RolloutMetadata, RolloutReader, RolloutRecord, RolloutWriter};
//!
//! # fn main() -> Result<(), tiller_data::DataError> {
//! let dir = std::env::temp_dir().join(format!("tiller-data-doc-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! let metadata = RolloutMetadata::new(
//!     "tiny.gguf",
//!     "aa11",
//!     "bb22",
//!     serde_json::json!({"name": "length"}),
//!     serde_json::json!({"temperature": 1.0}),
//! );
//! let mut writer = RolloutWriter::create(&dir, "rollouts", metadata, 1000)?;
//! writer.write(&RolloutRecord {
//!     prompt_id: "p0001".into(),
//!     sample_index: 0,
//!     prompt: "Say hi.".into(),
//!     response: "Hi!".into(),
//!     prompt_token_ids: vec![1, 2, 3],
//!     response_token_ids: vec![7, 2],
//!     reward: 0.5,
//!     finish_reason: FinishReason::Eos,
//!     response_logprobs: vec![-0.1, -0.2],
//!     topk_token_ids: None,
//!     topk_logprobs: None,
//! })?;
//! let shards = writer.finish()?;
//!
//! let reader = RolloutReader::open(&shards)?;
//! for record in reader.records() {
//!     assert_eq!(record?.response_token_ids, vec![7, 2]);
//! }
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod decode;
mod encode;
mod error;
mod metadata;
mod prompts;
mod reader;
mod record;
mod schema;
mod split;
mod validate;
mod writer;

pub use error::DataError;
pub use metadata::{
    KEY_BASE_MODEL, KEY_BASE_MODEL_SHA256, KEY_REWARD, KEY_SAMPLING, KEY_SCHEMA_VERSION,
    KEY_TOKENIZER_SHA256, METADATA_KEYS, RolloutMetadata, SCHEMA_VERSION, check_tokenizer,
};
pub use prompts::{Prompt, load_prompts};
pub use reader::{RolloutReader, RolloutRecords};
pub use record::{FinishReason, RolloutRecord};
pub use schema::{
    COL_FINISH_REASON, COL_PROMPT, COL_PROMPT_ID, COL_PROMPT_TOKEN_IDS, COL_RESPONSE,
    COL_RESPONSE_LOGPROBS, COL_RESPONSE_TOKEN_IDS, COL_REWARD, COL_SAMPLE_INDEX, COL_TOPK_LOGPROBS,
    COL_TOPK_TOKEN_IDS, rollout_schema,
};
pub use split::{Split, split_of, split_position, split_prompts};
pub use writer::{RolloutWriter, RolloutWriterOptions};
