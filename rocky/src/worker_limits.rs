//! What the worker keeps in memory is bounded (contract §9): every submission is checked
//! against input limits, at most [`MAX_ACTIVE_RUNS`] runs execute at once, and finished runs
//! (with their frames) are evicted by age and by count.

use std::time::{Duration, Instant};

/// Most prompts in one run (each is one KAHN node).
pub const MAX_PROMPTS: usize = 64;
/// Longest prompt, in bytes.
pub const MAX_PROMPT_BYTES: usize = 4096;
/// Runs executing at once; more are refused with 503 `too_many_runs`.
pub const MAX_ACTIVE_RUNS: usize = 64;
/// Finished runs kept for readers (`Last-Event-ID` resumes); the oldest go first.
pub const MAX_FINISHED_RUNS: usize = 256;
/// How long a finished run is kept.
pub const FINISHED_RUN_TTL: Duration = Duration::from_secs(600);

/// Checks a submission's prompts against the input limits; the message names the limit.
pub fn check_prompts(prompts: &[String]) -> Result<(), String> {
    if prompts.is_empty() || prompts.len() > MAX_PROMPTS {
        return Err(format!(
            "a run needs 1..={MAX_PROMPTS} prompts, got {}",
            prompts.len()
        ));
    }
    if let Some((i, p)) = prompts
        .iter()
        .enumerate()
        .find(|(_, p)| p.len() > MAX_PROMPT_BYTES)
    {
        return Err(format!(
            "prompt {} is {} bytes, more than {MAX_PROMPT_BYTES}",
            i + 1,
            p.len()
        ));
    }
    Ok(())
}

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
    fn prompts_are_limited() {
        assert!(check_prompts(&[]).unwrap_err().contains("1..=64"));
        assert!(check_prompts(&vec!["p".into(); 65]).is_err());
        assert!(check_prompts(&vec!["p".into(); 64]).is_ok());
        let err = check_prompts(&["ok".into(), "x".repeat(4097)]).unwrap_err();
        assert_eq!(err, "prompt 2 is 4097 bytes, more than 4096");
    }

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
