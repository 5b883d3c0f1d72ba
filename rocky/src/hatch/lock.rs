//! The writer's locks on a log file (contract §2), and how `verify` and `repair` take them.
//!
//! - The **writer lock**: `flock(LOCK_EX)` on the log, held by [`Hatch`](super::Hatch) for its
//!   whole life, so one log has one writer. `repair` takes it too (without waiting for a live
//!   writer; see [`WRITER_LOCK_PATIENCE`] for the moment it does wait), so it
//!   refuses to cut a log a live writer is appending to.
//! - The **append lock**: an open-file-description record lock (`F_OFD_SETLKW`) on the log's
//!   first byte, held exclusively by the writer from the moment it writes a record until the
//!   seal covers it (or the record is cut off again). `verify` takes it shared while it reads
//!   the log and the seal, so what it reads is a state the writer left between appends: a
//!   record in flight is never mistaken for an unsealed tail, a torn line or a cut seal.
//!
//! The two are independent on Linux (`flock` and record locks never conflict with each other),
//! which is what lets `verify` read a log whose writer holds the writer lock.

use std::fs::{File, TryLockError};
use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Shared (a reader) or exclusive (the writer, or `repair`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Share {
    Shared,
    Exclusive,
}

/// How long taking the writer lock waits for it. A child this process forks holds a copy of
/// every open file until it execs (close-on-exec closes them only then), and with it the
/// `flock` of a log this process has just closed: reopening the log while any thread is
/// starting a process (the embedded topology starts hearth and stand-ins all the time) can
/// find it locked for the moment the child takes to exec. A real second writer still holds it
/// after this, and is refused.
pub(super) const WRITER_LOCK_PATIENCE: Duration = Duration::from_millis(500);

/// Takes the writer lock on `file`, waiting up to [`WRITER_LOCK_PATIENCE`] for a holder on its
/// way out; `WouldBlock` if it is still held then.
pub(super) fn take_writer_lock(file: &File) -> Result<(), TryLockError> {
    let deadline = Instant::now() + WRITER_LOCK_PATIENCE;
    loop {
        match file.try_lock() {
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2));
            }
            other => return other,
        }
    }
}

/// Takes the append lock on `file`, waiting for whoever holds it.
pub(super) fn lock_appends(file: &File, share: Share) -> io::Result<()> {
    set(file, lock_kind(share))
}

fn lock_kind(share: Share) -> libc::c_short {
    let kind = match share {
        Share::Shared => libc::F_RDLCK,
        Share::Exclusive => libc::F_WRLCK,
    };
    kind as libc::c_short
}

/// How long `hatch verify` and `hatch repair` wait for the append lock by default
/// (`--lock-timeout`): a live writer holds it only from a write until the seal covers it, so
/// a wait longer than this is a writer that is stuck (one that failed to cut a refused record
/// back keeps it until a later append succeeds).
pub const DEFAULT_LOCK_PATIENCE: Duration = Duration::from_secs(5);

/// Why the append lock was not taken.
#[derive(Debug)]
pub(super) enum LockWait {
    /// Still held by someone else after the patience given.
    TimedOut {
        /// What was asked for: shared (`verify`, waiting for a writer) or exclusive (`repair`).
        share: Share,
        /// The process holding the lock, when the kernel tells (see [`holder`]).
        holder: Option<i32>,
    },
    Io(io::Error),
}

impl LockWait {
    /// What a refusal says: who holds the lock, and how long it was waited for.
    pub(super) fn describe(&self, path: &std::path::Path, patience: Duration) -> String {
        let (share, holder) = match self {
            LockWait::Io(e) => {
                return format!(
                    "failed to take the append lock on hatch log {}: {e}",
                    path.display()
                );
            }
            LockWait::TimedOut { share, holder } => (share, holder),
        };
        let pid = match holder {
            Some(pid) => format!(" (pid {pid})"),
            None => String::new(),
        };
        let who = match share {
            // Only a writer (or a repair) takes it exclusively, and only from a write until
            // its seal: held this long, it is stuck.
            Share::Shared => format!(
                "a live writer{pid} holds it, far longer than from a write to its seal: it is stuck (e.g. after a refused record it could not cut back; see its log); stop it, or wait longer with --lock-timeout"
            ),
            Share::Exclusive => format!(
                "another process{pid} holds it (a `hatch verify` reading the log, or a writer); try again, or wait longer with --lock-timeout"
            ),
        };
        format!(
            "gave up after {} waiting for the append lock of hatch log {}: {who}",
            crate::duration::display(patience),
            path.display(),
        )
    }
}

