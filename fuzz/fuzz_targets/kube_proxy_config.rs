//! kube-proxy's KubeProxyConfiguration (the `config.conf` key of ConfigMap
//! kube-system/kube-proxy), read by every speaker from the API server: never a
//! panic; a bad document is an error naming the key.
#![no_main]

use ferrolb_speaker::findings::kube_proxy::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = parse(text) {
        assert!(e.starts_with("key config.conf"), "{e}");
    }
});
