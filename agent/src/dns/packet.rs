//! One packet in, at most one packet out: the whole query path short of the sockets, so
//! that the UDP and TCP loops and the fuzz target run exactly the same code.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Header, Message, MessageType, ResponseCode};
use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncoder};
use hickory_server::net::xfer::Protocol;
use hickory_server::net::NetError;
use hickory_server::server::{Request, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponse;

use super::handler::DnsHandler;
use super::metrics::DnsMetrics;
use super::reuse::{Reuse, Version};
use super::DnsCatalog;

/// The transport a packet came over; it decides the response size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

impl<C: DnsCatalog> DnsHandler<C> {
    /// Answers one DNS message. `None` means send nothing: the packet is too short to
    /// carry an ID, or is itself a response (answering those would make us a reflector).
    /// A packet with a header but an undecodable body gets FORMERR.
    pub async fn answer_packet(
        &self,
        packet: Vec<u8>,
        src: SocketAddr,
        transport: Transport,
    ) -> Option<Vec<u8>> {
        if let Some(response) = self.answer_from_cache(&packet, transport) {
            return Some(response);
        }
        let version = self.version();
        let metrics = self.metrics();
        DnsMetrics::incr(&metrics.queries);
        let Ok(header) = Header::read(&mut BinDecoder::new(&packet)) else {
            DnsMetrics::incr(&metrics.malformed);
            DnsMetrics::incr(&metrics.dropped);
            return None;
        };
        if header.metadata.message_type == MessageType::Response {
            DnsMetrics::incr(&metrics.dropped);
            return None;
        }
        let protocol = match transport {
            Transport::Udp => Protocol::Udp,
            Transport::Tcp => Protocol::Tcp,
        };
        let request = match Request::from_bytes(packet.clone(), src, protocol) {
            Ok(request) => request,
            Err(_) => {
                DnsMetrics::incr(&metrics.malformed);
                metrics.response(ResponseCode::FormErr);
                return error_message(&header, ResponseCode::FormErr);
            }
        };
        let max_size = match transport {
            Transport::Udp => request.max_payload(),
            Transport::Tcp => u16::MAX,
        };
        let capture = Capture::new(max_size);
        let (sent, served) = self.respond(&request, capture.clone()).await;
        let response = capture.take()?;
        // A response that could not be encoded went out as SERVFAIL: not one to repeat.
        let reuse = if sent.response_code == served.outcome.rcode {
            served.reuse
        } else {
            Reuse::Never
        };
        let version = if served.local {
            version
        } else {
            Version {
                epoch: 0,
                ..version
            }
        };
        self.responses.put(
            &packet,
            transport,
            version,
            &response,
            served.outcome,
            reuse,
        );
        Some(response)
    }

    /// The response to `packet` if an identical query was answered a moment ago; cheap
    /// and synchronous, so the UDP loop can answer without spawning a task.
    pub fn answer_from_cache(&self, packet: &[u8], transport: Transport) -> Option<Vec<u8>> {
        let (response, outcome) = self.responses.get(packet, transport, self.version())?;
        let metrics = self.metrics();
        DnsMetrics::incr(&metrics.queries);
        DnsMetrics::incr(&metrics.reused);
        self.count(outcome);
        Some(response)
    }
}

/// A header-only response carrying `code`.
fn error_message(request: &Header, code: ResponseCode) -> Option<Vec<u8>> {
    Message::error_msg(request.metadata.id, request.metadata.op_code, code)
        .to_vec()
        .ok()
}

/// A [`ResponseHandler`] that encodes the response into memory instead of a socket.
#[derive(Clone)]
struct Capture {
    max_size: u16,
    bytes: Arc<Mutex<Option<Vec<u8>>>>,
}

impl Capture {
    fn new(max_size: u16) -> Self {
        Capture {
            max_size,
            bytes: Arc::default(),
        }
    }

    fn take(&self) -> Option<Vec<u8>> {
        self.bytes.lock().ok()?.take()
    }
}

#[async_trait::async_trait]
impl ResponseHandler for Capture {
    /// Encodes within `max_size`: hickory's encoder drops what does not fit and sets TC,
    /// which only happens when trimming could not get the message small enough. A message
    /// that cannot be encoded at all becomes SERVFAIL, as hickory's own handle does.
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        let mut metadata = *response.metadata();
        let mut bytes = Vec::with_capacity(512);
        let mut encoder = BinEncoder::new(&mut bytes);
        encoder.set_max_size(self.max_size);
        let (info, bytes) = match response.destructive_emit(&mut encoder) {
            Ok(info) => (info, bytes),
            Err(_) => {
                metadata.response_code = ResponseCode::ServFail;
                let header = Header {
                    metadata,
                    counts: Default::default(),
                };
                let bytes = error_message(&header, ResponseCode::ServFail).unwrap_or_default();
                (ResponseInfo::from(header), bytes)
            }
        };
        if let Ok(mut slot) = self.bytes.lock() {
            *slot = Some(bytes);
        }
        Ok(info)
    }
}
