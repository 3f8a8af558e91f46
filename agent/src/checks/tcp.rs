//! TCP checks: passing if a connection to `TCP` opens within the timeout.

use std::time::Duration;

use shoal_server::structs::{health, CheckDefinition};
use tokio::net::TcpStream;

use super::Outcome;

/// Consul's default when `Timeout` is unset.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub(super) struct TcpProbe {
    addr: String,
    timeout: Duration,
}

impl TcpProbe {
    pub(super) fn new(def: &CheckDefinition) -> Self {
        let timeout = if def.timeout.is_zero() {
            DEFAULT_TIMEOUT
        } else {
            def.timeout.0
        };
        TcpProbe {
            addr: def.tcp.clone(),
            timeout,
        }
    }

    /// Output mirrors Go's dial errors (`dial tcp <addr>: ...`), which is what Consul shows.
    pub(super) async fn run(&self) -> Outcome {
        match tokio::time::timeout(self.timeout, TcpStream::connect(self.addr.as_str())).await {
            Ok(Ok(_stream)) => Outcome::new(
                health::PASSING,
                format!("TCP connect {}: Success", self.addr),
            ),
            Ok(Err(err)) => {
                Outcome::new(health::CRITICAL, format!("dial tcp {}: {err}", self.addr))
            }
            Err(_) => Outcome::new(
                health::CRITICAL,
                format!("dial tcp {}: i/o timeout", self.addr),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{next_update, refusing_addr, tcp_def};
    use super::*;

    #[tokio::test]
    async fn listening_port_passes() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let _handle = super::super::start(
            "tcp".into(),
            super::super::RunnerId::default(),
            &tcp_def(&addr),
            false,
            tx,
        )
        .unwrap();
        let update = next_update(&mut rx).await;
        assert_eq!(update.status, health::PASSING);
        assert_eq!(update.output, format!("TCP connect {addr}: Success"));
    }

    #[tokio::test]
    async fn closed_port_is_critical() {
        let (_reserved, addr) = refusing_addr();
        let addr = addr.to_string();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let _handle = super::super::start(
            "tcp".into(),
            super::super::RunnerId::default(),
            &tcp_def(&addr),
            false,
            tx,
        )
        .unwrap();
        let update = next_update(&mut rx).await;
        assert_eq!(update.status, health::CRITICAL);
        assert!(
            update.output.starts_with(&format!("dial tcp {addr}: ")),
            "{}",
            update.output
        );
    }
}
