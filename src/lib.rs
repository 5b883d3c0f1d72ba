//! rocky-e2e: the six-act play (provision → RALPH → teardown) asserted through the HATCH chain.
//!
//! Each actor of the seed lives in one module, named as the seed names it.

pub mod auth;
pub mod chain;
pub mod clock;
pub mod console;
pub mod containers;
pub mod duration;
pub mod hatch;
pub mod hearth;
pub mod ids;
pub mod images;
pub mod kahn;
pub mod logging;
pub mod redact;
pub mod shutdown;
pub mod slug;
pub mod stack;
pub mod tier;
pub mod vault;
pub mod worker;
