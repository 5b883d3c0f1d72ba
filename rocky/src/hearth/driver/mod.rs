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

    /// Workspaces an earlier hearth of this session left (found by the engine's labels or the
    /// driver's state file), with the reference hearth reports for each: `ready` with the
    /// deployment when every service is there and answers its health route; otherwise what was
    /// left is removed and the workspace is reported `failed` (with why) and no deployment.
    fn rediscover(
        &self,
    ) -> impl Future<Output = Vec<(crate::api::hearth::DeploymentRef, Option<Self::Deployment>)>> + Send
    {
        async { Vec::new() }
    }

    /// Removes whatever of this hearth's may remain (hearth is exiting).
    fn sweep(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}
