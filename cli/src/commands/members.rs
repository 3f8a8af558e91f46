//! `shoal members`: the cluster's members as this agent's gossip sees them.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{anyhow, Result};
use clap::Args as ClapArgs;
use regex::Regex;
use serde::Deserialize;

use crate::columns;
use crate::flags::HttpArgs;

#[derive(ClapArgs, Debug)]
pub struct Args {
    #[command(flatten)]
    http: HttpArgs,
    /// Show every member's tags
    #[arg(long)]
    detailed: bool,
    /// Only members whose status (alive, leaving, left, failed) matches this regex
    #[arg(long, value_name = "REGEX", default_value = ".*")]
    status: String,
    /// List the WAN (server) members instead of the LAN ones
    #[arg(long)]
    wan: bool,
}

/// One entry of `/v1/agent/members` (Consul's `AgentMember`).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct Member {
    name: String,
    addr: String,
    port: u16,
    tags: BTreeMap<String, String>,
    status: i64,
}

impl Member {
    fn tag(&self, key: &str) -> &str {
        self.tags.get(key).map_or("", String::as_str)
    }

    /// `host:port`, with brackets around an IPv6 host.
    fn address(&self) -> String {
        if self.addr.contains(':') {
            format!("[{}]:{}", self.addr, self.port)
        } else {
            format!("{}:{}", self.addr, self.port)
        }
    }

    fn is_server(&self) -> bool {
        self.tag("role") == "consul"
    }
}

/// Serf's member status names.
fn status_name(status: i64) -> &'static str {
    match status {
        0 => "none",
        1 => "alive",
        2 => "leaving",
        3 => "left",
        4 => "failed",
        _ => "unknown",
    }
}

/// Exits 2 when no member matches, as Consul does, so scripts can tell.
pub async fn run(args: Args, outer: &HttpArgs) -> Result<ExitCode> {
    let status_re = Regex::new(&args.status).map_err(|e| {
        // The regex crate draws the pattern with a caret; its last line says what is wrong.
        let text = e.to_string();
        let reason = text
            .lines()
            .last()
            .unwrap_or_default()
            .trim_start_matches("error: ")
            .to_string();
        anyhow!("invalid -status regex {:?}: {reason}", args.status)
    })?;
    let params = if args.wan {
        vec![("wan", "1".to_string())]
    } else {
        vec![]
    };
    let mut members: Vec<Member> = args
        .http
        .client(outer)?
        .get(&["v1", "agent", "members"], &params)
        .await?;
    members.retain(|m| status_re.is_match(status_name(m.status)));
    if members.is_empty() {
        return Ok(ExitCode::from(2));
    }
    sort(&mut members);
    let rows = if args.detailed {
        detailed(&members)
    } else {
        standard(&members)
    };
    println!("{}", columns::format(&rows));
    Ok(ExitCode::SUCCESS)
}

/// Servers first, then by partition, segment and name, like Consul.
fn sort(members: &mut [Member]) {
    members.sort_by(|a, b| {
        b.is_server()
            .cmp(&a.is_server())
            .then_with(|| a.tag("ap").cmp(b.tag("ap")))
            .then_with(|| a.tag("segment").cmp(b.tag("segment")))
            .then_with(|| a.name.cmp(&b.name))
    });
}

fn standard(members: &[Member]) -> Vec<Vec<String>> {
    let header = [
        "Node",
        "Address",
        "Status",
        "Type",
        "Build",
        "Protocol",
        "DC",
        "Partition",
        "Segment",
    ];
    let mut rows = vec![header.map(String::from).to_vec()];
    for m in members {
        let (kind, default_segment) = match m.tag("role") {
            "consul" => ("server", "<all>"),
            "node" => ("client", "<default>"),
            _ => ("unknown", ""),
        };
        let build = match m.tag("build") {
            "" => "< 0.3",
            build => build.split(':').next().unwrap_or(build),
        };
        let partition = match m.tag("ap") {
            "" => "default",
            ap => ap,
        };
        let segment = match m.tag("segment") {
            "" => default_segment,
            segment => segment,
        };
        rows.push(
            [
                &m.name,
                &m.address(),
                status_name(m.status),
                kind,
                build,
                m.tag("vsn"),
                m.tag("dc"),
                partition,
                segment,
            ]
            .map(|s| s.to_string())
            .to_vec(),
        );
    }
    rows
}

fn detailed(members: &[Member]) -> Vec<Vec<String>> {
    let mut rows = vec![["Node", "Address", "Status", "Tags"]
        .map(String::from)
        .to_vec()];
    for m in members {
        let tags: Vec<String> = m.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        rows.push(vec![
            m.name.clone(),
            m.address(),
            status_name(m.status).to_string(),
            tags.join(","),
        ]);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members() -> Vec<Member> {
        serde_json::from_str(
            r#"[
              {"Name": "c1", "Addr": "10.0.0.2", "Port": 8301, "Status": 4,
               "Tags": {"role": "node", "dc": "dc1", "vsn": "2", "build": "0.1.0:abc"}},
              {"Name": "s1", "Addr": "::1", "Port": 8301, "Status": 1,
               "Tags": {"role": "consul", "dc": "dc1", "vsn": "2", "build": "0.1.0"}}
            ]"#,
        )
        .unwrap()
    }

    #[test]
    fn standard_output_matches_consul() {
        let mut ms = members();
        sort(&mut ms);
        assert_eq!(
            columns::format(&standard(&ms)),
            "Node  Address        Status  Type    Build  Protocol  DC   Partition  Segment\n\
             s1    [::1]:8301     alive   server  0.1.0  2         dc1  default    <all>\n\
             c1    10.0.0.2:8301  failed  client  0.1.0  2         dc1  default    <default>"
        );
    }

    #[test]
    fn detailed_output_lists_sorted_tags() {
        let ms = members();
        let rows = detailed(&ms[..1]);
        assert_eq!(rows[1][3], "build=0.1.0:abc,dc=dc1,role=node,vsn=2");
    }

    #[test]
    fn unknown_status_and_role() {
        let m = Member {
            status: 9,
            ..Member::default()
        };
        assert_eq!(status_name(m.status), "unknown");
        assert_eq!(standard(&[m])[1][3], "unknown");
    }
}
