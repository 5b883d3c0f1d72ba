//! `docs/authoring.md` cannot drift from the code and the features: every error code the
//! console's sources answer with is in its table, every code in its table is one the sources
//! answer with, and every code a feature asserts is listed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `"snake_case"` literals of a line.
fn literals(line: &str) -> Vec<String> {
    line.split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            !s.is_empty()
                && s.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                && !s.starts_with('_')
        })
        .map(str::to_owned)
        .collect()
}

/// Codes in the sources: a literal within two lines after a `StatusCode::`, or an arm of the
/// worker's refusal codes (`=> "worker_…"`), or the bearer's codes.
fn source_codes() -> BTreeSet<String> {
    let mut files = Vec::new();
    rust_files(&root().join("rocky/src/console"), &mut files);
    files.push(root().join("rocky/src/http.rs"));
    let mut codes = BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if l.contains("StatusCode::") {
                for near in &lines[i..(i + 3).min(lines.len())] {
                    codes.extend(literals(near));
                }
            }
            if l.trim_start().starts_with("} => \"worker_") || l.contains("=> \"worker_") {
                codes.extend(literals(l));
            }
        }
    }
    codes.remove("ok"); // a success outcome, not an error code
    codes
}

/// The codes in the doc's error table (every `` `code` `` in a row starting with a status).
fn doc_codes() -> BTreeSet<String> {
    let doc = std::fs::read_to_string(root().join("docs/authoring.md")).unwrap();
    let section = doc
        .split("## Error codes the console answers")
        .nth(1)
        .unwrap()
        .split("\n## ")
        .next()
        .unwrap();
    section
        .lines()
        .filter(|l| l.starts_with("| ") && l[2..5].chars().all(|c| c.is_ascii_digit()))
        .flat_map(|l| {
            let cells: Vec<&str> = l.split('|').collect();
            cells[2]
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn every_error_code_is_documented_and_every_documented_code_exists() {
    let sources = source_codes();
    let doc = doc_codes();
    let missing: Vec<_> = sources.difference(&doc).collect();
    assert!(
        missing.is_empty(),
        "docs/authoring.md does not list these error codes the console answers: {missing:?}"
    );
    let all_source = {
        let mut files = Vec::new();
        rust_files(&root().join("rocky/src"), &mut files);
        files
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap())
            .collect::<String>()
    };
    let stale: Vec<_> = doc
        .iter()
        .filter(|c| !all_source.contains(&format!("\"{c}\"")))
        .collect();
    assert!(
        stale.is_empty(),
        "docs/authoring.md lists codes no source answers with: {stale:?}"
    );
    for f in std::fs::read_dir(root().join("features"))
        .unwrap()
        .flatten()
    {
        let p = f.path();
        if p.extension().is_none_or(|x| x != "feature") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        for l in text.lines() {
            // Outline rows hold codes too: every literal-looking cell of a table row.
            let cells: Vec<String> = if l.trim_start().starts_with('|') {
                l.split('|').map(|c| c.trim().to_owned()).collect()
            } else {
                l.split("with code \"")
                    .skip(1)
                    .map(|r| r.split('"').next().unwrap_or("").to_owned())
                    .collect()
            };
            for c in cells {
                if sources.contains(&c) {
                    assert!(
                        doc.contains(&c),
                        "{}: code {c} is not documented",
                        p.display()
                    );
                }
            }
        }
    }
}
