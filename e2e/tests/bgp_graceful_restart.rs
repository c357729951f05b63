//! Graceful restart (RFC 4724) against BIRD 2 with `graceful restart on;`: the
//! capability is negotiated; when the speaker process is SIGKILLed BIRD keeps our
//! route (stale) instead of dropping it, and after the speaker restarts the route
//! is refreshed and no longer stale once our End-of-RIB arrives. Without
//! `enableGracefulRestart` the same kill drops the route.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use ferrolb_e2e::lab::{Lan, controller_once, eventually, skipped};

const ROUTE: &str = "198.51.100.0/32";

fn config(dir: &Path, gr: bool) {
    std::fs::write(
        dir.join("config.yaml"),
        format!(
            "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: routed}}\nspec: {{addresses: [198.51.100.0/28]}}\n\
---\napiVersion: ferrolb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {{name: routed}}\n\
---\napiVersion: ferrolb.io/v1beta1\nkind: BGPPeer\nmetadata: {{name: bird}}\nspec: {{myASN: 4200000001, peerASN: 64500, peerAddress: {router}, holdTime: 30s, connectTime: 1s, routerID: 10.77.0.11, enableGracefulRestart: {gr}}}\n\
---\napiVersion: v1\nkind: Node\nmetadata: {{name: n1}}\n\
---\napiVersion: v1\nkind: Service\nmetadata: {{name: web}}\nspec: {{type: LoadBalancer, ports: [{{port: 80}}]}}\n",
            router = Lan::v4(0),
        ),
    )
    .unwrap();
    controller_once(dir).unwrap();
}

struct Run {
    lan: Lan,
    dir: tempfile::TempDir,
    sock: std::path::PathBuf,
    speaker: usize,
}

impl Run {
    fn birdc(&self, args: &[&str]) -> String {
        self.lan.birdc(&self.lan.client, &self.sock, args).unwrap()
    }

    fn protocol(&self) -> String {
        self.birdc(&["show", "protocols", "all", "n1"])
    }

    fn routes(&self) -> String {
        self.birdc(&["show", "route", "all", "protocol", "n1"])
    }

    fn dump(&self) -> String {
        format!(
            "--- bird\n{}\n{}\n--- bird log\n{}\n--- speaker\n{}",
            self.protocol(),
            self.routes(),
            std::fs::read_to_string(self.dir.path().join("bird.log")).unwrap_or_default(),
            std::fs::read_to_string(self.dir.path().join("speaker.log")).unwrap_or_default()
        )
    }

    fn wait(&self, secs: u64, what: &str, mut f: impl FnMut(&Run) -> bool) {
        eventually(Duration::from_secs(secs), what, || {
            Some(()).filter(|_| f(self))
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", self.dump()));
    }

    fn start_speaker(&mut self, log: &str) {
        let n = self.lan.nodes[0].clone();
        self.speaker = self
            .lan
            .spawn_speaker(&n, "n1", self.dir.path(), log, &[])
            .unwrap();
    }
}

fn start(gr: bool) -> Run {
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), gr);
    let mut lan = Lan::new(1).unwrap();
    let client = lan.client.clone();
    let conf = format!(
        "log stderr all;\nrouter id {r};\nprotocol device {{}}\nprotocol bgp n1 {{\n  debug {{ states, events, packets }};\n  local {r} as 64500;\n  neighbor {n} as 4200000001;\n  passive on;\n  hold time 30;\n  graceful restart on;\n  ipv4 {{ import all; export none; }};\n}}\n",
        r = Lan::v4(0),
        n = Lan::v4(1)
    );
    let (sock, _) = lan.spawn_bird(&client, dir.path(), &conf).unwrap();
    let mut run = Run {
        lan,
        dir,
        sock,
        speaker: 0,
    };
    run.start_speaker("speaker.log");
    run.wait(30, "BIRD to learn our route", |r| {
        r.routes().contains(ROUTE) && r.protocol().contains("Established")
    });
    run
}

