//! Room on the data dir's filesystem, and the part of it a member keeps.
//!
//! A write RocksDB cannot make stops the member: what it wrote may be torn.
//! Worse, an open replays the write-ahead log into tables, which needs
//! room of its own: a member that filled its disk could not even start
//! again until someone made room. So while the free space is under a
//! reserve, proposals are refused with an error that says so (reads go on):
//! the reserve is room to flush a whole write-ahead log at the next open
//! (`keep_free`) and to write the next snapshot, whose data goes through
//! the log and then into a table (twice what it would weigh: the state
//! machine's own measure, else the last one and the entries applied
//! since). That room is the snapshot's to use: under the reserve, one is
//! taken if the log it lets go outweighs what the state grew by, as long
//! as half of `keep_free` stays free (`SnapshotSchedule::frees_log`). Entries that only remove are taken while
//! `keep_free` itself is free: they bring the room writes need down. Room
//! again, writes go on. etcd raises a NOSPACE alarm in the same spirit.
//!
//! What the reserve does not count is the log between two snapshots
//! (bounded by the snapshot schedule), the entries kept behind a snapshot
//! for slow followers (at most `Config::keep_bytes` or the snapshot's
//! size) and RocksDB's own compactions (README).
//!
//! The free space is read every [`READ_EVERY`], and as soon as the loop
//! wrote [`READ_AFTER_BYTES`] since the last reading: a burst of large
//! entries between two readings takes at most that much (and one batch)
//! of the reserve. (Counting what proposals take against the last reading
//! instead would not work: RocksDB writes its log into room it reserved
//! ahead, which the free space no longer counts.) What proposals queued
//! for the loop will write is counted against the last reading until the
//! loop has written them (`Queued`): a burst of large proposals from many
//! clients at once would otherwise all be let in on one reading. A
//! proposal refused so, over the reserve, makes the member short of room
//! as being under it does: the loop frees what log a snapshot can, or that
//! proposal would be refused for good (other writes still go on).
//!
//! A leader refuses writes too while another member says it is short of
//! room (`peer_disks`): every member stores every entry.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use swarm_proto::v1::DiskShort;

use crate::error::{Error, Result};
use crate::peer_disks::{PeerDisks, Turned};

/// How often the free space is read, whatever the tick.
const READ_EVERY: Duration = Duration::from_millis(100);

/// Bytes the loop writes after which the free space is read again sooner.
const READ_AFTER_BYTES: u64 = 4 << 20;

/// What RocksDB holds in memory, at least, for a member short of room to
/// flush it (see [`DiskSpace::flush_frees_room`]).
const FLUSH_WHEN_SHORT: u64 = 1 << 20;

/// Room that must come back over the reserve before writes are taken
/// again: a compaction freeing a little would otherwise flip them on and
/// off, and the log with them.
const HYSTERESIS: u64 = 1 << 20;

/// What the member knows of its disk, shared by the Ready loop (which
/// reads the filesystem) and the handles (which refuse proposals).
#[derive(Debug)]
pub(crate) struct DiskSpace {
    dir: PathBuf,
    /// Bytes kept free besides room for the next snapshot; 0 turns the
    /// check off (the free space is still read, for metrics).
    keep_free: u64,
    reading: Mutex<Reading>,
    /// Bytes the loop wrote since the last reading.
    written: AtomicU64,
    /// Bytes of the proposals let in and not yet taken by the loop.
    queued: AtomicU64,
    /// Whether a proposal was refused over the reserve, for want of room
    /// for itself: the loop frees what log it can, as under the reserve,
    /// until a snapshot is written.
    wants_room: AtomicBool,
    /// Whether writes are taken, for those waiting for room.
    room: tokio::sync::watch::Sender<bool>,
    /// What the other members said of their disks.
    peers: PeerDisks,
}

