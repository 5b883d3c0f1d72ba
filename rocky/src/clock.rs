//! Wall-clock timestamps as the wire formats want them (RFC 3339, UTC, millisecond precision).

/// Now, e.g. `2026-11-27T12:00:00.123Z`.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    now.format(&format).expect("UTC time always formats")
}
