//! Accepting connections without spinning when accepting fails, and no
//! more of them than the listener's [`Limits`] admit.
//!
//! tonic's accept loop retries a failed accept at once: a process out of
//! file descriptors (`EMFILE`, every one of its connections held open)
//! then burns a core on accepts that cannot succeed, and says nothing.
//! [`Incoming`] pauses instead, 5 ms doubling to 1 s as Go's `net/http`
//! does, warns once when accepting starts to fail and tells when it works
//! again. A connection that died before it was accepted is only skipped.
//!
//! At a stop ([`Incoming::ending_after`]) it accepts what is already queued
//! and then ends: closing a listener resets the connections still in its
//! backlog, which their clients cannot tell from a connection lost with
//! their request in it (a change that may have been made).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::time::Sleep;

use super::admission::{Admission, Admitted, Connections, Limits, Refusal};

/// Connections closed for a cap since the last warning of them.
#[derive(Debug, Default)]
struct Refused {
    /// Past the listener's cap.
    listener_full: u64,
    /// Past an address's cap, and the last such address.
    source_full: u64,
    last_source: Option<std::net::IpAddr>,
    warned: Option<tokio::time::Instant>,
}

/// How often connections closed for the cap are logged as a warning.
const REFUSAL_WARNING_EVERY: Duration = Duration::from_secs(60);

/// The first pause after a failed accept.
const FIRST_PAUSE: Duration = Duration::from_millis(5);
/// The longest pause.
const LONGEST_PAUSE: Duration = Duration::from_secs(1);

/// A listener [`Incoming`] accepts from.
pub trait Listener: Unpin {
    /// A connection it accepts.
    type Connection;

    /// Polls for the next connection.
    ///
    /// # Errors
    ///
    /// The accept failed.
    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<Self::Connection>>;

    /// The address a connection comes from, for a cap per source.
    fn source(_connection: &Self::Connection) -> Option<std::net::IpAddr> {
        None
    }

    /// A connection's descriptor, for closing it at a stop.
    fn descriptor(_connection: &Self::Connection) -> Option<std::os::fd::RawFd> {
        None
    }

    /// Whether a connection waits to be accepted, asked of the kernel:
    /// tokio's `poll_accept` answers from readiness its reactor may not
    /// have caught up with (a connection made a moment ago reads as none).
    fn has_queued(&self) -> bool {
        false
    }
}

/// Whether the listening socket `fd` has a connection to accept.
fn readable_now(fd: std::os::fd::RawFd) -> bool {
    let mut poll = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid `pollfd`, and a zero timeout: it only looks.
    let ready = unsafe { libc::poll(&raw mut poll, 1, 0) };
    ready > 0 && poll.revents & libc::POLLIN != 0
}

impl Listener for tokio::net::TcpListener {
    type Connection = tokio::net::TcpStream;

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<Self::Connection>> {
        let (stream, _) = ready!(tokio::net::TcpListener::poll_accept(self, cx))?;
        // Nagle's algorithm off: a small acknowledgement held back waiting
        // for more data (and the peer's delayed ACK) would add up to 40 ms
        // to a round trip. `Endpoint` sets this for outgoing connections.
        // It fails only on a connection already gone, which fails soon
        // enough by itself.
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(%err, "cannot turn Nagle's algorithm off");
        }
        Poll::Ready(Ok(stream))
    }

    fn source(connection: &Self::Connection) -> Option<std::net::IpAddr> {
        connection.peer_addr().ok().map(|addr| addr.ip())
    }

    fn descriptor(connection: &Self::Connection) -> Option<std::os::fd::RawFd> {
        Some(std::os::fd::AsRawFd::as_raw_fd(connection))
    }

    fn has_queued(&self) -> bool {
        readable_now(std::os::fd::AsRawFd::as_raw_fd(self))
    }
}

impl Listener for tokio::net::UnixListener {
    type Connection = tokio::net::UnixStream;

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<Self::Connection>> {
        let (stream, _) = ready!(tokio::net::UnixListener::poll_accept(self, cx))?;
        Poll::Ready(Ok(stream))
    }

    fn descriptor(connection: &Self::Connection) -> Option<std::os::fd::RawFd> {
        Some(std::os::fd::AsRawFd::as_raw_fd(connection))
    }

    fn has_queued(&self) -> bool {
        readable_now(std::os::fd::AsRawFd::as_raw_fd(self))
    }
}

