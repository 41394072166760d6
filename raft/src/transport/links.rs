//! Test hooks: links to chosen peers can be cut, and healed; the loop can
//! be held up, as a slow disk holds it.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The set of peers this member neither sends to nor accepts messages
/// from. Empty in production; tests cut links to stage partitions. Both
/// directions are checked here, so cutting a link on one member is enough to
/// silence it both ways.
#[derive(Clone, Debug, Default)]
pub struct Links {
    cut: Arc<Mutex<HashSet<u64>>>,
    /// Leaders whose address this member's failover probe finds refusing
    /// connections, as a firewall that rejects them would make it.
    refusing: Arc<Mutex<HashSet<u64>>>,
    /// Microseconds the loop's next turn is to wait before going on.
    loop_pause: Arc<AtomicU64>,
}

impl Links {
    /// Drops every message to and from `peer` until healed.
    pub fn cut(&self, peer: u64) {
        self.lock().insert(peer);
    }

    /// Lets messages to and from `peer` through again.
    pub fn heal(&self, peer: u64) {
        self.lock().remove(&peer);
    }

    /// Heals every link, and lets probes through.
    pub fn heal_all(&self) {
        self.lock().clear();
        lock(&self.refusing).clear();
    }

    /// Whether the link to `peer` is cut.
    pub fn is_cut(&self, peer: u64) -> bool {
        self.lock().contains(&peer)
    }

    /// Makes this member's probe of `peer`'s address (when `peer` leads
    /// and goes silent) find it refusing connections, until healed.
    pub fn refuse_probes_of(&self, peer: u64) {
        lock(&self.refusing).insert(peer);
    }

    /// Whether a probe of `peer`'s address is to find it refusing.
    pub(crate) fn probe_refused(&self, peer: u64) -> bool {
        lock(&self.refusing).contains(&peer)
    }

    /// Holds this member's loop up for `pause` at its next turn: nothing
    /// it would do moves meanwhile, as when a write waits on a slow disk,
    /// while messages keep arriving.
    pub fn pause_loop(&self, pause: Duration) {
        let micros = u64::try_from(pause.as_micros()).unwrap_or(u64::MAX).max(1);
        self.loop_pause.store(micros, Ordering::Relaxed);
    }

    /// Whether a pause was asked for that the loop has yet to take.
    pub fn loop_pause_asked(&self) -> bool {
        self.loop_pause.load(Ordering::Relaxed) != 0
    }

    /// The pause the loop is to take now, if one was asked for.
    pub(crate) fn take_loop_pause(&self) -> Option<Duration> {
        match self.loop_pause.swap(0, Ordering::Relaxed) {
            0 => None,
            micros => Some(Duration::from_micros(micros)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashSet<u64>> {
        lock(&self.cut)
    }
}

fn lock(set: &Mutex<HashSet<u64>>) -> MutexGuard<'_, HashSet<u64>> {
    // Nothing panics while holding this lock, but a poisoned set is still
    // a valid set.
    set.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
