//! Bounding check output: every status update is stored in local state, synced to the
//! catalog and replicated through Raft, so a chatty health endpoint must not bloat them.

use shoal_server::structs::CheckDefinition;

/// Consul's default `OutputMaxSize`.
pub(super) const DEFAULT_MAX_SIZE: usize = 4096;

/// The check's output limit in bytes.
pub(super) fn limit(def: &CheckDefinition) -> usize {
    match usize::try_from(def.output_max_size) {
        Ok(n) if n > 0 => n,
        _ => DEFAULT_MAX_SIZE,
    }
}

/// Keeps the last `max` bytes written, like the circular buffer Consul captures output in:
/// the end of a script's output or a response body is where the error usually is.
#[derive(Debug)]
pub(super) struct TailBuffer {
    bytes: Vec<u8>,
    max: usize,
    total: u64,
}

impl TailBuffer {
    pub(super) fn new(max: usize) -> Self {
        TailBuffer {
            bytes: Vec::new(),
            max,
            total: 0,
        }
    }

    pub(super) fn write(&mut self, chunk: &[u8]) {
        self.total = self
            .total
            .saturating_add(u64::try_from(chunk.len()).unwrap_or(u64::MAX));
        let chunk = &chunk[chunk.len().saturating_sub(self.max)..];
        let overflow = (self.bytes.len() + chunk.len()).saturating_sub(self.max);
        self.bytes.drain(..overflow);
        self.bytes.extend_from_slice(chunk);
    }

    /// Whether more was written than kept.
    pub(super) fn truncated(&self) -> bool {
        self.total > u64::try_from(self.bytes.len()).unwrap_or(u64::MAX)
    }

    pub(super) fn total(&self) -> u64 {
        self.total
    }

    pub(super) fn max(&self) -> usize {
        self.max
    }

    /// The kept bytes as text, within `max` bytes. Invalid UTF-8 (a cut multi-byte
    /// character, or a binary body) becomes U+FFFD, which can lengthen the text, so the
    /// front is cut again, on a character boundary.
    pub(super) fn text(&self) -> String {
        let text = String::from_utf8_lossy(&self.bytes);
        let mut start = text.len().saturating_sub(self.max);
        while !text.is_char_boundary(start) {
            start += 1;
        }
        text[start..].to_owned()
    }
}

/// The longest prefix of `s` within `max` bytes that ends on a character boundary.
pub(super) fn head(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_defaults_to_4k() {
        let mut def = CheckDefinition::default();
        assert_eq!(limit(&def), 4096);
        def.output_max_size = 10;
        assert_eq!(limit(&def), 10);
    }

    #[test]
    fn tail_buffer_keeps_the_end() {
        let mut b = TailBuffer::new(4);
        b.write(b"ab");
        assert!(!b.truncated());
        b.write(b"cdef");
        b.write(b"g");
        assert_eq!(b.text(), "defg");
        assert_eq!(b.total(), 7);
        assert!(b.truncated());
        b.write(b"0123456789");
        assert_eq!(b.text(), "6789");
    }

    #[test]
    fn cuts_fall_on_char_boundaries() {
        let mut b = TailBuffer::new(4);
        b.write("aé€".as_bytes()); // 1 + 2 + 3 bytes; the last 4 start inside 'é'
        assert_eq!(b.text(), "€");
        assert_eq!(head("aé€", 4), "aé");
        assert_eq!(head("aé€", 2), "a");
        assert_eq!(head("abc", 10), "abc");
    }
}
