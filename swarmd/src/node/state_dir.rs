//! The state dir: who this node is (its identity file) and where its Raft
//! data lives. A dir that holds something else is refused, never rewritten.
//!
//! A new node's identity is first written as `identity.pending`, and only
//! becomes `identity` once its Raft data exists ([`StateDir::confirm`]). So
//! an identity without Raft data means that data was removed, and the dir
//! is refused: starting a new cluster under the old identity would have a
//! manager forget its log and its votes. A pending identity is a first
//! start cut short, taken up again.

use std::io::Write as _;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

const IDENTITY: &str = "identity";
const PENDING_IDENTITY: &str = "identity.pending";
const RAFT: &str = "raft";
const LOCK: &str = "lock";
const FORMAT: &str = "swarmd-identity 1";

/// Who this node is, decided on its first start and kept in the state dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The cluster it belongs to (also the Raft cluster id).
    pub cluster_id: u64,
    /// Its Raft member id.
    pub raft_id: u64,
    /// Its node object's id (25 characters of base36).
    pub node_id: String,
}

/// An opened state dir.
#[derive(Debug)]
pub struct StateDir {
    path: PathBuf,
    /// Who this node is.
    pub identity: Identity,
    /// Whether this is the node's first start (a new cluster): its
    /// identity is still `identity.pending`.
    pub created: bool,
    /// Whether the last run on this dir ended without a clean stop (killed,
    /// crashed, its machine lost power): its lock file still says it runs.
    pub unclean_stop: bool,
    /// Held while the node runs: a second daemon on this dir is told so
    /// before it opens anything in it. It says whether its holder runs.
    lock: std::fs::File,
}

/// What the lock file says while a daemon runs, and after a clean stop.
const RUNNING: &[u8] = b"running\n";
const STOPPED: &[u8] = b"stopped\n";

impl StateDir {
    /// Opens `path`, creating it (mode 0700) and a new (pending) identity
    /// when it is absent or empty.
    ///
    /// # Errors
    ///
    /// [`Error::StateDir`] when it cannot be created or read, holds Raft data
    /// but no identity or the other way round, or an identity that does not
    /// parse.
    pub fn open(path: &Path) -> Result<StateDir> {
        let fail = |reason: String| Error::StateDir {
            dir: path.to_path_buf(),
            reason,
        };
        if std::fs::metadata(path).is_ok_and(|metadata| !metadata.is_dir()) {
            return Err(fail("is not a directory".into()));
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(|err| fail(format!("cannot create it: {err}")))?;
        // Before anything is made inside: a dir someone else owns, or may
        // write to, is not one to keep the cluster's secrets in.
        check_private(path).map_err(fail)?;
        let mut lock = super::exclusive_lock(&path.join(LOCK))
            .map_err(|err| fail(format!("cannot lock it: {err}")))?
            .ok_or_else(|| fail("another swarmd is using it".into()))?;
        let unclean_stop = say_running(&mut lock).map_err(|err| fail(format!("cannot write its lock file: {err}")))?;

        let has_raft = path.join(RAFT).exists();
        let opened = |identity, created| StateDir {
            path: path.to_path_buf(),
            identity,
            created,
            unclean_stop,
            lock,
        };
        if let Some(identity) = read_identity(&path.join(IDENTITY)).map_err(fail)? {
            if !has_raft {
                return Err(fail(format!(
                    "holds this node's identity but no Raft data ({RAFT}/): it was removed (or an older \
                     swarmd's first start failed before making it), and a new cluster under the old identity \
                     would forget its log and votes; refusing to start (remove the state dir to start afresh \
                     as a new node)"
                )));
            }
            return Ok(opened(identity, false));
        }
        if let Some(identity) = read_identity(&path.join(PENDING_IDENTITY)).map_err(fail)? {
            // A first start cut short; Raft data, if it got that far, was
            // made with this identity (its ids are checked when it opens).
            return Ok(opened(identity, true));
        }
        if has_raft {
            return Err(fail(
                "holds Raft data but no identity file; refusing to touch it".into(),
            ));
        }
        let identity = Identity {
            cluster_id: nonzero_random(),
            raft_id: nonzero_random(),
            node_id: swarm_store::id::generate(),
        };
        write_atomically(&path.join(PENDING_IDENTITY), &format(&identity)).map_err(|err| fail(err.to_string()))?;
        // The dir may be new too: its own entry must be as durable, or a
        // power cut could lose it with all written inside.
        sync_dir(parent(path)).map_err(|err| fail(format!("cannot sync its parent: {err}")))?;
        Ok(opened(identity, true))
    }

    /// Makes a pending identity the dir's own, once its Raft data exists.
    ///
    /// # Errors
    ///
    /// [`Error::StateDir`] when the rename or its sync fails.
    pub fn confirm(&self) -> Result<()> {
        if !self.created {
            return Ok(());
        }
        std::fs::rename(self.path.join(PENDING_IDENTITY), self.path.join(IDENTITY))
            .and_then(|()| sync_dir(&self.path))
            .map_err(|err| Error::StateDir {
                dir: self.path.clone(),
                reason: format!("cannot confirm its identity: {err}"),
            })?;
        Ok(())
    }

    /// Where RocksDB keeps the Raft log and snapshots.
    pub fn raft_dir(&self) -> PathBuf {
        self.path.join(RAFT)
    }
}

/// A run that returns, whether it served or failed to start, stopped
/// cleanly: the lock file says so for the next start. One that dies (kill
/// -9, a crash, a second signal's immediate exit) never gets here, and one
/// unwinding from a panic does not say so.
impl Drop for StateDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        if let Err(err) = rewrite(&self.lock, STOPPED) {
            tracing::warn!(%err, "cannot note the clean stop in the state dir's lock file");
        }
    }
}

