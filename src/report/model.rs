//! What a run report holds: filled by the runner, rendered by [`crate::report::html::render`].
//!
//! Plain data, serialisable (JSON alongside the HTML if wanted), with no behaviour beyond a
//! few constructors that save the runner arithmetic.

use serde::{Deserialize, Serialize};

/// Tag of the quarantine: a scenario carrying it may be flaky without failing the run.
pub const FLAKY_TAG: &str = "flaky";

/// One run of the scenarios.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub summary: RunSummary,
    /// In the order the runner finished them; the renderer puts failures first.
    pub scenarios: Vec<ScenarioReport>,
    /// The feature files the scenarios come from, as read (Cucumber Messages' `source` and
    /// `gherkinDocument` are made from them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<FeatureSource>,
    /// Every step definition of the harness (Cucumber Messages' `stepDefinition`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub step_definitions: Vec<StepDefinitionReport>,
}

/// A feature file as the run read it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureSource {
    /// Relative to the checkout when inside it (`features/play.feature`).
    pub uri: String,
    pub text: String,
}

/// One step definition (`#[given]`, `#[when]`, `#[then]` in `steps/`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepDefinitionReport {
    /// `Given`, `When` or `Then`: a definition matches steps of its kind only.
    pub kind: String,
    /// The cucumber expression (or regex) as written.
    pub pattern: String,
    /// Whether `pattern` is a regular expression rather than a cucumber expression.
    pub is_regex: bool,
    /// The compiled regex steps are matched with.
    pub regex: String,
    /// `steps/runs.rs`.
    pub uri: String,
    pub line: u32,
}

/// The header of the report.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// The run's first line, e.g. `docker topology: hearth local-docker driver, console and
    /// worker in containers`.
    pub topology: String,
    /// Wall time of the whole run, in milliseconds.
    pub wall_ms: u64,
    pub counts: Counts,
    /// When the run started, as the runner wants it shown (RFC 3339 is fine); optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// A merged report (`ROCKY_E2E_PHASE`): every phase of the job, the verdict's first.
    /// Empty for a run of its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<PhaseSummary>,
    /// When the run started, in nanoseconds since the Unix epoch (the Cucumber Messages'
    /// `testRunStarted`); a merged report's is its earliest phase's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_unix_ns: Option<u64>,
}

/// One phase of a merged report: a topology, a shard or a repeat of the scenarios.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseSummary {
    /// The phase's name, as `ROCKY_E2E_PHASE` gave it (`docker`, `embedded-chaos`).
    pub name: String,
    /// That phase's own first line (its topology).
    pub topology: String,
    pub wall_ms: u64,
    pub counts: Counts,
    /// When that phase started, in nanoseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_unix_ns: Option<u64>,
}

/// How many scenarios ended how.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub flaky: usize,
}

impl Counts {
    /// Counts the verdicts of `scenarios`.
    pub fn of(scenarios: &[ScenarioReport]) -> Counts {
        let mut c = Counts::default();
        for s in scenarios {
            match s.verdict {
                Verdict::Passed => c.passed += 1,
                Verdict::Failed => c.failed += 1,
                Verdict::Skipped => c.skipped += 1,
                Verdict::Flaky => c.flaky += 1,
            }
        }
        c
    }

    pub fn total(&self) -> usize {
        self.passed + self.failed + self.skipped + self.flaky
    }
}

/// How a scenario ended.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Sorted first: what a reader opens the report for.
    Failed,
    /// Passed, but only after a failed attempt.
    Flaky,
    #[default]
    Passed,
    /// Not run (e.g. `@docker` on the embedded topology); `skip_reason` says why.
    Skipped,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::Failed => "failed",
            Verdict::Skipped => "skipped",
            Verdict::Flaky => "flaky",
        }
    }
}

