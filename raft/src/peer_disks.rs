//! What the other members say of their disks.
//!
//! Every member stores every entry: a write that one member has no room
//! for fills its disk, and it stops (two of three, and the group stops).
//! So each member says, on every batch of Raft messages it sends, whether
//! it refuses writes for want of room ([`DiskShort`]); a leader refuses
//! writes while any member it heard from within an election timeout does,
//! naming it, and removals while any refuses those. (etcd raises a
//! cluster-wide NOSPACE alarm in the same spirit.) A member not heard from
//! for that long is not counted: silent, it stores nothing either, and a
//! dead member must not stop the group's writes. Nor is a member removed
//! from the group (one that never learns of its removal goes on asking for
//! votes, and would otherwise hold writes off for good).
//!
//! A new leader hears from each follower at its first heartbeat: until
//! then (a heartbeat) it takes writes whatever their disks.
//!
//! Followers answer each heartbeat, so a leader learns of a member short
//! of room within a heartbeat of that member's own reading.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use swarm_proto::v1::DiskShort;

use crate::error::Error;

/// The reports of the members short of room, by member id.
#[derive(Debug)]
pub(crate) struct PeerDisks {
    /// How long a report counts without a newer one.
    ttl: Duration,
    reports: Mutex<Reports>,
}

#[derive(Debug, Default)]
struct Reports {
    /// The group's members: only their word counts.
    members: HashSet<u64>,
    /// What those short of room said last.
    short: HashMap<u64, Report>,
}

/// What one member said last, when it was short of room.
#[derive(Debug, Clone)]
struct Report {
    at: Instant,
    addr: String,
    short: DiskShort,
}

/// A member's disk went from room to short, or back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Turned {
    Short,
    Room,
}

impl PeerDisks {
    pub(crate) fn new(ttl: Duration) -> PeerDisks {
        PeerDisks {
            ttl,
            reports: Mutex::default(),
        }
    }

    /// The group's members are now `members`: the word of any other is
    /// dropped, and no longer taken.
    pub(crate) fn set_members(&self, members: impl IntoIterator<Item = u64>) {
        let mut reports = self.reports.lock().unwrap_or_else(|e| e.into_inner());
        reports.members = members.into_iter().collect();
        let Reports { members, short } = &mut *reports;
        short.retain(|id, _| members.contains(id));
    }

    /// Notes what member `id` (listening at `addr`) said of its disk with
    /// its last batch; says whether that turned it short or back (a report
    /// gone stale counts as room).
    pub(crate) fn note(&self, id: u64, addr: &str, short: Option<DiskShort>, now: Instant) -> Option<Turned> {
        let mut reports = self.reports.lock().unwrap_or_else(|e| e.into_inner());
        if !reports.members.contains(&id) {
            return None;
        }
        let reports = &mut reports.short;
        let was_short = reports.get(&id).is_some_and(|report| self.fresh(report, now));
        match short {
            Some(short) => {
                reports.insert(
                    id,
                    Report {
                        at: now,
                        addr: addr.to_string(),
                        short,
                    },
                );
                (!was_short).then_some(Turned::Short)
            }
            None => {
                reports.remove(&id);
                was_short.then_some(Turned::Room)
            }
        }
    }

    fn fresh(&self, report: &Report, now: Instant) -> bool {
        now.saturating_duration_since(report.at) < self.ttl
    }

