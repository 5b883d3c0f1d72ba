//! The VAULT keyring: key id → shared secret, one id active for signing; how it is built,
//! loaded from YAML (located by `ROCKY_VAULT_FILE` in the solo tier) and written back, and
//! fresh secrets. Secrets never reach `Debug` output or error messages.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Environment variable naming the keyring file in the solo tier.
pub const VAULT_FILE_ENV: &str = "ROCKY_VAULT_FILE";

/// Longest key id accepted; ids travel in every token, so they stay short.
const MAX_KEY_ID_LEN: usize = 64;

/// Why a keyring could not be built or loaded. No variant carries secret material.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(
        "failed to load the VAULT keyring: {VAULT_FILE_ENV} is not set (point it at a keyring YAML file)"
    )]
    EnvUnset,
    #[error("failed to read the VAULT keyring {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to parse the VAULT keyring {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("failed to build the VAULT keyring: it has no keys")]
    NoKeys,
    #[error(
        "failed to build the VAULT keyring: active key id {active} is not among its keys ({known})"
    )]
    ActiveKeyMissing { active: String, known: String },
    #[error("failed to build the VAULT keyring: the secret for key id {key_id} is empty")]
    EmptySecret { key_id: String },
    #[error("failed to build the VAULT keyring: key id {key_id} appears twice")]
    DuplicateKeyId { key_id: String },
    #[error("failed to build the VAULT keyring: key id {key_id:?} is invalid: {reason}")]
    InvalidKeyId { key_id: String, reason: String },
}

/// The shared secrets of the HMAC bearer. Several keys may be valid at once so a secret can
/// be rotated without a flag day: verifiers accept any known key id, signers use the active one.
#[derive(Clone)]
pub struct Keyring {
    // Open to `bearer`, which signs and verifies with them; nothing outside `vault` sees them.
    pub(super) active: String,
    pub(super) keys: BTreeMap<String, Vec<u8>>,
}

/// Lists key ids only: a keyring ends up in `{:?}` of larger structs and in tracing spans.
impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("active", &self.active)
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// On-disk keyring layout. Unknown fields are refused so a typo (`activ:`) fails loudly
/// instead of silently yielding a keyring the other side does not share.
#[derive(serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct KeyringFile {
    active: String,
    keys: BTreeMap<String, SecretText>,
}

/// A secret read from YAML. Its own `Deserialize` keeps the value out of parse errors
/// (serde's default "invalid type: integer `1234`" would echo a mistyped secret).
#[derive(serde::Serialize)]
#[serde(transparent)]
pub(crate) struct SecretText(pub(crate) String);

