#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `ferrolb convert` on MetalLB's documented configurations: the output must load
//! through FerroLB's own file source and configuration build without an error, and
//! everything left behind must be reported.

use std::path::{Path, PathBuf};

use ferrolb_crds::convert::{Options, convert};
use ferrolb_crds::source::FileSource;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/metallb")
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixtures().join(name)).unwrap()
}

fn all_fixtures() -> String {
    let mut files: Vec<_> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap() + "\n---\n")
        .collect()
}

/// Loads `yaml` as the file source would, failing on any source or config error.
fn load(yaml: &str) -> (ferrolb_crds::ClusterSnapshot, ferrolb_crds::config::Config) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ferrolb.yaml"), yaml).unwrap();
    let loaded = FileSource::new(dir.path()).load().unwrap();
    assert!(loaded.errors.is_empty(), "{:#?}\n{yaml}", loaded.errors);
    let (config, errors) = loaded.snapshot.config();
    assert!(errors.is_empty(), "{errors:#?}\n{yaml}");
    (loaded.snapshot, config)
}

#[test]
fn metallb_documented_examples_load_without_errors() {
    let out = convert(&all_fixtures(), &Options::default()).unwrap();
    assert!(!out.yaml.contains("metallb"), "{}", out.yaml);
    let (snap, config) = load(&out.yaml);
    assert_eq!(snap.pools.len(), 4);
    assert_eq!(snap.l2_advertisements.len(), 3);
    assert_eq!(snap.bgp_advertisements.len(), 2);
    assert_eq!(snap.peers.len(), 3, "v1beta1 and v1beta2 BGPPeers");
    assert_eq!(snap.communities.len(), 1);
    assert_eq!(snap.bfd_profiles.len(), 1);
    assert_eq!(snap.secrets.len(), 1);
    for p in &snap.pools {
        assert_eq!(p.metadata.namespace.as_deref(), Some("ferrolb-system"));
    }
    assert_eq!(config.pools.len(), 4);
    assert_eq!(config.peers.len(), 3);
    assert!(config.communities.contains_key("vpn-only"));
    let local = &config.bgp_advertisements["local"];
    assert_eq!(local.local_pref, Some(100));
    assert_eq!(config.bfd_profiles.len(), 1);
}

#[test]
fn the_password_secret_moves_with_the_peer() {
    let out = convert(&fixture("bgp.yaml"), &Options::default()).unwrap();
    let (snap, config) = load(&out.yaml);
    let peer = snap
        .peers
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some("example"))
        .unwrap();
    let secret = peer.spec.password_secret.as_ref().unwrap();
    assert_eq!(secret.namespace.as_deref(), Some("ferrolb-system"));
    assert_eq!(
        config
            .peers
            .values()
            .find(|p| p.name == "example")
            .unwrap()
            .password
            .as_deref(),
        Some("s3cr3t")
    );
    assert!(
        out.warnings
            .iter()
            .any(|w| w == "Secret bgppeer-password: namespace metallb-system -> ferrolb-system"),
        "{:?}",
        out.warnings
    );
}

#[test]
fn what_cannot_be_converted_is_reported_and_left_out() {
    let out = convert(&fixture("unsupported.yaml"), &Options::default()).unwrap();
    let w = out.warnings.join("\n");
    for expected in [
        "BGPPeer unnumbered: dropped spec.dualStackAddressFamily: FerroLB has no such field",
        "ServiceL2Status l2-abc: dropped",
        "FRRConfiguration extra: dropped",
        "ConfigMap config: dropped: MetalLB's legacy ConfigMap",
    ] {
        assert!(w.contains(expected), "missing {expected:?} in\n{w}");
    }
    for gone in [
        "dualStackAddressFamily",
        "resourceVersion",
        "uid:",
        "last-applied",
        "status",
        "FRRConfiguration",
        "ConfigMap",
    ] {
        assert!(!out.yaml.contains(gone), "{gone} left in\n{}", out.yaml);
    }
    assert!(out.yaml.contains("team: net"), "user annotations stay");
    let (snap, _) = load(&out.yaml);
    assert_eq!(snap.peers.len(), 1);
}

#[test]
fn namespace_option_and_foreign_namespaces() {
    let input = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: a\nspec:\n  addresses: [10.0.0.0/24]\n---\napiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: b\n  namespace: other\nspec:\n  addresses: [10.1.0.0/24]\n";
    let out = convert(
        input,
        &Options {
            namespace: "lb".into(),
        },
    )
    .unwrap();
    assert!(out.yaml.contains("namespace: lb"), "{}", out.yaml);
    assert!(out.yaml.contains("namespace: other"));
    assert!(
        out.warnings
            .iter()
            .any(|w| w.contains("kept namespace other"))
    );
}

#[test]
fn not_an_object_is_an_error_with_its_line() {
    let err = convert(
        "apiVersion: v1\nkind: Node\nmetadata: {name: n}\n---\nfoo: bar\n",
        &Options::default(),
    )
    .unwrap_err();
    assert_eq!(err.line, 5);
}

#[test]
fn the_command_writes_yaml_to_stdout_and_warnings_to_stderr() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferrolb"))
        .arg("convert")
        .arg(fixtures().join("unsupported.yaml"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stdout.contains("apiVersion: ferrolb.io/v1beta1"),
        "{stdout}"
    );
    assert!(
        stderr.contains("warning: BGPPeer unnumbered: dropped spec.dualStackAddressFamily"),
        "{stderr}"
    );
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_ferrolb"))
        .arg("frobnicate")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