/// The last reading, whole (a proposal refused names figures that belong
/// together).
#[derive(Debug, Default, Clone, Copy)]
struct Reading {
    /// When it was taken; `None` before the first.
    at: Option<Instant>,
    /// Free bytes.
    available: u64,
    /// Free bytes under which proposals are refused.
    needed: u64,
    /// Whether proposals are refused.
    low: bool,
    /// What the next snapshot may weigh.
    snapshot_bytes: u64,
    /// What RocksDB holds in memory, which a flush (or an open replaying
    /// the write-ahead log) writes to tables.
    unflushed: u64,
}

impl Reading {
    /// The free bytes writes need, as said to people: while they are
    /// refused, what brings them back rather than what stopped them (the
    /// figures must not read "31.9 MiB free, under the 31.3 kept").
    fn shown_needed(&self) -> u64 {
        if self.low {
            self.needed.saturating_add(HYSTERESIS)
        } else {
            self.needed
        }
    }
}

/// How the disk went from one reading to the next, when that changes what
/// the member does.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Crossed {
    /// Under the reserve: writes are refused from now on.
    Under { available: u64, needed: u64 },
    /// Room again.
    Over { available: u64, needed: u64 },
}

impl DiskSpace {
    /// `peer_ttl`: how long what another member said of its disk counts
    /// without a newer word (an election timeout).
    pub(crate) fn new(dir: &Path, keep_free: u64, peer_ttl: Duration) -> DiskSpace {
        DiskSpace {
            dir: dir.to_path_buf(),
            keep_free,
            reading: Mutex::new(Reading::default()),
            written: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            wants_room: AtomicBool::new(false),
            room: tokio::sync::watch::Sender::new(true),
            peers: PeerDisks::new(peer_ttl),
        }
    }

    /// As [`DiskSpace::refresh`], if the last reading is [`READ_EVERY`]
    /// old or [`READ_AFTER_BYTES`] were written since; `sizes` (the next
    /// snapshot's bytes, RocksDB's unflushed bytes) are asked only then.
    pub(crate) fn refresh_if_due(&self, sizes: impl FnOnce() -> (u64, u64)) -> Option<Crossed> {
        if self.due(Instant::now()) {
            let (snapshot_bytes, unflushed) = sizes();
            self.refresh(snapshot_bytes, unflushed)
        } else {
            None
        }
    }

    /// Whether a reading is due at `now`.
    fn due(&self, now: Instant) -> bool {
        self.last().at.is_none_or(|at| now.duration_since(at) >= READ_EVERY)
            || self.written.load(Ordering::Acquire) >= READ_AFTER_BYTES
    }

    /// Notes that the loop wrote `bytes` to the log.
    pub(crate) fn note_written(&self, bytes: u64) {
        self.written.fetch_add(bytes, Ordering::AcqRel);
    }

    /// Reads the free space again, the next snapshot weighing up to
    /// `snapshot_bytes` and RocksDB holding `unflushed` bytes in memory (a
    /// flush, or an open after a crash, writes them to tables: the reserve
    /// keeps room for them besides `keep_free`); says whether that crossed
    /// the reserve. A reading that fails keeps the last one (a data dir
    /// gone is seen, and stops the member, at its next write).
    pub(crate) fn refresh(&self, snapshot_bytes: u64, unflushed: u64) -> Option<Crossed> {
        self.written.store(0, Ordering::Release);
        let available = match free_bytes(&self.dir) {
            Ok(available) => available,
            Err(err) => {
                tracing::debug!(dir = %self.dir.display(), %err, "cannot read the free disk space");
                // Another member's word may have gone stale meanwhile.
                self.publish_room();
                return None;
            }
        };
        let mut reading = self.reading.lock().unwrap_or_else(|e| e.into_inner());
        let was_low = reading.low;
        let needed = if self.keep_free == 0 {
            0
        } else {
            (self.keep_free.saturating_add(unflushed)).saturating_add(snapshot_bytes.saturating_mul(2))
        };
        let low = stays_or_turns_low(available, needed, was_low);
        *reading = Reading {
            at: Some(Instant::now()),
            available,
            needed,
            low,
            snapshot_bytes,
            unflushed,
        };
        drop(reading);
        self.publish_room();
        match (was_low, low) {
            (false, true) => Some(Crossed::Under { available, needed }),
            (true, false) => Some(Crossed::Over { available, needed }),
            _ => None,
        }
    }

