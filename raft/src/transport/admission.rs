//! How many connections a listener keeps, from one source and in all, for
//! how long one may stay silent, and closing them all when a stop can wait
//! no longer.
//!
//! Every connection holds a file descriptor, and a process out of them
//! fails more than its accepts: RocksDB cannot open its next log file, and
//! the member stops. A listener open to the network (the Raft transport,
//! the metrics endpoint) must not let whoever can connect take them all:
//! [`Limits`] caps the connections it holds, in all and from one address
//! (one past a cap is closed at once), and closes one that goes silent.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// What a listener admits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections held at once; one more is closed as soon as accepted.
    pub max_connections: usize,
    /// Connections held at once from one IP address.
    pub max_per_source: usize,
    /// When a connection's reads (and, for a lifetime, writes) fail, for
    /// its server to close it.
    pub deadline: Deadline,
}

/// When a connection is timed out.
#[derive(Debug, Clone, Copy)]
pub enum Deadline {
    /// When nothing came this long after it was accepted; a client that
    /// spoke in time may then stay silent as long as it likes (a watch).
    FirstByte(Duration),
    /// When nothing came for this long, ever: for peers that keep their
    /// connections alive with pings.
    Idle(Duration),
    /// This long after it was accepted, whatever it sent: for a server
    /// whose clients reconnect for each exchange anyway (a scraper).
    Lifetime(Duration),
}

/// The connections one listener admitted and holds.
#[derive(Debug, Default)]
struct Held {
    /// Each connection's descriptor, by the number it was admitted as.
    descriptors: HashMap<u64, RawFd>,
    /// Connections held per source address.
    per_source: HashMap<IpAddr, usize>,
    admitted: u64,
}

/// A handle on the connections a listener holds, to close them all.
#[derive(Debug, Clone)]
pub struct Connections(Arc<Mutex<Held>>);

impl Connections {
    /// Shuts every connection held down, both ways: its server sees it end
    /// and drops it. Returns how many there were.
    pub fn close_all(&self) -> usize {
        let held = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for descriptor in held.descriptors.values() {
            // SAFETY: the descriptor is open: a connection leaves `held`
            // (under this lock) before its socket is closed.
            unsafe { libc::shutdown(*descriptor, libc::SHUT_RDWR) };
        }
        held.descriptors.len()
    }
}

/// The admission of one listener's connections under its [`Limits`].
#[derive(Debug)]
pub(crate) struct Admission {
    limits: Limits,
    slots: Arc<Semaphore>,
    held: Arc<Mutex<Held>>,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Full,
    SourceFull(IpAddr),
}

impl Admission {
    pub(crate) fn new(limits: Limits) -> Self {
        Admission {
            limits,
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            held: Arc::default(),
        }
    }

    pub(crate) fn connections(&self) -> Connections {
        Connections(Arc::clone(&self.held))
    }

    /// `connection`, from `source`, with descriptor `descriptor`, admitted
    /// under the limits; refused (for the caller to drop, which closes it)
    /// past a cap.
    pub(crate) fn admit<C>(
        &self,
        connection: C,
        source: Option<IpAddr>,
        descriptor: Option<RawFd>,
    ) -> Result<Admitted<C>, Refusal> {
        let permit = Arc::clone(&self.slots).try_acquire_owned().map_err(|_| Refusal::Full)?;
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(source) = source {
            let count = held.per_source.entry(source).or_default();
            if *count >= self.limits.max_per_source {
                return Err(Refusal::SourceFull(source));
            }
            *count += 1;
        }
        held.admitted += 1;
        let number = held.admitted;
        if let Some(descriptor) = descriptor {
            held.descriptors.insert(number, descriptor);
        }
        let after = match self.limits.deadline {
            Deadline::FirstByte(after) | Deadline::Idle(after) | Deadline::Lifetime(after) => after,
        };
        Ok(Admitted {
            inner: connection,
            _slot: Some(Slot {
                _permit: permit,
                number,
                source,
                held: Arc::clone(&self.held),
            }),
            timer: Some(Timer {
                sleep: Box::pin(tokio::time::sleep(after)),
                deadline: self.limits.deadline,
                last_read: Instant::now(),
            }),
        })
    }
}

/// A connection's place under its listener's caps, given back on drop.
#[derive(Debug)]
struct Slot {
    _permit: OwnedSemaphorePermit,
    number: u64,
    source: Option<IpAddr>,
    held: Arc<Mutex<Held>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.descriptors.remove(&self.number);
        if let Some(source) = self.source
            && let Some(count) = held.per_source.get_mut(&source)
        {
            *count -= 1;
            if *count == 0 {
                held.per_source.remove(&source);
            }
        }
    }
}

/// A connection's deadline.
#[derive(Debug)]
struct Timer {
    sleep: Pin<Box<Sleep>>,
    deadline: Deadline,
    /// When bytes last came (for an idle deadline).
    last_read: Instant,
}

impl Timer {
    /// Whether the deadline has passed; otherwise the task is woken when
    /// it may have.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            if self.sleep.as_mut().poll(cx).is_pending() {
                return false;
            }
            // The sleep is re-armed only when it fires, not at each read.
            let Deadline::Idle(after) = self.deadline else {
                return true;
            };
            if Instant::now() >= self.last_read + after {
                return true;
            }
            self.sleep.as_mut().reset(self.last_read + after);
        }
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "the connection's time is up")
}

