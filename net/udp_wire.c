/*
 * udp_wire.c: classify received frames for the UDP ingest path; answer ARP in place.
 *
 * Header layouts come from DPDK (rte_ether.h, rte_ip.h, rte_udp.h, rte_arp.h); every length
 * is checked against the frame before a field is read.
 */
#include "mb_udp_wire.h"

#include <string.h>

#include <rte_arp.h>
#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_udp.h>

#include "mediabatch/protocol.h"

static const char *const drop_names[MB_UDP_DROP_COUNT] = {
	[MB_UDP_DROP_OTHER_PROTOCOL] = "other_protocol",
	[MB_UDP_DROP_NOT_FOR_US] = "not_for_us",
	[MB_UDP_DROP_WRONG_PORT] = "wrong_port",
	[MB_UDP_DROP_MALFORMED_IP] = "malformed_ip",
	[MB_UDP_DROP_IP_FRAGMENT] = "ip_fragment",
	[MB_UDP_DROP_TRUNCATED] = "truncated",
	[MB_UDP_DROP_GARBAGE] = "garbage",
	[MB_UDP_DROP_BAD_HEADER] = "bad_header",
	[MB_UDP_DROP_DUPLICATE] = "duplicate",
	[MB_UDP_DROP_CONFLICT] = "conflict",
	[MB_UDP_DROP_TOO_FRAGMENTED] = "too_fragmented",
	[MB_UDP_DROP_NO_SLOT] = "no_slot",
	[MB_UDP_DROP_NO_BUFFER] = "no_buffer",
	[MB_UDP_DROP_SOURCE] = "source",
	[MB_UDP_DROP_BAD_CHECKSUM] = "bad_checksum",
};

const char *
mb_udp_drop_name(enum mb_udp_drop why)
{
	return (unsigned int)why < MB_UDP_DROP_COUNT ? drop_names[why] : "unknown";
}

static enum mb_udp_verdict
drop(enum mb_udp_drop *why, enum mb_udp_drop reason)
{
	*why = reason;
	return MB_UDP_DROP;
}

/* An ARP request for our address becomes its reply, in place. */
static enum mb_udp_verdict
arp(uint8_t *frame, uint32_t l3, uint32_t len, const struct mb_udp_local *local,
    enum mb_udp_drop *why)
{
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)frame;
	struct rte_arp_hdr *a;

	if (len < l3 + sizeof(*a))
		return drop(why, MB_UDP_DROP_TRUNCATED);
	a = (struct rte_arp_hdr *)(frame + l3);
	if (a->arp_hardware != rte_cpu_to_be_16(RTE_ARP_HRD_ETHER) ||
	    a->arp_protocol != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) ||
	    a->arp_hlen != RTE_ETHER_ADDR_LEN || a->arp_plen != 4)
		return drop(why, MB_UDP_DROP_OTHER_PROTOCOL);
	if (a->arp_opcode != rte_cpu_to_be_16(RTE_ARP_OP_REQUEST))
		return drop(why, MB_UDP_DROP_OTHER_PROTOCOL); /* replies, RARP: not ours to use */
	if (a->arp_data.arp_tip != local->ip)
		return drop(why, MB_UDP_DROP_NOT_FOR_US);

	a->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REPLY);
	a->arp_data.arp_tha = a->arp_data.arp_sha;
	a->arp_data.arp_tip = a->arp_data.arp_sip;
	memcpy(&a->arp_data.arp_sha, local->mac, RTE_ETHER_ADDR_LEN);
	a->arp_data.arp_sip = local->ip;
	eth->dst_addr = a->arp_data.arp_tha;
	memcpy(&eth->src_addr, local->mac, RTE_ETHER_ADDR_LEN);
	return MB_UDP_ARP_REPLY;
}

enum mb_udp_verdict
mb_udp_classify(uint8_t *frame, uint32_t len, const struct mb_udp_local *local,
		struct mb_udp_datagram *dg, enum mb_udp_drop *why)
{
	const struct rte_ether_hdr *eth = (const struct rte_ether_hdr *)frame;
	const struct rte_ipv4_hdr *ip;
	const struct rte_udp_hdr *udp;
	uint32_t l3 = sizeof(*eth), ihl, total, ulen;
	uint16_t type;

