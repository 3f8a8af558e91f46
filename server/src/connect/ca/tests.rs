use std::sync::Arc;
use std::time::Duration;

use rcgen::string::Ia5String;
use rcgen::{CertificateParams, KeyPair, SanType};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;

use super::*;
use crate::connect::spiffe::{trust_domain, ServiceId};
use crate::connect::structs::Timestamp;

const CLUSTER: &str = "8c4d0a2e-5a38-4b7e-9b0f-1f2e3d4c5b6a";
const DAY: Duration = Duration::from_secs(24 * 3600);

/// A CSR as an agent makes it, with these URIs as SANs.
pub fn csr_for(uris: &[String]) -> (String, KeyPair) {
    let key = generate_key().unwrap();
    let mut params = CertificateParams::default();
    params.subject_alt_names = uris
        .iter()
        .map(|u| SanType::URI(Ia5String::try_from(u.clone()).unwrap()))
        .collect();
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();
    (csr, key)
}

fn web_uri() -> String {
    ServiceId::new(&trust_domain(CLUSTER), "dc1", "web").to_string()
}

fn root() -> NewRoot {
    generate_root(
        CLUSTER,
        &trust_domain(CLUSTER),
        3650 * DAY,
        Timestamp::now(),
        generate_key().unwrap(),
        None,
    )
    .unwrap()
}

/// Whether `chain_pem` (leaf first) verifies as a client certificate against `roots`.
pub fn verifies(chain_pem: &str, roots: &[&str]) -> Result<(), rustls::Error> {
    let mut store = RootCertStore::empty();
    for root in roots {
        store
            .add(CertificateDer::from_pem_slice(root.as_bytes()).unwrap())
            .unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider)
        .build()
        .unwrap();
    let chain: Vec<CertificateDer> = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    verifier
        .verify_client_cert(&chain[0], &chain[1..], UnixTime::now())
        .map(|_| ())
}

#[test]
fn a_root_is_a_ten_year_p256_ca_named_by_its_fingerprint() {
    let new = root();
    assert_eq!(new.root.private_key_type, "ec");
    assert_eq!(new.root.private_key_bits, 256);
    assert_eq!(new.root.not_after.0 - new.root.not_before.0, 3650 * 86400);
    assert_eq!(new.root.id.len(), 20 * 3 - 1, "SHA-1, colon-separated");
    assert_eq!(new.key.root_id, new.root.id);
    assert!(new
        .root
        .root_cert
        .starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(!new.root.root_cert.contains("PRIVATE KEY"));
    assert!(new.key.private_key_pem.contains("PRIVATE KEY"));
    assert!(!format!("{:?}", new.key).contains("PRIVATE KEY"));
}

#[test]
fn a_signed_leaf_verifies_against_its_root_and_names_the_service() {
    let new = root();
    let (csr, _key) = csr_for(&[web_uri()]);
    let request = LeafRequest::parse(&csr).unwrap();
    assert_eq!(request.service_id.service, "web");
    let now = Timestamp::now();
    let leaf = sign_leaf(&request, &new.root, &new.key, 3 * DAY, now).unwrap();
    assert_eq!(leaf.service, "web");
    assert_eq!(leaf.service_uri, web_uri());
    assert_eq!(leaf.valid_before, now.plus(3 * DAY));
    assert!(leaf.valid_after < now);
    verifies(&leaf.cert_pem, &[&new.root.root_cert]).unwrap();
    let other = root();
    assert!(verifies(&leaf.cert_pem, &[&other.root.root_cert]).is_err());
}

#[test]
fn a_csr_must_name_exactly_one_service() {
    for uris in [
        vec![],
        vec![web_uri(), web_uri()],
        vec![format!("spiffe://{}", trust_domain(CLUSTER))],
        vec!["https://example.com/web".to_string()],
    ] {
        let (csr, _) = csr_for(&uris);
        assert!(
            matches!(LeafRequest::parse(&csr), Err(CaError::Invalid(_))),
            "{uris:?}"
        );
    }
}

#[test]
fn garbage_and_tampered_csrs_are_refused() {
    assert!(LeafRequest::parse("not a csr").is_err());
    assert!(LeafRequest::parse(&"A".repeat(20_000)).is_err());
    let (csr, _) = csr_for(&[web_uri()]);
    // One base64 character of the public key changed: the signature no longer matches.
    let mut lines: Vec<String> = csr.lines().map(str::to_string).collect();
    let line = &mut lines[2];
    let flipped = if line.starts_with('A') { "B" } else { "A" };
    line.replace_range(0..1, flipped);
    let tampered = lines.join("\n");
    assert!(matches!(
        LeafRequest::parse(&tampered),
        Err(CaError::Invalid(_))
    ));
}

#[test]
fn a_new_root_cross_signed_by_the_old_one_is_trusted_by_old_root_holders() {
    let old = root();
    let new = generate_root(
        CLUSTER,
        &trust_domain(CLUSTER),
        3650 * DAY,
        Timestamp::now(),
        generate_key().unwrap(),
        Some((&old.root, &old.key)),
    )
    .unwrap();
    let cross_signed = new.cross_signed.clone().unwrap();
    let mut new_root = new.root.clone();
    new_root.intermediate_certs = vec![cross_signed];
    let (csr, _) = csr_for(&[web_uri()]);
    let leaf = sign_leaf(
        &LeafRequest::parse(&csr).unwrap(),
        &new_root,
        &new.key,
        DAY,
        Timestamp::now(),
    )
    .unwrap();
    verifies(&leaf.cert_pem, &[&new.root.root_cert]).unwrap();
    verifies(&leaf.cert_pem, &[&old.root.root_cert]).unwrap();
}
