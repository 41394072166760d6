//! That the data dir RocksDB writes to is still the one it opened.
//!
//! RocksDB keeps its files open: a data dir removed (or moved and replaced)
//! under a running member goes on taking writes, synced and all, into files
//! no path reaches, lost when the process ends, and the next start finds
//! no data dir (or another one) and would begin afresh. Checked after each
//! synced write, before anything depends on it, the member stops instead,
//! and nothing written after the removal is acknowledged; checked every
//! second besides, so that an idle member stops too, for its supervisor
//! to see, rather than look healthy until its next write.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// The data dir as opened: its path and the file it was then.
pub(crate) struct DataDirGuard {
    path: PathBuf,
    device: u64,
    inode: u64,
    last_checked: Instant,
}

/// How often an idle member looks.
const CHECK_EVERY: Duration = Duration::from_secs(1);

impl DataDirGuard {
    /// Notes what `path` is now.
    pub(crate) fn new(path: &Path) -> Result<Self> {
        let metadata = std::fs::metadata(path).map_err(|err| Error::DataDir {
            dir: path.to_path_buf(),
            reason: format!("cannot read it: {err}"),
        })?;
        Ok(DataDirGuard {
            path: path.to_path_buf(),
            device: metadata.dev(),
            inode: metadata.ino(),
            last_checked: Instant::now(),
        })
    }

    /// As [`DataDirGuard::check`], if the last check is a second old.
    pub(crate) fn check_if_due(&mut self) -> Result<()> {
        if self.last_checked.elapsed() < CHECK_EVERY {
            return Ok(());
        }
        self.last_checked = Instant::now();
        self.check()
    }

    /// Fails if the path no longer leads to the dir it led to (one stat:
    /// a microsecond or two, against a synced write's hundreds).
    pub(crate) fn check(&self) -> Result<()> {
        match std::fs::metadata(&self.path) {
            Ok(metadata) if (metadata.dev(), metadata.ino()) == (self.device, self.inode) => Ok(()),
            Ok(_) => Err(gone(&self.path, "was replaced by another directory")),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Err(gone(&self.path, "was removed or moved")),
            // Its permissions changed, say: the dir may still be whole.
            Err(err) => Err(gone(&self.path, &format!("can no longer be reached ({err})"))),
        }
    }
}

/// What was written before is wherever the dir went (or gone with it, if
/// it was removed); what would be written next would not be found at
/// `path` by the next start.
fn gone(path: &Path, what: &str) -> Error {
    Error::DataDir {
        dir: path.to_path_buf(),
        reason: format!(
            "{what} while in use: stopping, as the next start would not find at this path what is written from now on"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removed_or_replaced_dir_fails_the_check() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("raft");
        std::fs::create_dir(&dir).expect("mkdir");
        let guard = DataDirGuard::new(&dir).expect("exists");
        guard.check().expect("unchanged");

        std::fs::rename(&dir, root.path().join("moved")).expect("move");
        std::fs::create_dir(&dir).expect("mkdir again");
        let err = guard.check().expect_err("another dir");
        assert!(err.to_string().contains("was replaced"), "{err}");

        std::fs::remove_dir(&dir).expect("rmdir");
        let err = guard.check().expect_err("no dir");
        assert!(err.to_string().contains("was removed or moved"), "{err}");
    }
}
