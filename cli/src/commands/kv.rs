//! `shoal kv get|put|delete|export|import`: the KV store, with `consul kv`'s flags,
//! output and messages (`Success! Data written to: KEY`, `Error! No key exists at:
//! KEY`), so scripts written for Consul's CLI read the same. Consul's own messages go to
//! stderr as Consul prints them; a failed request is the usual `Error:` line.

use std::io::{Read as _, Write as _};
use std::process::ExitCode;

use anyhow::{anyhow, Context, Result};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use clap::{Args as ClapArgs, Subcommand};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error_text::io_message;
use crate::flags::{HttpArgs, QueryArgs};
use crate::http::Client;

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Retrieves or lists data from the KV store
    Get(GetArgs),
    /// Sets or updates data in the KV store
    Put(PutArgs),
    /// Removes data from the KV store
    Delete(DeleteArgs),
    /// Exports a tree from the KV store as JSON
    Export(ExportArgs),
    /// Imports a tree stored as JSON to the KV store
    Import(ImportArgs),
}

#[derive(ClapArgs, Debug)]
pub struct GetArgs {
    #[command(flatten)]
    http: HttpArgs,
    #[command(flatten)]
    query: QueryArgs,
    /// Base64 encode the value
    #[arg(long)]
    base64: bool,
    /// Show the key's metadata (indexes, flags, session) with its value
    #[arg(long)]
    detailed: bool,
    /// List the keys under the prefix, not their values
    #[arg(long)]
    keys: bool,
    /// List every key and value under the prefix
    #[arg(long)]
    recurse: bool,
    /// With -keys: fold keys at this separator
    #[arg(long, default_value = "/")]
    separator: String,
    /// KEY_OR_PREFIX
    args: Vec<String>,
}

#[derive(ClapArgs, Debug)]
pub struct PutArgs {
    #[command(flatten)]
    http: HttpArgs,
    #[arg(long, value_name = "DC")]
    datacenter: Option<String>,
    /// Check-and-set: write only if the key's ModifyIndex is -modify-index
    #[arg(long)]
    cas: bool,
    /// Unsigned integer to store with the value
    #[arg(long, default_value_t = 0)]
    flags: u64,
    /// The data is base64 encoded
    #[arg(long)]
    base64: bool,
    /// The ModifyIndex -cas expects
    #[arg(long = "modify-index", default_value_t = 0)]
    modify_index: u64,
    /// The session for -acquire and -release
    #[arg(long, default_value = "")]
    session: String,
    /// Take the lock on the key for -session
    #[arg(long)]
    acquire: bool,
    /// Give up -session's lock on the key
    #[arg(long)]
    release: bool,
    /// KEY [DATA]: DATA may be @file, or - for stdin
    #[arg(allow_hyphen_values = true)]
    args: Vec<String>,
}

#[derive(ClapArgs, Debug)]
pub struct DeleteArgs {
    #[command(flatten)]
    http: HttpArgs,
    #[arg(long, value_name = "DC")]
    datacenter: Option<String>,
    /// Check-and-set: delete only if the key's ModifyIndex is -modify-index
    #[arg(long)]
    cas: bool,
    /// The ModifyIndex -cas expects
    #[arg(long = "modify-index", default_value_t = 0)]
    modify_index: u64,
    /// Delete every key under the prefix
    #[arg(long)]
    recurse: bool,
    /// KEY_OR_PREFIX
    args: Vec<String>,
}

#[derive(ClapArgs, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    http: HttpArgs,
    #[command(flatten)]
    query: QueryArgs,
    /// PREFIX
    args: Vec<String>,
}

#[derive(ClapArgs, Debug)]
pub struct ImportArgs {
    #[command(flatten)]
    http: HttpArgs,
    #[arg(long, value_name = "DC")]
    datacenter: Option<String>,
    /// DATA: the JSON `kv export` wrote, or @file, or - for stdin
    #[arg(allow_hyphen_values = true)]
    args: Vec<String>,
}

/// One entry of `consul kv export`'s JSON.
#[derive(Debug, Serialize, Deserialize)]
struct Exported {
    key: String,
    #[serde(default)]
    flags: u64,
    #[serde(default)]
    value: String,
}

/// An entry as the API answers it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Pair {
    key: String,
    #[serde(default)]
    flags: u64,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    session: String,
    #[serde(default)]
    lock_index: u64,
    #[serde(default)]
    create_index: u64,
    #[serde(default)]
    modify_index: u64,
}

impl Pair {
    fn bytes(&self) -> Result<Vec<u8>> {
        match &self.value {
            None => Ok(Vec::new()),
            Some(v) => BASE64
                .decode(v)
                .map_err(|e| anyhow!("the value of {} is not base64: {e}", self.key)),
        }
    }
}

