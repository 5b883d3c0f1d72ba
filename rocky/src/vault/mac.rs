//! Plain HMAC-SHA256 under a keyring key, for what is not a request bearer (the HATCH seal):
//! the active key tags, any known key id verifies, in constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::Keyring;

type HmacSha256 = Hmac<Sha256>;

/// Why a tag did not verify. Neither variant carries secret material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MacError {
    #[error("unknown key id {0}")]
    UnknownKeyId(String),
    #[error("MAC mismatch under key id {0}")]
    Mismatch(String),
}

impl Keyring {
    /// HMAC-SHA256 of `message` under the active key, with that key's id.
    pub fn mac_active(&self, message: &[u8]) -> (&str, [u8; 32]) {
        let secret = &self.keys[&self.active];
        (&self.active, mac(secret, message))
    }

    /// Checks `tag` over `message` under `key_id`, in constant time.
    pub fn mac_verify(&self, key_id: &str, message: &[u8], tag: &[u8]) -> Result<(), MacError> {
        let secret = self
            .keys
            .get(key_id)
            .ok_or_else(|| MacError::UnknownKeyId(key_id.to_owned()))?;
        let mut m =
            <HmacSha256 as Mac>::new_from_slice(secret).expect("hmac accepts any key length");
        m.update(message);
        m.verify_slice(tag)
            .map_err(|_| MacError::Mismatch(key_id.to_owned()))
    }
}

pub(super) fn mac(secret: &[u8], message: &[u8]) -> [u8; 32] {
    let mut m = <HmacSha256 as Mac>::new_from_slice(secret).expect("hmac accepts any key length");
    m.update(message);
    m.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_verify_under_their_key_only() {
        let k = Keyring::single("h1", b"seal secret");
        let (id, tag) = k.mac_active(b"hello");
        assert_eq!(id, "h1");
        assert_eq!(k.mac_verify("h1", b"hello", &tag), Ok(()));
        assert_eq!(
            k.mac_verify("h1", b"hellO", &tag),
            Err(MacError::Mismatch("h1".into()))
        );
        assert_eq!(
            k.mac_verify("h2", b"hello", &tag),
            Err(MacError::UnknownKeyId("h2".into()))
        );
        let other = Keyring::single("h1", b"another");
        assert!(other.mac_verify("h1", b"hello", &tag).is_err());
    }
}
