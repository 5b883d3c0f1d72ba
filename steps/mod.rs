//! The step definitions, split by domain concept: what a scenario author reads next to
//! `features/STEPS.md`. Each `#[given]`/`#[when]`/`#[then]` registers itself with cucumber's
//! inventory, so adding a step is adding a function to the file of its domain.
//!
//! - [`world`]: the World, one fresh per scenario, and its clean-up.
//! - [`workspaces`]: the stack, provisioning, teardown, hearth's status, raw console calls.
//! - [`runs`]: RALPH runs: submitting prompts, waiting for the end, checking the outcome.
//! - [`chain`]: assertions on the HATCH chain (exact, in order, counts, never, snapshot).
//! - [`chaos`]: races, hang-ups and restarts: background requests, waiting on hearth's
//!   state, hanging up, settling.
//! - [`faults`]: the failure drill's injected faults and the gap they must leave.
//! - [`authoring`]: the vocabulary check a scenario author relies on.
//! - [`referents`]: what "the run" and the other "the …" of the prose refer to.

pub mod authoring;
pub mod chain;
pub mod chaos;
pub mod faults;
pub mod referents;
pub mod runs;
pub mod workspaces;
pub mod world;

/// The source of every step file, compiled in: the step reference shows each pattern as its
/// author wrote it, even from an installed binary far from this checkout.
pub const SOURCES: &[(&str, &str)] = &[
    ("authoring.rs", include_str!("authoring.rs")),
    ("chain.rs", include_str!("chain.rs")),
    ("chaos.rs", include_str!("chaos.rs")),
    ("faults.rs", include_str!("faults.rs")),
    ("runs.rs", include_str!("runs.rs")),
    ("workspaces.rs", include_str!("workspaces.rs")),
    ("world.rs", include_str!("world.rs")),
];

/// Every step definition of [`world::PlayWorld`], sorted by file and line.
pub fn definitions() -> Vec<crate::vocabulary::Definition> {
    crate::vocabulary::definitions_of::<world::PlayWorld>(SOURCES)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_step_file_is_compiled_in_so_patterns_read_as_written() {
        for d in super::definitions() {
            let (file, line) = d.location.rsplit_once(':').expect("file:line");
            assert!(
                crate::vocabulary::pattern_from_source(
                    super::SOURCES,
                    file,
                    line.parse().expect("a line")
                )
                .is_some(),
                "{} is missing from steps::SOURCES (steps/mod.rs)",
                d.location
            );
        }
    }
}
