//! A state machine for tests and benchmarks: it keeps every entry applied
//! (or the last few, for a state of bounded size).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Buf, BufMut, Bytes};

use crate::state_machine::{BoxError, SnapshotWriter, StateMachine};

/// Records each applied entry's index and data, in order. Clones share the
/// record, so a test keeps one to look at while the member owns the other.
#[derive(Clone, Debug, Default)]
pub struct LogMachine {
    applied: Arc<Mutex<VecDeque<(u64, Bytes)>>>,
    /// Keep only this many of the latest entries (None: all).
    limit: Option<usize>,
}

impl LogMachine {
    /// An empty machine that keeps every entry.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty machine that keeps only the latest `limit` entries, so its
    /// snapshots stay the same size however long a benchmark runs.
    pub fn keeping_last(limit: usize) -> Self {
        LogMachine {
            limit: Some(limit),
            ..Self::default()
        }
    }

    /// The entries applied (and kept) so far, in order.
    pub fn entries(&self) -> Vec<(u64, Bytes)> {
        self.lock().iter().cloned().collect()
    }

    /// How many entries were applied.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing was applied.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// The index of the last applied entry (0 if none).
    pub fn last_index(&self) -> u64 {
        self.lock().back().map_or(0, |(index, _)| *index)
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<(u64, Bytes)>> {
        self.applied.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl StateMachine for LogMachine {
    /// The number of entries applied, this one included.
    type Output = usize;

    fn apply(&mut self, index: u64, data: &[u8]) -> usize {
        let mut applied = self.lock();
        applied.push_back((index, Bytes::copy_from_slice(data)));
        if self.limit.is_some_and(|limit| applied.len() > limit) {
            applied.pop_front();
        }
        applied.len()
    }

    fn snapshot(&self) -> SnapshotWriter {
        // Clones of `Bytes` share the data: the capture copies no payload.
        let applied = self.lock().clone();
        Box::new(move || {
            let size = applied.iter().map(|(_, data)| 12 + data.len()).sum();
            let mut bytes = Vec::with_capacity(size);
            for (index, data) in &applied {
                bytes.put_u64(*index);
                bytes.put_u32(u32::try_from(data.len())?);
                bytes.put_slice(data);
            }
            Ok(bytes)
        })
    }

    fn restore(&mut self, mut data: &[u8]) -> Result<(), BoxError> {
        let mut restored = VecDeque::new();
        while data.has_remaining() {
            if data.remaining() < 12 {
                return Err("truncated entry header".into());
            }
            let index = data.get_u64();
            let len = data.get_u32() as usize;
            if data.remaining() < len {
                return Err("truncated entry".into());
            }
            restored.push_back((index, Bytes::copy_from_slice(&data[..len])));
            data.advance(len);
        }
        *self.lock() = restored;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_then_restore_gives_the_same_entries() {
        let mut machine = LogMachine::new();
        machine.apply(3, b"a");
        machine.apply(5, b"");
        machine.apply(6, b"ccc");
        let mut restored = LogMachine::new();
        restored.restore(&machine.snapshot()().unwrap()).unwrap();
        assert_eq!(restored.entries(), machine.entries());
    }

    #[test]
    fn restore_refuses_truncated_bytes_and_keeps_its_state() {
        let mut machine = LogMachine::new();
        machine.apply(1, b"keep");
        let mut bytes = machine.snapshot()().unwrap();
        bytes.pop();
        assert!(machine.restore(&bytes).is_err());
        assert_eq!(machine.len(), 1);
    }
}
