//! The chain for a terminal (one line per link, the fix under the first broken
//! one) and as JSON.

use super::{Diagnosis, Mark};

fn label(id: &str) -> &str {
    match id {
        "service" => "Service",
        "l2Nodes" => "eligible nodes (L2)",
        "l2Owner" => "owner (L2)",
        "bgpNodes" => "eligible nodes (BGP)",
        "bgpPeers" => "peers (BGP)",
        "nodes" => "eligible nodes",
        "announcement" => "owner / peers",
        other => other,
    }
}

/// Text: `✓`, `✗` or `-`, the link, its summary; details indented below; the fix
/// under the first broken link only (the others follow from it).
pub fn text(d: &Diagnosis) -> String {
    let mut out = format!("Service {}\n", d.service);
    let mut fixed = false;
    for l in &d.links {
        let mark = match l.status {
            Mark::Ok => "✓",
            Mark::Broken => "✗",
            Mark::Skipped => "-",
        };
        out.push_str(&format!("{mark} {:<21} {}\n", label(l.link), l.summary));
        for detail in &l.details {
            out.push_str(&format!("    {detail}\n"));
        }
        if let Some(fix) = l.fix.as_ref().filter(|_| !fixed) {
            out.push_str(&format!("  fix: {fix}\n"));
            fixed = true;
        }
    }
    out
}

/// JSON, pretty-printed (schema in docs/troubleshooting.md).
pub fn json(d: &Diagnosis) -> String {
    serde_json::to_string_pretty(d)
        .unwrap_or_else(|e| format!("{{\"error\": {:?}}}", e.to_string()))
}
