#!/usr/bin/env python3
"""Check xdpsec's pcap output against scapy's ESP implementation (fixtures: gen_fixtures.py).

  esp_check.py decrypted CASE_DIR OURS.pcap   xdpsec's `pcap decrypt` of to_gw.esp.pcap must equal
                                              to_gw.expect.pcap byte for byte (Ethernet stripped)
  esp_check.py encrypted CASE_DIR OURS.pcap   scapy decrypts xdpsec's `pcap encrypt` of
                                              from_gw.plain.pcap back to it byte for byte, and the
                                              outer headers are right (UDP 4500 -> the SA's remote
                                              port, IPv4 UDP checksum 0, seq 1, 2, 3…, IV = seq)
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


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("decrypted", "encrypted"):
        print(__doc__)
        sys.exit(2)
    {"decrypted": decrypted, "encrypted": encrypted}[sys.argv[1]](sys.argv[2], sys.argv[3])
