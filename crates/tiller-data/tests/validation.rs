//! Rejection of invalid rollout files written directly with arrow and parquet.

mod common;

use std::sync::Arc;

use arrow::array::{ArrayRef, Float32Array, Int32Array, StringArray};
use common::{
    float_lists, int_lists, nested_float_lists, nested_int_lists, read_all, valid_columns,
    with_column, without_column, write_raw, write_raw_with_metadata,
};
use parquet::file::metadata::KeyValue;
use tiller_data::{DataError, RolloutReader};

/// Writes `columns` to a fresh file and returns the read error and the path.
fn read_error(columns: Vec<(&'static str, ArrayRef)>) -> (DataError, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.parquet");
    write_raw(&path, columns);
    let error = read_all(&path).expect_err("the file is invalid");
    (error, path.display().to_string())
}

#[test]
fn plain_arrow_file_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("good.parquet");
    write_raw(&path, valid_columns());

    let records = read_all(&path).unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].response_token_ids, vec![5, 6]);
    assert_eq!(records[1].response_token_ids, Vec::<u32>::new());
    assert_eq!(records[1].response_logprobs, Vec::<f32>::new());
}

#[test]
fn extra_columns_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("extra.parquet");
    let extra = Arc::new(StringArray::from(vec!["a", "b"])) as ArrayRef;
    write_raw(&path, with_column(valid_columns(), "annotator", extra));
    assert_eq!(read_all(&path).unwrap().len(), 2);
}

#[test]
fn nan_reward_names_file_row_and_column() {
    let reward = Arc::new(Float32Array::from(vec![0.5, f32::NAN])) as ArrayRef;
    let (error, path) = read_error(with_column(valid_columns(), "reward", reward));

    assert!(
        matches!(
            error,
            DataError::NonFiniteValue {
                row: 1,
                column: "reward",
                ..
            }
        ),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.contains(&path), "{message}");
    assert!(message.contains("row 1 (0-based"), "{message}");
    assert!(message.contains("column `reward`"), "{message}");
    assert!(message.contains("NaN"), "{message}");
}

