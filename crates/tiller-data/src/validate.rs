//! Checks of one [`RolloutRecord`], shared by the writer (before a row is
//! written) and the reader (after a row is decoded).

use std::path::Path;

use crate::schema::{
    COL_PROMPT_ID, COL_PROMPT_TOKEN_IDS, COL_RESPONSE_LOGPROBS, COL_RESPONSE_TOKEN_IDS, COL_REWARD,
    COL_SAMPLE_INDEX, COL_TOPK_LOGPROBS, COL_TOPK_TOKEN_IDS,
};
use crate::{DataError, RolloutRecord};

/// Largest token id that fits in the int32 columns.
const MAX_TOKEN_ID: u32 = i32::MAX as u32;

const PER_RESPONSE_TOKEN: &str = "one entry per response token";

/// Checks every invariant of [`RolloutRecord`]. `path` and `row` (0-based
/// within that file) only label the error.
pub(crate) fn validate_record(
    path: &Path,
    row: usize,
    record: &RolloutRecord,
) -> Result<(), DataError> {
    let invalid =
        |column: &'static str, value: String, reason: &'static str| DataError::InvalidValue {
            path: path.to_path_buf(),
            row,
            column,
            value,
            reason,
        };

    if record.prompt_id.is_empty() {
        return Err(invalid(
            COL_PROMPT_ID,
            "\"\"".to_string(),
            "prompt ids must be non-empty",
        ));
    }
    if record.sample_index < 0 {
        return Err(invalid(
            COL_SAMPLE_INDEX,
            record.sample_index.to_string(),
            "sample indices count from 0",
        ));
    }
    // State s_0 is read at the last prompt token, so a prompt needs one.
    if record.prompt_token_ids.is_empty() {
        return Err(invalid(
            COL_PROMPT_TOKEN_IDS,
            "[]".to_string(),
            "the prompt needs at least one token, because the scorer reads state s_0 at the last prompt token",
        ));
    }
    check_token_ids(path, row, COL_PROMPT_TOKEN_IDS, &record.prompt_token_ids)?;
    check_token_ids(
        path,
        row,
        COL_RESPONSE_TOKEN_IDS,
        &record.response_token_ids,
    )?;
    check_finite(path, row, COL_REWARD, &[record.reward])?;

    let response_len = record.response_token_ids.len();
    check_length(
        path,
        row,
        COL_RESPONSE_LOGPROBS,
        "the list".to_string(),
        response_len,
        record.response_logprobs.len(),
        PER_RESPONSE_TOKEN,
    )?;
    check_finite(path, row, COL_RESPONSE_LOGPROBS, &record.response_logprobs)?;

    validate_topk(path, row, record)
}

fn validate_topk(path: &Path, row: usize, record: &RolloutRecord) -> Result<(), DataError> {
    let (topk_ids, topk_logprobs) = match (&record.topk_token_ids, &record.topk_logprobs) {
        (None, None) => return Ok(()),
        (Some(ids), Some(logprobs)) => (ids, logprobs),
        (Some(_), None) => return Err(unpaired_topk(path, row, COL_TOPK_LOGPROBS)),
        (None, Some(_)) => return Err(unpaired_topk(path, row, COL_TOPK_TOKEN_IDS)),
    };

    let response_len = record.response_token_ids.len();
    let outer = "the outer list".to_string();
    check_length(
        path,
        row,
        COL_TOPK_TOKEN_IDS,
        outer.clone(),
        response_len,
        topk_ids.len(),
        PER_RESPONSE_TOKEN,
    )?;
    check_length(
        path,
        row,
        COL_TOPK_LOGPROBS,
        outer,
        response_len,
        topk_logprobs.len(),
        PER_RESPONSE_TOKEN,
    )?;

    for (position, (ids, logprobs)) in topk_ids.iter().zip(topk_logprobs).enumerate() {
        check_token_ids(path, row, COL_TOPK_TOKEN_IDS, ids)?;
        check_length(
            path,
            row,
            COL_TOPK_LOGPROBS,
            format!("the inner list at position {position} (matching {COL_TOPK_TOKEN_IDS})"),
            ids.len(),
            logprobs.len(),
            "one log-probability per top-k token id",
        )?;
        check_finite(path, row, COL_TOPK_LOGPROBS, logprobs)?;
    }
    Ok(())
}

fn unpaired_topk(path: &Path, row: usize, missing: &'static str) -> DataError {
    DataError::NullValue {
        path: path.to_path_buf(),
        row,
        column: missing,
        hint: "give both top-k lists or neither",
    }
}

fn check_token_ids(
    path: &Path,
    row: usize,
    column: &'static str,
    ids: &[u32],
) -> Result<(), DataError> {
    match ids.iter().find(|&&id| id > MAX_TOKEN_ID) {
        Some(&id) => Err(DataError::TokenIdOutOfRange {
            path: path.to_path_buf(),
            row,
            column,
            value: i64::from(id),
        }),
        None => Ok(()),
    }
}

fn check_finite(
    path: &Path,
    row: usize,
    column: &'static str,
    values: &[f32],
) -> Result<(), DataError> {
    match values.iter().find(|value| !value.is_finite()) {
        Some(&value) => Err(DataError::NonFiniteValue {
            path: path.to_path_buf(),
            row,
            column,
            value,
        }),
        None => Ok(()),
    }
}

fn check_length(
    path: &Path,
    row: usize,
    column: &'static str,
    list: String,
    expected: usize,
    found: usize,
    rule: &'static str,
) -> Result<(), DataError> {
    if expected == found {
        return Ok(());
    }
    Err(DataError::LengthMismatch {
        path: path.to_path_buf(),
        row,
        column,
        list,
        expected,
        found,
        rule,
    })
}
