//! `unsafe` for AF_PACKET sockets bound to one interface, with a
//! classic BPF filter so that the kernel hands us only what we answer, driven by
//! tokio's `AsyncFd`.
#![allow(unsafe_code)]

use std::io::{self, Read};
use std::net::Ipv6Addr;
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, SockFilter, Socket, Type};
use tokio::io::unix::AsyncFd;

const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IPV6: u16 = 0x86dd;

// Classic BPF opcodes (linux/filter.h).
const LDH_ABS: u16 = 0x28; // BPF_LD | BPF_H | BPF_ABS
const LDB_ABS: u16 = 0x30; // BPF_LD | BPF_B | BPF_ABS
const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K

/// ARP requests and replies only: ethertype 0x0806, operation 1 or 2 (replies
/// that reach us, e.g. broadcast gratuitous ones, reveal another host claiming an
/// address we announce).
pub fn arp_filter() -> Vec<SockFilter> {
    vec![
        SockFilter::new(LDH_ABS, 0, 0, 12),
        SockFilter::new(JEQ_K, 0, 4, u32::from(ETH_P_ARP)),
        SockFilter::new(LDH_ABS, 0, 0, 20),
        SockFilter::new(JEQ_K, 1, 0, 1),
        SockFilter::new(JEQ_K, 0, 1, 2),
        SockFilter::new(RET_K, 0, 0, 0xffff),
        SockFilter::new(RET_K, 0, 0, 0),
    ]
}

/// Neighbour solicitations and advertisements only: IPv6, next header ICMPv6
/// (no extension headers, as RFC 4861 messages have none), type 135 or 136.
pub fn ndp_filter() -> Vec<SockFilter> {
    vec![
        SockFilter::new(LDH_ABS, 0, 0, 12),
        SockFilter::new(JEQ_K, 0, 6, u32::from(ETH_P_IPV6)),
        SockFilter::new(LDB_ABS, 0, 0, 20),
        SockFilter::new(JEQ_K, 0, 4, 58),
        SockFilter::new(LDB_ABS, 0, 0, 54),
        SockFilter::new(JEQ_K, 1, 0, 135),
        SockFilter::new(JEQ_K, 0, 1, 136),
        SockFilter::new(RET_K, 0, 0, 0xffff),
        SockFilter::new(RET_K, 0, 0, 0),
    ]
}

/// A packet socket on one interface.
pub struct PacketSocket {
    fd: AsyncFd<Socket>,
}

fn bind_to(sock: &Socket, protocol: u16, ifindex: u32) -> io::Result<()> {
    // SAFETY: sockaddr_ll is plain data; zeroed is a valid value; the pointer and
    // length passed to bind describe exactly that struct, which outlives the call.
    let rc = unsafe {
        let mut sll: libc::sockaddr_ll = std::mem::zeroed();
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = protocol.to_be();
        sll.sll_ifindex =
            i32::try_from(ifindex).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        libc::bind(
            sock.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast::<libc::sockaddr>(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

impl PacketSocket {
    /// Opens a socket for `protocol` frames on `ifindex` with `filter` attached.
    /// Needs CAP_NET_RAW. Frames queued before the filter took effect are drained.
    pub fn open(protocol: u16, ifindex: u32, filter: &[SockFilter]) -> io::Result<Self> {
        let sock = Socket::new(
            Domain::PACKET,
            Type::RAW.nonblocking().cloexec(),
            Some(Protocol::from(i32::from(protocol.to_be()))),
        )?;
        sock.attach_filter(filter)?;
        bind_to(&sock, protocol, ifindex)?;
        let mut scratch = [0u8; 2048];
        while (&sock).read(&mut scratch).is_ok() {}
        // SAFETY: the Socket owns its descriptor, which stays open and the same for
        // as long as the AsyncFd owns the Socket.
        let fd = unsafe { AsyncFd::register(sock) }.map_err(|e| io::Error::other(e.to_string()))?;
        Ok(PacketSocket { fd })
    }

    /// An ARP socket (requests only).
    pub fn arp(ifindex: u32) -> io::Result<Self> {
        Self::open(ETH_P_ARP, ifindex, &arp_filter())
    }

    /// An NDP socket (NS and NA only).
    pub fn ndp(ifindex: u32) -> io::Result<Self> {
        Self::open(ETH_P_IPV6, ifindex, &ndp_filter())
    }

    /// Receives one frame.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|s| s.get_ref().read(buf)) {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }

    /// Sends one frame out of the bound interface.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        let n = self.fd.get_ref().send(frame)?;
        if n == frame.len() {
            Ok(())
        } else {
            Err(io::Error::new(io::ErrorKind::WriteZero, "short write"))
        }
    }
}

/// Solicited-node group memberships on one interface, held through a UDP socket
/// so that the kernel sends the MLD reports (switches with MLD snooping then
/// forward solicitations to us) and programs the NIC's multicast filter.
pub struct Groups {
    sock: Socket,
    ifindex: u32,
    joined: std::collections::BTreeSet<Ipv6Addr>,
}

impl Groups {
    /// Memberships on `ifindex`.
    pub fn new(ifindex: u32) -> io::Result<Self> {
        Ok(Groups {
            sock: Socket::new(Domain::IPV6, Type::DGRAM.cloexec(), None)?,
            ifindex,
            joined: Default::default(),
        })
    }

    /// Makes the memberships exactly `want`.
    pub fn set(&mut self, want: &std::collections::BTreeSet<Ipv6Addr>) -> io::Result<()> {
        for g in self.joined.difference(want).copied().collect::<Vec<_>>() {
            self.sock.leave_multicast_v6(&g, self.ifindex)?;
            self.joined.remove(&g);
        }
        for g in want.difference(&self.joined).copied().collect::<Vec<_>>() {
            self.sock.join_multicast_v6(&g, self.ifindex)?;
            self.joined.insert(g);
        }
        Ok(())
    }
}
