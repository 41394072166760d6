//! Starting again from a damaged log, when the operator asks for it.
//!
//! A member refuses to open a log with a record whose checksum fails
//! (`storage::db_options`): what followed it would be lost without a word.
//! For a manager with no healthy copy anywhere, losing that tail is better
//! than losing everything, and [`salvage_damaged_log`] does it on request:
//! RocksDB's point-in-time recovery keeps every write before the first
//! damaged record and drops that record and all after it.
//!
//! Only a group of one member may be salvaged. A member of a larger group
//! that forgot entries it acknowledged, or the vote it gave, could help two
//! leaders win one term and lose what a quorum committed; it is removed
//! from its group and joins again with an empty dir instead.

use std::path::Path;

use protobuf::Message as _;
use raft::Storage as _;
use raft::eraftpb::ConfState;
use rocksdb::{DB, DBRecoveryMode};

use crate::error::{Error, Result};
use crate::storage::{self, CF_ENTRIES, CF_SNAPSHOT, CF_STATE, KEY_CONF_STATE, RocksStorage};

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

/// Opens the data dir of member `node_id` of cluster `cluster_id` and, if
/// its write-ahead log holds a damaged record, drops that record and every
/// later one. A healthy dir is left untouched.
///
/// # Errors
///
/// [`Error::DataDir`] when the dir is not this member's, holds a group of
/// more than one member, or is damaged beyond the log (its table files or
/// manifest), which RocksDB says.
pub fn salvage_damaged_log(dir: &Path, cluster_id: u64, node_id: u64) -> Result<Salvage> {
    if !storage::holds_data(dir)? {
        // Nothing to salvage (and nothing to make here): the start that
        // follows says what is missing.
        return Ok(Salvage::Intact);
    }
    let strict = storage::db_options_recovering(false, DBRecoveryMode::TolerateCorruptedTailRecords);
    match DB::open_cf_descriptors(&strict, dir, storage::column_families()) {
        Ok(db) => {
            drop(db);
            // Whatever else may be wrong, the usual open says it.
            RocksStorage::open(dir, cluster_id, node_id)?;
            return Ok(Salvage::Intact);
        }
        Err(err) if err.kind() == rocksdb::ErrorKind::Corruption => {}
        // Not a damaged log: the usual open says what it is.
        Err(_) => {
            RocksStorage::open(dir, cluster_id, node_id)?;
            return Ok(Salvage::Intact);
        }
    }
    let data_dir_error = |reason: String| Error::DataDir {
        dir: dir.to_path_buf(),
        reason,
    };
    let salvaging = storage::db_options_recovering(false, DBRecoveryMode::PointInTime);
    // Read-only first, which changes nothing: the group as it would remain.
    let members = {
        let db = DB::open_cf_for_read_only(&salvaging, dir, [CF_ENTRIES, CF_STATE, CF_SNAPSHOT], false)
            .map_err(|err| data_dir_error(format!("RocksDB cannot read it even up to the damage: {err}")))?;
        group_size(&db).map_err(data_dir_error)?
    };
    if members > 1 {
        return Err(data_dir_error(format!(
            "its log is damaged, and its group has {members} members: salvaging drops entries this member \
             acknowledged and the votes it gave, which only a group of one may survive; remove this member \
             from its group and join it again with an empty state dir"
        )));
    }
    drop(
        DB::open_cf_descriptors(&salvaging, dir, storage::column_families())
            .map_err(|err| data_dir_error(format!("RocksDB cannot salvage it: {err}")))?,
    );
    let (salvaged, _) = RocksStorage::open(dir, cluster_id, node_id)?;
    let commit = salvaged.initial_state()?.hard_state.commit;
    Ok(Salvage::Salvaged {
        last_index: salvaged.last(),
        commit,
    })
}

/// The voters and learners of the group a data dir records.
fn group_size(db: &DB) -> std::result::Result<usize, String> {
    let state = db
        .cf_handle(CF_STATE)
        .ok_or_else(|| "it has no state column family".to_string())?;
    let bytes = db
        .get_cf(state, KEY_CONF_STATE)
        .map_err(|err| format!("cannot read its membership: {err}"))?;
    let conf_state = match bytes {
        Some(bytes) => {
            ConfState::parse_from_bytes(&bytes).map_err(|err| format!("its membership does not decode: {err}"))?
        }
        None => ConfState::default(),
    };
    let mut ids: Vec<u64> = [
        &conf_state.voters,
        &conf_state.learners,
        &conf_state.voters_outgoing,
        &conf_state.learners_next,
    ]
    .into_iter()
    .flatten()
    .copied()
    .collect();
    ids.sort_unstable();
    ids.dedup();
    Ok(ids.len())
}
