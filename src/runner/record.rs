//! What a run learns about each scenario: every attempt's verdict, time and printed block, and
//! what the scenario's World saw (its HATCH chain, act timings, gap report, evidence, logs).
//! The writer fills attempts, the World's `after` hook fills the details; the JUnit file, the
//! durations file, the summary and the HTML report all read from here.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::catalogue::Key;

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

/// What the scenario's World recorded (taken when its stack stops).
#[derive(Clone, Debug, Default)]
pub struct Detail {
    /// The HATCH records, reduced to what reports show.
    pub chain: Vec<crate::report::model::ChainEvent>,
    /// When each act ran, from the scenario's start (an act may run more than once).
    pub acts: Vec<crate::report::model::ActSpan>,
    /// (what, what it said).
    pub evidence: Vec<(String, String)>,
    /// (title, text) of the stack's logs, kept for failures.
    pub logs: Vec<(String, String)>,
    /// The World's own block (chain, timings, logs on failure), printed in the scenario's.
    pub text: String,
}

fn details() -> &'static Mutex<HashMap<Key, Detail>> {
    static DETAILS: OnceLock<Mutex<HashMap<Key, Detail>>> = OnceLock::new();
    DETAILS.get_or_init(Mutex::default)
}

/// Stores the World's detail for the scenario at `key` (the latest attempt wins).
pub fn put_detail(key: Key, detail: Detail) {
    details().lock().expect("details lock").insert(key, detail);
}

/// Takes the detail recorded for `key`.
pub fn take_detail(key: &Key) -> Option<Detail> {
    details().lock().expect("details lock").remove(key)
}
