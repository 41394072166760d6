//! Failover in a few heartbeats, not an election timeout, when the leader's
//! process is gone.
//!
//! A follower that has not heard from its leader for
//! [`SILENT_HEARTBEATS`] heartbeats connects to the leader's address. A
//! refused connection means nothing listens there any more: the process
//! died or stopped. The follower then campaigns at once, and the other
//! members grant their votes without waiting out the lease that
//! CheckQuorum gives a live leader, as they would for a handover (raft-rs's
//! `CAMPAIGN_TRANSFER`). Raft's safety does not depend on the lease: votes
//! still go once per term and only to a log at least as up to date as the
//! voter's.
//!
//! A connection that times out (a partition, a hung host) proves nothing,
//! and the usual election timeout applies. Followers campaign one after
//! the other, by rank among the remaining voters, one tick apart, so that
//! two of them seldom split the vote (two pre-candidates grant each other's
//! pre-votes, so a split can still happen; the election timeout settles
//! it).
//!
//! A refused connection does not prove the leader dead to everyone,
//! though: a firewall that rejects one follower's connections leaves the
//! leader alive to the others. So a failover campaign's vote requests say
//! what they are ([`FAILOVER_CAMPAIGN`]), and a voter takes one as forced
//! only if the leader is silent to it too; otherwise as a plain vote, which
//! its lease drops. Without that, the cut-off follower would take
//! leadership through the others, the old leader (cut off from it the same
//! way) take it back, and leadership flap for as long as the cut lasts.
//! Only the campaign a refused probe starts is marked, not the elections
//! its candidate starts later by timeout. And it starts with a pre-vote
//! (when PreVote is on, the default), so a campaign whose pre-vote cannot
//! win raises no term: a higher term left on the cut-off follower would
//! depose the live leader once the cut heals.

use std::time::Duration;

use raft::eraftpb::{Message, MessageType};
use raft::raw_node::RawNode;
use raft::{CAMPAIGN_TRANSFER, INVALID_ID, StateRole};
use tokio::sync::mpsc;

use crate::config::Config;
use crate::storage::RocksStorage;
use crate::transport::{Links, Report};

/// Heartbeats missed before the leader's address is probed.
pub(crate) const SILENT_HEARTBEATS: usize = 3;

/// Heartbeats a voter must have missed to take a failover campaign as
/// forced: one fewer than the candidate waited, as the voter's last
/// heartbeat may have come a little later than the candidate's.
const VOTER_SILENT_HEARTBEATS: usize = SILENT_HEARTBEATS - 1;

/// The context of a failover campaign's (pre-)vote requests, which voters
/// read as raft-rs's `CAMPAIGN_TRANSFER` or as nothing (see
/// [`admit_vote`]).
const FAILOVER_CAMPAIGN: &[u8] = b"swarm:FailoverCampaign";

/// How long the probe's connection attempt may take.
const PROBE_TIMEOUT: Duration = Duration::from_millis(200);

pub(crate) struct LeaderWatch {
    reports: mpsc::UnboundedSender<Report>,
    links: Links,
    probing: bool,
    /// The term the failover campaign this member runs asks votes for (its
    /// pre-votes name it too); 0 when it runs none.
    campaign_term: u64,
    /// The last leader this member followed: still the one to probe after
    /// another member's failover campaign lost (its log was behind) and
    /// left this one following no leader.
    last_leader: u64,
}

impl LeaderWatch {
    pub(crate) fn new(reports: mpsc::UnboundedSender<Report>, links: Links) -> Self {
        LeaderWatch {
            reports,
            links,
            probing: false,
            campaign_term: 0,
            last_leader: INVALID_ID,
        }
    }

    fn silent_ticks(config: &Config) -> usize {
        SILENT_HEARTBEATS * config.heartbeat_ticks.max(1)
    }

    /// Marks the pre-vote and vote requests of this member's failover
    /// campaign as such, before they go.
    pub(crate) fn mark_votes(&self, messages: &mut [Message]) {
        for message in messages {
            if is_vote_request(message) && message.term == self.campaign_term && message.context.is_empty() {
                message.context = FAILOVER_CAMPAIGN.to_vec().into();
            }
        }
    }

