//! Reading one `.feature` file, the way every reader of the features reads it (the catalogue,
//! the vocabulary check, `rocky-e2e steps`): gherkin's parse, with a failure named by file,
//! line and reason instead of gherkin's bare "Could not parse feature file". Where the mistake
//! can be seen in the text (an empty file, text before `Feature:`, a doc string never closed,
//! a table row with the wrong number of cells) the message names its line and says what is
//! wrong; gherkin's own report (where it stopped, what it expected) always follows.
//!
//! One mistake gherkin accepts is refused here: a table row (a step's data table or an
//! `Examples:` row) with more cells than the table's first row, whose extra cells gherkin
//! silently drops.

use std::path::Path;

use cucumber::gherkin::{self, GherkinEnv};

/// The feature in `path`, or why it cannot be read; messages start with `shown` (the path as
/// the caller shows it), then `:LINE:` where a line is known.
pub fn parse(path: &Path, shown: &str) -> Result<gherkin::Feature, String> {
    let mut text =
        std::fs::read_to_string(path).map_err(|e| format!("{shown}: failed to read: {e}"))?;
    // gherkin ends a line only at `\n`: after a bare `\r` (old Mac line ends) the rest of the
    // file would be one line, its scenarios part of the feature's title, and nothing would run.
    if let Some(at) = text
        .char_indices()
        .find(|&(i, c)| c == '\r' && !text[i + 1..].starts_with('\n'))
        .map(|(i, _)| i)
    {
        let line = text[..at].matches('\n').count() + 1;
        return Err(format!(
            "{shown}:{line}: a line ends in a carriage return without a line feed (CR-only line ends): gherkin would read what follows it as part of this line, so scenarios after it would not run; save the file with \\n (or \\r\\n) line ends"
        ));
    }
    // gherkin parses the text with a newline added when it has none; spans count in that text.
    if !text.ends_with('\n') {
        text.push('\n');
    }
    match gherkin::Feature::parse_path(path, GherkinEnv::default()) {
        Ok(feature) => match tables(&feature)
            .into_iter()
            .find_map(|t| table_problem(&text, t))
        {
            Some(problem) => Err(format!("{shown}:{problem}")),
            None => Ok(feature),
        },
        Err(e) => Err(format!("{shown}:{}", diagnose(&text, &e))),
    }
}

/// A mistake at a line (and column, when gherkin gave one).
#[derive(Debug, PartialEq, Eq)]
struct Problem {
    line: usize,
    col: Option<usize>,
    reason: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.col {
            Some(col) => write!(f, "{}:{col}: {}", self.line, self.reason),
            None => write!(f, "{}: {}", self.line, self.reason),
        }
    }
}

/// Every table of a parsed feature: steps' data tables (backgrounds included) and examples.
fn tables(feature: &gherkin::Feature) -> Vec<&gherkin::Table> {
    let backgrounds = feature
        .background
        .iter()
        .chain(feature.rules.iter().filter_map(|r| r.background.as_ref()));
    let scenarios = feature
        .scenarios
        .iter()
        .chain(feature.rules.iter().flat_map(|r| &r.scenarios));
    let mut out: Vec<&gherkin::Table> = backgrounds
        .flat_map(|b| &b.steps)
        .filter_map(|s| s.table.as_ref())
        .collect();
    for s in scenarios {
        out.extend(s.steps.iter().filter_map(|s| s.table.as_ref()));
        out.extend(s.examples.iter().filter_map(|e| e.table.as_ref()));
    }
    out
}

/// A row of a parsed table whose cells, as written, do not match its first row's.
fn table_problem(text: &str, table: &gherkin::Table) -> Option<Problem> {
    let written = text.get(table.span.start..table.span.end.min(text.len()))?;
    ragged_row(
        written
            .lines()
            .enumerate()
            .map(|(i, l)| (table.position.line + i, l)),
    )
}

