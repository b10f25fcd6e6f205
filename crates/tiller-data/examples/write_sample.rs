//! Writes a small rollout dataset with top-k columns, e.g. to check that
//! other Parquet readers accept the files:
//!
//! ```text
//! cargo run --release -p tiller-data --example write_sample -- /tmp/sample-rollouts
//! python3 crates/tiller-data/tests/pyarrow_check.py /tmp/sample-rollouts/sample-00000.parquet
//! ```

use std::path::PathBuf;

use tiller_data::{FinishReason, RolloutMetadata, RolloutRecord, RolloutWriter};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some(dir) = std::env::args().nth(1).map(PathBuf::from) else {
        return Err("usage: write_sample OUTPUT_DIR".into());
    };
    let metadata = RolloutMetadata::new(
        "sample.gguf",
        "00".repeat(32),
        "11".repeat(32),
        serde_json::json!({"name": "length", "max_tokens": 8}),
        serde_json::json!({"temperature": 1.0, "top_k": 0, "top_p": 1.0, "max_new_tokens": 8}),
    );

    let mut writer = RolloutWriter::create(&dir, "sample", metadata, 1000)?;
    for index in 0..4u32 {
        // Response lengths are 0, 1, 2 and 3, and the empty one counts as cut at the length limit.
        let response_token_ids: Vec<u32> = (0..index).map(|t| 10 + t).collect();
        let length = response_token_ids.len();
        writer.write(&RolloutRecord {
            prompt_id: format!("p{:04}", index / 2 + 1),
            sample_index: (index % 2) as i32,
            prompt: "Describe today's weather in one sentence.".to_string(),
            response: format!("Sample response {index}."),
            prompt_token_ids: vec![1, 2, 3],
            response_token_ids: response_token_ids.clone(),
            reward: index as f32 - 1.5,
            finish_reason: if index == 0 {
                FinishReason::Length
            } else {
                FinishReason::Eos
            },
            response_logprobs: vec![-0.5; length],
            topk_token_ids: Some(
                response_token_ids
                    .iter()
                    .map(|&id| vec![id, 4, 5])
                    .collect(),
            ),
            topk_logprobs: Some(vec![vec![-0.5, -1.5, -2.5]; length]),
        })?;
    }
    for path in writer.finish()? {
        println!("{}", path.display());
    }
    Ok(())
}
