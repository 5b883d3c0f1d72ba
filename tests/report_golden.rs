//! Golden tests of the Markdown: the snapshot summary built from real snapshot files (copied
//! from the project's `snapshots/`) with edited pending versions beside them, and the results
//! table from JUnit files written by the same `junit-report` writer cucumber uses.
//!
//! The fixtures' pending files are named `*.snap.pending` so that `cargo insta review` never
//! offers them; each test copies its fixture folder to a temporary one as `*.snap.new`.
//!
//! `UPDATE_GOLDEN=1 cargo test --test report_golden` rewrites the files under `tests/report/golden/`; review
//! the diff like any other change.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use rocky_e2e::report::markdown::{junit_table, snapshot_summary};

fn here() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/report")
}

fn fixture(name: &str) -> PathBuf {
    here().join("fixtures").join(name)
}

fn check(golden: &str, actual: &str) {
    let path = here().join("golden").join(golden);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
        panic!(
            "{} differs from the output, first at line {}:\n  golden: {:?}\n  actual: {:?}\n\
             --- whole output ---\n{actual}\n(UPDATE_GOLDEN=1 rewrites the golden file)",
            path.display(),
            first + 1,
            expected.lines().nth(first),
            actual.lines().nth(first),
        );
    }
}

/// A temporary copy of fixture folder `name` laid out as a snapshots folder
/// (`*.snap.pending` → `*.snap.new`); removed on drop.
struct Snapshots(PathBuf);

impl Snapshots {
    fn of(name: &str) -> Snapshots {
        static COPIES: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "rocky-report-golden-{}-{}-{name}",
            std::process::id(),
            COPIES.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for e in std::fs::read_dir(fixture(name)).unwrap().flatten() {
            let file = e.file_name().into_string().unwrap();
            let file = match file.strip_suffix(".snap.pending") {
                Some(stem) => format!("{stem}.snap.new"),
                None => file,
            };
            std::fs::copy(e.path(), dir.join(file)).unwrap();
        }
        Snapshots(dir)
    }
}

impl Drop for Snapshots {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn summary_of_pending_chain_changes() {
    let dir = Snapshots::of("pending");
    check(
        "snapshot_summary_pending.md",
        &snapshot_summary(&dir.0).unwrap(),
    );
}

#[test]
fn summary_when_nothing_is_pending() {
    let dir = Snapshots::of("nothing_pending");
    let out = snapshot_summary(&dir.0).unwrap();
    assert_eq!(out.lines().count(), 1);
    check("snapshot_summary_nothing_pending.md", &out);
}

#[test]
fn the_summary_does_not_depend_on_where_the_folder_is() {
    // Two copies in different places: the same text (no absolute paths in the output).
    let (a, b) = (Snapshots::of("pending"), Snapshots::of("pending"));
    assert_ne!(a.0, b.0);
    assert_eq!(snapshot_summary(&a.0), snapshot_summary(&b.0));
}

#[test]
fn results_table_with_failures() {
    let xml = std::fs::read_to_string(fixture("junit_failing.xml")).unwrap();
    check("junit_failing.md", &junit_table(&xml));
}

#[test]
fn results_table_all_passed() {
    let xml = std::fs::read_to_string(fixture("junit_passing.xml")).unwrap();
    check("junit_passing.md", &junit_table(&xml));
}

use crate::report_support::sample;

#[test]
fn html_of_a_run_with_a_gap() {
    check(
        "report_gap.html",
        &rocky_e2e::report::html::render(&sample::failing_run()),
    );
}

#[test]
fn html_of_a_failing_snapshot_shows_its_chain_diff() {
    let html = rocky_e2e::report::html::render(&sample::snapshot_run());
    assert!(html.contains("<section class=\"snapdiff\">"), "{html}");
    check("report_snapshot.html", &html);
}
