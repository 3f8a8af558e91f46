//! Pools of real nodes on loopback UDP: joining, leaving, failing, restarting, conflicts.
//! Every wait polls a condition against a deadline.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use foca::{Header, Message};

use super::*;

const CONVERGE: Duration = Duration::from_secs(5);
/// Generous against the ~3 s target, so a loaded CI machine does not flake.
const DETECT: Duration = Duration::from_secs(6);

fn config(name: &str) -> GossipConfig {
    let mut config = GossipConfig::new(
        name,
        &format!("{name}-id"),
        "dc1",
        "127.0.0.1:0".parse().unwrap(),
    );
    config.tags = BTreeMap::from([
        ("role".to_owned(), "node".to_owned()),
        ("build".to_owned(), "0.1.0".to_owned()),
        ("vsn".to_owned(), "2".to_owned()),
    ]);
    config.retry_interval = Duration::from_millis(200);
    config
}

fn joining(name: &str, seed: &Gossip) -> GossipConfig {
    let mut config = config(name);
    config.join = vec![addr_of(seed).to_string()];
    config
}

async fn start(config: GossipConfig) -> Gossip {
    Gossip::start(config).await.expect("start gossip")
}

async fn pool(names: &[&str]) -> Vec<Gossip> {
    let seed = start(config(names[0])).await;
    let mut nodes = vec![seed.clone()];
    for name in &names[1..] {
        nodes.push(start(joining(name, &seed)).await);
    }
    for node in &nodes {
        eventually("the pool to converge", CONVERGE, || {
            alive(node) == names.len()
        })
        .await;
    }
    nodes
}

fn addr_of(node: &Gossip) -> SocketAddr {
    node.local_member().addr
}

fn alive(node: &Gossip) -> usize {
    node.members()
        .iter()
        .filter(|m| m.status == MemberStatus::Alive)
        .count()
}

fn member(node: &Gossip, name: &str) -> Option<MemberInfo> {
    node.members().into_iter().find(|m| m.name == name)
}

fn status(node: &Gossip, name: &str) -> Option<MemberStatus> {
    member(node, name).map(|m| m.status)
}

