//! The cheap, cloneable way in to a running member: every request is a
//! message to the Ready loop carrying a oneshot for the reply.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use crate::disk_space::DiskSpace;
use crate::error::{Error, Result};
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::transport::Links;

/// Why a request sent to the Ready loop has an unknown outcome when the
/// loop ended (a panic, an abort) without answering it.
const UNANSWERED: &str = "the raft member stopped without answering";

/// A membership change never answered: the loop may have proposed it before
/// it died (a clean stop answers those still queued with
/// [`Error::Stopped`]), and it may yet commit. (One queued as the loop
/// died is also reported so, never proposed: the safe side.)
fn change_unanswered() -> Error {
    Error::UnknownOutcome {
        index: None,
        reason: UNANSWERED.into(),
    }
}

/// What an entry does to the room the state takes, and so how short of
/// disk space it may still be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DiskUse {
    Takes,
    Frees,
}

/// Who leads, as this member last saw it. Published on every change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leadership {
    /// The Raft term.
    pub term: u64,
    /// The leader's id, if one is known in this term.
    pub leader_id: Option<u64>,
    /// The leader's transport address, if its id is known and a member.
    pub leader_addr: Option<String>,
    /// Whether this member is the leader.
    pub is_leader: bool,
    /// Whether this member leads and has applied an entry of its own term.
    /// Entries committed before its election count as committed for it
    /// only once one of its own does (Raft's rule), so until then its state
    /// machine may miss writes a previous leader acknowledged: reads and
    /// checks against the state machine wait for this.
    pub caught_up: bool,
    /// Why the member stopped, once its loop ended on an error (a disk
    /// that refused a write, say): requests turned away from then on can
    /// say so rather than only that no leader is known.
    pub stopped: Option<String>,
}

/// The role of a member in its current term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Takes proposals and replicates them.
    Leader,
    /// Follows a leader (or waits for one).
    Follower,
    /// Campaigns for leadership.
    Candidate,
    /// Asks whether a campaign would succeed before starting one.
    PreCandidate,
}

/// A member's view of the group, from [`RaftHandle::status`].
#[derive(Debug, Clone)]
pub struct Status {
    /// This member's id.
    pub id: u64,
    /// Its role.
    pub role: Role,
    /// The current term.
    pub term: u64,
    /// The leader it knows of.
    pub leader_id: Option<u64>,
    /// The highest index known committed.
    pub commit: u64,
    /// The highest index applied to the state machine.
    pub applied: u64,
    /// The first index still in the log (entries before are in the snapshot).
    pub first_index: u64,
    /// The last index in the log.
    pub last_index: u64,
    /// The index of the latest snapshot (0 if none).
    pub snapshot_index: u64,
    /// The members and their addresses.
    pub members: BTreeMap<u64, String>,
    /// On the leader, how far each member has replicated and whether it
    /// answered within the last election timeout; empty elsewhere.
    pub progress: BTreeMap<u64, Progress>,
}

/// A member's replication as its leader sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The highest index known to be in its log.
    pub matched: u64,
    /// Whether it answered within the last election timeout.
    pub active: bool,
}

/// A proposal on its way to the Ready loop.
pub(crate) struct Proposal<O> {
    pub data: Vec<u8>,
    pub reply: oneshot::Sender<Result<(u64, O)>>,
    /// Its bytes, counted against the free disk until the loop has written it
    /// (on a leader; a follower's own disk does not refuse).
    pub queued: Option<crate::disk_space::Queued>,
}

/// The requests other than proposals.
pub(crate) enum Command {
    AddMember {
        id: u64,
        addr: String,
        reply: oneshot::Sender<Result<u64>>,
    },
    RemoveMember {
        id: u64,
        reply: oneshot::Sender<Result<u64>>,
    },
    MoveMember {
        id: u64,
        addr: String,
        reply: oneshot::Sender<Result<u64>>,
    },
    TransferLeadership {
        to: Option<u64>,
        reply: oneshot::Sender<Result<u64>>,
    },
    Status {
        reply: oneshot::Sender<Status>,
    },
    SetLogRetention {
        snapshot_interval: u64,
        keep_entries: u64,
        reply: oneshot::Sender<Result<()>>,
    },
}

/// A handle to a running member. Clone it freely; requests fail with
/// [`Error::Stopped`] once the member has stopped.
pub struct RaftHandle<O> {
    pub(crate) id: u64,
    pub(crate) proposals: mpsc::Sender<Proposal<O>>,
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) leadership: watch::Receiver<Leadership>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) disk: Arc<DiskSpace>,
    pub(crate) links: Links,
    pub(crate) election_timeout: Duration,
}

impl<O> Clone for RaftHandle<O> {
    fn clone(&self) -> Self {
        RaftHandle {
            id: self.id,
            proposals: self.proposals.clone(),
            commands: self.commands.clone(),
            leadership: self.leadership.clone(),
            metrics: Arc::clone(&self.metrics),
            disk: Arc::clone(&self.disk),
            links: self.links.clone(),
            election_timeout: self.election_timeout,
        }
    }
}

