//! A pure parser of `text/event-stream` (WHATWG HTML §9.2.6), for the console's follower and
//! for fuzzing: lines end with CRLF, LF or CR (a CR at the end of one chunk and an LF at the
//! start of the next are one line end); fields `data`, `id`, `event`, `retry`; comments and
//! unknown fields are ignored except `mac`, which
//! authenticates its event (see `vault::answer`) and is kept with it; a leading BOM is skipped. Unlike a browser it is bounded: a line
//! longer than `max_line` or an event larger than `max_event` is an error, not a buffer that
//! grows with whatever the peer sends.

use std::time::Duration;

/// Default bound on one line (a KAHN frame is a few hundred bytes).
pub const DEFAULT_MAX_LINE: usize = 64 * 1024;
/// Default bound on one event's data.
pub const DEFAULT_MAX_EVENT: usize = 256 * 1024;

/// One dispatched event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseMessage {
    /// The last event ID when it was dispatched (it persists across events, per the spec).
    pub id: Option<String>,
    /// The `event:` type, when one was given.
    pub event: Option<String>,
    /// The data lines joined with LF.
    pub data: String,
    /// The event's `mac:` field (the worker's MAC of this frame), when one was given. Unlike
    /// `id` it does not persist: each event carries its own.
    pub mac: Option<String>,
}

/// Why the stream cannot be parsed further.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    #[error("SSE line longer than {max} bytes")]
    LineTooLong { max: usize },
    #[error("SSE event larger than {max} bytes")]
    EventTooLarge { max: usize },
}

/// The parser's state between chunks.
#[derive(Debug)]
pub struct SseParser {
    max_line: usize,
    max_event: usize,
    line: Vec<u8>,
    /// The last chunk ended in CR: an LF first in the next one belongs to it.
    after_cr: bool,
    /// Still at the very start of the stream (a BOM may follow).
    at_start: bool,
    data: String,
    event: Option<String>,
    mac: Option<String>,
    last_id: Option<String>,
    retry: Option<Duration>,
}

impl Default for SseParser {
    fn default() -> Self {
        SseParser::new(DEFAULT_MAX_LINE, DEFAULT_MAX_EVENT)
    }
}

impl SseParser {
    pub fn new(max_line: usize, max_event: usize) -> SseParser {
        SseParser {
            max_line,
            max_event,
            line: Vec::new(),
            after_cr: false,
            at_start: true,
            data: String::new(),
            event: None,
            mac: None,
            last_id: None,
            retry: None,
        }
    }

    /// The reconnection time the stream asked for (`retry:`), if any.
    pub fn retry(&self) -> Option<Duration> {
        self.retry
    }

