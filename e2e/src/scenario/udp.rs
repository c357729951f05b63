//! UDP echo and a UDP probe for failover figures: the probe sends a numbered
//! datagram every interval and notes which came back, so an outage is measured to
//! the interval, without TCP's retransmission timers in the way.

use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::http::Attempt;

/// Echoes every datagram on `port` with `name` appended, until `stop`.
pub fn echo(port: u16, name: String, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    let sock = UdpSocket::bind(("0.0.0.0", port))?;
    sock.set_read_timeout(Some(Duration::from_millis(100)))?;
    let mut buf = [0u8; 512];
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, src)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let mut reply = buf[..n.min(64)].to_vec();
        reply.extend_from_slice(name.as_bytes());
        let _ = sock.send_to(&reply, src);
    }
    Ok(())
}

/// Sends sequence numbers to `target` every `interval` until `stop`; returns one
/// attempt per datagram (ok when its echo came back, however late) and the names of
/// the responders.
pub fn probe(
    target: SocketAddr,
    interval: Duration,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<(Vec<Attempt>, BTreeSet<String>)> {
    // Not connected: the echo answers from the node's own address (its socket is
    // bound to 0.0.0.0), which a connected socket would drop.
    let sock = UdpSocket::bind(("0.0.0.0", 0))?;
    sock.set_read_timeout(Some(Duration::from_millis(50)))?;
    let rx = sock.try_clone()?;
    let got = Arc::new(Mutex::new((BTreeSet::new(), BTreeSet::new())));
    let done = Arc::new(AtomicBool::new(false));
    let receiver = {
        let got = got.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !done.load(Ordering::Relaxed) {
                let Ok((n, _)) = rx.recv_from(&mut buf) else {
                    continue;
                };
                if n < 8 {
                    continue;
                }
                let mut seq = [0u8; 8];
                seq.copy_from_slice(&buf[..8]);
                if let Ok(mut g) = got.lock() {
                    g.0.insert(u64::from_be_bytes(seq));
                    g.1.insert(String::from_utf8_lossy(&buf[8..n]).into_owned());
                }
            }
        })
    };
    let mut sent = Vec::new();
    let mut next = Instant::now();
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        sent.push(Instant::now());
        // A send error (no route, no neighbour yet) is a failed attempt, not an end.
        let _ = sock.send_to(&seq.to_be_bytes(), target);
        seq += 1;
        next += interval;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    // Late echoes still count: the path worked.
    std::thread::sleep(Duration::from_millis(300));
    done.store(true, Ordering::Relaxed);
    let _ = receiver.join();
    let (acked, names) = got.lock().map(|g| g.clone()).unwrap_or_default();
    let attempts = sent
        .into_iter()
        .enumerate()
        .map(|(i, start)| Attempt {
            start,
            ok: acked.contains(&(i as u64)),
        })
        .collect();
    Ok((attempts, names))
}

/// Nearest-rank percentile of sorted `v` (`p` in 0..=100).
pub fn percentile(v: &[Duration], p: usize) -> Option<Duration> {
    if v.is_empty() {
        return None;
    }
    let rank = (p * v.len()).div_ceil(100).max(1);
    v.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=20).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50), Some(Duration::from_millis(10)));
        assert_eq!(percentile(&v, 99), Some(Duration::from_millis(20)));
        assert_eq!(percentile(&v, 0), Some(Duration::from_millis(1)));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn echo_and_probe_over_loopback() {
        let stop = Arc::new(AtomicBool::new(false));
        let port = UdpSocket::bind(("127.0.0.1", 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let s = stop.clone();
        let server = std::thread::spawn(move || echo(port, "n9".into(), s));
        std::thread::sleep(Duration::from_millis(100));
        let pstop = Arc::new(AtomicBool::new(false));
        let p = pstop.clone();
        let target: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let prober = std::thread::spawn(move || probe(target, Duration::from_millis(2), p));
        std::thread::sleep(Duration::from_millis(200));
        pstop.store(true, Ordering::Relaxed);
        let (attempts, names) = prober.join().unwrap().unwrap();
        stop.store(true, Ordering::Relaxed);
        server.join().unwrap().unwrap();
        assert!(attempts.len() > 20);
        assert!(attempts.iter().all(|a| a.ok));
        assert_eq!(names, ["n9".to_string()].into());
    }
}
