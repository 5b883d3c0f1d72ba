//! A small real stack for the console's integration tests: hearth with a counting fake driver
//! on a real unix socket, a real worker and the console, both served on loopback, driven over
//! HTTP. The worker's answers are recorded, and it can be killed (its server and every
//! connection dropped at once, as a SIGKILL would).
#![allow(
    dead_code,
    reason = "each test file uses its own part of the support, so an expectation cannot hold in all"
)]

pub mod proxy;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rocky::api::console::paths;
use rocky::api::hearth::{DriverKind, ServiceRef};
use rocky::auth::{LocalAuth, Principal, Role};
use rocky::console::{Console, ConsoleConfig, Deadlines};
use rocky::hatch::Hatch;
use rocky::hearth::client::HearthClient;
use rocky::hearth::driver::{Driver, Provisioned};
use rocky::hearth::server::Hearth;
use rocky::tier::{ServiceSpec, TierProfile};
use rocky::vault::Keyring;
use rocky::worker::{Worker, WorkerConfig};

/// How long any wait of these tests may take before it fails, naming what it waited for.
pub const PATIENCE: Duration = Duration::from_secs(20);

#[derive(Default)]
pub struct Counts {
    pub provisions: AtomicUsize,
    pub teardowns: AtomicUsize,
}

struct FakeDriver(Arc<Counts>);

impl Driver for FakeDriver {
    type Deployment = ();
    const KIND: DriverKind = DriverKind::Process;

    async fn provision(
        &self,
        _slug: &str,
        profile: &TierProfile,
        _health: Duration,
    ) -> Result<Provisioned<()>, String> {
        self.0.provisions.fetch_add(1, Ordering::SeqCst);
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
        self.0.teardowns.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// `(method, path, status)` of every request the worker answered.
pub type Calls = Arc<Mutex<Vec<(String, String, u16)>>>;

/// What a test may change about the stack.
#[derive(Clone, Debug)]
pub struct Options {
    /// The console's deadlines.
    pub deadlines: Deadlines,
    /// The worker's follow lease.
    pub follow_lease: Duration,
    /// Put a [`proxy::Proxy`] between the console and the worker.
    pub proxy: bool,
    /// Point the console at this URL instead of the worker (an impostor).
    pub worker_url: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            deadlines: Deadlines::default(),
            follow_lease: rocky::worker::DEFAULT_FOLLOW_LEASE,
            proxy: false,
            worker_url: None,
        }
    }
}

pub struct Stack {
    _dir: tempfile::TempDir,
    pub url: String,
    pub hatch: Arc<Hatch>,
    pub counts: Arc<Counts>,
    pub worker_calls: Calls,
    worker_addr: std::net::SocketAddr,
    worker: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    http: reqwest::Client,
    /// The worker's follow lease (kept for restarts).
    follow_lease: Duration,
    /// The proxy between console and worker, when asked for.
    pub proxy: Option<proxy::Proxy>,
    /// A client of the worker itself (not through the proxy), with the shared key.
    pub worker_client: rocky::client::WorkerClient,
    /// Connections a paused worker accepted and never answered (kept open).
    paused: Option<tokio::task::JoinHandle<()>>,
}

pub const TOKEN: &str = "admin-token-console-tests";
pub const SECRET: &[u8] = b"console-tests-secret";

/// The worker on `listener`, recording every answer in `calls`.
fn serve_worker(
    listener: tokio::net::TcpListener,
    calls: Calls,
    follow_lease: Duration,
) -> tokio::task::JoinHandle<std::io::Result<()>> {
    let config = WorkerConfig {
        keyring: Keyring::single("v1", SECRET),
        max_skew_secs: rocky::vault::DEFAULT_MAX_SKEW_SECS,
        encoding: Default::default(),
    };
    let worker = Worker::with_follow_lease(config, follow_lease);
    let record = axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let calls = calls.clone();
            async move {
                let (method, path) = (req.method().to_string(), req.uri().path().to_owned());
                let response = next.run(req).await;
                let status = response.status().as_u16();
                calls
                    .lock()
                    .expect("calls lock")
                    .push((method, path, status));
                response
            }
        },
    );
    tokio::spawn(rocky::http::serve(
        listener,
        worker.router().layer(record),
        std::future::pending(),
    ))
}

