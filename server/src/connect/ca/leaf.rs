//! Leaves: a service's certificate, signed from the CSR its agent made. Only the CSR's
//! public key and its one SPIFFE URI are taken from it; everything else (validity, key
//! usages, serial) is the CA's decision, so a CSR cannot ask for a CA certificate or a
//! longer life.

use std::time::Duration;

use rcgen::{
    CertificateParams, CertificateSigningRequestParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};

use super::{internal, random_serial, CaError};
use crate::connect::spiffe::ServiceId;
use crate::connect::structs::{colon_hex, CaRoot, CaSigningKey, IssuedCert, Timestamp};

/// A leaf's not-before is set this far back, for servers whose clocks lag the leader's.
const CLOCK_SKEW: Duration = Duration::from_secs(60);
/// Bounds a CSR's size before it is parsed (a P-256 CSR is under 1 KiB).
const MAX_CSR_BYTES: usize = 16 * 1024;

/// A parsed CSR: the service it names, ready to be checked and signed.
pub struct LeafRequest {
    csr: CertificateSigningRequestParams,
    pub service_id: ServiceId,
    pub uri: String,
}

impl LeafRequest {
    /// Parses a PEM CSR and checks its signature and that it names exactly one service by
    /// SPIFFE URI and nothing else.
    pub fn parse(csr_pem: &str) -> Result<LeafRequest, CaError> {
        let invalid = |m: String| CaError::Invalid(m);
        if csr_pem.len() > MAX_CSR_BYTES {
            return Err(invalid(format!(
                "CSR is {} bytes, more than {MAX_CSR_BYTES}",
                csr_pem.len()
            )));
        }
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| invalid(format!("failed to parse CSR: {e}")))?;
        let mut uris = Vec::new();
        for name in &csr.params.subject_alt_names {
            match name {
                SanType::URI(uri) => uris.push(uri.as_str().to_string()),
                other => {
                    return Err(invalid(format!(
                        "CSR SAN contains something other than a SPIFFE URI: {other:?}"
                    )))
                }
            }
        }
        let [uri] = uris.as_slice() else {
            return Err(invalid(format!(
                "CSR SAN must contain exactly one URI, it has {}",
                uris.len()
            )));
        };
        let service_id = ServiceId::parse(uri).map_err(|e| invalid(format!("CSR SAN: {e}")))?;
        Ok(LeafRequest {
            csr,
            uri: uri.clone(),
            service_id,
        })
    }
}

/// Signs `request` with `root` (which must be active, with `key` its key), valid for `ttl`
/// from `now`.
pub fn sign_leaf(
    request: &LeafRequest,
    root: &CaRoot,
    key: &CaSigningKey,
    ttl: Duration,
    now: Timestamp,
) -> Result<IssuedCert, CaError> {
    let signing_key = KeyPair::from_pem(&key.private_key_pem).map_err(internal)?;
    let issuer = Issuer::from_ca_cert_pem(&root.root_cert, signing_key).map_err(internal)?;
    let serial = random_serial(16);
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, request.service_id.service.clone());
    params.distinguished_name = name;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyAgreement,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.subject_alt_names = request.csr.params.subject_alt_names.clone();
    let valid_after = now.minus(CLOCK_SKEW);
    let valid_before = now.plus(ttl);
    params.not_before = valid_after.to_offset();
    params.not_after = valid_before.to_offset();
    params.use_authority_key_identifier_extension = true;
    let cert = params
        .signed_by(&request.csr.public_key, &issuer)
        .map_err(internal)?;
    let mut cert_pem = cert.pem();
    for intermediate in &root.intermediate_certs {
        cert_pem.push_str(intermediate);
    }
    Ok(IssuedCert {
        serial_number: colon_hex(&serial),
        cert_pem,
        private_key_pem: String::new(),
        service: request.service_id.service.clone(),
        service_uri: request.uri.clone(),
        valid_after,
        valid_before,
        create_index: 0,
        modify_index: 0,
    })
}
