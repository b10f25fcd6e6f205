//! Writing rollouts with `RolloutWriter` and reading them back.

mod common;

use std::path::PathBuf;

use common::{metadata, record};
use tiller_data::{
    DataError, FinishReason, RolloutReader, RolloutRecord, RolloutWriter, RolloutWriterOptions,
    check_tokenizer,
};

fn write_records(
    dir: &std::path::Path,
    records: &[RolloutRecord],
    rows_per_shard: usize,
) -> Vec<PathBuf> {
    let mut writer = RolloutWriter::create(dir, "rollouts", metadata(), rows_per_shard).unwrap();
    for record in records {
        writer.write(record).unwrap();
    }
    writer.finish().unwrap()
}

fn file_names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn round_trip_without_topk() {
    let dir = tempfile::tempdir().unwrap();
    let records: Vec<RolloutRecord> = (0..10).map(|i| record(i, false)).collect();
    let shards = write_records(dir.path(), &records, 100);
    assert_eq!(shards, vec![dir.path().join("rollouts-00000.parquet")]);

    let reader = RolloutReader::open(&shards).unwrap();
    assert_eq!(reader.metadata(), &metadata());
    assert_eq!(reader.num_rows(), 10);
    assert!(!reader.has_topk());
    let read: Vec<RolloutRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(read, records);
}

#[test]
fn round_trip_with_topk() {
    let dir = tempfile::tempdir().unwrap();
    let records: Vec<RolloutRecord> = (0..10).map(|i| record(i, true)).collect();
    let shards = write_records(dir.path(), &records, 100);

    let reader = RolloutReader::open(&shards).unwrap();
    assert!(reader.has_topk());
    let read: Vec<RolloutRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(read, records);
}

#[test]
fn empty_response_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let mut empty = record(0, true);
    empty.finish_reason = FinishReason::Length;
    assert!(empty.response_token_ids.is_empty());
    let shards = write_records(dir.path(), std::slice::from_ref(&empty), 10);

    let read: Vec<RolloutRecord> = RolloutReader::open(&shards)
        .unwrap()
        .records()
        .map(Result::unwrap)
        .collect();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].response_token_ids, Vec::<u32>::new());
    assert_eq!(read[0].response_logprobs, Vec::<f32>::new());
    assert_eq!(read[0].topk_token_ids, Some(vec![]));
    assert_eq!(read[0].topk_logprobs, Some(vec![]));
    assert_eq!(read[0], empty);
}

#[test]
fn extreme_values_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut extreme = record(3, false);
    extreme.prompt_token_ids = vec![0, i32::MAX as u32];
    extreme.response_token_ids = vec![0, 1, i32::MAX as u32];
    extreme.response_logprobs = vec![0.0, f32::MIN, -1e-30];
    extreme.reward = f32::MAX;
    extreme.sample_index = i32::MAX;
    extreme.prompt = String::new();
    extreme.response = "line one\nline two\t\u{1F600}".to_string();
    let shards = write_records(dir.path(), std::slice::from_ref(&extreme), 10);

    let read = common::read_all(&shards[0]).unwrap();
    assert_eq!(read, vec![extreme]);
}

#[test]
fn shards_roll_over_every_rows_per_shard() {
    let dir = tempfile::tempdir().unwrap();
    let records: Vec<RolloutRecord> = (0..7).map(|i| record(i, true)).collect();
    let shards = write_records(dir.path(), &records, 3);

    // 7 rows at 3 per shard: shards of 3, 3 and 1 rows.
    let expected: Vec<PathBuf> = (0..3)
        .map(|i| dir.path().join(format!("rollouts-{i:05}.parquet")))
        .collect();
    assert_eq!(shards, expected);
    assert_eq!(
        file_names(dir.path()),
        vec![
            "rollouts-00000.parquet",
            "rollouts-00001.parquet",
            "rollouts-00002.parquet"
        ]
    );
    for (shard, rows) in shards.iter().zip([3, 3, 1]) {
        assert_eq!(RolloutReader::open(&[shard]).unwrap().num_rows(), rows);
    }

    let reader = RolloutReader::open(&[dir.path()]).unwrap();
    assert_eq!(reader.files(), expected.as_slice());
    assert_eq!(reader.num_rows(), 7);
    let read: Vec<RolloutRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(read, records);
}

#[test]
fn exact_multiple_leaves_no_empty_shard() {
    let dir = tempfile::tempdir().unwrap();
    let records: Vec<RolloutRecord> = (0..6).map(|i| record(i, false)).collect();
    let shards = write_records(dir.path(), &records, 3);
    assert_eq!(shards.len(), 2);
    assert_eq!(file_names(dir.path()).len(), 2);
}

