//! The container stacks this process runs at once: every stack takes a bridge network of the
//! engine's few address pools, and the workspaces of its scenario take more, so a further
//! stack waits for a slot. Slots are counted in networks ([`Claim`]): a stack of a scenario's
//! own takes [`Claim::OwnStack`] (its network and up to two workspaces'), a scenario on a
//! shared stack (`crate::stack::shared`) [`Claim::Tenant`] (its workspaces' alone), and the
//! shared stack itself none (one network for the whole run, which its tenants must never wait
//! behind: they hold their slots while it starts).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::ContainerError;

/// A slot held: returned when dropped.
pub type Slot = tokio::sync::OwnedSemaphorePermit;

/// Default of [`max_stacks`].
pub const DEFAULT_MAX_STACKS: usize = 12;

/// How long a stack may wait for a free slot (see [`max_stacks`]).
pub const SLOT_DEADLINE: Duration = Duration::from_secs(180);

/// What a slot is taken for, and so how many networks it counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// A scenario's own stack: its network and its workspaces'.
    OwnStack,
    /// A scenario on a shared stack: its workspaces' networks.
    Tenant,
    /// A stack shared by scenarios: its tenants hold the slots.
    SharedStack,
}

impl Claim {
    /// The networks counted: a stack's own, and two workspaces' (what the features use at
    /// most), so [`max_stacks`] own stacks fit the address pools as they always did.
    fn networks(self) -> u32 {
        match self {
            Claim::OwnStack => 3,
            Claim::Tenant => 2,
            Claim::SharedStack => 0,
        }
    }
}

/// Waits (up to [`SLOT_DEADLINE`]) for a slot for `claim`, for `who` (a session, for the log).
pub async fn take_slot(who: &str, claim: Claim) -> Result<Slot, ContainerError> {
    let waiting = Instant::now();
    let slot = tokio::time::timeout(
        SLOT_DEADLINE,
        stack_slots().clone().acquire_many_owned(claim.networks()),
    )
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

/// Container stacks of their own this process runs at once (or half as many again scenarios
/// on a shared stack, see [`Claim`]): `ROCKY_E2E_MAX_STACKS`, else [`DEFAULT_MAX_STACKS`],
/// which leaves more than half of an engine's default address pools to the workspaces'
/// networks.
pub fn max_stacks() -> usize {
    std::env::var("ROCKY_E2E_MAX_STACKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_MAX_STACKS)
}

fn stack_slots() -> &'static Arc<tokio::sync::Semaphore> {
    static SLOTS: std::sync::OnceLock<Arc<tokio::sync::Semaphore>> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        let networks = max_stacks() * Claim::OwnStack.networks() as usize;
        Arc::new(tokio::sync::Semaphore::new(networks))
    })
}

#[cfg(test)]
mod tests {
    use super::Claim;

    /// A tenant counts fewer networks than a stack of its own, and the shared stack none, so
    /// its tenants never wait for a slot it holds.
    #[test]
    fn a_shared_stack_takes_no_slot_and_a_tenant_less_than_a_stack() {
        assert_eq!(Claim::SharedStack.networks(), 0);
        assert!(Claim::Tenant.networks() < Claim::OwnStack.networks());
    }
}
