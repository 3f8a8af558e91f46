//! The optional access log of HTTP requests: one JSON object per line, to a file or to
//! standard output (`-access-log PATH|-`, or `access_log_path` in the proxy's `Config`).
//!
//! Field names follow Envoy's default access-log format, which Consul's `AccessLogs`
//! writes: `start_time`, `method`, `path`, `protocol`, `response_code`,
//! `duration` (ms), `upstream_host`, `bytes_received`, `bytes_sent`; plus `direction`
//! (`inbound` or `outbound`) and `listener` (`public` or the upstream's name). Byte
//! counts are the bodies' `Content-Length` (0 when the body was streamed without one).

use std::fs::{File, OpenOptions};
use std::io::{LineWriter, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// One request's line.
#[derive(Debug, Clone, Serialize)]
pub struct Entry<'a> {
    pub start_time: String,
    pub method: &'a str,
    pub path: &'a str,
    pub protocol: &'a str,
    pub response_code: u16,
    /// Milliseconds, with fractions.
    pub duration: f64,
    pub upstream_host: String,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub direction: &'a str,
    pub listener: &'a str,
}

/// When `started` was, as RFC 3339 (computed from the elapsed time, so the request path
/// reads the clock once).
pub fn start_time(elapsed: Duration) -> String {
    (OffsetDateTime::now_utc() - elapsed)
        .format(&Rfc3339)
        .unwrap_or_default()
}

enum Sink {
    Stdout,
    File(LineWriter<File>),
}

/// Where the lines go. Writes are small and line-buffered; a failed write is dropped
/// (logged once) rather than failing the request.
pub struct AccessLog {
    sink: Mutex<Sink>,
    failed: std::sync::atomic::AtomicBool,
}

impl AccessLog {
    /// `-` is standard output; anything else a file, appended to.
    pub fn open(path: &str) -> std::io::Result<AccessLog> {
        let sink = if path == "-" {
            Sink::Stdout
        } else {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(Path::new(path))?;
            Sink::File(LineWriter::new(file))
        };
        Ok(AccessLog {
            sink: Mutex::new(sink),
            failed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub fn write(&self, entry: &Entry<'_>) {
        let Ok(mut line) = serde_json::to_vec(entry) else {
            return;
        };
        line.push(b'\n');
        let mut sink = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        let r = match &mut *sink {
            Sink::Stdout => std::io::stdout().lock().write_all(&line),
            Sink::File(f) => f.write_all(&line),
        };
        if let Err(e) = r {
            if !self.failed.swap(true, std::sync::atomic::Ordering::Relaxed) {
                tracing::error!(error = %e, "writing the access log; further failures are not logged");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_json_objects_with_envoys_names() {
        let dir = tempfile_dir();
        let path = dir.join("access.log");
        let log = AccessLog::open(path.to_str().unwrap()).unwrap();
        for code in [200, 403] {
            log.write(&Entry {
                start_time: start_time(Duration::from_millis(3)),
                method: "GET",
                path: "/public",
                protocol: "HTTP/1.1",
                response_code: code,
                duration: 3.2,
                upstream_host: "127.0.0.1:8080".into(),
                bytes_received: 0,
                bytes_sent: 12,
                direction: "inbound",
                listener: "public",
            });
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["response_code"], 403);
        assert_eq!(lines[0]["path"], "/public");
        assert!(lines[0]["start_time"].as_str().unwrap().contains('T'));
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "shoal-proxy-access-log-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
