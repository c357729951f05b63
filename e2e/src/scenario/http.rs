//! The lab's HTTP: a backend "pod" that names itself, a one-shot GET, and a probe
//! that sends requests at a fixed rate to measure an outage.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Serves `name|<peer address>` as the body of every request on `port` (IPv4 and
/// IPv6), forever.
pub fn serve(name: &str, port: u16) -> anyhow::Result<()> {
    let listener =
        TcpListener::bind(("::", port)).with_context(|| format!("binding [::]:{port}"))?;
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        // The peer is the node that forwarded the request (kube-proxy masquerades),
        // which tells the client which node the network delivered it to.
        let peer = conn
            .peer_addr()
            .map(|a| a.ip().to_canonical().to_string())
            .unwrap_or_default();
        let body = format!("{name}|{peer}\n");
        std::thread::spawn(move || {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
            // Read the request head; its content does not matter.
            let mut buf = [0u8; 1024];
            let mut head = Vec::new();
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
                if head.len() > 16 * 1024 {
                    return;
                }
            }
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        });
    }
    Ok(())
}

/// GETs `/` from `addr` and returns the body (the backend's name), trimmed.
pub fn get(addr: SocketAddr, timeout: Duration) -> anyhow::Result<String> {
    let mut conn = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("connecting to {addr}"))?;
    conn.set_read_timeout(Some(timeout))?;
    conn.set_write_timeout(Some(timeout))?;
    write!(
        conn,
        "GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut reply = String::new();
    conn.read_to_string(&mut reply)
        .with_context(|| format!("reading from {addr}"))?;
    parse_reply(&reply)
}

/// The body of a `200 OK` reply.
pub fn parse_reply(reply: &str) -> anyhow::Result<String> {
    let Some((head, body)) = reply.split_once("\r\n\r\n") else {
        bail!("incomplete HTTP reply: {reply:?}");
    };
    let status = head.lines().next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 200") {
        bail!("HTTP status {status:?}");
    }
    Ok(body.trim().to_string())
}

/// A backend's answer: its name, and the address the request came from.
pub fn split_reply(body: &str) -> (&str, &str) {
    body.split_once('|').unwrap_or((body, ""))
}

/// One probe request: when it started and whether it succeeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// When the request started.
    pub start: Instant,
    /// Whether a 200 came back within the timeout.
    pub ok: bool,
}

/// Sends a GET to `addr` every `interval` (each on its own thread, so a hanging
/// request does not slow the rate) until `stop`, and returns every attempt.
/// Must run inside the client's namespace (see [`super::netns`]).
pub fn probe(
    addr: SocketAddr,
    interval: Duration,
    timeout: Duration,
    stop: Arc<AtomicBool>,
) -> Vec<Attempt> {
    let mut running = Vec::new();
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let start = Instant::now();
        running.push(std::thread::spawn(move || Attempt {
            start,
            ok: get(addr, timeout).is_ok(),
        }));
        next += interval;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    running.into_iter().filter_map(|h| h.join().ok()).collect()
}

/// What a probe saw around a failure at `failed_at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outage {
    /// From the failure to the start of the first request after it that succeeded.
    pub duration: Duration,
    /// Requests that failed (anywhere in the run).
    pub failed: usize,
    /// Requests sent.
    pub sent: usize,
}

/// The outage the attempts show after `failed_at`; `None` when no request after it
/// succeeded.
pub fn outage(attempts: &[Attempt], failed_at: Instant) -> Option<Outage> {
    let first_ok = attempts
        .iter()
        .filter(|a| a.ok && a.start >= failed_at)
        .map(|a| a.start)
        .min()?;
    Some(Outage {
        duration: first_ok - failed_at,
        failed: attempts.iter().filter(|a| !a.ok).count(),
        sent: attempts.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_other_than_200_are_errors() {
        assert_eq!(
            parse_reply("HTTP/1.1 200 OK\r\nA: b\r\n\r\np1 on n1\n").unwrap(),
            "p1 on n1"
        );
        assert!(parse_reply("HTTP/1.1 503 Unavailable\r\n\r\n").is_err());
        assert!(parse_reply("HTTP/1.1 200 OK\r\n").is_err());
    }

    #[test]
    fn outage_runs_from_the_failure_to_the_first_later_success() {
        let t0 = Instant::now();
        let at = |ms: u64, ok: bool| Attempt {
            start: t0 + Duration::from_millis(ms),
            ok,
        };
        let attempts = [
            at(0, true),
            at(5, false),
            at(10, false),
            at(15, true),
            at(20, true),
            at(3, true),
        ];
        let o = outage(&attempts, t0 + Duration::from_millis(4)).unwrap();
        assert_eq!(
            o,
            Outage {
                duration: Duration::from_millis(11),
                failed: 2,
                sent: 6
            }
        );
        assert_eq!(outage(&attempts[..3], t0 + Duration::from_millis(4)), None);
    }

    #[test]
    fn serve_and_get_talk_over_loopback() {
        let port = {
            let l = TcpListener::bind(("::", 0)).unwrap();
            l.local_addr().unwrap().port()
        };
        std::thread::spawn(move || serve("p9 on n9", port));
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let body = (0..100)
            .find_map(|_| {
                std::thread::sleep(Duration::from_millis(20));
                get(addr, Duration::from_secs(1)).ok()
            })
            .unwrap();
        assert_eq!(split_reply(&body), ("p9 on n9", "127.0.0.1"));
    }
}
