//! `messages.ndjson`: the run as Cucumber Messages (protocol [`PROTOCOL_VERSION`]), one JSON
//! envelope a line, the format cucumber's own report tools read: `meta`, each feature's
//! `source` and `gherkinDocument`, a `pickle` per scenario, the `stepDefinition`s and the
//! after `hook`, `testRunStarted`, a `testCase` per scenario, then per attempt
//! `testCaseStarted` (its `attempt` n), `testStepStarted`/`testStepFinished` per step, the
//! HATCH chain and the gap report as `attachment`s, `testCaseFinished`; `testRunFinished`.
//!
//! Rendered from the report model alone (steps as the runner's events recorded them), so a
//! merged report of several phases renders the same way as one phase. Ids are derived from
//! the phase, the file, lines and the attempt: the same run writes the same ids.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::gherkin_doc::{self, Definitions, Doc, Found, parse_sources};
use super::model::{AttemptReport, RunReport, ScenarioReport, StepReport, StepStatus, Verdict};

/// The Cucumber Messages version written (the schema in `tests/fixtures/cucumber-messages/`).
pub const PROTOCOL_VERSION: &str = "34.2.0";

/// The id of the after hook every test case ends with (stopping the scenario's stack, and
/// failing it when it left anything behind).
const AFTER_HOOK: &str = "hook:after";
const RUN: &str = "run";

/// The whole stream, one envelope a line.
pub fn render(report: &RunReport) -> Result<String, String> {
    let docs = parse_sources(report)?;
    let mut out: Vec<Value> = vec![json!({"meta": {
        "protocolVersion": PROTOCOL_VERSION,
        "implementation": {"name": "rocky-e2e", "version": env!("CARGO_PKG_VERSION")},
        "runtime": {"name": "rust"},
        "os": {"name": std::env::consts::OS},
        "cpu": {"name": std::env::consts::ARCH},
    }})];
    for doc in docs.values() {
        out.push(json!({"source": {
            "uri": doc.uri,
            "data": doc.text,
            "mediaType": "text/x.cucumber.gherkin+plain",
        }}));
        out.push(json!({"gherkinDocument": gherkin_document(doc)}));
    }
    let defs = Definitions::of(report)?;
    let cases: Vec<Case> = report
        .scenarios
        .iter()
        .map(|s| Case::of(s, &docs))
        .collect::<Result<_, _>>()?;
    for c in &cases {
        out.push(json!({"pickle": c.pickle()}));
    }
    for (i, d) in report.step_definitions.iter().enumerate() {
        out.push(json!({"stepDefinition": {
            "id": defs.ids[i],
            "pattern": {
                "source": d.pattern,
                "type": if d.is_regex { "REGULAR_EXPRESSION" } else { "CUCUMBER_EXPRESSION" },
            },
            "sourceReference": {"uri": d.uri, "location": {"line": d.line}},
        }}));
    }
    out.push(json!({"hook": {
        "id": AFTER_HOOK,
        "name": "stop the scenario's stack; fail if it left anything behind",
        "sourceReference": {"uri": "src/runner/pass.rs"},
        "type": "AFTER_TEST_CASE",
    }}));
    let (run_start, run_end) = run_span(report);
    out.push(json!({"testRunStarted": {"timestamp": timestamp(run_start), "id": RUN}}));
    for c in &cases {
        out.push(json!({"testCase": c.test_case(&defs)}));
    }
    for c in &cases {
        c.executions(run_start, &mut out);
    }
    out.push(json!({"testRunFinished": {
        "success": succeeded(report),
        "timestamp": timestamp(run_end),
        "testRunStartedId": RUN,
    }}));
    let mut text = String::new();
    for v in out {
        text.push_str(&v.to_string());
        text.push('\n');
    }
    Ok(text)
}

/// Whether the run passes: nothing failed, nothing flaky that `@flaky` does not quarantine.
pub fn succeeded(report: &RunReport) -> bool {
    report.scenarios.iter().all(|s| match s.verdict {
        Verdict::Failed => false,
        Verdict::Flaky => s.tags.iter().any(|t| t == super::model::FLAKY_TAG),
        Verdict::Passed | Verdict::Skipped => true,
    })
}