/// Takes the append lock on `file` within `patience`: at once when it is free, else by a
/// helper thread waiting in `F_OFD_SETLKW` (which takes no deadline) while this one waits at
/// most `patience` for it. A helper that gets the lock after the caller gave up releases it at
/// once; one that never gets it waits on in the kernel (the lock request holds nothing).
pub(super) fn lock_appends_within(
    file: &File,
    share: Share,
    patience: Duration,
) -> Result<(), LockWait> {
    let kind = lock_kind(share);
    if try_set(file, kind).map_err(LockWait::Io)? {
        return Ok(());
    }
    let handle = file.try_clone().map_err(LockWait::Io)?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("hatch-lock-wait".into())
        .spawn(move || {
            let taken = set(&handle, kind);
            if let Err(unsent) = tx.send(taken)
                && unsent.0.is_ok()
            {
                // The caller gave up: it must not hold a lock it does not know about.
                let _ = unlock_appends(&handle);
            }
        })
        .map_err(LockWait::Io)?;
    match rx.recv_timeout(patience) {
        Ok(taken) => taken.map_err(LockWait::Io),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(LockWait::TimedOut {
            share,
            // An exclusive wait is `repair`'s, which holds the writer lock itself: its holder
            // says nothing then.
            holder: holder(file, share == Share::Shared),
        }),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(LockWait::Io(
            io::Error::other("the thread waiting for the lock ended without it"),
        )),
    }
}

/// The process holding a lock that conflicts with an exclusive append lock on `file`, when the
/// kernel tells: a classic record lock names its pid; an OFD lock (the writer's) does not, so
/// with `ask_writer_lock` the writer lock's holder (`flock` on the same file, `/proc/locks`)
/// is named instead.
pub(super) fn holder(file: &File, ask_writer_lock: bool) -> Option<i32> {
    // SAFETY: plain data; zeroed is a valid value (OFD locks need l_pid = 0).
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_len = 1;
    // SAFETY: a valid descriptor for as long as `file` lives, and a valid `flock`.
    let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &mut lock) };
    if r == 0 && lock.l_type != libc::F_UNLCK as libc::c_short && lock.l_pid > 0 {
        return Some(lock.l_pid);
    }
    if !ask_writer_lock {
        return None;
    }
    use std::os::unix::fs::MetadataExt;
    let meta = file.metadata().ok()?;
    // A lock taken or released between two reads of `/proc/locks` can hide the holder's line
    // (see [`read_proc_locks`]): a line missing is looked for again in a fresh read.
    (0..PROC_LOCKS_READS)
        .find_map(|_| flock_holder(&read_proc_locks().ok()?, meta.dev(), meta.ino()))
}

/// How many times [`holder`] reads `/proc/locks` before it concludes no `flock` names a holder.
const PROC_LOCKS_READS: usize = 3;

/// `/proc/locks`, read in reads of [`PROC_LOCKS_CHUNK`] bytes.
///
/// The kernel lists the locks of the whole machine (every process's, not only this one's) by
/// their position in its list, and every `read` starts a fresh walk of it at the position the
/// last one stopped at: a lock released meanwhile at an earlier position moves every later one
/// up, and the line that moved to the resume position is never returned. Within one `read`
/// the list holds still, and one `read` returns at most a page of lines: asking for more than
/// a page each time makes a list of up to a page (a machine's usual few dozen locks) one walk,
/// and a longer one as few walks as can be; [`holder`] reads again when its line is missing.
/// `std::fs::read_to_string` started with a 32-byte read and doubled it, which cut even a list
/// of a dozen locks into half a dozen walks: with other locks coming and going (other logs'
/// append locks, `cargo`'s) it missed the writer's line in about one read in twenty.
fn read_proc_locks() -> io::Result<String> {
    use std::io::Read;
    let mut file = File::open("/proc/locks")?;
    let mut text = Vec::new();
    let mut chunk = vec![0u8; PROC_LOCKS_CHUNK];
    loop {
        match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => text.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    String::from_utf8(text).map_err(io::Error::other)
}

/// Bytes asked for by each read of `/proc/locks`: more than the page the kernel fills at most.
const PROC_LOCKS_CHUNK: usize = 64 * 1024;

/// In `/proc/locks` (`1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF`, device numbers in hex),
/// the pid holding an exclusive `flock` on the file `dev`/`ino`.
fn flock_holder(locks: &str, dev: u64, ino: u64) -> Option<i32> {
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // A waiter's line has "->" after the number; it holds nothing.
        let [_, "FLOCK", _, "WRITE", pid, file, ..] = fields.as_slice() else {
            return None;
        };
        let mut parts = file.split(':');
        let same = u32::from_str_radix(parts.next()?, 16).ok()? == major
            && u32::from_str_radix(parts.next()?, 16).ok()? == minor
            && parts.next()?.parse::<u64>().ok()? == ino;
        same.then(|| pid.parse().ok()).flatten().filter(|&p| p > 0)
    })
}

