//! Typed clients, one beside each server (mini-redis keeps `clients/` beside `server.rs`): the
//! console uses [`hearth`], the harness and people use [`console`].

pub mod console;
pub mod hearth;

pub use console::ConsoleClient;
pub use hearth::HearthClient;
