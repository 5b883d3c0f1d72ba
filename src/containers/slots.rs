//! The container stacks this process runs at once: every stack takes a bridge network of the
//! engine's few address pools, so a further stack waits for a slot.

use std::sync::Arc;
use std::time::Duration;

/// Default of [`max_stacks`].
pub const DEFAULT_MAX_STACKS: usize = 12;

/// How long a stack may wait for a free slot (see [`max_stacks`]).
pub const SLOT_DEADLINE: Duration = Duration::from_secs(180);

/// Container stacks this process runs at once: `ROCKY_E2E_MAX_STACKS`, else
/// [`DEFAULT_MAX_STACKS`], which leaves more than half of an engine's default address pools
/// to the workspaces' networks.
pub fn max_stacks() -> usize {
    std::env::var("ROCKY_E2E_MAX_STACKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_MAX_STACKS)
}

pub(super) fn stack_slots() -> &'static Arc<tokio::sync::Semaphore> {
    static SLOTS: std::sync::OnceLock<Arc<tokio::sync::Semaphore>> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| Arc::new(tokio::sync::Semaphore::new(max_stacks())))
}
