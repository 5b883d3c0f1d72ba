//! The scenario runner shared by the `scenarios` test target (cargo test, nextest) and
//! `rocky-e2e play`: which scenarios run, how many times, and what is reported.
//!
//! - [`layout`]: where features, snapshots and tiers are (the current checkout, never the
//!   build's).
//! - [`catalogue`]: every scenario as one named test; [`shard`] splits them across runners.
//! - [`vocabulary`]: the static check of every step before anything starts.
//! - [`pass`]: one cucumber pass over a set of scenarios; [`output`] prints each scenario's
//!   block whole; [`record`] keeps what each attempt and World saw.
//! - [`outcome`]: verdicts (passed, failed, flaky, skipped), JUnit, the summary.
//! - [`phases`]: a job's several runs (`ROCKY_E2E_PHASE`), each reported apart, one merged set
//!   published.
//! - [`options`], [`input`]: the options, and the folder cucumber parses.

pub mod catalogue;
pub mod input;
pub mod last_run;

pub mod options;
pub mod outcome;
pub mod output;
pub mod pass;
pub mod phases;
pub mod record;
pub mod shard;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use std::time::Instant;

use cucumber::gherkin;
use cucumber::tag::Ext as _;

pub use crate::steps::world::PlayWorld;
pub use options::{RunOptions, Selection};

use crate::say;
use crate::topology;
use crate::vocabulary;
use catalogue::Entry;
use outcome::Outcome;

/// Whether this process runs one test for cargo-nextest.
pub fn under_nextest() -> bool {
    std::env::var_os("NEXTEST").is_some()
}

/// The scenarios a run selects: everything under its inputs, then its filters and shard.
pub struct Plan {
    /// Every scenario of the inputs (what nextest lists).
    pub all: Vec<Entry>,
    /// The ones to run.
    pub selected: Vec<Entry>,
    /// Whether the whole of `features/` was read (the orphan-snapshot check needs it).
    pub whole_suite: bool,
    /// With `--last-failed` and nothing to run again: why (the run then starts nothing).
    pub nothing_failed: Option<String>,
    /// With `--shard`: the packing's longest shard ÷ the ideal (1.0 is perfect), by the
    /// durations given (every scenario weighs 1 without them).
    pub packing: Option<f64>,
}

/// Resolves the layout and the catalogue, and applies the options' filters.
pub fn plan(opts: &RunOptions, selection: &Selection) -> Result<Plan, String> {
    let layout = crate::layout::set(crate::layout::Layout::resolve(
        opts.features_dir.as_deref(),
    )?);
    let (paths, words): (Vec<PathBuf>, Vec<PathBuf>) =
        opts.paths.iter().cloned().partition(|p| p.exists());
    let words: Vec<String> = words
        .iter()
        .map(|w| w.to_string_lossy().into_owned())
        .collect();
    if let Some(missing) = words
        .iter()
        .find(|w| w.contains('/') || w.ends_with(".feature"))
    {
        return Err(format!("{missing} does not exist"));
    }
    let inputs = if paths.is_empty() {
        vec![layout.features.clone()]
    } else {
        paths.clone()
    };
    let all = catalogue::catalogue(&inputs, &layout.features)?;
    let tags = match opts.tags.as_deref() {
        None => None,
        Some(t) => Some(
            t.parse::<gherkin::tagexpr::TagOperation>()
                .map_err(|e| format!("invalid tag expression {t:?}: {e}"))?,
        ),
    };
    let name = match opts.name.as_deref() {
        None => None,
        Some(n) => Some(
            cucumber::codegen::Regex::new(n).map_err(|e| format!("invalid --name regex: {e}"))?,
        ),
    };
    let mut selected: Vec<Entry> = all
        .iter()
        .filter(|e| match selection {
            Selection::All => true,
            Selection::Exact(n) => &e.name == n,
        })
        .filter(|e| words.is_empty() || words.iter().any(|w| e.name.contains(w.as_str())))
        .filter(|e| {
            // gherkin keeps tags without their `@`, as the catalogue does.
            tags.as_ref().is_none_or(|t| t.eval(e.tags.iter()))
        })
        .filter(|e| {
            name.as_ref()
                .is_none_or(|re| re.is_match(e.name.rsplit_once("::").map_or("", |(_, s)| s)))
        })
        .cloned()
        .collect();
    if let Selection::Exact(n) = selection
        && selected.is_empty()
    {
        return Err(format!("no scenario is named {n:?}"));
    }
    if selected.is_empty() && (!words.is_empty() || tags.is_some() || name.is_some()) {
        // A filter that selects nothing is a typo, not a green run.
        return Err(format!(
            "no scenario matches the filters (tags {:?}, name {:?}, words {words:?}) among {} scenarios",
            opts.tags.as_deref().unwrap_or("-"),
            opts.name.as_deref().unwrap_or("-"),
            all.len()
        ));
    }
    let mut nothing_failed = None;
    if opts.last_failed {
        let file = last_run::path();
        let last = last_run::read(&file)?.unwrap_or_default();
        let rerun: BTreeSet<&str> = last.to_rerun().into_iter().collect();
        selected.retain(|e| rerun.contains(e.name.as_str()));
        if selected.is_empty() {
            nothing_failed = Some(if rerun.is_empty() {
                format!(
                    "--last-failed: no scenario failed or was flaky in the last run ({}): nothing to run",
                    file.display()
                )
            } else {
                format!(
                    "--last-failed: the scenarios that failed last time ({}) are not among those selected now: nothing to run",
                    rerun.into_iter().collect::<Vec<_>>().join(", ")
                )
            });
        }
    }
    let mut packing = None;
    if let Some(shard) = opts.shard {
        let durations = match &opts.durations {
            Some(p) => shard::read_durations(p)?,
            None => shard::Durations::new(),
        };
        packing = Some(shard::packing_ratio(&selected, shard.count, &durations));
        selected = shard::select(selected, shard, &durations);
    }
    Ok(Plan {
        all,
        selected,
        whole_suite: paths.is_empty() && !opts.last_failed,
        nothing_failed,
        packing,
    })
}

