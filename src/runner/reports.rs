//! What a run writes: JUnit, the HTML report, its JSON, Cucumber Messages and Cucumber JSON,
//! the durations and the last run's verdicts, apart per phase with one merged set
//! ([`super::phases`]); and the snapshots no scenario asserts any more.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::options::RunOptions;
use super::outcome::{self, Outcome};
use super::{last_run, phases, shard};
use crate::say;
use crate::topology;
use crate::vocabulary;

/// What the HTML report shows of a run.
fn report_of(
    outcomes: &[Outcome],
    wall: std::time::Duration,
    started_unix_ns: u64,
    topology: &str,
) -> Result<crate::report::model::RunReport, String> {
    use crate::report::model::{
        AttemptReport, EvidenceItem, FeatureSource, Log, RunReport, ScenarioReport,
        StepDefinitionReport,
    };
    let mut sources: Vec<FeatureSource> = Vec::new();
    for o in outcomes {
        let uri = outcome::shown(&o.entry.path);
        if !sources.iter().any(|s| s.uri == uri) {
            let text = std::fs::read_to_string(&o.entry.path)
                .map_err(|e| format!("failed to read {}: {e}", o.entry.path.display()))?;
            sources.push(FeatureSource { uri, text });
        }
    }
    let step_definitions = crate::steps::definitions()
        .into_iter()
        .map(|d| {
            let (uri, line) = d.location.rsplit_once(':').unwrap_or((&d.location, "0"));
            StepDefinitionReport {
                kind: vocabulary::kind_name(d.kind).to_owned(),
                is_regex: d.pattern == d.regex.as_str(),
                pattern: d.pattern.clone(),
                regex: d.regex.as_str().to_owned(),
                uri: uri.to_owned(),
                line: line.parse().unwrap_or(0),
            }
        })
        .collect();
    let scenarios = outcomes
        .iter()
        .map(|o| {
            let (feature, name) = o
                .entry
                .name
                .rsplit_once("::")
                .unwrap_or(("", o.entry.name.as_str()));
            let mut s = ScenarioReport {
                feature: feature.to_owned(),
                name: name.to_owned(),
                verdict: o.verdict(),
                duration_ms: o.duration().as_millis() as u64,
                skip_reason: o.skipped.clone(),
                uri: outcome::shown(&o.entry.path),
                line: u32::try_from(o.entry.line).unwrap_or(u32::MAX),
                tags: o.entry.tags.clone(),
                attempts: o
                    .attempts
                    .iter()
                    .map(|a| AttemptReport {
                        started_unix_ns: a.started_unix_ns,
                        duration_ns: u64::try_from(a.duration.as_nanos()).unwrap_or(u64::MAX),
                        passed: a.passed,
                        steps: a.steps.clone(),
                        hook_failure: a.hook_failure.clone(),
                        failure: a.failure.clone(),
                    })
                    .collect(),
                ..Default::default()
            };
            if let Some(d) = &o.detail {
                s.chain = d.chain.clone();
                s.acts = d.acts.clone();
                s.evidence = d.evidence.iter().cloned().map(EvidenceItem::from).collect();
                s.logs = d
                    .logs
                    .iter()
                    .map(|(name, text)| Log {
                        name: name.clone(),
                        text: text.clone(),
                    })
                    .collect();
            }
            if o.verdict() == outcome::Verdict::Failed {
                let message = o
                    .attempts
                    .last()
                    .and_then(|a| a.failure.clone())
                    .unwrap_or_else(|| "the scenario did not run".into());
                match o.detail.as_ref().and_then(|d| d.gap.clone()) {
                    // The gap report says what failed; the step's own words, if any, beside it.
                    Some((note, gap)) => s.fail(note.as_deref(), Some(gap)),
                    None => s.fail(Some(&message), None),
                }
                s.snapshot = o.detail.as_ref().and_then(|d| d.snapshot.clone());
            }
            s
        })
        .collect();
    let mut report = RunReport::new(topology, wall.as_millis() as u64, scenarios);
    report.summary.started_unix_ns = Some(started_unix_ns);
    report.sources = sources;
    report.step_definitions = step_definitions;
    Ok(report)
}

