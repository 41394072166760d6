//! Object ids: 128 random bits written as 25 base36 characters, as SwarmKit's
//! `identity.NewID`. 36^25 > 2^128, so every id fits in exactly 25 characters.

const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// Length of every generated id.
pub const ID_LEN: usize = 25;

/// A new random id, for example `"3x9k2m0q8f7w1z5c4v6b8n0l1"`.
pub fn generate() -> String {
    encode(rand::random::<u128>())
}

fn encode(mut value: u128) -> String {
    let mut digits = [b'0'; ID_LEN];
    for digit in digits.iter_mut().rev() {
        *digit = ALPHABET[(value % 36) as usize];
        value /= 36;
    }
    // Only ASCII from ALPHABET was written.
    digits.iter().map(|&b| b as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_25_base36_characters() {
        for _ in 0..1000 {
            let id = generate();
            assert_eq!(id.len(), ID_LEN);
            assert!(id.bytes().all(|b| ALPHABET.contains(&b)), "{id}");
        }
    }

    #[test]
    fn extremes_fit() {
        assert_eq!(encode(0), "0".repeat(ID_LEN));
        assert_eq!(encode(u128::MAX), "f5lxx1zz5pnorynqglhzmsp33");
        assert_ne!(generate(), generate());
    }
}
