//! What the Raft crate replicates of its own: member addresses, carried in
//! conf change contexts and in snapshots beside the state machine's bytes.

use std::collections::BTreeMap;

use bytes::Bytes;
use prost::Message as _;
use raft::StateRole;
use raft::eraftpb::{ConfChange, ConfChangeType};
use raft::raw_node::RawNode;
use swarm_proto::v1::{RaftMember, RaftSnapshotData};

use crate::error::{Error, Result};
use crate::storage::RocksStorage;

/// A conf change adding member `id`, reachable at `addr`.
pub(crate) fn add_member_change(id: u64, addr: &str) -> ConfChange {
    let mut change = ConfChange::default();
    change.set_change_type(ConfChangeType::AddNode);
    change.node_id = id;
    change.context = Bytes::from(
        RaftMember {
            id,
            addr: addr.to_string(),
        }
        .encode_to_vec(),
    );
    change
}

/// Refuses `addr` for member `id` if another member is reached there.
pub(crate) fn check_address_free(members: &BTreeMap<u64, String>, id: u64, addr: &str) -> Result<()> {
    match members
        .iter()
        .find(|(other, known)| **other != id && known.as_str() == addr)
    {
        Some((other, _)) => Err(Error::Membership(format!("address {addr} is already member {other}'s"))),
        None => Ok(()),
    }
}

/// A conf change removing member `id`.
pub(crate) fn remove_member_change(id: u64) -> ConfChange {
    let mut change = ConfChange::default();
    change.set_change_type(ConfChangeType::RemoveNode);
    change.node_id = id;
    change
}

/// The address an add-member change carries.
pub(crate) fn added_member_addr(change: &ConfChange) -> Result<String> {
    let member = RaftMember::decode(&change.context[..])?;
    if member.id != change.node_id {
        return Err(Error::Corrupt(format!(
            "conf change for {} names member {}",
            change.node_id, member.id
        )));
    }
    Ok(member.addr)
}

/// A snapshot's data: the members and the state machine's bytes.
pub(crate) fn encode_snapshot(members: &BTreeMap<u64, String>, state: Vec<u8>) -> Vec<u8> {
    let members = members
        .iter()
        .map(|(&id, addr)| RaftMember { id, addr: addr.clone() })
        .collect();
    RaftSnapshotData {
        members,
        state: Bytes::from(state),
    }
    .encode_to_vec()
}

/// The members and state machine bytes of a snapshot's data.
pub(crate) fn decode_snapshot(data: &Bytes) -> Result<(BTreeMap<u64, String>, Bytes)> {
    let decoded = RaftSnapshotData::decode(data.clone())?;
    let members = decoded
        .members
        .into_iter()
        .map(|member| (member.id, member.addr))
        .collect();
    Ok((members, decoded.state))
}

/// Checks, on the leader, that removing `id` leaves a group that can still
/// commit: enough of the remaining voters are `active` (this member always
/// is) to form its quorum. SwarmKit refuses such removals for the same
/// reason: a group that cannot commit cannot undo the removal either.
pub(crate) fn check_removal(raw: &RawNode<RocksStorage>, id: u64, active: impl Fn(u64) -> bool) -> Result<()> {
    let raft = &raw.raft;
    debug_assert_eq!(raft.state, StateRole::Leader);
    let voters = raft.prs().conf().voters().ids();
    if !voters.contains(id) {
        return Err(Error::Membership(format!("member {id} is not in the group")));
    }
    if id == raft.id {
        return Err(Error::Membership(format!(
            "member {id} leads the group; transfer leadership before removing it"
        )));
    }
    let remaining: Vec<u64> = voters.iter().filter(|&voter| voter != id).collect();
    let reachable = remaining
        .iter()
        .filter(|&&voter| voter == raft.id || active(voter))
        .count();
    let quorum = remaining.len() / 2 + 1;
    if reachable < quorum {
        return Err(Error::Membership(format!(
            "removing member {id} would leave {reachable} reachable of {} members, below the quorum of {quorum}",
            remaining.len()
        )));
    }
    Ok(())
}
