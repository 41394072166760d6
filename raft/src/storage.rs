//! The Raft log, hard state and snapshot in RocksDB, as raft-rs's [`raft::Storage`].
//!
//! # Layout on disk
//!
//! Three column families:
//!
//! - `entries`: key = the entry's index as 8 big-endian bytes, so keys sort
//!   in log order and a range read is one seek; value = the encoded
//!   `eraftpb.Entry`.
//! - `state`: `identity` (format, cluster id, member id), `hard_state`,
//!   `conf_state`, `truncated` (index and term of the last entry dropped by
//!   compaction or covered by a snapshot), `applied`, and one `member/<id>`
//!   key per member holding its address.
//! - `snapshot`: `meta` (the current snapshot's `SnapshotMetadata`) and
//!   `data/<index>` (its data, keyed by its index).
//!
//! Every change goes into a [`WriteBatch`] that the Ready loop writes once,
//! synced, per Ready. One exception: a snapshot this member takes has its
//! data written off the loop first (`write_snapshot_data`), under its own
//! key, and flushed into a table (synced) rather than through the
//! write-ahead log; the loop then switches `meta` to it, drops the old data
//! and moves `truncated` past the entries it lets go, in one batch. Until
//! then the old snapshot stays whole, and `meta` is written only once the
//! data is on disk.
//! The entries let go are not deleted key by key: nothing reads at or
//! before `truncated`, and their tables are deleted whole once it is on
//! disk (`drop_compacted_files`).
//!
//! # Who calls what
//!
//! The Ready loop alone owns the storage (through raft-rs's `RawNode`), so
//! the caches below need no lock: the mutating methods update them as they
//! add to the batch, and the loop does not let raft-rs read before the batch
//! is on disk.

use std::cell::Cell;
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, StorageError};
use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, DB, Direction, IteratorMode, Options, WriteBatch, WriteOptions};

use crate::entry_cache::EntryCache;
use crate::error::{Error, Result};
use crate::open_db::OpenDb;

const CF_ENTRIES: &str = "entries";
const CF_STATE: &str = "state";
const CF_SNAPSHOT: &str = "snapshot";

const KEY_IDENTITY: &[u8] = b"identity";
const KEY_HARD_STATE: &[u8] = b"hard_state";
const KEY_CONF_STATE: &[u8] = b"conf_state";
const KEY_TRUNCATED: &[u8] = b"truncated";
const KEY_APPLIED: &[u8] = b"applied";
const MEMBER_PREFIX: &[u8] = b"member/";
const KEY_SNAPSHOT_META: &[u8] = b"meta";
const SNAPSHOT_DATA_PREFIX: &[u8] = b"data/";

/// The disk RocksDB takes ahead for its MANIFEST (its default: 4 MiB).
const MANIFEST_PREALLOCATION: usize = 256 << 10;

/// The write-ahead log an open may have to replay, at most.
pub(crate) const MAX_WAL_BYTES: u64 = 8 << 20;

/// Bumped when the layout above changes; a data dir of another format is
/// refused, never rewritten.
const FORMAT_VERSION: u32 = 1;

/// Whether `dir` holds a data dir (RocksDB's `CURRENT` file), as opposed
/// to nothing or an empty directory.
///
/// # Errors
///
/// [`Error::DataDir`] when that cannot be told (a permission refused).
pub fn holds_data(dir: &Path) -> Result<bool> {
    dir.join("CURRENT").try_exists().map_err(|err| Error::DataDir {
        dir: dir.to_path_buf(),
        reason: format!("cannot read it: {err}"),
    })
}

/// Whether `dir` holds RocksDB's other files (a `MANIFEST-*`) without the
/// `CURRENT` that names one: what an incomplete copy or restore leaves, not
/// a removal. Unreadable counts as no.
pub(crate) fn holds_remnants(dir: &Path) -> bool {
    !dir.join("CURRENT").exists()
        && std::fs::read_dir(dir).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|entry| entry.file_name().to_string_lossy().starts_with("MANIFEST-"))
        })
}

/// Why [`RocksStorage::open_read_only`] failed: RocksDB refused the open,
/// or what it read is not this member's or does not hold together.
#[derive(Debug)]
pub(crate) enum ReadOnlyError {
    RocksDb(rocksdb::Error),
    Storage(Error),
}

/// Whether [`RocksStorage::open`] found a data dir or made a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// The directory was empty or absent: a new, uninitialized log.
    New,
    /// An existing log of this cluster and member.
    Existing,
}

/// The Raft log and state of one member, in RocksDB.
pub struct RocksStorage {
    db: Arc<OpenDb>,
    dir: PathBuf,
    hard_state: HardState,
    conf_state: ConfState,
    /// Index and term of the entry just before the first one in the log.
    truncated: (u64, u64),
    /// The term and encoded size of each entry in the log, from
    /// `truncated.0 + 1` on: raft-rs asks for terms far more often than for
    /// entries, and compaction weighs what it keeps.
    held: VecDeque<Held>,
    /// The last entries themselves, which raft-rs reads next (to apply them
    /// and to send them to followers).
    recent: EntryCache,
    applied: u64,
    members: BTreeMap<u64, String>,
    snapshot_meta: SnapshotMetadata,
    /// Set when raft-rs asked for a snapshot to send to a member that the
    /// stored one does not include: the Ready loop then takes a fresh one.
    /// (raft-rs asks through `&self`.)
    snapshot_wanted: Cell<bool>,
}

/// What the log holds of one entry besides the entry itself.
#[derive(Debug, Clone, Copy)]
struct Held {
    term: u64,
    /// Its encoded size.
    bytes: u64,
}

