//! Chain assertions and the gap report.
//!
//! Every assertion on the HATCH chain in the framework goes through here. When the observed
//! chain differs from the expected one, the [`GapReport`] shows both side by side, aligned by
//! act, marks the first missing or unexpected event, names its act, and lists the evidence the
//! harness collected from the stack, so a red CI run says what broke without reading logs.
//!
//! - `act`: the six acts of the play and the act of each event kind.
//! - `expect`: expected chains ([`ExpectedChain`]) and their patterns.
//! - `gap`: the comparison ([`check`], [`check_counts`], [`check_never`]) and its result.
//! - `report`: the gap report as text.
//! - `seal_check`: every scenario's log verified (chain, seal, key, checkpoint) before it passes.

mod act;
mod expect;
mod gap;
pub mod report;
pub mod seal_check;

pub use act::Act;
pub use expect::{Expectation, ExpectedChain, KindPattern};
pub use gap::{Evidence, Gap, GapReport, Mode, Row, check, check_counts, check_never, kinds};
