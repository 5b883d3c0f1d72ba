//! Following a run: the console reads the worker's SSE stream of KAHN frames, validates every
//! frame strictly, and turns terminal node transitions and the run's end into HATCH records.
//!
//! The follow is bounded by the run deadline, resumes with `Last-Event-ID` when the connection
//! drops, and ends the run `failed` (with the reason) rather than hanging.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;

use super::{Console, NodeView, RejectedFrame, RunEntry};
use crate::hatch::{Event, EventKind};
use crate::kahn::{self, Frame, NodeState, RunStatus};

/// How many times a dropped stream is resumed before the run is declared failed.
const MAX_RESUMES: u32 = 3;

/// Actor of records caused by the worker's stream rather than by a caller.
const SYSTEM: &str = "system";

/// One SSE event as read off the wire.
struct SseMessage {
    id: Option<String>,
    data: String,
}

/// Splits an SSE byte stream into messages (fields `id` and `data`; comments ignored).
#[derive(Default)]
struct SseParser {
    buffer: Vec<u8>,
    id: Option<String>,
    data: Vec<String>,
}

impl SseParser {
    fn push(&mut self, chunk: &[u8], out: &mut Vec<SseMessage>) {
        self.buffer.extend_from_slice(chunk);
        while let Some(pos) = self.buffer.iter().position(|b| *b == b'\n') {
            let mut line: Vec<u8> = self.buffer.drain(..=pos).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8_lossy(&line).into_owned();
            if line.is_empty() {
                if !self.data.is_empty() {
                    out.push(SseMessage {
                        id: self.id.take(),
                        data: self.data.join("\n"),
                    });
                    self.data.clear();
                }
                self.id = None;
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line.as_str(), ""),
            };
            match field {
                "id" => self.id = Some(value.to_owned()),
                "data" => self.data.push(value.to_owned()),
                _ => {}
            }
        }
    }
}

/// What the follow learned; decides how the run ends.
struct Progress {
    /// SSE id of the last message read, for `Last-Event-ID` on resume.
    last_event_id: Option<String>,
    /// Nodes whose terminal transition was already recorded (exactly once per node).
    finished: BTreeSet<String>,
    /// The valid `RunEnded`, once seen.
    ended: Option<RunStatus>,
}

/// Follows `entry`'s run to its end and records it. Never returns before the run has ended.
pub(super) async fn follow(console: Arc<Console>, entry: Arc<RunEntry>, expected_nodes: usize) {
    let (run_id, workspace) = {
        let v = entry.view.lock().expect("run view lock");
        (v.run_id.clone(), v.workspace.clone())
    };
    let deadline = Instant::now() + console.config.deadlines.run;
    let mut progress = Progress {
        last_event_id: None,
        finished: BTreeSet::new(),
        ended: None,
    };
    let mut failure: Option<String> = None;
    let mut resumes = 0;
    while progress.ended.is_none() {
        if entry.is_closed() {
            return;
        }
        let read = read_stream(&console, &entry, &run_id, &workspace, &mut progress);
        match tokio::time::timeout_at(deadline.into(), read).await {
            Err(_) => {
                failure = Some(format!(
                    "no valid RunEnded within the run deadline of {}",
                    crate::duration::display(console.config.deadlines.run)
                ));
                break;
            }
            Ok(Ok(())) if progress.ended.is_some() => break,
            Ok(_) if entry.is_closed() => return,
            Ok(Ok(())) => {
                // The worker closed the stream: it only does so after RunEnded, so if we did not
                // accept one, it was rejected. Say so instead of waiting for a frame never sent.
                let rejected = entry.rejected();
                failure = Some(format!(
                    "the worker's stream ended without a valid RunEnded ({rejected} frames rejected)"
                ));
                break;
            }
            Ok(Err(e)) if resumes >= MAX_RESUMES => {
                failure = Some(format!(
                    "the worker's stream failed after {MAX_RESUMES} resumes: {e}"
                ));
                break;
            }
            Ok(Err(e)) => {
                tracing::warn!(run_id, "event stream dropped, resuming: {e}");
                resumes += 1;
            }
        }
    }
    if failure.is_none() && progress.ended != Some(RunStatus::Cancelled) {
        // The worker may say `succeeded` while the console could not read every node: the
        // console's record is what it verified, so the run ends failed, with why.
        let rejected = entry.rejected();
        if rejected > 0 || progress.finished.len() < expected_nodes {
            failure = Some(format!(
                "{} of {expected_nodes} nodes reported a valid terminal transition; {rejected} frames rejected",
                progress.finished.len()
            ));
        }
    }
    let status = match (&failure, progress.ended) {
        (None, Some(s)) => s,
        _ => RunStatus::Failed,
    };
    // A run the console already ended (its workspace's teardown could not reach the worker)
    // keeps that end: nothing more is recorded about it.
    entry.close(&console, status, failure);
}

