//! Opening the files `hatch verify` and `hatch repair` read (the log, its seal, the seal key,
//! checkpoints): only a regular file is ever read. A FIFO named as one of them would block the
//! `open(2)` (read-only, until a writer comes) or the `read(2)` after it (forever), and the
//! seal is read under the writer's append lock, so a live writer would block with it. So each
//! file is opened with `O_NONBLOCK` (an open of a FIFO returns at once), `fstat`ed, and refused,
//! naming what it is, unless it is a regular file; `O_NONBLOCK` is then cleared again (it means
//! nothing to a regular file, but the descriptor should say what it is used as).

use std::fs::{File, FileType, OpenOptions};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use crate::vault::Keyring;

/// Opens `path` for reading (and writing when `write`), refusing anything but a regular file
/// with an error saying "not a regular file (a FIFO)" and the like. Never blocks.
pub(super) fn open(path: &Path, write: bool) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let file_type = file.metadata()?.file_type();
    if !file_type.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a regular file ({})", what(file_type)),
        ));
    }
    // SAFETY: a valid descriptor for as long as `file` lives; F_GETFL/F_SETFL take an int.
    let flags = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) };
    if flags >= 0 {
        // SAFETY: as above.
        unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK) };
    }
    Ok(file)
}

/// The whole content of the regular file at `path` (see [`open`]).
pub(super) fn read(path: &Path) -> io::Result<Vec<u8>> {
    let mut content = Vec::new();
    open(path, false)?.read_to_end(&mut content)?;
    Ok(content)
}

/// Loads the seal keyring at `path` (a VAULT keyring YAML) the way `hatch verify --key` and
/// `hatch repair` do: only from a regular file (see the module docs).
pub fn read_key(path: &Path) -> Result<Keyring, String> {
    let bytes = read(path)
        .map_err(|e| format!("failed to read the HATCH seal key {}: {e}", path.display()))?;
    let text = String::from_utf8(bytes).map_err(|_| {
        format!(
            "failed to read the HATCH seal key {}: not UTF-8 text",
            path.display()
        )
    })?;
    Keyring::from_yaml(path, &text).map_err(|e| e.to_string())
}

fn what(file_type: FileType) -> &'static str {
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else {
        "not a file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_are_opened_and_a_fifo_never_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("f.jsonl");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        for write in [false, true] {
            // An open that blocks fails the test instead of hanging it.
            let (tx, rx) = std::sync::mpsc::channel();
            let at = fifo.clone();
            std::thread::spawn(move || tx.send(open(&at, write).map(drop)));
            let opened = rx
                .recv_timeout(std::time::Duration::from_secs(30))
                .expect("the open of a FIFO returned");
            assert_eq!(
                opened.unwrap_err().to_string(),
                "not a regular file (a FIFO)"
            );
        }
        assert_eq!(
            read(dir.path()).unwrap_err().to_string(),
            "not a regular file (a directory)"
        );
        assert_eq!(
            read(Path::new("/dev/null")).unwrap_err().to_string(),
            "not a regular file (a character device)"
        );
        let file = dir.path().join("log");
        std::fs::write(&file, b"x\n").unwrap();
        assert_eq!(read(&file).unwrap(), b"x\n");
        let opened = open(&file, true).unwrap();
        // SAFETY: a valid descriptor.
        let flags = unsafe { libc::fcntl(opened.as_raw_fd(), libc::F_GETFL) };
        assert_eq!(flags & libc::O_NONBLOCK, 0, "O_NONBLOCK is cleared again");
        let key = dir.path().join("key");
        let err = read_key(&fifo).unwrap_err();
        assert!(err.contains("not a regular file (a FIFO)"), "{err}");
        assert!(read_key(&key).unwrap_err().contains("failed to read"));
    }
}
