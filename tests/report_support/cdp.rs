//! A small Chrome DevTools Protocol client over `--remote-debugging-pipe` (std and serde_json
//! only), enough to open a page in headless Chromium as a person would and see what it shows:
//! console errors, every request the page made, values computed in the page, a screenshot.
//!
//! With `--remote-debugging-pipe` Chromium reads commands from fd 3 and writes answers and
//! events to fd 4, one JSON message per NUL byte. std cannot hand a child extra descriptors,
//! so `sh` does it: `exec chromium … 3<&0 4>&1`, turning the child's stdin and stdout pipes
//! into fds 3 and 4.
//!
//! Every wait has a deadline: a reader thread forwards messages over a channel and each wait
//! is a `recv_timeout` on the time left. Dropping a [`Browser`] kills Chromium and reaps it.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The Chromium to use: `$CHROMIUM`, else the first of the usual names on the `PATH`.
pub fn find_chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for name in [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

pub struct Browser {
    child: Child,
    input: ChildStdin,
    messages: Receiver<Value>,
    next_id: u64,
    /// Every event received so far (messages without an `id`), in order.
    pub events: Vec<Value>,
    profile: PathBuf,
    deadline: Instant,
}

impl Browser {
    /// Starts headless Chromium with a fresh profile and a `width`×`height` window. Everything
    /// it does must finish before `deadline`.
    pub fn launch(
        chromium: &Path,
        width: u32,
        height: u32,
        deadline: Instant,
    ) -> Result<Browser, String> {
        static LAUNCHES: AtomicU64 = AtomicU64::new(0);
        let profile = std::env::temp_dir().join(format!(
            "rocky-report-chromium-{}-{}",
            std::process::id(),
            LAUNCHES.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).map_err(|e| format!("{}: {e}", profile.display()))?;
        let log = std::fs::File::create(profile.join("chromium.log")).map_err(|e| e.to_string())?;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>&2"#)
            .arg(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-default-apps",
                "--mute-audio",
                // Any host name fails to resolve, locally: nothing the page might fetch leaves
                // the machine, yet the attempt still shows as a request.
                "--host-resolver-rules=MAP * ~NOTFOUND",
                "--remote-debugging-pipe",
            ])
            .arg(format!("--window-size={width},{height}"))
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| format!("starting {}: {e}", chromium.display()))?;
        let input = child.stdin.take().expect("piped stdin");
        let output = child.stdout.take().expect("piped stdout");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(output);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(0, &mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        if buf.last() == Some(&0) {
                            buf.pop();
                        }
                        if let Ok(v) = serde_json::from_slice::<Value>(&buf)
                            && tx.send(v).is_err()
                        {
                            return;
                        }
                    }
                }
            }
        });
        let mut browser = Browser {
            child,
            input,
            messages: rx,
            next_id: 0,
            events: Vec::new(),
            profile,
            deadline,
        };
        // The first answer proves the pipe works.
        browser.call(None, "Browser.getVersion", json!({}))?;
        Ok(browser)
    }

    /// Chromium's own log (stderr), for a failure message.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.profile.join("chromium.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Sends a command (to the browser, or to a page's `session`) and waits for its answer.
    pub fn call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).map_err(|e| e.to_string())?;
        bytes.push(0);
        self.input
            .write_all(&bytes)
            .and_then(|()| self.input.flush())
            .map_err(|e| format!("{method}: writing to Chromium: {e}"))?;
        loop {
            let m = self.next_message(method)?;
            if m.get("id").and_then(Value::as_u64) == Some(id) {
                if let Some(err) = m.get("error") {
                    return Err(format!("{method}: {err}"));
                }
                return Ok(m.get("result").cloned().unwrap_or(Value::Null));
            }
            if m.get("method").is_some() {
                self.events.push(m);
            }
        }
    }

    /// Waits for an event `method` from `session` (or returns one already received).
    pub fn wait_event(&mut self, session: &str, method: &str) -> Result<Value, String> {
        let matches = |e: &Value| {
            e.get("method").and_then(Value::as_str) == Some(method)
                && e.get("sessionId").and_then(Value::as_str) == Some(session)
        };
        if let Some(e) = self.events.iter().find(|e| matches(e)) {
            return Ok(e.clone());
        }
        loop {
            let m = self.next_message(method)?;
            if m.get("method").is_some() {
                self.events.push(m.clone());
                if matches(&m) {
                    return Ok(m);
                }
            }
        }
    }

    fn next_message(&mut self, waiting_for: &str) -> Result<Value, String> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        match self.messages.recv_timeout(left) {
            Ok(m) => Ok(m),
            Err(RecvTimeoutError::Timeout) => Err(format!(
                "Chromium did not answer {waiting_for} before the deadline\n{}",
                self.log_tail()
            )),
            Err(RecvTimeoutError::Disconnected) => Err(format!(
                "Chromium closed its pipe while we waited for {waiting_for}\n{}",
                self.log_tail()
            )),
        }
    }

    /// Opens a new page and attaches to it; returns its session id.
    pub fn new_page(&mut self) -> Result<String, String> {
        let target = self.call(None, "Target.createTarget", json!({ "url": "about:blank" }))?;
        let target_id = target["targetId"].as_str().ok_or("no targetId")?.to_owned();
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({ "targetId": target_id, "flatten": true }),
        )?;
        Ok(attached["sessionId"]
            .as_str()
            .ok_or("no sessionId")?
            .to_owned())
    }

    /// Closes the browser politely: it answers, closes its end of the pipe and exits. Waits
    /// for the pipe to close (at most 5 s), then reaps the process (killing it if it is still
    /// there, which by then only shortens its exit).
    pub fn close(mut self) {
        let _ = self.call(None, "Browser.close", json!({}));
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.messages.recv_timeout(left) {
                Ok(_) => continue,
                Err(_) => break,
            }
        }
        // Drop kills (if needed), reaps and removes the profile.
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// What a page did while it loaded, from the events recorded on its session.
#[derive(Debug, Default)]
pub struct PageLog {
    /// Console errors, uncaught exceptions and browser log entries at level error.
    pub errors: Vec<String>,
    /// Every URL the page requested other than `allowed` (its own file) and `data:` URLs.
    pub requests: Vec<String>,
}