/// Runs the selected scenarios; returns true when the run passes.
pub async fn run(opts: RunOptions, policy: topology::Policy, selection: Selection) -> bool {
    match run_inner(opts, policy, selection).await {
        Ok(ok) => ok,
        Err(e) => {
            eprintln!("rocky-e2e: {e}");
            false
        }
    }
}

async fn run_inner(
    opts: RunOptions,
    policy: topology::Policy,
    selection: Selection,
) -> Result<bool, String> {
    let started = Instant::now();
    let started_unix_ns = record::unix_ns_now();
    crate::say::STDOUT_IS_JSON.store(
        opts.format.as_deref() == Some("json"),
        std::sync::atomic::Ordering::Relaxed,
    );
    let plan = plan(&opts, &selection)?;
    if let Some(why) = &plan.nothing_failed {
        say!("rocky-e2e: {why}");
        return Ok(true);
    }
    if opts.last_failed {
        say!(
            "rocky-e2e: --last-failed: {} scenario(s) that failed or were flaky in the last run",
            plan.selected.len()
        );
    }
    let layout = crate::layout::current();
    let (paths, _): (Vec<PathBuf>, Vec<PathBuf>) =
        opts.paths.iter().cloned().partition(|p| p.exists());
    let input = input::Input::new(&paths, layout.features.clone())?;
    let defs = crate::steps::definitions();
    let check = vocabulary::check(&input.path, &defs);
    if !check.problems.is_empty() {
        let mut msg = String::from("the features do not match the step vocabulary:\n\n");
        for p in &check.problems {
            msg.push_str(&format!("{p}\n\n"));
        }
        msg.push_str(&format!(
            "{} problem(s); nothing was started. `rocky-e2e steps` lists every defined step.",
            check.problems.len()
        ));
        return Err(msg);
    }
    if opts.dry_run {
        say!(
            "dry run: {} features, {} scenarios ({} selected{}), {} steps, all defined, none ambiguous ({:.1?}); nothing started",
            check.features,
            check.scenarios,
            plan.selected.len(),
            opts.shard
                .map(|s| format!(" in shard {s}"))
                .unwrap_or_default(),
            check.steps,
            started.elapsed()
        );
        return Ok(true);
    }
    let topology = topology::init(policy).await?;
    say!("rocky-e2e {}", topology.description);
    if let Some(shard) = opts.shard {
        say!(
            "rocky-e2e: shard {shard}: {} of {} scenarios (packing: longest shard / ideal = {:.3})",
            plan.selected.len(),
            plan.all.len(),
            plan.packing.unwrap_or(1.0)
        );
    }

    let json = crate::say::stdout_is_json();
    if json {
        output::libtest_line(&serde_json::json!({
            "type": "suite",
            "event": "started",
            "test_count": plan.selected.len(),
        }));
    }
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut runnable = Vec::new();
    for e in &plan.selected {
        match &topology.docker_skip_reason {
            Some(reason) if e.has_tag(topology::DOCKER_TAG) => {
                say!(
                    "⏭  skipped: {} [@{}]: {reason}",
                    e.name,
                    topology::DOCKER_TAG
                );
                if json {
                    output::libtest_line(
                        &serde_json::json!({"type": "test", "event": "ignored", "name": e.name}),
                    );
                }
                outcomes.push(Outcome {
                    entry: e.clone(),
                    attempts: Vec::new(),
                    skipped: Some(format!("@{}: {reason}", topology::DOCKER_TAG)),
                    detail: None,
                });
            }
            _ => runnable.push(e.clone()),
        }
    }
    let mut attempts: BTreeMap<String, Vec<record::Attempt>> = BTreeMap::new();
    let mut details = BTreeMap::new();
    let repeat = opts.repeat.max(1);
    for round in 1..=repeat {
        if repeat > 1 {
            say!("rocky-e2e: round {round} of {repeat}");
        }
        let mut pending = runnable.clone();
        for attempt in 0..=opts.retries {
            if pending.is_empty() {
                break;
            }
            if attempt > 0 {
                say!(
                    "rocky-e2e: retry {attempt} of {}: {} scenario(s)",
                    opts.retries,
                    pending.len()
                );
            }
            let mut results =
                pass::run(&input.path, &pending, opts.concurrency.unwrap_or(64)).await;
            let mut failed = Vec::new();
            for e in pending {
                let (a, detail) = results.remove(&e.key()).unwrap_or_else(|| {
                    let a = record::Attempt {
                        failure: Some(
                            "the scenario did not run (cucumber never started it)".into(),
                        ),
                        started_unix_ns: record::unix_ns_now(),
                        ..Default::default()
                    };
                    (a, None)
                });
                if let Some(d) = detail {
                    details.insert(e.name.clone(), d);
                }
                let passed = a.passed;
                attempts.entry(e.name.clone()).or_default().push(a);
                if !passed {
                    failed.push(e);
                }
            }
            pending = failed;
        }
    }
    for e in runnable {
        outcomes.push(Outcome {
            attempts: attempts.remove(&e.name).unwrap_or_default(),
            detail: details.remove(&e.name),
            skipped: None,
            entry: e,
        });
    }
    let order: BTreeMap<&str, usize> = plan
        .all
        .iter()
        .enumerate()
        .map(|(i, e)| (e.name.as_str(), i))
        .collect();
    outcomes.sort_by_key(|o| order.get(o.entry.name.as_str()).copied());

    let wall = started.elapsed();
    let mut ok = !outcomes.iter().any(Outcome::fails_run);
    if repeat > 1 {
        // A stress run passes only when every round of every scenario passed.
        ok &= outcomes
            .iter()
            .all(|o| o.skipped.is_some() || o.passes() == o.attempts.len());
    }
    if !under_nextest() {
        // nextest writes its own JUnit; one process per scenario must not clobber ours.
        write_reports(&opts, &outcomes, wall, started_unix_ns, topology)?;
    }
    say!("{}", outcome::summary(&outcomes, repeat));
    if plan.whole_suite && selection == Selection::All {
        let orphans = orphan_snapshots(&check.snapshots);
        if !orphans.is_empty() {
            eprintln!(
                "rocky-e2e: snapshots no scenario asserts any more (delete them, or restore their scenario):"
            );
            for o in orphans {
                eprintln!("  {}", o.display());
            }
            ok = false;
        }
    }
    if json {
        let count = |v: outcome::Verdict| outcomes.iter().filter(|o| o.verdict() == v).count();
        output::libtest_line(&serde_json::json!({
            "type": "suite",
            "event": if ok { "ok" } else { "failed" },
            "passed": count(outcome::Verdict::Passed) + count(outcome::Verdict::Flaky),
            "failed": count(outcome::Verdict::Failed),
            "ignored": count(outcome::Verdict::Skipped),
            "measured": 0,
            "filtered_out": plan.all.len() - plan.selected.len(),
            "exec_time": wall.as_secs_f64(),
        }));
    }
    Ok(ok)
}

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

/// JUnit, the HTML report and the durations file, under `target/rocky-e2e/`; with
/// `ROCKY_E2E_PHASE`, under `target/rocky-e2e/phases/<phase>/`, then the merged set of every
/// phase at `target/rocky-e2e/` ([`phases`]).
fn write_reports(
    opts: &RunOptions,
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
    last_run::write(&root.join(last_run::FILE), &last_run::LastRun::of(outcomes))
}

/// Snapshot files in `snapshots/` that no scenario asserts.
fn orphan_snapshots(referenced: &BTreeSet<String>) -> Vec<PathBuf> {
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

/// Used by `rocky-e2e steps`: the reference text for the current code and features.
pub fn steps_reference() -> (String, Vec<String>) {
    vocabulary::steps_reference(
        &crate::steps::definitions(),
        &crate::layout::current().features,
    )
}

/// `true` when `path` holds exactly the current reference.
pub fn reference_is_current(path: &Path) -> bool {
    vocabulary::reference_is_current(
        path,
        &crate::steps::definitions(),
        &crate::layout::current().features,
    )
}