pub async fn run(command: Command, outer: &HttpArgs) -> Result<ExitCode> {
    match command {
        Command::Get(args) => get(args, outer).await,
        Command::Put(args) => put(args, outer).await,
        Command::Delete(args) => delete(args, outer).await,
        Command::Export(args) => export(args, outer).await,
        Command::Import(args) => import(args, outer).await,
    }
}

/// A failure in Consul's words, on stderr, exit 1.
fn fail(message: impl std::fmt::Display) -> Result<ExitCode> {
    eprintln!("{message}");
    Ok(ExitCode::FAILURE)
}

/// The one optional KEY argument, without the leading `/` Consul strips for the user.
fn one_key(args: &[String]) -> std::result::Result<String, String> {
    match args {
        [] => Ok(String::new()),
        [key] => Ok(key.strip_prefix('/').unwrap_or(key).to_string()),
        _ => Err(format!(
            "Too many arguments (expected 1, got {})",
            args.len()
        )),
    }
}

/// The URL path of `key`: its `/`s stay separators, each segment is percent-encoded.
fn key_path(key: &str) -> Vec<&str> {
    let mut path = vec!["v1", "kv"];
    path.extend(key.split('/'));
    path
}

fn dc_param(datacenter: &Option<String>) -> Vec<(&'static str, String)> {
    datacenter.iter().map(|dc| ("dc", dc.clone())).collect()
}

