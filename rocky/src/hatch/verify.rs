//! The HATCH verifier: reads a whole log and names the first bad `seq` (a torn line, a gap,
//! a broken link, a tampered record). Large logs are scanned on several threads and the
//! runs stitched together; any failure is then located by one sequential pass.

use std::fmt;
use std::ops::Range;
use std::path::Path;

use super::record::{RecordRef, hex_string, sha256_hex};

/// Below this size a verification is faster on one thread than the cost of spawning more.
const PARALLEL_VERIFY_MIN_BYTES: usize = 256 * 1024;

/// Upper bound on verifier threads: hashing is per line, but the gain flattens quickly.
const MAX_VERIFY_THREADS: usize = 8;

/// What a verified chain holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifySummary {
    /// How many records the chain holds.
    pub records: u64,
    /// `hash` of the last record, [`GENESIS`](super::GENESIS) for an empty log.
    pub last_hash: String,
}

/// The first place where a chain breaks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct VerifyError {
    /// The first bad seq: the seq the bad line has, or should have had when it cannot be read
    /// or is out of place.
    pub seq: u64,
    /// 1-based line of the file.
    pub line: usize,
    /// What is wrong with it.
    pub reason: VerifyReason,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reason {
            // The log could not be read at all, so there is no record to point at.
            VerifyReason::Io(message) => f.write_str(message),
            reason => write!(
                f,
                "first bad record: seq {} (line {}): {reason}",
                self.seq, self.line
            ),
        }
    }
}

/// Why a record breaks the chain.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyReason {
    /// The line is not a record, e.g. a partial JSON line left by a torn write.
    #[error("{0}")]
    Unparseable(String),
    /// The last line is a whole record but its newline never reached the file.
    #[error("last line is not terminated by a newline (torn write?)")]
    MissingNewline,
    /// A record is missing, duplicated or out of order.
    #[error("seq gap: expected seq {expected}, found {found}")]
    SeqGap { expected: u64, found: u64 },
    /// A record follows one whose seq is the largest there is (only a hostile log has one).
    #[error("seq overflow: no record can follow seq {after}")]
    SeqOverflow { after: u64 },
    /// `prev` is not the previous record's `hash`.
    #[error("prev mismatch: expected {expected}, found {found}")]
    PrevMismatch { expected: String, found: String },
    /// The record's content does not hash to its stored `hash`: it was altered.
    #[error("hash mismatch (stored {stored}, computed {computed})")]
    HashMismatch { stored: String, computed: String },
    /// The log could not be read.
    #[error("{0}")]
    Io(String),
}

/// Verifies the log file at `path`.
pub fn verify_file(path: &Path) -> Result<VerifySummary, VerifyError> {
    let content = super::regular::read(path).map_err(|e| VerifyError {
        seq: 0,
        line: 0,
        reason: VerifyReason::Io(format!("failed to read hatch log {}: {e}", path.display())),
    })?;
    verify_bytes(&content)
}

/// Verifies a whole log: every line a record, seqs contiguous from 1, each `prev` the
/// previous `hash`, each `hash` recomputed. An empty log is valid.
///
/// Large logs are checked on several threads, each taking a run of whole lines; the
/// threads' runs are stitched together by their boundary records. Any failure is then
/// located by one sequential pass, so the error always names the first bad record.
pub fn verify_bytes(content: &[u8]) -> Result<VerifySummary, VerifyError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(MAX_VERIFY_THREADS);
    if threads > 1
        && content.len() >= PARALLEL_VERIFY_MIN_BYTES
        && let Some(summary) = verify_parallel(content, &split_at_lines(content, threads))
    {
        return Ok(summary);
    }
    let scanned = scan(content, Some(Anchor::genesis()))?;
    Ok(scanned.summary())
}

/// The record a run of lines continues from.
#[derive(Clone, Copy)]
struct Anchor {
    seq: u64,
    hash: [u8; 64],
}

impl Anchor {
    fn genesis() -> Anchor {
        Anchor {
            seq: 0,
            hash: [b'0'; 64],
        }
    }
}

/// A run of lines that checked out on its own.
struct Scanned {
    /// Lines (= records) in the run.
    lines: u64,
    /// seq and prev of the first record, when the run was scanned without an anchor.
    first: Option<(u64, String)>,
    /// The run's last record.
    last: Option<Anchor>,
}

impl Scanned {
    fn summary(&self) -> VerifySummary {
        VerifySummary {
            records: self.lines,
            last_hash: hex_string(&self.last.unwrap_or_else(Anchor::genesis).hash),
        }
    }
}

