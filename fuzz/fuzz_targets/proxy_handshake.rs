//! The proxy's inbound handshake path: whatever bytes a client sends to the public port
//! go into a rustls server connection built by `shoal_proxy::tls::Credentials` (the same
//! TLS 1.3, client-certificate-required config the listener uses), as the listener feeds
//! it; the peer-certificate readers (`spiffe_uri`, `serial`) get the bytes too.
//!
//! Checked: no panic, and no handshake completes without a verified client certificate.

#![no_main]

use std::io::Cursor;
use std::sync::{Arc, LazyLock};

use libfuzzer_sys::fuzz_target;
use rcgen::string::Ia5String;
use rcgen::{CertificateParams, SanType};
use rustls::ServerConnection;
use shoal_proxy::agent::{Leaf, Root, Roots};
use shoal_proxy::tls::{self, Credentials};
use shoal_server::connect::ca::{generate_key, generate_root, sign_leaf, LeafRequest};
use shoal_server::connect::spiffe::{trust_domain, ServiceId};
use shoal_server::connect::structs::Timestamp;

static CREDS: LazyLock<Credentials> = LazyLock::new(|| {
    let cluster = "11111111-2222-3333-4444-555555555555";
    let day = std::time::Duration::from_secs(86400);
    let ca = generate_root(
        cluster,
        &trust_domain(cluster),
        3650 * day,
        Timestamp::now(),
        generate_key().unwrap(),
        None,
    )
    .unwrap();
    let uri = ServiceId::new(&trust_domain(cluster), "dc1", "db").to_string();
    let key = generate_key().unwrap();
    let mut params = CertificateParams::default();
    params.subject_alt_names = vec![SanType::URI(Ia5String::try_from(uri).unwrap())];
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();
    let cert = sign_leaf(
        &LeafRequest::parse(&csr).unwrap(),
        &ca.root,
        &ca.key,
        day,
        Timestamp::now(),
    )
    .unwrap();
    let leaf = Leaf {
        serial_number: cert.serial_number,
        cert_pem: cert.cert_pem,
        private_key_pem: key.serialize_pem(),
        service: "db".into(),
        service_uri: cert.service_uri,
    };
    let roots = Roots {
        trust_domain: trust_domain(cluster),
        roots: vec![Root {
            id: ca.root.id.clone(),
            root_cert: ca.root.root_cert.clone(),
            intermediate_certs: None,
            active: true,
        }],
    };
    Credentials::build(&leaf, &roots).unwrap()
});

fuzz_target!(|data: &[u8]| {
    let _ = tls::spiffe_uri(data);
    let _ = tls::serial(data);
    let config: Arc<rustls::ServerConfig> = CREDS.server.clone();
    let Ok(mut conn) = ServerConnection::new(config) else {
        return;
    };
    // Fed in the chunks the first byte picks, as a socket might deliver them.
    let chunk = usize::from(data.first().copied().unwrap_or(1)).max(1);
    for piece in data.chunks(chunk) {
        let mut cursor = Cursor::new(piece);
        while (cursor.position() as usize) < piece.len() {
            match conn.read_tls(&mut cursor) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if conn.process_new_packets().is_err() {
                return;
            }
        }
        let mut out = Vec::new();
        let _ = conn.write_tls(&mut out);
    }
    assert!(
        conn.is_handshaking() || conn.peer_certificates().is_some(),
        "a handshake finished without a client certificate"
    );
    let _ = conn.server_name();
    let _ = conn.alpn_protocol();
});