/// Marks the lock file of a starting daemon; returns whether it said the
/// last run was still running (an empty file, as an older swarmd left it,
/// says nothing).
fn say_running(lock: &mut std::fs::File) -> std::io::Result<bool> {
    let mut said = Vec::new();
    std::io::Read::read_to_end(lock, &mut said)?;
    rewrite(lock, RUNNING)?;
    Ok(said == RUNNING)
}

/// Replaces the lock file's content. Not synced: after a power cut the note
/// may be older, never wrong in a way that loses data.
fn rewrite(mut lock: &std::fs::File, content: &[u8]) -> std::io::Result<()> {
    use std::io::Seek as _;
    lock.set_len(0)?;
    lock.seek(std::io::SeekFrom::Start(0))?;
    lock.write_all(content)
}

/// Refuses `dir` unless this user owns it and no one else may enter it:
/// it holds the Raft log, and with it the cluster's secrets. (Refused, not
/// changed: through a symlink someone planted, a chmod could lock up any
/// directory of this user's, `/etc` for root.)
fn check_private(dir: &Path) -> std::result::Result<(), String> {
    use std::os::unix::fs::MetadataExt as _;
    let metadata = std::fs::metadata(dir).map_err(|err| format!("cannot read it: {err}"))?;
    // SAFETY: `geteuid` only returns the process's effective user id.
    let user = unsafe { libc::geteuid() };
    if metadata.uid() != user {
        return Err(format!(
            "is owned by user {}, not by this one ({user}); refusing it",
            metadata.uid()
        ));
    }
    let mode = metadata.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "is open to other users (mode {mode:o}) and would hold the cluster's secrets; make it private: \
             chmod 700 {}",
            dir.display()
        ));
    }
    Ok(())
}

/// The identity in the file at `path`, or none if there is no such file.
fn read_identity(path: &Path) -> std::result::Result<Option<Identity>, String> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(format!("cannot read {}: {err}", path.display())),
    };
    let text = String::from_utf8_lossy(&bytes);
    let header = text.lines().next().unwrap_or_default();
    if header != FORMAT
        && let Some(version) = header.strip_prefix("swarmd-identity ")
        && !version.is_empty()
        && version.chars().all(|c| c.is_ascii_digit())
    {
        return Err(format!(
            "{} is of identity format {version:?}, which this swarmd ({FORMAT}) does not read: \
             it was written by another version of swarmd",
            path.display()
        ));
    }
    parse(&text)
        .map(Some)
        .ok_or_else(|| format!("{} is damaged (not a swarmd identity)", path.display()))
}

fn nonzero_random() -> u64 {
    rand::random::<u64>().max(1)
}

fn format(identity: &Identity) -> String {
    format!(
        "{FORMAT}\ncluster {:016x}\nraft {:016x}\nnode {}\n",
        identity.cluster_id, identity.raft_id, identity.node_id
    )
}

fn parse(text: &str) -> Option<Identity> {
    let mut lines = text.lines();
    if lines.next()? != FORMAT {
        return None;
    }
    let mut field = |name: &str| lines.next()?.strip_prefix(name)?.strip_prefix(' ').map(str::to_string);
    let cluster_id = u64::from_str_radix(&field("cluster")?, 16).ok()?;
    let raft_id = u64::from_str_radix(&field("raft")?, 16).ok()?;
    let node_id = field("node")?;
    let valid = cluster_id != 0 && raft_id != 0 && swarm_store::id::Id::parse(&node_id).is_some();
    valid.then_some(Identity {
        cluster_id,
        raft_id,
        node_id,
    })
}

/// Writes `text` to `path` so that a crash leaves either no file or the
/// whole file: a temporary file, synced, renamed, and the dir synced.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let temporary = path.with_extension("new");
    // Never through a symlink: a leftover temporary file is replaced, not
    // followed.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&temporary)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    sync_dir(parent(path))
}

