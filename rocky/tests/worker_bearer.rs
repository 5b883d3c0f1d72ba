//! The worker's bearer over HTTP: the same signed request sent five times starts one run;
//! the query string is signed; bad input names its limit; an oversized body is refused in the
//! contract's JSON shape, as the console refuses one.

use rocky::kahn::Encoding;
use rocky::vault::Keyring;
use rocky::worker::{Worker, WorkerConfig};

async fn worker() -> (String, Keyring) {
    let keyring = Keyring::single("v1", b"worker secret");
    let w = Worker::new(WorkerConfig {
        keyring: keyring.clone(),
        max_skew_secs: 30,
        encoding: Encoding::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(rocky::http::serve(
        listener,
        w.router(),
        std::future::pending(),
    ));
    (url, keyring)
}

/// Waits until the clock has left unix second `signed_at` (bearers carry whole seconds).
async fn leave_the_second(signed_at: i64) {
    crate::support::wait_for(
        &format!("the clock to leave unix second {signed_at}"),
        || rocky::vault::now_unix() > signed_at,
    )
    .await;
}

#[tokio::test]
async fn a_replayed_submission_starts_one_run() {
    let (url, keyring) = worker().await;
    let body = br#"{"workspace":"ws","prompts":["p"],"max_ralph_iters":3}"#;
    let bearer = keyring.sign("POST", "/v1/runs", body, rocky::vault::now_unix());
    let http = rocky::http::client();
    let mut answers = Vec::new();
    for _ in 0..5 {
        let r = http
            .post(format!("{url}/v1/runs"))
            .header("authorization", &bearer)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .expect("worker answers");
        let status = r.status().as_u16();
        let v: serde_json::Value = r.json().await.expect("json");
        answers.push((status, v["error"]["code"].as_str().unwrap_or("").to_owned()));
    }
    assert_eq!(answers[0].0, 202, "{answers:?}");
    for a in &answers[1..] {
        assert_eq!(
            a,
            &(401, rocky::api::ErrorCode::Replayed.to_string()),
            "{answers:?}"
        );
    }
}

/// Bug: a worker restarted on its address within the skew window accepted a bearer its
/// previous run had accepted (contract §5: a bearer is accepted once), and started the run
/// again. A worker refuses bearers signed before it started (in an earlier second: bearers
/// carry whole seconds), so the second worker starts once the clock has left the second the
/// bearer was signed in.
#[tokio::test]
async fn a_bearer_the_previous_worker_accepted_is_refused_by_the_restarted_one() {
    let body = br#"{"workspace":"ws","prompts":["p"],"max_ralph_iters":3}"#;
    let post = |url: String, bearer: String| async move {
        let r = rocky::http::client()
            .post(format!("{url}/v1/runs"))
            .header("authorization", bearer)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .expect("worker answers");
        let status = r.status().as_u16();
        let again = r
            .headers()
            .contains_key(rocky::api::worker::SIGN_AGAIN_HEADER);
        let v: serde_json::Value = r.json().await.expect("json");
        (status, v, again)
    };
    let (first, keyring) = worker().await;
    let signed_at = rocky::vault::now_unix();
    let bearer = keyring.sign("POST", "/v1/runs", body, signed_at);
    let (status, v, _) = post(first, bearer.clone()).await;
    assert_eq!(status, 202, "the first worker accepts it: {v}");
    leave_the_second(signed_at).await;
    // The restarted worker: the same keyring, all memory gone.
    let (restarted, _) = worker().await;
    let (status, v, again) = post(restarted.clone(), bearer).await;
    assert_eq!(status, 401, "the restarted worker took a replay: {v}");
    // An honest caller whose request waited out the restart is told to sign it again.
    assert!(again, "no sign-again header: {v}");
    assert_eq!(
        v["error"]["code"],
        rocky::api::ErrorCode::Replayed.to_string(),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("signed before this verifier started"),
        "{v}"
    );
    // A bearer signed now is accepted.
    let fresh = keyring.sign("POST", "/v1/runs", body, rocky::vault::now_unix());
    let (status, v, again) = post(restarted, fresh).await;
    assert_eq!((status, again), (202, false), "{v}");
}

#[tokio::test]
async fn the_query_is_signed() {
    let (url, keyring) = worker().await;
    let signed = "/v1/runs/run-x/events";
    let bearer = keyring.sign("GET", signed, b"", rocky::vault::now_unix());
    let r = rocky::http::client()
        .get(format!("{url}{signed}?evil=1"))
        .header("authorization", &bearer)
        .send()
        .await
        .expect("worker answers");
    assert_eq!(r.status().as_u16(), 401);
    let v: serde_json::Value = r.json().await.expect("json");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("signature mismatch"),
        "{v}"
    );
}

#[tokio::test]
async fn oversized_input_is_refused_by_name() {
    let (url, keyring) = worker().await;
    let big = "x".repeat(5000);
    let body = serde_json::to_vec(&serde_json::json!({
        "workspace": "ws", "prompts": [big], "max_ralph_iters": 3
    }))
    .expect("encode");
    let bearer = keyring.sign("POST", "/v1/runs", &body, rocky::vault::now_unix());
    let r = rocky::http::client()
        .post(format!("{url}/v1/runs"))
        .header("authorization", &bearer)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("worker answers");
    assert_eq!(r.status().as_u16(), 400);
    let v: serde_json::Value = r.json().await.expect("json");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("more than 4096"),
        "{v}"
    );
}

