//! A run with one failing scenario, as the runner would fill it: used by the browser test
//! and by `cargo run --example render_sample`.

use rocky_e2e::report::model::{
    ActSpan, ChainEvent, EvidenceItem, Log, RunReport, ScenarioReport, Verdict,
};

/// What cucumber hands the runner when the chain step of "the VAULT bearer drifts" fails: the
/// panic message, i.e. the gap report exactly as `chain::GapReport` prints it.
pub const GAP_PANIC: &str = r#"Step panicked. Captured output: HATCH chain gap: ralph.run.started never fired (act 3 submit run); the chain went on with hearth.decommission_started
expected (exact order): hearth.provisioning_started → hearth.provisioned → ralph.run.started → ralph.node.* ×4 → ralph.run.ended → hearth.decommission_started → hearth.decommissioned

  act              expected                       observed
  2 provision      hearth.provisioning_started    hearth.provisioning_started
                   hearth.provisioned             hearth.provisioned
  3 submit run     ralph.run.started            ✗ —   ← first gap
  4 stream nodes   ralph.node.* (1/4)           ✗ —
                   ralph.node.* (2/4)           ✗ —
                   ralph.node.* (3/4)           ✗ —
                   ralph.node.* (4/4)           ✗ —
                   ralph.run.ended              ✗ —
  5 teardown       hearth.decommission_started    hearth.decommission_started
                   hearth.decommissioned          hearth.decommissioned

evidence:
  console POST /api/ralph/runs: 502 worker_unauthorized: console→worker returned 401 (bearer rejected: signature mismatch, key id v1)
  hearth status drill: ready
"#;

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
    vault.fail_with(GAP_PANIC);
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
