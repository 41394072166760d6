//! The Ready loop: the one task that owns raft-rs's `RawNode`, the storage,
//! the state machine and the sending side of the transport.
//!
//! Each turn takes one event (shutdown, a command, a message from a peer, a
//! proposal, a transport report, or a tick), then everything else already
//! waiting, then handles raft-rs's `Ready` once. Everything that arrived
//! while the previous turn waited for its fsync therefore shares the next
//! fsync: that is group commit.

use std::collections::{BTreeMap, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use protobuf::Message as _;
use raft::eraftpb::{
    ConfChange, ConfChangeType, ConfChangeV2, Entry, EntryType, Message, MessageType, Snapshot, SnapshotMetadata,
};
use raft::raw_node::RawNode;
use raft::{SnapshotStatus, StateRole, Storage as _};
use rocksdb::WriteBatch;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument as _;

use super::failover::{self, LeaderWatch};
use super::freeing::Freeing;
use super::handle::{Command, Leadership, Progress, Proposal, Role, Status};
use super::membership;
use super::pending::{Pending, Waiter};
use super::snapshot_schedule::SnapshotSchedule;
use super::tick_clock::TickClock;
use crate::config::Config;
use crate::data_dir::DataDirGuard;
use crate::disk_space::{self, DiskSpace};
use crate::error::{Error, Peer, Result};
use crate::metrics::Metrics;
use crate::state_machine::StateMachine;
use crate::storage::{self, RocksStorage};
use crate::transport::{Inbound, Links, Report, Transport};

/// How many queued messages or proposals one turn takes at most, so that a
/// flood of them cannot hold back the write.
const DRAIN_LIMIT: usize = 4096;

/// A write to the log taking longer than this is logged, and again every
/// such while until it ends (etcd warns of a slow fdatasync at 1 s too).
const SLOW_WRITE: Duration = Duration::from_secs(1);

/// Below this many proposals in a turn, the loop yields once before writing
/// to let more join (see `run`).
const FEW_PROPOSALS: usize = 32;

/// How long a clean stop waits for a snapshot being written (one of a
/// 100,000-service store takes a quarter of a second); swarmd's whole
/// stop has 10 s.
const SNAPSHOT_AT_STOP: Duration = Duration::from_secs(3);

pub(crate) struct ReadyLoop<S: StateMachine> {
    pub config: Config,
    pub raw: RawNode<RocksStorage>,
    pub machine: S,
    pub transport: Transport,
    pub pending: Pending<S::Output>,
    /// Changes waiting for the next write: the Ready's own, plus what
    /// applying entries after the last write changed (applied index, commit
    /// index, membership), all of which a restart could also rebuild from
    /// the log.
    pub batch: WriteBatch,
    pub proposals: mpsc::Receiver<Proposal<S::Output>>,
    pub commands: mpsc::Receiver<Command>,
    pub inbound: mpsc::Receiver<Inbound>,
    pub reports: mpsc::UnboundedReceiver<Report>,
    pub shutdown: oneshot::Receiver<()>,
    pub leadership: watch::Sender<Leadership>,
    pub metrics: Arc<Metrics>,
    /// Room on the data dir's disk, read at each tick.
    pub disk: Arc<DiskSpace>,
    /// The bytes of the proposals taken since the last write of entries,
    /// counted against the free disk until they are written (the loop
    /// takes many at once, and one write takes them all).
    pub unwritten: Vec<crate::disk_space::Queued>,
    /// Set when this member's own removal applied: it stops.
    pub removed: bool,
    /// When the snapshot being written off the loop was started, if one is.
    pub snapshot_started: Option<Instant>,
    /// Frees, off the loop, the disk what the log dropped still holds.
    pub freeing: Freeing,
    /// When the next snapshot is due.
    pub snapshot_schedule: SnapshotSchedule,
    /// Where snapshot writers report; the loop holds both ends.
    pub snapshots_written: mpsc::UnboundedSender<(SnapshotMetadata, Result<usize>)>,
    pub snapshots_done: mpsc::UnboundedReceiver<(SnapshotMetadata, Result<usize>)>,
    /// Watches for a leader whose process is gone (`failover`).
    pub leader_watch: LeaderWatch,
    /// When raft-rs's next tick falls due.
    pub ticks: TickClock,
    /// The test hooks of this member (production never sets one).
    pub links: Links,
    /// When each peer's last message arrived. raft-rs's own `recent_active`
    /// is cleared at every election timeout, so it reads "inactive" for a
    /// moment even for a healthy peer.
    pub last_heard: HashMap<u64, Instant>,
    /// Peers whose queue refused a message during a Ready: reported to
    /// raft-rs after `advance`, as nothing may step it between the two.
    pub unreachable: Vec<u64>,
    /// Checks, after each synced write and every second, that the data
    /// dir is still there.
    pub data_dir: DataDirGuard,
}

impl<S: StateMachine> ReadyLoop<S> {
    pub(crate) async fn run(mut self) -> Result<()> {
        // raft-rs panics where it cannot go on (a storage read that failed,
        // say), and so may a state machine with a bug: the member then
        // stops as on any error, saying why to its proposers and to those
        // watching its leadership, rather than vanish.
        let result = match AssertUnwindSafe(self.turns()).catch_unwind().await {
            Ok(result) => result,
            Err(panic) => Err(Error::Panicked(super::panic_message(panic.as_ref()))),
        };
        self.stop(result).await
    }

    /// Takes turns until a stop, a removal from the group, or an error.
    async fn turns(&mut self) -> Result<()> {
        let voters = self.raw.raft.prs().conf().voters().ids();
        let mut alone = voters.len() == 1 && voters.contains(self.config.id);
        self.lead_if_alone(&mut alone);
        loop {
            tokio::select! {
                // Shutdown first: a stop is never starved by load.
                biased;
                _ = &mut self.shutdown => break Ok(()),
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => break Ok(()),
                },
                Some(message) = self.inbound.recv() => self.on_message(message),
                Some(proposal) = self.proposals.recv() => self.on_proposal(proposal),
                Some(report) = self.reports.recv() => self.on_report(report),
                Some((meta, written)) = self.snapshots_done.recv() => {
                    if let Err(err) = self.on_snapshot_written(meta, written).await {
                        break Err(err);
                    }
                }
                // Committed entries past one Ready's share (a long log
                // replayed at start) wait for no event: go on at once.
                () = std::future::ready(()), if self.raw.has_ready() => {}
                () = tokio::time::sleep_until(self.ticks.next_due()) => {}
            }
            if let Some(pause) = self.links.take_loop_pause() {
                // A test's stand-in for a turn held up by a slow disk.
                tokio::time::sleep(pause).await;
            }
            if self.drain_queues() < FEW_PROPOSALS {
                // A small batch: let the proposers that the last turn's
                // replies woke run first, so that their next proposals join
                // this write instead of waiting a whole fsync for the next
                // one (16 in flight: 9.4 entries per fsync without, 15.6
                // with). Large batches do not wait: under heavy load the
                // yield queues the loop behind every proposer (p99 at 256 in
                // flight: 4.9 ms without, 13.5 ms with).
                tokio::task::yield_now().await;
                self.drain_queues();
            }
            // Biased, the select above takes messages and proposals first,
            // and a busy member nearly always has some: the ticks due (the
            // heartbeats, elections and quorum checks) and the snapshots
            // written are taken every turn, or under load a leader cut off
            // from its group would lead on, its proposals unanswered. Only
            // the ticks due by a message still queued wait: each message
            // brings the ticks due by the time it came when it is read
            // (`tick_clock`), so ticks trail time by no more than the age
            // of the oldest message queued.
            if self.inbound.is_empty() {
                self.tick_until(tokio::time::Instant::now());
            }
            if let Err(err) = self.data_dir.check_if_due() {
                break Err(err);
            }
            let sizes = || {
                let next_snapshot = self.snapshot_schedule.next_bytes(self.machine.size_hint());
                (next_snapshot, storage::unflushed_bytes(&self.raw.store().db()))
            };
            if let Some(crossed) = self.disk.refresh_if_due(sizes) {
                disk_space::report(self.config.id, &crossed);
            }
            // Short of room, writes are refused and nothing comes to apply:
            // the snapshot that frees the log starts from here.
            if self.disk.short_of_room()
                && let Err(err) = self.maybe_snapshot()
            {
                break Err(err);
            }
            if self.disk.short_of_room()
                && let Err(err) = self.free_log_behind_snapshot().await
            {
                break Err(err);
            }
            if let Err(err) = self.take_written_snapshots().await {
                break Err(err);
            }
            if let Err(err) = self.handle_ready().await {
                break Err(err);
            }
            self.lead_if_alone(&mut alone);
            self.publish_leadership();
            if self.removed {
                tracing::info!(
                    member = self.config.id,
                    "this member was removed from the group; stopping"
                );
                break Ok(());
            }
        }
    }

    /// Ends the member after its last turn, `result`: publishes that it
    /// leads no more, answers every proposal and command still waiting,
    /// and on a clean stop spares the next start some work.
    async fn stop(mut self, result: Result<()>) -> Result<()> {
        // A data dir removed a moment ago (its check runs every second)
        // holds what was acknowledged, wherever it went: a stop that did
        // not say so would read as clean.
        let result = result.and_then(|()| self.data_dir.check());
        if let Err(err) = &result {
            tracing::error!(member = self.config.id, %err, "raft member stops on an error");
        }
        // No longer leading, nor following anyone: the leader check turns
        // requests away from here from now on.
        let stopped = result.as_ref().err().map(ToString::to_string);
        self.leadership.send_modify(|seen| {
            seen.leader_id = None;
            seen.leader_addr = None;
            seen.is_leader = false;
            seen.caught_up = false;
            seen.stopped.clone_from(&stopped);
        });
        self.pending.fail_all(match stopped {
            None => "the raft member stopped before the entry applied".to_string(),
            Some(err) => format!("the raft member stopped on an error before the entry applied ({err})"),
        });
        // Proposals still queued never reached the log: say so, rather than
        // let their proposers see a dropped reply (an unknown outcome).
        // (`recv` rather than `try_recv`: it also waits for the sends that
        // had a slot reserved when the channel closed.)
        self.proposals.close();
        while let Some(proposal) = self.proposals.recv().await {
            let _ = proposal.reply.send(Err(Error::Stopped));
        }
        // Likewise membership changes still queued: never proposed. (Other
        // commands dropped unanswered read as Stopped already.)
        self.commands.close();
        while let Some(command) = self.commands.recv().await {
            if let Command::AddMember { reply, .. }
            | Command::RemoveMember { reply, .. }
            | Command::MoveMember { reply, .. } = command
            {
                let _ = reply.send(Err(Error::Stopped));
            }
        }
        if result.is_ok() {
            self.finish_snapshot_in_progress().await?;
            // Both only spare the next start some work: what they would
            // write is in the synced log already. On a full disk they fail,
            // and the stop is no less clean for it.
            let mut spare_the_next_start = || -> Result<()> {
                if !self.batch.is_empty() {
                    // What a restart would rebuild anyway, written so it need not.
                    let batch = std::mem::take(&mut self.batch);
                    self.raw.store().write(batch)?;
                }
                // A clean stop leaves no log to replay: the next start is faster.
                self.raw.store().flush()
            };
            if let Err(err) = spare_the_next_start() {
                tracing::warn!(member = self.config.id, %err,
                    "could not flush the log to tables at the stop: the next start replays it (nothing is lost)");
            }
        }
        // A compaction under way (the replaced snapshots', a large state's)
        // would hold the database, and the stop, until it ends: RocksDB
        // abandons it now, leaving its input as it was.
        self.raw.store().db().cancel_all_background_work(false);
        result
    }

    /// On a clean stop, waits (a while) for a snapshot being written to
    /// finish and makes it current, so that the next start restores it
    /// rather than replay the entries it covers.
    async fn finish_snapshot_in_progress(&mut self) -> Result<()> {
        if self.snapshot_started.is_none() {
            return Ok(());
        }
        match tokio::time::timeout(SNAPSHOT_AT_STOP, self.snapshots_done.recv()).await {
            Ok(Some((meta, written))) => self.on_snapshot_written(meta, written).await,
            // Abandoned: the data written so far is never pointed at.
            Ok(None) | Err(_) => Ok(()),
        }
    }

    /// Counts the ticks that fell due by `at`.
    fn tick_until(&mut self, at: tokio::time::Instant) {
        for _ in 0..self.ticks.due_by(at) {
            self.on_tick();
        }
    }

    fn on_tick(&mut self) {
        self.raw.tick();
        self.leader_watch.on_tick(&self.raw, &self.config);
        let last = self.raw.store().last();
        self.freeing
            .on_tick(last, self.disk.short_of_room(), self.disk.flush_frees_room());
    }

    /// Makes current the snapshots whose writing finished.
    async fn take_written_snapshots(&mut self) -> Result<()> {
        while let Ok((meta, written)) = self.snapshots_done.try_recv() {
            self.on_snapshot_written(meta, written).await?;
        }
        Ok(())
    }

    /// Takes everything already waiting into this turn; returns how many
    /// proposals that was.
    fn drain_queues(&mut self) -> usize {
        for _ in 0..DRAIN_LIMIT {
            let Ok(message) = self.inbound.try_recv() else { break };
            self.on_message(message);
        }
        let mut proposals = 0;
        while proposals < DRAIN_LIMIT {
            let Ok(proposal) = self.proposals.try_recv() else { break };
            self.on_proposal(proposal);
            proposals += 1;
        }
        while let Ok(report) = self.reports.try_recv() {
            self.on_report(report);
        }
        proposals
    }

    fn not_leader(&self) -> Error {
        let leadership = self.leadership.borrow();
        let leader = leadership.leader_id.map(|id| Peer {
            id,
            addr: leadership.leader_addr.clone().unwrap_or_default(),
        });
        Error::NotLeader { leader }
    }

    /// Alone in its group, no one can contest: leads now rather than after
    /// an election timeout (a single manager serves at once), once the
    /// entries committed before the start are applied: raft-rs does not
    /// campaign over a membership change it has yet to apply (the log of a
    /// member that moved holds one until the next snapshot). `alone` is
    /// cleared once done.
    fn lead_if_alone(&mut self, alone: &mut bool) {
        let log = &self.raw.raft.raft_log;
        if !*alone || log.applied < log.committed {
            return;
        }
        *alone = false;
        if self.raw.raft.state == StateRole::Leader {
            return;
        }
        if let Err(err) = self.raw.campaign() {
            tracing::warn!(member = self.config.id, %err, "could not campaign");
        }
    }

    fn on_proposal(&mut self, mut proposal: Proposal<S::Output>) {
        // Counted until written.
        self.unwritten.extend(proposal.queued.take());
        if self.raw.raft.state != StateRole::Leader {
            let _ = proposal.reply.send(Err(self.not_leader()));
            return;
        }
        let before = self.raw.raft.raft_log.last_index();
        match self.raw.propose(Vec::new(), proposal.data) {
            Ok(()) if self.raw.raft.raft_log.last_index() > before => {
                let index = self.raw.raft.raft_log.last_index();
                self.pending
                    .insert(index, self.raw.raft.term, Waiter::Proposal(proposal.reply));
                self.metrics.add_proposal();
            }
            Ok(()) | Err(raft::Error::ProposalDropped) => {
                let reason = "raft-rs dropped it (a leadership transfer is in progress)";
                let _ = proposal.reply.send(Err(Error::Dropped { reason }));
            }
            Err(err) => {
                let _ = proposal.reply.send(Err(err.into()));
            }
        }
    }

    fn on_message(
        &mut self,
        Inbound {
            from_addr,
            mut message,
            received,
        }: Inbound,
    ) {
        // Time as it was when the message came: a leader's heartbeat read
        // late, after a stall, still ends the silence it ended then.
        self.tick_until(received);
        if !self.admits_sender(message.from) {
            tracing::debug!(member = self.config.id, from = message.from, kind = ?message.get_msg_type(),
                "a message from a member of no configuration this member knows, while it has a live leader: dropped");
            self.metrics.add_message_from_stranger();
            return;
        }
        self.transport.learn(message.from, &from_addr);
        self.last_heard.insert(message.from, received.into_std());
        if message.get_msg_type() == MessageType::MsgHeartbeat {
            // A leader tells a follower to commit up to what it believes the
            // follower holds. Past this member's last entry, its log is not
            // what the leader thinks (lost: a wiped data dir rejoining under
            // its old id), and raft-rs would panic, as SwarmKit's members
            // did. Committing up to the last entry instead could commit
            // entries the leader has replaced; so such a heartbeat commits
            // nothing, and the appends that follow repair the log and carry
            // the commit with entries that are known to match.
            if message.commit > self.raw.raft.raft_log.last_index() {
                message.commit = self.raw.raft.raft_log.committed;
            }
        }
        failover::admit_vote(&self.raw, &self.config, &mut message);
        if let Err(err) = self.raw.step(message) {
            tracing::debug!(member = self.config.id, %err, "raft message not stepped");
        }
    }

    /// Whether a message from `from` is stepped. raft-rs trusts every
    /// message: a heartbeat of a higher term from anyone who knows the
    /// cluster's id would make this member follow it. So one from outside
    /// the configuration this member knows is dropped while it leads or
    /// hears its leader (raft-rs's lease): the group is fine without it.
    /// Otherwise it is taken: a member that missed the change adding a
    /// new leader hears from it only so (and from then on it is its
    /// leader, taken as such), and a member not yet in any configuration
    /// (added, before its first snapshot) hears from no one else.
    ///
    /// A guard, not a lock: while a member has no live leader (an
    /// election, a leader gone) a stranger's heartbeat still takes it
    /// over. Only a single manager, which always leads, is safe from that;
    /// proving who sends a message is the certificates' job, with TLS.
    /// (Dropping a message is always safe in Raft. A handover to a member
    /// just added waits for the followers that have yet to apply its
    /// addition: up to an election timeout.)
    fn admits_sender(&self, from: u64) -> bool {
        let raft = &self.raw.raft;
        let prs = raft.prs();
        if prs.get(from).is_some() || prs.iter().next().is_none() || from == raft.leader_id {
            return true;
        }
        let leads = raft.state == StateRole::Leader;
        let hears_its_leader = raft.leader_id != raft::INVALID_ID && raft.election_elapsed < raft.election_timeout();
        !(leads || hears_its_leader)
    }

    fn on_report(&mut self, report: Report) {
        match report {
            Report::Unreachable(peer) => self.raw.report_unreachable(peer),
            Report::Snapshot { to, delivered } => {
                let status = if delivered {
                    SnapshotStatus::Finish
                } else {
                    SnapshotStatus::Failure
                };
                self.raw.report_snapshot(to, status);
            }
            Report::LeaderProbe { leader, term, refused } => {
                if self
                    .leader_watch
                    .on_probe(&mut self.raw, &self.config, leader, term, refused)
                {
                    self.metrics.add_fast_failover();
                }
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::AddMember { id, addr, reply } => {
                let result = self.check_add(id, &addr);
                self.propose_conf_change(result.map(|()| membership::add_member_change(id, &addr)), reply);
            }
            Command::MoveMember { id, addr, reply } => match self.check_move(id, &addr) {
                // Nothing to change: no entry.
                Ok(false) => {
                    let _ = reply.send(Ok(self.raw.raft.raft_log.applied));
                }
                result => {
                    let change = result.map(|_| membership::add_member_change(id, &addr));
                    self.propose_conf_change(change, reply);
                }
            },
            Command::RemoveMember { id, reply } => {
                let result = self
                    .check_leader()
                    .and_then(|()| membership::check_removal(&self.raw, id, |peer| self.recently_heard(peer)));
                self.propose_conf_change(result.map(|()| membership::remove_member_change(id)), reply);
            }
            Command::TransferLeadership { to, reply } => {
                let _ = reply.send(self.start_transfer(to));
            }
            Command::Status { reply } => {
                let _ = reply.send(self.status());
            }
            Command::SetLogRetention {
                snapshot_interval,
                keep_entries,
                reply,
            } => {
                let _ = reply.send(self.set_log_retention(snapshot_interval, keep_entries));
            }
        }
    }

    fn set_log_retention(&mut self, snapshot_interval: u64, keep_entries: u64) -> Result<()> {
        if snapshot_interval == 0 {
            return Err(Error::Config("snapshot_interval must be at least 1".into()));
        }
        let unchanged = (self.config.snapshot_interval, self.config.keep_entries) == (snapshot_interval, keep_entries);
        if !unchanged {
            tracing::info!(
                member = self.config.id,
                snapshot_interval,
                keep_entries,
                "log retention changed"
            );
            self.config.snapshot_interval = snapshot_interval;
            self.config.keep_entries = keep_entries;
            self.snapshot_schedule.set_interval(snapshot_interval);
        }
        Ok(())
    }

    /// Whether `peer` sent anything within the last election timeout.
    fn recently_heard(&self, peer: u64) -> bool {
        self.last_heard
            .get(&peer)
            .is_some_and(|at| at.elapsed() < self.config.election_timeout())
    }

    fn check_leader(&self) -> Result<()> {
        if self.raw.raft.state == StateRole::Leader {
            Ok(())
        } else {
            Err(self.not_leader())
        }
    }

    fn check_add(&self, id: u64, addr: &str) -> Result<()> {
        self.check_leader()?;
        // The new member needs a snapshot, and every member a log entry.
        self.disk.check()?;
        if id == 0 {
            return Err(Error::Membership("member id 0 is reserved".into()));
        }
        let members = self.raw.store().members();
        if members.contains_key(&id) {
            return Err(Error::Membership(format!("member {id} is already in the group")));
        }
        membership::check_address_free(members, id, addr)
    }

    /// Whether member `id` may move to `addr`, and needs to.
    fn check_move(&self, id: u64, addr: &str) -> Result<bool> {
        self.check_leader()?;
        let members = self.raw.store().members();
        let Some(current) = members.get(&id) else {
            return Err(Error::Membership(format!("member {id} is not in the group")));
        };
        membership::check_address_free(members, id, addr)?;
        let needed = current != addr;
        if needed {
            self.disk.check()?;
        }
        Ok(needed)
    }

    fn propose_conf_change(&mut self, change: Result<ConfChange>, reply: oneshot::Sender<Result<u64>>) {
        let change = match change {
            Ok(change) => change,
            Err(err) => {
                let _ = reply.send(Err(err));
                return;
            }
        };
        if self.raw.raft.has_pending_conf() {
            let _ = reply.send(Err(Error::Membership(
                "another membership change is in progress".into(),
            )));
            return;
        }
        let before = self.raw.raft.raft_log.last_index();
        match self.raw.propose_conf_change(Vec::new(), change) {
            Ok(()) if self.raw.raft.raft_log.last_index() > before => {
                let index = self.raw.raft.raft_log.last_index();
                self.pending
                    .insert(index, self.raw.raft.term, Waiter::ConfChange(reply));
            }
            Ok(()) => {
                let _ = reply.send(Err(Error::Dropped {
                    reason: "raft-rs dropped the membership change",
                }));
            }
            Err(err) => {
                let _ = reply.send(Err(err.into()));
            }
        }
    }

    fn start_transfer(&mut self, to: Option<u64>) -> Result<u64> {
        self.check_leader()?;
        let raft = &self.raw.raft;
        let voters: Vec<u64> = raft
            .prs()
            .conf()
            .voters()
            .ids()
            .iter()
            .filter(|&id| id != raft.id)
            .collect();
        let target = match to {
            Some(id) if voters.contains(&id) => id,
            Some(id) => return Err(Error::Transfer(format!("member {id} is not another voting member"))),
            // The most up-to-date member that recently answered takes over
            // fastest: raft-rs sends it what it lacks, then MsgTimeoutNow.
            // One not heard from for an election timeout would most likely
            // never take over (a just-elected leader has heard its voters).
            None => voters
                .iter()
                .filter(|&&id| self.recently_heard(id))
                .filter_map(|&id| raft.prs().get(id).map(|p| (p.matched, id)))
                .max()
                .map(|(_, id)| id)
                .ok_or_else(|| Error::Transfer("no other voting member answered recently".into()))?,
        };
        tracing::info!(member = self.config.id, to = target, "transferring leadership");
        self.raw.transfer_leader(target);
        Ok(target)
    }

    fn status(&self) -> Status {
        let raft = &self.raw.raft;
        let storage = self.raw.store();
        Status {
            id: raft.id,
            role: match raft.state {
                StateRole::Leader => Role::Leader,
                StateRole::Follower => Role::Follower,
                StateRole::Candidate => Role::Candidate,
                StateRole::PreCandidate => Role::PreCandidate,
            },
            term: raft.term,
            leader_id: (raft.leader_id != raft::INVALID_ID).then_some(raft.leader_id),
            commit: raft.raft_log.committed,
            applied: raft.raft_log.applied,
            first_index: raft.raft_log.first_index(),
            last_index: raft.raft_log.last_index(),
            snapshot_index: storage.snapshot_meta().index,
            members: storage.members().clone(),
            progress: if raft.state == StateRole::Leader {
                raft.prs()
                    .iter()
                    .map(|(&id, p)| {
                        (
                            id,
                            Progress {
                                matched: p.matched,
                                active: id == raft.id || self.recently_heard(id),
                            },
                        )
                    })
                    .collect()
            } else {
                BTreeMap::new()
            },
        }
    }

    /// Handles one `Ready` in the order raft-rs documents, each step where
    /// it must be for the reason given beside it.
    async fn handle_ready(&mut self) -> Result<()> {
        if !self.raw.has_ready() {
            return Ok(());
        }
        self.metrics.add_ready_cycle();
        let ready = self.raw.ready();
        let span = tracing::debug_span!(
            "raft.ready",
            member = self.config.id,
            entries = ready.entries().len(),
            committed = ready.committed_entries().len(),
            messages = ready.messages().len() + ready.persisted_messages().len(),
            fsync_us = tracing::field::Empty,
        );
        self.process_ready(ready).instrument(span).await
    }

    async fn process_ready(&mut self, mut ready: raft::Ready) -> Result<()> {
        // 1. A leader's appends go out before its own write: they promise
        //    nothing about this member's disk (raft-rs counts the leader
        //    toward a quorum only once `advance` says its write is done), and
        //    so the followers' fsyncs overlap the leader's (Raft thesis 10.2.1).
        self.send(ready.take_messages());

        // 2. A snapshot from the leader replaces the state machine and the
        //    log before any entry after it is applied.
        if !ready.snapshot().is_empty() {
            self.install_snapshot(ready.snapshot())?;
        }

        // 3. Committed entries apply now: raft-rs hands out only entries
        //    already on this member's disk and a majority's.
        self.apply(ready.take_committed_entries())?;

        // 4. New entries and the hard state (term, vote, commit) join the
        //    batch, and 5. the batch is written with one fsync: everything
        //    this turn gathered shares it.
        let entries = ready.entries().len() as u64;
        let store = self.raw.mut_store();
        store.append(&mut self.batch, ready.entries())?;
        if let Some(hard_state) = ready.hs() {
            store.set_hard_state(&mut self.batch, hard_state.clone())?;
        }
        // raft-rs asks for a sync with entries, a snapshot, or a new term
        // or vote; a commit index alone a restart rebuilds.
        let micros = self.write_batch(ready.must_sync(), entries).await?;
        // Written: counted from here on as the free space read after.
        self.unwritten.clear();
        tracing::Span::current().record("fsync_us", micros);

        // 6. Votes and append acknowledgements promise what is now on disk:
        //    only now may they go.
        self.send(ready.take_persisted_messages());

        // 7. Tell raft-rs the write is done. What it hands back became
        //    possible only now: a single member commits its own entries
        //    here, and replies that waited on this write go out.
        let mut light = self.raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            // Written with the next batch; a restart takes the larger of the
            // stored commit and applied indexes (see `RocksStorage`).
            self.raw.mut_store().set_commit(&mut self.batch, commit)?;
        }
        self.send(light.take_messages());
        self.apply(light.take_committed_entries())?;
        self.raw.advance_apply();
        for peer in std::mem::take(&mut self.unreachable) {
            self.raw.report_unreachable(peer);
        }
        self.maybe_snapshot()
    }

    /// Writes the batch, if anything is in it; synced when the Ready says
    /// a message or an acknowledgement will depend on it. Returns the
    /// microseconds the write took.
    async fn write_batch(&mut self, sync: bool, entries: u64) -> Result<u64> {
        if self.batch.is_empty() {
            return Ok(0);
        }
        let batch = std::mem::take(&mut self.batch);
        self.disk.note_written(batch.size_in_bytes() as u64);
        let db = self.raw.store().db();
        let started = Instant::now();
        // The write blocks on the disk: off the async workers, while this
        // loop waits (nothing may reach raft-rs until it is done).
        let mut write = tokio::task::spawn_blocking(move || {
            if sync {
                storage::write_synced(&db, batch)
            } else {
                db.write(batch).map_err(Error::from)
            }
        });
        // Nothing else moves meanwhile, heartbeats included: a disk that
        // hangs is said so in the log, every second, rather than silently.
        let mut slow = false;
        let written = loop {
            match tokio::time::timeout(SLOW_WRITE, &mut write).await {
                Ok(joined) => break joined,
                Err(_) => {
                    slow = true;
                    tracing::warn!(member = self.config.id, waited = ?started.elapsed(), entries,
                        "a write to the raft log has not finished: the disk is slow or hangs");
                }
            }
        };
        if slow {
            tracing::warn!(member = self.config.id, took = ?started.elapsed(), "the slow write finished");
        }
        written.map_err(|err| Error::Corrupt(format!("the write task failed: {err}")))??;
        if sync {
            // What depends on this write (acknowledgements, replies) must
            // not go out if it landed in files no path reaches any more.
            self.data_dir.check()?;
            self.free_what_is_dropped();
        }
        let micros = started.elapsed().as_micros() as u64;
        if sync {
            self.metrics.add_fsync(micros, entries);
        }
        Ok(micros)
    }

    /// Once a compaction of the log or a new snapshot is on disk, frees
    /// what it dropped: the log's emptied tables, and those of replaced
    /// snapshots once they outweigh the current one.
    fn free_what_is_dropped(&mut self) {
        let compact = self.snapshot_schedule.take_compaction_due();
        self.freeing.after_sync(self.raw.store().truncated_index(), compact);
    }

    fn send(&mut self, mut messages: Vec<Message>) {
        if messages.is_empty() {
            return;
        }
        self.leader_watch.mark_votes(&mut messages);
        self.unreachable.extend(self.transport.send(messages));
    }

    fn install_snapshot(&mut self, snapshot: &Snapshot) -> Result<()> {
        let (members, state) = membership::decode_snapshot(&snapshot.data)?;
        self.machine
            .restore(&state)
            .map_err(|err| Error::Corrupt(format!("the state machine refused the leader's snapshot: {err}")))?;
        let index = snapshot.get_metadata().index;
        // Its last entries may have been Raft's own.
        self.machine.skip(index);
        tracing::info!(
            member = self.config.id,
            index,
            bytes = snapshot.data.len(),
            "installed a snapshot"
        );
        self.raw
            .mut_store()
            .install_snapshot(&mut self.batch, snapshot, members)?;
        self.transport.set_members(self.raw.store().members());
        // Our proposals at or before the snapshot's index were either in it
        // or not: no way to tell. Those after it may still apply.
        self.pending.pass_over(index);
        self.metrics.add_snapshot_installed();
        // The next snapshot is weighed against this one, as against one
        // this member wrote (and the room it needs reckoned from it).
        self.snapshot_schedule.written(snapshot.data.len());
        Ok(())
    }

    fn apply(&mut self, entries: Vec<Entry>) -> Result<()> {
        let Some(last) = entries.last().map(|entry| entry.index) else {
            return Ok(());
        };
        let count = entries.len() as u64;
        let bytes = entries.iter().map(|entry| entry.data.len() as u64).sum();
        self.snapshot_schedule.applied(bytes);
        // Proposals go to the machine in runs, as many as follow each other;
        // Raft's own entries between them end a run.
        let mut run = Vec::new();
        for entry in entries {
            let (index, term) = (entry.index, entry.term);
            let kind = entry.get_entry_type();
            if kind == EntryType::EntryNormal && !entry.data.is_empty() {
                run.push(entry);
                continue;
            }
            self.apply_run(&mut run)?;
            match kind {
                EntryType::EntryNormal => {
                    self.machine.skip(index);
                    // A new leader's no-op, or a conf change raft-rs refused
                    // because another was pending (it appends an empty entry
                    // in its place).
                    if let Some(waiter) = self.pending.take_applied(index, term) {
                        waiter.fail(Error::Membership("another membership change was in progress".into()));
                    }
                }
                EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => {
                    let outcome = self.apply_conf_change(&entry);
                    // Before the reply: what it answers is in the machine.
                    self.machine.skip(index);
                    if let Some(Waiter::ConfChange(reply)) = self.pending.take_applied(index, term) {
                        let _ = reply.send(outcome.map(|()| index));
                    }
                }
            }
        }
        self.apply_run(&mut run)?;
        self.raw.mut_store().set_applied(&mut self.batch, last)?;
        self.metrics.add_applied(count);
        Ok(())
    }

    /// Applies a run of committed proposals to the machine and answers
    /// their proposers; leaves `run` empty.
    fn apply_run(&mut self, run: &mut Vec<Entry>) -> Result<()> {
        if run.is_empty() {
            return Ok(());
        }
        let entries: Vec<(u64, &[u8])> = run.iter().map(|e| (e.index, &e.data[..])).collect();
        let outputs = self.machine.apply_run(&entries);
        if outputs.len() != run.len() {
            // Which entries the outputs belong to is unknowable: stopping is
            // the only answer that does not mislead a proposer.
            return Err(Error::Machine(format!(
                "apply_run returned {} outputs for the {} entries {}..={}",
                outputs.len(),
                run.len(),
                run[0].index,
                run[run.len() - 1].index
            )));
        }
        for (entry, output) in run.drain(..).zip(outputs) {
            if let Some(Waiter::Proposal(reply)) = self.pending.take_applied(entry.index, entry.term) {
                let _ = reply.send(Ok((entry.index, output)));
            }
        }
        Ok(())
    }

    /// Applies a committed membership change to raft-rs, the stored conf
    /// state and member list, and the transport. A change raft-rs refuses is
    /// refused the same way on every member, so it is reported, not fatal.
    fn apply_conf_change(&mut self, entry: &Entry) -> Result<()> {
        let change = if entry.get_entry_type() == EntryType::EntryConfChange {
            ConfChange::parse_from_bytes(&entry.data)?
        } else {
            // Never proposed by us; decoded so the group stays in step if a
            // future version does.
            let v2 = ConfChangeV2::parse_from_bytes(&entry.data)?;
            let conf_state = self.raw.apply_conf_change(&v2)?;
            return self.raw.mut_store().set_conf_state(&mut self.batch, conf_state);
        };
        let conf_state = match self.raw.apply_conf_change(&change) {
            Ok(conf_state) => conf_state,
            Err(err) => {
                tracing::warn!(member = self.config.id, %err, "membership change refused by raft-rs");
                return Err(err.into());
            }
        };
        let store = self.raw.mut_store();
        store.set_conf_state(&mut self.batch, conf_state)?;
        match change.get_change_type() {
            ConfChangeType::AddNode | ConfChangeType::AddLearnerNode => {
                let addr = membership::added_member_addr(&change)?;
                // Adding a member already in the group only moves it.
                match store.members().get(&change.node_id) {
                    Some(old) => tracing::info!(
                        member = self.config.id,
                        moved = change.node_id,
                        from = old,
                        to = addr,
                        "member address changed"
                    ),
                    None => tracing::info!(member = self.config.id, added = change.node_id, addr, "member added"),
                }
                store.put_member(&mut self.batch, change.node_id, &addr)?;
            }
            ConfChangeType::RemoveNode => {
                tracing::info!(member = self.config.id, removed = change.node_id, "member removed");
                store.remove_member(&mut self.batch, change.node_id)?;
                if change.node_id == self.config.id {
                    self.removed = true;
                }
            }
        }
        self.transport.set_members(self.raw.store().members());
        Ok(())
    }

    /// Starts a snapshot at the applied index every `snapshot_interval`
    /// entries, or when raft-rs needs one the stored snapshot cannot serve.
    /// The state is captured here; it is serialized and written on a
    /// blocking thread, and [`ReadyLoop::on_snapshot_written`] makes it
    /// current. One at a time.
    fn maybe_snapshot(&mut self) -> Result<()> {
        if self.removed {
            // Out of the group, this member stops now. A snapshot taken
            // past its own removal would hide that removal from its next
            // start, which would then run on as a member of nothing.
            return Ok(());
        }
        let store = self.raw.store();
        let wanted = store.take_snapshot_request();
        let applied = self.raw.raft.raft_log.applied;
        let due = self.snapshot_schedule.due(applied, store.snapshot_meta().index)
            // Short of room, with a log that a snapshot frees: the way out.
            || (self.disk.short_of_room()
                && self
                    .snapshot_schedule
                    .frees_log(self.config.keep_bytes, self.machine.size_hint()));
        // A request dropped while a snapshot is in progress comes again:
        // raft-rs asks at each attempt to catch the member up.
        if self.snapshot_started.is_some() || !(due || wanted) || applied <= store.snapshot_meta().index {
            return Ok(());
        }
        // No room for it: writing it would stop the member. It comes due
        // again once there is room.
        if !self.disk.room_for_snapshot() {
            return Ok(());
        }
        let mut meta = SnapshotMetadata {
            index: applied,
            term: store.term(applied)?,
            ..Default::default()
        };
        meta.set_conf_state(store.conf_state().clone());
        let members = store.members().clone();
        let writer = self.machine.snapshot();
        let db = store.db();
        let done = self.snapshots_written.clone();
        self.snapshot_started = Some(Instant::now());
        self.snapshot_schedule.started();
        tokio::task::spawn_blocking(move || {
            let written = writer()
                .map_err(|err| Error::Corrupt(format!("the state machine cannot write a snapshot: {err}")))
                .and_then(|state| {
                    let data = membership::encode_snapshot(&members, state);
                    storage::write_snapshot_data(&db, meta.index, &data).map(|()| data.len())
                });
            // The loop may have stopped meanwhile; then no one needs it.
            let _ = done.send((meta, written));
        });
        Ok(())
    }

    /// Short of room, lets go of the entries kept behind the current
    /// snapshot for slow followers but for those `keep_bytes` weigh (as a
    /// snapshot taken now would), and writes that at once: with writes
    /// refused nothing comes to apply, so no newer snapshot would, and
    /// what they hold (up to the snapshot's weight) would stay. A no-op
    /// once done.
    async fn free_log_behind_snapshot(&mut self) -> Result<()> {
        let keep = self.config.keep(0);
        if !self.raw.mut_store().compact_behind_snapshot(&mut self.batch, keep)? {
            return Ok(());
        }
        self.write_batch(true, 0).await?;
        tracing::info!(
            member = self.config.id,
            truncated = self.raw.store().truncated_index(),
            "short of room: the log kept behind the snapshot for slow followers is let go"
        );
        Ok(())
    }

    /// Makes a snapshot written off the loop current, compacts the log
    /// behind it, and writes that at once.
    async fn on_snapshot_written(&mut self, meta: SnapshotMetadata, written: Result<usize>) -> Result<()> {
        let elapsed = self
            .snapshot_started
            .take()
            .map(|started| started.elapsed())
            .unwrap_or_default();
        let index = meta.index;
        match written {
            Ok(bytes) => {
                // Short of room, the log behind it goes but for the
                // entries `keep_bytes` weigh (a follower further behind
                // gets a snapshot), and the replaced snapshots at once:
                // kept as long as the snapshot weighs, the log it lets go
                // could be less than the table it adds.
                let low = self.disk.short_of_room();
                let keep = self.config.keep(if low { 0 } else { bytes as u64 });
                let current = self.raw.mut_store().snapshot_written(&mut self.batch, meta, keep)?;
                if current {
                    self.snapshot_schedule.written(bytes);
                    self.disk.snapshot_written();
                    if low {
                        self.snapshot_schedule.compact_after_next_write();
                    }
                } else {
                    // One from the leader was installed meanwhile, and
                    // counted then; what this one covered is behind it.
                    self.snapshot_schedule.superseded();
                }
                self.write_batch(true, 0).await?;
                if current {
                    self.metrics.add_snapshot_taken();
                    tracing::info!(member = self.config.id, index, bytes, ?elapsed, "snapshot taken");
                } else {
                    tracing::info!(
                        member = self.config.id,
                        index,
                        "snapshot dropped: one installed from the leader meanwhile covers it"
                    );
                }
            }
            // RocksDB refused the write: as any failed write, that stops
            // the member (what it wrote may be torn, and a retry could make
            // a later write look durable when it is not).
            Err(err @ Error::Storage(_)) => return Err(err),
            Err(err) => {
                self.snapshot_schedule.failed();
                tracing::error!(member = self.config.id, index, %err, "snapshot failed; retrying later");
            }
        }
        Ok(())
    }

    /// Publishes a change of leader, term or catching up (called after
    /// each Ready is applied); when this member stops leading, its waiting
    /// proposals learn their outcome is unknown.
    fn publish_leadership(&mut self) {
        let raft = &self.raw.raft;
        let leader_id = (raft.leader_id != raft::INVALID_ID).then_some(raft.leader_id);
        let seen = Leadership {
            term: raft.term,
            leader_id,
            leader_addr: leader_id.and_then(|id| self.raw.store().members().get(&id).cloned()),
            is_leader: raft.state == StateRole::Leader,
            caught_up: leads_caught_up(raft),
            stopped: None,
        };
        let previous = self.leadership.borrow().clone();
        if previous == seen {
            return;
        }
        if previous.leader_id != seen.leader_id {
            self.metrics.add_leader_change();
            tracing::info!(member = self.config.id, term = seen.term, leader = ?seen.leader_id, "leader changed");
        }
        if previous.is_leader && !seen.is_leader {
            self.pending
                .fail_all("this member lost leadership before the entry committed");
        }
        self.leadership.send_replace(seen);
    }
}

