//! `cucumber.json`: the run as classic Cucumber JSON (what Allure, Jenkins cucumber-reports
//! and Xray read): features → elements (a `background` before each scenario that has one,
//! then the `scenario`) → steps with keyword, name, line, the matching definition and a
//! result (`status`, `duration` in ns, `error_message`). A scenario retried shows its final
//! attempt; the after hook's result is the element's `after`. In a merged report every
//! element's id and name carry its phase, as the merged JUnit's cases do.

use serde_json::{Value, json};

use super::gherkin_doc::{self, Doc};
use super::gherkin_doc::{Definitions, parse_sources};
use super::model::{RunReport, StepReport, StepStatus};

/// The whole document (pretty-printed, as cucumber writes it).
pub fn render(report: &RunReport) -> Result<String, String> {
    let docs = parse_sources(report)?;
    let defs = Definitions::of(report)?;
    // Features in the order their first scenario comes.
    let mut features: Vec<(&str, Vec<Value>)> = Vec::new();
    for s in &report.scenarios {
        let doc = docs.get(s.uri.as_str()).ok_or_else(|| {
            format!(
                "the report has no source for {} (scenario {:?})",
                s.uri, s.name
            )
        })?;
        let found = doc.find(s.line as usize).ok_or_else(|| {
            format!(
                "{}:{}: no scenario there for {:?} (did the file change during the run?)",
                s.uri, s.line, s.name
            )
        })?;
        let last = s.attempts.last();
        let step = |p: &gherkin_doc::PickleStep<'_>| {
            let ran: Option<&StepReport> = last.and_then(|a| {
                a.steps
                    .iter()
                    .find(|r| r.line as usize == p.step.position.line)
            });
            let (status, dur, error) = match ran {
                Some(r) => (r.status, r.duration_ns, r.error.clone()),
                None => (StepStatus::Skipped, 0, None),
            };
            let mut result = json!({"status": status.as_str(), "duration": dur});
            if let Some(e) = error {
                result["error_message"] = json!(e);
            }
            let mut v = json!({
                "keyword": p.step.keyword,
                "name": p.text,
                "line": p.step.position.line,
                "result": result,
            });
            if let Some(at) = defs.location(gherkin_doc::kind_name(p.step), &p.text) {
                v["match"] = json!({"location": at});
            }
            v
        };
        let steps = found.steps(doc);
        let (background, own): (Vec<_>, Vec<_>) = steps.iter().partition(|p| p.background);
        let feature_id = slug(&doc.feature.name);
        let (id, name) = match &s.phase {
            Some(p) => (
                format!("{};{feature_id};{}", slug(p), slug(&s.name)),
                format!("[{p}] {}", s.name),
            ),
            None => (format!("{feature_id};{}", slug(&s.name)), s.name.clone()),
        };
        let mut elements = Vec::new();
        if !background.is_empty() {
            let b = doc
                .feature
                .background
                .as_ref()
                .or(found.rule.and_then(|r| r.background.as_ref()));
            elements.push(json!({
                "keyword": b.map_or("Background", |b| b.keyword.as_str()),
                "name": b.map_or("", |b| b.name.as_str()),
                "description": "",
                "line": b.map_or(0, |b| b.position.line),
                "type": "background",
                "steps": background.iter().map(|p| step(p)).collect::<Vec<_>>(),
            }));
        }
        let hook_status = match last {
            None => "skipped",
            Some(a) if a.hook_failure.is_some() => "failed",
            Some(a)
                if !a.passed
                    && !a.steps.iter().any(|r| {
                        matches!(r.status, StepStatus::Failed | StepStatus::Undefined)
                    }) =>
            {
                "failed"
            }
            Some(_) => "passed",
        };
        let mut after = json!({
            "match": {"location": "src/runner/pass.rs"},
            "result": {"status": hook_status, "duration": 0},
        });
        if hook_status == "failed"
            && let Some(m) = last.and_then(|a| a.hook_failure.clone().or(a.failure.clone()))
        {
            after["result"]["error_message"] = json!(m);
        }
        // Every tag the scenario carries, the feature's and the rule's too (what Xray and
        // Allure select by), as cucumber's own formatter lists them.
        let mut scopes = vec![(doc.feature.position.line, &doc.feature.tags)];
        scopes.extend(found.rule.map(|r| (r.position.line, &r.tags)));
        scopes.push((found.scenario.position.line, &found.scenario.tags));
        scopes.extend(found.example.map(|(ex, _)| (ex.position.line, &ex.tags)));
        let tags: Vec<Value> = scopes
            .into_iter()
            .flat_map(|(line, names)| doc.tags_above(line, names))
            .map(|t| json!({"name": t.name, "line": t.line}))
            .collect();
        elements.push(json!({
            "id": id,
            "keyword": found.scenario.keyword,
            "name": name,
            "description": found.scenario.description.clone().unwrap_or_default(),
            "line": s.line,
            "type": "scenario",
            "tags": tags,
            "steps": own.iter().map(|p| step(p)).collect::<Vec<_>>(),
            "after": [after],
        }));
        match features.iter_mut().find(|(u, _)| *u == s.uri) {
            Some((_, e)) => e.extend(elements),
            None => features.push((s.uri.as_str(), elements)),
        }
    }
    let out: Vec<Value> = features
        .into_iter()
        .map(|(uri, elements)| {
            let doc: &Doc<'_> = &docs[uri];
            let f = &doc.feature;
            json!({
                "uri": uri,
                "id": slug(&f.name),
                "keyword": f.keyword,
                "name": f.name,
                "description": f.description.clone().unwrap_or_default(),
                "line": f.position.line,
                "tags": doc.tags_above(f.position.line, &f.tags).into_iter()
                    .map(|t| json!({"name": t.name, "line": t.line})).collect::<Vec<_>>(),
                "elements": elements,
            })
        })
        .collect();
    serde_json::to_string_pretty(&out)
        .map(|t| t + "\n")
        .map_err(|e| format!("failed to encode cucumber.json: {e}"))
}

/// Cucumber's ids: lower case, every run of other characters one `-`.
fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}