/// When the run (every phase of it) started and ended, in ns since the Unix epoch.
fn run_span(report: &RunReport) -> (u64, u64) {
    let ms = 1_000_000;
    let spans: Vec<(u64, u64)> = if report.summary.phases.is_empty() {
        report
            .summary
            .started_unix_ns
            .map(|s| (s, s + report.summary.wall_ms * ms))
            .into_iter()
            .collect()
    } else {
        report
            .summary
            .phases
            .iter()
            .filter_map(|p| p.started_unix_ns.map(|s| (s, s + p.wall_ms * ms)))
            .collect()
    };
    let attempts = report.scenarios.iter().flat_map(|s| &s.attempts);
    let start = spans
        .iter()
        .map(|s| s.0)
        .chain(attempts.clone().map(|a| a.started_unix_ns))
        .min()
        .unwrap_or(0);
    let end = spans
        .iter()
        .map(|s| s.1)
        .chain(attempts.map(|a| a.started_unix_ns + a.duration_ns))
        .max()
        .unwrap_or(start);
    (start, end)
}

pub fn timestamp(ns: u64) -> Value {
    json!({"seconds": ns / 1_000_000_000, "nanos": ns % 1_000_000_000})
}

fn duration(ns: u64) -> Value {
    timestamp(ns)
}

fn location(line: usize, col: usize) -> Value {
    if col == 0 {
        json!({"line": line})
    } else {
        json!({"line": line, "column": col})
    }
}

fn tags(doc: &Doc<'_>, line: usize, names: &[String]) -> Vec<Value> {
    doc.tags_above(line, names)
        .into_iter()
        .map(|t| {
            json!({
                "location": location(t.line, t.col),
                "name": t.name,
                "id": doc.id("tag", t.line) + &format!(":{}", t.col),
            })
        })
        .collect()
}

fn description(d: &Option<String>) -> String {
    d.clone().unwrap_or_default()
}

fn step_node(doc: &Doc<'_>, step: &cucumber::gherkin::Step) -> Value {
    let mut v = json!({
        "location": location(step.position.line, step.position.col),
        "keyword": step.keyword,
        "keywordType": gherkin_doc::keyword_type(step),
        "text": step.value,
        "id": doc.id("step", step.position.line),
    });
    if let Some(content) = &step.docstring {
        v["docString"] = json!({
            "location": location(step.position.line + 1, 0),
            "content": content,
            "delimiter": "\"\"\"",
        });
    }
    if let Some(table) = &step.table {
        v["dataTable"] = json!({
            "location": location(table.position.line, table.position.col),
            "rows": table_rows(doc, table, 0),
        });
    }
    v
}

fn table_rows(doc: &Doc<'_>, table: &cucumber::gherkin::Table, from: usize) -> Vec<Value> {
    table
        .rows
        .iter()
        .enumerate()
        .skip(from)
        .map(|(i, cells)| {
            let line = Doc::row_line(table, i);
            json!({
                "location": location(line, 0),
                "cells": cells.iter().map(|c| json!({"location": location(line, 0), "value": c})).collect::<Vec<_>>(),
                "id": doc.id("row", line),
            })
        })
        .collect()
}

fn background_node(doc: &Doc<'_>, b: &cucumber::gherkin::Background) -> Value {
    json!({"background": {
        "location": location(b.position.line, b.position.col),
        "keyword": b.keyword,
        "name": b.name,
        "description": description(&b.description),
        "steps": b.steps.iter().map(|s| step_node(doc, s)).collect::<Vec<_>>(),
        "id": doc.id("background", b.position.line),
    }})
}

fn scenario_node(doc: &Doc<'_>, s: &cucumber::gherkin::Scenario) -> Value {
    let examples: Vec<Value> = s
        .examples
        .iter()
        .map(|ex| {
            let mut v = json!({
                "location": location(ex.position.line, ex.position.col),
                "tags": tags(doc, ex.position.line, &ex.tags),
                "keyword": ex.keyword,
                "name": ex.name.clone().unwrap_or_default(),
                "description": description(&ex.description),
                "tableBody": ex.table.as_ref().map(|t| table_rows(doc, t, 1)).unwrap_or_default(),
                "id": doc.id("examples", ex.position.line),
            });
            if let Some(header) = ex
                .table
                .as_ref()
                .and_then(|t| table_rows(doc, t, 0).into_iter().next())
            {
                v["tableHeader"] = header;
            }
            v
        })
        .collect();
    json!({"scenario": {
        "location": location(s.position.line, s.position.col),
        "tags": tags(doc, s.position.line, &s.tags),
        "keyword": s.keyword,
        "name": s.name,
        "description": description(&s.description),
        "steps": s.steps.iter().map(|st| step_node(doc, st)).collect::<Vec<_>>(),
        "examples": examples,
        "id": doc.id("scenario", s.position.line),
    }})
}

