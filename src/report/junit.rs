//! JUnit XML in nextest's own dialect, through nextest's own crate (quick-junit): the reader
//! for the results table (test suites, their test cases, each case's outcome: `<failure>`,
//! `<error>`, `<skipped>`, Surefire's `<flakyFailure>`), the merge of shards and phases, and
//! [`write`] for the runner's report.
//!
//! quick-junit reads what quick-junit writes; files from other writers (cucumber's
//! `junit-report`, a shard's bare `<testsuite>`) may have a `<testsuite>` root or a `time` that
//! is no number. [`read`] first passes the file through quick-xml (quick-junit's own XML
//! crate), wrapping a bare suite in `<testsuites>` and dropping unreadable times (read as 0),
//! so those read as before.

use std::io::Cursor;

use quick_junit::{NonSuccessKind, Report, TestCaseStatus, TestSuite};
use quick_xml::events::{BytesEnd, BytesStart, Event};

/// How a test case ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Failed,
    Errored,
    Flaky,
    Passed,
    Skipped,
}

/// One `<testcase>`.
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    /// The enclosing `<testsuite name>`.
    pub suite: String,
    pub name: String,
    /// Seconds, from the `time` attribute (0 when absent or unreadable).
    pub time_s: f64,
    pub outcome: Outcome,
    /// The `message` attribute of the failure, error, skip or flaky element, else its text.
    pub message: Option<String>,
    /// `file:line` from the `file` and `line` attributes, when the writer gave them.
    pub location: Option<String>,
}

/// Reads a JUnit document; an empty one holds no suites.
pub fn read(xml: &str) -> Result<Report, String> {
    if xml.trim().is_empty() {
        return Ok(Report::unnamed());
    }
    let xml = lenient(xml)?;
    Report::deserialize_from_str(&xml).map_err(|e| format!("not a JUnit report: {e}"))
}

/// Reads every test case of a JUnit report, in document order.
pub fn parse(xml: &str) -> Result<Vec<Case>, String> {
    let report = read(xml)?;
    let mut cases = Vec::new();
    for suite in &report.test_suites {
        for c in &suite.test_cases {
            let text = |message: &Option<quick_junit::XmlString>,
                        description: &Option<quick_junit::XmlString>| {
                message
                    .as_ref()
                    .map(|m| m.as_str().to_owned())
                    .filter(|m| !m.trim().is_empty())
                    .or_else(|| {
                        description
                            .as_ref()
                            .map(|d| d.as_str().trim().to_owned())
                            .filter(|d| !d.is_empty())
                    })
            };
            let (outcome, message) = match &c.status {
                TestCaseStatus::Success { flaky_runs } if flaky_runs.is_empty() => {
                    (Outcome::Passed, None)
                }
                TestCaseStatus::Success { flaky_runs } => (
                    Outcome::Flaky,
                    text(&flaky_runs[0].message, &flaky_runs[0].description),
                ),
                TestCaseStatus::NonSuccess {
                    kind,
                    message,
                    description,
                    ..
                } => (
                    match kind {
                        NonSuccessKind::Failure => Outcome::Failed,
                        NonSuccessKind::Error => Outcome::Errored,
                    },
                    text(message, description),
                ),
                TestCaseStatus::Skipped {
                    message,
                    description,
                    ..
                } => (Outcome::Skipped, text(message, description)),
            };
            let attr = |k: &str| c.extra.get(k).map(|v| v.as_str().to_owned());
            cases.push(Case {
                suite: suite.name.as_str().to_owned(),
                name: c.name.as_str().to_owned(),
                time_s: c.time.map_or(0.0, |t| t.as_secs_f64()),
                outcome,
                message,
                location: attr("file").map(|f| match attr("line") {
                    Some(l) => format!("{f}:{l}"),
                    None => f,
                }),
            });
        }
    }
    Ok(cases)
}

/// `xml` with a bare `<testsuite>` root wrapped in `<testsuites>` and every `time` attribute
/// that is no number of seconds dropped.
fn lenient(xml: &str) -> Result<String, String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut writer = quick_xml::Writer::new(Cursor::new(Vec::new()));
    let mut wrapped = false;
    let mut seen_root = false;
    let broken = |e: &dyn std::fmt::Display| format!("not well-formed XML: {e}");
    loop {
        let (element, kind) = match reader.read_event().map_err(|e| broken(&e))? {
            Event::Eof => break,
            Event::Start(e) => (e, Kind::Start),
            Event::Empty(e) => (e, Kind::Empty),
            other => {
                writer.write_event(other).map_err(|e| broken(&e))?;
                continue;
            }
        };
        if !seen_root {
            seen_root = true;
            if element.name().as_ref() == b"testsuite" {
                wrapped = true;
                writer
                    .write_event(Event::Start(BytesStart::new("testsuites")))
                    .map_err(|e| broken(&e))?;
            }
        }
        writer
            .write_event(rewrite(element, kind)?)
            .map_err(|e| broken(&e))?;
    }
    if wrapped {
        writer
            .write_event(Event::End(BytesEnd::new("testsuites")))
            .map_err(|e| broken(&e))?;
    }
    String::from_utf8(writer.into_inner().into_inner()).map_err(|e| broken(&e))
}

