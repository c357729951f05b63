//! Cross-object validation: each problem names the object and field, and a bad
//! object never hides the good ones.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use ferrolb_crds::ClusterSnapshot;
use ferrolb_crds::config::{CommunityValue, Config, ConfigError, PeerAsn};
use ferrolb_crds::source::FileSource;
use ferrolb_crds::source::yaml::parse_file;

fn snapshot(yaml: &str) -> ClusterSnapshot {
    let (objs, errs) = parse_file(Path::new("t.yaml"), yaml);
    assert!(errs.is_empty(), "{errs:?}");
    let mut s = ClusterSnapshot::default();
    for (_, o) in objs {
        s.add(o);
    }
    s
}

fn build(yaml: &str) -> (Config, Vec<ConfigError>) {
    snapshot(yaml).config()
}

fn pool(name: &str, addrs: &str) -> String {
    format!(
        "---\napiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: {name}\n  namespace: ferrolb-system\nspec:\n  addresses: {addrs}\n"
    )
}

fn find<'a>(errors: &'a [ConfigError], kind: &str, name: &str) -> &'a ConfigError {
    errors
        .iter()
        .find(|e| e.kind == kind && e.name == name)
        .unwrap_or_else(|| panic!("no error for {kind} {name}: {errors:?}"))
}

#[test]
fn the_samples_build_without_errors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/samples");
    let loaded = FileSource::new(dir).load().unwrap();
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let (config, errors) = loaded.snapshot.config();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(config.pools.len(), 3);
    assert_eq!(config.pools["lan"].ranges.len(), 3);
    assert!(!config.pools["routed"].auto_assign);
    assert!(config.pools["lan"].avoid_buggy_ips);
    assert_eq!(
        config.peers["tor-a"].password.as_deref(),
        Some("tor-a-password")
    );
    assert_eq!(config.peers["edge"].peer_asn, PeerAsn::External);
    assert!(config.peers["tor-b"].is_ibgp());
    assert_eq!(config.peers["tor-b"].port, 1179);
    let bgp = &config.bgp_advertisements["routed"];
    assert_eq!(bgp.pools.iter().collect::<Vec<_>>(), ["routed"]);
    assert_eq!(
        bgp.communities,
        vec![
            CommunityValue::Standard((65535 << 16) | 65282),
            CommunityValue::Large(64512, 1, 2)
        ],
        "the alias no-advertise resolves to 65535:65282, which is listed already"
    );
    let l2 = &config.l2_advertisements["lan"];
    assert_eq!(l2.pools.len(), 2);
    assert_eq!(l2.preferred_nodes[0].0, 50);
}

#[test]
fn overlapping_pools_reject_the_newcomer_and_keep_the_first() {
    let yaml = format!(
        "{}{}{}",
        pool("a-first", "[10.0.0.0/24]"),
        pool("b-overlaps", "[10.0.0.128-10.0.0.200, 10.1.0.0/24]"),
        pool("c-fine", "[10.2.0.0/24]")
    );
    let (config, errors) = build(&yaml);
    assert_eq!(
        config.pools.keys().collect::<Vec<_>>(),
        ["a-first", "c-fine"]
    );
    let e = find(&errors, "IPAddressPool", "b-overlaps");
    assert_eq!(e.field, "spec.addresses[0]");
    assert!(e.message.contains("a-first"), "{e}");
    assert!(e.rejected);
    assert_eq!(errors.len(), 1);
}

#[test]
fn a_pool_overlapping_itself_or_with_a_bad_entry_is_rejected_alone() {
    let yaml = format!(
        "{}{}{}",
        pool("self-overlap", "[10.0.0.0/24, 10.0.0.5]"),
        pool("bad-range", "[10.3.0.9-10.3.0.1]"),
        pool("good", "['fd00::/120']")
    );
    let (config, errors) = build(&yaml);
    assert_eq!(config.pools.keys().collect::<Vec<_>>(), ["good"]);
    assert_eq!(
        find(&errors, "IPAddressPool", "self-overlap").field,
        "spec.addresses[1]"
    );
    let e = find(&errors, "IPAddressPool", "bad-range");
    assert_eq!(e.field, "spec.addresses[0]");
    assert!(e.message.contains("starts after it ends"), "{e}");
}