/// Releases the append lock on `file` (closing the file releases it too).
pub(super) fn unlock_appends(file: &File) -> io::Result<()> {
    set(file, libc::F_UNLCK as libc::c_short)
}

fn set(file: &File, kind: libc::c_short) -> io::Result<()> {
    let mut lock = one_byte(kind);
    loop {
        // SAFETY: a valid descriptor for as long as `file` lives, and a valid `flock`.
        let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLKW, &mut lock) };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Takes the lock if nobody holds a conflicting one; `false` if somebody does.
fn try_set(file: &File, kind: libc::c_short) -> io::Result<bool> {
    let mut lock = one_byte(kind);
    loop {
        // SAFETY: a valid descriptor for as long as `file` lives, and a valid `flock`.
        let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &mut lock) };
        if r == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EAGAIN | libc::EACCES) => return Ok(false),
            Some(libc::EINTR) => {}
            _ => return Err(e),
        }
    }
}

/// The append lock's range: the log's first byte.
fn one_byte(kind: libc::c_short) -> libc::flock {
    // SAFETY: `flock` is plain data; zeroed is a valid value (OFD locks need l_pid = 0).
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = kind;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = 0;
    lock.l_len = 1;
    lock
}

#[cfg(test)]
mod tests {
    use super::*;

