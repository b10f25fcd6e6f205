//! Reward-vs-KL frontier plot of evaluation results.
//!
//! Both backends lay out text with system fonts found through fontconfig
//! (plotters' `ttf` feature), so a machine without fonts gets a
//! [`DecodeError::Plot`] instead of a picture.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::DecodeError;
use crate::results::ResultRow;

/// Size of both images, in pixels.
const PLOT_SIZE: (u32, u32) = (960, 640);

/// One line of the plot: the points of one method and KL kind, sorted by KL.
struct Series {
    label: String,
    /// `(kl, reward_mean, ci_low, ci_high)` per setting.
    points: Vec<(f64, f64, f64, f64)>,
}

fn collect_series(rows: &[ResultRow]) -> Vec<Series> {
    let mut grouped: BTreeMap<String, Vec<(f64, f64, f64, f64)>> = BTreeMap::new();
    for row in rows {
        if !row.kl.is_finite() || !row.reward_mean.is_finite() {
            continue;
        }
        let label = format!("{} ({})", row.method, row.kl_kind.as_str());
        grouped.entry(label).or_default().push((
            row.kl,
            row.reward_mean,
            row.reward_ci95_low,
            row.reward_ci95_high,
        ));
    }
    grouped
        .into_iter()
        .map(|(label, mut points)| {
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            Series { label, points }
        })
        .collect()
}

/// Returns `(x_max, y_min, y_max)` covering every point and finite interval.
fn axis_ranges(series: &[Series]) -> (f64, f64, f64) {
    let mut x_max: f64 = 0.0;
    let mut y_min = f64::INFINITY;
    let mut y_max = f64::NEG_INFINITY;
    for &(kl, mean, low, high) in series.iter().flat_map(|s| &s.points) {
        x_max = x_max.max(kl);
        for y in [mean, low, high] {
            if y.is_finite() {
                y_min = y_min.min(y);
                y_max = y_max.max(y);
            }
        }
    }
    let x_max = if x_max > 0.0 { x_max * 1.05 } else { 1.0 };
    let pad = if y_max > y_min {
        0.05 * (y_max - y_min)
    } else {
        0.5
    };
    (x_max, y_min - pad, y_max + pad)
}

fn draw_frontier<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    series: &[Series],
    title: &str,
) -> Result<(), String> {
    let (x_max, y_min, y_max) = axis_ranges(series);
    area.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..x_max, y_min..y_max)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("KL(π ‖ p) [nats]")
        .y_desc("mean reward")
        .draw()
        .map_err(|e| e.to_string())?;

    for (index, line) in series.iter().enumerate() {
        let color = Palette99::pick(index).to_rgba();
        let xy: Vec<(f64, f64)> = line.points.iter().map(|p| (p.0, p.1)).collect();
        chart
            .draw_series(LineSeries::new(xy.clone(), color.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(line.label.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(xy.iter().map(|&p| Circle::new(p, 4, color.filled())))
            .map_err(|e| e.to_string())?;
        // Vertical bars for the 95% interval of the mean reward, where defined.
        let bars = line
            .points
            .iter()
            .filter(|p| p.2.is_finite() && p.3.is_finite())
            .map(|p| PathElement::new(vec![(p.0, p.2), (p.0, p.3)], color.stroke_width(1)));
        chart.draw_series(bars).map_err(|e| e.to_string())?;
    }

    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|e| e.to_string())?;
    area.present().map_err(|e| e.to_string())?;
    Ok(())
}

fn plot_error(path: &Path, message: String) -> DecodeError {
    DecodeError::Plot {
        path: path.to_path_buf(),
        message,
    }
}

/// Draws the reward-vs-KL frontier of `rows` to `frontier.svg` and
/// `frontier.png` in `dir`, one line per method and KL kind, with the 95%
/// interval of the mean reward as vertical bars. Returns both paths.
///
/// Rows with a non-finite KL or mean reward are left out. Returns an error
/// when no row is left, or when drawing fails, for example because no
/// system font is found.
pub fn plot_frontier(
    dir: &Path,
    rows: &[ResultRow],
    title: &str,
) -> Result<(PathBuf, PathBuf), DecodeError> {
    let svg_path = dir.join("frontier.svg");
    let png_path = dir.join("frontier.png");
    let series = collect_series(rows);
    if series.is_empty() {
        return Err(DecodeError::EmptyStatistic {
            what: "frontier plot points (rows with finite KL and reward)".to_string(),
        });
    }

    {
        let area = SVGBackend::new(&svg_path, PLOT_SIZE).into_drawing_area();
        draw_frontier(&area, &series, title).map_err(|m| plot_error(&svg_path, m))?;
    }
    {
        let area = BitMapBackend::new(&png_path, PLOT_SIZE).into_drawing_area();
        draw_frontier(&area, &series, title).map_err(|m| plot_error(&png_path, m))?;
    }
    Ok((svg_path, png_path))
}