#[test]
fn dangling_references_are_reported_but_the_rest_still_works() {
    let yaml = format!(
        "{}{}",
        pool("real", "[10.0.0.0/24]"),
        "---\napiVersion: ferrolb.io/v1beta1\nkind: L2Advertisement\nmetadata:\n  name: l2\nspec:\n  ipAddressPools: [real, ghost]\n\
         ---\napiVersion: ferrolb.io/v1beta1\nkind: BGPAdvertisement\nmetadata:\n  name: bgp\nspec:\n  ipAddressPools: [real]\n  peers: [nobody]\n"
    );
    let (config, errors) = build(&yaml);
    let l2 = &config.l2_advertisements["l2"];
    assert_eq!(l2.pools.iter().collect::<Vec<_>>(), ["real"]);
    let e = find(&errors, "L2Advertisement", "l2");
    assert_eq!(e.field, "spec.ipAddressPools[1]");
    assert!(
        e.message.contains("no IPAddressPool named \"ghost\""),
        "{e}"
    );
    assert!(!e.rejected);
    let e = find(&errors, "BGPAdvertisement", "bgp");
    assert_eq!(e.field, "spec.peers[0]");
    assert!(config.bgp_advertisements.contains_key("bgp"));
}

#[test]
fn a_reference_to_an_invalid_pool_says_so() {
    let yaml = format!(
        "{}{}",
        pool("broken", "[nope]"),
        "---\napiVersion: ferrolb.io/v1beta1\nkind: L2Advertisement\nmetadata:\n  name: l2\nspec:\n  ipAddressPools: [broken]\n"
    );
    let (_, errors) = build(&yaml);
    let e = find(&errors, "L2Advertisement", "l2");
    assert!(e.message.contains("is invalid (see its status)"), "{e}");
}

#[test]
fn unknown_community_alias_rejects_the_advertisement_only() {
    let yaml = format!(
        "{}{}",
        pool("p", "[10.0.0.0/24]"),
        "---\napiVersion: ferrolb.io/v1beta1\nkind: BGPAdvertisement\nmetadata:\n  name: bad\nspec:\n  communities: [65000:1, no-such-alias]\n\
         ---\napiVersion: ferrolb.io/v1beta1\nkind: BGPAdvertisement\nmetadata:\n  name: good\nspec:\n  communities: [65000:1]\n"
    );
    let (config, errors) = build(&yaml);
    assert!(config.bgp_advertisements.contains_key("good"));
    assert!(!config.bgp_advertisements.contains_key("bad"));
    let e = find(&errors, "BGPAdvertisement", "bad");
    assert_eq!(e.field, "spec.communities[1]");
    assert!(e.rejected);
}

#[test]
fn aggregation_shorter_than_a_pool_prefix_is_rejected() {
    let yaml = format!(
        "{}{}",
        pool("p", "[10.0.0.0/26, 'fd00::/120']"),
        "---\napiVersion: ferrolb.io/v1beta1\nkind: BGPAdvertisement\nmetadata:\n  name: wide\nspec:\n  aggregationLength: 24\n\
         ---\napiVersion: ferrolb.io/v1beta1\nkind: BGPAdvertisement\nmetadata:\n  name: ok\nspec:\n  aggregationLength: 26\n  aggregationLengthV6: 120\n\
         ---\napiVersion: ferrolb.io/v1beta1\nkind: BGPAdvertisement\nmetadata:\n  name: wide6\nspec:\n  aggregationLengthV6: 64\n"
    );
    let (config, errors) = build(&yaml);
    assert_eq!(config.bgp_advertisements.keys().collect::<Vec<_>>(), ["ok"]);
    let e = find(&errors, "BGPAdvertisement", "wide");
    assert_eq!(e.field, "spec.aggregationLength");
    assert!(e.message.contains("10.0.0.0/26"), "{e}");
    assert_eq!(
        find(&errors, "BGPAdvertisement", "wide6").field,
        "spec.aggregationLengthV6"
    );
}

