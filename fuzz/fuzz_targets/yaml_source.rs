//! A YAML file in the file source's directory: multi-document parse into typed
//! objects, the snapshot, and the validated configuration. Never a panic; every
//! error points inside the file.
#![no_main]

use std::path::Path;

use ferrolb_crds::snapshot::ClusterSnapshot;
use ferrolb_crds::source::yaml::parse_file;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (objects, errors) = parse_file(Path::new("fuzz.yaml"), text);
    // Lines as YAML counts them: CR, LF and CRLF each end one.
    let lines = text.replace("\r\n", "\n").replace('\r', "\n").lines().count() as u64 + 1;
    for e in &errors {
        assert!(e.line >= 1 && e.line <= lines.max(1) + 1, "{e} (file has {lines} lines)");
    }
    let mut snap = ClusterSnapshot::default();
    for (_, o) in objects {
        snap.add(o);
    }
    snap.normalize();
    let _ = snap.config();
});
