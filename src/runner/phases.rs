//! Reports of a job that runs the scenarios several times (topologies, shards, repeats).
//!
//! A run with `ROCKY_E2E_PHASE=<name>` writes its reports apart, in
//! `target/rocky-e2e/phases/<name>/` (`junit.xml`, `report.html`, `report.json`,
//! `messages.ndjson`, `cucumber.json`, `durations.json`), records the phase in `phases/order` (first seen first: the job runs the
//! phase that decides its verdict first), and then publishes one merged set at
//! `target/rocky-e2e/`: `junit.xml` with one `phase: <name>` suite per phase, `report.html`
//! and `report.json` with every phase's scenarios marked by phase, `messages.ndjson` and
//! `cucumber.json` rendered from that merged report (every phase's scenarios, ids and names
//! carrying the phase), and the verdict phase's
//! `durations.json`. No phase overwrites another's reports; running a phase again replaces
//! only its own.
//!
//! Without `ROCKY_E2E_PHASE` (a plain `cargo test`), a run writes its reports at
//! `target/rocky-e2e/` itself, as a run of its own.

use std::path::{Path, PathBuf};

use crate::report::model::RunReport;

/// The variable naming the phase of a run.
pub const PHASE_ENV: &str = "ROCKY_E2E_PHASE";

/// The phase this process runs as, if any. A name is a path segment of `[A-Za-z0-9._-]`.
pub fn from_env() -> Result<Option<String>, String> {
    match std::env::var(PHASE_ENV) {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{PHASE_ENV} is not valid UTF-8")),
        Ok(p) if p.is_empty() => Ok(None),
        Ok(p) => valid(&p).map(|()| Some(p)),
    }
}

fn valid(phase: &str) -> Result<(), String> {
    if phase.starts_with('.')
        || !phase
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(format!(
            "{PHASE_ENV}={phase:?}: a phase name is letters, digits, `.`, `_` and `-` (it names a folder), not starting with `.`"
        ));
    }
    Ok(())
}

/// Where a phase writes its own reports.
pub fn dir(root: &Path, phase: &str) -> PathBuf {
    root.join("phases").join(phase)
}

fn order_file(root: &Path) -> PathBuf {
    root.join("phases").join("order")
}

/// The phases recorded under `root`, first seen first.
pub fn order(root: &Path) -> Result<Vec<String>, String> {
    match std::fs::read_to_string(order_file(root)) {
        Ok(text) => Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!(
            "failed to read {}: {e}",
            order_file(root).display()
        )),
    }
}

/// Adds `phase` to the order (once); returns the order.
pub fn record(root: &Path, phase: &str) -> Result<Vec<String>, String> {
    valid(phase)?;
    let mut phases = order(root)?;
    if !phases.iter().any(|p| p == phase) {
        phases.push(phase.to_owned());
        let file = order_file(root);
        let mut text = phases.join("\n");
        text.push('\n');
        write(&file, text.as_bytes())?;
    }
    Ok(phases)
}

/// Publishes the merged set of every recorded phase at `root`; returns how many phases (and
/// scenarios) it holds. A recorded phase whose reports are missing is an error: a merged set
/// that silently lacks a phase is what this module exists to prevent.
pub fn publish(root: &Path) -> Result<(usize, usize), String> {
    let phases = order(root)?;
    let mut junits = Vec::new();
    let mut reports = Vec::new();
    for p in &phases {
        let d = dir(root, p);
        junits.push(read(&d.join("junit.xml"))?);
        let json = read(&d.join("report.json"))?;
        let report: RunReport = serde_json::from_str(&json)
            .map_err(|e| format!("failed to read {}: {e}", d.join("report.json").display()))?;
        reports.push((p.clone(), report));
    }
    let junit = crate::report::junit::merge(&junits)?;
    let merged = RunReport::merge(reports);
    let scenarios = merged.scenarios.len();
    write(&root.join("junit.xml"), junit.as_bytes())?;
    write(
        &root.join("report.html"),
        crate::report::html::render(&merged).as_bytes(),
    )?;
    write(&root.join("report.json"), &json_of(&merged)?)?;
    write_cucumber_reports(root, &merged)?;
    if let Some(first) = phases.first() {
        let durations = dir(root, first).join("durations.json");
        if durations.is_file() {
            write(&root.join("durations.json"), read(&durations)?.as_bytes())?;
        }
    }
    Ok((phases.len(), scenarios))
}

