//! Workspaces: the console's logic for provisioning and tearing down (the routes only parse,
//! authorise and call here). hearth owns each workspace's state machine; the console mirrors
//! what hearth says and never invents a status (contract §9).
//!
//! Each act is a short saga, oxidecomputer/omicron style: every forward step sits beside the
//! undo that runs when a later step is refused.
//!
//! Provision (detached from its caller, under the workspace's ops lock):
//!
//! | step | forward | undo |
//! | --- | --- | --- |
//! | reserve | the slug shows `provisioning` | [`Reservation::release`]: the entry it replaced comes back |
//! | record | `hearth.provisioning_started` | (refused: nothing was written) |
//! | make | hearth provisions; past the console's deadline it asks hearth ([`Console::follow_provision`]) | [`Console::roll_back_provisioning`]: hearth tears it down |
//! | record | `hearth.provisioned` (or `hearth.failed`, with hearth's reason) | (refused: undo *make*) |
//!
//! Teardown (detached, joined by concurrent DELETEs, under the ops lock):
//!
//! | step | forward | undo |
//! | --- | --- | --- |
//! | mark | the view shows `tearing_down`; the active runs are ended | [`Console::set_status`] back to the status it found |
//! | record | `hearth.decommission_started` | (refused: undo *mark*) |
//! | unmake | hearth tears down; the view mirrors hearth's answer | (hearth keeps what it could not remove) |

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use tokio::sync::{OwnedMutexGuard, watch};

use super::{Console, WorkspaceView, lost};
use crate::api::ErrorCode;
use crate::api::hearth::{DeploymentRef, StatusReport};
use crate::hatch::{Event, EventKind};
use crate::hearth::Status;
use crate::hearth::client::HearthError;
use crate::http::ApiError;
use crate::tier::TierProfile;

/// How often the console asks hearth about a provision past the console's own deadline.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// How a teardown ended, shared by every DELETE that joined it.
#[derive(Clone, Debug)]
pub(crate) struct Outcome(Result<(), ApiError>);

impl Outcome {
    fn ok() -> Outcome {
        Outcome(Ok(()))
    }

    fn of(e: ApiError) -> Outcome {
        Outcome(Err(e))
    }

    fn into_result(self) -> Result<(), ApiError> {
        self.0
    }
}

/// What a successful provision answers (201).
pub(crate) type Provisioned = DeploymentRef;

/// The workspace `slug` as the console shows it; 404 when it knows none.
pub(crate) fn workspace(console: &Console, slug: &str) -> Result<WorkspaceView, ApiError> {
    console
        .workspaces
        .lock()
        .expect("console state lock")
        .get(slug)
        .cloned()
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::NotFound,
                format!("no workspace {slug}"),
            )
        })
}

/// A slug held for one provision: its ops lock, and the entry it replaced.
struct Reservation {
    slug: String,
    /// Held until the provision settles: a DELETE or a run admission waits behind it.
    _ops: OwnedMutexGuard<()>,
    /// The torn-down or failed workspace this provision replaces (back on release).
    previous: Option<WorkspaceView>,
}

impl Reservation {
    /// Undo of *reserve*: the entry it replaced comes back, or the slug is free.
    fn release(self, console: &Console) {
        let mut ws = console.workspaces.lock().expect("console state lock");
        match self.previous {
            Some(p) => {
                ws.insert(self.slug.clone(), p);
            }
            None => {
                ws.remove(&self.slug);
            }
        }
    }
}

