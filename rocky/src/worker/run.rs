//! One run on the worker: its frame log (appended once, streamed to any number of readers),
//! the RALPH loop that writes it, and the follow lease that ends a run nobody follows.
//!
//! The lease (contract §5, "no run outlives its follower"): a run is renewed for as long as at
//! least one `GET …/events` connection to it is open; once the last one closes (or none ever
//! opened), the run ends `cancelled` if no follower comes back within the lease. So a run whose
//! console gave up on it, crashed, or never learned it was accepted gives its slot back.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::model::MockModel;
use crate::api::worker::SubmitRun;
use crate::kahn::{self, Encoding, Frame, NodeState, RunStatus};

/// One run's frame log and the signals around it.
pub(super) struct RunLog {
    /// Encoded `data:` payloads; frame `seq` n is at index n-1.
    frames: Mutex<Vec<String>>,
    /// (frames written, finished): readers wait on this instead of polling.
    pub(super) progress: watch::Sender<(usize, bool)>,
    /// Set by a cancel (the console's, or the lapsed lease); the run ends `cancelled` at its
    /// next step.
    cancel: watch::Sender<bool>,
    /// How many event streams of this run are open: each renews the follow lease.
    followers: watch::Sender<usize>,
    /// For eviction once finished (see [`crate::retention`]).
    pub(super) created: Instant,
    /// The bearer nonce of the submission that started it (cancel by submission).
    pub(super) nonce: String,
    /// The status its `RunEnded` said, once written.
    outcome: Mutex<Option<RunStatus>>,
}

impl RunLog {
    pub(super) fn new(nonce: String) -> Arc<RunLog> {
        Arc::new(RunLog {
            frames: Mutex::new(Vec::new()),
            progress: watch::channel((0, false)).0,
            cancel: watch::channel(false).0,
            followers: watch::channel(0).0,
            created: Instant::now(),
            nonce,
            outcome: Mutex::new(None),
        })
    }

    /// Whether the run has written its `RunEnded`.
    pub(super) fn finished(&self) -> bool {
        self.progress.borrow().1
    }

    /// Where the run is: `running`, or its end.
    pub(super) fn status(&self) -> RunStatus {
        self.outcome
            .lock()
            .expect("run outcome lock")
            .unwrap_or(RunStatus::Running)
    }

    /// How many event streams of it are open.
    pub(super) fn followers(&self) -> usize {
        *self.followers.borrow()
    }

    /// Asks the run to end `cancelled` at its next step (a finished run is left as it is).
    pub(super) fn cancel(&self) {
        self.cancel.send_replace(true);
    }

    /// Frame `seq` (1-based), once written.
    pub(super) fn frame(&self, seq: usize) -> Option<String> {
        let frames = self.frames.lock().expect("run log lock");
        seq.checked_sub(1).and_then(|i| frames.get(i).cloned())
    }

    /// A follower connected: the lease is renewed until the guard drops.
    pub(super) fn follow(self: &Arc<Self>) -> Follower {
        self.followers.send_modify(|n| *n += 1);
        Follower(self.clone())
    }

    fn push(&self, frame: &Frame, encoding: &Encoding) {
        let encoded = kahn::encode_with(frame, encoding);
        let mut frames = self.frames.lock().expect("run log lock");
        frames.push(encoded);
        let n = frames.len();
        self.progress.send_modify(|p| p.0 = n);
    }
}

/// An open event stream of a run; dropping it (the connection closed) starts the lease clock
/// once no other follower is left.
pub(super) struct Follower(Arc<RunLog>);

impl Drop for Follower {
    fn drop(&mut self) {
        self.0.followers.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Ends `log`'s run `cancelled` once it has had no follower for `lease` (counted from its
/// acceptance when nobody ever followed it). Returns when the run finishes either way.
pub(super) async fn watch_lease(run_id: String, log: Arc<RunLog>, lease: Duration) {
    let mut followers = log.followers.subscribe();
    let mut progress = log.progress.subscribe();
    loop {
        if progress.borrow_and_update().1 {
            return;
        }
        let open = *followers.borrow_and_update();
        if open > 0 {
            tokio::select! {
                changed = followers.changed() => if changed.is_err() { return },
                _ = progress.changed() => {}
            }
            continue;
        }
        // The lease is a deadline, not a synchronisation: nothing else tells the worker that
        // a follower will never come back.
        tokio::select! {
            () = tokio::time::sleep(lease) => {
                tracing::warn!(
                    run_id,
                    "no follower for {}: the run is cancelled",
                    crate::duration::display(lease)
                );
                log.cancel();
                return;
            }
            changed = followers.changed() => if changed.is_err() { return },
            _ = progress.changed() => {}
        }
    }
}

/// The RALPH loop over every node, writing frames as they happen.
pub(super) async fn execute(run_id: &str, run: &SubmitRun, encoding: &Encoding, log: &RunLog) {
    let mut seq = 0u64;
    let mut next_seq = || {
        seq += 1;
        seq
    };
    let mut all_ok = true;
    let mut cancelled = log.cancel.subscribe();
    let is_cancelled = |rx: &watch::Receiver<bool>| *rx.borrow();
    'nodes: for (i, prompt) in run.prompts.iter().enumerate() {
        if is_cancelled(&cancelled) {
            break 'nodes;
        }
        let node_id = format!("node-{}", i + 1);
        let transition = |seq, from, to| Frame::NodeTransition {
            run_id: run_id.into(),
            node_id: node_id.clone(),
            seq,
            from,
            to,
            ts: crate::clock::now_rfc3339(),
        };
        log.push(
            &transition(next_seq(), NodeState::Pending, NodeState::Running),
            encoding,
        );
        if MockModel::holds(prompt) {
            // Held until cancelled; the node never reaches a terminal state.
            let _ = cancelled.wait_for(|c| *c).await;
            break 'nodes;
        }
        let mut converged = false;
        for attempt in 1..=run.max_ralph_iters {
            if is_cancelled(&cancelled) {
                break 'nodes;
            }
            let frame = Frame::NodeAttempt {
                run_id: run_id.into(),
                node_id: node_id.clone(),
                seq: next_seq(),
                attempt,
                ts: crate::clock::now_rfc3339(),
            };
            log.push(&frame, encoding);
            if MockModel::converges(prompt, attempt) {
                converged = true;
                break;
            }
            // Let other runs and readers make progress between iterations.
            tokio::task::yield_now().await;
        }
        all_ok &= converged;
        let to = if converged {
            NodeState::Succeeded
        } else {
            NodeState::Failed
        };
        log.push(&transition(next_seq(), NodeState::Running, to), encoding);
    }
    let status = if is_cancelled(&cancelled) {
        RunStatus::Cancelled
    } else if all_ok {
        RunStatus::Succeeded
    } else {
        RunStatus::Failed
    };
    let ended = Frame::RunEnded {
        run_id: run_id.into(),
        seq: next_seq(),
        status,
        ts: crate::clock::now_rfc3339(),
    };
    log.push(&ended, encoding);
    *log.outcome.lock().expect("run outcome lock") = Some(status);
    log.progress.send_modify(|p| p.1 = true);
}