/// Whether `raft` leads and has applied an entry of its own term (see
/// [`Leadership::caught_up`]): every entry before that one was committed,
/// and so applied, before it.
fn leads_caught_up<T: raft::Storage>(raft: &raft::Raft<T>) -> bool {
    raft.state == StateRole::Leader
        && raft
            .raft_log
            .term(raft.raft_log.applied)
            .is_ok_and(|term| term == raft.term)
}

#[cfg(test)]
mod tests {
    use raft::eraftpb::{Entry, Message, MessageType};
    use raft::storage::MemStorage;

    use super::*;

    /// Writes what raft-rs holds unstable to its storage, as the Ready loop
    /// does.
    fn persist(raft: &mut raft::Raft<MemStorage>) {
        let entries = raft.raft_log.unstable_entries().to_vec();
        let Some(last) = entries.last().map(|entry| (entry.index, entry.term)) else {
            return;
        };
        raft.mut_store().wl().append(&entries).expect("append");
        raft.raft_log.stable_entries(last.0, last.1);
        raft.on_persist_entries(last.0, last.1);
    }

    /// A member of three elected in term 2 over an entry of term 1 that it
    /// does not know to be committed: it leads at once, but has caught up
    /// only once its own term's first entry is committed and applied.
    #[test]
    fn a_new_leader_catches_up_when_an_entry_of_its_term_is_applied() {
        let storage = MemStorage::new_with_conf_state((vec![1, 2, 3], vec![]));
        let config = raft::Config {
            id: 1,
            ..Default::default()
        };
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let mut raft = raft::Raft::new(&config, storage, &logger).expect("raft");
        // Term 1: an entry from a leader that died before telling anyone
        // it committed.
        raft.become_follower(1, 2);
        let mut append = Message::default();
        append.set_msg_type(MessageType::MsgAppend);
        append.from = 2;
        append.to = 1;
        append.term = 1;
        append.log_term = 0;
        append.index = 0;
        append.commit = 0;
        let entry = Entry {
            term: 1,
            index: 1,
            data: b"acknowledged by the old leader".to_vec().into(),
            ..Default::default()
        };
        append.set_entries(vec![entry].into());
        raft.step(append).expect("append");
        persist(&mut raft);
        assert!(!leads_caught_up(&raft), "a follower");

        raft.become_candidate();
        raft.become_leader();
        assert_eq!((raft.term, raft.raft_log.last_index()), (2, 2));
        assert!(
            !leads_caught_up(&raft),
            "leads, but the entry of term 1 is not known committed"
        );

        // A follower takes the leader's first entry of term 2: it commits,
        // and the entry of term 1 with it.
        let last = raft.raft_log.last_index();
        persist(&mut raft);
        let mut acknowledged = Message::default();
        acknowledged.set_msg_type(MessageType::MsgAppendResponse);
        acknowledged.from = 2;
        acknowledged.to = 1;
        acknowledged.term = 2;
        acknowledged.index = last;
        raft.step(acknowledged).expect("acknowledgement");
        assert_eq!(raft.raft_log.committed, last);
        raft.commit_apply(1);
        assert!(
            !leads_caught_up(&raft),
            "the entry of term 1 is applied, not yet the leader's own"
        );
        raft.commit_apply(last);
        assert!(leads_caught_up(&raft));
    }
}