impl<'de> serde::Deserialize<'de> for SecretText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = SecretText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string secret")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SecretText, E> {
                Ok(SecretText(v.to_string()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<SecretText, E> {
                Ok(SecretText(v))
            }
            // Everything else is refused without echoing the value.
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<SecretText, E> {
                Err(E::custom(
                    "expected a quoted string secret, found a boolean",
                ))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<SecretText, E> {
                Err(E::custom("expected a quoted string secret, found a number"))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<SecretText, E> {
                Err(E::custom("expected a quoted string secret, found a number"))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<SecretText, E> {
                Err(E::custom("expected a quoted string secret, found a number"))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<SecretText, E> {
                Err(E::custom("expected a quoted string secret, found nothing"))
            }
            // Sequences and mappings fall through to serde's default error, which names
            // only the kind ("invalid type: sequence"), never the content.
        }
        d.deserialize_any(V)
    }
}

/// Key ids are embedded in `.`-separated tokens and in messages, so they are restricted to
/// a plain alphabet.
fn check_key_id(key_id: &str) -> Result<(), VaultError> {
    let invalid = |reason: &str| VaultError::InvalidKeyId {
        key_id: key_id.to_string(),
        reason: reason.to_string(),
    };
    if key_id.is_empty() {
        return Err(invalid("it is empty"));
    }
    if key_id.len() > MAX_KEY_ID_LEN {
        return Err(invalid("it is longer than 64 characters"));
    }
    if !key_id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(invalid("only A-Z, a-z, 0-9, '-' and '_' are allowed"));
    }
    Ok(())
}

impl Keyring {
    /// Builds a keyring from `(key id, secret)` pairs; `active` names the key used to sign.
    pub fn new(active: &str, keys: Vec<(String, Vec<u8>)>) -> Result<Keyring, VaultError> {
        if keys.is_empty() {
            return Err(VaultError::NoKeys);
        }
        let mut map = BTreeMap::new();
        for (key_id, secret) in keys {
            check_key_id(&key_id)?;
            if secret.is_empty() {
                return Err(VaultError::EmptySecret { key_id });
            }
            if map.contains_key(&key_id) {
                return Err(VaultError::DuplicateKeyId { key_id });
            }
            map.insert(key_id, secret);
        }
        if !map.contains_key(active) {
            return Err(VaultError::ActiveKeyMissing {
                active: active.to_string(),
                known: map.keys().cloned().collect::<Vec<_>>().join(", "),
            });
        }
        Ok(Keyring {
            active: active.to_string(),
            keys: map,
        })
    }

    /// A one-key keyring, for tests and embedded stacks that generate their own secret.
    ///
    /// # Panics
    /// If `key_id` is not a valid key id or `secret` is empty: both are programming errors
    /// here, unlike in [`Keyring::new`] where they come from configuration.
    pub fn single(key_id: &str, secret: &[u8]) -> Keyring {
        match Keyring::new(key_id, vec![(key_id.to_string(), secret.to_vec())]) {
            Ok(keyring) => keyring,
            Err(e) => panic!("Keyring::single called with invalid input: {e}"),
        }
    }

    /// Loads a keyring from YAML:
    ///
    /// ```yaml
    /// active: v1
    /// keys:
    ///   v1: "<secret>"
    ///   v0: "<old secret, still accepted>"
    /// ```
    ///
    /// Each secret is the UTF-8 bytes of its string.
    pub fn from_file(path: &Path) -> Result<Keyring, VaultError> {
        let text = std::fs::read_to_string(path).map_err(|source| VaultError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Keyring::from_yaml(path, &text)
    }

    /// [`Keyring::from_file`] over the file's content already read (`path` names it in
    /// errors).
    pub fn from_yaml(path: &Path, text: &str) -> Result<Keyring, VaultError> {
        let file: KeyringFile = yaml_serde::from_str(text).map_err(|e| VaultError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let keys = file
            .keys
            .into_iter()
            .map(|(id, secret)| (id, secret.0.into_bytes()))
            .collect();
        Keyring::new(&file.active, keys)
    }

    /// Loads the keyring named by `ROCKY_VAULT_FILE`.
    pub fn from_env() -> Result<Keyring, VaultError> {
        match std::env::var_os(VAULT_FILE_ENV) {
            Some(path) if !path.is_empty() => Keyring::from_file(Path::new(&path)),
            _ => Err(VaultError::EnvUnset),
        }
    }

    /// The key id new tokens are signed with.
    pub fn active_key_id(&self) -> &str {
        &self.active
    }

    /// All key ids this keyring accepts, in sorted order.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }
}

/// 32 random bytes from `/dev/urandom`, for a fresh secret.
///
/// # Panics
/// If `/dev/urandom` cannot be read: without it there is no safe secret to hand out.
pub fn generate_secret() -> Vec<u8> {
    crate::ids::random_bytes(32)
}

/// Writes a keyring file that [`Keyring::from_file`] reads back, with mode 0600 because it
/// holds secrets. Secrets are strings (e.g. `hex::encode(generate_secret())`). The file is
/// written beside its final path and renamed into place, so a reader never sees half of it.
pub fn write_keyring_file(path: &Path, active: &str, keys: &[(&str, &str)]) -> std::io::Result<()> {
    let file = KeyringFile {
        active: active.to_string(),
        keys: keys
            .iter()
            .map(|(id, secret)| (id.to_string(), SecretText(secret.to_string())))
            .collect(),
    };
    let yaml = yaml_serde::to_string(&file).map_err(std::io::Error::other)?;
    write_private_file(path, yaml.as_bytes())
}

/// Writes `contents` to `path` with mode 0600 via a new temporary file (`O_EXCL`, no symlink
/// followed) renamed into place: see [`crate::secure_file`].
pub(crate) fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    crate::secure_file::write_private(path, contents)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::fixtures::{BODY, NOW, verify};

    #[test]
    fn new_rejects_bad_input() {
        assert!(matches!(
            Keyring::new("v1", vec![]),
            Err(VaultError::NoKeys)
        ));
        assert!(matches!(
            Keyring::new("v2", vec![("v1".into(), b"s".to_vec())]),
            Err(VaultError::ActiveKeyMissing { .. })
        ));
        assert!(matches!(
            Keyring::new("v1", vec![("v1".into(), vec![])]),
            Err(VaultError::EmptySecret { .. })
        ));
        assert!(matches!(
            Keyring::new(
                "v1",
                vec![("v1".into(), b"a".to_vec()), ("v1".into(), b"b".to_vec())]
            ),
            Err(VaultError::DuplicateKeyId { .. })
        ));
        assert!(matches!(
            Keyring::new("v.1", vec![("v.1".into(), b"s".to_vec())]),
            Err(VaultError::InvalidKeyId { .. })
        ));
    }

    fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let p = dir.path().join("vault.yaml");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn from_file_happy_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            &dir,
            "active: v1\nkeys:\n  v1: \"new-secret\"\n  v0: \"old-secret\"\n",
        );
        let k = Keyring::from_file(&p).unwrap();
        assert_eq!(k.active_key_id(), "v1");
        assert_eq!(k.key_ids().collect::<Vec<_>>(), ["v0", "v1"]);
        let h = Keyring::single("v0", b"old-secret").sign("POST", "/v1/runs", BODY, NOW);
        assert_eq!(verify(&k, &h), Ok("v0".into()));
    }

    #[test]
    fn from_file_rejects_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let unknown = write(&dir, "active: v1\nkeys:\n  v1: \"s\"\nactiv: v2\n");
        let err = Keyring::from_file(&unknown).unwrap_err();
        assert!(matches!(err, VaultError::Parse { .. }), "{err}");
        assert!(err.to_string().contains("activ"), "{err}");

        let missing = write(&dir, "active: v2\nkeys:\n  v1: \"s\"\n");
        let err = Keyring::from_file(&missing).unwrap_err();
        assert!(
            matches!(&err, VaultError::ActiveKeyMissing { active, known } if active == "v2" && known == "v1"),
            "{err}"
        );

        let empty = write(&dir, "active: v1\nkeys:\n  v1: \"\"\n");
        let err = Keyring::from_file(&empty).unwrap_err();
        assert!(
            matches!(&err, VaultError::EmptySecret { key_id } if key_id == "v1"),
            "{err}"
        );

        // A secret mistyped as a number is refused without echoing it.
        let numeric = write(&dir, "active: v1\nkeys:\n  v1: 8675309123\n");
        let err = Keyring::from_file(&numeric).unwrap_err().to_string();
        assert!(err.contains("found a number"), "{err}");
        assert!(!err.contains("8675309123"), "{err}");

        let err = Keyring::from_file(&dir.path().join("absent.yaml")).unwrap_err();
        assert!(matches!(err, VaultError::Read { .. }));
        assert!(
            err.to_string()
                .starts_with("failed to read the VAULT keyring")
        );
    }

    #[test]
    fn write_keyring_file_roundtrip() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("vault.yaml");
        let secret = hex::encode(generate_secret());
        write_keyring_file(&p, "v1", &[("v1", &secret), ("v0", "old: \"quoted\"")]).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let k = Keyring::from_file(&p).unwrap();
        let h = Keyring::single("v1", secret.as_bytes()).sign("GET", "/x", b"", NOW);
        assert_eq!(
            k.verify(Some(&h), "GET", "/x", b"", NOW, 30),
            Ok("v1".into())
        );
        let h = Keyring::single("v0", b"old: \"quoted\"").sign("GET", "/x", b"", NOW);
        assert_eq!(
            k.verify(Some(&h), "GET", "/x", b"", NOW, 30),
            Ok("v0".into())
        );
    }

    #[test]
    fn debug_output_has_no_secret() {
        let k = Keyring::new(
            "v1",
            vec![
                ("v1".into(), b"s3cr3t-new-value".to_vec()),
                ("v0".into(), b"s3cr3t-old-value".to_vec()),
            ],
        )
        .unwrap();
        let dbg = format!("{k:?} {k:#?}");
        assert!(!dbg.contains("s3cr3t"), "{dbg}");
        // Nor as bytes, in case someone derives Debug again.
        assert!(!dbg.contains("115, 51, 99"), "{dbg}");
        assert!(dbg.contains("v0") && dbg.contains("v1"), "{dbg}");
    }

    #[test]
    fn env_unset_names_the_variable() {
        let msg = VaultError::EnvUnset.to_string();
        assert!(
            msg.starts_with("failed to load the VAULT keyring: ROCKY_VAULT_FILE is not set"),
            "{msg}"
        );
    }

    #[test]
    fn generate_secret_is_random() {
        let a = generate_secret();
        let b = generate_secret();
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
