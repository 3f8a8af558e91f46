//! The ACL token a command sends: `-token`, `-token-file`, then the variables, as
//! Consul's CLI reads them (a token file wins over a token in the same place).

use anyhow::{anyhow, Result};
use clap::Args;

use crate::error_text::io_message;

#[derive(Args, Debug, Default, Clone)]
pub struct TokenArgs {
    /// ACL token to use [env: SHOAL_HTTP_TOKEN or CONSUL_HTTP_TOKEN]
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
    /// File holding the ACL token [env: SHOAL_HTTP_TOKEN_FILE or CONSUL_HTTP_TOKEN_FILE]
    #[arg(long = "token-file", value_name = "PATH")]
    pub token_file: Option<String>,
}

impl TokenArgs {
    /// The token to send, `None` for none. The flags after the subcommand win over those
    /// before it, then the variables.
    pub fn resolve(&self, outer: &TokenArgs) -> Result<Option<String>> {
        self.resolve_with(outer, |name| std::env::var(name).ok())
    }

    fn resolve_with(
        &self,
        outer: &TokenArgs,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<String>> {
        let env = |name: &str| env(name).filter(|v| !v.is_empty());
        for args in [self, outer] {
            if let Some(token) = args.token.clone().filter(|t| !t.is_empty()) {
                return Ok(Some(token));
            }
            if let Some(path) = args.token_file.as_deref().filter(|p| !p.is_empty()) {
                return read_file(path).map(Some);
            }
        }
        if let Some(path) = env("SHOAL_HTTP_TOKEN_FILE").or_else(|| env("CONSUL_HTTP_TOKEN_FILE")) {
            return read_file(&path).map(Some);
        }
        Ok(env("SHOAL_HTTP_TOKEN").or_else(|| env("CONSUL_HTTP_TOKEN")))
    }
}

fn read_file(path: &str) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow!("reading the token file {path}: {}", io_message(&e)))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(anyhow!("the token file {path} is empty"));
    }
    Ok(token.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(token: &str) -> TokenArgs {
        TokenArgs {
            token: Some(token.to_string()),
            token_file: None,
        }
    }

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn flags_then_files_then_variables() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "from-file\n").unwrap();
        let file = file.to_str().unwrap().to_string();
        let vars = [
            ("SHOAL_HTTP_TOKEN", "shoal"),
            ("CONSUL_HTTP_TOKEN", "consul"),
        ];
        let none = TokenArgs::default();
        let got = |inner: &TokenArgs, outer: &TokenArgs, vars| {
            inner.resolve_with(outer, env(vars)).unwrap()
        };
        assert_eq!(got(&flag("in"), &flag("out"), &vars), Some("in".into()));
        assert_eq!(got(&none, &flag("out"), &vars), Some("out".into()));
        let from_file = TokenArgs {
            token: None,
            token_file: Some(file.clone()),
        };
        assert_eq!(got(&from_file, &none, &vars), Some("from-file".into()));
        assert_eq!(got(&none, &none, &vars), Some("shoal".into()));
        assert_eq!(
            got(&none, &none, &[("CONSUL_HTTP_TOKEN", "consul")]),
            Some("consul".into())
        );
        let file_var = [
            ("CONSUL_HTTP_TOKEN_FILE", file.as_str()),
            ("SHOAL_HTTP_TOKEN", "s"),
        ];
        assert_eq!(got(&none, &none, &file_var), Some("from-file".into()));
        assert_eq!(got(&none, &none, &[]), None);
        let missing = TokenArgs {
            token: None,
            token_file: Some("/nonexistent/token".into()),
        };
        assert!(missing.resolve_with(&none, env(&[])).is_err());
    }
}
