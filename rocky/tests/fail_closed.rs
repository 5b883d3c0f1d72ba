//! Fail closed (contract §2): a lifecycle action whose HATCH append fails is refused with 503
//! `audit_unavailable` and leaves no half-state. hearth runs with a counting fake driver on a
//! real unix socket; the console is served on loopback and driven over HTTP.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rocky::api::hearth::{DriverKind, ServiceRef};
use rocky::auth::{LocalAuth, Principal, Role};
use rocky::console::{Console, ConsoleConfig, Deadlines};
use rocky::hatch::Hatch;
use rocky::hearth::client::HearthClient;
use rocky::hearth::driver::{Driver, Provisioned};
use rocky::hearth::server::Hearth;
use rocky::tier::{ServiceSpec, TierProfile};
use rocky::vault::Keyring;

#[derive(Default)]
struct Counts {
    provisions: AtomicUsize,
    teardowns: AtomicUsize,
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

struct Stack {
    _dir: tempfile::TempDir,
    url: String,
    hatch: Arc<Hatch>,
    counts: Arc<Counts>,
    http: reqwest::Client,
}

const TOKEN: &str = "admin-token-fail-closed";

async fn stack() -> Stack {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("hearth.sock");
    let counts = Arc::new(Counts::default());
    let hearth = Arc::new(Hearth::new(
        FakeDriver(counts.clone()),
        Duration::from_secs(5),
        Duration::from_secs(5),
    ));
    let listener = rocky::hearth::socket::bind_socket(&socket).expect("bind hearth");
    tokio::spawn(rocky::http::serve(
        listener,
        hearth.router(),
        std::future::pending(),
    ));
    let hatch = Arc::new(Hatch::with_file(&dir.path().join("hatch.jsonl")).expect("hatch"));
    let profile = TierProfile {
        name: "solo".into(),
        services: vec![ServiceSpec {
            name: "cairnet".into(),
            image: "standin".into(),
            port: 8080,
            health: "/healthz".into(),
            env: Default::default(),
        }],
    };
    let config = ConsoleConfig {
        auth: LocalAuth::from_tokens(vec![(
            TOKEN.into(),
            Principal {
                name: "admin".into(),
                role: Role::Admin,
            },
        )])
        .expect("tokens"),
        hearth: HearthClient::new(&socket),
        worker_url: "http://127.0.0.1:1".into(),
        keyring: Keyring::single("v1", b"secret"),
        hatch: hatch.clone(),
        tiers: BTreeMap::from([("solo".to_owned(), profile)]),
        deadlines: Deadlines::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind console");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(rocky::http::serve(
        listener,
        Console::new(config).router(),
        std::future::pending(),
    ));
    Stack {
        _dir: dir,
        url,
        hatch,
        counts,
        http: reqwest::Client::new(),
    }
}

impl Stack {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("console answers");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    fn kinds(&self) -> Vec<String> {
        self.hatch.records().into_iter().map(|r| r.kind).collect()
    }
}

fn create() -> Option<serde_json::Value> {
    Some(serde_json::json!({"slug": "ws-audit", "tier": "solo"}))
}

#[tokio::test]
async fn provision_is_refused_when_its_first_record_cannot_be_written() {
    let s = stack().await;
    s.hatch.inject_append_failure(true);
    let (status, body) = s
        .call(reqwest::Method::POST, "/api/hearth/workspaces", create())
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "audit_unavailable", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("hearth.provisioning_started"),
        "{body}"
    );
    assert_eq!(
        s.counts.provisions.load(Ordering::SeqCst),
        0,
        "hearth never called"
    );
    let (status, _) = s
        .call(
            reqwest::Method::GET,
            "/api/hearth/workspaces/ws-audit",
            None,
        )
        .await;
    assert_eq!(status, 404, "the slug was released");
    // Once the sink works again the same request succeeds.
    s.hatch.inject_append_failure(false);
    let (status, body) = s
        .call(reqwest::Method::POST, "/api/hearth/workspaces", create())
        .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn an_unrecorded_provision_is_rolled_back() {
    let s = stack().await;
    // provisioning_started (seq 1) is written, provisioned (seq 2) is not.
    s.hatch.fail_appends_from(2);
    let (status, body) = s
        .call(reqwest::Method::POST, "/api/hearth/workspaces", create())
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "audit_unavailable");
    assert_eq!(s.counts.provisions.load(Ordering::SeqCst), 1);
    assert_eq!(s.counts.teardowns.load(Ordering::SeqCst), 1, "rolled back");
    let (_, view) = s
        .call(
            reqwest::Method::GET,
            "/api/hearth/workspaces/ws-audit",
            None,
        )
        .await;
    assert_eq!(view["status"], "tier_torn_down", "{view}");
    assert_eq!(s.kinds(), ["hearth.provisioning_started"]);
}

#[tokio::test]
async fn teardown_is_refused_when_its_record_cannot_be_written() {
    let s = stack().await;
    let (status, _) = s
        .call(reqwest::Method::POST, "/api/hearth/workspaces", create())
        .await;
    assert_eq!(status, 201);
    s.hatch.inject_append_failure(true);
    let (status, body) = s
        .call(
            reqwest::Method::DELETE,
            "/api/hearth/workspaces/ws-audit",
            None,
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "audit_unavailable");
    assert_eq!(
        s.counts.teardowns.load(Ordering::SeqCst),
        0,
        "hearth never called"
    );
    let (_, view) = s
        .call(
            reqwest::Method::GET,
            "/api/hearth/workspaces/ws-audit",
            None,
        )
        .await;
    assert_eq!(view["status"], "ready", "{view}");
}

#[tokio::test]
async fn out_of_range_durations_from_a_request_get_400() {
    let s = stack().await;
    for wait in [
        "307445734561825861m",
        "61s",
        "99999999999999999999999s",
        "-1s",
        "5h",
    ] {
        let (status, body) = s
            .call(
                reqwest::Method::GET,
                &format!("/api/ralph/runs/run-x?wait={wait}"),
                None,
            )
            .await;
        assert_eq!(status, 400, "{wait}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with("wait: "),
            "{body}"
        );
    }
}
