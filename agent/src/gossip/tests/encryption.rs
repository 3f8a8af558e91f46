//! Gossip encryption on real pools: a keyed pool forms, a member with another key is
//! kept out and told why, nothing readable crosses the wire, keys rotate on a live pool,
//! and encryption can be rolled out with the verify settings off.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

const K1: &str = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=";
const K2: &str = "AAECAwQFBgcICQoLDA0ODw==";
const WRONG: &str = "H7Tq7XSGzw0UzBzhNIXJZC6QdpFM1ViJPkAXcHmMJbM=";

fn encryption(key: &str) -> Encryption {
    Encryption::new(Keyring::new(decode_key(key).unwrap()).unwrap())
}

fn keyed(name: &str, key: &str) -> GossipConfig {
    let mut config = config(name);
    config.encryption = Some(encryption(key));
    config
}

async fn keyed_pool(names: &[&str], key: &str) -> Vec<Gossip> {
    let seed = start(keyed(names[0], key)).await;
    let mut nodes = vec![seed.clone()];
    for name in &names[1..] {
        let mut config = keyed(name, key);
        config.join = vec![addr_of(&seed).to_string()];
        nodes.push(start(config).await);
    }
    for node in &nodes {
        eventually("the pool to converge", CONVERGE, || {
            alive(node) == names.len()
        })
        .await;
    }
    nodes
}

#[tokio::test]
async fn gossip_a_keyed_pool_forms_and_a_member_with_another_key_is_refused_with_a_reason() {
    let nodes = keyed_pool(&["a", "b", "c"], K1).await;
    let mut config = keyed("d", WRONG);
    config.join = vec![addr_of(&nodes[0]).to_string()];
    let error = match Gossip::start(config).await {
        Ok(_) => panic!("a member with another key joined"),
        Err(e) => e.to_string(),
    };
    assert!(
        error.contains("refused by the member") && error.contains("gossip keys differ"),
        "{error}"
    );
    // The pool counted what it could not open and never saw d.
    assert!(nodes[0].metrics().undecryptable > 0);
    assert!(member(&nodes[0], "d").is_none());

    // A member without encryption is refused too, and says so.
    let error = match Gossip::start(joining("e", &nodes[0])).await {
        Ok(_) => panic!("an unencrypted member joined"),
        Err(e) => e.to_string(),
    };
    assert!(error.contains("requires encrypted gossip"), "{error}");
    assert!(nodes[0].metrics().unencrypted > 0);
    assert_eq!(alive(&nodes[0]), 3);
}

/// Everything sent to one member (datagrams, and both directions of its streams),
/// through a relay it advertises as its address.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Vec<u8>>>>);

impl Capture {
    fn push(&self, bytes: &[u8]) {
        self.0.lock().unwrap().push(bytes.to_vec());
    }

    fn contains(&self, needle: &[u8]) -> bool {
        let captured = self.0.lock().unwrap();
        captured
            .iter()
            .any(|b| b.windows(needle.len()).any(|w| w == needle))
    }

    fn datagrams(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// A UDP and TCP relay on one port forwarding to `target`, recording what passes.
async fn relay(capture: Capture, target: SocketAddr) -> SocketAddr {
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = udp.local_addr().unwrap();
    let tcp = tokio::net::TcpListener::bind(addr).await.unwrap();
    let out = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let udp_capture = capture.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        while let Ok((len, _)) = udp.recv_from(&mut buf).await {
            udp_capture.push(&buf[..len]);
            let _ = out.send_to(&buf[..len], target).await;
        }
    });
    tokio::spawn(async move {
        while let Ok((inbound, _)) = tcp.accept().await {
            let Ok(outbound) = tokio::net::TcpStream::connect(target).await else {
                continue;
            };
            let (in_read, in_write) = inbound.into_split();
            let (out_read, out_write) = outbound.into_split();
            tokio::spawn(pipe(in_read, out_write, capture.clone()));
            tokio::spawn(pipe(out_read, in_write, capture.clone()));
        }
    });
    addr
}

/// Copies one direction of a stream, recording it whole once it ends.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    capture: Capture,
) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
    }
    let _ = to.shutdown().await;
    capture.push(&seen);
}

/// Forms a pool of alpha-node and bravo-node, then charlie-node behind a relay (it
/// advertises the relay's address), runs a keyring list from alpha when keyed (a stream
/// to charlie) and returns what reached charlie.
async fn captured(key: Option<&str>) -> Capture {
    let config_of = |name: &str| {
        let mut config = config(name);
        config.tags.insert("team".into(), "secret-tag-value".into());
        config.encryption = key.map(encryption);
        config
    };
    let alpha = start(config_of("alpha-node")).await;
    let mut bravo = config_of("bravo-node");
    bravo.join = vec![addr_of(&alpha).to_string()];
    let bravo = start(bravo).await;
    // A port for charlie picked ahead, so the relay knows where to forward.
    let charlie_port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let charlie_addr = SocketAddr::from(([127, 0, 0, 1], charlie_port));
    let capture = Capture::default();
    let relay_addr = relay(capture.clone(), charlie_addr).await;
    let mut charlie = config_of("charlie-node");
    charlie.bind = charlie_addr;
    charlie.advertise = relay_addr;
    charlie.join = vec![addr_of(&alpha).to_string()];
    let charlie = start(charlie).await;
    for node in [&alpha, &bravo, &charlie] {
        eventually("the pool to converge", CONVERGE, || alive(node) == 3).await;
    }
    if key.is_some() {
        let listed = alpha.keyring(&KeyOp::List).await;
        assert_eq!((listed.num_nodes, listed.num_err), (3, 0), "{listed:?}");
    }
    eventually("datagrams through the relay", CONVERGE, || {
        capture.datagrams() > 10
    })
    .await;
    capture
}

