//! The deterministic stand-in for the model: a prompt says how many iterations its answer
//! needs, so scenarios can ask for slow convergence or none at all without flakiness.

/// A prompt containing `[ralph:converge=N]` needs N iterations; `[ralph:never]` never
/// converges; `[ralph:hold]` holds its node until the run is cancelled (a run that is certainly
/// active when its workspace is torn down); any other prompt converges on the first.
pub struct MockModel;

impl MockModel {
    /// How many iterations `prompt` needs, or `None` for never.
    pub fn iterations_needed(prompt: &str) -> Option<u32> {
        if prompt.contains("[ralph:never]") {
            return None;
        }
        if let Some(start) = prompt.find("[ralph:converge=") {
            let rest = &prompt[start + "[ralph:converge=".len()..];
            if let Some(end) = rest.find(']')
                && let Ok(n) = rest[..end].parse::<u32>()
            {
                return Some(n.max(1));
            }
        }
        Some(1)
    }

    /// The RALPH check: does the answer at `attempt` converge?
    pub fn converges(prompt: &str, attempt: u32) -> bool {
        Self::iterations_needed(prompt).is_some_and(|n| attempt >= n)
    }

    /// Whether `prompt` holds its node until the run is cancelled.
    pub fn holds(prompt: &str) -> bool {
        prompt.contains("[ralph:hold]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mock_model_is_deterministic() {
        assert_eq!(MockModel::iterations_needed("plain"), Some(1));
        assert_eq!(
            MockModel::iterations_needed("x [ralph:converge=3] y"),
            Some(3)
        );
        assert_eq!(MockModel::iterations_needed("[ralph:never]"), None);
        assert!(!MockModel::converges("[ralph:converge=3]", 2));
        assert!(MockModel::converges("[ralph:converge=3]", 3));
        assert!(!MockModel::converges("[ralph:never]", 100));
        assert!(MockModel::holds("wait [ralph:hold]"));
    }
}