/// Polls `check` until it holds; returns how long that took.
async fn eventually(what: &str, deadline: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if check() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn within<T>(deadline: Duration, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(deadline, future)
        .await
        .expect("finished in time")
}

fn drain(events: &mut broadcast::Receiver<MemberEvent>) -> Vec<MemberEvent> {
    std::iter::from_fn(|| events.try_recv().ok()).collect()
}

fn about(event: &MemberEvent) -> &str {
    match event {
        MemberEvent::Joined(m)
        | MemberEvent::Updated(m)
        | MemberEvent::Failed(m)
        | MemberEvent::Left(m) => &m.name,
        MemberEvent::Reaped(name) => name,
    }
}

#[tokio::test]
async fn gossip_three_nodes_join_through_one_seed() {
    let nodes = pool(&["a", "b", "c"]).await;
    let b_seen_by_c = member(&nodes[2], "b").unwrap();
    assert_eq!(b_seen_by_c.addr, addr_of(&nodes[1]));
    assert_eq!(b_seen_by_c.tags["role"], "node");
    assert_eq!(b_seen_by_c.tags["build"], "0.1.0");
    assert_eq!(b_seen_by_c.tags[TAG_DATACENTER], "dc1");
    assert_eq!(b_seen_by_c.tags[TAG_NODE_ID], "b-id");
    assert_eq!(b_seen_by_c.incarnation, nodes[1].local_member().incarnation);
    let names: Vec<String> = nodes[0].members().into_iter().map(|m| m.name).collect();
    assert_eq!(names, ["a", "b", "c"]);
}

#[tokio::test]
async fn gossip_graceful_leave_is_seen_as_left() {
    let nodes = pool(&["a", "b", "c"]).await;
    let mut events = nodes[0].subscribe();
    within(CONVERGE, nodes[2].leave()).await.unwrap();
    assert_eq!(nodes[2].local_member().status, MemberStatus::Left);
    for node in &nodes[..2] {
        eventually("c to be seen as left", CONVERGE, || {
            status(node, "c") == Some(MemberStatus::Left)
        })
        .await;
    }
    let about_c: Vec<MemberEvent> = drain(&mut events)
        .into_iter()
        .filter(|e| about(e) == "c")
        .collect();
    assert!(
        matches!(about_c.as_slice(), [MemberEvent::Left(_)]),
        "{about_c:?}"
    );
    assert!(matches!(
        nodes[2].join(&[addr_of(&nodes[0]).to_string()]).await,
        Err(GossipError::Shutdown)
    ));
}

#[tokio::test]
async fn gossip_killed_member_is_failed_within_deadline() {
    let mut nodes = pool(&["a", "b", "c", "d", "e"]).await;
    let killed = nodes.pop().unwrap();
    // Dropping the only handle stops the node without a leave, as a crash would.
    drop(killed);
    let start = Instant::now();
    for node in &nodes {
        eventually("e to be marked failed", DETECT, || {
            status(node, "e") == Some(MemberStatus::Failed)
        })
        .await;
    }
    eprintln!(
        "killed member failed everywhere after {:?}",
        start.elapsed()
    );
    for node in &nodes {
        assert_eq!(alive(node), 4, "no live member may be marked failed");
    }
}

#[tokio::test]
async fn gossip_restarted_node_is_alive_again_with_higher_incarnation() {
    let nodes = pool(&["a", "b"]).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let b_addr = addr_of(b);
    let mut events = a.subscribe();
    let first = member(a, "b").unwrap().incarnation;

    // Restarted before anyone noticed: replaces its old self.
    b.shutdown().await;
    let mut restart = joining("b", a);
    restart.bind = b_addr;
    let b = start(restart.clone()).await;
    eventually("b back with a newer incarnation", CONVERGE, || {
        member(a, "b").is_some_and(|m| m.status == MemberStatus::Alive && m.incarnation > first)
    })
    .await;
    eventually("b to see a", CONVERGE, || alive(&b) == 2).await;
    assert!(drain(&mut events)
        .iter()
        .all(|e| !matches!(e, MemberEvent::Failed(_))));

    // Restarted after being marked failed: joins again.
    let second = member(a, "b").unwrap().incarnation;
    b.shutdown().await;
    eventually("b to be marked failed", DETECT, || {
        status(a, "b") == Some(MemberStatus::Failed)
    })
    .await;
    let b = start(restart).await;
    eventually("b alive again", CONVERGE, || {
        member(a, "b").is_some_and(|m| m.status == MemberStatus::Alive && m.incarnation > second)
    })
    .await;
    assert!(drain(&mut events)
        .iter()
        .any(|e| matches!(e, MemberEvent::Joined(m) if m.name == "b")));
    assert_eq!(a.metrics().name_conflicts, 0);
    assert_eq!(b.metrics().name_conflicts, 0);
}

#[tokio::test]
async fn gossip_same_name_with_another_node_id_is_refused() {
    let nodes = pool(&["a", "b"]).await;
    for seed in &nodes {
        let mut impostor = joining("b", seed);
        impostor.node_id = "other-id".into();
        match Gossip::start(impostor).await {
            Err(GossipError::NameConflict {
                name,
                holder_node_id,
                node_id,
            }) => {
                assert_eq!(
                    (name.as_str(), holder_node_id.as_str(), node_id.as_str()),
                    ("b", "b-id", "other-id")
                );
            }
            Err(other) => panic!("expected a name conflict, got {other}"),
            Ok(_) => panic!("expected a name conflict, the impostor joined"),
        }
        assert!(seed.metrics().name_conflicts >= 1);
    }
    for node in &nodes {
        let b = member(node, "b").unwrap();
        assert_eq!(
            (b.status, b.tags[TAG_NODE_ID].as_str()),
            (MemberStatus::Alive, "b-id")
        );
    }
}

#[tokio::test]
async fn gossip_retry_join_reaches_a_seed_that_starts_later() {
    // Held, unread, until the seed binds it, so nothing else takes the port meanwhile.
    let placeholder = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let seed_addr = placeholder.local_addr().unwrap();
    let mut late_joiner = config("b");
    late_joiner.retry_join = vec![seed_addr.to_string()];
    let b = start(late_joiner).await;
    eventually("a first retry-join attempt", CONVERGE, || {
        b.metrics().packets_out >= 1
    })
    .await;
    let mut seed = config("a");
    seed.bind = seed_addr;
    drop(placeholder);
    let a = start(seed).await;
    for node in [&a, &b] {
        eventually("the pool to converge", CONVERGE, || alive(node) == 2).await;
    }
}

#[tokio::test]
async fn gossip_garbage_packets_are_counted_and_ignored() {
    let nodes = pool(&["a", "b"]).await;
    let a = &nodes[0];
    let raw = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let foreign = GossipIdentity {
        name: "x".into(),
        addr: raw.local_addr().unwrap(),
        generation: 1,
        tags: BTreeMap::from([(TAG_DATACENTER.to_owned(), "dc2".to_owned())]).into(),
    };
    let foreign_packet = encode_swim_packet(
        PoolKind::Lan,
        &Header {
            src: foreign.clone(),
            src_incarnation: 0,
            dst: foreign,
            message: Message::Announce,
        },
        &[],
    )
    .unwrap();
    let garbage: [&[u8]; 5] = [
        b"",
        b"\x0f\xff\xff\xff",
        b"\x01not a foca packet",
        &foreign_packet[..foreign_packet.len() - 3],
        &[1; 2000],
    ];
    for datagram in garbage.iter().chain([&foreign_packet[..]].iter()) {
        raw.send_to(datagram, addr_of(a)).unwrap();
    }
    eventually("the garbage to be counted", CONVERGE, || {
        let m = a.metrics();
        m.malformed >= 4 && m.oversized >= 1 && m.foreign_dc >= 1
    })
    .await;
    let c = start(joining("c", a)).await;
    for node in nodes.iter().chain([&c]) {
        eventually("the pool to converge", CONVERGE, || alive(node) == 3).await;
    }
}

#[tokio::test]
async fn gossip_force_leave_turns_failed_into_left() {
    let mut nodes = pool(&["a", "b", "c"]).await;
    drop(nodes.pop());
    for node in &nodes {
        eventually("c to be marked failed", DETECT, || {
            status(node, "c") == Some(MemberStatus::Failed)
        })
        .await;
    }
    nodes[0].force_leave("c", false).await.unwrap();
    for node in &nodes {
        eventually("c to be seen as left", CONVERGE, || {
            status(node, "c") == Some(MemberStatus::Left)
        })
        .await;
    }
    assert!(matches!(
        nodes[0].force_leave("b", false).await,
        Err(GossipError::MemberAlive(_))
    ));
    assert!(matches!(
        nodes[0].force_leave("nobody", true).await,
        Err(GossipError::UnknownMember(_))
    ));
}

#[tokio::test]
async fn gossip_force_leave_with_prune_forgets_the_member_at_once() {
    let mut nodes = pool(&["a", "b", "c"]).await;
    drop(nodes.pop());
    eventually("c to be marked failed", DETECT, || {
        status(&nodes[0], "c") == Some(MemberStatus::Failed)
    })
    .await;
    assert!(matches!(
        nodes[0].force_leave("b", true).await,
        Err(GossipError::MemberAlive(_))
    ));
    nodes[0].force_leave("c", true).await.unwrap();
    assert_eq!(status(&nodes[0], "c"), None, "pruned, not listed as left");
    assert_eq!(status(&nodes[0], "b"), Some(MemberStatus::Alive));
    eventually("b to see c leave", CONVERGE, || {
        status(&nodes[1], "c") == Some(MemberStatus::Left)
    })
    .await;
    assert!(matches!(
        nodes[0].force_leave("c", true).await,
        Err(GossipError::UnknownMember(_))
    ));
}

#[tokio::test]
async fn gossip_failed_members_are_reaped() {
    let mut seed = config("a");
    seed.reap_after = Duration::from_millis(500);
    let a = start(seed).await;
    let b = start(joining("b", &a)).await;
    eventually("the pool to converge", CONVERGE, || alive(&a) == 2).await;
    let mut events = a.subscribe();
    drop(b);
    eventually("b to be reaped", DETECT, || member(&a, "b").is_none()).await;
    let kinds: Vec<MemberEvent> = drain(&mut events);
    assert!(matches!(
        kinds.as_slice(),
        [MemberEvent::Failed(_), MemberEvent::Reaped(name)] if name == "b"
    ));
}

#[tokio::test]
async fn gossip_join_fails_clearly_when_nobody_answers() {
    // Bound and never read, for the whole test: nothing can answer from this port.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let nobody = silent.local_addr().unwrap();
    let mut lonely = config("a");
    lonely.join = vec![nobody.to_string()];
    match Gossip::start(lonely).await {
        Err(GossipError::Join { failures }) => {
            assert_eq!(failures.len(), 1);
            assert_eq!(failures[0].0, nobody.to_string());
        }
        Err(other) => panic!("expected a join error, got {other}"),
        Ok(_) => panic!("joined nobody"),
    }
}

#[tokio::test]
async fn gossip_a_joiner_learns_the_whole_pool_from_one_sync() {
    const SIZE: usize = 24;
    // Tags the size of a real agent's, so an Announce's answer holds only a few members.
    let sized = |mut config: GossipConfig| {
        config.tags.insert("meta".into(), "x".repeat(150));
        config
    };
    let seed = start(sized(config("n00"))).await;
    let mut nodes = vec![seed.clone()];
    for i in 1..SIZE {
        nodes.push(start(sized(joining(&format!("n{i:02}"), &seed))).await);
    }
    eventually("the seed to know everyone", CONVERGE, || {
        alive(&seed) == SIZE
    })
    .await;
    // A settled pool gossips nothing about its old members, and an Announce's answer
    // holds only a few of them: without a full-state sync, a joiner learns the rest as
    // they probe it (1.4 s here; 20 ms with the sync).
    let joiner = start(sized(joining("late", &seed))).await;
    let took = eventually(
        "the joiner to know everyone",
        Duration::from_millis(600),
        || alive(&joiner) == SIZE + 1,
    )
    .await;
    eprintln!("joiner knew all {SIZE} members after {took:?}");
    assert!(joiner.metrics().syncs >= 1);
    drop(nodes);
}

#[tokio::test]
async fn gossip_a_joiner_does_not_take_members_that_left_before_it_for_failed() {
    let nodes = pool(&["a", "b", "c"]).await;
    within(CONVERGE, nodes[2].leave()).await.unwrap();
    eventually("c to be seen as left", CONVERGE, || {
        status(&nodes[0], "c") == Some(MemberStatus::Left)
    })
    .await;
    let d = start(joining("d", &nodes[0])).await;
    eventually("d to sync with its seed", CONVERGE, || {
        d.metrics().syncs >= 1 && alive(&d) == 3
    })
    .await;
    // The seed's state lists c as down. As in serf, a member the joiner never saw alive
    // is not listed; above all it must not be reported failed (a server would mark its
    // node critical in the catalog).
    assert_eq!(status(&d, "c"), None);
}

#[tokio::test]
async fn gossip_bad_sync_streams_are_counted_and_dropped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    let nodes = pool(&["a", "b"]).await;
    let a = &nodes[0];
    let foreign = MemberState {
        datacenter: "dc2".into(),
        members: Vec::new(),
        left: Vec::new(),
    };
    let foreign_body = encode_state(&foreign).unwrap();
    let mut foreign_frame = vec![codec::KIND_PUSH_PULL];
    foreign_frame.extend_from_slice(&u32::try_from(foreign_body.len()).unwrap().to_be_bytes());
    foreign_frame.extend_from_slice(&foreign_body);
    let mut oversized = vec![codec::KIND_PUSH_PULL];
    oversized.extend_from_slice(&u32::MAX.to_be_bytes());
    let streams: [&[u8]; 6] = [
        b"\x07\x00\x00\x00\x01x",
        b"\x03\x00\x00\x00\x04\xff\xff\xff\xff",
        b"\x03\x00\x00\x01\x00short",
        b"\x03\x00",
        &oversized,
        &foreign_frame,
    ];
    for bytes in streams {
        let mut stream = TcpStream::connect(addr_of(a)).await.unwrap();
        stream.write_all(bytes).await.unwrap();
        // Ends the stream, as a peer that sent a truncated message and went away.
        stream.shutdown().await.unwrap();
        let mut answer = Vec::new();
        // Dropped unanswered: the connection closes with nothing sent back.
        let read = within(CONVERGE, stream.read_to_end(&mut answer)).await;
        assert!(read.is_err() || answer.is_empty(), "answered {answer:?}");
    }
    let m = a.metrics();
    assert_eq!((m.malformed, m.oversized, m.foreign_dc), (4, 1, 1), "{m:?}");
    let c = start(joining("c", a)).await;
    for node in nodes.iter().chain([&c]) {
        eventually("the pool to converge", CONVERGE, || alive(node) == 3).await;
    }
}

