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
//! The HATCH checkpoints (contract §2: each scenario's final seal) are kept beside the reports
//! too: a phase's in `phases/<name>/checkpoints/`, and the merged set holds every phase's at
//! `target/rocky-e2e/checkpoints/<name>/` ([`publish_checkpoints`]), so the same scenario run
//! in two phases keeps two checkpoints.
//!
//! Without `ROCKY_E2E_PHASE` (a plain `cargo test`), a run writes its reports at
//! `target/rocky-e2e/` itself, as a run of its own, and its checkpoints in
//! `target/rocky-e2e/checkpoints/`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::chain::seal_check::{self, seals};
use crate::report::model::RunReport;

pub use crate::layout::{CHECKPOINTS, PHASE_ENV, checkpoints};

/// The phase this process runs as, if any ([`crate::layout::phase`]).
pub fn from_env() -> Result<Option<String>, String> {
    crate::layout::phase()
}

fn valid(phase: &str) -> Result<(), String> {
    crate::layout::valid_phase(phase)
}

/// Where a phase writes its own reports.
pub fn dir(root: &Path, phase: &str) -> PathBuf {
    crate::layout::phase_dir(root, phase)
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
    publish_checkpoints(root)?;
    if let Some(first) = phases.first() {
        let durations = dir(root, first).join("durations.json");
        if durations.is_file() {
            write(&root.join("durations.json"), read(&durations)?.as_bytes())?;
        }
    }
    Ok((phases.len(), scenarios))
}

/// The merged set's checkpoints: `root/checkpoints/<phase>/` holds a copy of every seal in
/// `root/phases/<phase>/checkpoints/`, for every phase folder that has one (a recorded phase,
/// or a run under nextest, which writes no reports of its own), and nothing else: seals its
/// phase no longer holds, the folders of phases gone from `phases/` and the seals a run
/// without a phase left at `root/checkpoints/` are removed there, as the merged reports
/// replace that run's. Each copy is written whole (mode 0600, renamed into place), so a
/// reader never sees half a seal. Returns how many seals it holds.
pub fn publish_checkpoints(root: &Path) -> Result<usize, String> {
    let merged = root.join(CHECKPOINTS);
    let mut kept = 0;
    let mut published = BTreeSet::new();
    for (phase, folder) in entries(&root.join("phases"))? {
        if valid(&phase).is_err() || !folder.join(CHECKPOINTS).is_dir() {
            continue;
        }
        let to = merged.join(&phase);
        let mut names = BTreeSet::new();
        for seal in seals(&folder.join(CHECKPOINTS))? {
            let bytes = std::fs::read(&seal)
                .map_err(|e| format!("failed to read {}: {e}", seal.display()))?;
            let name = seal.file_name().unwrap_or_default().to_owned();
            let copy = to.join(&name);
            std::fs::create_dir_all(&to)
                .and_then(|()| rocky::secure_file::write_private(&copy, &bytes))
                .map_err(|e| format!("failed to write {}: {e}", copy.display()))?;
            names.insert(name);
        }
        for stale in seals(&to)? {
            if !names.contains(stale.file_name().unwrap_or_default()) {
                remove(&stale)?;
            }
        }
        kept += names.len();
        published.insert(phase);
    }
    for (name, entry) in entries(&merged)? {
        if entry.is_dir() {
            if valid(&name).is_ok() && !published.contains(&name) {
                for stale in seals(&entry)? {
                    remove(&stale)?;
                }
                // Only when nothing but seals was there.
                let _ = std::fs::remove_dir(&entry);
            }
        } else if seal_check::is_seal(&entry) {
            remove(&entry)?;
        }
    }
    Ok(kept)
}

/// What a run without a phase does to the merged set's checkpoints: its reports replace the
/// merged reports at `root/`, so the phases' checkpoints there (`root/checkpoints/<phase>/`)
/// go too, and the folder holds only the checkpoints of the scenarios its reports show. The
/// phases' own folders (`root/phases/`) are left for the next phased run. Returns the seals
/// removed.
pub fn drop_merged_phase_checkpoints(root: &Path) -> Result<Vec<PathBuf>, String> {
    let mut removed = Vec::new();
    for (name, entry) in entries(&root.join(CHECKPOINTS))? {
        if entry.is_dir() && valid(&name).is_ok() {
            for stale in seals(&entry)? {
                remove(&stale)?;
                removed.push(stale);
            }
            // Only when nothing but seals was there.
            let _ = std::fs::remove_dir(&entry);
        }
    }
    Ok(removed)
}