impl Held {
    fn of(entry: &Entry, bytes: usize) -> Held {
        Held {
            term: entry.term,
            bytes: bytes as u64,
        }
    }
}

/// The entries a snapshot spares, just before its index, so that a
/// follower a little behind catches up from the log instead of a whole
/// snapshot: at most this many, weighing at most this much.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Keep {
    pub(crate) entries: u64,
    pub(crate) bytes: u64,
}

impl RocksStorage {
    /// Opens the data dir of member `node_id` of cluster `cluster_id`,
    /// creating it when it is absent or empty.
    ///
    /// # Errors
    ///
    /// [`Error::DataDir`] when the directory holds something other than a
    /// Raft data dir, one of another format, cluster or member, or one
    /// RocksDB cannot open (corruption). Nothing in it is changed then.
    pub fn open(dir: &Path, cluster_id: u64, node_id: u64) -> Result<(Self, Opened)> {
        let data_dir_error = |reason: String| Error::DataDir {
            dir: dir.to_path_buf(),
            reason,
        };
        let is_new = match std::fs::read_dir(dir) {
            Ok(mut entries) => {
                let empty = entries.next().is_none();
                if !empty && !holds_data(dir)? {
                    return Err(data_dir_error(
                        "not empty and not a Raft data directory (no RocksDB CURRENT file); refusing to touch it"
                            .into(),
                    ));
                }
                empty
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => true,
            Err(err) => return Err(data_dir_error(format!("cannot read it: {err}"))),
        };
        if is_new {
            create_whole(dir, cluster_id, node_id).map_err(|err| data_dir_error(format!("cannot create it: {err}")))?;
        }
        let db = DB::open_cf_descriptors(&db_options(false), dir, column_families())
            .map_err(|err| data_dir_error(format!("RocksDB cannot open it: {err}{}", damage_advice(&err))))?;
        let mut storage = RocksStorage::around(db, dir);
        storage.check_identity(cluster_id, node_id)?;
        // A table's damage shows as its blocks are read.
        storage.load().map_err(|err| match err {
            Error::Storage(err) if err.kind() == rocksdb::ErrorKind::Corruption => {
                data_dir_error(format!("RocksDB cannot read it: {err}{}", damage_advice(&err)))
            }
            err => err,
        })?;
        storage.drop_unused_snapshot_data()?;
        // Files a stop or a crash left behind, or an older version that
        // did not drop them. (A log never compacted, truncated at its
        // first configuration, has none.)
        let through = storage.truncated_index();
        if through > 1
            && let Err(err) = drop_compacted_files(&storage.db, through, true)
        {
            tracing::warn!(dir = %dir.display(), %err, "cannot drop the table files of the compacted log");
        }
        Ok((storage, if is_new { Opened::New } else { Opened::Existing }))
    }

    /// The data dir of member `node_id` of cluster `cluster_id` as an open
    /// with `recovery` of its write-ahead log would leave it, read without
    /// changing anything (RocksDB's read-only open replays the log in
    /// memory only): for a look before a salvage. With `state_only`, the
    /// log's entries are not read (nor checked), as for a log read past
    /// damage, where an entry may be missing.
    ///
    /// # Errors
    ///
    /// As [`RocksStorage::open`], RocksDB's own refusal included.
    pub(crate) fn open_read_only(
        dir: &Path,
        cluster_id: u64,
        node_id: u64,
        recovery: rocksdb::DBRecoveryMode,
        state_only: bool,
    ) -> std::result::Result<Self, ReadOnlyError> {
        let db = DB::open_cf_for_read_only(
            &db_options_recovering(false, recovery),
            dir,
            [CF_ENTRIES, CF_STATE, CF_SNAPSHOT],
            false,
        )
        .map_err(ReadOnlyError::RocksDb)?;
        let mut storage = RocksStorage::around(db, dir);
        storage
            .check_identity(cluster_id, node_id)
            .map_err(ReadOnlyError::Storage)?;
        let loaded = if state_only {
            storage.load_state()
        } else {
            storage.load()
        };
        loaded.map_err(ReadOnlyError::Storage)?;
        Ok(storage)
    }

    /// The storage of an opened database, nothing read yet.
    fn around(db: DB, dir: &Path) -> Self {
        RocksStorage {
            db: Arc::new(OpenDb::new(db)),
            dir: dir.to_path_buf(),
            hard_state: HardState::default(),
            conf_state: ConfState::default(),
            truncated: (0, 0),
            held: VecDeque::new(),
            recent: EntryCache::default(),
            applied: 0,
            members: BTreeMap::new(),
            snapshot_meta: SnapshotMetadata::default(),
            snapshot_wanted: Cell::new(false),
        }
    }

    fn check_identity(&self, cluster_id: u64, node_id: u64) -> Result<()> {
        let db = Arc::clone(&self.db);
        let data_dir_error = |reason: String| Error::DataDir {
            dir: self.dir.clone(),
            reason,
        };
        let Some(bytes) = self.db.get_cf(cf(&db, CF_STATE)?, KEY_IDENTITY)? else {
            return Err(data_dir_error(
                "holds a RocksDB without a Raft identity; refusing to touch it".into(),
            ));
        };
        let (format, found_cluster, found_node) =
            parse_identity(&bytes).ok_or_else(|| data_dir_error("its identity record is corrupt".into()))?;
        if format != FORMAT_VERSION {
            return Err(data_dir_error(format!(
                "format {format}, this build reads format {FORMAT_VERSION}"
            )));
        }
        if found_cluster != cluster_id {
            return Err(data_dir_error(format!(
                "belongs to cluster {found_cluster:016x}, not {cluster_id:016x}; refusing to touch it"
            )));
        }
        if found_node != node_id {
            return Err(data_dir_error(format!(
                "belongs to member {found_node}, not {node_id}; refusing to touch it"
            )));
        }
        Ok(())
    }

    /// Reads the state and the terms of the log into the caches.
    fn load(&mut self) -> Result<()> {
        self.load_state()?;
        self.load_terms()
    }

    /// Reads the hard state, membership, applied index and snapshot
    /// metadata into the caches.
    fn load_state(&mut self) -> Result<()> {
        let db = Arc::clone(&self.db);
        let state = cf(&db, CF_STATE)?;
        if let Some(bytes) = self.db.get_cf(state, KEY_HARD_STATE)? {
            self.hard_state = HardState::parse_from_bytes(&bytes)?;
        }
        if let Some(bytes) = self.db.get_cf(state, KEY_CONF_STATE)? {
            self.conf_state = ConfState::parse_from_bytes(&bytes)?;
        }
        if let Some(bytes) = self.db.get_cf(state, KEY_TRUNCATED)? {
            let (index, term) = parse_pair(&bytes).ok_or_else(|| Error::Corrupt("truncated state".into()))?;
            self.truncated = (index, term);
        }
        if let Some(bytes) = self.db.get_cf(state, KEY_APPLIED)? {
            self.applied = parse_u64(&bytes).ok_or_else(|| Error::Corrupt("applied index".into()))?;
        }
        for item in self
            .db
            .iterator_cf(state, IteratorMode::From(MEMBER_PREFIX, Direction::Forward))
        {
            let (key, value) = item?;
            let Some(id) = key.strip_prefix(MEMBER_PREFIX) else {
                break;
            };
            let id = parse_u64(id).ok_or_else(|| Error::Corrupt("member key".into()))?;
            let addr = String::from_utf8(value.to_vec()).map_err(|_| Error::Corrupt("member address".into()))?;
            self.members.insert(id, addr);
        }
        if let Some(bytes) = self.db.get_cf(cf(&db, CF_SNAPSHOT)?, KEY_SNAPSHOT_META)? {
            self.snapshot_meta = SnapshotMetadata::parse_from_bytes(&bytes)?;
        }
        Ok(())
    }

    /// Reads the terms of the log, checking it has no gap, no term going
    /// back, and ends at or past the applied index. (It reads from the
    /// first entry after the truncation: what lies before is dead, left
    /// for [`drop_compacted_files`] to delete.)
    fn load_terms(&mut self) -> Result<()> {
        let db = Arc::clone(&self.db);
        let after_truncation = (self.truncated.0.checked_add(1))
            .ok_or_else(|| Error::Corrupt(format!("truncated index {} is out of range", self.truncated.0)))?;
        let first = index_key(after_truncation);
        let stored = self
            .db
            .iterator_cf(cf(&db, CF_ENTRIES)?, IteratorMode::From(&first, Direction::Forward));
        for (expected, item) in (after_truncation..).zip(stored) {
            let (key, value) = item?;
            let entry = Entry::parse_from_bytes(&value)?;
            if parse_u64(&key) != Some(expected) || entry.index != expected {
                return Err(Error::Corrupt(format!("log has a gap or a stray entry at {expected}")));
            }
            let previous_term = self.held.back().map_or(self.truncated.1, |held| held.term);
            if entry.term < previous_term {
                return Err(Error::Corrupt(format!(
                    "the entry at {expected} has term {}, older than the {previous_term} before it",
                    entry.term
                )));
            }
            self.held.push_back(Held::of(&entry, value.len()));
        }
        if self.applied > self.last() {
            return Err(Error::Corrupt(format!(
                "applied index {} is past the last entry {}",
                self.applied,
                self.last()
            )));
        }
        // Entries and the commit index that covers them go in one batch:
        // a commit past the log is damage (raft-rs would panic on it).
        if self.hard_state.commit > self.last() {
            return Err(Error::Corrupt(format!(
                "commit index {} is past the last entry {}",
                self.hard_state.commit,
                self.last()
            )));
        }
        Ok(())
    }

    /// Deletes the data of snapshots that never became current: written
    /// off the loop, then abandoned by a stop that did not wait for them or
    /// by a crash. Nothing points at them, and each may be hundreds of MB.
    fn drop_unused_snapshot_data(&self) -> Result<()> {
        let snapshots = cf(&self.db, CF_SNAPSHOT)?;
        let current = snapshot_data_key(self.snapshot_meta.index);
        let mut batch = WriteBatch::default();
        let from = IteratorMode::From(SNAPSHOT_DATA_PREFIX, Direction::Forward);
        for item in self.db.iterator_cf(snapshots, from) {
            let (key, _) = item?;
            if !key.starts_with(SNAPSHOT_DATA_PREFIX) {
                break;
            }
            if *key != current[..] {
                batch.delete_cf(snapshots, &key);
            }
        }
        if !batch.is_empty() {
            tracing::info!(
                dir = %self.dir.display(),
                count = batch.len(),
                "dropping the data of snapshots that never became current"
            );
            self.db.write(batch)?;
        }
        Ok(())
    }

    /// The database, for the synced write of a batch off the Ready loop.
    pub(crate) fn db(&self) -> Arc<OpenDb> {
        Arc::clone(&self.db)
    }

    /// Writes `batch` and waits for the fsync.
    pub(crate) fn write(&self, batch: WriteBatch) -> Result<()> {
        write_synced(&self.db, batch)
    }

    /// Writes every memtable to tables, so that the next open has no
    /// write-ahead log to replay (a clean stop does this).
    pub(crate) fn flush(&self) -> Result<()> {
        for name in [CF_ENTRIES, CF_STATE, CF_SNAPSHOT] {
            self.db.flush_cf(cf(&self.db, name)?)?;
        }
        Ok(())
    }

    /// Whether the log has ever been given a configuration (by bootstrap, a
    /// snapshot or a conf change).
    pub fn is_initialized(&self) -> bool {
        !self.conf_state.voters.is_empty() || self.last() > 0
    }

    /// Makes a new log the first configuration of a new group: every initial
    /// member must be bootstrapped with the same `members` and `data`.
    ///
    /// The first configuration is a snapshot at index 1 (term 1) rather
    /// than log entries: a member that joins later then always starts from
    /// a snapshot, which carries the configuration and the member addresses
    /// no entry of the log holds (raft-rs's `MemStorage` docs name the two
    /// ways; tikv takes this one).
    pub(crate) fn bootstrap(
        &mut self,
        batch: &mut WriteBatch,
        members: &BTreeMap<u64, String>,
        data: &[u8],
    ) -> Result<()> {
        let conf_state = ConfState {
            voters: members.keys().copied().collect(),
            ..Default::default()
        };
        self.set_conf_state(batch, conf_state.clone())?;
        for (id, addr) in members {
            self.put_member(batch, *id, addr)?;
        }
        let mut meta = SnapshotMetadata {
            index: 1,
            term: 1,
            ..Default::default()
        };
        meta.set_conf_state(conf_state);
        let db = Arc::clone(&self.db);
        let snapshots = cf(&db, CF_SNAPSHOT)?;
        batch.put_cf(snapshots, KEY_SNAPSHOT_META, meta.write_to_bytes()?);
        batch.put_cf(snapshots, snapshot_data_key(1), data);
        self.snapshot_meta = meta;
        self.set_truncated(batch, 1, 1)?;
        self.set_hard_state(
            batch,
            HardState {
                term: 1,
                commit: 1,
                ..Default::default()
            },
        )?;
        self.set_applied(batch, 1)
    }

    /// The index of the last entry (or of the snapshot, if the log is empty).
    pub fn last(&self) -> u64 {
        self.truncated.0 + self.held.len() as u64
    }

    /// The index the state machine had applied when last written.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// The configuration as of the last applied change.
    pub fn conf_state(&self) -> &ConfState {
        &self.conf_state
    }

    /// The members and their addresses as of the last applied change.
    pub fn members(&self) -> &BTreeMap<u64, String> {
        &self.members
    }

    /// The metadata of the stored snapshot (index 0 when there is none).
    pub fn snapshot_meta(&self) -> &SnapshotMetadata {
        &self.snapshot_meta
    }

    /// The stored snapshot's data, if there is one.
    ///
    /// # Errors
    ///
    /// A RocksDB read error.
    pub fn snapshot_data(&self) -> Result<Option<Vec<u8>>> {
        let db = Arc::clone(&self.db);
        Ok(self
            .db
            .get_cf(cf(&db, CF_SNAPSHOT)?, snapshot_data_key(self.snapshot_meta.index))?)
    }

    /// Adds `entries` to the log, replacing any entries at or after the
    /// first one's index (a new leader's log wins over ours).
    pub(crate) fn append(&mut self, batch: &mut WriteBatch, entries: &[Entry]) -> Result<()> {
        let db = Arc::clone(&self.db);
        let Some(first) = entries.first() else { return Ok(()) };
        if first.index <= self.truncated.0 || first.index > self.last() + 1 {
            return Err(Error::Corrupt(format!(
                "append at {} to a log of ({}, {}]",
                first.index,
                self.truncated.0,
                self.last()
            )));
        }
        let cf = cf(&db, CF_ENTRIES)?;
        let new_last = first.index + entries.len() as u64 - 1;
        if new_last < self.last() {
            batch.delete_range_cf(cf, index_key(new_last + 1), index_key(self.last() + 1));
        }
        self.held.truncate((first.index - self.truncated.0 - 1) as usize);
        for entry in entries {
            let bytes = entry.write_to_bytes()?;
            self.held.push_back(Held::of(entry, bytes.len()));
            batch.put_cf(cf, index_key(entry.index), bytes);
        }
        self.recent.append(entries);
        Ok(())
    }

    /// Adds a write of `key` in the state column family to `batch`.
    fn put_state(&self, batch: &mut WriteBatch, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        batch.put_cf(cf(&self.db, CF_STATE)?, key, value);
        Ok(())
    }

    pub(crate) fn set_hard_state(&mut self, batch: &mut WriteBatch, hard_state: HardState) -> Result<()> {
        self.put_state(batch, KEY_HARD_STATE, hard_state.write_to_bytes()?)?;
        self.hard_state = hard_state;
        Ok(())
    }

    pub(crate) fn set_commit(&mut self, batch: &mut WriteBatch, commit: u64) -> Result<()> {
        let mut hard_state = self.hard_state.clone();
        hard_state.commit = commit;
        self.set_hard_state(batch, hard_state)
    }

    pub(crate) fn set_applied(&mut self, batch: &mut WriteBatch, applied: u64) -> Result<()> {
        self.put_state(batch, KEY_APPLIED, applied.to_be_bytes())?;
        self.applied = applied;
        Ok(())
    }

    pub(crate) fn set_conf_state(&mut self, batch: &mut WriteBatch, conf_state: ConfState) -> Result<()> {
        self.put_state(batch, KEY_CONF_STATE, conf_state.write_to_bytes()?)?;
        self.conf_state = conf_state;
        Ok(())
    }

    pub(crate) fn put_member(&mut self, batch: &mut WriteBatch, id: u64, addr: &str) -> Result<()> {
        self.put_state(batch, member_key(id), addr.as_bytes())?;
        self.members.insert(id, addr.to_string());
        Ok(())
    }

    pub(crate) fn remove_member(&mut self, batch: &mut WriteBatch, id: u64) -> Result<()> {
        batch.delete_cf(cf(&self.db, CF_STATE)?, member_key(id));
        self.members.remove(&id);
        Ok(())
    }

    /// Replaces the member list (a snapshot received from the leader).
    fn replace_members(&mut self, batch: &mut WriteBatch, members: BTreeMap<u64, String>) -> Result<()> {
        let old: Vec<u64> = self.members.keys().copied().collect();
        for id in old {
            self.remove_member(batch, id)?;
        }
        for (id, addr) in members {
            self.put_member(batch, id, &addr)?;
        }
        Ok(())
    }

    /// Makes the snapshot whose data [`write_snapshot_data`] wrote at
    /// `meta.index` the current one, drops the previous one's data, and
    /// drops the entries before it but for those `keep` spares; says
    /// whether it became current. A snapshot older than the current one
    /// (one was installed from the leader meanwhile) is dropped instead;
    /// one at the current one's index wrote the same state over its data,
    /// which stays.
    pub(crate) fn snapshot_written(
        &mut self,
        batch: &mut WriteBatch,
        meta: SnapshotMetadata,
        keep: Keep,
    ) -> Result<bool> {
        let db = Arc::clone(&self.db);
        let snapshots = cf(&db, CF_SNAPSHOT)?;
        if meta.index < self.snapshot_meta.index {
            batch.delete_cf(snapshots, snapshot_data_key(meta.index));
            return Ok(false);
        }
        if meta.index == self.snapshot_meta.index {
            return Ok(false);
        }
        batch.delete_cf(snapshots, snapshot_data_key(self.snapshot_meta.index));
        batch.put_cf(snapshots, KEY_SNAPSHOT_META, meta.write_to_bytes()?);
        self.snapshot_meta = meta;
        self.compact_behind_snapshot(batch, keep)?;
        Ok(true)
    }

    /// Drops the entries the current snapshot covers but for those `keep`
    /// spares; says whether any went. (What a snapshot does as it becomes
    /// current; short of room, also what lets go of entries spared for
    /// slow followers when nothing comes to apply, and so no newer
    /// snapshot would.)
    pub(crate) fn compact_behind_snapshot(&mut self, batch: &mut WriteBatch, keep: Keep) -> Result<bool> {
        let compact_to = self.compaction_point(self.snapshot_meta.index, keep);
        if compact_to <= self.truncated.0 {
            return Ok(false);
        }
        let term = self
            .term_of(compact_to)
            .map_err(|err| Error::Corrupt(err.to_string()))?;
        // No tombstone for the entries let go: nothing reads at or before
        // the truncation, and their tables are deleted whole once it is on
        // disk (`drop_compacted_files`). A range tombstone would make the
        // newest table overlap every older one, and RocksDB would rewrite
        // them, holding their room, instead of moving them down whole:
        // three times the disk under large writes.
        self.held.drain(..(compact_to - self.truncated.0) as usize);
        self.recent.compact_to(compact_to);
        self.set_truncated(batch, compact_to, term)?;
        Ok(true)
    }

    /// The last entry a snapshot at `index` lets go: the entries after it,
    /// up to `index`, are the most recent ones `keep` spares.
    fn compaction_point(&self, index: u64, keep: Keep) -> u64 {
        let mut kept = 0;
        let mut bytes = 0u64;
        let mut point = index.min(self.last());
        while point > self.truncated.0 && kept < keep.entries {
            let Some(held) = self.held.get((point - self.truncated.0 - 1) as usize) else {
                break;
            };
            bytes += held.bytes;
            if bytes > keep.bytes {
                break;
            }
            kept += 1;
            point -= 1;
        }
        point
    }

    /// The index of the last entry compaction let go (or the snapshot
    /// covers): nothing at or before it is read again.
    pub(crate) fn truncated_index(&self) -> u64 {
        self.truncated.0
    }

    /// Whether raft-rs asked for a snapshot the stored one cannot serve;
    /// clears the request.
    pub(crate) fn take_snapshot_request(&self) -> bool {
        self.snapshot_wanted.replace(false)
    }

    /// Replaces the whole log by a snapshot received from the leader.
    pub(crate) fn install_snapshot(
        &mut self,
        batch: &mut WriteBatch,
        snapshot: &Snapshot,
        members: BTreeMap<u64, String>,
    ) -> Result<()> {
        let db = Arc::clone(&self.db);
        let meta = snapshot.get_metadata();
        // Entries at or before the truncation are dead but may still be on
        // disk (no tombstone): a truncation never goes back. (raft-rs only
        // installs a snapshot past the commit index.)
        if meta.index < self.truncated.0 {
            return Err(Error::Corrupt(format!(
                "a snapshot at {} would move the log's start back from {}",
                meta.index, self.truncated.0
            )));
        }
        let entries = cf(&db, CF_ENTRIES)?;
        if self.last() > self.truncated.0 {
            batch.delete_range_cf(entries, index_key(self.truncated.0 + 1), index_key(self.last() + 1));
        }
        self.held.clear();
        self.recent.clear();
        self.set_truncated(batch, meta.index, meta.term)?;
        let mut hard_state = self.hard_state.clone();
        hard_state.term = hard_state.term.max(meta.term);
        hard_state.commit = hard_state.commit.max(meta.index);
        self.set_hard_state(batch, hard_state)?;
        self.set_conf_state(batch, meta.get_conf_state().clone())?;
        self.set_applied(batch, meta.index)?;
        self.replace_members(batch, members)?;
        let snapshots = cf(&db, CF_SNAPSHOT)?;
        batch.delete_cf(snapshots, snapshot_data_key(self.snapshot_meta.index));
        batch.put_cf(snapshots, KEY_SNAPSHOT_META, meta.write_to_bytes()?);
        batch.put_cf(snapshots, snapshot_data_key(meta.index), &snapshot.data);
        self.snapshot_meta = meta.clone();
        Ok(())
    }

    fn set_truncated(&mut self, batch: &mut WriteBatch, index: u64, term: u64) -> Result<()> {
        let mut bytes = [0; 16];
        bytes[..8].copy_from_slice(&index.to_be_bytes());
        bytes[8..].copy_from_slice(&term.to_be_bytes());
        self.put_state(batch, KEY_TRUNCATED, bytes)?;
        self.truncated = (index, term);
        Ok(())
    }

    fn term_of(&self, index: u64) -> raft::Result<u64> {
        if index == self.truncated.0 {
            return Ok(self.truncated.1);
        }
        if index < self.truncated.0 {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        match self.held.get((index - self.truncated.0 - 1) as usize) {
            Some(held) => Ok(held.term),
            None => Err(raft::Error::Store(StorageError::Unavailable)),
        }
    }

    fn read_entries(&self, low: u64, high: u64, max_size: Option<u64>) -> Result<Vec<Entry>> {
        if let Some(entries) = self.recent.get(low, high, max_size) {
            return Ok(entries);
        }
        let db = Arc::clone(&self.db);
        let mut entries = Vec::with_capacity((high - low).min(1024) as usize);
        let mut size = 0u64;
        let start = index_key(low);
        let iter = self
            .db
            .iterator_cf(cf(&db, CF_ENTRIES)?, IteratorMode::From(&start, Direction::Forward));
        for item in iter.take((high - low) as usize) {
            let (_, value) = item?;
            size += value.len() as u64;
            // raft-rs wants at least one entry, even one over the limit.
            if !entries.is_empty() && max_size.is_some_and(|max| size > max) {
                return Ok(entries);
            }
            let entry = Entry::parse_from_bytes(&value)?;
            if entry.index != low + entries.len() as u64 {
                return Err(Error::Corrupt(format!(
                    "expected entry {} in the log",
                    low + entries.len() as u64
                )));
            }
            entries.push(entry);
        }
        if entries.len() as u64 != high - low {
            return Err(Error::Corrupt(format!(
                "entries [{low}, {high}) are not all in the log"
            )));
        }
        Ok(entries)
    }
}

impl raft::Storage for RocksStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let mut hard_state = self.hard_state.clone();
        // Entries up to `applied` were applied, so they were committed, and
        // applying happens before the hard state carrying the new commit
        // index reaches disk (raft-rs's documented order). Start from the
        // larger so a restart replays all of them without waiting for a
        // leader. `load` checked that `applied` is within the log.
        hard_state.commit = hard_state.commit.max(self.applied).max(self.truncated.0);
        Ok(RaftState::new(hard_state, self.conf_state.clone()))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low <= self.truncated.0 {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > self.last() + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        self.read_entries(low, high, max_size.into()).map_err(storage_error)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        self.term_of(idx)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.truncated.0 + 1)
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last())
    }

    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        let conf_state = self.snapshot_meta.get_conf_state();
        let includes_peer = conf_state.voters.contains(&to) || conf_state.learners.contains(&to);
        if self.snapshot_meta.index < request_index || self.snapshot_meta.index == 0 || !includes_peer {
            // raft-rs refuses a snapshot whose configuration leaves out the
            // member receiving it (one added after the snapshot was taken):
            // ask the Ready loop for a fresh one; raft-rs asks again later.
            self.snapshot_wanted.set(true);
            return Err(raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable));
        }
        let data = self
            .snapshot_data()
            .map_err(storage_error)?
            .ok_or(raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable))?;
        let mut snapshot = Snapshot::default();
        snapshot.set_metadata(self.snapshot_meta.clone());
        snapshot.data = data.into();
        Ok(snapshot)
    }
}