/// The directory `path` is in (`.` for a bare name).
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Makes the entries of `dir` (a file renamed or made in it) durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    /// A new private dir in `root`, as a state dir must be.
    fn private_dir(root: &tempfile::TempDir) -> PathBuf {
        let dir = root.path().join("state");
        std::fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
        dir
    }

    #[test]
    fn a_new_dir_gets_an_identity_that_later_starts_read_back() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("node-1");
        let first = StateDir::open(&dir).unwrap();
        assert!(first.created);
        let busy = StateDir::open(&dir).unwrap_err();
        assert!(busy.to_string().contains("another swarmd is using it"), "{busy}");
        let identity = first.identity.clone();
        drop(first);
        // Stopped before its Raft data was made: the same first start.
        let cut_short = StateDir::open(&dir).unwrap();
        assert!(cut_short.created);
        assert_eq!(cut_short.identity, identity);
        std::fs::create_dir(cut_short.raft_dir()).unwrap();
        cut_short.confirm().unwrap();
        drop(cut_short);
        let again = StateDir::open(&dir).unwrap();
        assert!(!again.created);
        assert_eq!(again.identity, identity);
        assert!(!dir.join(PENDING_IDENTITY).exists());
    }

    #[test]
    fn an_identity_whose_raft_data_was_removed_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let dir = private_dir(&root);
        let first = StateDir::open(dir.as_path()).unwrap();
        std::fs::create_dir(first.raft_dir()).unwrap();
        first.confirm().unwrap();
        drop(first);
        std::fs::remove_dir(dir.as_path().join(RAFT)).unwrap();
        let err = StateDir::open(dir.as_path()).unwrap_err();
        assert!(err.to_string().contains("no Raft data"), "{err}");
        assert!(dir.as_path().join(IDENTITY).exists(), "the identity was left as found");
        assert!(!dir.as_path().join(RAFT).exists());
    }

    #[test]
    fn a_state_dir_is_made_private_and_one_open_to_others_refused_untouched() {
        let root = tempfile::tempdir().unwrap();
        let made = root.path().join("made");
        let opened = StateDir::open(&made).unwrap();
        let mode = |dir: &Path| std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&made), 0o700);
        drop(opened);
        let open_to_all = root.path().join("by-hand");
        std::fs::create_dir(&open_to_all).unwrap();
        std::fs::set_permissions(&open_to_all, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = StateDir::open(&open_to_all).unwrap_err();
        assert!(err.to_string().contains("is open to other users (mode 755)"), "{err}");
        assert_eq!(mode(&open_to_all), 0o755, "left as found");
        assert_eq!(
            std::fs::read_dir(&open_to_all).unwrap().count(),
            0,
            "nothing made in it"
        );
    }

    #[test]
    fn a_planted_symlink_is_not_followed() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("node-1");
        std::fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
        let target = root.path().join("victim");
        std::fs::write(&target, "keep me").unwrap();
        std::os::unix::fs::symlink(&target, dir.join("identity.new")).unwrap();
        // The leftover temporary file is a symlink: the write fails rather
        // than follow it.
        assert!(StateDir::open(&dir).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
        std::fs::remove_file(dir.join("identity.new")).unwrap();
        std::fs::remove_file(dir.join(LOCK)).unwrap();
        std::os::unix::fs::symlink(&target, dir.join(LOCK)).unwrap();
        assert!(StateDir::open(&dir).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
    }

    #[test]
    fn a_damaged_identity_is_refused_and_left_alone() {
        let root = tempfile::tempdir().unwrap();
        let dir = private_dir(&root);
        let truncated = format!("{FORMAT}\ncluster 00000000000000");
        let binary: &[u8] = &[0xff, 0xfe, 0x00, 0x80, b'\n'];
        // The header's version itself damaged: not a format.
        let version: &[u8] = b"swarmd-identity \xff\ncluster 1\n";
        // 25 characters, but not an id (past 128 bits; upper case).
        let too_large = format!(
            "{FORMAT}\ncluster 0000000000000001\nraft 0000000000000001\nnode {}\n",
            "z".repeat(25)
        );
        let upper = format!(
            "{FORMAT}\ncluster 0000000000000001\nraft 0000000000000001\nnode {}\n",
            "A".repeat(25)
        );
        for damaged in [
            b"garbage\n".as_slice(),
            truncated.as_bytes(),
            binary,
            version,
            too_large.as_bytes(),
            upper.as_bytes(),
        ] {
            std::fs::write(dir.as_path().join(IDENTITY), damaged).unwrap();
            let err = StateDir::open(dir.as_path()).unwrap_err();
            assert!(err.to_string().contains("is damaged"), "{err}");
            assert_eq!(std::fs::read(dir.as_path().join(IDENTITY)).unwrap(), damaged);
        }
    }

    #[test]
    fn an_identity_of_another_format_is_named_as_such() {
        let root = tempfile::tempdir().unwrap();
        let dir = private_dir(&root);
        std::fs::write(dir.as_path().join(IDENTITY), "swarmd-identity 2\nwhatever\n").unwrap();
        let err = StateDir::open(dir.as_path()).unwrap_err();
        assert!(err.to_string().contains(r#"identity format "2""#), "{err}");
    }

    #[test]
    fn raft_data_without_an_identity_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let dir = private_dir(&root);
        std::fs::create_dir(dir.as_path().join(RAFT)).unwrap();
        let err = StateDir::open(dir.as_path()).unwrap_err();
        assert!(err.to_string().contains("no identity"), "{err}");
        assert!(!dir.as_path().join(IDENTITY).exists());
    }
}
