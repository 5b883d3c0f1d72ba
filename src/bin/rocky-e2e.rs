//! `rocky-e2e`: the command users run (contract §7).
//!
//! - `play [PATH...] [--tags EXPR] [--dry-run]`: runs the scenarios and prints each act, the
//!   chain, timings.
//! - `steps`: the step vocabulary, generated from the step definitions.
//! - `up --state-dir DIR`: a stack for manual use, until SIGINT/SIGTERM.
//! - `hatch verify FILE [--key KEYFILE] [--checkpoint SEAL…]`: checks a HATCH log's hash chain
//!   against its seal and against every checkpoint (an earlier copy of its seal).
//! - `hatch repair FILE [--key KEYFILE] [--checkpoint SEAL…]`: cuts a crash's tail back to the
//!   last sealed record, on the word of a seal it authenticated, never below a checkpoint.
//! - `snapshots summary`, `junit summary`, `junit merge`: Markdown and JUnit for reviewers.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rocky_e2e::runner as scenarios;
use rocky_e2e::topology::{self, Policy};

#[derive(Parser, Debug)]
#[command(
    name = "rocky-e2e",
    about = "rocky's end-to-end play and its tools",
    version
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the scenarios in features/ (or the given files/folders) on the best topology.
    Play {
        #[command(flatten)]
        run: scenarios::RunOptions,
    },
    /// List every step pattern with an example and where it is defined.
    Steps {
        /// Compare with this reference file instead of printing (CI: features/STEPS.md).
        #[arg(long)]
        check: Option<PathBuf>,
        /// Write the reference to this file.
        #[arg(long)]
        write: Option<PathBuf>,
        /// The folder holding the `.feature` files (default `./features`).
        #[arg(long)]
        features_dir: Option<PathBuf>,
    },
    /// Start hearth, console and worker for manual use; tear down on SIGINT/SIGTERM.
    Up {
        /// Where the stack keeps its socket, logs and `stack.json`.
        #[arg(long)]
        state_dir: PathBuf,
        /// The folder holding `tiers/` (default `./features`): the tier profiles hearth reads.
        #[arg(long)]
        features_dir: Option<PathBuf>,
    },
    /// HATCH log tools.
    Hatch {
        #[command(subcommand)]
        command: HatchCommand,
    },
    /// Snapshot tools for reviewers.
    Snapshots {
        #[command(subcommand)]
        command: SnapshotsCommand,
    },
    /// JUnit tools for reviewers.
    Junit {
        #[command(subcommand)]
        command: JunitCommand,
    },
}

