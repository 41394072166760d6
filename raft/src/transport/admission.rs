//! How many connections a listener keeps, and for how long one may stay
//! silent.
//!
//! Every connection holds a file descriptor, and a process out of them
//! fails more than its accepts: RocksDB cannot open its next log file, and
//! the member stops. A listener open to the network (the Raft transport,
//! the metrics endpoint) must not let anyone who can connect take them
//! all: [`Limits`] caps the connections it holds (one past the cap is
//! closed at once) and closes one that sends nothing in time.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

/// What a listener admits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections held at once; one more is closed as soon as accepted.
    pub max_connections: usize,
    /// When a connection's reads fail (and the server then closes it).
    pub deadline: Deadline,
}

/// When reads from a connection fail with `TimedOut`.
#[derive(Debug, Clone, Copy)]
pub enum Deadline {
    /// When nothing came this long after it was accepted; a peer that
    /// sends its first byte in time may then stay as long as it likes.
    FirstByte(Duration),
    /// This long after it was accepted, whatever it sent: for a server
    /// whose clients reconnect for each exchange anyway (a scraper).
    Lifetime(Duration),
}

/// The admission of one listener's connections: its cap, shared by the
/// connections it admitted.
#[derive(Debug)]
pub(crate) struct Admission {
    limits: Limits,
    slots: Arc<Semaphore>,
}

impl Admission {
    pub(crate) fn new(limits: Limits) -> Self {
        Admission {
            limits,
            slots: Arc::new(Semaphore::new(limits.max_connections)),
        }
    }

    /// `connection`, admitted under the limits; `None` (the connection to
    /// be closed) when the cap is reached.
    pub(crate) fn admit<C>(&self, connection: C) -> Option<Admitted<C>> {
        let slot = Arc::clone(&self.slots).try_acquire_owned().ok()?;
        let (after, first_byte_only) = match self.limits.deadline {
            Deadline::FirstByte(after) => (after, true),
            Deadline::Lifetime(after) => (after, false),
        };
        Some(Admitted {
            inner: connection,
            _slot: Some(slot),
            deadline: Some(Box::pin(tokio::time::sleep(after))),
            first_byte_only,
        })
    }
}

/// A connection an [`Incoming`](super::Incoming) accepted, holding its
/// slot under the listener's cap until it is dropped.
#[derive(Debug)]
pub struct Admitted<C> {
    inner: C,
    _slot: Option<OwnedSemaphorePermit>,
    deadline: Option<Pin<Box<Sleep>>>,
    first_byte_only: bool,
}

impl<C> Admitted<C> {
    /// A connection under no limit.
    pub(crate) fn unlimited(inner: C) -> Self {
        Admitted {
            inner,
            _slot: None,
            deadline: None,
            first_byte_only: false,
        }
    }

    /// The connection itself.
    pub fn get_ref(&self) -> &C {
        &self.inner
    }
}

impl<C: AsyncRead + Unpin> AsyncRead for Admitted<C> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(deadline) = this.deadline.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the connection's time is up",
            )));
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut this.inner).poll_read(cx, buf);
        if this.first_byte_only && buf.filled().len() > before {
            this.deadline = None;
        }
        read
    }
}

impl<C: AsyncWrite + Unpin> AsyncWrite for Admitted<C> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl<C: tonic::transport::server::Connected> tonic::transport::server::Connected for Admitted<C> {
    type ConnectInfo = C::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_connection_past_the_cap_or_silent_past_its_deadline_is_refused() {
        let admission = Admission::new(Limits {
            max_connections: 2,
            deadline: Deadline::FirstByte(Duration::from_secs(10)),
        });
        let (first, mut first_peer) = tokio::io::duplex(64);
        let (second, _second_peer) = tokio::io::duplex(64);
        let mut first = admission.admit(first).expect("under the cap");
        let mut second = admission.admit(second).expect("under the cap");
        assert!(admission.admit(tokio::io::duplex(64).0).is_none(), "past the cap");

        // One that sent a byte in time stays past the deadline.
        first_peer.write_all(b"h").await.unwrap();
        let mut byte = [0u8; 1];
        first.read_exact(&mut byte).await.unwrap();
        tokio::time::sleep(Duration::from_secs(11)).await;
        first_peer.write_all(b"i").await.unwrap();
        first.read_exact(&mut byte).await.expect("still open");
        // One that sent nothing is timed out.
        let silent = second.read(&mut byte).await.expect_err("timed out");
        assert_eq!(silent.kind(), io::ErrorKind::TimedOut);
        // Dropped, it frees its slot.
        drop(second);
        assert!(admission.admit(tokio::io::duplex(64).0).is_some(), "a slot again");
    }

    #[tokio::test(start_paused = true)]
    async fn a_lifetime_deadline_ends_a_talking_connection_too() {
        let admission = Admission::new(Limits {
            max_connections: 1,
            deadline: Deadline::Lifetime(Duration::from_secs(30)),
        });
        let (connection, mut peer) = tokio::io::duplex(64);
        let mut connection = admission.admit(connection).expect("under the cap");
        peer.write_all(b"h").await.unwrap();
        let mut byte = [0u8; 1];
        connection.read_exact(&mut byte).await.unwrap();
        tokio::time::sleep(Duration::from_secs(31)).await;
        peer.write_all(b"i").await.unwrap();
        let ended = connection.read_exact(&mut byte).await.expect_err("its time is up");
        assert_eq!(ended.kind(), io::ErrorKind::TimedOut);
    }
}