/// The first row of the table made of `lines` (`(line number, text)`, starting at its first
/// row; blank and comment lines inside it skipped, any other line ending it) whose cells do not
/// match its first row's, or that does not end with `|`.
fn ragged_row<'a>(lines: impl Iterator<Item = (usize, &'a str)>) -> Option<Problem> {
    let mut first: Option<(usize, usize)> = None;
    for (line, raw) in lines {
        let row = raw.trim();
        if row.is_empty() || row.starts_with('#') {
            continue;
        }
        if !row.starts_with('|') {
            break;
        }
        if !ends_with_bar(row) {
            return Some(Problem {
                line,
                col: None,
                reason: "this table row does not end with `|`: every row of a table starts and ends with `|`".into(),
            });
        }
        let n = cells(row);
        match first {
            None => first = Some((line, n)),
            Some((at, want)) if n != want => {
                return Some(Problem {
                    line,
                    col: None,
                    reason: format!(
                        "this table row has {n} cell(s) but the table's first row (line {at}) has {want}: every row of a table needs as many cells as its first{}",
                        if n > want {
                            " (gherkin would drop the extra ones)"
                        } else {
                            ""
                        }
                    ),
                });
            }
            Some(_) => {}
        }
    }
    None
}

/// The cells of a table row as written (`\|` is a bar inside a cell).
fn cells(row: &str) -> usize {
    let mut bars = 0usize;
    let mut chars = row.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '|' => bars += 1,
            _ => {}
        }
    }
    bars.saturating_sub(1)
}

/// Whether a row ends with a bar that is not escaped.
fn ends_with_bar(row: &str) -> bool {
    let Some(body) = row.strip_suffix('|') else {
        return false;
    };
    // An odd run of backslashes before it escapes it.
    body.chars().rev().take_while(|&c| c == '\\').count() % 2 == 0
}

/// Why gherkin refused `text`: the mistake where it can be seen in the text, then gherkin's
/// own report.
fn diagnose(text: &str, error: &gherkin::ParseFileError) -> String {
    let (env, report) = match error {
        gherkin::ParseFileError::Reading { source, .. } => {
            return format!(" failed to read: {source}");
        }
        gherkin::ParseFileError::Parsing { error, source, .. } => {
            (error.as_ref(), parser_report(&source.to_string()))
        }
    };
    let own = gherkin_report(env, &report);
    let problem = seen_in_text(text, env, report.at.map(|(l, _)| l)).unwrap_or_else(|| Problem {
        line: report.at.map_or(1, |(l, _)| l),
        col: report.at.map(|(_, c)| c),
        reason: "gherkin cannot parse the file from here".into(),
    });
    format!("{problem}; gherkin's own report: {own}")
}

/// The mistakes a reader sees in the text, first in the file first.
fn seen_in_text(
    text: &str,
    env: Option<&gherkin::EnvError>,
    stopped: Option<usize>,
) -> Option<Problem> {
    let lines: Vec<(usize, &str)> = text.lines().enumerate().map(|(i, l)| (i + 1, l)).collect();
    let significant = lines.iter().find(|(_, l)| {
        let l = l.trim();
        !l.is_empty() && !l.starts_with('#') && !l.starts_with('@')
    });
    let Some(&(first_line, first)) = significant else {
        return Some(Problem {
            line: 1,
            col: None,
            reason: "the file holds no feature: a feature file starts with `Feature:` (after any tags and comments)".into(),
        });
    };
    let localised = lines
        .iter()
        .any(|(_, l)| l.trim_start().starts_with("# language:"));
    let first = first.trim();
    if !localised
        && !["Feature:", "Business Need:", "Ability:"]
            .iter()
            .any(|k| first.starts_with(k))
    {
        return Some(Problem {
            line: first_line,
            col: None,
            reason: format!(
                "`{first}` comes before `Feature:`: a feature file starts with `Feature:` (after any tags and comments)"
            ),
        });
    }
    if let Some(problem) = in_blocks(&lines) {
        return Some(problem);
    }
    // The keyword gherkin last failed to read: the last line starting with it where gherkin
    // stopped or before.
    if let Some(gherkin::EnvError::UnknownKeyword(word)) = env {
        let word = word.lines().next().unwrap_or("").trim();
        if !word.is_empty()
            && let Some(&(line, l)) = lines
                .iter()
                .rev()
                .filter(|(n, _)| stopped.is_none_or(|s| *n <= s))
                .find(|(_, l)| l.trim_start().starts_with(word))
        {
            return Some(Problem {
                line,
                col: None,
                reason: format!(
                    "`{}` is not a line gherkin expects here (a step starts with Given, When, Then, And, But or *; Feature:, Rule:, Background:, Scenario: and Examples: end with a colon)",
                    l.trim()
                ),
            });
        }
    }
    None
}

