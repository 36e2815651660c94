//! The fault matrix: every task state x {returned error, timeout, crash, unlocked then
//! continued, stopped then recovered} and lock contention, each ending with all traffic
//! on one healthy version, no leftover objects, the lock released and the record
//! written.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use canary_cli::faults::{TASK_STATES, matrix_text, run_matrix};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cell_of_the_fault_matrix_ends_whole_on_one_version() {
    let cells = run_matrix().await;
    let text = matrix_text(&cells);
    println!("{text}");
    // Three faults per state, two scenarios, an unlock and a stop before every task but
    // the first (render-template takes the lock), a stop recovered by the next
    // deployment, and four route-controller and namespace cells (the canary's route
    // refused, never confirmed, the rollback's route refused, a missing namespace).
    assert_eq!(
        cells.len(),
        TASK_STATES.len() * 3 + 2 + 2 * (TASK_STATES.len() - 1) + 1 + 4
    );
    let failed: Vec<String> = cells
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{} x {}", c.state, c.fault))
        .collect();
    assert!(failed.is_empty(), "cells failed: {failed:?}\n{text}");
}
