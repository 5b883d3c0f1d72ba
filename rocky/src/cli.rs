//! The services' command lines, each declared once: the binaries parse them (`clap`), and
//! whoever starts a service (the harness, the bench, tests) builds the same struct and turns
//! it into arguments with `to_args()`, so a flag is spelt only here. `Parser::parse_from` of
//! `to_args()` gives the struct back (tested below).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::hatch::SyncMode;
use crate::hearth::DriverKind;
use crate::vault;

/// `console --listen ADDR --hearth-socket PATH --worker-url URL --hatch FILE ...`: the HTTP
/// API (contract §4).
#[derive(clap::Parser, Clone, Debug, PartialEq, Eq)]
#[command(name = "console", about = "rocky's console API")]
pub struct ConsoleArgs {
    /// Address to listen on (port 0 picks one; the bound address is printed on stdout).
    #[arg(long)]
    pub listen: String,
    /// hearth's unix socket.
    #[arg(long)]
    pub hearth_socket: PathBuf,
    /// Base URL of `ralph serve`.
    #[arg(long)]
    pub worker_url: String,
    /// HATCH log (JSONL, append-only, mode 0600); sealed at `FILE.seal`.
    #[arg(long)]
    pub hatch: PathBuf,
    /// The seal key (VAULT keyring YAML; its active key id seals). Default `FILE.key`, created
    /// with a fresh secret when missing; keep it off the log's disk in production.
    #[arg(long)]
    pub hatch_key: Option<PathBuf>,
    /// When an append reaches the disk: `always` (fsync each), `batch` (group commit: concurrent
    /// appends share one fsync) or `none` (the OS page cache).
    #[arg(long, default_value = "batch")]
    pub hatch_sync: SyncMode,
    /// LocalAuth tokens file (YAML).
    #[arg(long)]
    pub tokens: PathBuf,
    /// VAULT keyring file (YAML); defaults to $ROCKY_VAULT_FILE.
    #[arg(long)]
    pub vault: Option<PathBuf>,
    /// Directory of tier profiles (`*.yaml`).
    #[arg(long, default_value = "features/tiers")]
    pub tiers: PathBuf,
    /// Deadline from run submission to its end (100ms to 3600s).
    #[arg(long, default_value = "60s", value_parser = parse_deadline)]
    pub run_timeout: Duration,
    /// Deadline for hearth to answer a teardown (100ms to 3600s; hearth enforces its own,
    /// shorter one inside).
    #[arg(long, default_value = "90s", value_parser = parse_deadline)]
    pub teardown_timeout: Duration,
}

impl ConsoleArgs {
    /// The console's defaults for everything but what it cannot do without.
    pub fn new(
        listen: impl Into<String>,
        hearth_socket: impl Into<PathBuf>,
        worker_url: impl Into<String>,
        hatch: impl Into<PathBuf>,
        tokens: impl Into<PathBuf>,
    ) -> ConsoleArgs {
        ConsoleArgs {
            listen: listen.into(),
            hearth_socket: hearth_socket.into(),
            worker_url: worker_url.into(),
            hatch: hatch.into(),
            hatch_key: None,
            hatch_sync: SyncMode::Batch,
            tokens: tokens.into(),
            vault: None,
            tiers: PathBuf::from("features/tiers"),
            run_timeout: Duration::from_secs(60),
            teardown_timeout: Duration::from_secs(90),
        }
    }

    /// The arguments (without the program name) that parse back into `self`.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut a = Args::default();
        a.value("--listen", &self.listen)
            .value("--hearth-socket", &self.hearth_socket)
            .value("--worker-url", &self.worker_url)
            .value("--hatch", &self.hatch)
            .optional("--hatch-key", self.hatch_key.as_ref())
            .value("--hatch-sync", self.hatch_sync.as_str())
            .value("--tokens", &self.tokens)
            .optional("--vault", self.vault.as_ref())
            .value("--tiers", &self.tiers)
            .duration("--run-timeout", self.run_timeout)
            .duration("--teardown-timeout", self.teardown_timeout);
        a.0
    }
}

