//! Harness lines for people: on stdout, or on stderr when stdout carries libtest JSON
//! (`--format json`), so a machine reading stdout sees only JSON.

use std::sync::atomic::{AtomicBool, Ordering};

/// Set in `--format json` runs: harness lines then go to stderr so stdout stays JSON.
pub static STDOUT_IS_JSON: AtomicBool = AtomicBool::new(false);

/// True when stdout carries libtest JSON.
pub fn stdout_is_json() -> bool {
    STDOUT_IS_JSON.load(Ordering::Relaxed)
}

/// Prints a harness line: stdout normally, stderr when stdout carries libtest JSON.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        if $crate::say::stdout_is_json() {
            eprintln!($($arg)*);
        } else {
            println!($($arg)*);
        }
    };
}