/// One scenario.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ScenarioReport {
    /// The feature file's stem (`failure_drill`), as in the snapshot names.
    pub feature: String,
    /// The scenario's name.
    pub name: String,
    pub verdict: Verdict,
    /// The scenario's own time, in milliseconds.
    pub duration_ms: u64,
    /// Why it was skipped, for a skipped scenario.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<String>,
    /// The HATCH chain as recorded, in order.
    #[serde(default)]
    pub chain: Vec<ChainEvent>,
    /// When each act ran, relative to the scenario's start. An act may appear more than once
    /// (two workspaces provisioned at different times).
    #[serde(default)]
    pub acts: Vec<ActSpan>,
    /// The failing step and its message, when the failure is not (only) a gap report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// The gap report of the chain assertion that failed, as data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gap: Option<GapView>,
    /// A snapshot that did not match: the accepted chain and the new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotChange>,
    /// What the harness collected from the stack (`chain::Evidence`).
    #[serde(default)]
    pub evidence: Vec<EvidenceItem>,
    /// Logs attached to the scenario (hearth, console and worker), shown folded.
    #[serde(default)]
    pub logs: Vec<Log>,
    /// The phase it ran in, in a merged report (`ROCKY_E2E_PHASE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// The feature file, as in [`FeatureSource::uri`].
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uri: String,
    /// The scenario's line (an outline row's own line), its identity in the file.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub line: u32,
    /// Its tags (feature, rule, scenario, examples), without `@`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Every attempt, step by step, in order (several with `--retries` or `--repeat`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<AttemptReport>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// One attempt of a scenario, as cucumber's events reported it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptReport {
    /// Nanoseconds since the Unix epoch.
    pub started_unix_ns: u64,
    pub duration_ns: u64,
    pub passed: bool,
    /// The steps cucumber ran, in order (those after a failure never ran and are absent).
    pub steps: Vec<StepReport>,
    /// Why the after hook (stopping the stack, what the scenario left behind) failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook_failure: Option<String>,
    /// The attempt's first failure, whatever failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// One step of an attempt.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepReport {
    /// `Given `, `And ` (with its space, as gherkin keeps it).
    pub keyword: String,
    pub text: String,
    pub line: u32,
    /// A step of a `Background`.
    #[serde(default)]
    pub background: bool,
    pub status: StepStatus,
    /// Nanoseconds since the Unix epoch.
    pub started_unix_ns: u64,
    pub duration_ns: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How a step ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    #[default]
    Passed,
    Failed,
    /// Not run: an earlier step failed, or the scenario was skipped.
    Skipped,
    /// No step definition matches it.
    Undefined,
}

impl StepStatus {
    /// As Cucumber JSON writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Passed => "passed",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
            StepStatus::Undefined => "undefined",
        }
    }
}

impl ScenarioReport {
    /// Marks the scenario failed: with the gap report of the assertion that failed, if one
    /// did (then `message` is only what the step said beside it), else with the failing
    /// step's message.
    pub fn fail(&mut self, message: Option<&str>, gap: Option<GapView>) {
        self.verdict = Verdict::Failed;
        self.failure = message
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_owned);
        self.gap = gap;
    }
}

/// A failed chain assertion's gap report (`crate::chain::GapReport`), as the reports show it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GapView {
    /// The first gap in words: `ralph.run.started never fired (act 3 submit run)`.
    pub summary: String,
    /// `exact order` or `in order, others allowed`.
    pub mode: String,
    /// The expected chain as written.
    pub expected: String,
    /// The expected column's width, so every rendering lines the rows up alike.
    pub width: usize,
    pub rows: Vec<GapRow>,
    /// The facts collected with it.
    pub evidence: Vec<EvidenceItem>,
}

/// One row of a gap report's alignment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GapRow {
    /// `3 submit run` on the act's first row, empty below it, `?` for an unknown act.
    pub act: String,
    pub expected: String,
    /// Missing, replaced or unexpected (marked `✗`).
    pub gap: bool,
    pub observed: String,
    pub first_gap: bool,
}

