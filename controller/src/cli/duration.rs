//! Durations as people type them on the command line: `30s`, `10m`, `1h`, `1h30m`.
//!
//! `wait --timeout` and `delete --wait --timeout` take them; a bare number is
//! refused rather than guessed to be seconds or minutes.

use std::time::Duration;

/// A duration argument that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration (expected e.g. 30s, 10m, 1h)")]
    Empty,
    #[error("{0:?}: a number needs a unit (ms, s, m, h or d), e.g. 30s")]
    MissingUnit(String),
    #[error("{input:?}: unknown unit {unit:?} (expected ms, s, m, h or d)")]
    UnknownUnit { input: String, unit: String },
    #[error("{0:?}: expected a number before the unit, e.g. 10m")]
    MissingNumber(String),
    #[error("{0:?}: too long")]
    Overflow(String),
}

/// Parses `30s`, `10m`, `1h`, `2d`, `500ms`, or a sequence such as `1h30m`.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(DurationError::MissingNumber(input.to_string()));
        }
        let number: u64 = rest[..digits].parse().map_err(|_| DurationError::Overflow(input.to_string()))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let millis_per_unit: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => return Err(DurationError::MissingUnit(input.to_string())),
            other => return Err(DurationError::UnknownUnit { input: input.to_string(), unit: other.to_string() }),
        };
        let millis = number.checked_mul(millis_per_unit).ok_or_else(|| DurationError::Overflow(input.to_string()))?;
        total = total
            .checked_add(Duration::from_millis(millis))
            .ok_or_else(|| DurationError::Overflow(input.to_string()))?;
    }
    Ok(total)
}

/// A duration the way it would be typed (`10m`, `1h30m`, `45s`), for messages.
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_and_compound_durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(2 * 86_400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration(" 0s "), Ok(Duration::ZERO));
    }

    #[test]
    fn refuses_what_it_would_have_to_guess() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert_eq!(parse_duration("30"), Err(DurationError::MissingUnit("30".into())));
        assert!(matches!(parse_duration("5x"), Err(DurationError::UnknownUnit { .. })));
        assert!(matches!(parse_duration("1.5h"), Err(DurationError::UnknownUnit { .. })));
        assert_eq!(parse_duration("m"), Err(DurationError::MissingNumber("m".into())));
        assert!(matches!(parse_duration("-5s"), Err(DurationError::MissingNumber(_))));
        assert!(matches!(parse_duration("99999999999999999999s"), Err(DurationError::Overflow(_))));
    }

    #[test]
    fn formats_for_messages() {
        assert_eq!(format_duration(Duration::from_secs(600)), "10m");
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(45)), "45s");
        assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
    }
}