/// What to do about `err`, when it says the files are damaged or the
/// filesystem is full: nothing said otherwise.
fn damage_advice(err: &rocksdb::Error) -> String {
    if err.kind() == rocksdb::ErrorKind::IOError && err.to_string().contains("No space left on device") {
        // Even an open writes: a new MANIFEST, and the log it replays.
        return " (its filesystem is full, and even reading it back needs some room: make room on it and start \
                again; what it holds was left as it is)"
            .to_string();
    }
    if err.kind() == rocksdb::ErrorKind::IOError && err.to_string().contains("/LOCK: ") {
        // RocksDB's own lock ("While lock file: DIR/LOCK: ...", or "lock
        // hold by current process ... DIR/LOCK: ..."): the same data dir
        // opened twice (swarmd's lock in the state dir removed meanwhile).
        return " (another process has it open: another swarmd on the same state dir? It was left as it is)"
            .to_string();
    }
    if err.kind() != rocksdb::ErrorKind::Corruption {
        return String::new();
    }
    // Only damage in the write-ahead log can be salvaged; RocksDB names
    // the other files it found damaged.
    let message = err.to_string();
    let in_log = !["MANIFEST", "CURRENT", ".sst"]
        .iter()
        .any(|file| message.contains(file));
    let salvage = if in_log {
        "; a single manager with neither may keep what came before the damage: swarmd's --salvage-damaged-log"
    } else {
        ""
    };
    format!(
        " (its files are damaged, and were left as they are; restore it from a backup, or remove this member \
         from its cluster and join it again with an empty one{salvage})"
    )
}

