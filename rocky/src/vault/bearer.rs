//! The HMAC bearer between console and worker: signing a request with the keyring's active
//! key, verifying one against any known key, and why a bearer is refused.
//!
//! ```text
//! Authorization: Bearer rocky2.<key_id>.<unix_ts>.<nonce>.<hex hmac-sha256>
//! hmac input:    "rocky2\n{METHOD}\n{path?query}\n{unix_ts}\n{nonce}\n{hex sha256(body)}"
//! ```
//!
//! The nonce (16 hex digits, fresh per signature) makes two identical requests in the same
//! second carry different bearers, so refusing a replayed signature never refuses a genuine
//! repeat. The signed target is the whole request target, path and query as sent. A verifier that
//! holds a [`ReplayGuard`](super::ReplayGuard) accepts each signature once ([`Keyring::verify_once`]).

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::Keyring;

use crate::api::ErrorCode;

type HmacSha256 = Hmac<Sha256>;

/// Version tag of the token format and of the canonical string; bumping it invalidates
/// every outstanding token, which is what a format change must do.
const SCHEME: &str = "rocky2";

/// Length of the nonce in hex digits.
const NONCE_HEX_LEN: usize = 16;

/// Clock skew tolerated in either direction when verifying a bearer.
pub const DEFAULT_MAX_SKEW_SECS: i64 = 30;

/// Why a bearer was refused. Each maps to a 401 on the worker; the message says exactly what
/// was wrong so the console can report drift ("signature mismatch, key id v1") without logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BearerError {
    #[error("no Authorization header")]
    Missing,
    #[error("malformed bearer: {0}")]
    Malformed(String),
    #[error("unknown key id {0}")]
    UnknownKeyId(String),
    #[error("{}", describe_skew(*skew_secs, *max_secs))]
    Skew { skew_secs: i64, max_secs: i64 },
    #[error("signature mismatch, key id {key_id}")]
    SignatureMismatch { key_id: String },
    #[error("{0}")]
    Replay(#[from] super::ReplayError),
}

impl BearerError {
    /// The error code a 401 carries: `replayed` for a replay (or a bearer older than the
    /// verifier, which could be one), `unauthorized` otherwise.
    pub fn code(&self) -> ErrorCode {
        match self {
            BearerError::Replay(
                super::ReplayError::Replayed | super::ReplayError::BeforeStart(_),
            ) => ErrorCode::Replayed,
            BearerError::Replay(super::ReplayError::Full(_)) => ErrorCode::ReplayMemoryFull,
            _ => ErrorCode::Unauthorized,
        }
    }
}

/// `skew_secs` is token time minus verifier time: positive means the token is from the future.
fn describe_skew(skew_secs: i64, max_secs: i64) -> String {
    if skew_secs >= 0 {
        format!("timestamp {skew_secs}s in the future (max skew {max_secs}s)")
    } else {
        format!(
            "timestamp {}s in the past (max skew {max_secs}s)",
            skew_secs.unsigned_abs()
        )
    }
}

impl Keyring {
    /// Signs a request with the active key and returns the whole header value,
    /// `Bearer rocky2.<key_id>.<ts>.<hex>`. `path` is the request target as sent
    /// (path plus query, if any); the verifier must see the same string.
    pub fn sign(&self, method: &str, path: &str, body: &[u8], now_unix: i64) -> String {
        let nonce = crate::ids::random_hex(NONCE_HEX_LEN / 2);
        self.sign_with_nonce(method, path, body, now_unix, &nonce)
    }

    /// [`sign`](Keyring::sign) with a given nonce (16 lower-case hex digits): for tests.
    pub fn sign_with_nonce(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        now_unix: i64,
        nonce: &str,
    ) -> String {
        let secret = &self.keys[&self.active];
        let mac = mac_for(secret, method, path, body, now_unix, nonce).finalize();
        format!(
            "Bearer {SCHEME}.{}.{now_unix}.{nonce}.{}",
            self.active,
            hex::encode(mac.into_bytes())
        )
    }

