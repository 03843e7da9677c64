#!/bin/bash
# Run one strongSwan charon (Debian 5.9, kernel-libipsec) per network namespace.
#
#   ss.sh start NS            start charon inside netns NS
#   ss.sh stop NS             stop it (by its saved pid)
#   ss.sh load NS FILE        load a swanctl.conf into that instance
#   ss.sh ctl NS ARGS...      run swanctl against that instance, e.g. ss.sh ctl xi-client --initiate --child gcm128
#
# Each instance gets its own folder $SS_RUN/NS (config, log, vici socket, pid). charon's pid file
# path is fixed (/run/charon.pid); `ip netns exec` gives a private mount namespace, so we
# bind-mount the instance folder over /run inside it.
# Packages: strongswan-charon strongswan-swanctl strongswan-libcharon
#           libstrongswan-standard-plugins libcharon-extra-plugins
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SS_RUN=${SS_RUN:-${TMPDIR:-/tmp}/xdpsec-strongswan}

start() {
    local ns=$1 d=$SS_RUN/$1
    mkdir -p "$d/run"
    rm -f "$d/run/charon.pid" "$d/charon.vici"
    sed "s#@RUN@#$d#g" "$HERE/strongswan/strongswan.conf.in" >"$d/strongswan.conf"
    ip netns exec "$ns" env STRONGSWAN_CONF="$d/strongswan.conf" \
        sh -c "mount --bind '$d/run' /run && exec /usr/lib/ipsec/charon" >"$d/charon.stdout" 2>&1 &
    echo $! >"$d/charon.mypid"
    for _ in $(seq 50); do [ -S "$d/charon.vici" ] && break; sleep 0.1; done
    [ -S "$d/charon.vici" ] || { echo "charon in $ns did not come up" >&2; cat "$d/charon.stdout" >&2; exit 1; }
}

stop() {
    local d=$SS_RUN/$1
    [ -f "$d/charon.mypid" ] || return 0
    local pid; pid=$(cat "$d/charon.mypid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$d/charon.mypid"
}

# swanctl wants the command first, then --uri
ctl() { local ns=$1 op=$2; shift 2; swanctl "$op" --uri "unix://$SS_RUN/$ns/charon.vici" "$@"; }

cmd=${1:-}; shift || true
case "$cmd" in
    start) start "$1" ;;
    stop) stop "$1" ;;
    load) ctl "$1" --load-all --file "$2" ;;
    ctl) ctl "$@" ;;
    *) sed -n 2,8p "$0"; exit 1 ;;
esac
