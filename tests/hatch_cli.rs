//! `rocky-e2e hatch verify` and `hatch repair` from outside, as a user (and a black-box tester)
//! runs them (contract §2): the built binary on logs written by the real writer, every run
//! under a deadline, so a command that hangs fails the test instead of hanging it.
//!
//! - repair never cuts on the word of a seal it has not authenticated, never below a
//!   checkpoint, never more than a crash leaves; verify without a key recommends no repair;
//! - a FIFO as the log, the seal, the key or a checkpoint is refused, never blocked on;
//! - a live writer holding the append lock is waited for within `--lock-timeout`, then named;
//! - a hostile log (`seq = u64::MAX`) gets a verdict, never a panic.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rocky::hatch::{Event, EventKind, Hatch, Record, Seal, default_key_path, seal_path};

/// The longest any command may take before the test calls it hung.
const DEADLINE: Duration = Duration::from_secs(60);

/// What a run of `rocky-e2e` said.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// Runs `rocky-e2e ARGS`; kills it and fails the test if it has not exited by [`DEADLINE`].
fn rocky_e2e(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Ran {
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_rocky-e2e"))
        .args(args.iter().map(|a| a.as_ref()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rocky-e2e");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output: Output = match rx.recv_timeout(DEADLINE) {
        Ok(output) => output.expect("wait for rocky-e2e"),
        Err(_) => {
            // SAFETY: kill(2) on the child this test started (still unreaped: it is waited on).
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!(
                "rocky-e2e {args:?} hung for {DEADLINE:?}",
                args = shown(args)
            );
        }
    };
    Ran {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        took: started.elapsed(),
    }
}

fn shown(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<String> {
    args.iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect()
}

impl Ran {
    /// Exit 1 with `stderr` holding every one of `needles` (and no panic).
    fn refused(&self, needles: &[&str]) -> &Ran {
        assert_eq!(self.code, Some(1), "expected a refusal: {}", self.said());
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "{needle:?} in {}",
                self.said()
            );
        }
        assert!(!self.stderr.contains("panicked"), "{}", self.said());
        self
    }

    fn ok(&self) -> &Ran {
        assert_eq!(self.code, Some(0), "{}", self.said());
        self
    }

    fn said(&self) -> String {
        format!(
            "exit {:?} after {:?}\nstdout: {}\nstderr: {}",
            self.code, self.took, self.stdout, self.stderr
        )
    }
}

/// A genuine sealed log of `n` records at `dir/hatch.jsonl`, its key beside it.
fn genuine_log(dir: &Path, n: usize) -> PathBuf {
    let path = dir.join("hatch.jsonl");
    append(&path, n);
    path
}

fn append(path: &Path, n: usize) -> Vec<Record> {
    let hatch = Hatch::with_file(path).expect("open the log");
    (0..n)
        .map(|i| {
            hatch
                .append(
                    Event::new(EventKind::ProvisioningStarted, "admin")
                        .workspace(format!("ws-{i}")),
                )
                .expect("append")
        })
        .collect()
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// The tester's case: a genuine 10-record log whose seal now claims 3 records (record 3's real
/// hash) under an all-zero MAC. Before: `verify` without `--key` recommended `hatch repair`,
/// and `hatch repair` cut the 7 genuine records after record 3 (exit 0).
#[test]
fn repair_refuses_a_seal_it_cannot_authenticate() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hatch.jsonl");
    let records = append(&log, 10);
    let key = default_key_path(&log);
    let genuine = Seal::parse(&std::fs::read(seal_path(&log)).unwrap()).unwrap();
    let forged = Seal {
        records: 3,
        last_hash: records[2].hash.clone(),
        mac: "0".repeat(64),
        ..genuine
    };
    std::fs::write(seal_path(&log), forged.encode()).unwrap();
    let before = std::fs::read(&log).unwrap();

    rocky_e2e(&[&"hatch", &"verify", &log, &"--key", &key])
        .refused(&["the seal is forged or the key is wrong"]);
    let unkeyed = rocky_e2e(&[&"hatch", &"verify", &log]);
    unkeyed.refused(&["unsealed tail", "the seal is not authenticated (no --key)"]);
    assert!(
        !unkeyed.stderr.contains("cuts back"),
        "verify without a key recommends a repair: {}",
        unkeyed.said()
    );
    // The key beside the log is the one a repair without --key uses.
    rocky_e2e(&[&"hatch", &"repair", &log]).refused(&[
        "the seal is forged or the key is wrong",
        "--key KEYFILE",
        "nothing was cut",
    ]);
    let elsewhere = dir.path().join("kept-elsewhere.key");
    std::fs::rename(&key, &elsewhere).unwrap();
    rocky_e2e(&[&"hatch", &"repair", &log]).refused(&[
        "no --key was given",
        "--key KEYFILE",
        "nothing was cut",
    ]);
    rocky_e2e(&[&"hatch", &"repair", &log, &"--key", &elsewhere])
        .refused(&["the seal is forged or the key is wrong", "nothing was cut"]);
    assert_eq!(std::fs::read(&log).unwrap(), before, "nothing was cut");
}

/// The tester's case: a genuine 10-record log with the genuine seal taken at 2 records put
/// back. Before: `hatch repair --key` cut 8 chain-valid records. Now it refuses (more than a
/// crash leaves), and with a later checkpoint refuses naming it; a crash's tail is still cut.
#[test]
fn repair_never_cuts_below_a_checkpoint_or_more_than_a_crash_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let log = genuine_log(dir.path(), 2);
    let key = default_key_path(&log);
    let at_two = std::fs::read(seal_path(&log)).unwrap();
    append(&log, 8);
    let checkpoint = dir.path().join("at-ten.seal");
    std::fs::copy(seal_path(&log), &checkpoint).unwrap();
    std::fs::write(seal_path(&log), &at_two).unwrap();
    let before = std::fs::read(&log).unwrap();

    rocky_e2e(&[&"hatch", &"repair", &log, &"--key", &key]).refused(&[
        "8 whole records follow sealed record 2, and a crash leaves at most 4 unsealed",
        "nothing was cut",
    ]);
    rocky_e2e(&[
        &"hatch",
        &"repair",
        &log,
        &"--key",
        &key,
        &"--checkpoint",
        &checkpoint,
    ])
    .refused(&[
        "at-ten.seal: the checkpoint sealed 10 records, the seal only 2",
        "nothing was cut",
    ]);
    rocky_e2e(&[&"hatch", &"verify", &log, &"--key", &key])
        .refused(&["8 records beyond the seal", "refuses to cut them"]);
    assert_eq!(std::fs::read(&log).unwrap(), before, "nothing was cut");

    // A crash's tail: the seal is current again, then one unsealed record and a torn line.
    std::fs::copy(&checkpoint, seal_path(&log)).unwrap();
    let mut crashed = before.clone();
    let last = before[..before.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap();
    let mut unsealed: Record = serde_json::from_slice(&before[last + 1..]).unwrap();
    unsealed.prev = unsealed.hash.clone();
    unsealed.seq += 1;
    unsealed.hash = unsealed.compute_hash();
    crashed.extend_from_slice(&serde_json::to_vec(&unsealed).unwrap());
    crashed.extend_from_slice(b"\n{\"seq\":12,");
    std::fs::write(&log, &crashed).unwrap();
    let repaired = rocky_e2e(&[&"hatch", &"repair", &log, &"--checkpoint", &checkpoint]);
    repaired.ok();
    assert!(
        repaired
            .stdout
            .contains("after sealed record 10: 1 unsealed record(s) and a torn last line"),
        "{}",
        repaired.said()
    );
    assert_eq!(std::fs::read(&log).unwrap(), before);
}

/// A FIFO (or any non-regular file) as the log, the seal, the key or a checkpoint: before,
/// `verify` and `repair` blocked with no output (for the seal, under the shared append lock,
/// so a live writer blocked too). Now each is refused at once as "not a regular file".
#[test]
fn a_fifo_is_refused_never_blocked_on() {
    let dir = tempfile::tempdir().unwrap();
    let fifo_log = dir.path().join("f.jsonl");
    mkfifo(&fifo_log);
    for command in ["verify", "repair"] {
        rocky_e2e(&[&"hatch", &command, &fifo_log])
            .refused(&["f.jsonl", "not a regular file (a FIFO)"]);
    }
    rocky_e2e(&[&"hatch", &"verify", &dir.path()]).refused(&["not a regular file (a directory)"]);

    let log = genuine_log(dir.path(), 3);
    let key = default_key_path(&log);
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    // The key and a checkpoint.
    for command in ["verify", "repair"] {
        rocky_e2e(&[&"hatch", &command, &log, &"--key", &fifo])
            .refused(&["not a regular file (a FIFO)"]);
        rocky_e2e(&[
            &"hatch",
            &command,
            &log,
            &"--key",
            &key,
            &"--checkpoint",
            &fifo,
        ])
        .refused(&["checkpoint", "not a regular file (a FIFO)"]);
    }
    // The key beside the log, which repair reads when no --key is given.
    let real_key = dir.path().join("real.key");
    std::fs::rename(&key, &real_key).unwrap();
    mkfifo(&key);
    rocky_e2e(&[&"hatch", &"repair", &log]).refused(&["not a regular file (a FIFO)"]);
    std::fs::remove_file(&key).unwrap();
    std::fs::rename(&real_key, &key).unwrap();
    // The seal, read under the shared append lock: a writer can append once verify is done.
    let real_seal = dir.path().join("real.seal");
    std::fs::rename(seal_path(&log), &real_seal).unwrap();
    mkfifo(&seal_path(&log));
    for command in ["verify", "repair"] {
        rocky_e2e(&[&"hatch", &command, &log, &"--key", &key])
            .refused(&["not a regular file (a FIFO)"]);
    }
    std::fs::remove_file(seal_path(&log)).unwrap();
    std::fs::rename(&real_seal, seal_path(&log)).unwrap();
    append(&log, 1);
    rocky_e2e(&[&"hatch", &"verify", &log, &"--key", &key]).ok();
}

/// Holds a log the way a live writer does: the writer lock (`flock`, exclusive) for its life
/// and the append lock (an OFD record lock on the first byte, exclusive) from a write until its
/// seal, here for as long as the test says (a writer stuck after a failed cut-back).
struct LiveWriter {
    _held: std::fs::File,
}

impl LiveWriter {
    fn hold(log: &Path, writer_lock: bool) -> LiveWriter {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .open(log)
            .unwrap();
        // Waited for, as the writer does: a child another test forks from this process holds a
        // copy of a log just closed here (and its locks) until it execs.
        if writer_lock {
            file.lock().expect("the writer lock");
        }
        // SAFETY: plain data, zeroed is valid (OFD locks need l_pid = 0); a valid descriptor.
        let mut lock: libc::flock = unsafe { std::mem::zeroed() };
        lock.l_type = libc::F_WRLCK as libc::c_short;
        lock.l_whence = libc::SEEK_SET as libc::c_short;
        lock.l_len = 1;
        let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLKW, &mut lock) };
        assert_eq!(r, 0, "the append lock: {}", std::io::Error::last_os_error());
        LiveWriter { _held: file }
    }
}

