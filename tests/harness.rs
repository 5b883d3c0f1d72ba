//! The harness's integration tests, one module per file, in one test binary (the scenarios and
//! the model tester are binaries of their own, with harnesses of their own): `cargo test` runs
//! test binaries one after another, and these tests mostly wait on the processes they start,
//! so in one binary libtest overlaps the waits of one file with another's. Run one file's
//! tests with `cargo test --test harness <file>::`.

#[allow(dead_code, reason = "shared by several files, each using its own part")]
mod report_support;
mod support;

mod architecture_doc;
mod authoring_doc;
mod authors;
mod cucumber_reports;
mod hatch_cli;
mod killed_harness;
mod module_graph;
mod portable_cli;
mod report_browser;
mod report_golden;
mod test_targets;
mod up_teardown;
