//! KAHN — the frames a RALPH run streams as SSE `data:` JSON (contract §6).
//!
//! One job a file:
//!
//! - `frame`: the `kahn/1` schema: frame types, node states and run statuses (the only
//!   place their wire names are spelled) and the [`Frame`] itself.
//! - `encode`: the worker-side encoder and its [`Encoding`] options (another schema string,
//!   a renamed field), through which the harness injects the failure drill's schema drift.
//! - `validate`: the console-side strict validator, whose rejection reasons end up in the
//!   gap report.
//! - `raw`: the zero-copy payload reader the validator works on.

mod encode;
mod frame;
mod raw;
mod validate;

#[cfg(test)]
mod fixtures;

pub use encode::{Encoding, encode, encode_with};
pub use frame::{Envelope, Field, Frame, FrameType, NodeState, RunStatus, SCHEMA};
pub use validate::{Rejection, validate};
