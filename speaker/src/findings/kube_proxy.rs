//! kube-proxy's configuration as far as layer 2 cares (pure): the `config.conf`
//! key of ConfigMap `kube-system/kube-proxy`, a KubeProxyConfiguration document
//! (`mode: ipvs`, `ipvs: {strictARP: true}`). Everything else in it is ignored.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Where kube-proxy's configuration lives (kubeadm and most installers).
pub const NAMESPACE: &str = "kube-system";
/// The ConfigMap's name.
pub const CONFIG_MAP: &str = "kube-proxy";
/// The key holding the KubeProxyConfiguration.
pub const KEY: &str = "config.conf";

/// What the speaker knows of kube-proxy's configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum KubeProxyView {
    /// Not read: file source, no ConfigMap, no permission, or not yet.
    #[default]
    Unknown,
    /// Read and understood.
    Config(KubeProxyConfig),
    /// The ConfigMap exists but its configuration cannot be read; why.
    Unreadable(String),
}

/// The fields that decide whether kube-proxy makes every node answer ARP.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KubeProxyConfig {
    /// `mode`: `ipvs`, `iptables`, `nftables`, or empty (the platform default,
    /// iptables on Linux).
    pub mode: String,
    /// `ipvs.strictARP`: kube-proxy sets arp_ignore=1 and arp_announce=2 itself.
    pub strict_arp: bool,
}

impl KubeProxyConfig {
    /// kube-proxy puts Service addresses on the `kube-ipvs0` dummy.
    pub fn ipvs(&self) -> bool {
        self.mode.eq_ignore_ascii_case("ipvs")
    }
}

#[derive(Deserialize)]
struct Document {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    ipvs: Option<Ipvs>,
}

#[derive(Deserialize)]
struct Ipvs {
    #[serde(default, rename = "strictARP")]
    strict_arp: Option<bool>,
}

/// Parses a KubeProxyConfiguration document. Unknown fields are ignored; the
/// error names the key and says what is wrong.
pub fn parse(doc: &str) -> Result<KubeProxyConfig, String> {
    if doc.trim().is_empty() {
        return Err(format!("key {KEY} is empty"));
    }
    let d: Document = serde_saphyr::from_str(doc).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!(" at line {}, column {}", l.line(), l.column()))
            .unwrap_or_default();
        // The first line of the parser's text: later ones quote the document.
        let what = e.to_string();
        let what = what.lines().next().unwrap_or("invalid YAML").to_string();
        format!("key {KEY}{at}: {what}")
    })?;
    if let Some(kind) = d.kind.as_deref().filter(|k| *k != "KubeProxyConfiguration") {
        return Err(format!(
            "key {KEY}: kind is {kind}, not KubeProxyConfiguration"
        ));
    }
    Ok(KubeProxyConfig {
        mode: d.mode.unwrap_or_default(),
        strict_arp: d.ipvs.and_then(|i| i.strict_arp).unwrap_or(false),
    })
}

/// The view from the ConfigMap's data (`None`: the ConfigMap has no data).
pub fn from_config_map(data: Option<&BTreeMap<String, String>>) -> KubeProxyView {
    match data.and_then(|d| d.get(KEY)) {
        None => KubeProxyView::Unreadable(format!(
            "ConfigMap {NAMESPACE}/{CONFIG_MAP} has no key {KEY}"
        )),
        Some(doc) => match parse(doc) {
            Ok(c) => KubeProxyView::Config(c),
            Err(e) => KubeProxyView::Unreadable(format!("ConfigMap {NAMESPACE}/{CONFIG_MAP} {e}")),
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// What `kubeadm init` writes (v1.33), shortened, with strictARP turned on as
    /// MetalLB's and FerroLB's install guides say.
    const KUBEADM: &str = "apiVersion: kubeproxy.config.k8s.io/v1alpha1
bindAddress: 0.0.0.0
clientConnection:
  acceptContentTypes: \"\"
  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf
clusterCIDR: 10.244.0.0/16
iptables:
  masqueradeAll: false
  minSyncPeriod: 0s
ipvs:
  excludeCIDRs: null
  minSyncPeriod: 0s
  scheduler: \"\"
  strictARP: true
  syncPeriod: 0s
kind: KubeProxyConfiguration
mode: ipvs
nodePortAddresses: null
";

    #[test]
    fn reads_mode_and_strict_arp_from_a_kubeadm_document() {
        assert_eq!(
            parse(KUBEADM).unwrap(),
            KubeProxyConfig {
                mode: "ipvs".into(),
                strict_arp: true
            }
        );
        let off = KUBEADM.replace("strictARP: true", "strictARP: false");
        let c = parse(&off).unwrap();
        assert!(c.ipvs() && !c.strict_arp);
    }

    #[test]
    fn an_empty_mode_and_no_ipvs_section_are_defaults() {
        let c = parse("kind: KubeProxyConfiguration\nmode: \"\"\n").unwrap();
        assert_eq!(c, KubeProxyConfig::default());
        assert!(!c.ipvs());
        let c = parse("mode: nftables\nipvs: {}\n").unwrap();
        assert_eq!(c.mode, "nftables");
        assert!(!c.strict_arp);
    }

    #[test]
    fn a_bad_document_is_an_error_naming_the_key_never_a_panic() {
        let e = parse("mode: [ipvs\n").unwrap_err();
        assert!(e.starts_with("key config.conf at line "), "{e}");
        let e = parse("ipvs: {strictARP: maybe}\n").unwrap_err();
        assert!(e.starts_with("key config.conf"), "{e}");
        assert_eq!(parse("  \n").unwrap_err(), "key config.conf is empty");
        assert_eq!(
            parse("kind: KubeletConfiguration\n").unwrap_err(),
            "key config.conf: kind is KubeletConfiguration, not KubeProxyConfiguration"
        );
    }

    #[test]
    fn the_config_map_without_the_key_is_unreadable() {
        assert_eq!(
            from_config_map(None),
            KubeProxyView::Unreadable(
                "ConfigMap kube-system/kube-proxy has no key config.conf".into()
            )
        );
        let data = BTreeMap::from([(KEY.to_string(), "mode: ipvs\n".to_string())]);
        assert_eq!(
            from_config_map(Some(&data)),
            KubeProxyView::Config(KubeProxyConfig {
                mode: "ipvs".into(),
                strict_arp: false
            })
        );
        let bad = BTreeMap::from([(KEY.to_string(), "mode: [\n".to_string())]);
        let KubeProxyView::Unreadable(e) = from_config_map(Some(&bad)) else {
            panic!("a bad document must be Unreadable");
        };
        assert!(
            e.starts_with("ConfigMap kube-system/kube-proxy key config.conf"),
            "{e}"
        );
    }
}
