//! Statuses only from hearth (contract §9): the console mirrors hearth and never invents a
//! status. A teardown it refuses restores the status it found; past its own provisioning
//! deadline it asks hearth how the provision went instead of recording a failure hearth never
//! reported (its deadline bounds the wait, not the call: the request still reaches hearth); and
//! only hearth's 404 means "gone" (a 503 is asked again). A teardown's status shows once the
//! teardown is over: its last record is in and the slug is free.
//!
//! hearth runs on a real unix socket with a scripted driver: a workspace named `fail-…` fails
//! to provision, one named `slow-…` is slow to get healthy (its provision waits until the test
//! opens its gate). hearth's status route is counted, and can be made to answer 503 as a
//! rediscovering hearth does. The console is served on loopback and driven over HTTP.

use crate::support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rocky::api::ErrorCode;
use rocky::api::console::paths;
use rocky::api::hearth::{DriverKind, ServiceRef};
use rocky::console::{ConsoleConfig, Deadlines};
use rocky::hatch::Hatch;
use rocky::hearth::client::HearthClient;
use rocky::hearth::driver::{Driver, Provisioned};
use rocky::hearth::server::Hearth;
use rocky::tier::{ServiceSpec, TierProfile};
use rocky::vault::Keyring;
use tokio::sync::watch;

/// How long any wait of these tests may take before it fails, naming what it waited for.
const PATIENCE: Duration = Duration::from_secs(20);
const TOKEN: &str = "admin-token-workspace-status";
/// The reason the scripted driver gives for a failed provision.
const HEARTH_REASON: &str = "service lore at 127.0.0.1:1: no answer on /healthz";

/// How a `slow-…` provision ends once its gate opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Gate {
    Closed,
    Healthy,
    Unhealthy,
}

struct ScriptedDriver {
    gate: watch::Receiver<Gate>,
}

impl Driver for ScriptedDriver {
    type Deployment = ();
    const KIND: DriverKind = DriverKind::Process;

    async fn provision(
        &self,
        slug: &str,
        profile: &TierProfile,
        _health: Duration,
    ) -> Result<Provisioned<()>, String> {
        if slug.starts_with("fail-") {
            return Err(HEARTH_REASON.into());
        }
        if slug.starts_with("slow-") {
            let mut gate = self.gate.clone();
            let opened = gate
                .wait_for(|g| *g != Gate::Closed)
                .await
                .map(|g| *g)
                .unwrap_or(Gate::Unhealthy);
            if opened == Gate::Unhealthy {
                return Err(HEARTH_REASON.into());
            }
        }
        Ok(Provisioned {
            services: profile
                .services
                .iter()
                .map(|s| ServiceRef {
                    name: s.name.clone(),
                    image: s.image.clone(),
                    endpoint: "http://127.0.0.1:1".into(),
                })
                .collect(),
            health: Duration::ZERO,
            deployment: (),
        })
    }

    async fn teardown(&self, _d: &mut ()) -> Result<(), String> {
        Ok(())
    }
}

struct Stack {
    _dir: tempfile::TempDir,
    url: String,
    hatch: Arc<Hatch>,
    gate: watch::Sender<Gate>,
    /// `GET /v1/status/…` calls hearth answered.
    status_calls: Arc<AtomicUsize>,
    /// How many of the next status calls answer 503 "rediscovering".
    unavailable: Arc<AtomicUsize>,
    /// How many of the next teardown calls answer 503 "rediscovering".
    teardown_unavailable: Arc<AtomicUsize>,
    /// While true, a provision reaching hearth is held before hearth takes it (a call still
    /// on its way), and taken once it turns false.
    hold_provisions: watch::Sender<bool>,
    /// Set to 1: hearth reads nothing of the next connection it accepts until
    /// `reads_open` turns true (a request still being written).
    hold_next_reads: Arc<AtomicUsize>,
    reads_open: watch::Sender<bool>,
    http: reqwest::Client,
}

