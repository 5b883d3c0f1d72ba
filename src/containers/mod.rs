//! containers: the console and the worker each in their own container, started with
//! testcontainers on a Docker network made for one stack (the container topology).
//!
//! Layout of one stack (`<s>` is its session id):
//!
//! - network `rocky-<s>_stack`: a bridge whose published ports bind 127.0.0.1 only
//!   (`com.docker.network.bridge.host_binding_ipv4`), since testcontainers cannot name a host
//!   IP for a port binding;
//! - container `rocky-<s>_worker`: `ralph serve` on port 8080, not published; the console (and
//!   the host) reach it at its IP address on the network, so no DNS is involved (the image is
//!   `FROM scratch`: no resolver configuration);
//! - container `rocky-<s>_console`: the console on port 8080, published on a random
//!   127.0.0.1 port for the harness. The stack's work directory is bind-mounted at the same
//!   path, so hearth's unix socket, the HATCH log, the tokens and the VAULT file have the same
//!   paths inside and outside; so has the tiers directory (read-only). The worker only gets
//!   its own VAULT file, read-only.
//!
//! Both run as the owner of the work directory, so every file they write there stays the
//! harness's to read and delete. Every object carries `rocky.managed-by`, `rocky.session`,
//! `rocky.pid` (this process: a run killed with SIGKILL leaves objects whose pid is dead, and
//! [`rocky::docker::sweep::sweep_stale`] removes them at the next start) and
//! `rocky.component`. They carry no `rocky.workspace`: they belong to the stack, not to a
//! workspace, and must not match a workspace's "nothing remains" check.
//!
//! Readiness is the line each binary prints once its listener is bound (`console listening
//! on`, `ralph listening on`), within [`START_DEADLINE`]. Nothing is ever pulled: the image is
//! built locally before any container starts (testcontainers 0.25 pulls only when creating a
//! container answers 404, and has no reaper container).
//!
//! An engine's default address pools hold about 30 bridge networks (Docker 20.10: 15 /16s
//! and 16 /20s, the default bridge included), and every running stack takes one on top of
//! its workspaces' networks. So a process runs at most [`max_stacks`] container stacks at
//! once (a scenario on a shared stack counting for its workspaces' networks alone, the shared
//! stack for none: `slots`); a further one waits (up to [`SLOT_DEADLINE`]) for a slot.
//!
//! - `config`: the image both containers run and what one stack's containers need.
//! - `lifecycle`: starting the two containers on their network, their logs, stopping them.
//! - `logs`: the bounded buffer each container's output is captured in.
//! - `objects`: the names and labels of a stack's objects, and the queries that find and
//!   remove them (a failed start's leftovers, a killed run's stale objects).
//! - `slots`: how many container stacks this process runs at once.
//! - `error`: why the containers of a stack did not start.

mod config;
mod error;
mod lifecycle;
mod logs;
mod objects;
mod slots;

pub use config::{Config, ServiceImage};
pub use error::ContainerError;
pub use lifecycle::{SERVICE_PORT, START_DEADLINE, ServiceContainers};
pub use objects::{COMPONENT, object_name, remove_stack_objects, stale_objects};
pub use slots::{Claim, DEFAULT_MAX_STACKS, SLOT_DEADLINE, Slot, max_stacks, take_slot};
