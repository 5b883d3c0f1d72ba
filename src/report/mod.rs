//! What a run shows people: `target/rocky-e2e/report.html` (one self-contained file) and the
//! Markdown a pull request shows (pending chain changes, the results table).
//!
//! - [`model`]: what the runner fills in for a run ([`model::RunReport`]);
//! - [`detail`]: what a scenario's World hands the runner when it ends ([`detail::Detail`]);
//! - [`html`]: the report page, no script and no fetch;
//! - [`markdown`]: pending snapshot changes side by side, aligned by act, and the JUnit
//!   results table, for the pull-request comment and job summary;
//! - [`messages`], [`cucumber_json`]: the run as Cucumber Messages and Cucumber JSON, for
//!   cucumber's own tools and the CI tools that read cucumber reports ([`gherkin_doc`]: the
//!   feature files read back for them);
//! - [`snapshot`], [`junit`], [`acts`]: the readers and the act mapping they share.

pub mod acts;
pub mod cucumber_json;
pub mod detail;
pub mod gherkin_doc;
pub mod html;
pub mod junit;
pub mod markdown;
pub mod messages;
pub mod model;
pub mod snapshot;
