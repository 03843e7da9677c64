#!/usr/bin/env bash
# xdpsec offline demo: capture real traffic between two network namespaces, encrypt the capture as
# ESP-in-UDP (RFC 3948) with xdpsec, show it, decrypt it back, prove the round trip is
# byte-exact, and let an independent ESP implementation (scapy) decrypt xdpsec's output.
# Everything happens inside namespaces this script creates and removes.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/demo-env.sh
A=xdpsec-demo-a B=xdpsec-demo-b

cleanup() {
    ip netns pids $A 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns del $A 2>/dev/null || true
    ip netns del $B 2>/dev/null || true
}
trap cleanup EXIT
cleanup

echo "demo: namespaces $A (10.200.0.1) <-> $B (10.200.0.2)"
ip netns add $A; ip netns add $B
ip link add veth-a netns $A type veth peer name veth-b netns $B
ip -n $A addr add 10.200.0.1/24 dev veth-a; ip -n $A link set veth-a up; ip -n $A link set lo up
ip -n $B addr add 10.200.0.2/24 dev veth-b; ip -n $B link set veth-b up; ip -n $B link set lo up
for ns in "$A veth-a" "$B veth-b"; do set -- $ns; ip netns exec "$1" ethtool -K "$2" tx off >/dev/null; done

echo "demo: capturing pings and a UDP exchange on veth-a"
ip netns exec $A tcpdump -q -i veth-a -w "$OUT/plain.pcap" -U not ip6 2>/dev/null &
TCPDUMP=$!
sleep 1
ip netns exec $A ping -q -c 3 -s 56 10.200.0.2 >/dev/null
ip netns exec $A ping -q -c 3 -s 1300 10.200.0.2 >/dev/null
ip netns exec $B sh -c 'timeout 2 python3 -c "
import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((\"10.200.0.2\", 5353))
d,a=s.recvfrom(2048); s.sendto(d.upper(), a)"' &
sleep 0.5
ip netns exec $A python3 -c "
import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
s.sendto(b'hello through the tunnel', ('10.200.0.2', 5353)); print('demo: udp reply:', s.recvfrom(2048)[0].decode())"
sleep 1; kill $TCPDUMP; wait $TCPDUMP 2>/dev/null || true

echo; echo "== 1. the capture, as it was on the wire"
tcpdump -nr "$OUT/plain.pcap" 2>/dev/null | head -8

echo; echo "== 2. xdpsec pcap encrypt (SA spi 0xc0ffee01, AES-128-GCM, tunnel mode)"
"$XDPSEC" pcap encrypt --sa scripts/demo/sas.toml "$OUT/plain.pcap" "$OUT/esp.pcap"
tcpdump -nr "$OUT/esp.pcap" 2>/dev/null | head -4

echo; echo "== 3. xdpsec pcap decrypt"
"$XDPSEC" pcap decrypt --sa scripts/demo/sas.toml "$OUT/esp.pcap" "$OUT/back.pcap"

echo; echo "== 4. checks"
python3 - "$OUT" <<'PY'
import sys
from scapy.all import rdpcap, Ether, IP, UDP
from scapy.layers.ipsec import SecurityAssociation, ESP
out = sys.argv[1]
plain, esp, back = (rdpcap(f"{out}/{n}.pcap") for n in ("plain", "esp", "back"))
same = sum(bytes(a) == bytes(b) for a, b in zip(plain, back))
print(f"round trip: {same}/{len(plain)} packets byte-identical after encrypt+decrypt")
key = bytes.fromhex("4a6f686e2053747577617274204d696c6c2e2e2e")
sa = SecurityAssociation(ESP, spi=0xc0ffee01, crypt_algo="AES-GCM", crypt_key=key,
                         tunnel_header=IP(src="192.0.2.2", dst="198.51.100.7"),
                         nat_t_header=UDP(sport=4500, dport=40312))
ok = 0
encrypted = [p for p in esp if UDP in p and p[UDP].sport == 4500]
for p, q in zip(encrypted, [p for p in plain if IP in p]):
    inner = sa.decrypt(IP(bytes(p[IP])))
    ok += bytes(inner) == bytes(q[IP])
print(f"scapy (independent ESP) decrypted {ok}/{len(encrypted)} of xdpsec's ESP-in-UDP packets to the original")
sys.exit(0 if same == len(plain) and ok == len(encrypted) and ok > 0 else 1)
PY
echo; echo "demo: files in $OUT (open esp.pcap in Wireshark with the key above to compare)"
