//! Helpers shared by the integration tests: sample records and metadata, and
//! a writer for hand-built (possibly invalid) Parquet files.

#![allow(dead_code)]

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float32Array, Float32Builder, Int32Array, Int32Builder, ListArray, ListBuilder,
    RecordBatch, StringArray,
};
use arrow::datatypes::{Float32Type, Int32Type};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use tiller_data::{FinishReason, RolloutMetadata, RolloutRecord};

pub fn metadata() -> RolloutMetadata {
    RolloutMetadata::new(
        "tiny-llama.gguf",
        "0a1b2c3d",
        "4e5f6a7b",
        serde_json::json!({"name": "vader", "settings": {"lexicon": "vader_lexicon.txt"}}),
        serde_json::json!({"temperature": 1.0, "top_k": 0, "top_p": 1.0, "seed": 7}),
    )
}

/// Builds a valid record whose fields all depend on `index`, with a response of
/// `index % 4` tokens (so index 0 is an empty response).
pub fn record(index: usize, with_topk: bool) -> RolloutRecord {
    let response_len = index % 4;
    let response_token_ids: Vec<u32> = (0..response_len)
        .map(|t| (100 + index + t) as u32)
        .collect();
    let response_logprobs: Vec<f32> = (0..response_len)
        .map(|t| -0.25 * (t as f32 + 1.0))
        .collect();
    let topk_token_ids: Vec<Vec<u32>> = (0..response_len)
        .map(|t| vec![(100 + index + t) as u32, 7, 9])
        .collect();
    let topk_logprobs: Vec<Vec<f32>> = (0..response_len)
        .map(|t| vec![-0.25 * (t as f32 + 1.0), -2.0, -3.5])
        .collect();
    let finish_reason = match index % 3 {
        0 => FinishReason::Eos,
        1 => FinishReason::Stop,
        _ => FinishReason::Length,
    };
    RolloutRecord {
        prompt_id: format!("p{:04}", index / 2),
        sample_index: (index % 2) as i32,
        prompt: format!("Prompt number {index}, with ünïcödé."),
        response: format!("Response {index}."),
        prompt_token_ids: vec![1, (index as u32) + 2, 3],
        response_token_ids,
        reward: index as f32 * 0.5 - 1.0,
        finish_reason,
        response_logprobs,
        topk_token_ids: with_topk.then_some(topk_token_ids),
        topk_logprobs: with_topk.then_some(topk_logprobs),
    }
}

/// Builds the nine required columns of a valid two-row file, built with plain arrow
/// (nullable fields, as other tools write them). Row 1 has an empty response.
pub fn valid_columns() -> Vec<(&'static str, ArrayRef)> {
    vec![
        (
            "prompt_id",
            Arc::new(StringArray::from(vec!["p0001", "p0002"])) as ArrayRef,
        ),
        ("sample_index", Arc::new(Int32Array::from(vec![0, 0]))),
        (
            "prompt",
            Arc::new(StringArray::from(vec!["Say hi.", "Say bye."])),
        ),
        ("response", Arc::new(StringArray::from(vec!["Hi!", ""]))),
        (
            "prompt_token_ids",
            int_lists(vec![Some(vec![1, 2]), Some(vec![1, 3])]),
        ),
        (
            "response_token_ids",
            int_lists(vec![Some(vec![5, 6]), Some(vec![])]),
        ),
        ("reward", Arc::new(Float32Array::from(vec![0.5, -0.5]))),
        (
            "finish_reason",
            Arc::new(StringArray::from(vec!["eos", "length"])),
        ),
        (
            "response_logprobs",
            float_lists(vec![Some(vec![-0.1, -0.2]), Some(vec![])]),
        ),
    ]
}

/// Replaces (or appends) column `name`.
pub fn with_column(
    mut columns: Vec<(&'static str, ArrayRef)>,
    name: &'static str,
    array: ArrayRef,
) -> Vec<(&'static str, ArrayRef)> {
    match columns.iter_mut().find(|(column, _)| *column == name) {
        Some(slot) => slot.1 = array,
        None => columns.push((name, array)),
    }
    columns
}

pub fn without_column(
    columns: Vec<(&'static str, ArrayRef)>,
    name: &str,
) -> Vec<(&'static str, ArrayRef)> {
    columns
        .into_iter()
        .filter(|(column, _)| *column != name)
        .collect()
}

pub fn int_lists(rows: Vec<Option<Vec<i32>>>) -> ArrayRef {
    let rows = rows
        .into_iter()
        .map(|row| row.map(|ids| ids.into_iter().map(Some)));
    Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(rows))
}

pub fn float_lists(rows: Vec<Option<Vec<f32>>>) -> ArrayRef {
    let rows = rows
        .into_iter()
        .map(|row| row.map(|values| values.into_iter().map(Some)));
    Arc::new(ListArray::from_iter_primitive::<Float32Type, _, _>(rows))
}

pub fn nested_int_lists(rows: Vec<Vec<Vec<i32>>>) -> ArrayRef {
    let mut builder = ListBuilder::new(ListBuilder::new(Int32Builder::new()));
    for row in rows {
        for inner in row {
            builder.values().values().append_slice(&inner);
            builder.values().append(true);
        }
        builder.append(true);
    }
    Arc::new(builder.finish())
}

pub fn nested_float_lists(rows: Vec<Vec<Vec<f32>>>) -> ArrayRef {
    let mut builder = ListBuilder::new(ListBuilder::new(Float32Builder::new()));
    for row in rows {
        for inner in row {
            builder.values().values().append_slice(&inner);
            builder.values().append(true);
        }
        builder.append(true);
    }
    Arc::new(builder.finish())
}

/// Writes `columns` as one record batch with plain arrow and parquet, with
/// the tiller metadata of [`metadata`].
pub fn write_raw(path: &Path, columns: Vec<(&'static str, ArrayRef)>) {
    write_raw_with_metadata(path, columns, Some(metadata().to_key_values()));
}

pub fn write_raw_with_metadata(
    path: &Path,
    columns: Vec<(&'static str, ArrayRef)>,
    key_values: Option<Vec<parquet::file::metadata::KeyValue>>,
) {
    let batch = RecordBatch::try_from_iter(columns).expect("test columns form a valid batch");
    let properties = WriterProperties::builder()
        .set_key_value_metadata(key_values)
        .build();
    let file = File::create(path).expect("test file can be created");
    let mut writer =
        ArrowWriter::try_new(file, batch.schema(), Some(properties)).expect("writer starts");
    writer.write(&batch).expect("batch is written");
    writer.close().expect("file is closed");
}

/// Reads every record of `path`, returning the first error.
pub fn read_all(path: &Path) -> Result<Vec<RolloutRecord>, tiller_data::DataError> {
    tiller_data::RolloutReader::open(&[path])?
        .records()
        .collect()
}
