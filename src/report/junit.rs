//! Just enough of a JUnit XML reader for the results table: test suites, their test cases,
//! and each case's outcome (`<failure>`, `<error>`, `<skipped>`, Surefire's `<flakyFailure>`).
//!
//! No XML crate: the file is machine-written (cucumber's JUnit writer, plus the runner's
//! `skipped by topology` suite), so elements, attributes, comments, CDATA and the five
//! predefined entities plus numeric references are all this needs to read.

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

#[derive(Debug)]
enum Token {
    Open {
        name: String,
        attrs: Vec<(String, String)>,
        empty: bool,
    },
    Close,
    Text(String),
}

/// Reads every test case of a JUnit report, in document order.
pub fn parse(xml: &str) -> Result<Vec<Case>, String> {
    let tokens = tokenize(xml)?;
    let mut cases = Vec::new();
    // Element stack: (name, attributes).
    let mut stack: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let mut suites: Vec<String> = Vec::new();
    let mut case: Option<Case> = None;
    // The outcome element being read inside the case, and its text so far.
    let mut outcome_text: Option<String> = None;
    for token in tokens {
        match token {
            Token::Open { name, attrs, empty } => {
                let attr = |k: &str| attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                match name.as_str() {
                    "testsuite" => suites.push(attr("name").unwrap_or_default()),
                    "testcase" => {
                        case = Some(Case {
                            suite: suites.last().cloned().unwrap_or_default(),
                            name: attr("name").unwrap_or_default(),
                            time_s: attr("time")
                                .and_then(|t| t.trim().parse().ok())
                                .unwrap_or(0.0),
                            outcome: Outcome::Passed,
                            message: None,
                            location: attr("file").map(|f| match attr("line") {
                                Some(l) => format!("{f}:{l}"),
                                None => f,
                            }),
                        });
                    }
                    kind @ ("failure" | "error" | "skipped" | "flakyFailure" | "flakyError"
                    | "rerunFailure" | "rerunError") => {
                        if let Some(c) = case.as_mut() {
                            let outcome = match kind {
                                "failure" | "rerunFailure" => Outcome::Failed,
                                "error" | "rerunError" => Outcome::Errored,
                                "skipped" => Outcome::Skipped,
                                _ => Outcome::Flaky,
                            };
                            // A real failure outranks a flaky attempt recorded beside it.
                            if outcome < c.outcome || c.outcome == Outcome::Passed {
                                c.outcome = outcome;
                                c.message = attr("message").filter(|m| !m.trim().is_empty());
                                if c.message.is_none() && !empty {
                                    outcome_text = Some(String::new());
                                }
                            }
                        }
                    }
                    _ => {}
                }
                if empty {
                    close(&name, &mut suites, &mut case, &mut cases, &mut outcome_text);
                } else {
                    stack.push((name, attrs));
                }
            }
            Token::Close => {
                let Some((name, _)) = stack.pop() else {
                    return Err("a closing tag with no element open".into());
                };
                close(&name, &mut suites, &mut case, &mut cases, &mut outcome_text);
            }
            Token::Text(t) => {
                if let Some(buf) = outcome_text.as_mut() {
                    buf.push_str(&t);
                }
            }
        }
    }
    if let Some((name, _)) = stack.last() {
        return Err(format!("<{name}> is never closed"));
    }
    Ok(cases)
}

fn close(
    name: &str,
    suites: &mut Vec<String>,
    case: &mut Option<Case>,
    cases: &mut Vec<Case>,
    outcome_text: &mut Option<String>,
) {
    match name {
        "testsuite" => {
            suites.pop();
        }
        "testcase" => cases.extend(case.take()),
        "failure" | "error" | "skipped" | "flakyFailure" | "flakyError" | "rerunFailure"
        | "rerunError" => {
            if let (Some(text), Some(c)) = (outcome_text.take(), case.as_mut()) {
                let text = text.trim();
                if !text.is_empty() {
                    c.message = Some(text.to_owned());
                }
            }
        }
        _ => {}
    }
}