/// What a server answered: status, `Content-Type`, and the body as text.
async fn answer(r: reqwest::Response) -> (u16, String, String) {
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, content_type, r.text().await.expect("a body"))
}

/// The contract's error `{"error":{"code","message"}}` of an answer, or why it is none.
fn error_of((status, content_type, body): &(u16, String, String)) -> (u16, String, String) {
    assert_eq!(
        content_type, "application/json",
        "answer {status} is not JSON: {body:?}"
    );
    let v: serde_json::Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("answer {status} is not JSON ({e}): {body:?}"));
    let field = |name: &str| {
        v["error"][name]
            .as_str()
            .unwrap_or_else(|| panic!("answer {status} has no error.{name}: {body}"))
            .to_owned()
    };
    (*status, field("code"), field("message"))
}

/// A body over the worker's limit, sized by `Content-Length` or chunked (no length: it grows
/// past the limit as it is read), signed or not: 413 in the contract's JSON shape, naming the
/// limit. axum's own rejection was `text/plain` "Failed to buffer the request body: length
/// limit exceeded".
#[tokio::test]
async fn an_oversized_body_is_refused_in_the_contracts_shape() {
    let (url, keyring) = worker().await;
    let big = vec![b'x'; rocky::worker::MAX_BODY_BYTES + 1];
    let want = (
        413,
        rocky::api::ErrorCode::BodyTooLarge.to_string(),
        format!(
            "request bodies are limited to {} bytes",
            rocky::worker::MAX_BODY_BYTES
        ),
    );
    for (chunked, signed) in [(false, true), (true, true), (false, false)] {
        let body = if chunked {
            let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                big.chunks(8192).map(|c| Ok(c.to_vec())).collect();
            reqwest::Body::wrap_stream(futures::stream::iter(chunks))
        } else {
            reqwest::Body::from(big.clone())
        };
        let mut request = rocky::http::client()
            .post(format!("{url}/v1/runs"))
            .header("content-type", "application/json")
            .body(body);
        if signed {
            let bearer = keyring.sign("POST", "/v1/runs", &big, rocky::vault::now_unix());
            request = request.header("authorization", bearer);
        }
        let got = answer(request.send().await.expect("worker answers")).await;
        assert_eq!(error_of(&got), want, "chunked: {chunked}, signed: {signed}");
    }
    // Just under the limit is read (and refused for what it says, not for its size).
    let under = vec![b' '; rocky::worker::MAX_BODY_BYTES];
    let bearer = keyring.sign("POST", "/v1/runs", &under, rocky::vault::now_unix());
    let got = answer(
        rocky::http::client()
            .post(format!("{url}/v1/runs"))
            .header("authorization", bearer)
            .header("content-type", "application/json")
            .body(under)
            .send()
            .await
            .expect("worker answers"),
    )
    .await;
    let (status, code, _) = error_of(&got);
    assert_eq!((status, code.as_str()), (400, "bad_request"), "{got:?}");
}

/// The console and the worker refuse the same oversized body alike: 413, JSON, the same code
/// and message (one limit, one helper: `rocky::http::body`).
#[tokio::test]
async fn the_console_and_the_worker_refuse_an_oversized_body_alike() {
    let stack = crate::support::stack().await;
    assert_eq!(
        rocky::console::MAX_BODY_BYTES,
        rocky::worker::MAX_BODY_BYTES
    );
    let big = vec![b'x'; 80 * 1024];
    let http = rocky::http::client();
    let console = answer(
        http.post(format!(
            "{}{}",
            stack.url,
            rocky::api::console::paths::WORKSPACES
        ))
        .bearer_auth(crate::support::TOKEN)
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .expect("console answers"),
    )
    .await;
    let worker = answer(
        http.post(format!("{}/v1/runs", stack.worker_client.base_url()))
            .header(
                "authorization",
                rocky::vault::Keyring::single("v1", crate::support::SECRET).sign(
                    "POST",
                    "/v1/runs",
                    &big,
                    rocky::vault::now_unix(),
                ),
            )
            .header("content-type", "application/json")
            .body(big)
            .send()
            .await
            .expect("worker answers"),
    )
    .await;
    assert_eq!(error_of(&console), error_of(&worker));
    assert_eq!(error_of(&worker).1, "body_too_large");
    assert!(stack.kinds().is_empty(), "{:?}", stack.kinds());
}