/// The connections a listener accepts, for a tonic server's
/// `serve_with_incoming`; it never yields an error, and ends only after
/// the stop given to [`Incoming::ending_after`].
pub struct Incoming<L> {
    listener: L,
    /// What the listener serves, for the log.
    serves: &'static str,
    /// The pause under way after a failed accept.
    pause: Option<Pin<Box<Sleep>>>,
    /// The pause after the next failure.
    next_pause: Duration,
    /// Accepts failed in a row.
    failures: u64,
    /// The limits connections are admitted under, if any.
    admission: Option<Admission>,
    /// Connections closed since the last warning, and when that was.
    refused: Refused,
    /// The stop after which the stream ends, once the backlog is drained.
    stop: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    /// The stop came: yield what is queued, then end.
    draining: bool,
}

impl<L: Listener> Incoming<L> {
    /// The connections `listener` accepts; `serves` names what it serves in
    /// the log ("the Control API").
    pub fn new(listener: L, serves: &'static str) -> Incoming<L> {
        Incoming {
            listener,
            serves,
            pause: None,
            next_pause: FIRST_PAUSE,
            failures: 0,
            admission: None,
            refused: Refused::default(),
            stop: None,
            draining: false,
        }
    }

    /// Ends the stream once `stop` resolves and the connections already
    /// queued on the listener are yielded (the caller should make the
    /// listener unreachable first, removing a Unix socket's path, so that
    /// no more arrive). A tonic server then stops gracefully, as on its
    /// own shutdown signal, having taken every connection a client made.
    #[must_use]
    pub fn ending_after(mut self, stop: impl Future<Output = ()> + Send + 'static) -> Incoming<L> {
        self.stop = Some(Box::pin(stop));
        self
    }

    /// As [`Incoming::new`], admitting connections under `limits`.
    pub fn with_limits(listener: L, serves: &'static str, limits: Limits) -> Incoming<L> {
        Incoming {
            admission: Some(Admission::new(limits)),
            ..Incoming::new(listener, serves)
        }
    }

    /// The connections this listener holds, to close them all at a stop;
    /// `None` when it admits under no limits (and so keeps no count).
    pub fn connections(&self) -> Option<Connections> {
        self.admission.as_ref().map(Admission::connections)
    }

    /// `connection` admitted, or `None` past a cap (it is then dropped,
    /// which closes it), said once a minute at most.
    fn admit(&mut self, connection: L::Connection) -> Option<Admitted<L::Connection>> {
        let Some(admission) = &self.admission else {
            return Some(Admitted::unlimited(connection));
        };
        let (source, descriptor) = (L::source(&connection), L::descriptor(&connection));
        let refusal = match admission.admit(connection, source, descriptor) {
            Ok(admitted) => return Some(admitted),
            Err(refusal) => refusal,
        };
        let refused = &mut self.refused;
        match refusal {
            Refusal::Full => refused.listener_full += 1,
            Refusal::SourceFull(source) => {
                refused.source_full += 1;
                refused.last_source = Some(source);
            }
        }
        let now = tokio::time::Instant::now();
        if refused
            .warned
            .is_none_or(|warned| now - warned >= REFUSAL_WARNING_EVERY)
        {
            tracing::warn!(
                serves = self.serves,
                listener_full = refused.listener_full,
                address_full = refused.source_full,
                last_address = ?refused.last_source,
                "connections closed as soon as accepted: as many were open as the listener keeps, or as one \
                 address may hold (counted since the last such warning, logged at the first refusal of a minute)"
            );
            *refused = Refused {
                warned: Some(now),
                ..Refused::default()
            };
        }
        None
    }

    fn failed(&mut self, err: &io::Error) {
        if self.failures == 0 {
            tracing::warn!(%err, serves = self.serves, "cannot accept connections: pausing between tries");
        }
        self.failures += 1;
        self.pause = Some(Box::pin(tokio::time::sleep(self.next_pause)));
        self.next_pause = (self.next_pause * 2).min(LONGEST_PAUSE);
    }

    fn accepted(&mut self) {
        if self.failures > 0 {
            tracing::info!(
                serves = self.serves,
                failures = self.failures,
                "accepting connections again"
            );
        }
        self.failures = 0;
        self.next_pause = FIRST_PAUSE;
    }
}