/// The feature's AST as Cucumber Messages' `gherkinDocument`.
fn gherkin_document(doc: &Doc<'_>) -> Value {
    let f = &doc.feature;
    let mut children: Vec<(usize, Value)> = Vec::new();
    if let Some(b) = &f.background {
        children.push((b.position.line, background_node(doc, b)));
    }
    for s in &f.scenarios {
        children.push((s.position.line, scenario_node(doc, s)));
    }
    for r in &f.rules {
        let mut inner: Vec<(usize, Value)> = Vec::new();
        if let Some(b) = &r.background {
            inner.push((b.position.line, background_node(doc, b)));
        }
        for s in &r.scenarios {
            inner.push((s.position.line, scenario_node(doc, s)));
        }
        inner.sort_by_key(|c| c.0);
        children.push((
            r.position.line,
            json!({"rule": {
                "location": location(r.position.line, r.position.col),
                "tags": tags(doc, r.position.line, &r.tags),
                "keyword": r.keyword,
                "name": r.name,
                "description": description(&r.description),
                "children": inner.into_iter().map(|c| c.1).collect::<Vec<_>>(),
                "id": doc.id("rule", r.position.line),
            }}),
        ));
    }
    children.sort_by_key(|c| c.0);
    json!({
        "uri": doc.uri,
        "feature": {
            "location": location(f.position.line, f.position.col),
            "tags": tags(doc, f.position.line, &f.tags),
            "language": language(doc.text),
            "keyword": f.keyword,
            "name": f.name,
            "description": description(&f.description),
            "children": children.into_iter().map(|c| c.1).collect::<Vec<_>>(),
        },
        "comments": doc.comments().into_iter().map(|(line, text)| json!({
            "location": location(line, 1),
            "text": text,
        })).collect::<Vec<_>>(),
    })
}

/// The `# language:` of a feature file; English without one.
pub fn language(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .take_while(|l| l.is_empty() || l.starts_with('#'))
        .find_map(|l| {
            let rest = l.strip_prefix('#')?.trim();
            Some(rest.strip_prefix("language:")?.trim().to_owned())
        })
        .unwrap_or_else(|| "en".to_owned())
}

/// One scenario of the report, resolved against its file.
struct Case<'r> {
    report: &'r ScenarioReport,
    /// `phase/` in a merged report, so every phase's ids are its own.
    prefix: String,
    /// The steps it runs, background first.
    steps: Vec<PickleStep>,
    pickle_ids: Vec<String>,
    pickle_tags: Vec<Value>,
    language: String,
}

/// One step of a pickle.
struct PickleStep {
    id: String,
    /// The step's AST node, and the outline row's.
    ast: Vec<String>,
    /// With the outline row's values filled in.
    text: String,
    /// `Given`/`When`/`Then`: which definitions may match.
    kind: &'static str,
    /// `Context`/`Action`/`Outcome`.
    ty: &'static str,
    line: usize,
    argument: Option<Value>,
}

/// How one test step went.
struct Ran {
    start: u64,
    duration: u64,
    status: StepStatus,
    error: Option<String>,
}

