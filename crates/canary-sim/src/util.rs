//! Small helpers: RFC 3339 timestamps to and from clock milliseconds (through the `time`
//! crate), kubectl-style ages, and a stable hash for generated names
//! (pod-template-hash, pod suffixes).

use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

/// `2025-01-31T12:00:05Z` for a time in ms since the epoch (seconds precision, as
/// Kubernetes writes timestamps). Times beyond the years -9999..=9999 that `time`
/// represents are written as its first or last second (no simulated clock gets there).
pub fn rfc3339(millis: i64) -> String {
    let at = OffsetDateTime::UNIX_EPOCH.saturating_add(Duration::seconds(millis.div_euclid(1000)));
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// The time in ms since the epoch of an RFC 3339 timestamp such as
/// `2025-01-31T12:00:05Z`, or `None` when it is not one.
pub fn parse_rfc3339(timestamp: &str) -> Option<i64> {
    let at = OffsetDateTime::parse(timestamp, &Rfc3339).ok()?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

/// An age as kubectl prints it: `42s`, `5m10s`, `17m`, `3h20m`, `30h`, `4d`.
pub fn human_age(millis: i64) -> String {
    let s = millis.max(0) / 1000;
    match s {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 8 * 3600 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// FNV-1a, 64 bits: stable across runs and platforms.
pub fn stable_hash(data: &str) -> u64 {
    data.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `len` characters from the alphabet Kubernetes uses for generated name suffixes.
pub fn safe_suffix(mut value: u64, len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut out = String::with_capacity(len);
    for _ in 0..len {
        let i = (value % ALPHABET.len() as u64) as usize;
        out.push(char::from(ALPHABET[i]));
        value /= ALPHABET.len() as u64;
        if value == 0 {
            value = stable_hash(&out);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_735_689_600_000), "2025-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400_000 + 3_723_000), "2000-02-29T01:02:03Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn rfc3339_timestamps_parse_back_and_other_text_does_not() {
        assert_eq!(
            parse_rfc3339("2025-01-01T00:00:05Z"),
            Some(1_735_689_605_000)
        );
        assert_eq!(
            parse_rfc3339(&rfc3339(951_782_400_000)),
            Some(951_782_400_000)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(human_age(5_000), "5s");
        assert_eq!(human_age(310_000), "5m10s");
        assert_eq!(human_age(4 * 86_400_000), "4d");
    }
}
