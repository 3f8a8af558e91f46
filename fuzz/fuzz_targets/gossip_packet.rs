//! The LAN gossip decoder, bytes in: every datagram on the gossip socket goes through
//! `decode_packet` before foca sees it, so it must reject anything without panicking.
//!
//! Checked besides "no panic": a SWIM packet it accepts re-encodes to one that decodes
//! to the same packet (the decoder reads exactly what foca's format says, no more).

#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_agent::gossip::{decode_packet, encode_swim_packet, Packet};

fuzz_target!(|data: &[u8]| {
    let Ok(Packet::Swim(packet)) = decode_packet(data, "dc1") else {
        return;
    };
    // Leave intents ride in foca's broadcast tail, which only foca itself writes.
    if !packet.intents.is_empty() {
        return;
    }
    let again = encode_swim_packet(&packet.header, &packet.updates).expect("re-encode");
    assert_eq!(decode_packet(&again, "dc1"), Ok(Packet::Swim(packet)));
});
