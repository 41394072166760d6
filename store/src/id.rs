//! Object ids: 128 random bits written as 25 base36 characters, as SwarmKit's
//! `identity.NewID`. 36^25 > 2^128, so every id fits in exactly 25 characters.
//!
//! Inside the store an id is held as the number it spells ([`Id`]): 16
//! bytes, copied without allocating, compared in two instructions. Because
//! the text is fixed-width and the alphabet ascends, numbers sort exactly as
//! the text does, so an id prefix is still a range.

use std::fmt;

const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// Length of every id.
pub const ID_LEN: usize = 25;

/// A new random id, for example `"3x9k2m0q8f7w1z5c4v6b8n0l1"`.
pub fn generate() -> String {
    Id::from_u128(rand::random::<u128>()).to_string()
}

/// An id as the number its 25 characters spell. Stored as two halves
/// (high first) so that it needs 8-byte alignment, not 16: index entries
/// stay small.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id(u64, u64);

impl Id {
    /// The smallest id, `0000000000000000000000000`.
    pub const MIN: Id = Id(0, 0);

    fn from_u128(v: u128) -> Id {
        Id((v >> 64) as u64, v as u64)
    }

    fn to_u128(self) -> u128 {
        (u128::from(self.0) << 64) | u128::from(self.1)
    }

    /// Parses exactly 25 characters of `[0-9a-z]` spelling a number below
    /// 2^128, the form [`generate`] makes; `None` for anything else.
    pub fn parse(text: &str) -> Option<Id> {
        if text.len() != ID_LEN {
            return None;
        }
        Self::parse_digits(text.bytes())
    }

    fn parse_digits(digits: impl Iterator<Item = u8>) -> Option<Id> {
        let mut value: u128 = 0;
        for b in digits {
            let digit = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'z' => b - b'a' + 10,
                _ => return None,
            };
            value = value.checked_mul(36)?.checked_add(u128::from(digit))?;
        }
        Some(Id::from_u128(value))
    }

    /// The smallest and largest ids whose text starts with `prefix`, or
    /// `None` if no id can.
    pub fn prefix_range(prefix: &str) -> Option<(Id, Id)> {
        if prefix.len() > ID_LEN {
            return None;
        }
        let pad = ID_LEN - prefix.len();
        let low = Self::parse_digits(prefix.bytes().chain(std::iter::repeat_n(b'0', pad)))?;
        // The top of the range may overflow 2^128: then every id above the
        // low end qualifies.
        let high = Self::parse_digits(prefix.bytes().chain(std::iter::repeat_n(b'z', pad)))
            .unwrap_or(Id::from_u128(u128::MAX));
        Some((low, high))
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut value = self.to_u128();
        let mut digits = [b'0'; ID_LEN];
        for digit in digits.iter_mut().rev() {
            *digit = ALPHABET[(value % 36) as usize];
            value /= 36;
        }
        // Only ASCII from ALPHABET was written.
        f.write_str(std::str::from_utf8(&digits).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_25_base36_characters_and_parse_back() {
        for _ in 0..1000 {
            let id = generate();
            assert_eq!(id.len(), ID_LEN);
            assert!(id.bytes().all(|b| ALPHABET.contains(&b)), "{id}");
            assert_eq!(Id::parse(&id).unwrap().to_string(), id);
        }
        assert_ne!(generate(), generate());
    }

    #[test]
    fn extremes_fit_and_beyond_is_refused() {
        assert_eq!(Id::from_u128(0).to_string(), "0".repeat(ID_LEN));
        assert_eq!(Id::from_u128(u128::MAX).to_string(), "f5lxx1zz5pnorynqglhzmsp33");
        assert_eq!(Id::parse("f5lxx1zz5pnorynqglhzmsp34"), None, "2^128 does not fit");
        assert_eq!(Id::parse("zzzzzzzzzzzzzzzzzzzzzzzzz"), None);
        assert_eq!(Id::parse("short"), None);
        assert_eq!(Id::parse("ABCDEFGHIJKLMNOPQRSTUVWXY"), None, "upper case is not an id");
        assert_eq!(Id::parse("0123456789abcdefghijklmn-"), None);
    }

    #[test]
    fn numbers_sort_as_the_text_does() {
        let mut ids: Vec<String> = (0..500).map(|_| generate()).collect();
        ids.sort();
        let parsed: Vec<Id> = ids.iter().map(|s| Id::parse(s).unwrap()).collect();
        assert!(parsed.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn prefix_ranges_hold_exactly_the_ids_with_the_prefix() {
        let ids: Vec<String> = (0..2000).map(|_| generate()).collect();
        for prefix in ["", "1", "a9", "f5lxx", "zz", &ids[0][..7]] {
            let Some((low, high)) = Id::prefix_range(prefix) else {
                assert!(ids.iter().all(|id| !id.starts_with(prefix)));
                continue;
            };
            for id in &ids {
                let n = Id::parse(id).unwrap();
                assert_eq!(id.starts_with(prefix), low <= n && n <= high, "{prefix} {id}");
            }
        }
        assert_eq!(Id::prefix_range("A"), None);
        assert_eq!(Id::prefix_range(&"0".repeat(26)), None);
    }
}
