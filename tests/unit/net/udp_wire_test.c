/*
 * udp_wire_test.c: frame classification (Ethernet, VLAN, IPv4, UDP), every drop reason,
 * ARP replies built in place; and reassembly coverage against a byte-map model.
 */
#include <arpa/inet.h>
#include <string.h>

#include <rte_arp.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_udp.h>

#include "mb_reasm.h"
#include "mb_test.h"
#include "mb_udp_wire.h"

static const uint8_t peer_mac[6] = {0x02, 0, 0, 0, 0, 0x02};
static struct mb_udp_local g_local = {
	.mac = {0x02, 0, 0, 0, 0, 0x01},
};
static uint8_t g_frame[2048] __attribute__((aligned(8)));

static void
setup_local(void)
{
	g_local.ip = htonl(0xc0000201); /* 192.0.2.1 */
	g_local.port_be = htons(7000);
}

static uint32_t
frame(uint16_t vlan, const char *payload)
{
	setup_local();
	return mb_udp_build_frame(g_frame, sizeof(g_frame), peer_mac, 0xc0000202, 40000, &g_local,
				  vlan, payload, (uint32_t)strlen(payload));
}

static enum mb_udp_verdict
classify(uint32_t len, struct mb_udp_datagram *dg, enum mb_udp_drop *why)
{
	return mb_udp_classify(g_frame, len, &g_local, dg, why);
}

static struct rte_ipv4_hdr *
ip_of(uint16_t vlan)
{
	return (struct rte_ipv4_hdr *)(g_frame + 14 + (vlan ? 4 : 0));
}

static void
fix_cksum(struct rte_ipv4_hdr *ip)
{
	ip->hdr_checksum = 0;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
}

static void
test_datagram(void)
{
	struct mb_udp_datagram dg;
	enum mb_udp_drop why;
	uint32_t len;

	for (uint16_t vlan = 0; vlan <= 100; vlan += 100) {
		len = frame(vlan, "MBQ1hello");
		CU_ASSERT_EQUAL_FATAL(len, 14u + (vlan ? 4 : 0) + 20 + 8 + 9);
		CU_ASSERT_EQUAL_FATAL(classify(len, &dg, &why), MB_UDP_DATAGRAM);
		CU_ASSERT_EQUAL(dg.len, 9);
		CU_ASSERT_EQUAL(memcmp(dg.data, "MBQ1hello", 9), 0);
		CU_ASSERT_EQUAL(dg.src_ip, htonl(0xc0000202));
		CU_ASSERT_EQUAL(dg.src_port_be, htons(40000));
		/* trailing Ethernet padding is not payload */
		CU_ASSERT_EQUAL(classify(len + 10, &dg, &why), MB_UDP_DATAGRAM);
		CU_ASSERT_EQUAL(dg.len, 9);
	}
}

static void
expect_drop(uint32_t len, enum mb_udp_drop want)
{
	struct mb_udp_datagram dg;
	enum mb_udp_drop why = MB_UDP_DROP_COUNT;

	CU_ASSERT_EQUAL(classify(len, &dg, &why), MB_UDP_DROP);
	CU_ASSERT_EQUAL(why, want);
	if (why != want)
		printf("\n    got %s, expected %s", mb_udp_drop_name(why), mb_udp_drop_name(want));
}

