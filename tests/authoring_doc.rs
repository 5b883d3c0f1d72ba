//! `docs/authoring.md` cannot drift from the code and the features: every error code the
//! console's sources answer with is in its table, every code in its table is one the sources
//! answer with, every code a feature asserts is listed, and every code `docs/contract.md`
//! names is a [`ErrorCode`].

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rocky::api::ErrorCode;

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

/// The codes the console's sources answer with: every `ErrorCode::Variant` named under
/// `rocky/src/console/` and in `rocky/src/http.rs` (the variant's name is its `Debug`).
fn source_codes() -> BTreeSet<String> {
    let mut files = Vec::new();
    rust_files(&root().join("rocky/src/console"), &mut files);
    files.push(root().join("rocky/src/http.rs"));
    let mut codes = BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for rest in text.split("ErrorCode::").skip(1) {
            let ident: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            let code = ErrorCode::ALL
                .into_iter()
                .find(|c| format!("{c:?}") == ident)
                .unwrap_or_else(|| panic!("{}: ErrorCode::{ident} is no variant", f.display()));
            codes.insert(code.as_str().to_owned());
        }
    }
    codes
}

/// The codes `docs/contract.md` names: every `` `code` `` right after an HTTP status
/// (`503 `audit_unavailable``) and the ones listed after it (`, `worker_refused``).
fn contract_codes() -> BTreeSet<String> {
    let doc = std::fs::read_to_string(root().join("docs/contract.md")).unwrap();
    let mut codes = BTreeSet::new();
    for line in doc.lines() {
        let parts: Vec<&str> = line.split('`').collect();
        // parts[odd] are inside backticks; parts[i - 1] is the text before code i.
        let mut listing = false;
        for i in (1..parts.len()).step_by(2) {
            let before = parts[i - 1];
            let b = before.as_bytes();
            let after_status = b.len() >= 4
                && b[b.len() - 1] == b' '
                && b[b.len() - 4..b.len() - 1].iter().all(u8::is_ascii_digit);
            let snake = !parts[i].is_empty()
                && parts[i].chars().all(|c| c.is_ascii_lowercase() || c == '_');
            listing = snake && (after_status || (listing && before.ends_with(", ")));
            if listing {
                codes.insert(parts[i].to_owned());
            }
        }
    }
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
    let stale: Vec<_> = doc.difference(&sources).collect();
    assert!(
        stale.is_empty(),
        "docs/authoring.md lists codes the console does not answer with: {stale:?}"
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

#[test]
fn every_code_the_contract_names_is_an_error_code() {
    let codes = contract_codes();
    assert!(
        codes.contains("audit_unavailable") && codes.contains("worker_refused"),
        "the scan of docs/contract.md found too little: {codes:?}"
    );
    let unknown: Vec<_> = codes
        .iter()
        .filter(|c| ErrorCode::parse(c).is_none())
        .collect();
    assert!(
        unknown.is_empty(),
        "docs/contract.md names error codes rocky::api::ErrorCode does not declare: {unknown:?}"
    );
}
