//! MACs of the worker's answers (contract §5, "the worker is authenticated too"): the console
//! records nothing on the worker's word unless that word carries a MAC under the VAULT key the
//! request was signed with, bound to the request's bearer nonce, the run id and, for a frame,
//! its `seq`.
//!
//! ```text
//! tag:             rocky-mac1.<key_id>.<hex hmac-sha256>
//! 202 (header):    rocky-answer-mac: <tag>
//!   hmac input:    "rocky-accepted1\n{nonce}\n{run_id}\n{hex sha256(body)}"
//! frame (SSE):     mac: <tag>             (a field line of the event, beside id: and data:)
//!   hmac input:    "rocky-frame1\n{nonce}\n{run_id}\n{seq}\n{hex sha256(data)}"
//! ```
//!
//! The nonce is the one in the bearer of the request being answered (the submission, or the
//! `GET …/events` connection), so an answer recorded once cannot be replayed to another request,
//! and a frame cannot be moved to another run or another place in its run. The `data:` JSON
//! stays exactly `kahn/1`. The two inputs start with distinct tags, so a 202's MAC never
//! authenticates a frame.

use sha2::{Digest, Sha256};

use super::Keyring;

/// The response header that authenticates a 202 to a submission.
pub const ANSWER_MAC_HEADER: &str = "rocky-answer-mac";
/// The SSE field that authenticates a frame.
pub const FRAME_MAC_FIELD: &str = "mac";

/// Version tag of the tag format; a tag without it (or another version) is refused.
const SCHEME: &str = "rocky-mac1";
/// Longest tag read: a longer value is refused before any parsing (the peer chooses it).
const MAX_TAG_LEN: usize = SCHEME.len() + 1 + 64 + 1 + 64;

/// What a MAC vouches for.
#[derive(Clone, Copy, Debug)]
pub enum Answer<'a> {
    /// The 202 to the submission whose bearer carried `nonce`.
    Accepted {
        nonce: &'a str,
        run_id: &'a str,
        body: &'a [u8],
    },
    /// Frame `seq` of run `run_id`, streamed to the events request whose bearer carried `nonce`.
    Frame {
        nonce: &'a str,
        run_id: &'a str,
        seq: u64,
        data: &'a str,
    },
}

impl Answer<'_> {
    fn canonical(&self) -> String {
        match self {
            Answer::Accepted {
                nonce,
                run_id,
                body,
            } => format!(
                "rocky-accepted1\n{nonce}\n{run_id}\n{}",
                hex::encode(Sha256::digest(body))
            ),
            Answer::Frame {
                nonce,
                run_id,
                seq,
                data,
            } => format!(
                "rocky-frame1\n{nonce}\n{run_id}\n{seq}\n{}",
                hex::encode(Sha256::digest(data.as_bytes()))
            ),
        }
    }
}

/// Why an answer is not authenticated. Fixed, short sentences: they land in run views, gap
/// reports and snapshots, and never echo what the peer sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error("not authenticated: it carries no MAC")]
    Missing,
    #[error("not authenticated: its MAC is not a {SCHEME} tag")]
    Malformed,
    #[error("not authenticated: its MAC names unknown key id {0}")]
    UnknownKeyId(String),
    #[error("not authenticated: MAC mismatch under key id {0}")]
    Mismatch(String),
}

impl Keyring {
    /// The tag for `answer` under `key_id` (the key that signed the request being answered),
    /// or `None` when this keyring does not hold that key.
    pub fn answer_tag(&self, key_id: &str, answer: &Answer<'_>) -> Option<String> {
        let secret = self.keys.get(key_id)?;
        let tag = super::mac::mac(secret, answer.canonical().as_bytes());
        Some(format!("{SCHEME}.{key_id}.{}", hex::encode(tag)))
    }

    /// Checks `tag` (as received, `None` when absent) over `answer`, in constant time.
    pub fn verify_answer(&self, tag: Option<&str>, answer: &Answer<'_>) -> Result<(), AnswerError> {
        let tag = tag.ok_or(AnswerError::Missing)?.trim();
        if tag.len() > MAX_TAG_LEN {
            return Err(AnswerError::Malformed);
        }
        let mut parts = tag.split('.');
        let (Some(SCHEME), Some(key_id), Some(hex_mac), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AnswerError::Malformed);
        };
        let mac = hex::decode(hex_mac).map_err(|_| AnswerError::Malformed)?;
        if mac.len() != 32 || key_id.is_empty() {
            return Err(AnswerError::Malformed);
        }
        self.mac_verify(key_id, answer.canonical().as_bytes(), &mac)
            .map_err(|e| match e {
                super::MacError::UnknownKeyId(id) => AnswerError::UnknownKeyId(id),
                super::MacError::Mismatch(id) => AnswerError::Mismatch(id),
            })
    }
}

