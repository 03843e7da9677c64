#!/usr/bin/env bash
# The NAT-T test topology, in three network namespaces:
#
#   [client] c-eth0 10.0.1.2/24 --- n-in 10.0.1.1/24 [nat] n-out 192.0.2.1/24 --- g-eth0 192.0.2.2/24 [gw]
#                                   nftables masquerade 10.0.1.0/24 -> n-out            lan0 10.9.0.1/24
#                                                                                            |
#                                                                         [lan] l-eth0 10.9.0.2/24 (a LAN host)
#
# The client's traffic leaves the NAT from 192.0.2.1 with a rewritten port: exactly the case
# NAT traversal exists for. The gw has no route to 10.0.1.0/24. g-eth0 has 2 RX/TX queues
# (for the AF_XDP tests); veth TX checksum offload is off (NOTES.md: partial checksums).
#
#   topo.sh up [PREFIX]      (re)create; PREFIX (default "") is prepended to namespace names
#   topo.sh down [PREFIX]    remove (killing processes inside)
set -euo pipefail
P=${2:-}
NS="${P}client ${P}nat ${P}gw ${P}lan"

down() {
    for ns in $NS; do
        if ip netns list | awk '{print $1}' | grep -qx "$ns"; then
            ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
            ip netns del "$ns"
        fi
    done
}

up() {
    down
    for ns in $NS; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
    ip link add c-eth0 netns "${P}client" type veth peer name n-in netns "${P}nat"
    ip link add g-eth0 numrxqueues 2 numtxqueues 2 netns "${P}gw" type veth peer name n-out numrxqueues 2 numtxqueues 2 netns "${P}nat"

    ip -n "${P}client" addr add 10.0.1.2/24 dev c-eth0
    ip -n "${P}client" link set c-eth0 up
    ip -n "${P}client" route add default via 10.0.1.1

    ip -n "${P}nat" addr add 10.0.1.1/24 dev n-in
    ip -n "${P}nat" addr add 192.0.2.1/24 dev n-out
    ip -n "${P}nat" link set n-in up
    ip -n "${P}nat" link set n-out up
    ip netns exec "${P}nat" sysctl -qw net.ipv4.ip_forward=1
    ip netns exec "${P}nat" nft -f - <<'NFT'
table ip nat {
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr 10.0.1.0/24 oifname "n-out" masquerade random
    }
}
NFT

    ip -n "${P}gw" addr add 192.0.2.2/24 dev g-eth0
    ip -n "${P}gw" link set g-eth0 up
    ip link add lan0 netns "${P}gw" type veth peer name l-eth0 netns "${P}lan"
    ip -n "${P}gw" addr add 10.9.0.1/24 dev lan0
    ip -n "${P}gw" link set lan0 up
    ip -n "${P}lan" addr add 10.9.0.2/24 dev l-eth0
    ip -n "${P}lan" link set l-eth0 up
    ip -n "${P}lan" route add default via 10.9.0.1
    ip netns exec "${P}gw" sysctl -qw net.ipv4.ip_forward=1

    for p in "${P}client c-eth0" "${P}nat n-in" "${P}nat n-out" "${P}gw g-eth0" "${P}gw lan0" "${P}lan l-eth0"; do
        set -- $p; ip netns exec "$1" ethtool -K "$2" tx off >/dev/null 2>&1 || true
    done
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    *) echo "usage: $0 up|down [PREFIX]" >&2; exit 2 ;;
esac
