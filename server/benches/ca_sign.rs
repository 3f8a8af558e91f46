//! What Connect's CA costs per leaf, to size `CSRMaxPerSecond` (Consul's default 50/s).
//!
//! `cargo bench --workspace --bench ca_sign -- [LEAVES]` (default 2,000)
//!
//! Measures, one at a time on one thread:
//! - the agent's side: a P-256 key pair and its CSR,
//! - the leader's side: parsing and checking the CSR, then signing the leaf with the root
//!   (what `ConnectCA.Sign` does under the limit, Raft aside: signing writes nothing).

use std::time::{Duration, Instant};

use rcgen::string::Ia5String;
use rcgen::{CertificateParams, SanType};
use shoal_server::connect::ca::{generate_key, generate_root, sign_leaf, LeafRequest};
use shoal_server::connect::spiffe::{trust_domain, ServiceId};
use shoal_server::connect::structs::Timestamp;

const CLUSTER: &str = "8c4d0a2e-5a38-4b7e-9b0f-1f2e3d4c5b6a";

fn main() {
    let leaves: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000);
    let domain = trust_domain(CLUSTER);
    let day = Duration::from_secs(86_400);
    let root = generate_root(
        CLUSTER,
        &domain,
        3650 * day,
        Timestamp::now(),
        generate_key().expect("key"),
        None,
    )
    .expect("root");

    let started = Instant::now();
    let csrs: Vec<String> = (0..leaves)
        .map(|i| {
            let key = generate_key().expect("key");
            let uri = ServiceId::new(&domain, "dc1", &format!("svc-{i}")).to_string();
            let mut params = CertificateParams::default();
            params.subject_alt_names = vec![SanType::URI(Ia5String::try_from(uri).expect("uri"))];
            params
                .serialize_request(&key)
                .expect("csr")
                .pem()
                .expect("pem")
        })
        .collect();
    let agent_side = started.elapsed();

    let started = Instant::now();
    for csr in &csrs {
        let request = LeafRequest::parse(csr).expect("parse");
        sign_leaf(&request, &root.root, &root.key, 3 * day, Timestamp::now()).expect("sign");
    }
    let leader_side = started.elapsed();

    let per = |total: Duration| total.as_secs_f64() * 1e6 / leaves as f64;
    println!("leaves: {leaves}");
    println!(
        "agent: key pair + CSR   {:>8.1} µs each, {:>8.0}/s",
        per(agent_side),
        leaves as f64 / agent_side.as_secs_f64()
    );
    println!(
        "leader: check + sign     {:>8.1} µs each, {:>8.0}/s",
        per(leader_side),
        leaves as f64 / leader_side.as_secs_f64()
    );
}
