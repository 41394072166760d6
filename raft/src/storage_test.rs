use raft::Storage as _;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use rocksdb::WriteBatch;

use super::*;

const CLUSTER: u64 = 0xc1;

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        data: format!("entry {index}").into_bytes().into(),
        ..Default::default()
    }
}

fn entries(range: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Entry> {
    range.map(|index| entry(index, term)).collect()
}

fn append(storage: &mut RocksStorage, new: &[Entry]) {
    let mut batch = WriteBatch::default();
    storage.append(&mut batch, new).unwrap();
    storage.write(batch).unwrap();
}

/// Spares `count` entries, whatever they weigh.
fn keep_entries(count: u64) -> Keep {
    Keep {
        entries: count,
        bytes: u64::MAX,
    }
}

fn read(storage: &RocksStorage, low: u64, high: u64) -> Vec<u64> {
    let context = raft::GetEntriesContext::empty(false);
    storage
        .entries(low, high, None, context)
        .unwrap()
        .iter()
        .map(|entry| entry.index)
        .collect()
}

/// The MANIFEST takes a small step of the disk ahead, not RocksDB's 4 MiB
/// (the bytes a file holds on disk, preallocated ones too: what the free
/// space loses).
#[test]
fn the_manifest_takes_little_disk_ahead() {
    use std::os::unix::fs::MetadataExt as _;
    let dir = tempfile::tempdir().unwrap();
    let (storage, _) = RocksStorage::open(dir.path(), CLUSTER, 1).unwrap();
    let manifests: Vec<u64> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("MANIFEST-"))
        .map(|entry| entry.metadata().unwrap().blocks() * 512)
        .collect();
    assert!(!manifests.is_empty());
    for on_disk in manifests {
        assert!(on_disk <= 1 << 20, "a MANIFEST takes {on_disk} bytes of disk");
    }
    drop(storage);
}

#[test]
fn a_reopened_log_holds_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, opened) = RocksStorage::open(dir.path(), CLUSTER, 1).unwrap();
    assert_eq!(opened, Opened::New);
    assert!(!storage.is_initialized());
    append(&mut storage, &entries(1..=5, 1));
    let mut batch = WriteBatch::default();
    let hard_state = HardState {
        term: 1,
        vote: 1,
        commit: 4,
        ..Default::default()
    };
    storage.set_hard_state(&mut batch, hard_state.clone()).unwrap();
    storage.set_applied(&mut batch, 3).unwrap();
    storage.put_member(&mut batch, 1, "127.0.0.1:1").unwrap();
    storage.write(batch).unwrap();
    drop(storage);

    let (storage, opened) = RocksStorage::open(dir.path(), CLUSTER, 1).unwrap();
    assert_eq!(opened, Opened::Existing);
    assert_eq!(read(&storage, 1, 6), vec![1, 2, 3, 4, 5]);
    assert_eq!(storage.last_index().unwrap(), 5);
    assert_eq!(storage.term(5).unwrap(), 1);
    assert_eq!(storage.initial_state().unwrap().hard_state, hard_state);
    assert_eq!(storage.applied(), 3);
    assert_eq!(storage.members().get(&1).map(String::as_str), Some("127.0.0.1:1"));
}

#[test]
fn a_flushed_log_leaves_nothing_to_replay_and_reopens_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = RocksStorage::open(dir.path(), CLUSTER, 1).unwrap();
    append(&mut storage, &entries(1..=50, 1));
    let in_memtables = |storage: &RocksStorage| {
        let db = storage.db();
        let entries = cf(&db, CF_ENTRIES).unwrap();
        db.property_int_value_cf(entries, "rocksdb.num-entries-active-mem-table")
            .unwrap()
            .unwrap()
    };
    assert_eq!(in_memtables(&storage), 50);
    storage.flush().unwrap();
    assert_eq!(in_memtables(&storage), 0, "everything is in tables");
    drop(storage);
    let (storage, _) = RocksStorage::open(dir.path(), CLUSTER, 1).unwrap();
    assert_eq!(read(&storage, 1, 51).len(), 50);
}

