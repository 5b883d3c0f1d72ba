//! The container stacks this process runs at once: every stack takes a bridge network of the
//! engine's few address pools, and the workspaces of its scenario take more, so a further
//! stack waits for a slot. A scenario on a shared stack (`crate::stack::shared`) takes a slot
//! too while it runs, for its workspaces' networks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::ContainerError;

/// A slot held: returned when dropped.
pub type Slot = tokio::sync::OwnedSemaphorePermit;

/// Default of [`max_stacks`].
pub const DEFAULT_MAX_STACKS: usize = 12;

/// How long a stack may wait for a free slot (see [`max_stacks`]).
pub const SLOT_DEADLINE: Duration = Duration::from_secs(180);

/// Waits (up to [`SLOT_DEADLINE`]) for a slot, for `who` (a session, for the log).
pub async fn take_slot(who: &str) -> Result<Slot, ContainerError> {
    let waiting = Instant::now();
    let slot = tokio::time::timeout(SLOT_DEADLINE, stack_slots().clone().acquire_owned())
        .await
        .map_err(|_| ContainerError::NoSlot {
            max: max_stacks(),
            deadline: SLOT_DEADLINE,
        })?
        .expect("the stack semaphore is never closed");
    if waiting.elapsed() > Duration::from_millis(100) {
        tracing::info!(
            who,
            waited_ms = waiting.elapsed().as_millis() as u64,
            "waited for a container stack slot"
        );
    }
    Ok(slot)
}

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

fn stack_slots() -> &'static Arc<tokio::sync::Semaphore> {
    static SLOTS: std::sync::OnceLock<Arc<tokio::sync::Semaphore>> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| Arc::new(tokio::sync::Semaphore::new(max_stacks())))
}