fn verify_parallel(content: &[u8], runs: &[Range<usize>]) -> Option<VerifySummary> {
    let results: Vec<Option<Scanned>> = std::thread::scope(|scope| {
        let pending: Vec<_> = runs
            .iter()
            .enumerate()
            .map(|(index, run)| {
                let chunk = &content[run.clone()];
                let anchor = (index == 0).then(Anchor::genesis);
                let job = move || scan(chunk, anchor).ok();
                // If no thread can be had, the run is simply checked on this one.
                std::thread::Builder::new()
                    .spawn_scoped(scope, job)
                    .map_err(|_| job)
            })
            .collect();
        pending
            .into_iter()
            .map(|handle| match handle {
                Ok(handle) => handle.join().ok().flatten(),
                Err(job) => job(),
            })
            .collect()
    });
    let mut anchor = Anchor::genesis();
    let mut total: u64 = 0;
    for scanned in results {
        let scanned = scanned?;
        // seqs come from the file: checked, a hostile one never overflows (it fails the
        // stitch, and the sequential pass names it).
        if let Some((seq, prev)) = &scanned.first
            && (anchor.seq.checked_add(1) != Some(*seq) || prev.as_bytes() != anchor.hash)
        {
            return None;
        }
        if let Some(last) = scanned.last {
            anchor = last;
        }
        total = total.checked_add(scanned.lines)?;
    }
    Some(VerifySummary {
        records: total,
        last_hash: hex_string(&anchor.hash),
    })
}

/// Cuts `content` into up to `parts` runs of whole lines of about equal size.
fn split_at_lines(content: &[u8], parts: usize) -> Vec<Range<usize>> {
    let mut runs = Vec::with_capacity(parts);
    let mut start = 0;
    for part in 1..=parts {
        if start >= content.len() {
            break;
        }
        let target = (content.len() * part / parts).max(start);
        let end = if part == parts {
            content.len()
        } else {
            content[target..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(content.len(), |i| target + i + 1)
        };
        if end > start {
            runs.push(start..end);
        }
        start = end;
    }
    runs
}

pub(super) struct Line<'a> {
    pub(super) bytes: &'a [u8],
    /// False only for a last line whose newline never reached the file.
    terminated: bool,
}

pub(super) fn lines(content: &[u8]) -> impl Iterator<Item = Line<'_>> {
    let mut rest = content;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let line = match rest.iter().position(|&b| b == b'\n') {
            Some(end) => {
                let line = Line {
                    bytes: &rest[..end],
                    terminated: true,
                };
                rest = &rest[end + 1..];
                line
            }
            None => {
                let line = Line {
                    bytes: rest,
                    terminated: false,
                };
                rest = &[];
                line
            }
        };
        Some(line)
    })
}

/// Checks a run of lines. With an anchor the run is checked against it and errors are exact;
/// without one (a later run of a parallel check) the first record is only noted for
/// stitching, and errors only matter as "something is wrong".
fn scan(chunk: &[u8], anchor: Option<Anchor>) -> Result<Scanned, VerifyError> {
    let mut canonical = Vec::with_capacity(512);
    let mut previous = anchor;
    let mut first = None;
    let mut count = 0u64;
    for (index, line) in lines(chunk).enumerate() {
        count += 1;
        let fail = |seq: u64, reason: VerifyReason| VerifyError {
            seq,
            line: index + 1,
            reason,
        };
        // The previous seq is the file's word (a run scanned without an anchor takes its first
        // seq from the file): checked, so a hostile `u64::MAX` is an error, never a panic.
        let expected = match previous {
            None => 0,
            Some(p) => p
                .seq
                .checked_add(1)
                .ok_or_else(|| fail(u64::MAX, VerifyReason::SeqOverflow { after: p.seq }))?,
        };
        let record: RecordRef<'_> = match serde_json::from_slice(line.bytes) {
            Ok(record) => record,
            Err(e) => return Err(fail(expected, unparseable(&line, &e))),
        };
        if previous.is_some() && record.seq != expected {
            return Err(fail(
                expected,
                VerifyReason::SeqGap {
                    expected,
                    found: record.seq,
                },
            ));
        }
        if !line.terminated {
            return Err(fail(record.seq, VerifyReason::MissingNewline));
        }
        canonical.clear();
        record.canonical().encode_into(&mut canonical);
        let computed = sha256_hex(&canonical);
        if record.hash.as_bytes() != computed {
            return Err(fail(
                record.seq,
                VerifyReason::HashMismatch {
                    stored: record.hash.into_owned(),
                    computed: hex_string(&computed),
                },
            ));
        }
        match previous {
            Some(p) if record.prev.as_bytes() != p.hash => {
                return Err(fail(
                    record.seq,
                    VerifyReason::PrevMismatch {
                        expected: hex_string(&p.hash),
                        found: record.prev.into_owned(),
                    },
                ));
            }
            Some(_) => {}
            None => first = Some((record.seq, record.prev.into_owned())),
        }
        previous = Some(Anchor {
            seq: record.seq,
            hash: computed,
        });
    }
    Ok(Scanned {
        lines: count,
        first,
        last: previous.filter(|_| count > 0),
    })
}

