//! Sharded, crash-safe writing of rollout Parquet files.

use std::fs::File;
use std::path::{Path, PathBuf};

use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::encode::BatchBuilder;
use crate::metadata::SCHEMA_VERSION;
use crate::schema::rollout_schema;
use crate::validate::validate_record;
use crate::{DataError, RolloutMetadata, RolloutRecord};

/// Settings of a [`RolloutWriter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutWriterOptions {
    /// Rows per shard file, at least 1. The last shard may have fewer.
    pub rows_per_shard: usize,
    /// Rows buffered in memory before they are written as one record batch
    /// and one Parquet row group, which also bounds a reader's memory per
    /// file. At least 1. Default 1024.
    pub batch_rows: usize,
    /// Zstandard compression level, 1 (fastest) to 22. Default 3.
    pub zstd_level: i32,
}

impl RolloutWriterOptions {
    /// Creates options with `rows_per_shard` and the default batch size and
    /// compression level.
    pub fn new(rows_per_shard: usize) -> Self {
        RolloutWriterOptions {
            rows_per_shard,
            batch_rows: 1024,
            zstd_level: 3,
        }
    }
}

/// A shard being written under its temporary name.
struct OpenShard {
    final_path: PathBuf,
    temp_path: PathBuf,
    writer: ArrowWriter<File>,
    /// Rows appended to this shard, including rows still buffered.
    rows: usize,
}

/// Writes [`RolloutRecord`]s to zstd-compressed Parquet shards named
/// `<file_prefix>-00000.parquet`, `<file_prefix>-00001.parquet`, … in one
/// directory, starting a new shard every `rows_per_shard` rows.
///
/// Each shard is written as `<name>.tmp` and renamed to its final name only
/// once its footer is written and synced, so a crash leaves at most a `.tmp`
/// file, which readers ignore, and never a truncated `.parquet` file.
/// Dropping the writer without calling [`RolloutWriter::finish`] deletes the
/// shard in progress but keeps the shards already completed.
///
/// The first record fixes whether the dataset has the top-k columns, and every
/// later record must have top-k lists exactly when the first one did.
pub struct RolloutWriter {
    dir: PathBuf,
    file_prefix: String,
    metadata: RolloutMetadata,
    options: RolloutWriterOptions,
    properties: WriterProperties,
    /// Whether records carry top-k lists, fixed by the first record.
    with_topk: Option<bool>,
    batch: Option<BatchBuilder>,
    shard: Option<OpenShard>,
    next_shard_index: usize,
    completed: Vec<PathBuf>,
}

impl RolloutWriter {
    /// Creates a writer with [`RolloutWriterOptions::new`]`(rows_per_shard)`.
    /// Creates `dir` if it does not exist.
    ///
    /// # Errors
    ///
    /// See [`RolloutWriter::create_with_options`].
    pub fn create(
        dir: &Path,
        file_prefix: &str,
        metadata: RolloutMetadata,
        rows_per_shard: usize,
    ) -> Result<Self, DataError> {
        Self::create_with_options(
            dir,
            file_prefix,
            metadata,
            RolloutWriterOptions::new(rows_per_shard),
        )
    }

    /// Creates a writer with explicit options. Creates `dir` if it does not
    /// exist, but writes no file before the first record or
    /// [`RolloutWriter::finish`].
    ///
    /// # Errors
    ///
    /// - [`DataError::InvalidWriterSetting`] for a zero size, an invalid zstd
    ///   level, a prefix that is empty or contains a path separator, or
    ///   metadata whose schema version is not [`SCHEMA_VERSION`].
    /// - [`DataError::ShardExists`] if `dir` already contains a shard with
    ///   this prefix.
    /// - [`DataError::Io`] if `dir` cannot be created or listed.
    pub fn create_with_options(
        dir: &Path,
        file_prefix: &str,
        metadata: RolloutMetadata,
        options: RolloutWriterOptions,
    ) -> Result<Self, DataError> {
        let invalid = |setting: &'static str, value: String, reason: &'static str| {
            DataError::InvalidWriterSetting {
                path: dir.to_path_buf(),
                setting,
                value,
                reason,
            }
        };
        if options.rows_per_shard == 0 {
            return Err(invalid("rows_per_shard", "0".into(), "must be at least 1"));
        }
        if options.batch_rows == 0 {
            return Err(invalid("batch_rows", "0".into(), "must be at least 1"));
        }
        if file_prefix.is_empty() || file_prefix.contains(['/', '\\']) {
            return Err(invalid(
                "file_prefix",
                format!("{file_prefix:?}"),
                "must be a non-empty file name without path separators",
            ));
        }
        if metadata.schema_version != SCHEMA_VERSION {
            return Err(invalid(
                "metadata.schema_version",
                metadata.schema_version.to_string(),
                "must equal tiller_data::SCHEMA_VERSION; build metadata with RolloutMetadata::new",
            ));
        }
        let zstd_level = ZstdLevel::try_new(options.zstd_level).map_err(|_| {
            invalid(
                "zstd_level",
                options.zstd_level.to_string(),
                "must be a zstd level from 1 to 22",
            )
        })?;

        std::fs::create_dir_all(dir).map_err(|source| DataError::Io {
            action: "create directory",
            path: dir.to_path_buf(),
            source,
        })?;
        check_no_existing_shard(dir, file_prefix)?;

        let properties = WriterProperties::builder()
            .set_compression(Compression::ZSTD(zstd_level))
            .set_max_row_group_row_count(Some(options.batch_rows))
            .set_key_value_metadata(Some(metadata.to_key_values()))
            .build();

        Ok(RolloutWriter {
            dir: dir.to_path_buf(),
            file_prefix: file_prefix.to_string(),
            metadata,
            options,
            properties,
            with_topk: None,
            batch: None,
            shard: None,
            next_shard_index: 0,
            completed: Vec::new(),
        })
    }

