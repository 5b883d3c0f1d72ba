//! Test fixtures shared by the keyring's and the bearer's tests: one request, and verifying
//! a header against it.

use super::{BearerError, DEFAULT_MAX_SKEW_SECS, Keyring};

pub(super) const NOW: i64 = 1_750_000_000;
pub(super) const BODY: &[u8] = br#"{"workspace":"acme","prompts":["p1"]}"#;

pub(super) fn verify(k: &Keyring, header: &str) -> Result<String, BearerError> {
    k.verify(
        Some(header),
        "POST",
        "/v1/runs",
        BODY,
        NOW,
        DEFAULT_MAX_SKEW_SECS,
    )
}