impl std::fmt::Display for GapView {
    /// The gap report as the terminal shows it (`chain::GapReport`'s layout), for reports
    /// that carry text (a Cucumber Messages attachment).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "HATCH chain gap: {}", self.summary)?;
        writeln!(f, "expected ({}): {}\n", self.mode, self.expected)?;
        crate::chain::report::write_body(
            f,
            self.width,
            self.rows.iter().map(|r| {
                (
                    r.act.as_str(),
                    r.expected.as_str(),
                    r.gap,
                    r.observed.as_str(),
                    r.first_gap,
                )
            }),
            self.evidence
                .iter()
                .map(|e| (e.source.as_str(), e.detail.as_str())),
        )
    }
}

impl From<&crate::chain::GapReport> for GapView {
    fn from(r: &crate::chain::GapReport) -> GapView {
        let (width, rows) = r.aligned();
        GapView {
            summary: r.gap.summary.clone(),
            mode: r.mode_text().to_owned(),
            expected: r.expected.clone(),
            width,
            rows: rows
                .into_iter()
                .map(|a| GapRow {
                    act: a.act,
                    expected: a.expected,
                    gap: a.gap,
                    observed: a.observed,
                    first_gap: a.first_gap,
                })
                .collect(),
            evidence: r
                .evidence
                .0
                .iter()
                .cloned()
                .map(EvidenceItem::from)
                .collect(),
        }
    }
}

/// A snapshot assertion that failed: the accepted chain (none for a new snapshot) and the
/// chain the scenario recorded, as the snapshot files hold them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SnapshotChange {
    /// `failure_drill__teardown-passes-its-deadline`.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<Vec<crate::report::snapshot::SnapEvent>>,
    pub new: Vec<crate::report::snapshot::SnapEvent>,
}

/// One HATCH record, reduced to what the report shows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainEvent {
    pub seq: u64,
    /// `hearth.provisioned`; its act comes from [`crate::report::acts::act_of`].
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// A short note: `node-3, 3 attempts`, `status failed`, a failure's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// When an act ran, in milliseconds from the scenario's start.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActSpan {
    /// The act's name as the play prints it: `provision`, `stream nodes`.
    pub act: String,
    pub start_ms: u64,
    pub end_ms: u64,
}

impl ActSpan {
    /// Spans laid end to end from per-act durations, for a runner that only kept totals per
    /// act (what `PlayWorld::timings` holds today).
    pub fn end_to_end<S: Into<String>>(
        durations: impl IntoIterator<Item = (S, u64)>,
    ) -> Vec<ActSpan> {
        let mut at = 0;
        durations
            .into_iter()
            .map(|(act, ms)| {
                let span = ActSpan {
                    act: act.into(),
                    start_ms: at,
                    end_ms: at + ms,
                };
                at += ms;
                span
            })
            .collect()
    }
}

/// One fact of the evidence: where it came from, what it says.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceItem {
    pub source: String,
    pub detail: String,
}

impl<S: Into<String>, D: Into<String>> From<(S, D)> for EvidenceItem {
    fn from((source, detail): (S, D)) -> Self {
        EvidenceItem {
            source: source.into(),
            detail: detail.into(),
        }
    }
}

/// A log attached to a scenario.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Log {
    /// `hearth (/tmp/rocky-e2e-x/hearth.log)`, `console and worker`.
    pub name: String,
    pub text: String,
}

impl RunReport {
    /// A report whose counts are those of `scenarios`.
    pub fn new(
        topology: impl Into<String>,
        wall_ms: u64,
        scenarios: Vec<ScenarioReport>,
    ) -> RunReport {
        RunReport {
            summary: RunSummary {
                topology: topology.into(),
                wall_ms,
                counts: Counts::of(&scenarios),
                started_at: None,
                phases: Vec::new(),
                started_unix_ns: None,
            },
            scenarios,
            sources: Vec::new(),
            step_definitions: Vec::new(),
        }
    }

