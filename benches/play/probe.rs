//! How late hearth's health probing sees a service that starts listening some time after it
//! was started.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{Args, bounded, repeat};
use crate::table::Table;

/// How late hearth's health probing (`wait_healthy`, both drivers) sees a service that starts
/// listening some time after it was started: a real service boots for a while, the stand-in
/// does not, so the play itself never shows this cost.
pub(crate) async fn probe_lag(args: &Args, table: &mut Table) -> anyhow::Result<()> {
    eprintln!("bench: health probe lag…");
    table.section("health probe: a service that listens late, seen how much later");
    for delay_ms in [0u64, 30, 100, 230, 500] {
        let delay = Duration::from_millis(delay_ms);
        let samples = repeat(args.runs, || bounded(probe_once(delay))).await?;
        table.duration(
            &format!("listening after {delay_ms} ms"),
            &samples,
            |d| *d,
            "",
            "time from listening to healthy",
        );
    }
    Ok(())
}

pub(crate) async fn probe_once(delay: Duration) -> anyhow::Result<Duration> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    let addr = socket.local_addr()?;
    // Bound but not listening yet: connections are refused, as with a booting service.
    let listening_at = Instant::now() + delay;
    let server = tokio::spawn(listen_late(socket, listening_at));
    let result = rocky::hearth::driver::health::wait_healthy(
        &addr.to_string(),
        "/healthz",
        Instant::now() + Duration::from_secs(10),
    )
    .await;
    let lag = listening_at.elapsed();
    server.abort();
    result.map_err(|e| anyhow!("{e}"))?;
    Ok(lag)
}

/// Starts listening at `at`, then answers every request 200.
pub(crate) async fn listen_late(
    socket: tokio::net::TcpSocket,
    at: Instant,
) -> std::io::Result<std::convert::Infallible> {
    tokio::time::sleep_until(at.into()).await;
    let listener = socket.listen(16)?;
    loop {
        let (mut conn, _) = listener.accept().await?;
        let mut head = [0u8; 512];
        let _ = conn.read(&mut head).await;
        let _ = conn
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .await;
    }
}
