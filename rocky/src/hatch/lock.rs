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
    let kind = match share {
        Share::Shared => libc::F_RDLCK,
        Share::Exclusive => libc::F_WRLCK,
    };
    set(file, kind as libc::c_short)
}

/// Releases the append lock on `file` (closing the file releases it too).
pub(super) fn unlock_appends(file: &File) -> io::Result<()> {
    set(file, libc::F_UNLCK as libc::c_short)
}

fn set(file: &File, kind: libc::c_short) -> io::Result<()> {
    // SAFETY: `flock` is plain data; zeroed is a valid value (OFD locks need l_pid = 0).
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = kind;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = 0;
    lock.l_len = 1;
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

    /// A log closed while a child forked from this process has not exec'd yet can be opened
    /// again at once: the child's copy of the file holds the `flock` until it execs, and the
    /// writer waits for that (the race found when the unit tests ran 8 at a time).
    #[test]
    fn a_log_held_by_a_child_about_to_exec_opens_once_it_execs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hatch.jsonl");
        let hatch = crate::hatch::Hatch::with_file(&path).expect("open");
        // The child is slow to exec: the moment the parent reopens the log.
        let child = testkit::fork_slow_to_exec(std::time::Duration::from_millis(150))
            .expect("the child forked");
        drop(hatch);
        let reopened = crate::hatch::Hatch::with_file(&path);
        assert!(reopened.is_ok(), "{:?}", reopened.err());
        assert!(child.wait().expect("run true").success());
    }
}
