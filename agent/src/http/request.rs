//! Reading requests: JSON bodies (keys as loosely as Consul reads them) and query
//! parameters (repeatable, as `?tag=a&tag=b` needs).

use std::time::Duration;

use serde::de::DeserializeOwned;
use shoal_server::duration::parse_go_duration;
use shoal_server::rpc::{Consistency, QueryOptions};
use shoal_server::structs::Meta;

use super::error::ApiError;
use crate::decode::normalize_keys;

/// Decodes a JSON body into `T`, naming the bad field on error. Unknown fields are
/// ignored, as Consul's decoder does, so newer clients keep working.
pub fn decode_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("Request decode failed: empty body"));
    }
    let mut value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Request decode failed: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "Request decode failed: body must be a JSON object",
        ));
    }
    normalize_keys(&mut value);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        ApiError::bad_request(format!("Request decode failed: {path}: {}", e.into_inner()))
    })
}

/// Query parameters in order, keys repeatable.
#[derive(Debug, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    pub fn parse(query: Option<&str>) -> Params {
        Params {
            pairs: form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, key: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// A flag such as `?passing` or `?stale`: present and not explicitly false.
    pub fn flag(&self, key: &str) -> Result<bool, ApiError> {
        match self.get(key) {
            None => Ok(false),
            Some("") => Ok(true),
            Some(v) => v
                .parse()
                .map_err(|_| ApiError::bad_request(format!("Invalid value for ?{key}: {v:?}"))),
        }
    }

    /// `?index`, `?wait`, `?stale`, `?consistent`.
    pub fn query_options(&self) -> Result<QueryOptions, ApiError> {
        let min_index = match self.get("index") {
            None | Some("") => 0,
            Some(v) => v
                .parse()
                .map_err(|_| ApiError::bad_request(format!("Invalid index: {v:?}")))?,
        };
        let max_wait = match self.get("wait") {
            None | Some("") => Duration::ZERO,
            Some(v) => parse_wait(v)?,
        };
        let stale = self.flag("stale")?;
        let consistent = self.flag("consistent")?;
        let consistency = match (stale, consistent) {
            (true, true) => {
                return Err(ApiError::bad_request(
                    "Cannot specify ?stale with ?consistent, conflicting semantics.",
                ))
            }
            (true, false) => Consistency::Stale,
            (false, true) => Consistency::Consistent,
            (false, false) => Consistency::Default,
        };
        Ok(QueryOptions {
            min_index,
            max_wait,
            consistency,
        })
    }

    /// `?node-meta=key:value`, repeatable; all must match.
    pub fn node_meta(&self) -> Result<Meta, ApiError> {
        self.all("node-meta")
            .into_iter()
            .map(|pair| match pair.split_once(':') {
                Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
                _ => Err(ApiError::bad_request(format!(
                    "Invalid node-meta {pair:?}: want key:value"
                ))),
            })
            .collect()
    }

    /// Filter expressions are not implemented; refusing them beats silently ignoring a
    /// filter the caller relies on.
    pub fn refuse_filter(&self) -> Result<(), ApiError> {
        match self.get("filter") {
            Some(f) if !f.is_empty() => Err(ApiError::bad_request(
                "Failed to create boolean expression evaluator: ?filter is not supported by Shoal yet",
            )),
            _ => Ok(()),
        }
    }
}

/// `?wait` takes a Go duration (`10s`, `5m`); Consul also reads a bare number as seconds.
fn parse_wait(v: &str) -> Result<Duration, ApiError> {
    if let Ok(secs) = v.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    parse_go_duration(v).map_err(|e| ApiError::bad_request(format!("Invalid wait time: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_options_parse_and_refuse() {
        let p = Params::parse(Some("index=42&wait=10s&stale"));
        let o = p.query_options().unwrap();
        assert_eq!(
            (o.min_index, o.max_wait, o.consistency),
            (42, Duration::from_secs(10), Consistency::Stale)
        );
        assert!(Params::parse(Some("index=x")).query_options().is_err());
        assert!(Params::parse(Some("wait=soon")).query_options().is_err());
        assert!(Params::parse(Some("stale&consistent"))
            .query_options()
            .is_err());
    }

    #[test]
    fn repeated_keys() {
        let p = Params::parse(Some("tag=a&tag=b&node-meta=rack:r1"));
        assert_eq!(p.all("tag"), vec!["a", "b"]);
        assert_eq!(
            p.node_meta().unwrap().get("rack").map(String::as_str),
            Some("r1")
        );
        assert!(Params::parse(Some("node-meta=nocolon"))
            .node_meta()
            .is_err());
    }

    #[test]
    fn json_errors_are_400_with_reason() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct T {
            #[serde(rename = "Port")]
            port: u16,
        }
        assert!(decode_json::<T>(b"{")
            .unwrap_err()
            .message
            .contains("decode failed"));
        assert!(decode_json::<T>(b"").is_err());
        let e = decode_json::<T>(br#"{"port": "eighty"}"#).unwrap_err();
        assert!(e.message.contains("Port"), "{}", e.message);
    }
}
