# Shared by scripts/dev and scripts/test: install what the build needs, once, and set
# the build environment. Sourced, not run.

need_packages=()
for pkg in "$@"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_packages+=("$pkg")
done
if [ ${#need_packages[@]} -gt 0 ]; then
  echo "installing: ${need_packages[*]}" >&2
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_packages[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust with rustup (https://rustup.rs) first" >&2
  exit 1
fi

# RocksDB's C++ is most of a clean build; ccache makes rebuilds take seconds.
export CC="ccache cc" CXX="ccache c++"
# Build artifacts outside the clone, so a fresh clone on this machine reuses them.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/shoal-target}"