	if (len < sizeof(*eth))
		return drop(why, MB_UDP_DROP_TRUNCATED);
	type = eth->ether_type;
	if (type == rte_cpu_to_be_16(RTE_ETHER_TYPE_VLAN) ||
	    type == rte_cpu_to_be_16(RTE_ETHER_TYPE_QINQ)) {
		const struct rte_vlan_hdr *vh;

		if (len < l3 + sizeof(*vh))
			return drop(why, MB_UDP_DROP_TRUNCATED);
		vh = (const struct rte_vlan_hdr *)(frame + l3);
		type = vh->eth_proto;
		l3 += sizeof(*vh);
	}
	if (type == rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP))
		return arp(frame, l3, len, local, why);
	if (type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4))
		return drop(why, MB_UDP_DROP_OTHER_PROTOCOL);

	if (len < l3 + sizeof(*ip))
		return drop(why, MB_UDP_DROP_TRUNCATED);
	ip = (const struct rte_ipv4_hdr *)(frame + l3);
	ihl = (uint32_t)(ip->version_ihl & 0x0f) * 4;
	total = rte_be_to_cpu_16(ip->total_length);
	if ((ip->version_ihl >> 4) != 4 || ihl < sizeof(*ip) || total < ihl)
		return drop(why, MB_UDP_DROP_MALFORMED_IP);
	if (len < l3 + total)
		return drop(why, MB_UDP_DROP_TRUNCATED);
	if (rte_raw_cksum(ip, ihl) != 0xffff)
		return drop(why, MB_UDP_DROP_MALFORMED_IP);
	if (ip->dst_addr != local->ip)
		return drop(why, MB_UDP_DROP_NOT_FOR_US);
	if (ip->next_proto_id != IPPROTO_UDP)
		return drop(why, MB_UDP_DROP_OTHER_PROTOCOL);
	if ((ip->fragment_offset &
	     rte_cpu_to_be_16(RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)) != 0)
		return drop(why, MB_UDP_DROP_IP_FRAGMENT);
	if (total < ihl + sizeof(*udp))
		return drop(why, MB_UDP_DROP_TRUNCATED);
	udp = (const struct rte_udp_hdr *)((const uint8_t *)ip + ihl);
	if (udp->dst_port != local->port_be)
		return drop(why, MB_UDP_DROP_WRONG_PORT);
	ulen = rte_be_to_cpu_16(udp->dgram_len);
	if (ulen < sizeof(*udp) || ulen > total - ihl)
		return drop(why, MB_UDP_DROP_TRUNCATED);
	dg->src_ip = ip->src_addr;
	dg->src_port_be = udp->src_port;
	dg->data = (const uint8_t *)(udp + 1);
	dg->len = ulen - (uint32_t)sizeof(*udp);
	return MB_UDP_DATAGRAM;
}

uint32_t
mb_udp_build_frame(uint8_t *out, uint32_t cap, const uint8_t src_mac[6], uint32_t src_ip,
		   uint16_t src_port, const struct mb_udp_local *local, uint16_t vlan,
		   const void *payload, uint32_t payload_len)
{
	uint32_t l3 = sizeof(struct rte_ether_hdr) + (vlan ? sizeof(struct rte_vlan_hdr) : 0);
	uint32_t total =
		l3 + sizeof(struct rte_ipv4_hdr) + sizeof(struct rte_udp_hdr) + payload_len;
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)out;
	struct rte_ipv4_hdr *ip;
	struct rte_udp_hdr *udp;

	if (total > cap || total - l3 > UINT16_MAX)
		return 0;
	memcpy(&eth->dst_addr, local->mac, RTE_ETHER_ADDR_LEN);
	memcpy(&eth->src_addr, src_mac, RTE_ETHER_ADDR_LEN);
	if (vlan) {
		struct rte_vlan_hdr *vh = (struct rte_vlan_hdr *)(eth + 1);

		eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_VLAN);
		vh->vlan_tci = rte_cpu_to_be_16(vlan);
		vh->eth_proto = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	} else {
		eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	}
	ip = (struct rte_ipv4_hdr *)(out + l3);
	memset(ip, 0, sizeof(*ip));
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->total_length = rte_cpu_to_be_16((uint16_t)(total - l3));
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_UDP;
	ip->src_addr = rte_cpu_to_be_32(src_ip);
	ip->dst_addr = local->ip;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	udp = (struct rte_udp_hdr *)(ip + 1);
	udp->src_port = rte_cpu_to_be_16(src_port);
	udp->dst_port = local->port_be;
	udp->dgram_len = rte_cpu_to_be_16((uint16_t)(sizeof(*udp) + payload_len));
	udp->dgram_cksum = 0; /* none: allowed over IPv4 */
	memcpy(udp + 1, payload, payload_len);
	return total;
}
