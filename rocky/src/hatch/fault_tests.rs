//! The writer under a failing disk (contract §2): EIO and ENOSPC injected at each write, each
//! sync and each seal update, in every sync mode, through the [`Disk`] seam. After each fault
//! the log must hold exactly the records whose append returned `Ok` (what the console answered
//! as done), verify against its seal under the key, and take appends again once the disk
//! works (or refuse them, naming why, while it does not).
//!
//! `cargo test -p rocky --lib fault_tests -- --nocapture` prints one line per case: the table
//! in RELIABILITY.md.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::disk::{Disk, RealDisk};
use super::{
    Event, EventKind, Hatch, HatchError, HatchOptions, Record, SyncMode, default_key_path,
    read_file, verify_sealed_file,
};
use crate::vault::Keyring;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Write,
    Sync,
    Seal,
    Truncate,
}

/// A disk that fails chosen calls; every other call goes to the real disk.
#[derive(Default)]
struct FaultyDisk {
    calls: [AtomicU64; 4],
    /// (operation, from the nth call, through the mth call, errno).
    faults: Mutex<Vec<(Op, u64, u64, i32)>>,
}

impl FaultyDisk {
    fn call(&self, op: Op) -> io::Result<()> {
        let n = self.calls[op as usize].fetch_add(1, Ordering::SeqCst) + 1;
        let faults = self.faults.lock().unwrap();
        for &(o, from, through, errno) in faults.iter() {
            if o == op && n >= from && n <= through {
                return Err(io::Error::from_raw_os_error(errno));
            }
        }
        Ok(())
    }

    fn fail(&self, op: Op, from_now: u64, count: u64, errno: i32) {
        let base = self.calls[op as usize].load(Ordering::SeqCst);
        self.faults
            .lock()
            .unwrap()
            .push((op, base + from_now, base + from_now + count - 1, errno));
    }

    fn heal(&self) {
        self.faults.lock().unwrap().clear();
    }
}

impl Disk for FaultyDisk {
    fn write(&self, log: &File, line: &[u8]) -> io::Result<()> {
        self.call(Op::Write)?;
        RealDisk.write(log, line)
    }
    fn sync(&self, log: &File) -> io::Result<()> {
        self.call(Op::Sync)?;
        RealDisk.sync(log)
    }
    fn truncate(&self, log: &File, len: u64) -> io::Result<()> {
        self.call(Op::Truncate)?;
        RealDisk.truncate(log, len)
    }
    fn replace_seal(&self, path: &Path, bytes: &[u8], sync: bool) -> io::Result<()> {
        self.call(Op::Seal)?;
        RealDisk.replace_seal(path, bytes, sync)
    }
}

struct Log {
    _dir: tempfile::TempDir,
    path: PathBuf,
    key: Keyring,
    disk: Arc<FaultyDisk>,
    hatch: Hatch,
}

fn open(sync: SyncMode) -> Log {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hatch.jsonl");
    let options = HatchOptions::sealed(&default_key_path(&path), sync).unwrap();
    let key = options.seal_key.clone().unwrap();
    let disk = Arc::new(FaultyDisk::default());
    let hatch = Hatch::open_with_disk(&path, options, disk.clone()).unwrap();
    Log {
        _dir: dir,
        path,
        key,
        disk,
        hatch,
    }
}

fn event(n: usize) -> Event {
    Event::new(EventKind::ProvisioningStarted, "admin").workspace(format!("ws-{n}"))
}

/// The log holds exactly `acknowledged` (in order) and verifies under the key.
fn assert_holds_exactly(log: &Log, acknowledged: &[Record], case: &str) {
    let s = verify_sealed_file(&log.path, Some(&log.key))
        .unwrap_or_else(|e| panic!("{case}: the log does not verify: {e}"));
    let held = read_file(&log.path).unwrap();
    assert_eq!(
        held.len(),
        acknowledged.len(),
        "{case}: the log holds {} records, {} were answered as done",
        held.len(),
        acknowledged.len()
    );
    assert_eq!(held, acknowledged, "{case}");
    assert_eq!(s.seal.records, acknowledged.len() as u64, "{case}");
}

const ERRNOS: [(i32, &str); 2] = [(libc::EIO, "EIO"), (libc::ENOSPC, "ENOSPC")];

