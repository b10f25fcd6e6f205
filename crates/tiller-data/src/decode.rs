//! Conversion of Arrow record batches read from a rollout file into
//! validated [`RolloutRecord`]s.

use std::path::Path;

use arrow::array::{
    Array, ArrowPrimitiveType, Float32Array, Int32Array, ListArray, PrimitiveArray, RecordBatch,
    StringArray,
};
use arrow::datatypes::{Float32Type, Int32Type};

use crate::schema::{
    COL_FINISH_REASON, COL_PROMPT, COL_PROMPT_ID, COL_PROMPT_TOKEN_IDS, COL_RESPONSE,
    COL_RESPONSE_LOGPROBS, COL_RESPONSE_TOKEN_IDS, COL_REWARD, COL_SAMPLE_INDEX, COL_TOPK_LOGPROBS,
    COL_TOPK_TOKEN_IDS, ColumnType,
};
use crate::validate::validate_record;
use crate::{DataError, FinishReason, RolloutRecord};

const HINT_REQUIRED: &str = "every row needs a value in this column";
const HINT_RESPONSE_IDS: &str =
    "write [] for an empty response, because a null list is not a valid response";
const HINT_REWARD: &str = "every row needs a finite reward";
const HINT_LIST_ITEM: &str = "lists must not contain null entries";
const HINT_TOPK: &str = "a file with top-k columns needs top-k lists in every row";

/// The typed columns of one batch.
struct Columns<'a> {
    prompt_id: &'a StringArray,
    sample_index: &'a Int32Array,
    prompt: &'a StringArray,
    response: &'a StringArray,
    prompt_token_ids: &'a ListArray,
    response_token_ids: &'a ListArray,
    reward: &'a Float32Array,
    finish_reason: &'a StringArray,
    response_logprobs: &'a ListArray,
    topk: Option<(&'a ListArray, &'a ListArray)>,
}

/// Decodes and validates every row of `batch`, whose first row is row
/// `first_row` (0-based) of the file at `path`.
pub(crate) fn decode_batch(
    path: &Path,
    first_row: usize,
    batch: &RecordBatch,
    with_topk: bool,
) -> Result<Vec<RolloutRecord>, DataError> {
    let topk = if with_topk {
        Some((
            column(path, batch, COL_TOPK_TOKEN_IDS, ColumnType::ListListInt32)?,
            column(path, batch, COL_TOPK_LOGPROBS, ColumnType::ListListFloat32)?,
        ))
    } else {
        None
    };
    let columns = Columns {
        prompt_id: column(path, batch, COL_PROMPT_ID, ColumnType::Utf8)?,
        sample_index: column(path, batch, COL_SAMPLE_INDEX, ColumnType::Int32)?,
        prompt: column(path, batch, COL_PROMPT, ColumnType::Utf8)?,
        response: column(path, batch, COL_RESPONSE, ColumnType::Utf8)?,
        prompt_token_ids: column(path, batch, COL_PROMPT_TOKEN_IDS, ColumnType::ListInt32)?,
        response_token_ids: column(path, batch, COL_RESPONSE_TOKEN_IDS, ColumnType::ListInt32)?,
        reward: column(path, batch, COL_REWARD, ColumnType::Float32)?,
        finish_reason: column(path, batch, COL_FINISH_REASON, ColumnType::Utf8)?,
        response_logprobs: column(path, batch, COL_RESPONSE_LOGPROBS, ColumnType::ListFloat32)?,
        topk,
    };

    (0..batch.num_rows())
        .map(|index| {
            let cell = Cell {
                path,
                row: first_row + index,
                index,
            };
            let record = decode_row(cell, &columns)?;
            validate_record(path, cell.row, &record)?;
            Ok(record)
        })
        .collect()
}

/// Looks up a column and downcasts it to the array type of `column_type`.
fn column<'a, A: Array + 'static>(
    path: &Path,
    batch: &'a RecordBatch,
    name: &'static str,
    column_type: ColumnType,
) -> Result<&'a A, DataError> {
    let array = batch
        .column_by_name(name)
        .ok_or_else(|| DataError::MissingColumn {
            path: path.to_path_buf(),
            column: name,
            required: crate::schema::required_column_list(),
        })?;
    array
        .as_any()
        .downcast_ref::<A>()
        .ok_or_else(|| DataError::WrongColumnType {
            path: path.to_path_buf(),
            column: name,
            expected: column_type.name(),
            found: array.data_type().to_string(),
        })
}

/// Location of a value: `row` counts rows within the file, `index` rows within the batch.
#[derive(Clone, Copy)]
struct Cell<'a> {
    path: &'a Path,
    row: usize,
    index: usize,
}

impl Cell<'_> {
    fn null(self, column: &'static str, hint: &'static str) -> DataError {
        DataError::NullValue {
            path: self.path.to_path_buf(),
            row: self.row,
            column,
            hint,
        }
    }

    fn wrong_type(self, column: &'static str, column_type: ColumnType, found: String) -> DataError {
        DataError::WrongColumnType {
            path: self.path.to_path_buf(),
            column,
            expected: column_type.name(),
            found,
        }
    }
}