/// The records of a workspace provisioned, torn down and provisioned again.
const TWO_LIVES: [&str; 6] = [
    "hearth.provisioning_started",
    "hearth.provisioned",
    "hearth.decommission_started",
    "hearth.decommissioned",
    "hearth.provisioning_started",
    "hearth.provisioned",
];

/// A hearth with the scripted driver and a console with `deadlines`.
async fn stack(deadlines: Deadlines) -> Stack {
    stack_on(deadlines, Arc::new(rocky::hatch::RealDisk)).await
}

/// [`stack`] with the HATCH log's file operations going through `disk`.
async fn stack_on(deadlines: Deadlines, disk: Arc<dyn rocky::hatch::Disk>) -> Stack {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("hearth.sock");
    let (gate, gate_rx) = watch::channel(Gate::Closed);
    let hearth = Arc::new(Hearth::new(
        ScriptedDriver { gate: gate_rx },
        Duration::from_secs(5),
        Duration::from_secs(5),
    ));
    let status_calls = Arc::new(AtomicUsize::new(0));
    let unavailable = Arc::new(AtomicUsize::new(0));
    let teardown_unavailable = Arc::new(AtomicUsize::new(0));
    let (hold_provisions, held) = watch::channel(false);
    let (calls, refuse, refuse_teardown) = (
        status_calls.clone(),
        unavailable.clone(),
        teardown_unavailable.clone(),
    );
    let observe = axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let (calls, refuse, refuse_teardown) =
                (calls.clone(), refuse.clone(), refuse_teardown.clone());
            let mut held = held.clone();
            async move {
                let path = req.uri().path();
                if path == "/v1/provision" && *held.borrow() {
                    // On a task of its own: the caller hanging up does not drop it.
                    let taken = tokio::spawn(async move {
                        let _ = held.wait_for(|h| !*h).await;
                        next.run(req).await
                    });
                    return taken.await.expect("the held provision's task");
                }
                let counter = if path.starts_with("/v1/status/") {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Some(refuse)
                } else if path == "/v1/teardown" {
                    Some(refuse_teardown)
                } else {
                    None
                };
                if let Some(counter) = counter {
                    let refused = counter
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    if refused {
                        return rocky::http::error(
                            axum::http::StatusCode::SERVICE_UNAVAILABLE,
                            ErrorCode::Rediscovering,
                            "hearth is rediscovering its workspaces",
                        );
                    }
                }
                next.run(req).await
            }
        },
    );
    let hold_next_reads = Arc::new(AtomicUsize::new(0));
    let (reads_open, reads_gate) = watch::channel(false);
    let listener = HoldingListener {
        inner: rocky::hearth::socket::bind_socket(&socket).expect("bind hearth"),
        hold_next: hold_next_reads.clone(),
        gate: reads_gate,
    };
    tokio::spawn(rocky::http::serve(
        listener,
        hearth.router().layer(observe),
        std::future::pending(),
    ));
    let hatch_path = dir.path().join("hatch.jsonl");
    let options = rocky::hatch::HatchOptions::sealed(
        &dir.path().join("hatch.key"),
        rocky::hatch::SyncMode::None,
    )
    .expect("a seal key");
    let hatch = Arc::new(Hatch::open_with_disk(&hatch_path, options, disk).expect("hatch"));
    let url = support::serve_console(console_config(&socket, hatch.clone(), deadlines)).await;
    Stack {
        _dir: dir,
        url,
        hatch,
        gate,
        status_calls,
        unavailable,
        teardown_unavailable,
        hold_provisions,
        hold_next_reads,
        reads_open,
        http: rocky::http::client(),
    }
}

