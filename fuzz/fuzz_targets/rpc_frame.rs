//! The server port's input path, bytes to requests: whatever a peer sends on a connection
//! goes through `frame::decode`, then each frame's payload through the decoding the
//! listener does (`Hello` for the handshake, `Inbound::parse` for requests, in every
//! protocol version a connection can agree on).
//!
//! Checked besides "no panic": every decoded frame re-encodes to exactly the bytes it was
//! decoded from, so the decoder neither skips nor invents bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_server::transport::frame::{self, BytesMut, Kind};
use shoal_server::transport::message::{Hello, Inbound};
use shoal_server::wire::{MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    loop {
        let start = data.len() - buf.len();
        let Ok(Some(frame)) = frame::decode(&mut buf) else {
            break;
        };
        let end = data.len() - buf.len();
        let encoded = frame::encode(frame.stream_id, frame.kind, &frame.payload)
            .expect("a decoded frame re-encodes");
        assert_eq!(&data[start..end], &encoded[..]);
        match frame.kind {
            Kind::Hello => {
                let _ = Hello::decode(&frame.payload);
            }
            _ => {
                for version in MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION {
                    let _ = Inbound::parse(&frame, version);
                }
            }
        }
    }
});
