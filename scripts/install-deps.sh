#!/usr/bin/env bash
# Installs what Prism needs from the system: libvips and pkg-config; with
# "test" what the tests run against (redis-server, butteraugli, and promtool
# from Debian's prometheus package, which lints a live scrape), and with
# "bench" what the benchmarks need (butteraugli). Debian and Ubuntu
# get apt-get, with sudo when not root; elsewhere it says what to install.
set -euo pipefail

missing=()
pkg-config --exists vips 2>/dev/null || missing+=(libvips-dev)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
if [ "${1:-}" = "test" ]; then
  command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing+=(redis-server)
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
fi
# The benchmarks' judge of image quality (benchmarks/quality), which the
# tests smoke-test too.
if [ "${1:-}" = "test" ] || [ "${1:-}" = "bench" ]; then
  command -v butteraugli >/dev/null 2>&1 || missing+=(butteraugli)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "Prism needs: ${missing[*]} (libvips 8.14 or newer with its headers)." >&2
  echo "This system has no apt-get: install them with your package manager" >&2
  echo "(macOS: brew install vips pkg-config), then run make again." >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "Installing ${missing[*]} needs root or sudo." >&2; exit 1; }
  sudo="sudo"
fi
echo "Installing ${missing[*]} with apt-get..."
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
