//! The Control API's Unix socket: local and trusted, so only its owner may
//! use it (mode 0600). A socket a live daemon serves is never taken over; a
//! stale one, left by a daemon that died, is replaced.
//!
//! Which is which is told by a lock, not by trying to connect: the daemon
//! that binds the socket holds an exclusive lock on `<socket>.lock` until it
//! has removed it again, and the kernel releases the lock of a daemon that
//! dies. A daemon still stopping (no longer accepting, socket not yet
//! removed) thus keeps its socket, and never removes one another daemon
//! bound after it.

use std::fs::{File, TryLockError};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;

use crate::error::{Error, Result};

/// The file of the socket this daemon bound, with the lock that makes it
/// this daemon's: removed by [`SocketFile::remove`] on a clean stop; left,
/// with the lock released, if the daemon dies.
#[derive(Debug)]
pub struct SocketFile {
    path: PathBuf,
    _lock: File,
}

impl SocketFile {
    /// Removes the socket, then lets go of the lock.
    pub fn remove(self) {
        if let Err(err) = std::fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), %err, "cannot remove the control socket");
        }
    }
}

/// The right to serve at a socket path: its lock, held. Taken first thing
/// at start, so that a daemon that finds another at its socket stops before
/// it touches a state dir; [`SocketClaim::bind`] binds the socket once the
/// daemon is ready to serve.
#[derive(Debug)]
pub struct SocketClaim {
    path: PathBuf,
    lock: File,
}

/// Claims the control socket at `path`.
///
/// # Errors
///
/// [`Error::Socket`] when another daemon holds it (serving, starting or
/// stopping), or its directory or lock cannot be made.
pub fn claim(path: &Path) -> Result<SocketClaim> {
    let fail = |reason: String| socket_error(path, reason);
    if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|err| fail(format!("cannot create its directory: {err}")))?;
    }
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .map_err(|err| {
            fail(format!(
                "cannot open its lock {}: {err}",
                Path::new(&lock_path).display()
            ))
        })?;
    match lock.try_lock() {
        Ok(()) => Ok(SocketClaim {
            path: path.to_path_buf(),
            lock,
        }),
        Err(TryLockError::WouldBlock) => Err(fail("another daemon is serving it".into())),
        Err(TryLockError::Error(err)) => Err(fail(format!("cannot lock it: {err}"))),
    }
}

impl SocketClaim {
    /// Binds the socket, replacing a stale one (no daemon holds its lock:
    /// its daemon died).
    ///
    /// # Errors
    ///
    /// [`Error::Socket`] when the path holds something other than a socket,
    /// or it cannot be bound.
    pub fn bind(self) -> Result<(UnixListener, SocketFile)> {
        let path = self.path.as_path();
        let fail = |reason: String| socket_error(path, reason);
        if let Ok(metadata) = std::fs::symlink_metadata(path) {
            use std::os::unix::fs::FileTypeExt as _;
            if !metadata.file_type().is_socket() {
                return Err(fail("exists and is not a socket; refusing to replace it".into()));
            }
            tracing::info!(path = %path.display(), "replacing a stale control socket");
            std::fs::remove_file(path).map_err(|err| fail(format!("cannot remove the stale socket: {err}")))?;
        }
        let listener = UnixListener::bind(path).map_err(|err| fail(format!("cannot bind: {err}")))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|err| fail(format!("cannot restrict it to its owner: {err}")))?;
        let file = SocketFile {
            path: self.path,
            _lock: self.lock,
        };
        Ok((listener, file))
    }
}

fn socket_error(path: &Path, reason: String) -> Error {
    Error::Socket {
        path: path.to_path_buf(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(path: &Path) -> Result<(UnixListener, SocketFile)> {
        claim(path)?.bind()
    }

    #[tokio::test]
    async fn a_live_socket_is_refused_and_a_stale_one_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("swarm.sock");
        let (live, file) = bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let err = bind(&path).unwrap_err();
        assert!(err.to_string().contains("another daemon"), "{err}");
        // Stopping: no longer accepting, the socket not yet removed. Still
        // its daemon's.
        drop(live);
        let err = bind(&path).unwrap_err();
        assert!(err.to_string().contains("another daemon"), "{err}");
        // Died: the lock goes with the process, the file stays, stale.
        drop(file);
        assert!(path.exists());
        let (_replacement, file) = bind(&path).expect("a stale socket is replaced");
        file.remove();
        assert!(!path.exists(), "a clean stop removes the socket");
        bind(&path).expect("and the next daemon binds it");
    }

    #[tokio::test]
    async fn a_path_that_is_not_a_socket_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        std::fs::write(&path, "mine").unwrap();
        assert!(bind(&path).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "mine");
    }
}