impl<O: Send + 'static> RaftHandle<O> {
    /// This member's Raft id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Appends `data` to the log and waits until it is committed and
    /// applied here; returns its index and what the state machine said.
    ///
    /// # Errors
    ///
    /// [`Error::NotLeader`] (with the leader, if known),
    /// [`Error::Dropped`], [`Error::TooLarge`] and [`Error::NoSpace`]: not
    /// committed. [`Error::UnknownOutcome`]: the
    /// entry was appended but this member lost leadership or stopped before
    /// it applied (or its loop ended without answering); it may still
    /// commit. [`Error::Stopped`]: the member had stopped before the
    /// proposal reached it.
    #[tracing::instrument(name = "raft.propose", level = "debug", skip_all, fields(member = self.id, bytes = data.len()))]
    pub async fn propose(&self, data: Vec<u8>) -> Result<(u64, O)> {
        self.propose_using(data, DiskUse::Takes).await
    }

    /// As [`RaftHandle::propose`], for an entry that lets the state
    /// machine shrink (it only removes): taken while the disk is short of
    /// the room kept for writes (the reserve and the next snapshot's room)
    /// as long as the reserve itself is free, so that removing brings the
    /// room writes need down.
    ///
    /// # Errors
    ///
    /// As [`RaftHandle::propose`].
    #[tracing::instrument(name = "raft.propose", level = "debug", skip_all, fields(member = self.id, bytes = data.len(), frees = true))]
    pub async fn propose_freeing(&self, data: Vec<u8>) -> Result<(u64, O)> {
        self.propose_using(data, DiskUse::Frees).await
    }

    async fn propose_using(&self, data: Vec<u8>, disk_use: DiskUse) -> Result<(u64, O)> {
        if data.is_empty() {
            // Empty entries are raft-rs's own (a new leader's no-op); one
            // of ours could not be told apart.
            return Err(Error::Dropped {
                reason: "an empty proposal carries nothing",
            });
        }
        if data.len() > crate::MAX_ENTRY_BYTES {
            return Err(Error::TooLarge {
                bytes: data.len(),
                max: crate::MAX_ENTRY_BYTES,
            });
        }
        // A follower's own disk is not what refuses: the leader's log
        // takes the entry (a follower says who leads, below).
        let queued = if self.leadership.borrow().is_leader {
            Some(self.disk.queue(data.len() as u64, disk_use == DiskUse::Frees)?)
        } else {
            None
        };
        let (reply, response) = oneshot::channel();
        self.proposals
            .send(Proposal { data, reply, queued })
            .await
            .map_err(|_| Error::Stopped)?;
        // Sent but never answered: the loop died (a panic, an abort) with
        // the proposal in its queue or its log, where it may yet commit.
        response.await.map_err(|_| Error::UnknownOutcome {
            index: None,
            reason: UNANSWERED.into(),
        })?
    }

    /// Adds member `id`, reachable at `addr`, to the group; returns the
    /// index of the change once it applied here. The new member is started
    /// with [`crate::Start::Join`] and catches up from the leader.
    ///
    /// # Errors
    ///
    /// [`Error::Membership`] when `id` or `addr` is already a member's, or
    /// another change is in progress; the proposal errors of
    /// [`RaftHandle::propose`].
    #[tracing::instrument(name = "raft.add_member", skip(self), fields(member = self.id))]
    pub async fn add_member(&self, id: u64, addr: &str) -> Result<u64> {
        let addr = addr.to_string();
        self.request_or(|reply| Command::AddMember { id, addr, reply }, change_unanswered)
            .await?
    }

    /// Records that member `id` is now reached at `addr` (a manager started
    /// again on another address); returns the index of the change once it
    /// applied here, or the applied index if `addr` is already its address.
    /// A conf change that adds no one: the address is replicated state, so
    /// every member and every restart reach `id` there from then on.
    ///
    /// # Errors
    ///
    /// [`Error::Membership`] when `id` is not a member or `addr` is another
    /// member's; the proposal errors of [`RaftHandle::propose`].
    #[tracing::instrument(name = "raft.move_member", skip(self), fields(member = self.id))]
    pub async fn move_member(&self, id: u64, addr: &str) -> Result<u64> {
        let addr = addr.to_string();
        self.request_or(|reply| Command::MoveMember { id, addr, reply }, change_unanswered)
            .await?
    }

    /// Removes member `id` from the group; returns the index of the change
    /// once it applied here.
    ///
    /// # Errors
    ///
    /// [`Error::Membership`] when `id` is not a member, leads the group, or
    /// its removal would leave fewer reachable members than a quorum; the
    /// proposal errors of [`RaftHandle::propose`].
    #[tracing::instrument(name = "raft.remove_member", skip(self), fields(member = self.id))]
    pub async fn remove_member(&self, id: u64) -> Result<u64> {
        self.request_or(|reply| Command::RemoveMember { id, reply }, change_unanswered)
            .await?
    }

    /// Hands leadership to `to`, or to the most up-to-date other member that
    /// answered within the last election timeout, and waits until this
    /// member sees the new leader; returns its id.
    ///
    /// # Errors
    ///
    /// [`Error::NotLeader`] when this member does not lead;
    /// [`Error::Transfer`] when there is no one to hand over to or the
    /// transfer did not complete within two election timeouts.
    #[tracing::instrument(name = "raft.transfer_leadership", skip(self), fields(member = self.id))]
    pub async fn transfer_leadership(&self, to: Option<u64>) -> Result<u64> {
        let mut leadership = self.leadership.clone();
        let target = self
            .request(|reply| Command::TransferLeadership { to, reply })
            .await??;
        let wait = async {
            leadership
                .wait_for(|seen| seen.leader_id == Some(target))
                .await
                .map(|_| ())
        };
        match tokio::time::timeout(self.election_timeout * 2, wait).await {
            Ok(Ok(())) => Ok(target),
            Ok(Err(_)) => Err(Error::Stopped),
            Err(_) => Err(Error::Transfer(format!("member {target} did not take over in time"))),
        }
    }

    /// Changes, from now on, how many entries are applied between two
    /// snapshots and how many compaction keeps for slow followers (as
    /// SwarmKit applies its cluster object's Raft settings while running).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an interval of 0; [`Error::Stopped`].
    pub async fn set_log_retention(&self, snapshot_interval: u64, keep_entries: u64) -> Result<()> {
        self.request(|reply| Command::SetLogRetention {
            snapshot_interval,
            keep_entries,
            reply,
        })
        .await?
    }

    /// What a graceful stop does first: a leader hands leadership to
    /// another member, so that the group goes on at once rather than after
    /// an election timeout (SwarmKit's node does the same). Returns the new
    /// leader; `None` when this member does not lead, or leads alone, or the
    /// transfer did not complete (the group then elects as after a crash).
    pub async fn hand_over(&self) -> Option<u64> {
        if !self.is_leader() {
            return None;
        }
        match self.transfer_leadership(None).await {
            Ok(to) => {
                tracing::info!(member = self.id, to, "handed leadership over before stopping");
                Some(to)
            }
            Err(err) => {
                tracing::debug!(member = self.id, %err, "no leadership hand-over before stopping");
                None
            }
        }
    }

    /// Resolves once the member's loop has ended: stopped, removed from
    /// the group, or failed (the error is what [`crate::RaftNode::shutdown`]
    /// returns). A daemon selects on it to stop rather than serve a
    /// member that can no longer commit anything.
    pub async fn stopped(&self) {
        // The loop owns the sender of the leadership channel: it closes
        // when the loop ends, and not before.
        let mut leadership = self.leadership.clone();
        while leadership.changed().await.is_ok() {}
    }

    /// The member's view of the group.
    ///
    /// # Errors
    ///
    /// [`Error::Stopped`].
    pub async fn status(&self) -> Result<Status> {
        self.request(|reply| Command::Status { reply }).await
    }

    async fn request<T>(&self, command: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T> {
        self.request_or(command, || Error::Stopped).await
    }

    /// Sends `command`; `unanswered` is the error when the loop took it and
    /// ended without answering.
    async fn request_or<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
        unanswered: impl FnOnce() -> Error,
    ) -> Result<T> {
        let (reply, response) = oneshot::channel();
        self.commands.send(command(reply)).await.map_err(|_| Error::Stopped)?;
        response.await.map_err(|_| unanswered())
    }

    /// Who leads, as last seen.
    pub fn leadership(&self) -> Leadership {
        self.leadership.borrow().clone()
    }

    /// Whether this member leads.
    pub fn is_leader(&self) -> bool {
        self.leadership.borrow().is_leader
    }

    /// A receiver that sees every change of leadership.
    pub fn watch_leadership(&self) -> watch::Receiver<Leadership> {
        self.leadership.clone()
    }

    /// A receiver that sees whether this member's disk takes writes
    /// (`true`), or refuses them for want of room ([`Error::NoSpace`]), as
    /// that changes.
    pub fn watch_disk_room(&self) -> watch::Receiver<bool> {
        self.disk.watch_room()
    }

    /// The member's counters now.
    pub fn metrics(&self) -> MetricsSnapshot {
        let mut metrics = self.metrics.snapshot();
        if let Some((free, reserve)) = self.disk.figures() {
            metrics.disk_free_bytes = free;
            metrics.disk_reserve_bytes = reserve;
            metrics.disk_refusing_writes = self.disk.is_low();
            metrics.disk_refusing_removals = self.disk.check_freeing().is_err();
        }
        metrics
    }

    /// The test hooks: cut and heal links to peers, refuse probes, hold
    /// the loop up.
    pub fn links(&self) -> &Links {
        &self.links
    }
}
