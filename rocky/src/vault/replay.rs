//! A bearer is accepted once (contract §5): the verifier remembers every signature it accepted
//! until the token's timestamp leaves the skew window, and refuses a second use within it.
//!
//! The memory is bounded: entries expire with the window, and when `capacity` unexpired
//! bearers are remembered a new one is refused ("replay memory full") rather than forgetting
//! one that could then be replayed. Fail closed: a flood costs availability, never safety.
//!
//! A restarted verifier has forgotten what it accepted before: a guard made with
//! [`ReplayGuard::since`] refuses every bearer signed in a second before it was made
//! ([`ReplayError::BeforeStart`]), so a bearer captured from the previous process cannot be
//! replayed to the next one within the skew window. (A bearer signed in the very second the
//! verifier started is accepted once more: timestamps are whole seconds, and refusing that
//! second would refuse the first honest requests of a verifier that just started.)
//!
//! Time at the window's edge: callers read the clock before they reach the guard, so their
//! `now`s arrive out of order. The guard therefore keeps one notion of now for everyone (the
//! latest any caller brought: it never runs backwards), keeps a bearer one second past the
//! skew window ([`GRACE_SECS`]), and remembers how far it has forgotten (`horizon`): a bearer
//! whose memory may already have been evicted (its window ends at or before the horizon) is
//! refused, whatever its caller's own clock said. So a replay never slips through between a
//! caller whose clock ran ahead (and evicted) and one whose clock lagged (and still accepts
//! the timestamp).

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

/// Default bound on remembered bearers: 64 Ki × ~80 bytes ≈ 5 MB at most.
pub const DEFAULT_REPLAY_CAPACITY: usize = 64 * 1024;

/// How long past the skew window a bearer is remembered.
pub const GRACE_SECS: i64 = 1;

/// Why a bearer was refused by the replay memory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("bearer replayed: this signature was already accepted within the skew window")]
    Replayed,
    #[error("replay memory full ({0} bearers within the skew window); retry shortly")]
    Full(usize),
    #[error(
        "bearer at the edge of the skew window: bearers that old were already forgotten, so a replay could not be told apart; sign a new one"
    )]
    Stale,
    #[error(
        "bearer signed before this verifier started (unix second {0}): what its previous run accepted is forgotten, so a replay could not be told apart; sign a new one"
    )]
    BeforeStart(i64),
}

/// The bounded memory of accepted signatures.
pub struct ReplayGuard {
    capacity: usize,
    /// Bearers signed before this unix second are refused (see the module docs).
    born: i64,
    inner: Mutex<Seen>,
}

struct Seen {
    set: HashSet<[u8; 32]>,
    /// (expires at unix second, signature) in insertion order.
    order: VecDeque<(i64, [u8; 32])>,
    /// The guard's now: the latest `now` any caller brought (never runs backwards).
    now: i64,
    /// The latest expiry evicted so far: a bearer expiring at or before it may have been
    /// forgotten.
    horizon: i64,
}

impl Default for Seen {
    fn default() -> Seen {
        Seen {
            set: HashSet::new(),
            order: VecDeque::new(),
            now: i64::MIN,
            horizon: i64::MIN,
        }
    }
}

impl ReplayGuard {
    pub fn new(capacity: usize) -> ReplayGuard {
        ReplayGuard::since(capacity, i64::MIN)
    }

    /// A guard of a verifier that started at unix second `born`: it refuses bearers signed
    /// before it, which a previous run of the verifier may have accepted.
    pub fn since(capacity: usize, born: i64) -> ReplayGuard {
        ReplayGuard {
            capacity: capacity.max(1),
            born,
            inner: Mutex::new(Seen::default()),
        }
    }

