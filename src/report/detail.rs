//! What a scenario's World saw, handed to the runner as a value when the scenario ends: its
//! HATCH chain, act timings, evidence and logs, and the figures of its printed summary. The
//! runner's writer prints the summary ([`crate::runner::output`]); the reports read the rest.

use std::time::Duration;

use crate::report::model::{ActSpan, ChainEvent};

/// One scenario's record, built by the World's `after` hook.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Detail {
    /// The HATCH records, reduced to what reports show.
    pub chain: Vec<ChainEvent>,
    /// When each act ran, from the scenario's start (an act may run more than once).
    pub acts: Vec<ActSpan>,
    /// (what, what it said): the gap report's evidence, collected for failures.
    pub evidence: Vec<(String, String)>,
    /// (title, whole text) of the stack's logs, kept for failures.
    pub logs: Vec<(String, String)>,
    /// The figures of the printed summary; `None` when the scenario recorded no chain.
    pub summary: Option<Summary>,
    /// Lines the clean-up had to say (`warning: …`, `cleanup: …`), in order.
    pub notes: Vec<String>,
}

/// The figures of a scenario's printed summary (its chain, act times, driver shares).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// `failure_drill › hearth is not on the search path`.
    pub feature: String,
    pub scenario: String,
    /// (number, name, time) of each act, in act order.
    pub timings: Vec<(u8, String, Duration)>,
    /// hearth's driver time and its health checks, summed over workspaces, in milliseconds.
    pub driver_ms: f64,
    pub health_ms: f64,
    /// The stack: its driver and where the console and the worker ran.
    pub stack: Option<StackShare>,
}

/// What the stack was, for the summary's last lines.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StackShare {
    /// `local-docker`, `process`.
    pub driver: String,
    /// `in-process`, `containers`.
    pub services: String,
    /// Docker work beyond the workspaces' own: act 1 on the container topology (the stack's
    /// network and its two containers), in milliseconds; `None` off the Docker driver.
    pub docker_stack_ms: Option<f64>,
}

impl Detail {
    /// The chain's `(seq, kind)` rows as the summary prints them.
    pub fn chain_rows(&self) -> impl Iterator<Item = (u64, &str)> {
        self.chain.iter().map(|e| (e.seq, e.kind.as_str()))
    }
}