/// A console of hearth at `socket`, writing to `hatch`.
fn console_config(
    socket: &std::path::Path,
    hatch: Arc<Hatch>,
    deadlines: Deadlines,
) -> ConsoleConfig {
    let profile = TierProfile {
        name: "solo".into(),
        services: vec![ServiceSpec {
            name: "lore".into(),
            image: "standin".into(),
            port: 8080,
            health: "/healthz".into(),
            env: Default::default(),
        }],
    };
    ConsoleConfig {
        auth: support::admin_auth(TOKEN),
        hearth: HearthClient::new(socket),
        // No worker: every run these tests submit is refused before the worker is called.
        worker_url: "http://127.0.0.1:9".into(),
        keyring: Keyring::single("v1", b"workspace-status-secret"),
        hatch,
        tiers: BTreeMap::from([
            ("big".to_owned(), big_profile(&profile)),
            ("solo".to_owned(), profile),
        ]),
        deadlines,
    }
}

/// `profile` as tier `big`, with an environment value of 1 MiB: a provision request larger
/// than a unix socket's buffers, so it is not written whole until hearth reads it.
fn big_profile(profile: &TierProfile) -> TierProfile {
    let mut big = profile.clone();
    big.name = "big".into();
    for service in &mut big.services {
        service.env.insert("PAD".into(), "x".repeat(1 << 20));
    }
    big
}

/// hearth's listener: the next connection after `hold_next` is set reads nothing until
/// `gate` turns true.
struct HoldingListener {
    inner: tokio::net::UnixListener,
    hold_next: Arc<AtomicUsize>,
    gate: watch::Receiver<bool>,
}

type Opening = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// A connection whose reads wait for `opening` first.
struct HeldStream {
    stream: tokio::net::UnixStream,
    opening: Option<Opening>,
}

impl rocky::http::Listener for HoldingListener {
    type Io = HeldStream;
    type Addr = tokio::net::unix::SocketAddr;