/// One fault (one call fails, the disk then works again), at each of the first calls of
/// each operation, per sync mode, appending from one thread.
#[test]
fn one_failing_call_refuses_one_append_and_the_writer_recovers() {
    const APPENDS: usize = 5;
    for sync in SyncMode::ALL {
        for op in [Op::Write, Op::Sync, Op::Seal] {
            for (errno, name) in ERRNOS {
                for nth in 1..=3 {
                    let log = open(sync);
                    log.disk.fail(op, nth, 1, errno);
                    let mut acknowledged = Vec::new();
                    let mut refused = Vec::new();
                    for n in 0..APPENDS {
                        match log.hatch.append(event(n)) {
                            Ok(r) => acknowledged.push(r),
                            Err(e) => refused.push(e.to_string()),
                        }
                    }
                    let case = format!("sync {sync}, {op:?} #{nth} fails with {name}");
                    // A mode that never makes the call cannot fail at it.
                    let reached = !(sync == SyncMode::None && op == Op::Sync);
                    assert_eq!(refused.len(), usize::from(reached), "{case}: {refused:?}");
                    let _ = log.hatch.append(event(99)).expect("the writer recovered");
                    let mut all = acknowledged.clone();
                    all.push(read_file(&log.path).unwrap().pop().unwrap());
                    assert_holds_exactly(&log, &all, &case);
                    let Log {
                        _dir, path, hatch, ..
                    } = log;
                    drop(hatch);
                    let repaired = super::repair_file(&path, None).expect("repair");
                    assert_eq!(repaired.cut_bytes, 0, "{case}: repair would cut {repaired}");
                    println!(
                        "| {sync} | {op:?} #{nth} | {name} | {} refused, {} answered done | {} records, verifies; next append ok |",
                        refused.len(),
                        acknowledged.len(),
                        all.len() - 1,
                    );
                }
            }
        }
    }
}

/// The disk keeps failing, the rollback included (every write and every cut fails): appends
/// are refused, naming why, and nothing reaches the log; once the disk works the next append
/// finishes the rollback and goes through.
#[test]
fn a_disk_that_keeps_failing_is_refused_until_it_works() {
    for sync in SyncMode::ALL {
        for op in [Op::Write, Op::Sync, Op::Seal] {
            if sync == SyncMode::None && op == Op::Sync {
                continue; // `none` never syncs
            }
            let log = open(sync);
            let mut acknowledged = vec![log.hatch.append(event(0)).unwrap()];
            log.disk.fail(op, 1, u64::MAX / 4, libc::EIO);
            log.disk.fail(Op::Truncate, 1, u64::MAX / 4, libc::EIO);
            log.disk.fail(Op::Seal, 2, u64::MAX / 4, libc::EIO);
            let mut errors = Vec::new();
            for n in 1..4 {
                if let Err(e) = log.hatch.append(event(n)) {
                    errors.push(e);
                }
            }
            let case = format!("sync {sync}, {op:?} and every cut fail");
            assert_eq!(errors.len(), 3, "{case}");
            assert!(
                errors
                    .iter()
                    .skip(1)
                    .all(|e| matches!(e, HatchError::Damaged { .. })),
                "{case}: {errors:?}"
            );
            let last = errors.last().unwrap().to_string();
            assert!(last.contains("could not be undone yet"), "{case}: {last}");
            log.disk.heal();
            acknowledged.push(log.hatch.append(event(9)).expect("recovered"));
            assert_holds_exactly(&log, &acknowledged, &case);
            println!(
                "| {sync} | {op:?}, then every cut | EIO until healed | all refused (`{last}`) | 2 records, verifies |"
            );
        }
    }
}

/// `batch` under concurrency: a failing group commit refuses every record it would have
/// covered and every one written after them; the log holds exactly what was answered as done.
#[test]
fn a_failing_group_commit_refuses_every_record_it_would_have_covered() {
    for (op, nth) in [Op::Write, Op::Sync, Op::Seal]
        .into_iter()
        .flat_map(|op| [1, 3, 7, 3, 3].map(|nth| (op, nth)))
    {
        {
            let log = Arc::new(open(SyncMode::Batch));
            log.disk.fail(op, nth, 2, libc::EIO);
            let acknowledged = Mutex::new(Vec::new());
            let refused = AtomicU64::new(0);
            std::thread::scope(|scope| {
                for t in 0..6 {
                    let (log, acknowledged, refused) = (&log, &acknowledged, &refused);
                    scope.spawn(move || {
                        for n in 0..10 {
                            match log.hatch.append(event(t * 100 + n)) {
                                Ok(r) => acknowledged.lock().unwrap().push(r),
                                Err(_) => {
                                    refused.fetch_add(1, Ordering::SeqCst);
                                }
                            }
                        }
                    });
                }
            });
            let mut acknowledged = acknowledged.into_inner().unwrap();
            acknowledged.sort_by_key(|r| r.seq);
            let case = format!("batch, 6 writers, {op:?} #{nth} and #{} fail", nth + 1);
            assert!(refused.load(Ordering::SeqCst) >= 1, "{case}");
            assert_holds_exactly(&log, &acknowledged, &case);
            println!(
                "| batch, 6 writers × 10 | {op:?} #{nth}–#{} | EIO | {} refused, {} answered done | {} records, verifies |",
                nth + 1,
                refused.load(Ordering::SeqCst),
                acknowledged.len(),
                acknowledged.len()
            );
        }
    }
}