impl PageLog {
    pub fn of(events: &[Value], session: &str, allowed: &str) -> PageLog {
        let mut log = PageLog::default();
        for e in events
            .iter()
            .filter(|e| e["sessionId"].as_str() == Some(session))
        {
            let p = &e["params"];
            match e["method"].as_str().unwrap_or_default() {
                "Runtime.consoleAPICalled"
                    if matches!(p["type"].as_str(), Some("error" | "assert")) =>
                {
                    let args: Vec<String> = p["args"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|a| {
                            a["value"]
                                .as_str()
                                .map(str::to_owned)
                                .unwrap_or_else(|| a["description"].to_string())
                        })
                        .collect();
                    log.errors.push(format!(
                        "console.{}: {}",
                        p["type"].as_str().unwrap_or("?"),
                        args.join(" ")
                    ));
                }
                "Runtime.exceptionThrown" => log.errors.push(format!(
                    "exception: {}",
                    p["exceptionDetails"]["exception"]["description"]
                        .as_str()
                        .or(p["exceptionDetails"]["text"].as_str())
                        .unwrap_or("?")
                )),
                "Log.entryAdded" if p["entry"]["level"].as_str() == Some("error") => {
                    log.errors.push(format!(
                        "log ({}): {} {}",
                        p["entry"]["source"].as_str().unwrap_or("?"),
                        p["entry"]["text"].as_str().unwrap_or("?"),
                        p["entry"]["url"].as_str().unwrap_or("")
                    ))
                }
                "Network.requestWillBeSent" => {
                    let url = p["request"]["url"].as_str().unwrap_or_default();
                    if url != allowed && !url.starts_with("data:") {
                        log.requests.push(url.to_owned());
                    }
                }
                _ => {}
            }
        }
        log
    }
}

/// Decodes standard base64 (what `Page.captureScreenshot` returns).
pub fn base64_decode(s: &str) -> Result<Vec<u8>, String> {
    let val = |c: u8| -> Result<u32, String> {
        Ok(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(format!("not base64: {:?}", c as char)),
        } as u32)
    };
    let clean: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let mut out = Vec::with_capacity(clean.len() / 4 * 3);
    for chunk in clean.chunks(4) {
        let pads = chunk.iter().filter(|&&b| b == b'=').count();
        let mut n = 0u32;
        for (i, &b) in chunk.iter().enumerate() {
            n |= if b == b'=' { 0 } else { val(b)? } << (18 - 6 * i);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pads.min(2)]);
    }
    Ok(out)
}
