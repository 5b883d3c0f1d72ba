//! A bearer is accepted once (contract §5): the verifier remembers every signature it accepted
//! until the token's timestamp leaves the skew window, and refuses a second use within it.
//!
//! The memory is bounded: entries expire with the window, and when `capacity` unexpired
//! bearers are remembered a new one is refused ("replay memory full") rather than forgetting
//! one that could then be replayed. Fail closed: a flood costs availability, never safety.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

/// Default bound on remembered bearers: 64 Ki × ~80 bytes ≈ 5 MB at most.
pub const DEFAULT_REPLAY_CAPACITY: usize = 64 * 1024;

/// Why a bearer was refused by the replay memory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("bearer replayed: this signature was already accepted within the skew window")]
    Replayed,
    #[error("replay memory full ({0} bearers within the skew window); retry shortly")]
    Full(usize),
}

/// The bounded memory of accepted signatures.
pub struct ReplayGuard {
    capacity: usize,
    inner: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    set: HashSet<[u8; 32]>,
    /// (expires at unix second, signature) in insertion order.
    order: VecDeque<(i64, [u8; 32])>,
}

impl ReplayGuard {
    pub fn new(capacity: usize) -> ReplayGuard {
        ReplayGuard {
            capacity: capacity.max(1),
            inner: Mutex::new(Seen::default()),
        }
    }

    /// Remembers `signature` (of a bearer whose timestamp is `token_ts`) until it can no longer
    /// pass the skew check, or refuses it if it was seen already.
    pub fn check(
        &self,
        signature: [u8; 32],
        token_ts: i64,
        now: i64,
        max_skew_secs: i64,
    ) -> Result<(), ReplayError> {
        let mut seen = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(&(expires, sig)) = seen.order.front() {
            if expires >= now {
                break;
            }
            seen.order.pop_front();
            seen.set.remove(&sig);
        }
        if seen.set.contains(&signature) {
            return Err(ReplayError::Replayed);
        }
        if seen.set.len() >= self.capacity {
            return Err(ReplayError::Full(self.capacity));
        }
        seen.set.insert(signature);
        let expires = token_ts.saturating_add(max_skew_secs.saturating_abs());
        seen.order.push_back((expires, signature));
        Ok(())
    }

    /// How many signatures are remembered now.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .set
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for ReplayGuard {
    fn default() -> Self {
        ReplayGuard::new(DEFAULT_REPLAY_CAPACITY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_use_within_the_window_is_refused() {
        let g = ReplayGuard::new(8);
        assert_eq!(g.check([1; 32], 100, 100, 30), Ok(()));
        assert_eq!(g.check([1; 32], 100, 110, 30), Err(ReplayError::Replayed));
        assert_eq!(g.check([2; 32], 100, 110, 30), Ok(()));
        // Once the window has passed the token fails the skew check anyway, so it is forgotten.
        assert_eq!(g.check([3; 32], 200, 200, 30), Ok(()));
        assert_eq!(g.len(), 1);
    }

    #[test]
    fn memory_is_bounded_and_fails_closed() {
        let g = ReplayGuard::new(2);
        g.check([1; 32], 100, 100, 30).unwrap();
        g.check([2; 32], 100, 100, 30).unwrap();
        let full = g.check([3; 32], 100, 100, 30).unwrap_err();
        assert_eq!(full, ReplayError::Full(2));
        assert!(full.to_string().contains("replay memory full"));
        // The remembered ones are still refused: nothing was forgotten to make room.
        assert_eq!(g.check([1; 32], 100, 101, 30), Err(ReplayError::Replayed));
    }
}
