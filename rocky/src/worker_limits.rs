//! What the worker keeps in memory is bounded (contract §9): every submission is checked
//! against input limits, at most [`MAX_ACTIVE_RUNS`] runs execute at once, and finished runs
//! (with their frames) are evicted by age and by count ([`crate::retention`]).

/// Most prompts in one run (each is one KAHN node).
pub const MAX_PROMPTS: usize = 64;
/// Longest prompt, in bytes.
pub const MAX_PROMPT_BYTES: usize = 4096;
/// Runs executing at once; more are refused with 503 `too_many_runs`.
pub const MAX_ACTIVE_RUNS: usize = 64;

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
}
