//! A running stack: hearth spawned as a binary on its unix socket, plus the console and the
//! worker, either as in-process servers on loopback listeners (embedded topology) or each in
//! its own container on a network made for the stack (container topology, see
//! [`crate::containers`]). The harness, `rocky-e2e play` and `rocky-e2e up` all start stacks
//! through here.
//!
//! Faults of the failure drill are options of the stack (a wrong worker secret, a drifting
//! KAHN encoder, a hearth search path without hearth), so they hit the real components in
//! either topology.
//!
//! - `running`: the [`Stack`] while it runs: started, faulted, stopped.
//! - `options`: what shapes a stack ([`StackOptions`], [`Services`]) and why it fails to start.
//! - `hearth`: spawning hearth, waiting for its ready line, asking it to exit.
//! - `embedded`: the console and the worker as servers of this process.
//! - `containerized`: the console and the worker as containers (through [`crate::containers`]).
//! - [`processes`]: the session's processes, found from outside hearth by the marker hearth is
//!   started with; [`leftovers`]: what of a workspace or a session remains, and removing it.
//! - [`shared`]: the stacks scenarios that fault no service share, one per configuration;
//!   [`tenant`]: one scenario's part of a shared stack (its workspaces' names there).

mod containerized;
mod embedded;
mod hearth;
pub mod leftovers;
mod options;
pub mod processes;
mod running;
pub mod scratch;
pub mod shared;
pub mod tenant;

pub use hearth::locate_hearth;
pub use leftovers::{Cleanup, cleanup};
pub use options::{Services, StackError, StackOptions};
pub use running::{Decommission, Stack};
pub use shared::StackRef;
pub use tenant::Tenant;
