use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use super::frame::{self, BytesMut, Frame, FrameError, Kind, HEADER_LEN};
use super::message::{self, Hello, Inbound, PayloadError};
use super::payload::Payload;
use super::*;
use crate::raft::{RaftConfig, RaftError, RaftNode, Tuning};
use crate::rpc::{Op, QueryOptions, Read, Request, Response, RpcError};
use crate::state::StateStore;
use crate::structs::{Command, RegisterRequest};
use crate::wire::FormatError;
use crate::{Server, ServerConfig};

const DC: &str = "dc1";

fn register(name: &str) -> Command {
    Command::Register(RegisterRequest {
        node: name.to_string(),
        address: "127.0.0.1".into(),
        ..Default::default()
    })
}

/// Polls `check` every 10 ms until it holds, failing the test after `within`.
async fn eventually(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---- frames and payloads ----

#[test]
fn frames_round_trip_when_fed_byte_by_byte() {
    let frames = [
        Frame {
            stream_id: 0,
            kind: Kind::Hello,
            payload: Hello::new(DC).encode().unwrap()[HEADER_LEN..]
                .to_vec()
                .into(),
        },
        Frame {
            stream_id: u64::MAX,
            kind: Kind::Rpc,
            payload: vec![1, 2, 3].into(),
        },
        Frame {
            stream_id: 7,
            kind: Kind::Response,
            payload: Vec::new().into(),
        },
    ];
    let wire: Vec<u8> = frames
        .iter()
        .flat_map(|f| frame::encode(f.stream_id, f.kind, &f.payload).unwrap())
        .collect();
    let mut buf = BytesMut::new();
    let mut decoded = Vec::new();
    for byte in wire {
        buf.extend_from_slice(&[byte]);
        while let Some(frame) = frame::decode(&mut buf).unwrap() {
            decoded.push(frame);
        }
    }
    assert_eq!(decoded, frames);
    assert!(buf.is_empty());
}

/// The bytes on the wire, pinned: changing them needs a new [`PROTOCOL_VERSION`]. (The
/// `rpc_frame` fuzz target's seeds are these frames.)
#[test]
fn wire_format_is_stable() {
    let hello = Hello::with_version("dc1", 1).encode().unwrap();
    assert_eq!(
        &hello[..],
        &[0, 0, 0, 14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3, b'd', b'c', b'1']
    );
    let datacenters = Request::new(Op::Datacenters);
    let request = message::encode(1, Kind::Rpc, &datacenters, 1).unwrap();
    assert_eq!(&request[..], &[0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 1, 4, 2]);
    // Protocol 2's payloads are pinned by the fixtures under `server/fixtures/wire/`.
    let request = message::encode(1, Kind::Rpc, &datacenters, 2).unwrap();
    let payload = &request[HEADER_LEN..];
    assert_eq!(Request::decode(payload, 2).unwrap(), datacenters);
}

#[test]
fn decoder_rejects_bad_headers_before_reading_payloads() {
    let header = |length: u32, kind: u8| {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&length.to_be_bytes());
        buf.extend_from_slice(&9u64.to_be_bytes());
        buf.extend_from_slice(&[kind]);
        buf
    };
    assert_eq!(
        frame::decode(&mut header(10, 42)),
        Err(FrameError::UnknownKind(42))
    );
    assert_eq!(
        frame::decode(&mut header(8, Kind::Rpc as u8)),
        Err(FrameError::TooShort(8))
    );
    // Past the global limit, rejected from the length alone.
    let mut huge = BytesMut::from(&u32::MAX.to_be_bytes()[..]);
    assert_eq!(frame::decode(&mut huge), Err(FrameError::TooLong(u32::MAX)));
    // Within the global limit but not a vote's: rejected at the header, payload unsent.
    let vote = frame::decode(&mut header(1 << 20, Kind::Vote as u8)).unwrap_err();
    assert!(vote.is_oversized(), "{vote}");
    // An incomplete but acceptable frame just waits.
    assert_eq!(frame::decode(&mut header(100, Kind::Rpc as u8)), Ok(None));
}

