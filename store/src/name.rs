//! Keys of the name index. Names are unique per kind and compared without
//! regard to case, so the index holds them lowered.
//!
//! A key carries the name's first eight bytes as a number ahead of the
//! name: most comparisons in a lookup are then settled by that number,
//! without following a pointer to the name's bytes. Order is unchanged
//! (byte-wise, as the names alone), so name prefixes remain range scans.

use std::cmp::Ordering;
use std::ops::Deref;
use std::sync::Arc;

use equivalent::{Comparable, Equivalent};
use smallvec::SmallVec;

/// Names up to this long are lowered without allocating.
const INLINE_NAME: usize = 64;

/// A name lowered for the index: borrowed when it is lower case already
/// (the common case), lowered on the stack when it is short ASCII, so that
/// a lookup allocates only for long or non-ASCII names.
pub enum Lowered<'a> {
    /// Already lower case.
    Borrowed(&'a str),
    /// ASCII only, so always valid UTF-8.
    Inline(SmallVec<[u8; INLINE_NAME]>),
    /// Lowered on the heap.
    Owned(String),
}

/// `name` in lower case.
pub fn lower(name: &str) -> Lowered<'_> {
    if name.is_ascii() && !name.bytes().any(|b| b.is_ascii_uppercase()) {
        Lowered::Borrowed(name)
    } else if name.is_ascii() && name.len() <= INLINE_NAME {
        let mut bytes = SmallVec::from_slice(name.as_bytes());
        bytes.make_ascii_lowercase();
        Lowered::Inline(bytes)
    } else {
        Lowered::Owned(name.to_lowercase())
    }
}

impl Deref for Lowered<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            Lowered::Borrowed(s) => s,
            // ASCII bytes of a str, lowered: still ASCII.
            Lowered::Inline(bytes) => std::str::from_utf8(bytes).unwrap_or_default(),
            Lowered::Owned(s) => s,
        }
    }
}

/// The first eight bytes of `name`, zero-padded, as a big-endian number:
/// numbers order as the bytes do.
fn head(name: &str) -> u64 {
    let mut bytes = [0u8; 8];
    let n = name.len().min(8);
    bytes[..n].copy_from_slice(&name.as_bytes()[..n]);
    u64::from_be_bytes(bytes)
}

/// A key of the name index, as stored.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct NameKey {
    head: u64,
    name: Arc<str>,
}

impl NameKey {
    /// The key of a lowered name.
    pub fn new(lowered: &str) -> NameKey {
        NameKey {
            head: head(lowered),
            name: lowered.into(),
        }
    }

    /// The lowered name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A key of the name index to look up, borrowing the name.
pub struct Probe<'a> {
    head: u64,
    name: &'a str,
}

impl<'a> Probe<'a> {
    /// The probe for a lowered name.
    pub fn new(lowered: &'a str) -> Probe<'a> {
        Probe {
            head: head(lowered),
            name: lowered,
        }
    }
}

impl Equivalent<NameKey> for Probe<'_> {
    fn equivalent(&self, key: &NameKey) -> bool {
        self.head == key.head && self.name == &*key.name
    }
}

impl Comparable<NameKey> for Probe<'_> {
    fn compare(&self, key: &NameKey) -> Ordering {
        self.head.cmp(&key.head).then_with(|| self.name.cmp(&key.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_order_as_the_names_do() {
        let mut names = vec![
            "",
            "a",
            "ab",
            "ab\0",
            "abc",
            "abcdefgh",
            "abcdefgh0",
            "abcdefgi",
            "b",
            "zz",
            "é",
        ];
        names.sort();
        let keys: Vec<NameKey> = names.iter().map(|n| NameKey::new(n)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
        for (n, k) in names.iter().zip(&keys) {
            for other in &keys {
                assert_eq!(Probe::new(n).compare(other), k.cmp(other), "{n:?} against {other:?}");
            }
        }
    }

    #[test]
    fn lowering_borrows_or_stays_on_the_stack_when_it_can() {
        assert!(matches!(lower("web-1"), Lowered::Borrowed("web-1")));
        assert!(matches!(lower("Web-1"), Lowered::Inline(_)));
        assert_eq!(&*lower("Web-1"), "web-1");
        assert_eq!(&*lower(&"A".repeat(65)), "a".repeat(65));
        assert_eq!(&*lower("ÉTÉ"), "été");
    }
}