#[test]
fn peer_secrets_are_checked_and_a_bad_peer_spares_the_others() {
    let yaml = "---\napiVersion: ferrolb.io/v1beta1\nkind: BGPPeer\nmetadata:\n  name: no-secret\n  namespace: ferrolb-system\nspec:\n  myASN: 64512\n  peerASN: 64513\n  peerAddress: 10.0.0.1\n  passwordSecret:\n    name: missing\n\
---\napiVersion: ferrolb.io/v1beta1\nkind: BGPPeer\nmetadata:\n  name: wrong-type\n  namespace: ferrolb-system\nspec:\n  myASN: 64512\n  peerASN: 64513\n  peerAddress: 10.0.0.2\n  passwordSecret:\n    name: opaque\n\
---\napiVersion: ferrolb.io/v1beta1\nkind: BGPPeer\nmetadata:\n  name: good\n  namespace: ferrolb-system\nspec:\n  myASN: 64512\n  peerASN: 64513\n  peerAddress: 10.0.0.3\n  passwordSecret:\n    name: md5\n\
---\napiVersion: ferrolb.io/v1beta1\nkind: BGPPeer\nmetadata:\n  name: same-address\n  namespace: ferrolb-system\nspec:\n  myASN: 64512\n  peerASN: 64514\n  peerAddress: 10.0.0.3\n\
---\napiVersion: ferrolb.io/v1beta1\nkind: BGPPeer\nmetadata:\n  name: no-bfd\n  namespace: ferrolb-system\nspec:\n  myASN: 64512\n  peerASN: 64513\n  peerAddress: 10.0.0.4\n  bfdProfile: ghost\n\
---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: opaque\n  namespace: ferrolb-system\ntype: Opaque\nstringData:\n  password: x\n\
---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: md5\n  namespace: ferrolb-system\ntype: kubernetes.io/basic-auth\ndata:\n  password: aHVudGVyMg==\n";
    let (config, errors) = build(yaml);
    assert_eq!(config.peers.keys().collect::<Vec<_>>(), ["good"]);
    assert_eq!(config.peers["good"].password.as_deref(), Some("hunter2"));
    assert!(
        find(&errors, "BGPPeer", "no-secret")
            .message
            .contains("Secret ferrolb-system/missing not found")
    );
    assert!(
        find(&errors, "BGPPeer", "wrong-type")
            .message
            .contains("kubernetes.io/basic-auth")
    );
    assert!(
        find(&errors, "BGPPeer", "same-address")
            .message
            .contains("\"good\" already peers with 10.0.0.3")
    );
    assert_eq!(find(&errors, "BGPPeer", "no-bfd").field, "spec.bfdProfile");
    assert_eq!(errors.len(), 4, "{errors:#?}");
}

#[test]
fn peer_defaults_follow_rfc_4271() {
    let yaml = "apiVersion: ferrolb.io/v1beta1\nkind: BGPPeer\nmetadata:\n  name: p\nspec:\n  myASN: 4200000000\n  peerASN: 65000\n  peerAddress: 10.0.0.1\n";
    let (config, errors) = build(yaml);
    assert!(errors.is_empty());
    let p = &config.peers["p"];
    assert_eq!(p.my_asn, 4_200_000_000);
    assert_eq!(p.port, 179);
    assert_eq!(p.hold_time.as_secs(), 90);
    assert_eq!(p.keepalive_time, None);
    assert!(!p.is_ibgp());
}

#[test]
fn bad_selectors_name_the_expression() {
    let yaml = format!(
        "{}{}",
        pool("p", "[10.0.0.0/24]"),
        "---\napiVersion: ferrolb.io/v1beta1\nkind: L2Advertisement\nmetadata:\n  name: l2\nspec:\n  nodeSelectors:\n    - matchExpressions:\n        - key: a\n          operator: Equals\n          values: [b]\n"
    );
    let (config, errors) = build(&yaml);
    assert!(config.l2_advertisements.is_empty());
    assert_eq!(
        find(&errors, "L2Advertisement", "l2").field,
        "spec.nodeSelectors[0].matchExpressions[0].operator"
    );
}

#[test]
fn errors_read_like_sentences_naming_object_and_field() {
    let (_, errors) = build(&pool("p", "[banana]"));
    assert_eq!(
        errors[0].to_string(),
        "IPAddressPool ferrolb-system/p: spec.addresses[0]: \"banana\" is not a CIDR (10.0.0.0/24), a range (10.0.0.1-10.0.0.9) or an address (object ignored until fixed)"
    );
}