impl Console {
    /// The workspace `slug` as the console shows it, first learning what hearth has when the
    /// console knows no such workspace: a restarted console rebuilds its view from hearth, so
    /// a workspace made before the restart is found, not 404. 404 only when hearth has none
    /// either; 503 `rediscovering` when hearth cannot be asked (the console never invents a
    /// status, "gone" included).
    pub(crate) async fn known_workspace(&self, slug: &str) -> Result<WorkspaceView, ApiError> {
        if let Ok(w) = workspace(self, slug) {
            return Ok(w);
        }
        if let Err(e) = self.reconcile().await {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Rediscovering,
                format!(
                    "the console knows no workspace {slug} and cannot ask hearth whether it has one: {e}"
                ),
            ));
        }
        workspace(self, slug)
    }

    /// Provisions `slug` on `profile` for `who`: the whole saga, detached from the caller (a
    /// caller that hangs up ends its request, not the provision; the status settles).
    pub(crate) async fn provision(
        self: &Arc<Self>,
        slug: String,
        profile: TierProfile,
        who: String,
    ) -> Result<Provisioned, ApiError> {
        if workspace(self, &slug).is_err() {
            // Unknown here: a restarted console learns what hearth already has before deciding.
            if let Err(e) = self.reconcile().await {
                tracing::warn!("cannot rebuild the view from hearth: {e}");
            }
        }
        let reservation = self.reserve(&slug, &profile.name)?;
        let console = self.clone();
        let work = tokio::spawn(async move {
            console
                .provision_reserved(reservation, profile, who.as_str())
                .await
        });
        work.await.unwrap_or_else(|e| Err(lost("provision", e)))
    }

    /// Forward step *reserve*: the slug shows `provisioning` and its ops lock is held, so two
    /// racing requests cannot both provision and a DELETE is ordered after this provision.
    fn reserve(&self, slug: &str, tier: &str) -> Result<Reservation, ApiError> {
        let mut ws = self.workspaces.lock().expect("console state lock");
        if let Some(existing) = ws.get(slug)
            && !matches!(existing.status, Status::TierTornDown | Status::Failed)
        {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::SlugInUse,
                format!("workspace {slug} exists with status {}", existing.status),
            ));
        }
        let ops = self.ops(slug).try_lock_owned().map_err(|_| {
            ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::SlugInUse,
                format!("workspace {slug} is busy"),
            )
        })?;
        let previous = ws.insert(
            slug.to_owned(),
            WorkspaceView {
                slug: slug.to_owned(),
                tier: tier.to_owned(),
                status: Status::Provisioning,
            },
        );
        Ok(Reservation {
            slug: slug.to_owned(),
            _ops: ops,
            previous,
        })
    }

    async fn provision_reserved(
        &self,
        reservation: Reservation,
        profile: TierProfile,
        who: &str,
    ) -> Result<Provisioned, ApiError> {
        let slug = reservation.slug.clone();
        // Forward step *record*; refused: undo *reserve*, nothing was provisioned.
        if let Err(refused) = self.audit(
            Event::new(EventKind::ProvisioningStarted, who)
                .workspace(&slug)
                .data(serde_json::json!({"tier": profile.name})),
        ) {
            reservation.release(self);
            return Err(refused);
        }
        // Forward step *make*: what hearth says the provision came to.
        let making = tokio::time::Instant::now();
        let dep = match self.make(&slug, &profile).await {
            Made::Ready(dep) => dep,
            Made::Failed(reason) => {
                self.set_status(&slug, Status::Failed);
                self.audit(
                    Event::new(EventKind::Failed, who)
                        .workspace(&slug)
                        .data(serde_json::json!({"reason": reason})),
                )?;
                return Err(ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    ErrorCode::ProvisioningFailed,
                    format!("provisioning {slug} failed: {reason}"),
                ));
            }
            Made::Unsettled(last) => {
                // hearth has not settled it within the console's deadline and the follow
                // after it: the view mirrors hearth (`provisioning`), nothing is recorded, and
                // a later read settles it (see [`Console::settle`]).
                self.set_status(&slug, Status::Provisioning);
                return Err(ApiError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    ErrorCode::ProvisioningUnsettled,
                    format!(
                        "hearth has not settled {slug} in the {} the console waited (last: {last}); its status follows hearth",
                        // What it waited: a hearth that hung up early is followed for
                        // `provision_follow` only, not the whole provision deadline too.
                        crate::duration::display(Duration::from_millis(
                            making.elapsed().as_millis() as u64
                        ))
                    ),
                ));
            }
        };
        // Forward step *record*; refused: undo *make*, an unrecorded workspace must not stay up.
        if let Err(refused) = self.record_provisioned(&dep, who) {
            self.roll_back_provisioning(&slug).await;
            return Err(refused);
        }
        self.set_status(&slug, Status::Ready);
        Ok(dep)
    }

    /// `hearth.provisioned` for `dep`.
    fn record_provisioned(&self, dep: &DeploymentRef, who: &str) -> Result<(), ApiError> {
        let services: Vec<&str> = dep.services.iter().map(|s| s.name.as_str()).collect();
        self.audit(
            Event::new(EventKind::Provisioned, who)
                .workspace(&dep.slug)
                .data(serde_json::json!({
                    "tier": dep.tier,
                    "driver": dep.driver.as_str(),
                    "services": services,
                })),
        )
    }

    /// hearth's provision of `slug`, and, when the console's own deadline passes first, what
    /// hearth then says: the console asks instead of recording a failure hearth never reported.
    async fn make(&self, slug: &str, profile: &TierProfile) -> Made {
        let deadline = self.config.deadlines.provision;
        // This provision's id: what hearth says after a deadline is about it only when hearth
        // reports it back (the workspace may have had an earlier life hearth still shows).
        let attempt = crate::ids::random_hex(8);
        // The call runs on its own task, and the deadline bounds the console's wait for the
        // answer, not the call: a provision given up before its request was written (a busy
        // machine) would never reach hearth, and the follow would find nothing. Past the
        // deadline the call goes on delivering it, for as long as the follow asks.
        let hearth = self.config.hearth.clone();
        let (call_slug, call_profile, call_attempt) =
            (slug.to_owned(), profile.clone(), attempt.clone());
        let call_deadline = deadline.saturating_add(self.config.deadlines.provision_follow);
        let mut call = tokio::spawn(async move {
            hearth
                .provision_as(
                    &call_slug,
                    &call_profile,
                    Some(&call_attempt),
                    call_deadline,
                )
                .await
        });
        let answer = match tokio::time::timeout(deadline, &mut call).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => return Made::Failed(format!("the provision call ended: {e}")),
            Err(_) => Err(HearthError::Deadline {
                route: "/v1/provision".into(),
                deadline,
            }),
        };
        match answer {
            Ok(dep) if dep.status == Status::Ready => Made::Ready(dep),
            Ok(dep) => Made::Failed(dep.error.unwrap_or_else(|| {
                format!("hearth answered status {} without an error", dep.status)
            })),
            // The request reached hearth (or may have): hearth goes on with it, so its answer,
            // not the console's clock, says how it went.
            Err(e @ (HearthError::Deadline { .. } | HearthError::Transport { .. })) => {
                tracing::warn!(slug, "no answer to the provision ({e}); asking hearth");
                self.follow_provision(slug, &attempt).await
            }
            Err(e) => Made::Failed(e.to_string()),
        }
    }

    /// Asks hearth (`GET /v1/status/{slug}`) until the provision settles, within
    /// [`super::Deadlines::provision_follow`]. Only hearth's 404 means the workspace is not
    /// there; a 503 (hearth rediscovering) or a call that fails is asked again.
    ///
    /// Until hearth reports this provision's `attempt`, what it says is not about it: the call
    /// may still be on its way, and hearth shows the workspace's previous life (torn down, or
    /// failed) or none. Once the follow's deadline has passed, hearth's word is taken as it is
    /// (a provision hearth never took did not make the workspace).
    async fn follow_provision(&self, slug: &str, attempt: &str) -> Made {
        let until = tokio::time::Instant::now() + self.config.deadlines.provision_follow;
        loop {
            let last = match self.hearth_says(slug, Some(attempt)).await {
                Said::Settled(made) => return made,
                Said::Pending(what) => what,
            };
            if tokio::time::Instant::now() >= until {
                return match self.hearth_says(slug, None).await {
                    Said::Settled(made) => made,
                    Said::Pending(_) => Made::Unsettled(last),
                };
            }
            tokio::time::sleep(FOLLOW_POLL).await;
        }
    }

    /// What hearth says about a provision of `slug` right now; with `attempt`, about that
    /// provision only (see [`Console::follow_provision`]).
    async fn hearth_says(&self, slug: &str, attempt: Option<&str>) -> Said {
        let call = self.config.deadlines.worker_call;
        let answer = self.config.hearth.status(slug, call).await;
        if let Some(ours) = attempt {
            match &answer {
                Ok(report) if report.attempt.as_deref().is_some_and(|a| a != ours) => {
                    return Said::Pending(format!(
                        "hearth has not taken this provision yet (it reports the workspace's previous life: {})",
                        report.status
                    ));
                }
                Err(HearthError::Refused { status: 404, .. }) => {
                    return Said::Pending(
                        "hearth has not taken this provision yet (it knows no such workspace)"
                            .into(),
                    );
                }
                _ => {}
            }
        }
        match answer {
            Ok(StatusReport {
                status: Status::Provisioning,
                ..
            }) => Said::Pending("hearth status provisioning".into()),
            Ok(StatusReport {
                status: Status::Ready,
                ..
            }) => match self.config.hearth.list(call).await {
                Ok(all) => match all.into_iter().find(|d| d.slug == slug) {
                    Some(dep) if dep.status == Status::Ready => Said::Settled(Made::Ready(dep)),
                    Some(dep) => Said::Pending(format!("hearth lists it {}", dep.status)),
                    None => Said::Pending("hearth lists no such workspace".into()),
                },
                Err(e) => Said::Pending(e.to_string()),
            },
            Ok(StatusReport {
                status: Status::Failed,
                error,
                ..
            }) => {
                Said::Settled(Made::Failed(error.unwrap_or_else(|| {
                    "hearth reports it failed, without a reason".into()
                })))
            }
            Ok(report) => Said::Settled(Made::Failed(format!(
                "hearth reports it {} before it was ever ready{}",
                report.status,
                report.error.map(|e| format!(": {e}")).unwrap_or_default()
            ))),
            Err(HearthError::Refused { status: 404, .. }) => Said::Settled(Made::Failed(format!(
                "hearth knows no workspace {slug}: the provision did not make it"
            ))),
            Err(e) => Said::Pending(e.to_string()),
        }
    }

    /// A workspace the console shows as `provisioning` with no provision in flight (its
    /// provision outlived the console's deadline and the follow after it) takes the status
    /// hearth now reports, recording what hearth settled on. Called by reads.
    pub(crate) async fn settle(&self, slug: &str) {
        if !workspace(self, slug).is_ok_and(|w| w.status == Status::Provisioning) {
            return;
        }
        // A provision (or a teardown) in flight settles it itself.
        let Ok(_ops) = self.ops(slug).try_lock_owned() else {
            return;
        };
        if !workspace(self, slug).is_ok_and(|w| w.status == Status::Provisioning) {
            return;
        }
        match self.hearth_says(slug, None).await {
            Said::Pending(_) => {}
            Said::Settled(Made::Ready(dep)) => {
                if self.record_provisioned(&dep, "system").is_err() {
                    self.roll_back_provisioning(slug).await;
                } else {
                    self.set_status(slug, Status::Ready);
                }
            }
            Said::Settled(Made::Failed(reason)) | Said::Settled(Made::Unsettled(reason)) => {
                self.set_status(slug, Status::Failed);
                let _ = self.audit(
                    Event::new(EventKind::Failed, "system")
                        .workspace(slug)
                        .data(serde_json::json!({"reason": reason})),
                );
            }
        }
    }

    /// Undo of *make*: tears down a workspace hearth provisioned whose `hearth.provisioned`
    /// record could not be written; the view then mirrors what hearth reports.
    async fn roll_back_provisioning(&self, slug: &str) {
        let report = self
            .config
            .hearth
            .teardown(slug, self.config.deadlines.teardown)
            .await;
        let status = match report {
            Ok(report) => report.status,
            Err(e) => {
                tracing::error!(
                    "rolling back {slug} after a failed audit append: teardown failed: {e}"
                );
                match self
                    .config
                    .hearth
                    .status(slug, self.config.deadlines.worker_call)
                    .await
                {
                    Ok(report) => report.status,
                    Err(HearthError::Refused { status: 404, .. }) => Status::TierTornDown,
                    // Unknown: it must not admit runs unrecorded. `failed` refuses them and
                    // lets the slug be provisioned again; a later teardown settles it.
                    Err(_) => Status::Failed,
                }
            }
        };
        self.set_status(slug, status);
    }

    /// Tears down `slug` for `who`, or joins the teardown in flight and shares its result.
    pub(crate) async fn teardown(
        self: &Arc<Self>,
        slug: &str,
        who: String,
    ) -> Result<(), ApiError> {
        self.known_workspace(slug).await?;
        let mut rx = {
            let mut teardowns = self.teardowns.lock().expect("console teardown lock");
            match teardowns.get(slug) {
                // A teardown is in flight: join it and share its result.
                Some(rx) => rx.clone(),
                None => {
                    let current = workspace(self, slug)?;
                    if current.status == Status::TierTornDown {
                        // Idempotent: a DELETE that lands just after another finished shares
                        // its result; nothing happens, so nothing is recorded.
                        return Ok(());
                    }
                    let (tx, rx) = watch::channel(None);
                    teardowns.insert(slug.to_owned(), rx.clone());
                    // Detached: it runs to its end whoever hangs up.
                    tokio::spawn(self.clone().teardown_work(slug.to_owned(), who, tx));
                    rx
                }
            }
        };
        rx.wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|o| o.clone())
            .unwrap_or_else(|| {
                Outcome::of(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorCode::Internal,
                    format!("the teardown of {slug} ended without an answer"),
                ))
            })
            .into_result()
    }

    /// One teardown: after the provision or run admission in flight (the ops lock), end the
    /// workspace's active runs, then record `hearth.decommission_started` and call hearth.
    async fn teardown_work(
        self: Arc<Self>,
        slug: String,
        who: String,
        done: watch::Sender<Option<Outcome>>,
    ) {
        let ops = self.ops(&slug);
        let guard = ops.lock_owned().await;
        // Forward step *mark*, remembering what it found for its undo.
        let found = workspace(&self, &slug).map(|w| w.status);
        self.set_status(&slug, Status::TearingDown);
        super::runs::cancel_workspace_runs(&self, &slug).await;
        // A workspace hearth no longer knows (a `failed` one after a hearth restart: nothing
        // of it was left to rediscover) is forgotten without a record: a teardown that begins
        // is one that can end, so the log never holds a decommission that never ends. Only a
        // 404 means gone; any other answer goes on to the recorded teardown.
        if let Err(HearthError::Refused { status: 404, .. }) = self
            .config
            .hearth
            .status(&slug, self.config.deadlines.worker_call)
            .await
        {
            drop(guard);
            self.teardowns
                .lock()
                .expect("console teardown lock")
                .remove(&slug);
            done.send_replace(Some(self.forget(&slug)));
            return;
        }
        let (outcome, shown) = match self
            .audit(Event::new(EventKind::DecommissionStarted, who.as_str()).workspace(&slug))
        {
            // Undo of *mark*: hearth is not called; the workspace keeps the status it had.
            Err(refused) => (Outcome::of(refused), found.ok()),
            Ok(()) => self.unmake(&slug, &who, found.ok()).await,
        };
        // The status the teardown leads to shows once the workspace is free: a caller that
        // sees `tier_torn_down` (or the status restored) finds every record of the teardown
        // in the log and can provision the slug again at once.
        // Under the teardowns lock, so a DELETE either joins this teardown or finds the status
        // it led to, never neither.
        drop(guard);
        {
            let mut teardowns = self.teardowns.lock().expect("console teardown lock");
            if let Some(status) = shown {
                self.set_status(&slug, status);
            }
            teardowns.remove(&slug);
        }
        done.send_replace(Some(outcome));
    }

    /// The console mirrors a workspace hearth knows nothing of by forgetting it, so every later
    /// DELETE is a 404 too.
    fn forget(&self, slug: &str) -> Outcome {
        self.workspaces
            .lock()
            .expect("console state lock")
            .remove(slug);
        Outcome::of(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!("hearth knows no workspace {slug}: nothing of it is left to tear down"),
        ))
    }

    /// Forward step *unmake*: hearth's half of a recorded teardown and its record; the outcome
    /// and the status it leads to (shown by the caller once the workspace is free). `found` is
    /// the status before the teardown, kept when hearth cannot say.
    async fn unmake(
        &self,
        slug: &str,
        who: &str,
        found: Option<Status>,
    ) -> (Outcome, Option<Status>) {
        let report = self
            .config
            .hearth
            .teardown(slug, self.config.deadlines.teardown)
            .await;
        match report {
            Ok(report) if report.status == Status::TierTornDown => {
                // The tier is gone whatever the log says; the status is true either way, the
                // caller learns that the record is missing.
                let recorded = self.audit(
                    Event::new(EventKind::Decommissioned, who)
                        .workspace(slug)
                        .data(serde_json::json!({"status": Status::TierTornDown})),
                );
                let outcome = match recorded {
                    Ok(()) => Outcome::ok(),
                    Err(refused) => Outcome::of(refused),
                };
                (outcome, Some(Status::TierTornDown))
            }
            Ok(report) if report.status == Status::TearingDown => (
                Outcome::of(ApiError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    ErrorCode::TeardownTimeout,
                    format!(
                        "hearth status stays tearing_down: {}",
                        report
                            .error
                            .unwrap_or_else(|| "teardown deadline passed".into())
                    ),
                )),
                None,
            ),
            Ok(report) => (
                Outcome::of(ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    ErrorCode::TeardownFailed,
                    format!(
                        "hearth answered status {}: {}",
                        report.status,
                        report.error.unwrap_or_default()
                    ),
                )),
                Some(report.status),
            ),
            // hearth (restarted without it, or never had it) knows no such workspace: it is
            // gone. Only a 404 means gone: a 503 (hearth rediscovering) is an error below.
            Err(HearthError::Refused { status: 404, .. }) => (self.forget(slug), None),
            Err(e) => {
                // hearth did not say how the teardown went: the view takes what hearth says
                // now, or keeps what it was, and a later DELETE tries again.
                let now = match self
                    .config
                    .hearth
                    .status(slug, self.config.deadlines.worker_call)
                    .await
                {
                    Ok(report) => Some(report.status),
                    Err(_) => found,
                };
                let outcome = Outcome::of(ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    ErrorCode::TeardownFailed,
                    format!("teardown of {slug} failed: {e}"),
                ));
                (outcome, now)
            }
        }
    }

    /// Sets the view of `slug` (if the console knows it) to `status`.
    fn set_status(&self, slug: &str, status: Status) {
        if let Some(w) = self
            .workspaces
            .lock()
            .expect("console state lock")
            .get_mut(slug)
        {
            w.status = status;
        }
    }
}

/// What a provision came to, as hearth reports it.
enum Made {
    Ready(DeploymentRef),
    /// hearth's reason.
    Failed(String),
    /// hearth had not settled it when the follow ended; the last thing it said.
    Unsettled(String),
}

/// One answer of hearth while the console follows a provision.
enum Said {
    Settled(Made),
    /// Not settled (or hearth could not say): what it answered.
    Pending(String),
}