static void
test_drops(void)
{
	uint32_t len = frame(0, "MBQ1hello");
	struct rte_ipv4_hdr *ip = ip_of(0);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);

	for (uint32_t cut = 0; cut < len; cut++)
		expect_drop(cut, MB_UDP_DROP_TRUNCATED);

	len = frame(0, "x");
	((struct rte_ether_hdr *)g_frame)->ether_type = htons(RTE_ETHER_TYPE_IPV6);
	expect_drop(len, MB_UDP_DROP_OTHER_PROTOCOL);

	len = frame(0, "x");
	ip->next_proto_id = IPPROTO_ICMP;
	fix_cksum(ip);
	expect_drop(len, MB_UDP_DROP_OTHER_PROTOCOL);

	len = frame(0, "x");
	ip->dst_addr = htonl(0xc0000209);
	fix_cksum(ip);
	expect_drop(len, MB_UDP_DROP_NOT_FOR_US);

	len = frame(0, "x");
	ip->hdr_checksum ^= 0x0101;
	expect_drop(len, MB_UDP_DROP_MALFORMED_IP);

	len = frame(0, "x");
	ip->version_ihl = 0x65;
	fix_cksum(ip);
	expect_drop(len, MB_UDP_DROP_MALFORMED_IP);

	len = frame(0, "x");
	ip->fragment_offset = htons(RTE_IPV4_HDR_MF_FLAG);
	fix_cksum(ip);
	expect_drop(len, MB_UDP_DROP_IP_FRAGMENT);
	len = frame(0, "x");
	ip->fragment_offset = htons(185); /* a later fragment */
	fix_cksum(ip);
	expect_drop(len, MB_UDP_DROP_IP_FRAGMENT);

	len = frame(0, "x");
	udp->dst_port = htons(7001);
	expect_drop(len, MB_UDP_DROP_WRONG_PORT);

	len = frame(0, "abc");
	udp->dgram_len = htons(8 + 40); /* says more than the IP packet holds */
	expect_drop(len, MB_UDP_DROP_TRUNCATED);
	udp->dgram_len = htons(4); /* less than its own header */
	expect_drop(len, MB_UDP_DROP_TRUNCATED);

	len = frame(0, "abc");
	ip->total_length = htons(200); /* longer than the frame */
	fix_cksum(ip);
	expect_drop(len, MB_UDP_DROP_TRUNCATED);

	CU_ASSERT_STRING_EQUAL(mb_udp_drop_name(MB_UDP_DROP_WRONG_PORT), "wrong_port");
	CU_ASSERT_STRING_EQUAL(mb_udp_drop_name(MB_UDP_DROP_COUNT), "unknown");
	for (int w = 0; w < MB_UDP_DROP_COUNT; w++)
		CU_ASSERT_PTR_NOT_NULL(mb_udp_drop_name((enum mb_udp_drop)w));
}

static uint32_t
arp_request(uint32_t target)
{
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)g_frame;
	struct rte_arp_hdr *a = (struct rte_arp_hdr *)(eth + 1);

	setup_local();
	memset(g_frame, 0, 64);
	memset(&eth->dst_addr, 0xff, 6);
	memcpy(&eth->src_addr, peer_mac, 6);
	eth->ether_type = htons(RTE_ETHER_TYPE_ARP);
	a->arp_hardware = htons(RTE_ARP_HRD_ETHER);
	a->arp_protocol = htons(RTE_ETHER_TYPE_IPV4);
	a->arp_hlen = 6;
	a->arp_plen = 4;
	a->arp_opcode = htons(RTE_ARP_OP_REQUEST);
	memcpy(&a->arp_data.arp_sha, peer_mac, 6);
	a->arp_data.arp_sip = htonl(0xc0000202);
	a->arp_data.arp_tip = htonl(target);
	return 60; /* padded to the Ethernet minimum */
}

static void
test_arp(void)
{
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)g_frame;
	struct rte_arp_hdr *a = (struct rte_arp_hdr *)(eth + 1);
	struct mb_udp_datagram dg;
	enum mb_udp_drop why;
	uint32_t len = arp_request(0xc0000201);

	CU_ASSERT_EQUAL_FATAL(classify(len, &dg, &why), MB_UDP_ARP_REPLY);
	CU_ASSERT_EQUAL(ntohs(a->arp_opcode), RTE_ARP_OP_REPLY);
	CU_ASSERT_EQUAL(memcmp(&a->arp_data.arp_sha, g_local.mac, 6), 0);
	CU_ASSERT_EQUAL(a->arp_data.arp_sip, htonl(0xc0000201));
	CU_ASSERT_EQUAL(memcmp(&a->arp_data.arp_tha, peer_mac, 6), 0);
	CU_ASSERT_EQUAL(a->arp_data.arp_tip, htonl(0xc0000202));
	CU_ASSERT_EQUAL(memcmp(&eth->dst_addr, peer_mac, 6), 0);
	CU_ASSERT_EQUAL(memcmp(&eth->src_addr, g_local.mac, 6), 0);

	len = arp_request(0xc0000203); /* someone else's address */
	expect_drop(len, MB_UDP_DROP_NOT_FOR_US);
	len = arp_request(0xc0000201);
	a->arp_opcode = htons(RTE_ARP_OP_REPLY); /* a reply is not ours to answer */
	expect_drop(len, MB_UDP_DROP_OTHER_PROTOCOL);
	expect_drop(20, MB_UDP_DROP_TRUNCATED);
}

