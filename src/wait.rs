//! Waiting on a condition under a deadline that names what was waited for: the one poll loop
//! of the steps (no sleep synchronises anything; the interval only spaces the polls).

use std::time::Duration;

/// What one poll found.
#[derive(Debug)]
pub enum Poll<T> {
    /// The condition holds: the wait is over, with this.
    Ready(T),
    /// Not yet; what was seen instead, for the error if the deadline passes.
    Pending(String),
}

/// A wait whose deadline passed: `{what} within {deadline}s (last: {last})`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{what} within {}s (last: {last})", .deadline.as_secs())]
pub struct WaitError {
    /// What did not happen, as a sentence start, e.g. `hearth did not report workspace x as
    /// ready`.
    pub what: String,
    /// How long it was waited for.
    pub deadline: Duration,
    /// What the last poll saw.
    pub last: String,
}

/// Polls `poll` every `interval` until it is [`Poll::Ready`] or `deadline` has passed since
/// the first poll (which always runs). A poll that itself waits (a long-poll) may use a zero
/// interval.
pub async fn wait_for<T>(
    what: impl Into<String>,
    deadline: Duration,
    interval: Duration,
    mut poll: impl AsyncFnMut() -> Poll<T>,
) -> Result<T, WaitError> {
    let until = tokio::time::Instant::now() + deadline;
    loop {
        let last = match poll().await {
            Poll::Ready(t) => return Ok(t),
            Poll::Pending(last) => last,
        };
        if tokio::time::Instant::now() >= until {
            return Err(WaitError {
                what: what.into(),
                deadline,
                last,
            });
        }
        if !interval.is_zero() {
            tokio::time::sleep(interval).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wait_ends_with_the_first_ready_poll() {
        let mut polls = 0;
        let got = wait_for(
            "never",
            Duration::from_secs(5),
            Duration::ZERO,
            async || {
                polls += 1;
                if polls == 3 {
                    Poll::Ready(polls)
                } else {
                    Poll::Pending(format!("poll {polls}"))
                }
            },
        )
        .await;
        assert_eq!(got, Ok(3));
    }

    #[tokio::test]
    async fn a_wait_past_its_deadline_names_what_it_waited_for_and_the_last_poll() {
        let mut polls = 0;
        let err = wait_for(
            "the thing did not happen",
            Duration::ZERO,
            Duration::from_secs(60),
            async || {
                polls += 1;
                Poll::<()>::Pending(format!("poll {polls}"))
            },
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the thing did not happen within 0s (last: poll 1)"
        );
    }
}
