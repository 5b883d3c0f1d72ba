//! The writer's locks on a log file (contract §2), and how `verify` and `repair` take them.
//!
//! - The **writer lock**: `flock(LOCK_EX)` on the log, held by [`Hatch`](super::Hatch) for its
//!   whole life, so one log has one writer. `repair` takes it too (without waiting), so it
//!   refuses to cut a log a live writer is appending to.
//! - The **append lock**: an open-file-description record lock (`F_OFD_SETLKW`) on the log's
//!   first byte, held exclusively by the writer from the moment it writes a record until the
//!   seal covers it (or the record is cut off again). `verify` takes it shared while it reads
//!   the log and the seal, so what it reads is a state the writer left between appends: a
//!   record in flight is never mistaken for an unsealed tail, a torn line or a cut seal.
//!
//! The two are independent on Linux (`flock` and record locks never conflict with each other),
//! which is what lets `verify` read a log whose writer holds the writer lock.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Shared (a reader) or exclusive (the writer, or `repair`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Share {
    Shared,
    Exclusive,
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
}
