//! The options of a run, shared by `cargo test --test scenarios -- …`, nextest and
//! `rocky-e2e play …`.

use std::path::PathBuf;

use super::shard::Shard;

/// Options shared by every way of running scenarios.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct RunOptions {
    /// Feature files or folders (default: `features/` of the current directory). A word that
    /// is not a path selects the scenarios whose test name contains it (`cargo test play`).
    pub paths: Vec<PathBuf>,
    /// The folder holding the `.feature` files, `tiers/` and `runs/` (default `./features`,
    /// else the nearest folder at or above the given paths named `features` or holding
    /// `tiers/`).
    #[arg(long)]
    pub features_dir: Option<PathBuf>,
    /// Only scenarios whose tags match this expression, e.g. `@drill and not @docker`.
    #[arg(long, short = 't')]
    pub tags: Option<String>,
    /// Only scenarios whose name matches this regex.
    #[arg(long, short = 'n')]
    pub name: Option<String>,
    /// Most scenarios running at once (default 64; each has its own stack).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Parse every feature and check every step against the vocabulary; start nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Run only shard K of N (e.g. `2/4`): disjoint, covering, the same on every runner.
    #[arg(long)]
    pub shard: Option<Shard>,
    /// Scenario durations of an earlier run (JSON): shards are packed longest first. Every run
    /// writes `target/rocky-e2e/durations.json`.
    #[arg(long)]
    pub durations: Option<PathBuf>,
    /// Run a failed scenario up to N more times; one that then passes is reported flaky, and
    /// fails the run unless it is tagged `@flaky`.
    #[arg(long, default_value_t = 0)]
    pub retries: u32,
    /// Run the selection N times and report each scenario's pass count (a stress mode).
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
    /// Run exactly the scenarios that failed or were flaky in the last run of this checkout
    /// (`target/rocky-e2e/last-run.json`), from the last run's paths when none are given; with
    /// none, say so and run nothing; with no last run, or a failed scenario gone, fail.
    #[arg(long)]
    pub last_failed: bool,
    /// Where the JUnit XML report goes (default `target/rocky-e2e/junit.xml`).
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// `json` for libtest's JSON lines, one per scenario (what IDEs read).
    #[arg(long, value_parser = ["pretty", "json"])]
    pub format: Option<String>,
    /// Accepted for libtest compatibility (IDEs pass it with `--format json`).
    #[arg(short = 'Z', hide = true)]
    pub unstable: Option<String>,
    /// Accepted for libtest compatibility.
    #[arg(long, hide = true)]
    pub show_output: bool,
    /// Accepted for libtest compatibility (output is never captured).
    #[arg(long, hide = true)]
    pub nocapture: bool,
}

/// Which scenarios a run may pick, beyond the options' filters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Selection {
    /// Every scenario the filters leave.
    #[default]
    All,
    /// Exactly the scenario with this test name (nextest's `--exact NAME`).
    Exact(String),
}
