use std::collections::HashMap;
use std::sync::Mutex;

use super::*;
use crate::coordinate::Coordinate;
use crate::rpc::{Op, Request, Response, RpcError};
use crate::structs::{Command, RegisterRequest};
use crate::transport::{BoxFuture, TransportError};

fn server(name: &str, dc: &str, alive: bool) -> RemoteServer {
    RemoteServer {
        name: format!("{name}.{dc}"),
        datacenter: dc.into(),
        rpc_addr: format!("{name}-{dc}:8300"),
        alive,
        coordinate: None,
    }
}

/// What each fake server does with a request.
#[derive(Clone, Copy)]
enum Behaviour {
    Answer,
    Refuse,
    NoLeader,
    DropAfterSending,
    /// A dial that times out (a server cut off).
    SlowRefuse,
}

#[derive(Default)]
struct FakeServers {
    behaviour: HashMap<String, Behaviour>,
    asked: Mutex<Vec<String>>,
}

impl FakeServers {
    fn with(list: &[(&str, Behaviour)]) -> FakeServers {
        FakeServers {
            behaviour: list.iter().map(|(a, b)| (a.to_string(), *b)).collect(),
            asked: Mutex::default(),
        }
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

impl Forwarder for FakeServers {
    fn send(
        &self,
        addr: String,
        _request: Request,
    ) -> BoxFuture<Result<Result<Response, RpcError>, TransportError>> {
        self.asked.lock().unwrap().push(addr.clone());
        let behaviour = self.behaviour.get(&addr).copied();
        if let Some(Behaviour::SlowRefuse) = behaviour {
            return Box::pin(async move {
                tokio::time::sleep(crate::transport::WAN_DIAL_TIMEOUT).await;
                Err(TransportError::Dial {
                    addr,
                    source: std::io::ErrorKind::TimedOut.into(),
                })
            });
        }
        let outcome = match behaviour {
            Some(Behaviour::Answer) => Ok(Ok(Response::Leader(addr))),
            Some(Behaviour::NoLeader) => Ok(Err(RpcError::NoLeader)),
            Some(Behaviour::DropAfterSending) => Err(TransportError::Closed),
            Some(Behaviour::Refuse | Behaviour::SlowRefuse) | None => Err(TransportError::Dial {
                addr,
                source: std::io::ErrorKind::ConnectionRefused.into(),
            }),
        };
        Box::pin(async move { outcome })
    }
}

fn request_for(dc: &str, op: Op) -> Request {
    let mut request = Request::new(op);
    request.envelope.datacenter = dc.into();
    request
}

fn read_for(dc: &str) -> Request {
    request_for(dc, Op::StatusLeader)
}

fn write_for(dc: &str) -> Request {
    request_for(
        dc,
        Op::Apply(Command::Register(RegisterRequest {
            node: "n".into(),
            address: "127.0.0.1".into(),
            ..Default::default()
        })),
    )
}

fn router() -> Router {
    let router = Router::new("dc1");
    router.update(&[
        server("a", "dc2", true),
        server("b", "dc2", true),
        server("c", "dc2", true),
        server("local", "dc1", true),
        server("x", "dc3", false),
    ]);
    router
}

fn no_path() -> Result<Response, RpcError> {
    Err(RpcError::Internal(NO_PATH_TO_DATACENTER.into()))
}

#[test]
fn datacenters_are_listed_local_first_then_alphabetically() {
    let router = router();
    assert_eq!(router.datacenters(), ["dc1", "dc2", "dc3"]);
    assert_eq!(
        router.servers("dc1"),
        None,
        "the local datacenter is not routed"
    );
    assert_eq!(
        router.servers("dc3"),
        Some(vec![]),
        "failed servers are not tried"
    );
    assert_eq!(router.servers("DC2").map(|s| s.len()), Some(3));
}

/// A 3-dimensional coordinate `x` seconds along the first axis.
fn along(x: f64) -> Coordinate {
    Coordinate {
        vec: vec![x, 0.0, 0.0],
        error: 0.1,
        adjustment: 0.0,
        height: 0.0,
    }
}

fn with_coordinate(mut server: RemoteServer, x: f64) -> RemoteServer {
    server.coordinate = Some(along(x));
    server
}

#[test]
fn datacenters_are_ordered_by_median_round_trip_and_unknown_ones_last() {
    let router = Router::new("dc1");
    router.update(&[
        with_coordinate(server("a", "dc2", true), 0.200),
        with_coordinate(server("b", "dc2", true), 0.010),
        with_coordinate(server("c", "dc2", false), 0.250),
        with_coordinate(server("a", "dc3", true), 0.050),
        with_coordinate(server("b", "dc3", true), 0.060),
        server("a", "dc0", true),
        with_coordinate(server("a", "dc4", true), 0.050),
    ]);
    assert_eq!(
        router.datacenters_by_distance(),
        ["dc0", "dc2", "dc3", "dc4"],
        "alphabetical until this server has a coordinate"
    );
    router.set_local_coordinate(Some(along(0.0)));
    // dc2's median is 200 ms (10, 200, 250: a failed server still counts, as Consul's),
    // dc3's 60 ms (upper median of 50 and 60), dc4's 50 ms, dc0 has none.
    assert_eq!(
        router.datacenters_by_distance(),
        ["dc4", "dc3", "dc2", "dc0"]
    );
    assert_eq!(router.datacenters(), ["dc1", "dc4", "dc3", "dc2", "dc0"]);
}

#[test]
fn datacenter_maps_list_servers_with_coordinates_without_their_suffix() {
    let router = Router::new("dc1");
    router.update(&[
        with_coordinate(server("b", "dc1", true), 0.0),
        with_coordinate(server("a", "dc1", true), 0.001),
        with_coordinate(server("a", "dc2", false), 0.100),
        server("b", "dc2", true),
        with_coordinate(server("a", "dc3", true), 0.050),
    ]);
    router.set_local_coordinate(Some(along(0.0)));
    let maps = router.datacenter_maps();
    let summary: Vec<(&str, &str, Vec<&str>)> = maps
        .iter()
        .map(|m| {
            let nodes = m.coordinates.iter().map(|c| c.node.as_str()).collect();
            (m.datacenter.as_str(), m.area_id.as_str(), nodes)
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("dc1", "wan", vec!["a", "b"]),
            ("dc3", "wan", vec!["a"]),
            ("dc2", "wan", vec!["a"]),
        ],
        "local first, then nearest; servers without a coordinate left out"
    );
    let json = serde_json::to_value(&maps[1]).unwrap();
    assert_eq!(json["Coordinates"][0]["Coord"]["Vec"][0], 0.05);
    assert_eq!(json["AreaID"], "wan");
}

#[test]
fn a_demoted_server_stays_last_across_updates_and_forgotten_ones_go() {
    let router = router();
    router.demote("dc2", "a-dc2:8300");
    let order = ["b-dc2:8300", "c-dc2:8300", "a-dc2:8300"];
    assert_eq!(router.servers("dc2").unwrap(), order);
    router.update(&[
        server("c", "dc2", true),
        server("a", "dc2", true),
        server("d", "dc2", true),
    ]);
    assert_eq!(
        router.servers("dc2").unwrap(),
        ["c-dc2:8300", "a-dc2:8300", "d-dc2:8300"]
    );
    router.update(&[]);
    assert_eq!(router.datacenters(), ["dc1"]);
}

#[tokio::test]
async fn an_unknown_datacenter_or_one_without_live_servers_has_no_path() {
    let router = router();
    let servers = FakeServers::default();
    assert_eq!(forward(&router, &servers, read_for("dc9")).await, no_path());
    assert_eq!(forward(&router, &servers, read_for("dc3")).await, no_path());
    assert!(servers.asked().is_empty());
}

#[tokio::test]
async fn an_unreachable_server_is_skipped_and_moved_to_the_back() {
    let router = router();
    let servers = FakeServers::with(&[
        ("a-dc2:8300", Behaviour::Refuse),
        ("b-dc2:8300", Behaviour::NoLeader),
        ("c-dc2:8300", Behaviour::Answer),
    ]);
    let answer = forward(&router, &servers, read_for("dc2")).await;
    assert_eq!(answer, Ok(Response::Leader("c-dc2:8300".into())));
    assert_eq!(servers.asked(), ["a-dc2:8300", "b-dc2:8300", "c-dc2:8300"]);
    assert_eq!(router.servers("dc2").unwrap()[0], "c-dc2:8300");
    // A write that surely did not arrive is also sent to the next server.
    let servers = FakeServers::with(&[
        ("c-dc2:8300", Behaviour::Refuse),
        ("a-dc2:8300", Behaviour::Answer),
    ]);
    let answer = forward(&router, &servers, write_for("dc2")).await;
    assert_eq!(answer, Ok(Response::Leader("a-dc2:8300".into())));
}

#[tokio::test]
async fn a_write_that_may_have_arrived_is_never_sent_again() {
    let router = router();
    let servers = FakeServers::with(&[
        ("a-dc2:8300", Behaviour::DropAfterSending),
        ("b-dc2:8300", Behaviour::Answer),
    ]);
    let answer = forward(&router, &servers, write_for("dc2")).await;
    assert!(
        matches!(answer, Err(RpcError::Unreachable(_))),
        "{answer:?}"
    );
    assert_eq!(servers.asked(), ["a-dc2:8300"]);
    // A read is.
    let router = super::tests::router();
    let answer = forward(&router, &servers, read_for("dc2")).await;
    assert_eq!(answer, Ok(Response::Leader("b-dc2:8300".into())));
}

#[tokio::test]
async fn a_datacenter_whose_servers_all_fail_has_no_path() {
    let router = router();
    let servers = FakeServers::default();
    assert_eq!(
        forward(&router, &servers, write_for("dc2")).await,
        no_path()
    );
    assert_eq!(servers.asked().len(), 3);
}

#[tokio::test]
async fn a_cut_off_datacenter_has_no_path_within_the_budget() {
    let router = router();
    let servers = FakeServers::with(&[
        ("a-dc2:8300", Behaviour::SlowRefuse),
        ("b-dc2:8300", Behaviour::SlowRefuse),
        ("c-dc2:8300", Behaviour::SlowRefuse),
    ]);
    let started = tokio::time::Instant::now();
    assert_eq!(forward(&router, &servers, read_for("dc2")).await, no_path());
    assert_eq!(
        servers.asked().len(),
        2,
        "the third dial would pass the budget"
    );
    let took = started.elapsed();
    assert!(took < FIND_SERVER_BUDGET, "no path after {took:?}");
}