impl<'r> Case<'r> {
    fn of(s: &'r ScenarioReport, docs: &BTreeMap<&str, Doc<'_>>) -> Result<Case<'r>, String> {
        let doc = docs.get(s.uri.as_str()).ok_or_else(|| {
            format!(
                "the report has no source for {} (scenario {:?})",
                s.uri, s.name
            )
        })?;
        let line = s.line as usize;
        let found: Found<'_> = doc.find(line).ok_or_else(|| {
            format!(
                "{}:{line}: no scenario there for {:?} (did the file change during the run?)",
                s.uri, s.name
            )
        })?;
        let prefix = s
            .phase
            .as_ref()
            .map(|p| format!("{p}/"))
            .unwrap_or_default();
        let mut ast = vec![doc.id("scenario", found.scenario.position.line)];
        if let Some((ex, i)) = found.example
            && let Some(t) = &ex.table
        {
            ast.push(doc.id("row", Doc::row_line(t, i + 1)));
        }
        let steps = found
            .steps(doc)
            .into_iter()
            .map(|p| {
                let mut step_ast = vec![doc.id("step", p.step.position.line)];
                step_ast.extend(ast.iter().skip(1).cloned());
                let argument = if let Some(content) = &p.step.docstring {
                    Some(json!({"docString": {"content": found.fill(content)}}))
                } else {
                    p.step.table.as_ref().map(|t| {
                        json!({"dataTable": {"rows": t.rows.iter().map(|r| json!({
                            "cells": r.iter().map(|c| json!({"value": found.fill(c)})).collect::<Vec<_>>(),
                        })).collect::<Vec<_>>()}})
                    })
                };
                PickleStep {
                    id: format!(
                        "pickle-step:{prefix}{}:{line}:{}",
                        s.uri, p.step.position.line
                    ),
                    ast: step_ast,
                    text: p.text,
                    kind: gherkin_doc::kind_name(p.step),
                    ty: gherkin_doc::step_type(p.step),
                    line: p.step.position.line,
                    argument,
                }
            })
            .collect();
        let mut pickle_tags = Vec::new();
        let mut scopes: Vec<(usize, &Vec<String>)> =
            vec![(doc.feature.position.line, &doc.feature.tags)];
        if let Some(r) = found.rule {
            scopes.push((r.position.line, &r.tags));
        }
        scopes.push((found.scenario.position.line, &found.scenario.tags));
        if let Some((ex, _)) = found.example {
            scopes.push((ex.position.line, &ex.tags));
        }
        for (at, names) in scopes {
            for t in doc.tags_above(at, names) {
                pickle_tags.push(json!({
                    "name": t.name,
                    "astNodeId": doc.id("tag", t.line) + &format!(":{}", t.col),
                }));
            }
        }
        Ok(Case {
            report: s,
            prefix,
            steps,
            pickle_ids: ast,
            pickle_tags,
            language: language(doc.text),
        })
    }

    fn base(&self) -> String {
        format!("{}{}:{}", self.prefix, self.report.uri, self.report.line)
    }

    fn pickle_id(&self) -> String {
        format!("pickle:{}", self.base())
    }

    fn test_case_id(&self) -> String {
        format!("test-case:{}", self.base())
    }

    fn test_step_id(&self, step_line: usize) -> String {
        format!("test-step:{}:{step_line}", self.base())
    }

    fn hook_step_id(&self) -> String {
        format!("test-step:{}:after", self.base())
    }

    fn pickle(&self) -> Value {
        json!({
            "id": self.pickle_id(),
            "uri": self.report.uri,
            "location": location(self.report.line as usize, 0),
            "name": self.report.name,
            "language": self.language,
            "steps": self.steps.iter().map(|p| {
                let mut v = json!({"astNodeIds": p.ast, "id": p.id, "type": p.ty, "text": p.text});
                if let Some(a) = &p.argument {
                    v["argument"] = a.clone();
                }
                v
            }).collect::<Vec<_>>(),
            "tags": self.pickle_tags,
            "astNodeIds": self.pickle_ids,
        })
    }

    fn test_case(&self, defs: &Definitions) -> Value {
        let mut steps: Vec<Value> = self
            .steps
            .iter()
            .map(|p| {
                let (ids, lists) = defs.matching(p.kind, &p.text);
                json!({
                    "id": self.test_step_id(p.line),
                    "pickleStepId": p.id,
                    "stepDefinitionIds": ids,
                    "stepMatchArgumentsLists": lists,
                })
            })
            .collect();
        steps.push(json!({"id": self.hook_step_id(), "hookId": AFTER_HOOK}));
        json!({
            "id": self.test_case_id(),
            "pickleId": self.pickle_id(),
            "testSteps": steps,
            "testRunStartedId": RUN,
        })
    }

    /// Every attempt's events; a scenario that never ran (skipped) one attempt of skipped
    /// steps at the run's start.
    fn executions(&self, run_start: u64, out: &mut Vec<Value>) {
        let skipped = AttemptReport {
            started_unix_ns: run_start,
            ..Default::default()
        };
        let attempts: Vec<&AttemptReport> = if self.report.attempts.is_empty() {
            vec![&skipped]
        } else {
            self.report.attempts.iter().collect()
        };
        let n = attempts.len();
        for (i, a) in attempts.into_iter().enumerate() {
            let started_id = format!("test-case-started:{}:{i}", self.base());
            out.push(json!({"testCaseStarted": {
                "attempt": i,
                "id": started_id,
                "testCaseId": self.test_case_id(),
                "timestamp": timestamp(a.started_unix_ns),
            }}));
            let mut cursor = a.started_unix_ns;
            let mut step_failed = false;
            for p in &self.steps {
                let ran: Option<&StepReport> = a.steps.iter().find(|s| s.line as usize == p.line);
                let r = match ran {
                    Some(s) => Ran {
                        start: s.started_unix_ns,
                        duration: s.duration_ns,
                        status: s.status,
                        error: s.error.clone(),
                    },
                    None => Ran {
                        start: cursor,
                        duration: 0,
                        status: StepStatus::Skipped,
                        error: None,
                    },
                };
                step_failed |= matches!(r.status, StepStatus::Failed | StepStatus::Undefined);
                cursor = cursor.max(r.start + r.duration);
                step_events(&started_id, &self.test_step_id(p.line), r, out);
            }
            let end = (a.started_unix_ns + a.duration_ns).max(cursor);
            let (status, error) = if let Some(h) = &a.hook_failure {
                (StepStatus::Failed, Some(h.clone()))
            } else if self.report.attempts.is_empty() {
                (StepStatus::Skipped, None)
            } else if !a.passed && !step_failed {
                // Failed without a failing step: the verdict must still read failed.
                (
                    StepStatus::Failed,
                    Some(
                        a.failure
                            .clone()
                            .unwrap_or_else(|| "the scenario did not run".into()),
                    ),
                )
            } else {
                (StepStatus::Passed, None)
            };
            let hook = Ran {
                start: cursor,
                duration: end - cursor,
                status,
                error,
            };
            step_events(&started_id, &self.hook_step_id(), hook, out);
            if i + 1 == n {
                self.attachments(&started_id, end, out);
            }
            out.push(json!({"testCaseFinished": {
                "testCaseStartedId": started_id,
                "timestamp": timestamp(end),
                "willBeRetried": !a.passed && i + 1 < n,
            }}));
        }
    }

    /// The HATCH chain, and the gap report where there is one, of the last attempt.
    fn attachments(&self, started_id: &str, at: u64, out: &mut Vec<Value>) {
        let s = self.report;
        let mut attach = |file: &str, body: String| {
            out.push(json!({"attachment": {
                "body": body,
                "contentEncoding": "IDENTITY",
                "mediaType": "text/plain",
                "fileName": file,
                "testCaseStartedId": started_id,
                "timestamp": timestamp(at),
            }}));
        };
        if !s.chain.is_empty() {
            attach("hatch-chain.txt", chain_text(s));
        }
        if let Some(gap) = &s.gap {
            attach("gap-report.txt", gap.to_string());
        }
    }
}

