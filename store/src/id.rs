//! Object ids: 128 random bits written as 25 base36 characters, as SwarmKit's
//! `identity.NewID`. 36^25 > 2^128, so every id fits in exactly 25 characters.
//!
//! Inside the store an id is held as the number it spells ([`Id`]): 16
//! bytes, copied without allocating, compared in two instructions. Because
//! the text is fixed-width and the alphabet ascends, numbers sort exactly as
//! the text does, so an id prefix is still a range.

use std::fmt;

const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

const NOT_A_DIGIT: u8 = u8::MAX;

/// The value of each byte as a base36 digit.
const DIGITS: [u8; 256] = {
    let mut table = [NOT_A_DIGIT; 256];
    let mut i = 0;
    while i < ALPHABET.len() {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

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
        let bytes: &[u8; ID_LEN] = text.as_bytes().try_into().ok()?;
        // Ids are looked up on every read: two halves of twelve digits each
        // fit a u64 (36^12 < 2^64), so only the last step needs u128.
        let (high, rest) = bytes.split_at(12);
        let (low, last) = rest.split_at(12);
        let high = u128::from(Self::digits_u64(high)?);
        let low = u128::from(Self::digits_u64(low)?);
        let last = u128::from(Self::digit(last[0])?);
        let value = (high * 36u128.pow(12) + low).checked_mul(36)?.checked_add(last)?;
        Some(Id::from_u128(value))
    }

    fn digit(b: u8) -> Option<u8> {
        // A table, not a match: ids are random, so a branch per character
        // would be mispredicted half the time.
        match DIGITS[usize::from(b)] {
            NOT_A_DIGIT => None,
            d => Some(d),
        }
    }

    /// Up to twelve digits, which cannot overflow. Checked once at the end,
    /// so that the loop has no branch.
    fn digits_u64(digits: &[u8]) -> Option<u64> {
        let mut value = 0u64;
        let mut invalid = false;
        for &b in digits {
            let d = DIGITS[usize::from(b)];
            invalid |= d == NOT_A_DIGIT;
            value = value.wrapping_mul(36).wrapping_add(u64::from(d));
        }
        (!invalid).then_some(value)
    }

    fn parse_digits(digits: impl Iterator<Item = u8>) -> Option<Id> {
        let mut value: u128 = 0;
        for b in digits {
            value = value.checked_mul(36)?.checked_add(u128::from(Self::digit(b)?))?;
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
