//! Evaluation result rows and their CSV, Parquet and TensorBoard outputs.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, Float64Array, Float64Builder, RecordBatch, StringArray, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};

use crate::error::DecodeError;

/// Kind of a row's KL value: exact, a bound or an estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KlKind {
    /// Sum over positions of the exact per-token KL along sampled responses.
    Exact,
    /// An upper bound.
    Bound,
    /// An estimate that is neither exact nor a bound.
    Estimate,
}

impl KlKind {
    /// Returns the lowercase name used in files and plot legends.
    pub fn as_str(self) -> &'static str {
        match self {
            KlKind::Exact => "exact",
            KlKind::Bound => "bound",
            KlKind::Estimate => "estimate",
        }
    }

    fn parse(text: &str) -> Option<KlKind> {
        match text {
            "exact" => Some(KlKind::Exact),
            "bound" => Some(KlKind::Bound),
            "estimate" => Some(KlKind::Estimate),
            _ => None,
        }
    }
}

/// One evaluated decoding setting, one row of `results.csv`.
///
/// Rewards are averaged per prompt first, and the 95% interval is the
/// normal approximation over those per-prompt means.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRow {
    /// Decoding method: `best_of_n`, `blockwise` or `tokenwise`.
    pub method: String,
    /// Human-readable setting, such as `N=4`, `K=2,M=8` or `lambda=0.5`.
    pub setting: String,
    /// The swept parameter as a number (N, K or λ).
    pub parameter: f64,
    /// Number of prompts evaluated.
    pub prompts: u64,
    /// Number of responses per prompt behind the reward mean.
    pub samples_per_prompt: u64,
    /// Mean reward over prompts.
    pub reward_mean: f64,
    /// Lower end of the 95% interval of the mean reward (NaN for one prompt).
    pub reward_ci95_low: f64,
    /// Upper end of the 95% interval of the mean reward (NaN for one prompt).
    pub reward_ci95_high: f64,
    /// KL(π ‖ p) in nats, averaged over prompts.
    pub kl: f64,
    /// Kind of `kl`: exact, a bound or an estimate.
    pub kl_kind: KlKind,
    /// Win rate against base samples of the same prompt, ties counted one half.
    pub win_rate: Option<f64>,
    /// Win rate against base samples with ties counted as losses.
    pub win_rate_strict: Option<f64>,
    /// Tokens sampled from the base model, discarded blocks included.
    pub tokens_generated: u64,
    /// Wall-clock time of the setting, in seconds.
    pub wall_time_s: f64,
    /// Remarks on how the numbers were obtained, where that is not plain
    /// sampling.
    pub notes: String,
}

