//! A run's frames as `text/event-stream`, each event authenticated (see [`crate::vault::answer`]):
//!
//! ```text
//! id: 3
//! mac: rocky-mac1.v1.<hex>
//! data: {"schema":"kahn/1","type":"NodeAttempt",…}
//! ```
//!
//! `id:` is the frame's `seq` (contract §5), `data:` is exactly the `kahn/1` JSON (contract
//! §6), and `mac:` binds both to the run and to the nonce of the request this stream answers.
//! Written by hand because axum's SSE events have no field for the MAC. Comments keep an idle
//! stream alive, so a follower that is gone is noticed (a write fails) and its lease runs out.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::{IntoResponse, Response};
use futures::Stream;

use super::run::{Follower, RunLog};
use crate::vault::{Answer, FRAME_MAC_FIELD, Keyring};

/// Who the stream answers: the MAC's key and nonce come from its request's bearer.
pub(super) struct Reader {
    pub(super) keyring: Keyring,
    pub(super) key_id: String,
    pub(super) nonce: String,
    pub(super) run_id: String,
}

/// The SSE response for `log` from frame `after + 1` on.
pub(super) fn response(
    reader: Reader,
    log: Arc<RunLog>,
    after: usize,
    keep_alive: Duration,
) -> Response {
    let follower = log.follow();
    let body = Body::from_stream(events(reader, log, follower, after, keep_alive));
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/event-stream"),
            (axum::http::header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// One event, MAC and all.
fn event(reader: &Reader, seq: usize, data: &str) -> Bytes {
    let answer = Answer::Frame {
        nonce: &reader.nonce,
        run_id: &reader.run_id,
        seq: seq as u64,
        data,
    };
    // The key id comes from a bearer this keyring verified, so it holds the key.
    let tag = reader
        .keyring
        .answer_tag(&reader.key_id, &answer)
        .unwrap_or_default();
    let mut out = format!("id: {seq}\n{FRAME_MAC_FIELD}: {tag}\n");
    for line in data.split('\n') {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    Bytes::from(out)
}

fn events(
    reader: Reader,
    log: Arc<RunLog>,
    follower: Follower,
    after: usize,
    keep_alive: Duration,
) -> impl Stream<Item = Result<Bytes, Infallible>> {
    let rx = log.progress.subscribe();
    let state = (reader, log, rx, after, follower);
    futures::stream::unfold(
        state,
        move |(reader, log, mut rx, next, follower)| async move {
            loop {
                let (written, finished) = *rx.borrow_and_update();
                if next < written {
                    let data = log.frame(next + 1)?;
                    let bytes = event(&reader, next + 1, &data);
                    return Some((Ok(bytes), (reader, log, rx, next + 1, follower)));
                }
                if finished {
                    return None;
                }
                match tokio::time::timeout(keep_alive, rx.changed()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return None,
                    Err(_) => {
                        let ping = Bytes::from_static(b": keep-alive\n\n");
                        return Some((Ok(ping), (reader, log, rx, next, follower)));
                    }
                }
            }
        },
    )
}