#[test]
fn infinite_reward_rejected() {
    let reward = Arc::new(Float32Array::from(vec![f32::INFINITY, 0.0])) as ArrayRef;
    let (error, _) = read_error(with_column(valid_columns(), "reward", reward));
    assert!(
        matches!(
            error,
            DataError::NonFiniteValue {
                row: 0,
                column: "reward",
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("inf"), "{error}");
}

#[test]
fn null_reward_rejected() {
    let reward = Arc::new(Float32Array::from(vec![Some(0.5), None])) as ArrayRef;
    let (error, _) = read_error(with_column(valid_columns(), "reward", reward));
    assert!(
        matches!(
            error,
            DataError::NullValue {
                row: 1,
                column: "reward",
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn null_response_list_rejected_with_hint() {
    let ids = int_lists(vec![Some(vec![5, 6]), None]);
    let (error, path) = read_error(with_column(valid_columns(), "response_token_ids", ids));

    assert!(
        matches!(
            error,
            DataError::NullValue {
                row: 1,
                column: "response_token_ids",
                ..
            }
        ),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.contains(&path), "{message}");
    assert!(
        message.contains("write [] for an empty response"),
        "{message}"
    );
}

#[test]
fn null_entry_inside_list_rejected() {
    let rows = vec![Some(vec![Some(5), None]), Some(vec![])];
    let ids = Arc::new(arrow::array::ListArray::from_iter_primitive::<
        arrow::datatypes::Int32Type,
        _,
        _,
    >(rows)) as ArrayRef;
    let (error, _) = read_error(with_column(valid_columns(), "response_token_ids", ids));
    assert!(
        matches!(
            error,
            DataError::NullValue {
                row: 0,
                column: "response_token_ids",
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn null_prompt_id_rejected() {
    let ids = Arc::new(StringArray::from(vec![Some("p0001"), None])) as ArrayRef;
    let (error, _) = read_error(with_column(valid_columns(), "prompt_id", ids));
    assert!(
        matches!(
            error,
            DataError::NullValue {
                row: 1,
                column: "prompt_id",
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn missing_column_lists_required_columns() {
    let (error, path) = read_error(without_column(valid_columns(), "response_logprobs"));
    assert!(
        matches!(
            error,
            DataError::MissingColumn {
                column: "response_logprobs",
                ..
            }
        ),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.contains(&path), "{message}");
    for column in [
        "prompt_id",
        "sample_index",
        "prompt",
        "response",
        "prompt_token_ids",
        "response_token_ids",
        "reward",
        "finish_reason",
        "response_logprobs",
    ] {
        assert!(message.contains(column), "{column} not in: {message}");
    }
}

#[test]
fn wrong_column_type_rejected() {
    // reward stored as int32 instead of float32.
    let reward = Arc::new(Int32Array::from(vec![1, 0])) as ArrayRef;
    let (error, _) = read_error(with_column(valid_columns(), "reward", reward));
    assert!(
        matches!(
            error,
            DataError::WrongColumnType {
                column: "reward",
                expected: "float32",
                ..
            }
        ),
        "{error}"
    );

    // Token ids stored as list<float32>.
    let ids = float_lists(vec![Some(vec![1.0]), Some(vec![])]);
    let (error, _) = read_error(with_column(valid_columns(), "prompt_token_ids", ids));
    assert!(
        matches!(
            error,
            DataError::WrongColumnType {
                column: "prompt_token_ids",
                expected: "list<int32>",
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn logprob_length_mismatch_rejected() {
    let logprobs = float_lists(vec![Some(vec![-0.1]), Some(vec![])]);
    let (error, path) = read_error(with_column(valid_columns(), "response_logprobs", logprobs));
    assert!(
        matches!(
            error,
            DataError::LengthMismatch {
                row: 0,
                column: "response_logprobs",
                expected: 2,
                found: 1,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains(&path), "{error}");
}

#[test]
fn nan_logprob_rejected() {
    let logprobs = float_lists(vec![Some(vec![-0.1, f32::NAN]), Some(vec![])]);
    let (error, _) = read_error(with_column(valid_columns(), "response_logprobs", logprobs));
    assert!(
        matches!(
            error,
            DataError::NonFiniteValue {
                row: 0,
                column: "response_logprobs",
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn negative_token_id_rejected() {
    let ids = int_lists(vec![Some(vec![5, -3]), Some(vec![])]);
    let (error, _) = read_error(with_column(valid_columns(), "response_token_ids", ids));
    assert!(
        matches!(
            error,
            DataError::TokenIdOutOfRange {
                row: 0,
                column: "response_token_ids",
                value: -3,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn empty_prompt_token_ids_rejected() {
    let ids = int_lists(vec![Some(vec![1]), Some(vec![])]);
    let (error, _) = read_error(with_column(valid_columns(), "prompt_token_ids", ids));
    assert!(
        matches!(
            error,
            DataError::InvalidValue {
                row: 1,
                column: "prompt_token_ids",
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn negative_sample_index_rejected() {
    let index = Arc::new(Int32Array::from(vec![0, -1])) as ArrayRef;
    let (error, _) = read_error(with_column(valid_columns(), "sample_index", index));
    assert!(
        matches!(
            error,
            DataError::InvalidValue {
                row: 1,
                column: "sample_index",
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn unknown_finish_reason_rejected() {
    let reasons = Arc::new(StringArray::from(vec!["eos", "timeout"])) as ArrayRef;
    let (error, _) = read_error(with_column(valid_columns(), "finish_reason", reasons));
    assert!(
        matches!(&error, DataError::UnknownFinishReason { row: 1, value, .. } if value == "timeout"),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains("\"eos\", \"stop\" or \"length\""),
        "{error}"
    );
}

fn with_topk(ids: ArrayRef, logprobs: ArrayRef) -> Vec<(&'static str, ArrayRef)> {
    let columns = with_column(valid_columns(), "topk_token_ids", ids);
    with_column(columns, "topk_logprobs", logprobs)
}

#[test]
fn valid_topk_columns_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("topk.parquet");
    let ids = nested_int_lists(vec![vec![vec![5, 1], vec![6, 2]], vec![]]);
    let logprobs = nested_float_lists(vec![vec![vec![-0.1, -2.0], vec![-0.2, -3.0]], vec![]]);
    write_raw(&path, with_topk(ids, logprobs));

    let records = read_all(&path).unwrap();
    assert_eq!(
        records[0].topk_token_ids,
        Some(vec![vec![5, 1], vec![6, 2]])
    );
    assert_eq!(
        records[0].topk_logprobs,
        Some(vec![vec![-0.1, -2.0], vec![-0.2, -3.0]])
    );
    assert_eq!(records[1].topk_token_ids, Some(vec![]));
}

#[test]
fn topk_outer_length_mismatch_rejected() {
    // Row 0 has 2 response tokens but only 1 top-k position.
    let ids = nested_int_lists(vec![vec![vec![5, 1]], vec![]]);
    let logprobs = nested_float_lists(vec![vec![vec![-0.1, -2.0]], vec![]]);
    let (error, _) = read_error(with_topk(ids, logprobs));
    assert!(
        matches!(
            error,
            DataError::LengthMismatch {
                row: 0,
                column: "topk_token_ids",
                expected: 2,
                found: 1,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn topk_inner_length_mismatch_rejected() {
    let ids = nested_int_lists(vec![vec![vec![5, 1], vec![6, 2]], vec![]]);
    let logprobs = nested_float_lists(vec![vec![vec![-0.1, -2.0], vec![-0.2]], vec![]]);
    let (error, _) = read_error(with_topk(ids, logprobs));
    assert!(
        matches!(
            &error,
            DataError::LengthMismatch {
                row: 0,
                column: "topk_logprobs",
                expected: 2,
                found: 1,
                list,
                ..
            } if list.contains("position 1")
        ),
        "{error}"
    );
}

#[test]
fn unpaired_topk_column_rejected() {
    let ids = nested_int_lists(vec![vec![vec![5], vec![6]], vec![]]);
    let (error, _) = read_error(with_column(valid_columns(), "topk_token_ids", ids));
    assert!(
        matches!(
            error,
            DataError::UnpairedTopkColumn {
                present: "topk_token_ids",
                missing: "topk_logprobs",
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn missing_metadata_key_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-meta.parquet");
    let key_values: Vec<KeyValue> = common::metadata()
        .to_key_values()
        .into_iter()
        .filter(|pair| pair.key != "tiller.tokenizer_sha256")
        .collect();
    write_raw_with_metadata(&path, valid_columns(), Some(key_values));

    let error = RolloutReader::open(&[&path]).err().unwrap();
    assert!(
        matches!(
            error,
            DataError::MissingMetadataKey {
                key: "tiller.tokenizer_sha256",
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn invalid_metadata_json_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad-json.parquet");
    let key_values: Vec<KeyValue> = common::metadata()
        .to_key_values()
        .into_iter()
        .map(|pair| {
            if pair.key == "tiller.reward" {
                KeyValue::new(pair.key, "{not json".to_string())
            } else {
                pair
            }
        })
        .collect();
    write_raw_with_metadata(&path, valid_columns(), Some(key_values));

    let error = RolloutReader::open(&[&path]).err().unwrap();
    assert!(
        matches!(
            error,
            DataError::InvalidMetadata {
                key: "tiller.reward",
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn newer_schema_version_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.parquet");
    let mut key_values = common::metadata().to_key_values();
    key_values[0] = KeyValue::new("tiller.schema_version".to_string(), "2".to_string());
    write_raw_with_metadata(&path, valid_columns(), Some(key_values));

    let error = RolloutReader::open(&[&path]).err().unwrap();
    assert!(
        matches!(
            error,
            DataError::UnsupportedSchemaVersion {
                found: 2,
                supported: 1,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn error_ends_the_record_stream() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.parquet");
    let reward = Arc::new(Float32Array::from(vec![f32::NAN, 0.0])) as ArrayRef;
    write_raw(&path, with_column(valid_columns(), "reward", reward));

    let mut records = RolloutReader::open(&[&path]).unwrap().records();
    assert!(records.next().is_some_and(|item| item.is_err()));
    assert!(records.next().is_none());
}

#[test]
fn row_numbers_count_across_batches() {
    // Six rows read two at a time, with a NaN reward in row 4: the error must
    // report row 4 of the file, not row 0 of the third batch.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rows.parquet");
    let rows = 6;
    let reward: Vec<f32> = (0..rows)
        .map(|row| if row == 4 { f32::NAN } else { 0.0 })
        .collect();
    let columns: Vec<(&'static str, ArrayRef)> = vec![
        (
            "prompt_id",
            Arc::new(StringArray::from(vec!["p"; rows])) as ArrayRef,
        ),
        ("sample_index", Arc::new(Int32Array::from(vec![0; rows]))),
        ("prompt", Arc::new(StringArray::from(vec!["q"; rows]))),
        ("response", Arc::new(StringArray::from(vec![""; rows]))),
        ("prompt_token_ids", int_lists(vec![Some(vec![1]); rows])),
        ("response_token_ids", int_lists(vec![Some(vec![]); rows])),
        ("reward", Arc::new(Float32Array::from(reward))),
        (
            "finish_reason",
            Arc::new(StringArray::from(vec!["length"; rows])),
        ),
        ("response_logprobs", float_lists(vec![Some(vec![]); rows])),
    ];
    write_raw(&path, columns);

    let reader = RolloutReader::open(&[&path]).unwrap().with_batch_size(2);
    let results: Vec<_> = reader.records().collect();
    assert_eq!(results.len(), 5);
    assert!(results[..4].iter().all(Result::is_ok));
    let error = results[4].as_ref().unwrap_err();
    assert!(
        matches!(error, DataError::NonFiniteValue { row: 4, .. }),
        "{error}"
    );
}
