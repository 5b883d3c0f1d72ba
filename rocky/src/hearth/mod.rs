//! hearth: the provisioner daemon. It owns workspace lifecycles and nothing else.
//!
//! A workspace moves `provisioning → ready | failed`, then `tearing_down → tier_torn_down`.
//! hearth serves HTTP/1.1 + JSON on a unix socket (mode 0600: whoever can open the socket can
//! create containers, so only its owner may). The routes are in [`server`]; the console talks to
//! them through [`client`]. Drivers do the real work: [`docker`] (`local-docker`, via bollard) and
//! [`process`] (the tier's services as local child processes of the stand-in program).
//! [`lock`] makes sure one hearth serves a socket (and a session), decided before anything is
//! touched.

pub mod driver;
pub mod lock;
pub mod server;
pub mod socket;

pub use crate::api::hearth::{
    DeploymentRef, DriverKind, DriverTimings, ProvisionRequest, ServiceRef, Status, StatusReport,
    TeardownRequest,
};
pub use crate::client::hearth as client;
pub use crate::docker::labels;
