//! Conversion of validated [`RolloutRecord`]s into Arrow record batches.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float32Builder, Int32Builder, ListBuilder, RecordBatch, StringBuilder,
};
use arrow::datatypes::{DataType, Field};
use arrow::error::ArrowError;

use crate::RolloutRecord;
use crate::schema::{ColumnType, list_item_field, rollout_schema};

type IdListBuilder = ListBuilder<Int32Builder>;
type FloatListBuilder = ListBuilder<Float32Builder>;

/// Column builders for one record batch.
pub(crate) struct BatchBuilder {
    with_topk: bool,
    rows: usize,
    prompt_id: StringBuilder,
    sample_index: Int32Builder,
    prompt: StringBuilder,
    response: StringBuilder,
    prompt_token_ids: IdListBuilder,
    response_token_ids: IdListBuilder,
    reward: Float32Builder,
    finish_reason: StringBuilder,
    response_logprobs: FloatListBuilder,
    topk_token_ids: ListBuilder<IdListBuilder>,
    topk_logprobs: ListBuilder<FloatListBuilder>,
}

fn id_list_builder() -> IdListBuilder {
    ListBuilder::new(Int32Builder::new()).with_field(list_item_field(DataType::Int32))
}

fn float_list_builder() -> FloatListBuilder {
    ListBuilder::new(Float32Builder::new()).with_field(list_item_field(DataType::Float32))
}

impl BatchBuilder {
    /// Creates empty builders. The top-k columns are emitted only when
    /// `with_topk` is set.
    pub(crate) fn new(with_topk: bool) -> Self {
        let nested_ids_field = Field::new("item", ColumnType::ListInt32.arrow_type(), false);
        let nested_logprobs_field = Field::new("item", ColumnType::ListFloat32.arrow_type(), false);
        BatchBuilder {
            with_topk,
            rows: 0,
            prompt_id: StringBuilder::new(),
            sample_index: Int32Builder::new(),
            prompt: StringBuilder::new(),
            response: StringBuilder::new(),
            prompt_token_ids: id_list_builder(),
            response_token_ids: id_list_builder(),
            reward: Float32Builder::new(),
            finish_reason: StringBuilder::new(),
            response_logprobs: float_list_builder(),
            topk_token_ids: ListBuilder::new(id_list_builder()).with_field(nested_ids_field),
            topk_logprobs: ListBuilder::new(float_list_builder()).with_field(nested_logprobs_field),
        }
    }

    /// Number of rows appended since the last [`BatchBuilder::finish`].
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Appends one row. The record must have passed validation, so every
    /// token id fits in int32, and its top-k presence must match `with_topk`.
    pub(crate) fn append(&mut self, record: &RolloutRecord) {
        self.prompt_id.append_value(&record.prompt_id);
        self.sample_index.append_value(record.sample_index);
        self.prompt.append_value(&record.prompt);
        self.response.append_value(&record.response);
        append_ids(&mut self.prompt_token_ids, &record.prompt_token_ids);
        append_ids(&mut self.response_token_ids, &record.response_token_ids);
        self.reward.append_value(record.reward);
        self.finish_reason
            .append_value(record.finish_reason.as_str());
        append_floats(&mut self.response_logprobs, &record.response_logprobs);

        if self.with_topk {
            for ids in record.topk_token_ids.iter().flatten() {
                append_ids(self.topk_token_ids.values(), ids);
            }
            self.topk_token_ids.append(true);
            for logprobs in record.topk_logprobs.iter().flatten() {
                append_floats(self.topk_logprobs.values(), logprobs);
            }
            self.topk_logprobs.append(true);
        }
        self.rows += 1;
    }

    /// Builds a record batch of the appended rows and empties the builders.
    pub(crate) fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.prompt_id.finish()),
            Arc::new(self.sample_index.finish()),
            Arc::new(self.prompt.finish()),
            Arc::new(self.response.finish()),
            Arc::new(self.prompt_token_ids.finish()),
            Arc::new(self.response_token_ids.finish()),
            Arc::new(self.reward.finish()),
            Arc::new(self.finish_reason.finish()),
            Arc::new(self.response_logprobs.finish()),
        ];
        if self.with_topk {
            columns.push(Arc::new(self.topk_token_ids.finish()));
            columns.push(Arc::new(self.topk_logprobs.finish()));
        }
        self.rows = 0;
        RecordBatch::try_new(rollout_schema(self.with_topk), columns)
    }
}

fn append_ids(builder: &mut IdListBuilder, ids: &[u32]) {
    for &id in ids {
        // Validation bounds every id by i32::MAX, so the cast keeps its value.
        builder.values().append_value(id as i32);
    }
    builder.append(true);
}

fn append_floats(builder: &mut FloatListBuilder, values: &[f32]) {
    builder.values().append_slice(values);
    builder.append(true);
}