/// `messages.ndjson` (Cucumber Messages) and `cucumber.json` (Cucumber JSON) of `report`,
/// in `dir`.
pub fn write_cucumber_reports(dir: &Path, report: &RunReport) -> Result<(), String> {
    let messages = crate::report::messages::render(report)
        .map_err(|e| format!("failed to write {}: {e}", dir.join(MESSAGES).display()))?;
    write(&dir.join(MESSAGES), messages.as_bytes())?;
    let json = crate::report::cucumber_json::render(report)
        .map_err(|e| format!("failed to write {}: {e}", dir.join(CUCUMBER_JSON).display()))?;
    write(&dir.join(CUCUMBER_JSON), json.as_bytes())
}

/// The Cucumber Messages file of a run (and of a merged set).
pub const MESSAGES: &str = "messages.ndjson";
/// The Cucumber JSON file of a run (and of a merged set).
pub const CUCUMBER_JSON: &str = "cucumber.json";

/// A report as the JSON a merge reads back.
pub fn json_of(report: &RunReport) -> Result<Vec<u8>, String> {
    serde_json::to_vec_pretty(report).map_err(|e| format!("failed to encode the report: {e}"))
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("failed to read {}: {e}", path.display()))
}

/// Writes via a new file renamed into place, so a reader never sees half a report.
fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    let tmp = parent.join(format!(
        ".{}.{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes).map_err(|e| format!("failed to write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("failed to write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{ScenarioReport, Verdict};

    /// What the runner writes for one phase.
    fn write_phase(root: &Path, phase: &str, scenarios: &[(&str, Verdict)]) {
        let d = dir(root, phase);
        let mut report = RunReport::new(
            format!("{phase} topology"),
            1000,
            scenarios
                .iter()
                .map(|(name, verdict)| ScenarioReport {
                    feature: "play".into(),
                    name: (*name).into(),
                    verdict: *verdict,
                    uri: "features/play.feature".into(),
                    line: if *name == "a" { 2 } else { 4 },
                    ..Default::default()
                })
                .collect(),
        );
        report.sources = vec![crate::report::model::FeatureSource {
            uri: "features/play.feature".into(),
            text: "Feature: play\n  Scenario: a\n    Given a rocky stack\n  Scenario: b\n    Given a rocky stack\n".into(),
        }];
        report.summary.started_unix_ns = Some(1_000_000_000);
        let cases: String = scenarios
            .iter()
            .map(|(name, v)| {
                let body = if *v == Verdict::Failed {
                    "<failure message=\"boom\"/>"
                } else {
                    ""
                };
                format!("<testcase name=\"[{phase}] play::{name}\" time=\"1\">{body}</testcase>")
            })
            .collect();
        let junit = format!(
            "<?xml version=\"1.0\"?><testsuites><testsuite name=\"{}\">{cases}</testsuite></testsuites>",
            crate::report::junit::phase_suite(phase)
        );
        write(&d.join("junit.xml"), junit.as_bytes()).unwrap();
        write(&d.join("report.json"), &json_of(&report).unwrap()).unwrap();
        write(
            &d.join("durations.json"),
            format!("{{\"{phase}\":1}}").as_bytes(),
        )
        .unwrap();
        record(root, phase).unwrap();
    }

    #[test]
    fn two_phases_publish_one_merged_set_with_the_verdicts_phase_first() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        write_phase(
            root,
            "docker",
            &[("a", Verdict::Passed), ("b", Verdict::Passed)],
        );
        assert_eq!(publish(root).unwrap(), (1, 2));
        write_phase(root, "embedded", &[("a", Verdict::Failed)]);
        assert_eq!(publish(root).unwrap(), (2, 3));

        // Each phase's own reports are still there, apart.
        for p in ["docker", "embedded"] {
            assert!(dir(root, p).join("junit.xml").is_file(), "{p}");
        }
        // JUnit: every case of both phases, each marked, the verdict's phase first.
        let junit = std::fs::read_to_string(root.join("junit.xml")).unwrap();
        let cases = crate::report::junit::parse(&junit).unwrap();
        let names: Vec<(&str, &str)> = cases
            .iter()
            .map(|c| (c.suite.as_str(), c.name.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("phase: docker", "[docker] play::a"),
                ("phase: docker", "[docker] play::b"),
                ("phase: embedded", "[embedded] play::a"),
            ]
        );
        // The results table names both phases, and the failure's.
        let table = crate::report::markdown::junit_table(&junit);
        assert!(table.contains("| docker | 2 | 0 |"), "{table}");
        assert!(table.contains("| embedded | 0 | 1 |"), "{table}");
        assert!(table.contains("embedded:"), "{table}");
        // The HTML: both phases, in order, every scenario marked.
        let html = std::fs::read_to_string(root.join("report.html")).unwrap();
        let (d, e) = (
            html.find("data-phase=\"docker\"").unwrap(),
            html.find("data-phase=\"embedded\"").unwrap(),
        );
        assert!(d < e, "the verdict's phase comes first");
        assert_eq!(html.matches("class=\"phase-tag\"").count(), 3, "{html}");
        let merged: RunReport =
            serde_json::from_str(&std::fs::read_to_string(root.join("report.json")).unwrap())
                .unwrap();
        assert_eq!(merged.summary.phases.len(), 2);
        assert_eq!(merged.summary.counts.failed, 1);
        assert_eq!(merged.summary.counts.passed, 2);
        // Cucumber Messages and Cucumber JSON: every scenario of both phases, by phase.
        let messages = std::fs::read_to_string(root.join(MESSAGES)).unwrap();
        let pickles: Vec<&str> = messages
            .lines()
            .filter(|l| l.starts_with("{\"pickle\""))
            .collect();
        assert_eq!(
            pickles.len(),
            3,
            "the merged messages.ndjson must hold a pickle per scenario of every phase:\n{}",
            pickles.join("\n")
        );
        assert!(pickles[2].contains("\"id\":\"pickle:embedded/features/play.feature:2\""));
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(root.join(CUCUMBER_JSON)).unwrap())
                .unwrap();
        let names: Vec<&str> = json[0]["elements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["[docker] a", "[docker] b", "[embedded] a"]);
        // The durations the shards pack by are the verdict phase's.
        assert_eq!(
            std::fs::read_to_string(root.join("durations.json")).unwrap(),
            "{\"docker\":1}"
        );

        // Running a phase again replaces its own reports, not the other's, and keeps the order.
        write_phase(root, "docker", &[("a", Verdict::Passed)]);
        assert_eq!(publish(root).unwrap(), (2, 2));
        assert_eq!(order(root).unwrap(), ["docker", "embedded"]);
    }

    #[test]
    fn a_recorded_phase_without_reports_is_an_error_not_a_smaller_set() {
        let root = tempfile::tempdir().unwrap();
        record(root.path(), "gone").unwrap();
        let err = publish(root.path()).unwrap_err();
        assert!(err.contains("phases/gone/junit.xml"), "{err}");
    }

    #[test]
    fn a_phase_name_is_one_folder() {
        for bad in ["../x", "a/b", ".hidden", "a b"] {
            assert!(valid(bad).is_err(), "{bad}");
        }
        for good in ["docker", "embedded-chaos.3", "shard_1"] {
            assert!(valid(good).is_ok(), "{good}");
        }
    }
}
