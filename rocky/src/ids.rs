//! Random identifiers (sessions, run ids) from the OS's entropy, without an RNG crate.

/// `n` random bytes. Panics if `/dev/urandom` cannot be read: nothing random can be made then.
pub fn random_bytes(n: usize) -> Vec<u8> {
    use std::io::Read;
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .unwrap_or_else(|e| panic!("failed to read /dev/urandom: {e}"));
    buf
}

/// `n` random bytes as lower-case hex.
pub fn random_hex(n: usize) -> String {
    hex::encode(random_bytes(n))
}
