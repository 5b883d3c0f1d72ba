//! Failing closed when the HATCH append of a lifecycle action fails (contract §2): the action
//! is refused with 503 `audit_unavailable` and undone, so no half-state outlives the refusal.

use crate::api::hearth::Status;

use super::{Console, WorkspaceView};

/// Gives back a slug reserved for a provision that was refused before hearth was called:
/// the entry it replaced (a torn-down or failed workspace) comes back, or the slug is free.
pub(super) fn release(console: &Console, slug: &str, previous: Option<WorkspaceView>) {
    let mut ws = console.workspaces.lock().expect("console state lock");
    match previous {
        Some(p) => {
            ws.insert(slug.to_owned(), p);
        }
        None => {
            ws.remove(slug);
        }
    }
}

/// Tears down a workspace hearth provisioned but whose `hearth.provisioned` record could not
/// be written; the console's status then mirrors what hearth reports.
pub(super) async fn roll_back_provisioning(console: &Console, slug: &str) {
    let status = match console
        .config
        .hearth
        .teardown(slug, console.config.deadlines.teardown)
        .await
    {
        Ok(report) => report.status,
        Err(e) => {
            tracing::error!(
                "rolling back {slug} after a failed audit append: teardown failed: {e}"
            );
            Status::Failed
        }
    };
    let mut ws = console.workspaces.lock().expect("console state lock");
    if let Some(w) = ws.get_mut(slug) {
        w.status = status;
    }
}
