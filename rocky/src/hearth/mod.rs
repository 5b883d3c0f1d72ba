//! hearth: the provisioner daemon. It owns workspace lifecycles and nothing else.
//!
//! A workspace moves `provisioning → ready | failed`, then `tearing_down → tier_torn_down`.
//! hearth serves HTTP/1.1 + JSON on a unix socket (mode 0600: whoever can open the socket can
//! create containers, so only its owner may). The routes are in [`server`]; the console talks to
//! them through [`client`]. Drivers do the real work: [`docker`] (`local-docker`, via bollard) and
//! [`process`] (the tier's services as local child processes of the stand-in program).

pub mod client;
pub mod docker;
pub mod process;
pub mod server;

use serde::{Deserialize, Serialize};

use crate::tier::TierProfile;

/// Where a workspace is in its lifecycle (contract §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Provisioning,
    Ready,
    Failed,
    TearingDown,
    TierTornDown,
}

impl Status {
    /// The wire name, e.g. `tier_torn_down`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Provisioning => "provisioning",
            Status::Ready => "ready",
            Status::Failed => "failed",
            Status::TearingDown => "tearing_down",
            Status::TierTornDown => "tier_torn_down",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Status> {
        [
            Status::Provisioning,
            Status::Ready,
            Status::Failed,
            Status::TearingDown,
            Status::TierTornDown,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which driver provisions workspaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DriverKind {
    #[serde(rename = "local-docker")]
    LocalDocker,
    #[serde(rename = "process")]
    Process,
}

impl DriverKind {
    /// The name used on the command line and in `DeploymentRef.driver`.
    pub fn as_str(self) -> &'static str {
        match self {
            DriverKind::LocalDocker => "local-docker",
            DriverKind::Process => "process",
        }
    }
}

impl std::str::FromStr for DriverKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "local-docker" => Ok(DriverKind::LocalDocker),
            "process" => Ok(DriverKind::Process),
            other => Err(format!(
                "unknown driver {other:?}: use local-docker or process"
            )),
        }
    }
}

/// `POST /v1/provision` body.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvisionRequest {
    pub slug: String,
    pub profile: TierProfile,
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

/// hearth's error body, the same shape as the console's.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// `{"code","message"}` inside [`ErrorBody`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

/// Labels every Docker object and process of a workspace carries (contract §1).
pub mod labels {
    pub const MANAGED_BY: &str = "rocky.managed-by";
    pub const MANAGED_BY_VALUE: &str = "rocky-e2e";
    pub const WORKSPACE: &str = "rocky.workspace";
    pub const SESSION: &str = "rocky.session";
    /// pid of the hearth that made the object: a reaper removes objects whose hearth is dead.
    pub const PID: &str = "rocky.pid";
}
