//! The reading behind the findings: the ARP sysctls of this network namespace
//! (`/proc/sys/net/ipv4/conf/*`, per namespace like the interfaces) and, with the
//! Kubernetes API, kube-proxy's ConfigMap.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use tokio::sync::watch;

use super::Finding;
use super::kube_proxy::{self, CONFIG_MAP, KubeProxyView, NAMESPACE};
use super::strict_arp::{self, ArpSysctls, IPVS_DUMMY, Observed};
use crate::layer2::interfaces::Interface;

/// How often kube-proxy's ConfigMap is read again: it changes rarely, and the
/// sysctls (read on every plan) are what decide.
pub const KUBE_PROXY_EVERY: Duration = Duration::from_secs(300);

fn read_u32(path: &str) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// `arp_ignore` and `arp_announce` of `conf` (`all` or an interface name).
pub fn arp_sysctls(conf: &str) -> Option<ArpSysctls> {
    // An interface name never holds '/' (the kernel refuses it), so the path is
    // the interface's own directory.
    let dir = format!("/proc/sys/net/ipv4/conf/{conf}");
    Some(ArpSysctls {
        arp_ignore: read_u32(&format!("{dir}/arp_ignore"))?,
        arp_announce: read_u32(&format!("{dir}/arp_announce"))?,
    })
}

/// The strictARP findings of this node for the interfaces layer 2 mode uses
/// (`in_use`); nothing is read when there is none.
pub fn strict_arp_findings(
    node: &str,
    ifaces: &BTreeMap<String, Interface>,
    in_use: &BTreeSet<String>,
    kube_proxy: &KubeProxyView,
) -> Vec<Finding> {
    if in_use.is_empty() {
        return Vec::new();
    }
    let observed = Observed {
        ipvs_dummy: ifaces.contains_key(IPVS_DUMMY),
        all: arp_sysctls("all"),
        interfaces: in_use
            .iter()
            .map(|name| (name.clone(), arp_sysctls(name)))
            .collect(),
        kube_proxy: kube_proxy.clone(),
    };
    strict_arp::check(node, &observed)
}

/// Reads ConfigMap kube-system/kube-proxy every `every` into `tx`, until every
/// receiver is gone. Absent or forbidden means `Unknown` (logged once per change
/// of outcome): many clusters have no kube-proxy, or do not grant the Role.
pub async fn poll_kube_proxy(
    client: kube::Client,
    tx: watch::Sender<KubeProxyView>,
    every: Duration,
) {
    let api: kube::Api<ConfigMap> = kube::Api::namespaced(client, NAMESPACE);
    let mut last_outcome = String::new();
    loop {
        let (view, outcome) = match api.get_opt(CONFIG_MAP).await {
            Ok(Some(cm)) => {
                let v = kube_proxy::from_config_map(cm.data.as_ref());
                let o = match &v {
                    KubeProxyView::Config(c) => {
                        format!("mode {:?}, ipvs.strictARP {}", c.mode, c.strict_arp)
                    }
                    KubeProxyView::Unreadable(why) => why.clone(),
                    KubeProxyView::Unknown => String::new(),
                };
                (v, o)
            }
            Ok(None) => (KubeProxyView::Unknown, "not found".to_string()),
            Err(kube::Error::Api(s)) if s.code == 403 => {
                (KubeProxyView::Unknown, "forbidden".to_string())
            }
            Err(e) => (KubeProxyView::Unknown, format!("error: {e}")),
        };
        if outcome != last_outcome {
            tracing::info!(
                configmap = %format!("{NAMESPACE}/{CONFIG_MAP}"),
                "kube-proxy configuration: {outcome} (the strictARP check reads the node's sysctls in any case)"
            );
            last_outcome = outcome;
        }
        tx.send_if_modified(|v| {
            let changed = *v != view;
            *v = view;
            changed
        });
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = tx.closed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_this_namespaces_loopback_sysctls() {
        // Every network namespace has lo and all; the values are whatever they are.
        assert!(arp_sysctls("all").is_some());
        assert!(arp_sysctls("lo").is_some());
        assert_eq!(arp_sysctls("no-such-if0"), None);
    }
}