/// `hearth --socket PATH [--driver local-docker|process] ...`: the provisioner daemon
/// (contract §3).
#[derive(clap::Parser, Clone, Debug, PartialEq, Eq)]
#[command(
    name = "hearth",
    about = "rocky's workspace provisioner, on a unix socket"
)]
pub struct HearthArgs {
    /// Unix socket to serve on (created with mode 0600). `<socket>.lock` beside it is held for
    /// hearth's life: a second hearth on the socket exits at once, naming the holder's pid.
    #[arg(long)]
    pub socket: PathBuf,
    /// Which driver provisions workspaces.
    #[arg(long, default_value = "local-docker")]
    pub driver: DriverKind,
    /// Deadline for a whole teardown (100ms to 3600s); past it the workspace stays
    /// `tearing_down`.
    #[arg(long, default_value = "30s", value_parser = parse_deadline)]
    pub teardown_timeout: Duration,
    /// Deadline for a workspace's services to become healthy (100ms to 3600s).
    #[arg(long, default_value = "30s", value_parser = parse_deadline)]
    pub health_timeout: Duration,
    /// Session id written on every Docker object (`rocky.session`); random when omitted. One
    /// hearth per session too: its lock is `$TMPDIR/rocky-hearth-<uid>/session-<id>.lock`.
    #[arg(long)]
    pub session: Option<String>,
    /// The stand-in program the `process` driver runs for every service.
    #[arg(long)]
    pub standin_bin: Option<PathBuf>,
    /// Exit (tearing everything down) when stdin closes: the parent went away.
    #[arg(long)]
    pub exit_on_stdin_eof: bool,
    /// The process that keeps this session (started hearth and restarts it), in hearth's PID
    /// namespace; named on every Docker object (`rocky.keeper.pid`). While it lives, no sweep
    /// removes the session's objects, even with hearth killed: the next hearth adopts them.
    #[arg(long)]
    pub keeper_pid: Option<u32>,
}

impl HearthArgs {
    /// hearth's defaults on `socket`.
    pub fn new(socket: impl Into<PathBuf>) -> HearthArgs {
        HearthArgs {
            socket: socket.into(),
            driver: DriverKind::LocalDocker,
            teardown_timeout: Duration::from_secs(30),
            health_timeout: Duration::from_secs(30),
            session: None,
            standin_bin: None,
            exit_on_stdin_eof: false,
            keeper_pid: None,
        }
    }

    /// The arguments (without the program name) that parse back into `self`.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut a = Args::default();
        a.value("--socket", &self.socket)
            .value("--driver", self.driver.as_str())
            .duration("--teardown-timeout", self.teardown_timeout)
            .duration("--health-timeout", self.health_timeout)
            .optional("--session", self.session.as_ref())
            .optional("--standin-bin", self.standin_bin.as_ref())
            .flag("--exit-on-stdin-eof", self.exit_on_stdin_eof)
            .optional("--keeper-pid", self.keeper_pid.map(|p| p.to_string()));
        a.0
    }
}

/// `ralph …`: the RALPH worker's command line.
#[derive(clap::Parser, Clone, Debug, PartialEq, Eq)]
#[command(name = "ralph", about = "rocky's RALPH worker")]
pub struct RalphArgs {
    #[command(subcommand)]
    pub command: RalphCommand,
}

/// What `ralph` does.
#[derive(clap::Subcommand, Clone, Debug, PartialEq, Eq)]
pub enum RalphCommand {
    /// Serve runs over HTTP.
    Serve(ServeArgs),
}

/// `ralph serve --listen ADDR ...` (contract §5).
#[derive(clap::Args, Clone, Debug, PartialEq, Eq)]
pub struct ServeArgs {
    /// Address to listen on, e.g. 127.0.0.1:7001 (port 0 picks a free one; the bound
    /// address is printed on stdout).
    #[arg(long)]
    pub listen: String,
    /// VAULT keyring file (YAML); defaults to $ROCKY_VAULT_FILE.
    #[arg(long)]
    pub vault: Option<PathBuf>,
    /// Allowed bearer clock skew, seconds, both directions.
    #[arg(long, default_value_t = vault::DEFAULT_MAX_SKEW_SECS)]
    pub max_skew_secs: i64,
    /// The `schema` written into every KAHN frame (default `kahn/1`).
    #[arg(long)]
    pub kahn_schema: Option<String>,
    /// Write KAHN field FROM under the name TO (`FROM:TO`).
    #[arg(long, value_parser = parse_rename)]
    pub kahn_rename: Option<(String, String)>,
    /// How long a run may have no open event stream before it is cancelled, e.g. `30s`
    /// (100ms to 3600s: shorter would cancel a run between two reconnects; an open stream
    /// renews it).
    #[arg(long, default_value = "30s", value_parser = parse_deadline)]
    pub follow_lease: Duration,
}

