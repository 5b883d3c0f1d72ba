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
    if path.exists() {
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
