//! The lab's router: BIRD 2 peering with every node over IPv4 and IPv6, installing
//! what it learns into its kernel table with equal-cost multipath, as a top-of-rack
//! router would.

use std::fmt::Write as _;

use super::config::{HOLD_SECONDS, NODE_ASN, ROUTER_ASN, ROUTER_V4};

/// The BIRD protocol name of node `i`'s session in `family` (`v4`/`v6`).
pub fn protocol(i: usize, family: &str) -> String {
    format!("n{i}_{family}")
}

/// `bird.conf` for `nodes`, given each node's IPv4 and IPv6 LAN address.
pub fn bird_conf(nodes: &[(String, String)]) -> String {
    let mut out = format!(
        "router id {ROUTER_V4};
protocol device {{ scan time 1; }}
# ECMP: one kernel route with a next hop per node announcing the prefix.
protocol kernel k4 {{ ipv4 {{ export all; }}; merge paths on; }}
protocol kernel k6 {{ ipv6 {{ export all; }}; merge paths on; }}
template bgp node {{
  local as {ROUTER_ASN};
  hold time {HOLD_SECONDS};
  connect retry time 1;
  error wait time 1, 5;
}}
"
    );
    for (i, (v4, v6)) in nodes.iter().enumerate() {
        let i = i + 1;
        let _ = write!(
            out,
            "protocol bgp {} from node {{ neighbor {v4} as {NODE_ASN}; ipv4 {{ import all; export none; }}; }}
protocol bgp {} from node {{ neighbor {v6} as {NODE_ASN}; ipv6 {{ import all; export none; }}; }}
",
            protocol(i, "v4"),
            protocol(i, "v6"),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_session_per_node_and_family_with_multipath() {
        let c = bird_conf(&[
            ("10.77.0.11".into(), "fd77::11".into()),
            ("10.77.0.12".into(), "fd77::12".into()),
        ]);
        assert!(c.contains("protocol bgp n2_v6 from node { neighbor fd77::12 as 64500; ipv6 { import all; export none; }; }"), "{c}");
        assert!(
            c.contains("protocol bgp n1_v4 from node { neighbor 10.77.0.11 as 64500;"),
            "{c}"
        );
        assert_eq!(c.matches("merge paths on").count(), 2, "{c}");
        assert!(c.contains("local as 64501;"), "{c}");
    }
}
