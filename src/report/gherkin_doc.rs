//! A feature file's source read back as gherkin, for the reports that describe scenarios as
//! cucumber's own tools do (Cucumber Messages, Cucumber JSON): where each scenario, step, tag
//! and outline row is, and the steps a scenario runs (background first, outline values filled
//! in). Every id made here is derived from the file and a line, so two runs of the same
//! checkout write the same ids.

use std::collections::BTreeMap;

use cucumber::gherkin::{self, GherkinEnv};
use serde_json::{Value, json};

use super::model::RunReport;

/// One parsed feature file.
pub struct Doc<'a> {
    pub uri: &'a str,
    pub text: &'a str,
    pub feature: gherkin::Feature,
    lines: Vec<&'a str>,
}

/// A tag as written: its name with `@`, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    pub name: String,
    pub line: usize,
    pub col: usize,
}

/// A step a scenario runs, with its outline values filled in.
pub struct PickleStep<'a> {
    pub step: &'a gherkin::Step,
    pub text: String,
    /// From a `Background` (the feature's or the rule's).
    pub background: bool,
}

/// Where a scenario of the report is in its file.
pub struct Found<'a> {
    pub rule: Option<&'a gherkin::Rule>,
    pub scenario: &'a gherkin::Scenario,
    /// For an outline row: its examples and the row's index among the values (0 = first row
    /// under the header).
    pub example: Option<(&'a gherkin::Examples, usize)>,
}

impl<'a> Doc<'a> {
    pub fn parse(uri: &'a str, text: &'a str) -> Result<Doc<'a>, String> {
        let feature = gherkin::Feature::parse(text, GherkinEnv::default())
            .map_err(|e| format!("failed to parse {uri} as gherkin: {e}"))?;
        Ok(Doc {
            uri,
            text,
            feature,
            lines: text.lines().collect(),
        })
    }

    /// An id for the AST node of `kind` at `line`: unique in the document, the same every run.
    pub fn id(&self, kind: &str, line: usize) -> String {
        format!("{kind}:{}:{line}", self.uri)
    }

    /// The tags written above the element at `line` (the lines of `@…` right before it),
    /// matched to `names` (gherkin keeps tags without their place).
    pub fn tags_above(&self, line: usize, names: &[String]) -> Vec<Tag> {
        let mut found = Vec::new();
        let mut l = line.saturating_sub(1);
        while l >= 1 {
            let Some(text) = self.lines.get(l - 1) else {
                break;
            };
            let trimmed = text.trim_start();
            if trimmed.starts_with('#') || trimmed.is_empty() {
                l -= 1;
                continue;
            }
            if !trimmed.starts_with('@') {
                break;
            }
            let mut row = Vec::new();
            for (at, _) in text.match_indices('@') {
                let name: String = text[at + 1..]
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != '@')
                    .collect();
                if !name.is_empty() {
                    row.push(Tag {
                        name: format!("@{name}"),
                        line: l,
                        col: at + 1,
                    });
                }
            }
            found.splice(0..0, row);
            l -= 1;
        }
        let mut out: Vec<Tag> = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                // Not found where expected: the element's line, a column of its own.
                found
                    .iter()
                    .find(|t| t.name[1..] == *n)
                    .cloned()
                    .unwrap_or(Tag {
                        name: format!("@{n}"),
                        line,
                        col: i + 1,
                    })
            })
            .collect();
        out.dedup();
        out
    }

    /// The comments of the file (`# …` lines), as Cucumber Messages lists them.
    pub fn comments(&self) -> Vec<(usize, &'a str)> {
        self.lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.trim_start().starts_with('#'))
            .map(|(i, l)| (i + 1, *l))
            .collect()
    }

    /// The scenario (or outline row) at `line`, as cucumber numbers an expanded outline row
    /// (its examples' line + 2 + the row's index).
    pub fn find(&self, line: usize) -> Option<Found<'_>> {
        let in_rules = self
            .feature
            .rules
            .iter()
            .flat_map(|r| r.scenarios.iter().map(move |s| (Some(r), s)));
        for (rule, scenario) in self
            .feature
            .scenarios
            .iter()
            .map(|s| (None, s))
            .chain(in_rules)
        {
            if scenario.examples.is_empty() {
                if scenario.position.line == line {
                    return Some(Found {
                        rule,
                        scenario,
                        example: None,
                    });
                }
                continue;
            }
            for ex in &scenario.examples {
                let rows = ex
                    .table
                    .as_ref()
                    .map_or(0, |t| t.rows.len().saturating_sub(1));
                if line >= ex.position.line + 2 && line < ex.position.line + 2 + rows {
                    return Some(Found {
                        rule,
                        scenario,
                        example: Some((ex, line - ex.position.line - 2)),
                    });
                }
            }
        }
        None
    }

    /// The line of an examples table's row `i` (0 is the header).
    pub fn row_line(table: &gherkin::Table, i: usize) -> usize {
        table.position.line + i
    }
}