pub async fn stack() -> Stack {
    stack_with(Options::default()).await
}

/// `POST /api/hearth/workspaces` of `slug` on `tier`, as JSON (the body's type is the API's).
pub fn create_body(slug: &str, tier: &str) -> serde_json::Value {
    serde_json::to_value(rocky::api::console::CreateWorkspace {
        slug: slug.to_owned(),
        tier: tier.to_owned(),
    })
    .expect("a request serialises")
}

/// `POST /api/ralph/runs` of `prompts` in `slug`, as JSON (the console's default cap).
pub fn submit_body(slug: &str, prompts: &[&str]) -> serde_json::Value {
    serde_json::to_value(rocky::api::console::SubmitRequest {
        workspace: slug.to_owned(),
        prompts: prompts.iter().map(|p| (*p).to_owned()).collect(),
        max_ralph_iters: None,
    })
    .expect("a request serialises")
}

/// hearth with the counting fake driver, served on `socket` until the test ends.
pub fn serve_hearth(socket: &std::path::Path) -> Arc<Counts> {
    let counts = Arc::new(Counts::default());
    let hearth = Arc::new(Hearth::new(
        FakeDriver(counts.clone()),
        Duration::from_secs(5),
        Duration::from_secs(5),
    ));
    let listener = rocky::hearth::socket::bind_socket(socket).expect("bind hearth");
    tokio::spawn(rocky::http::serve(
        listener,
        hearth.router(),
        std::future::pending(),
    ));
    counts
}

/// The `solo` tier: one stand-in service.
pub fn solo_profile() -> TierProfile {
    TierProfile {
        name: "solo".into(),
        services: vec![ServiceSpec {
            name: "cairnet".into(),
            image: "standin".into(),
            port: 8080,
            health: "/healthz".into(),
            env: Default::default(),
        }],
    }
}

/// LocalAuth that knows one principal, `admin`, by `token`.
pub fn admin_auth(token: &str) -> LocalAuth {
    LocalAuth::from_tokens(vec![(
        token.into(),
        Principal {
            name: "admin".into(),
            role: Role::Admin,
        },
    )])
    .expect("tokens")
}

/// The console with `config`, served on a loopback port until the test ends: its URL.
pub async fn serve_console(config: ConsoleConfig) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind console");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(rocky::http::serve(
        listener,
        Console::new(config).router(),
        std::future::pending(),
    ));
    url
}

pub async fn stack_with(opts: Options) -> Stack {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("hearth.sock");
    let counts = serve_hearth(&socket);
    let worker_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind worker");
    let worker_addr = worker_listener.local_addr().expect("addr");
    let worker_url = format!("http://{worker_addr}");
    let worker_calls = Calls::default();
    let worker = serve_worker(worker_listener, worker_calls.clone(), opts.follow_lease);
    let proxy = if opts.proxy {
        Some(proxy::Proxy::start(&worker_url).await)
    } else {
        None
    };
    let worker_client = rocky::client::WorkerClient::new(
        worker_url.clone(),
        Keyring::single("v1", SECRET),
        Duration::from_secs(5),
    );
    let worker_url = proxy.as_ref().map_or(worker_url, |p| p.url.clone());
    let worker_url = opts.worker_url.clone().unwrap_or(worker_url);
    let hatch = Arc::new(Hatch::with_file(&dir.path().join("hatch.jsonl")).expect("hatch"));
    let profile = solo_profile();
    let config = ConsoleConfig {
        auth: admin_auth(TOKEN),
        hearth: HearthClient::new(&socket),
        worker_url,
        keyring: Keyring::single("v1", SECRET),
        hatch: hatch.clone(),
        tiers: BTreeMap::from([("solo".to_owned(), profile)]),
        deadlines: opts.deadlines,
    };
    let url = serve_console(config).await;
    Stack {
        _dir: dir,
        url,
        hatch,
        counts,
        worker_calls,
        worker_addr,
        worker: Some(worker),
        http: rocky::http::client(),
        follow_lease: opts.follow_lease,
        proxy,
        worker_client,
        paused: None,
    }
}

