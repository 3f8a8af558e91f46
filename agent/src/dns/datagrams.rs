//! UDP datagrams received and sent in batches: one `recvmmsg` takes every query already
//! queued (up to [`BATCH`]) and one `sendmmsg` sends the replies answered from the reuse
//! table. Per query the kernel's cost is the syscall and the wake-up of the receiver far
//! more than the lookup, so under load a batch cuts the server's CPU per query; a lone
//! query is still a batch of one and waits for nothing.
//!
//! On systems without these calls (not Linux) a batch holds one datagram.

use std::io;
use std::net::SocketAddr;

use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Datagrams per syscall. Past a few dozen the saving per query is negligible.
pub(super) const BATCH: usize = 32;
/// The largest UDP payload, so that no query is cut short.
const SLOT: usize = 65_535;

/// Buffers for one batch of received datagrams, reused from batch to batch.
pub(super) struct Received {
    buffers: Vec<u8>,
    datagrams: Vec<(usize, SocketAddr)>,
}

impl Received {
    pub(super) fn new() -> Self {
        Received {
            buffers: vec![0; BATCH * SLOT],
            datagrams: Vec::with_capacity(BATCH),
        }
    }

    /// Takes the datagrams queued on `socket` without waiting; `WouldBlock` when none is.
    pub(super) fn receive(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.datagrams.clear();
        socket.try_io(Interest::READABLE, || {
            sys::receive(socket, &mut self.buffers, &mut self.datagrams)
        })?;
        Ok(self.datagrams.len())
    }

    /// The datagrams of the last [`Received::receive`], each with its sender.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&[u8], SocketAddr)> {
        self.datagrams
            .iter()
            .enumerate()
            .map(|(slot, &(len, src))| (&self.buffers[slot * SLOT..slot * SLOT + len], src))
    }
}

/// Replies waiting to be sent together.
pub(super) struct Replies {
    queued: Vec<(SocketAddr, Vec<u8>)>,
}

impl Replies {
    pub(super) fn new() -> Self {
        Replies {
            queued: Vec::with_capacity(BATCH),
        }
    }

    pub(super) fn push(&mut self, to: SocketAddr, response: Vec<u8>) {
        self.queued.push((to, response));
    }

    /// Sends every queued reply without waiting and answers how many were dropped
    /// because the socket's send buffer was full (the client retries, as after a loss).
    pub(super) fn flush(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        let mut sent = 0;
        let mut result = Ok(0);
        while sent < self.queued.len() {
            match socket.try_io(Interest::WRITABLE, || {
                sys::send(socket, &self.queued[sent..])
            }) {
                Ok(n) if n > 0 => sent += n,
                Ok(_) => {
                    result = Ok(self.queued.len() - sent);
                    break;
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    result = Ok(self.queued.len() - sent);
                    break;
                }
                // One reply failed (an unreachable sender): skip it, send the rest.
                Err(error) => {
                    sent += 1;
                    result = Err(error);
                }
            }
        }
        self.queued.clear();
        result
    }
}

#[cfg(target_os = "linux")]
mod sys {
    use std::io;
    use std::mem;
    use std::net::SocketAddr;
    use std::os::fd::AsRawFd;

    use socket2::{SockAddr, SockAddrStorage};
    use tokio::net::UdpSocket;

    use super::{BATCH, SLOT};

