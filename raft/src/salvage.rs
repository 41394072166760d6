//! Starting again from a damaged log, when the operator asks for it.
//!
//! A member refuses to open a log with a record whose checksum fails
//! (`storage::db_options`): what followed it would be lost without a word.
//! For a manager with no healthy copy anywhere, losing that tail is better
//! than losing everything, and [`salvage_damaged_log`] does it on request:
//! RocksDB's point-in-time recovery keeps every write before the first
//! damaged record and drops that record and all after it.
//!
//! Only a group of this one member may be salvaged. A member of a larger
//! group that forgot entries it acknowledged, or the vote it gave, could
//! help two leaders win one term and lose what a quorum committed; it is
//! removed from its group and joins again with an empty dir instead. So
//! before anything is changed, read-only looks at the dir check that it is
//! this member's, that what would remain holds together, and that neither
//! what would remain nor what lies past the damage names another member.

use std::path::Path;

use raft::Storage as _;
use raft::eraftpb::EntryType;
use rocksdb::{DB, DBRecoveryMode};

use crate::error::{Error, Result};
use crate::storage::{self, ReadOnlyError, RocksStorage};

/// What [`salvage_damaged_log`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Salvage {
    /// Nothing was dropped: the log opened as it was (or there is none,
    /// which the start that follows reports).
    Intact,
    /// A damaged record was found; the log now ends before it.
    Salvaged {
        /// The last entry kept.
        last_index: u64,
        /// The last entry kept that was known committed.
        commit: u64,
    },
}

/// Looks at the data dir of member `node_id` of cluster `cluster_id` and,
/// if its write-ahead log holds a damaged record, drops that record and
/// every later one. A dir whose log is not damaged is left untouched (the
/// usual open then says whatever else is wrong with it), and so is one
/// refused.
///
/// # Errors
///
/// [`Error::DataDir`] when a damaged dir is not this member's, records a
/// group of more than this member, or is damaged beyond what a salvage can
/// mend (its table files, its manifest), which RocksDB says.
pub fn salvage_damaged_log(dir: &Path, cluster_id: u64, node_id: u64) -> Result<Salvage> {
    if !storage::holds_data(dir)? {
        // Nothing to salvage (and nothing to make here): the start that
        // follows says what is missing.
        return Ok(Salvage::Intact);
    }
    let data_dir_error = |reason: String| Error::DataDir {
        dir: dir.to_path_buf(),
        reason,
    };
    match RocksStorage::open_read_only(
        dir,
        cluster_id,
        node_id,
        DBRecoveryMode::TolerateCorruptedTailRecords,
        false,
    ) {
        Err(ReadOnlyError::RocksDb(err)) if err.kind() == rocksdb::ErrorKind::Corruption => {}
        // Not damaged, or not in a way a salvage mends: the start that
        // follows opens it as usual, and says what is wrong, if anything.
        _ => return Ok(Salvage::Intact),
    }
    let kept = match RocksStorage::open_read_only(dir, cluster_id, node_id, DBRecoveryMode::PointInTime, false) {
        Ok(kept) => kept,
        Err(ReadOnlyError::Storage(err)) => return Err(err),
        Err(ReadOnlyError::RocksDb(err)) if err.to_string().contains("ahead of WAL") => {
            return Err(data_dir_error(format!(
                "its log is damaged, and a table file already holds writes made after the damage: no \
                 consistent state before it exists to start from; restore a backup ({err})"
            )));
        }
        Err(ReadOnlyError::RocksDb(err)) => {
            return Err(data_dir_error(format!(
                "RocksDB cannot read it even up to the damage: {err}"
            )));
        }
    };
    alone(&kept, node_id, "what would remain").map_err(data_dir_error)?;
    drop(kept);
    // Past the damage too, as far as RocksDB can read (it drops the rest of
    // a damaged record's 32 KiB block, and what a group change wrote there
    // with it): a member added after the damage is no less a member. Its
    // membership only: the log there misses the damaged entry.
    // Unable to look, it cannot tell: a group it does not know of could
    // go on without it, and two groups would then hold one cluster.
    let beyond = RocksStorage::open_read_only(dir, cluster_id, node_id, DBRecoveryMode::SkipAnyCorruptedRecord, true)
        .map_err(|err| {
        data_dir_error(format!(
            "RocksDB cannot read the log past the damage, to check that no member was added there ({}); \
                 restore a backup",
            match err {
                ReadOnlyError::RocksDb(err) => err.to_string(),
                ReadOnlyError::Storage(err) => err.to_string(),
            }
        ))
    })?;
    alone(&beyond, node_id, "the log past the damage").map_err(data_dir_error)?;
    drop(
        DB::open_cf_descriptors(
            &storage::db_options_recovering(false, DBRecoveryMode::PointInTime),
            dir,
            storage::column_families(),
        )
        .map_err(|err| data_dir_error(format!("RocksDB cannot salvage it: {err}")))?,
    );
    let (salvaged, _) = RocksStorage::open(dir, cluster_id, node_id)?;
    let commit = salvaged.initial_state()?.hard_state.commit;
    Ok(Salvage::Salvaged {
        last_index: salvaged.last(),
        commit,
    })
}

/// Checks that `storage` records a group of member `node_id` alone: its
/// membership, the member addresses it keeps, and no membership change in
/// its log still to apply. Says which member or change it found (in
/// `view`) otherwise.
fn alone(storage: &RocksStorage, node_id: u64, view: &str) -> std::result::Result<(), String> {
    let refusal = |found: String| {
        format!(
            "its log is damaged, and {view} {found}: salvaging drops entries this member acknowledged and \
             the votes it gave, which only a group of one may survive; remove this member from its group \
             and join it again with an empty state dir"
        )
    };
    let conf_state = storage.conf_state();
    let mut ids: Vec<u64> = [
        &conf_state.voters,
        &conf_state.learners,
        &conf_state.voters_outgoing,
        &conf_state.learners_next,
    ]
    .into_iter()
    .flatten()
    .chain(storage.members().keys())
    .copied()
    .collect();
    ids.sort_unstable();
    ids.dedup();
    if ids != [node_id] {
        return Err(refusal(format!("records the group {ids:?}")));
    }
    let unapplied = storage.applied() + 1..storage.last() + 1;
    if !unapplied.is_empty() {
        let context = raft::GetEntriesContext::empty(false);
        let entries = storage
            .entries(unapplied.start, unapplied.end, None, context)
            .map_err(|err| format!("cannot read its log: {err}"))?;
        let change = |entry: &&raft::eraftpb::Entry| {
            matches!(
                entry.get_entry_type(),
                EntryType::EntryConfChange | EntryType::EntryConfChangeV2
            )
        };
        if let Some(entry) = entries.iter().find(change) {
            return Err(refusal(format!("holds a membership change (entry {})", entry.index)));
        }
    }
    Ok(())
}
