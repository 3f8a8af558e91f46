//! `shoal tls ca create` and `shoal tls cert create`: Consul's file names, output lines,
//! names and key usages, read back with x509-parser.

use std::path::Path;
use std::process::{Command, Output};

use shoal_tests::shoal_bin;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::*;

fn shoal_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(shoal_bin())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run shoal")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "shoal failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The certificate's DNS and IP subject alternative names.
fn sans(der: &[u8]) -> (Vec<String>, Vec<String>) {
    let (_, cert) = X509Certificate::from_der(der).unwrap();
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => dns.push(d.to_string()),
                GeneralName::IPAddress(ip) => {
                    let octets: [u8; 4] = (*ip).try_into().expect("IPv4");
                    ips.push(std::net::Ipv4Addr::from(octets).to_string())
                }
                _ => {}
            }
        }
    }
    (dns, ips)
}

fn pem_der(path: &Path) -> Vec<u8> {
    let text = std::fs::read(path).unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(&text).unwrap();
    assert_eq!(pem.label, "CERTIFICATE");
    pem.contents
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn ca_and_certificates_as_consul_makes_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = stdout(&shoal_in(d, &["tls", "ca", "create"]));
    assert_eq!(
        out,
        "==> Saved consul-agent-ca.pem\n==> Saved consul-agent-ca-key.pem\n"
    );
    let again = shoal_in(d, &["tls", "ca", "create"]);
    assert!(!again.status.success());
    assert_eq!(
        String::from_utf8_lossy(&again.stderr).trim(),
        "Error: consul-agent-ca.pem already exists."
    );

    let ca_der = pem_der(&d.join("consul-agent-ca.pem"));
    let (_, ca) = X509Certificate::from_der(&ca_der).unwrap();
    assert!(ca.is_ca());
    let cn = ca.subject().iter_common_name().next().unwrap();
    assert!(cn.as_str().unwrap().starts_with("Consul Agent CA "));
    let usage = ca.key_usage().unwrap().unwrap().value;
    assert!(usage.key_cert_sign() && usage.crl_sign() && usage.digital_signature());
    let days =
        (ca.validity().not_after.timestamp() - ca.validity().not_before.timestamp()) / 86_400;
    assert_eq!(days, 1825);

    let out = stdout(&shoal_in(
        d,
        &[
            "tls",
            "cert",
            "create",
            "-server",
            "-dc",
            "dc1",
            "-additional-dnsname",
            "s1.example",
            "-additional-ipaddress",
            "10.0.0.7",
        ],
    ));
    assert!(out.starts_with("==> WARNING: Server Certificates grants authority"));
    assert!(out.ends_with(
        "==> Using consul-agent-ca.pem and consul-agent-ca-key.pem\n\
         ==> Saved dc1-server-consul-0.pem\n==> Saved dc1-server-consul-0-key.pem\n"
    ));
    let server = pem_der(&d.join("dc1-server-consul-0.pem"));
    let (dns, ips) = sans(&server);
    assert_eq!(dns, ["s1.example", "server.dc1.consul", "localhost"]);
    assert_eq!(ips, ["10.0.0.7", "127.0.0.1"]);
    let (_, cert) = X509Certificate::from_der(&server).unwrap();
    assert!(!cert.is_ca());
    assert_eq!(
        cert.subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "server.dc1.consul"
    );
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && eku.client_auth);
    let usage = cert.key_usage().unwrap().unwrap().value;
    assert!(usage.digital_signature() && usage.key_encipherment());
    assert_eq!(cert.issuer(), ca.subject());
    assert!(cert.verify_signature(Some(ca.public_key())).is_ok());
    #[cfg(unix)]
    {
        assert_eq!(mode(&d.join("dc1-server-consul-0-key.pem")), 0o600);
        assert_eq!(mode(&d.join("consul-agent-ca-key.pem")), 0o600);
    }

    // A second server certificate numbers up; client and CLI ones have their own names.
    let out = stdout(&shoal_in(d, &["tls", "cert", "create", "-server"]));
    assert!(out.contains("==> Saved dc1-server-consul-1.pem\n"), "{out}");
    let out = stdout(&shoal_in(
        d,
        &["tls", "cert", "create", "-client", "-dc", "dc2"],
    ));
    assert_eq!(
        out,
        "==> Using consul-agent-ca.pem and consul-agent-ca-key.pem\n\
         ==> Saved dc2-client-consul-0.pem\n==> Saved dc2-client-consul-0-key.pem\n"
    );
    let client = pem_der(&d.join("dc2-client-consul-0.pem"));
    assert_eq!(sans(&client).0, ["client.dc2.consul", "localhost"]);
    let (_, cert) = X509Certificate::from_der(&client).unwrap();
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && eku.server_auth);
    stdout(&shoal_in(d, &["tls", "cert", "create", "-cli"]));
    let cli = pem_der(&d.join("dc1-cli-consul-0.pem"));
    assert_eq!(
        sans(&cli),
        (vec!["cli.dc1.consul".into(), "localhost".into()], vec![])
    );
}

#[test]
fn bad_input_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (args, message) in [
        (
            &["tls", "cert", "create"][..],
            "Error: Please provide either -server, -client, or -cli",
        ),
        (
            &["tls", "cert", "create", "-server", "-client"],
            "Error: Please provide either -server, -client, or -cli",
        ),
        (
            &["tls", "cert", "create", "-client", "-node", "n1"],
            "Error: -node requires -server",
        ),
        (
            &["tls", "cert", "create", "-client"],
            "Error: Error reading CA: consul-agent-ca.pem: No such file or directory",
        ),
        (
            &[
                "tls",
                "cert",
                "create",
                "-cli",
                "-additional-ipaddress",
                "x",
            ],
            "Error: -additional-ipaddress: \"x\" is not an IP address",
        ),
    ] {
        let out = shoal_in(d, args);
        assert!(!out.status.success(), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), message);
    }
    assert_eq!(std::fs::read_dir(d).unwrap().count(), 0, "nothing written");
}