    /// The refusal of a write (or of a `removal`) that a member short of
    /// room asks for, if one does: the one with the least free.
    pub(crate) fn refusal(&self, removal: bool, now: Instant) -> Option<Error> {
        let reports = self.reports.lock().unwrap_or_else(|e| e.into_inner());
        reports
            .short
            .iter()
            .filter(|(_, report)| self.fresh(report, now) && (!removal || report.short.refusing_removals))
            .min_by_key(|(id, report)| (report.short.available, **id))
            .map(|(id, report)| Error::NoSpace {
                available: report.short.available,
                needed: if removal {
                    report.short.removal_needed
                } else {
                    report.short.needed
                },
                removal,
                member: Some(format!("member {id} at {}", report.addr)),
                entry: 0,
            })
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use swarm_proto::v1::DiskShort;

    use super::{PeerDisks, Turned};
    use crate::error::Error;

    fn short(available: u64, refusing_removals: bool) -> Option<DiskShort> {
        Some(DiskShort {
            available,
            needed: 100,
            refusing_removals,
            removal_needed: 60,
        })
    }

    /// Members 1 to 3.
    fn peers() -> PeerDisks {
        let peers = PeerDisks::new(Duration::from_secs(1));
        peers.set_members([1, 2, 3]);
        peers
    }

    #[test]
    fn a_member_short_of_room_refuses_writes_until_it_says_it_has_room() {
        let peers = peers();
        let now = Instant::now();
        assert!(peers.refusal(false, now).is_none(), "no one said anything");
        assert_eq!(peers.note(2, "10.0.0.2:4242", None, now), None);
        assert_eq!(
            peers.note(2, "10.0.0.2:4242", short(40, false), now),
            Some(Turned::Short)
        );
        assert_eq!(
            peers.note(2, "10.0.0.2:4242", short(30, false), now),
            None,
            "still short"
        );
        let err = peers.refusal(false, now).expect("writes refused");
        assert!(
            matches!(&err, Error::NoSpace { available: 30, needed: 100, removal: false, member: Some(member), entry: 0 }
                if member == "member 2 at 10.0.0.2:4242"),
            "{err:?}"
        );
        let said = err.to_string();
        assert!(said.starts_with("the raft data dir's filesystem of member 2 at 10.0.0.2:4242 has 0.0 KiB free, under the 0.1 KiB it keeps free"), "{said}");
        assert!(peers.refusal(true, now).is_none(), "removals still taken");
        assert_eq!(peers.note(2, "10.0.0.2:4242", None, now), Some(Turned::Room));
        assert!(peers.refusal(false, now).is_none());
    }

    #[test]
    fn the_member_with_the_least_free_is_named_and_removals_refused_only_if_one_refuses_them() {
        let peers = peers();
        let now = Instant::now();
        peers.note(2, "b", short(40, false), now);
        peers.note(3, "c", short(10, false), now);
        assert!(matches!(
            peers.refusal(false, now),
            Some(Error::NoSpace { available: 10, .. })
        ));
        assert!(peers.refusal(true, now).is_none());
        peers.note(2, "b", short(40, true), now);
        assert!(matches!(
            peers.refusal(true, now),
            Some(Error::NoSpace {
                available: 40,
                needed: 60,
                removal: true,
                ..
            })
        ));
    }

    /// A member removed from the group may never learn of it, and goes on
    /// asking for votes: its word no longer counts, nor does a stranger's.
    #[test]
    fn only_the_groups_members_are_heard() {
        let peers = peers();
        let now = Instant::now();
        assert_eq!(peers.note(4, "d", short(40, false), now), None, "not a member");
        peers.note(3, "c", short(40, false), now);
        assert!(peers.refusal(false, now).is_some());
        peers.set_members([1, 2]);
        assert!(peers.refusal(false, now).is_none(), "removed: its report dropped");
        assert_eq!(peers.note(3, "c", short(40, false), now), None, "and no longer taken");
        assert!(peers.refusal(false, now).is_none());
    }

    /// A member that fell silent stores nothing either: its last word no
    /// longer holds writes off once an election timeout old.
    #[test]
    fn a_silent_members_report_stops_counting() {
        let peers = peers();
        let then = Instant::now();
        peers.note(2, "b", short(40, false), then);
        assert!(peers.refusal(false, then + Duration::from_millis(999)).is_some());
        let later = then + Duration::from_secs(1);
        assert!(peers.refusal(false, later).is_none());
        assert_eq!(
            peers.note(2, "b", short(40, false), later),
            Some(Turned::Short),
            "heard again, short again"
        );
    }
}