/// A path no route has and a method a route does not take get the contract's shape from the
/// worker too (404 `not_found`, 405 `method_not_allowed` with `Allow`), as from the console.
#[tokio::test]
async fn an_unknown_route_and_a_wrong_method_answer_in_the_contracts_shape() {
    let (url, _) = worker().await;
    let http = rocky::http::client();
    let got = answer(
        http.get(format!("{url}/v1/no-such-route"))
            .send()
            .await
            .expect("worker answers"),
    )
    .await;
    let (status, code, _) = error_of(&got);
    assert_eq!((status, code.as_str()), (404, "not_found"), "{got:?}");
    let response = http
        .put(format!("{url}/v1/runs"))
        .send()
        .await
        .expect("worker answers");
    let allow = response
        .headers()
        .get(reqwest::header::ALLOW)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let got = answer(response).await;
    let (status, code, _) = error_of(&got);
    assert_eq!(
        (status, code.as_str()),
        (405, "method_not_allowed"),
        "{got:?}"
    );
    assert!(allow.contains("POST"), "Allow: {allow:?}");
}

/// The honest side of the restarted worker's refusal: a submission signed before the worker
/// started (it waited out the restart) is refused with the sign-again header, and the console's
/// client signs it again and resends it once, so the caller sees the run accepted. A proxy
/// holds the request until the clock has left the second its bearer was signed in, and only
/// then starts the worker and hands it the request.
#[tokio::test]
async fn a_submission_that_waited_out_a_worker_restart_is_signed_again() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let keyring = Keyring::single("v1", b"worker secret");
    let front = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", front.local_addr().expect("addr"));
    let client =
        rocky::client::WorkerClient::new(url, keyring.clone(), std::time::Duration::from_secs(30));
    let submit = tokio::spawn(async move {
        client
            .submit(&rocky::api::worker::SubmitRun {
                workspace: "ws".into(),
                prompts: vec!["p".into()],
                max_ralph_iters: 3,
            })
            .await
    });
    // The first request, whole: its headers and its body.
    let (mut first, _) = front.accept().await.expect("the client connects");
    let mut held = Vec::new();
    let mut chunk = [0u8; 4096];
    let signed_at = loop {
        let n = first.read(&mut chunk).await.expect("read the request");
        assert!(n > 0, "the client closed before sending its request");
        held.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&held).into_owned();
        let Some(end) = text.find("\r\n\r\n") else {
            continue;
        };
        let header = |name: &str| {
            text[..end].lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
        };
        let length: usize = header("content-length").map_or(0, |v| v.parse().expect("a length"));
        if held.len() >= end + 4 + length {
            let bearer = header("authorization").expect("a signed request");
            break rocky::vault::parse_bearer(&bearer).expect("a bearer").1;
        }
    };
    leave_the_second(signed_at).await;
    // The worker starts now, after the bearer's second, and gets the held request first.
    let (worker_url, _) = worker().await;
    let worker_addr = worker_url.trim_start_matches("http://").to_owned();
    let mut back = tokio::net::TcpStream::connect(&worker_addr)
        .await
        .expect("the worker listens");
    back.write_all(&held).await.expect("hand over the request");
    tokio::spawn(async move {
        let _ = tokio::io::copy_bidirectional(&mut first, &mut back).await;
    });
    // A resend on a new connection goes straight through.
    tokio::spawn(async move {
        while let Ok((mut c, _)) = front.accept().await {
            let addr = worker_addr.clone();
            tokio::spawn(async move {
                if let Ok(mut s) = tokio::net::TcpStream::connect(addr).await {
                    let _ = tokio::io::copy_bidirectional(&mut c, &mut s).await;
                }
            });
        }
    });
    let accepted = tokio::time::timeout(std::time::Duration::from_secs(30), submit)
        .await
        .expect("the submission ends within 30 s")
        .expect("the submit task")
        .unwrap_or_else(|e| panic!("the submission was not signed again: {e:?}"));
    assert!(accepted.run_id.starts_with("run-"), "{accepted:?}");
}