/// RocksDB's options for a data dir; `create` for a new one.
fn db_options(create: bool) -> Options {
    db_options_recovering(create, rocksdb::DBRecoveryMode::TolerateCorruptedTailRecords)
}

/// [`db_options`], but for `recovery` of a damaged write-ahead log (what
/// [`crate::salvage`] asks for).
pub(crate) fn db_options_recovering(create: bool, recovery: rocksdb::DBRecoveryMode) -> Options {
    let mut options = Options::default();
    options.create_if_missing(create);
    options.create_missing_column_families(create);
    // RocksDB's own LOG file: only what it writes at open (its options)
    // and fatal errors. Our errors come back from each call and are
    // reported with it. More than that is worse than noise on a full
    // disk: the LOG write that fails there is followed by another, and
    // Debian's build (assertions on) aborts the process on it
    // (`AssertFalseAndGetStatusForPrevError`) instead of letting the
    // node stop with its error. One LOG file per start, five kept.
    options.set_log_level(rocksdb::LogLevel::Fatal);
    options.set_keep_log_file_num(5);
    // RocksDB takes 4 MiB of disk for its MANIFEST ahead, which grows by a
    // few hundred bytes a flush: on a small disk, room the reserve then
    // lacks. A smaller step costs an fallocate now and then.
    options.set_manifest_preallocation_size(MANIFEST_PREALLOCATION);
    // An open replays the write-ahead log not yet flushed to tables.
    // By default RocksDB lets it grow to 4 x the memtables (1.5 GB for
    // our three families) before forcing a flush, and the small `state`
    // family, rarely flushed by itself, holds the old log files alive:
    // a start after a long run replayed all of it (100,000 creates: 420
    // ms of a 1 s start). Capped, the flushes happen in the background
    // as the log grows, and a start replays at most this much.
    options.set_max_total_wal_size(MAX_WAL_BYTES);
    // What an open does with a damaged write-ahead log. RocksDB's default
    // (point in time) replays up to the first bad record and quietly drops
    // the rest: acknowledged entries gone, their indexes given again to new
    // ones. Every write here is synced before it is acknowledged, so what a
    // crash can leave is a record cut short at the end of the log being
    // written, a write no one was told of. This mode tolerates that (at the
    // end of any log file: RocksDB cannot tell a cut record from a length
    // field damaged in a file's last block), and fails the open on a record
    // whose checksum fails anywhere: the node stops with RocksDB's
    // "Corruption" error, its data left as found. (RocksDB also turns log
    // recycling off in this mode, so an old record is never read as new.)
    options.set_wal_recovery_mode(recovery);
    options
}

