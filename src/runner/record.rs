//! What a run learns about each attempt of a scenario: its verdict, time and printed block.
//! The writer fills attempts; what the scenario's World saw comes with them as a
//! [`crate::report::detail::Detail`]. The JUnit file, the durations file, the summary and the
//! HTML report all read from here.

use std::time::Duration;

/// One run of one scenario.
#[derive(Clone, Debug, Default)]
pub struct Attempt {
    pub passed: bool,
    pub duration: Duration,
    /// The first failed step and its message.
    pub failure: Option<String>,
    /// The scenario's whole printed block.
    pub output: String,
    /// When it started, in nanoseconds since the Unix epoch.
    pub started_unix_ns: u64,
    /// Each step cucumber ran, as its events reported it.
    pub steps: Vec<crate::report::model::StepReport>,
    /// Why the after hook failed, when it did.
    pub hook_failure: Option<String>,
}

/// Nanoseconds since the Unix epoch, now (0 on a clock set before 1970).
pub fn unix_ns_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}
