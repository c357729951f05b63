//! TCP details BGP needs that std and tokio do not expose: the MD5 signature
//! option (RFC 2385). The only `unsafe` of the BGP layer.
#![allow(unsafe_code)]

use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;

/// Linux `TCP_MD5SIG_MAXKEYLEN`.
pub const MD5_MAX_KEY: usize = 80;

/// `struct tcp_md5sig` of linux/tcp.h (libc does not define it).
#[repr(C)]
struct TcpMd5Sig {
    tcpm_addr: libc::sockaddr_storage,
    tcpm_flags: u8,
    tcpm_prefixlen: u8,
    tcpm_keylen: u16,
    tcpm_ifindex: libc::c_int,
    tcpm_key: [u8; MD5_MAX_KEY],
}

/// Sets the TCP MD5 key used with `peer` on this socket (before connecting).
pub fn set_md5(sock: &impl AsRawFd, peer: IpAddr, key: &[u8]) -> io::Result<()> {
    if key.len() > MD5_MAX_KEY {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "TCP MD5 keys are at most 80 bytes",
        ));
    }
    // SAFETY: tcp_md5sig and sockaddr_storage are plain data and zero is a valid
    // value for both; the pointers and lengths passed to setsockopt describe the
    // local struct exactly, which outlives the call.
    let rc = unsafe {
        let mut sig: TcpMd5Sig = std::mem::zeroed();
        match peer {
            IpAddr::V4(a) => {
                let sin =
                    (&mut sig.tcpm_addr as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>();
                (*sin).sin_family = libc::AF_INET as libc::sa_family_t;
                (*sin).sin_addr.s_addr = u32::from_ne_bytes(a.octets());
            }
            IpAddr::V6(a) => {
                let sin6 = (&mut sig.tcpm_addr as *mut libc::sockaddr_storage)
                    .cast::<libc::sockaddr_in6>();
                (*sin6).sin6_family = libc::AF_INET6 as libc::sa_family_t;
                (*sin6).sin6_addr.s6_addr = a.octets();
            }
        }
        // Bounded by MD5_MAX_KEY above.
        sig.tcpm_keylen = key.len() as u16;
        sig.tcpm_key[..key.len()].copy_from_slice(key);
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_MD5SIG,
            (&sig as *const TcpMd5Sig).cast::<libc::c_void>(),
            std::mem::size_of::<TcpMd5Sig>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_a_key_on_a_tcp_socket_and_refuses_long_ones() {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        set_md5(&s, "127.0.0.1".parse().unwrap(), b"s3cret").unwrap();
        assert!(set_md5(&s, "127.0.0.1".parse().unwrap(), &[0u8; 81]).is_err());
        let s6 = socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::STREAM, None).unwrap();
        set_md5(&s6, "::1".parse().unwrap(), b"s3cret").unwrap();
    }
}
