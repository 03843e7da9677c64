from scapy.all import rdpcap, UDP
import sys
for tag in ["gcm","cbc"]:
    for i,p in enumerate(rdpcap(f"{tag}.pcap")):
        u=p[UDP]; b=bytes(u.payload)
        if u.dport==4500 or u.sport==4500:
            if b[:4]!=b"\0\0\0\0": continue
            b=b[4:]
        names=["init_req","init_resp","auth_req","auth_resp"]
        if i<4:
            open(f"{tag}_{names[i]}.hex","w").write(b.hex()+"\n")
        print(tag,i,u.sport,u.dport,len(b), b[:28].hex())
