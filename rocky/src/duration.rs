//! Human-friendly durations on the command line (`500ms`, `10s`, `2m`).
//!
//! Every deadline the stack enforces is a flag, so the failure drill can shorten one without
//! recompiling; this is the one parser all binaries share.

use std::time::{Duration, Instant};

/// Parses `<number><unit>` with unit `ms`, `s` or `m`; a bare number means seconds.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: u64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: expected e.g. 500ms, 10s or 2m"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(value)),
        "" | "s" => Ok(Duration::from_secs(value)),
        "m" => value
            .checked_mul(60)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("invalid duration {text:?}: out of range")),
        other => Err(format!(
            "invalid duration {text:?}: unknown unit {other:?} (use ms, s or m)"
        )),
    }
}

/// [`parse`], then checks `min..=max`; what a duration taken from a request goes through, so
/// that an out-of-range one is refused by name (400) rather than clamped, wrapped or panicked on.
pub fn parse_within(text: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let d = parse(text)?;
    if d < min || d > max {
        return Err(format!(
            "duration {:?} is out of range ({}..={})",
            text.trim(),
            display(min),
            display(max)
        ));
    }
    Ok(d)
}

/// How far ahead [`deadline`] puts a deadline that does not fit in an [`Instant`]: as good as
/// never, and far from any overflow (tokio's own "far future" is the same 30 years).
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// `from + d`, without the panic: a configured duration too large for an [`Instant`] (hearth's
/// `--health-timeout` once took `u64::MAX` seconds) is a deadline that never comes, not an
/// overflow in whatever task adds it.
pub fn deadline(from: Instant, d: Duration) -> Instant {
    from.checked_add(d)
        .or_else(|| from.checked_add(FAR_FUTURE))
        .unwrap_or(from)
}

/// Formats a duration the way [`parse`] reads it, for messages that name a deadline.
pub fn display(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse("7").unwrap(), Duration::from_secs(7));
        assert_eq!(parse("2m").unwrap(), Duration::from_secs(120));
        assert!(parse("ten").is_err());
        assert!(parse("5h").unwrap_err().contains("unknown unit"));
        assert_eq!(display(Duration::from_millis(1500)), "1500ms");
        assert_eq!(display(Duration::from_secs(3)), "3s");
    }

    #[test]
    fn huge_values_are_errors_not_overflows() {
        assert!(
            parse("307445734561825861m")
                .unwrap_err()
                .contains("out of range")
        );
        assert!(parse("99999999999999999999999s").is_err());
        assert!(parse(&format!("{}m", u64::MAX)).is_err());
        assert_eq!(
            parse(&format!("{}ms", u64::MAX)).unwrap(),
            Duration::from_millis(u64::MAX)
        );
        let max = Duration::from_secs(60);
        assert!(
            parse_within("61s", Duration::ZERO, max)
                .unwrap_err()
                .contains("out of range (0s..=60s)")
        );
        assert_eq!(parse_within("1m", Duration::ZERO, max), Ok(max));
    }

    #[test]
    fn a_deadline_too_far_to_add_is_far_not_a_panic() {
        let now = Instant::now();
        assert_eq!(
            deadline(now, Duration::from_secs(3)),
            now + Duration::from_secs(3)
        );
        let never = deadline(now, Duration::MAX);
        assert!(
            never >= now + FAR_FUTURE,
            "{never:?} is not far ahead of {now:?}"
        );
        let max_flag = Duration::from_secs(u64::MAX);
        assert!(deadline(now, max_flag) > now + Duration::from_secs(86_400 * 365));
    }
}