/// JUnit, the HTML report and the durations file, under `target/rocky-e2e/` (the HATCH
/// checkpoints in its `checkpoints/`); with `ROCKY_E2E_PHASE`, under
/// `target/rocky-e2e/phases/<phase>/`, then the merged set of every phase at
/// `target/rocky-e2e/` ([`phases`]).
pub(super) fn write_reports(
    opts: &RunOptions,
    paths: &[PathBuf],
    outcomes: &[Outcome],
    wall: std::time::Duration,
    started_unix_ns: u64,
    topology: &topology::Topology,
) -> Result<(), String> {
    let root = crate::layout::target_dir();
    let phase = phases::from_env()?;
    let dir = match &phase {
        Some(p) => phases::dir(&root, p),
        None => root.clone(),
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let junit = outcome::junit_of_phase(outcomes, wall, phase.as_deref())?;
    let mut junit_paths = vec![dir.join("junit.xml")];
    if let Some(p) = &opts.junit {
        junit_paths = vec![p.clone()];
        if phase.is_some() {
            // The merge reads the phase's own copy.
            junit_paths.push(dir.join("junit.xml"));
        }
    }
    for path in &junit_paths {
        std::fs::write(path, &junit)
            .map_err(|e| format!("failed to write {}: {e}", path.display()))?;
    }
    say!("rocky-e2e: JUnit report {}", junit_paths[0].display());
    let report = report_of(outcomes, wall, started_unix_ns, &topology.description)?;
    let html = dir.join("report.html");
    std::fs::write(&html, crate::report::html::render(&report))
        .map_err(|e| format!("failed to write {}: {e}", html.display()))?;
    say!("rocky-e2e: report {}", html.display());
    phases::write_cucumber_reports(&dir, &report)?;
    say!(
        "rocky-e2e: Cucumber reports {} and {}",
        dir.join(phases::MESSAGES).display(),
        dir.join(phases::CUCUMBER_JSON).display()
    );
    let durations: BTreeMap<String, std::time::Duration> = outcomes
        .iter()
        .filter_map(|o| {
            o.attempts
                .last()
                .map(|a| (o.entry.name.clone(), a.duration))
        })
        .collect();
    shard::write_durations(&dir.join("durations.json"), &durations)?;
    // The checkpoints beside these reports are this run's scenarios' (contract §2).
    let checkpoints = phases::checkpoints(&root, phase.as_deref());
    crate::chain::seal_check::prune(&checkpoints)?;
    if phase.is_none() {
        phases::drop_merged_phase_checkpoints(&root)?;
    }
    say!("rocky-e2e: HATCH checkpoints {}", checkpoints.display());
    if let Some(p) = &phase {
        // The merge reads every phase's whole report back, steps and sources included.
        let json = dir.join("report.json");
        std::fs::write(&json, phases::json_of(&report)?)
            .map_err(|e| format!("failed to write {}: {e}", json.display()))?;
        let order = phases::record(&root, p)?;
        let (n, scenarios) = phases::publish(&root)?;
        say!(
            "rocky-e2e: phase {p}: merged reports of {n} phase(s) ({}), {scenarios} scenario results, at {}",
            order.join(", "),
            root.display()
        );
    }
    // The last run of this checkout, whatever its phase: what `--last-failed` reruns.
    last_run::write(
        &root.join(last_run::FILE),
        &last_run::LastRun::of(paths, outcomes),
    )
}

/// Snapshot files in `snapshots/` that no scenario asserts.
pub(super) fn orphan_snapshots(referenced: &BTreeSet<String>) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(&crate::layout::current().snapshots) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "snap"))
        .filter(|p| {
            p.file_stem()
                .is_some_and(|s| !referenced.contains(s.to_string_lossy().as_ref()))
        })
        .collect();
    out.sort();
    out
}