enum Kind {
    Start,
    Empty,
}

/// The element with its unreadable `time` attribute dropped.
fn rewrite(e: BytesStart<'_>, kind: Kind) -> Result<Event<'static>, String> {
    let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
    let mut out = BytesStart::new(name);
    for a in e.attributes() {
        let a = a.map_err(|err| format!("not well-formed XML: {err}"))?;
        let readable = std::str::from_utf8(&a.value)
            .ok()
            .and_then(|v| v.trim().parse::<f64>().ok())
            .is_some_and(|t| t.is_finite() && t >= 0.0);
        if a.key.as_ref() == b"time" && !readable {
            continue;
        }
        out.push_attribute(a);
    }
    Ok(match kind {
        Kind::Start => Event::Start(out),
        Kind::Empty => Event::Empty(out),
    })
}

/// A report as its file's bytes.
pub fn write(report: &Report) -> Result<String, String> {
    report
        .to_string()
        .map_err(|e| format!("failed to encode the JUnit report: {e}"))
}

/// The `<testsuite name>` of one phase of a job (`ROCKY_E2E_PHASE`).
pub fn phase_suite(phase: &str) -> String {
    format!("phase: {phase}")
}

/// The phase a suite name stands for, when it is one ([`phase_suite`]).
pub fn phase_of_suite(suite: &str) -> Option<&str> {
    suite.strip_prefix("phase: ")
}

/// One JUnit document holding every `<testsuite>` of `parts` (the shards of a run), with the
/// totals summed. Each part must be a JUnit document with at least one `<testsuite>`.
pub fn merge(parts: &[String]) -> Result<String, String> {
    let mut merged = Report::new("rocky-e2e");
    for (i, xml) in parts.iter().enumerate() {
        let part = read(xml).map_err(|e| format!("part {}: {e}", i + 1))?;
        if part.test_suites.is_empty() {
            return Err(format!("part {} holds no <testsuite>", i + 1));
        }
        let suites: Vec<TestSuite> = part.test_suites;
        merged.add_test_suites(suites);
    }
    write(&merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cases_outcomes_and_messages() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?>
<testsuites>
  <!-- a comment <testcase name="no"/> -->
  <testsuite id="0" name="Feature: A: features/a.feature" tests="3">
    <testcase name="Scenario: ok: features/a.feature:3:3" time="0.5"><system-out><![CDATA[<not a tag>]]></system-out></testcase>
    <testcase name="Scenario: bad &amp; &#x1F4A5;: features/a.feature:9:3" time="1.25">
      <failure type="Step Panicked" message="line one&#10;line two"><![CDATA[output]]></failure>
    </testcase>
    <testcase name='Scenario: text: x:1:1' time="x"><error type="e">  from text  </error></testcase>
  </testsuite>
  <testsuite id="skipped" name="skipped by topology"><testcase name="Scenario: s: f:1:1" time="0"><skipped message="@docker: no engine"/></testcase></testsuite>
  <testsuite name="retries"><testcase name="r"><flakyFailure message="first try"/></testcase></testsuite>
</testsuites>"#;
        let cases = parse(xml).unwrap();
        assert_eq!(cases.len(), 5);
        assert_eq!(cases[0].outcome, Outcome::Passed);
        assert_eq!(cases[0].suite, "Feature: A: features/a.feature");
        assert_eq!(cases[1].name, "Scenario: bad & 💥: features/a.feature:9:3");
        assert_eq!(cases[1].outcome, Outcome::Failed);
        assert_eq!(cases[1].message.as_deref(), Some("line one\nline two"));
        assert_eq!(cases[1].time_s, 1.25);
        assert_eq!(cases[2].outcome, Outcome::Errored);
        assert_eq!(cases[2].message.as_deref(), Some("from text"));
        assert_eq!(cases[2].time_s, 0.0);
        assert_eq!(cases[3].outcome, Outcome::Skipped);
        assert_eq!(cases[3].suite, "skipped by topology");
        assert_eq!(cases[3].message.as_deref(), Some("@docker: no engine"));
        assert_eq!(cases[4].outcome, Outcome::Flaky);
    }

    #[test]
    fn broken_files_are_errors_not_panics() {
        assert!(parse("<testsuites><testsuite>").is_err());
        assert!(parse("<testcase name=\"x").is_err());
        assert!(parse("<a><![CDATA[x").is_err());
        assert_eq!(parse("").unwrap(), vec![]);
    }

    #[test]
    fn shards_merge_into_one_document_with_every_case() {
        let a = "<?xml version=\"1.0\"?><testsuites><testsuite name=\"s\" tests=\"1\"><testcase name=\"a\" time=\"1\"/></testsuite></testsuites>".to_owned();
        let b = "<testsuite name=\"s\" tests=\"2\"><testcase name=\"b\" time=\"1\"/><testcase name=\"c\" time=\"1\"><failure message=\"x\"/></testcase></testsuite>".to_owned();
        let merged = merge(&[a, b]).unwrap();
        let cases = parse(&merged).unwrap();
        assert_eq!(cases.len(), 3, "{merged}");
        assert!(merged.contains("tests=\"3\""));
        assert!(merge(&["<nothing/>".to_owned()]).is_err());
    }
}
