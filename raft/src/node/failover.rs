//! Failover in a few heartbeats, not an election timeout, when the leader's
//! process is gone.
//!
//! A follower that has not heard from its leader for
//! [`SILENT_HEARTBEATS`] heartbeats connects to the leader's address. A
//! refused connection means nothing listens there any more: the process
//! died or stopped. The follower then campaigns at once, as if the leader
//! had handed over (raft-rs's MsgTimeoutNow), so the other members grant
//! their votes without waiting out the lease that CheckQuorum gives a live
//! leader. Raft's safety does not depend on the lease: votes still go once
//! per term and only to a log at least as up to date as the voter's.
//!
//! A connection that times out (a partition, a hung host) proves nothing,
//! and the usual election timeout applies. Followers campaign one after
//! the other, by rank among the remaining voters, one tick apart, so two of
//! them do not split the vote.

use std::time::Duration;

use raft::eraftpb::{Message, MessageType};
use raft::raw_node::RawNode;
use raft::{INVALID_ID, StateRole};
use tokio::sync::mpsc;

use crate::config::Config;
use crate::storage::RocksStorage;
use crate::transport::Report;

/// Heartbeats missed before the leader's address is probed.
pub(crate) const SILENT_HEARTBEATS: usize = 3;

/// How long the probe's connection attempt may take.
const PROBE_TIMEOUT: Duration = Duration::from_millis(200);

pub(crate) struct LeaderWatch {
    reports: mpsc::UnboundedSender<Report>,
    probing: bool,
}

impl LeaderWatch {
    pub(crate) fn new(reports: mpsc::UnboundedSender<Report>) -> Self {
        LeaderWatch {
            reports,
            probing: false,
        }
    }

    fn silent_ticks(config: &Config) -> usize {
        SILENT_HEARTBEATS * config.heartbeat_ticks.max(1)
    }

    /// On each tick: probes a leader that has gone silent, unless a probe
    /// is already out.
    pub(crate) fn on_tick(&mut self, raw: &RawNode<RocksStorage>, config: &Config) {
        let raft = &raw.raft;
        if !config.fast_failover
            || self.probing
            || raft.state != StateRole::Follower
            || raft.leader_id == INVALID_ID
            || raft.election_elapsed < Self::silent_ticks(config)
        {
            return;
        }
        let Some(addr) = raw.store().members().get(&raft.leader_id).cloned() else {
            return;
        };
        // Rank among the voters left if the leader is gone: the first
        // campaigns at once, the next a tick later, and so on.
        let rank = raft
            .prs()
            .conf()
            .voters()
            .ids()
            .iter()
            .filter(|&id| id != raft.leader_id && id < raft.id)
            .count() as u32;
        let stagger = config.tick * rank;
        let (leader, term, reports) = (raft.leader_id, raft.term, self.reports.clone());
        self.probing = true;
        tokio::spawn(async move {
            let attempt = tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(&addr)).await;
            let refused = matches!(attempt, Ok(Err(err)) if err.kind() == std::io::ErrorKind::ConnectionRefused);
            if refused {
                tokio::time::sleep(stagger).await;
            }
            let _ = reports.send(Report::LeaderProbe { leader, term, refused });
        });
    }

    /// On a probe's answer: the message that starts the campaign, when the
    /// leader refused the connection and this member has heard from no
    /// leader since: it still follows the silent one, or it follows none
    /// because a member ranked before it campaigned and lost (its log was
    /// behind this one's, which is why this one must try next).
    pub(crate) fn on_probe(
        &mut self,
        raw: &RawNode<RocksStorage>,
        config: &Config,
        leader: u64,
        term: u64,
        refused: bool,
    ) -> Option<Message> {
        self.probing = false;
        let raft = &raw.raft;
        let still_silent = (raft.leader_id == leader && raft.election_elapsed >= Self::silent_ticks(config))
            || raft.leader_id == INVALID_ID;
        if !refused || raft.state != StateRole::Follower || raft.term < term || !still_silent {
            return None;
        }
        tracing::info!(
            member = raft.id,
            leader,
            term,
            "the leader's address refuses connections; campaigning now"
        );
        let mut timeout_now = Message::default();
        timeout_now.set_msg_type(MessageType::MsgTimeoutNow);
        timeout_now.from = leader;
        timeout_now.to = raft.id;
        timeout_now.term = raft.term;
        Some(timeout_now)
    }
}