    /// Verifies an `Authorization` header value against this request and returns the key
    /// id that signed it. The timestamp must be within `max_skew_secs` of `now_unix` in both
    /// directions; the signature is compared in constant time.
    pub fn verify(
        &self,
        header: Option<&str>,
        method: &str,
        path: &str,
        body: &[u8],
        now_unix: i64,
        max_skew_secs: i64,
    ) -> Result<String, BearerError> {
        let header = header.ok_or(BearerError::Missing)?;
        let token = parse_header(header)?;
        let secret = self
            .keys
            .get(token.key_id)
            .ok_or_else(|| BearerError::UnknownKeyId(token.key_id.to_string()))?;
        let skew_secs = token.ts.saturating_sub(now_unix);
        if skew_secs.unsigned_abs() > max_skew_secs.unsigned_abs() {
            return Err(BearerError::Skew {
                skew_secs,
                max_secs: max_skew_secs,
            });
        }
        mac_for(secret, method, path, body, token.ts, token.nonce)
            .verify_slice(&token.signature)
            .map_err(|_| BearerError::SignatureMismatch {
                key_id: token.key_id.to_string(),
            })?;
        Ok(token.key_id.to_string())
    }

    /// [`verify`](Keyring::verify), then refuses a bearer whose signature `guard` has seen
    /// within the skew window (`BearerError::Replay`). `target` is the path and query.
    #[expect(
        clippy::too_many_arguments,
        reason = "the token's fields, each named at the call site"
    )]
    pub fn verify_once(
        &self,
        guard: &super::ReplayGuard,
        header: Option<&str>,
        method: &str,
        target: &str,
        body: &[u8],
        now_unix: i64,
        max_skew_secs: i64,
    ) -> Result<String, BearerError> {
        let key_id = self.verify(header, method, target, body, now_unix, max_skew_secs)?;
        // verify succeeded, so the header parses and the signature is 32 bytes.
        let token = parse_header(header.unwrap_or_default())?;
        let mut signature = [0u8; 32];
        signature.copy_from_slice(&token.signature);
        guard.check(signature, token.ts, now_unix, max_skew_secs)?;
        Ok(key_id)
    }
}

/// Parses a bearer header without checking it against any key: for fuzzing and diagnostics.
/// Returns (key id, timestamp).
pub fn parse_bearer(header: &str) -> Result<(String, i64), BearerError> {
    parse_header(header).map(|t| (t.key_id.to_owned(), t.ts))
}

/// The nonce of a well-formed bearer header, which the worker's answers to it are bound to
/// (see `answer`).
pub(super) fn parse_bearer_nonce(header: &str) -> Option<String> {
    parse_header(header).ok().map(|t| t.nonce.to_owned())
}

/// The parts of a bearer token, borrowed from the header.
struct Token<'a> {
    key_id: &'a str,
    ts: i64,
    nonce: &'a str,
    signature: Vec<u8>,
}

fn parse_header(header: &str) -> Result<Token<'_>, BearerError> {
    let malformed = |why: &str| BearerError::Malformed(why.to_string());
    let (scheme, token) = header
        .trim()
        .split_once(' ')
        .ok_or_else(|| malformed("expected \"Bearer <token>\""))?;
    // The auth scheme is case-insensitive (RFC 9110 §11.1); the token itself is not.
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(malformed("expected the Bearer scheme"));
    }
    let parts: Vec<&str> = token.trim().split('.').collect();
    let [scheme_tag, key_id, ts, nonce, sig] = parts[..] else {
        return Err(malformed(&format!(
            "expected {SCHEME}.<key_id>.<unix_ts>.<nonce>.<hex signature>, found {} part(s)",
            parts.len()
        )));
    };
    if scheme_tag != SCHEME {
        return Err(malformed(&format!("expected the {SCHEME} token format")));
    }
    if key_id.is_empty() {
        return Err(malformed("empty key id"));
    }
    // Digits only: i64::from_str would also take "+5" and "-5", which no signer emits.
    if ts.is_empty() || !ts.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed("timestamp is not a non-negative integer"));
    }
    let ts: i64 = ts
        .parse()
        .map_err(|_| malformed("timestamp is out of range"))?;
    if nonce.len() != NONCE_HEX_LEN
        || !nonce
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(malformed(&format!(
            "nonce is not {NONCE_HEX_LEN} lower-case hex digits"
        )));
    }
    let signature = hex::decode(sig).map_err(|_| malformed("signature is not hex"))?;
    if signature.len() != 32 {
        return Err(malformed("signature is not 32 bytes of HMAC-SHA256"));
    }
    Ok(Token {
        key_id,
        ts,
        nonce,
        signature,
    })
}

/// HMAC over the canonical string. The body enters as its SHA-256 so the canonical string
/// stays line-oriented whatever the body holds; the method is upper-cased because HTTP
/// stacks disagree on its case but never on its meaning.
fn mac_for(
    secret: &[u8],
    method: &str,
    path: &str,
    body: &[u8],
    ts: i64,
    nonce: &str,
) -> HmacSha256 {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret).expect("hmac accepts any key length");
    let canonical = format!(
        "{SCHEME}\n{}\n{path}\n{ts}\n{nonce}\n{}",
        method.to_ascii_uppercase(),
        hex::encode(Sha256::digest(body))
    );
    mac.update(canonical.as_bytes());
    mac
}

