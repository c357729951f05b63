#!/usr/bin/env bash
# Writes speaker/hot-code.txt: the speaker's functions that run at all, which the
# release build lays out together (speaker/build.rs) so that the executable's
# resident pages are those of the code it runs. Runs the BGP benchmark in file
# mode (table, then new Services with a running controller), the kube-mode one
# and the ARP one with the speaker under callgrind, then names what ran as both
# the workspace build and the image's build (Dockerfile) name it.
# Run it after a change of dependencies, features or toolchain, or when
# docs/benchmarks.md's speaker RSS goes up. Root: the benchmarks use namespaces.
# Usage: sudo ./scripts/hot-code.sh   (about 15 minutes with warm builds)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
ensure_rust
ensure_apt valgrind binutils iproute2 arping bird2 python3

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/ferrolb-target}"
image_target="${FERROLB_IMAGE_TARGET_DIR:-/var/tmp/ferrolb-target-image}"
profiles=$(mktemp -d)
trap 'rm -rf "$profiles"' EXIT

cargo build --workspace --release --locked
bin="$CARGO_TARGET_DIR/release"
export FERROLB_BENCH_WRAP="valgrind --tool=callgrind --demangle=no --callgrind-out-file=$profiles/cg.%p"
"$bin/bgp_convergence" 2000 ferrolb,newrun
"$bin/bgp_kube_latency" 2000
"$bin/arp_latency" 100
unset FERROLB_BENCH_WRAP

# The same command line as the Dockerfile's: other features, other names.
CARGO_TARGET_DIR="$image_target" cargo build --release --locked -p ferrolb-controller \
  -p ferrolb-speaker -p ferrolb-crds --bin ferrolb-controller --bin ferrolb-speaker --bin ferrolb

python3 scripts/hot_code.py "$profiles"/cg.* -- "$bin/ferrolb-speaker" \
  "$image_target/release/ferrolb-speaker" > speaker/hot-code.txt.new
mv speaker/hot-code.txt.new speaker/hot-code.txt
echo "==> speaker/hot-code.txt: $(wc -l < speaker/hot-code.txt) functions; rebuild to use it"
