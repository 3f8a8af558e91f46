//! Sessions in Consul's JSON (`structs.Session`) with Consul's defaults and checks.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::duration::parse_go_duration;

/// What happens to a session's keys when it is invalidated.
pub const BEHAVIOR_RELEASE: &str = "release";
pub const BEHAVIOR_DELETE: &str = "delete";
/// The default lock delay (Consul's 15 s) and the longest one applied (60 s).
pub const DEFAULT_LOCK_DELAY: Duration = Duration::from_secs(15);
pub const MAX_LOCK_DELAY: Duration = Duration::from_secs(60);
/// The TTLs Consul accepts (`session_ttl_min` default, and 24 h).
pub const MIN_TTL: Duration = Duration::from_secs(10);
pub const MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// A service check a session depends on (Consul's `ServiceCheck`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionCheck {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Namespace")]
    pub namespace: String,
}

/// A session. `LockDelay` is written as Go does, nanoseconds; it is read as Consul's
/// session endpoint reads it (a duration string, or a number: seconds below 1000,
/// nanoseconds from there).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Session {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Node")]
    pub node: String,
    #[serde(rename = "LockDelay", with = "lock_delay")]
    pub lock_delay: Duration,
    #[serde(rename = "Behavior")]
    pub behavior: String,
    #[serde(rename = "TTL")]
    pub ttl: String,
    #[serde(rename = "NodeChecks")]
    pub node_checks: Option<Vec<String>>,
    #[serde(rename = "ServiceChecks")]
    pub service_checks: Option<Vec<SessionCheck>>,
    /// Consul's deprecated name for node checks: read, merged into `NodeChecks`, never
    /// written.
    #[serde(rename = "Checks", skip_serializing)]
    pub checks: Option<Vec<String>>,
    #[serde(rename = "CreateIndex")]
    pub create_index: u64,
    #[serde(rename = "ModifyIndex")]
    pub modify_index: u64,
}

impl Session {
    /// The node checks, empty when none.
    pub fn node_checks(&self) -> &[String] {
        self.node_checks.as_deref().unwrap_or_default()
    }

    pub fn service_checks(&self) -> &[SessionCheck] {
        self.service_checks.as_deref().unwrap_or_default()
    }

    /// The TTL as a duration; `None` without one.
    pub fn ttl(&self) -> Option<Duration> {
        if self.ttl.is_empty() {
            return None;
        }
        parse_go_duration(&self.ttl).ok().filter(|d| !d.is_zero())
    }

    /// Consul's session-endpoint checks and defaults before a create is proposed: the
    /// behavior, the TTL's range, the lock delay's cap, `Checks` folded into
    /// `NodeChecks`.
    pub fn normalize(&mut self) -> Result<(), String> {
        match self.behavior.as_str() {
            "" => self.behavior = BEHAVIOR_RELEASE.into(),
            BEHAVIOR_RELEASE | BEHAVIOR_DELETE => {}
            other => return Err(format!("Invalid session behavior: {other}")),
        }
        if !self.ttl.is_empty() {
            let ttl = parse_go_duration(&self.ttl)
                .map_err(|e| format!("Session TTL '{}' invalid: {e}", self.ttl))?;
            if !ttl.is_zero() && !(MIN_TTL..=MAX_TTL).contains(&ttl) {
                return Err(format!(
                    "Invalid Session TTL '{}', must be between [10s=24h0m0s]",
                    ttl.as_nanos()
                ));
            }
        }
        if let Some(old) = self.checks.take() {
            let checks = self.node_checks.get_or_insert_with(Vec::new);
            for check in old {
                if !checks.contains(&check) {
                    checks.push(check);
                }
            }
        }
        self.lock_delay = self.lock_delay.min(MAX_LOCK_DELAY);
        Ok(())
    }
}

mod lock_delay {
    use super::*;

    pub fn serialize<S: Serializer>(delay: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX))
    }

    /// Consul's `FixupLockDelay`: a small number means seconds (users write `5`).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        const SECONDS_BELOW: u64 = 1000;
        let scale = |nanos: u64| {
            if nanos < SECONDS_BELOW {
                Duration::from_secs(nanos)
            } else {
                Duration::from_nanos(nanos)
            }
        };
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Number(n) => n
                .as_u64()
                .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
                .map(scale)
                .ok_or_else(|| serde::de::Error::custom(format!("invalid lock delay {n}"))),
            serde_json::Value::String(text) => {
                let parsed = parse_go_duration(&text).map_err(serde::de::Error::custom)?;
                Ok(match u64::try_from(parsed.as_nanos()) {
                    Ok(nanos) if nanos < SECONDS_BELOW => scale(nanos),
                    _ => parsed,
                })
            }
            serde_json::Value::Null => Ok(Duration::ZERO),
            other => Err(serde::de::Error::custom(format!(
                "invalid lock delay {other}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_read_and_write_consuls_json() {
        let session: Session = serde_json::from_str(
            r#"{"Name":"db","LockDelay":"5s","TTL":"30s","Checks":["a"],"NodeChecks":["serfHealth"]}"#,
        )
        .unwrap();
        let mut session = session;
        session.normalize().unwrap();
        assert_eq!(session.lock_delay, Duration::from_secs(5));
        assert_eq!(session.node_checks(), ["serfHealth", "a"]);
        assert_eq!(session.behavior, "release");
        assert_eq!(session.ttl(), Some(Duration::from_secs(30)));
        let json = serde_json::to_value(&session).unwrap();
        assert_eq!(json["LockDelay"], 5_000_000_000u64);
        assert!(json.get("Checks").is_none());
        assert_eq!(json["ServiceChecks"], serde_json::Value::Null);
        let numeric: Session = serde_json::from_str(r#"{"LockDelay": 7}"#).unwrap();
        assert_eq!(numeric.lock_delay, Duration::from_secs(7));
        let nanos: Session = serde_json::from_str(r#"{"LockDelay": 2000000000}"#).unwrap();
        assert_eq!(nanos.lock_delay, Duration::from_secs(2));
        let mut long = Session {
            ttl: "5s".into(),
            ..Session::default()
        };
        assert_eq!(
            long.normalize().unwrap_err(),
            "Invalid Session TTL '5000000000', must be between [10s=24h0m0s]"
        );
        let mut odd = Session {
            behavior: "keep".into(),
            ..Session::default()
        };
        assert_eq!(
            odd.normalize().unwrap_err(),
            "Invalid session behavior: keep"
        );
        let mut slow = Session {
            lock_delay: Duration::from_secs(600),
            ..Session::default()
        };
        slow.normalize().unwrap();
        assert_eq!(slow.lock_delay, MAX_LOCK_DELAY);
    }
}