impl Stack {
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
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

    pub fn kinds(&self) -> Vec<String> {
        self.hatch
            .records()
            .expect("read the HATCH log back")
            .into_iter()
            .map(|r| r.kind)
            .collect()
    }

    /// Provisions `slug` on tier `solo` (201).
    pub async fn provision(&self, slug: &str) {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                paths::WORKSPACES,
                Some(create_body(slug, "solo")),
            )
            .await;
        assert_eq!(status, 201, "provision {slug}: {body}");
    }

    /// Submits a run of `prompts` in `slug`: the status and the body.
    pub async fn submit(&self, slug: &str, prompts: &[&str]) -> (u16, serde_json::Value) {
        self.call(
            reqwest::Method::POST,
            paths::RUNS,
            Some(submit_body(slug, prompts)),
        )
        .await
    }

    /// Kills the worker: its listener and every open connection are dropped at once.
    pub async fn kill_worker(&mut self) {
        if let Some(worker) = self.worker.take() {
            worker.abort();
            let _ = worker.await;
        }
    }

    /// Listens on the worker's address again once nothing else does. A child forked by
    /// another test of this binary (a hearth, a stand-in) holds a copy of the killed worker's
    /// listener until it execs; binding meanwhile fails with "Address already in use" (seen
    /// with 32 tests at a time).
    async fn rebind_worker(&self) -> tokio::net::TcpListener {
        let until = tokio::time::Instant::now() + PATIENCE;
        let mut pause = Duration::from_millis(1);
        loop {
            match tokio::net::TcpListener::bind(self.worker_addr).await {
                Ok(listener) => return listener,
                Err(e)
                    if e.kind() == std::io::ErrorKind::AddrInUse
                        && tokio::time::Instant::now() < until =>
                {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(e) => panic!(
                    "rebind the worker's address {} (waited up to {PATIENCE:?} for a child \
                     forked before the kill to exec and let go of the old listener): {e}",
                    self.worker_addr
                ),
            }
        }
    }

    /// Starts a new worker (no runs, as after a restart) on the killed one's address.
    pub async fn restart_worker(&mut self) {
        assert!(
            self.worker.is_none(),
            "restart_worker needs kill_worker first"
        );
        let listener = self.rebind_worker().await;
        self.worker = Some(serve_worker(
            listener,
            self.worker_calls.clone(),
            self.follow_lease,
        ));
    }

    /// Pauses the worker: it is killed, and its address then accepts connections and never
    /// answers on them (a stopped process, or a worker stuck in a long pause).
    pub async fn pause_worker(&mut self) {
        self.kill_worker().await;
        let listener = self.rebind_worker().await;
        self.paused = Some(tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((conn, _)) = listener.accept().await {
                held.push(conn);
            }
        }));
    }

    /// Reads run `run_id` until `done` holds for its view, within [`PATIENCE`].
    pub async fn run_until(
        &self,
        run_id: &str,
        what: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let (status, view) = self
                .call(
                    reqwest::Method::GET,
                    &format!("{}?wait=100ms", paths::run(run_id)),
                    None,
                )
                .await;
            assert_eq!(status, 200, "read run {run_id}: {view}");
            if done(&view) {
                return view;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "run {run_id}: {what} not seen within {PATIENCE:?}; last view {view}"
            );
        }
    }

    /// The worker's answers to requests whose path ends with `suffix`.
    pub fn worker_answers(&self, suffix: &str) -> Vec<(String, u16)> {
        self.worker_calls
            .lock()
            .expect("calls lock")
            .iter()
            .filter(|(_, path, _)| path.ends_with(suffix))
            .map(|(method, path, status)| (format!("{method} {path}"), *status))
            .collect()
    }
}

/// Waits until `done` holds, within [`PATIENCE`]; fails naming `what` otherwise.
pub async fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} not seen within {PATIENCE:?}"
        );
        tick.tick().await;
    }
}
