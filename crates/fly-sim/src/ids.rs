//! Identifiers in the formats Fly uses, so clients that validate or log them see familiar shapes.

use rand::Rng;

const HEX: &[u8] = b"0123456789abcdef";
const LOWER_ALNUM: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
/// Fly volume ids use a base32-ish alphabet without easily confused letters.
const VOLUME_ALPHABET: &[u8] = b"0123456789abcdefghjkmnpqrstvwxyz";

fn pick(alphabet: &[u8], len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
        .collect()
}

/// A machine id: 14 hex characters.
pub fn machine_id() -> String {
    pick(HEX, 14)
}

/// An instance id / machine version / event id: a 26-character ULID.
pub fn ulid() -> String {
    ulid::Ulid::new().to_string()
}

/// A volume id: `vol_` and 16 base32-ish characters.
pub fn volume_id() -> String {
    format!("vol_{}", pick(VOLUME_ALPHABET, 16))
}

/// An app id: 16 lowercase alphanumerics.
pub fn app_id() -> String {
    pick(LOWER_ALNUM, 16)
}

/// A lease nonce: 12 hex characters.
pub fn nonce() -> String {
    pick(HEX, 12)
}

/// A host id, used as the volume `zone`: 4 hex characters.
pub fn host_id() -> String {
    pick(HEX, 4)
}

/// A 6PN private address.
pub fn private_ip() -> String {
    let mut rng = rand::thread_rng();
    format!(
        "fdaa:0:{:x}:a7b:{:x}:{:x}:{:x}:2",
        rng.gen_range(1..0xffffu32),
        rng.gen_range(1..0xffffu32),
        rng.gen_range(1..0xffffu32),
        rng.gen_range(1..0xffffu32)
    )
}

/// A random machine name in Fly's `adjective-noun-1234` style.
pub fn machine_name() -> String {
    const ADJ: [&str; 8] = [
        "aged", "bold", "calm", "damp", "eager", "fancy", "gentle", "hidden",
    ];
    const NOUN: [&str; 8] = [
        "thunder", "river", "forest", "meadow", "sun", "cloud", "stone", "wave",
    ];
    let mut rng = rand::thread_rng();
    format!(
        "{}-{}-{}",
        ADJ[rng.gen_range(0..ADJ.len())],
        NOUN[rng.gen_range(0..NOUN.len())],
        rng.gen_range(1000..10000)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(machine_id().len(), 14);
        assert_eq!(ulid().len(), 26);
        let v = volume_id();
        assert!(v.starts_with("vol_") && v.len() == 20);
        assert_eq!(app_id().len(), 16);
        assert_eq!(nonce().len(), 12);
    }
}