    fn last(&self) -> Reading {
        *self.reading.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sees whether writes are taken (`true`) or refused for want of room,
    /// here or on another member, as that changes (another member's word
    /// gone stale is seen at the next reading).
    pub(crate) fn watch_room(&self) -> tokio::sync::watch::Receiver<bool> {
        self.room.subscribe()
    }

    /// Tells those watching for room whether writes are taken now. (Judged
    /// under the watch's lock: the loop's reading and a batch's report
    /// race to publish.)
    fn publish_room(&self) {
        self.room.send_if_modified(|taken| {
            let room = !self.is_low() && self.peers.refusal(false, Instant::now()).is_none();
            std::mem::replace(taken, room) != room
        });
    }

    /// What this member says of its disk to the others: `Some` while it
    /// refuses writes.
    pub(crate) fn short(&self) -> Option<DiskShort> {
        let reading = self.last();
        reading.low.then(|| DiskShort {
            available: reading.available,
            needed: reading.shown_needed(),
            refusing_removals: self.refuse_removals(&reading).is_err(),
            removal_needed: self.removal_floor(&reading),
        })
    }

    /// The group's members are now `members`: only their word on their
    /// disks counts.
    pub(crate) fn set_members(&self, members: impl IntoIterator<Item = u64>) {
        self.peers.set_members(members);
        self.publish_room();
    }

    /// Notes what member `id`, listening at `addr`, said of its disk with
    /// a batch of messages (`None`: it has room).
    pub(crate) fn note_peer(&self, id: u64, addr: &str, short: Option<DiskShort>) {
        match self.peers.note(id, addr, short, Instant::now()) {
            None => return,
            Some(Turned::Short) => {
                let short = short.unwrap_or_default();
                tracing::warn!(
                    peer = id,
                    addr,
                    free = %human(short.available),
                    reserve = %human(short.needed),
                    "another member's raft data dir's filesystem is nearly full: the group's leader refuses writes \
                     until that member has room"
                );
            }
            Some(Turned::Room) => tracing::info!(peer = id, addr, "another member has room again on its disk"),
        }
        self.publish_room();
    }

    /// Whether proposals are refused.
    pub(crate) fn is_low(&self) -> bool {
        self.last().low
    }

    /// Whether the member is short of room: proposals are refused, or one
    /// was for want of room for itself (the reading just over the
    /// reserve). Either way the loop frees what log a snapshot can: were
    /// that left to the snapshot schedule, such a proposal would be
    /// refused for good while nothing else is written.
    pub(crate) fn short_of_room(&self) -> bool {
        self.is_low() || self.wants_room.load(Ordering::Acquire)
    }

    /// Whether flushing RocksDB's memtables now frees room: short of room,
    /// they hold at least [`FLUSH_WHEN_SHORT`], which the reserve keeps
    /// room for, and the write-ahead log files behind them. With writes
    /// refused nothing else flushes them (an idle member stayed refused
    /// until restarted, the open flushing them). Only with room for them
    /// twice over: a flush that fails for want of room stops RocksDB's
    /// writes.
    pub(crate) fn flush_frees_room(&self) -> bool {
        let reading = self.last();
        self.short_of_room()
            && reading.unflushed >= FLUSH_WHEN_SHORT
            && reading.available >= reading.unflushed.saturating_mul(2)
    }

    /// A snapshot was written: the room a refused proposal wanted is what
    /// it could free.
    pub(crate) fn snapshot_written(&self) {
        self.wants_room.store(false, Ordering::Release);
    }

    /// Whether a snapshot may start: room for it (twice its weight, as in
    /// the reserve) and half of `keep_free` still free after it, which is
    /// room enough to reopen the log. Under the reserve a snapshot is what
    /// frees the log behind it: were it refused as writes are, a log that
    /// filled the disk would keep writes refused for good. (What RocksDB
    /// holds in memory is not counted here: the snapshot flushes only its
    /// own data, and the rest is flushed whether or not it is taken.)
    pub(crate) fn room_for_snapshot(&self) -> bool {
        let reading = self.last();
        self.keep_free == 0
            || reading.at.is_none()
            || reading.available >= (self.keep_free / 2).saturating_add(reading.snapshot_bytes.saturating_mul(2))
    }

    /// What an entry that only removes must leave free: `keep_free`, and
    /// room to flush what RocksDB holds in memory.
    fn removal_floor(&self, reading: &Reading) -> u64 {
        self.keep_free.saturating_add(reading.unflushed)
    }

    /// Refuses a proposal while the free space is under the reserve. (Not
    /// another member's: this is for the membership changes, entries of a
    /// few bytes, and the way to replace a member short of room is to add
    /// another first.)
    ///
    /// # Errors
    ///
    /// [`Error::NoSpace`] with the figures of the last reading.
    pub(crate) fn check(&self) -> Result<()> {
        self.refuse_writes(&self.last())
    }

    /// Refuses a write, or a `removal`, that another member short of room
    /// refuses.
    fn refuse_for_peers(&self, removal: bool) -> Result<()> {
        match self.peers.refusal(removal, Instant::now()) {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    /// [`DiskSpace::check`] against `reading`. With removals refused too,
    /// their refusal: removing objects is then no way out either.
    fn refuse_writes(&self, reading: &Reading) -> Result<()> {
        if reading.low {
            self.refuse_removals(reading)?;
            return Err(Error::NoSpace {
                available: reading.available,
                needed: reading.shown_needed(),
                removal: false,
                member: None,
                entry: 0,
            });
        }
        Ok(())
    }

    /// Lets in a proposal of `bytes` for the loop to write, counted
    /// against the last reading until the loop has written it (the count
    /// goes with the [`Queued`] returned): refused as [`DiskSpace::check`] does,
    /// or [`DiskSpace::check_freeing`] for a `removal`, and also if what
    /// the queued proposals will write would take the free space under the
    /// reserve (which makes the member short of room: see
    /// [`DiskSpace::short_of_room`]). Refused as well while another member
    /// short of room refuses it.
    ///
    /// # Errors
    ///
    /// [`Error::NoSpace`] with the figures of the last reading, less what
    /// is queued, or with the other member's.
    pub(crate) fn queue(self: &Arc<Self>, bytes: u64, removal: bool) -> Result<Queued> {
        // One reading for both checks: the figures refused belong together.
        let reading = self.last();
        if removal {
            self.refuse_removals(&reading)?;
        } else {
            self.refuse_writes(&reading)?;
        }
        let queued = self.queued.fetch_add(bytes, Ordering::AcqRel);
        let taken = Queued {
            disk: Arc::clone(self),
            bytes,
        };
        let needed = if removal {
            self.removal_floor(&reading)
        } else {
            reading.needed
        };
        let available = reading.available.saturating_sub(queued);
        if self.keep_free == 0 || reading.at.is_none() || available.saturating_sub(bytes) >= needed {
            self.refuse_for_peers(removal)?;
            return Ok(taken);
        }
        self.wants_room.store(true, Ordering::Release);
        Err(Error::NoSpace {
            available,
            needed,
            removal,
            member: None,
            entry: bytes,
        })
    }

    /// Refuses an entry that frees room in the state (it only removes)
    /// once less than `--disk-reserve` itself is free: it shrinks the next
    /// snapshot, and so the room writes need, but takes log room itself.
    ///
    /// # Errors
    ///
    /// [`Error::NoSpace`] with the figures of the last reading.
    pub(crate) fn check_freeing(&self) -> Result<()> {
        self.refuse_removals(&self.last())
    }

    /// [`DiskSpace::check_freeing`] against `reading`.
    fn refuse_removals(&self, reading: &Reading) -> Result<()> {
        let floor = self.removal_floor(reading);
        if self.keep_free != 0 && reading.at.is_some() && reading.available < floor {
            return Err(Error::NoSpace {
                available: reading.available,
                needed: floor,
                removal: true,
                member: None,
                entry: 0,
            });
        }
        Ok(())
    }

    /// The free bytes at the last reading and the reserve (0 with the
    /// check off), for metrics; `None` before the first reading.
    pub(crate) fn figures(&self) -> Option<(u64, u64)> {
        let reading = self.last();
        reading.at.map(|_| (reading.available, reading.shown_needed()))
    }
}

/// A proposal's bytes counted against the free space until the loop has
/// written it: dropped (written, refused, or its proposer gone), it no
/// longer counts.
#[derive(Debug)]
pub(crate) struct Queued {
    disk: Arc<DiskSpace>,
    bytes: u64,
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.disk.queued.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// Whether proposals are refused with `available` bytes free and `needed`
/// kept: under `needed`, and once refused, until [`HYSTERESIS`] over it.
fn stays_or_turns_low(available: u64, needed: u64, was_low: bool) -> bool {
    if was_low {
        available < needed.saturating_add(HYSTERESIS)
    } else {
        available < needed
    }
}

/// Logs a crossing of the reserve, once per crossing.
pub(crate) fn report(member: u64, crossed: &Crossed) {
    match *crossed {
        Crossed::Under { available, needed } => tracing::warn!(
            member,
            free = %human(available),
            reserve = %human(needed),
            "the raft data dir's filesystem is nearly full: writes are refused until there is room (reads go on)"
        ),
        Crossed::Over { available, needed } => tracing::info!(
            member,
            free = %human(available),
            reserve = %human(needed),
            "room again on the raft data dir's filesystem: writes are accepted"
        ),
    }
}

/// Bytes an unprivileged writer may still take on the filesystem holding
/// `dir` (root's reserved blocks not counted: RocksDB does not run as root
/// everywhere, and a root that takes them leaves the host nothing).
fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let stat = statvfs(dir)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// The size of the filesystem that holds `path`, or would hold it: the
/// nearest of its ancestors that exists is asked (a state dir is made only
/// at start). Lets a daemon refuse a reserve no disk there could keep free.
///
/// # Errors
///
/// The error of `statvfs` on the nearest existing ancestor.
pub fn filesystem_size(path: &Path) -> std::io::Result<u64> {
    let mut asked = path;
    loop {
        match statvfs(asked) {
            Ok(stat) => return Ok(stat.f_blocks.saturating_mul(stat.f_frsize)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                asked = match asked.parent() {
                    Some(parent) if !parent.as_os_str().is_empty() => parent,
                    // A relative path's last ancestor is the working dir.
                    _ if asked != Path::new(".") => Path::new("."),
                    _ => return Err(err),
                };
            }
            Err(err) => return Err(err),
        }
    }
}

fn statvfs(path: &Path) -> std::io::Result<libc::statvfs> {
    use std::os::unix::ffi::OsStrExt as _;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes())?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a valid C string; `statvfs` writes the whole struct
    // on success, and it is read only then.
    unsafe {
        if libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(stat.assume_init())
    }
}

/// What [`Error::NoSpace`] says: `available` bytes free under `needed`
/// kept (and the `entry` bytes of this proposal, when they tipped it), on
/// this member or on `member`.
pub(crate) fn describe_no_space(
    available: u64,
    needed: u64,
    removal: bool,
    member: Option<&str>,
    entry: u64,
) -> String {
    let (whose, keeper) = match member {
        None => ("the raft data dir's filesystem".to_string(), "this member"),
        Some(member) => (format!("the raft data dir's filesystem of {member}"), "it"),
    };
    let (kept_for, refused, advice) = if removal {
        (
            "room to reopen its log",
            "removals too are",
            "give the filesystem more room",
        )
    } else {
        (
            "room to reopen its log and take its next snapshot",
            "writes are",
            "remove objects, or give the filesystem more room",
        )
    };
    if entry > 0 {
        // Free room may well exceed what is kept free, and still not hold
        // the entry beside it: the sum is what it is under.
        return format!(
            "{whose} has {} free, under the {} it would take: the {} {keeper} keeps free ({kept_for}) plus the {} of \
             this entry; it is refused until there is room ({advice})",
            human(available),
            human(needed.saturating_add(entry)),
            human(needed),
            human(entry),
        );
    }
    format!(
        "{whose} has {} free, under the {} {keeper} keeps free ({kept_for}): {refused} refused until there is room \
         ({advice})",
        human(available),
        human(needed),
    )
}

/// `bytes` for a person: "12.5 MiB" ("16.0 KiB" for an entry, which
/// would read "0.0 MiB").
pub fn human(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    if bytes >= 1 << 30 {
        format!("{:.1} GiB", bytes as f64 / (KIB * KIB * KIB))
    } else if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / (KIB * KIB))
    } else {
        format!("{:.1} KiB", bytes as f64 / KIB)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use super::{Crossed, DiskSpace, HYSTERESIS, READ_EVERY, free_bytes, human, stays_or_turns_low};
    use crate::error::Error;

    const TTL: std::time::Duration = std::time::Duration::from_secs(1);

    #[test]
    fn sizes_read_in_the_unit_that_shows_them() {
        assert_eq!(human(16 << 10), "16.0 KiB");
        assert_eq!(human(3 << 19), "1.5 MiB");
        assert_eq!(human(5 << 30), "5.0 GiB");
    }

    #[test]
    fn reads_the_free_space_of_a_real_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        assert!(free_bytes(dir.path()).unwrap() > 0);
        assert!(free_bytes(&dir.path().join("absent")).is_err());
    }

    #[test]
    fn refuses_proposals_under_the_reserve_and_says_when_it_crosses_it() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(dir.path()).unwrap();
        // A reserve well over twice what is free: refused, with the
        // figures, and no snapshot either.
        let reserve = 2 * free + (1 << 30);
        let space = DiskSpace::new(dir.path(), reserve, TTL);
        assert!(space.check().is_ok(), "nothing read yet: nothing refused");
        assert!(matches!(space.refresh(0, 0), Some(Crossed::Under { .. })));
        assert!(space.is_low());
        // Less than the reserve itself free: removals are refused too, and
        // a write is told so (removing objects is no way out).
        let err = space.check().unwrap_err();
        assert!(
            matches!(err, Error::NoSpace { needed, removal: true, .. } if needed == reserve),
            "{err}"
        );
        assert!(
            err.to_string()
                .ends_with("removals too are refused until there is room (give the filesystem more room)"),
            "{err}"
        );
        assert_eq!(space.refresh(0, 0), None, "still under: nothing new to say");
        assert!(!space.room_for_snapshot());

        // The next snapshot counts twice.
        let space = DiskSpace::new(dir.path(), 1 << 20, TTL);
        let room = space.watch_room();
        assert_eq!(space.refresh(0, 0), None);
        assert!(space.check().is_ok());
        assert!(
            matches!(space.refresh(free, 0), Some(Crossed::Under { needed, .. }) if needed == 2 * free + (1 << 20))
        );
        assert!(!*room.borrow(), "those waiting for room see it go");
        assert!(matches!(space.refresh(0, 0), Some(Crossed::Over { .. })));
        assert!(space.check().is_ok());
        assert!(*room.borrow(), "and come back");
    }

