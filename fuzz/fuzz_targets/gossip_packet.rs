//! The LAN gossip decoders, bytes in: every datagram on the gossip socket goes through
//! `decode_packet`, and every full-state sync message through `decode_state`, before
//! foca sees it, so both must reject anything without panicking.
//!
//! Sealed datagrams go through `open_datagram` first, also fed here.
//!
//! Checked besides "no panic": what they accept re-encodes to bytes that decode to the
//! same value (the decoders read exactly what the format says, no more).

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

use shoal_agent::gossip::{
    decode_key, decode_packet, decode_state, encode_state, encode_swim_packet, open_datagram,
    Encryption, Keyring, Packet, PoolKind, PoolScope,
};

fn encryption() -> &'static Encryption {
    static ENCRYPTION: OnceLock<Encryption> = OnceLock::new();
    ENCRYPTION.get_or_init(|| {
        let key = decode_key("AAECAwQFBgcICQoLDA0ODw==").expect("key");
        Encryption::new(Keyring::new(key).expect("keyring"))
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = open_datagram(data, &PoolScope::lan("dc1"), Some(encryption()));
    if let Ok(state) = decode_state(data, &PoolScope::lan("dc1")) {
        let again = encode_state(&state).expect("re-encode");
        assert_eq!(decode_state(&again, &PoolScope::lan("dc1")), Ok(state));
    }
    let Ok(Packet::Swim(packet)) = decode_packet(data, &PoolScope::lan("dc1")) else {
        return;
    };
    // Leave intents ride in foca's broadcast tail, which only foca itself writes.
    if !packet.intents.is_empty() {
        return;
    }
    let again = encode_swim_packet(PoolKind::Lan, &packet.header, &packet.updates).expect("re-encode");
    assert_eq!(decode_packet(&again, &PoolScope::lan("dc1")), Ok(Packet::Swim(packet)));
});
