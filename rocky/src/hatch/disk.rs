//! The writer's file operations, behind one seam ([`Disk`]) so a test can make any of them
//! fail as a failing disk would (EIO, ENOSPC) and check what the log holds afterwards. The
//! console uses [`RealDisk`]: one virtual call per operation, nothing else.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

/// Every way the writer touches the disk.
pub trait Disk: Send + Sync {
    /// Appends `line` to the log (opened for append): one `write(2)` of the whole line.
    fn write(&self, log: &File, line: &[u8]) -> io::Result<()>;
    /// `fdatasync(2)` of the log.
    fn sync(&self, log: &File) -> io::Result<()>;
    /// Cuts the log back to `len` bytes (`ftruncate(2)`): how a refused record is undone.
    fn truncate(&self, log: &File, len: u64) -> io::Result<()>;
    /// Replaces the seal at `path` whole with `bytes`: a new file, synced when `sync`, renamed
    /// over the old one, and the folder synced when `sync` ([`crate::secure_file`]).
    fn replace_seal(&self, path: &Path, bytes: &[u8], sync: bool) -> io::Result<()>;
}

/// The disk itself.
pub struct RealDisk;

impl Disk for RealDisk {
    fn write(&self, mut log: &File, line: &[u8]) -> io::Result<()> {
        log.write_all(line)
    }

    fn sync(&self, log: &File) -> io::Result<()> {
        log.sync_data()
    }

    fn truncate(&self, log: &File, len: u64) -> io::Result<()> {
        log.set_len(len)
    }

    fn replace_seal(&self, path: &Path, bytes: &[u8], sync: bool) -> io::Result<()> {
        crate::secure_file::replace_private(path, bytes, sync)
    }
}