    pub(super) fn receive(
        socket: &UdpSocket,
        buffers: &mut [u8],
        datagrams: &mut Vec<(usize, SocketAddr)>,
    ) -> io::Result<()> {
        let mut addrs: [SockAddrStorage; BATCH] =
            std::array::from_fn(|_| SockAddrStorage::zeroed());
        // SAFETY: all-zero bytes are valid values of this plain C struct.
        let mut headers: [libc::mmsghdr; BATCH] = unsafe { mem::zeroed() };
        let mut iovecs: Vec<libc::iovec> = buffers
            .chunks_exact_mut(SLOT)
            .map(|slot| libc::iovec {
                iov_base: slot.as_mut_ptr().cast(),
                iov_len: SLOT,
            })
            .collect();
        for ((header, addr), iovec) in headers.iter_mut().zip(&mut addrs).zip(&mut iovecs) {
            header.msg_hdr.msg_namelen = addr.size_of();
            header.msg_hdr.msg_name = (addr as *mut SockAddrStorage).cast();
            header.msg_hdr.msg_iov = iovec;
            header.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: every header points at a live address slot and one iovec over its own
        // SLOT bytes of `buffers`, all outliving the call.
        let received = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                headers.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if received < 0 {
            return Err(io::Error::last_os_error());
        }
        for (header, addr) in headers.iter().zip(addrs).take(received as usize) {
            // SAFETY: the kernel wrote a socket address of `msg_namelen` bytes.
            let addr = unsafe { SockAddr::new(addr, header.msg_hdr.msg_namelen) };
            if let Some(src) = addr.as_socket() {
                datagrams.push((header.msg_len as usize, src));
            }
        }
        Ok(())
    }

    /// Answers how many of `replies` the kernel took.
    pub(super) fn send(socket: &UdpSocket, replies: &[(SocketAddr, Vec<u8>)]) -> io::Result<usize> {
        let replies = &replies[..replies.len().min(BATCH)];
        let addrs: Vec<SockAddr> = replies.iter().map(|(to, _)| SockAddr::from(*to)).collect();
        let mut iovecs: Vec<libc::iovec> = replies
            .iter()
            .map(|(_, bytes)| libc::iovec {
                iov_base: bytes.as_ptr().cast_mut().cast(),
                iov_len: bytes.len(),
            })
            .collect();
        // SAFETY: all-zero bytes are valid values of this plain C struct.
        let mut headers: [libc::mmsghdr; BATCH] = unsafe { mem::zeroed() };
        for ((header, addr), iovec) in headers.iter_mut().zip(&addrs).zip(&mut iovecs) {
            header.msg_hdr.msg_name = addr.as_ptr().cast_mut().cast();
            header.msg_hdr.msg_namelen = addr.len();
            header.msg_hdr.msg_iov = iovec;
            header.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: the first `replies.len()` headers point at live addresses and iovecs
        // over live reply bytes; sendmmsg only reads them.
        let sent = unsafe {
            libc::sendmmsg(
                socket.as_raw_fd(),
                headers.as_mut_ptr(),
                replies.len() as u32,
                libc::MSG_DONTWAIT,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(sent as usize)
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    use std::io;
    use std::net::SocketAddr;

    use tokio::net::UdpSocket;

    use super::SLOT;

    pub(super) fn receive(
        socket: &UdpSocket,
        buffers: &mut [u8],
        datagrams: &mut Vec<(usize, SocketAddr)>,
    ) -> io::Result<()> {
        let (len, src) = socket.try_recv_from(&mut buffers[..SLOT])?;
        datagrams.push((len, src));
        Ok(())
    }

    pub(super) fn send(socket: &UdpSocket, replies: &[(SocketAddr, Vec<u8>)]) -> io::Result<usize> {
        let (to, bytes) = &replies[0];
        socket.try_send_to(bytes, *to)?;
        Ok(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything queued is taken in one receive, each datagram with its own sender, and
    /// the replies all arrive.
    #[tokio::test]
    async fn a_batch_carries_every_queued_datagram_and_its_replies() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let clients = [
            UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            UdpSocket::bind("127.0.0.1:0").await.unwrap(),
        ];
        let to = server.local_addr().unwrap();
        for (n, client) in clients.iter().enumerate() {
            for k in 0..3u8 {
                client.send_to(&[n as u8, k], to).await.unwrap();
            }
        }
        let mut received = Received::new();
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while seen.len() < 6 && tokio::time::Instant::now() < deadline {
            server.readable().await.unwrap();
            match received.receive(&server) {
                Ok(_) => seen.extend(received.iter().map(|(d, src)| (d.to_vec(), src))),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(seen.len(), 6);
        for (bytes, src) in &seen {
            assert_eq!(*src, clients[usize::from(bytes[0])].local_addr().unwrap());
        }
        let mut replies = Replies::new();
        for (bytes, src) in seen {
            replies.push(src, bytes.iter().map(|b| b + 100).collect());
        }
        assert_eq!(replies.flush(&server).unwrap(), 0);
        for (n, client) in clients.iter().enumerate() {
            let mut buf = [0u8; 8];
            for k in 0..3u8 {
                let (len, _) = tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    client.recv_from(&mut buf),
                )
                .await
                .unwrap()
                .unwrap();
                assert_eq!(&buf[..len], &[n as u8 + 100, k + 100]);
            }
        }
    }
}