#[test]
fn payloads_reject_garbage_trailing_bytes_and_misplaced_kinds() {
    let rpc = |payload: Vec<u8>| Frame {
        stream_id: 1,
        kind: Kind::Rpc,
        payload: payload.into(),
    };
    assert!(Inbound::parse(&rpc(vec![0xff; 32]), PROTOCOL_VERSION).is_err());
    let datacenters = Request::new(Op::Datacenters);
    let mut valid = message::encode(1, Kind::Rpc, &datacenters, PROTOCOL_VERSION).unwrap()
        [HEADER_LEN..]
        .to_vec();
    assert!(matches!(
        Inbound::parse(&rpc(valid.clone()), PROTOCOL_VERSION),
        Ok(Inbound::Rpc(request)) if request == datacenters
    ));
    valid.push(0);
    assert_eq!(
        Inbound::parse(&rpc(valid), PROTOCOL_VERSION).unwrap_err(),
        PayloadError::Format(FormatError::Trailing(1))
    );
    let response = Frame {
        stream_id: 1,
        kind: Kind::Response,
        payload: Vec::new().into(),
    };
    assert_eq!(
        Inbound::parse(&response, PROTOCOL_VERSION).unwrap_err(),
        PayloadError::NotARequest(Kind::Response)
    );
    let big = Request::read(
        Read::HealthNodeChecks {
            node: "n".repeat(8 << 10),
        },
        QueryOptions::default(),
    );
    let too_big = message::encode(1, Kind::Vote, &big, PROTOCOL_VERSION).unwrap_err();
    assert!(matches!(too_big, PayloadError::Frame(e) if e.is_oversized()));
}

/// A quick, deterministic cousin of the `rpc_frame` fuzz target.
#[test]
fn decoder_survives_random_input() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(8300);
    for _ in 0..20_000 {
        let len = rng.random_range(0..64);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        // Often make the header plausible so payload decoding is exercised too.
        if len >= HEADER_LEN && rng.random_bool(0.7) {
            bytes[..4].copy_from_slice(&((len - 4) as u32).to_be_bytes());
            bytes[12] = rng.random_range(0..7);
        }
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(frame)) = frame::decode(&mut buf) {
            let _ = Inbound::parse(&frame, PROTOCOL_VERSION);
        }
    }
}

// ---- one listener ----

/// A Raft node that never elects itself, for tests that only need a listener.
async fn idle_raft(dir: &TempDir) -> RaftNode {
    let config = RaftConfig {
        node_id: 1,
        addr: "127.0.0.1:1".into(),
        data_dir: dir.path().to_path_buf(),
        bootstrap: false,
    };
    RaftNode::open(config, Arc::new(StateStore::new()))
        .await
        .expect("open raft")
}

/// Answers `Apply(Register)` with the node name's number as the index, after a delay that
/// shrinks as the number grows, so later requests overtake earlier ones; never answers
/// `StatusLeader`; and answers `Datacenters`.
fn test_handler() -> Arc<dyn RpcHandler> {
    handler_telling_when_stuck(Arc::new(Notify::new()))
}

/// [`test_handler`], which also notifies `stuck` when a `StatusLeader` arrives, so a
/// test can order its calls after the stuck one instead of racing it.
fn handler_telling_when_stuck(stuck: Arc<Notify>) -> Arc<dyn RpcHandler> {
    Arc::new(
        move |request: Request| -> BoxFuture<Result<Response, RpcError>> {
            let stuck = stuck.clone();
            Box::pin(async move {
                match request.op {
                    Op::Apply(Command::Register(r)) => {
                        let n: u64 = r.node.trim_start_matches('n').parse().unwrap_or(0);
                        tokio::time::sleep(Duration::from_millis(100u64.saturating_sub(2 * n)))
                            .await;
                        Ok(Response::Applied { index: n })
                    }
                    Op::StatusLeader => {
                        stuck.notify_one();
                        std::future::pending().await
                    }
                    Op::Datacenters => Ok(Response::Datacenters(vec![DC.into()])),
                    _ => Err(RpcError::BadRequest("not in this test".into())),
                }
            })
        },
    )
}

async fn serve_test_handler(addr: &str, raft: &RaftNode) -> Serving {
    Listener::bind(addr, ListenerConfig::new(DC))
        .await
        .expect("bind")
        .serve(raft.clone(), test_handler())
}

