#!/usr/bin/env bash
# xdpsec demo: a road warrior behind a NAT dials into an xdpsec gateway with IKEv2.
#
#   [client: strongSwan] -- [nat: nftables masquerade] -- [gw: xdpsec, XDP/AF_XDP] -- [lan host]
#
# strongSwan (an independent IKEv2/ESP implementation) initiates from behind the NAT; xdpsec
# answers, both detect the NAT and float to UDP 4500, xdpsec hands out a virtual IP and installs
# the child SA in its kernel-bypass dataplane. Then: pings to the LAN host through the tunnel,
# a short iperf3 throughput figure, what `xdpsec conn list`, `sa list` and `stats` show, and a
# clean teardown. Everything lives in namespaces this script creates and removes.
# (The offline capture-file demo is scripts/pcap-demo.sh.)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/demo-env.sh
P=demo-
export SS_RUN=$OUT/strongswan
SOCK=$OUT/xdpsec.sock
XPID=

cleanup() {
    bash scripts/interop/ss.sh stop ${P}client 2>/dev/null || true
    if [ -n "$XPID" ] && kill -0 "$XPID" 2>/dev/null; then
        kill -INT "$XPID"; for _ in $(seq 30); do kill -0 "$XPID" 2>/dev/null || break; sleep 0.1; done
    fi
    bash scripts/netns/topo.sh down $P
}
trap cleanup EXIT

echo "demo: namespaces ${P}client 10.0.1.2 -> ${P}nat (masquerade as 192.0.2.1) -> ${P}gw 192.0.2.2 -> ${P}lan 10.9.0.2"
bash scripts/netns/topo.sh up $P

umask 077
printf 'interop-test-psk-0123456789' >"$OUT/rw.psk"
cat >"$OUT/gw.toml" <<TOML
[gateway]
listen = "192.0.2.2:4500"
wan = "g-eth0"
backend = "auto"
tun = "xdpsec0"
routes = ["10.99.0.0/24"]

[[conn]]
name = "rw"
local_id = "gw.example"
remote_id = "client.example"
psk_file = "rw.psk"
local_ts = ["10.9.0.0/24"]
pool = "10.99.0.0/24"
TOML
umask 022
"$XDPSEC" config check "$OUT/gw.toml"

echo "demo: starting the xdpsec gateway in ${P}gw (log: $OUT/xdpsec.log)"
ip netns exec ${P}gw "$XDPSEC" run --config "$OUT/gw.toml" --socket "$SOCK" >"$OUT/xdpsec.log" 2>&1 &
XPID=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || { cat "$OUT/xdpsec.log"; exit 1; }
"$XDPSEC" status --socket "$SOCK" | sed 's/^/  /'

echo "demo: strongSwan in ${P}client initiates (IKEv2 PSK, aes128gcm16-prfsha256-x25519, asks for a virtual IP)"
bash scripts/interop/ss.sh start ${P}client
bash scripts/interop/ss.sh load ${P}client scripts/interop/strongswan/client.conf >/dev/null 2>&1
bash scripts/interop/ss.sh ctl ${P}client --initiate --child gcm128 2>/dev/null | grep -E "established|NAT|IKE_SA" | sed 's/^/  strongSwan: /'

echo "demo: xdpsec conn list"
"$XDPSEC" conn list --socket "$SOCK" | sed 's/^/  /'

echo "demo: ping the LAN host 10.9.0.2 from the road warrior, through the NAT and the tunnel"
ip netns exec ${P}client ping -n -c 3 -i 0.3 10.9.0.2 | sed 's/^/  /'

echo "demo: 3 s of TCP through the tunnel (iperf3; strongSwan's userspace ESP on the client side)"
ip netns exec ${P}lan iperf3 -s -1 -D -B 10.9.0.2 >/dev/null
sleep 0.5
ip netns exec ${P}client iperf3 -c 10.9.0.2 -t 3 -f m | grep -E "sender|receiver" | sed 's/^/  /'

echo "demo: xdpsec sa list"
"$XDPSEC" sa list --socket "$SOCK" | sed 's/^/  /'
echo "demo: xdpsec stats"
"$XDPSEC" stats --socket "$SOCK" | sed 's/^/  /'

echo "demo: strongSwan deletes the IKE SA"
bash scripts/interop/ss.sh ctl ${P}client --terminate --ike gcm128 >/dev/null 2>&1
sleep 1
"$XDPSEC" conn list --socket "$SOCK" | sed 's/^/  /'
echo "demo: done; everything is removed on exit (files kept in $OUT)"
