//! Every answer is the contract's `{"error":{"code","message"}}` (contract §4), the ones axum
//! and its extractors would make too: a query or path that cannot be read, a route that does not
//! exist, a method a route does not take, header fields over the bound. Authentication comes
//! first on `/api`: without a token LocalAuth knows, every `/api` request is 401, whatever its
//! path, query, method or headers; then 431, then the right (403), then the input (400).
//!
//! The console is served on loopback with two principals (an admin and a viewer) and a hearth
//! with a fake driver on a real unix socket; hearth's own routes are driven over that socket
//! with hand-written HTTP/1.1, so the path reaches it exactly as written.

use crate::support;

use std::collections::BTreeMap;
use std::sync::Arc;

use reqwest::Method;
use rocky::api::ErrorCode;
use rocky::auth::{LocalAuth, Principal, Role};
use rocky::console::{ConsoleConfig, Deadlines, MAX_HEADER_BYTES, MAX_HEADERS};
use rocky::hatch::Hatch;
use rocky::hearth::client::HearthClient;
use rocky::vault::Keyring;
use support::PATIENCE;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ADMIN: &str = "admin-token-api-errors";
const VIEWER: &str = "viewer-token-api-errors";
const STRANGER: &str = "a-token-nobody-was-given";

struct Console {
    _dir: tempfile::TempDir,
    url: String,
    hatch: Arc<Hatch>,
    socket: std::path::PathBuf,
    http: reqwest::Client,
}

/// The console (admin and viewer known) before a hearth with the fake driver.
async fn console() -> Console {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("hearth.sock");
    support::serve_hearth(&socket);
    let principal = |name: &str, role| Principal {
        name: name.into(),
        role,
    };
    let auth = LocalAuth::from_tokens(vec![
        (ADMIN.into(), principal("admin", Role::Admin)),
        (VIEWER.into(), principal("viewer", Role::Viewer)),
    ])
    .expect("tokens");
    let hatch = Arc::new(Hatch::with_file(&dir.path().join("hatch.jsonl")).expect("hatch"));
    let url = support::serve_console(ConsoleConfig {
        auth,
        hearth: HearthClient::new(&socket),
        // Never called: no request of these tests gets as far as the worker.
        worker_url: "http://127.0.0.1:1".into(),
        keyring: Keyring::single("v1", support::SECRET),
        hatch: hatch.clone(),
        tiers: BTreeMap::from([("solo".to_owned(), support::solo_profile())]),
        deadlines: Deadlines::default(),
    })
    .await;
    Console {
        _dir: dir,
        url,
        hatch,
        socket,
        http: rocky::http::client(),
    }
}

/// Header fields a request carries besides the bearer.
type Fields = [(String, String)];

/// An answer: its status, its headers, its body as text.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Console {
    /// `method path` (sent as written: percent escapes stay) with `token` and `extra` headers.
    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        extra: &Fields,
    ) -> Answer {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.url))
            .timeout(PATIENCE);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        for (name, value) in extra {
            req = req.header(name, value);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("the console did not answer {method} {path}: {e}"));
        Answer {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            body: resp.text().await.expect("the body reads"),
        }
    }

    fn records(&self) -> usize {
        self.hatch.records().expect("read the HATCH log").len()
    }
}

/// `answer` is `status` with `{"error":{"code":code,"message":…}}` as application/json; its
/// message, for a closer look.
fn assert_error(what: &str, answer: &Answer, status: u16, code: ErrorCode) -> String {
    let content_type = answer
        .headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert_eq!(
        (answer.status, content_type),
        (status, "application/json"),
        "{what}: {}",
        answer.body
    );
    let body: rocky::http::ErrorBody = serde_json::from_str(&answer.body).unwrap_or_else(|e| {
        panic!(
            "{what}: not the contract's error body ({e}): {}",
            answer.body
        )
    });
    assert_eq!(body.error.code, code, "{what}: {}", answer.body);
    assert!(!body.error.message.is_empty(), "{what}: {}", answer.body);
    body.error.message
}

/// One header field of `bytes` bytes of value.
fn padding(bytes: usize) -> Vec<(String, String)> {
    vec![("x-padding".into(), "a".repeat(bytes))]
}

/// `count` small header fields.
fn many_headers(count: usize) -> Vec<(String, String)> {
    (0..count)
        .map(|i| (format!("x-field-{i}"), "1".into()))
        .collect()
}

