//! The Control API's Unix socket: local and trusted, so only its owner may
//! use it (mode 0600). A socket a live daemon serves is never taken over; a
//! stale one, left by a daemon that died, is replaced.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use tokio::net::{UnixListener, UnixStream};

use crate::error::{Error, Result};

/// Binds the control socket at `path`.
///
/// # Errors
///
/// [`Error::Socket`] when a live daemon answers there, the path holds
/// something other than a socket, or it cannot be bound.
pub async fn bind(path: &Path) -> Result<UnixListener> {
    let fail = |reason: String| Error::Socket {
        path: path.to_path_buf(),
        reason,
    };
    if let Ok(metadata) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt as _;
        if !metadata.file_type().is_socket() {
            return Err(fail("exists and is not a socket; refusing to replace it".into()));
        }
        if UnixStream::connect(path).await.is_ok() {
            return Err(fail("another daemon is serving it".into()));
        }
        tracing::info!(path = %path.display(), "replacing a stale control socket");
        std::fs::remove_file(path).map_err(|err| fail(format!("cannot remove the stale socket: {err}")))?;
    }
    if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|err| fail(format!("cannot create its directory: {err}")))?;
    }
    let listener = UnixListener::bind(path).map_err(|err| fail(format!("cannot bind: {err}")))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|err| fail(format!("cannot restrict it to its owner: {err}")))?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_live_socket_is_refused_and_a_stale_one_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("swarm.sock");
        let live = bind(&path).await.unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let err = bind(&path).await.unwrap_err();
        assert!(err.to_string().contains("another daemon"), "{err}");
        drop(live); // the file stays: now stale
        assert!(path.exists());
        bind(&path).await.expect("a stale socket is replaced");
    }

    #[tokio::test]
    async fn a_path_that_is_not_a_socket_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        std::fs::write(&path, "mine").unwrap();
        assert!(bind(&path).await.is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "mine");
    }
}
