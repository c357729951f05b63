//! The checked-in CRD manifests are exactly what the Rust types generate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[test]
fn checked_in_crds_match_the_types() {
    let dir = ferrolb_crds::crdgen::default_dir();
    if let Err(e) = ferrolb_crds::crdgen::run(&dir, true) {
        panic!("{e}");
    }
}

#[test]
fn generation_is_deterministic_and_covers_every_kind() {
    let a: Vec<String> = ferrolb_crds::crdgen::all()
        .iter()
        .map(|c| ferrolb_crds::crdgen::render(c).unwrap())
        .collect();
    let b: Vec<String> = ferrolb_crds::crdgen::all()
        .iter()
        .map(|c| ferrolb_crds::crdgen::render(c).unwrap())
        .collect();
    assert_eq!(a, b);
    let kinds: Vec<String> = ferrolb_crds::crdgen::all()
        .iter()
        .map(|c| c.spec.names.kind.clone())
        .collect();
    for k in [
        "IPAddressPool",
        "L2Advertisement",
        "BGPAdvertisement",
        "BGPPeer",
        "Community",
        "BFDProfile",
        "ServiceL2Status",
        "ServiceBGPStatus",
        "SpeakerStatus",
        "BGPSessionState",
    ] {
        assert!(kinds.iter().any(|x| x == k), "{k} missing");
    }
    for crd in ferrolb_crds::crdgen::all() {
        let v = &crd.spec.versions[0];
        assert_eq!(crd.spec.group, "ferrolb.io");
        assert_eq!(v.name, "v1beta1");
        assert!(
            v.subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{} has no status subresource",
            crd.spec.names.kind
        );
        assert!(
            v.additional_printer_columns
                .as_ref()
                .is_some_and(|c| c.len() >= 2),
            "{} has no printer columns",
            crd.spec.names.kind
        );
    }
}