#[tokio::test]
async fn gossip_a_restarted_seed_rejoins_the_members_it_knew() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("serf").join("local.snapshot");
    let mut seed_config = config("a");
    seed_config.snapshot = Some(path.clone());
    let a = start(seed_config.clone()).await;
    let b = start(joining("b", &a)).await;
    let c = start(joining("c", &a)).await;
    for node in [&a, &b, &c] {
        eventually("the pool to converge", CONVERGE, || alive(node) == 3).await;
    }
    eventually("the snapshot to list b and c", CONVERGE, || {
        snapshot::load(&path).len() == 2
    })
    .await;
    let a_addr = addr_of(&a);
    a.shutdown().await;
    eventually("a to be marked failed", DETECT, || {
        status(&b, "a") == Some(MemberStatus::Failed)
    })
    .await;

    // No join address at all: only the snapshot knows the pool. Without it, a would wait
    // for b's or c's reconnect, every 30 s.
    seed_config.bind = a_addr;
    let a = start(seed_config).await;
    let took = eventually("a back in its pool", CONVERGE, || {
        alive(&a) == 3
            && status(&b, "a") == Some(MemberStatus::Alive)
            && status(&c, "a") == Some(MemberStatus::Alive)
    })
    .await;
    eprintln!("restarted seed back in its pool after {took:?}");

    within(CONVERGE, a.leave()).await.unwrap();
    assert!(!path.exists(), "a graceful leave forgets the pool");
}

