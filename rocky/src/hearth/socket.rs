//! hearth's unix socket: created mode 0600 inside a 0700 directory, since whoever can open it
//! can create containers.

use std::path::Path;

/// Binds the unix socket with mode 0600 (its directory is created 0700 if missing).
pub fn bind_socket(path: &Path) -> std::io::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_socket() {
            // Never delete what is not ours to delete: a regular file, a directory, a link.
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists and is not a socket; not removing it",
                    path.display()
                ),
            ));
        }
        // A stale socket from a killed hearth; a live one would still accept connections.
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("another hearth is serving {}", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    // umask first so the socket is never briefly reachable by others.
    // SAFETY: umask is process-wide but hearth binds once, before serving.
    let old = unsafe { libc::umask(0o177) };
    let listener = tokio::net::UnixListener::bind(path);
    unsafe { libc::umask(old) };
    let listener = listener?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Removes the socket at `path` if (and only if) it is a socket.
pub fn remove_socket(path: &Path) {
    use std::os::unix::fs::FileTypeExt;
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_regular_file_at_the_socket_path_is_never_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hearth.sock");
        std::fs::write(&path, b"precious").unwrap();
        let err = bind_socket(&path).unwrap_err();
        assert!(err.to_string().contains("is not a socket"), "{err}");
        remove_socket(&path);
        assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    }

    #[tokio::test]
    async fn a_stale_socket_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hearth.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let _listener = bind_socket(&path).unwrap();
        remove_socket(&path);
        assert!(!path.exists());
    }
}
