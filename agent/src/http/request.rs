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
    strip_nulls(&mut value);
    normalize_keys(&mut value);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        ApiError::bad_request(format!("Request decode failed: {path}: {}", e.into_inner()))
    })
}

/// Go's decoder reads `null` as the zero value; removing null members lets the fields'
/// defaults do the same here.
fn strip_nulls(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
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

    /// A presence flag (`?stale`, `?consistent`, `?pretty`): Consul looks only at whether
    /// the key is there, so `?stale=1` and `?stale` mean the same.
    pub fn has(&self, key: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == key)
    }

    /// `?passing`: present means true, unless its value is false in Go's `ParseBool`
    /// spelling (`0`, `f`, `false`, …); the Go API client sends `passing=1`.
    pub fn passing(&self) -> Result<bool, ApiError> {
        match self.get("passing") {
            None => Ok(false),
            Some("" | "1" | "t" | "T" | "TRUE" | "true" | "True") => Ok(true),
            Some("0" | "f" | "F" | "FALSE" | "false" | "False") => Ok(false),
            Some(v) => Err(ApiError::bad_request(format!(
                "Invalid value for ?passing: {v:?}"
            ))),
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
        let stale = self.has("stale");
        let consistent = self.has("consistent");
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
            cached_index: 0,
            near: String::new(),
        })
    }

    /// `?node-meta=key:value`, repeatable; all must match. A pair without `:` means the
    /// key with an empty value, as Consul's `parseMetaPair` reads it.
    pub fn node_meta(&self) -> Result<Meta, ApiError> {
        self.all("node-meta")
            .into_iter()
            .map(|pair| match pair.split_once(':') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (pair, String::new()),
            })
            .map(|(k, v)| {
                if k.is_empty() {
                    Err(ApiError::bad_request("Invalid node-meta: empty key"))
                } else {
                    Ok((k, v))
                }
            })
            .collect()
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
    use axum::response::IntoResponse;

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
        let bare = Params::parse(Some("node-meta=rack")).node_meta().unwrap();
        assert_eq!(bare.get("rack").map(String::as_str), Some(""));
        assert!(Params::parse(Some("node-meta=:v")).node_meta().is_err());
        assert!(Params::parse(Some("passing=1")).passing().unwrap());
        assert!(!Params::parse(Some("passing=false")).passing().unwrap());
        assert!(Params::parse(Some("passing=maybe")).passing().is_err());
        let o = Params::parse(Some("stale=1")).query_options().unwrap();
        assert_eq!(o.consistency, Consistency::Stale);
    }

    #[test]
    fn json_errors_are_400_with_reason() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct T {
            #[serde(rename = "Port")]
            port: u16,
        }
        /// The error `body` decodes to, checked to answer 400 as the client sees it.
        fn rejected(body: &[u8]) -> String {
            let e = decode_json::<T>(body).unwrap_err();
            assert_eq!(
                e.status,
                axum::http::StatusCode::BAD_REQUEST,
                "{}",
                e.message
            );
            let message = e.message.clone();
            assert_eq!(e.into_response().status().as_u16(), 400, "{message}");
            message
        }
        let m = rejected(b"{");
        assert!(m.contains("decode failed"), "{m}");
        let m = rejected(b"");
        assert!(m.contains("empty body"), "{m}");
        let m = rejected(b"[1]");
        assert!(m.contains("JSON object"), "{m}");
        let m = rejected(br#"{"port": null}"#);
        assert!(m.contains("port") || m.contains("Port"), "{m}");
        let m = rejected(br#"{"port": "eighty"}"#);
        assert!(m.contains("Port"), "{m}");
    }
}
