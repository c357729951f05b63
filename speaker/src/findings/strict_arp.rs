//! kube-proxy in ipvs mode without strictARP (pure). ipvs mode puts every
//! LoadBalancer address on the `kube-ipvs0` dummy of every node; unless
//! `arp_ignore` is 1 (or 2, 8) and `arp_announce` 2 on the interfaces facing the
//! LAN, every node's kernel answers ARP for every address and uses them as the
//! sender of its own requests, so the client sees several MACs and layer 2 mode
//! breaks. IPv6 is not affected: the kernel answers a neighbour solicitation only
//! for addresses of the interface it arrived on.

use std::collections::BTreeMap;

use super::Finding;
use super::kube_proxy::{CONFIG_MAP, KubeProxyView, NAMESPACE};

/// The dummy interface kube-proxy's ipvs mode binds Service addresses to.
pub const IPVS_DUMMY: &str = "kube-ipvs0";
/// Condition type and Event reason.
pub const STRICT_ARP_DISABLED: &str = "StrictARPDisabled";
/// Condition type: kube-proxy's ConfigMap exists but says nothing readable.
pub const KUBE_PROXY_CONFIG_UNREADABLE: &str = "KubeProxyConfigUnreadable";

/// `net.ipv4.conf.<iface>.arp_ignore` and `arp_announce` as read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpSysctls {
    /// Which ARP requests the kernel answers (0: for any local address).
    pub arp_ignore: u32,
    /// Which source address its own requests carry (0: any local address).
    pub arp_announce: u32,
}

impl ArpSysctls {
    /// What the kernel applies on an interface: the larger of `all` and its own
    /// value, for both settings (`IN_DEV_ARP_IGNORE`, `IN_DEV_ARP_ANNOUNCE`).
    pub fn effective(all: ArpSysctls, own: ArpSysctls) -> ArpSysctls {
        ArpSysctls {
            arp_ignore: all.arp_ignore.max(own.arp_ignore),
            arp_announce: all.arp_announce.max(own.arp_announce),
        }
    }

    /// The kernel answers for an address that is on another interface
    /// (kube-ipvs0): arp_ignore 0, 3 (scope host only), 4-7 (reserved) and any
    /// value above 8 reply; 1, 2 and 8 do not (Documentation/networking/ip-sysctl).
    fn answers_for_other_interfaces(self) -> bool {
        !matches!(self.arp_ignore, 1 | 2 | 8)
    }

    /// Its own ARP requests may carry an address of another interface.
    fn announces_other_interfaces(self) -> bool {
        self.arp_announce < 2
    }

    fn strict(self) -> bool {
        !self.answers_for_other_interfaces() && !self.announces_other_interfaces()
    }
}

/// What was read on this node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// `kube-ipvs0` exists.
    pub ipvs_dummy: bool,
    /// `net.ipv4.conf.all`, `None` when unreadable.
    pub all: Option<ArpSysctls>,
    /// Each interface layer 2 mode answers on, `None` when unreadable.
    pub interfaces: BTreeMap<String, Option<ArpSysctls>>,
    /// kube-proxy's configuration.
    pub kube_proxy: KubeProxyView,
}

/// The fix, the same words in the condition, the docs and `diagnose`.
pub const FIX: &str = "set ipvs.strictARP: true in ConfigMap kube-system/kube-proxy and restart kube-proxy, or sysctl net.ipv4.conf.all.arp_ignore=1 and net.ipv4.conf.all.arp_announce=2 on every node";

