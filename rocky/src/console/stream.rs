//! Following a run: the console reads the worker's SSE stream of KAHN frames, takes only the
//! frames whose MAC authenticates them (bound to this stream's request, the run and the frame's
//! `seq`; see [`crate::vault::answer`]), validates each strictly, and turns terminal node
//! transitions and the run's end into HATCH records. A frame that is not authenticated is
//! refused and counted like one that is not `kahn/1`, with its reason.
//!
//! The follow is bounded by the run deadline, resumes with `Last-Event-ID` when the connection
//! drops (a worker restart included, for as long as [`Deadlines::worker_gone`] without
//! progress), and ends the run `failed` (with the reason) rather than hanging. A worker that no
//! longer knows the run (404: it was restarted and lost it, or evicted it) ends it at once.
//!
//! Reasons are fixed sentences: they land in `ralph.run.ended` and in snapshots, so they name
//! the kind of failure, never an address, a port or an OS error text (those go to the log).
//!
//! [`Deadlines::worker_gone`]: super::Deadlines::worker_gone

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use std::sync::atomic::Ordering;

use super::{Console, NodeView, RunEntry};
use crate::client::worker::{EventsError, Read, Received};
use crate::hatch::{Event, EventKind};
use crate::kahn::{self, Frame, NodeState, RunStatus};

/// Actor of records caused by the worker's stream rather than by a caller.
const SYSTEM: &str = "system";

/// First wait before reconnecting, unless the stream set `retry:`.
const BASE_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);
/// Longest wait between reconnects.
const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(5);

/// What the follow learned; decides how the run ends.
struct Progress {
    /// SSE id of the last message read, for `Last-Event-ID` on resume.
    last_event_id: Option<String>,
    /// Nodes whose terminal transition was already recorded (exactly once per node).
    finished: BTreeSet<String>,
    /// The valid `RunEnded`, once seen.
    ended: Option<RunStatus>,
    /// Messages read so far (over every connection): progress resets the backoff.
    messages: u64,
    /// The reconnection time the worker asked for (`retry:`).
    retry: Option<std::time::Duration>,
    /// The `seq` of the last frame taken: a frame must come after it (a frame repeated or
    /// moved back on one connection is refused even when its MAC holds).
    last_seq: u64,
}

/// Follows `entry`'s run to its end and records it. Never returns before the run has ended.
pub(super) async fn follow(console: Arc<Console>, entry: Arc<RunEntry>, expected_nodes: usize) {
    let (run_id, workspace) = {
        let v = entry.view.lock().expect("run view lock");
        (v.run_id.clone(), v.workspace.clone())
    };
    let deadline = crate::duration::deadline(Instant::now(), console.config.deadlines.run);
    let mut progress = Progress {
        last_event_id: None,
        finished: BTreeSet::new(),
        ended: None,
        messages: 0,
        retry: None,
        last_seq: 0,
    };
    let mut failure: Option<String> = None;
    // When the stream last delivered a message (or the follow began): a worker that stays
    // unreachable for `worker_gone` from then on is given up on.
    let mut last_progress = Instant::now();
    let patience = console.config.deadlines.worker_gone;
    let mut backoff: Option<std::time::Duration> = None;
    while progress.ended.is_none() {
        if entry.is_closed() {
            return;
        }
        if let Some(wait) = backoff {
            // Bounded by the run deadline like everything else in the follow.
            let until = (Instant::now() + wait).min(deadline);
            tokio::time::sleep_until(until.into()).await;
        }
        let before = progress.messages;
        let read = read_stream(&console, &entry, &run_id, &workspace, &mut progress);
        let outcome = tokio::time::timeout_at(deadline.into(), read).await;
        let progressed = progress.messages > before;
        if progressed {
            last_progress = Instant::now();
        }
        let base = progress.retry.unwrap_or(BASE_BACKOFF).min(MAX_BACKOFF);
        backoff = Some(match backoff {
            Some(previous) if !progressed => (previous * 2).min(MAX_BACKOFF).max(base),
            _ => base,
        });
        match outcome {
            Err(_) => {
                failure = Some(format!(
                    "no valid RunEnded within the run deadline of {}",
                    crate::duration::display(console.config.deadlines.run)
                ));
                break;
            }
            Ok(Ok(())) if progress.ended.is_some() => break,
            Ok(_) if entry.is_closed() => return,
            Ok(Ok(())) if progressed => {
                // A clean close before RunEnded is a reconnect (WHATWG), from Last-Event-ID.
                tracing::info!(run_id, "event stream closed before RunEnded, reconnecting");
            }
            Ok(Ok(())) => {
                // A reconnect that delivered nothing new and closed cleanly: the worker has no
                // more frames, so a RunEnded it sent was rejected. Say so instead of waiting
                // for a frame never sent.
                let rejected = entry.rejected();
                failure = Some(format!(
                    "the worker's stream ended without a valid RunEnded ({rejected} frames rejected)"
                ));
                break;
            }
            Ok(Err(StreamError::Final(reason))) => {
                failure = Some(reason);
                break;
            }
            Ok(Err(StreamError::Transient { detail })) => {
                if last_progress.elapsed() >= patience {
                    tracing::warn!(run_id, "event stream failed, giving up: {detail}");
                    failure = Some(format!(
                        "the worker's event stream could not be resumed within {}",
                        crate::duration::display(patience)
                    ));
                    break;
                }
                tracing::warn!(run_id, "event stream dropped, resuming: {detail}");
            }
        }
    }
    if failure.is_none()
        && progress.ended == Some(RunStatus::Cancelled)
        && !entry.cancel_requested.load(Ordering::SeqCst)
    {
        // Nobody here asked: the worker ended it because no follower renewed its lease.
        failure = Some(
            "the worker cancelled the run: no follower renewed its follow lease in time".into(),
        );
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
        (None, Some(s)) | (Some(_), Some(s @ RunStatus::Cancelled)) => s,
        _ => RunStatus::Failed,
    };
    if progress.ended.is_some() {
        entry.set_worker_done();
    }
    // A run the console already ended (its workspace's teardown could not reach the worker)
    // keeps that end: nothing more is recorded about it.
    console.stop_following(&entry, status, failure).await;
}