/// Reads the stream until it closes or fails. `Ok` = closed cleanly by the worker.
async fn read_stream(
    console: &Console,
    entry: &RunEntry,
    run_id: &str,
    workspace: &str,
    progress: &mut Progress,
) -> Result<(), String> {
    let path = crate::api::worker::paths::events(run_id);
    let bearer = console
        .config
        .keyring
        .sign("GET", &path, b"", crate::vault::now_unix());
    let mut request = console
        .http
        .get(format!("{}{path}", console.config.worker_url))
        .header("authorization", bearer)
        .header("accept", "text/event-stream");
    if let Some(id) = &progress.last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = request.send().await.map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!(
            "console→worker GET {path} returned {}",
            response.status().as_u16()
        ));
    }
    let mut body = response.bytes_stream();
    let mut parser = SseParser::default();
    let mut messages = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        parser.push(&chunk, &mut messages);
        for message in messages.drain(..) {
            if message.id.is_some() {
                progress.last_event_id = message.id.clone();
            }
            handle(console, entry, run_id, workspace, progress, message);
        }
        if progress.ended.is_some() || entry.is_closed() {
            return Ok(());
        }
    }
    Ok(())
}

fn handle(
    console: &Console,
    entry: &RunEntry,
    run_id: &str,
    workspace: &str,
    progress: &mut Progress,
    message: SseMessage,
) {
    if entry.is_closed() {
        return;
    }
    let reject = |reason: String| {
        tracing::warn!(run_id, "KAHN frame rejected: {reason}");
        entry
            .view
            .lock()
            .expect("run view lock")
            .rejected_frames
            .push(RejectedFrame {
                event_id: message.id.clone(),
                reason,
            });
    };
    let envelope = match kahn::validate(&message.data) {
        Ok(e) => e,
        Err(rejection) => return reject(rejection.reason),
    };
    if envelope.frame.run_id() != run_id {
        return reject(format!(
            "frame belongs to run {}, not {run_id}",
            envelope.frame.run_id()
        ));
    }
    match envelope.frame {
        Frame::NodeAttempt {
            node_id, attempt, ..
        } => {
            let mut v = entry.view.lock().expect("run view lock");
            let node = node_mut(&mut v.nodes, &node_id);
            node.attempts = node.attempts.max(attempt);
            if node.status == NodeState::Pending {
                node.status = NodeState::Running;
            }
        }
        Frame::NodeTransition { node_id, to, .. } => {
            let attempts = {
                let mut v = entry.view.lock().expect("run view lock");
                let node = node_mut(&mut v.nodes, &node_id);
                node.status = to;
                node.attempts
            };
            if to.is_terminal() && progress.finished.insert(node_id.clone()) {
                let kind = if to == NodeState::Succeeded {
                    EventKind::NodeSucceeded
                } else {
                    EventKind::NodeFailed
                };
                entry.record_open(
                    console,
                    Event::new(kind, SYSTEM)
                        .workspace(workspace)
                        .run_id(run_id)
                        .node_id(&node_id)
                        .data(serde_json::json!({"attempts": attempts})),
                );
            }
        }
        Frame::RunEnded { status, .. } => progress.ended = Some(status),
    }
}

fn node_mut<'a>(nodes: &'a mut Vec<NodeView>, node_id: &str) -> &'a mut NodeView {
    let index = match nodes.iter().position(|n| n.node_id == node_id) {
        Some(i) => i,
        None => {
            nodes.push(NodeView {
                node_id: node_id.to_owned(),
                status: NodeState::Pending,
                attempts: 0,
            });
            nodes.len() - 1
        }
    };
    &mut nodes[index]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_parser_handles_split_chunks_and_comments() {
        let mut p = SseParser::default();
        let mut out = Vec::new();
        p.push(b": keep-alive\n\nid: 1\nda", &mut out);
        assert!(out.is_empty());
        p.push(b"ta: {\"a\":1}\n\nid: 2\r\ndata: x\r\n\r\n", &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].id.as_deref(), Some("1"));
        assert_eq!(out[0].data, "{\"a\":1}");
        assert_eq!(out[1].id.as_deref(), Some("2"));
        assert_eq!(out[1].data, "x");
    }
}