    /// Returns the metadata written to every shard.
    pub fn metadata(&self) -> &RolloutMetadata {
        &self.metadata
    }

    /// Validates and appends one record.
    ///
    /// A record rejected by validation or by the top-k presence check leaves
    /// the writer unchanged, so the caller may skip it and continue.
    ///
    /// # Errors
    ///
    /// - A validation error (see the crate documentation) naming the shard
    ///   and the 0-based row within it.
    /// - [`DataError::TopkPresenceChanged`] when the record's top-k presence
    ///   differs from the first record's.
    /// - [`DataError::Io`] or [`DataError::Parquet`] when writing fails.
    pub fn write(&mut self, record: &RolloutRecord) -> Result<(), DataError> {
        let row = self.shard.as_ref().map_or(0, |shard| shard.rows);
        let path = self.current_shard_path();
        validate_record(&path, row, record)?;

        let has_topk = record.topk_token_ids.is_some();
        let with_topk = *self.with_topk.get_or_insert(has_topk);
        if has_topk != with_topk {
            return Err(DataError::TopkPresenceChanged {
                path,
                row,
                found: if has_topk { "has" } else { "lacks" },
                expected: if with_topk { "had" } else { "lacked" },
            });
        }

        if self.shard.is_none() {
            self.shard = Some(self.open_shard(with_topk)?);
        }
        let batch = self
            .batch
            .get_or_insert_with(|| BatchBuilder::new(with_topk));
        batch.append(record);
        let batch_full = batch.rows() >= self.options.batch_rows;
        let shard_rows = match self.shard.as_mut() {
            Some(shard) => {
                shard.rows += 1;
                shard.rows
            }
            None => 0,
        };

        if shard_rows >= self.options.rows_per_shard {
            self.close_shard()?;
        } else if batch_full {
            self.flush_batch()?;
        }
        Ok(())
    }

    /// Writes buffered rows, completes the last shard and returns the paths
    /// of all shards in order.
    ///
    /// A writer that received no records writes one shard with zero rows and
    /// no top-k columns, so the dataset and its metadata still exist.
    ///
    /// # Errors
    ///
    /// [`DataError::Io`] or [`DataError::Parquet`] when writing, syncing or
    /// renaming fails.
    pub fn finish(mut self) -> Result<Vec<PathBuf>, DataError> {
        if self.shard.is_none() && self.completed.is_empty() {
            self.shard = Some(self.open_shard(false)?);
        }
        self.close_shard()?;
        Ok(std::mem::take(&mut self.completed))
    }

    fn shard_path(&self, index: usize) -> PathBuf {
        self.dir
            .join(format!("{}-{index:05}.parquet", self.file_prefix))
    }

    /// Final path of the shard that the next record goes to.
    fn current_shard_path(&self) -> PathBuf {
        match &self.shard {
            Some(shard) => shard.final_path.clone(),
            None => self.shard_path(self.next_shard_index),
        }
    }

    fn open_shard(&mut self, with_topk: bool) -> Result<OpenShard, DataError> {
        let final_path = self.shard_path(self.next_shard_index);
        if final_path.exists() {
            return Err(DataError::ShardExists { path: final_path });
        }
        let mut temp_name = final_path.clone().into_os_string();
        temp_name.push(".tmp");
        let temp_path = PathBuf::from(temp_name);

        let file = File::create(&temp_path).map_err(|source| DataError::Io {
            action: "create",
            path: temp_path.clone(),
            source,
        })?;
        let writer = ArrowWriter::try_new(
            file,
            rollout_schema(with_topk),
            Some(self.properties.clone()),
        )
        .map_err(|source| DataError::Parquet {
            path: temp_path.clone(),
            source,
        })?;
        self.next_shard_index += 1;
        Ok(OpenShard {
            final_path,
            temp_path,
            writer,
            rows: 0,
        })
    }

