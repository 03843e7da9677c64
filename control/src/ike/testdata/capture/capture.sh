#!/bin/bash
# Re-capture the strongSwan fixtures of ../ (IKE_SA_INIT + IKE_AUTH, GCM and CBC suites).
# Needs root, strongSwan 5.9.8 (see /work/shared/NOTES.md), tcpdump and scapy.
# Two namespaces xh5a (initiator 10.252.0.1) and xh5b (responder 10.252.0.2) on a veth pair;
# one charon each via interop's ss.sh, logging with ike=4 so the DH secret, SKEYSEED, SK_*
# and AUTH values land in the log. Everything is torn down at the end.
#   usage: capture.sh OUTDIR
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:?outdir}; mkdir -p "$OUT"; cd "$OUT"
SS=${SS_SH:-/work/shared/interop/strongswan/ss.sh}
cp "$SS" ss.sh; cp "$HERE/strongswan.conf.in" .; mkdir -p cfg; cp "$HERE"/*.conf cfg/
export SS_RUN=$OUT/run
cleanup() { ./ss.sh stop xh5a || true; ./ss.sh stop xh5b || true; ip netns del xh5a 2>/dev/null || true; ip netns del xh5b 2>/dev/null || true; }
trap cleanup EXIT
run() {
    local conf=$1 tag=$2
    ip netns add xh5a; ip netns add xh5b
    ip link add xh5va netns xh5a type veth peer name xh5vb netns xh5b
    ip -n xh5a addr add 10.252.0.1/24 dev xh5va; ip -n xh5b addr add 10.252.0.2/24 dev xh5vb
    for ns in xh5a xh5b; do ip -n $ns link set lo up; done
    ip -n xh5a link set xh5va up; ip -n xh5b link set xh5vb up
    ./ss.sh start xh5a; ./ss.sh start xh5b
    ./ss.sh load xh5a "cfg/$conf"; ./ss.sh load xh5b cfg/gw.conf
    ip netns exec xh5b timeout 20 tcpdump -i xh5vb -U -w "$tag.pcap" udp >/dev/null 2>&1 &
    local td=$!; sleep 1
    timeout 15 ./ss.sh ctl xh5a --initiate --child net || true
    sleep 1; kill $td || true; wait $td || true
    cp run/xh5a/charon.log "$tag-client.log"
    cleanup
}
run client.conf gcm
run client-cbc.conf cbc
python3 "$HERE/extract_messages.py"
python3 "$HERE/extract_keys.py"