    fn can_lock_now(file: &File, kind: libc::c_short) -> bool {
        let mut lock: libc::flock = unsafe { std::mem::zeroed() };
        lock.l_type = kind;
        lock.l_whence = libc::SEEK_SET as libc::c_short;
        lock.l_len = 1;
        unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &mut lock) == 0 }
    }

    #[test]
    fn readers_share_and_the_writer_excludes_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, b"").unwrap();
        let open = || {
            std::fs::OpenOptions::new()
                .read(true)
                .append(true)
                .open(&path)
                .unwrap()
        };
        let (writer, reader, other) = (open(), open(), open());
        lock_appends(&reader, Share::Shared).unwrap();
        assert!(can_lock_now(&other, libc::F_RDLCK as libc::c_short));
        assert!(!can_lock_now(&writer, libc::F_WRLCK as libc::c_short));
        unlock_appends(&reader).unwrap();
        unlock_appends(&other).unwrap();
        lock_appends(&writer, Share::Exclusive).unwrap();
        assert!(!can_lock_now(&reader, libc::F_RDLCK as libc::c_short));
        // The writer lock (flock) and the append lock never conflict.
        assert!(reader.try_lock_shared().is_ok());
    }

    /// The append lock held the way a live writer holds it (`flock` for its life, the record
    /// lock from a write until its seal): a reader waits for it within its patience, then is
    /// told who holds it; once it is free it is taken, and a wait given up never leaves a
    /// lock behind.
    #[test]
    fn the_append_lock_is_waited_for_within_a_deadline_naming_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hatch.jsonl");
        std::fs::write(&path, b"").unwrap();
        let open = || {
            std::fs::OpenOptions::new()
                .read(true)
                .append(true)
                .open(&path)
                .unwrap()
        };
        let (writer, reader) = (open(), open());
        take_writer_lock(&writer).unwrap();
        lock_appends(&writer, Share::Exclusive).unwrap();
        let patience = Duration::from_millis(50);
        let pid = i32::try_from(std::process::id()).unwrap();
        // A wait that never ends fails the test instead of hanging it.
        let wait = |share| {
            let reader = reader.try_clone().unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || tx.send(lock_appends_within(&reader, share, patience)));
            rx.recv_timeout(Duration::from_secs(30))
                .expect("the wait for the append lock ended")
        };
        let err = wait(Share::Shared).unwrap_err();
        assert!(
            matches!(err, LockWait::TimedOut { holder: Some(p), .. } if p == pid),
            "{err:?}"
        );
        let text = err.describe(&path, patience);
        assert!(
            text.starts_with("gave up after 50ms waiting for the append lock of hatch log")
                && text.contains(&format!("a live writer (pid {pid}) holds it")),
            "{text}"
        );
        // Exclusive is `repair`'s wait: it holds the writer lock itself, so that names nobody.
        let err = wait(Share::Exclusive).unwrap_err();
        assert!(
            matches!(err, LockWait::TimedOut { holder: None, .. }),
            "{err:?}"
        );
        let text = err.describe(&path, patience);
        assert!(text.contains("another process holds it"), "{text}");
        unlock_appends(&writer).unwrap();
        // The waits given up may get the lock now: they release it at once.
        lock_appends_within(&writer, Share::Exclusive, Duration::from_secs(30))
            .expect("the writer locks again");
        unlock_appends(&writer).unwrap();
        lock_appends_within(&reader, Share::Shared, Duration::from_secs(30)).expect("free");
    }

    #[test]
    fn the_flock_holder_is_read_from_proc_locks() {
        let locks = "1: FLOCK  ADVISORY  WRITE 4242 fd:01:123 0 EOF\n\
                     1: -> FLOCK  ADVISORY  WRITE 5555 fd:01:123 0 EOF\n\
                     2: OFDLCK ADVISORY  WRITE -1 fd:01:123 0 0\n\
                     3: FLOCK  ADVISORY  WRITE 77 08:02:999 0 EOF\n\
                     4: FLOCK  ADVISORY  READ 78 08:02:1000 0 EOF\n";
        let dev = |major, minor| libc::makedev(major, minor);
        assert_eq!(flock_holder(locks, dev(0xfd, 1), 123), Some(4242));
        assert_eq!(flock_holder(locks, dev(8, 2), 999), Some(77));
        assert_eq!(flock_holder(locks, dev(8, 2), 1000), None, "shared");
        assert_eq!(flock_holder(locks, dev(8, 1), 999), None, "another device");
        assert_eq!(flock_holder(locks, dev(0xfd, 1), 5), None);
    }

    /// The writer lock's holder is named while other locks on the machine come and go (other
    /// logs' writers and readers, `cargo`'s): read in small pieces, `/proc/locks` now and then
    /// lost the writer's line, and a reader that gave up named no writer.
    #[test]
    fn the_flock_holder_is_found_while_other_locks_come_and_go() {
        let dir = tempfile::tempdir().unwrap();
        let open = |name: &str| {
            std::fs::OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .open(dir.path().join(name))
                .unwrap()
        };
        let writer = open("hatch.jsonl");
        take_writer_lock(&writer).unwrap();
        let pid = i32::try_from(std::process::id()).unwrap();
        let done = std::sync::atomic::AtomicBool::new(false);
        let missed = std::thread::scope(|scope| {
            for t in 0..2 {
                let others: Vec<File> = (0..4).map(|i| open(&format!("other-{t}-{i}"))).collect();
                let done = &done;
                scope.spawn(move || {
                    while !done.load(std::sync::atomic::Ordering::Relaxed) {
                        others.iter().for_each(|f| f.lock().unwrap());
                        others.iter().for_each(|f| f.unlock().unwrap());
                    }
                });
            }
            let missed = (0..2000)
                .filter(|_| holder(&writer, true) != Some(pid))
                .count();
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            missed
        });
        assert_eq!(missed, 0, "the holder went unnamed {missed} times in 2000");
    }

    /// A log closed while a child forked from this process has not exec'd yet can be opened
    /// again at once: the child's copy of the file holds the `flock` until it execs, and the
    /// writer waits for that (the race found when the unit tests ran 8 at a time). A refusal is
    /// right only when the child had still not exec'd once the writer's patience ran out (a
    /// stalled machine: once, right after a cold build); then it must have waited that long.
    #[test]
    fn a_log_held_by_a_child_about_to_exec_opens_once_it_execs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hatch.jsonl");
        let hatch = crate::hatch::Hatch::with_file(&path).expect("open");
        // The child is slow to exec: the moment the parent reopens the log.
        let child = testkit::fork_slow_to_exec(std::time::Duration::from_millis(150))
            .expect("the child forked");
        drop(hatch);
        let started = Instant::now();
        let reopened = crate::hatch::Hatch::with_file(&path);
        let refused = Instant::now();
        let (status, execd) = child.wait_execd().expect("run true");
        assert!(status.success());
        if let Err(e) = reopened {
            assert!(
                matches!(e, crate::hatch::HatchError::Lock { .. })
                    && refused - started >= WRITER_LOCK_PATIENCE
                    && execd >= started + WRITER_LOCK_PATIENCE,
                "refused after {:?} though the child exec'd {:?} after the reopen began: {e}",
                refused - started,
                execd.saturating_duration_since(started)
            );
        }
    }
}