#[derive(Subcommand, Debug)]
enum SnapshotsCommand {
    /// Markdown of every pending `*.snap.new`: the accepted chain and the new one side by
    /// side, aligned by act, with the command that accepts them.
    Summary {
        /// The snapshots folder (default `./snapshots`, beside `features/`).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum JunitCommand {
    /// A Markdown results table from a JUnit file.
    Summary {
        #[arg(default_value = "target/rocky-e2e/junit.xml")]
        file: PathBuf,
    },
    /// Merges the JUnit files of several shards into one (every `<testsuite>` kept).
    Merge {
        /// Where the merged file goes.
        #[arg(long)]
        out: PathBuf,
        /// The shards' files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum HatchCommand {
    /// Recompute the hash chain of a HATCH log, check it against its seal (`FILE.seal`) and
    /// name what is wrong: the first bad record, records cut from the tail, a rewrite, a
    /// missing seal, or (with --key) a forged one.
    Verify {
        file: PathBuf,
        /// The seal key (VAULT keyring YAML, `hatch_key_path` in stack.json): authenticates
        /// the seal. Without it the seal is compared but a forged one cannot be told apart.
        #[arg(long)]
        key: Option<PathBuf>,
        /// A checkpoint: a copy of this log's seal taken earlier and kept elsewhere. The log
        /// must extend it (same log id, at least its records, the same hash at its last
        /// record), which is what shows a rollback. Repeatable.
        #[arg(long = "checkpoint", value_name = "SEAL")]
        checkpoints: Vec<PathBuf>,
        /// How long to wait for the log's append lock (shared) while a live writer holds it;
        /// then fail, naming the writer. (`rocky::hatch::DEFAULT_LOCK_PATIENCE`.)
        #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = rocky::duration::parse)]
        lock_timeout: std::time::Duration,
    },
    /// Cut the tail a crash left beyond the seal (whole unsealed records, a torn last line)
    /// back to the last sealed record, saying what was cut. Only on a seal that authenticates
    /// under the key, at most `rocky::hatch::MAX_UNSEALED_RECORDS` whole records (what a
    /// crash can leave), never below a checkpoint; anything else is refused and nothing is cut.
    Repair {
        file: PathBuf,
        /// The seal key (`hatch_key_path` in stack.json); default `FILE.key` beside the log.
        /// Without a key the seal cannot be authenticated, and nothing is cut.
        #[arg(long)]
        key: Option<PathBuf>,
        /// A checkpoint (a copy of this log's seal kept elsewhere): nothing it witnessed is
        /// cut. Repeatable.
        #[arg(long = "checkpoint", value_name = "SEAL")]
        checkpoints: Vec<PathBuf>,
        /// How long to wait for the log's append lock (exclusive); then refuse, naming the
        /// holder.
        #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = rocky::duration::parse)]
        lock_timeout: std::time::Duration,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    rocky::logging::init("warn");
    match Args::parse().command {
        Command::Play { run } => play(run).await,
        Command::Steps {
            check,
            write,
            features_dir,
        } => match layout(features_dir.as_deref()) {
            Ok(()) => steps(check, write),
            Err(code) => code,
        },
        Command::Up {
            state_dir,
            features_dir,
        } => match layout(features_dir.as_deref()) {
            Err(code) => code,
            Ok(()) => match up(state_dir).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("rocky-e2e up: {e:#}");
                    ExitCode::FAILURE
                }
            },
        },
        Command::Snapshots {
            command: SnapshotsCommand::Summary { dir },
        } => snapshots_summary(dir),
        Command::Junit {
            command: JunitCommand::Summary { file },
        } => match std::fs::read_to_string(&file) {
            Ok(xml) => {
                print!("{}", rocky_e2e::report::markdown::junit_table(&xml));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("rocky-e2e: failed to read {}: {e}", file.display());
                ExitCode::FAILURE
            }
        },
        Command::Junit {
            command: JunitCommand::Merge { out, files },
        } => {
            let mut parts = Vec::new();
            for f in &files {
                match std::fs::read_to_string(f) {
                    Ok(xml) => parts.push(xml),
                    Err(e) => {
                        eprintln!("rocky-e2e: failed to read {}: {e}", f.display());
                        return ExitCode::FAILURE;
                    }
                }
            }
            match rocky_e2e::report::junit::merge(&parts) {
                Ok(xml) => match std::fs::write(&out, xml) {
                    Ok(()) => {
                        println!("merged {} files into {}", files.len(), out.display());
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("rocky-e2e: failed to write {}: {e}", out.display());
                        ExitCode::FAILURE
                    }
                },
                Err(e) => {
                    eprintln!("rocky-e2e: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Hatch { command } => hatch(command),
    }
}

/// The key given with `--key`, read only from a regular file (never blocking on a FIFO).
fn load_key(key: Option<&PathBuf>) -> Result<Option<rocky::vault::Keyring>, String> {
    key.map(|k| rocky::hatch::read_key(k)).transpose()
}

fn load_checkpoints(paths: &[PathBuf]) -> Result<Vec<rocky::hatch::Checkpoint>, String> {
    paths
        .iter()
        .map(|p| rocky::hatch::Checkpoint::load(p).map_err(|e| e.to_string()))
        .collect()
}

fn hatch(command: HatchCommand) -> ExitCode {
    match command {
        HatchCommand::Verify {
            file,
            key,
            checkpoints,
            lock_timeout,
        } => {
            let key = match load_key(key.as_ref()) {
                Ok(k) => k,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            };
            let checkpoints = match load_checkpoints(&checkpoints) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{}: {e}", file.display());
                    return ExitCode::FAILURE;
                }
            };
            match rocky::hatch::verify_against_within(
                &file,
                key.as_ref(),
                &checkpoints,
                lock_timeout,
            ) {
                Ok(s) => {
                    println!(
                        "ok: {} records, chain intact and sealed (last hash {}); seal {}; log id {}{}",
                        s.chain.records,
                        s.chain.last_hash,
                        if s.authenticated {
                            format!("authenticated under key id {}", s.seal.key_id)
                        } else {
                            format!(
                                "NOT authenticated (no --key): key id {} unchecked",
                                s.seal.key_id
                            )
                        },
                        s.seal.log_id,
                        match checkpoints.len() {
                            0 => String::new(),
                            n => format!("; extends {n} checkpoint(s)"),
                        }
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{}: {e}", file.display());
                    ExitCode::FAILURE
                }
            }
        }
        HatchCommand::Repair {
            file,
            key,
            checkpoints,
            lock_timeout,
        } => {
            let repaired = load_key(key.as_ref()).and_then(|key| {
                let checkpoints = load_checkpoints(&checkpoints)?;
                rocky::hatch::repair(&file, key.as_ref(), &checkpoints, lock_timeout)
            });
            match repaired {
                Ok(r) => {
                    println!("{}: {r}", file.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{}: {e}", file.display());
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn play(run: scenarios::RunOptions) -> ExitCode {
    let started = std::time::Instant::now();
    let dry = run.dry_run;
    let ok = scenarios::run(run, Policy::Best, scenarios::Selection::All).await;
    if !dry {
        rocky_e2e::say!("rocky-e2e play: wall time {:.2?}", started.elapsed());
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn steps(check: Option<PathBuf>, write: Option<PathBuf>) -> ExitCode {
    let (reference, problems) = scenarios::steps_reference();
    for p in &problems {
        eprintln!("warning: {p}");
    }
    if let Some(path) = check {
        if scenarios::reference_is_current(&path) {
            println!("{} is current", path.display());
            return ExitCode::SUCCESS;
        }
        eprintln!(
            "{} is out of date: regenerate it with `cargo run --bin rocky-e2e -- steps --write {}`",
            path.display(),
            path.display()
        );
        return ExitCode::FAILURE;
    }
    if let Some(path) = write {
        if let Err(e) = std::fs::write(&path, reference) {
            eprintln!("failed to write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {}", path.display());
        return ExitCode::SUCCESS;
    }
    print!("{reference}");
    ExitCode::SUCCESS
}

/// The Markdown of the pending snapshot changes on stdout (what a pull request shows, so no
/// absolute path in it); on stderr, the folder it read. A missing folder is an error outside a
/// checkout, and nothing pending in a checkout (`features/` here) that has no snapshot yet.
fn snapshots_summary(dir: Option<PathBuf>) -> ExitCode {
    use rocky_e2e::report::markdown::{NOTHING_PENDING, pending_snapshots, snapshot_summary};
    let cwd = match std::env::current_dir() {
        Ok(cwd) => cwd,
        Err(e) => {
            eprintln!("rocky-e2e: failed to read the current directory: {e}");
            return ExitCode::from(2);
        }
    };
    let given = dir.is_some();
    let dir = cwd.join(dir.unwrap_or_else(|| PathBuf::from("snapshots")));
    if !dir.is_dir() {
        if !given && cwd.join("features").is_dir() {
            eprintln!(
                "rocky-e2e: no snapshots folder at {} (this checkout has no snapshot yet): nothing pending",
                dir.display()
            );
            println!("{NOTHING_PENDING}");
            return ExitCode::SUCCESS;
        }
        eprintln!(
            "rocky-e2e: no snapshots folder at {}: run rocky-e2e from a checkout (the folder holding features/ and snapshots/) or pass --dir DIR",
            dir.display()
        );
        return ExitCode::from(2);
    }
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    match pending_snapshots(&dir).and_then(|p| Ok((p.len(), snapshot_summary(&dir)?))) {
        Ok((n, markdown)) => {
            eprintln!(
                "rocky-e2e: {n} pending snapshot change(s) (*.snap.new) in {}",
                dir.display()
            );
            print!("{markdown}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rocky-e2e: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Fixes where features, tiers and snapshots are read from before anything starts, so a
/// command run outside a checkout says what to do instead of panicking later.
fn layout(features_dir: Option<&std::path::Path>) -> Result<(), ExitCode> {
    match rocky_e2e::layout::Layout::resolve(features_dir) {
        Ok(layout) => {
            rocky_e2e::layout::set(layout);
            Ok(())
        }
        Err(e) => {
            eprintln!("rocky-e2e: {e}");
            Err(ExitCode::from(2))
        }
    }
}

async fn up(state_dir: PathBuf) -> anyhow::Result<()> {
    let topology = topology::init(Policy::Best)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    println!("rocky-e2e {}", topology.description);
    std::fs::create_dir_all(&state_dir)?;
    let state_dir = std::fs::canonicalize(&state_dir)?;
    let options = topology.stack_options(state_dir.clone());
    let stack = rocky_e2e::stack::Stack::start(&options).await?;
    let info = serde_json::json!({
        "console_url": stack.console_url,
        "worker_url": stack.worker_url,
        "admin_token": stack.admin_token,
        "hatch_path": stack.hatch_path,
        "hatch_key_path": rocky::hatch::default_key_path(&stack.hatch_path),
        "hearth_socket": stack.hearth_socket,
        "driver": stack.driver.as_str(),
        "session": stack.session,
    });
    let path = state_dir.join("stack.json");
    write_private(&path, &serde_json::to_vec_pretty(&info)?)?;
    println!("stack up: {}", path.display());
    println!("  console  {}", stack.console_url);
    println!("  worker   {}", stack.worker_url);
    println!("  hatch    {}", stack.hatch_path.display());
    println!("Ctrl-C (SIGINT) or SIGTERM tears everything down.");
    rocky::shutdown::signalled().await;
    println!("tearing down…");
    // Through the console first, so HATCH records every run's end and every decommission;
    // whatever that leaves, hearth removes as it exits (and HATCH cannot record).
    let mut unrecorded = Vec::new();
    match stack.decommission_all().await {
        Ok(done) => {
            for d in done {
                match d.outcome {
                    Ok(()) => println!("  workspace {}: tier_torn_down", d.slug),
                    Err(e) => {
                        eprintln!(
                            "rocky-e2e up: workspace {}: the console's teardown failed: {e}; hearth removes it as it exits, and HATCH holds no hearth.decommissioned for it",
                            d.slug
                        );
                        unrecorded.push(d.slug);
                    }
                }
            }
        }
        Err(e) => {
            eprintln!(
                "rocky-e2e up: {e}; hearth removes its workspaces as it exits, and HATCH records none of those teardowns"
            );
            unrecorded.push("(every workspace)".to_owned());
        }
    }
    let result = stack.stop().await;
    let _ = std::fs::remove_file(&path);
    result.map_err(|e| anyhow::anyhow!(e))?;
    if !unrecorded.is_empty() {
        anyhow::bail!(
            "nothing is left running, but HATCH does not record the teardown of: {}",
            unrecorded.join(", ")
        );
    }
    println!("done: nothing left running");
    Ok(())
}

/// `stack.json` holds the admin token: readable by its owner only, written via a new file
/// (`O_EXCL`, no symlink followed) renamed into place.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    rocky::secure_file::write_private(path, bytes)
}
