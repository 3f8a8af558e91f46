//! Flags shared by several commands, named as Consul's are.

use anyhow::{bail, Result};
use clap::Args;

use crate::http::Client;
use crate::tls::TlsArgs;

/// Where the agent's HTTP API is when no flag or variable says otherwise.
const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8500";

/// `-http-addr`: accepted before the subcommand (`shoal -http-addr X members`) and after it.
#[derive(Args, Debug, Default, Clone)]
pub struct HttpArgs {
    /// Address of the agent's HTTP API, with or without `http://`
    /// [env: SHOAL_HTTP_ADDR or CONSUL_HTTP_ADDR] [default: 127.0.0.1:8500]
    #[arg(long = "http-addr", value_name = "ADDR")]
    pub http_addr: Option<String>,
    /// `-ca-file`, `-client-cert`, … for an HTTPS agent (crate::tls).
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub token: crate::token::TokenArgs,
}

impl HttpArgs {
    /// A client for the agent. The flag after the subcommand wins over the one before
    /// it, then the variables. They are read here rather than by clap because clap
    /// would let a variable override a flag given before the subcommand.
    pub fn client(&self, outer: &HttpArgs) -> Result<Client> {
        let env = |name: &str| std::env::var(name).ok();
        let tls = self.tls.resolve(&outer.tls, env)?;
        let addr = self.addr(outer);
        let addr = if tls.https_by_default && !addr.contains("://") {
            format!("https://{addr}")
        } else {
            addr
        };
        Ok(Client::with_tls(&addr, &tls.tls)?.with_token(self.token.resolve(&outer.token)?))
    }

    /// The agent's address, resolved as [`HttpArgs::client`] does.
    pub fn addr(&self, outer: &HttpArgs) -> String {
        self.resolve(outer, |name| std::env::var(name).ok())
    }

    fn resolve(&self, outer: &HttpArgs, env: impl Fn(&str) -> Option<String>) -> String {
        let env = |name| env(name).filter(|v| !v.is_empty());
        self.http_addr
            .clone()
            .or_else(|| outer.http_addr.clone())
            .or_else(|| env("SHOAL_HTTP_ADDR"))
            .or_else(|| env("CONSUL_HTTP_ADDR"))
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| DEFAULT_HTTP_ADDR.to_string())
    }
}

/// `-datacenter` and `-stale`, on the commands that read the catalog.
#[derive(Args, Debug, Default, Clone)]
pub struct QueryArgs {
    /// Datacenter to query (default: the agent's)
    #[arg(long, value_name = "DC")]
    pub datacenter: Option<String>,
    /// Let any server answer, not only the leader: faster, possibly out of date
    #[arg(long)]
    pub stale: bool,
}

impl QueryArgs {
    /// The query parameters Consul's HTTP API takes for these flags.
    pub fn params(&self) -> Vec<(&'static str, String)> {
        let mut params = Vec::new();
        if let Some(dc) = &self.datacenter {
            params.push(("dc", dc.clone()));
        }
        if self.stale {
            params.push(("stale", String::new()));
        }
        params
    }
}

/// Parses `key=value` for `-meta` and `-node-meta`; the value may be empty or hold `=`.
pub fn key_value(s: &str) -> Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => bail!("expected key=value, got {s:?}"),
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

    fn flag(addr: &str) -> HttpArgs {
        HttpArgs {
            http_addr: Some(addr.to_string()),
            ..Default::default()
        }
    }

    #[test]
    fn inner_flag_beats_outer_flag_beats_env() {
        let vars = [("SHOAL_HTTP_ADDR", "s:1"), ("CONSUL_HTTP_ADDR", "c:1")];
        assert_eq!(flag("in:1").resolve(&flag("out:1"), env(&vars)), "in:1");
        assert_eq!(
            HttpArgs::default().resolve(&flag("out:1"), env(&vars)),
            "out:1"
        );
        assert_eq!(
            HttpArgs::default().resolve(&HttpArgs::default(), env(&vars)),
            "s:1"
        );
    }

    #[test]
    fn consul_variable_then_default() {
        let none = HttpArgs::default();
        assert_eq!(
            none.resolve(&none, env(&[("CONSUL_HTTP_ADDR", "c:1")])),
            "c:1"
        );
        assert_eq!(none.resolve(&none, env(&[])), "127.0.0.1:8500");
        let vars = [("SHOAL_HTTP_ADDR", ""), ("CONSUL_HTTP_ADDR", "c:1")];
        assert_eq!(none.resolve(&none, env(&vars)), "c:1");
    }

    #[test]
    fn query_params() {
        let q = QueryArgs {
            datacenter: Some("dc2".into()),
            stale: true,
        };
        assert_eq!(
            q.params(),
            [("dc", "dc2".to_string()), ("stale", String::new())]
        );
        assert!(QueryArgs::default().params().is_empty());
    }

    #[test]
    fn key_values() {
        assert_eq!(key_value("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert_eq!(key_value("a=").unwrap(), ("a".into(), String::new()));
        assert!(key_value("a").is_err());
        assert!(key_value("=b").is_err());
    }
}