#[test]
fn small_batches_stream_all_rows() {
    let dir = tempfile::tempdir().unwrap();
    let records: Vec<RolloutRecord> = (0..25).map(|i| record(i, true)).collect();
    let options = RolloutWriterOptions {
        batch_rows: 4,
        ..RolloutWriterOptions::new(10)
    };
    let mut writer =
        RolloutWriter::create_with_options(dir.path(), "rollouts", metadata(), options).unwrap();
    for record in &records {
        writer.write(record).unwrap();
    }
    let shards = writer.finish().unwrap();
    assert_eq!(shards.len(), 3);

    // Shards of 10, 10 and 5 rows, cut into row groups of at most 4 rows.
    for (shard, expected) in shards
        .iter()
        .zip([vec![4, 4, 2], vec![4, 4, 2], vec![4, 1]])
    {
        let file = std::fs::File::open(shard).unwrap();
        let parquet = parquet::file::reader::SerializedFileReader::new(file).unwrap();
        let row_groups: Vec<i64> = parquet::file::reader::FileReader::metadata(&parquet)
            .row_groups()
            .iter()
            .map(|group| group.num_rows())
            .collect();
        assert_eq!(row_groups, expected, "{}", shard.display());
    }

    let reader = RolloutReader::open(&[dir.path()])
        .unwrap()
        .with_batch_size(3);
    let read: Vec<RolloutRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(read, records);
}

#[test]
fn writer_without_records_writes_empty_shard() {
    let dir = tempfile::tempdir().unwrap();
    let writer = RolloutWriter::create(dir.path(), "rollouts", metadata(), 10).unwrap();
    let shards = writer.finish().unwrap();
    assert_eq!(shards.len(), 1);

    let reader = RolloutReader::open(&shards).unwrap();
    assert_eq!(reader.num_rows(), 0);
    assert_eq!(reader.metadata(), &metadata());
    assert_eq!(reader.records().count(), 0);
}

#[test]
fn unfinished_writer_leaves_no_parquet_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = RolloutWriter::create(dir.path(), "rollouts", metadata(), 2).unwrap();
    for i in 0..3 {
        writer.write(&record(i, false)).unwrap();
    }
    // The first shard is complete and the second is still open as a .tmp file.
    assert_eq!(
        file_names(dir.path()),
        vec!["rollouts-00000.parquet", "rollouts-00001.parquet.tmp"]
    );

    drop(writer);
    assert_eq!(file_names(dir.path()), vec!["rollouts-00000.parquet"]);
}

#[test]
fn reader_skips_tmp_files_in_directory() {
    let dir = tempfile::tempdir().unwrap();
    write_records(dir.path(), &[record(1, false)], 10);
    std::fs::write(dir.path().join("rollouts-00001.parquet.tmp"), b"partial").unwrap();

    let reader = RolloutReader::open(&[dir.path()]).unwrap();
    assert_eq!(reader.files().len(), 1);
    assert_eq!(reader.num_rows(), 1);
}

#[test]
fn writer_rejects_existing_shards() {
    let dir = tempfile::tempdir().unwrap();
    write_records(dir.path(), &[record(1, false)], 10);

    let error = RolloutWriter::create(dir.path(), "rollouts", metadata(), 10)
        .err()
        .unwrap();
    assert!(matches!(error, DataError::ShardExists { .. }), "{error}");
    assert!(
        error.to_string().contains("rollouts-00000.parquet"),
        "{error}"
    );
    // Another prefix in the same directory is fine.
    assert!(RolloutWriter::create(dir.path(), "more", metadata(), 10).is_ok());
}

#[test]
fn writer_rejects_invalid_settings() {
    let dir = tempfile::tempdir().unwrap();
    let zero_rows = RolloutWriter::create(dir.path(), "rollouts", metadata(), 0)
        .err()
        .unwrap();
    assert!(
        zero_rows.to_string().contains("rows_per_shard"),
        "{zero_rows}"
    );

    let bad_prefix = RolloutWriter::create(dir.path(), "a/b", metadata(), 10)
        .err()
        .unwrap();
    assert!(
        bad_prefix.to_string().contains("file_prefix"),
        "{bad_prefix}"
    );

    let options = RolloutWriterOptions {
        zstd_level: 99,
        ..RolloutWriterOptions::new(10)
    };
    let bad_level = RolloutWriter::create_with_options(dir.path(), "rollouts", metadata(), options)
        .err()
        .unwrap();
    assert!(bad_level.to_string().contains("zstd_level"), "{bad_level}");

    let mut old = metadata();
    old.schema_version = 0;
    let bad_version = RolloutWriter::create(dir.path(), "rollouts", old, 10)
        .err()
        .unwrap();
    assert!(
        bad_version.to_string().contains("schema_version"),
        "{bad_version}"
    );
}

