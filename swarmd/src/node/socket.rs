//! The Control API's Unix socket: local and trusted, so only its owner may
//! use it (mode 0600). A socket a live daemon serves is never taken over; a
//! stale one, left by a daemon that died, is replaced.
//!
//! Which is which is told by a lock (and, for other programs' sockets, by
//! trying to connect): a daemon holds an exclusive lock on `<socket>.lock` from the start of its start to
//! the end of its stop, and the kernel releases the lock of a daemon that
//! dies. A daemon still starting or stopping (not serving, its state dir
//! open) thus keeps its socket, and never removes one another daemon bound
//! after it.

use std::fs::File;
use std::os::unix::fs::FileTypeExt as _;
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;

use crate::error::{Error, Result};

/// The right to serve at a socket path: its lock, held until dropped.
/// Taken first thing at start, so that a daemon that finds another at its
/// socket stops before it touches a state dir; [`SocketClaim::bind`] binds
/// the socket once the daemon is ready to serve.
#[derive(Debug)]
pub struct SocketClaim {
    path: PathBuf,
    _lock: File,
}

/// The longest path a Unix socket can be bound at on Linux: `sun_path`
/// holds 108 bytes, the last a NUL.
const MAX_PATH_BYTES: usize = 107;

/// Claims the control socket at `path`.
///
/// # Errors
///
/// [`Error::Socket`] when another daemon holds it (serving, starting or
/// stopping), the path is too long or holds something other than a
/// socket, or its directory or lock cannot be made.
pub fn claim(path: &Path) -> Result<SocketClaim> {
    let fail = |reason: String| socket_error(path, reason);
    // Found here, before anything is made, rather than when binding.
    let bytes = path.as_os_str().len();
    if bytes > MAX_PATH_BYTES {
        return Err(fail(format!(
            "is {bytes} bytes long; a Unix socket's path holds at most {MAX_PATH_BYTES}"
        )));
    }
    if std::fs::symlink_metadata(path).is_ok_and(|metadata| !metadata.file_type().is_socket()) {
        return Err(fail("exists and is not a socket; refusing to replace it".into()));
    }
    if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        // Private (0700) when made here: it is often the state dir itself.
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(parent)
            .map_err(|err| fail(format!("cannot create its directory: {err}")))?;
    }
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    let lock = super::exclusive_lock(&lock_path)
        .map_err(|err| fail(format!("cannot lock it ({}): {err}", lock_path.display())))?
        .ok_or_else(|| fail("another daemon is serving it".into()))?;
    // No daemon of ours holds it; another program may (dockerd's socket,
    // named by a slip): one that answers is not stale.
    if std::fs::symlink_metadata(path).is_ok() {
        match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => return Err(fail("another program is serving it; refusing to replace it".into())),
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionRefused => {}
            Err(err) => {
                return Err(fail(format!(
                    "cannot tell whether another program serves it ({err}); refusing to replace it"
                )));
            }
        }
    }
    Ok(SocketClaim {
        path: path.to_path_buf(),
        _lock: lock,
    })
}

impl SocketClaim {
    /// Binds the socket, replacing a stale one (one [`claim`] found no
    /// daemon holding and nothing answering).
    ///
    /// # Errors
    ///
    /// [`Error::Socket`] when the path holds something other than a socket,
    /// or it cannot be bound.
    pub fn bind(&self) -> Result<(UnixListener, BoundSocket)> {
        let path = self.path.as_path();
        let fail = |reason: String| socket_error(path, reason);
        if let Ok(metadata) = std::fs::symlink_metadata(path) {
            if !metadata.file_type().is_socket() {
                return Err(fail("exists and is not a socket; refusing to replace it".into()));
            }
            tracing::info!(path = %path.display(), "replacing a stale control socket");
            std::fs::remove_file(path).map_err(|err| fail(format!("cannot remove the stale socket: {err}")))?;
        }
        // Made its user's alone by swarmd's umask (077) as it is bound: a
        // chmod after would leave a window, and follow a symlink swapped in.
        let listener = UnixListener::bind(path).map_err(|err| fail(format!("cannot bind: {err}")))?;
        let identity = std::fs::symlink_metadata(path)
            .map(|metadata| identity(&metadata))
            .map_err(|err| fail(format!("cannot look at the socket just bound: {err}")))?;
        Ok((
            listener,
            BoundSocket {
                path: self.path.clone(),
                identity,
            },
        ))
    }
}

