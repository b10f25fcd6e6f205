//! Column names and Arrow types of a rollout file, and the check of a file's
//! schema against them.

use std::path::Path;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::DataError;

/// Column `prompt_id`, utf8.
pub const COL_PROMPT_ID: &str = "prompt_id";
/// Column `sample_index`, int32.
pub const COL_SAMPLE_INDEX: &str = "sample_index";
/// Column `prompt`, utf8.
pub const COL_PROMPT: &str = "prompt";
/// Column `response`, utf8.
pub const COL_RESPONSE: &str = "response";
/// Column `prompt_token_ids`, list<int32>.
pub const COL_PROMPT_TOKEN_IDS: &str = "prompt_token_ids";
/// Column `response_token_ids`, list<int32>.
pub const COL_RESPONSE_TOKEN_IDS: &str = "response_token_ids";
/// Column `reward`, float32.
pub const COL_REWARD: &str = "reward";
/// Column `finish_reason`, utf8.
pub const COL_FINISH_REASON: &str = "finish_reason";
/// Column `response_logprobs`, list<float32>.
pub const COL_RESPONSE_LOGPROBS: &str = "response_logprobs";
/// Optional column `topk_token_ids`, list<list<int32>>.
pub const COL_TOPK_TOKEN_IDS: &str = "topk_token_ids";
/// Optional column `topk_logprobs`, list<list<float32>>.
pub const COL_TOPK_LOGPROBS: &str = "topk_logprobs";

/// The logical type of a rollout column, ignoring list item names and
/// nullability flags (nulls are checked row by row instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ColumnType {
    Utf8,
    Int32,
    Float32,
    ListInt32,
    ListFloat32,
    ListListInt32,
    ListListFloat32,
}

impl ColumnType {
    pub(crate) fn name(self) -> &'static str {
        match self {
            ColumnType::Utf8 => "utf8",
            ColumnType::Int32 => "int32",
            ColumnType::Float32 => "float32",
            ColumnType::ListInt32 => "list<int32>",
            ColumnType::ListFloat32 => "list<float32>",
            ColumnType::ListListInt32 => "list<list<int32>>",
            ColumnType::ListListFloat32 => "list<list<float32>>",
        }
    }

    /// Returns the Arrow type this crate writes for the column, with list
    /// items named `item` and non-nullable.
    pub(crate) fn arrow_type(self) -> DataType {
        match self {
            ColumnType::Utf8 => DataType::Utf8,
            ColumnType::Int32 => DataType::Int32,
            ColumnType::Float32 => DataType::Float32,
            ColumnType::ListInt32 => list_of(DataType::Int32),
            ColumnType::ListFloat32 => list_of(DataType::Float32),
            ColumnType::ListListInt32 => list_of(list_of(DataType::Int32)),
            ColumnType::ListListFloat32 => list_of(list_of(DataType::Float32)),
        }
    }

    fn matches(self, found: &DataType) -> bool {
        match (self, found) {
            (ColumnType::Utf8, DataType::Utf8) => true,
            (ColumnType::Int32, DataType::Int32) => true,
            (ColumnType::Float32, DataType::Float32) => true,
            (ColumnType::ListInt32, DataType::List(item)) => {
                ColumnType::Int32.matches(item.data_type())
            }
            (ColumnType::ListFloat32, DataType::List(item)) => {
                ColumnType::Float32.matches(item.data_type())
            }
            (ColumnType::ListListInt32, DataType::List(item)) => {
                ColumnType::ListInt32.matches(item.data_type())
            }
            (ColumnType::ListListFloat32, DataType::List(item)) => {
                ColumnType::ListFloat32.matches(item.data_type())
            }
            _ => false,
        }
    }
}

pub(crate) fn list_item_field(item_type: DataType) -> Arc<Field> {
    Arc::new(Field::new("item", item_type, false))
}

fn list_of(item_type: DataType) -> DataType {
    DataType::List(list_item_field(item_type))
}

/// Required columns in file order, with their types.
pub(crate) const REQUIRED_COLUMNS: [(&str, ColumnType); 9] = [
    (COL_PROMPT_ID, ColumnType::Utf8),
    (COL_SAMPLE_INDEX, ColumnType::Int32),
    (COL_PROMPT, ColumnType::Utf8),
    (COL_RESPONSE, ColumnType::Utf8),
    (COL_PROMPT_TOKEN_IDS, ColumnType::ListInt32),
    (COL_RESPONSE_TOKEN_IDS, ColumnType::ListInt32),
    (COL_REWARD, ColumnType::Float32),
    (COL_FINISH_REASON, ColumnType::Utf8),
    (COL_RESPONSE_LOGPROBS, ColumnType::ListFloat32),
];

/// Optional top-k columns, written and read as a pair.
pub(crate) const TOPK_COLUMNS: [(&str, ColumnType); 2] = [
    (COL_TOPK_TOKEN_IDS, ColumnType::ListListInt32),
    (COL_TOPK_LOGPROBS, ColumnType::ListListFloat32),
];

/// Returns the Arrow schema [`crate::RolloutWriter`] writes: the nine required
/// columns, then the two top-k columns when `with_topk` is set. Every column
/// is non-nullable, and list items are named `item` and non-nullable.
pub fn rollout_schema(with_topk: bool) -> SchemaRef {
    let topk: &[(&str, ColumnType)] = if with_topk { &TOPK_COLUMNS } else { &[] };
    let fields: Vec<Field> = REQUIRED_COLUMNS
        .iter()
        .chain(topk)
        .map(|(name, column_type)| Field::new(*name, column_type.arrow_type(), false))
        .collect();
    Arc::new(Schema::new(fields))
}

/// Checks a file's Arrow schema and returns whether it has the top-k columns.
/// Columns this crate does not know are allowed and ignored.
pub(crate) fn check_schema(path: &Path, schema: &Schema) -> Result<bool, DataError> {
    for (name, column_type) in REQUIRED_COLUMNS {
        check_column(path, schema, name, column_type)?;
    }

    let [(ids_name, ids_type), (logprobs_name, logprobs_type)] = TOPK_COLUMNS;
    let has_ids = schema.field_with_name(ids_name).is_ok();
    let has_logprobs = schema.field_with_name(logprobs_name).is_ok();
    match (has_ids, has_logprobs) {
        (false, false) => Ok(false),
        (true, true) => {
            check_column(path, schema, ids_name, ids_type)?;
            check_column(path, schema, logprobs_name, logprobs_type)?;
            Ok(true)
        }
        (true, false) => Err(DataError::UnpairedTopkColumn {
            path: path.to_path_buf(),
            present: ids_name,
            missing: logprobs_name,
        }),
        (false, true) => Err(DataError::UnpairedTopkColumn {
            path: path.to_path_buf(),
            present: logprobs_name,
            missing: ids_name,
        }),
    }
}

fn check_column(
    path: &Path,
    schema: &Schema,
    name: &'static str,
    column_type: ColumnType,
) -> Result<(), DataError> {
    let field = schema
        .field_with_name(name)
        .map_err(|_| DataError::MissingColumn {
            path: path.to_path_buf(),
            column: name,
            required: required_column_list(),
        })?;
    if !column_type.matches(field.data_type()) {
        return Err(DataError::WrongColumnType {
            path: path.to_path_buf(),
            column: name,
            expected: column_type.name(),
            found: field.data_type().to_string(),
        });
    }
    Ok(())
}

pub(crate) fn required_column_list() -> String {
    REQUIRED_COLUMNS
        .iter()
        .map(|(name, column_type)| format!("{name} ({})", column_type.name()))
        .collect::<Vec<_>>()
        .join(", ")
}
