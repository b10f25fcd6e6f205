//! TensorBoard event files under `<run_dir>/tensorboard/`.
//!
//! Written with `tensorboard-rs` 0.5.9, of which only `add_scalar` and
//! `add_histogram_raw` are implemented (its other `add_*` methods panic).
//!
//! # Resumed runs
//!
//! A resumed run opens a new event file in the same directory and continues
//! from the checkpoint step. Steps after the checkpoint may already have
//! been written by the interrupted run, so the log first reads every existing
//! event file, finds the largest step in them and then drops every write at
//! or below it. No file ever receives a step lower than one already written
//! to the directory. Because a resumed run is bit-identical to the
//! interrupted one, the dropped values equal the ones already on disk.
//!
//! A fresh (not resumed) run moves existing event files into
//! `tensorboard/previous-<unix seconds>/`, so TensorBoard shows the old
//! events as a separate run instead of mixing them with the new ones.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use protobuf::Message;
use tensorboard_proto::event::Event;
use tensorboard_rs::summary_writer::SummaryWriter;

use crate::TrainError;

/// Prefix of TensorBoard event file names.
const EVENT_PREFIX: &str = "events.out.tfevents.";

/// Buckets of the prediction histogram.
const HISTOGRAM_BUCKETS: usize = 30;

/// Writer of one run's TensorBoard events.
pub struct EventLog {
    writer: SummaryWriter,
    dir: PathBuf,
    /// Largest step already on disk before this writer opened; writes at or
    /// below it are dropped.
    written_through: Option<usize>,
}

impl EventLog {
    /// Opens a new event file in `dir`. See the module documentation for
    /// what `resume` changes.
    pub fn open(dir: &Path, resume: bool) -> Result<EventLog, TrainError> {
        fs::create_dir_all(dir).map_err(TrainError::io(dir))?;
        let existing = event_files(dir)?;
        let written_through = if resume {
            let mut max_step = None;
            for file in &existing {
                if let Some(step) = max_step_in(file)? {
                    max_step = Some(max_step.map_or(step, |m: usize| m.max(step)));
                }
            }
            max_step
        } else {
            if !existing.is_empty() {
                archive(dir, &existing)?;
            }
            None
        };
        wait_for_unique_name(dir)?;
        Ok(EventLog {
            writer: SummaryWriter::new(dir),
            dir: dir.to_path_buf(),
            written_through,
        })
    }

    /// Returns the event directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn accepts(&self, step: usize) -> bool {
        self.written_through.is_none_or(|through| step > through)
    }

    /// Writes a scalar, unless `step` is already on disk or `value` is not
    /// finite.
    pub fn scalar(&mut self, tag: &str, value: f64, step: usize) {
        if self.accepts(step) && value.is_finite() {
            self.writer.add_scalar(tag, value as f32, step);
        }
    }

    /// Writes a histogram of `values` in equal-width buckets between their
    /// minimum and maximum; non-finite values are skipped.
    pub fn histogram(&mut self, tag: &str, values: &[f32], step: usize) {
        let finite: Vec<f64> = values
            .iter()
            .map(|&v| f64::from(v))
            .filter(|v| v.is_finite())
            .collect();
        if !self.accepts(step) || finite.is_empty() {
            return;
        }
        let histogram = Histogram::of(&finite, HISTOGRAM_BUCKETS);
        self.writer.add_histogram_raw(
            tag,
            histogram.min,
            histogram.max,
            histogram.count,
            histogram.sum,
            histogram.sum_squares,
            &histogram.limits,
            &histogram.counts,
            step,
        );
    }

    /// Hands buffered events to the writer thread.
    pub fn flush(&mut self) {
        self.writer.flush();
    }
}

/// Summary of values in TensorBoard's histogram layout: bucket `i` counts
/// values in `(limits[i-1], limits[i]]`, the first bucket everything up to
/// `limits[0]`.
#[derive(Debug, Clone, PartialEq)]
struct Histogram {
    min: f64,
    max: f64,
    count: f64,
    sum: f64,
    sum_squares: f64,
    limits: Vec<f64>,
    counts: Vec<f64>,
}

impl Histogram {
    fn of(values: &[f64], buckets: usize) -> Histogram {
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let width = if max > min {
            (max - min) / buckets as f64
        } else {
            1.0
        };
        let limits: Vec<f64> = (1..=buckets).map(|i| min + width * i as f64).collect();
        let mut counts = vec![0.0; buckets];
        for &value in values {
            let bucket = (((value - min) / width).ceil() as usize).clamp(1, buckets) - 1;
            counts[bucket] += 1.0;
        }
        Histogram {
            min,
            max,
            count: values.len() as f64,
            sum: values.iter().sum(),
            sum_squares: values.iter().map(|v| v * v).sum(),
            limits,
            counts,
        }
    }
}

