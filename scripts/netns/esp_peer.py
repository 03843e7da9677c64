#!/usr/bin/env python3
"""An independent ESP-in-UDP peer (scapy) for xdpsec's namespace tests.

Runs inside the client namespace, behind the NAT. It reads the gateway's configuration (the
gateway's "in" SA is our outbound SA and vice versa), sends ESP-in-UDP from a UDP socket bound
to port 4500 (so the NAT maps it like a real client), decrypts the replies with scapy and prints
one JSON object with what happened.

  esp_peer.py peer --config gw.toml --lan-host 10.9.0.2 [--count 5]
      scenarios, in order: icmp, udp (needs an echo server on the LAN host), hostile (tampered,
      replayed, unknown SPI, keepalive — then traffic must still flow), rebind (new source
      port mid-stream: replies must follow).
  esp_peer.py echo --bind 10.9.0.2:7 --seconds 30      UDP echo server (run on the LAN host)
  esp_peer.py sink --bind ADDR:PORT ... --seconds 10    count plain UDP datagrams per port
"""
import argparse, json, socket, sys, time, tomllib, select

from scapy.all import IP, UDP, ICMP, Raw
from scapy.layers.ipsec import SecurityAssociation, ESP


def load_sas(path):
    with open(path, "rb") as f:
        cfg = tomllib.load(f)
    gw = cfg["gateway"]["listen"].rsplit(":", 1)
    sas = {sa["direction"]: sa for sa in cfg.get("sa", [])}
    return (gw[0], int(gw[1])), sas["in"], sas["out"]


def scapy_sa(sa, src, dst):
    key = bytes.fromhex(sa["key"].removeprefix("0x"))
    algo = "AES-GCM"
    return SecurityAssociation(ESP, spi=sa["spi"], crypt_algo=algo, crypt_key=key,
                               tunnel_header=IP(src=src, dst=dst),
                               nat_t_header=UDP(sport=4500, dport=4500), esn_en=sa.get("esn", False))


class Peer:
    def __init__(self, args):
        self.gw, gw_in, gw_out = load_sas(args.config)
        self.inner_src = args.inner_src
        self.lan = args.lan_host
        self.out = scapy_sa(gw_in, args.local, self.gw[0])     # we encrypt with the gateway's inbound SA
        self.inn = scapy_sa(gw_out, self.gw[0], args.local)    # and decrypt with its outbound SA
        self.local = args.local
        self.sock = self.bind(4500)
        self.sent = []

    def bind(self, port):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((self.local, port))
        return s

    def send_inner(self, inner, sock=None):
        esp = bytes(self.out.encrypt(inner)[UDP].payload)
        self.sent.append(esp)
        (sock or self.sock).sendto(esp, self.gw)
        return esp

    def recv_inner(self, sock=None, timeout=1.0):
        sock = sock or self.sock
        r, _, _ = select.select([sock], [], [], timeout)
        if not r:
            return None
        data, _ = sock.recvfrom(4096)
        pkt = IP(bytes(IP(src=self.gw[0], dst=self.local) / UDP(sport=4500, dport=4500) / Raw(data)))
        return self.inn.decrypt(pkt)

    def ping(self, seq, sock=None):
        self.send_inner(IP(src=self.inner_src, dst=self.lan) / ICMP(id=0x4242, seq=seq) / Raw(b"xdpsec-e2e" * 4), sock)
        reply = self.recv_inner(sock)
        return reply is not None and ICMP in reply and reply[ICMP].type == 0 and reply[ICMP].seq == seq

    def udp(self, i):
        payload = b"udp-through-the-tunnel-%d" % i
        self.send_inner(IP(src=self.inner_src, dst=self.lan) / UDP(sport=5000 + i, dport=7) / Raw(payload))
        reply = self.recv_inner()
        return reply is not None and UDP in reply and bytes(reply[UDP].payload) == payload

    def hostile(self):
        good = self.sent[-1]
        tampered = bytearray(bytes(self.out.encrypt(IP(src=self.inner_src, dst=self.lan) / ICMP())[UDP].payload))
        tampered[-1] ^= 1
        unknown = (0x0BADC0DE).to_bytes(4, "big") + bytes(40)
        for d in (bytes(tampered), good, unknown, b"\xff"):
            self.sock.sendto(d, self.gw)
        time.sleep(0.3)
        stray = self.recv_inner(timeout=0.2)
        return {"sent": ["tampered", "replay", "unknown_spi", "keepalive"], "unexpected_reply": stray is not None}


def cmd_peer(args):
    p = Peer(args)
    res = {}
    res["icmp"] = sum(p.ping(i) for i in range(args.count))
    res["udp"] = sum(p.udp(i) for i in range(args.count))
    res["hostile"] = p.hostile()
    res["icmp_after_hostile"] = sum(p.ping(100 + i) for i in range(args.count))
    # NAT rebinding: a new local port gets a new public mapping; replies must follow it.
    new = p.bind(4501)
    res["rebind_icmp"] = sum(p.ping(200 + i, new) for i in range(args.count))
    res["old_socket_quiet"] = p.recv_inner(timeout=0.3) is None
    # Plain UDP to other gateway ports (IKE's 500, anything else) must reach the kernel stack.
    for port in args.plain_port:
        p.sock.sendto(b"plain", (p.gw[0], port))
    res["plain_sent"] = args.plain_port
    res["count"] = args.count
    print(json.dumps(res))


def cmd_echo(args):
    host, port = args.bind.rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((host, int(port)))
    end = time.time() + args.seconds
    while time.time() < end:
        r, _, _ = select.select([s], [], [], 0.2)
        if r:
            d, a = s.recvfrom(4096)
            s.sendto(d, a)


def cmd_sink(args):
    socks = {}
    for b in args.bind:
        host, port = b.rsplit(":", 1)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((host, int(port)))
        socks[s] = b
    counts = {b: 0 for b in args.bind}
    end = time.time() + args.seconds
    while time.time() < end:
        r, _, _ = select.select(list(socks), [], [], 0.2)
        for s in r:
            s.recvfrom(4096)
            counts[socks[s]] += 1
        if args.out:
            with open(args.out + ".tmp", "w") as f:
                json.dump(counts, f)
            import os
            os.replace(args.out + ".tmp", args.out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("peer")
    p.add_argument("--config", required=True)
    p.add_argument("--lan-host", default="10.9.0.2")
    p.add_argument("--inner-src", default="10.99.0.5")
    p.add_argument("--local", default="10.0.1.2")
    p.add_argument("--count", type=int, default=5)
    p.add_argument("--plain-port", type=int, action="append", default=[])
    e = sub.add_parser("echo")
    e.add_argument("--bind", required=True)
    e.add_argument("--seconds", type=float, default=30)
    s = sub.add_parser("sink")
    s.add_argument("--bind", action="append", required=True)
    s.add_argument("--seconds", type=float, default=10)
    s.add_argument("--out")
    args = ap.parse_args()
    {"peer": cmd_peer, "echo": cmd_echo, "sink": cmd_sink}[args.cmd](args)


if __name__ == "__main__":
    main()