pub(crate) fn column_families() -> [ColumnFamilyDescriptor; 3] {
    let mut entries = table_options();
    // Each table the log flushes moves down as it is, alone, where it can
    // be deleted once compacted (`drop_compacted_files`): its keys follow
    // those of the last one. Four at a time, RocksDB merged them into new
    // tables, which took their room again until done.
    entries.set_level_zero_file_num_compaction_trigger(1);
    [
        ColumnFamilyDescriptor::new(CF_ENTRIES, entries),
        ColumnFamilyDescriptor::new(CF_STATE, table_options()),
        ColumnFamilyDescriptor::new(CF_SNAPSHOT, table_options()),
    ]
}

/// The options of each column family. RocksDB reserves the room of a table
/// it writes ahead, in steps of its memtable's size (flushes) or of its
/// target table size (compactions), 70 MB each by default, and gives back
/// what it did not use only once the table is whole: on a small disk,
/// several such steps at once were most of the room. The write-ahead log's
/// cap flushes every memtable at [`MAX_WAL_BYTES`] anyway, and the log's
/// tables, deleted whole once compacted, free the disk sooner when small.
fn table_options() -> Options {
    let mut options = Options::default();
    options.set_write_buffer_size(MAX_WAL_BYTES as usize);
    options.set_target_file_size_base(MAX_WAL_BYTES);
    // Writes stall once this many memtables wait: with small ones, room
    // for a burst while one is flushed.
    options.set_max_write_buffer_number(4);
    options
}

