//! Streaming, validating reading of rollout Parquet files.

use std::fs::File;
use std::path::{Path, PathBuf};

use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use crate::decode::decode_batch;
use crate::schema::{REQUIRED_COLUMNS, TOPK_COLUMNS, check_schema};
use crate::{DataError, RolloutMetadata, RolloutRecord};

/// Reads the shards of one rollout dataset as a stream of validated
/// [`RolloutRecord`]s.
///
/// [`RolloutReader::open`] reads only each file's footer. Records are decoded
/// one record batch at a time, so memory depends on the batch size and on the
/// size of one row group (at most `batch_rows` rows for files written by
/// [`crate::RolloutWriter`]), not on the size of the files.
#[derive(Debug, Clone)]
pub struct RolloutReader {
    files: Vec<PathBuf>,
    /// Row count of each file, from its footer.
    file_rows: Vec<usize>,
    metadata: RolloutMetadata,
    with_topk: bool,
    batch_size: usize,
}

/// Open file footer: what [`RolloutReader::open`] and streaming both need.
struct OpenedFile {
    builder: ParquetRecordBatchReaderBuilder<File>,
    metadata: RolloutMetadata,
    with_topk: bool,
    rows: usize,
}

impl RolloutReader {
    /// Rows per record batch unless [`RolloutReader::with_batch_size`] sets
    /// another value.
    pub const DEFAULT_BATCH_SIZE: usize = 256;

    /// Opens rollout files. Each path is a Parquet file or a directory, from
    /// which every `*.parquet` file is taken in name order (so `.tmp` files
    /// of unfinished shards are skipped). Files are read in the order given.
    ///
    /// # Errors
    ///
    /// - [`DataError::NoShards`] when no file is found.
    /// - [`DataError::Io`] or [`DataError::Parquet`] when a file cannot be
    ///   opened or is not Parquet.
    /// - [`DataError::MissingMetadataKey`], [`DataError::InvalidMetadata`] or
    ///   [`DataError::UnsupportedSchemaVersion`] for bad metadata.
    /// - [`DataError::MissingColumn`], [`DataError::WrongColumnType`] or
    ///   [`DataError::UnpairedTopkColumn`] for a bad schema.
    /// - [`DataError::MetadataMismatch`] or [`DataError::TopkColumnsMismatch`]
    ///   when a file disagrees with the first one.
    pub fn open<P: AsRef<Path>>(paths: &[P]) -> Result<Self, DataError> {
        let files = expand_paths(paths)?;
        let Some(first_path) = files.first() else {
            return Err(DataError::NoShards {
                path: PathBuf::from("(no paths given)"),
            });
        };

        let mut file_rows = Vec::with_capacity(files.len());
        let first = open_file(first_path)?;
        file_rows.push(first.rows);
        for path in &files[1..] {
            let opened = open_file(path)?;
            check_same_dataset(first_path, &first, path, &opened)?;
            file_rows.push(opened.rows);
        }

        tracing::debug!(
            files = files.len(),
            rows = file_rows.iter().sum::<usize>(),
            "opened rollout dataset"
        );
        Ok(RolloutReader {
            files,
            file_rows,
            metadata: first.metadata,
            with_topk: first.with_topk,
            batch_size: Self::DEFAULT_BATCH_SIZE,
        })
    }

    /// Sets the rows per decoded record batch. Values below 1 become 1.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Returns the metadata shared by every file.
    pub fn metadata(&self) -> &RolloutMetadata {
        &self.metadata
    }

    /// Returns the files in reading order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Returns the total row count over all files, from their footers.
    pub fn num_rows(&self) -> usize {
        self.file_rows.iter().sum()
    }

    /// Returns whether the files have the top-k columns, so that every record
    /// carries `topk_token_ids` and `topk_logprobs`.
    pub fn has_topk(&self) -> bool {
        self.with_topk
    }

    /// Streams every record of every file, in order.
    ///
    /// The iterator yields each validation or read error once, naming the file
    /// and 0-based row within it, and then ends.
    pub fn records(&self) -> RolloutRecords {
        RolloutRecords {
            files: self.files.clone(),
            next_file: 0,
            batch_size: self.batch_size,
            current: None,
            pending: Vec::new().into_iter(),
            done: false,
        }
    }
}

/// The file a [`RolloutRecords`] iterator is reading.
struct CurrentFile {
    path: PathBuf,
    batches: ParquetRecordBatchReader,
    with_topk: bool,
    /// Rows of this file already decoded.
    rows_read: usize,
}

/// Iterator over the records of a [`RolloutReader`], created by
/// [`RolloutReader::records`].
pub struct RolloutRecords {
    files: Vec<PathBuf>,
    next_file: usize,
    batch_size: usize,
    current: Option<CurrentFile>,
    /// Decoded records of the current batch not yet yielded.
    pending: std::vec::IntoIter<RolloutRecord>,
    done: bool,
}

