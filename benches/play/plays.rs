//! Stacks and plays: a stack started and stopped, and the six acts against a running stack,
//! timed act by act.

use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, ensure};
use rocky::api::console::{RunAccepted, RunView, SubmitRequest};
use rocky::client::ConsoleClient;
use rocky::client::console::Answer;
use rocky::hearth::Status;
use rocky::hearth::client::HearthClient;
use rocky::kahn::RunStatus;
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
/// hearth. Fails unless each answers as the play requires. The console is called through
/// `ConsoleClient`, as users' scripts call it, on the bench's connection pool `http`.
pub(crate) async fn play(
    http: &reqwest::Client,
    stack: &Stack,
    slug: &str,
) -> anyhow::Result<PlayTimes> {
    let console = ConsoleClient::new(stack.console_url.clone())
        .with_token(stack.admin_token.clone())
        .with_http(http.clone());
    let mut t = PlayTimes::default();
    let started = Instant::now();
    let mut lap = Instant::now();
    let mut split = |d: &mut Duration| {
        *d = lap.elapsed();
        lap = Instant::now();
    };

    answered(
        console.create_workspace(slug, "solo").await?,
        201,
        "POST workspace",
    )?;
    split(&mut t.provision);

    let run = SubmitRequest {
        workspace: slug.to_owned(),
        prompts: (1..=PROMPTS).map(|i| format!("prompt {i}")).collect(),
        max_ralph_iters: None,
    };
    let accepted: RunAccepted = answered(console.submit_run(&run).await?, 202, "POST run")?
        .json()
        .context("POST run answered without run_id")?;
    let run_id = accepted.run_id;
    split(&mut t.submit);

    let view: RunView = answered(console.run(&run_id, Some("30s")).await?, 200, "GET run")?
        .json()
        .context("GET run answered no run view")?;
    ensure!(
        view.status == RunStatus::Succeeded,
        "run {run_id} did not succeed: {}",
        serde_json::to_value(&view)?
    );
    split(&mut t.wait);

    answered(
        console.delete_workspace(slug).await?,
        200,
        "DELETE workspace",
    )?;
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

/// `answer`, if it has the status the play requires.
fn answered(answer: Answer, want: u16, what: &str) -> anyhow::Result<Answer> {
    ensure!(
        answer.status == want,
        "{what} answered {}, not {want}: {}",
        answer.status,
        answer.body
    );
    Ok(answer)
}
