//! Reading BIRD's output in the benchmarks: its timestamps (set `timeformat route
//! iso long ms` and `timeformat protocol iso long ms`) and route counts.

use k8s_openapi::jiff::Timestamp;

/// `YYYY-MM-DD HH:MM:SS.mmm` as BIRD and FRR print it (local time, UTC here).
pub fn local_time(date: &str, time: &str) -> Option<Timestamp> {
    format!("{}T{time}Z", date.replace('/', "-")).parse().ok()
}

/// The newest route timestamp in `birdc show route` output
/// (`... [n1 2026-11-24 18:00:00.123] ...`).
pub fn newest_route(routes: &str) -> Option<Timestamp> {
    routes
        .lines()
        .filter_map(|l| {
            let t = l.split('[').nth(1)?.split(']').next()?;
            let mut f = t.split_whitespace().skip(1);
            local_time(f.next()?, f.next()?)
        })
        .max()
}

/// Routes in the IPv4 table from `birdc show route count` ("N of N routes for N
/// networks in table master4"; the IPv6 table's line must not count).
pub fn ipv4_route_count(out: &str) -> Option<usize> {
    let line = out.lines().find(|l| l.ends_with("in table master4"))?;
    line.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_route_times_and_counts() {
        let routes = "Table master4:\n10.200.0.0/32        unicast [n1 2026-12-02 11:00:00.120] * (100) [AS64512i]\n10.200.0.1/32        unicast [n1 2026-12-02 11:00:00.987] * (100) [AS64512i]\n";
        assert_eq!(
            newest_route(routes),
            Some("2026-12-02T11:00:00.987Z".parse().unwrap())
        );
        let count = "2 of 2 routes for 2 networks in table master4\n0 of 0 routes for 0 networks in table master6\n";
        assert_eq!(ipv4_route_count(count), Some(2));
        assert_eq!(
            ipv4_route_count("0 of 0 routes for 0 networks in table master6\n"),
            None
        );
    }
}
