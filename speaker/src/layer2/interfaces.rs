//! The node's interfaces: name, index, MAC, state and subnets, and which of them
//! answer for an address.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use nix::net::if_::InterfaceFlags;
use pnet_base::MacAddr;

/// One interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    /// Name, e.g. `eth0`.
    pub name: String,
    /// Kernel index.
    pub index: u32,
    /// Hardware address.
    pub mac: MacAddr,
    /// Administratively and operationally up.
    pub up: bool,
    /// Loopback, or a kind of virtual device that never faces the LAN.
    pub virtual_: bool,
    /// Configured subnets.
    pub subnets: Vec<IpNet>,
}

/// Name prefixes of devices that never face the LAN: container and CNI plumbing,
/// tunnels, kube-proxy's ipvs dummy.
const VIRTUAL_PREFIXES: [&str; 16] = [
    "lo",
    "veth",
    "docker",
    "cni",
    "flannel",
    "cali",
    "cilium",
    "lxc",
    "weave",
    "vxlan",
    "tunl",
    "kube-ipvs",
    "virbr",
    "genev",
    "nodelocaldns",
    "dummy",
];

fn read_sys(name: &str, file: &str) -> Option<String> {
    std::fs::read_to_string(format!("/sys/class/net/{name}/{file}"))
        .ok()
        .map(|s| s.trim().to_string())
}

fn parse_mac(s: &str) -> Option<MacAddr> {
    let b: Vec<u8> = s
        .split(':')
        .filter_map(|p| u8::from_str_radix(p, 16).ok())
        .collect();
    match b.as_slice() {
        [a, b, c, d, e, f] => Some(MacAddr::new(*a, *b, *c, *d, *e, *f)),
        _ => None,
    }
}

/// Reads every interface of this network namespace.
pub fn scan() -> std::io::Result<BTreeMap<String, Interface>> {
    let mut out: BTreeMap<String, Interface> = BTreeMap::new();
    for ifa in nix::ifaddrs::getifaddrs().map_err(std::io::Error::from)? {
        let name = ifa.interface_name.clone();
        let e = out.entry(name.clone()).or_insert_with(|| Interface {
            index: read_sys(&name, "ifindex")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            mac: read_sys(&name, "address")
                .and_then(|s| parse_mac(&s))
                .unwrap_or(MacAddr::zero()),
            up: false,
            virtual_: VIRTUAL_PREFIXES.iter().any(|p| name.starts_with(p)),
            subnets: Vec::new(),
            name: name.clone(),
        });
        e.up |= ifa.flags.contains(InterfaceFlags::IFF_UP)
            && ifa.flags.contains(InterfaceFlags::IFF_RUNNING);
        e.virtual_ |= ifa.flags.contains(InterfaceFlags::IFF_LOOPBACK);
        let addr = ifa.address.as_ref().and_then(|a| {
            a.as_sockaddr_in()
                .map(|s| IpAddr::V4(s.ip()))
                .or_else(|| a.as_sockaddr_in6().map(|s| IpAddr::V6(s.ip())))
        });
        let mask = ifa.netmask.as_ref().and_then(|a| {
            a.as_sockaddr_in()
                .map(|s| IpAddr::V4(s.ip()))
                .or_else(|| a.as_sockaddr_in6().map(|s| IpAddr::V6(s.ip())))
        });
        if let (Some(a), Some(m)) = (addr, mask)
            && let Ok(net) = IpNet::with_netmask(a, m)
        {
            e.subnets.push(net.trunc());
        }
    }
    Ok(out)
}

/// The interfaces that answer for `ip`: those named by the advertisements (when
/// they exist and are up), else those whose subnet holds the address, else every
/// non-virtual interface that is up.
pub fn for_address(
    ifaces: &BTreeMap<String, Interface>,
    ip: &IpAddr,
    named: &BTreeSet<String>,
) -> Vec<String> {
    let usable = |i: &&Interface| i.up && i.index != 0 && i.mac != MacAddr::zero();
    if !named.is_empty() {
        return ifaces
            .values()
            .filter(usable)
            .filter(|i| named.contains(&i.name))
            .map(|i| i.name.clone())
            .collect();
    }
    let by_subnet: Vec<String> = ifaces
        .values()
        .filter(usable)
        .filter(|i| {
            !i.virtual_
                && i.subnets
                    .iter()
                    .any(|n| n.contains(ip) && n.prefix_len() < n.max_prefix_len())
        })
        .map(|i| i.name.clone())
        .collect();
    if !by_subnet.is_empty() {
        return by_subnet;
    }
    ifaces
        .values()
        .filter(usable)
        .filter(|i| !i.virtual_)
        .map(|i| i.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(name: &str, nets: &[&str], up: bool) -> Interface {
        Interface {
            name: name.into(),
            index: 3,
            mac: MacAddr::new(2, 0, 0, 0, 0, 1),
            up,
            virtual_: VIRTUAL_PREFIXES.iter().any(|p| name.starts_with(p)),
            subnets: nets.iter().map(|n| n.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn chooses_named_then_subnet_then_every_physical_interface() {
        let m: BTreeMap<String, Interface> = [
            iface("eth0", &["192.168.1.0/24"], true),
            iface("eth1", &["10.0.0.0/24", "fd00::/64"], true),
            iface("eth2", &[], false),
            iface("veth12", &["10.0.0.0/24"], true),
            iface("lo", &["127.0.0.0/8"], true),
        ]
        .into_iter()
        .map(|i| (i.name.clone(), i))
        .collect();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(for_address(&m, &ip("10.0.0.7"), &BTreeSet::new()), ["eth1"]);
        assert_eq!(for_address(&m, &ip("fd00::7"), &BTreeSet::new()), ["eth1"]);
        assert_eq!(
            for_address(&m, &ip("172.16.0.1"), &BTreeSet::new()),
            ["eth0", "eth1"],
            "no subnet: every physical interface that is up"
        );
        let named = BTreeSet::from(["eth2".to_string(), "eth0".to_string()]);
        assert_eq!(
            for_address(&m, &ip("10.0.0.7"), &named),
            ["eth0"],
            "named and up"
        );
    }

    #[test]
    fn scans_this_namespace() {
        let m = scan().unwrap();
        let lo = m.get("lo").expect("every namespace has lo");
        assert!(lo.virtual_);
    }

    #[test]
    fn mac_parsing() {
        assert_eq!(
            parse_mac("02:00:0a:ff:00:01"),
            Some(MacAddr::new(2, 0, 0xa, 0xff, 0, 1))
        );
        assert_eq!(parse_mac("nope"), None);
    }
}