    /// The last event ID seen (for `Last-Event-ID` on reconnect).
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_id.as_deref()
    }

    /// Feeds a chunk; dispatched events are pushed to `out`.
    pub fn push(&mut self, mut chunk: &[u8], out: &mut Vec<SseMessage>) -> Result<(), SseError> {
        if self.at_start {
            // The BOM may be split across chunks; only a full one is skipped.
            const BOM: &[u8] = b"\xEF\xBB\xBF";
            let have = self.line.len() + chunk.len();
            if have < BOM.len() && BOM.starts_with(&[&self.line[..], chunk].concat()) {
                self.line.extend_from_slice(chunk);
                return Ok(());
            }
            let mut joined = std::mem::take(&mut self.line);
            joined.extend_from_slice(chunk);
            self.at_start = false;
            let rest = joined.strip_prefix(BOM).unwrap_or(&joined).to_vec();
            return self.push(&rest, out);
        }
        if self.after_cr {
            self.after_cr = false;
            if let Some(rest) = chunk.strip_prefix(b"\n") {
                chunk = rest;
            }
        }
        while let Some(end) = chunk.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.extend_line(&chunk[..end])?;
            let line = std::mem::take(&mut self.line);
            self.process_line(&line, out)?;
            let was_cr = chunk[end] == b'\r';
            chunk = &chunk[end + 1..];
            if was_cr {
                match chunk.first() {
                    Some(b'\n') => chunk = &chunk[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
        self.extend_line(chunk)
    }

    fn extend_line(&mut self, bytes: &[u8]) -> Result<(), SseError> {
        if self.line.len() + bytes.len() > self.max_line {
            return Err(SseError::LineTooLong { max: self.max_line });
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn process_line(&mut self, line: &[u8], out: &mut Vec<SseMessage>) -> Result<(), SseError> {
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(());
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (&*line, ""),
        };
        match field {
            "data" => {
                if self.data.len() + value.len() + 1 > self.max_event {
                    return Err(SseError::EventTooLarge {
                        max: self.max_event,
                    });
                }
                self.data.push_str(value);
                self.data.push('\n');
            }
            "event" => self.event = Some(value.to_owned()),
            "mac" => self.mac = Some(value.to_owned()),
            "id" if !value.contains('\0') => self.last_id = Some(value.to_owned()),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                if let Ok(ms) = value.parse::<u64>() {
                    self.retry = Some(Duration::from_millis(ms));
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<SseMessage>) {
        let event = self.event.take();
        let mac = self.mac.take();
        if self.data.is_empty() {
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop();
        out.push(SseMessage {
            id: self.last_id.clone(),
            event,
            data,
            mac,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(chunks: &[&[u8]]) -> Result<Vec<SseMessage>, SseError> {
        let mut p = SseParser::default();
        let mut out = Vec::new();
        for c in chunks {
            p.push(c, &mut out)?;
        }
        Ok(out)
    }

    fn msg(id: Option<&str>, data: &str) -> SseMessage {
        SseMessage {
            id: id.map(str::to_owned),
            event: None,
            data: data.to_owned(),
            mac: None,
        }
    }

    #[test]
    fn cr_lf_and_crlf_all_end_lines() {
        let expected = vec![msg(Some("1"), "a\nb"), msg(Some("2"), "c")];
        for ending in ["\n", "\r", "\r\n"] {
            let text = "id: 1\ndata: a\ndata: b\n\nid: 2\ndata: c\n\n".replace('\n', ending);
            assert_eq!(
                parse_all(&[text.as_bytes()]).unwrap(),
                expected,
                "{ending:?}"
            );
            // Byte by byte: a CR at a chunk's end and the LF that starts the next are one end.
            let bytes: Vec<&[u8]> = text.as_bytes().chunks(1).collect();
            assert_eq!(parse_all(&bytes).unwrap(), expected, "{ending:?} bytewise");
        }
    }

    #[test]
    fn fields_follow_the_spec() {
        let mut p = SseParser::default();
        let mut out = Vec::new();
        p.push(
            b"\xEF\xBB\xBF: comment\nretry: 2500\nretry: x\nevent: frame\ndata\nfoo: bar\n\n\ndata:no-space\n\n",
            &mut out,
        )
        .unwrap();
        assert_eq!(p.retry(), Some(Duration::from_millis(2500)));
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].event.as_deref(), Some("frame"));
        assert_eq!(out[0].data, "");
        assert_eq!(out[1], msg(None, "no-space"));
        // An event without data is not dispatched; the id persists.
        p.push(b"id: 7\n\ndata: x\n\n", &mut out).unwrap();
        assert_eq!(out.last().unwrap(), &msg(Some("7"), "x"));
        assert_eq!(p.last_event_id(), Some("7"));
    }

    #[test]
    fn buffers_are_bounded() {
        let mut p = SseParser::new(16, 32);
        let mut out = Vec::new();
        assert_eq!(
            p.push(&[b'a'; 17], &mut out),
            Err(SseError::LineTooLong { max: 16 })
        );
        let mut p = SseParser::new(16, 32);
        let err = (0..10)
            .map(|_| p.push(b"data: 0123456\n", &mut out))
            .find_map(Result::err);
        assert_eq!(err, Some(SseError::EventTooLarge { max: 32 }));
    }
}
