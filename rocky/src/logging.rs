//! One tracing setup for every binary: `ROCKY_LOG` (an `EnvFilter`) to stderr.

/// Installs the subscriber; `default` applies when `ROCKY_LOG` is unset.
pub fn init(default: &str) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("ROCKY_LOG").unwrap_or_else(|_| default.into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Logs usually land in files kept as evidence: colour codes only on a terminal.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
