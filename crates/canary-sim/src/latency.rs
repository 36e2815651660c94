//! Simulated response times: each image answers with a log-normal latency around its
//! median (set with `SimCluster::set_latency`), which the Prometheus exposition turns
//! into histogram buckets.
//!
//! A log-normal distribution with median `m` and shape `sigma` has
//! `P(latency ≤ x) = Φ(ln(x / m) / sigma)` and mean `m · exp(sigma² / 2)`. With the
//! default `sigma` of 0.5, the 90th percentile is 1.9 × the median and the 99th is
//! 3.2 × the median (20 ms → p99 64 ms; 200 ms → p99 640 ms), so
//! `histogram_quantile(0.99, ...)` lands a bucket or two above the median's bucket.

/// The median response time of an image nobody set one for, in milliseconds.
pub const DEFAULT_MEDIAN_MS: f64 = 20.0;

/// The spread of a latency model made with [`LatencyModel::median`].
pub const DEFAULT_SIGMA: f64 = 0.5;

/// The histogram bucket bounds (`le`, in milliseconds) of the exposed latency
/// histograms, besides `+Inf`: Istio's default buckets up to one minute.
pub const LATENCY_BUCKETS_MS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0,
];

/// A refused latency setting: which field, its value, and what it must be.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid latency {field} `{value}`: {rule}")]
pub struct InvalidLatency {
    /// `median_ms` or `sigma`.
    pub field: &'static str,
    /// The value given.
    pub value: f64,
    /// What the value must be.
    pub rule: &'static str,
}

/// How long an image takes to answer: log-normal around a median.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencyModel {
    median_ms: f64,
    sigma: f64,
}

impl Default for LatencyModel {
    /// [`DEFAULT_MEDIAN_MS`] with [`DEFAULT_SIGMA`].
    fn default() -> Self {
        Self {
            median_ms: DEFAULT_MEDIAN_MS,
            sigma: DEFAULT_SIGMA,
        }
    }
}

impl LatencyModel {
    /// Latency around `median_ms` with the default spread ([`DEFAULT_SIGMA`]).
    pub fn median(median_ms: f64) -> Result<Self, InvalidLatency> {
        Self::new(median_ms, DEFAULT_SIGMA)
    }

    /// Log-normal latency with this median (more than 0 ms) and shape `sigma` (0 or
    /// more; 0: every request takes exactly the median).
    pub fn new(median_ms: f64, sigma: f64) -> Result<Self, InvalidLatency> {
        if !median_ms.is_finite() || median_ms <= 0.0 {
            return Err(InvalidLatency {
                field: "median_ms",
                value: median_ms,
                rule: "must be a number of milliseconds above 0",
            });
        }
        if !sigma.is_finite() || !(0.0..=10.0).contains(&sigma) {
            return Err(InvalidLatency {
                field: "sigma",
                value: sigma,
                rule: "must be a number from 0 to 10",
            });
        }
        Ok(Self { median_ms, sigma })
    }

    /// The median, in milliseconds.
    pub fn median_ms(&self) -> f64 {
        self.median_ms
    }

    /// The shape: the standard deviation of the latency's logarithm.
    pub fn sigma(&self) -> f64 {
        self.sigma
    }

    /// The mean response time, in milliseconds.
    pub fn mean_ms(&self) -> f64 {
        self.median_ms * (self.sigma * self.sigma / 2.0).exp()
    }

    /// The fraction of requests answered within `ms` milliseconds (0 to 1).
    pub fn fraction_at_most(&self, ms: f64) -> f64 {
        if ms.is_nan() || ms <= 0.0 {
            return 0.0;
        }
        if self.sigma == 0.0 {
            return if ms >= self.median_ms { 1.0 } else { 0.0 };
        }
        standard_normal_cdf((ms / self.median_ms).ln() / self.sigma)
    }

