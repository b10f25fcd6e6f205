//! The crate's error type.

use std::path::PathBuf;

/// Errors from loading prompts and from writing, reading or checking rollout
/// datasets.
///
/// Every variant names the file it concerns. Row numbers in rollout errors are
/// 0-based and count rows within that one file (shard), and line numbers in
/// prompt errors are 1-based, as text editors show them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A file or directory could not be opened, read, written or renamed.
    #[error("failed to {action} {path}: {source}; check that the path exists and is accessible")]
    Io {
        /// Operation that failed, e.g. `read` or `rename`.
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// A prompts file line is not a valid JSON object with the expected fields.
    #[error(
        "{path}: line {line} is not a valid prompt record: {source}; \
         each line must be a JSON object like {{\"prompt_id\": \"p0001\", \"prompt\": \"...\"}}"
    )]
    PromptJson {
        /// The prompts file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The JSON parser's error.
        #[source]
        source: serde_json::Error,
    },

    /// A prompt record has an empty (or whitespace-only) field.
    #[error(
        "{path}: line {line}: field `{field}` is empty; give every prompt a non-empty `{field}`"
    )]
    EmptyPromptField {
        /// The prompts file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// `prompt_id` or `prompt`.
        field: &'static str,
    },

    /// Two prompt records share one `prompt_id`.
    #[error(
        "{path}: line {line}: duplicate prompt_id {prompt_id:?}, first used on line {first_line}; \
         prompt ids must be unique, so rename one of them"
    )]
    DuplicatePromptId {
        /// The prompts file.
        path: PathBuf,
        /// 1-based line number of the second use.
        line: usize,
        /// 1-based line number of the first use.
        first_line: usize,
        /// The repeated id.
        prompt_id: String,
    },

    /// A prompts file contains no prompt records.
    #[error("{path}: contains no prompts; add one JSON object per line")]
    NoPrompts {
        /// The prompts file.
        path: PathBuf,
    },

    /// A validation fraction outside `[0, 1]` (or NaN) was requested.
    #[error("validation fraction {value} is invalid; use a number between 0 and 1")]
    InvalidValidationFraction {
        /// The requested fraction.
        value: f64,
    },

    /// The Parquet library reported an error while reading or writing a file.
    #[error("{path}: Parquet error: {source}; the file may be truncated or not a Parquet file")]
    Parquet {
        /// The Parquet file.
        path: PathBuf,
        /// The Parquet library's error.
        #[source]
        source: parquet::errors::ParquetError,
    },

    /// The Arrow library reported an error while building or decoding a batch.
    #[error("{path}: Arrow error: {source}")]
    Arrow {
        /// The Parquet file.
        path: PathBuf,
        /// The Arrow library's error.
        #[source]
        source: arrow::error::ArrowError,
    },

    /// A rollout file lacks a required column.
    #[error(
        "{path}: missing required column `{column}`; a rollout file needs the columns {required}"
    )]
    MissingColumn {
        /// The Parquet file.
        path: PathBuf,
        /// The missing column.
        column: &'static str,
        /// Comma-separated list of all required columns.
        required: String,
    },

    /// A rollout column has the wrong Arrow type.
    #[error(
        "{path}: column `{column}` has type {found}, expected {expected}; rewrite the column with type {expected}"
    )]
    WrongColumnType {
        /// The Parquet file.
        path: PathBuf,
        /// The column concerned.
        column: &'static str,
        /// The type the schema requires, e.g. `list<int32>`.
        expected: &'static str,
        /// The type found in the file, as Arrow prints it.
        found: String,
    },

    /// Only one of `topk_token_ids` and `topk_logprobs` is present.
    #[error(
        "{path}: column `{present}` is present but `{missing}` is missing; write both top-k columns or neither"
    )]
    UnpairedTopkColumn {
        /// The Parquet file.
        path: PathBuf,
        /// The top-k column found.
        present: &'static str,
        /// The top-k column not found.
        missing: &'static str,
    },

    /// A value is null where the schema requires one.
    #[error(
        "{path}: row {row} (0-based, within this file), column `{column}`: value is null; {hint}"
    )]
    NullValue {
        /// The Parquet file.
        path: PathBuf,
        /// 0-based row within the file.
        row: usize,
        /// The column concerned.
        column: &'static str,
        /// Fix to apply, e.g. what to write instead.
        hint: &'static str,
    },

    /// A reward or log-probability is NaN or infinite.
    #[error(
        "{path}: row {row} (0-based, within this file), column `{column}`: value {value} is not finite; \
         {column} values must be finite numbers, so fix or drop this row"
    )]
    NonFiniteValue {
        /// The Parquet file.
        path: PathBuf,
        /// 0-based row within the file.
        row: usize,
        /// The column concerned.
        column: &'static str,
        /// The offending value (NaN, inf or -inf).
        value: f32,
    },

    /// A list's length disagrees with the response length.
    #[error(
        "{path}: row {row} (0-based, within this file), column `{column}`: {list} has length {found}, \
         expected {expected} ({rule}); rewrite the row with matching lengths"
    )]
    LengthMismatch {
        /// The Parquet file.
        path: PathBuf,
        /// 0-based row within the file.
        row: usize,
        /// The column concerned.
        column: &'static str,
        /// Description of the measured list, e.g. `the list` or `the inner list at position 3`.
        list: String,
        /// The length required.
        expected: usize,
        /// The length found.
        found: usize,
        /// Rule for the expected length, e.g. one entry per response token.
        rule: &'static str,
    },

    /// A token id is negative or does not fit in int32.
    #[error(
        "{path}: row {row} (0-based, within this file), column `{column}`: token id {value} is outside \
         0..=2147483647; token ids must be non-negative and fit in int32"
    )]
    TokenIdOutOfRange {
        /// The Parquet file.
        path: PathBuf,
        /// 0-based row within the file.
        row: usize,
        /// The column concerned.
        column: &'static str,
        /// The offending id.
        value: i64,
    },

    /// A `finish_reason` value is not one of `eos`, `stop`, `length`.
    #[error(
        "{path}: row {row} (0-based, within this file), column `finish_reason`: unknown value {value:?}; \
         use \"eos\", \"stop\" or \"length\""
    )]
    UnknownFinishReason {
        /// The Parquet file.
        path: PathBuf,
        /// 0-based row within the file.
        row: usize,
        /// The offending value.
        value: String,
    },

    /// A value breaks a rule not covered by the other variants.
    #[error(
        "{path}: row {row} (0-based, within this file), column `{column}`: value {value} is invalid: {reason}"
    )]
    InvalidValue {
        /// The Parquet file.
        path: PathBuf,
        /// 0-based row within the file.
        row: usize,
        /// The column concerned.
        column: &'static str,
        /// The offending value, as text.
        value: String,
        /// The rule it breaks and what to do.
        reason: &'static str,
    },

    /// A record written to a [`crate::RolloutWriter`] has top-k data when
    /// earlier ones did not, or the reverse.
    #[error(
        "{path}: row {row} (0-based, within this file): record {found} top-k lists but the writer's first \
         record {expected} them; all records of one dataset must have top-k lists or none"
    )]
    TopkPresenceChanged {
        /// The shard being written.
        path: PathBuf,
        /// 0-based row within the shard.
        row: usize,
        /// `has` or `lacks`.
        found: &'static str,
        /// `had` or `lacked`.
        expected: &'static str,
    },

    /// A required `tiller.*` key is missing from a file's key-value metadata.
    #[error(
        "{path}: missing metadata key `{key}`; write the file with RolloutWriter, which sets every tiller.* key"
    )]
    MissingMetadataKey {
        /// The Parquet file.
        path: PathBuf,
        /// The missing key.
        key: &'static str,
    },

    /// A `tiller.*` metadata value cannot be parsed.
    #[error("{path}: metadata key `{key}` has invalid value {value:?}: {reason}")]
    InvalidMetadata {
        /// The Parquet file.
        path: PathBuf,
        /// The key concerned.
        key: &'static str,
        /// The stored value.
        value: String,
        /// Reason the value is invalid.
        reason: String,
    },

    /// A file's schema version is not one this crate reads.
    #[error(
        "{path}: schema version {found} is not supported (this build reads version {supported}); \
         regenerate the rollouts with this version of tiller"
    )]
    UnsupportedSchemaVersion {
        /// The Parquet file.
        path: PathBuf,
        /// The version recorded in the file.
        found: u32,
        /// The version this crate reads.
        supported: u32,
    },

    /// Two files opened as one dataset disagree on a metadata key.
    #[error(
        "{path}: metadata key `{key}` is {found} but {first_path} has {expected}; \
         read only shards produced by one rollout run together"
    )]
    MetadataMismatch {
        /// The first file opened, whose metadata the others must match.
        first_path: PathBuf,
        /// The file that disagrees.
        path: PathBuf,
        /// The key concerned.
        key: &'static str,
        /// The value in `first_path`.
        expected: String,
        /// The value in `path`.
        found: String,
    },

    /// Two files opened as one dataset disagree on whether top-k columns exist.
    #[error(
        "{path}: top-k columns are {found} but {first_path} has them {expected}; \
         read only shards produced by one rollout run together"
    )]
    TopkColumnsMismatch {
        /// The first file opened.
        first_path: PathBuf,
        /// The file that disagrees.
        path: PathBuf,
        /// `present` or `absent` in `path`.
        found: &'static str,
        /// `present` or `absent` in `first_path`.
        expected: &'static str,
    },

    /// A dataset's tokenizer fingerprint differs from the expected one.
    #[error(
        "{path}: dataset tokenizer SHA-256 is {dataset_sha256} but the expected tokenizer SHA-256 is \
         {expected_sha256}; regenerate the rollouts with the same tokenizer or use a matching scorer"
    )]
    TokenizerMismatch {
        /// The dataset file or directory.
        path: PathBuf,
        /// The fingerprint recorded in the dataset.
        dataset_sha256: String,
        /// The fingerprint the caller expected.
        expected_sha256: String,
    },

    /// No Parquet files were found to read.
    #[error(
        "{path}: no .parquet files found; pass rollout shard files or a directory that contains them"
    )]
    NoShards {
        /// The directory (or the empty input) searched.
        path: PathBuf,
    },

    /// A writer setting is out of range.
    #[error("{path}: writer setting `{setting}` = {value} is invalid: {reason}")]
    InvalidWriterSetting {
        /// The output directory.
        path: PathBuf,
        /// The setting concerned.
        setting: &'static str,
        /// Its value, as text.
        value: String,
        /// The allowed range.
        reason: &'static str,
    },

    /// A shard with the writer's output name already exists.
    #[error("{path}: file already exists; remove the old shards or choose another file prefix")]
    ShardExists {
        /// The existing file.
        path: PathBuf,
    },
}
