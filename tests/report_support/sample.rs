//! A run with one failing scenario, as the runner would fill it: used by the browser test
//! and by `cargo run --example render_sample`.

use rocky_e2e::chain::{self, Evidence, ExpectedChain, Mode};
use rocky_e2e::report::model::{
    ActSpan, ChainEvent, EvidenceItem, GapView, Log, RunReport, ScenarioReport, SnapshotChange,
    Verdict,
};
use rocky_e2e::report::snapshot;

/// The gap report of "the VAULT bearer drifts": the play chain against what was recorded
/// (no run), with the evidence the harness collected, as the chain step records it.
pub fn vault_gap() -> GapView {
    let observed: Vec<String> = [
        "hearth.provisioning_started",
        "hearth.provisioned",
        "hearth.decommission_started",
        "hearth.decommissioned",
    ]
    .map(str::to_owned)
    .to_vec();
    let mut evidence = Evidence::default();
    evidence.add(
        "console POST /api/ralph/runs",
        "502 worker_unauthorized: console→worker returned 401 (bearer rejected: signature mismatch, key id v1)",
    );
    evidence.add("hearth status drill", "ready");
    let report = chain::check(&ExpectedChain::play(4), &observed, Mode::Exact, &evidence)
        .expect_err("the sample chain has a gap");
    GapView::from(&*report)
}

/// A snapshot the scenario no longer matches: node 2 needed one RALPH iteration more.
pub fn changed_snapshot() -> SnapshotChange {
    let node = |n: u32, attempts: u32| {
        format!(
            "- kind: ralph.node.succeeded\n  actor: system\n  subject:\n    workspace: test\n    node_id: node-{n}\n  data:\n    attempts: {attempts}\n"
        )
    };
    let chain = |second: u32| {
        let mut y = String::from(
            "- kind: hearth.provisioning_started\n  actor: admin\n  subject:\n    workspace: test\n  data:\n    tier: solo\n- kind: ralph.run.started\n  actor: admin\n  subject:\n    workspace: test\n  data: {}\n",
        );
        for (n, a) in [(1, 1), (2, second), (3, 1)] {
            y.push_str(&node(n, a));
        }
        y.push_str("- kind: hearth.decommissioned\n  actor: admin\n  subject:\n    workspace: test\n  data: {}\n");
        snapshot::events_of(yaml_serde::from_str(&y).expect("sample YAML")).expect("sample events")
    };
    SnapshotChange {
        name: "play__provision-run-four-prompts-tear-down".into(),
        old: Some(chain(1)),
        new: chain(2),
    }
}

fn ev(seq: u64, kind: &str, workspace: &str, detail: Option<&str>) -> ChainEvent {
    ChainEvent {
        seq,
        kind: kind.into(),
        workspace: Some(workspace.into()),
        detail: detail.map(str::to_owned),
    }
}

fn play_chain(ws: &str, nodes: usize) -> Vec<ChainEvent> {
    let mut c = vec![
        ev(1, "hearth.provisioning_started", ws, Some("tier solo")),
        ev(2, "hearth.provisioned", ws, Some("services cairnet, lore")),
        ev(
            3,
            "ralph.run.started",
            ws,
            Some(&format!("{nodes} prompts")),
        ),
    ];
    for n in 1..=nodes {
        c.push(ev(
            3 + n as u64,
            "ralph.node.succeeded",
            ws,
            Some(&format!("node-{n}, 1 attempt")),
        ));
    }
    let s = 4 + nodes as u64;
    c.push(ev(s, "ralph.run.ended", ws, Some("status succeeded")));
    c.push(ev(s + 1, "hearth.decommission_started", ws, None));
    c.push(ev(
        s + 2,
        "hearth.decommissioned",
        ws,
        Some("tier_torn_down"),
    ));
    c
}

fn spans(list: &[(&str, u64, u64)]) -> Vec<ActSpan> {
    list.iter()
        .map(|(a, s, e)| ActSpan {
            act: (*a).into(),
            start_ms: *s,
            end_ms: *e,
        })
        .collect()
}

fn hearth_log() -> String {
    let mut out = String::new();
    for i in 0..64u32 {
        out.push_str(&format!(
            "2026-11-27T20:51:{:02}.{:03}Z  INFO hearth::server: request {i} <GET /v1/workspaces/drill> -> 200 & done\n",
            i % 60,
            (i * 37) % 1000
        ));
    }
    out.push_str(
        "2026-11-27T20:51:59.100Z  WARN hearth::server: teardown of drill: 2 services stopped\n",
    );
    out
}

