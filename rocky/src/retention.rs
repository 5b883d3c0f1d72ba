//! How long finished runs are kept, by the worker (frames for `Last-Event-ID` resumes) and by
//! the console (run views for `GET /api/ralph/runs/{id}`): what a server keeps in memory is
//! bounded (contract §9). A run still executing is never evicted.

use std::time::{Duration, Instant};

/// Finished runs kept for readers; beyond it, the oldest go first.
pub const MAX_FINISHED_RUNS: usize = 256;
/// How long a finished run is kept.
pub const FINISHED_RUN_TTL: Duration = Duration::from_secs(600);

/// One run as eviction sees it.
pub struct RunAge {
    pub created: Instant,
    pub finished: bool,
}

/// Which runs to evict: finished ones older than the TTL, then the oldest finished ones beyond
/// [`MAX_FINISHED_RUNS`]. Returns the keys to drop.
pub fn evictions<K: Clone>(runs: impl Iterator<Item = (K, RunAge)>, now: Instant) -> Vec<K> {
    let mut finished: Vec<(Instant, K)> = Vec::new();
    let mut out = Vec::new();
    for (key, age) in runs {
        if !age.finished {
            continue;
        }
        if now.saturating_duration_since(age.created) > FINISHED_RUN_TTL {
            out.push(key);
        } else {
            finished.push((age.created, key));
        }
    }
    if finished.len() > MAX_FINISHED_RUNS {
        finished.sort_by_key(|(created, _)| *created);
        let excess = finished.len() - MAX_FINISHED_RUNS;
        out.extend(finished.into_iter().take(excess).map(|(_, k)| k));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_runs_are_evicted_by_age_and_count() {
        let now = Instant::now() + FINISHED_RUN_TTL * 2;
        let old = now - FINISHED_RUN_TTL - Duration::from_secs(1);
        let runs = (0..MAX_FINISHED_RUNS + 10).map(|i| {
            (
                i,
                RunAge {
                    created: now - Duration::from_millis(1000 - i as u64),
                    finished: true,
                },
            )
        });
        let extra = [
            (
                9000,
                RunAge {
                    created: old,
                    finished: true,
                },
            ),
            (
                9001,
                RunAge {
                    created: old,
                    finished: false,
                },
            ),
        ];
        let mut gone = evictions(runs.chain(extra), now);
        gone.sort();
        // The 10 oldest by count, the old finished one by age; never the active one.
        let mut expected: Vec<usize> = (0..10).collect();
        expected.push(9000);
        assert_eq!(gone, expected);
    }
}