    /// A reading is due every 100 ms, and sooner once 4 MiB were written
    /// since the last: a burst of large entries cannot run far past the
    /// reserve before a reading sees it.
    #[test]
    fn the_free_space_is_read_again_once_4_mib_were_written() {
        let dir = tempfile::tempdir().unwrap();
        let space = DiskSpace::new(dir.path(), 1 << 20, TTL);
        assert!(space.due(std::time::Instant::now()), "the first reading is due at once");
        space.refresh(0, 0);
        let at = space.last().at.expect("a reading");
        assert!(!space.due(at));
        space.note_written(3 << 20);
        assert!(!space.due(at), "under 100 ms and 4 MiB: not due");
        assert!(space.due(at + READ_EVERY));
        space.note_written(1 << 20);
        assert!(space.due(at), "4 MiB written: due");
        space.refresh(0, 0);
        let at = space.last().at.expect("a reading");
        assert!(!space.due(at), "and counted again from there");
    }

    /// What RocksDB holds in memory raises the reserve, for writes and
    /// removals alike: a flush (or an open after a crash) writes it out.
    #[test]
    fn what_rocksdb_holds_in_memory_is_kept_room_for() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(dir.path()).unwrap();
        let space = DiskSpace::new(dir.path(), free - (10 << 20), TTL);
        assert_eq!(space.refresh(0, 0), None);
        assert!(space.check_freeing().is_ok());
        assert!(matches!(space.refresh(0, 20 << 20), Some(Crossed::Under { .. })));
        assert!(space.check().is_err());
        let err = space.check_freeing().unwrap_err();
        assert!(matches!(err, Error::NoSpace { removal: true, .. }), "{err}");
    }

    /// Proposals queued for the loop count against the last reading until
    /// the loop takes them: a burst of large ones from many clients stops
    /// at the reserve, and what the loop took no longer counts.
    #[test]
    fn queued_proposals_count_against_the_reserve_until_taken() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(dir.path()).unwrap();
        // A reserve that leaves 10 MiB (the filesystem moves a little,
        // hence the margins).
        let space = Arc::new(DiskSpace::new(dir.path(), free - (10 << 20), TTL));
        space.refresh(0, 0);
        let queued: Vec<_> = (0..6)
            .map(|_| space.queue(1 << 20, false).expect("room for 6 MiB"))
            .collect();
        let err = space.queue(64 << 20, false).unwrap_err();
        assert!(matches!(err, Error::NoSpace { removal: false, .. }), "{err}");
        assert!(
            space.queue(64 << 20, true).is_err(),
            "removals too, at the reserve itself"
        );
        assert!(!space.is_low(), "a reading would still take writes");
        drop(queued);
        let taken = space.queue(8 << 20, false).expect("taken by the loop: room again");
        drop(taken);
        assert_eq!(space.queued.load(Ordering::Acquire), 0);
    }

    /// A proposal refused over the reserve, for want of room for itself,
    /// makes the member short of room until a snapshot is written: the loop
    /// frees what log it can. (Refused only as it came, it was refused for
    /// good: the readings stayed over the reserve, and nothing freed the
    /// log.) Smaller writes still go on.
    #[test]
    fn a_proposal_refused_over_the_reserve_makes_the_member_short_of_room_until_a_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(dir.path()).unwrap();
        let keep_free = free - (10 << 20);
        let space = Arc::new(DiskSpace::new(dir.path(), keep_free, TTL));
        space.refresh(0, 0);
        assert!(!space.short_of_room());
        let err = space.queue(64 << 20, false).unwrap_err();
        assert!(
            matches!(err, Error::NoSpace { needed, entry, .. } if needed == keep_free && entry == 64 << 20),
            "{err:?}"
        );
        let said = err.to_string();
        assert!(
            said.contains("plus the 64.0 MiB of this entry; it is refused until there is room"),
            "{said}"
        );
        assert!(!space.is_low(), "writes go on");
        assert!(space.short_of_room());
        assert_eq!(space.refresh(0, 0), None);
        drop(space.queue(1 << 20, false).expect("a smaller one fits"));
        assert!(space.short_of_room(), "until a snapshot is written");
        space.snapshot_written();
        assert!(!space.short_of_room());
    }

    /// Short of room, what RocksDB holds in memory is flushed (the reserve
    /// counts it, and it holds write-ahead log files alive): with writes
    /// refused nothing else would flush it. Only with room for it twice.
    #[test]
    fn short_of_room_a_flush_of_what_rocksdb_holds_is_asked_while_there_is_room_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(dir.path()).unwrap();
        let space = DiskSpace::new(dir.path(), free - (10 << 20), TTL);
        space.refresh(0, 4 << 20);
        assert!(!space.is_low());
        assert!(!space.flush_frees_room(), "with room, RocksDB flushes as it will");
        let space = DiskSpace::new(dir.path(), free + (1 << 30), TTL);
        space.refresh(0, 4 << 20);
        assert!(space.is_low());
        assert!(space.flush_frees_room());
        space.refresh(0, 512 << 10);
        assert!(!space.flush_frees_room(), "too little to be worth a flush");
        space.refresh(0, free);
        assert!(!space.flush_frees_room(), "no room for the flush itself");
    }

    #[test]
    fn an_entry_that_frees_room_is_taken_while_the_reserve_itself_is_free() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(dir.path()).unwrap();
        // Writes refused (the next snapshot's room), removals taken.
        let space = DiskSpace::new(dir.path(), free / 2, TTL);
        assert!(space.check_freeing().is_ok(), "nothing read yet");
        space.refresh(free, 0);
        let err = space.check().unwrap_err();
        assert!(
            matches!(err, Error::NoSpace { needed, removal: false, .. } if needed == free / 2 + 2 * free + HYSTERESIS),
            "{err}"
        );
        assert!(
            err.to_string()
                .ends_with("writes are refused until there is room (remove objects, or give the filesystem more room)"),
            "{err}"
        );
        assert!(!space.room_for_snapshot());
        assert!(space.check_freeing().is_ok());
        // Less than the reserve itself: refused too.
        let space = DiskSpace::new(dir.path(), 2 * free, TTL);
        space.refresh(0, 0);
        let err = space.check_freeing().unwrap_err();
        assert!(
            matches!(err, Error::NoSpace { needed, removal: true, .. } if needed == 2 * free),
            "{err}"
        );
        // Removing cannot be the way out, then.
        let said = err.to_string();
        assert!(
            said.ends_with("refused until there is room (give the filesystem more room)"),
            "{said}"
        );
    }

    #[test]
    fn under_the_reserve_a_snapshot_may_use_the_room_kept_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(dir.path()).unwrap();
        // Writes refused; the snapshot (of nothing) still fits with half of
        // what is kept free left.
        let space = DiskSpace::new(dir.path(), free + free / 2, TTL);
        space.refresh(0, 0);
        assert!(space.is_low());
        assert!(space.room_for_snapshot());
        // A snapshot that would eat into that half: not taken.
        space.refresh(free / 2, 0);
        assert!(!space.room_for_snapshot());
    }

    #[test]
    fn writes_come_back_only_with_some_room_over_the_reserve() {
        let needed = 10 << 20;
        assert!(!stays_or_turns_low(needed, needed, false));
        assert!(stays_or_turns_low(needed - 1, needed, false));
        // Once refused, just over is not enough.
        assert!(stays_or_turns_low(needed + HYSTERESIS / 2, needed, true));
        assert!(!stays_or_turns_low(needed + HYSTERESIS, needed, true));
    }

    #[test]
    fn a_reserve_of_nothing_refuses_nothing_but_still_reads_for_metrics() {
        let dir = tempfile::tempdir().unwrap();
        let space = DiskSpace::new(dir.path(), 0, TTL);
        assert_eq!(space.figures(), None);
        assert_eq!(space.refresh(u64::MAX, 0), None);
        assert!(space.check().is_ok());
        assert!(space.room_for_snapshot());
        let (free, reserve) = space.figures().expect("read");
        assert!(free > 0);
        assert_eq!(reserve, 0);
    }

    #[test]
    fn sizes_read_as_a_person_would_write_them() {
        assert_eq!(human(16 << 20), "16.0 MiB");
        assert_eq!(human(3 << 29), "1.5 GiB");
    }
}
