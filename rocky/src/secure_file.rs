//! Private files written whole (contract §2): keys, seals, tokens, VAULT keyrings and state
//! files go through [`write_private`] (or [`replace_private`] without the syncs).
//!
//! The content goes to a new file beside the target, created with `O_CREAT|O_EXCL|O_NOFOLLOW`
//! and mode 0600, so a file or a symlink planted at the temporary name is never opened, never
//! followed and never given the secret; it is synced, renamed over the target (`rename(2)`
//! replaces a symlink at the target itself, never what it points to) and the folder is synced,
//! so a reader or a crash sees the old file or the new one, never half of one.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Tells apart the temporary files of one process (several threads, several files at once).
static NEXT_TMP: AtomicU64 = AtomicU64::new(0);

/// How many temporary names are tried before giving up: a name is only taken by a leftover of
/// a crashed process whose pid this process reuses, so a second name almost always works.
const TMP_ATTEMPTS: u32 = 16;

/// Writes `contents` to `path` (mode 0600) through a new temporary file renamed into place,
/// syncing the file before the rename and the folder after it.
pub fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    replace_private(path, contents, true)
}

/// [`write_private`], with the two syncs only when `sync` (a caller that promises nothing
/// about the disk, like `--hatch-sync none`, skips them).
pub fn replace_private(path: &Path, contents: &[u8], sync: bool) -> io::Result<()> {
    let (tmp, mut file) = create_temp(path)?;
    let written = (|| {
        file.write_all(contents)?;
        if sync {
            file.sync_all()?;
        }
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if sync {
        sync_dir(path)?;
    }
    Ok(())
}

/// Syncs the folder holding `path`, so a rename into it survives a crash.
pub fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// A new file beside `path` that nobody else has opened: `NAME.tmp.<pid>.<n>`.
fn create_temp(path: &Path) -> io::Result<(PathBuf, File)> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} has no file name", path.display()),
        )
    })?;
    let mut last = None;
    for _ in 0..TMP_ATTEMPTS {
        let mut tmp_name: OsString = name.to_owned();
        tmp_name.push(format!(
            ".tmp.{}.{}",
            std::process::id(),
            NEXT_TMP.fetch_add(1, Ordering::Relaxed)
        ));
        let tmp = path.with_file_name(tmp_name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .mode(0o600)
            .open(&tmp)
        {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no temporary name was free")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path)
            .expect("stat")
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn a_new_file_is_private_and_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.yaml");
        write_private(&path, b"secret").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"secret");
        assert_eq!(mode(&path), 0o600);
        // Replacing it keeps it private and leaves no temporary file behind.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        replace_private(&path, b"newer", false).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"newer");
        assert_eq!(mode(&path), 0o600);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![OsString::from("key.yaml")]);
    }

    #[test]
    fn a_symlink_at_the_target_is_replaced_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let path = dir.path().join("token.yaml");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        write_private(&path, b"secret").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(!std::fs::symlink_metadata(&path).unwrap().is_symlink());
        assert_eq!(std::fs::read(&path).unwrap(), b"secret");
    }

    #[test]
    fn a_planted_temporary_name_is_never_opened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.yaml");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        // Plant a symlink at every name this process is about to try.
        let next = NEXT_TMP.load(Ordering::Relaxed);
        for n in next..next + 4 {
            let planted = dir
                .path()
                .join(format!("vault.yaml.tmp.{}.{n}", std::process::id()));
            std::os::unix::fs::symlink(&victim, planted).unwrap();
        }
        write_private(&path, b"secret").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(std::fs::read(&path).unwrap(), b"secret");
        assert_eq!(mode(&path), 0o600);
    }
}
