#!/usr/bin/env python3
"""Check xdpsec's pcap output against scapy's ESP implementation (fixtures: gen_fixtures.py).

  esp_check.py decrypted CASE_DIR OURS.pcap   xdpsec's `pcap decrypt` of to_gw.esp.pcap must equal
                                              to_gw.expect.pcap byte for byte (Ethernet stripped)
  esp_check.py encrypted CASE_DIR OURS.pcap   scapy decrypts xdpsec's `pcap encrypt` of
                                              from_gw.plain.pcap back to it byte for byte, and the
                                              outer headers are right (UDP 4500 -> the SA's remote
                                              port, IPv4 UDP checksum 0, seq 1, 2, 3…, IV = seq)
  esp_check.py selftest CASE_DIR...          scapy round trip without xdpsec: decrypt to_gw.esp.pcap
                                              with the "in" SA (NAT undone), compare with to_gw.plain.pcap
(`compare-decrypted` and `decrypt-ours` are aliases of `decrypted` and `encrypted`.)
Exit status 0 when everything matches, 1 with the first difference otherwise.
"""
import sys, tomllib
from scapy.all import IP, UDP, Raw, rdpcap
from scapy.layers.ipsec import SecurityAssociation, ESP


def raw_ip(p):
    b = bytes(p)
    return b[14:] if p.name == "Ethernet" else b


def fail(msg):
    print("esp_check: " + msg)
    sys.exit(1)


def decrypted(case, ours):
    got = [raw_ip(p) for p in rdpcap(ours)]
    want = [bytes(p) for p in rdpcap(f"{case}/to_gw.expect.pcap")]
    if len(got) != len(want):
        fail(f"{len(got)} packets, expected {len(want)}")
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            fail(f"packet {i + 1} differs:\n ours     {g.hex()}\n expected {w.hex()}")
    print(f"esp_check: {case}: {len(got)} packets decrypted byte-identical")


def encrypted(case, ours):
    with open(f"{case}/sa.toml", "rb") as f:
        sa = next(s for s in tomllib.load(f)["sa"] if s["direction"] == "out")
    host, port = sa["remote"].rsplit(":", 1)
    keymat = bytes.fromhex(sa["key"].removeprefix("0x"))
    kw = dict(crypt_algo="AES-GCM", crypt_key=keymat, nat_t_header=UDP(sport=4500, dport=int(port)), esn_en=sa.get("esn", False))
    if sa["mode"] == "tunnel":
        kw["tunnel_header"] = IP(src=sa["local"].rsplit(":", 1)[0], dst=host)
    scapy_sa = SecurityAssociation(ESP, spi=sa["spi"], **kw)
    got = rdpcap(ours)
    want = [bytes(p) for p in rdpcap(f"{case}/from_gw.plain.pcap")]
    if len(got) != len(want):
        fail(f"{len(got)} packets, expected {len(want)}")
    for i, (p, w) in enumerate(zip(got, want)):
        pkt = IP(raw_ip(p))
        udp = pkt[UDP]
        if (udp.sport, udp.dport, udp.chksum) != (4500, int(port), 0):
            fail(f"packet {i + 1}: UDP {udp.sport}->{udp.dport} checksum {udp.chksum:#x}, expected 4500->{port}, 0")
        esp = bytes(udp.payload)
        seq = int.from_bytes(esp[4:8], "big")
        if seq != i + 1 or int.from_bytes(esp[8:16], "big") != i + 1:
            fail(f"packet {i + 1}: sequence {seq} / IV {esp[8:16].hex()}, expected both {i + 1}")
        if int.from_bytes(esp[:4], "big") != sa["spi"]:
            fail(f"packet {i + 1}: SPI {esp[:4].hex()}")
        inner = scapy_sa.decrypt(IP(bytes(pkt)))
        if bytes(inner) != w:
            fail(f"packet {i + 1}: scapy's decryption differs:\n scapy    {bytes(inner).hex()}\n original {w.hex()}")
    print(f"esp_check: {case}: scapy decrypted all {len(got)} of xdpsec's packets to the originals")


def selftest(case):
    """scapy decrypts its own to_gw.esp.pcap (with the NAT's rewrite undone, since scapy's
    transport-mode SA checks nothing but the payload) back to to_gw.plain.pcap."""
    with open(f"{case}/sa.toml", "rb") as f:
        sa = next(s for s in tomllib.load(f)["sa"] if s["direction"] == "in")
    keymat = bytes.fromhex(sa["key"].removeprefix("0x"))
    kw = dict(crypt_algo="AES-GCM", crypt_key=keymat, nat_t_header=UDP(sport=4500, dport=4500), esn_en=sa.get("esn", False))
    if sa["mode"] == "tunnel":
        kw["tunnel_header"] = IP(src="10.0.1.2", dst="192.0.2.2")
    scapy_sa = SecurityAssociation(ESP, spi=sa["spi"], **kw)
    want = [bytes(p) for p in rdpcap(f"{case}/to_gw.plain.pcap")]
    got = rdpcap(f"{case}/to_gw.esp.pcap")
    if len(got) != len(want):
        fail(f"{case}: {len(got)} ESP packets, {len(want)} plain")
    for i, (p, w) in enumerate(zip(got, want)):
        pkt = IP(raw_ip(p))
        if sa["mode"] == "transport":
            pkt.src = sa.get("nat_oa_remote", pkt.src)  # undo the NAT (scapy rebuilds this header)
            del pkt.chksum
            pkt = IP(bytes(pkt))
        inner = scapy_sa.decrypt(IP(bytes(pkt)))  # decrypt mutates its argument: pass a copy
        if bytes(inner) != w:
            fail(f"{case}: packet {i + 1}: scapy round trip differs:\n got  {bytes(inner).hex()}\n want {w.hex()}")
    print(f"esp_check: {case}: selftest ok, {len(got)} packets")


if __name__ == "__main__":
    ops = {"decrypted": decrypted, "encrypted": encrypted, "compare-decrypted": decrypted, "decrypt-ours": encrypted}
    if len(sys.argv) >= 3 and sys.argv[1] == "selftest":
        for c in sys.argv[2:]:
            selftest(c)
        sys.exit(0)
    if len(sys.argv) != 4 or sys.argv[1] not in ops:
        print(__doc__)
        sys.exit(2)
    ops[sys.argv[1]](sys.argv[2], sys.argv[3])
