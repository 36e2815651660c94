//! Canary against stable: is the canary's error rate higher than the stable version's
//! by more than a margin, with a given confidence? Pure statistics over two windows of
//! request and error counts measured at the same time.
//!
//! - Enough traffic on both sides (every cell of the 2×2 table expected at 5 or more):
//!   a one-sided two-proportion z-test of H0 `p_canary - p_stable <= margin` against
//!   H1 `p_canary - p_stable > margin`. With no margin the standard error is pooled (the
//!   textbook test); with a margin it is not (the two rates differ under H0).
//! - Small counts, no margin: Fisher's exact test, one-sided ("the canary's errors are
//!   more likely than the stable's").
//! - Small counts with a margin: an exact binomial test of the canary's errors against
//!   the stable's rate plus the margin (H0 `p_canary <= p_stable + margin`), where the
//!   stable's rate is the upper bound of its Wilson score interval at the same
//!   confidence: known exactly when it served many requests, given the benefit of the
//!   doubt when it served few. Fisher's test cannot carry a margin; using it with only
//!   the observed difference above the margin, or taking a small stable sample's rate
//!   as exact, called a canary no worse than a 1% stable "worse" in a third, then a
//!   sixth, of healthy deployments (scripts/bench measured both).
//!
//! A comparison is conclusive only when both versions served at least the minimum
//! number of requests; otherwise the caller's `no_data` policy decides. Golden values
//! from scipy (`scipy.stats.norm.sf`, `scipy.stats.fisher_exact`) are checked in
//! `tests/compare.rs`.

use serde::{Deserialize, Serialize};
use statrs::distribution::{Binomial, ContinuousCDF, DiscreteCDF, Hypergeometric, Normal};

/// Requests and errors of one version over a window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Requests served (errors included).
    pub requests: f64,
    /// Requests that failed (5xx).
    pub errors: f64,
}

impl Counts {
    /// `errors` out of `requests`.
    pub fn new(requests: f64, errors: f64) -> Self {
        Self { requests, errors }
    }

    /// The error rate, 0..=1 (0 without requests).
    pub fn rate(&self) -> f64 {
        if self.requests > 0.0 {
            (self.errors / self.requests).clamp(0.0, 1.0)
        } else {
            0.0
        }
    }
}

/// How the two versions are compared.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CompareRule {
    /// How much higher than the stable's the canary's error rate may be, in percentage
    /// points (0.5 means 1.2% against 0.7% is still acceptable).
    pub margin_percent: f64,
    /// The confidence needed to call the canary worse, 0.5..1 (0.95 by default).
    pub confidence: f64,
    /// Fewest requests each version must have served for a conclusion.
    pub min_requests: f64,
}

/// Which test decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// The two-proportion z-test.
    ZTest,
    /// Fisher's exact test (small counts, no margin).
    FisherExact,
    /// The exact binomial test against the stable's rate plus the margin (small counts).
    ExactBinomial,
    /// Too few requests on one side: no test was run.
    NotEnoughData,
}

/// The outcome of a comparison, with its numbers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The canary's error rate, in percent.
    pub canary_rate_percent: f64,
    /// The stable version's error rate, in percent.
    pub stable_rate_percent: f64,
    /// The test that decided.
    pub method: Method,
    /// The one-sided p-value (1 when no test was run).
    pub p_value: f64,
    /// True when the canary is worse than the stable by more than the margin with the
    /// asked confidence.
    pub canary_worse: bool,
}

impl Comparison {
    /// Whether a test was run at all (both versions had enough requests).
    pub fn conclusive(&self) -> bool {
        self.method != Method::NotEnoughData
    }

    /// One sentence with the numbers.
    pub fn sentence(&self, rule: &CompareRule) -> String {
        let rates = format!(
            "canary {:.2}% vs stable {:.2}% errors",
            self.canary_rate_percent, self.stable_rate_percent
        );
        match self.method {
            Method::NotEnoughData => format!(
                "{rates}: too few requests to compare (fewer than {} on one version)",
                rule.min_requests
            ),
            _ if self.canary_worse => format!(
                "{rates}: the canary is worse by more than {} (p = {:.4} < {:.4}, {})",
                points(rule.margin_percent),
                self.p_value,
                1.0 - rule.confidence,
                self.method_name()
            ),
            _ => format!(
                "{rates}: not worse by more than {} at {:.0}% confidence (p = {:.4}, {})",
                points(rule.margin_percent),
                rule.confidence * 100.0,
                self.p_value,
                self.method_name()
            ),
        }
    }

