//! vault: the VAULT secret source and the HMAC bearer between console and worker (contract §5).
//!
//! One job a file:
//!
//! - `keyring`: the [`Keyring`] (key id → shared secret, one id active for signing), how it
//!   is loaded from and written to a YAML file, and fresh secrets.
//! - `mac`: plain HMAC tags under a keyring key (the HATCH seal).
//! - `answer`: MACs of the worker's answers (the 202 to a submission, every KAHN frame),
//!   bound to the request's nonce, the run id and the frame's `seq`.
//! - `replay`: the bounded memory of accepted bearers that refuses a replay.
//! - `bearer`: the bearer token format both sides speak ([`Keyring::sign`],
//!   [`Keyring::verify`], [`BearerError`]).
//!
//! Secrets stay inside [`Keyring`]: they never reach `Debug` output or error messages.

mod answer;
mod bearer;
mod keyring;
mod mac;
mod replay;

#[cfg(test)]
mod fixtures;

pub use answer::{ANSWER_MAC_HEADER, Answer, AnswerError, FRAME_MAC_FIELD, bearer_nonce};
pub use bearer::{BearerError, DEFAULT_MAX_SKEW_SECS, now_unix, parse_bearer};
pub use keyring::{Keyring, VAULT_FILE_ENV, VaultError, generate_secret, write_keyring_file};
pub(crate) use keyring::{SecretText, write_private_file};
pub use mac::MacError;
pub use replay::{DEFAULT_REPLAY_CAPACITY, ReplayError, ReplayGuard};
