//! ARCHITECTURE.md and CONVENTIONS.md cannot name a path that is not there: every `` `path` ``
//! they name (with a `/`, or a file name in a table row about a module) exists, read from
//! the repository root, from `rocky/src/` (the services' modules are named from there), or
//! from the folder of the module its table row is about.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `` `code` `` spans of a line.
fn spans(line: &str) -> Vec<&str> {
    line.split('`').skip(1).step_by(2).collect()
}

/// Whether a span names a file or folder of this repository (not a URL, a command, a wire
/// name such as `kahn/1`, or a glob).
fn is_path(span: &str) -> bool {
    let file = [".rs", ".md", ".toml", ".feature", ".yaml", ".json"]
        .iter()
        .any(|ext| span.ends_with(ext));
    let folder = span.ends_with('/') && span.len() > 1;
    (file || folder) && !span.starts_with('/') && !span.contains(['*', ' ', '{', '<', '$', ':'])
}

/// Every path `text` (the file `doc`) names that exists nowhere it may be read from.
fn missing_paths(doc: &str, text: &str) -> Vec<String> {
    let bases = [root(), root().join("rocky/src")];
    let mut missing = Vec::new();
    for line in text.lines() {
        let spans = spans(line);
        // A table row about a module: its first cell's paths are folders to read the others
        // from (`server.rs` in the `hearth/` row).
        let mut row_bases: Vec<PathBuf> = Vec::new();
        if line.starts_with("| ") {
            let first = line.split('|').nth(1).unwrap_or("");
            for s in self::spans(first).into_iter().filter(|s| is_path(s)) {
                for b in &bases {
                    let p = b.join(s);
                    row_bases.push(if p.is_dir() {
                        p
                    } else {
                        p.parent().map(Path::to_path_buf).unwrap_or(p)
                    });
                }
            }
        }
        let row = line.starts_with("| ");
        // A bare file name (`mod.rs`) is a path only in a row about a module.
        for span in spans
            .into_iter()
            // What a run writes (`target/…`) exists only after a run: not a source path.
            .filter(|s| is_path(s) && (row || s.contains('/')) && !s.starts_with("target/"))
        {
            let found = bases
                .iter()
                .chain(&row_bases)
                .any(|b| b.join(span).exists());
            if !found {
                missing.push(format!("{doc}: `{span}` in {line:?}"));
            }
        }
    }
    missing
}

#[test]
fn every_path_architecture_md_and_conventions_md_name_exists() {
    for doc in ["ARCHITECTURE.md", "CONVENTIONS.md"] {
        let text = std::fs::read_to_string(root().join(doc)).unwrap();
        let missing = missing_paths(doc, &text);
        assert!(
            missing.is_empty(),
            "{doc} names paths that do not exist:\n{}",
            missing.join("\n")
        );
    }
}

#[test]
fn a_path_that_is_not_there_is_found_missing() {
    let text = "`src/wait.rs` and `hearth/server.rs` exist; `src/nowhere.rs` does not; \
                `mod.rs` is no path outside a table.\n\
                | `hearth/` | `server.rs`, `gone.rs` |\n";
    let missing = missing_paths("a doc", text);
    assert_eq!(missing.len(), 2, "{missing:#?}");
    assert!(missing[0].contains("`src/nowhere.rs`"), "{missing:#?}");
    assert!(missing[1].contains("`gone.rs`"), "{missing:#?}");
}
