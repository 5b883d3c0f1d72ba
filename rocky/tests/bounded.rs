//! Bounded servers (contract §9): header-read timeout, request deadline, shutdown deadline.
//! Each wait has a deadline that names what it waited for.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use rocky::http::{Limits, serve_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PATIENCE: Duration = Duration::from_secs(10);

fn limits() -> Limits {
    Limits {
        header_read: Duration::from_millis(200),
        request: Duration::from_millis(200),
        max_connections: 4,
        shutdown: Duration::from_millis(200),
    }
}

fn router() -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/hang", get(std::future::pending::<&'static str>))
}

async fn start(
    limits: Limits,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_with(
        listener,
        router(),
        async move {
            let _ = stopped.await;
        },
        limits,
    ));
    (addr, stop, server)
}

async fn read_to_close(stream: &mut tokio::net::TcpStream, what: &str) -> Vec<u8> {
    let mut out = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut out))
        .await
        .unwrap_or_else(|_| panic!("the server did not close {what} within {PATIENCE:?}"))
        .ok();
    out
}

#[tokio::test]
async fn headers_that_never_finish_are_cut_at_the_header_timeout() {
    let (addr, _stop, _server) = start(limits()).await;
    let mut slow = tokio::net::TcpStream::connect(addr).await.expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    read_to_close(&mut slow, "a connection whose headers never finished").await;
    // The server still answers others.
    let mut ok = tokio::net::TcpStream::connect(addr).await.expect("connect");
    ok.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let answer = read_to_close(&mut ok, "a finished request").await;
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}

#[tokio::test]
async fn a_request_past_its_deadline_gets_503() {
    let (addr, _stop, _server) = start(limits()).await;
    let mut c = tokio::net::TcpStream::connect(addr).await.expect("connect");
    c.write_all(b"GET /hang HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let answer =
        String::from_utf8_lossy(&read_to_close(&mut c, "a hanging request").await).into_owned();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("deadline_exceeded"), "{answer}");
}

#[tokio::test]
async fn shutdown_cuts_what_is_still_open_at_its_deadline() {
    let mut l = limits();
    // Neither the header timeout nor the request deadline frees these connections first.
    l.header_read = Duration::from_secs(600);
    l.request = Duration::from_secs(600);
    let (addr, stop, server) = start(l).await;
    let mut hanging = tokio::net::TcpStream::connect(addr).await.expect("connect");
    hanging
        .write_all(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut half = tokio::net::TcpStream::connect(addr).await.expect("connect");
    half.write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .expect("write");
    // The server has accepted both once a third request is answered (one accept loop, in order).
    let mut probe = tokio::net::TcpStream::connect(addr).await.expect("connect");
    probe
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    read_to_close(&mut probe, "the probe request").await;
    stop.send(()).expect("server running");
    tokio::time::timeout(PATIENCE, server)
        .await
        .expect("serve returned within the shutdown deadline")
        .expect("join")
        .expect("serve");
    read_to_close(&mut hanging, "a hanging request at shutdown").await;
    read_to_close(&mut half, "half a request at shutdown").await;
}

#[tokio::test]
async fn connections_past_the_limit_wait_until_one_closes() {
    let mut l = limits();
    l.max_connections = 2;
    l.header_read = Duration::from_secs(600);
    l.request = Duration::from_secs(600);
    let (addr, _stop, _server) = start(l).await;
    // Two kept-alive connections, each answered once: both hold a slot.
    let mut held = Vec::new();
    for i in 0..2 {
        let mut c = tokio::net::TcpStream::connect(addr).await.expect("connect");
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let mut buf = [0u8; 512];
        let n = tokio::time::timeout(PATIENCE, c.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("kept-alive connection {i} not answered in {PATIENCE:?}"))
            .expect("read");
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "connection {i}");
        held.push(c);
    }
    let mut third = tokio::net::TcpStream::connect(addr).await.expect("connect");
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 512];
    let early = tokio::time::timeout(Duration::from_millis(300), third.read(&mut buf)).await;
    assert!(
        early.is_err(),
        "a third connection was served while the limit of 2 was held"
    );
    drop(held.pop());
    let answer = read_to_close(&mut third, "the third connection once a slot freed").await;
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}