#[tokio::test]
async fn without_a_known_token_every_api_request_is_401_whatever_its_query_path_or_method() {
    let c = console().await;
    let over_the_header_bound = padding(MAX_HEADER_BYTES + 1024);
    let requests: [(Method, &str, &Fields); 12] = [
        (Method::GET, "/api/ralph/runs/x?foo=1", &[]),
        (Method::GET, "/api/ralph/runs/x?wait=1s&wait=2s", &[]),
        (Method::GET, "/api/ralph/runs/x?wait=forever", &[]),
        (Method::GET, "/api/ralph/runs/%ff%fe", &[]),
        (Method::GET, "/api/hearth/workspaces/%ff%fe", &[]),
        (Method::DELETE, "/api/hearth/workspaces/%ff%fe", &[]),
        (Method::GET, "/api/no-such-route", &[]),
        (Method::GET, "/api", &[]),
        (Method::PUT, "/api/hearth/workspaces/x", &[]),
        (Method::GET, "/api/hearth/workspaces", &[]),
        (Method::POST, "/api/ralph/runs/x", &[]),
        (Method::GET, "/api/ralph/runs/x", &over_the_header_bound),
    ];
    for token in [None, Some(STRANGER)] {
        for (method, path, extra) in &requests {
            let what = format!("{method} {path} with token {token:?}");
            let answer = c.send(method.clone(), path, token, extra).await;
            assert_error(&what, &answer, 401, ErrorCode::Unauthorized);
        }
    }
    assert_eq!(c.records(), 0, "nothing recorded");
}

#[tokio::test]
async fn with_a_token_a_query_or_path_that_cannot_be_read_is_400() {
    let c = console().await;
    for token in [ADMIN, VIEWER] {
        let send = |path: &'static str| c.send(Method::GET, path, Some(token), &[]);
        let message = assert_error(
            &format!("an unknown query field, as {token}"),
            &send("/api/ralph/runs/x?foo=1").await,
            400,
            ErrorCode::BadRequest,
        );
        assert!(message.contains("foo"), "{message}");
        let message = assert_error(
            &format!("a repeated query field, as {token}"),
            &send("/api/ralph/runs/x?wait=1s&wait=2s").await,
            400,
            ErrorCode::BadRequest,
        );
        assert!(message.contains("duplicate field `wait`"), "{message}");
        for path in [
            "/api/hearth/workspaces/%ff%fe",
            "/api/ralph/runs/%ff%fe",
            "/api/ralph/runs/%ff%fe?wait=0s",
        ] {
            let message = assert_error(
                &format!("GET {path}, as {token}"),
                &send(path).await,
                400,
                ErrorCode::BadRequest,
            );
            assert!(message.contains("UTF-8"), "{message}");
        }
        // What could be read is answered as before.
        assert_error(
            &format!("an unknown run, as {token}"),
            &send("/api/ralph/runs/x?wait=0s").await,
            404,
            ErrorCode::NotFound,
        );
    }
    // The right before the input: a viewer may not delete, whatever the path.
    let delete = "/api/hearth/workspaces/%ff%fe";
    let answer = c.send(Method::DELETE, delete, Some(VIEWER), &[]).await;
    assert_error("a viewer's DELETE", &answer, 403, ErrorCode::Forbidden);
    let answer = c.send(Method::DELETE, delete, Some(ADMIN), &[]).await;
    assert_error("an admin's DELETE", &answer, 400, ErrorCode::BadRequest);
    assert_eq!(c.records(), 0, "nothing recorded");
}