/// Writes `rows` to `path` as CSV with a header line.
///
/// A missing win rate is an empty field, and NaN is written as `NaN`.
pub fn write_results_csv(path: &Path, rows: &[ResultRow]) -> Result<(), DecodeError> {
    let csv_error = |source| DecodeError::Csv {
        path: path.to_path_buf(),
        source,
    };
    let mut writer = csv::Writer::from_path(path).map_err(csv_error)?;
    for row in rows {
        writer.serialize(row).map_err(csv_error)?;
    }
    writer.flush().map_err(|source| DecodeError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads rows written by [`write_results_csv`].
pub fn read_results_csv(path: &Path) -> Result<Vec<ResultRow>, DecodeError> {
    let csv_error = |source| DecodeError::Csv {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = csv::Reader::from_path(path).map_err(csv_error)?;
    reader
        .deserialize()
        .map(|row| row.map_err(csv_error))
        .collect()
}

fn results_schema() -> Schema {
    Schema::new(vec![
        Field::new("method", DataType::Utf8, false),
        Field::new("setting", DataType::Utf8, false),
        Field::new("parameter", DataType::Float64, false),
        Field::new("prompts", DataType::UInt64, false),
        Field::new("samples_per_prompt", DataType::UInt64, false),
        Field::new("reward_mean", DataType::Float64, false),
        Field::new("reward_ci95_low", DataType::Float64, false),
        Field::new("reward_ci95_high", DataType::Float64, false),
        Field::new("kl", DataType::Float64, false),
        Field::new("kl_kind", DataType::Utf8, false),
        Field::new("win_rate", DataType::Float64, true),
        Field::new("win_rate_strict", DataType::Float64, true),
        Field::new("tokens_generated", DataType::UInt64, false),
        Field::new("wall_time_s", DataType::Float64, false),
        Field::new("notes", DataType::Utf8, false),
    ])
}

fn float_column(rows: &[ResultRow], get: impl Fn(&ResultRow) -> f64) -> ArrayRef {
    Arc::new(rows.iter().map(get).collect::<Float64Array>())
}

fn optional_float_column(rows: &[ResultRow], get: impl Fn(&ResultRow) -> Option<f64>) -> ArrayRef {
    let mut builder = Float64Builder::with_capacity(rows.len());
    for row in rows {
        builder.append_option(get(row));
    }
    Arc::new(builder.finish())
}

fn string_column(rows: &[ResultRow], get: impl Fn(&ResultRow) -> &str) -> ArrayRef {
    Arc::new(rows.iter().map(|r| Some(get(r))).collect::<StringArray>())
}

fn count_column(rows: &[ResultRow], get: impl Fn(&ResultRow) -> u64) -> ArrayRef {
    Arc::new(rows.iter().map(get).collect::<UInt64Array>())
}

/// Writes `rows` to `path` as a single-row-group Parquet file.
///
/// Columns and types follow [`ResultRow`]: utf8 strings, float64 numbers,
/// uint64 counts, and nullable float64 win rates.
pub fn write_results_parquet(path: &Path, rows: &[ResultRow]) -> Result<(), DecodeError> {
    let schema = Arc::new(results_schema());
    let columns = vec![
        string_column(rows, |r| &r.method),
        string_column(rows, |r| &r.setting),
        float_column(rows, |r| r.parameter),
        count_column(rows, |r| r.prompts),
        count_column(rows, |r| r.samples_per_prompt),
        float_column(rows, |r| r.reward_mean),
        float_column(rows, |r| r.reward_ci95_low),
        float_column(rows, |r| r.reward_ci95_high),
        float_column(rows, |r| r.kl),
        string_column(rows, |r| r.kl_kind.as_str()),
        optional_float_column(rows, |r| r.win_rate),
        optional_float_column(rows, |r| r.win_rate_strict),
        count_column(rows, |r| r.tokens_generated),
        float_column(rows, |r| r.wall_time_s),
        string_column(rows, |r| &r.notes),
    ];
    let parquet_error = |source| DecodeError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let batch = RecordBatch::try_new(schema.clone(), columns)
        .map_err(|source| parquet_error(source.into()))?;
    let file = File::create(path).map_err(|source| DecodeError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut writer = ArrowWriter::try_new(file, schema, None).map_err(parquet_error)?;
    writer.write(&batch).map_err(parquet_error)?;
    writer.close().map_err(parquet_error)?;
    Ok(())
}

fn column<'a, T: 'static>(
    batch: &'a RecordBatch,
    path: &Path,
    name: &str,
) -> Result<&'a T, DecodeError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| DecodeError::ResultsSchema {
            path: path.to_path_buf(),
            column: name.to_string(),
        })
}

/// Reads rows written by [`write_results_parquet`].
pub fn read_results_parquet(path: &Path) -> Result<Vec<ResultRow>, DecodeError> {
    let parquet_error = |source| DecodeError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(|source| DecodeError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(parquet_error)?
        .build()
        .map_err(parquet_error)?;

    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|source| parquet_error(source.into()))?;
        let method = column::<StringArray>(&batch, path, "method")?;
        let setting = column::<StringArray>(&batch, path, "setting")?;
        let parameter = column::<Float64Array>(&batch, path, "parameter")?;
        let prompts = column::<UInt64Array>(&batch, path, "prompts")?;
        let samples = column::<UInt64Array>(&batch, path, "samples_per_prompt")?;
        let reward_mean = column::<Float64Array>(&batch, path, "reward_mean")?;
        let low = column::<Float64Array>(&batch, path, "reward_ci95_low")?;
        let high = column::<Float64Array>(&batch, path, "reward_ci95_high")?;
        let kl = column::<Float64Array>(&batch, path, "kl")?;
        let kl_kind = column::<StringArray>(&batch, path, "kl_kind")?;
        let win_rate = column::<Float64Array>(&batch, path, "win_rate")?;
        let strict = column::<Float64Array>(&batch, path, "win_rate_strict")?;
        let tokens = column::<UInt64Array>(&batch, path, "tokens_generated")?;
        let wall = column::<Float64Array>(&batch, path, "wall_time_s")?;
        let notes = column::<StringArray>(&batch, path, "notes")?;

        for i in 0..batch.num_rows() {
            let kind_text = kl_kind.value(i);
            let kind = KlKind::parse(kind_text).ok_or_else(|| DecodeError::InvalidKlKind {
                path: path.to_path_buf(),
                row: rows.len(),
                value: kind_text.to_string(),
            })?;
            let optional = |array: &Float64Array| (!array.is_null(i)).then(|| array.value(i));
            rows.push(ResultRow {
                method: method.value(i).to_string(),
                setting: setting.value(i).to_string(),
                parameter: parameter.value(i),
                prompts: prompts.value(i),
                samples_per_prompt: samples.value(i),
                reward_mean: reward_mean.value(i),
                reward_ci95_low: low.value(i),
                reward_ci95_high: high.value(i),
                kl: kl.value(i),
                kl_kind: kind,
                win_rate: optional(win_rate),
                win_rate_strict: optional(strict),
                tokens_generated: tokens.value(i),
                wall_time_s: wall.value(i),
                notes: notes.value(i).to_string(),
            });
        }
    }
    Ok(rows)
}