fn wan_config(node: &str, dc: &str) -> GossipConfig {
    let mut config = config(&wan_member_name(node, dc));
    config.kind = PoolKind::Wan;
    config.datacenter = dc.to_owned();
    config.node_id = format!("{node}-{dc}-id");
    config
}

#[tokio::test]
async fn gossip_wan_pool_spans_datacenters_and_refuses_lan_packets() {
    let a = start(wan_config("s1", "dc1")).await;
    let mut joiner = wan_config("s1", "dc2");
    joiner.join = vec![addr_of(&a).to_string()];
    let b = start(joiner).await;
    for node in [&a, &b] {
        eventually("the WAN pool to converge", CONVERGE, || alive(node) == 2).await;
    }
    assert!(member(&a, "s1.dc2").is_some() && member(&b, "s1.dc1").is_some());

    // A LAN agent told to join the WAN port is dropped and counted, never merged.
    let mut lan = config("lan-node");
    lan.join = vec![addr_of(&a).to_string()];
    lan.retry_interval = Duration::from_millis(100);
    assert!(
        Gossip::start(lan).await.is_err(),
        "a LAN node joined a WAN pool"
    );
    eventually("the LAN packets to be counted", CONVERGE, || {
        a.metrics().foreign_pool >= 1
    })
    .await;
    assert_eq!(alive(&a), 2);

    // A WAN name that contradicts its datacenter tag is refused at start.
    let mut inconsistent = wan_config("s2", "dc2");
    inconsistent.node_name = "s2.dc3".into();
    assert!(matches!(
        Gossip::start(inconsistent).await,
        Err(GossipError::Config(_))
    ));
}

