//! hearth's bodies (contract §3): the console sends them over the unix socket.

use serde::{Deserialize, Serialize};

use crate::tier::TierProfile;

crate::wire_enum! {
    /// Where a workspace is in its lifecycle (contract §3).
    pub enum Status {
        Provisioning = "provisioning",
        Ready = "ready",
        Failed = "failed",
        TearingDown = "tearing_down",
        TierTornDown = "tier_torn_down",
    }
}

crate::wire_enum! {
    /// Which driver provisions workspaces; the name used on the command line and in
    /// `DeploymentRef.driver`.
    pub enum DriverKind {
        LocalDocker = "local-docker",
        Process = "process",
    }
}

/// `POST /v1/provision` body.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvisionRequest {
    pub slug: String,
    pub profile: TierProfile,
    /// The caller's id for this provision (the console's: a random one per provision).
    /// hearth reports it on the workspace's status ([`StatusReport::attempt`]) for as long as
    /// the workspace is this provision's, so a caller whose call went unanswered can tell its
    /// own provision from the workspace's previous life.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<String>,
}

/// `POST /v1/teardown` body.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeardownRequest {
    pub slug: String,
}

/// One running service of a workspace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRef {
    pub name: String,
    pub image: String,
    /// `http://127.0.0.1:<port>`: reachable from the host running hearth.
    pub endpoint: String,
}

/// What hearth answers to a provision: the deployment and where it stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentRef {
    pub slug: String,
    pub tier: String,
    pub driver: DriverKind,
    pub status: Status,
    pub services: Vec<ServiceRef>,
    /// Why provisioning failed (only with `status: failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `GET /v1/status/{slug}` and `POST /v1/teardown` answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub slug: String,
    pub status: Status,
    /// The last error hearth saw for this workspace (failed provision, missed teardown deadline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The [`ProvisionRequest::attempt`] this workspace was provisioned under; `None` when the
    /// provision gave none, or when hearth found the workspace on rediscovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<String>,
    /// Where this workspace's lifecycle time went so far (an extension of the contract, for
    /// `rocky-e2e play`'s timing report).
    #[serde(default)]
    pub timings: DriverTimings,
}

/// Cumulative wall time of a workspace's driver work, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DriverTimings {
    /// Provision and teardown as a whole.
    pub driver_ms: f64,
    /// Of which: waiting for services' health routes.
    pub health_ms: f64,
}