fn decode_row(cell: Cell<'_>, columns: &Columns<'_>) -> Result<RolloutRecord, DataError> {
    let finish_text = string_at(cell, COL_FINISH_REASON, columns.finish_reason)?;
    let finish_reason: FinishReason =
        finish_text
            .parse()
            .map_err(|value| DataError::UnknownFinishReason {
                path: cell.path.to_path_buf(),
                row: cell.row,
                value,
            })?;

    let (topk_token_ids, topk_logprobs) = match columns.topk {
        Some((ids, logprobs)) => (
            Some(nested_ids_at(cell, COL_TOPK_TOKEN_IDS, ids)?),
            Some(nested_floats_at(cell, COL_TOPK_LOGPROBS, logprobs)?),
        ),
        None => (None, None),
    };

    Ok(RolloutRecord {
        prompt_id: string_at(cell, COL_PROMPT_ID, columns.prompt_id)?,
        sample_index: primitive_at(cell, COL_SAMPLE_INDEX, columns.sample_index, HINT_REQUIRED)?,
        prompt: string_at(cell, COL_PROMPT, columns.prompt)?,
        response: string_at(cell, COL_RESPONSE, columns.response)?,
        prompt_token_ids: ids_at(
            cell,
            COL_PROMPT_TOKEN_IDS,
            columns.prompt_token_ids,
            cell.index,
            HINT_REQUIRED,
        )?,
        response_token_ids: ids_at(
            cell,
            COL_RESPONSE_TOKEN_IDS,
            columns.response_token_ids,
            cell.index,
            HINT_RESPONSE_IDS,
        )?,
        reward: primitive_at(cell, COL_REWARD, columns.reward, HINT_REWARD)?,
        finish_reason,
        response_logprobs: floats_at(
            cell,
            COL_RESPONSE_LOGPROBS,
            columns.response_logprobs,
            cell.index,
            HINT_REQUIRED,
        )?,
        topk_token_ids,
        topk_logprobs,
    })
}

fn string_at(
    cell: Cell<'_>,
    column: &'static str,
    array: &StringArray,
) -> Result<String, DataError> {
    if array.is_null(cell.index) {
        return Err(cell.null(column, HINT_REQUIRED));
    }
    Ok(array.value(cell.index).to_string())
}

fn primitive_at<T: ArrowPrimitiveType>(
    cell: Cell<'_>,
    column: &'static str,
    array: &PrimitiveArray<T>,
    hint: &'static str,
) -> Result<T::Native, DataError> {
    if array.is_null(cell.index) {
        return Err(cell.null(column, hint));
    }
    Ok(array.value(cell.index))
}

/// Returns the values of list `index` of `list`, whose items must be a
/// `PrimitiveArray<T>` without nulls.
fn primitive_list_at<T: ArrowPrimitiveType>(
    cell: Cell<'_>,
    column: &'static str,
    column_type: ColumnType,
    list: &ListArray,
    index: usize,
    hint: &'static str,
) -> Result<Vec<T::Native>, DataError> {
    if list.is_null(index) {
        return Err(cell.null(column, hint));
    }
    let items = list
        .values()
        .as_any()
        .downcast_ref::<PrimitiveArray<T>>()
        .ok_or_else(|| cell.wrong_type(column, column_type, list.data_type().to_string()))?;

    // Offsets index into the child array even when `list` is a slice.
    let offsets = list.value_offsets();
    let start = offsets[index] as usize;
    let end = offsets[index + 1] as usize;
    if items.null_count() > 0 && (start..end).any(|position| items.is_null(position)) {
        return Err(cell.null(column, HINT_LIST_ITEM));
    }
    Ok(items.values()[start..end].to_vec())
}

fn ids_at(
    cell: Cell<'_>,
    column: &'static str,
    list: &ListArray,
    index: usize,
    hint: &'static str,
) -> Result<Vec<u32>, DataError> {
    let ids =
        primitive_list_at::<Int32Type>(cell, column, ColumnType::ListInt32, list, index, hint)?;
    ids.into_iter()
        .map(|id| {
            u32::try_from(id).map_err(|_| DataError::TokenIdOutOfRange {
                path: cell.path.to_path_buf(),
                row: cell.row,
                column,
                value: i64::from(id),
            })
        })
        .collect()
}

fn floats_at(
    cell: Cell<'_>,
    column: &'static str,
    list: &ListArray,
    index: usize,
    hint: &'static str,
) -> Result<Vec<f32>, DataError> {
    primitive_list_at::<Float32Type>(cell, column, ColumnType::ListFloat32, list, index, hint)
}

/// Returns the child `ListArray` of a list<list<…>> column and the range of
/// its entries that belong to this cell's row.
fn inner_lists<'a>(
    cell: Cell<'_>,
    column: &'static str,
    column_type: ColumnType,
    outer: &'a ListArray,
) -> Result<(&'a ListArray, std::ops::Range<usize>), DataError> {
    if outer.is_null(cell.index) {
        return Err(cell.null(column, HINT_TOPK));
    }
    let inner = outer
        .values()
        .as_any()
        .downcast_ref::<ListArray>()
        .ok_or_else(|| cell.wrong_type(column, column_type, outer.data_type().to_string()))?;
    let offsets = outer.value_offsets();
    let range = offsets[cell.index] as usize..offsets[cell.index + 1] as usize;
    Ok((inner, range))
}

fn nested_ids_at(
    cell: Cell<'_>,
    column: &'static str,
    outer: &ListArray,
) -> Result<Vec<Vec<u32>>, DataError> {
    let (inner, range) = inner_lists(cell, column, ColumnType::ListListInt32, outer)?;
    range
        .map(|position| ids_at(cell, column, inner, position, HINT_LIST_ITEM))
        .collect()
}

fn nested_floats_at(
    cell: Cell<'_>,
    column: &'static str,
    outer: &ListArray,
) -> Result<Vec<Vec<f32>>, DataError> {
    let (inner, range) = inner_lists(cell, column, ColumnType::ListListFloat32, outer)?;
    range
        .map(|position| floats_at(cell, column, inner, position, HINT_LIST_ITEM))
        .collect()
}