#[tokio::test]
async fn gossip_wan_server_names_clashing_across_datacenters_are_refused() {
    let a = start(wan_config("s1", "dc1")).await;
    let mut second = wan_config("s1", "dc2");
    second.join = vec![addr_of(&a).to_string()];
    let b = start(second).await;
    eventually("the WAN pool to converge", CONVERGE, || alive(&a) == 2).await;
    // Another server calling itself s1.dc2: refused by the pool, counted, never merged.
    let mut impostor = wan_config("s1", "dc2");
    impostor.node_id = "impostor-id".into();
    impostor.join = vec![addr_of(&a).to_string()];
    assert!(matches!(
        Gossip::start(impostor).await,
        Err(GossipError::NameConflict { .. })
    ));
    assert!(a.metrics().name_conflicts >= 1);
    let held = member(&a, "s1.dc2").unwrap();
    assert_eq!(held.tags[TAG_NODE_ID], "s1-dc2-id");
    assert_eq!(alive(&a), 2);
    drop(b);
}

#[tokio::test]
async fn gossip_probes_move_coordinates_and_members_learn_each_others() {
    let nodes = pool(&["a", "b", "c"]).await;
    let origin = shoal_server::coordinate::Coordinate::new(&Default::default());
    for node in &nodes {
        eventually("probes to feed the coordinates", DETECT, || {
            let view = node.coordinates();
            view.local != origin && view.peers.len() == 2
        })
        .await;
    }
    // Loopback round trips are well under a millisecond; so are the estimates.
    let a = nodes[0].coordinates();
    let b = nodes[1].coordinates();
    let estimate = a.local.distance_seconds(&b.local);
    assert!(estimate < 0.005, "estimated {estimate} s on loopback");
    assert!(a.peers.contains_key("b") && b.peers.contains_key("a"));
}

