//! What a scenario author relies on, seen from outside: `rocky-e2e play` on a checkout of its
//! own (a temporary folder with `features/`, on the embedded topology), so this test's runs
//! never touch this checkout's `target/rocky-e2e/`.
//!
//! - "the run" follows prose (CONTRACT §10): a scenario that submits two runs one after the
//!   other and then says "the run" fails naming both runs and the workspace-scoped step; when
//!   both are in one workspace, that step would not tell them apart, so "the run" and "the run
//!   in workspace" fail alike, naming both runs and how to name each as it is submitted.
//! - `--last-failed` reruns exactly the scenarios that failed in the last run, and says so
//!   (running nothing) when none did; its libtest JSON has the suite and test events. A failure
//!   outside `features/` is rerun from where it ran; one that cannot be found any more, or no
//!   last run at all, fails saying so.

use std::path::PathBuf;
use std::process::Output;

use crate::support;

use support::copy_dir;

/// A checkout of its own: `features/` with the tiers, a scenario that passes and the
/// ambiguous-referent fixture; the binaries beside a copy of `rocky-e2e`.
struct Checkout {
    _dir: tempfile::TempDir,
    bin: PathBuf,
    root: PathBuf,
}

const AMBIGUOUS: &str = "ambiguous_run::two runs submitted, then \"the run\"";

impl Checkout {
    fn new() -> Checkout {
        let dir = tempfile::tempdir().unwrap();
        let bin = support::install_binaries(dir.path());
        let root = dir.path().join("checkout");
        support::seed_standin_cache(&root);
        let source = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let features = root.join("features");
        copy_dir(&source.join("features/tiers"), &features.join("tiers"));
        std::fs::copy(
            source.join("steps/fixtures/ambiguous_run/ambiguous_run.feature"),
            features.join("ambiguous_run.feature"),
        )
        .unwrap();
        std::fs::write(
            features.join("passes.feature"),
            "Feature: passes\n  Scenario: a workspace comes and goes\n    Given a rocky stack\n    When I provision workspace \"a\" on tier \"solo\"\n    Then workspace \"a\" is ready\n    When I tear down workspace \"a\"\n    Then nothing of workspace \"a\" remains\n",
        )
        .unwrap();
        Checkout {
            _dir: dir,
            bin,
            root,
        }
    }

    /// `rocky-e2e play ARGS` in this checkout, on the embedded topology: what is checked here
    /// (referents, --last-failed) does not depend on it, and four plays on Docker cost the
    /// required check ten seconds.
    fn play(&self, args: &[&str]) -> (Output, String) {
        support::run(
            support::embedded(&self.bin.join("rocky-e2e"), &self.root)
                .arg("play")
                .args(args),
        )
    }
}