#[test]
fn reads_span_the_entries_held_in_memory_and_those_only_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = RocksStorage::open(dir.path(), CLUSTER, 1).unwrap();
    append(&mut storage, &entries(1..=5, 1));
    drop(storage);
    // Reopened: 1-5 only on disk; 6-8 in memory as well.
    let (mut storage, _) = RocksStorage::open(dir.path(), CLUSTER, 1).unwrap();
    append(&mut storage, &entries(6..=8, 2));
    let context = || raft::GetEntriesContext::empty(false);
    let all = storage.entries(1, 9, None, context()).unwrap();
    assert_eq!(all, [entries(1..=5, 1), entries(6..=8, 2)].concat());
    assert_eq!(storage.entries(6, 9, None, context()).unwrap(), entries(6..=8, 2));
    // A follower's conflicting tail replaced from 7 on, in memory too.
    append(&mut storage, &entries(7..=7, 3));
    assert_eq!(
        storage.entries(6, 8, None, context()).unwrap(),
        [entries(6..=6, 2), entries(7..=7, 3)].concat()
    );
}

#[test]
fn an_append_replaces_the_entries_from_its_first_index_on() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = RocksStorage::open(dir.path(), CLUSTER, 1).unwrap();
    append(&mut storage, &entries(1..=6, 1));
    append(&mut storage, &entries(4..=4, 2));
    assert_eq!(storage.last_index().unwrap(), 4);
    assert_eq!(storage.term(4).unwrap(), 2);
    assert_eq!(read(&storage, 1, 5), vec![1, 2, 3, 4]);
    drop(storage);
    let (storage, _) = RocksStorage::open(dir.path(), CLUSTER, 1).unwrap();
    assert_eq!(
        storage.last_index().unwrap(),
        4,
        "the replaced tail stays gone after a restart"
    );
}

#[test]
fn entries_respect_the_size_limit_but_return_at_least_one() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = RocksStorage::open(dir.path(), CLUSTER, 1).unwrap();
    append(&mut storage, &entries(1..=10, 1));
    let context = || raft::GetEntriesContext::empty(false);
    assert_eq!(storage.entries(1, 11, 1, context()).unwrap().len(), 1);
    let one_size = entry(1, 1).compute_size() as u64 + 2;
    assert_eq!(storage.entries(1, 11, one_size * 3, context()).unwrap().len(), 3);
    assert!(matches!(
        storage.entries(1, 12, None, context()),
        Err(raft::Error::Store(StorageError::Unavailable))
    ));
}

/// A log of entries 1 to 20 (term 3) in `dir`, with a snapshot at 15 that
/// kept what `keep` spares.
fn with_snapshot_at_15(dir: &std::path::Path, keep: Keep) -> RocksStorage {
    let (mut storage, _) = RocksStorage::open(dir, CLUSTER, 1).unwrap();
    append(&mut storage, &entries(1..=20, 3));
    let meta = SnapshotMetadata {
        index: 15,
        term: 3,
        ..Default::default()
    };
    write_snapshot_data(&storage.db(), 15, b"state at 15").unwrap();
    let mut batch = WriteBatch::default();
    storage.snapshot_written(&mut batch, meta, keep).unwrap();
    storage.write(batch).unwrap();
    storage
}