impl<L: Listener> futures::Stream for Incoming<L> {
    type Item = Result<Admitted<L::Connection>, std::convert::Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(stop) = this.stop.as_mut()
            && stop.as_mut().poll(cx).is_ready()
        {
            this.stop = None;
            this.draining = true;
        }
        loop {
            if let Some(pause) = this.pause.as_mut().filter(|_| !this.draining) {
                ready!(pause.as_mut().poll(cx));
            }
            this.pause = None;
            let accepted = match this.listener.poll_accept(cx) {
                Poll::Ready(accepted) => accepted,
                // Drained: nothing more is queued. (A connection queued
                // that tokio's reactor has not seen yet wakes this task
                // once it has.)
                Poll::Pending if this.draining && !this.listener.has_queued() => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            };
            match accepted {
                Ok(connection) => {
                    this.accepted();
                    if let Some(admitted) = this.admit(connection) {
                        return Poll::Ready(Some(Ok(admitted)));
                    }
                }
                Err(err) if lost_one_connection(&err) => {
                    tracing::debug!(%err, serves = this.serves, "a connection was lost before it was accepted");
                }
                // What is queued can no longer be taken.
                Err(_) if this.draining => return Poll::Ready(None),
                Err(err) => this.failed(&err),
            }
        }
    }
}

/// Whether the error ended one connection only (the next accept may well
/// succeed), rather than said the process cannot accept now.
fn lost_one_connection(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::Interrupted
            | io::ErrorKind::NotConnected
    )
}

#[cfg(test)]
mod tests {
    use std::future::Future as _;

    use futures::{Stream as _, StreamExt as _};

    use super::*;

    #[tokio::test]
    async fn at_a_stop_the_connections_queued_are_yielded_then_the_stream_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let mut incoming = Incoming::new(listener, "a test").ending_after(async move {
            let _ = stopped.await;
        });
        let first = std::os::unix::net::UnixStream::connect(&path).unwrap();
        assert!(incoming.next().await.is_some(), "served before the stop");
        let pending = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut incoming).poll_next(cx).is_pending()));
        assert!(pending.await, "nothing queued and no stop: it waits, it does not end");
        // Queued in the kernel, not yet accepted, when the stop comes.
        let queued: Vec<_> = (0..3)
            .map(|_| std::os::unix::net::UnixStream::connect(&path).unwrap())
            .collect();
        stop.send(()).unwrap();
        let mut drained = 0;
        while incoming.next().await.is_some() {
            drained += 1;
        }
        assert_eq!(drained, 3, "every connection queued at the stop, then the end");
        drop((first, queued));
    }

    /// A listener whose accepts fail with `EMFILE` `failures` times, then
    /// succeed; it counts the accepts tried.
    struct Failing {
        failures: std::cell::Cell<u32>,
        tries: std::cell::Cell<u32>,
    }

    impl Listener for Failing {
        type Connection = u32;

        fn poll_accept(&self, _: &mut Context<'_>) -> Poll<io::Result<u32>> {
            self.tries.set(self.tries.get() + 1);
            if self.failures.get() > 0 {
                self.failures.set(self.failures.get() - 1);
                return Poll::Ready(Err(io::Error::other("too many open files")));
            }
            Poll::Ready(Ok(self.tries.get()))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_accept_pauses_doubling_then_the_next_succeeds() {
        let listener = Failing {
            failures: std::cell::Cell::new(4),
            tries: std::cell::Cell::new(0),
        };
        let mut incoming = Incoming::new(listener, "a test");
        let started = tokio::time::Instant::now();
        let Some(Ok(connection)) = incoming.next().await else {
            panic!("the stream ended");
        };
        // Four failures, one try each, then the accept that worked.
        assert_eq!(*connection.get_ref(), 5);
        assert_eq!(incoming.listener.tries.get(), 5);
        // Paused 5 + 10 + 20 + 40 ms between the tries.
        assert_eq!(started.elapsed(), Duration::from_millis(75));
        // Success resets the pause.
        assert_eq!(incoming.next_pause, FIRST_PAUSE);
        assert_eq!(incoming.failures, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_listener_is_not_retried_while_paused() {
        let listener = Failing {
            failures: std::cell::Cell::new(u32::MAX),
            tries: std::cell::Cell::new(0),
        };
        let mut incoming = Incoming::new(listener, "a test");
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut incoming).poll_next(&mut cx).is_pending());
        assert_eq!(incoming.listener.tries.get(), 1, "one try, then a pause");
        let mut next = incoming.next();
        assert!(Pin::new(&mut next).poll(&mut cx).is_pending());
        drop(next);
        assert_eq!(incoming.listener.tries.get(), 1, "no try before the pause ends");
        // Over ten seconds, the pauses grow to a second: tries at 0, 5, 15,
        // 35, 75, 155, 315, 635 and 1,275 ms, then every second.
        let _ = tokio::time::timeout(Duration::from_secs(10), incoming.next()).await;
        assert_eq!(incoming.listener.tries.get(), 17);
        assert_eq!(incoming.next_pause, LONGEST_PAUSE);
    }
}