#[tokio::test]
async fn an_unknown_route_is_404_and_a_method_a_route_does_not_take_405() {
    let c = console().await;
    for path in ["/api/no-such-route", "/api/hearth/workspaces/x/y", "/api"] {
        let answer = c.send(Method::GET, path, Some(ADMIN), &[]).await;
        assert_error(&format!("GET {path}"), &answer, 404, ErrorCode::NotFound);
    }
    // Outside /api there is nothing to authenticate.
    let answer = c.send(Method::GET, "/no-such-route", None, &[]).await;
    assert_error("GET /no-such-route", &answer, 404, ErrorCode::NotFound);

    let allowed = |answer: &Answer| {
        answer
            .headers
            .get(reqwest::header::ALLOW)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let answer = c
        .send(Method::PUT, "/api/hearth/workspaces/x", Some(VIEWER), &[])
        .await;
    assert_error("PUT a workspace", &answer, 405, ErrorCode::MethodNotAllowed);
    let allow = allowed(&answer);
    assert!(
        allow.contains("GET") && allow.contains("DELETE"),
        "Allow: {allow}"
    );
    for (method, path, allow) in [
        (Method::GET, "/api/hearth/workspaces", "POST"),
        (Method::POST, "/api/ralph/runs/x", "GET"),
    ] {
        let answer = c.send(method.clone(), path, Some(ADMIN), &[]).await;
        let what = format!("{method} {path}");
        assert_error(&what, &answer, 405, ErrorCode::MethodNotAllowed);
        assert!(
            allowed(&answer).contains(allow),
            "{what}: {:?}",
            answer.headers
        );
    }
    let answer = c.send(Method::POST, "/healthz", None, &[]).await;
    assert_error("POST /healthz", &answer, 405, ErrorCode::MethodNotAllowed);
    let answer = c.send(Method::GET, "/healthz", None, &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(c.records(), 0, "nothing recorded");
}

#[tokio::test]
async fn header_fields_over_the_bound_are_431() {
    let c = console().await;
    let cases = [
        ("a long header field", padding(MAX_HEADER_BYTES + 1024)),
        ("too many header fields", many_headers(MAX_HEADERS + 1)),
    ];
    for (what, extra) in &cases {
        for token in [ADMIN, VIEWER] {
            let answer = c
                .send(Method::GET, "/api/ralph/runs/x", Some(token), extra)
                .await;
            assert_error(
                &format!("{what}, as {token}"),
                &answer,
                431,
                ErrorCode::HeadersTooLarge,
            );
        }
        // Before the right: a viewer's POST is 431 too, not 403.
        let answer = c
            .send(Method::POST, "/api/hearth/workspaces", Some(VIEWER), extra)
            .await;
        assert_error(
            &format!("{what}, a viewer's POST"),
            &answer,
            431,
            ErrorCode::HeadersTooLarge,
        );
        let answer = c.send(Method::GET, "/healthz", None, extra).await;
        assert_error(
            &format!("{what}, /healthz"),
            &answer,
            431,
            ErrorCode::HeadersTooLarge,
        );
    }
    // Under the bound, the request goes on.
    let answer = c
        .send(
            Method::GET,
            "/api/ralph/runs/x",
            Some(ADMIN),
            &padding(MAX_HEADER_BYTES / 2),
        )
        .await;
    assert_error(
        "a header field under the bound",
        &answer,
        404,
        ErrorCode::NotFound,
    );
    let answer = c
        .send(
            Method::GET,
            "/healthz",
            None,
            &many_headers(MAX_HEADERS - 8),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(c.records(), 0, "nothing recorded");
}

/// Sends `request` (a whole HTTP/1.1 request, `Connection: close`) to hearth on `socket`:
/// the answer's status, its content type, its body.
async fn hearth_raw(socket: &std::path::Path, request: &str) -> Answer {
    let mut stream = tokio::net::UnixStream::connect(socket)
        .await
        .expect("connect to hearth");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write the request");
    let mut out = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut out))
        .await
        .unwrap_or_else(|_| panic!("hearth did not answer {request:?} within {PATIENCE:?}"))
        .expect("read the answer");
    let text = String::from_utf8(out).expect("a text answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head}"));
    let mut headers = reqwest::header::HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':').expect("a header line");
        headers.append(
            reqwest::header::HeaderName::from_bytes(name.trim().as_bytes()).expect("name"),
            value.trim().parse().expect("value"),
        );
    }
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

#[tokio::test]
async fn hearth_answers_a_bad_path_an_unknown_route_and_a_wrong_method_in_the_error_shape() {
    let c = console().await;
    let get =
        |path: &str| format!("GET {path} HTTP/1.1\r\nHost: hearth\r\nConnection: close\r\n\r\n");
    let answer = hearth_raw(&c.socket, &get("/v1/status/%ff%fe")).await;
    let message = assert_error(
        "a slug that is not UTF-8",
        &answer,
        400,
        ErrorCode::BadRequest,
    );
    assert!(message.contains("UTF-8"), "{message}");
    let answer = hearth_raw(&c.socket, &get("/v1/no-such-route")).await;
    assert_error("an unknown route", &answer, 404, ErrorCode::NotFound);
    let answer = hearth_raw(&c.socket, &get("/v1/provision")).await;
    assert_error(
        "GET /v1/provision",
        &answer,
        405,
        ErrorCode::MethodNotAllowed,
    );
    let body = r#"{"slug":"#;
    let post = format!(
        "POST /v1/provision HTTP/1.1\r\nHost: hearth\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let answer = hearth_raw(&c.socket, &post).await;
    assert_error(
        "a body that is not JSON",
        &answer,
        400,
        ErrorCode::BadRequest,
    );
    // What could be read is answered as before.
    let answer = hearth_raw(&c.socket, &get("/v1/status/none")).await;
    assert_error("an unknown slug", &answer, 404, ErrorCode::NotFound);
}
