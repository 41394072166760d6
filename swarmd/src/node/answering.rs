//! Which requests are still being answered: a graceful stop ends the
//! watch streams only once every other request has its answer, and from
//! then on refuses the requests that still come (sent before the stop
//! reached their client), so that a watch's last words, the index to
//! resume after, come after the last change the API makes. Ended before,
//! a watch missed those changes, and a Raft snapshot taken meanwhile left
//! them out of what the restarted manager can replay to it: its resume
//! was refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

/// Counts the requests whose handler has not answered yet (a watch's
/// answer is its stream: counted only until the stream starts), and once
/// closed lets none begin.
#[derive(Clone, Default)]
pub(crate) struct Answering(Arc<Counter>);

#[derive(Default)]
struct Counter {
    /// The requests being answered, with [`CLOSED`] set once closed.
    count: AtomicUsize,
    idle: Notify,
}

/// Set in the count once no request may begin.
const CLOSED: usize = 1 << (usize::BITS - 1);

/// One request being answered; dropped with its handler's future, answered
/// or not.
pub(crate) struct Answer(Arc<Counter>);

impl Answering {
    /// Counts a request from now until the [`Answer`] is dropped; `None`
    /// once closed.
    pub(crate) fn begin(&self) -> Option<Answer> {
        if self.0.count.fetch_add(1, Ordering::AcqRel) & CLOSED != 0 {
            self.0.count.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Answer(Arc::clone(&self.0)))
    }

    /// Resolves once no request is being answered, and closes: no request
    /// begins from then on.
    pub(crate) async fn close_when_idle(&self) {
        loop {
            let idle = self.0.idle.notified();
            tokio::pin!(idle);
            // Registered before the count is read: an answer that ends in
            // between wakes it.
            idle.as_mut().enable();
            match self
                .0
                .count
                .compare_exchange(0, CLOSED, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(count) if count & CLOSED != 0 => return,
                Err(_) => idle.await,
            }
        }
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn closes_once_every_answer_is_given_and_then_lets_none_begin() {
        let answering = Answering::default();
        let (first, second) = (answering.begin(), answering.begin());
        assert!(first.is_some() && second.is_some());
        let mut closed = Box::pin(answering.close_when_idle());
        assert!(futures::poll!(&mut closed).is_pending());
        drop(first);
        assert!(futures::poll!(&mut closed).is_pending(), "one still answering");
        assert!(answering.begin().is_some(), "not closed yet: another may begin");
        drop(second);
        tokio::time::timeout(std::time::Duration::from_secs(10), closed)
            .await
            .expect("woken by the last answer");
        assert!(answering.begin().is_none(), "closed");
        answering.close_when_idle().await;
    }
}