fn tokenize(xml: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut rest = xml;
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            out.push(Token::Text(unescape(rest)));
            break;
        };
        if lt > 0 {
            out.push(Token::Text(unescape(&rest[..lt])));
        }
        rest = &rest[lt..];
        if let Some(r) = rest.strip_prefix("<![CDATA[") {
            let end = r.find("]]>").ok_or("unterminated CDATA section")?;
            out.push(Token::Text(r[..end].to_owned()));
            rest = &r[end + 3..];
        } else if let Some(r) = rest.strip_prefix("<!--") {
            let end = r.find("-->").ok_or("unterminated comment")?;
            rest = &r[end + 3..];
        } else if rest.starts_with("<?") || rest.starts_with("<!") {
            let end = rest.find('>').ok_or("unterminated declaration")?;
            rest = &rest[end + 1..];
        } else if let Some(r) = rest.strip_prefix("</") {
            let end = r.find('>').ok_or("unterminated closing tag")?;
            out.push(Token::Close);
            rest = &r[end + 1..];
        } else {
            let (token, len) = open_tag(rest)?;
            out.push(token);
            rest = &rest[len..];
        }
    }
    Ok(out)
}

/// Reads `<name a="v" b='w'>` or `<name/>` at the start of `s`; returns it and its length.
fn open_tag(s: &str) -> Result<(Token, usize), String> {
    let bytes = s.as_bytes();
    let mut i = 1;
    let name_end = s[i..]
        .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
        .map(|n| n + i)
        .ok_or("unterminated tag")?;
    let name = s[i..name_end].to_owned();
    if name.is_empty() {
        return Err("a tag with no name".into());
    }
    i = name_end;
    let mut attrs = Vec::new();
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        match bytes.get(i) {
            None => return Err(format!("<{name}> is not terminated")),
            Some(b'>') => {
                return Ok((
                    Token::Open {
                        name,
                        attrs,
                        empty: false,
                    },
                    i + 1,
                ));
            }
            Some(b'/') if bytes.get(i + 1) == Some(&b'>') => {
                return Ok((
                    Token::Open {
                        name,
                        attrs,
                        empty: true,
                    },
                    i + 2,
                ));
            }
            Some(_) => {
                let eq = s[i..]
                    .find('=')
                    .map(|n| n + i)
                    .ok_or_else(|| format!("attribute without value in <{name}>"))?;
                let key = s[i..eq].trim().to_owned();
                let mut j = eq + 1;
                while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                    j += 1;
                }
                let quote = *bytes.get(j).ok_or("attribute value missing")?;
                if quote != b'"' && quote != b'\'' {
                    return Err(format!("unquoted attribute {key} in <{name}>"));
                }
                let close = s[j + 1..]
                    .find(quote as char)
                    .map(|n| n + j + 1)
                    .ok_or_else(|| format!("unterminated attribute {key} in <{name}>"))?;
                attrs.push((key, unescape(&s[j + 1..close])));
                i = close + 1;
            }
        }
    }
}

/// Resolves the predefined entities and numeric character references.
fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest.find(';').filter(|&n| n <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let ch = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
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
/// totals summed. Each part must be a JUnit document with at least a `<testsuites>` or
/// `<testsuite>` element.
pub fn merge(parts: &[String]) -> Result<String, String> {
    let mut suites = String::new();
    let mut cases = 0usize;
    for (i, xml) in parts.iter().enumerate() {
        let parsed = parse(xml).map_err(|e| format!("part {}: {e}", i + 1))?;
        cases += parsed.len();
        let mut rest = xml.as_str();
        let mut found = false;
        while let Some(start) = rest
            .find("<testsuite ")
            .or_else(|| rest.find("<testsuite>"))
        {
            let end = rest[start..]
                .find("</testsuite>")
                .map(|e| start + e + "</testsuite>".len())
                .or_else(|| rest[start..].find("/>").map(|e| start + e + 2))
                .ok_or_else(|| format!("part {}: a <testsuite> is not closed", i + 1))?;
            suites.push_str("  ");
            suites.push_str(&rest[start..end]);
            suites.push('\n');
            rest = &rest[end..];
            found = true;
        }
        if !found {
            return Err(format!("part {} holds no <testsuite>", i + 1));
        }
    }
    Ok(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"rocky-e2e\" tests=\"{cases}\">\n{suites}</testsuites>\n"
    ))
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
        assert_eq!(unescape("a & b &bogus; &lt;"), "a & b &bogus; <");
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
