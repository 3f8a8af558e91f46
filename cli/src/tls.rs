//! The CLI's TLS settings for reaching an HTTPS agent, named as Consul's:
//! `-ca-file`, `-ca-path`, `-client-cert`, `-client-key`, `-tls-server-name`, and the
//! variables `SHOAL_CACERT`, `SHOAL_CAPATH`, `SHOAL_CLIENT_CERT`, `SHOAL_CLIENT_KEY`,
//! `SHOAL_TLS_SERVER_NAME`, `SHOAL_HTTP_SSL`, `SHOAL_HTTP_SSL_VERIFY` (each also read
//! under its `CONSUL_` name). A flag after the subcommand wins over one before it, then
//! the `SHOAL_` variable, then the `CONSUL_` one, as for `-http-addr`.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use shoal_agent::tls::client::ClientTls;
use shoal_agent::tls::settings::Sourced;

#[derive(Args, Debug, Default, Clone)]
pub struct TlsArgs {
    /// CA file to verify the agent's HTTPS certificate with [env: SHOAL_CACERT]
    #[arg(long = "ca-file", value_name = "FILE")]
    pub ca_file: Option<String>,
    /// Directory of CA files to verify the agent's HTTPS certificate with [env: SHOAL_CAPATH]
    #[arg(long = "ca-path", value_name = "DIR")]
    pub ca_path: Option<String>,
    /// Client certificate for an agent with verify_incoming [env: SHOAL_CLIENT_CERT]
    #[arg(long = "client-cert", value_name = "FILE")]
    pub client_cert: Option<String>,
    /// The client certificate's key [env: SHOAL_CLIENT_KEY]
    #[arg(long = "client-key", value_name = "FILE")]
    pub client_key: Option<String>,
    /// Name to verify the agent's certificate against instead of the address's host
    /// [env: SHOAL_TLS_SERVER_NAME]
    #[arg(long = "tls-server-name", value_name = "NAME")]
    pub tls_server_name: Option<String>,
}

/// Which variable spellings a setting is read from, Shoal's first.
fn env_names(suffix: &str) -> [String; 2] {
    [format!("SHOAL_{suffix}"), format!("CONSUL_{suffix}")]
}

/// The first non-empty of: the inner flag, the outer flag, the variables; with where it
/// came from.
fn pick(
    flag: &str,
    inner: &Option<String>,
    outer: &Option<String>,
    suffix: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Option<Sourced<String>> {
    let from_flag = inner
        .clone()
        .or_else(|| outer.clone())
        .map(|value| Sourced {
            key: format!("-{flag}"),
            value,
        });
    from_flag
        .or_else(|| {
            env_names(suffix).into_iter().find_map(|name| {
                env(&name)
                    .filter(|v| !v.is_empty())
                    .map(|value| Sourced { key: name, value })
            })
        })
        .filter(|s| !s.value.is_empty())
}

fn bool_env(suffix: &str, env: &impl Fn(&str) -> Option<String>) -> Result<Option<bool>> {
    for name in env_names(suffix) {
        if let Some(value) = env(&name).filter(|v| !v.is_empty()) {
            // Go's strconv.ParseBool, which Consul's API client uses.
            return match value.as_str() {
                "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(Some(true)),
                "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(Some(false)),
                _ => bail!("{name}: {value:?} is not true or false"),
            };
        }
    }
    Ok(None)
}

/// What the flags and variables say, resolved.
#[derive(Debug, Default)]
pub struct Resolved {
    pub tls: ClientTls,
    /// `SHOAL_HTTP_SSL=true`: an address without a scheme means `https://`.
    pub https_by_default: bool,
}

impl TlsArgs {
    pub fn resolve(
        &self,
        outer: &TlsArgs,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Resolved> {
        let path = |s: Sourced<String>| Sourced {
            key: s.key,
            value: PathBuf::from(s.value),
        };
        Ok(Resolved {
            tls: ClientTls {
                ca_file: pick("ca-file", &self.ca_file, &outer.ca_file, "CACERT", &env).map(path),
                ca_path: pick("ca-path", &self.ca_path, &outer.ca_path, "CAPATH", &env).map(path),
                client_cert: pick(
                    "client-cert",
                    &self.client_cert,
                    &outer.client_cert,
                    "CLIENT_CERT",
                    &env,
                )
                .map(path),
                client_key: pick(
                    "client-key",
                    &self.client_key,
                    &outer.client_key,
                    "CLIENT_KEY",
                    &env,
                )
                .map(path),
                server_name: pick(
                    "tls-server-name",
                    &self.tls_server_name,
                    &outer.tls_server_name,
                    "TLS_SERVER_NAME",
                    &env,
                ),
                verify: bool_env("HTTP_SSL_VERIFY", &env)?.unwrap_or(true),
            },
            https_by_default: bool_env("HTTP_SSL", &env)?.unwrap_or(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn flags_beat_shoal_variables_beat_consul_ones() {
        let inner = TlsArgs {
            ca_file: Some("inner.pem".into()),
            ..Default::default()
        };
        let outer = TlsArgs {
            ca_file: Some("outer.pem".into()),
            client_cert: Some("outer-cert.pem".into()),
            ..Default::default()
        };
        let vars = [
            ("SHOAL_CACERT", "s.pem"),
            ("CONSUL_CLIENT_KEY", "c-key.pem"),
            ("SHOAL_CLIENT_KEY", ""),
            ("CONSUL_TLS_SERVER_NAME", "server.dc1.consul"),
            ("CONSUL_HTTP_SSL_VERIFY", "false"),
            ("SHOAL_HTTP_SSL", "true"),
        ];
        let r = inner.resolve(&outer, env(&vars)).unwrap();
        let ca = r.tls.ca_file.unwrap();
        assert_eq!(
            (ca.key.as_str(), ca.value),
            ("-ca-file", "inner.pem".into())
        );
        assert_eq!(r.tls.client_cert.unwrap().key, "-client-cert");
        let key = r.tls.client_key.unwrap();
        assert_eq!(
            (key.key.as_str(), key.value),
            ("CONSUL_CLIENT_KEY", "c-key.pem".into())
        );
        assert_eq!(r.tls.server_name.unwrap().value, "server.dc1.consul");
        assert!(!r.tls.verify);
        assert!(r.https_by_default);

        let r = TlsArgs::default()
            .resolve(&TlsArgs::default(), env(&vars))
            .unwrap();
        assert_eq!(r.tls.ca_file.unwrap().key, "SHOAL_CACERT");
    }

    #[test]
    fn nothing_set_is_the_default_client() {
        let r = TlsArgs::default()
            .resolve(&TlsArgs::default(), env(&[]))
            .unwrap();
        assert!(r.tls.is_default());
        assert!(!r.https_by_default);
    }

    #[test]
    fn a_bad_boolean_is_an_error_naming_the_variable() {
        let e = TlsArgs::default()
            .resolve(
                &TlsArgs::default(),
                env(&[("SHOAL_HTTP_SSL_VERIFY", "nope")]),
            )
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "SHOAL_HTTP_SSL_VERIFY: \"nope\" is not true or false"
        );
    }
}
