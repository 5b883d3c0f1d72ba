//! Steps about writing scenarios: the vocabulary check a scenario author relies on (undefined
//! and ambiguous steps, the generated reference).

use cucumber::{then, when};

use super::world::PlayWorld;
use crate::vocabulary;

#[when(expr = "the features in {string} are checked")]
async fn check_features(world: &mut PlayWorld, dir: String) {
    let path = crate::layout::current().root.join(dir);
    let report = vocabulary::check(&path, &super::definitions());
    world.check_problems = report.problems;
}

#[when(expr = "the features in {string} are checked against a vocabulary defining {string} twice")]
async fn check_ambiguous(world: &mut PlayWorld, dir: String, pattern: String) {
    let mut defs = super::definitions();
    let twin = defs
        .iter()
        .find(|d| d.pattern == pattern)
        .cloned()
        .unwrap_or_else(|| panic!("no step is defined as {pattern:?}"));
    defs.push(vocabulary::Definition {
        location: "steps/elsewhere.rs:1".into(),
        ..twin
    });
    let path = crate::layout::current().root.join(dir);
    world.check_problems = vocabulary::check(&path, &defs).problems;
}

#[then(expr = "the check reports {string}")]
async fn check_reports(world: &mut PlayWorld, needle: String) {
    let all = world.check_problems.join("\n\n");
    assert!(
        all.contains(&needle),
        "the check did not report {needle:?}; it said:\n{all}"
    );
}

#[then(expr = "{string} is the current step reference")]
async fn reference_current(_world: &mut PlayWorld, file: String) {
    let path = crate::layout::current().root.join(&file);
    assert!(
        vocabulary::reference_is_current(
            &path,
            &super::definitions(),
            &crate::layout::current().features
        ),
        "{file} is out of date: regenerate it with `cargo run --bin rocky-e2e -- steps --write {file}`"
    );
}