#[test]
fn writer_rejects_invalid_records_and_continues() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = RolloutWriter::create(dir.path(), "rollouts", metadata(), 10).unwrap();
    writer.write(&record(1, false)).unwrap();

    let mut nan_reward = record(2, false);
    nan_reward.reward = f32::NAN;
    let error = writer.write(&nan_reward).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("rollouts-00000.parquet"), "{message}");
    assert!(message.contains("row 1"), "{message}");
    assert!(message.contains("`reward`"), "{message}");

    let mut big_id = record(2, false);
    big_id.response_token_ids[0] = i32::MAX as u32 + 1;
    let error = writer.write(&big_id).unwrap_err();
    assert!(
        matches!(
            error,
            DataError::TokenIdOutOfRange {
                value: 2_147_483_648,
                ..
            }
        ),
        "{error}"
    );

    let mut short_logprobs = record(3, false);
    short_logprobs.response_logprobs.pop();
    let error = writer.write(&short_logprobs).unwrap_err();
    assert!(
        matches!(
            error,
            DataError::LengthMismatch {
                expected: 3,
                found: 2,
                ..
            }
        ),
        "{error}"
    );

    let error = writer.write(&record(3, true)).unwrap_err();
    assert!(
        matches!(error, DataError::TopkPresenceChanged { .. }),
        "{error}"
    );

    // The rejected records were not written, so only two rows exist.
    writer.write(&record(5, false)).unwrap();
    let shards = writer.finish().unwrap();
    let read = common::read_all(&shards[0]).unwrap();
    assert_eq!(read, vec![record(1, false), record(5, false)]);
}

#[test]
fn reader_rejects_shards_with_different_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let first = write_records(dir.path(), &[record(1, false)], 10);

    let mut other = metadata();
    other.tokenizer_sha256 = "ffff".to_string();
    let mut writer = RolloutWriter::create(dir.path(), "other", other, 10).unwrap();
    writer.write(&record(2, false)).unwrap();
    let second = writer.finish().unwrap();

    let paths = [first[0].clone(), second[0].clone()];
    let error = RolloutReader::open(&paths).err().unwrap();
    assert!(
        matches!(
            error,
            DataError::MetadataMismatch {
                key: "tiller.tokenizer_sha256",
                ..
            }
        ),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.contains("ffff"), "{message}");
    assert!(message.contains("4e5f6a7b"), "{message}");
}

#[test]
fn reader_rejects_mixed_topk_shards() {
    let dir = tempfile::tempdir().unwrap();
    let first = write_records(dir.path(), &[record(1, false)], 10);
    let mut writer = RolloutWriter::create(dir.path(), "other", metadata(), 10).unwrap();
    writer.write(&record(2, true)).unwrap();
    let second = writer.finish().unwrap();

    let error = RolloutReader::open(&[&first[0], &second[0]]).err().unwrap();
    assert!(
        matches!(error, DataError::TopkColumnsMismatch { .. }),
        "{error}"
    );
}

#[test]
fn reader_rejects_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    let error = RolloutReader::open(&[dir.path()]).err().unwrap();
    assert!(matches!(error, DataError::NoShards { .. }), "{error}");

    let no_paths: [&std::path::Path; 0] = [];
    let error = RolloutReader::open(&no_paths).err().unwrap();
    assert!(matches!(error, DataError::NoShards { .. }), "{error}");
}

#[test]
fn reader_rejects_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent.parquet");
    let error = RolloutReader::open(&[&missing]).err().unwrap();
    assert!(matches!(error, DataError::Io { .. }), "{error}");
    assert!(error.to_string().contains("absent.parquet"), "{error}");
}

#[test]
fn reader_rejects_non_parquet_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.parquet");
    std::fs::write(&path, b"this is not parquet").unwrap();
    let error = RolloutReader::open(&[&path]).err().unwrap();
    assert!(matches!(error, DataError::Parquet { .. }), "{error}");
    assert!(error.to_string().contains("notes.parquet"), "{error}");
}

#[test]
fn tokenizer_check_names_both_fingerprints() {
    let meta = metadata();
    let dataset = std::path::Path::new("runs/rollouts");
    assert!(check_tokenizer(&meta, "4e5f6a7b", dataset).is_ok());
    assert!(check_tokenizer(&meta, " 4E5F6A7B ", dataset).is_ok());

    let error = check_tokenizer(&meta, "deadbeef", dataset).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("4e5f6a7b"), "{message}");
    assert!(message.contains("deadbeef"), "{message}");
    assert!(message.contains("runs/rollouts"), "{message}");
}
