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
}
