//! Forwarding names outside our zones to upstream resolvers.
//!
//! As Consul does by default ("sequential" strategy): recursors are tried in order, each
//! for `recursor_timeout`, over the transport the client used; the first NOERROR or
//! NXDOMAIN answer wins, and SERVFAIL/REFUSED/… or silence moves on to the next.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use hickory_proto::op::{DnsRequest, DnsRequestOptions, Message, Query, ResponseCode};
use hickory_server::net::runtime::TokioRuntimeProvider;
use hickory_server::net::tcp::TcpClientStream;
use hickory_server::net::udp::UdpClientStream;
use hickory_server::net::xfer::{DnsExchange, DnsHandle};
use hickory_server::net::NetError;
use tracing::debug;

/// The upstream resolvers of one server.
pub(crate) struct Recursors {
    addrs: Vec<SocketAddr>,
    timeout: Duration,
    /// Owns the tasks that drive upstream exchanges: hickory aborts them when the last
    /// clone of the provider is dropped, so one lives as long as the server.
    provider: TokioRuntimeProvider,
}

/// Why one recursor gave no usable answer.
#[derive(Debug, thiserror::Error)]
enum ForwardError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("closed without an answer")]
    NoAnswer,
    #[error("answered {0}")]
    Rcode(ResponseCode),
    #[error(transparent)]
    Net(#[from] NetError),
}

/// How to ask upstream: the client's question, flags and transport.
pub(crate) struct Forward {
    pub query: Query,
    pub recursion_desired: bool,
    /// The EDNS payload size the client advertised, passed on so that the upstream answer
    /// fits what the client accepts.
    pub edns_size: Option<u16>,
    pub tcp: bool,
}

impl Recursors {
    pub fn new(addrs: Vec<SocketAddr>, timeout: Duration) -> Self {
        Recursors {
            addrs,
            timeout,
            provider: TokioRuntimeProvider::default(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }

    /// The first usable upstream answer, or `None` when every recursor failed.
    pub async fn forward(&self, forward: &Forward) -> Option<Message> {
        for addr in &self.addrs {
            match tokio::time::timeout(self.timeout, self.ask(*addr, forward)).await {
                Ok(Ok(message)) => return Some(message),
                Ok(Err(error)) => debug!(recursor = %addr, %error, "recursor failed"),
                Err(_) => {
                    debug!(recursor = %addr, error = %ForwardError::Timeout(self.timeout), "recursor failed")
                }
            }
        }
        None
    }

    async fn ask(&self, addr: SocketAddr, forward: &Forward) -> Result<Message, ForwardError> {
        let mut options = DnsRequestOptions::default();
        options.recursion_desired = forward.recursion_desired;
        options.use_edns = forward.edns_size.is_some();
        if let Some(size) = forward.edns_size {
            options.edns_payload_len = size;
        }
        let request = DnsRequest::from_query(forward.query.clone(), options);
        let exchange: DnsExchange<TokioRuntimeProvider> = if forward.tcp {
            TcpClientStream::exchange(addr, None, self.timeout, None, self.provider.clone()).await?
        } else {
            UdpClientStream::builder(addr, self.provider.clone())
                .with_timeout(Some(self.timeout))
                .exchange()
        };
        let response = exchange
            .send(request)
            .next()
            .await
            .ok_or(ForwardError::NoAnswer)??;
        let message = response.into_message();
        match message.metadata.response_code {
            ResponseCode::NoError | ResponseCode::NXDomain => Ok(message),
            code => Err(ForwardError::Rcode(code)),
        }
    }
}