/// Lists the event files directly inside `dir`, sorted by name.
pub fn event_files(dir: &Path) -> Result<Vec<PathBuf>, TrainError> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(TrainError::io(dir))? {
        let entry = entry.map_err(TrainError::io(dir))?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with(EVENT_PREFIX) && entry.path().is_file() {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// Reads the events of a TFRecord event file. A record cut short (by a
/// crash while writing) ends the list instead of failing.
pub fn read_events(path: &Path) -> Result<Vec<Event>, TrainError> {
    let mut bytes = Vec::new();
    fs::File::open(path)
        .and_then(|mut file| file.read_to_end(&mut bytes))
        .map_err(TrainError::io(path))?;
    let mut events = Vec::new();
    let mut offset = 0usize;
    // TFRecord framing: u64 length, u32 masked CRC of the length, the data,
    // u32 masked CRC of the data; all little-endian.
    while offset + 12 <= bytes.len() {
        let mut length_bytes = [0u8; 8];
        length_bytes.copy_from_slice(&bytes[offset..offset + 8]);
        let length = u64::from_le_bytes(length_bytes) as usize;
        let start = offset + 12;
        let Some(end) = start.checked_add(length) else {
            break;
        };
        if end + 4 > bytes.len() {
            break;
        }
        let event =
            Event::parse_from_bytes(&bytes[start..end]).map_err(|err| TrainError::TensorBoard {
                path: path.to_path_buf(),
                reason: format!("invalid event record at byte {offset}: {err}"),
            })?;
        events.push(event);
        offset = end + 4;
    }
    Ok(events)
}

/// Returns the largest step of a summary event in `path`.
fn max_step_in(path: &Path) -> Result<Option<usize>, TrainError> {
    Ok(read_events(path)?
        .iter()
        .filter(|event| event.has_summary())
        .map(|event| event.get_step().max(0) as usize)
        .max())
}

fn archive(dir: &Path, files: &[PathBuf]) -> Result<(), TrainError> {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut target = dir.join(format!("previous-{seconds}"));
    let mut suffix = 1;
    while target.exists() {
        target = dir.join(format!("previous-{seconds}-{suffix}"));
        suffix += 1;
    }
    fs::create_dir_all(&target).map_err(TrainError::io(&target))?;
    for file in files {
        let name = file.file_name().unwrap_or_default();
        fs::rename(file, target.join(name)).map_err(TrainError::io(file))?;
    }
    tracing::info!(
        files = files.len(),
        dir = %target.display(),
        "moved earlier TensorBoard event files aside for a fresh run"
    );
    Ok(())
}

/// `tensorboard-rs` names a file after the current second and the process
/// id and truncates an existing file of that name, so a second writer opened
/// within the same second by the same process would erase the first file.
/// Waits until the name is free.
fn wait_for_unique_name(dir: &Path) -> Result<(), TrainError> {
    let pid = std::process::id();
    for _ in 0..30 {
        let seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let prefix = format!("{EVENT_PREFIX}{seconds:010}.");
        let suffix = format!(".{pid}.0");
        let name_in_use = event_files(dir)?.iter().any(|file| {
            let name = file.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with(&prefix) && name.ends_with(&suffix)
        });
        if !name_in_use {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(TrainError::TensorBoard {
        path: dir.to_path_buf(),
        reason: "no free event file name after waiting 3 s".to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps_by_tag(path: &Path, tag: &str) -> Vec<i64> {
        read_events(path)
            .unwrap()
            .iter()
            .filter(|e| e.has_summary())
            .filter(|e| {
                e.get_summary()
                    .get_value()
                    .iter()
                    .any(|v| v.get_tag() == tag)
            })
            .map(|e| e.get_step())
            .collect()
    }

    #[test]
    fn histogram_buckets_cover_values() {
        // Values 0, 1, 2, 3 in 3 buckets of width 1: limits 1, 2, 3;
        // bucket (-, 1] counts 0 and 1, (1, 2] counts 2, (2, 3] counts 3.
        let h = Histogram::of(&[0.0, 1.0, 2.0, 3.0], 3);
        assert_eq!(h.limits, vec![1.0, 2.0, 3.0]);
        assert_eq!(h.counts, vec![2.0, 1.0, 1.0]);
        assert_eq!(h.sum, 6.0);
        assert_eq!(h.sum_squares, 14.0);
    }

    #[test]
    fn resumed_log_never_rewrites_steps() {
        let dir = tempfile::tempdir().unwrap();
        let events = dir.path().join("tensorboard");
        {
            let mut log = EventLog::open(&events, false).unwrap();
            for step in 1..=5 {
                log.scalar("train/loss", step as f64, step);
            }
        }
        {
            // A resume from a checkpoint at step 3 replays steps 4 and 5.
            let mut log = EventLog::open(&events, true).unwrap();
            for step in 4..=8 {
                log.scalar("train/loss", step as f64, step);
            }
            log.histogram("val/predictions", &[0.5, 1.5], 8);
        }
        let files = event_files(&events).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(steps_by_tag(&files[0], "train/loss"), vec![1, 2, 3, 4, 5]);
        assert_eq!(steps_by_tag(&files[1], "train/loss"), vec![6, 7, 8]);
        assert_eq!(steps_by_tag(&files[1], "val/predictions"), vec![8]);
    }

    #[test]
    fn fresh_run_archives_old_events() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut log = EventLog::open(dir.path(), false).unwrap();
            log.scalar("train/loss", 1.0, 1);
        }
        {
            let mut log = EventLog::open(dir.path(), false).unwrap();
            log.scalar("train/loss", 1.0, 1);
        }
        assert_eq!(event_files(dir.path()).unwrap().len(), 1);
        let archived: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("previous-"))
            .collect();
        assert_eq!(archived.len(), 1);
    }
}