    fn method_name(&self) -> &'static str {
        match self.method {
            Method::ZTest => "two-proportion z-test",
            Method::FisherExact => "Fisher's exact test",
            Method::ExactBinomial => {
                "exact binomial test against the stable's rate plus the margin"
            }
            Method::NotEnoughData => "no test",
        }
    }
}

/// A margin in percentage points, in words: `1 percentage point`, `0.5 percentage points`.
pub fn points(margin: f64) -> String {
    let n = format!("{margin:.2}");
    let n = n.trim_end_matches('0').trim_end_matches('.');
    if margin == 1.0 {
        "1 percentage point".to_owned()
    } else {
        format!("{n} percentage points")
    }
}

/// Compares `canary` with `stable` under `rule`.
pub fn compare(canary: Counts, stable: Counts, rule: &CompareRule) -> Comparison {
    let margin = rule.margin_percent / 100.0;
    let (pc, ps) = (canary.rate(), stable.rate());
    let mut out = Comparison {
        canary_rate_percent: pc * 100.0,
        stable_rate_percent: ps * 100.0,
        method: Method::NotEnoughData,
        p_value: 1.0,
        canary_worse: false,
    };
    let enough = rule.min_requests.max(1.0);
    if canary.requests < enough || stable.requests < enough {
        return out;
    }
    let alpha = 1.0 - rule.confidence;
    if small_counts(canary, stable) && margin > 0.0 {
        out.method = Method::ExactBinomial;
        let z = Normal::standard().inverse_cdf(rule.confidence);
        let bound = wilson_upper(stable, z);
        out.p_value = binomial_greater(canary, (bound + margin).min(1.0));
        out.canary_worse = out.p_value < alpha;
    } else if small_counts(canary, stable) {
        out.method = Method::FisherExact;
        out.p_value = fisher_greater(canary, stable);
        out.canary_worse = out.p_value < alpha && pc > ps;
    } else {
        out.method = Method::ZTest;
        out.p_value = z_test_greater(canary, stable, margin);
        out.canary_worse = out.p_value < alpha;
    }
    out
}

/// True when a cell of the 2×2 table is expected below 5 (the usual limit of the
/// normal approximation).
fn small_counts(canary: Counts, stable: Counts) -> bool {
    let n = canary.requests + stable.requests;
    let errors = canary.errors + stable.errors;
    let oks = n - errors;
    [canary.requests, stable.requests]
        .iter()
        .flat_map(|side| [side * errors / n, side * oks / n])
        .any(|expected| expected < 5.0)
}

/// One-sided p-value of H0 `p_c - p_s <= margin`.
pub fn z_test_greater(canary: Counts, stable: Counts, margin: f64) -> f64 {
    let (pc, ps) = (canary.rate(), stable.rate());
    let (nc, ns) = (canary.requests, stable.requests);
    let se = if margin == 0.0 {
        let pooled = (canary.errors + stable.errors) / (nc + ns);
        (pooled * (1.0 - pooled) * (1.0 / nc + 1.0 / ns)).sqrt()
    } else {
        (pc * (1.0 - pc) / nc + ps * (1.0 - ps) / ns).sqrt()
    };
    let diff = pc - ps - margin;
    if se == 0.0 || !se.is_finite() {
        return if diff > 0.0 { 0.0 } else { 1.0 };
    }
    Normal::standard().sf(diff / se)
}

/// The upper end of the Wilson score interval of `counts`' error rate, for a normal
/// quantile `z` (0 to 1; 1 without requests).
pub fn wilson_upper(counts: Counts, z: f64) -> f64 {
    let n = counts.requests;
    if n <= 0.0 {
        return 1.0;
    }
    let p = counts.rate();
    let z2 = z * z;
    let centre = p + z2 / (2.0 * n);
    let spread = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre + spread) / (1.0 + z2 / n)).clamp(0.0, 1.0)
}