/// The seal is replaced whole: a seal update that fails leaves the previous seal intact (never
/// an empty or torn one), `repair` cuts nothing, and the log reopens.
#[test]
fn a_failed_seal_update_leaves_a_whole_seal_and_the_log_reopens() {
    for sync in SyncMode::ALL {
        let log = open(sync);
        let first = log.hatch.append(event(0)).unwrap();
        log.disk.fail(Op::Seal, 1, 1, libc::ENOSPC);
        log.hatch.append(event(1)).unwrap_err();
        let Log {
            _dir, path, hatch, ..
        } = log;
        drop(hatch);
        // `repair` finds nothing to cut: no record answered as done is ever beyond the seal.
        let repaired = super::repair_file(&path, None).expect("repair");
        assert_eq!(repaired.cut_bytes, 0, "{sync}: {repaired}");
        let reopened = Hatch::with_file(&path).expect("reopens");
        assert_eq!(reopened.records().unwrap(), vec![first], "{sync}");
        drop(_dir);
    }
}

/// A disk whose next `sync` waits to be released, then fails (a scripted interleaving) or, with
/// `succeeds`, goes through (a slow group commit).
#[derive(Default)]
struct GatedDisk {
    /// (tell the test the sync began, wait for the test to release it).
    gate: Mutex<Option<(std::sync::mpsc::Sender<()>, std::sync::mpsc::Receiver<()>)>>,
    /// The released sync succeeds instead of failing.
    succeeds: bool,
}

impl Disk for GatedDisk {
    fn write(&self, log: &File, line: &[u8]) -> io::Result<()> {
        RealDisk.write(log, line)
    }
    fn sync(&self, log: &File) -> io::Result<()> {
        let gate = self.gate.lock().unwrap().take();
        if let Some((began, release)) = gate {
            began.send(()).unwrap();
            release.recv().unwrap();
            if !self.succeeds {
                return Err(io::Error::from_raw_os_error(libc::EIO));
            }
        }
        RealDisk.sync(log)
    }
    fn truncate(&self, log: &File, len: u64) -> io::Result<()> {
        RealDisk.truncate(log, len)
    }
    fn replace_seal(&self, path: &Path, bytes: &[u8], sync: bool) -> io::Result<()> {
        RealDisk.replace_seal(path, bytes, sync)
    }
}

/// Whether the append lock can be taken shared right now (what `verify` and every outside
/// reader wait for), without waiting.
fn readable_now(path: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let file = File::open(path).unwrap();
    // SAFETY: plain data, zeroed is valid (OFD locks need l_pid = 0); a valid descriptor.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_RDLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_len = 1;
    unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &mut lock) == 0 }
}

/// `batch`, scripted: the leader of a group commit is inside its `sync` when a second appender
/// writes its record after the group's (on disk, in flight, not answered). The sync fails: both
/// are refused and cut, the acknowledged record stays, the chain goes on from it. While the
/// records are in flight the writer holds the append lock, so a reader that takes it shared
/// (`verify`, the model's checker) never reads a record that is then cut; a reader that does
/// not take it sees the in-flight line on disk.
#[test]
fn a_record_in_flight_behind_a_failing_group_commit_is_cut_and_never_read_as_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hatch.jsonl");
    let options = HatchOptions::sealed(&default_key_path(&path), SyncMode::Batch).unwrap();
    let key = options.seal_key.clone().unwrap();
    let disk = Arc::new(GatedDisk::default());
    let hatch = Hatch::open_with_disk(&path, options, disk.clone()).unwrap();
    let first = hatch.append(event(0)).unwrap();
    assert!(
        readable_now(&path),
        "nothing in flight after an acknowledged append"
    );
    let lines = || {
        std::fs::read(&path)
            .unwrap()
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
    };

    let (began_tx, began_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel();
    *disk.gate.lock().unwrap() = Some((began_tx, release_rx));
    std::thread::scope(|scope| {
        let leader = scope.spawn(|| hatch.append(event(1)));
        began_rx.recv().unwrap(); // the leader is inside its sync, covering record 2
        let behind = scope.spawn(|| hatch.append(event(2)));
        while lines() < 3 {
            std::thread::yield_now(); // record 3 is written, after the group's snapshot
        }
        assert!(
            !readable_now(&path),
            "records 2 and 3 are in flight: the writer must hold the append lock"
        );
        release_tx.send(()).unwrap(); // the sync fails
        let leader = leader.join().unwrap();
        let behind = behind.join().unwrap();
        assert!(
            matches!(leader, Err(HatchError::Sync { seq: 2, .. })),
            "{leader:?}"
        );
        assert!(
            matches!(behind, Err(HatchError::Sync { seq: 3, .. })),
            "{behind:?}"
        );
    });
    assert!(readable_now(&path), "the rollback released the append lock");
    let log = Log {
        _dir: dir,
        path,
        key,
        disk: Arc::new(FaultyDisk::default()),
        hatch,
    };
    assert_holds_exactly(
        &log,
        std::slice::from_ref(&first),
        "in flight behind a failed sync",
    );
    let next = log.hatch.append(event(3)).expect("the writer recovered");
    assert_eq!((next.seq, next.prev.as_str()), (2, first.hash.as_str()));
    assert_holds_exactly(&log, &[first, next], "after recovery");
}