/// Why a connection to the event stream ended before `RunEnded`.
#[derive(Debug)]
enum StreamError {
    /// Worth another try (the worker is restarting, the connection dropped): `detail` is the
    /// full error, for the log.
    Transient { detail: String },
    /// No retry can help: the run ends failed with this reason.
    Final(String),
}

/// What a non-success answer to `GET /v1/runs/{id}/events` means for the follow.
fn refused(code: u16) -> StreamError {
    match code {
        404 => StreamError::Final(
            "the worker no longer knows the run (404): it was restarted, or evicted the run"
                .to_owned(),
        ),
        500..=599 => StreamError::Transient {
            detail: format!("the worker answered {code} to the event stream"),
        },
        _ => StreamError::Final(format!("the worker refused the event stream ({code})")),
    }
}

/// Reads the stream until it closes or fails. `Ok` = closed cleanly by the worker.
async fn read_stream(
    console: &Console,
    entry: &RunEntry,
    run_id: &str,
    workspace: &str,
    progress: &mut Progress,
) -> Result<(), StreamError> {
    let mut stream = console
        .worker
        .events(run_id, progress.last_event_id.as_deref())
        .await
        .map_err(|e| match e {
            EventsError::Transport(detail) => StreamError::Transient { detail },
            EventsError::Status(code) => refused(code),
        })?;
    loop {
        let (received, broken) = match stream.read().await {
            Read::Closed => return Ok(()),
            Read::Failed(detail) => return Err(StreamError::Transient { detail }),
            Read::Frames { received, broken } => (received, broken),
        };
        progress.retry = stream.retry().or(progress.retry);
        if let Some(e) = &broken
            && received.is_empty()
        {
            return Err(unreadable(e));
        }
        for received in received {
            progress.messages += 1;
            if received.message.id.is_some() {
                progress.last_event_id = received.message.id.clone();
            }
            handle(console, entry, run_id, workspace, progress, received);
        }
        if progress.ended.is_some() || entry.is_closed() {
            return Ok(());
        }
        if let Some(e) = broken {
            return Err(unreadable(&e));
        }
    }
}

/// A stream that breaks the SSE rules (e.g. a line past the bound): reconnecting would read
/// the same bytes again, so the run ends.
fn unreadable(e: &impl std::fmt::Display) -> StreamError {
    StreamError::Final(format!("the worker's event stream is unreadable: {e}"))
}

fn handle(
    console: &Console,
    entry: &RunEntry,
    run_id: &str,
    workspace: &str,
    progress: &mut Progress,
    received: Received,
) {
    if entry.is_closed() {
        return;
    }
    let message = received.message;
    let reject = |reason: String| {
        tracing::warn!(run_id, "KAHN frame rejected: {reason}");
        entry.reject(message.id.clone(), reason);
    };
    // The MAC first: nothing the worker did not vouch for is even parsed as a frame.
    let seq = match received.authenticated {
        Ok(seq) => seq,
        Err(reason) => return reject(reason),
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
    if envelope.frame.seq() != seq {
        return reject(format!(
            "frame seq {} arrived under SSE id {seq}",
            envelope.frame.seq()
        ));
    }
    if seq <= progress.last_seq {
        return reject(format!(
            "frame seq {seq} does not follow seq {}",
            progress.last_seq
        ));
    }
    progress.last_seq = seq;
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
    #[test]
    fn sse_parser_handles_split_chunks_and_comments() {
        let mut p = crate::sse::SseParser::default();
        let mut out = Vec::new();
        p.push(b": keep-alive\n\nid: 1\nda", &mut out)
            .expect("parse");
        assert!(out.is_empty());
        p.push(b"ta: {\"a\":1}\n\nid: 2\r\ndata: x\r\n\r\n", &mut out)
            .expect("parse");
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].id.as_deref(), Some("1"));
        assert_eq!(out[0].data, "{\"a\":1}");
        assert_eq!(out[1].id.as_deref(), Some("2"));
        assert_eq!(out[1].data, "x");
    }
}
