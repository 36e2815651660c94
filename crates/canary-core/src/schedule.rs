//! The weight schedule: which canary weights a deployment goes through.

use crate::spec::DeploySpec;

/// The canary weights to apply in order, ending at 100.
///
/// From `steps` when given, else every multiple of `percentage_step` below 100 and then
/// 100 (10 -> 10, 20, ..., 100; 30 -> 30, 60, 90, 100). A first deployment has nothing
/// to share traffic with and goes straight to 100.
pub fn schedule(spec: &DeploySpec, first_deployment: bool) -> Vec<u8> {
    if first_deployment {
        return vec![100];
    }
    if let Some(steps) = &spec.steps {
        return steps.clone();
    }
    from_percentage_step(spec.percentage_step.unwrap_or(100))
}

/// Every multiple of `step` below 100, then 100. A step of 0 is treated as 100.
pub fn from_percentage_step(step: u8) -> Vec<u8> {
    let step = if step == 0 { 100 } else { step.min(100) };
    let mut out: Vec<u8> = (1..).map(|i: u16| i * u16::from(step)).take_while(|w| *w < 100).map(|w| w as u8).collect();
    out.push(100);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentage_step_ten_gives_ten_steps() {
        assert_eq!(from_percentage_step(10), vec![10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
    }

    #[test]
    fn percentage_step_thirty_ends_with_a_short_step_to_100() {
        assert_eq!(from_percentage_step(30), vec![30, 60, 90, 100]);
    }

    #[test]
    fn percentage_step_of_100_or_more_is_one_step() {
        assert_eq!(from_percentage_step(100), vec![100]);
        assert_eq!(from_percentage_step(0), vec![100]);
    }

    #[test]
    fn every_step_size_is_strictly_increasing_and_ends_at_100() {
        for step in 1..=100u8 {
            let s = from_percentage_step(step);
            assert_eq!(s.last(), Some(&100));
            assert!(s.windows(2).all(|w| w[0] < w[1]), "{step}: {s:?}");
            assert_eq!(s.len(), 100usize.div_ceil(step as usize));
        }
    }
}