/// A connection an [`Incoming`](super::Incoming) accepted, holding its
/// place under the listener's caps until it is dropped.
#[derive(Debug)]
pub struct Admitted<C> {
    // Dropped first: the connection leaves the held ones before its socket
    // is closed.
    _slot: Option<Slot>,
    timer: Option<Timer>,
    inner: C,
}

impl<C> Admitted<C> {
    /// A connection under no limit.
    pub(crate) fn unlimited(inner: C) -> Self {
        Admitted {
            _slot: None,
            timer: None,
            inner,
        }
    }

    /// The connection itself.
    pub fn get_ref(&self) -> &C {
        &self.inner
    }

    /// Whether a lifetime deadline has passed (writes fail then too).
    fn lifetime_over(&mut self, cx: &mut Context<'_>) -> bool {
        match self.timer.as_mut() {
            Some(timer) if matches!(timer.deadline, Deadline::Lifetime(_)) => timer.expired(cx),
            _ => false,
        }
    }
}

impl<C: AsyncRead + Unpin> AsyncRead for Admitted<C> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.timer.as_mut().is_some_and(|timer| timer.expired(cx)) {
            return Poll::Ready(Err(timed_out()));
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before
            && let Some(timer) = this.timer.as_mut()
        {
            match timer.deadline {
                Deadline::FirstByte(_) => this.timer = None,
                Deadline::Idle(_) => timer.last_read = Instant::now(),
                Deadline::Lifetime(_) => {}
            }
        }
        read
    }
}

impl<C: AsyncWrite + Unpin> AsyncWrite for Admitted<C> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.lifetime_over(cx) {
            return Poll::Ready(Err(timed_out()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.lifetime_over(cx) {
            return Poll::Ready(Err(timed_out()));
        }
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
        if self.lifetime_over(cx) {
            return Poll::Ready(Err(timed_out()));
        }
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

    fn admission(max_connections: usize, max_per_source: usize, deadline: Deadline) -> Admission {
        Admission::new(Limits {
            max_connections,
            max_per_source,
            deadline,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_past_a_cap_or_silent_past_its_deadline_is_refused() {
        let admission = admission(3, 2, Deadline::FirstByte(Duration::from_secs(10)));
        let here: IpAddr = [10, 0, 0, 1].into();
        let there: IpAddr = [10, 0, 0, 2].into();
        let (first, mut first_peer) = tokio::io::duplex(64);
        let mut first = admission.admit(first, Some(here), None).expect("under the caps");
        let mut second = admission
            .admit(tokio::io::duplex(64).0, Some(here), None)
            .expect("under the caps");
        let refused = admission.admit(tokio::io::duplex(64).0, Some(here), None).err();
        assert_eq!(refused, Some(Refusal::SourceFull(here)), "past the source's cap");
        let third = admission
            .admit(tokio::io::duplex(64).0, Some(there), None)
            .expect("another source");
        let refused = admission.admit(tokio::io::duplex(64).0, Some(there), None).err();
        assert_eq!(refused, Some(Refusal::Full), "past the listener's cap");

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
        // Dropped, it frees its places.
        drop(second);
        drop(third);
        assert!(
            admission.admit(tokio::io::duplex(64).0, Some(here), None).is_ok(),
            "a place again"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_deadline_follows_the_last_read() {
        let admission = admission(1, 1, Deadline::Idle(Duration::from_secs(30)));
        let (connection, mut peer) = tokio::io::duplex(64);
        let mut connection = admission.admit(connection, None, None).expect("under the cap");
        let mut byte = [0u8; 1];
        // Talking every 20 s, it stays for a minute and more.
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_secs(20)).await;
            peer.write_all(b"p").await.unwrap();
            connection.read_exact(&mut byte).await.expect("alive");
        }
        // Silent for 30 s, it is timed out, though a read was waiting.
        let ended = connection.read_exact(&mut byte).await.expect_err("idle");
        assert_eq!(ended.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lifetime_deadline_ends_reads_and_writes_of_a_talking_connection() {
        let admission = admission(1, 1, Deadline::Lifetime(Duration::from_secs(30)));
        let (connection, mut peer) = tokio::io::duplex(64);
        let mut connection = admission.admit(connection, None, None).expect("under the cap");
        peer.write_all(b"h").await.unwrap();
        let mut byte = [0u8; 1];
        connection.read_exact(&mut byte).await.unwrap();
        tokio::time::sleep(Duration::from_secs(31)).await;
        peer.write_all(b"i").await.unwrap();
        let ended = connection.read_exact(&mut byte).await.expect_err("its time is up");
        assert_eq!(ended.kind(), io::ErrorKind::TimedOut);
        let ended = connection.write_all(b"x").await.expect_err("writes too");
        assert_eq!(ended.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn closing_all_ends_the_connections_held() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let admission = admission(4, 4, Deadline::FirstByte(Duration::from_secs(60)));
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let descriptor = std::os::fd::AsRawFd::as_raw_fd(&server);
        let mut server = admission.admit(server, None, Some(descriptor)).expect("under the cap");
        assert_eq!(admission.connections().close_all(), 1);
        let mut byte = [0u8; 1];
        assert_eq!(server.read(&mut byte).await.expect("an end, not an error"), 0);
        assert_eq!(client.read(&mut byte).await.unwrap_or(0), 0, "the client sees it end");
        drop(server);
        assert_eq!(
            admission.connections().close_all(),
            0,
            "a dropped one is no longer held"
        );
    }
}