#[test]
fn a_snapshot_compacts_the_log_but_keeps_the_tail_it_was_asked_to() {
    let dir = tempfile::tempdir().unwrap();
    let storage = with_snapshot_at_15(dir.path(), keep_entries(5));
    drop(storage);

    let (storage, _) = RocksStorage::open(dir.path(), CLUSTER, 1).unwrap();
    assert_eq!(storage.first_index().unwrap(), 11);
    assert_eq!(storage.term(10).unwrap(), 3, "the term before the first entry is kept");
    assert!(matches!(
        storage.term(9),
        Err(raft::Error::Store(StorageError::Compacted))
    ));
    assert_eq!(read(&storage, 11, 21).len(), 10);
    let snapshot = storage.snapshot(0, 2).unwrap_err();
    assert!(
        matches!(
            snapshot,
            raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable)
        ),
        "a snapshot whose configuration leaves out the member is not offered to it"
    );
    assert!(storage.take_snapshot_request(), "a fresh snapshot is asked for instead");
    drop(storage);
    let (mut storage, _) = RocksStorage::open(dir.path(), CLUSTER, 1).unwrap();
    let mut batch = WriteBatch::default();
    let mut meta = SnapshotMetadata {
        index: 18,
        term: 3,
        ..Default::default()
    };
    meta.set_conf_state(ConfState {
        voters: vec![1, 2],
        ..Default::default()
    });
    write_snapshot_data(&storage.db(), 18, b"state at 18").unwrap();
    storage.snapshot_written(&mut batch, meta, keep_entries(5)).unwrap();
    storage.write(batch).unwrap();
    let snapshot = storage.snapshot(0, 2).unwrap();
    assert_eq!(snapshot.get_metadata().index, 18);
    assert_eq!(&snapshot.data[..], b"state at 18");
    assert!(
        storage.snapshot(19, 2).is_err(),
        "a snapshot older than asked for is not offered"
    );
    let db = storage.db();
    let old_data = db.get_cf(cf(&db, CF_SNAPSHOT).unwrap(), snapshot_data_key(15)).unwrap();
    assert_eq!(old_data, None, "the replaced snapshot's data is gone");
}

#[test]
fn the_data_of_a_snapshot_that_never_became_current_is_dropped_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = RocksStorage::open(dir.path(), CLUSTER, 1).unwrap();
    append(&mut storage, &entries(1..=20, 3));
    write_snapshot_data(&storage.db(), 10, b"state at 10").unwrap();
    let mut batch = WriteBatch::default();
    let meta = SnapshotMetadata {
        index: 10,
        term: 3,
        ..Default::default()
    };
    storage.snapshot_written(&mut batch, meta, keep_entries(5)).unwrap();
    storage.write(batch).unwrap();
    // Written, then abandoned: the stop did not wait for it.
    write_snapshot_data(&storage.db(), 20, b"state at 20").unwrap();
    drop(storage);

    let (storage, _) = RocksStorage::open(dir.path(), CLUSTER, 1).unwrap();
    let db = storage.db();
    let data = |index| {
        db.get_cf(cf(&db, CF_SNAPSHOT).unwrap(), snapshot_data_key(index))
            .unwrap()
    };
    assert_eq!(data(20), None, "the abandoned data is gone");
    assert_eq!(data(10).as_deref(), Some(&b"state at 10"[..]), "the current one stays");
    assert_eq!(storage.snapshot_data().unwrap().as_deref(), Some(&b"state at 10"[..]));
}

#[test]
fn a_snapshot_written_behind_the_current_one_changes_nothing_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = RocksStorage::open(dir.path(), CLUSTER, 1).unwrap();
    append(&mut storage, &entries(1..=20, 3));
    let made_current = |storage: &mut RocksStorage, index: u64, data: &[u8]| {
        write_snapshot_data(&storage.db(), index, data).unwrap();
        let meta = SnapshotMetadata {
            index,
            term: 3,
            ..Default::default()
        };
        let mut batch = WriteBatch::default();
        let current = storage.snapshot_written(&mut batch, meta, keep_entries(5)).unwrap();
        storage.write(batch).unwrap();
        current
    };
    assert!(made_current(&mut storage, 15, b"state at 15"));
    // One at the same index (as one installed from the leader while this
    // member wrote its own would be), and an older one.
    assert!(!made_current(&mut storage, 15, b"state at 15"));
    assert!(!made_current(&mut storage, 12, b"state at 12"));
    assert_eq!(storage.snapshot_meta().index, 15);
    assert_eq!(storage.truncated_index(), 10, "the older one compacted nothing");
    drop(storage);
    let (storage, _) = RocksStorage::open(dir.path(), CLUSTER, 1).unwrap();
    assert_eq!(storage.snapshot_data().unwrap().as_deref(), Some(&b"state at 15"[..]));
    let db = storage.db();
    let older = db.get_cf(cf(&db, CF_SNAPSHOT).unwrap(), snapshot_data_key(12)).unwrap();
    assert_eq!(older, None, "the older one's data is dropped");
}