    /// On each tick, right after raft-rs's: probes a leader that has gone
    /// silent, unless a probe is already out.
    pub(crate) fn on_tick(&mut self, raw: &RawNode<RocksStorage>, config: &Config) {
        let raft = &raw.raft;
        if matches!(raft.state, StateRole::PreCandidate | StateRole::Candidate) && raft.election_elapsed == 0 {
            // The tick started an election (a failover campaign's candidate
            // keeps the ticks it had counted): no failover campaign, and
            // its (pre-)votes, which may ask for the same term as the
            // campaign's did, go unmarked.
            self.campaign_term = 0;
        }
        if raft.leader_id != INVALID_ID {
            self.last_leader = raft.leader_id;
        }
        let leader = self.last_leader;
        if !config.fast_failover
            || self.probing
            || raft.state != StateRole::Follower
            || leader == INVALID_ID
            || leader == raft.id
            || raft.election_elapsed < Self::silent_ticks(config)
        {
            return;
        }
        let Some(addr) = raw.store().members().get(&leader).cloned() else {
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
            .filter(|&id| id != leader && id < raft.id)
            .count() as u32;
        let stagger = config.tick * rank;
        let (term, reports) = (raft.term, self.reports.clone());
        let refused_by_test = self.links.probe_refused(leader);
        self.probing = true;
        tokio::spawn(async move {
            let refused = refused_by_test || {
                let attempt = tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(&addr)).await;
                matches!(attempt, Ok(Err(err)) if err.kind() == std::io::ErrorKind::ConnectionRefused)
            };
            if refused {
                tokio::time::sleep(stagger).await;
            }
            let _ = reports.send(Report::LeaderProbe { leader, term, refused });
        });
    }

    /// On a probe's answer: campaigns, and says it did, when the leader
    /// refused the connection and this member has heard from no leader
    /// since. It still follows the silent one; or it follows none, either
    /// because its own campaign's pre-vote was refused (its log was behind:
    /// the next member must try, and this one will again after it) or
    /// because it refused another member's vote request (that member's log
    /// was behind, which is why this one must try). Not if it voted for
    /// anyone else in its current term: the candidate it voted for may win
    /// (a handover under way, or a failover another member started first).
    pub(crate) fn on_probe(
        &mut self,
        raw: &mut RawNode<RocksStorage>,
        config: &Config,
        leader: u64,
        term: u64,
        refused: bool,
    ) -> bool {
        self.probing = false;
        let raft = &raw.raft;
        let still_silent = (raft.leader_id == leader && raft.election_elapsed >= Self::silent_ticks(config))
            || (raft.leader_id == INVALID_ID
                && (raft.vote == INVALID_ID || (raft.vote == leader && raft.term == term)));
        // Only a voter may campaign (raft-rs's election timeout asks the
        // same; its MsgHup does not).
        if !refused || raft.state != StateRole::Follower || raft.term < term || !still_silent || !raft.promotable() {
            return false;
        }
        tracing::info!(
            member = raft.id,
            leader,
            term,
            "the leader's address refuses connections; campaigning now"
        );
        self.campaign_term = raft.term + 1;
        if let Err(err) = raw.campaign() {
            tracing::warn!(member = raw.raft.id, %err, "could not start the campaign");
        }
        // raft-rs declines quietly, with configuration changes still to
        // apply: then there is no campaign to mark.
        let started = raw.raft.state != StateRole::Follower;
        if !started {
            self.campaign_term = 0;
        }
        started
    }
}

fn is_vote_request(message: &Message) -> bool {
    matches!(
        message.get_msg_type(),
        MessageType::MsgRequestVote | MessageType::MsgRequestPreVote
    )
}

/// A (pre-)vote request as this member should step it: one of a failover
/// campaign is forced (as a handover's) if this member has not heard from
/// its leader for [`VOTER_SILENT_HEARTBEATS`] heartbeats either (or knows
/// none), and otherwise plain, which raft-rs refuses while the leader's
/// lease holds (with CheckQuorum on, the default; off, a plain vote is
/// granted as raft-rs would any). With one heartbeat per tick, a voter
/// whose ticks fall just before the leader's heartbeats may count one
/// fewer silent heartbeat than it missed: it then takes the campaign as
/// plain, and the group elects after the usual timeout instead.
pub(crate) fn admit_vote(raw: &RawNode<RocksStorage>, config: &Config, message: &mut Message) {
    if !is_vote_request(message) || message.context != FAILOVER_CAMPAIGN {
        return;
    }
    let raft = &raw.raft;
    let leader_silent = raft.leader_id == INVALID_ID
        || (raft.state != StateRole::Leader
            && raft.election_elapsed >= VOTER_SILENT_HEARTBEATS * config.heartbeat_ticks.max(1));
    message.context = if leader_silent {
        CAMPAIGN_TRANSFER.to_vec().into()
    } else {
        tracing::info!(
            member = raft.id,
            candidate = message.from,
            "a failover campaign while the leader is heard: taken as a plain vote"
        );
        Default::default()
    };
}
