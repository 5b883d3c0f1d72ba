//! Test fixtures shared by the writer's and the verifier's tests: the play's chain, and logs
//! written from it.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::{Event, EventKind, Hatch, Record};

/// The play's chain, with the subjects and data the actors give it.
pub(super) fn play_events() -> Vec<Event> {
    let mut events = vec![
        Event::new(EventKind::ProvisioningStarted, "admin").workspace("ws-1"),
        Event::new(EventKind::Provisioned, "system")
            .workspace("ws-1")
            .data(json!({"tier": "solo", "services": ["cairnet", "lore"]})),
        Event::new(EventKind::RunStarted, "admin")
            .workspace("ws-1")
            .run_id("run-1"),
    ];
    for n in 1..=4 {
        events.push(
            Event::new(EventKind::NodeSucceeded, "system")
                .workspace("ws-1")
                .run_id("run-1")
                .node_id(format!("node-{n}"))
                .data(json!({"attempts": n})),
        );
    }
    events.push(
        Event::new(EventKind::RunEnded, "system")
            .workspace("ws-1")
            .run_id("run-1")
            .data(json!({"status": "succeeded"})),
    );
    events
}

pub(super) fn write_log(count: usize) -> (tempfile::TempDir, PathBuf, Vec<Record>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("hatch.jsonl");
    let hatch = Hatch::with_file(&path).expect("open new log");
    let records = play_events()
        .into_iter()
        .cycle()
        .take(count)
        .map(|event| hatch.append(event).expect("append"))
        .collect();
    (dir, path, records)
}

pub(super) fn file_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("read log")
        .lines()
        .map(str::to_owned)
        .collect()
}
