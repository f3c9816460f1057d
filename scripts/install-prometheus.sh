#!/usr/bin/env bash
# Puts Debian's `prometheus` package (prometheus and promtool) under build/tools/prometheus/ for
# tests/ops, without installing it: nothing outside build/tools/ changes, no service starts.
#   build/tools/prometheus/usr/bin/prometheus
#   build/tools/prometheus/usr/bin/promtool
# Idempotent: does nothing when both binaries are there and run. Needs apt-get (Debian/Ubuntu);
# `apt-get update` runs only when the download fails (an empty or stale package list).
set -euo pipefail
cd "$(dirname "$0")/.."

tools=build/tools
dest=$tools/prometheus
bin=$dest/usr/bin

if [ -x "$bin/prometheus" ] && [ -x "$bin/promtool" ] && "$bin/promtool" --version >/dev/null 2>&1; then
  echo "install-prometheus: $bin/{prometheus,promtool} already there ($("$bin/promtool" --version 2>&1 | head -n1))"
  exit 0
fi

fail() {
  echo "install-prometheus: $1" >&2
  echo "install-prometheus: what to do: run 'apt-get update' as root (or with sudo), then" \
    "'bash scripts/install-prometheus.sh' again; on a machine without apt-get, put prometheus" \
    "and promtool (2.x) on PATH or set PROMETHEUS_BIN to the prometheus binary." >&2
  exit 1
}

command -v apt-get >/dev/null || fail "apt-get not found (this script needs a Debian-based system)"
command -v dpkg-deb >/dev/null || fail "dpkg-deb not found"

mkdir -p "$tools"
download() {
  # apt-get download writes into the current directory and needs no root; it leaves the
  # system's packages alone.
  (cd "$tools" && rm -f prometheus_*.deb && apt-get download prometheus)
}
echo "install-prometheus: downloading Debian's prometheus package into $tools/"
if ! download; then
  echo "install-prometheus: download failed; refreshing the package lists (apt-get update) and retrying"
  apt-get update -qq || fail "apt-get update failed (no network to the Debian mirror, or not root)"
  download || fail "apt-get download prometheus failed after apt-get update"
fi

deb=$(ls "$tools"/prometheus_*.deb 2>/dev/null | head -n1 || true)
[ -n "$deb" ] || fail "no prometheus_*.deb in $tools after the download"
echo "install-prometheus: unpacking $deb into $dest/"
rm -rf "$dest"
mkdir -p "$dest"
dpkg-deb -x "$deb" "$dest" || fail "dpkg-deb -x $deb failed"

for tool in prometheus promtool; do
  [ -x "$bin/$tool" ] || fail "$bin/$tool missing from the package"
done
"$bin/promtool" --version >/dev/null 2>&1 || fail "$bin/promtool does not run on this machine"
echo "install-prometheus: done: $("$bin/prometheus" --version 2>&1 | head -n1)"
echo "install-prometheus: binaries at $bin/prometheus and $bin/promtool"