impl RolloutRecords {
    /// Decodes the next record batch into `pending`. Returns `Ok(false)` after
    /// the last file.
    fn load_next_batch(&mut self) -> Result<bool, DataError> {
        loop {
            if self.current.is_none() {
                let Some(path) = self.files.get(self.next_file).cloned() else {
                    return Ok(false);
                };
                self.next_file += 1;
                self.current = Some(self.start_file(path)?);
            }
            let Some(current) = self.current.as_mut() else {
                continue;
            };

            match current.batches.next() {
                Some(Ok(batch)) => {
                    let records =
                        decode_batch(&current.path, current.rows_read, &batch, current.with_topk)?;
                    current.rows_read += batch.num_rows();
                    self.pending = records.into_iter();
                    return Ok(true);
                }
                Some(Err(source)) => {
                    return Err(DataError::Arrow {
                        path: current.path.clone(),
                        source,
                    });
                }
                None => self.current = None,
            }
        }
    }

    fn start_file(&self, path: PathBuf) -> Result<CurrentFile, DataError> {
        let opened = open_file(&path)?;
        let arrow_schema = opened.builder.schema().clone();

        // Decode only the columns this crate reads, so other columns stay on disk.
        let topk: &[(&str, _)] = if opened.with_topk { &TOPK_COLUMNS } else { &[] };
        let roots = REQUIRED_COLUMNS
            .iter()
            .chain(topk)
            .filter_map(|(name, _)| arrow_schema.index_of(name).ok());
        let mask = ProjectionMask::roots(opened.builder.parquet_schema(), roots);

        let batches = opened
            .builder
            .with_projection(mask)
            .with_batch_size(self.batch_size)
            .build()
            .map_err(|source| DataError::Parquet {
                path: path.clone(),
                source,
            })?;
        Ok(CurrentFile {
            path,
            batches,
            with_topk: opened.with_topk,
            rows_read: 0,
        })
    }
}

impl Iterator for RolloutRecords {
    type Item = Result<RolloutRecord, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            if let Some(record) = self.pending.next() {
                return Some(Ok(record));
            }
            match self.load_next_batch() {
                Ok(true) => {}
                Ok(false) => {
                    self.done = true;
                    return None;
                }
                Err(error) => {
                    self.done = true;
                    return Some(Err(error));
                }
            }
        }
    }
}

/// Opens a file, reads its footer and checks its metadata and schema.
fn open_file(path: &Path) -> Result<OpenedFile, DataError> {
    let file = File::open(path).map_err(|source| DataError::Io {
        action: "open",
        path: path.to_path_buf(),
        source,
    })?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|source| DataError::Parquet {
            path: path.to_path_buf(),
            source,
        })?;

    let file_metadata = builder.metadata().file_metadata();
    let metadata = RolloutMetadata::from_key_values(path, file_metadata.key_value_metadata())?;
    let rows = usize::try_from(file_metadata.num_rows()).unwrap_or(0);
    let with_topk = check_schema(path, builder.schema())?;
    Ok(OpenedFile {
        builder,
        metadata,
        with_topk,
        rows,
    })
}

fn check_same_dataset(
    first_path: &Path,
    first: &OpenedFile,
    path: &Path,
    opened: &OpenedFile,
) -> Result<(), DataError> {
    if let Some((key, expected, found)) = first
        .metadata
        .differences(&opened.metadata)
        .into_iter()
        .next()
    {
        return Err(DataError::MetadataMismatch {
            first_path: first_path.to_path_buf(),
            path: path.to_path_buf(),
            key,
            expected,
            found,
        });
    }
    if first.with_topk != opened.with_topk {
        let presence = |present: bool| if present { "present" } else { "absent" };
        return Err(DataError::TopkColumnsMismatch {
            first_path: first_path.to_path_buf(),
            path: path.to_path_buf(),
            found: presence(opened.with_topk),
            expected: presence(first.with_topk),
        });
    }
    Ok(())
}

/// Replaces each directory by its `*.parquet` files in name order.
fn expand_paths<P: AsRef<Path>>(paths: &[P]) -> Result<Vec<PathBuf>, DataError> {
    let mut files = Vec::new();
    for path in paths {
        let path = path.as_ref();
        if !path.is_dir() {
            files.push(path.to_path_buf());
            continue;
        }

        let list_error = |source| DataError::Io {
            action: "list",
            path: path.to_path_buf(),
            source,
        };
        let mut shards = Vec::new();
        for entry in std::fs::read_dir(path).map_err(list_error)? {
            let entry_path = entry.map_err(list_error)?.path();
            let is_parquet = entry_path.extension().is_some_and(|ext| ext == "parquet");
            if is_parquet && entry_path.is_file() {
                shards.push(entry_path);
            }
        }
        if shards.is_empty() {
            return Err(DataError::NoShards {
                path: path.to_path_buf(),
            });
        }
        shards.sort();
        files.extend(shards);
    }
    Ok(files)
}