#[tokio::test]
async fn gossip_with_encryption_no_name_tag_or_key_crosses_the_wire_in_plaintext() {
    let plain = captured(None).await;
    // The control: without encryption, names and tags are readable on the wire.
    assert!(plain.contains(b"alpha-node") && plain.contains(b"secret-tag-value"));

    let sealed = captured(Some(K1)).await;
    for secret in [
        &b"alpha-node"[..],
        b"bravo-node",
        b"charlie-node",
        b"secret-tag-value",
        K1.as_bytes(),
    ] {
        assert!(
            !sealed.contains(secret),
            "{:?} crossed the wire in plaintext",
            String::from_utf8_lossy(secret)
        );
    }
}

#[tokio::test]
async fn gossip_keys_rotate_on_a_live_pool_without_a_failure() {
    let nodes = keyed_pool(&["a", "b", "c"], K1).await;
    let mut events: Vec<_> = nodes.iter().map(Gossip::subscribe).collect();
    let a = &nodes[0];

    let installed = a.keyring(&KeyOp::Install(K2.into())).await;
    assert_eq!(
        (installed.num_nodes, installed.num_resp, installed.num_err),
        (3, 3, 0)
    );
    assert_eq!(
        installed.keys,
        BTreeMap::from([(K1.into(), 3), (K2.into(), 3)])
    );
    assert_eq!(installed.primary_keys, BTreeMap::from([(K1.into(), 3)]));

    let used = a.keyring(&KeyOp::Use(K2.into())).await;
    assert_eq!(used.num_err, 0, "{used:?}");
    assert_eq!(used.primary_keys, BTreeMap::from([(K2.into(), 3)]));

    let refused = a.keyring(&KeyOp::Remove(K2.into())).await;
    assert_eq!(refused.num_err, 3);
    assert_eq!(refused.error().unwrap(), "3/3 nodes reported failure");
    assert!(refused
        .messages
        .values()
        .all(|m| m == "Removing the primary key is not allowed"));

    let removed = a.keyring(&KeyOp::Remove(K1.into())).await;
    assert_eq!(removed.num_err, 0, "{removed:?}");
    assert_eq!(removed.keys, BTreeMap::from([(K2.into(), 3)]));

    // Gossip goes on under the new key alone: every member keeps hearing the others
    // (a probe round trip each way), and nobody was ever suspected into failing.
    let before: Vec<u64> = nodes.iter().map(|n| n.metrics().packets_in).collect();
    for (node, before) in nodes.iter().zip(before) {
        eventually("gossip under the new key", CONVERGE, || {
            node.metrics().packets_in > before + 20
        })
        .await;
        assert_eq!(node.metrics().undecryptable, 0);
    }
    for (node, events) in nodes.iter().zip(&mut events) {
        assert_eq!(alive(node), 3);
        let failed: Vec<MemberEvent> = drain(events)
            .into_iter()
            .filter(|e| matches!(e, MemberEvent::Failed(_)))
            .collect();
        assert!(failed.is_empty(), "{failed:?}");
    }
    // A new member with only the new key joins.
    let mut config = keyed("d", K2);
    config.join = vec![addr_of(a).to_string()];
    let d = start(config).await;
    eventually("d to join", CONVERGE, || alive(&d) == 4).await;
}

#[tokio::test]
async fn gossip_encryption_rolls_out_with_the_verify_settings_off() {
    // Step 1 of Consul's procedure: a member with the key but verify_incoming and
    // verify_outgoing off still talks with a member without encryption.
    let plain = start(config("plain")).await;
    let mut lenient = keyed("lenient", K1);
    if let Some(e) = lenient.encryption.as_mut() {
        e.verify_incoming = false;
        e.verify_outgoing = false;
    }
    lenient.join = vec![addr_of(&plain).to_string()];
    let lenient = start(lenient).await;
    // Step 2: verify_outgoing on; it talks with the lenient member (which opens sealed
    // packets) while the unencrypted one drops its packets and counts them.
    let mut sending = keyed("sending", K1);
    if let Some(e) = sending.encryption.as_mut() {
        e.verify_incoming = false;
    }
    sending.join = vec![addr_of(&lenient).to_string()];
    let sending = start(sending).await;
    eventually("lenient and sending to see each other", CONVERGE, || {
        status(&lenient, "sending") == Some(MemberStatus::Alive)
            && status(&sending, "lenient") == Some(MemberStatus::Alive)
    })
    .await;
    eventually("plain to drop sealed packets", CONVERGE, || {
        plain.metrics().undecryptable > 0
    })
    .await;
    assert_eq!(status(&plain, "lenient"), Some(MemberStatus::Alive));
}
