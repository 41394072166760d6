//! The tail of the log, in memory: what was just appended is what is
//! applied next and sent to followers, and serving it from here spares a
//! RocksDB read and a decode of every entry (as TiKV's entry cache does).
//!
//! The cache holds a contiguous run of the log's last entries, bounded in
//! count and bytes; what it does not hold is read from RocksDB.

use std::collections::VecDeque;

use protobuf::Message as _;
use raft::eraftpb::Entry;

/// At most this many entries are kept...
const MAX_ENTRIES: usize = 4096;
/// ...and at most this many bytes of them (their encoded size).
const MAX_BYTES: u64 = 8 << 20;

#[derive(Default)]
pub(crate) struct EntryCache {
    /// Consecutive entries, ending with the log's last one.
    entries: VecDeque<Entry>,
    /// Their encoded size, in all.
    bytes: u64,
}

impl EntryCache {
    /// `new` (consecutive entries) were appended to the log, replacing any
    /// from their first index on.
    pub(crate) fn append(&mut self, new: &[Entry]) {
        let Some(first) = new.first() else { return };
        match self.entries.front().map(|entry| entry.index) {
            // Keep what comes before the first new entry.
            Some(start) if first.index >= start && first.index <= start + self.entries.len() as u64 => {
                for dropped in self.entries.drain((first.index - start) as usize..) {
                    self.bytes -= size(&dropped);
                }
            }
            // The new entries replace all the cache holds, or do not
            // follow it.
            _ => self.clear(),
        }
        for entry in new {
            self.bytes += size(entry);
            self.entries.push_back(entry.clone());
        }
        while self.entries.len() > MAX_ENTRIES || (self.bytes > MAX_BYTES && self.entries.len() > 1) {
            if let Some(dropped) = self.entries.pop_front() {
                self.bytes -= size(&dropped);
            }
        }
    }

    /// The log was compacted up to `index` (inclusive).
    pub(crate) fn compact_to(&mut self, index: u64) {
        while self.entries.front().is_some_and(|entry| entry.index <= index) {
            if let Some(dropped) = self.entries.pop_front() {
                self.bytes -= size(&dropped);
            }
        }
    }

    /// The log was replaced (by a snapshot).
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    /// Entries `[low, high)` when the cache holds all of them, as raft-rs's
    /// `Storage::entries` returns them: up to `max_size` bytes, but at least
    /// one entry.
    pub(crate) fn get(&self, low: u64, high: u64, max_size: Option<u64>) -> Option<Vec<Entry>> {
        let start = self.entries.front()?.index;
        let end = start + self.entries.len() as u64;
        if low < start || high > end || low >= high {
            return None;
        }
        let mut total = 0;
        let mut found = Vec::with_capacity((high - low) as usize);
        for entry in self.entries.range((low - start) as usize..(high - start) as usize) {
            total += size(entry);
            if !found.is_empty() && max_size.is_some_and(|max| total > max) {
                break;
            }
            found.push(entry.clone());
        }
        Some(found)
    }
}

/// An entry's encoded size, as raft-rs counts it against `max_size`.
pub(crate) fn size(entry: &Entry) -> u64 {
    u64::from(entry.compute_size())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64, bytes: usize) -> Entry {
        Entry {
            index,
            term,
            data: vec![0; bytes].into(),
            ..Default::default()
        }
    }

    fn run(range: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Entry> {
        range.map(|index| entry(index, term, 10)).collect()
    }

    fn indexes_and_terms(entries: Option<Vec<Entry>>) -> Option<Vec<(u64, u64)>> {
        entries.map(|entries| entries.iter().map(|e| (e.index, e.term)).collect())
    }

    #[test]
    fn serves_what_it_holds_and_only_that() {
        let mut cache = EntryCache::default();
        assert!(cache.get(1, 2, None).is_none());
        cache.append(&run(5..=9, 1));
        assert_eq!(
            indexes_and_terms(cache.get(6, 9, None)),
            Some(vec![(6, 1), (7, 1), (8, 1)])
        );
        assert!(cache.get(4, 6, None).is_none(), "4 is not held");
        assert!(cache.get(9, 11, None).is_none(), "10 is not in the log");
    }

    #[test]
    fn an_append_replaces_from_its_first_index_and_a_stray_one_clears() {
        let mut cache = EntryCache::default();
        cache.append(&run(5..=9, 1));
        cache.append(&run(7..=8, 2));
        assert_eq!(
            indexes_and_terms(cache.get(5, 9, None)),
            Some(vec![(5, 1), (6, 1), (7, 2), (8, 2)])
        );
        assert!(cache.get(9, 10, None).is_none(), "9 was replaced away");
        cache.append(&run(3..=4, 3));
        assert_eq!(indexes_and_terms(cache.get(3, 5, None)), Some(vec![(3, 3), (4, 3)]));
        assert!(cache.get(5, 6, None).is_none());
    }

    #[test]
    fn compaction_and_the_bounds_drop_the_oldest() {
        let mut cache = EntryCache::default();
        cache.append(&run(1..=10, 1));
        cache.compact_to(4);
        assert!(cache.get(4, 5, None).is_none());
        assert!(cache.get(5, 11, None).is_some());
        cache.append(&run(11..=(10 + MAX_ENTRIES as u64), 1));
        assert!(cache.get(10, 11, None).is_none(), "over the count bound");
        assert!(cache.get(11, 11 + MAX_ENTRIES as u64, None).is_some());
        let big = entry(11 + MAX_ENTRIES as u64, 1, MAX_BYTES as usize);
        cache.append(&[big]);
        assert_eq!(cache.entries.len(), 1, "over the byte bound: only the last stays");
    }

    #[test]
    fn max_size_limits_the_entries_but_returns_at_least_one() {
        let mut cache = EntryCache::default();
        cache.append(&run(1..=5, 1));
        let one = size(&entry(1, 1, 10));
        assert_eq!(cache.get(1, 6, Some(2 * one)).map(|e| e.len()), Some(2));
        assert_eq!(cache.get(1, 6, Some(0)).map(|e| e.len()), Some(1));
    }
}
