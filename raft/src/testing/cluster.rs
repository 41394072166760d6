//! A group of real members in one process: each with its own RocksDB data
//! dir and its transport served by tonic on a loopback port. For tests and
//! benchmarks: its methods panic, with a message naming what did not
//! happen, when the group does not reach the state they wait for.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::LogMachine;
use crate::{Config, Error, RaftHandle, RaftNode, Start};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The cluster id of every group started here.
pub const CLUSTER_ID: u64 = 0x5eed;

/// How long a wait for a state lasts before it panics.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// One member and the server of its transport.
#[allow(missing_docs)]
pub struct Member {
    pub id: u64,
    pub addr: String,
    pub node: RaftNode<LogMachine>,
    pub handle: RaftHandle<usize>,
    pub machine: LogMachine,
    server: Option<Server>,
}

/// The transport server of a member: one signal closes its listening socket
/// at once (as a process's death does), the other lets its connections go.
struct Server {
    close_listener: oneshot::Sender<()>,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Member {
    /// Stops serving and stops the member: gracefully (`shutdown`) or as a
    /// crash would (`kill`). Either way the address refuses connections
    /// from the first moment, as a stopped process's does.
    pub async fn stop(mut self, graceful: bool) {
        // The listener closes before the member stops, so that no peer
        // reaches a half-stopped one.
        let server = self.server.take().map(
            |Server {
                 close_listener,
                 shutdown,
                 task,
             }| {
                let _ = close_listener.send(());
                (shutdown, task)
            },
        );
        if graceful {
            self.node.shutdown().await.expect("clean shutdown");
        } else {
            self.node.kill().await;
        }
        if let Some((shutdown, task)) = server {
            let _ = shutdown.send(());
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

/// Accepts connections (Nagle off) until `close` fires, then drops the
/// listener at once: its port refuses connections from then on, while the
/// connections already made are left to the server's graceful shutdown.
fn closable_incoming(
    listener: TcpListener,
    close: oneshot::Receiver<()>,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures::stream::unfold((listener, close), |(listener, mut close)| async move {
        tokio::select! {
            _ = &mut close => None,
            accepted = listener.accept() => {
                let stream = accepted.and_then(|(stream, _)| stream.set_nodelay(true).map(|()| stream));
                Some((stream, (listener, close)))
            }
        }
    })
}

/// The running members of one group, by id.
#[allow(missing_docs)]
pub struct Cluster {
    pub root: PathBuf,
    pub members: BTreeMap<u64, Member>,
    pub addrs: BTreeMap<u64, String>,
    /// Applied to each member's default configuration.
    pub tweak: Arc<dyn Fn(&mut Config) + Send + Sync>,
    /// Makes each member's state machine.
    pub new_machine: fn() -> LogMachine,
}

async fn bind() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().expect("local addr").to_string();
    (listener, addr)
}

impl Cluster {
    /// Starts `size` members, ids 1..=size, bootstrapped together, with
    /// their data dirs under `root` and `tweak` applied to the defaults.
    pub async fn start(root: PathBuf, size: u64, tweak: impl Fn(&mut Config) + Send + Sync + 'static) -> Cluster {
        Self::start_with_machines(root, size, LogMachine::new, tweak).await
    }

    /// As [`Cluster::start`], each member's state machine made by `new_machine`.
    pub async fn start_with_machines(
        root: PathBuf,
        size: u64,
        new_machine: fn() -> LogMachine,
        tweak: impl Fn(&mut Config) + Send + Sync + 'static,
    ) -> Cluster {
        let tweak = Arc::new(tweak);
        let mut listeners = BTreeMap::new();
        let mut addrs = BTreeMap::new();
        for id in 1..=size {
            let (listener, addr) = bind().await;
            listeners.insert(id, listener);
            addrs.insert(id, addr);
        }
        let mut cluster = Cluster {
            root,
            members: BTreeMap::new(),
            addrs: addrs.clone(),
            tweak,
            new_machine,
        };
        for (id, listener) in listeners {
            let member = cluster
                .launch(id, listener, Start::Bootstrap(addrs.clone()))
                .await
                .expect("start member");
            cluster.members.insert(id, member);
        }
        cluster
    }

    /// The data dir of member `id`.
    pub fn dir(&self, id: u64) -> PathBuf {
        self.root.join(format!("member-{id}"))
    }

    fn config(&self, id: u64) -> Config {
        let mut config = Config::new(id, CLUSTER_ID, self.dir(id), &self.addrs[&id]);
        (self.tweak)(&mut config);
        config
    }

    async fn launch(&self, id: u64, listener: TcpListener, start: Start) -> Result<Member, Error> {
        let machine = (self.new_machine)();
        let node = RaftNode::start(self.config(id), machine.clone(), start).await?;
        let (shutdown, shutdown_requested) = oneshot::channel::<()>();
        let (close_listener, listener_closed) = oneshot::channel::<()>();
        let router = tonic::transport::Server::builder().add_service(node.transport_service().into_server());
        let task = tokio::spawn(async move {
            let incoming = closable_incoming(listener, listener_closed);
            let _ = router
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = shutdown_requested.await;
                })
                .await;
        });
        let server = Server {
            close_listener,
            shutdown,
            task,
        };
        Ok(Member {
            id,
            addr: self.addrs[&id].clone(),
            handle: node.handle(),
            node,
            machine,
            server: Some(server),
        })
    }

    /// Starts member `id` again from its data dir, on its old address.
    pub async fn restart(&mut self, id: u64) {
        let listener = TcpListener::bind(&self.addrs[&id])
            .await
            .expect("rebind the member's address");
        let member = self.launch(id, listener, Start::Join).await.expect("restart member");
        self.members.insert(id, member);
    }

    /// Starts a new, empty member `id` that waits to be added.
    pub async fn start_joiner(&mut self, id: u64) -> String {
        let (listener, addr) = bind().await;
        self.addrs.insert(id, addr.clone());
        let member = self.launch(id, listener, Start::Join).await.expect("start joiner");
        self.members.insert(id, member);
        addr
    }

    /// Stops member `id`: gracefully, or as a crash would.
    pub async fn stop(&mut self, id: u64, graceful: bool) {
        let member = self.members.remove(&id).expect("a running member");
        member.stop(graceful).await;
    }

    /// Stops member `id` as swarmd's graceful stop does: a leader first
    /// hands leadership over, then the member stops gracefully. Returns the
    /// member it handed over to, if it did.
    pub async fn stop_handing_over(&mut self, id: u64) -> Option<u64> {
        let handed_to = self.handle(id).hand_over().await;
        self.stop(id, true).await;
        handed_to
    }

    /// The handle of running member `id`.
    pub fn handle(&self, id: u64) -> &RaftHandle<usize> {
        &self.members[&id].handle
    }

    /// Waits until one running member leads and every running member agrees
    /// on it; returns its id.
    pub async fn leader(&self) -> u64 {
        let ids: Vec<u64> = self.members.keys().copied().collect();
        self.leader_among(&ids).await
    }

    /// Waits until one of `ids` leads and all of them agree on it.
    pub async fn leader_among(&self, ids: &[u64]) -> u64 {
        wait_for("a leader that the members agree on", || {
            let leaders: Vec<u64> = ids.iter().filter(|id| self.handle(**id).is_leader()).copied().collect();
            let [leader] = leaders[..] else { return None };
            ids.iter()
                .all(|id| self.handle(*id).leadership().leader_id == Some(leader))
                .then_some(leader)
        })
        .await
    }

    /// Proposes through whichever member leads, retrying while there is
    /// none; returns the index.
    pub async fn propose(&self, data: Vec<u8>) -> u64 {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let leader = self.members.values().find(|member| member.handle.is_leader());
            if let Some(member) = leader {
                match member.handle.propose(data.clone()).await {
                    Ok((index, _)) => return index,
                    Err(Error::NotLeader { .. } | Error::Dropped { .. }) => {}
                    Err(err) => panic!("proposal failed: {err}"),
                }
            }
            assert!(Instant::now() < deadline, "no leader took the proposal in {DEADLINE:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Proposes `count` entries with `in_flight` proposals at a time on the
    /// member `leader`; returns the indexes.
    pub async fn propose_many(&self, leader: u64, count: usize, in_flight: usize, tag: &str) -> Vec<u64> {
        use futures::StreamExt as _;
        let handle = self.handle(leader).clone();
        futures::stream::iter(0..count)
            .map(|n| {
                let handle = handle.clone();
                let data = format!("{tag}-{n}").into_bytes();
                async move { handle.propose(data).await.expect("proposal committed").0 }
            })
            .buffer_unordered(in_flight)
            .collect()
            .await
    }

    /// Waits until member `id` has applied the entry at `index`, and so
    /// every one before it.
    pub async fn wait_applied(&self, id: u64, index: u64) {
        let machine = &self.members[&id].machine;
        wait_for(&format!("member {id} to apply index {index}"), || {
            (machine.last_index() >= index).then_some(())
        })
        .await;
    }

    /// Waits until member `id` has counted a snapshot it installed (it
    /// counts one just after its machine holds it, so a convergence seen
    /// may come first).
    pub async fn wait_snapshot_installed(&self, id: u64) {
        let handle = &self.members[&id].handle;
        wait_for(&format!("member {id} to install a snapshot"), || {
            (handle.metrics().snapshots_installed >= 1).then_some(())
        })
        .await;
    }

    /// Waits until every running member has applied exactly the same
    /// entries as `reference`, and at least `count` of them.
    pub async fn converge(&self, count: usize) -> Vec<(u64, bytes::Bytes)> {
        wait_for("all members to apply the same entries", || {
            let mut logs = self.members.values().map(|member| member.machine.entries());
            let first = logs.next()?;
            (first.len() >= count && logs.all(|log| log == first)).then_some(first)
        })
        .await
    }

    /// Stops every member gracefully.
    pub async fn shutdown(mut self) {
        let ids: Vec<u64> = self.members.keys().copied().collect();
        for id in ids {
            self.stop(id, true).await;
        }
    }
}

/// Polls `probe` until it returns something, failing the test after
/// [`DEADLINE`].
pub async fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

impl Cluster {
    /// Cuts every link between the members of `side` and the others.
    pub fn partition(&self, side: &[u64]) {
        for (&id, member) in &self.members {
            for &other in self.addrs.keys() {
                if side.contains(&id) != side.contains(&other) {
                    member.handle.links().cut(other);
                }
            }
        }
    }

    /// Heals every cut link.
    pub fn heal(&self) {
        for member in self.members.values() {
            member.handle.links().heal_all();
        }
    }
}