/// Seconds since the Unix epoch (negative before it, which only a broken clock yields).
pub fn now_unix() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::fixtures::{BODY, NOW, verify};

    fn ring() -> Keyring {
        Keyring::single("v1", b"correct horse battery staple")
    }

    #[test]
    fn sign_then_verify() {
        let k = ring();
        let h = k.sign("POST", "/v1/runs", BODY, NOW);
        assert!(h.starts_with("Bearer rocky2.v1.1750000000."), "{h}");
        assert_eq!(verify(&k, &h), Ok("v1".to_string()));
        // Method case does not matter; the rest does.
        assert_eq!(
            k.verify(Some(&h), "post", "/v1/runs", BODY, NOW, 30),
            Ok("v1".into())
        );
    }

    #[test]
    fn wrong_secret_is_a_mismatch_naming_the_key_id() {
        let signer = Keyring::single("v1", b"another secret");
        let h = signer.sign("POST", "/v1/runs", BODY, NOW);
        let err = verify(&ring(), &h).unwrap_err();
        assert_eq!(
            err,
            BearerError::SignatureMismatch {
                key_id: "v1".into()
            }
        );
        assert_eq!(err.to_string(), "signature mismatch, key id v1");
    }

    #[test]
    fn tampering_is_a_mismatch() {
        let k = ring();
        let h = k.sign("POST", "/v1/runs", BODY, NOW);
        let mismatch = Err(BearerError::SignatureMismatch {
            key_id: "v1".into(),
        });
        assert_eq!(
            k.verify(Some(&h), "POST", "/v1/runs", b"{}", NOW, 30),
            mismatch,
            "body"
        );
        assert_eq!(
            k.verify(Some(&h), "PUT", "/v1/runs", BODY, NOW, 30),
            mismatch,
            "method"
        );
        assert_eq!(
            k.verify(Some(&h), "POST", "/v1/runs/x/events", BODY, NOW, 30),
            mismatch,
            "path"
        );
        // Move the timestamp by one second but keep the signature.
        let tampered = h.replace(".1750000000.", ".1750000001.");
        assert_ne!(tampered, h);
        assert_eq!(verify(&k, &tampered), mismatch, "timestamp");
        // Flip one signature nibble.
        let last = h.chars().last().unwrap();
        let flipped = format!(
            "{}{}",
            &h[..h.len() - 1],
            if last == '0' { '1' } else { '0' }
        );
        assert_eq!(verify(&k, &flipped), mismatch, "signature");
    }

    #[test]
    fn skew_is_bounded_both_ways() {
        let k = ring();
        for (offset, ok) in [
            (30, true),
            (-30, true),
            (31, false),
            (-31, false),
            (0, true),
        ] {
            let h = k.sign("POST", "/v1/runs", BODY, NOW + offset);
            let got = verify(&k, &h);
            if ok {
                assert_eq!(got, Ok("v1".into()), "offset {offset}");
            } else {
                assert_eq!(
                    got,
                    Err(BearerError::Skew {
                        skew_secs: offset,
                        max_secs: 30
                    }),
                    "offset {offset}"
                );
            }
        }
        let future = BearerError::Skew {
            skew_secs: 45,
            max_secs: 30,
        };
        assert_eq!(
            future.to_string(),
            "timestamp 45s in the future (max skew 30s)"
        );
        let past = BearerError::Skew {
            skew_secs: -45,
            max_secs: 30,
        };
        assert_eq!(past.to_string(), "timestamp 45s in the past (max skew 30s)");
    }

    #[test]
    fn unknown_key_id() {
        let signer = Keyring::single("v9", b"whatever");
        let h = signer.sign("POST", "/v1/runs", BODY, NOW);
        let err = verify(&ring(), &h).unwrap_err();
        assert_eq!(err, BearerError::UnknownKeyId("v9".into()));
        assert_eq!(err.to_string(), "unknown key id v9");
    }

    #[test]
    fn missing_and_malformed() {
        let k = ring();
        assert_eq!(
            k.verify(None, "POST", "/v1/runs", BODY, NOW, 30),
            Err(BearerError::Missing)
        );
        assert_eq!(BearerError::Missing.to_string(), "no Authorization header");
        let good = k.sign("POST", "/v1/runs", BODY, NOW);
        let sig = good.rsplit('.').next().unwrap().to_string();
        let sig = format!("0123456789abcdef.{sig}");
        let cases = [
            "".to_string(),
            "Bearer".to_string(),
            format!("Basic rocky2.v1.{NOW}.{sig}"),
            "Bearer rocky2".to_string(),
            "Bearer rocky2.v1".to_string(),
            format!("Bearer rocky2.v1.{NOW}"),
            format!("Bearer rocky1.v1.{NOW}.{}", &sig[17..]),
            format!("Bearer rocky2.v1.{NOW}.{sig}.extra"),
            format!("Bearer rocky3.v1.{NOW}.{sig}"),
            format!("Bearer rocky2..{NOW}.{sig}"),
            format!("Bearer rocky2.v1.abc.{sig}"),
            format!("Bearer rocky2.v1.-{NOW}.{sig}"),
            format!("Bearer rocky2.v1.99999999999999999999.{sig}"),
            format!("Bearer rocky2.v1.{NOW}.0123456789abcdef.zz{}", &sig[19..]),
            format!("Bearer rocky2.v1.{NOW}.0123456789ABCDEF.{}", &sig[17..]),
            format!("Bearer rocky2.v1.{NOW}.{}", &sig[17..]),
            format!("Bearer rocky2.v1.{NOW}.{}", &sig[..79]),
            format!("Bearer rocky2.v1.{NOW}.{sig}00"),
        ];
        for case in cases {
            match verify(&k, &case) {
                Err(BearerError::Malformed(why)) => assert!(!why.is_empty()),
                other => panic!("{case:?} gave {other:?}"),
            }
        }
        // The scheme name is case-insensitive.
        let lower = good.replacen("Bearer", "bearer", 1);
        assert_eq!(verify(&k, &lower), Ok("v1".into()));
    }

    #[test]
    fn rotation_accepts_the_previous_key() {
        let old = Keyring::single("v0", b"old secret");
        let rotated = Keyring::new(
            "v1",
            vec![
                ("v1".into(), b"new secret".to_vec()),
                ("v0".into(), b"old secret".to_vec()),
            ],
        )
        .unwrap();
        assert_eq!(rotated.active_key_id(), "v1");
        let from_old = old.sign("POST", "/v1/runs", BODY, NOW);
        assert_eq!(verify(&rotated, &from_old), Ok("v0".into()));
        let from_new = rotated.sign("POST", "/v1/runs", BODY, NOW);
        assert!(from_new.starts_with("Bearer rocky2.v1."));
        assert_eq!(verify(&rotated, &from_new), Ok("v1".into()));
        // A verifier that has not learned v1 yet says so precisely.
        assert_eq!(
            verify(&old, &from_new),
            Err(BearerError::UnknownKeyId("v1".into()))
        );
    }

    #[test]
    fn query_is_signed() {
        let k = ring();
        let h = k.sign("GET", "/v1/runs/r1/events?from=1", b"", NOW);
        assert_eq!(
            k.verify(Some(&h), "GET", "/v1/runs/r1/events?from=1", b"", NOW, 30),
            Ok("v1".into())
        );
        for other in ["/v1/runs/r1/events", "/v1/runs/r1/events?from=2"] {
            assert_eq!(
                k.verify(Some(&h), "GET", other, b"", NOW, 30),
                Err(BearerError::SignatureMismatch {
                    key_id: "v1".into()
                }),
                "{other}"
            );
        }
    }

    #[test]
    fn a_replay_within_the_window_is_refused() {
        let k = ring();
        let guard = crate::vault::ReplayGuard::new(16);
        let h = k.sign("POST", "/v1/runs", BODY, NOW);
        let once = |now| k.verify_once(&guard, Some(&h), "POST", "/v1/runs", BODY, now, 30);
        assert_eq!(once(NOW), Ok("v1".into()));
        for later in [NOW, NOW + 1, NOW + 30] {
            let err = once(later).unwrap_err();
            assert_eq!(err.code(), ErrorCode::Replayed);
            assert!(err.to_string().contains("replayed"), "{err}");
        }
        // A fresh signature for the same request is fine.
        let h2 = k.sign("POST", "/v1/runs", BODY, NOW + 1);
        assert_eq!(
            k.verify_once(&guard, Some(&h2), "POST", "/v1/runs", BODY, NOW + 1, 30),
            Ok("v1".into())
        );
        // A bad bearer is not remembered.
        assert_eq!(guard.len(), 2);
    }

    #[test]
    fn now_unix_is_recent() {
        // 2024-01-01 as a floor: catches a unit mix-up (ms vs s) or a zero clock.
        let now = now_unix();
        assert!(now > 1_704_067_200 && now < 10_000_000_000, "{now}");
    }
}
