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
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
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
    /// Held while the node runs: a second daemon on this dir is told so
    /// before it opens anything in it.
    _lock: std::fs::File,
}

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
        let lock = super::exclusive_lock(&path.join(LOCK))
            .map_err(|err| fail(format!("cannot lock it: {err}")))?
            .ok_or_else(|| fail("another swarmd is using it".into()))?;
        make_private(path).map_err(|err| fail(format!("cannot make it private (0700): {err}")))?;
        let has_raft = path.join(RAFT).exists();
        let opened = |identity, created| StateDir {
            path: path.to_path_buf(),
            identity,
            created,
            _lock: lock,
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

/// Makes `dir` readable by its owner alone, if it is not: it holds the
/// Raft log, and with it the cluster's secrets, in files RocksDB makes
/// readable by all (a dir made by hand, or by an older swarmd, may be 0755).
fn make_private(dir: &Path) -> std::io::Result<()> {
    let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(dir = %dir.display(), mode = format!("{mode:o}"), "the state dir was open to others; made 0700");
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// The identity in the file at `path`, or none if there is no such file.
fn read_identity(path: &Path) -> std::result::Result<Option<Identity>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text)
            .map(Some)
            .ok_or_else(|| format!("{} is damaged", path.display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(format!("cannot read {}: {err}", path.display())),
    }
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
    let valid = cluster_id != 0 && raft_id != 0 && node_id.len() == 25;
    valid.then_some(Identity {
        cluster_id,
        raft_id,
        node_id,
    })
}

/// Writes `text` to `path` so that a crash leaves either no file or the
/// whole file: a temporary file, synced, renamed, and the dir synced.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let temporary = path.with_extension("new");
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(text.as_bytes())?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
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
    use super::*;

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
        let first = StateDir::open(root.path()).unwrap();
        std::fs::create_dir(first.raft_dir()).unwrap();
        first.confirm().unwrap();
        drop(first);
        std::fs::remove_dir(root.path().join(RAFT)).unwrap();
        let err = StateDir::open(root.path()).unwrap_err();
        assert!(err.to_string().contains("no Raft data"), "{err}");
        assert!(root.path().join(IDENTITY).exists(), "the identity was left as found");
        assert!(!root.path().join(RAFT).exists());
    }

    #[test]
    fn the_state_dir_is_made_private() {
        let root = tempfile::tempdir().unwrap();
        let made = root.path().join("made");
        let opened = StateDir::open(&made).unwrap();
        let mode = |dir: &Path| std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&made), 0o700);
        drop(opened);
        let open_to_all = root.path().join("by-hand");
        std::fs::create_dir(&open_to_all).unwrap();
        std::fs::set_permissions(&open_to_all, std::fs::Permissions::from_mode(0o755)).unwrap();
        drop(StateDir::open(&open_to_all).unwrap());
        assert_eq!(mode(&open_to_all), 0o700);
    }

    #[test]
    fn a_damaged_identity_is_refused_and_left_alone() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join(IDENTITY), "garbage\n").unwrap();
        let err = StateDir::open(root.path()).unwrap_err();
        assert!(err.to_string().contains("damaged"), "{err}");
        assert_eq!(
            std::fs::read_to_string(root.path().join(IDENTITY)).unwrap(),
            "garbage\n"
        );
    }

    #[test]
    fn raft_data_without_an_identity_is_refused() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join(RAFT)).unwrap();
        let err = StateDir::open(root.path()).unwrap_err();
        assert!(err.to_string().contains("no identity"), "{err}");
        assert!(!root.path().join(IDENTITY).exists());
    }
}