/// Makes a new data dir at `dir` whole or not at all: RocksDB's files and
/// the identity record are made in a sibling directory, which then takes
/// `dir`'s name. Made in place, a crash between RocksDB's first files and
/// the identity would leave a dir every later start refuses (a RocksDB
/// without an identity may be anyone's); this way it leaves the sibling
/// alone, which the next start makes again.
fn create_whole(dir: &Path, cluster_id: u64, node_id: u64) -> std::result::Result<(), String> {
    let mut building = dir.as_os_str().to_owned();
    building.push(".new");
    let building = PathBuf::from(building);
    let io = |err: std::io::Error| format!("{}: {err}", building.display());
    if building.exists() {
        std::fs::remove_dir_all(&building).map_err(io)?;
    }
    // Private (0700): the log holds what the state machine stores, secrets
    // among it, and RocksDB makes its files readable by all.
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
        .create(&building)
        .map_err(io)?;
    {
        let db = DB::open_cf_descriptors(&db_options(true), &building, column_families()).map_err(|e| e.to_string())?;
        let mut batch = WriteBatch::default();
        let state = cf(&db, CF_STATE).map_err(|e| e.to_string())?;
        batch.put_cf(state, KEY_IDENTITY, identity_bytes(cluster_id, node_id));
        write_synced(&db, batch).map_err(|e| e.to_string())?;
    }
    // `dir` is absent or an empty directory, which a rename replaces.
    std::fs::rename(&building, dir).map_err(io)?;
    if let Some(parent) = dir.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        std::fs::File::open(parent)
            .and_then(|parent| parent.sync_all())
            .map_err(io)?;
    }
    Ok(())
}