/// Serves [`handler_telling_when_stuck`] on a fresh loopback port.
async fn serve_telling_when_stuck(raft: &RaftNode) -> (Serving, Arc<Notify>) {
    let arrived = Arc::new(Notify::new());
    let serving = Listener::bind("127.0.0.1:0", ListenerConfig::new(DC))
        .await
        .expect("bind")
        .serve(raft.clone(), handler_telling_when_stuck(arrived.clone()));
    (serving, arrived)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_share_one_connection_and_may_finish_out_of_order() {
    let dir = TempDir::new().unwrap();
    let raft = idle_raft(&dir).await;
    let serving = serve_test_handler("127.0.0.1:0", &raft).await;
    let addr = serving.local_addr().to_string();
    let pool = Pool::new(PoolConfig::new(DC));
    let calls: Vec<_> = (0..50u64)
        .map(|n| {
            let (pool, addr) = (pool.clone(), addr.clone());
            tokio::spawn(async move {
                let request = Request::new(Op::Apply(register(&format!("n{n}"))));
                (n, pool.forward(&addr, request).await)
            })
        })
        .collect();
    for call in calls {
        let (n, answer) = call.await.unwrap();
        assert_eq!(answer, Ok(Response::Applied { index: n }));
    }
    assert_eq!(pool.metrics().dials, 1);
    assert_eq!(serving.metrics().connections_accepted, 1);
    assert_eq!(serving.metrics().requests_served, 50);
    serving.shutdown().await;
    raft.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_request_times_out_without_blocking_others() {
    let dir = TempDir::new().unwrap();
    let raft = idle_raft(&dir).await;
    let (serving, arrived) = serve_telling_when_stuck(&raft).await;
    let addr = serving.local_addr().to_string();
    let pool = Pool::new(PoolConfig {
        rpc_timeout: Duration::from_millis(300),
        ..PoolConfig::new(DC)
    });
    let stuck = {
        let (pool, addr) = (pool.clone(), addr.clone());
        tokio::spawn(async move { pool.rpc(&addr, &Request::new(Op::StatusLeader)).await })
    };
    // Answered after the stuck request was sent, so the link is not presumed stalled.
    tokio::time::timeout(Duration::from_secs(5), arrived.notified())
        .await
        .expect("the stuck request reaches the server");
    let answer = pool
        .rpc(&addr, &Request::new(Op::Datacenters))
        .await
        .unwrap();
    assert_eq!(answer, Ok(Response::Datacenters(vec![DC.into()])));
    assert!(matches!(
        stuck.await.unwrap(),
        Err(TransportError::Timeout(_))
    ));
    assert_eq!(pool.metrics().timeouts, 1);
    // The connection survives a timed-out stream.
    assert!(pool
        .rpc(&addr, &Request::new(Op::Datacenters))
        .await
        .is_ok());
    assert_eq!(pool.metrics().dials, 1);
    serving.shutdown().await;
    raft.shutdown().await.unwrap();
}

/// A connection that answers nothing for a whole timeout is presumed stalled (a lossy
/// link backing off TCP retransmissions): the next call dials afresh instead of queueing
/// behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_silent_for_a_whole_timeout_is_redialed() {
    let dir = TempDir::new().unwrap();
    let raft = idle_raft(&dir).await;
    let serving = serve_test_handler("127.0.0.1:0", &raft).await;
    let addr = serving.local_addr().to_string();
    let pool = Pool::new(PoolConfig {
        rpc_timeout: Duration::from_millis(300),
        ..PoolConfig::new(DC)
    });
    assert!(matches!(
        pool.rpc(&addr, &Request::new(Op::StatusLeader)).await,
        Err(TransportError::Timeout(_))
    ));
    let answer = pool
        .rpc(&addr, &Request::new(Op::Datacenters))
        .await
        .unwrap();
    assert_eq!(answer, Ok(Response::Datacenters(vec![DC.into()])));
    assert_eq!(pool.metrics().dials, 2);
    serving.shutdown().await;
    raft.shutdown().await.unwrap();
}

/// The stall is seen even when the caller gave up before the pool's deadline (an HTTP
/// client's shorter timeout): the request stays overdue until something is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_is_seen_after_its_caller_gave_up() {
    let dir = TempDir::new().unwrap();
    let raft = idle_raft(&dir).await;
    let (serving, arrived) = serve_telling_when_stuck(&raft).await;
    let addr = serving.local_addr().to_string();
    let pool = Pool::new(PoolConfig {
        rpc_timeout: Duration::from_millis(300),
        ..PoolConfig::new(DC)
    });
    let stuck = {
        let (pool, addr) = (pool.clone(), addr.clone());
        tokio::spawn(async move { pool.rpc(&addr, &Request::new(Op::StatusLeader)).await })
    };
    tokio::time::timeout(Duration::from_secs(5), arrived.notified())
        .await
        .expect("the stuck request reaches the server");
    stuck.abort();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let answer = pool
        .rpc(&addr, &Request::new(Op::Datacenters))
        .await
        .unwrap();
    assert_eq!(answer, Ok(Response::Datacenters(vec![DC.into()])));
    assert_eq!(
        pool.metrics().dials,
        2,
        "the stalled connection was redialed"
    );
    serving.shutdown().await;
    raft.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lan_pool_refuses_a_server_of_another_datacenter() {
    let dir = TempDir::new().unwrap();
    let raft = idle_raft(&dir).await;
    let serving = serve_test_handler("127.0.0.1:0", &raft).await;
    let addr = serving.local_addr().to_string();
    let foreign = Pool::new(PoolConfig::new("dc2"));
    match foreign.rpc(&addr, &Request::new(Op::Datacenters)).await {
        Err(TransportError::Handshake {
            source: HandshakeError::ForeignDatacenter { theirs, .. },
            ..
        }) => assert_eq!(theirs, DC),
        other => panic!("expected a refused handshake, got {other:?}"),
    }
    assert_eq!(foreign.metrics().foreign_datacenter, 1);
    // Backed off: the next call fails fast without dialing.
    assert!(matches!(
        foreign.rpc(&addr, &Request::new(Op::Datacenters)).await,
        Err(TransportError::Backoff { .. })
    ));
    assert_eq!(foreign.metrics().dials, 1);
    serving.shutdown().await;
    raft.shutdown().await.unwrap();
}

/// A request forwarded from another datacenter to this one.
fn for_datacenter(datacenter: &str, op: Op) -> Request {
    let mut request = Request::new(op);
    request.envelope.datacenter = datacenter.into();
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_datacenter_may_forward_rpcs_for_this_one_but_never_raft() {
    let dir = TempDir::new().unwrap();
    let raft = idle_raft(&dir).await;
    let serving = serve_test_handler("127.0.0.1:0", &raft).await;
    let addr = serving.local_addr().to_string();
    let wan = Pool::new(PoolConfig::wan("dc2"));
    let answer = wan.rpc(&addr, &for_datacenter(DC, Op::Datacenters)).await;
    assert_eq!(answer.unwrap(), Ok(Response::Datacenters(vec![DC.into()])));
    assert_eq!(serving.metrics().foreign_datacenter, 0);

    // Raft from another datacenter: refused, counted, and the connection is closed.
    let vote =
        openraft::raft::VoteRequest::<crate::raft::NodeId>::new(openraft::Vote::new(1, 1), None);
    type VoteAnswer = Result<
        openraft::raft::VoteResponse<crate::raft::NodeId>,
        openraft::error::RaftError<crate::raft::NodeId>,
    >;
    let refused: Result<VoteAnswer, _> = wan
        .call(&addr, frame::Kind::Vote, &vote, Duration::from_secs(5))
        .await;
    assert!(
        refused.is_err(),
        "a vote from dc2 was answered: {refused:?}"
    );
    eventually("the refusal to be counted", Duration::from_secs(5), || {
        serving.metrics().foreign_datacenter == 1
    })
    .await;

    // An RPC for the peer's own (or a third) datacenter would be forwarded again: refused.
    for datacenter in ["", "dc3"] {
        let request = for_datacenter(datacenter, Op::Datacenters);
        assert!(wan.rpc(&addr, &request).await.is_err(), "{datacenter:?}");
    }
    eventually(
        "both refusals to be counted",
        Duration::from_secs(5),
        || serving.metrics().foreign_datacenter == 3,
    )
    .await;
    // A fresh connection serves this datacenter's RPCs again (the refused one may still
    // be closing when the first call is made).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match wan.rpc(&addr, &for_datacenter(DC, Op::Datacenters)).await {
            Ok(answer) => {
                assert_eq!(answer, Ok(Response::Datacenters(vec![DC.into()])));
                break;
            }
            Err(e) => assert!(Instant::now() < deadline, "no answer after refusals: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    serving.shutdown().await;
    raft.shutdown().await.unwrap();
}

/// Opens a raw connection, optionally says hello, sends `bytes`, and returns once the
/// listener has closed the connection.
async fn send_raw(addr: &str, hello: bool, bytes: &[u8]) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    if hello {
        let frame = Hello::new(DC).encode().unwrap();
        stream.write_all(&frame).await.unwrap();
    }
    stream.write_all(bytes).await.unwrap();
    let mut sink = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut sink));
    // A reset is as good as an orderly close.
    let _ = closed.await.expect("listener left the connection open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_close_the_connection_and_are_counted() {
    let dir = TempDir::new().unwrap();
    let raft = idle_raft(&dir).await;
    let serving = serve_test_handler("127.0.0.1:0", &raft).await;
    let addr = serving.local_addr().to_string();

    // Not our protocol at all: "GET " read as a length is over a gigabyte.
    send_raw(&addr, false, b"GET / HTTP/1.1\r\n\r\n").await;
    assert_eq!(serving.metrics().oversized_frames, 1);
    // A request before the hello.
    let early = message::encode(
        1,
        Kind::Rpc,
        &Request::new(Op::Datacenters),
        PROTOCOL_VERSION,
    )
    .unwrap();
    send_raw(&addr, false, &early).await;
    assert_eq!(serving.metrics().malformed_frames, 1);
    // After the hello: an unknown kind, then a request whose payload does not decode.
    send_raw(&addr, true, &[0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 1, 99]).await;
    assert_eq!(serving.metrics().malformed_frames, 2);
    let garbage = frame::encode(1, Kind::Rpc, &[0xff; 16]).unwrap();
    send_raw(&addr, true, &garbage).await;
    assert_eq!(serving.metrics().malformed_frames, 3);
    // A vote claiming a megabyte.
    let mut vote = frame::encode(1, Kind::Vote, &[]).unwrap().to_vec();
    vote[..4].copy_from_slice(&(1u32 << 20).to_be_bytes());
    send_raw(&addr, true, &vote).await;
    assert_eq!(serving.metrics().oversized_frames, 2);

    // A protocol older than any this release accepts.
    let hello = Hello::with_version(DC, 0);
    send_raw(&addr, false, &hello.encode().unwrap()).await;
    assert_eq!(serving.metrics().handshake_failures, 1);

    // None of that disturbed well-behaved peers.
    let pool = Pool::new(PoolConfig::new(DC));
    assert!(pool
        .rpc(&addr, &Request::new(Op::Datacenters))
        .await
        .is_ok());
    serving.shutdown().await;
    raft.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_redials_a_restarted_peer() {
    let dir = TempDir::new().unwrap();
    let raft = idle_raft(&dir).await;
    let serving = serve_test_handler("127.0.0.1:0", &raft).await;
    let addr = serving.local_addr().to_string();
    let pool = Pool::new(PoolConfig::new(DC));
    assert!(pool
        .rpc(&addr, &Request::new(Op::Datacenters))
        .await
        .is_ok());
    serving.shutdown().await;
    assert!(pool
        .rpc(&addr, &Request::new(Op::Datacenters))
        .await
        .is_err());

    let serving = serve_test_handler(&addr, &raft).await;
    let deadline = Instant::now() + Duration::from_secs(3);
    while pool
        .rpc(&addr, &Request::new(Op::Datacenters))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "no reconnect within 3s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(pool.metrics().dials >= 2);
    serving.shutdown().await;
    raft.shutdown().await.unwrap();
}

/// A [`Server`] answers RPCs arriving on its own server port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_answers_rpcs_on_its_server_port() {
    let dir = TempDir::new().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let server = Server::start(ServerConfig {
        node_name: "s1".into(),
        datacenter: DC.into(),
        raft_id: 1,
        rpc_addr: addr.clone(),
        rpc_bind: addr.clone(),
        data_dir: dir.path().to_path_buf(),
        bootstrap: true,
        tuning: Tuning::default(),
        autopilot: Default::default(),
        bootstrap_expect: 0,
        connect: Default::default(),
        acl: Default::default(),
        tls: None,
    })
    .await
    .unwrap();
    let pool = Pool::new(PoolConfig::new(DC));
    assert_eq!(
        pool.forward(&addr, Request::new(Op::Datacenters)).await,
        Ok(Response::Datacenters(vec![DC.into()]))
    );
    server
        .wait_for_leader(Duration::from_secs(5))
        .await
        .unwrap();
    assert!(matches!(
        pool.forward(&addr, Request::new(Op::Apply(register("web1"))))
            .await,
        Ok(Response::Applied { .. })
    ));
    assert!(server.state().read(|t| t.node("web1").is_some()));
    server.shutdown().await.unwrap();
}

// ---- a three-server cluster ----

struct TestServer {
    id: u64,
    addr: String,
    dir: TempDir,
    state: Arc<StateStore>,
    raft: RaftNode,
    serving: Serving,
}

/// Applies writes locally when leading and forwards them to the leader otherwise, as
/// `Server::handle` is to do.
fn forwarding_handler(raft: RaftNode, pool: Pool) -> Arc<dyn RpcHandler> {
    Arc::new(
        move |request: Request| -> BoxFuture<Result<Response, RpcError>> {
            let (raft, pool) = (raft.clone(), pool.clone());
            Box::pin(async move {
                let Op::Apply(command) = request.op else {
                    return Err(RpcError::BadRequest("only writes in this test".into()));
                };
                match raft.apply(command.clone()).await {
                    Ok((index, _)) => Ok(Response::Applied { index }),
                    Err(RaftError::NotLeader {
                        leader: Some((_, addr)),
                    }) => pool.forward(&addr, Request::new(Op::Apply(command))).await,
                    Err(RaftError::NoLeader | RaftError::NotLeader { .. }) => {
                        Err(RpcError::NoLeader)
                    }
                    Err(e) => Err(RpcError::Internal(e.to_string())),
                }
            })
        },
    )
}

impl TestServer {
    /// Starts server `id` on `addr` (port 0 for a fresh one) with the store in `dir`.
    async fn start(id: u64, addr: &str, dir: TempDir, tuning: Tuning) -> TestServer {
        let listener = Listener::bind(addr, ListenerConfig::new(DC)).await.unwrap();
        let addr = listener.local_addr().to_string();
        let pool = Pool::new(PoolConfig::new(DC));
        let state = Arc::new(StateStore::new());
        let config = RaftConfig {
            node_id: id,
            addr: addr.clone(),
            data_dir: dir.path().to_path_buf(),
            bootstrap: false,
        };
        let raft = RaftNode::open_tuned_with(config, state.clone(), tuning, pool.clone())
            .await
            .unwrap();
        let serving = listener.serve(raft.clone(), forwarding_handler(raft.clone(), pool));
        TestServer {
            id,
            addr,
            dir,
            state,
            raft,
            serving,
        }
    }

    /// Stops it, keeping its directory and address for a restart.
    async fn stop(self) -> (TempDir, String) {
        self.serving.shutdown().await;
        self.raft.shutdown().await.unwrap();
        (self.dir, self.addr)
    }

    fn has(&self, node: &str) -> bool {
        self.state.read(|t| t.node(node).is_some())
    }
}

async fn cluster(tuning: Tuning) -> Vec<TestServer> {
    let mut servers = Vec::new();
    for id in 1..=3 {
        servers.push(TestServer::start(id, "127.0.0.1:0", TempDir::new().unwrap(), tuning).await);
    }
    let members: BTreeMap<u64, String> = servers.iter().map(|s| (s.id, s.addr.clone())).collect();
    servers[0].raft.initialize_with(members).await.unwrap();
    eventually("a leader known to all", Duration::from_secs(5), || {
        leader(&servers).is_some()
    })
    .await;
    servers
}

/// The index of the server that leads and that every server follows.
fn leader(servers: &[TestServer]) -> Option<usize> {
    let index = servers.iter().position(|s| s.raft.is_leader())?;
    let id = servers[index].id;
    servers
        .iter()
        .all(|s| s.raft.leader().map(|(leader, _)| leader) == Some(id))
        .then_some(index)
}

/// Writes through whichever server leads, retrying across a leadership change.
async fn write(servers: &[TestServer], node: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(index) = leader(servers) {
            if servers[index].raft.apply(register(node)).await.is_ok() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "could not write {node}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn stop_all(servers: Vec<TestServer>) {
    for server in servers {
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_the_leader_is_applied_on_every_server() {
    let servers = cluster(Tuning::default()).await;
    write(&servers, "web1").await;
    eventually("web1 everywhere", Duration::from_secs(5), || {
        servers.iter().all(|s| s.has("web1"))
    })
    .await;
    let leading = leader(&servers).unwrap();
    let snapshot = servers[leading].state.snapshot(0);
    eventually("identical tables", Duration::from_secs(5), || {
        servers.iter().all(|s| s.state.snapshot(0) == snapshot)
    })
    .await;
    for (i, server) in servers.iter().enumerate() {
        let contact = server.raft.last_contact().expect("last contact known");
        if i == leading {
            assert_eq!(contact, Duration::ZERO);
        } else {
            assert!(
                contact < Duration::from_secs(1),
                "follower contact {contact:?}"
            );
        }
    }
    stop_all(servers).await;
}

/// The leader's gate for commands newer than some server: it goes by the protocol each
/// peer agreed to in its handshake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_proposes_a_newer_command_only_once_every_server_speaks_its_protocol() {
    let servers = cluster(Tuning::default()).await;
    write(&servers, "web1").await;
    let leading = &servers[leader(&servers).unwrap()].raft;
    assert!(leading.check_cluster_speaks(PROTOCOL_VERSION).is_ok());
    match leading.check_cluster_speaks(PROTOCOL_VERSION + 1) {
        Err(RaftError::UpgradeInProgress { needs, speaks, .. }) => {
            assert_eq!(
                (needs, speaks),
                (PROTOCOL_VERSION + 1, Some(PROTOCOL_VERSION))
            );
        }
        other => panic!("a command newer than the cluster passed the gate: {other:?}"),
    }
    stop_all(servers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_forwards_an_rpc_to_the_leader() {
    let servers = cluster(Tuning::default()).await;
    let follower = servers.iter().find(|s| !s.raft.is_leader()).unwrap();
    let client = Pool::new(PoolConfig::new(DC));
    let answer = client
        .forward(&follower.addr, Request::new(Op::Apply(register("api1"))))
        .await;
    assert!(matches!(answer, Ok(Response::Applied { .. })), "{answer:?}");
    eventually("api1 everywhere", Duration::from_secs(5), || {
        servers.iter().all(|s| s.has("api1"))
    })
    .await;
    stop_all(servers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_leader_elects_another_and_writes_continue() {
    let mut servers = cluster(Tuning::default()).await;
    write(&servers, "before").await;
    let old = servers.remove(leader(&servers).unwrap());
    let lost = Instant::now();
    old.stop().await;
    eventually("a new leader", Duration::from_secs(3), || {
        leader(&servers).is_some()
    })
    .await;
    let failover = lost.elapsed();
    println!("failover took {failover:?}");
    write(&servers, "after").await;
    eventually(
        "both writes on the survivors",
        Duration::from_secs(5),
        || servers.iter().all(|s| s.has("before") && s.has("after")),
    )
    .await;
    stop_all(servers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_without_its_quorum_steps_aside_and_refuses_writes_fast() {
    let mut servers = cluster(Tuning::default()).await;
    write(&servers, "before").await;
    let lone = servers.remove(leader(&servers).unwrap());
    let mut stopped = Vec::new();
    for follower in servers {
        let id = follower.id;
        stopped.push((id, follower.stop().await));
    }
    eventually("the leader deposed", Duration::from_secs(5), || {
        lone.raft.leader().is_none() && !lone.raft.is_leader()
    })
    .await;
    let started = Instant::now();
    let refused = lone.raft.apply(register("lost")).await;
    assert!(matches!(refused, Err(RaftError::NoLeader)), "{refused:?}");
    let refused = lone.raft.ensure_linearizable().await;
    assert!(matches!(refused, Err(RaftError::NoLeader)), "{refused:?}");
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "refusals took {:?}",
        started.elapsed()
    );
    assert!(lone.raft.last_contact().unwrap() > Duration::from_secs(1));

    // The quorum returns: one leader again, and writes go through.
    let mut servers = vec![lone];
    for (id, (dir, addr)) in stopped {
        servers.push(TestServer::start(id, &addr, dir, Tuning::default()).await);
    }
    eventually("a leader again", Duration::from_secs(10), || {
        leader(&servers).is_some()
    })
    .await;
    write(&servers, "after").await;
    eventually("both writes everywhere", Duration::from_secs(5), || {
        servers.iter().all(|s| s.has("before") && s.has("after"))
    })
    .await;
    stop_all(servers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_server_catches_up_from_a_snapshot() {
    let tuning = Tuning {
        snapshot_every: 20,
        keep_after_snapshot: 5,
        ..Tuning::default()
    };
    let mut servers = cluster(tuning).await;
    write(&servers, "n0").await;
    let lagging = servers.iter().position(|s| !s.raft.is_leader()).unwrap();
    let server = servers.remove(lagging);
    let (id, behind_at) = (
        server.id,
        server.raft.raft().metrics().borrow().last_log_index,
    );
    let (dir, addr) = server.stop().await;

    for i in 1..=100 {
        write(&servers, &format!("n{i}")).await;
    }
    let leading = &servers[leader(&servers).unwrap()];
    eventually(
        "the leader purged past the lagging server",
        Duration::from_secs(10),
        || {
            leading
                .raft
                .raft()
                .metrics()
                .borrow()
                .purged
                .map(|p| p.index)
                > behind_at
        },
    )
    .await;

    let restarted = TestServer::start(id, &addr, dir, tuning).await;
    eventually(
        "the lagging server caught up",
        Duration::from_secs(10),
        || (0..=100).all(|i| restarted.has(&format!("n{i}"))),
    )
    .await;
    let installed = restarted
        .raft
        .raft()
        .metrics()
        .borrow()
        .snapshot
        .map(|s| s.index);
    assert!(
        installed > behind_at,
        "snapshot {installed:?}, was at {behind_at:?}"
    );
    servers.push(restarted);
    stop_all(servers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_join_and_leave_as_voters() {
    let mut servers = Vec::new();
    for id in 1..=3 {
        let dir = TempDir::new().unwrap();
        servers.push(TestServer::start(id, "127.0.0.1:0", dir, Tuning::default()).await);
    }
    let first = &servers[0];
    let alone = BTreeMap::from([(first.id, first.addr.clone())]);
    first.raft.initialize_with(alone).await.unwrap();
    write(&servers[..1], "early").await;
    for server in &servers[1..] {
        first.raft.add_voter(server.id, &server.addr).await.unwrap();
    }
    first.raft.add_voter(2, &servers[1].addr).await.unwrap();
    assert!(first.raft.add_voter(2, "127.0.0.1:1").await.is_err());

    let voters = |s: &TestServer| -> Vec<u64> { s.raft.voters().iter().map(|v| v.0).collect() };
    eventually("three voters everywhere", Duration::from_secs(5), || {
        servers
            .iter()
            .all(|s| voters(s) == [1, 2, 3] && s.has("early"))
    })
    .await;
    first.raft.remove_voter(3).await.unwrap();
    first.raft.remove_voter(3).await.unwrap();
    eventually("two voters", Duration::from_secs(5), || {
        servers[..2].iter().all(|s| voters(s) == [1, 2])
    })
    .await;
    write(&servers[..2], "late").await;
    stop_all(servers).await;
}

/// A protocol-1 server, as commit 78bff10 runs it: refuses any other version naming the one
/// it expects, then speaks bincode of its own types.
async fn serve_protocol_1(listener: tokio::net::TcpListener) {
    use crate::wire::v1::types as v1;
    use crate::wire::{from_bincode, to_bincode};
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let (read, mut write) = stream.into_split();
        let mut frames = super::io::FrameReader::new(read);
        let Ok(Some(hello)) = frames.next().await else {
            continue;
        };
        let hello = Hello::decode(&hello.payload).unwrap();
        if hello.version != 1 {
            let refusal = format!("protocol version {}, expected 1", hello.version);
            let _ = write.write_all(&message::error_frame(0, &refusal)).await;
            continue;
        }
        write
            .write_all(&Hello::with_version(DC, 1).encode().unwrap())
            .await
            .unwrap();
        while let Ok(Some(frame)) = frames.next().await {
            let request: v1::Request = from_bincode(&frame.payload).unwrap();
            let answer: Result<v1::Response, v1::RpcError> = match request {
                v1::Request::Datacenters => Ok(v1::Response::Datacenters(vec![DC.into()])),
                other => Err(v1::RpcError::BadRequest(format!("{other:?}"))),
            };
            let payload = to_bincode(&answer).unwrap();
            let reply = frame::encode(frame.stream_id, Kind::Response, &payload).unwrap();
            write.write_all(&reply).await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_pool_falls_back_to_protocol_1_for_a_server_that_speaks_only_that() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let old_server = tokio::spawn(serve_protocol_1(listener));
    let pool = Pool::new(PoolConfig::new(DC));
    let answer = pool
        .rpc(&addr, &Request::new(Op::Datacenters))
        .await
        .unwrap();
    assert_eq!(answer, Ok(Response::Datacenters(vec![DC.into()])));
    assert_eq!(pool.negotiated_version(&addr), Some(1));
    // What protocol 1 cannot carry is refused here, not lost on the way.
    let mut with_token = Request::new(Op::Datacenters);
    with_token.envelope.token = "secret".into();
    assert!(pool.rpc(&addr, &with_token).await.is_err());
    old_server.abort();
}

#[tokio::test]
async fn a_listener_serves_a_protocol_1_dialer_in_protocol_1() {
    let dir = TempDir::new().unwrap();
    let raft = idle_raft(&dir).await;
    let serving = serve_test_handler("127.0.0.1:0", &raft).await;
    let mut stream = TcpStream::connect(serving.local_addr()).await.unwrap();
    stream
        .write_all(&Hello::with_version(DC, 1).encode().unwrap())
        .await
        .unwrap();
    // The request as a protocol-1 agent encodes it.
    let request = crate::wire::to_bincode(&crate::wire::v1::types::Request::Datacenters).unwrap();
    stream
        .write_all(&frame::encode(7, Kind::Rpc, &request).unwrap())
        .await
        .unwrap();
    let (read, _write) = stream.into_split();
    let mut frames = super::io::FrameReader::new(read);
    let hello = frames.next().await.unwrap().unwrap();
    assert_eq!(Hello::decode(&hello.payload).unwrap().version, 1);
    let reply = frames.next().await.unwrap().unwrap();
    assert_eq!((reply.kind, reply.stream_id), (Kind::Response, 7));
    let answer: Result<crate::wire::v1::types::Response, crate::wire::v1::types::RpcError> =
        crate::wire::from_bincode(&reply.payload).unwrap();
    assert_eq!(
        answer,
        Ok(crate::wire::v1::types::Response::Datacenters(vec![
            DC.into()
        ]))
    );
    serving.shutdown().await;
    raft.shutdown().await.unwrap();
}
