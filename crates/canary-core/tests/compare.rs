//! The canary-vs-stable tests against golden values computed by scipy: the same tables
//! through `scipy.stats.norm.sf` (the z statistic computed the same way) and
//! `scipy.stats.fisher_exact(..., alternative="greater")`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use canary_core::compare::{Counts, binomial_greater, fisher_greater, z_test_greater};

/// (canary requests, canary errors, stable requests, stable errors, margin as a fraction)
const Z_CASES: &[(f64, f64, f64, f64, f64)] = &[
    (1000.0, 30.0, 9000.0, 45.0, 0.0),
    (1000.0, 11.0, 9000.0, 90.0, 0.0),
    (5000.0, 80.0, 5000.0, 50.0, 0.0),
    (5000.0, 80.0, 5000.0, 50.0, 0.005),
    (200.0, 20.0, 2000.0, 100.0, 0.02),
    (120.0, 0.0, 1200.0, 12.0, 0.0),
    (100000.0, 1100.0, 100000.0, 1000.0, 0.0),
];

/// (canary requests, canary errors, stable requests, stable errors)
const FISHER_CASES: &[(f64, f64, f64, f64)] = &[
    (60.0, 4.0, 600.0, 1.0),
    (60.0, 3.0, 600.0, 1.0),
    (10.0, 2.0, 10.0, 0.0),
    (25.0, 0.0, 40.0, 3.0),
    (8.0, 8.0, 9.0, 1.0),
    (300.0, 1.0, 3000.0, 2.0),
];

/// (canary requests, canary errors, the rate tested against)
const BINOMIAL_CASES: &[(f64, f64, f64)] = &[
    (20.0, 1.0, 0.02),
    (40.0, 3.0, 0.02),
    (60.0, 9.0, 0.01),
    (25.0, 0.0, 0.05),
    (120.0, 6.0, 0.011),
];

const SCIPY: &str = r#"
import json, math, sys
from scipy.stats import norm, fisher_exact, binom
cases = json.load(sys.stdin)
out = {"z": [], "fisher": []}
for nc, ec, ns, es, m in cases["z"]:
    pc, ps = ec / nc, es / ns
    if m == 0:
        p = (ec + es) / (nc + ns)
        se = math.sqrt(p * (1 - p) * (1 / nc + 1 / ns))
    else:
        se = math.sqrt(pc * (1 - pc) / nc + ps * (1 - ps) / ns)
    d = pc - ps - m
    out["z"].append((0.0 if d > 0 else 1.0) if se == 0 else float(norm.sf(d / se)))
for nc, ec, ns, es in cases["fisher"]:
    table = [[int(ec), int(nc - ec)], [int(es), int(ns - es)]]
    out["fisher"].append(float(fisher_exact(table, alternative="greater")[1]))
out["binomial"] = [1.0 if x == 0 else float(binom.sf(int(x) - 1, int(n), p)) for n, x, p in cases["binomial"]]
print(json.dumps(out))
"#;

fn scipy_answers() -> serde_json::Value {
    let input =
        serde_json::json!({"z": Z_CASES, "fisher": FISHER_CASES, "binomial": BINOMIAL_CASES})
            .to_string();
    let mut child = Command::new("python3")
        .args(["-c", SCIPY])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 is needed for the scipy golden values");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "scipy is needed for these golden values (python3 -m pip install -r tests/requirements.txt, or run scripts/test, which installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn close(ours: f64, theirs: f64) -> bool {
    (ours - theirs).abs() <= 1e-9_f64.max(theirs.abs() * 1e-7)
}

#[test]
fn z_and_exact_tests_agree_with_scipy() {
    let golden = scipy_answers();
    for (i, &(nc, ec, ns, es, m)) in Z_CASES.iter().enumerate() {
        let ours = z_test_greater(Counts::new(nc, ec), Counts::new(ns, es), m);
        let theirs = golden["z"][i].as_f64().unwrap();
        assert!(
            close(ours, theirs),
            "z case {i}: ours {ours}, scipy {theirs}"
        );
    }
    for (i, &(nc, ec, ns, es)) in FISHER_CASES.iter().enumerate() {
        let ours = fisher_greater(Counts::new(nc, ec), Counts::new(ns, es));
        let theirs = golden["fisher"][i].as_f64().unwrap();
        assert!(
            close(ours, theirs),
            "fisher case {i}: ours {ours}, scipy {theirs}"
        );
    }
    for (i, &(n, x, p)) in BINOMIAL_CASES.iter().enumerate() {
        let ours = binomial_greater(Counts::new(n, x), p);
        let theirs = golden["binomial"][i].as_f64().unwrap();
        assert!(
            close(ours, theirs),
            "binomial case {i}: ours {ours}, scipy {theirs}"
        );
    }
}