/// Returns the TensorBoard tag suffix for a row's KL: `kl` for the tightest
/// kind the method has (exact, then estimate, then bound), `kl_<kind>` for
/// any other kind.
fn kl_tag_suffix(rows: &[ResultRow], row: &ResultRow) -> String {
    let rank = |kind: KlKind| match kind {
        KlKind::Exact => 0,
        KlKind::Estimate => 1,
        KlKind::Bound => 2,
    };
    let tightest = rows
        .iter()
        .filter(|r| r.method == row.method)
        .map(|r| r.kl_kind)
        .min_by_key(|k| rank(*k));
    if tightest == Some(row.kl_kind) {
        "kl".to_string()
    } else {
        format!("kl_{}", row.kl_kind.as_str())
    }
}

/// Writes the eval scalars of `rows` as TensorBoard events under `logdir`.
///
/// Tags are `eval/<method>/reward`, `eval/<method>/kl` (and
/// `eval/<method>/kl_bound` for a method that also has a tighter KL) and
/// `eval/<method>/parameter`. The step is the setting's position in the
/// method's sweep, in row order, and the `parameter` scalar maps each step
/// back to N, K or λ. Returns the directory the event file was written to.
///
/// NOTE: tensorboard-rs 0.5.9 names event files by the current second and the
/// process id, so two writers opened on one directory within one second by
/// the same process overwrite each other. Give eval its own directory.
pub fn write_tensorboard(logdir: &Path, rows: &[ResultRow]) -> Result<PathBuf, DecodeError> {
    // tensorboard-rs panics when it cannot create the directory, so create it
    // first and return the error instead.
    fs::create_dir_all(logdir).map_err(|source| DecodeError::Io {
        path: logdir.to_path_buf(),
        source,
    })?;
    let mut writer = tensorboard_rs::summary_writer::SummaryWriter::new(logdir);
    let mut steps: BTreeMap<(String, String), usize> = BTreeMap::new();
    for row in rows {
        let step_key = (row.method.clone(), row.setting.clone());
        let next_step = steps.iter().filter(|((m, _), _)| *m == row.method).count();
        let step = *steps.entry(step_key).or_insert(next_step);
        let prefix = format!("eval/{}", row.method);
        writer.add_scalar(&format!("{prefix}/reward"), row.reward_mean as f32, step);
        writer.add_scalar(&format!("{prefix}/parameter"), row.parameter as f32, step);
        let kl_tag = format!("{prefix}/{}", kl_tag_suffix(rows, row));
        writer.add_scalar(&kl_tag, row.kl as f32, step);
    }
    writer.flush();
    // Dropping the writer joins its background thread, which writes and
    // flushes the file.
    drop(writer);
    Ok(logdir.to_path_buf())
}