/// One-sided (greater) p-value of the exact binomial test: the canary's errors (counts
/// rounded) against a known error rate `p0`.
pub fn binomial_greater(canary: Counts, p0: f64) -> f64 {
    let errors = canary.errors.max(0.0).round() as u64;
    let n = (canary.requests.max(0.0).round() as u64).max(errors);
    if errors == 0 {
        return 1.0;
    }
    // p = P(X >= errors) for X ~ Binomial(n, p0).
    match Binomial::new(p0.clamp(0.0, 1.0), n) {
        Ok(b) => b.sf(errors - 1),
        Err(_) => 1.0,
    }
}

/// One-sided (greater) p-value of Fisher's exact test on
/// `[[canary errors, canary oks], [stable errors, stable oks]]`, counts rounded.
pub fn fisher_greater(canary: Counts, stable: Counts) -> f64 {
    let round = |x: f64| x.max(0.0).round() as u64;
    let a = round(canary.errors);
    let canary_n = round(canary.requests).max(a);
    let c = round(stable.errors);
    let stable_n = round(stable.requests).max(c);
    let total = canary_n + stable_n;
    let errors = a + c;
    // X, the canary's errors, is hypergeometric: `canary_n` draws from `total` with
    // `errors` successes. p = P(X >= a).
    match Hypergeometric::new(total, errors, canary_n) {
        Ok(h) if a > 0 => h.sf(a - 1),
        Ok(_) => 1.0,
        Err(_) => 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: CompareRule = CompareRule {
        margin_percent: 0.0,
        confidence: 0.95,
        min_requests: 50.0,
    };

    #[test]
    fn a_canary_no_worse_than_a_noisy_stable_passes() {
        let c = compare(Counts::new(1000.0, 11.0), Counts::new(9000.0, 90.0), &RULE);
        assert_eq!(c.method, Method::ZTest);
        assert!(!c.canary_worse, "{c:?}");
    }

    #[test]
    fn a_canary_clearly_worse_than_its_stable_fails_even_at_low_rates() {
        let c = compare(Counts::new(1000.0, 30.0), Counts::new(9000.0, 45.0), &RULE);
        assert!(c.canary_worse, "{c:?}");
        assert!(c.sentence(&RULE).contains("3.00% vs stable 0.50%"));
    }

    #[test]
    fn too_few_requests_on_either_side_is_not_a_conclusion() {
        let c = compare(Counts::new(20.0, 20.0), Counts::new(9000.0, 0.0), &RULE);
        assert!(!c.conclusive());
        assert!(!c.canary_worse);
    }

    #[test]
    fn the_wilson_bound_gives_a_small_sample_the_benefit_of_the_doubt() {
        // No errors in n requests: the bound is z² / (n + z²).
        let z = 1.6448536269514722;
        let b = wilson_upper(Counts::new(120.0, 0.0), z);
        assert!((b - z * z / (120.0 + z * z)).abs() < 1e-12, "{b}");
        // Many requests: close to the observed rate.
        let b = wilson_upper(Counts::new(1_000_000.0, 10_000.0), z);
        assert!(b > 0.01 && b < 0.0102, "{b}");
        assert_eq!(wilson_upper(Counts::new(0.0, 0.0), z), 1.0);
    }

    #[test]
    fn small_counts_use_the_exact_test_and_the_margin() {
        let rule = CompareRule {
            margin_percent: 5.0,
            ..RULE
        };
        let c = compare(Counts::new(60.0, 12.0), Counts::new(600.0, 1.0), &rule);
        assert_eq!(c.method, Method::ExactBinomial);
        // 20% against 0.2% + 5 points is clearly worse.
        assert!(c.canary_worse, "{c:?}");
        let c = compare(Counts::new(60.0, 4.0), Counts::new(600.0, 1.0), &rule);
        // 6.7% against 5.2%: above the margin as observed, but not significantly.
        assert!(!c.canary_worse, "{c:?}");
        // Without a margin, Fisher's test: 6.7% against 0.2% is significant.
        let c = compare(Counts::new(60.0, 4.0), Counts::new(600.0, 1.0), &RULE);
        assert_eq!(c.method, Method::FisherExact);
        assert!(c.canary_worse, "{c:?}");
    }
}
