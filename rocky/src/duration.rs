//! Human-friendly durations on the command line (`500ms`, `10s`, `2m`).
//!
//! Every deadline the stack enforces is a flag, so the failure drill can shorten one without
//! recompiling; this is the one parser all binaries share.

use std::time::Duration;

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
        "m" => Ok(Duration::from_secs(value * 60)),
        other => Err(format!(
            "invalid duration {text:?}: unknown unit {other:?} (use ms, s or m)"
        )),
    }
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
}