    /// The response time at quantile `q` (0 < q < 1), in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        // Bisection on the logarithm: the CDF is monotone, 200 halvings of a range of
        // ±40 sigmas leave nothing to gain in an f64.
        let (mut lo, mut hi) = (-40.0_f64, 40.0_f64);
        for _ in 0..200 {
            let mid = (lo + hi) / 2.0;
            if standard_normal_cdf(mid) < q {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        self.median_ms * (self.sigma * (lo + hi) / 2.0).exp()
    }
}

/// Φ, the standard normal distribution function, from the complementary error
/// function: `Φ(x) = erfc(-x / √2) / 2`.
fn standard_normal_cdf(x: f64) -> f64 {
    (erfc(-x / std::f64::consts::SQRT_2) / 2.0).clamp(0.0, 1.0)
}

/// The complementary error function by the Chebyshev fit of Numerical Recipes
/// (`erfcc`, relative error below 1.2e-7 everywhere).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = [
        -1.265_512_23,
        1.000_023_68,
        0.374_091_96,
        0.096_784_18,
        -0.186_288_06,
        0.278_868_07,
        -1.135_203_98,
        1.488_515_87,
        -0.822_152_23,
        0.170_872_77,
    ]
    .iter()
    .rev()
    .fold(0.0, |acc, c| c + t * acc);
    let tail = t * (-z * z + poly).exp();
    if x >= 0.0 { tail } else { 2.0 - tail }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_normal_distribution_function_matches_its_tabulated_values() {
        // Values from any table of the standard normal distribution.
        for (x, p) in [
            (0.0, 0.5),
            (1.0, 0.841_344_746),
            (-1.0, 0.158_655_254),
            (1.959_963_985, 0.975),
            (2.326_347_874, 0.99),
            (-3.090_232_306, 0.001),
        ] {
            let got = standard_normal_cdf(x);
            assert!((got - p).abs() < 2e-7, "Φ({x}) = {got}, not {p}");
        }
    }

    #[test]
    fn the_default_model_puts_half_the_requests_under_the_median_and_one_percent_above_3_2_times_it()
     {
        let m = LatencyModel::median(200.0).unwrap();
        assert!((m.fraction_at_most(200.0) - 0.5).abs() < 1e-7);
        // Φ is good to about 1e-7, so quantiles are good to a few microseconds.
        assert!((m.quantile_ms(0.99) - 200.0 * (0.5 * 2.326_347_874_f64).exp()).abs() < 1e-2);
        assert!((m.quantile_ms(0.5) - 200.0).abs() < 1e-3);
        assert!((m.mean_ms() - 200.0 * 0.125_f64.exp()).abs() < 1e-9);
        assert_eq!(m.fraction_at_most(0.0), 0.0);
        assert!(m.fraction_at_most(1e9) > 0.999_999);
    }

    #[test]
    fn bucket_fractions_never_decrease() {
        for m in [0.3, 20.0, 200.0, 5000.0, 1e6] {
            let model = LatencyModel::new(m, 1.5).unwrap();
            let mut last = 0.0;
            for le in LATENCY_BUCKETS_MS {
                let f = model.fraction_at_most(*le);
                assert!(f >= last, "median {m}: F({le}) = {f} < {last}");
                last = f;
            }
        }
    }

    #[test]
    fn a_model_without_spread_answers_every_request_at_the_median() {
        let m = LatencyModel::new(100.0, 0.0).unwrap();
        assert_eq!(m.fraction_at_most(99.9), 0.0);
        assert_eq!(m.fraction_at_most(100.0), 1.0);
        assert_eq!(m.mean_ms(), 100.0);
    }

    #[test]
    fn invalid_settings_name_the_field_and_the_value() {
        let e = LatencyModel::median(-5.0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid latency median_ms `-5`: must be a number of milliseconds above 0"
        );
        assert_eq!(
            LatencyModel::median(f64::NAN).unwrap_err().field,
            "median_ms"
        );
        let e = LatencyModel::new(10.0, 11.0).unwrap_err();
        assert_eq!(e.field, "sigma");
        assert_eq!(e.value, 11.0);
    }
}
