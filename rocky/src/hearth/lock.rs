//! One hearth per socket and per session, decided before anything is touched (contract §9).
//!
//! hearth takes an exclusive `flock(2)` on `<socket>.lock` (beside the socket) and on a lock
//! named after its session, first thing, and holds both for its life; the kernel releases them
//! when it dies, however it dies. A second hearth on the same socket or session finds a lock
//! held and exits naming the holder's pid, before any rediscovery or engine call: it can never
//! remove what the live one is provisioning. The holder writes its pid (and what names it
//! across PID namespaces) into the file for that message.
//!
//! A lock file is removed by its holder at exit, while still holding it. Whoever opened the
//! file just before and locks it next would then hold a lock on a file no longer at the path,
//! so every taker checks, once it holds the lock, that the path still names the file it
//! locked, and tries again otherwise.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// How many times a lock is tried again after its file was replaced under us.
const ATTEMPTS: usize = 10;

/// A lock held for this process's life; its file is removed when it is dropped.
#[derive(Debug)]
pub struct HearthLock {
    /// The lock file.
    path: PathBuf,
    /// The open, locked file: the lock lives as long as it does.
    file: File,
}

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another hearth ({holder}) is running for {what}: it holds {lock}; this one exits without touching anything"
    )]
    Held {
        what: String,
        lock: PathBuf,
        holder: String,
    },
    #[error("failed to take the lock {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// `<socket>.lock`: the lock of the hearth serving `socket`.
pub fn socket_lock_path(socket: &Path) -> PathBuf {
    let mut name = socket.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// The lock of the hearth of `session`: in a private directory of this user under the temporary
/// directory (`$TMPDIR/rocky-hearth-<uid>/session-<session>.lock`), shared by every hearth of
/// this user on this host whatever its socket.
pub fn session_lock_path(session: &str) -> PathBuf {
    // SAFETY: getuid(2) cannot fail.
    let uid = unsafe { libc::getuid() };
    let safe: String = session
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    std::env::temp_dir()
        .join(format!("rocky-hearth-{uid}"))
        .join(format!("session-{safe}.lock"))
}

impl HearthLock {
    /// Takes the lock at `path` (for `what`, e.g. "socket /run/hearth.sock", in the message),
    /// creating the file (mode 0600) and its directory (mode 0700) if needed. Never waits: a
    /// lock held by a live hearth is [`LockError::Held`].
    pub fn acquire(path: &Path, what: &str) -> Result<HearthLock, LockError> {
        let io = |source| LockError::Io {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            private_dir(dir).map_err(io)?;
        }
        for _ in 0..ATTEMPTS {
            let mut file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path)
                .map_err(io)?;
            use std::os::fd::AsRawFd;
            // SAFETY: flock(2) on a file this function opened.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                    return Err(LockError::Held {
                        what: what.to_owned(),
                        lock: path.to_owned(),
                        holder: holder(path),
                    });
                }
                return Err(io(e));
            }
            // The holder before us may have removed the file between our open and our lock.
            let locked = file.metadata().map_err(io)?;
            match std::fs::symlink_metadata(path) {
                Ok(now) if now.dev() == locked.dev() && now.ino() == locked.ino() => {}
                _ => continue,
            }
            let me = crate::docker::owner::ProcessId::this_process();
            file.set_len(0).map_err(io)?;
            writeln!(
                file,
                "pid {} (host {}, PID namespace {}, start {})",
                me.pid, me.host, me.pidns, me.start
            )
            .map_err(io)?;
            return Ok(HearthLock {
                path: path.to_owned(),
                file,
            });
        }
        Err(io(std::io::Error::other(format!(
            "its file was replaced {ATTEMPTS} times while taking it"
        ))))
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for HearthLock {
    fn drop(&mut self) {
        // Removed while still held, and only if the path still names our file.
        if let (Ok(ours), Ok(now)) = (self.file.metadata(), std::fs::symlink_metadata(&self.path))
            && ours.dev() == now.dev()
            && ours.ino() == now.ino()
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Who holds the lock at `path`, as its holder wrote it.
fn holder(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    match text.lines().next().map(str::trim) {
        Some(line) if !line.is_empty() => line.to_owned(),
        _ => "pid unknown: it is just starting".to_owned(),
    }
}

/// Creates `dir` (mode 0700) if missing; an existing one must be ours and a directory.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let meta = std::fs::symlink_metadata(dir)?;
    // SAFETY: getuid(2) cannot fail.
    let uid = unsafe { libc::getuid() };
    if !meta.is_dir() || meta.uid() != uid {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "{} is not a directory of this user (uid {uid})",
                dir.display()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_taker_is_refused_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = socket_lock_path(&dir.path().join("hearth.sock"));
        let first = HearthLock::acquire(&path, "socket hearth.sock").unwrap();
        let err = HearthLock::acquire(&path, "socket hearth.sock").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("pid {} (host", std::process::id())),
            "{text}"
        );
        assert!(text.contains("socket hearth.sock"), "{text}");
        assert!(text.contains(&path.display().to_string()), "{text}");
        drop(first);
        assert!(!path.exists(), "the holder removes its lock file");
        let again = HearthLock::acquire(&path, "socket hearth.sock").unwrap();
        assert_eq!(again.path(), path);
    }

    #[test]
    fn the_session_lock_is_one_file_per_session() {
        assert_eq!(session_lock_path("abc"), session_lock_path("abc"));
        assert_ne!(session_lock_path("abc"), session_lock_path("abd"));
        let odd = session_lock_path("../x");
        assert!(
            odd.file_name().unwrap().to_string_lossy() == "session-.._x.lock",
            "{odd:?}"
        );
    }
}
