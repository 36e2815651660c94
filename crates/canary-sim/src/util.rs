//! Small helpers: RFC 3339 timestamps from clock milliseconds, kubectl-style ages, and a
//! stable hash for generated names (pod-template-hash, pod suffixes).

/// Days since 1970-01-01 to a (year, month, day) civil date (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `2025-01-31T12:00:05Z` for a time in ms since the epoch (seconds precision, as
/// Kubernetes writes timestamps).
pub fn rfc3339(millis: i64) -> String {
    let secs = millis.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
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
    }

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(human_age(5_000), "5s");
        assert_eq!(human_age(310_000), "5m10s");
        assert_eq!(human_age(4 * 86_400_000), "4d");
    }
}