/// The nonce of a bearer header (`Bearer rocky2.<key_id>.<ts>.<nonce>.<mac>`), which the
/// worker's answers to that request are bound to.
pub fn bearer_nonce(header: &str) -> Option<String> {
    super::bearer::parse_bearer_nonce(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> Keyring {
        Keyring::single("v1", b"answer secret")
    }

    const FRAME: Answer<'static> = Answer::Frame {
        nonce: "0123456789abcdef",
        run_id: "run-1",
        seq: 3,
        data: r#"{"schema":"kahn/1"}"#,
    };

    #[test]
    fn a_tag_verifies_for_its_answer_only() {
        let k = ring();
        let tag = k.answer_tag("v1", &FRAME).expect("known key");
        assert!(tag.starts_with("rocky-mac1.v1."), "{tag}");
        assert_eq!(k.verify_answer(Some(&tag), &FRAME), Ok(()));
        let mismatch = Err(AnswerError::Mismatch("v1".into()));
        let others = [
            Answer::Frame {
                nonce: "0123456789abcdee",
                run_id: "run-1",
                seq: 3,
                data: r#"{"schema":"kahn/1"}"#,
            },
            Answer::Frame {
                nonce: "0123456789abcdef",
                run_id: "run-2",
                seq: 3,
                data: r#"{"schema":"kahn/1"}"#,
            },
            Answer::Frame {
                nonce: "0123456789abcdef",
                run_id: "run-1",
                seq: 4,
                data: r#"{"schema":"kahn/1"}"#,
            },
            Answer::Frame {
                nonce: "0123456789abcdef",
                run_id: "run-1",
                seq: 3,
                data: r#"{"schema":"kahn/2"}"#,
            },
            Answer::Accepted {
                nonce: "0123456789abcdef",
                run_id: "run-1",
                body: br#"{"schema":"kahn/1"}"#,
            },
        ];
        for other in others {
            assert_eq!(k.verify_answer(Some(&tag), &other), mismatch, "{other:?}");
        }
        let stranger = Keyring::single("v1", b"no the secret");
        assert_eq!(stranger.verify_answer(Some(&tag), &FRAME), mismatch);
    }

    #[test]
    fn missing_malformed_and_unknown_tags_are_refused() {
        let k = ring();
        assert_eq!(k.verify_answer(None, &FRAME), Err(AnswerError::Missing));
        let good = k.answer_tag("v1", &FRAME).expect("known key");
        let hex_mac = good.rsplit('.').next().expect("mac");
        for bad in [
            String::new(),
            "rocky-mac1".into(),
            format!("rocky-mac0.v1.{hex_mac}"),
            format!("rocky-mac1..{hex_mac}"),
            format!("rocky-mac1.v1.{}", &hex_mac[..62]),
            format!("rocky-mac1.v1.{hex_mac}.x"),
            format!("rocky-mac1.v1.zz{}", &hex_mac[2..]),
            "x".repeat(10_000),
        ] {
            assert_eq!(
                k.verify_answer(Some(&bad), &FRAME),
                Err(AnswerError::Malformed),
                "{bad:.40}"
            );
        }
        let other = Keyring::single("v9", b"answer secret");
        let tag = other.answer_tag("v9", &FRAME).expect("known key");
        assert_eq!(
            k.verify_answer(Some(&tag), &FRAME),
            Err(AnswerError::UnknownKeyId("v9".into()))
        );
        assert_eq!(k.answer_tag("v9", &FRAME), None);
    }

    #[test]
    fn the_nonce_comes_from_the_bearer() {
        let k = ring();
        let bearer = k.sign_with_nonce("GET", "/v1/runs/r/events", b"", 1, "00112233aabbccdd");
        assert_eq!(bearer_nonce(&bearer).as_deref(), Some("00112233aabbccdd"));
        assert_eq!(bearer_nonce("Bearer nonsense"), None);
    }
}