#[test]
fn bird_keeps_our_route_stale_while_the_speaker_restarts_and_refreshes_it_after_end_of_rib() {
    if skipped() {
        return;
    }
    let mut run = start(true);
    // (a) Negotiated: BIRD lists our capability: restart time (= our 30 s hold
    // time), R set (a speaker that just started), F set for what we offered.
    let proto = run.protocol();
    let neighbor = proto
        .split("Neighbor capabilities")
        .nth(1)
        .unwrap_or_else(|| panic!("{proto}"));
    for want in [
        "Graceful restart",
        "Restart time: 30",
        "Restart recovery",
        "AF preserved: ipv4 ipv6",
    ] {
        assert!(neighbor.contains(want), "{want}: {proto}");
    }

    // (b) The speaker dies without a NOTIFICATION (the kernel closes the socket):
    // BIRD keeps the route, stale, and runs its restart timer.
    run.lan.stop(run.speaker, "KILL").unwrap();
    run.wait(10, "BIRD to see the restart", |r| {
        r.protocol().contains("Neighbor graceful restart active")
    });
    for _ in 0..20 {
        assert!(run.routes().contains(ROUTE), "kept: {}", run.dump());
        std::thread::sleep(Duration::from_millis(100));
    }
    // The speaker comes back: the new session sends the table, then End-of-RIB,
    // which ends the restart (BIRD logs it right after the marker).
    run.start_speaker("speaker2.log");
    run.wait(30, "graceful restart to finish", |r| {
        bird_log(r).contains("Neighbor graceful restart done")
            && r.protocol().contains("Established")
    });
    let log = bird_log(&run);
    let done = log.find("Neighbor graceful restart done").unwrap();
    assert!(
        log[..done].rfind("Got END-OF-RIB") > log.rfind("Neighbor graceful restart detected"),
        "ended by our End-of-RIB: {log}"
    );
    assert!(run.routes().contains(ROUTE), "{}", run.dump());
    assert!(!run.protocol().contains("graceful restart active"));

    // A route the restarted speaker no longer has is dropped at its End-of-RIB
    // (stale and not refreshed), long before BIRD's 30 s restart timer.
    run.lan.stop(run.speaker, "KILL").unwrap();
    run.wait(10, "BIRD to see the second restart", |r| {
        r.protocol().contains("Neighbor graceful restart active")
    });
    let cfg = std::fs::read_to_string(run.dir.path().join("config.yaml")).unwrap();
    let without = &cfg[..cfg.find("---\napiVersion: v1\nkind: Service").unwrap()];
    std::fs::write(run.dir.path().join("config.yaml"), without).unwrap();
    controller_once(run.dir.path()).unwrap();
    assert!(run.routes().contains(ROUTE), "still stale: {}", run.dump());
    run.start_speaker("speaker3.log");
    run.wait(15, "the stale route to go at our End-of-RIB", |r| {
        !r.routes().contains(ROUTE)
    });
    assert_eq!(
        bird_log(&run)
            .matches("Neighbor graceful restart done")
            .count(),
        2,
        "{}",
        run.dump()
    );
}

fn bird_log(run: &Run) -> String {
    std::fs::read_to_string(run.dir.path().join("bird.log")).unwrap_or_default()
}

#[test]
fn without_graceful_restart_the_route_goes_when_the_speaker_dies() {
    if skipped() {
        return;
    }
    let run = start(false);
    let neighbor = run.protocol();
    assert!(
        !neighbor
            .split("Neighbor capabilities")
            .nth(1)
            .unwrap_or_else(|| panic!("{neighbor}"))
            .contains("Graceful restart"),
        "{neighbor}"
    );
    let mut run = run;
    run.lan.stop(run.speaker, "KILL").unwrap();
    run.wait(10, "the route to be dropped", |r| {
        !r.routes().contains(ROUTE)
    });
}