/* ---- reassembly coverage ---- */

static void
test_cov_basic(void)
{
	struct mb_reasm_cov c;

	mb_reasm_init(&c);
	CU_ASSERT_EQUAL(mb_reasm_add(&c, 0, 100), 100);
	CU_ASSERT_EQUAL(mb_reasm_add(&c, 0, 100), 0); /* duplicate */
	CU_ASSERT_EQUAL(mb_reasm_add(&c, 200, 300), 100);
	CU_ASSERT_EQUAL(c.n_runs, 2);
	CU_ASSERT_EQUAL(mb_reasm_add(&c, 50, 250), 100); /* overlaps both, fills the hole */
	CU_ASSERT_EQUAL(c.n_runs, 1);
	CU_ASSERT_EQUAL(c.covered, 300);
	CU_ASSERT_EQUAL(mb_reasm_add(&c, 300, 310), 10); /* touching: merged */
	CU_ASSERT_EQUAL(c.n_runs, 1);
	CU_ASSERT_EQUAL(c.run[0].hi, 310);
}

static void
test_cov_runs_limit(void)
{
	struct mb_reasm_cov c;

	mb_reasm_init(&c);
	for (uint32_t i = 0; i < MB_REASM_MAX_RUNS; i++)
		CU_ASSERT_EQUAL(mb_reasm_add(&c, i * 10, i * 10 + 5), 5);
	CU_ASSERT_EQUAL(c.n_runs, MB_REASM_MAX_RUNS);
	CU_ASSERT_EQUAL(mb_reasm_add(&c, 1000, 1005), -1); /* one hole too many */
	CU_ASSERT_EQUAL(c.covered, MB_REASM_MAX_RUNS * 5);
	CU_ASSERT_EQUAL(mb_reasm_add(&c, 5, 10), 5); /* filling a hole still works */
	CU_ASSERT_EQUAL(c.n_runs, MB_REASM_MAX_RUNS - 1);
}

/* Random slices against a byte map: covered and the new-byte counts always agree. */
static void
test_cov_model(void)
{
	enum { N = 4000 };
	static uint8_t map[N];
	uint64_t seed = 12345;

	for (int round = 0; round < 300; round++) {
		struct mb_reasm_cov c;
		uint32_t want = 0;

		memset(map, 0, sizeof(map));
		mb_reasm_init(&c);
		for (int k = 0; k < 60; k++) {
			uint32_t lo = (uint32_t)(mb_test_rand(&seed) % N);
			uint32_t hi = lo + 1 + (uint32_t)(mb_test_rand(&seed) % 400);
			uint32_t fresh = 0;
			int64_t got;
			struct mb_reasm_cov before = c;

			if (hi > N)
				hi = N;
			for (uint32_t b = lo; b < hi; b++)
				fresh += map[b] == 0;
			got = mb_reasm_add(&c, lo, hi);
			if (got < 0) { /* refused: nothing changed */
				CU_ASSERT_EQUAL(memcmp(&before, &c, sizeof(c)), 0);
				continue;
			}
			CU_ASSERT_EQUAL(got, fresh);
			for (uint32_t b = lo; b < hi; b++)
				map[b] = 1;
			want += fresh;
			CU_ASSERT_EQUAL(c.covered, want);
			for (uint32_t r = 0; r + 1 < c.n_runs; r++)
				CU_ASSERT(c.run[r].hi <
					  c.run[r + 1].lo); /* disjoint, not touching */
		}
	}
}

static const struct mb_test_case cases[] = {
	{"IPv4/UDP datagrams, with and without a VLAN tag", test_datagram},
	{"every drop reason, including each truncation point", test_drops},
	{"ARP requests for our address become replies in place", test_arp},
	{"coverage: duplicates, overlaps, merges", test_cov_basic},
	{"coverage: at most MB_REASM_MAX_RUNS holes", test_cov_runs_limit},
	{"coverage: random slices agree with a byte map", test_cov_model},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"udp wire", NULL, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("udp_wire_test", suites);
}
