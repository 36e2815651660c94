//! Spread of repeated measurements: min, median and max (and the count), which the
//! report shows instead of a single number.

use serde::Serialize;

/// Min, median and max of a set of samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    /// How many samples.
    pub n: usize,
    /// The smallest.
    pub min: f64,
    /// The median (the mean of the two middle samples for an even count).
    pub median: f64,
    /// The largest.
    pub max: f64,
}

impl Spread {
    /// The spread of `samples`; `None` when there are none (or one is NaN).
    pub fn of(samples: &[f64]) -> Option<Self> {
        if samples.is_empty() || samples.iter().any(|s| s.is_nan()) {
            return None;
        }
        let mut v = samples.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Self {
            n,
            min: v[0],
            median,
            max: v[n - 1],
        })
    }

    /// `min / median / max` with `digits` decimals.
    pub fn show(&self, digits: usize) -> String {
        format!(
            "{:.d$} / {:.d$} / {:.d$}",
            self.min,
            self.median,
            self.max,
            d = digits
        )
    }
}

/// `median / median` of two spreads, or `None` when the divisor is zero or missing.
pub fn ratio(numerator: Option<Spread>, denominator: Option<Spread>) -> Option<f64> {
    let (n, d) = (numerator?, denominator?);
    (d.median > 0.0).then(|| n.median / d.median)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        let s = Spread::of(&[4.0, 1.0, 3.0, 2.0]).expect("samples");
        assert_eq!((s.n, s.min, s.median, s.max), (4, 1.0, 2.5, 4.0));
    }

    #[test]
    fn no_samples_have_no_spread() {
        assert!(Spread::of(&[]).is_none());
        assert!(ratio(Spread::of(&[1.0]), Spread::of(&[0.0])).is_none());
    }
}
