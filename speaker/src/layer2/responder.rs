//! The answer to one received frame (pure): a reply for an address this node
//! owns on this interface, or a typed reason for staying silent.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use pnet_base::MacAddr;

use super::{arp, ndp};

/// Addresses one interface answers for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Owned {
    /// IPv4 addresses (ARP).
    pub v4: HashSet<Ipv4Addr>,
    /// IPv6 addresses (NDP).
    pub v6: HashSet<Ipv6Addr>,
}

impl Owned {
    /// Adds an address.
    pub fn insert(&mut self, ip: IpAddr) {
        match ip {
            IpAddr::V4(a) => {
                self.v4.insert(a);
            }
            IpAddr::V6(a) => {
                self.v6.insert(a);
            }
        }
    }

    /// Whether nothing is owned.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }
}

/// Why no reply was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    /// Not a request/solicitation (e.g. a reply seen in passing).
    NotRequest,
    /// For an address this node does not own here.
    NotOwned,
    /// Sent by this interface itself.
    OwnFrame,
    /// Fails parsing or validation.
    Malformed,
    /// Another host claims an address we own (gratuitous ARP, or an NA for it):
    /// an address conflict.
    Conflict {
        /// The address.
        ip: IpAddr,
        /// The other host's MAC.
        mac: MacAddr,
    },
}

/// The reply to an ARP frame, if one is due.
pub fn respond_arp(frame: &[u8], owned: &Owned, mac: MacAddr) -> Result<Vec<u8>, Dropped> {
    let a = arp::parse(frame).map_err(|_| Dropped::Malformed)?;
    if a.eth_src == mac || a.sender_mac == mac {
        return Err(Dropped::OwnFrame);
    }
    // Another host sending from an address we announce claims it, whatever it
    // asks: a gratuitous ARP, a reply, or a request with it as the sender (a host
    // with the address configured, e.g. kube-proxy IPVS without strictARP).
    if a.is_gratuitous() || !a.is_request || owned.v4.contains(&a.sender_ip) {
        return Err(if owned.v4.contains(&a.sender_ip) {
            Dropped::Conflict {
                ip: IpAddr::V4(a.sender_ip),
                mac: a.sender_mac,
            }
        } else {
            Dropped::NotRequest
        });
    }
    if !owned.v4.contains(&a.target_ip) {
        return Err(Dropped::NotOwned);
    }
    Ok(arp::reply(&a, mac))
}

/// The reply to an NDP frame, if one is due.
pub fn respond_ndp(frame: &[u8], owned: &Owned, mac: MacAddr) -> Result<Vec<u8>, Dropped> {
    let n = ndp::parse(frame).map_err(|_| Dropped::Malformed)?;
    if n.eth_src == mac {
        return Err(Dropped::OwnFrame);
    }
    if !n.is_solicitation {
        return Err(if owned.v6.contains(&n.target) {
            Dropped::Conflict {
                ip: IpAddr::V6(n.target),
                mac: n.link_addr.unwrap_or(n.eth_src),
            }
        } else {
            Dropped::NotRequest
        });
    }
    if !owned.v6.contains(&n.target) {
        return Err(Dropped::NotOwned);
    }
    Ok(ndp::reply(&n, mac))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: MacAddr = MacAddr(2, 0, 0, 0, 0, 1);
    const THEM: MacAddr = MacAddr(2, 0, 0, 0, 0, 2);

    fn request(target: Ipv4Addr) -> Vec<u8> {
        // A request is what a gratuitous announcement looks like with a different target.
        let mut f = arp::gratuitous(Ipv4Addr::new(10, 0, 0, 99), THEM);
        f[38..42].copy_from_slice(&target.octets());
        f
    }

    fn owned(ips: &[&str]) -> Owned {
        let mut o = Owned::default();
        for i in ips {
            o.insert(i.parse().unwrap());
        }
        o
    }

    #[test]
    fn answers_only_for_owned_addresses() {
        let o = owned(&["10.0.0.5", "fd00::5"]);
        let r = respond_arp(&request(Ipv4Addr::new(10, 0, 0, 5)), &o, ME).unwrap();
        let p = arp::parse(&r).unwrap();
        assert_eq!(
            (p.sender_ip, p.sender_mac, p.is_request),
            (Ipv4Addr::new(10, 0, 0, 5), ME, false)
        );
        assert_eq!(
            respond_arp(&request(Ipv4Addr::new(10, 0, 0, 6)), &o, ME),
            Err(Dropped::NotOwned)
        );
        assert_eq!(respond_arp(&[0u8; 10], &o, ME), Err(Dropped::Malformed));
    }

    #[test]
    fn a_request_sent_from_our_address_by_another_host_is_a_conflict() {
        let o = owned(&["10.0.0.5"]);
        // "who-has 10.0.0.1 tell 10.0.0.5" from THEM: a host using our address.
        let mut f = request(Ipv4Addr::new(10, 0, 0, 1));
        f[28..32].copy_from_slice(&[10, 0, 0, 5]);
        assert_eq!(
            respond_arp(&f, &o, ME),
            Err(Dropped::Conflict {
                ip: "10.0.0.5".parse().unwrap(),
                mac: THEM
            })
        );
    }

    #[test]
    fn a_foreign_announcement_of_our_address_is_a_conflict() {
        let o = owned(&["10.0.0.5", "fd00::5"]);
        let g = arp::gratuitous(Ipv4Addr::new(10, 0, 0, 5), THEM);
        assert_eq!(
            respond_arp(&g, &o, ME),
            Err(Dropped::Conflict {
                ip: "10.0.0.5".parse().unwrap(),
                mac: THEM
            })
        );
        assert_eq!(
            respond_arp(&arp::gratuitous(Ipv4Addr::new(10, 0, 0, 5), ME), &o, ME),
            Err(Dropped::OwnFrame)
        );
        let na = ndp::unsolicited("fd00::5".parse().unwrap(), THEM);
        assert_eq!(
            respond_ndp(&na, &o, ME),
            Err(Dropped::Conflict {
                ip: "fd00::5".parse().unwrap(),
                mac: THEM
            })
        );
        let na = ndp::unsolicited("fd00::6".parse().unwrap(), THEM);
        assert_eq!(respond_ndp(&na, &o, ME), Err(Dropped::NotRequest));
    }
}