#[tokio::test]
async fn gossip_bad_coordinate_notices_are_counted_and_ignored() {
    let nodes = pool(&["a", "b"]).await;
    let a = &nodes[0];
    let raw = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let coordinate = shoal_server::coordinate::Coordinate::new(&Default::default());
    // Well formed, from a name that is not a member: ignored and counted.
    let stranger =
        encode_coordinate(PoolKind::Lan, &CoordinateNotice::new("x", &coordinate)).unwrap();
    // A future version, and a coordinate that is not finite: malformed.
    let mut future = stranger.clone();
    future[1] = NOTICE_VERSION + 1;
    let mut nan = CoordinateNotice::new("b", &coordinate);
    nan.error = f64::INFINITY;
    let nan = encode_coordinate(PoolKind::Lan, &nan).unwrap();
    let before = a.metrics();
    for datagram in [&stranger, &future, &nan] {
        raw.send_to(datagram, addr_of(a)).unwrap();
    }
    eventually("the notices to be counted", CONVERGE, || {
        let m = a.metrics();
        m.coordinates_ignored > before.coordinates_ignored && m.malformed >= before.malformed + 2
    })
    .await;
    assert!(!a.coordinates().peers.contains_key("x"));
    assert_eq!(alive(a), 2);
}

mod encryption;