/// A doc string never closed, or a ragged table row outside doc strings.
fn in_blocks(lines: &[(usize, &str)]) -> Option<Problem> {
    let mut i = 0;
    while i < lines.len() {
        let (line, raw) = lines[i];
        let l = raw.trim_start();
        if let Some(delimiter) = ["\"\"\"", "```"].into_iter().find(|d| l.starts_with(d)) {
            // Closed by the next delimiter, on this line or a later one.
            if l[delimiter.len()..].contains(delimiter) {
                i += 1;
                continue;
            }
            match lines[i + 1..]
                .iter()
                .position(|(_, l)| l.contains(delimiter))
            {
                Some(j) => i += j + 2,
                None => {
                    return Some(Problem {
                        line,
                        col: None,
                        reason: format!(
                            "the doc string opened here with {delimiter} is never closed"
                        ),
                    });
                }
            }
            continue;
        }
        if l.starts_with('|') {
            if let Some(problem) = ragged_row(lines[i..].iter().copied()) {
                return Some(problem);
            }
            i += table_length(&lines[i..]).max(1);
            continue;
        }
        i += 1;
    }
    None
}

/// How many lines the table starting at `lines[0]` takes (rows, and blank or comment lines
/// between them).
fn table_length(lines: &[(usize, &str)]) -> usize {
    lines
        .iter()
        .take_while(|(_, l)| {
            let l = l.trim();
            l.is_empty() || l.starts_with('#') || l.starts_with('|')
        })
        .count()
}

/// What gherkin reported: where it stopped, what it expected there (tokens), and the reasons
/// its grammar gave (`unknown keyword`, `inconsistent table row sizes`).
#[derive(Debug, Default, PartialEq, Eq)]
struct Report {
    at: Option<(usize, usize)>,
    expected: Vec<String>,
    reasons: Vec<String>,
}

/// gherkin's report, read from its error's text (`Error at LINE:COL: {"token", …}`: the
/// fields themselves are private).
fn parser_report(text: &str) -> Report {
    let Some((position, set)) = text
        .strip_prefix("Error at ")
        .and_then(|r| r.split_once(": "))
    else {
        return Report::default();
    };
    let mut report = Report {
        at: position
            .split_once(':')
            .and_then(|(l, c)| Some((l.parse().ok()?, c.parse().ok()?))),
        ..Report::default()
    };
    for token in debug_strings(set) {
        if token.len() >= 2 && token.starts_with('"') && token.ends_with('"') {
            // A literal, quoted and escaped once more.
            report
                .expected
                .extend(debug_strings(&token).pop().map(|t| format!("`{t}`")));
        } else if token == "EOF" {
            report.expected.push("the end of the file".into());
        } else if !(token.starts_with('\'') || matches!(token.as_str(), "_" | "__" | "no match")) {
            // (Whitespace classes and the grammar's own rule names say nothing to a reader.)
            report.reasons.push(token);
        }
    }
    report.expected.sort();
    report.reasons.sort();
    report
}

/// gherkin's own report: where it stopped, its reason and what it expected.
fn gherkin_report(env: Option<&gherkin::EnvError>, report: &Report) -> String {
    let mut parts = Vec::new();
    match env {
        Some(gherkin::EnvError::UnknownKeyword(word)) => parts.push(format!(
            "unknown keyword `{}`",
            word.lines().next().unwrap_or("").trim()
        )),
        Some(gherkin::EnvError::InconsistentCellCount(_)) => {
            parts.push("inconsistent cell count".to_owned());
        }
        Some(other) => parts.push(other.to_string()),
        // The grammar's reasons say again what the environment's error says.
        None => parts.extend(report.reasons.iter().cloned()),
    }
    if !report.expected.is_empty() {
        parts.push(format!("expected {}", report.expected.join(" or ")));
    }
    let at = match report.at {
        Some((line, col)) => format!("stopped at line {line}, column {col}"),
        None => "stopped".to_owned(),
    };
    if parts.is_empty() {
        at
    } else {
        format!("{at}: {}", parts.join(", "))
    }
}

