//! The README's first command, non-interactively: the lab must come up, every
//! request from both clients must succeed, before and after the L2 owner dies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Stdio};

use ferrolb_e2e::lab::{binary, unavailable};

#[test]
fn the_lab_serves_every_request_before_and_after_a_node_dies() {
    if let Some(why) = unavailable() {
        println!("SKIPPED: {why}");
        return;
    }
    let child = Command::new(binary("lab").unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The table and the failover figure belong in the test log.
    println!("{stdout}");
    assert!(out.status.success(), "lab failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("RESULT: every request succeeded"),
        "{stdout}"
    );
    // 5 addresses, 2 clients, twice (before and after the failover).
    assert_eq!(stdout.matches("200 from p").count(), 20, "{stdout}");
    assert!(!stdout.contains("FAILED"), "{stdout}");
    assert!(stdout.contains("Failover: n"), "{stdout}");
    assert!(stdout.contains("(router ECMP)"), "{stdout}");
    // Connections from behind the router enter through more than one node.
    let ecmp = stdout.lines().find(|l| l.starts_with("ECMP: ")).unwrap();
    assert!(ecmp.matches(" (").count() >= 2, "{ecmp}");
    // The Local Service is never sent to n1, which has no backend for it.
    let api: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("default/api"))
        .collect();
    assert_eq!(api.len(), 2, "{stdout}");
    assert!(
        api.iter()
            .all(|l| !l.contains("n1+") && !l.contains("n1 (")),
        "{stdout}"
    );
    // Nothing is left behind.
    let ns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let left = String::from_utf8_lossy(&ns.stdout);
    assert!(!left.contains(&format!("flb{pid}lab")), "{left}");
    assert!(!std::env::temp_dir().join(format!("flb{pid}lab0")).exists());
}

#[test]
fn without_root_the_lab_says_why_and_exits_2() {
    if unavailable().is_some() || Command::new("setpriv").arg("--version").output().is_err() {
        println!("SKIPPED: needs root and setpriv to drop to another user");
        return;
    }
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(binary("lab").unwrap())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the lab needs network namespaces: not root"),
        "{stderr}"
    );
}