impl ServeArgs {
    /// The worker's defaults, listening on `listen`.
    pub fn new(listen: impl Into<String>) -> ServeArgs {
        ServeArgs {
            listen: listen.into(),
            vault: None,
            max_skew_secs: vault::DEFAULT_MAX_SKEW_SECS,
            kahn_schema: None,
            kahn_rename: None,
            follow_lease: Duration::from_secs(30),
        }
    }

    /// The arguments of `ralph` (without the program name, `serve` first) that parse back
    /// into `RalphCommand::Serve(self)`.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut a = Args::default();
        a.0.push("serve".into());
        a.value("--listen", &self.listen)
            .optional("--vault", self.vault.as_ref())
            .value("--max-skew-secs", self.max_skew_secs.to_string())
            .optional("--kahn-schema", self.kahn_schema.as_ref())
            .optional(
                "--kahn-rename",
                self.kahn_rename
                    .as_ref()
                    .map(|(from, to)| format!("{from}:{to}")),
            )
            .duration("--follow-lease", self.follow_lease);
        a.0
    }
}

/// The shortest duration any flag takes: a deadline under it is missed by one loopback round
/// trip on a loaded machine.
pub const MIN_DEADLINE: Duration = Duration::from_millis(100);

/// The longest duration any flag takes: an hour is past every wait of this stack (a teardown,
/// a health route, a run of the mock model, a follow lease) and far below what a clock can
/// hold, so no deadline computed from a flag can overflow.
pub const MAX_DEADLINE: Duration = Duration::from_secs(3600);

/// Every duration flag of every binary: `MIN_DEADLINE..=MAX_DEADLINE`, refused by name at
/// start otherwise (`--health-timeout 18446744073709551615s` once started hearth and panicked
/// in its first provision). Units `ms`, `s`, `m`; the range is in each flag's `--help`.
fn parse_deadline(s: &str) -> Result<Duration, String> {
    crate::duration::parse_within(s, MIN_DEADLINE, MAX_DEADLINE)
}

/// `FROM:TO`, both non-empty.
fn parse_rename(s: &str) -> Result<(String, String), String> {
    match s.split_once(':') {
        Some((from, to)) if !from.is_empty() && !to.is_empty() => Ok((from.into(), to.into())),
        _ => Err(format!("expected FROM:TO, got {s:?}")),
    }
}

/// A command line being built, flag by flag.
#[derive(Default)]
struct Args(Vec<OsString>);

impl Args {
    fn value(&mut self, flag: &str, value: impl AsRef<std::ffi::OsStr>) -> &mut Args {
        self.0.push(flag.into());
        self.0.push(value.as_ref().to_owned());
        self
    }

    fn optional(&mut self, flag: &str, value: Option<impl AsRef<std::ffi::OsStr>>) -> &mut Args {
        if let Some(v) = value {
            self.value(flag, v);
        }
        self
    }

    fn duration(&mut self, flag: &str, d: Duration) -> &mut Args {
        self.value(flag, crate::duration::display(d))
    }

