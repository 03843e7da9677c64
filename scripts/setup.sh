#!/usr/bin/env bash
# Idempotent set-up of everything xdpsec's build, demo and tests need on a fresh Debian machine.
# Safe to run again: apt and pip skip what is already installed.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

APT_PKGS=(
  # eBPF build (ebpf/build.rs) and AF_XDP (xsk-rs builds libxdp against libbpf)
  clang llvm libbpf-dev libelf-dev zlib1g-dev pkg-config m4 make
  # network namespace topologies
  iproute2 nftables ethtool iputils-ping tcpdump iperf3
  # real IPsec peer for interop tests (userspace ESP via kernel-libipsec)
  strongswan-charon strongswan-swanctl strongswan-libcharon
  libstrongswan-standard-plugins libcharon-extra-plugins
  # python for the independent ESP implementation (scapy)
  python3 python3-pip
)
PIP_PKGS=(scapy==2.6.1 cryptography)

missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# strongSwan's packages start a system charon; the tests run their own per namespace.
if command -v systemctl >/dev/null 2>&1; then
  systemctl disable --now strongswan-starter strongswan >/dev/null 2>&1 || true
fi

py=python3
if ! "$py" -c 'import scapy, cryptography' 2>/dev/null; then
  echo "setup: pip install ${PIP_PKGS[*]}"
  "$py" -m pip install -q --disable-pip-version-check "${PIP_PKGS[@]}" 2>/dev/null \
    || "$py" -m pip install -q --disable-pip-version-check --break-system-packages "${PIP_PKGS[@]}"
fi

command -v cargo >/dev/null || { echo "setup: cargo not found (install Rust stable >= 1.95)" >&2; exit 1; }
echo "setup: ok"
