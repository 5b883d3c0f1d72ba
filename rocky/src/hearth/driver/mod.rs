//! Drivers do hearth's real work: making a workspace's services exist and removing them.
//! hearth's state machine ([`super::server`]) is generic over [`Driver`], so a driver never
//! sees another driver's deployments.
//!
//! - [`docker`]: `local-docker`, a private bridge network plus a container per service.
//! - [`process`]: each service a local child process of the stand-in program.
//! - [`health`]: waiting for a service's health route, shared by both.

pub mod docker;
pub mod health;
pub mod process;

use std::future::Future;
use std::time::Duration;

use crate::api::hearth::{DriverKind, ServiceRef};
use crate::tier::TierProfile;

/// What a driver made for one workspace.
pub struct Provisioned<D> {
    /// Where each service answers.
    pub services: Vec<ServiceRef>,
    /// Of the provisioning time, how long went to waiting for health routes.
    pub health: Duration,
    /// Exactly what teardown must undo.
    pub deployment: D,
}

/// One health route a rediscovered workspace must answer before hearth reports it `ready`.
#[derive(Clone, Debug)]
pub struct HealthCheck {
    /// The service it belongs to, for the error.
    pub service: String,
    /// `host:port`.
    pub addr: String,
    /// The route, e.g. `/healthz`.
    pub path: String,
}

/// One workspace an earlier hearth left, as rediscovery found it.
pub enum Found<D> {
    /// Every service exists and runs: adopted `provisioning` until `checks` all answer (then
    /// `ready`), or torn down and `failed` if they do not within the health deadline.
    Settling {
        reference: crate::api::hearth::DeploymentRef,
        deployment: D,
        checks: Vec<HealthCheck>,
    },
    /// Left incomplete by an owner that is gone: what remained was removed; reported `failed`.
    Failed {
        reference: crate::api::hearth::DeploymentRef,
    },
    /// Owned by a live process that is not this hearth (another host or PID namespace of the
    /// same session): left untouched; hearth cannot place it and answers 503 for it.
    Held { slug: String, reason: String },
}

/// A way of running a tier's services.
pub trait Driver: Send + Sync + 'static {
    /// What a provision made: what teardown must undo.
    type Deployment: Send + 'static;

    /// The name hearth reports in `DeploymentRef.driver`.
    const KIND: DriverKind;

    /// Starts every service of `profile` for workspace `slug` and waits until each answers its
    /// health route within `health_timeout`. On failure nothing of the workspace remains.
    fn provision(
        &self,
        slug: &str,
        profile: &TierProfile,
        health_timeout: Duration,
    ) -> impl Future<Output = Result<Provisioned<Self::Deployment>, String>> + Send;

    /// Stops and removes everything of `deployment`. The caller bounds it with the teardown
    /// deadline; on error or deadline the deployment is kept for a later attempt.
    fn teardown(
        &self,
        deployment: &mut Self::Deployment,
    ) -> impl Future<Output = Result<(), String>> + Send;

    /// Removes whatever of workspace `slug` exists that no handle names, found the driver's own
    /// way (the engine's labels, the state file): what a provision that ended without an
    /// answer made (it panicked or was cancelled, and its handle went with it), or anything a
    /// handle missed. hearth calls it before it reports a workspace `tier_torn_down`, so that
    /// status never lies. Returns what it removed (empty: nothing remained); `Err` when it
    /// cannot tell (the engine does not answer) or something of the workspace remains.
    /// The default is for drivers that make nothing a handle does not name.
    fn remove_remains(
        &self,
        slug: &str,
    ) -> impl Future<Output = Result<Vec<String>, String>> + Send {
        let _ = slug;
        async { Ok(Vec::new()) }
    }

    /// Workspaces an earlier hearth of this session left (found by the engine's labels or the
    /// driver's state file), each as [`Found`]. Work in flight is adopted, never removed: a
    /// workspace whose services all run is [`Found::Settling`] (hearth waits for their health
    /// routes); only what a gone owner left incomplete is removed ([`Found::Failed`]); what a
    /// live owner elsewhere holds is left alone ([`Found::Held`]). `Err` (the engine did not
    /// answer, the state file is unreadable): the view is incomplete and hearth tries again.
    fn rediscover(
        &self,
    ) -> impl Future<Output = Result<Vec<Found<Self::Deployment>>, String>> + Send {
        async { Ok(Vec::new()) }
    }

    /// Removes whatever of this hearth's may remain (hearth is exiting).
    fn sweep(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}