#[test]
fn an_installed_snapshot_replaces_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = RocksStorage::open(dir.path(), CLUSTER, 2).unwrap();
    append(&mut storage, &entries(1..=5, 1));
    let conf_state = ConfState {
        voters: vec![1, 2, 3],
        ..Default::default()
    };
    let mut meta = SnapshotMetadata {
        index: 100,
        term: 4,
        ..Default::default()
    };
    meta.set_conf_state(conf_state.clone());
    let mut snapshot = Snapshot {
        data: b"leader state".to_vec().into(),
        ..Default::default()
    };
    snapshot.set_metadata(meta);
    let members = [(1, "a:1".to_string()), (2, "b:2".to_string()), (3, "c:3".to_string())].into();
    let mut batch = WriteBatch::default();
    storage.install_snapshot(&mut batch, &snapshot, members).unwrap();
    storage.write(batch).unwrap();
    drop(storage);

    let (storage, _) = RocksStorage::open(dir.path(), CLUSTER, 2).unwrap();
    assert_eq!(storage.first_index().unwrap(), 101);
    assert_eq!(storage.last_index().unwrap(), 100);
    assert_eq!(storage.term(100).unwrap(), 4);
    let state = storage.initial_state().unwrap();
    assert_eq!(state.hard_state.commit, 100);
    assert_eq!(state.conf_state, conf_state);
    assert_eq!(storage.members().len(), 3);
    assert_eq!(storage.snapshot_data().unwrap().as_deref(), Some(&b"leader state"[..]));
}

#[test]
fn a_restart_commits_at_least_what_was_applied() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = RocksStorage::open(dir.path(), CLUSTER, 1).unwrap();
    append(&mut storage, &entries(1..=5, 1));
    let mut batch = WriteBatch::default();
    storage.set_applied(&mut batch, 4).unwrap();
    storage.write(batch).unwrap();
    assert_eq!(storage.initial_state().unwrap().hard_state.commit, 4);
}

/// Entries kept behind the current snapshot go when asked to keep fewer
/// (short of room, with no newer snapshot to take), durably; the entries
/// after the snapshot stay whatever is asked.
#[test]
fn the_entries_kept_behind_a_snapshot_go_when_fewer_are_to_be_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut storage = with_snapshot_at_15(dir.path(), keep_entries(10));
    assert_eq!(storage.first_index().unwrap(), 6);

    let mut batch = WriteBatch::default();
    assert!(storage.compact_behind_snapshot(&mut batch, keep_entries(2)).unwrap());
    storage.write(batch).unwrap();
    assert_eq!(storage.first_index().unwrap(), 14);
    let mut batch = WriteBatch::default();
    assert!(
        !storage.compact_behind_snapshot(&mut batch, keep_entries(2)).unwrap(),
        "done once"
    );
    assert!(storage.compact_behind_snapshot(&mut batch, keep_entries(0)).unwrap());
    storage.write(batch).unwrap();
    drop(storage);
    let (storage, _) = RocksStorage::open(dir.path(), CLUSTER, 1).unwrap();
    assert_eq!(storage.first_index().unwrap(), 16, "durably, up to the snapshot");
    assert_eq!(read(&storage, 16, 21), vec![16, 17, 18, 19, 20]);
}

