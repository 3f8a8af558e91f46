//! Roots: self-signed CA certificates with the trust domain as their SPIFFE URI, and the
//! cross-signed copy of a new root that lets an old root's holders trust it.

use std::time::Duration;

use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};

use super::{fingerprint, internal, random_serial, CaError};
use super::{PRIVATE_KEY_BITS, PRIVATE_KEY_TYPE};
use crate::connect::structs::{colon_hex, CaRoot, CaSigningKey, Timestamp};

/// A root and its key, to be put into Raft together.
#[derive(Debug, Clone)]
pub struct NewRoot {
    pub root: CaRoot,
    pub key: CaSigningKey,
    /// The new root signed by the previous active root (`None` for the first root): what
    /// leaves of the old root's era need to trust the new one.
    pub cross_signed: Option<String>,
}

/// Makes a root for `trust_domain` with `key`, valid from `now` for `ttl`; when
/// `previous` (the active root and its key) is given, also signs the new root's
/// certificate with it.
pub fn generate_root(
    cluster_id: &str,
    trust_domain: &str,
    ttl: Duration,
    now: Timestamp,
    key: KeyPair,
    previous: Option<(&CaRoot, &CaSigningKey)>,
) -> Result<NewRoot, CaError> {
    let serial = random_serial(8);
    let serial_number = u64::from_be_bytes(serial.clone().try_into().unwrap_or([0; 8]));
    let params = root_params(trust_domain, &serial, now, ttl)?;
    let cert = params.self_signed(&key).map_err(internal)?;
    let cross_signed = match previous {
        Some((old_root, old_key)) => {
            let old_key = KeyPair::from_pem(&old_key.private_key_pem).map_err(internal)?;
            let issuer =
                Issuer::from_ca_cert_pem(&old_root.root_cert, old_key).map_err(internal)?;
            Some(params.signed_by(&key, &issuer).map_err(internal)?.pem())
        }
        None => None,
    };
    let id = fingerprint(cert.der());
    Ok(NewRoot {
        root: CaRoot {
            id: id.clone(),
            name: "Shoal CA Primary Cert".into(),
            serial_number,
            signing_key_id: colon_hex(&params.key_identifier(&key)),
            external_trust_domain: cluster_id.to_string(),
            not_before: now,
            not_after: now.plus(ttl),
            root_cert: cert.pem(),
            intermediate_certs: Vec::new(),
            active: true,
            private_key_type: PRIVATE_KEY_TYPE.into(),
            private_key_bits: PRIVATE_KEY_BITS,
            rotated_out_at: Timestamp::default(),
            create_index: 0,
            modify_index: 0,
        },
        key: CaSigningKey {
            root_id: id,
            private_key_pem: key.serialize_pem(),
        },
        cross_signed,
    })
}

fn root_params(
    trust_domain: &str,
    serial: &[u8],
    now: Timestamp,
    ttl: Duration,
) -> Result<CertificateParams, CaError> {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    // Consul's shape: pri-<random>.consul.ca.<first 8 of the cluster ID>.consul.
    let short = trust_domain.get(..8).unwrap_or(trust_domain);
    name.push(
        DnType::CommonName,
        format!(
            "pri-{}.shoal.ca.{short}.consul",
            colon_hex(&serial[..4]).replace(':', "")
        ),
    );
    params.distinguished_name = name;
    params.serial_number = Some(SerialNumber::from_slice(serial));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let uri = Ia5String::try_from(format!("spiffe://{trust_domain}")).map_err(internal)?;
    params.subject_alt_names = vec![SanType::URI(uri)];
    params.not_before = now.to_offset();
    params.not_after = now.plus(ttl).to_offset();
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}