/// The strings of a `{:?}` of strings (`{"a", "b\"c"}` → `a`, `b"c`).
fn debug_strings(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut s = String::new();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => match chars.next() {
                    Some('n') => s.push('\n'),
                    Some('t') => s.push('\t'),
                    Some('r') => s.push('\r'),
                    Some('0') => s.push('\0'),
                    Some('u') => {
                        let hex: String = chars
                            .by_ref()
                            .skip_while(|&c| c == '{')
                            .take_while(|&c| c != '}')
                            .collect();
                        if let Some(c) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32)
                        {
                            s.push(c);
                        }
                    }
                    Some(other) => s.push(other),
                    None => {}
                },
                other => s.push(other),
            }
        }
        out.push(s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `text` as `f.feature`, parsed.
    fn parse_text(text: &str) -> Result<gherkin::Feature, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.feature");
        std::fs::write(&path, text).unwrap();
        parse(&path, "f.feature")
    }

    #[test]
    fn every_parse_error_names_its_line_and_reason_and_gherkins_own() {
        let cases = [
            (
                "Feature: F\n  Scenario: s\n    Given a doc\n      \"\"\"\n      text\n    When x\n",
                "f.feature:4: the doc string opened here with \"\"\" is never closed; gherkin's own report: stopped at line 7, column 1: unknown keyword `\"\"\"`, expected `\"\"\"`",
            ),
            (
                "Feature: F\n  Scenario: s\n    Given a table\n      | a | b |\n      | c |\n    When x\n",
                "f.feature:5: this table row has 1 cell(s) but the table's first row (line 4) has 2: every row of a table needs as many cells as its first; gherkin's own report: stopped at line 6, column 5: inconsistent cell count, expected `|`",
            ),
            (
                "",
                "f.feature:1: the file holds no feature: a feature file starts with `Feature:` (after any tags and comments); gherkin's own report: stopped at line 2, column 1: expected `#` or `@`",
            ),
            (
                "# a comment\n\nGiven a\nFeature: F\n  Scenario: s\n    Given b\n",
                "f.feature:3: `Given a` comes before `Feature:`: a feature file starts with `Feature:` (after any tags and comments); gherkin's own report: stopped at line 4, column 6: unknown keyword `Given a`",
            ),
            (
                "Feature: F\n  Scenario: s\n    Given a\n    Whne b\n",
                "f.feature:4: `Whne b` is not a line gherkin expects here (a step starts with Given, When, Then, And, But or *; Feature:, Rule:, Background:, Scenario: and Examples: end with a colon); gherkin's own report: stopped at line 5, column 1: unknown keyword `Whne`",
            ),
            (
                "@tag\nFeature: F\n  Scenario: s\n    Given a\n  Scenario s2\n    Given b\n",
                "f.feature:5: `Scenario s2` is not a line gherkin expects here (a step starts with Given, When, Then, And, But or *; Feature:, Rule:, Background:, Scenario: and Examples: end with a colon); gherkin's own report: stopped at line 6, column 6: unknown keyword `Scen`",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse_text(text).unwrap_err(), want, "for:\n{text}");
        }
    }

    #[test]
    fn a_row_longer_than_its_first_is_refused_not_cut() {
        let examples = "Feature: F\n  Scenario Outline: s <ws>\n    Given <ws>\n\n    Examples:\n      | ws |\n      | a | b |\n";
        assert_eq!(
            parse_text(examples).unwrap_err(),
            "f.feature:7: this table row has 2 cell(s) but the table's first row (line 6) has 1: every row of a table needs as many cells as its first (gherkin would drop the extra ones)"
        );
        let data = "Feature: F\n  Background:\n    Given a table\n      | a |\n      # a comment\n      | b | c |\n  Scenario: s\n    Given x\n";
        assert!(parse_text(data).unwrap_err().starts_with(
            "f.feature:6: this table row has 2 cell(s) but the table's first row (line 4) has 1"
        ),);
        // An escaped bar is inside a cell; a doc string's bars are text.
        let fine = "Feature: F\n  Scenario: s\n    Given a table\n      | a \\| b | c |\n      | d     | e |\n    And a doc\n      \"\"\"\n      | x |\n      | y | z |\n      \"\"\"\n";
        let feature = parse_text(fine).unwrap();
        assert_eq!(
            feature.scenarios[0].steps[0].table.as_ref().unwrap().rows,
            [["a | b", "c"], ["d", "e"]]
        );
    }

    #[test]
    fn gherkins_report_is_read_back_from_its_text() {
        let report = parser_report(
            r#"Error at 7:1: {"\"\\\"\\\"\\\"\"", "_", "EOF", "' ' | '\\t'", "unknown keyword"}"#,
        );
        assert_eq!(
            report,
            Report {
                at: Some((7, 1)),
                expected: vec!["`\"\"\"`".into(), "the end of the file".into()],
                reasons: vec!["unknown keyword".into()],
            }
        );
        assert_eq!(
            gherkin_report(None, &report),
            "stopped at line 7, column 1: unknown keyword, expected `\"\"\"` or the end of the file"
        );
        assert_eq!(parser_report("something else"), Report::default());
    }
}
