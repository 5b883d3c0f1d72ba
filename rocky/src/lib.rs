//! rocky: the services the e2e play drives, and the wire contract between them.
//!
//! The actors of the play, each in one module (`docs/contract.md` has the wire details):
//!
//! - [`hearth`]: the provisioner daemon on a unix socket, with its drivers.
//! - [`console`]: the HTTP API users call; writes the HATCH log.
//! - [`worker`]: `ralph serve`, the RALPH loop streaming KAHN frames.
//! - [`auth`]: LocalAuth, tokens to principals and roles.
//! - [`vault`]: the keyring and the HMAC bearer between console and worker.
//! - [`hatch`]: the HATCH audit log: events, records, the writer and the verifier.
//! - [`kahn`]: KAHN frames and their strict `kahn/1` validation.
//! - [`tier`], [`slug`]: tier profiles and workspace names.
//! - [`cli`]: the command lines of `hearth`, `console` and `ralph`, parsed by the binaries and
//!   built by whoever starts them.
//! - [`api`]: the request and response bodies of every route; [`client`]: typed clients for
//!   hearth and the console, used by the console itself and by the harness.
//!
//! Shared plumbing: [`http`] (error body, serving), [`docker`] (the engine: connection, labels,
//! sweeps), [`names`] (enums with wire names), [`clock`], [`duration`], [`ids`], [`logging`],
//! [`shutdown`], [`secure_file`] (private files: keys, seals, tokens, state).

pub mod api;
pub mod auth;
pub mod cli;
pub mod client;
pub mod clock;
pub mod console;
pub mod docker;
pub mod duration;
pub mod hatch;
pub mod hearth;
pub mod http;
pub mod ids;
pub mod kahn;
pub mod logging;
pub mod names;
pub mod retention;
pub mod secure_file;
pub mod shutdown;
pub mod slug;
pub mod sse;
pub mod tier;
pub mod vault;
pub mod worker;
pub mod worker_limits;