/// What RocksDB holds in memory is measured, and gone once flushed.
#[test]
fn the_bytes_not_yet_flushed_are_measured() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = RocksStorage::open(dir.path(), CLUSTER, 1).unwrap();
    storage.flush().unwrap();
    let empty = unflushed_bytes(&storage.db());
    append(&mut storage, &entries(1..=1_000, 1));
    let held = unflushed_bytes(&storage.db());
    assert!(held > empty + 10_000, "{held} after 1,000 entries, {empty} before");
    storage.flush().unwrap();
    assert!(unflushed_bytes(&storage.db()) < held, "flushed");
}

/// A hard state whose commit index is past the log (damage RocksDB's
/// checksums did not catch) is refused at open, naming it, rather than
/// left for raft-rs to panic on.
#[test]
fn a_commit_index_past_the_log_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = RocksStorage::open(dir.path(), CLUSTER, 1).unwrap();
    append(&mut storage, &entries(1..=3, 1));
    let mut batch = WriteBatch::default();
    let hard_state = HardState {
        term: 1,
        commit: 7,
        ..Default::default()
    };
    storage.set_hard_state(&mut batch, hard_state).unwrap();
    storage.write(batch).unwrap();
    drop(storage);
    let err = RocksStorage::open(dir.path(), CLUSTER, 1).err().unwrap();
    assert!(matches!(err, Error::Corrupt(_)), "{err}");
    assert!(
        err.to_string().contains("commit index 7 is past the last entry 3"),
        "{err}"
    );
}

#[test]
fn a_data_dir_of_another_cluster_or_member_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = RocksStorage::open(dir.path(), CLUSTER, 1).unwrap();
    append(&mut storage, &entries(1..=3, 1));
    drop(storage);
    let other_cluster = RocksStorage::open(dir.path(), CLUSTER + 1, 1).err().unwrap();
    assert!(
        other_cluster.to_string().contains("belongs to cluster"),
        "{other_cluster}"
    );
    let other_member = RocksStorage::open(dir.path(), CLUSTER, 2).err().unwrap();
    assert!(
        other_member.to_string().contains("belongs to member 1"),
        "{other_member}"
    );
    let (storage, _) = RocksStorage::open(dir.path(), CLUSTER, 1).unwrap();
    assert_eq!(storage.last_index().unwrap(), 3, "nothing was lost by the refusals");
}

#[test]
fn a_data_dir_whose_creation_was_cut_short_is_made_again() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("raft");
    // What a crash while the first start made it leaves: the sibling, half
    // made; the dir itself does not exist yet.
    let building = root.path().join("raft.new");
    std::fs::create_dir_all(&building).unwrap();
    std::fs::write(building.join("CURRENT"), "MANIFEST-000001\n").unwrap();
    let (storage, opened) = RocksStorage::open(&dir, CLUSTER, 1).unwrap();
    assert_eq!(opened, Opened::New);
    assert!(!building.exists(), "the half-made sibling is gone");
    drop(storage);
    let (_, opened) = RocksStorage::open(&dir, CLUSTER, 1).unwrap();
    assert_eq!(opened, Opened::Existing, "and the dir made in its place opens");
}

#[test]
fn a_directory_that_is_not_a_raft_data_dir_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    let err = RocksStorage::open(dir.path(), CLUSTER, 1).err().unwrap();
    assert!(matches!(err, Error::DataDir { .. }), "{err}");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("notes.txt")]);
}

#[test]
fn a_corrupt_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = RocksStorage::open(dir.path(), CLUSTER, 1).unwrap();
    append(&mut storage, &entries(1..=3, 1));
    drop(storage);
    std::fs::write(dir.path().join("CURRENT"), "MANIFEST-999999\n").unwrap();
    let err = RocksStorage::open(dir.path(), CLUSTER, 1).err().unwrap();
    assert!(matches!(err, Error::DataDir { .. }), "{err}");
}