/// Six scenarios in the runner's order; the failing one is in the middle.
pub fn failing_run() -> RunReport {
    let play = ScenarioReport {
        feature: "play".into(),
        name: "provision, run four prompts, tear down".into(),
        verdict: Verdict::Passed,
        duration_ms: 2417,
        chain: play_chain("test", 4),
        acts: spans(&[
            ("spawn hearth", 0, 305),
            ("provision", 305, 1390),
            ("submit run", 1390, 1466),
            ("stream nodes", 1466, 2101),
            ("teardown", 2101, 2417),
        ]),
        ..Default::default()
    };
    let kahn = ScenarioReport {
        feature: "failure_drill".into(),
        name: "the KAHN schema drifts: schema=kahn/2".into(),
        verdict: Verdict::Passed,
        duration_ms: 1333,
        chain: vec![
            ev(1, "hearth.provisioning_started", "drill", Some("tier solo")),
            ev(
                2,
                "hearth.provisioned",
                "drill",
                Some("services cairnet, lore"),
            ),
            ev(3, "ralph.run.started", "drill", Some("4 prompts")),
            ev(
                4,
                "ralph.run.ended",
                "drill",
                Some("status failed: 13 frames rejected"),
            ),
            ev(5, "hearth.decommission_started", "drill", None),
            ev(6, "hearth.decommissioned", "drill", Some("tier_torn_down")),
        ],
        acts: spans(&[
            ("spawn hearth", 0, 290),
            ("provision", 290, 1010),
            ("submit run", 1010, 1070),
            ("stream nodes", 1070, 1140),
            ("teardown", 1140, 1333),
        ]),
        ..Default::default()
    };
    let mut vault = ScenarioReport {
        feature: "failure_drill".into(),
        name: "the VAULT bearer drifts".into(),
        duration_ms: 1804,
        chain: vec![
            ev(1, "hearth.provisioning_started", "drill", Some("tier solo")),
            ev(2, "hearth.provisioned", "drill", Some("services cairnet, lore")),
            ev(3, "hearth.decommission_started", "drill", None),
            ev(4, "hearth.decommissioned", "drill", Some("tier_torn_down")),
        ],
        acts: spans(&[
            ("spawn hearth", 0, 310),
            ("provision", 310, 1420),
            ("submit run", 1420, 1532),
            ("teardown", 1532, 1804),
        ]),
        evidence: vec![
            EvidenceItem::from((
                "console POST /api/ralph/runs",
                "502 worker_unauthorized: console→worker returned 401 (bearer rejected: signature mismatch, key id v1)",
            )),
            EvidenceItem::from(("hearth status drill", "ready")),
        ],
        logs: vec![
            Log { name: "hearth (/tmp/rocky-e2e-3f2a/hearth.log)".into(), text: hearth_log() },
            Log {
                name: "console and worker".into(),
                text: "console: POST /api/ralph/runs -> worker 401 {\"error\":\"bearer rejected\"}\nworker: bearer rejected: signature mismatch (key id v1)\n".into(),
            },
        ],
        ..Default::default()
    };
    vault.fail(None, Some(vault_gap()));
    let docker = ScenarioReport {
        feature: "failure_drill".into(),
        name: "the Docker engine is not running".into(),
        verdict: Verdict::Skipped,
        skip_reason: Some(
            "@docker: no Docker engine answers; this run uses the embedded topology".into(),
        ),
        ..Default::default()
    };
    let two = ScenarioReport {
        feature: "writing_a_scenario".into(),
        name: "two workspaces, a six-prompt run where one node needs three iterations".into(),
        verdict: Verdict::Passed,
        duration_ms: 3120,
        chain: play_chain("alpha", 6),
        acts: spans(&[
            ("spawn hearth", 0, 298),
            ("provision", 298, 1350),
            ("provision", 1350, 2380),
            ("submit run", 2380, 2450),
            ("stream nodes", 2450, 2870),
            ("teardown", 2870, 3120),
        ]),
        ..Default::default()
    };
    let mut r = RunReport::new(
        "embedded topology: hearth process driver, console and worker in this process",
        5210,
        vec![play, kahn, vault, docker, two],
    );
    r.summary.started_at = Some("2026-11-27T20:51:02Z".into());
    r
}

/// A run whose one failure is a snapshot that no longer matches (node 2 needed one more
/// RALPH iteration than the accepted chain says).
pub fn snapshot_run() -> RunReport {
    let mut play = ScenarioReport {
        feature: "play".into(),
        name: "provision, run four prompts, tear down".into(),
        duration_ms: 2417,
        chain: play_chain("test", 4),
        acts: spans(&[
            ("spawn hearth", 0, 305),
            ("provision", 305, 1390),
            ("submit run", 1390, 1466),
            ("stream nodes", 1466, 2101),
            ("teardown", 2101, 2417),
        ]),
        ..Default::default()
    };
    play.fail(
        Some("Then the HATCH chain matches the snapshot: snapshot assertion for 'play__provision-run-four-prompts-tear-down' failed in line 128"),
        None,
    );
    play.snapshot = Some(changed_snapshot());
    let vocabulary = ScenarioReport {
        feature: "vocabulary".into(),
        name: "the checked-in step reference is current".into(),
        verdict: Verdict::Passed,
        duration_ms: 377,
        ..Default::default()
    };
    let mut r = RunReport::new(
        "docker topology: hearth local-docker driver, console and worker in containers",
        3120,
        vec![vocabulary, play],
    );
    r.summary.started_at = Some("2026-11-27T20:51:02Z".into());
    r
}