    /// Writes the buffered rows to the open shard as one record batch.
    fn flush_batch(&mut self) -> Result<(), DataError> {
        let (Some(shard), Some(batch)) = (self.shard.as_mut(), self.batch.as_mut()) else {
            return Ok(());
        };
        if batch.rows() == 0 {
            return Ok(());
        }
        let record_batch = batch.finish().map_err(|source| DataError::Arrow {
            path: shard.temp_path.clone(),
            source,
        })?;
        shard
            .writer
            .write(&record_batch)
            .map_err(|source| DataError::Parquet {
                path: shard.temp_path.clone(),
                source,
            })
    }

    /// Writes the open shard's footer, syncs it and renames it to its final
    /// name. Does nothing when no shard is open.
    fn close_shard(&mut self) -> Result<(), DataError> {
        self.flush_batch()?;
        let Some(shard) = self.shard.take() else {
            return Ok(());
        };
        let OpenShard {
            final_path,
            temp_path,
            writer,
            rows,
        } = shard;

        let result = finalize_file(writer, &temp_path, &final_path);
        if result.is_err() {
            // The temporary file is incomplete, so nothing in it is worth keeping.
            let _ = std::fs::remove_file(&temp_path);
        }
        result?;

        tracing::info!(path = %final_path.display(), rows, "wrote rollout shard");
        self.completed.push(final_path);
        Ok(())
    }
}

impl Drop for RolloutWriter {
    fn drop(&mut self) {
        if let Some(shard) = self.shard.take() {
            tracing::warn!(
                path = %shard.temp_path.display(),
                rows = shard.rows,
                "rollout writer dropped before finish; deleting the incomplete shard"
            );
            let _ = std::fs::remove_file(&shard.temp_path);
        }
    }
}

fn finalize_file(
    writer: ArrowWriter<File>,
    temp_path: &Path,
    final_path: &Path,
) -> Result<(), DataError> {
    // `into_inner` writes the footer and returns the file.
    let file = writer.into_inner().map_err(|source| DataError::Parquet {
        path: temp_path.to_path_buf(),
        source,
    })?;
    file.sync_all().map_err(|source| DataError::Io {
        action: "sync",
        path: temp_path.to_path_buf(),
        source,
    })?;
    drop(file);

    std::fs::rename(temp_path, final_path).map_err(|source| DataError::Io {
        action: "rename to its final name",
        path: temp_path.to_path_buf(),
        source,
    })?;
    sync_parent_dir(final_path)
}

/// Syncs the directory entry of a renamed file so the rename survives a
/// power loss. Only Unix can open a directory as a file for this.
#[cfg(unix)]
fn sync_parent_dir(path: &Path) -> Result<(), DataError> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    let dir = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(|source| DataError::Io {
            action: "sync directory",
            path: dir.to_path_buf(),
            source,
        })
}

#[cfg(not(unix))]
fn sync_parent_dir(_path: &Path) -> Result<(), DataError> {
    Ok(())
}

/// Rejects a directory that already contains `<prefix>-NNNNN.parquet`, so a new
/// run never mixes its shards with an old one's.
fn check_no_existing_shard(dir: &Path, file_prefix: &str) -> Result<(), DataError> {
    let entries = std::fs::read_dir(dir).map_err(|source| DataError::Io {
        action: "list",
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| DataError::Io {
            action: "list",
            path: dir.to_path_buf(),
            source,
        })?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        if is_shard_name(name, file_prefix) {
            return Err(DataError::ShardExists { path: entry.path() });
        }
    }
    Ok(())
}

fn is_shard_name(name: &str, file_prefix: &str) -> bool {
    name.strip_prefix(file_prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .and_then(|rest| rest.strip_suffix(".parquet"))
        .is_some_and(|digits| digits.len() == 5 && digits.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::is_shard_name;

    #[test]
    fn shard_name_matching() {
        assert!(is_shard_name("rollouts-00000.parquet", "rollouts"));
        assert!(is_shard_name("rollouts-01234.parquet", "rollouts"));
        assert!(!is_shard_name("rollouts-00000.parquet.tmp", "rollouts"));
        assert!(!is_shard_name("rollouts-0000.parquet", "rollouts"));
        assert!(!is_shard_name("other-00000.parquet", "rollouts"));
        assert!(!is_shard_name("rollouts-x0000.parquet", "rollouts"));
    }
}