/// The entries of `dir` (name, path), none if there is no such folder.
fn entries(dir: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let list = match std::fs::read_dir(dir) {
        Ok(list) => list,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("failed to read {}: {e}", dir.display())),
    };
    let mut out = Vec::new();
    for entry in list {
        let entry = entry.map_err(|e| format!("failed to read {}: {e}", dir.display()))?;
        if let Some(name) = entry.file_name().to_str() {
            out.push((name.to_owned(), entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

fn remove(path: &Path) -> Result<(), String> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("failed to remove {}: {e}", path.display())),
    }
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

    /// What a run with a phase keeps: a seal per scenario in `phases/<phase>/checkpoints/`.
    fn keep_seal(root: &Path, phase: Option<&str>, name: &str, seal: &str) {
        let d = checkpoints(root, phase);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(format!("{name}.seal")), seal).unwrap();
    }

    fn merged_seals(root: &Path) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (name, path) in entries(&root.join(CHECKPOINTS)).unwrap() {
            if path.is_dir() {
                for seal in seals(&path).unwrap() {
                    let file = seal.file_name().unwrap().to_string_lossy().into_owned();
                    out.push((
                        format!("{name}/{file}"),
                        std::fs::read_to_string(&seal).unwrap(),
                    ));
                }
            } else {
                out.push((name, std::fs::read_to_string(&path).unwrap()));
            }
        }
        out
    }

    /// Bug: a run without a phase replaced the merged reports but kept the phases' checkpoints
    /// beside them, so the folder showed checkpoints of scenarios no report showed.
    #[test]
    fn a_run_without_a_phase_drops_the_merged_phases_checkpoints() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        keep_seal(root, Some("px"), "play--a", "px's seal");
        publish_checkpoints(root).unwrap();
        assert_eq!(
            merged_seals(root),
            [("px/play--a.seal".to_owned(), "px's seal".to_owned())]
        );
        keep_seal(root, None, "left--b", "the plain run's seal");
        std::fs::write(root.join(CHECKPOINTS).join("px/notes.txt"), "not a seal").unwrap();
        let removed = drop_merged_phase_checkpoints(root).unwrap();
        assert_eq!(removed, [root.join(CHECKPOINTS).join("px/play--a.seal")]);
        assert_eq!(
            merged_seals(root),
            [("left--b.seal".to_owned(), "the plain run's seal".to_owned())]
        );
        // A folder holding more than seals stays, with what else it holds.
        assert!(root.join(CHECKPOINTS).join("px/notes.txt").is_file());
        // The phase's own checkpoints stay for its next run.
        assert!(checkpoints(root, Some("px")).join("play--a.seal").is_file());
    }

    /// Bug: every phase kept its checkpoints in `target/rocky-e2e/checkpoints/`, so a phase
    /// running a scenario another phase ran overwrote that phase's checkpoint. Each phase's
    /// are kept beside its reports, and the merged set shows every phase's, apart.
    #[test]
    fn the_merged_set_shows_every_phases_checkpoints_apart() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        assert_ne!(
            checkpoints(root, Some("alpha")),
            checkpoints(root, Some("beta"))
        );
        assert_eq!(checkpoints(root, None), root.join("checkpoints"));
        assert_eq!(
            checkpoints(root, Some("alpha")),
            root.join("phases/alpha/checkpoints")
        );
        // A plain run's checkpoints first: the merged set replaces that run's reports.
        keep_seal(root, None, "plain", "plain run");
        write_phase(root, "alpha", &[("a", Verdict::Passed)]);
        keep_seal(root, Some("alpha"), "play--a", "alpha's seal");
        publish(root).unwrap();
        write_phase(root, "beta", &[("a", Verdict::Passed)]);
        keep_seal(root, Some("beta"), "play--a", "beta's seal");
        keep_seal(root, Some("beta"), "play--b", "beta's other seal");
        publish(root).unwrap();
        assert_eq!(
            std::fs::read_to_string(checkpoints(root, Some("alpha")).join("play--a.seal")).unwrap(),
            "alpha's seal",
            "phase beta overwrote phase alpha's checkpoint"
        );
        let want = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect()
        };
        assert_eq!(
            merged_seals(root),
            want(&[
                ("alpha/play--a.seal", "alpha's seal"),
                ("beta/play--a.seal", "beta's seal"),
                ("beta/play--b.seal", "beta's other seal"),
            ])
        );
        // Copies are private, like the seals they copy.
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(root.join("checkpoints/alpha/play--a.seal"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        // Phase beta run again without one of its scenarios: the merged set follows it.
        std::fs::remove_file(checkpoints(root, Some("beta")).join("play--b.seal")).unwrap();
        publish(root).unwrap();
        assert_eq!(
            merged_seals(root),
            want(&[
                ("alpha/play--a.seal", "alpha's seal"),
                ("beta/play--a.seal", "beta's seal"),
            ])
        );
        // A fresh set (`rm -rf phases`): an old phase's checkpoints leave the merged set.
        std::fs::remove_dir_all(root.join("phases")).unwrap();
        write_phase(root, "gamma", &[("a", Verdict::Passed)]);
        keep_seal(root, Some("gamma"), "play--a", "gamma's seal");
        assert_eq!(publish_checkpoints(root).unwrap(), 1);
        assert_eq!(
            merged_seals(root),
            want(&[("gamma/play--a.seal", "gamma's seal")])
        );
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
