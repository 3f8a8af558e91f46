//! The certificates `shoal tls` makes, shaped as Consul's `tlsutil/generate.go` makes
//! them: an ECDSA P-256 CA with Consul's subject, and leaves whose names and key usages
//! say what they are for (server, client, CLI). rcgen on ring does the signing.

use std::net::IpAddr;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
    GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints, SanType, SerialNumber,
    PKCS_ECDSA_P256_SHA256,
};
use ring::rand::{SecureRandom, SystemRandom};
use time::OffsetDateTime;

/// A certificate and its private key, both PEM.
pub struct Generated {
    pub cert_pem: String,
    pub key_pem: String,
}

/// What a leaf certificate is for; each has Consul's name, SANs and usages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Server,
    Client,
    Cli,
}

impl Role {
    /// The word in the file name and common name (`dc1-server-consul-0.pem`,
    /// `server.dc1.consul`).
    pub fn word(self) -> &'static str {
        match self {
            Role::Server => "server",
            Role::Client => "client",
            Role::Cli => "cli",
        }
    }
}

/// Everything a leaf is made from.
pub struct LeafRequest<'a> {
    pub role: Role,
    pub dc: &'a str,
    pub domain: &'a str,
    pub days: u32,
    /// `-node`: a server certificate also names `<node>.server.<dc>.<domain>`.
    pub node: Option<&'a str>,
    pub additional_dns: &'a [String],
    pub additional_ips: &'a [IpAddr],
}

/// A random positive 128-bit serial, as Consul's `GenerateSerialNumber`.
fn serial() -> Result<u128, String> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| "the system random source failed".to_string())?;
    bytes[0] &= 0x7f;
    Ok(u128::from_be_bytes(bytes).max(1))
}

fn validity(params: &mut CertificateParams, days: u32) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now;
    params.not_after = now + Duration::from_secs(u64::from(days) * 86_400);
}

/// `shoal tls ca create`: a self-signed CA valid for `days`. With `constraints`, only
/// those DNS names (and names under them) may be certified by it.
pub fn ca(days: u32, constraints: &[String]) -> Result<Generated, String> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| e.to_string())?;
    let serial = serial()?;
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CountryName, "US");
    name.push(DnType::StateOrProvinceName, "CA");
    name.push(DnType::LocalityName, "San Francisco");
    name.push(DnType::OrganizationName, "HashiCorp Inc.");
    name.push(DnType::CommonName, format!("Consul Agent CA {serial}"));
    params.distinguished_name = name;
    params.serial_number = Some(SerialNumber::from_slice(&serial.to_be_bytes()));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    if !constraints.is_empty() {
        params.name_constraints = Some(NameConstraints {
            permitted_subtrees: constraints
                .iter()
                .map(|c| GeneralSubtree::DnsName(c.clone()))
                .collect(),
            excluded_subtrees: Vec::new(),
        });
    }
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, days);
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    Ok(Generated {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// The leaf's common name: `server.dc1.consul`, `client.dc1.consul`, `cli.dc1.consul`.
pub fn common_name(role: Role, dc: &str, domain: &str) -> String {
    format!("{}.{dc}.{domain}", role.word())
}

/// `shoal tls cert create`: a leaf signed by the CA (`ca_pem`, `ca_key_pem`).
pub fn leaf(request: &LeafRequest, ca_pem: &str, ca_key_pem: &str) -> Result<Generated, String> {
    let ca_key = KeyPair::from_pem(ca_key_pem).map_err(|e| {
        format!("reading the CA key: {e} (a PKCS#8 ECDSA key is expected, `BEGIN PRIVATE KEY`)")
    })?;
    let issuer = Issuer::from_ca_cert_pem(ca_pem, ca_key)
        .map_err(|e| format!("reading the CA certificate: {e}"))?;
    let name = common_name(request.role, request.dc, request.domain);
    let mut dns: Vec<String> = request
        .additional_dns
        .iter()
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty())
        .collect();
    let mut ips: Vec<IpAddr> = request.additional_ips.to_vec();
    let usages = match request.role {
        Role::Server => {
            if let Some(node) = request.node {
                dns.push(format!("{node}.{name}"));
            }
            dns.extend([name.clone(), "localhost".into()]);
            ips.push(IpAddr::from([127, 0, 0, 1]));
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ]
        }
        Role::Client => {
            dns.extend([name.clone(), "localhost".into()]);
            ips.push(IpAddr::from([127, 0, 0, 1]));
            vec![
                ExtendedKeyUsagePurpose::ClientAuth,
                ExtendedKeyUsagePurpose::ServerAuth,
            ]
        }
        // Consul's CLI certificate names only itself and localhost, and sets no
        // extended usage (so it is good for any).
        Role::Cli => {
            dns = vec![name.clone(), "localhost".into()];
            ips.clear();
            Vec::new()
        }
    };
    let mut params = CertificateParams::default();
    let mut subject = DistinguishedName::new();
    subject.push(DnType::CommonName, name);
    params.distinguished_name = subject;
    params.serial_number = Some(SerialNumber::from_slice(&serial()?.to_be_bytes()));
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = usages;
    let mut sans = Vec::new();
    for d in dns {
        let name = d
            .clone()
            .try_into()
            .map_err(|_| format!("{d:?} is not a valid DNS name"))?;
        sans.push(SanType::DnsName(name));
    }
    sans.extend(ips.into_iter().map(SanType::IpAddress));
    params.subject_alt_names = sans;
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, request.days);
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| e.to_string())?;
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(|e| format!("signing the certificate: {e}"))?;
    Ok(Generated {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}