    /// Remembers `signature` (of a bearer whose timestamp is `token_ts`) until [`GRACE_SECS`]
    /// after it can no longer pass the skew check, or refuses it if it was seen already, or
    /// may have been and was forgotten (see the module docs). `now` is the caller's clock.
    pub fn check(
        &self,
        signature: [u8; 32],
        token_ts: i64,
        now: i64,
        max_skew_secs: i64,
    ) -> Result<(), ReplayError> {
        if token_ts < self.born {
            return Err(ReplayError::BeforeStart(self.born));
        }
        let mut seen = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        seen.now = seen.now.max(now);
        // Entries go in arrival order, not expiry order, so an entry is only evicted once
        // every entry before it has expired; the set stays a superset of the unexpired.
        while let Some(&(expires, sig)) = seen.order.front() {
            if expires >= seen.now {
                break;
            }
            seen.order.pop_front();
            seen.set.remove(&sig);
            seen.horizon = seen.horizon.max(expires);
        }
        let expires = token_ts
            .saturating_add(max_skew_secs.saturating_abs())
            .saturating_add(GRACE_SECS);
        if seen.set.contains(&signature) {
            return Err(ReplayError::Replayed);
        }
        if expires <= seen.horizon {
            return Err(ReplayError::Stale);
        }
        if seen.set.len() >= self.capacity {
            return Err(ReplayError::Full(self.capacity));
        }
        seen.set.insert(signature);
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

    /// Bug: a worker restarted within the skew window accepted a bearer its previous run had
    /// accepted (its memory of them was gone).
    #[test]
    fn a_guard_refuses_bearers_signed_before_it_started() {
        let g = ReplayGuard::since(8, 100);
        assert_eq!(
            g.check([1; 32], 99, 101, 30),
            Err(ReplayError::BeforeStart(100))
        );
        assert_eq!(
            g.check([2; 32], 70, 100, 30),
            Err(ReplayError::BeforeStart(100))
        );
        // Signed in the second it started, or after: accepted once.
        assert_eq!(g.check([3; 32], 100, 101, 30), Ok(()));
        assert_eq!(g.check([3; 32], 100, 101, 30), Err(ReplayError::Replayed));
        assert_eq!(g.check([4; 32], 101, 101, 30), Ok(()));
    }

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

    #[test]
    fn a_bearer_is_kept_a_second_past_the_window() {
        let g = ReplayGuard::new(8);
        g.check([1; 32], 100, 100, 30).unwrap();
        // At 130 the token still passes the skew check (130 - 100 <= 30): still refused at
        // 130 and at 131, a second past the window.
        assert_eq!(g.check([1; 32], 100, 130, 30), Err(ReplayError::Replayed));
        assert_eq!(g.check([1; 32], 100, 131, 30), Err(ReplayError::Replayed));
        g.check([2; 32], 200, 200, 30).unwrap();
        assert_eq!(g.len(), 1, "forgotten once a second past the window");
    }

    /// Two callers read the clock, then reach the guard out of order: the one whose clock ran
    /// ahead evicts the bearer, the one whose clock lagged still accepts its timestamp. The
    /// replay must not slip through between them.
    #[test]
    fn a_replay_at_the_windows_edge_never_slips_through_out_of_order_callers() {
        let g = ReplayGuard::new(8);
        g.check([1; 32], 100, 100, 30).unwrap();
        // A caller whose clock says 140 (another bearer) evicts everything up to it.
        g.check([2; 32], 140, 140, 30).unwrap();
        // The replay arrives with a caller whose clock read 130: within its skew window.
        assert_eq!(g.check([1; 32], 100, 130, 30), Err(ReplayError::Stale));
        assert!(
            ReplayError::Stale
                .to_string()
                .contains("edge of the skew window")
        );
        // A fresh bearer from the lagging caller is still accepted.
        assert_eq!(g.check([3; 32], 125, 130, 30), Ok(()));
    }

    /// Many threads replay the same bearers, each with its clock a different number of
    /// seconds behind, up to the window's edge: every bearer is accepted at most once.
    #[test]
    fn concurrent_callers_with_lagging_clocks_accept_each_bearer_once() {
        let g = ReplayGuard::new(1 << 16);
        let accepted = Mutex::new(std::collections::HashMap::<u32, usize>::new());
        std::thread::scope(|scope| {
            for lag in [0i64, 10, 25, 30] {
                let (g, accepted) = (&g, &accepted);
                scope.spawn(move || {
                    for i in 0..4000u32 {
                        let ts = i64::from(i / 4);
                        let mut sig = [0u8; 32];
                        sig[..4].copy_from_slice(&i.to_le_bytes());
                        // This caller's clock: `30 - lag` seconds after the bearer was signed,
                        // so every call is within the skew window for its own clock.
                        let now = ts + 30 - lag;
                        if g.check(sig, ts, now, 30).is_ok() {
                            *accepted.lock().unwrap().entry(i).or_default() += 1;
                        }
                    }
                });
            }
        });
        let accepted = accepted.into_inner().unwrap();
        assert!(
            accepted.values().all(|&n| n == 1),
            "a bearer was accepted twice"
        );
    }
}