/// A table whose blocks fail their checksums is refused at open as damage,
/// with what to do, and without offering a salvage (which mends only the
/// write-ahead log).
#[test]
fn a_damaged_table_is_refused_as_damage_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = RocksStorage::open(dir.path(), CLUSTER, 1).unwrap();
    append(&mut storage, &entries(1..=2_000, 1));
    storage.flush().unwrap();
    drop(storage);
    let table = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sst"))
        .max_by_key(|path| std::fs::metadata(path).unwrap().len())
        .expect("a table");
    let mut bytes = std::fs::read(&table).unwrap();
    for byte in &mut bytes[100..200] {
        *byte = !*byte;
    }
    std::fs::write(&table, bytes).unwrap();
    let err = RocksStorage::open(dir.path(), CLUSTER, 1).err().expect("refused");
    let said = err.to_string();
    assert!(matches!(err, Error::DataDir { .. }), "{said}");
    assert!(said.contains("Corruption"), "{said}");
    assert!(
        said.contains("its files are damaged, and were left as they are"),
        "{said}"
    );
    assert!(!said.contains("--salvage-damaged-log"), "{said}");
}

/// RocksDB's write-ahead log files in `dir`.
fn write_ahead_logs(dir: &std::path::Path) -> impl Iterator<Item = std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
}

/// Member 1's group becomes `voters`.
fn set_voters(storage: &mut RocksStorage, voters: Vec<u64>) {
    let mut batch = WriteBatch::default();
    let conf_state = ConfState {
        voters,
        ..Default::default()
    };
    storage.set_conf_state(&mut batch, conf_state).unwrap();
    storage.write(batch).unwrap();
}

/// Entries 1 to 21 of a group of `voters`, each in a write of its own, in
/// the write-ahead log, the group then `voters_after`; then one byte of
/// entry 12's record changed.
fn damaged_log(voters: Vec<u64>, voters_after: Vec<u64>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = RocksStorage::open(dir.path(), CLUSTER, 1).unwrap();
    set_voters(&mut storage, voters);
    for index in 1..=20 {
        append(&mut storage, &entries(index..=index, 1));
    }
    // RocksDB drops the rest of a damaged record's 32 KiB block even when
    // told to skip it: the later change of the group in a block of its own.
    let filler = Entry {
        index: 21,
        term: 1,
        data: vec![b'f'; 100 * 1024].into(),
        ..Default::default()
    };
    append(&mut storage, &[filler]);
    set_voters(&mut storage, voters_after);
    drop(storage);
    let log = write_ahead_logs(dir.path())
        .max_by_key(|path| std::fs::metadata(path).unwrap().len())
        .expect("a write-ahead log");
    let mut bytes = std::fs::read(&log).unwrap();
    let at = bytes
        .windows(b"entry 12".len())
        .position(|window| window == b"entry 12")
        .expect("entry 12 is in the log");
    bytes[at] ^= 0x20;
    std::fs::write(&log, &bytes).unwrap();
    dir
}

#[test]
fn salvaging_a_damaged_log_keeps_what_came_before_the_damage() {
    let dir = damaged_log(vec![1], vec![1]);
    let refused = RocksStorage::open(dir.path(), CLUSTER, 1)
        .err()
        .expect("a damaged log is refused");
    assert!(refused.to_string().contains("Corruption"), "{refused}");
    let salvaged = crate::salvage_damaged_log(dir.path(), CLUSTER, 1).expect("salvaged");
    assert_eq!(
        salvaged,
        crate::Salvage::Salvaged {
            last_index: 11,
            commit: 0
        }
    );
    let (storage, _) = RocksStorage::open(dir.path(), CLUSTER, 1).expect("opens as usual now");
    assert_eq!(read(&storage, 1, 12), (1..=11).collect::<Vec<_>>());
    drop(storage);
    assert_eq!(
        crate::salvage_damaged_log(dir.path(), CLUSTER, 1).expect("intact"),
        crate::Salvage::Intact,
        "a healthy log is left as it is"
    );
}

#[test]
fn salvaging_makes_no_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("raft");
    assert_eq!(
        crate::salvage_damaged_log(&missing, CLUSTER, 1).expect("nothing to do"),
        crate::Salvage::Intact
    );
    assert!(!missing.exists(), "salvaging made a data dir");
}