    /// One report of several phases' reports, in the order given (the verdict's phase
    /// first): every scenario marked with its phase, the counts and wall times summed.
    pub fn merge(phases: Vec<(String, RunReport)>) -> RunReport {
        let mut summaries = Vec::new();
        let mut scenarios = Vec::new();
        let mut wall_ms = 0;
        let mut sources: Vec<FeatureSource> = Vec::new();
        let mut step_definitions: Vec<StepDefinitionReport> = Vec::new();
        for (name, report) in phases {
            wall_ms += report.summary.wall_ms;
            summaries.push(PhaseSummary {
                name: name.clone(),
                topology: report.summary.topology,
                wall_ms: report.summary.wall_ms,
                counts: Counts::of(&report.scenarios),
                started_unix_ns: report.summary.started_unix_ns,
            });
            // A file or definition read by several phases is shown once (the first phase's).
            for s in report.sources {
                if !sources.iter().any(|k| k.uri == s.uri) {
                    sources.push(s);
                }
            }
            for d in report.step_definitions {
                if !step_definitions
                    .iter()
                    .any(|k| (&k.uri, k.line) == (&d.uri, d.line))
                {
                    step_definitions.push(d);
                }
            }
            scenarios.extend(report.scenarios.into_iter().map(|mut s| {
                s.phase = Some(name.clone());
                s
            }));
        }
        let topology = match summaries.as_slice() {
            [] => String::new(),
            [one] => format!("phase {}: {}", one.name, one.topology),
            [first, rest @ ..] => format!(
                "{} phases; the verdict's: {} ({})",
                rest.len() + 1,
                first.name,
                first.topology
            ),
        };
        let mut merged = RunReport::new(topology, wall_ms, scenarios);
        merged.summary.started_unix_ns = summaries.iter().filter_map(|p| p.started_unix_ns).min();
        merged.summary.phases = summaries;
        merged.sources = sources;
        merged.step_definitions = step_definitions;
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_view_reads_as_the_gap_report_it_came_from() {
        let mut evidence = crate::chain::Evidence::default();
        evidence.add("console POST /x", "502");
        let report = crate::chain::check(
            &crate::chain::ExpectedChain::play(2),
            &["hearth.provisioning_started".to_owned()],
            crate::chain::Mode::Exact,
            &evidence,
        )
        .unwrap_err();
        assert_eq!(GapView::from(&*report).to_string(), report.to_string());
    }

    #[test]
    fn a_failure_keeps_its_gap_report_as_data() {
        let mut s = ScenarioReport::default();
        let gap = GapView {
            summary: "x never fired".into(),
            ..Default::default()
        };
        s.fail(Some("  "), Some(gap.clone()));
        assert_eq!(s.verdict, Verdict::Failed);
        assert_eq!(s.failure, None);
        assert_eq!(s.gap, Some(gap));

        let mut s = ScenarioReport::default();
        s.fail(Some("the console answered 502\n"), None);
        assert_eq!(s.failure.as_deref(), Some("the console answered 502"));
        assert_eq!(s.gap, None);
    }

    #[test]
    fn counts_and_spans() {
        let failed = ScenarioReport {
            verdict: Verdict::Failed,
            ..Default::default()
        };
        let r = RunReport::new("embedded", 10, vec![failed, ScenarioReport::default()]);
        assert_eq!(
            r.summary.counts,
            Counts {
                passed: 1,
                failed: 1,
                skipped: 0,
                flaky: 0
            }
        );
        assert_eq!(r.summary.counts.total(), 2);
        let spans = ActSpan::end_to_end([("provision", 5), ("teardown", 3)]);
        assert_eq!((spans[1].start_ms, spans[1].end_ms), (5, 8));
    }

    #[test]
    fn round_trips_through_json() {
        let r = RunReport::new("embedded", 1, vec![ScenarioReport::default()]);
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"verdict\":\"passed\""), "{json}");
        assert_eq!(serde_json::from_str::<RunReport>(&json).unwrap(), r);
    }
}
