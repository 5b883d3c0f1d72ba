//! The output of one container, captured as it arrives and bounded, so a chatty container
//! cannot grow the harness without end.

use std::sync::Mutex;

use testcontainers::core::logs::LogFrame;

/// Most bytes of log kept per container; older output is dropped first.
const LOG_CAP: usize = 1 << 20;

/// Output of one container, kept as it arrives (testcontainers log consumer).
#[derive(Default)]
pub(super) struct LogBuffer(Mutex<String>);

impl LogBuffer {
    pub(super) fn push(&self, frame: &LogFrame) {
        let (tag, bytes) = match frame {
            LogFrame::StdOut(b) => ("out", b),
            LogFrame::StdErr(b) => ("err", b),
        };
        let text = String::from_utf8_lossy(bytes);
        let mut buf = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for line in text.lines() {
            buf.push_str(tag);
            buf.push_str("| ");
            buf.push_str(line);
            buf.push('\n');
        }
        if buf.len() > LOG_CAP {
            let mut cut = buf.len() - LOG_CAP / 2;
            while !buf.is_char_boundary(cut) {
                cut += 1;
            }
            buf.replace_range(..cut, "[… earlier output dropped]\n");
        }
    }

    pub(super) fn text(&self) -> String {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_buffer_tags_streams_and_stays_bounded() {
        let buf = LogBuffer::default();
        buf.push(&LogFrame::StdOut(
            "console listening on 0.0.0.0:8080\n".into(),
        ));
        buf.push(&LogFrame::StdErr("a\nb\n".into()));
        assert_eq!(
            buf.text(),
            "out| console listening on 0.0.0.0:8080\nerr| a\nerr| b\n"
        );
        let line = "x".repeat(1000);
        for _ in 0..3000 {
            buf.push(&LogFrame::StdOut(line.clone().into()));
        }
        let text = buf.text();
        assert!(text.len() <= LOG_CAP, "{}", text.len());
        assert!(text.starts_with("[… earlier output dropped]\n"));
    }
}
