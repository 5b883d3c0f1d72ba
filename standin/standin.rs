//! standin: a tiny HTTP service standing in for CAIRNET and LORE until their images publish.
//!
//! It owns nothing but its health endpoint. It is compiled with plain `rustc` (std only, no
//! crates) into a fully static binary so it can be the sole file of a `FROM scratch` image
//! and also run directly as a child process by the `process` driver:
//!
//! ```text
//! rustc -O -C target-feature=+crt-static --target x86_64-unknown-linux-gnu standin/standin.rs
//! ```
//!
//! Interface:
//! - `--listen ADDR` (else env `STANDIN_LISTEN`, else `0.0.0.0:8080`; port 0 picks a free port)
//! - `--name NAME` (else env `STANDIN_NAME`, else `standin`)
//! - prints exactly one stdout line, `standin <name> listening on <addr>`, once bound;
//!   the process driver reads it to learn the port
//! - `GET /healthz` → 200 `{"service":"<name>","status":"ok"}` (503 for the first
//!   `STANDIN_HEALTHY_AFTER_MS` milliseconds, when set); anything else → 404
//! - SIGTERM/SIGINT → exit 0 at once; `STANDIN_IGNORE_SIGTERM=1` ignores SIGTERM instead
//!   (the teardown-timeout drill)
//! - `STANDIN_LISTEN_AFTER_MS`, when set: waits that long before it binds (and prints its
//!   line), as a service slow to start does (a hearth killed while its services start)
//!
//! The file must compile under any edition, since the documented command passes none.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;
/// `SIG_IGN` from <signal.h>.
const SIG_IGN: usize = 1;

/// Largest request head read; a health probe is far smaller, and the cap keeps a
/// misbehaving client from growing a buffer without bound.
const MAX_HEAD: usize = 8 * 1024;

unsafe extern "C" {
    fn signal(signum: i32, handler: usize) -> usize;
    fn _exit(code: i32) -> !;
}

/// Runs in signal context, so it may only call async-signal-safe functions: `_exit` is one,
/// and skipping destructors is fine because the service holds no state worth flushing.
extern "C" fn exit_now(_signum: i32) {
    unsafe { _exit(0) }
}

struct Config {
    listen: String,
    name: String,
}

fn usage(problem: &str) -> ! {
    let _ = writeln!(
        std::io::stderr(),
        "standin: {}\nusage: standin [--listen ADDR] [--name NAME]",
        problem
    );
    std::process::exit(2)
}

fn env_or(var: &str, default: &str) -> String {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => v,
        _ => default.to_string(),
    }
}

fn parse_args() -> Config {
    let mut listen = None;
    let mut name = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let slot = match flag.as_str() {
            "--listen" => &mut listen,
            "--name" => &mut name,
            "-h" | "--help" => usage("a stand-in HTTP service with GET /healthz"),
            other => usage(&format!("unknown argument {}", other)),
        };
        let value = match inline.or_else(|| args.next()) {
            Some(v) => v,
            None => usage(&format!("{} needs a value", flag)),
        };
        *slot = Some(value);
    }
    Config {
        listen: listen.unwrap_or_else(|| env_or("STANDIN_LISTEN", "0.0.0.0:8080")),
        name: name.unwrap_or_else(|| env_or("STANDIN_NAME", "standin")),
    }
}

fn install_signal_handlers() {
    let ignore_term = std::env::var("STANDIN_IGNORE_SIGTERM")
        .map(|v| v == "1")
        .unwrap_or(false);
    // As PID 1 in a container the kernel drops signals that have no handler, so the
    // default action is not enough: a handler must be installed explicitly.
    unsafe {
        signal(SIGINT, exit_now as extern "C" fn(i32) as usize);
        if ignore_term {
            signal(SIGTERM, SIG_IGN);
        } else {
            signal(SIGTERM, exit_now as extern "C" fn(i32) as usize);
        }
    }
    if ignore_term {
        // stderr, because stdout carries exactly one line by contract.
        let _ = writeln!(
            std::io::stderr(),
            "standin: STANDIN_IGNORE_SIGTERM=1, ignoring SIGTERM (fault drill)"
        );
    }
}

/// Escapes a string for a JSON string literal; the name comes from the command line.
fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Reads up to the end of the request head. Returns None on timeout, EOF before a
/// complete head, or an oversized head; the caller then answers 400 or just hangs up.
fn read_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
            return Some(buf);
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
    }
}

fn respond(stream: &mut TcpStream, status: &str, content_type: &str, body: &str) {
    let response = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        status,
        content_type,
        body.len(),
        body
    );
    // A client that went away is not our problem; never panic over it.
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.flush();
}

fn handle(mut stream: TcpStream, health_body: &str) {
    // Bounded so an idle or slow client cannot pin a thread forever.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let head = match read_head(&mut stream) {
        Some(h) => h,
        None => {
            respond(
                &mut stream,
                "400 Bad Request",
                "text/plain",
                "bad request\n",
            );
            return;
        }
    };
    let head = String::from_utf8_lossy(&head);
    let request_line = head.lines().next().unwrap_or("");
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("");
    let target = parts.next().unwrap_or("");
    let path = target.split('?').next().unwrap_or("");
    if method == "GET" && path == "/healthz" && !healthy_yet() {
        respond(&mut stream, "503 Service Unavailable", "text/plain", "starting\n");
    } else if method == "GET" && path == "/healthz" {
        respond(&mut stream, "200 OK", "application/json", health_body);
    } else {
        respond(&mut stream, "404 Not Found", "text/plain", "not found\n");
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

/// When the service started; `/healthz` answers 503 until `STANDIN_HEALTHY_AFTER_MS` have
/// passed since (a slow service, for the chaos drill's races with provisioning).
static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

fn healthy_yet() -> bool {
    let after = std::env::var("STANDIN_HEALTHY_AFTER_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    STARTED
        .get()
        .is_none_or(|t| t.elapsed() >= Duration::from_millis(after))
}

fn main() {
    STARTED.get_or_init(std::time::Instant::now);
    install_signal_handlers();
    let config = parse_args();
    // After the handlers: a service still starting exits on SIGTERM too.
    let listen_after = std::env::var("STANDIN_LISTEN_AFTER_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    if listen_after > 0 {
        std::thread::sleep(Duration::from_millis(listen_after));
    }
    let listener = match TcpListener::bind(config.listen.as_str()) {
        Ok(l) => l,
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "standin: failed to listen on {}: {}",
                config.listen,
                e
            );
            std::process::exit(1)
        }
    };
    let addr = match listener.local_addr() {
        Ok(a) => a.to_string(),
        Err(_) => config.listen.clone(),
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "standin {} listening on {}", config.name, addr);
        let _ = out.flush();
    }
    let health_body = format!(
        "{{\"service\":\"{}\",\"status\":\"ok\"}}",
        json_escape(&config.name)
    );
    for conn in listener.incoming() {
        match conn {
            Ok(stream) => {
                let body = health_body.clone();
                // If no thread can be spawned the connection is dropped (closed), which a
                // client sees as a failed probe rather than a hang.
                let _ = std::thread::Builder::new()
                    .name("conn".to_string())
                    .spawn(move || handle(stream, &body));
            }
            // E.g. EMFILE: back off briefly instead of spinning on the error.
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}