#[test]
fn a_damaged_log_of_a_larger_or_another_group_is_not_salvaged() {
    // A group of three; one that grew past the damage; another member's
    // and another cluster's dir.
    for (voters, voters_after, cluster, member, says) in [
        (vec![1, 2, 3], vec![1, 2, 3], CLUSTER, 1, "records the group [1, 2, 3]"),
        (
            vec![1],
            vec![1, 2],
            CLUSTER,
            1,
            "the log past the damage records the group [1, 2]",
        ),
        (vec![1], vec![1], CLUSTER, 2, "belongs to member 1"),
        (vec![1], vec![1], 0xc2, 1, "belongs to cluster 00000000000000c1"),
    ] {
        let dir = damaged_log(voters, voters_after);
        let logs = || {
            write_ahead_logs(dir.path())
                .map(|path| std::fs::read(path).unwrap())
                .collect::<Vec<_>>()
        };
        let before = logs();
        let refused = crate::salvage_damaged_log(dir.path(), cluster, member).expect_err(says);
        assert!(refused.to_string().contains(says), "{refused}");
        assert_eq!(logs(), before, "the log was left as found ({says})");
        assert!(
            RocksStorage::open(dir.path(), CLUSTER, 1).is_err(),
            "and is still refused"
        );
    }
}

/// An entry of `index` whose data weighs `bytes`.
fn bulky_entry(index: u64, bytes: usize) -> Entry {
    Entry {
        index,
        term: 1,
        data: vec![index as u8; bytes].into(),
        ..Default::default()
    }
}

#[test]
fn a_snapshot_spares_no_more_entries_than_weigh_the_bytes_it_was_given() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = RocksStorage::open(dir.path(), CLUSTER, 1).unwrap();
    append(
        &mut storage,
        &(1..=20).map(|index| bulky_entry(index, 1000)).collect::<Vec<_>>(),
    );
    let one = bulky_entry(20, 1000).write_to_bytes().unwrap().len() as u64;
    let keep = Keep {
        entries: 10,
        bytes: 3 * one + one / 2,
    };
    let snapshot_at = |storage: &mut RocksStorage, index| {
        write_snapshot_data(&storage.db(), index, b"state").unwrap();
        let mut batch = WriteBatch::default();
        let meta = SnapshotMetadata {
            index,
            term: 1,
            ..Default::default()
        };
        storage.snapshot_written(&mut batch, meta, keep).unwrap();
        storage.write(batch).unwrap();
    };
    snapshot_at(&mut storage, 15);
    assert_eq!(
        storage.first_index().unwrap(),
        13,
        "3 entries spared, the bytes allowing no more"
    );
    drop(storage);

    // Sizes known again after a reopen, from the entries on disk.
    let (mut storage, _) = RocksStorage::open(dir.path(), CLUSTER, 1).unwrap();
    snapshot_at(&mut storage, 18);
    assert_eq!(storage.first_index().unwrap(), 16);
    let keep = Keep { entries: 1, ..keep };
    write_snapshot_data(&storage.db(), 20, b"state").unwrap();
    let mut batch = WriteBatch::default();
    let meta = SnapshotMetadata {
        index: 20,
        term: 1,
        ..Default::default()
    };
    storage.snapshot_written(&mut batch, meta, keep).unwrap();
    storage.write(batch).unwrap();
    assert_eq!(storage.first_index().unwrap(), 20, "the entry count bounds it too");
}

