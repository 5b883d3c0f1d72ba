//! Waiting for a service to answer its health route: the same for every driver, since a
//! service offers no readiness event (a container's published port accepts connections before
//! the service inside does).

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// First pause between health probes; doubled after each failed probe up to [`PROBE_MAX_PAUSE`].
const PROBE_FIRST_PAUSE: Duration = Duration::from_millis(1);

/// Longest pause between health probes: a service that becomes healthy is seen at most about
/// this long after. A probe costs one loopback connection, so probing 100 times a second while
/// a slow service boots is cheap; the former 50 ms cap saw a service that listens after
/// 100–500 ms 20–44 ms late (`cargo bench --bench play -- --only probe`, BENCHMARKS.md).
const PROBE_MAX_PAUSE: Duration = Duration::from_millis(10);

/// Probes `GET {path}` on `addr` until it answers 200 or `deadline` passes. The service is
/// started just before, so the first probes may be refused; the pause between probes grows
/// from [`PROBE_FIRST_PAUSE`] to [`PROBE_MAX_PAUSE`]. (The service offers no readiness event:
/// a Docker container's published port accepts connections before the service inside does.)
pub async fn wait_healthy(addr: &str, path: &str, deadline: Instant) -> Result<(), String> {
    let mut delay = PROBE_FIRST_PAUSE;
    let mut last;
    loop {
        match probe(addr, path).await {
            Ok(200) => return Ok(()),
            Ok(code) => last = format!("health route answered {code}"),
            Err(e) => last = e,
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(format!("not healthy before the deadline: {last}"));
        }
        tokio::time::sleep(delay.min(deadline - now)).await;
        delay = (delay * 2).min(PROBE_MAX_PAUSE);
    }
}

async fn probe(addr: &str, path: &str) -> Result<u16, String> {
    let io = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await?;
        let mut head = [0u8; 32];
        let mut n = 0;
        while n < 12 {
            let read = stream.read(&mut head[n..]).await?;
            if read == 0 {
                break;
            }
            n += read;
        }
        Ok::<_, std::io::Error>(head[..n].to_vec())
    };
    let head = tokio::time::timeout(Duration::from_secs(2), io)
        .await
        .map_err(|_| "health probe timed out after 2s".to_owned())?
        .map_err(|e| format!("health probe failed: {e}"))?;
    let text = String::from_utf8_lossy(&head);
    text.strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("health route answered {text:?}, not HTTP"))
}