async fn get(args: GetArgs, outer: &HttpArgs) -> Result<ExitCode> {
    let key = match one_key(&args.args) {
        Ok(key) => key,
        Err(message) => return fail(message),
    };
    if key.is_empty() && !(args.recurse || args.keys) {
        return fail("Error! Missing KEY argument");
    }
    let client = args.http.client(outer)?;
    let mut params = args.query.params();
    let mut out = std::io::stdout().lock();
    if args.keys {
        params.push(("keys", String::new()));
        params.push(("separator", args.separator.clone()));
        let keys: Vec<String> = fetch(&client, &key, &params).await?.unwrap_or_default();
        for key in keys {
            writeln!(out, "{key}")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.recurse {
        params.push(("recurse", String::new()));
        let pairs: Vec<Pair> = fetch(&client, &key, &params).await?.unwrap_or_default();
        for (i, pair) in pairs.iter().enumerate() {
            if args.detailed {
                out.write_all(&detailed(pair, args.base64)?)?;
                writeln!(out)?;
                if i + 1 < pairs.len() {
                    writeln!(out)?;
                }
            } else {
                write!(out, "{}:", pair.key)?;
                out.write_all(&shown(pair, args.base64)?)?;
                writeln!(out)?;
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let Some(pairs) = fetch::<Vec<Pair>>(&client, &key, &params).await? else {
        return fail(format!("Error! No key exists at: {key}"));
    };
    let Some(pair) = pairs.first() else {
        return fail(format!("Error! No key exists at: {key}"));
    };
    if args.detailed {
        out.write_all(&detailed(pair, args.base64)?)?;
    } else {
        out.write_all(&shown(pair, args.base64)?)?;
    }
    writeln!(out)?;
    Ok(ExitCode::SUCCESS)
}

/// A KV read's JSON; `None` when the agent answers 404.
async fn fetch<T: serde::de::DeserializeOwned>(
    client: &Client,
    key: &str,
    params: &[(&'static str, String)],
) -> Result<Option<T>> {
    let Some(body) = client
        .send_bytes(Method::GET, &key_path(key), params, None)
        .await?
    else {
        return Ok(None);
    };
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| anyhow!("decoding the agent's answer: {e}"))
}

/// The value as `kv get` prints it: the bytes, or their base64.
fn shown(pair: &Pair, base64: bool) -> Result<Vec<u8>> {
    let value = pair.bytes()?;
    Ok(if base64 {
        BASE64.encode(value).into_bytes()
    } else {
        value
    })
}

/// `-detailed`: Consul's table, names padded to one column (Go's tabwriter with a
/// padding of 6 after the longest name, `ModifyIndex`).
fn detailed(pair: &Pair, base64: bool) -> Result<Vec<u8>> {
    let session = if pair.session.is_empty() {
        "-"
    } else {
        pair.session.as_str()
    };
    let mut text = Vec::new();
    for (name, value) in [
        ("CreateIndex", pair.create_index.to_string()),
        ("Flags", pair.flags.to_string()),
        ("Key", pair.key.clone()),
        ("LockIndex", pair.lock_index.to_string()),
        ("ModifyIndex", pair.modify_index.to_string()),
        ("Session", session.to_string()),
    ] {
        writeln!(text, "{name:<17}{value}")?;
    }
    write!(text, "{:<17}", "Value")?;
    text.extend(shown(pair, base64)?);
    Ok(text)
}

async fn put(args: PutArgs, outer: &HttpArgs) -> Result<ExitCode> {
    let (key, data) = match args.args.as_slice() {
        [] => return fail("Error! Missing KEY argument"),
        [key] => (key.clone(), Vec::new()),
        [key, data] => match read_data(data) {
            Ok(data) => (key.clone(), data),
            Err(e) => return fail(format!("Error! {e}")),
        },
        more => {
            return fail(format!(
                "Error! Too many arguments (expected 1 or 2, got {})",
                more.len()
            ))
        }
    };
    let data = if args.base64 {
        let text = String::from_utf8_lossy(&data);
        match BASE64.decode(text.trim_end().as_bytes()) {
            Ok(bytes) => bytes,
            Err(e) => return fail(format!("Error! Cannot base 64 decode data: {e}")),
        }
    } else {
        data
    };
    if (args.release || args.acquire) && args.session.is_empty() {
        return fail("Error! Missing -session (required with -acquire and -release)");
    }
    if args.cas && args.modify_index == 0 {
        return fail("Must specify -modify-index with -cas!");
    }
    let mut params = dc_param(&args.datacenter);
    if args.flags != 0 {
        params.push(("flags", args.flags.to_string()));
    }
    if args.cas {
        params.push(("cas", args.modify_index.to_string()));
    } else if args.acquire {
        params.push(("acquire", args.session.clone()));
    } else if args.release {
        params.push(("release", args.session.clone()));
    }
    let client = args.http.client(outer)?;
    let answer = client
        .send_bytes(Method::PUT, &key_path(&key), &params, Some(data))
        .await;
    let done = match answer {
        Ok(Some(body)) => body.trim_ascii() == b"true",
        Ok(None) => return fail(format!("Error! Failed writing data: {key} not found")),
        Err(e) if args.cas => return fail(format!("Error! Did not write to {key}: {e}")),
        Err(e) => return fail(format!("Error! Failed writing data: {e}")),
    };
    match (done, args.cas, args.acquire, args.release) {
        (false, true, _, _) => fail(format!("Error! Did not write to {key}: CAS failed")),
        (false, _, true, _) => fail("Error! Did not acquire lock"),
        (false, _, _, true) => fail("Error! Did not release lock"),
        (_, _, true, _) => succeed(format!("Success! Lock acquired on: {key}")),
        (_, _, _, true) => succeed(format!("Success! Lock released on: {key}")),
        _ => succeed(format!("Success! Data written to: {key}")),
    }
}

fn succeed(message: String) -> Result<ExitCode> {
    println!("{message}");
    Ok(ExitCode::SUCCESS)
}

/// `DATA` as `consul kv put` and `import` read it: `@file`, `-` for stdin, else itself.
fn read_data(data: &str) -> std::result::Result<Vec<u8>, String> {
    if let Some(path) = data.strip_prefix('@') {
        return std::fs::read(path).map_err(|e| format!("Failed to read file: {}", io_message(&e)));
    }
    if data == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| format!("Failed to read stdin: {}", io_message(&e)))?;
        return Ok(bytes);
    }
    Ok(data.as_bytes().to_vec())
}

async fn delete(args: DeleteArgs, outer: &HttpArgs) -> Result<ExitCode> {
    let key = match one_key(&args.args) {
        Ok(key) => key,
        Err(message) => return fail(message),
    };
    if key.is_empty() && !args.recurse {
        return fail("Error! Missing KEY argument");
    }
    if args.cas && args.modify_index == 0 {
        return fail(
            "Cannot delete a key that does not exist. Provide a -modify-index greater than than 0.",
        );
    }
    if args.modify_index != 0 && !args.cas {
        return fail("Cannot specify -modify-index without -cas!");
    }
    if args.recurse && args.cas {
        return fail("Cannot specify both -cas and -recurse!");
    }
    let mut params = dc_param(&args.datacenter);
    if args.recurse {
        params.push(("recurse", String::new()));
    }
    if args.cas {
        params.push(("cas", args.modify_index.to_string()));
    }
    let client = args.http.client(outer)?;
    let answer = client
        .send_bytes(Method::DELETE, &key_path(&key), &params, None)
        .await;
    match answer {
        Err(e) if args.recurse => fail(format!("Error! Did not delete prefix {key}: {e}")),
        Err(e) if args.cas => fail(format!("Error! Did not delete key {key}: {e}")),
        Err(e) => fail(format!("Error deleting key {key}: {e}")),
        Ok(_) if args.recurse => succeed(format!("Success! Deleted keys with prefix: {key}")),
        Ok(Some(body)) if args.cas && body.trim_ascii() != b"true" => {
            fail(format!("Error! Did not delete key {key}: CAS failed"))
        }
        Ok(_) => succeed(format!("Success! Deleted key: {key}")),
    }
}

async fn export(args: ExportArgs, outer: &HttpArgs) -> Result<ExitCode> {
    let prefix = match one_key(&args.args) {
        Ok(key) => key,
        Err(message) => return fail(message),
    };
    let client = args.http.client(outer)?;
    let mut params = args.query.params();
    params.push(("recurse", String::new()));
    let pairs: Vec<Pair> = fetch(&client, &prefix, &params).await?.unwrap_or_default();
    let exported: Vec<Exported> = pairs
        .into_iter()
        .map(|pair| Exported {
            value: pair.value.unwrap_or_default(),
            key: pair.key,
            flags: pair.flags,
        })
        .collect();
    // Go's `json.MarshalIndent(…, "", "\t")`.
    let mut text = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut serializer = serde_json::Serializer::with_formatter(&mut text, formatter);
    exported
        .serialize(&mut serializer)
        .context("encoding the export")?;
    let mut out = std::io::stdout().lock();
    out.write_all(&text)?;
    writeln!(out)?;
    Ok(ExitCode::SUCCESS)
}

async fn import(args: ImportArgs, outer: &HttpArgs) -> Result<ExitCode> {
    let data = match args.args.as_slice() {
        [] => return fail("Error! Missing DATA argument"),
        [data] if data.is_empty() => return fail("Error! Empty DATA argument"),
        [data] => match read_data(data) {
            Ok(data) => data,
            Err(e) => return fail(format!("Error! {e}")),
        },
        more => {
            return fail(format!(
                "Error! Too many arguments (expected 1, got {})",
                more.len()
            ))
        }
    };
    let entries: Vec<Exported> =
        match serde_json::from_slice::<Value>(&data).and_then(serde_json::from_value) {
            Ok(entries) => entries,
            Err(e) => return fail(format!("Cannot unmarshal data: {e}")),
        };
    let client = args.http.client(outer)?;
    let params = dc_param(&args.datacenter);
    for entry in entries {
        let value = match BASE64.decode(entry.value.as_bytes()) {
            Ok(value) => value,
            Err(e) => {
                return fail(format!(
                    "Error base 64 decoding value for key {}: {e}",
                    entry.key
                ))
            }
        };
        let mut params = params.clone();
        if entry.flags != 0 {
            params.push(("flags", entry.flags.to_string()));
        }
        if let Err(e) = client
            .send_bytes(Method::PUT, &key_path(&entry.key), &params, Some(value))
            .await
        {
            return fail(format!(
                "Error! Failed writing data for key {}: {e}",
                entry.key
            ));
        }
        println!("Imported: {}", entry.key);
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(session: &str, value: Option<&str>) -> Pair {
        Pair {
            key: "app/config".into(),
            flags: 42,
            value: value.map(Into::into),
            session: session.into(),
            lock_index: 0,
            create_index: 5,
            modify_index: 9,
        }
    }

    #[test]
    fn detailed_output_is_consuls_table() {
        let text = detailed(&pair("", Some("YmFy")), false).unwrap();
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "CreateIndex      5\n\
             Flags            42\n\
             Key              app/config\n\
             LockIndex        0\n\
             ModifyIndex      9\n\
             Session          -\n\
             Value            bar"
        );
        let text = detailed(&pair("s1", Some("YmFy")), true).unwrap();
        assert!(String::from_utf8(text)
            .unwrap()
            .ends_with("Session          s1\nValue            YmFy"));
    }

    #[test]
    fn keys_keep_their_slashes_and_lose_a_leading_one() {
        assert_eq!(key_path("a/b/"), ["v1", "kv", "a", "b", ""]);
        assert_eq!(key_path(""), ["v1", "kv", ""]);
        assert_eq!(one_key(&["/a/b".into()]), Ok("a/b".into()));
        assert_eq!(
            one_key(&["a".into(), "b".into()]),
            Err("Too many arguments (expected 1, got 2)".into())
        );
        assert_eq!(read_data("plain"), Ok(b"plain".to_vec()));
        assert!(read_data("@/nonexistent/file")
            .unwrap_err()
            .starts_with("Failed to read file: "));
    }
}
