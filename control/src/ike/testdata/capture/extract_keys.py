import re
for tag in ["gcm","cbc"]:
    lines=open(f"{tag}-client.log").read().splitlines()
    out=[]; i=0
    while i<len(lines):
        m=re.search(r"\[IKE\] (.+?) => (\d+) bytes @",lines[i])
        if m:
            name=m.group(1); n=int(m.group(2)); hx=""
            j=i+1
            while len(hx)<2*n and j<len(lines):
                mm=re.search(r"\[IKE\]\s+\d+: ((?:[0-9A-F]{2} ?)+)",lines[j])
                if not mm: break
                hx+=mm.group(1).replace(" ","").lower()[:2*n-len(hx)]; j+=1
            if len(hx)==2*n and not name.startswith("octets"):
                out.append(f"{name} = {hx}")
            i=j
        else: i+=1
    open(f"{tag}_keys.txt","w").write("\n".join(out)+"\n")
    print(tag); print("\n".join(out))
