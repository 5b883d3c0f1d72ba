//! The scenario runner shared by the `scenarios` test target (cargo test, nextest) and
//! `rocky-e2e play`: which scenarios run, how many times, and what is reported.
//!
//! - [`selection`]: the plan: every scenario of the inputs, then the filters and the shard;
//!   [`catalogue`]: every scenario as one named test; [`shard`] splits them across runners;
//!   [`last_run`]: the verdicts `--last-failed` reads.
//! - [`run`]: a whole run, from the plan and the vocabulary check to the verdict.
//! - [`attempts`]: the repeat × retry loop; [`pass`]: one cucumber pass over a set of
//!   scenarios; [`output`] prints each scenario's block whole; [`record`] keeps each attempt.
//! - [`outcome`]: verdicts (passed, failed, flaky, skipped), JUnit, the summary;
//!   [`reports`]: every report a run writes; [`phases`]: a job's several runs
//!   (`ROCKY_E2E_PHASE`), each reported apart, one merged set published.
//! - [`reference`]: the step reference (`features/STEPS.md`).
//! - [`options`], [`input`]: the options, and the folder cucumber parses.

pub mod attempts;
pub mod catalogue;
pub mod input;
pub mod last_run;
pub mod options;
pub mod outcome;
pub mod output;
pub mod pass;
pub mod phases;
pub mod record;
pub mod reference;
pub mod reports;
pub mod run;
pub mod selection;
pub mod shard;

pub use crate::steps::world::PlayWorld;
pub use options::{RunOptions, Selection};
pub use reference::{reference_is_current, steps_reference};
pub use run::run;
pub use selection::{Plan, plan, under_nextest};