/// `batch`, scripted: while a group commit is slow, concurrent appends write at most
/// `MAX_UNSEALED_RECORDS` records beyond the seal (what a crash can leave, so what `repair` may
/// cut); the others wait for the commit, then every one goes through.
#[test]
fn batch_never_writes_more_than_the_bound_beyond_its_seal() {
    let max = usize::try_from(super::MAX_UNSEALED_RECORDS).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hatch.jsonl");
    let options = HatchOptions::sealed(&default_key_path(&path), SyncMode::Batch).unwrap();
    let key = options.seal_key.clone().unwrap();
    let disk = Arc::new(GatedDisk {
        succeeds: true,
        ..GatedDisk::default()
    });
    let hatch = Hatch::open_with_disk(&path, options, disk.clone()).unwrap();
    hatch.append(event(0)).unwrap();
    let lines = || {
        std::fs::read(&path)
            .unwrap()
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
    };
    let (began_tx, began_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel();
    *disk.gate.lock().unwrap() = Some((began_tx, release_rx));
    let extra = 3;
    std::thread::scope(|scope| {
        let leader = scope.spawn(|| hatch.append(event(1)));
        began_rx.recv().unwrap(); // the leader is inside its sync, covering record 2
        let behind: Vec<_> = (0..max - 1 + extra)
            .map(|n| {
                let hatch = &hatch;
                scope.spawn(move || hatch.append(event(10 + n)))
            })
            .collect();
        // Until the extra appends wait for room, or (without the bound) write anyway.
        while hatch.waiting_for_room() < extra as u64 && lines() <= 1 + max {
            std::thread::yield_now();
        }
        let seen = lines();
        // Released before anything is asserted: a failing test must not leave the leader
        // waiting (the scope would wait for it forever).
        release_tx.send(()).unwrap();
        assert_eq!(
            seen,
            1 + max,
            "1 sealed record and at most {max} beyond the seal while the commit is under way"
        );
        leader.join().unwrap().expect("the leader's record");
        for b in behind {
            b.join()
                .unwrap()
                .expect("every waiting append goes through");
        }
    });
    let s = verify_sealed_file(&path, Some(&key)).expect("verifies");
    assert_eq!(s.seal.records, (1 + max + extra) as u64);
}

/// A writer stuck after a refused record it could not cut back keeps the append lock until a
/// later append succeeds: `verify` waits for it only as long as it is told, then names the
/// live writer (its pid), instead of blocking with no end; once the writer recovers it reads.
#[test]
fn verify_gives_up_on_a_stuck_writer_naming_it() {
    for sync in SyncMode::ALL {
        let log = open(sync);
        let acknowledged = vec![log.hatch.append(event(0)).unwrap()];
        log.disk.fail(Op::Write, 1, 1, libc::EIO);
        log.disk.fail(Op::Truncate, 1, 1, libc::EIO);
        log.hatch.append(event(1)).unwrap_err();
        let patience = std::time::Duration::from_millis(200);
        // A verify that never ends fails the test instead of hanging it.
        let (tx, rx) = std::sync::mpsc::channel();
        let (path, key) = (log.path.clone(), log.key.clone());
        std::thread::spawn(move || {
            let verified = super::verify_against_within(&path, Some(&key), &[], patience);
            let _ = tx.send(verified);
        });
        let err = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("{sync}: verify still waits after 30 s"))
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, super::SealError::Busy(_)), "{sync}: {err:?}");
        assert!(
            text.starts_with("gave up after 200ms waiting for the append lock of hatch log")
                && text.contains(&format!(
                    "a live writer (pid {}) holds it",
                    std::process::id()
                )),
            "{sync}: {text}"
        );
        log.disk.heal();
        let mut acknowledged = acknowledged;
        acknowledged.push(log.hatch.append(event(2)).expect("recovered"));
        assert_holds_exactly(&log, &acknowledged, &format!("{sync}: after recovery"));
    }
}
