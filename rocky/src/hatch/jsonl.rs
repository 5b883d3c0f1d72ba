//! The append-only JSONL file of a log (each record one whole line in one write, see the
//! writer), and reading a log file back ([`read_file`]).

use std::fs::File;
use std::path::{Path, PathBuf};

use super::error::HatchError;
use super::record::Record;
use super::verify::lines;

pub(super) struct JsonlFile {
    /// Where the log lives, for error messages.
    pub(super) path: PathBuf,
    /// Opened for append and exclusively locked for as long as this writer lives.
    pub(super) file: File,
    /// Length of what was written and not cut off again, so a refused record can be cut off.
    pub(super) len: u64,
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