    async fn accept(&mut self) -> (HeldStream, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.inner.accept().await else {
                continue;
            };
            let held = self
                .hold_next
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            let opening = held.then(|| {
                let mut gate = self.gate.clone();
                Box::pin(async move {
                    let _ = gate.wait_for(|open| *open).await;
                }) as Opening
            });
            return (HeldStream { stream, opening }, addr);
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

impl tokio::io::AsyncRead for HeldStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if let Some(opening) = self.opening.as_mut() {
            std::task::ready!(opening.as_mut().poll(cx));
            self.opening = None;
        }
        std::pin::Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for HeldStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Deadlines with the console's provision deadline cut to `provision`, followed by `follow`.
fn short(provision: Duration, follow: Duration) -> Deadlines {
    Deadlines {
        provision,
        provision_follow: follow,
        ..Deadlines::default()
    }
}

impl Stack {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        call(&self.http, &self.url, method, path, body).await
    }

    /// `POST /api/hearth/workspaces` for `slug` on a task of its own.
    fn provision_in_background(
        &self,
        slug: &str,
        tier: &str,
    ) -> tokio::task::JoinHandle<(u16, serde_json::Value)> {
        let (http, url) = (self.http.clone(), self.url.clone());
        let body = support::create_body(slug, tier);
        tokio::spawn(async move {
            call(
                &http,
                &url,
                reqwest::Method::POST,
                paths::WORKSPACES,
                Some(body),
            )
            .await
        })
    }

    async fn status_of(&self, slug: &str) -> String {
        let (status, view) = self
            .call(reqwest::Method::GET, &paths::workspace(slug), None)
            .await;
        assert_eq!(status, 200, "GET workspace {slug}: {view}");
        view["status"].as_str().unwrap_or_default().to_owned()
    }

    async fn submit(&self, slug: &str) -> (u16, serde_json::Value) {
        self.call(
            reqwest::Method::POST,
            paths::RUNS,
            Some(support::submit_body(slug, &["write the spec"])),
        )
        .await
    }

    fn records(&self) -> Vec<rocky::hatch::Record> {
        self.hatch.records().expect("read the HATCH log back")
    }

    fn kinds(&self) -> Vec<String> {
        self.records().into_iter().map(|r| r.kind).collect()
    }

    /// Waits until hearth's status route was called `n` times: the console is asking hearth
    /// about a provision past its own deadline.
    async fn until_status_calls(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while self.status_calls.load(Ordering::SeqCst) < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the console did not ask hearth's status {n} times within {PATIENCE:?} (asked {})",
                self.status_calls.load(Ordering::SeqCst)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn call(
    http: &reqwest::Client,
    url: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut req = http
        .request(method, format!("{url}{path}"))
        .bearer_auth(TOKEN)
        .timeout(PATIENCE);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("the console did not answer {path}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

async fn answer(
    task: tokio::task::JoinHandle<(u16, serde_json::Value)>,
) -> (u16, serde_json::Value) {
    tokio::time::timeout(PATIENCE, task)
        .await
        .unwrap_or_else(|_| panic!("the provision did not answer within {PATIENCE:?}"))
        .expect("the provision request task")
}

/// A console started after a workspace was made (a restarted console: a fresh process, the
/// same hearth) rebuilds its view from hearth on a read or a run, not only on a provision or
/// a teardown: it shows the workspace, admits runs in it, and says 404 only for a slug hearth
/// has none of. Found by a black-box probe (GET and the run answered 404 while hearth said
/// `ready`).
#[tokio::test]
async fn a_restarted_console_finds_the_workspaces_hearth_has() {
    let s = stack(Deadlines::default()).await;
    let (status, body) = s
        .call(
            reqwest::Method::POST,
            paths::WORKSPACES,
            Some(support::create_body("made-before", "solo")),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let hatch = Arc::new(
        Hatch::open(
            &s._dir.path().join("hatch-after-restart.jsonl"),
            rocky::hatch::HatchOptions::sealed(
                &s._dir.path().join("hatch-after-restart.key"),
                rocky::hatch::SyncMode::None,
            )
            .expect("a seal key"),
        )
        .expect("hatch"),
    );
    let restarted = support::serve_console(console_config(
        &s._dir.path().join("hearth.sock"),
        hatch,
        Deadlines::default(),
    ))
    .await;
    let (status, view) = call(
        &s.http,
        &restarted,
        reqwest::Method::GET,
        &paths::workspace("made-before"),
        None,
    )
    .await;
    assert_eq!(status, 200, "GET after the restart: {view}");
    assert_eq!(view["status"], "ready", "{view}");
    let (status, body) = call(
        &s.http,
        &restarted,
        reqwest::Method::GET,
        &paths::workspace("never-made"),
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    // A second restarted console, asked for a run first: admitted as far as the worker (this
    // test has none: 502), not refused for a workspace it does not know.
    let again = support::serve_console(console_config(
        &s._dir.path().join("hearth.sock"),
        s.hatch.clone(),
        Deadlines::default(),
    ))
    .await;
    let (status, body) = call(
        &s.http,
        &again,
        reqwest::Method::POST,
        paths::RUNS,
        Some(support::submit_body("made-before", &["write the spec"])),
    )
    .await;
    assert_ne!(status, 404, "a run after the restart: {body}");
    assert_eq!(
        body["error"]["code"],
        ErrorCode::WorkerUnreachable.as_str(),
        "{body}"
    );
    // A console that cannot ask hearth does not call a workspace it does not know gone.
    let cut_off = support::serve_console(console_config(
        &s._dir.path().join("no-hearth.sock"),
        s.hatch.clone(),
        Deadlines::default(),
    ))
    .await;
    let (status, body) = call(
        &s.http,
        &cut_off,
        reqwest::Method::GET,
        &paths::workspace("made-before"),
        None,
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body["error"]["code"],
        ErrorCode::Rediscovering.as_str(),
        "{body}"
    );
}

#[tokio::test]
async fn a_refused_teardown_of_a_failed_workspace_leaves_it_failed() {
    let s = stack(Deadlines::default()).await;
    let (status, body) = s
        .call(
            reqwest::Method::POST,
            paths::WORKSPACES,
            Some(support::create_body("fail-ws", "solo")),
        )
        .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(s.status_of("fail-ws").await, "failed");
    s.hatch.inject_append_failure(true);
    let (status, body) = s
        .call(reqwest::Method::DELETE, &paths::workspace("fail-ws"), None)
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body["error"]["code"],
        ErrorCode::AuditUnavailable.as_str(),
        "{body}"
    );
    assert_eq!(
        s.status_of("fail-ws").await,
        "failed",
        "the refused teardown restores the status it found"
    );
    let (status, body) = s.submit("fail-ws").await;
    assert_eq!(status, 409, "a failed workspace admits no run: {body}");
    assert_eq!(
        body["error"]["code"],
        ErrorCode::WorkspaceNotReady.as_str(),
        "{body}"
    );
    s.hatch.inject_append_failure(false);
    assert_eq!(s.kinds(), ["hearth.provisioning_started", "hearth.failed"]);
}

#[tokio::test]
async fn past_its_deadline_the_console_records_the_ready_hearth_reports() {
    let s = stack(short(Duration::from_millis(200), PATIENCE)).await;
    // hearth answers 503 (rediscovering) to the first two asks: not gone, asked again.
    s.unavailable.store(2, Ordering::SeqCst);
    let task = s.provision_in_background("slow-ready", "solo");
    s.until_status_calls(3).await;
    assert_eq!(s.status_of("slow-ready").await, "provisioning");
    s.gate.send_replace(Gate::Healthy);
    let (status, body) = answer(task).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["status"], "ready", "{body}");
    assert_eq!(body["services"][0]["name"], "lore", "{body}");
    assert_eq!(s.status_of("slow-ready").await, "ready");
    assert_eq!(
        s.kinds(),
        ["hearth.provisioning_started", "hearth.provisioned"],
        "no hearth.failed for a provision hearth completed"
    );
}

#[tokio::test]
async fn past_its_deadline_the_console_records_the_failure_hearth_reports() {
    let s = stack(short(Duration::from_millis(200), PATIENCE)).await;
    let task = s.provision_in_background("slow-failing", "solo");
    s.until_status_calls(1).await;
    s.gate.send_replace(Gate::Unhealthy);
    let (status, body) = answer(task).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(
        body["error"]["code"],
        ErrorCode::ProvisioningFailed.as_str(),
        "{body}"
    );
    assert_eq!(s.status_of("slow-failing").await, "failed");
    let records = s.records();
    let kinds: Vec<&str> = records.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds, ["hearth.provisioning_started", "hearth.failed"]);
    assert_eq!(
        records[1].data["reason"], HEARTH_REASON,
        "hearth's reason, not the console's deadline"
    );
}

#[tokio::test]
async fn a_provision_hearth_has_not_settled_stays_provisioning_until_hearth_settles_it() {
    let s = stack(short(
        Duration::from_millis(100),
        Duration::from_millis(300),
    ))
    .await;
    let asked = std::time::Instant::now();
    let (status, body) = answer(s.provision_in_background("slow-pending", "solo")).await;
    let waited = asked.elapsed();
    assert_eq!(status, 504, "{body}");
    // It names what it waited, not the sum of its deadlines (a hearth that hung up early
    // was followed for the follow deadline only, and the message said the sum).
    let message = body["error"]["message"].as_str().unwrap_or_default();
    let said = message
        .split("in the ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|d| rocky::duration::parse(d).ok())
        .unwrap_or_else(|| panic!("no waited duration in {message:?}"));
    assert!(
        said <= waited,
        "said {said:?}, waited {waited:?}: {message}"
    );
    assert_eq!(
        body["error"]["code"],
        ErrorCode::ProvisioningUnsettled.as_str(),
        "{body}"
    );
    assert_eq!(s.status_of("slow-pending").await, "provisioning");
    let (status, body) = s.submit("slow-pending").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(s.kinds(), ["hearth.provisioning_started"]);
    s.gate.send_replace(Gate::Healthy);
    // A later read settles it from hearth.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let now = s.status_of("slow-pending").await;
        if now == "ready" {
            break;
        }
        assert_eq!(now, "provisioning", "only hearth's statuses");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the console did not settle slow-pending as ready within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        s.kinds(),
        ["hearth.provisioning_started", "hearth.provisioned"]
    );
    // Settled as any provision: it tears down as one.
    let (status, body) = s
        .call(
            reqwest::Method::DELETE,
            &paths::workspace("slow-pending"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_teardown_hearth_answers_503_to_is_not_taken_for_gone() {
    let s = stack(Deadlines::default()).await;
    let (status, body) = s
        .call(
            reqwest::Method::POST,
            paths::WORKSPACES,
            Some(support::create_body("ws-busy", "solo")),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    s.teardown_unavailable.store(1, Ordering::SeqCst);
    let (status, body) = s
        .call(reqwest::Method::DELETE, &paths::workspace("ws-busy"), None)
        .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(
        body["error"]["code"],
        ErrorCode::TeardownFailed.as_str(),
        "{body}"
    );
    assert_eq!(
        s.status_of("ws-busy").await,
        "ready",
        "the console still knows it, with the status hearth reports"
    );
    // hearth answers again: the teardown goes through.
    let (status, body) = s
        .call(reqwest::Method::DELETE, &paths::workspace("ws-busy"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(s.status_of("ws-busy").await, "tier_torn_down");
}

#[tokio::test]
async fn past_its_deadline_the_console_does_not_take_a_previous_life_for_its_provision() {
    let s = stack(short(Duration::from_millis(200), PATIENCE)).await;
    let (status, body) = s
        .call(
            reqwest::Method::POST,
            paths::WORKSPACES,
            Some(support::create_body("again", "solo")),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = s
        .call(reqwest::Method::DELETE, &paths::workspace("again"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    // The next provision reaches hearth only after the console, past its deadline, asked
    // hearth twice how it went: hearth still shows the previous life (`tier_torn_down`).
    s.hold_provisions.send_replace(true);
    let asked = s.status_calls.load(Ordering::SeqCst);
    let post = s.provision_in_background("again", "solo");
    s.until_status_calls(asked + 2).await;
    s.hold_provisions.send_replace(false);
    let (status, body) = answer(post).await;
    assert_eq!(
        status, 201,
        "the previous life was taken for this provision: {body}"
    );
    assert_eq!(s.status_of("again").await, "ready");
    assert_eq!(s.kinds(), TWO_LIVES);
}

/// The console's provision deadline bounds its wait for hearth's answer, not the call: a
/// request hearth has not read whole when the deadline passes is still written, hearth takes
/// it, and the console, asking hearth, finds its provision and answers 201.
#[tokio::test]
async fn a_provision_not_yet_written_at_its_deadline_still_reaches_hearth() {
    let s = stack(short(Duration::from_millis(100), Duration::from_secs(3))).await;
    // A first life, so that the console knows the slug and calls hearth for the provision
    // first (an unknown slug has it ask hearth's list before).
    for (method, path, body) in [
        (
            reqwest::Method::POST,
            paths::WORKSPACES.to_owned(),
            Some(support::create_body("hasty", "solo")),
        ),
        (reqwest::Method::DELETE, paths::workspace("hasty"), None),
    ] {
        let (status, answer) = s.call(method, &path, body).await;
        assert!(status == 200 || status == 201, "{path}: {answer}");
    }
    s.hold_next_reads.store(1, Ordering::SeqCst);
    let asked = s.status_calls.load(Ordering::SeqCst);
    let post = s.provision_in_background("hasty", "big");
    // The console asks hearth's status: its deadline passed with the request half written.
    s.until_status_calls(asked + 1).await;
    s.reads_open.send_replace(true);
    let (status, body) = answer(post).await;
    assert_eq!(
        status, 201,
        "the provision was given up before hearth had it whole: {body}"
    );
    assert_eq!(s.status_of("hasty").await, "ready");
    assert_eq!(s.kinds(), TWO_LIVES);
}

/// A disk that holds the write of a `hearth.decommissioned` record until `release` turns true,
/// saying when one is held.
struct HoldDecommissioned {
    /// (a write is held, the write is released)
    state: std::sync::Mutex<(bool, bool)>,
    changed: std::sync::Condvar,
}

impl rocky::hatch::Disk for HoldDecommissioned {
    fn write(&self, log: &std::fs::File, line: &[u8]) -> std::io::Result<()> {
        if String::from_utf8_lossy(line).contains("\"kind\":\"hearth.decommissioned\"") {
            // Held off the runtime's worker (its queued tasks, the one in its LIFO slot
            // included, move to another thread): blocking it would starve them.
            tokio::task::block_in_place(|| {
                let mut state = self.state.lock().expect("disk state lock");
                state.0 = true;
                self.changed.notify_all();
                let _released = self
                    .changed
                    .wait_while(state, |(_, released)| !*released)
                    .expect("disk state lock");
            });
        }
        rocky::hatch::RealDisk.write(log, line)
    }

    fn sync(&self, log: &std::fs::File) -> std::io::Result<()> {
        rocky::hatch::RealDisk.sync(log)
    }

    fn truncate(&self, log: &std::fs::File, len: u64) -> std::io::Result<()> {
        rocky::hatch::RealDisk.truncate(log, len)
    }

    fn replace_seal(
        &self,
        path: &std::path::Path,
        bytes: &[u8],
        sync: bool,
    ) -> std::io::Result<()> {
        rocky::hatch::RealDisk.replace_seal(path, bytes, sync)
    }
}

impl HoldDecommissioned {
    fn release(&self) {
        self.state.lock().expect("disk state lock").1 = true;
        self.changed.notify_all();
    }
}

/// Releases the held write when dropped: a failing test does not leave the console's thread
/// blocked in it (the runtime could not shut down).
struct Release(Arc<HoldDecommissioned>);

impl Drop for Release {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// A teardown's status shows when the teardown is over: while its `hearth.decommissioned`
/// record is being written the workspace reads `tearing_down`, and once it reads
/// `tier_torn_down` the record is in and a provision of the slug is taken at once (not 409
/// "busy").
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tier_torn_down_shows_once_the_teardown_is_recorded_and_the_slug_is_free() {
    let disk = Arc::new(HoldDecommissioned {
        state: std::sync::Mutex::new((false, false)),
        changed: std::sync::Condvar::new(),
    });
    let release = Release(disk.clone());
    let s = stack_on(Deadlines::default(), disk.clone()).await;
    let (status, body) = s
        .call(
            reqwest::Method::POST,
            paths::WORKSPACES,
            Some(support::create_body("again", "solo")),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let delete = tokio::spawn({
        let (http, url) = (s.http.clone(), s.url.clone());
        async move {
            call(
                &http,
                &url,
                reqwest::Method::DELETE,
                &paths::workspace("again"),
                None,
            )
            .await
        }
    });
    // The record's write is held: the teardown is not over.
    let wait = disk.clone();
    tokio::task::spawn_blocking(move || {
        let state = wait.state.lock().expect("disk state lock");
        let (_state, timeout) = wait
            .changed
            .wait_timeout_while(state, PATIENCE, |(held, _)| !*held)
            .expect("disk state lock");
        assert!(
            !timeout.timed_out(),
            "no hearth.decommissioned write within {PATIENCE:?}"
        );
    })
    .await
    .expect("the wait for the held write");
    assert_eq!(
        s.status_of("again").await,
        "tearing_down",
        "the status showed before the teardown's last record was written"
    );
    drop(release);
    let (status, body) = answer(delete).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(s.status_of("again").await, "tier_torn_down");
    let (status, body) = s
        .call(
            reqwest::Method::POST,
            paths::WORKSPACES,
            Some(support::create_body("again", "solo")),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(s.kinds(), TWO_LIVES);
}
