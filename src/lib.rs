//! rocky-e2e, the harness: it drives the rocky services (the `rocky` crate, the system under
//! test) through the six-act play and asserts the HATCH chain.
//!
//! A tour, in the order a scenario uses it:
//!
//! - [`topology`]: which stack the scenarios run on (containers on Docker, or embedded),
//!   decided once per process, with the images it needs.
//! - [`binaries`]: the service binaries (`hearth`, `console`, `ralph`), built when stale.
//! - [`images`]: the images built from this repository's own code (stand-in, services).
//! - [`stack`]: starts hearth, console and worker for one scenario; [`containers`] runs the
//!   console and the worker as containers for the Docker topology.
//! - [`steps`]: the step definitions (the files in `steps/`), by domain concept.
//! - [`faults`]: the failure drill's faults the services know nothing about (KAHN drift),
//!   turned into the services' public options.
//! - [`chain`]: chain expectations and the gap report every chain assertion goes through.
//! - [`wait`]: the one bounded poll loop, whose deadline error names what it waited for.
//! - [`redact`]: volatile values replaced so snapshots are byte-stable.
//! - [`report`]: the HTML report and the pull request's Markdown.
//! - [`runner`]: wires features, steps and topology to cucumber-rs; shared by the `scenarios`
//!   test target and `rocky-e2e play`.
//! - [`layout`]: where a run's features, tiers and snapshots are; [`feature_file`]: one
//!   `.feature` file read, its mistakes named by line and reason; [`vocabulary`]: the step
//!   vocabulary and the check of the features against it.
//!
//! `steps/` sits at the top of the repository, where scenario authors look for it; `src/steps`
//! is a symlink to it so the step definitions are an ordinary module of this library.

pub mod binaries;
pub mod chain;
pub mod containers;
pub mod faults;
pub mod feature_file;
pub mod images;
pub mod layout;
pub mod redact;
pub mod report;
pub mod runner;
pub mod say;
pub mod stack;
pub mod steps;
pub mod topology;
pub mod vocabulary;
pub mod wait;
