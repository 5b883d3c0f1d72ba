//! Typed clients, one beside each server (mini-redis keeps `clients/` beside `server.rs`): the
//! console uses [`hearth`] and [`worker`], the harness and people use [`console`].

pub mod console;
pub mod hearth;
pub mod worker;

pub use console::ConsoleClient;
pub use hearth::HearthClient;
pub use worker::WorkerClient;
