# Installs what FerroLB's scripts need when it is missing. Sourced, not run.
# Every step checks first, so a machine that has everything runs no installer.

ferrolb_apt_updated=0

# ensure_apt PACKAGE... : installs the Debian packages that are not installed.
ensure_apt() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: need Debian packages ${missing[*]}; run as root or install them" >&2
    return 1
  fi
  echo "==> installing ${missing[*]}"
  if [ "$ferrolb_apt_updated" -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    ferrolb_apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ensure_rust: cargo plus the rustfmt and clippy components.
ensure_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
  fi
  command -v cargo >/dev/null 2>&1 || { echo "error: no Rust toolchain (cargo) found" >&2; return 1; }
  if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    echo "==> adding rustfmt and clippy"
    rustup component add rustfmt clippy
  fi
}

# ensure_cargo_tool BINARY CRATE [VERSION]: cargo install when BINARY is not on PATH.
ensure_cargo_tool() {
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "==> cargo install $2"
  if [ -n "${3:-}" ]; then cargo install --locked "$2" --version "$3"; else cargo install --locked "$2"; fi
}

# ensure_venv DIR REQUIREMENTS: a Python virtual environment at DIR holding the
# pinned packages of REQUIREMENTS (reinstalled only when that file changes).
ensure_venv() {
  local dir=$1 req=$2
  if [ ! -x "$dir/bin/python" ]; then
    python3 -m venv "$dir" 2>/dev/null || { ensure_apt python3-venv && python3 -m venv "$dir"; }
  fi
  if ! cmp -s "$req" "$dir/.requirements"; then
    echo "==> pip install -r $req"
    "$dir/bin/pip" install -q --disable-pip-version-check -r "$req"
    cp "$req" "$dir/.requirements"
  fi
}