/// A test step's `testStepStarted` and `testStepFinished`.
fn step_events(started_id: &str, step_id: &str, r: Ran, out: &mut Vec<Value>) {
    out.push(json!({"testStepStarted": {
        "testCaseStartedId": started_id,
        "testStepId": step_id,
        "timestamp": timestamp(r.start),
    }}));
    let mut result = json!({"duration": duration(r.duration), "status": status_name(r.status)});
    if let Some(e) = r.error {
        result["exception"] = json!({"type": "step failed", "message": e});
        result["message"] = json!(e);
    }
    out.push(json!({"testStepFinished": {
        "testCaseStartedId": started_id,
        "testStepId": step_id,
        "testStepResult": result,
        "timestamp": timestamp(r.start + r.duration),
    }}));
}

/// The HATCH chain as a reader scans it: `seq kind [workspace] [detail]` per record.
pub fn chain_text(s: &ScenarioReport) -> String {
    let mut out = String::new();
    for e in &s.chain {
        out.push_str(&format!("{:>4} {}", e.seq, e.kind));
        if let Some(w) = &e.workspace {
            out.push_str(&format!("  workspace {w}"));
        }
        if let Some(d) = &e.detail {
            out.push_str(&format!("  ({d})"));
        }
        out.push('\n');
    }
    out
}