/// The socket file a daemon bound, to remove at its stop: that file only.
#[derive(Clone, Debug)]
pub struct BoundSocket {
    path: PathBuf,
    /// Its device and inode.
    identity: (u64, u64),
}

impl BoundSocket {
    /// Removes the socket, if its path still holds the very file bound: one
    /// put there since (its lock file removed by hand, another daemon
    /// started on the path) is another daemon's, and stays.
    pub fn remove(&self) {
        let path = self.path.as_path();
        match std::fs::symlink_metadata(path) {
            Ok(metadata) if identity(&metadata) == self.identity => {
                if let Err(err) = std::fs::remove_file(path) {
                    tracing::warn!(path = %path.display(), %err, "cannot remove the control socket");
                }
            }
            Ok(_) => tracing::warn!(path = %path.display(),
                "the control socket's path holds another file than the one this daemon bound: left alone"),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => tracing::warn!(path = %path.display(), %err, "cannot look at the control socket"),
        }
    }
}

fn identity(metadata: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt as _;
    (metadata.dev(), metadata.ino())
}

/// Watches the socket just bound at `path`: if it is removed or replaced
/// while the daemon serves (a cleanup script, an operator), clients can no
/// longer reach the daemon through it, which is said once, loudly; nothing
/// else would tell. The socket is looked at now, as this is called (a task
/// that looked only once it ran could miss a removal made meanwhile); the
/// future returned watches until dropped.
pub fn warn_if_removed(path: PathBuf) -> impl Future<Output = ()> {
    use std::os::unix::fs::MetadataExt as _;
    const EVERY: std::time::Duration = std::time::Duration::from_secs(5);
    let identity = |metadata: std::fs::Metadata| (metadata.dev(), metadata.ino());
    let bound = std::fs::symlink_metadata(&path).map(identity).ok();
    async move {
        let mut current = bound;
        while bound.is_some() && current == bound {
            tokio::time::sleep(EVERY).await;
            current = std::fs::symlink_metadata(&path).map(identity).ok();
        }
        tracing::warn!(
            path = %path.display(),
            "the control socket was removed or replaced while this daemon serves: clients cannot reach it \
             there; restart swarmd (Ctrl+C or SIGTERM, then start it again) to make it again"
        );
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

    #[tokio::test]
    async fn a_live_socket_is_refused_and_a_stale_one_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("swarm.sock");
        let first = claim(&path).unwrap();
        let (listener, bound) = first.bind().unwrap();
        let err = claim(&path).unwrap_err();
        assert!(err.to_string().contains("another daemon"), "{err}");
        // Stopping: no longer serving, its socket removed, its state dir
        // still open. Still its daemon's.
        drop(listener);
        bound.remove();
        let err = claim(&path).unwrap_err();
        assert!(err.to_string().contains("another daemon"), "{err}");
        drop(first);
        // Died while serving: the lock goes with the process, the socket
        // file stays, stale.
        let second = claim(&path).unwrap();
        let (listener, _) = second.bind().unwrap();
        drop((listener, second));
        assert!(path.exists());
        let third = claim(&path).expect("a stale socket's lock is free");
        let (_listener, bound) = third.bind().expect("and the socket is replaced");
        bound.remove();
        assert!(!path.exists(), "a clean stop removes the socket");
    }

    #[tokio::test]
    async fn a_stop_leaves_a_socket_another_daemon_bound_since() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("swarm.sock");
        let ours = claim(&path).unwrap();
        let (_listener, bound) = ours.bind().unwrap();
        // Its socket and lock removed by hand, another daemon took the path.
        std::fs::remove_file(&path).unwrap();
        std::fs::remove_file(dir.path().join("swarm.sock.lock")).unwrap();
        let theirs = claim(&path).unwrap();
        let (_their_listener, _) = theirs.bind().unwrap();
        bound.remove();
        assert!(
            std::os::unix::net::UnixStream::connect(&path).is_ok(),
            "the other daemon's socket stays"
        );
    }

    #[tokio::test]
    async fn another_programs_live_socket_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker.sock");
        let _theirs = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let err = claim(&path).unwrap_err();
        assert!(err.to_string().contains("another program is serving it"), "{err}");
        assert!(std::os::unix::net::UnixStream::connect(&path).is_ok(), "still theirs");
    }

    #[tokio::test]
    async fn a_path_that_is_not_a_socket_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        std::fs::write(&path, "mine").unwrap();
        let err = claim(&path).unwrap_err();
        assert!(err.to_string().contains("not a socket"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "mine");
    }
}