    fn flag(&mut self, flag: &str, on: bool) -> &mut Args {
        if on {
            self.0.push(flag.into());
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn parse<P: Parser>(program: &str, args: Vec<OsString>) -> P {
        P::try_parse_from(std::iter::once(OsString::from(program)).chain(args))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_console_command_line_parses_back_into_its_builder() {
        let plain = ConsoleArgs::new("127.0.0.1:0", "/s/hearth.sock", "http://w", "/h", "/t");
        assert_eq!(parse::<ConsoleArgs>("console", plain.to_args()), plain);
        let every = ConsoleArgs {
            hatch_key: Some("/k".into()),
            hatch_sync: SyncMode::Always,
            vault: Some("/v".into()),
            tiers: "/tiers".into(),
            run_timeout: Duration::from_millis(1500),
            teardown_timeout: Duration::from_secs(7),
            ..plain
        };
        assert_eq!(parse::<ConsoleArgs>("console", every.to_args()), every);
    }

    #[test]
    fn the_console_builder_has_the_parsers_defaults() {
        let parsed: ConsoleArgs = parse(
            "console",
            [
                "--listen",
                "a",
                "--hearth-socket",
                "b",
                "--worker-url",
                "c",
                "--hatch",
                "d",
                "--tokens",
                "e",
            ]
            .map(OsString::from)
            .to_vec(),
        );
        assert_eq!(parsed, ConsoleArgs::new("a", "b", "c", "d", "e"));
    }

    #[test]
    fn a_hearth_command_line_parses_back_into_its_builder() {
        let plain = HearthArgs::new("/s/hearth.sock");
        assert_eq!(parse::<HearthArgs>("hearth", plain.to_args()), plain);
        assert_eq!(
            parse::<HearthArgs>("hearth", vec!["--socket".into(), "/s/hearth.sock".into()]),
            plain
        );
        let every = HearthArgs {
            driver: DriverKind::Process,
            teardown_timeout: Duration::from_millis(300),
            health_timeout: Duration::from_secs(60),
            session: Some("s-1".into()),
            standin_bin: Some("/bin/standin".into()),
            exit_on_stdin_eof: true,
            keeper_pid: Some(4242),
            ..plain
        };
        assert_eq!(parse::<HearthArgs>("hearth", every.to_args()), every);
    }

    /// Every duration flag of every binary (found by its parser's type, so a new one is
    /// covered too) refuses at parse time what is out of `MIN_DEADLINE..=MAX_DEADLINE`, a value
    /// no clock can hold included, naming the range; and says the range in its `--help`.
    #[test]
    fn every_duration_flag_is_bounded_at_parse_time() {
        use clap::CommandFactory;
        let ralph = RalphArgs::command();
        let serve = ralph
            .find_subcommand("serve")
            .expect("ralph serve")
            .clone()
            .name("ralph serve");
        let binaries: [(clap::Command, &[&str]); 3] = [
            (HearthArgs::command(), &["--socket", "/s"]),
            (
                ConsoleArgs::command(),
                &[
                    "--listen",
                    "a",
                    "--hearth-socket",
                    "b",
                    "--worker-url",
                    "c",
                    "--hatch",
                    "d",
                    "--tokens",
                    "e",
                ],
            ),
            (serve, &["--listen", "a"]),
        ];
        let mut bounded = Vec::new();
        for (command, required) in binaries {
            let name = command.get_name().to_owned();
            let durations: Vec<String> = command
                .get_arguments()
                .filter(|a| a.get_value_parser().type_id() == std::any::TypeId::of::<Duration>())
                .map(|a| format!("--{}", a.get_long().expect("a long flag")))
                .collect();
            for flag in durations {
                let parse = |value: &str| {
                    let argv = std::iter::once(name.as_str())
                        .chain(required.iter().copied())
                        .chain([flag.as_str(), value]);
                    command.clone().try_get_matches_from(argv)
                };
                for refused in ["18446744073709551615s", "3601s", "61m", "99ms", "0s"] {
                    let e = parse(refused)
                        .map(|_| ())
                        .expect_err(&format!("{name} {flag} took {refused}"));
                    assert!(
                        e.to_string().contains("out of range (100ms..=3600s)")
                            && e.to_string().contains(&flag),
                        "{name} {flag} {refused}: {e}"
                    );
                }
                for taken in ["100ms", "3600s", "60m", "30s"] {
                    parse(taken).unwrap_or_else(|e| panic!("{name} {flag} {taken}: {e}"));
                }
                let arg = command
                    .get_arguments()
                    .find(|a| a.get_long() == flag.strip_prefix("--"))
                    .expect("the flag");
                let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
                assert!(
                    help.contains("100ms to 3600s"),
                    "{name} {flag}'s help does not say its range: {help}"
                );
                bounded.push(format!("{name} {flag}"));
            }
        }
        assert_eq!(
            bounded,
            [
                "hearth --teardown-timeout",
                "hearth --health-timeout",
                "console --run-timeout",
                "console --teardown-timeout",
                "ralph serve --follow-lease",
            ]
        );
    }

    #[test]
    fn a_worker_command_line_parses_back_into_its_builder() {
        let plain = ServeArgs::new("0.0.0.0:7000");
        let every = ServeArgs {
            vault: Some("/v".into()),
            max_skew_secs: 5,
            kahn_schema: Some("kahn/2".into()),
            kahn_rename: Some(("node_id".into(), "nodeId".into())),
            follow_lease: Duration::from_secs(2),
            ..plain.clone()
        };
        for serve in [plain.clone(), every] {
            assert_eq!(
                parse::<RalphArgs>("ralph", serve.to_args()),
                RalphArgs {
                    command: RalphCommand::Serve(serve)
                }
            );
        }
        assert_eq!(
            parse::<RalphArgs>(
                "ralph",
                vec!["serve".into(), "--listen".into(), "0.0.0.0:7000".into()]
            ),
            RalphArgs {
                command: RalphCommand::Serve(plain)
            }
        );
    }
}