fn status_name(s: StepStatus) -> &'static str {
    match s {
        StepStatus::Passed => "PASSED",
        StepStatus::Failed => "FAILED",
        StepStatus::Skipped => "SKIPPED",
        StepStatus::Undefined => "UNDEFINED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::FeatureSource;

    /// A flaky scenario: its first attempt failed at its second step, its retry passed.
    fn flaky() -> RunReport {
        let step = |line: u32, status: StepStatus, at: u64| StepReport {
            keyword: "Given ".into(),
            text: "a rocky stack".into(),
            line,
            status,
            started_unix_ns: at,
            duration_ns: 10,
            error: (status == StepStatus::Failed).then(|| "boom".into()),
            ..Default::default()
        };
        let attempt = |passed: bool, at: u64| AttemptReport {
            started_unix_ns: at,
            duration_ns: 100,
            passed,
            steps: vec![
                step(3, StepStatus::Passed, at),
                step(
                    4,
                    if passed {
                        StepStatus::Passed
                    } else {
                        StepStatus::Failed
                    },
                    at + 20,
                ),
            ],
            failure: (!passed).then(|| "boom".into()),
            ..Default::default()
        };
        let mut r = RunReport::new(
            "embedded",
            1,
            vec![ScenarioReport {
                feature: "f".into(),
                name: "s".into(),
                verdict: Verdict::Flaky,
                uri: "features/f.feature".into(),
                line: 2,
                attempts: vec![attempt(false, 1_000), attempt(true, 2_000)],
                ..Default::default()
            }],
        );
        r.sources = vec![FeatureSource {
            uri: "features/f.feature".into(),
            text: "Feature: f\n  Scenario: s\n    Given a rocky stack\n    And a rocky stack\n"
                .into(),
        }];
        r.summary.started_unix_ns = Some(500);
        r
    }

    fn lines(text: &str, kind: &str) -> Vec<Value> {
        text.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter_map(|v| v.get(kind).cloned())
            .collect()
    }

    #[test]
    fn each_attempt_is_a_test_case_started_and_the_ids_are_the_same_every_time() {
        let report = flaky();
        let text = render(&report).unwrap();
        assert_eq!(text, render(&report).unwrap(), "deterministic");
        let started = lines(&text, "testCaseStarted");
        assert_eq!(
            started
                .iter()
                .map(|s| (s["attempt"].as_u64(), s["id"].as_str()))
                .collect::<Vec<_>>(),
            [
                (Some(0), Some("test-case-started:features/f.feature:2:0")),
                (Some(1), Some("test-case-started:features/f.feature:2:1"))
            ]
        );
        let finished = lines(&text, "testCaseFinished");
        assert_eq!(finished[0]["willBeRetried"], true);
        assert_eq!(finished[1]["willBeRetried"], false);
        let statuses: Vec<String> = lines(&text, "testStepFinished")
            .iter()
            .map(|f| f["testStepResult"]["status"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            statuses,
            ["PASSED", "FAILED", "PASSED", "PASSED", "PASSED", "PASSED"]
        );
        // A flaky scenario without @flaky fails the run.
        assert_eq!(lines(&text, "testRunFinished")[0]["success"], false);
        assert_eq!(lines(&text, "testRunStarted")[0]["timestamp"]["nanos"], 500);

        // Cucumber JSON: the final attempt.
        let json: Value =
            serde_json::from_str(&crate::report::cucumber_json::render(&report).unwrap()).unwrap();
        let steps: Vec<&str> = json[0]["elements"][0]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["result"]["status"].as_str().unwrap())
            .collect();
        assert_eq!(steps, ["passed", "passed"]);
    }

    #[test]
    fn a_scenario_whose_file_is_gone_is_an_error_naming_it() {
        let mut report = flaky();
        report.sources.clear();
        let err = render(&report).unwrap_err();
        assert!(err.contains("features/f.feature"), "{err}");
    }
}
