//! What a run shows people: `target/rocky-e2e/report.html` (one self-contained file) and the
//! Markdown a pull request shows (pending chain changes, the results table).
//!
//! - [`model`]: what the runner fills in for a run ([`model::RunReport`]);
//! - [`detail`]: what a scenario's World hands the runner when it ends ([`detail::Detail`]);
//! - [`html`]: the report page, no script and no fetch;
//! - [`markdown`]: pending snapshot changes side by side, aligned by act, and the JUnit
//!   results table, for the pull-request comment and job summary;
//! - [`snapshot`], [`junit`], [`acts`]: the readers and the act mapping they share.

pub mod acts;
pub mod detail;
pub mod html;
pub mod junit;
pub mod markdown;
pub mod model;
pub mod snapshot;