/// Before: `hatch verify` blocked with no output and no limit while a live writer held the
/// append lock. Now it waits `--lock-timeout` (5 s by default, as its help says) and fails
/// naming the writer.
#[test]
fn verify_gives_up_on_a_live_writer_holding_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let log = genuine_log(dir.path(), 3);
    let key = default_key_path(&log);
    let writer = LiveWriter::hold(&log, true);
    let pid = format!("a live writer (pid {}) holds it", std::process::id());
    let waited = rocky_e2e(&[
        &"hatch",
        &"verify",
        &log,
        &"--key",
        &key,
        &"--lock-timeout",
        &"1s",
    ]);
    waited.refused(&[
        "gave up after 1s waiting for the append lock of hatch log",
        &pid,
    ]);
    assert!(waited.took >= Duration::from_secs(1), "{}", waited.said());
    // The default is a deadline too: clap applies the default its help shows, so the help
    // tells it without waiting it out (5 s of this test binary's wall).
    for command in ["verify", "repair"] {
        let help = rocky_e2e(&[&"hatch", &command, &"--help"]);
        help.ok();
        let line = help
            .stdout
            .lines()
            .skip_while(|l| !l.contains("--lock-timeout <DURATION>"))
            .take_while(|l| !l.trim_start().starts_with("-h, --help"))
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            line.contains("[default: 5s]"),
            "hatch {command}: {}",
            help.said()
        );
    }
    // repair still refuses at once under the writer lock.
    rocky_e2e(&[&"hatch", &"repair", &log]).refused(&["a live writer holds it", "nothing was cut"]);
    drop(writer);
    // Only the append lock held (no writer lock): repair waits for it within its deadline.
    let appending = LiveWriter::hold(&log, false);
    rocky_e2e(&[&"hatch", &"repair", &log, &"--lock-timeout", &"300ms"]).refused(&[
        "gave up after 300ms waiting for the append lock",
        "another process holds it",
        "nothing was cut",
    ]);
    drop(appending);
    rocky_e2e(&[&"hatch", &"verify", &log, &"--key", &key]).ok();
    rocky_e2e(&[&"hatch", &"repair", &log]).ok();
    drop(dir);
}

