//! The append-only JSONL file of a log: each record one whole line in one write, a failed
//! write cut off again; and reading a log file back ([`read_file`]).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::error::HatchError;
use super::record::Record;
use super::verify::lines;

pub(super) struct JsonlFile {
    /// Where the log lives, for error messages.
    pub(super) path: PathBuf,
    /// Opened for append and exclusively locked for as long as this writer lives.
    pub(super) file: File,
    /// Length of the verified content, so a failed write can be cut off again.
    pub(super) len: u64,
    /// Set when a failed write could not be cut off: the file then ends in a torn line and
    /// any further record would be chained behind garbage.
    pub(super) damaged: bool,
}

impl JsonlFile {
    pub(super) fn write_line(&mut self, line: &[u8], seq: u64) -> Result<(), HatchError> {
        if self.damaged {
            return Err(HatchError::Damaged {
                seq,
                path: self.path.clone(),
            });
        }
        // One buffer, one write_all: a concurrent reader never sees half a record unless the
        // process dies inside this call, and then the verifier names the torn line.
        match self.file.write_all(line).and_then(|()| self.file.flush()) {
            Ok(()) => {
                self.len += line.len() as u64;
                Ok(())
            }
            Err(source) => {
                if self.file.set_len(self.len).is_err() {
                    self.damaged = true;
                }
                Err(HatchError::Write {
                    seq,
                    path: self.path.clone(),
                    source,
                })
            }
        }
    }
}

/// Every record of a log file, without checking the chain (see [`verify_file`](super::verify_file)).
pub fn read_file(path: &Path) -> Result<Vec<Record>, HatchError> {
    let content = std::fs::read(path).map_err(|source| HatchError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_records(&content, path)
}

pub(super) fn parse_records(content: &[u8], path: &Path) -> Result<Vec<Record>, HatchError> {
    let mut records = Vec::with_capacity(content.len() / 256);
    for (index, line) in lines(content).enumerate() {
        let record = serde_json::from_slice(line.bytes).map_err(|source| HatchError::Parse {
            path: path.to_owned(),
            line: index + 1,
            source,
        })?;
        records.push(record);
    }
    Ok(records)
}