fn unparseable(line: &Line<'_>, error: &serde_json::Error) -> VerifyReason {
    use serde_json::error::Category;
    let torn = if line.terminated {
        ""
    } else {
        " (torn write?)"
    };
    let what = if line.bytes.is_empty() {
        "line is empty".to_owned()
    } else if error.classify() == Category::Data {
        format!("line is not a hatch record: {error}")
    } else {
        format!("line is not valid JSON: {error}")
    };
    VerifyReason::Unparseable(format!("{what}{torn}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hatch::fixtures::{file_lines, play_events, write_log};
    use crate::hatch::{GENESIS, Hatch};
    use serde_json::json;

    fn join_lines(lines: &[String]) -> Vec<u8> {
        lines
            .iter()
            .flat_map(|l| format!("{l}\n").into_bytes())
            .collect()
    }

    fn in_memory_log(count: usize) -> Vec<u8> {
        let hatch = Hatch::in_memory();
        let mut content = Vec::new();
        for event in play_events().into_iter().cycle().take(count) {
            let record = hatch.append(event).expect("append");
            serde_json::to_writer(&mut content, &record).expect("encode");
            content.push(b'\n');
        }
        content
    }

    #[test]
    fn tampered_data_is_a_hash_mismatch_at_its_seq() {
        let (_dir, path, _) = write_log(5);
        let mut lines = file_lines(&path);
        lines[1] = lines[1].replace("\"tier\":\"solo\"", "\"tier\":\"gold\"");
        let err = verify_bytes(&join_lines(&lines)).expect_err("tampered");
        assert_eq!((err.seq, err.line), (2, 2));
        assert!(
            matches!(err.reason, VerifyReason::HashMismatch { .. }),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with("first bad record: seq 2 (line 2): hash mismatch")
        );
    }

    #[test]
    fn rehashed_tampering_breaks_the_next_link() {
        let (_dir, _path, mut records) = write_log(5);
        records[1].data = json!({"tier": "gold"});
        records[1].hash = records[1].compute_hash();
        let lines: Vec<String> = records
            .iter()
            .map(|r| serde_json::to_string(r).expect("encode"))
            .collect();
        let err = verify_bytes(&join_lines(&lines)).expect_err("relinked");
        assert_eq!((err.seq, err.line), (3, 3));
        assert!(
            matches!(err.reason, VerifyReason::PrevMismatch { .. }),
            "{err}"
        );
    }

    #[test]
    fn deleted_line_is_a_seq_gap() {
        let (_dir, path, _) = write_log(5);
        let mut lines = file_lines(&path);
        lines.remove(1);
        let err = verify_bytes(&join_lines(&lines)).expect_err("gap");
        assert_eq!((err.seq, err.line), (2, 2));
        assert_eq!(
            err.reason,
            VerifyReason::SeqGap {
                expected: 2,
                found: 3
            }
        );
    }

    #[test]
    fn swapped_lines_are_reported() {
        let (_dir, path, _) = write_log(5);
        let mut lines = file_lines(&path);
        lines.swap(2, 3);
        let err = verify_bytes(&join_lines(&lines)).expect_err("swapped");
        assert_eq!((err.seq, err.line), (3, 3));
        assert_eq!(
            err.reason,
            VerifyReason::SeqGap {
                expected: 3,
                found: 4
            }
        );
    }

    #[test]
    fn torn_last_line_is_named_by_seq() {
        let (_dir, path, _) = write_log(3);
        let content = std::fs::read(&path).expect("read");
        // Cut in the middle of the third record.
        let third_start = content[..content.len() - 1]
            .iter()
            .rposition(|&b| b == b'\n')
            .expect("three lines")
            + 1;
        let torn = &content[..third_start + 40];
        let err = verify_bytes(torn).expect_err("torn");
        assert_eq!((err.seq, err.line), (3, 3));
        match &err.reason {
            VerifyReason::Unparseable(why) => assert!(why.contains("torn write"), "{why}"),
            other => panic!("expected Unparseable, got {other:?}"),
        }
        // The whole record is there but its newline is not.
        let err = verify_bytes(&content[..content.len() - 1]).expect_err("no newline");
        assert_eq!((err.seq, err.line), (3, 3));
        assert_eq!(err.reason, VerifyReason::MissingNewline);
    }

    #[test]
    fn empty_log_is_valid() {
        let summary = verify_bytes(b"").expect("empty is valid");
        assert_eq!(summary.records, 0);
        assert_eq!(summary.last_hash, GENESIS);
        let err = verify_bytes(b"\n").expect_err("blank line");
        assert_eq!((err.seq, err.line), (1, 1));
    }

    #[test]
    fn a_foreign_field_is_not_a_record() {
        let (_dir, path, _) = write_log(2);
        let mut lines = file_lines(&path);
        lines[1] = lines[1].replacen('{', "{\"extra\":1,", 1);
        let err = verify_bytes(&join_lines(&lines)).expect_err("extra field");
        assert_eq!((err.seq, err.line), (2, 2));
        match &err.reason {
            VerifyReason::Unparseable(why) => assert!(why.contains("extra"), "{why}"),
            other => panic!("expected Unparseable, got {other:?}"),
        }
    }

    #[test]
    fn large_logs_verify_in_parallel_and_still_name_the_first_bad_record() {
        let content = in_memory_log(4000);
        assert!(content.len() > PARALLEL_VERIFY_MIN_BYTES);
        let summary = verify_bytes(&content).expect("valid");
        assert_eq!(summary.records, 4000);
        // Tamper late in the log, where another thread owns the lines.
        let text = String::from_utf8(content).expect("utf8");
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        lines[3499] = lines[3499].replace("\"attempts\":", "\"attempts\":1");
        let err = verify_bytes(&join_lines(&lines)).expect_err("tampered");
        assert_eq!((err.seq, err.line), (3500, 3500));
    }

    #[test]
    fn a_gap_at_a_run_boundary_is_caught_when_stitching() {
        let content = in_memory_log(4000);
        let runs = split_at_lines(&content, 2);
        // Drop the first line of the second run: each run is fine on its own.
        let boundary = runs[1].start;
        let line_len = content[boundary..]
            .iter()
            .position(|&b| b == b'\n')
            .expect("line")
            + 1;
        let mut gapped = content[..boundary].to_vec();
        gapped.extend_from_slice(&content[boundary + line_len..]);
        let mut stitched_runs = runs.clone();
        stitched_runs[1] = boundary..gapped.len();
        stitched_runs.truncate(2);
        assert!(scan(&gapped[stitched_runs[1].clone()], None).is_ok());
        assert!(verify_parallel(&gapped, &stitched_runs).is_none());
        let missing = content[..boundary].iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        let err = verify_bytes(&gapped).expect_err("gap");
        assert_eq!(err.seq, missing);
        assert_eq!(
            err.reason,
            VerifyReason::SeqGap {
                expected: missing,
                found: missing + 1
            }
        );
    }

    /// A hostile log: records from 101 on claim `seq = u64::MAX`, each with its own hash
    /// recomputed. A run of them scanned on its own (as the parallel verifier does) used to
    /// overflow `seq + 1` and panic; it is an error, and the verdict names record 101.
    #[test]
    fn a_hostile_max_seq_is_an_error_never_an_overflow() {
        let content = in_memory_log(4000);
        let mut records: Vec<crate::hatch::Record> = String::from_utf8(content)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        for r in &mut records[100..] {
            r.seq = u64::MAX;
            r.hash = r.compute_hash();
        }
        let lines: Vec<String> = records
            .iter()
            .map(|r| serde_json::to_string(r).unwrap())
            .collect();
        let hostile = join_lines(&lines);
        assert!(hostile.len() >= PARALLEL_VERIFY_MIN_BYTES);
        // A later run, scanned without an anchor, as each thread of the parallel check does.
        let later = join_lines(&lines[200..]);
        let err = scan(&later, None)
            .err()
            .expect("a run of equal seqs is an error");
        assert_eq!(err.reason, VerifyReason::SeqOverflow { after: u64::MAX });
        for parts in 2..=MAX_VERIFY_THREADS {
            assert!(verify_parallel(&hostile, &split_at_lines(&hostile, parts)).is_none());
        }
        let err = verify_bytes(&hostile).expect_err("hostile");
        assert_eq!((err.seq, err.line), (101, 101));
        assert_eq!(
            err.reason,
            VerifyReason::SeqGap {
                expected: 101,
                found: u64::MAX
            }
        );
    }

    #[test]
    fn split_at_lines_covers_everything_on_line_boundaries() {
        let content = in_memory_log(50);
        for parts in 1..6 {
            let runs = split_at_lines(&content, parts);
            assert_eq!(runs.first().map(|r| r.start), Some(0));
            assert_eq!(runs.last().map(|r| r.end), Some(content.len()));
            for pair in runs.windows(2) {
                assert_eq!(pair[0].end, pair[1].start);
                assert_eq!(content[pair[0].end - 1], b'\n');
            }
        }
    }
}
