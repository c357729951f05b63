//! Which families a session offers and carries, and the next hop of each prefix
//! (MP-BGP, RFC 4760), pure. The session driver passes in what it learnt from the
//! OPENs and the interfaces.

use std::net::IpAddr;

use ipnet::IpNet;

use super::nexthop::NextHops;

/// IPv4 unicast (AFI 1, SAFI 1).
pub const IPV4_UNICAST: (u16, u8) = (1, 1);
/// IPv6 unicast (AFI 2, SAFI 1).
pub const IPV6_UNICAST: (u16, u8) = (2, 1);

/// The families we offer: both, or with `disableMP` only the family of the
/// peer's address (MetalLB's meaning: one BGPPeer per family).
pub fn offered(disable_mp: bool, peer: IpAddr) -> Vec<(u16, u8)> {
    match (disable_mp, peer) {
        (false, _) => vec![IPV4_UNICAST, IPV6_UNICAST],
        (true, IpAddr::V4(_)) => vec![IPV4_UNICAST],
        (true, IpAddr::V6(_)) => vec![IPV6_UNICAST],
    }
}

/// Prefixes of one family a session does not send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Withheld {
    /// `IPv4` or `IPv6`.
    pub family: &'static str,
    /// How many prefixes.
    pub prefixes: usize,
    /// Why.
    pub reason: String,
}

/// What a session sends: each prefix with its next hop, and what it withholds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Prefixes to announce, with their next hop.
    pub hops: Vec<(IpNet, IpAddr)>,
    /// Per family, what is not announced and why.
    pub withheld: Vec<Withheld>,
}

fn family_name(p: &IpNet) -> &'static str {
    match p {
        IpNet::V4(_) => "IPv4",
        IpNet::V6(_) => "IPv6",
    }
}

/// The next hop of one prefix as [`plan`] gives it: `None` when its family was
/// not offered, the reason when it is withheld.
pub fn hop(
    p: IpNet,
    offered: &[(u16, u8)],
    negotiated: &[(u16, u8)],
    next_hops: &NextHops,
) -> Option<Result<IpAddr, String>> {
    let fam = match p {
        IpNet::V4(_) => IPV4_UNICAST,
        IpNet::V6(_) => IPV6_UNICAST,
    };
    if !offered.contains(&fam) {
        return None;
    }
    Some(if !negotiated.contains(&fam) {
        Err(format!(
            "the peer did not negotiate {} unicast",
            family_name(&p)
        ))
    } else {
        match p {
            IpNet::V4(_) => next_hops.v4.clone().map(IpAddr::V4),
            IpNet::V6(_) => next_hops.v6.clone().map(|(g, _)| IpAddr::V6(g)),
        }
    })
}

/// Plans `prefixes` for a session that offered `offered`, negotiated
/// `negotiated`, and has `next_hops`. Prefixes of a family we did not offer
/// (disableMP) are left out silently: another BGPPeer carries them.
///
/// IPv6 prefixes get the global next hop only, though RFC 2545 section 3 says
/// the link-local "shall" follow it for an on-link peer: the global one is all
/// an on-link router needs (it resolves it by NDP), and FRR without zebra (route
/// servers, `bgpd -Z`) withdraws a route whose link-local it cannot bind to an
/// interface (seen with FRR 8.4). The encoder supports the 32-byte form.
pub fn plan(
    prefixes: impl IntoIterator<Item = IpNet>,
    offered: &[(u16, u8)],
    negotiated: &[(u16, u8)],
    next_hops: &NextHops,
) -> Plan {
    let mut hops = Vec::new();
    let mut withheld: Vec<Withheld> = Vec::new();
    for p in prefixes {
        match hop(p, offered, negotiated, next_hops) {
            None => {}
            Some(Ok(nh)) => hops.push((p, nh)),
            Some(Err(reason)) => {
                let name = family_name(&p);
                match withheld.iter_mut().find(|w| w.family == name) {
                    Some(w) => w.prefixes += 1,
                    None => withheld.push(Withheld {
                        family: name,
                        prefixes: 1,
                        reason,
                    }),
                }
            }
        }
    }
    withheld.sort_by_key(|w| w.family);
    Plan { hops, withheld }
}

/// The entries of `now` whose family and reason are not in `before`: what to
/// log (once per reason, not on every change of the count).
pub fn newly_withheld<'a>(before: &[Withheld], now: &'a [Withheld]) -> Vec<&'a Withheld> {
    now.iter()
        .filter(|w| {
            !before
                .iter()
                .any(|o| o.family == w.family && o.reason == w.reason)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(v: &[&str]) -> Vec<IpNet> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn hops() -> NextHops {
        NextHops {
            v4: Ok("10.77.0.11".parse().unwrap()),
            v6: Ok((
                "fd77::11".parse().unwrap(),
                Some("fe80::1".parse().unwrap()),
            )),
        }
    }

    const BOTH: [(u16, u8); 2] = [IPV4_UNICAST, IPV6_UNICAST];

    #[test]
    fn an_mp_session_carries_both_families_with_their_own_next_hops() {
        let p = plan(
            nets(&["198.51.100.1/32", "2001:db8::1/128"]),
            &BOTH,
            &BOTH,
            &hops(),
        );
        assert_eq!(
            p.hops,
            vec![
                (nets(&["198.51.100.1/32"])[0], "10.77.0.11".parse().unwrap()),
                (nets(&["2001:db8::1/128"])[0], "fd77::11".parse().unwrap()),
            ],
            "global IPv6 next hop only"
        );
        assert!(p.withheld.is_empty());
    }

    #[test]
    fn disable_mp_leaves_the_other_family_out_silently() {
        let p = plan(
            nets(&["198.51.100.1/32", "2001:db8::1/128"]),
            &offered(true, "10.77.0.100".parse().unwrap()),
            &[IPV4_UNICAST],
            &hops(),
        );
        assert_eq!(p.hops.len(), 1);
        assert!(p.withheld.is_empty());
        assert_eq!(
            offered(true, "fd77::100".parse().unwrap()),
            vec![IPV6_UNICAST]
        );
        assert_eq!(offered(false, "fd77::100".parse().unwrap()), BOTH.to_vec());
    }

    #[test]
    fn no_next_hop_or_no_negotiation_withholds_with_the_reason() {
        let no_v6 = NextHops {
            v6: Err("no global IPv6 address on eth0".into()),
            ..hops()
        };
        let p = plan(
            nets(&["2001:db8::1/128", "2001:db8::2/128", "198.51.100.1/32"]),
            &BOTH,
            &BOTH,
            &no_v6,
        );
        assert_eq!(p.hops.len(), 1);
        assert_eq!(
            p.withheld,
            vec![Withheld {
                family: "IPv6",
                prefixes: 2,
                reason: "no global IPv6 address on eth0".into()
            }]
        );
        let p = plan(nets(&["2001:db8::1/128"]), &BOTH, &[IPV4_UNICAST], &hops());
        assert_eq!(
            p.withheld[0].reason,
            "the peer did not negotiate IPv6 unicast"
        );
    }

    #[test]
    fn a_reason_is_new_once() {
        let w = |n: usize, r: &str| Withheld {
            family: "IPv6",
            prefixes: n,
            reason: r.into(),
        };
        let before = [w(1, "a")];
        assert!(
            newly_withheld(&before, &[w(5, "a")]).is_empty(),
            "count only"
        );
        assert_eq!(newly_withheld(&before, &[w(1, "b")]), vec![&w(1, "b")]);
        assert_eq!(newly_withheld(&[], &[w(1, "a")]).len(), 1);
    }
}