impl<'a> Found<'a> {
    /// The steps the scenario runs: the feature's background, the rule's, its own.
    pub fn steps(&self, doc: &'a Doc<'_>) -> Vec<PickleStep<'a>> {
        let mut out = Vec::new();
        let backgrounds = doc
            .feature
            .background
            .iter()
            .chain(self.rule.and_then(|r| r.background.as_ref()));
        for b in backgrounds {
            out.extend(b.steps.iter().map(|step| PickleStep {
                step,
                text: step.value.clone(),
                background: true,
            }));
        }
        out.extend(self.scenario.steps.iter().map(|step| PickleStep {
            step,
            text: self.fill(&step.value),
            background: false,
        }));
        out
    }

    /// `text` with an outline row's values in place of its `<name>`s.
    pub fn fill(&self, text: &str) -> String {
        let Some((ex, i)) = self.example else {
            return text.to_owned();
        };
        let Some(table) = &ex.table else {
            return text.to_owned();
        };
        let (Some(header), Some(row)) = (table.rows.first(), table.rows.get(i + 1)) else {
            return text.to_owned();
        };
        let mut out = text.to_owned();
        for (name, value) in header.iter().zip(row) {
            out = out.replace(&format!("<{name}>"), value);
        }
        out
    }

    /// Tags of the feature, rule, scenario and examples, without `@`, in that order.
    pub fn tag_names(&self, doc: &Doc<'_>) -> Vec<String> {
        let mut out: Vec<String> = doc.feature.tags.clone();
        if let Some(r) = self.rule {
            out.extend(r.tags.iter().cloned());
        }
        out.extend(self.scenario.tags.iter().cloned());
        if let Some((ex, _)) = self.example {
            out.extend(ex.tags.iter().cloned());
        }
        out
    }
}

/// The keyword type Cucumber Messages gives a step: `Context`, `Action`, `Outcome`, or
/// `Conjunction` for `And`/`But`/`*`.
pub fn keyword_type(step: &gherkin::Step) -> &'static str {
    match step.keyword.trim() {
        "And" | "But" | "*" => "Conjunction",
        _ => step_type(step),
    }
}

/// What a step does (`Context`, `Action`, `Outcome`), `And`/`But` resolved.
pub fn step_type(step: &gherkin::Step) -> &'static str {
    match step.ty {
        gherkin::StepType::Given => "Context",
        gherkin::StepType::When => "Action",
        gherkin::StepType::Then => "Outcome",
    }
}

/// `Given`, `When` or `Then`: the kind of definitions that may match the step.
pub fn kind_name(step: &gherkin::Step) -> &'static str {
    match step.ty {
        gherkin::StepType::Given => "Given",
        gherkin::StepType::When => "When",
        gherkin::StepType::Then => "Then",
    }
}

/// Every source of the report, parsed, by uri.
pub fn parse_sources(report: &RunReport) -> Result<BTreeMap<&str, Doc<'_>>, String> {
    report
        .sources
        .iter()
        .map(|s| Ok((s.uri.as_str(), Doc::parse(&s.uri, &s.text)?)))
        .collect()
}

/// The step definitions' ids and their compiled regexes, by kind.
pub(super) struct Definitions {
    pub(super) ids: Vec<String>,
    regexes: Vec<(String, cucumber::codegen::Regex)>,
    locations: Vec<String>,
}

impl Definitions {
    pub(super) fn of(report: &RunReport) -> Result<Definitions, String> {
        let locations = report
            .step_definitions
            .iter()
            .map(|d| format!("{}:{}", d.uri, d.line))
            .collect();
        let mut ids = Vec::new();
        let mut regexes = Vec::new();
        for d in &report.step_definitions {
            ids.push(format!("stepdef:{}:{}", d.uri, d.line));
            let re = cucumber::codegen::Regex::new(&d.regex).map_err(|e| {
                format!(
                    "the step definition at {}:{} has a regex that does not compile: {e}",
                    d.uri, d.line
                )
            })?;
            regexes.push((d.kind.clone(), re));
        }
        Ok(Definitions {
            ids,
            regexes,
            locations,
        })
    }

    /// `steps/runs.rs:42` of the first definition of `kind` matching `text`.
    pub(super) fn location(&self, kind: &str, text: &str) -> Option<&str> {
        self.regexes
            .iter()
            .position(|(k, re)| k == kind && re.is_match(text))
            .map(|i| self.locations[i].as_str())
    }

    /// The definitions matching a step, and each one's argument groups.
    pub(super) fn matching(&self, kind: &str, text: &str) -> (Vec<String>, Vec<Value>) {
        let mut ids = Vec::new();
        let mut lists = Vec::new();
        for (i, (k, re)) in self.regexes.iter().enumerate() {
            if k != kind {
                continue;
            }
            let Some(caps) = re.captures(text) else {
                continue;
            };
            ids.push(self.ids[i].clone());
            let args: Vec<Value> = caps
                .iter()
                .skip(1)
                .flatten()
                .map(
                    |m| json!({"group": {"children": [], "start": m.start(), "value": m.as_str()}}),
                )
                .collect();
            lists.push(json!({"stepMatchArguments": args}));
        }
        (ids, lists)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FEATURE: &str = "@f\nFeature: F\n  Background:\n    Given a rocky stack\n\n  @s @t\n  Scenario Outline: o <x>\n    When I do <x>\n\n    @e\n    Examples:\n      | x |\n      | 1 |\n      | 2 |\n\n  Scenario: plain\n    Then done\n";

    #[test]
    fn finds_outline_rows_and_fills_their_values() {
        let doc = Doc::parse("features/f.feature", FEATURE).unwrap();
        let row = doc.find(14).expect("the second row");
        assert_eq!(row.example.map(|(_, i)| i), Some(1));
        let steps = row.steps(&doc);
        let texts: Vec<&str> = steps.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(texts, ["a rocky stack", "I do 2"]);
        assert_eq!(row.tag_names(&doc), ["f", "s", "t", "e"]);
        let tags = doc.tags_above(7, &row.scenario.tags);
        assert_eq!(
            tags.iter().map(|t| (t.line, t.col)).collect::<Vec<_>>(),
            [(6, 3), (6, 6)]
        );
        assert!(doc.find(16).is_some_and(|f| f.example.is_none()));
        assert!(doc.find(15).is_none());
    }
}