/// Writes the data of a snapshot this member took at `index`, off the Ready
/// loop, durably; [`RocksStorage::snapshot_written`] then makes it current.
/// Not through the write-ahead log: flushed into a table of its own
/// (synced, as RocksDB syncs every table it writes). Through the log, the
/// loop's next synced write would sync the whole snapshot with its own few
/// bytes (a stall of the loop, heartbeats included, as long as the
/// snapshot takes to reach the disk), and the log would hold it a second
/// time until its files rotate.
pub(crate) fn write_snapshot_data(db: &DB, index: u64, data: &[u8]) -> Result<()> {
    let snapshots = cf(db, CF_SNAPSHOT)?;
    let mut unlogged = rocksdb::WriteOptions::default();
    unlogged.disable_wal(true);
    db.put_cf_opt(snapshots, snapshot_data_key(index), data, &unlogged)?;
    db.flush_cf(snapshots)?;
    Ok(())
}

/// The bytes RocksDB holds in its memtables, every family's: what a flush,
/// or an open replaying the write-ahead log after a crash, writes to
/// tables, and so room the disk must keep. 0 if RocksDB cannot say.
pub(crate) fn unflushed_bytes(db: &DB) -> u64 {
    [CF_ENTRIES, CF_STATE, CF_SNAPSHOT]
        .into_iter()
        .filter_map(|name| cf(db, name).ok())
        .filter_map(|family| {
            db.property_int_value_cf(family, "rocksdb.cur-size-all-mem-tables")
                .ok()
                .flatten()
        })
        .sum()
}

