//! Stacks and plays: a stack started and stopped, and the six acts against a running stack,
//! timed act by act.

use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure};
use rocky::hearth::Status;
use rocky::hearth::client::HearthClient;
use rocky_e2e::stack::Stack;

use crate::env::{Env, Topology};
use crate::table::Part;

/// The prompts of the play's run.
pub(crate) const PROMPTS: usize = 4;

pub(crate) async fn start_stop(
    env: &Env,
    topology: Topology,
    n: usize,
) -> anyhow::Result<(Duration, Duration)> {
    let opts = env.options(topology, &format!("start-{}-{n}", topology.name()));
    let started = Instant::now();
    let stack = Stack::start(&opts).await?;
    let start = started.elapsed();
    let stopping = Instant::now();
    stack.stop().await.map_err(|e| anyhow!("stop: {e}"))?;
    Ok((start, stopping.elapsed()))
}

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PlayTimes {
    pub(crate) provision: Duration,
    pub(crate) submit: Duration,
    pub(crate) wait: Duration,
    pub(crate) teardown: Duration,
    pub(crate) status: Duration,
    pub(crate) total: Duration,
    pub(crate) driver_ms: f64,
    pub(crate) health_ms: f64,
}

impl PlayTimes {
    pub(crate) const PARTS: [Part<PlayTimes>; 5] = [
        ("POST workspace (provision)", |s| s.provision),
        ("POST run", |s| s.submit),
        ("GET run?wait=30s (until ended)", |s| s.wait),
        ("DELETE workspace (teardown)", |s| s.teardown),
        ("hearth GET /v1/status", |s| s.status),
    ];
}

/// The six acts against a running stack: provision, submit, wait for the end, tear down, ask
/// hearth. Fails unless each answers as the play requires.
pub(crate) async fn play(
    http: &reqwest::Client,
    stack: &Stack,
    slug: &str,
) -> anyhow::Result<PlayTimes> {
    let console = &stack.console_url;
    let bearer = format!("Bearer {}", stack.admin_token);
    let mut t = PlayTimes::default();
    let started = Instant::now();
    let mut lap = Instant::now();
    let mut split = |d: &mut Duration| {
        *d = lap.elapsed();
        lap = Instant::now();
    };

    let r = http
        .post(format!("{console}/api/hearth/workspaces"))
        .header("authorization", &bearer)
        .json(&serde_json::json!({"slug": slug, "tier": "solo"}))
        .send()
        .await?;
    expect(r, 201, "POST workspace").await?;
    split(&mut t.provision);

    let prompts: Vec<String> = (1..=PROMPTS).map(|i| format!("prompt {i}")).collect();
    let r = http
        .post(format!("{console}/api/ralph/runs"))
        .header("authorization", &bearer)
        .json(&serde_json::json!({"workspace": slug, "prompts": prompts}))
        .send()
        .await?;
    let accepted = expect(r, 202, "POST run").await?;
    let run_id = accepted["run_id"]
        .as_str()
        .ok_or_else(|| anyhow!("POST run answered without run_id: {accepted}"))?
        .to_owned();
    split(&mut t.submit);

    let r = http
        .get(format!("{console}/api/ralph/runs/{run_id}?wait=30s"))
        .header("authorization", &bearer)
        .send()
        .await?;
    let view = expect(r, 200, "GET run").await?;
    ensure!(
        view["status"] == "succeeded",
        "run {run_id} did not succeed: {view}"
    );
    split(&mut t.wait);

    let r = http
        .delete(format!("{console}/api/hearth/workspaces/{slug}"))
        .header("authorization", &bearer)
        .send()
        .await?;
    expect(r, 200, "DELETE workspace").await?;
    split(&mut t.teardown);

    let report = HearthClient::new(&stack.hearth_socket)
        .status(slug, Duration::from_secs(10))
        .await?;
    ensure!(
        report.status == Status::TierTornDown,
        "hearth reports {slug} as {}",
        report.status
    );
    split(&mut t.status);
    t.total = started.elapsed();
    t.driver_ms = report.timings.driver_ms;
    t.health_ms = report.timings.health_ms;
    Ok(t)
}

pub(crate) async fn expect(
    r: reqwest::Response,
    want: u16,
    what: &str,
) -> anyhow::Result<serde_json::Value> {
    let status = r.status().as_u16();
    let body = r.bytes().await?;
    ensure!(
        status == want,
        "{what} answered {status}, not {want}: {}",
        String::from_utf8_lossy(&body)
    );
    Ok(serde_json::from_slice(&body)?)
}
