//! Summary statistics for evaluation: means with confidence intervals, win
//! rates with ties, and an argmax that breaks ties at random.

use rand::Rng;

use crate::error::DecodeError;

/// Two-sided 97.5% quantile of the standard normal distribution, used for a
/// 95% confidence interval under the normal approximation.
pub const Z_95: f64 = 1.959_963_984_540_054;

/// Sample mean with a 95% confidence interval.
///
/// The interval is the normal approximation `mean ± 1.96 · sd / sqrt(n)`,
/// with the sample standard deviation `sd` using the `n − 1` denominator.
/// It is not a Student-t interval, so it is too narrow for small `n`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanCi {
    /// Number of values.
    pub n: usize,
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation (denominator `n − 1`); NaN when `n == 1`.
    pub sd: f64,
    /// Half-width `1.96 · sd / sqrt(n)` of the interval; NaN when `n == 1`.
    pub half_width: f64,
}

impl MeanCi {
    /// Lower end of the interval, `mean − half_width`.
    pub fn lower(&self) -> f64 {
        self.mean - self.half_width
    }

    /// Upper end of the interval, `mean + half_width`.
    pub fn upper(&self) -> f64 {
        self.mean + self.half_width
    }
}

/// Computes the mean of `values` with a 95% normal-approximation interval.
///
/// `what` names the quantity in error messages. Returns an error when
/// `values` is empty or contains a NaN or an infinity.
pub fn mean_ci95(values: &[f64], what: &str) -> Result<MeanCi, DecodeError> {
    if values.is_empty() {
        return Err(DecodeError::EmptyStatistic {
            what: what.to_string(),
        });
    }
    if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(DecodeError::NonFiniteValue {
            what: what.to_string(),
            index,
            value,
        });
    }

    let n = values.len();
    let mean = values.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return Ok(MeanCi {
            n,
            mean,
            sd: f64::NAN,
            half_width: f64::NAN,
        });
    }
    let sum_sq: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
    let sd = (sum_sq / (n - 1) as f64).sqrt();
    Ok(MeanCi {
        n,
        mean,
        sd,
        half_width: Z_95 * sd / (n as f64).sqrt(),
    })
}

/// Win rate of one method's rewards against base rewards.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WinRate {
    /// `P(method > base) + 0.5 · P(method == base)`.
    pub with_ties: f64,
    /// `P(method > base)`: ties count as losses.
    pub strict: f64,
}

/// Compares every reward in `method` with every reward in `base` and returns
/// the fraction of pairs the method wins, with ties counted one half and,
/// separately, as losses.
///
/// Ties are exact equality of the values. Returns `None` when either slice is
/// empty. A NaN on either side never wins and never ties, so such a pair
/// counts as a loss for the method.
pub fn pairwise_win_rate(method: &[f64], base: &[f64]) -> Option<WinRate> {
    if method.is_empty() || base.is_empty() {
        return None;
    }
    let mut wins = 0usize;
    let mut ties = 0usize;
    for &m in method {
        for &b in base {
            if m > b {
                wins += 1;
            } else if m == b {
                ties += 1;
            }
        }
    }
    let pairs = (method.len() * base.len()) as f64;
    Some(WinRate {
        with_ties: (wins as f64 + 0.5 * ties as f64) / pairs,
        strict: wins as f64 / pairs,
    })
}

/// Averages per-prompt win rates, giving every prompt the same weight.
///
/// Returns `None` for an empty slice.
pub fn mean_win_rate(per_prompt: &[WinRate]) -> Option<WinRate> {
    if per_prompt.is_empty() {
        return None;
    }
    let n = per_prompt.len() as f64;
    Some(WinRate {
        with_ties: per_prompt.iter().map(|w| w.with_ties).sum::<f64>() / n,
        strict: per_prompt.iter().map(|w| w.strict).sum::<f64>() / n,
    })
}

/// Returns the index of the largest score, choosing uniformly at random among
/// exact ties with `rng`.
///
/// NaN scores never win. Returns `None` when `scores` is empty or every score
/// is NaN. Infinite scores take part like any other value.
pub fn argmax_random_tie<R: Rng + ?Sized>(scores: &[f32], rng: &mut R) -> Option<usize> {
    let best = scores.iter().copied().filter(|s| !s.is_nan()).fold(
        None,
        |acc: Option<f32>, s| match acc {
            Some(a) if a >= s => Some(a),
            _ => Some(s),
        },
    )?;
    let tied: Vec<usize> = scores
        .iter()
        .enumerate()
        .filter(|(_, s)| **s == best)
        .map(|(i, _)| i)
        .collect();
    if tied.len() == 1 {
        return Some(tied[0]);
    }
    Some(tied[rng.random_range(0..tied.len())])
}
