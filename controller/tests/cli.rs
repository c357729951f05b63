//! The `ferrolb-controller` binary on the file source.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ferrolb-controller");

fn samples() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/samples");
    for e in std::fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, d.path().join(p.file_name().unwrap())).unwrap();
    }
    d
}

/// Kills the child when the test ends, even on failure.
struct Guard(Child);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(path: &Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(t) = std::fs::read_to_string(path)
            && t.contains(needle)
        {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "{} never contained {needle:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn once_writes_status_and_exits_zero() {
    let d = samples();
    let out = Command::new(BIN)
        .args(["--source", "file", "--dir"])
        .arg(d.path())
        .arg("--once")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let services = std::fs::read_to_string(d.path().join("status/services.yaml")).unwrap();
    assert!(
        services.contains("\"192.168.9.1\"") && services.contains("\"203.0.113.16\""),
        "{services}"
    );
    let pools = std::fs::read_to_string(d.path().join("status/pools.yaml")).unwrap();
    assert!(
        pools.contains("availableIPv6: '18446744073709551616'")
            || pools.contains("availableIPv6: \"18446744073709551616\""),
        "{pools}"
    );
    let events = std::fs::read_to_string(d.path().join("status/events.jsonl")).unwrap();
    assert_eq!(
        events
            .lines()
            .filter(|l| l.contains("\"IPAllocated\""))
            .count(),
        2
    );
    // A second run (a restart) keeps every address and records nothing new.
    let out = Command::new(BIN)
        .args(["--source", "file", "--once", "--dir"])
        .arg(d.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        std::fs::read_to_string(d.path().join("status/services.yaml")).unwrap(),
        services
    );
    assert_eq!(
        std::fs::read_to_string(d.path().join("status/events.jsonl")).unwrap(),
        events
    );
}

#[test]
fn watch_mode_serves_new_services_and_stops_on_sigterm() {
    let d = samples();
    let child = Command::new(BIN)
        .args(["--source", "file", "--metrics-address", "", "--dir"])
        .arg(d.path())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut g = Guard(child);
    let status = d.path().join("status/services.yaml");
    wait_for(&status, "192.168.9.1");
    std::fs::write(
        d.path().join("more.yaml"),
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: late\nspec:\n  type: LoadBalancer\n  ports: [{port: 80}]\n",
    )
    .unwrap();
    let text = wait_for(&status, "name: late");
    assert!(text.contains("192.168.9.2"), "{text}");
    // SIGTERM: a clean exit.
    let pid = g.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(s) = g.0.try_wait().unwrap() {
            assert!(s.success(), "{s:?}");
            break;
        }
        assert!(Instant::now() < deadline, "did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_missing_directory_fails_naming_it() {
    let out = Command::new(BIN)
        .args(["--source", "file", "--once", "--dir", "/nonexistent/flb"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/flb"));
    let out = Command::new(BIN)
        .args(["--source", "file"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--dir"));
}