/// The libtest JSON lines of stdout.
fn events(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The names of the tests with `event` in the libtest JSON lines.
fn tests_with(events: &[serde_json::Value], event: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["type"] == "test" && e["event"] == event)
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn an_ambiguous_run_fails_naming_both_and_last_failed_reruns_exactly_it() {
    let checkout = Checkout::new();

    // The whole suite: one scenario passes, the ambiguous one fails, naming both runs.
    let (out, text) = checkout.play(&[]);
    assert!(
        !out.status.success(),
        "the ambiguous scenario passed:\n{text}"
    );
    let naming = regex_like(&text);
    assert!(naming, "the failure does not name both runs:\n{text}");
    assert!(
        text.contains(r#"say which, e.g. `When the run in workspace "two" ends`"#),
        "the failure does not name the workspace-scoped step:\n{text}"
    );
    assert!(text.contains("2 scenarios: 1 passed, 1 failed"), "{text}");

    // --last-failed: exactly the failed scenario, with the libtest JSON IDEs read.
    let (out, text) = checkout.play(&["--last-failed", "--format", "json"]);
    assert!(!out.status.success(), "{text}");
    let events = events(&out);
    assert_eq!(
        events.first().map(|e| (
            e["type"].clone(),
            e["event"].clone(),
            e["test_count"].clone()
        )),
        Some(("suite".into(), "started".into(), 1.into())),
        "{text}"
    );
    assert_eq!(tests_with(&events, "started"), [AMBIGUOUS], "{text}");
    assert_eq!(tests_with(&events, "failed"), [AMBIGUOUS], "{text}");
    let last = events.last().unwrap();
    assert_eq!(
        (
            last["type"].as_str(),
            last["event"].as_str(),
            last["failed"].as_u64()
        ),
        (Some("suite"), Some("failed"), Some(1)),
        "{text}"
    );
    assert_eq!(last["filtered_out"].as_u64(), Some(1), "{text}");

    // A run where nothing fails: --last-failed then says so and runs nothing.
    let (out, text) = checkout.play(&["features/passes.feature"]);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 scenarios: 1 passed"), "{text}");
    let (out, text) = checkout.play(&["--last-failed"]);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("--last-failed: no scenario failed or was flaky in the last run"),
        "{text}"
    );
    assert!(
        !text.contains("Scenario:"),
        "--last-failed ran something:\n{text}"
    );
}

#[test]
fn last_failed_reruns_a_failure_outside_features_and_fails_on_what_it_cannot_find() {
    let checkout = Checkout::new();
    let (out, text) = checkout.play(&["--last-failed"]);
    assert!(
        !out.status.success(),
        "--last-failed with no last run passed:\n{text}"
    );
    assert!(
        text.contains("--last-failed: no last run is recorded for this checkout"),
        "{text}"
    );
    assert!(!text.contains("Scenario:"), "{text}");

    // A scenario that fails at once, in a file outside features/.
    let elsewhere = tempfile::tempdir().unwrap();
    let ext = elsewhere.path().join("ext.feature");
    std::fs::write(
        &ext,
        "Feature: ext\n  Scenario: external fails\n    When the features in \"features/passes.feature\" are checked\n    Then the check reports \"a problem nobody wrote\"\n",
    )
    .unwrap();
    let (out, text) = checkout.play(&[ext.to_str().unwrap()]);
    assert!(!out.status.success(), "{text}");
    const EXT: &str = "ext::external fails";
    assert!(text.contains(EXT), "{text}");

    // --last-failed, no paths: the last run's paths, so exactly that scenario runs again.
    let (out, text) = checkout.play(&["--last-failed", "--format", "json"]);
    assert!(!out.status.success(), "{text}");
    let events = events(&out);
    assert_eq!(tests_with(&events, "started"), [EXT], "{text}");
    assert_eq!(tests_with(&events, "failed"), [EXT], "{text}");

    // Gone: an error naming it, nothing run.
    std::fs::remove_file(&ext).unwrap();
    let (out, text) = checkout.play(&["--last-failed"]);
    assert!(!out.status.success(), "{text}");
    for needle in [
        "--last-failed: 1 scenario(s) that failed or were flaky in the last run are not in",
        &format!("({} no longer exists)", ext.display()),
        &format!("any more: {EXT}; nothing was run"),
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
    assert!(!text.contains("Scenario:"), "{text}");
}

/// `"the run" could mean run R1 in workspace "one" or run R2 in workspace "two"`.
fn regex_like(text: &str) -> bool {
    let Some(at) = text.find("\"the run\" could mean run ") else {
        return false;
    };
    let line = text[at..].lines().next().unwrap_or("");
    line.contains(r#" in workspace "one" or run "#) && line.contains(r#" in workspace "two": "#)
}

/// What both steps advise when two runs of one workspace are candidates.
const ALIKE_ADVICE: &str = "they were submitted in workspace \"one\" one after the other, with no \
     step naming one in between. Name each run right after submitting it, before submitting \
     the next, e.g. `Then the run is accepted`";

#[test]
fn two_runs_in_one_workspace_fail_the_bare_and_the_scoped_step_naming_both() {
    let checkout = Checkout::new();
    std::fs::copy(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("steps/fixtures/runs_in_one_workspace/runs_in_one_workspace.feature"),
        checkout.root.join("features/runs_in_one_workspace.feature"),
    )
    .unwrap();
    let (out, text) = checkout.play(&["features/runs_in_one_workspace.feature"]);
    assert!(
        !out.status.success(),
        "a step meaning one of two runs passed:\n{text}"
    );
    // The three that leave "the run" to guess fail; the fourth names each run as it is
    // submitted, as the advice says, and passes.
    assert!(text.contains("4 scenarios: 1 passed, 3 failed"), "{text}");
    assert!(
        text.contains(
            "✔ runs_in_one_workspace::two runs in one workspace, each named as it is submitted"
        ),
        "the scenario following the advice did not pass:\n{text}"
    );
    assert!(
        !text.contains("say which"),
        "a failure suggests the workspace-scoped step, which would not tell the runs apart:\n{text}"
    );

    // `When the run ends`.
    let bare = messages(&text, r#""the run" could mean run "#);
    let [line] = bare.as_slice() else {
        panic!("not one failure of `When the run ends`: {bare:?}\n{text}");
    };
    let [a, b] = run_ids(line);
    assert_eq!(
        *line,
        format!(
            r#""the run" could mean run {a} in workspace "one" or run {b} in workspace "one", and the workspace-scoped step would not tell run {a} and run {b} apart: {ALIKE_ADVICE}"#
        ),
        "{text}"
    );

    // `When the run in workspace "one" ends`, `Then the run status in workspace "one" is …`.
    let scoped = messages(&text, r#""the run" in workspace "one" could mean run "#);
    assert_eq!(scoped.len(), 2, "{scoped:?}\n{text}");
    for line in scoped {
        let [a, b] = run_ids(&line);
        assert_eq!(
            line,
            format!(
                r#""the run" in workspace "one" could mean run {a} or run {b}: {ALIKE_ADVICE}"#
            ),
            "{text}"
        );
    }
}

/// Every failure message in `text` that starts with `start`, to the end of its line.
fn messages(text: &str, start: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.find(start).map(|at| l[at..].to_owned()))
        .collect()
}

/// The two run ids a message names (`run-…`), in order.
fn run_ids(line: &str) -> [String; 2] {
    let mut ids: Vec<String> = Vec::new();
    for word in line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
        if word.starts_with("run-") && !ids.iter().any(|i| i == word) {
            ids.push(word.to_owned());
        }
    }
    ids.try_into()
        .unwrap_or_else(|ids| panic!("not two run ids: {ids:?} in {line}"))
}
