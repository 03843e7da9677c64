// SPDX-License-Identifier: (Apache-2.0 OR GPL-2.0)
//
// xdp_natt: steer ESP-in-UDP (RFC 3948) and IKE-on-4500 datagrams into AF_XDP sockets.
//
// Ethernet -> IPv4 (any IHL) / IPv6 (fixed header only) -> UDP. A datagram whose destination
// port equals TARGET_PORT (RFC 3948 section 2: port 4500 by default) is redirected to the
// AF_XDP socket registered for the receiving RX queue in `xsks`; if that queue has no socket,
// bpf_redirect_map falls back to XDP_PASS. Everything else (IKE on 500, other UDP, TCP, ARP,
// non-IP) goes to the kernel stack untouched.
//
// Fragments: RFC 3948 section 3 leaves fragmented ESP-in-UDP to the IP layer. An IPv4 fragment
// (offset != 0 or MF set) is passed to the kernel, which reassembles it; the reassembled
// datagram then reaches the kernel UDP socket path, not AF_XDP. Non-first fragments carry no
// UDP header at all, and a first fragment alone is not a whole ESP packet, so neither can be
// handled by a per-frame AF_XDP worker. IPv6 fragments arrive with a Fragment extension header
// (next header 44), which this program does not walk: they count as "not UDP" and pass.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

// UDP destination port to steer, host byte order; set by the loader (aya override_global).
volatile const __u16 TARGET_PORT = 4500;

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

// Counter indices: keep in step with `Counter` in ebpf/src/counters.rs.
enum {
	C_SEEN = 0,
	C_REDIRECTED = 1,
	C_PASSED_NOT_IP = 2,
	C_PASSED_NOT_UDP = 3,
	C_PASSED_OTHER_PORT = 4,
	C_PASSED_FRAGMENT = 5,
	C_MALFORMED = 6,
	C_MAX = 7,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, C_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);
	if (v)
		*v += 1; // per-CPU slot: no atomic needed
}

static __always_inline int pass(__u32 idx)
{
	count(idx);
	return XDP_PASS;
}

#define IP_MF 0x2000
#define IP_OFFMASK 0x1fff

SEC("xdp")
int xdp_natt(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct udphdr *udp;
	__u8 proto;

	count(C_SEEN);

	if ((void *)(eth + 1) > data_end)
		return pass(C_MALFORMED);

	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		__u32 ihl;

		if ((void *)(ip + 1) > data_end)
			return pass(C_MALFORMED);
		if (ip->version != 4)
			return pass(C_MALFORMED);
		ihl = ip->ihl * 4;
		if (ihl < sizeof(*ip))
			return pass(C_MALFORMED);
		proto = ip->protocol;
		if (proto != IPPROTO_UDP)
			return pass(C_PASSED_NOT_UDP);
		// Any fragment (non-first: offset != 0; first: MF set) goes to the kernel for
		// reassembly (RFC 791 section 3.2; see the header comment).
		if (ip->frag_off & bpf_htons(IP_MF | IP_OFFMASK))
			return pass(C_PASSED_FRAGMENT);
		udp = (void *)ip + ihl; // ihl <= 60: bounded, checked against data_end below
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			return pass(C_MALFORMED);
		if (ip6->version != 6)
			return pass(C_MALFORMED);
		proto = ip6->nexthdr;
		if (proto != IPPROTO_UDP)
			return pass(C_PASSED_NOT_UDP);
		udp = (void *)(ip6 + 1);
	} else {
		return pass(C_PASSED_NOT_IP);
	}

	if ((void *)(udp + 1) > data_end)
		return pass(C_MALFORMED);
	if (udp->dest != bpf_htons(TARGET_PORT))
		return pass(C_PASSED_OTHER_PORT);

	count(C_REDIRECTED);
	return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
