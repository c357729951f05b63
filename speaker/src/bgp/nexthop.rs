//! The next hops a session announces with: its own local address for its own
//! family, and for the other family (MP-BGP, RFC 4760) the node's address of
//! that family on the interface that carries the session. [`select`] is pure;
//! [`scan`] reads the interfaces.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// One address configured on an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfAddr {
    /// Interface name.
    pub iface: String,
    /// The address with its prefix length.
    pub net: IpNet,
}

/// The next hops of one session, by family; `None` with the reason when the
/// node has none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NextHops {
    /// For IPv4 prefixes (the NEXT_HOP attribute).
    pub v4: Result<Ipv4Addr, String>,
    /// For IPv6 prefixes: the global address, and the link-local one when the
    /// peer is on-link (RFC 2545 section 3).
    pub v6: Result<(Ipv6Addr, Option<Ipv6Addr>), String>,
}

fn is_link_local(a: &Ipv6Addr) -> bool {
    (a.segments()[0] & 0xffc0) == 0xfe80
}

/// The next hops of a session from `local` (its local address) to `peer`, given
/// the node's addresses.
///
/// RFC 2545 section 3: the link-local address may go after the global one, "if
/// and only if" the peer shares a subnet with the next hop, i.e. with this node
/// (we announce ourselves). On-link is judged by the session's own family: the
/// peer's address inside a subnet of the session's interface. The session
/// currently sends the global address only (see `session.rs`, `desired`).
pub fn select(local: IpAddr, peer: IpAddr, addrs: &[IfAddr]) -> NextHops {
    let iface = addrs
        .iter()
        .find(|a| a.net.addr() == local)
        .map(|a| &a.iface);
    let on_iface = |a: &&IfAddr| Some(&a.iface) == iface;
    let on_link = match peer {
        IpAddr::V6(p) if is_link_local(&p) => iface.is_some(),
        _ => addrs
            .iter()
            .filter(on_iface)
            .any(|a| a.net.contains(&peer) && a.net.prefix_len() < a.net.max_prefix_len()),
    };
    let missing = |fam: &str| match iface {
        Some(i) => {
            format!("no {fam} address on {i}, the interface of the session's local address {local}")
        }
        None => {
            format!("no interface holds the session's local address {local}, so no {fam} next hop")
        }
    };
    let v4 = match local {
        IpAddr::V4(a) => Ok(a),
        IpAddr::V6(_) => addrs
            .iter()
            .filter(on_iface)
            .find_map(|a| match a.net.addr() {
                IpAddr::V4(x) => Some(x),
                IpAddr::V6(_) => None,
            })
            .ok_or_else(|| missing("IPv4")),
    };
    let link_local = addrs
        .iter()
        .filter(on_iface)
        .find_map(|a| match a.net.addr() {
            IpAddr::V6(x) if is_link_local(&x) => Some(x),
            _ => None,
        })
        .filter(|_| on_link);
    let global = match local {
        IpAddr::V6(a) if !is_link_local(&a) => Some(a),
        _ => addrs
            .iter()
            .filter(on_iface)
            .find_map(|a| match a.net.addr() {
                IpAddr::V6(x) if !is_link_local(&x) && !x.is_loopback() => Some(x),
                _ => None,
            }),
    };
    let v6 = global
        .map(|g| (g, link_local.filter(|l| *l != g)))
        .ok_or_else(|| missing("global IPv6"));
    NextHops { v4, v6 }
}

/// Every address of this network namespace's interfaces.
pub fn scan() -> std::io::Result<Vec<IfAddr>> {
    let mut out = Vec::new();
    for ifa in nix::ifaddrs::getifaddrs().map_err(std::io::Error::from)? {
        let ip = |a: &nix::sys::socket::SockaddrStorage| {
            a.as_sockaddr_in()
                .map(|s| IpAddr::V4(s.ip()))
                .or_else(|| a.as_sockaddr_in6().map(|s| IpAddr::V6(s.ip())))
        };
        let addr = ifa.address.as_ref().and_then(ip);
        let mask = ifa.netmask.as_ref().and_then(ip);
        if let (Some(a), Some(m)) = (addr, mask)
            && let Ok(net) = IpNet::with_netmask(a, m)
        {
            out.push(IfAddr {
                iface: ifa.interface_name.clone(),
                net,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs() -> Vec<IfAddr> {
        [
            ("lo", "127.0.0.1/8"),
            ("lo", "::1/128"),
            ("eth0", "10.77.0.11/24"),
            ("eth0", "fe80::1c00:aff:fe4d:11/64"),
            ("eth0", "fd77::11/64"),
            ("eth1", "192.0.2.5/24"),
            ("eth1", "2001:db8:9::5/64"),
        ]
        .iter()
        .map(|(i, n)| IfAddr {
            iface: (*i).into(),
            net: n.parse().unwrap(),
        })
        .collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_ipv4_session_on_link_gets_the_interfaces_global_and_link_local_ipv6() {
        let nh = select(ip("10.77.0.11"), ip("10.77.0.100"), &addrs());
        assert_eq!(nh.v4, Ok("10.77.0.11".parse().unwrap()));
        assert_eq!(
            nh.v6,
            Ok((
                "fd77::11".parse().unwrap(),
                Some("fe80::1c00:aff:fe4d:11".parse().unwrap())
            ))
        );
    }

    #[test]
    fn a_multihop_peer_gets_only_the_global_address() {
        let nh = select(ip("10.77.0.11"), ip("203.0.113.1"), &addrs());
        assert_eq!(nh.v6, Ok(("fd77::11".parse().unwrap(), None)));
    }

    #[test]
    fn an_ipv6_session_gets_the_interfaces_ipv4() {
        let nh = select(ip("2001:db8:9::5"), ip("2001:db8:9::1"), &addrs());
        assert_eq!(nh.v4, Ok("192.0.2.5".parse().unwrap()));
        assert_eq!(
            nh.v6,
            Ok(("2001:db8:9::5".parse().unwrap(), None)),
            "eth1 has no link-local address here"
        );
    }

    #[test]
    fn a_missing_family_says_why() {
        let only_v4: Vec<IfAddr> = addrs()
            .into_iter()
            .filter(|a| a.iface != "eth0" || a.net.addr().is_ipv4())
            .collect();
        let nh = select(ip("10.77.0.11"), ip("10.77.0.100"), &only_v4);
        assert_eq!(
            nh.v6,
            Err("no global IPv6 address on eth0, the interface of the session's local address 10.77.0.11".into())
        );
        let nh = select(ip("10.9.9.9"), ip("10.77.0.100"), &addrs());
        assert!(nh.v6.unwrap_err().contains("no interface holds"));
    }
}
