#!/usr/bin/env bash
# Installs every build and test dependency of hekate on Debian (non-interactive, idempotent).
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config clang libclang-rt-14-dev llvm
  libev-dev libssl-dev libcurl4-openssl-dev libinih-dev
  libcriterion-dev libsimgrid-dev
  python3 python3-libtorrent aria2 transmission-cli opentracker mktorrent
  transmission-daemon rtorrent qbittorrent-nox ctorrent
  libmicrohttpd-dev prometheus libsystemd-dev systemd
  procps time iproute2 util-linux iperf3
  python3-matplotlib
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "setup: all dependencies present"
  exit 0
fi
echo "setup: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
