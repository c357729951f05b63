//! Lays out the speaker's executable with the code it runs at all (start-up, a
//! reload, a BGP session, the ARP/NDP answers) together at the front of `.text`,
//! in the order of `hot-code.txt`. The kernel maps 64 KiB of the executable around
//! every page it faults in; with the 1.7 MB of code that runs spread over 8.6 MB,
//! almost every 64 KiB was touched, and 6.4 MiB of the executable stayed resident.
//! `scripts/hot-code.sh` writes the list from a run under callgrind; a name that
//! is no longer in the build is skipped, so a stale list costs memory, not a build.

use std::env;
use std::path::Path;
use std::process::Command;

/// Whether rustc links this target with LLD by default (x86_64 Linux GNU from
/// 1.90): GNU ld has no `--symbol-ordering-file`.
fn links_with_lld() -> bool {
    if !env::var("TARGET").is_ok_and(|t| t == "x86_64-unknown-linux-gnu") {
        return false;
    }
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = Command::new(rustc).arg("-V").output() else {
        return false;
    };
    // "rustc 1.95.0 (59807616e 2026-04-14)"
    let text = String::from_utf8_lossy(&out.stdout);
    let mut version = text
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .split('.')
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let (major, minor) = (version.next().unwrap_or(0), version.next().unwrap_or(0));
    (major, minor) >= (1, 90)
}

/// Whether the glibc this links against reads packed relative relocations
/// (it names the `GLIBC_ABI_DT_RELR` version, from 2.36).
fn glibc_has_relr() -> bool {
    [
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib64/libc.so.6",
        "/lib64/libc.so.6",
    ]
    .iter()
    .filter_map(|p| std::fs::read(p).ok())
    .any(|b| b.windows(17).any(|w| w == b"GLIBC_ABI_DT_RELR"))
}

fn main() {
    println!("cargo::rerun-if-changed=hot-code.txt");
    println!("cargo::rerun-if-env-changed=FERROLB_NO_HOT_CODE_ORDER");
    // Only for optimised builds (debug builds' symbols are other names), and only
    // where the linker is LLD.
    let release = env::var("PROFILE").is_ok_and(|p| p == "release");
    // A linker chosen in RUSTFLAGS may not be LLD.
    let opted_out = env::var_os("FERROLB_NO_HOT_CODE_ORDER").is_some()
        || env::var("CARGO_ENCODED_RUSTFLAGS").is_ok_and(|f| f.contains("link"));
    if !release || opted_out || !links_with_lld() {
        return;
    }
    // PIE relocations packed (DT_RELR): the loader reads every relocation at
    // start-up, and the 350 KiB of them as RELA stayed resident. The executable
    // then asks for glibc 2.36 or later (Debian 12, the image's base), so only
    // when the glibc linked against has it.
    if glibc_has_relr() {
        println!("cargo::rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    let Ok(dir) = env::var("CARGO_MANIFEST_DIR") else {
        return;
    };
    let list = Path::new(&dir).join("hot-code.txt");
    if list.is_file() {
        println!(
            "cargo::rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            list.display()
        );
        println!("cargo::rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}