/// Flushes the log's and the state's memtables to tables: RocksDB then
/// deletes the write-ahead log files they held alive, and an open has
/// nothing of theirs to replay. (The snapshots' family is flushed as each
/// snapshot is written.)
pub(crate) fn flush_memtables(db: &DB) -> Result<()> {
    db.flush_cf(cf(db, CF_ENTRIES)?)?;
    db.flush_cf(cf(db, CF_STATE)?)?;
    Ok(())
}

/// Deletes the table files of the log that hold nothing but entries at or
/// before `through`, which must be a truncation already on disk (synced):
/// what frees the entries a compaction let go (it writes no tombstone for
/// them, see [`RocksStorage::snapshot_written`]). The log's keys only grow,
/// so RocksDB moves its tables down the levels whole; deleting them costs
/// no write but the manifest's. It leaves alone those still in level 0
/// (the newest), those being compacted and those that reach past
/// `through`: the next call takes them. Until then, their dead entries are
/// never read (reads start after the truncation).
///
/// A new truncation goes into a table first (`new_truncation`): a recovery
/// of a damaged write-ahead log that stopped short of it
/// (`--salvage-damaged-log`) would otherwise find a log with a hole where
/// the files were. Now RocksDB refuses that recovery instead, as for any
/// table written after the damage.
pub(crate) fn drop_compacted_files(db: &DB, through: u64, new_truncation: bool) -> Result<()> {
    if new_truncation {
        db.flush_cf(cf(db, CF_STATE)?)?;
    }
    db.delete_file_in_range_cf(cf(db, CF_ENTRIES)?, index_key(0), index_key(through))?;
    Ok(())
}

/// Compacts the snapshots' column family, which drops the tables of the
/// snapshots the current one replaced.
///
/// Each snapshot lands in a table of its own, along with the key of the
/// current one, so RocksDB merges them (and drops the replaced ones) only
/// once four pile up: with a large state, several snapshots' worth of disk.
/// This costs one more write of the current snapshot. (`compact_range`
/// reports no error: one that fails, for want of room say, frees nothing,
/// and RocksDB recovers from it by itself.)
pub(crate) fn compact_snapshots(db: &DB) -> Result<()> {
    db.compact_range_cf(cf(db, CF_SNAPSHOT)?, None::<&[u8]>, None::<&[u8]>);
    Ok(())
}

/// Writes `batch` with one fsync.
pub(crate) fn write_synced(db: &DB, batch: WriteBatch) -> Result<()> {
    let mut options = WriteOptions::default();
    options.set_sync(true);
    db.write_opt(batch, &options)?;
    Ok(())
}

/// A column family of `db`; all three are created with the database.
fn cf<'a>(db: &'a DB, name: &str) -> Result<&'a ColumnFamily> {
    db.cf_handle(name)
        .ok_or_else(|| Error::Corrupt(format!("column family {name} is missing")))
}

fn storage_error(err: Error) -> raft::Error {
    raft::Error::Store(StorageError::Other(Box::new(err)))
}

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn snapshot_data_key(index: u64) -> Vec<u8> {
    let mut key = SNAPSHOT_DATA_PREFIX.to_vec();
    key.extend_from_slice(&index.to_be_bytes());
    key
}

fn member_key(id: u64) -> Vec<u8> {
    let mut key = MEMBER_PREFIX.to_vec();
    key.extend_from_slice(&id.to_be_bytes());
    key
}

fn parse_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

fn parse_pair(bytes: &[u8]) -> Option<(u64, u64)> {
    if bytes.len() != 16 {
        return None;
    }
    Some((parse_u64(&bytes[..8])?, parse_u64(&bytes[8..])?))
}

fn identity_bytes(cluster_id: u64, node_id: u64) -> Vec<u8> {
    let mut bytes = FORMAT_VERSION.to_be_bytes().to_vec();
    bytes.extend_from_slice(&cluster_id.to_be_bytes());
    bytes.extend_from_slice(&node_id.to_be_bytes());
    bytes
}

fn parse_identity(bytes: &[u8]) -> Option<(u32, u64, u64)> {
    if bytes.len() != 20 {
        return None;
    }
    let format = u32::from_be_bytes(bytes[..4].try_into().ok()?);
    Some((format, parse_u64(&bytes[4..12])?, parse_u64(&bytes[12..])?))
}

#[cfg(test)]
#[path = "storage_test.rs"]
mod tests;