/// A log of at least 256 KiB (so it is verified on several threads) whose records from 101 on
/// claim `seq = u64::MAX`, each with its own hash recomputed. Before, a verifier thread
/// panicked ("attempt to add with overflow") on stderr before the verdict.
#[test]
fn a_hostile_seq_gets_a_verdict_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hostile.jsonl");
    let hatch = Hatch::in_memory();
    let mut out = Vec::new();
    for i in 0..4000 {
        let mut record = hatch
            .append(
                Event::new(EventKind::Provisioned, "system")
                    .workspace(format!("ws-{i}"))
                    .data(serde_json::json!({"tier": "solo", "services": ["cairnet", "lore"]})),
            )
            .unwrap();
        if i >= 100 {
            record.seq = u64::MAX;
            record.hash = record.compute_hash();
        }
        serde_json::to_writer(&mut out, &record).unwrap();
        out.push(b'\n');
    }
    assert!(out.len() >= 256 * 1024);
    std::fs::write(&log, &out).unwrap();
    let ran = rocky_e2e(&[&"hatch", &"verify", &log]);
    ran.refused(&["first bad record: seq 101 (line 101): seq gap: expected seq 101, found 18446744073709551615"]);
    assert!(!ran.stderr.contains("overflow"), "{}", ran.said());
}