#[test]
fn the_table_files_of_a_compacted_log_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = RocksStorage::open(dir.path(), CLUSTER, 1).unwrap();
    let db = storage.db();
    let entries_cf = || cf(&db, CF_ENTRIES).unwrap();
    // Ten tables, as the write-ahead log's cap flushes them.
    for chunk in 0..10 {
        let new: Vec<Entry> = (chunk * 100 + 1..=chunk * 100 + 100)
            .map(|index| bulky_entry(index, 10_000))
            .collect();
        append(&mut storage, &new);
        db.flush_cf(entries_cf()).unwrap();
    }
    let table_bytes = || {
        db.property_int_value_cf(entries_cf(), "rocksdb.live-sst-files-size")
            .unwrap()
            .unwrap()
    };
    // RocksDB moves full level-0 tables down in the background; it skips
    // those it is compacting. (What stays in level 0, up to three tables,
    // is the newest: past what is dropped below.)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let busy = |name| db.property_int_value_cf(entries_cf(), name).unwrap() != Some(0);
    while busy("rocksdb.num-running-compactions") || busy("rocksdb.compaction-pending") {
        assert!(std::time::Instant::now() < deadline, "RocksDB still compacting");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let before = table_bytes();

    write_snapshot_data(&db, 900, b"state").unwrap();
    let mut batch = WriteBatch::default();
    let meta = SnapshotMetadata {
        index: 900,
        term: 1,
        ..Default::default()
    };
    storage.snapshot_written(&mut batch, meta, keep_entries(50)).unwrap();
    storage.write(batch).unwrap();
    assert_eq!(storage.truncated_index(), 850);
    drop_compacted_files(&db, 850, true).unwrap();
    let after = table_bytes();
    assert!(after < before / 2, "{before} bytes of tables before, {after} after");
    assert_eq!(read(&storage, 851, 1001).len(), 150);
    drop(storage);
    drop(db);

    let (storage, _) = RocksStorage::open(dir.path(), CLUSTER, 1).unwrap();
    assert_eq!(storage.first_index().unwrap(), 851);
    assert_eq!(read(&storage, 851, 1001).len(), 150);
}

#[test]
fn the_tables_of_replaced_snapshots_are_compacted_away() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = RocksStorage::open(dir.path(), CLUSTER, 1).unwrap();
    append(&mut storage, &entries(1..=4, 1));
    let db = storage.db();
    let snapshots_cf = || cf(&db, CF_SNAPSHOT).unwrap();
    let table_bytes = || {
        db.property_int_value_cf(snapshots_cf(), "rocksdb.live-sst-files-size")
            .unwrap()
            .unwrap()
    };
    // Snapshots that RocksDB cannot compress, each flushed to its table.
    let mut noise = 0x2545_f491_4f6c_dd1d_u64;
    let bytes = 200_000;
    for index in 1..=3 {
        let data: Vec<u8> = (0..bytes)
            .map(|_| {
                noise ^= noise << 13;
                noise ^= noise >> 7;
                noise ^= noise << 17;
                noise as u8
            })
            .collect();
        write_snapshot_data(&db, index, &data).unwrap();
        let mut batch = WriteBatch::default();
        let meta = SnapshotMetadata {
            index,
            term: 1,
            ..Default::default()
        };
        storage.snapshot_written(&mut batch, meta, keep_entries(10)).unwrap();
        storage.write(batch).unwrap();
        db.flush_cf(snapshots_cf()).unwrap();
    }
    let before = table_bytes();
    assert!(before > 2 * bytes, "{before} bytes of tables for three snapshots");

    compact_snapshots(&db).unwrap();
    let after = table_bytes();
    assert!(
        after < bytes + bytes / 10,
        "{after} bytes of tables after, {before} before"
    );
    assert_eq!(
        storage.snapshot_data().unwrap().map(|data| data.len()),
        Some(bytes as usize)
    );
}

/// A data dir another process has open (RocksDB's lock; within one
/// process, the same) is refused saying so, and left as it is.
#[test]
fn a_data_dir_open_elsewhere_is_refused_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    let (_open, _) = RocksStorage::open(dir.path(), CLUSTER, 1).unwrap();
    let Err(err) = RocksStorage::open(dir.path(), CLUSTER, 1) else {
        panic!("opened twice");
    };
    assert!(err.to_string().contains("another process has it open"), "{err}");
}