/// The findings on `node`: `StrictARPDisabled` when kube-proxy runs (or is
/// configured to run) in ipvs mode and an interface in use answers ARP for the
/// addresses on kube-ipvs0; `KubeProxyConfigUnreadable` when the configuration
/// exists but cannot be read (the sysctls still decide).
pub fn check(node: &str, o: &Observed) -> Vec<Finding> {
    let mut out = Vec::new();
    let config = match &o.kube_proxy {
        KubeProxyView::Config(c) => Some(c),
        KubeProxyView::Unreadable(why) => {
            out.push(Finding {
                type_: KUBE_PROXY_CONFIG_UNREADABLE,
                reason: "BadDocument",
                message: format!(
                    "cannot read kube-proxy's configuration ({why}); whether kube-ipvs0 exists and the ARP sysctls alone decide StrictARPDisabled on node {node}"
                ),
                event: false,
                also_on: Vec::new(),
            });
            None
        }
        KubeProxyView::Unknown => None,
    };
    let ipvs_configured = config.is_some_and(|c| c.ipvs());
    if !o.ipvs_dummy && !ipvs_configured {
        return out;
    }
    let Some(all) = o.all else {
        return out;
    };
    let bad: Vec<String> = o
        .interfaces
        .iter()
        .filter_map(|(name, own)| {
            let own = (*own)?;
            let eff = ArpSysctls::effective(all, own);
            (!eff.strict()).then(|| {
                format!(
                    "{name} has arp_ignore {} (all {}, {name} {}; needs 1) and arp_announce {} (all {}, {name} {}; needs 2)",
                    eff.arp_ignore,
                    all.arp_ignore,
                    own.arp_ignore,
                    eff.arp_announce,
                    all.arp_announce,
                    own.arp_announce
                )
            })
        })
        .collect();
    if bad.is_empty() {
        return out;
    }
    let answers = o
        .interfaces
        .values()
        .flatten()
        .any(|own| ArpSysctls::effective(all, *own).answers_for_other_interfaces());
    let what = if answers {
        "the kernel of every such node answers ARP for them too, so clients see several MACs"
    } else {
        "the kernel sends ARP requests from them, so neighbours learn this node's MAC for them"
    };
    let whence = if o.ipvs_dummy {
        format!(
            "{IPVS_DUMMY} exists on node {node} (kube-proxy in ipvs mode puts every LoadBalancer address on it)"
        )
    } else {
        format!(
            "kube-proxy is configured for ipvs mode (ConfigMap {NAMESPACE}/{CONFIG_MAP}), which puts every LoadBalancer address on {IPVS_DUMMY}"
        )
    };
    let config_says = match config {
        Some(c) if c.ipvs() && c.strict_arp => format!(
            "; ConfigMap {NAMESPACE}/{CONFIG_MAP} already sets ipvs.strictARP: true, so kube-proxy on node {node} has not applied it yet (restart it)"
        ),
        Some(c) if c.ipvs() => {
            format!("; ConfigMap {NAMESPACE}/{CONFIG_MAP} has mode ipvs and ipvs.strictARP false")
        }
        _ => String::new(),
    };
    out.push(Finding {
        type_: STRICT_ARP_DISABLED,
        reason: if answers {
            "KernelAnswersARP"
        } else {
            "KernelAnnouncesAddresses"
        },
        message: format!(
            "{whence} and {what}: {}{config_says}; fix: {FIX}",
            bad.join("; ")
        ),
        event: true,
        also_on: Vec::new(),
    });
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::kube_proxy::KubeProxyConfig;
    use super::*;

    fn s(arp_ignore: u32, arp_announce: u32) -> Option<ArpSysctls> {
        Some(ArpSysctls {
            arp_ignore,
            arp_announce,
        })
    }

    fn observed(ipvs_dummy: bool, all: Option<ArpSysctls>, eth0: Option<ArpSysctls>) -> Observed {
        Observed {
            ipvs_dummy,
            all,
            interfaces: BTreeMap::from([("eth0".to_string(), eth0)]),
            kube_proxy: KubeProxyView::Unknown,
        }
    }

    fn types(f: &[Finding]) -> Vec<&str> {
        f.iter().map(|f| f.type_).collect()
    }

    #[test]
    fn the_kernel_uses_the_larger_of_all_and_the_interface() {
        let e = ArpSysctls::effective(s(1, 0).unwrap(), s(0, 2).unwrap());
        assert_eq!(Some(e), s(1, 2));
        assert!(e.strict());
        for (ignore, answers) in [
            (0, true),
            (1, false),
            (2, false),
            (3, true),
            (5, true),
            (8, false),
            (9, true),
        ] {
            assert_eq!(
                s(ignore, 2).unwrap().answers_for_other_interfaces(),
                answers,
                "arp_ignore {ignore}"
            );
        }
    }

    #[test]
    fn ipvs_dummy_with_default_sysctls_names_the_interface_values_and_fix() {
        let f = check("n1", &observed(true, s(0, 0), s(0, 0)));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].type_, STRICT_ARP_DISABLED);
        assert_eq!(f[0].reason, "KernelAnswersARP");
        assert!(f[0].event);
        assert_eq!(
            f[0].message,
            "kube-ipvs0 exists on node n1 (kube-proxy in ipvs mode puts every LoadBalancer address on it) and the kernel of every such node answers ARP for them too, so clients see several MACs: eth0 has arp_ignore 0 (all 0, eth0 0; needs 1) and arp_announce 0 (all 0, eth0 0; needs 2); fix: set ipvs.strictARP: true in ConfigMap kube-system/kube-proxy and restart kube-proxy, or sysctl net.ipv4.conf.all.arp_ignore=1 and net.ipv4.conf.all.arp_announce=2 on every node"
        );
    }

    #[test]
    fn strict_settings_on_all_or_on_the_interface_are_enough() {
        assert!(check("n1", &observed(true, s(1, 2), s(0, 0))).is_empty());
        assert!(check("n1", &observed(true, s(0, 0), s(1, 2))).is_empty());
        assert!(check("n1", &observed(true, s(2, 2), s(0, 2))).is_empty());
        assert!(check("n1", &observed(true, s(8, 2), s(0, 0))).is_empty());
    }

    #[test]
    fn only_arp_announce_missing_is_a_finding_of_its_own_reason() {
        let f = check("n1", &observed(true, s(1, 0), s(0, 1)));
        assert_eq!(types(&f), [STRICT_ARP_DISABLED]);
        assert_eq!(f[0].reason, "KernelAnnouncesAddresses");
        assert!(
            f[0].message.contains("eth0 has arp_ignore 1 (all 1, eth0 0; needs 1) and arp_announce 1 (all 0, eth0 1; needs 2)"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn without_ipvs_nothing_answers_for_other_interfaces() {
        assert!(check("n1", &observed(false, s(0, 0), s(0, 0))).is_empty());
        let mut o = observed(false, s(0, 0), s(0, 0));
        o.kube_proxy = KubeProxyView::Config(KubeProxyConfig {
            mode: "iptables".into(),
            strict_arp: false,
        });
        assert!(check("n1", &o).is_empty());
    }

    #[test]
    fn ipvs_configured_before_the_dummy_exists_is_a_finding() {
        let mut o = observed(false, s(0, 0), s(0, 0));
        o.kube_proxy = KubeProxyView::Config(KubeProxyConfig {
            mode: "ipvs".into(),
            strict_arp: false,
        });
        let f = check("n1", &o);
        assert_eq!(types(&f), [STRICT_ARP_DISABLED]);
        assert!(
            f[0].message.starts_with("kube-proxy is configured for ipvs mode (ConfigMap kube-system/kube-proxy), which puts every LoadBalancer address on kube-ipvs0 and "),
            "{}",
            f[0].message
        );
        assert!(
            f[0].message.contains(
                "; ConfigMap kube-system/kube-proxy has mode ipvs and ipvs.strictARP false; fix: "
            ),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn strict_arp_configured_but_not_applied_says_restart() {
        let mut o = observed(true, s(0, 0), s(0, 0));
        o.kube_proxy = KubeProxyView::Config(KubeProxyConfig {
            mode: "ipvs".into(),
            strict_arp: true,
        });
        let f = check("n1", &o);
        assert!(
            f[0].message.contains("already sets ipvs.strictARP: true, so kube-proxy on node n1 has not applied it yet (restart it)"),
            "{}",
            f[0].message
        );
        // Applied: the sysctls are what count.
        o.all = s(1, 2);
        assert!(check("n1", &o).is_empty());
    }

    #[test]
    fn every_interface_in_use_is_checked_and_unreadable_ones_are_skipped() {
        let mut o = observed(true, s(0, 0), s(1, 2));
        o.interfaces.insert("eth1".into(), s(0, 0));
        o.interfaces.insert("eth2".into(), None);
        let f = check("n1", &o);
        assert!(
            f[0].message.contains(": eth1 has arp_ignore 0"),
            "{}",
            f[0].message
        );
        assert!(!f[0].message.contains("eth0 has"), "{}", f[0].message);
        assert!(!f[0].message.contains("eth2"), "{}", f[0].message);
        // Nothing readable: no guess.
        assert!(check("n1", &observed(true, None, s(0, 0))).is_empty());
        assert!(check("n1", &observed(true, s(0, 0), None)).is_empty());
        // No interface in use: nothing to check.
        let mut o = observed(true, s(0, 0), s(0, 0));
        o.interfaces.clear();
        assert!(check("n1", &o).is_empty());
    }

    #[test]
    fn an_unreadable_configuration_is_a_finding_and_the_sysctls_still_decide() {
        let mut o = observed(true, s(0, 0), s(0, 0));
        o.kube_proxy = KubeProxyView::Unreadable(
            "ConfigMap kube-system/kube-proxy has no key config.conf".into(),
        );
        let f = check("n1", &o);
        assert_eq!(
            types(&f),
            [KUBE_PROXY_CONFIG_UNREADABLE, STRICT_ARP_DISABLED]
        );
        assert_eq!(
            f[0].message,
            "cannot read kube-proxy's configuration (ConfigMap kube-system/kube-proxy has no key config.conf); whether kube-ipvs0 exists and the ARP sysctls alone decide StrictARPDisabled on node n1"
        );
        assert!(!f[0].event);
        o.all = s(1, 2);
        assert_eq!(types(&check("n1", &o)), [KUBE_PROXY_CONFIG_UNREADABLE]);
    }
}
