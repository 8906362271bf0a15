/*
 * udp_pcap_test.c: the UDP ingest path on a real DPDK port (net_pcap replaying a capture
 * this test writes), with a stand-in pipeline so that every outcome can be checked exactly.
 *
 * The capture holds, from one peer: whole requests (plain and VLAN-tagged), requests in
 * order, reordered, duplicated and overlapping, requests that never complete, a conflict,
 * a cancel of a half request and one of a whole request while it is queued, truncated and
 * bad headers, an unknown model, a model whose queue is full, and
 * frames that are not ours at all (garbage, wrong port, IPv6, ICMP, IP fragments, bad
 * checksum, another address), plus an ARP request. The test then checks:
 *   - exactly the expected requests reached their model queues, with their payload intact;
 *   - exactly the expected answers went to the egress (results ring), with their status and
 *     a reason naming the problem: nothing more, nothing less;
 *   - every drop counter, and the ARP reply written to the port's tx capture;
 *   - the drain: rx threads close, every slot comes back, nothing is left over.
 *
 * A third port has a source allow-list (udp.sources, among some thousands of other tenants):
 * requests from an allowed prefix of their tenant are served; from another address, of a
 * tenant with no entry, forged slices and cancels from a foreign address are dropped as
 * "source" and never answered, and the requests they target complete or stay as they were.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <pcap/pcap.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_arp.h>
#include <rte_ether.h>
#include <rte_ip.h>

#include "mediabatch/protocol.h"
#include "mb_config.h"
#include "mb_eal.h"
#include "mb_env.h"
#include "mb_metrics.h"
#include "mb_test.h"
#include "mb_udp.h"
#include "mb_udp_wire.h"

#define PEER_IP 0xc0000202u /* 192.0.2.2: the test's own namespace-free documentation net */
#define OUR_IP 0xc0000201u
/* udp.sources of the third port: tenant 7 from 192.0.2.0/28 or 198.51.100.7, tenant 9 from
 * 203.0.113.0/24, tenant 0 from 192.0.2.0/24; tenant 8 has no entry */
#define ALT_IP 0xc6336407u     /* 198.51.100.7: tenant 7's second prefix */
#define T9_IP 0xcb007132u      /* 203.0.113.50 */
#define OUTSIDE_IP 0xc0000210u /* 192.0.2.16: just past tenant 7's /28 */
#define FOREIGN_IP 0x0a000001u /* 10.0.0.1: nobody's */

static char g_rx_pcap[256], g_tx_pcap[256];
static pcap_dumper_t *g_dump;
static pcap_t *g_dead;
static uint32_t g_frames;
static const uint8_t g_peer_mac[6] = {0x02, 0, 0, 0, 0, 0x02};
static struct mb_udp_local g_local; /* MAC unknown until the port is up: frames use bcast */

/* ---- writing the capture ---- */

static void
put_frame(const uint8_t *f, uint32_t len)
{
	struct pcap_pkthdr h = {.caplen = len, .len = len};

	h.ts.tv_usec = (int)g_frames;
	pcap_dump((u_char *)g_dump, &h, f);
	g_frames++;
}

static void
put_datagram_from(uint32_t src_ip, uint16_t src_port, uint16_t dst_port, uint16_t vlan,
		  const void *d, uint32_t len)
{
	static uint8_t f[2048];
	struct mb_udp_local to = g_local;
	uint32_t n;

	to.port_be = htons(dst_port);
	n = mb_udp_build_frame(f, sizeof(f), g_peer_mac, src_ip, src_port, &to, vlan, d, len);
	if (n == 0)
		abort();
	put_frame(f, n);
}

static void
put_datagram_port(uint16_t src_port, uint16_t dst_port, uint16_t vlan, const void *d, uint32_t len)
{
	put_datagram_from(PEER_IP, src_port, dst_port, vlan, d, len);
}

static uint8_t g_payload[8192];

static struct mb_request_hdr
hdr(uint64_t id, const char *model, uint32_t payload_len)
{
	struct mb_request_hdr h = {
		.version = 1,
		.request_id = id,
		.tenant_id = 7,
		.media = MB_MEDIA_F32,
		.frames = 1,
		.height = (uint16_t)(payload_len / 4),
		.payload_len = payload_len,
	};

	snprintf(h.model, sizeof(h.model), "%s", model);
	return h;
}

/* One datagram of request @h: its slice [off, off + len) of g_payload (offset by id). */
static void
put_slice(struct mb_request_hdr h, uint32_t off, uint32_t len, uint16_t vlan)
{
	uint8_t d[2048];

	h.frag_offset = off;
	mb_proto_encode_request(&h, d);
	memcpy(d + MB_PROTO_HDR_LEN, g_payload + (h.request_id % 64) + off, len);
	put_datagram_port(40000, 7000, vlan, d, MB_PROTO_HDR_LEN + len);
}

static void
put_raw(const void *d, uint32_t len)
{
	put_datagram_port(40000, 7000, 0, d, len);
}

static void
write_capture(void)
{
	struct mb_request_hdr h;
	uint8_t d[256];
	uint8_t f[128];
	uint32_t n;

	for (size_t i = 0; i < sizeof(g_payload); i++)
		g_payload[i] = (uint8_t)(i * 7 + 3);
	g_local.ip = htonl(OUR_IP);
	g_local.port_be = htons(7000);
	memset(g_local.mac, 0xff, 6);
	snprintf(g_rx_pcap, sizeof(g_rx_pcap), "/tmp/mb-udp-rx-%d.pcap", (int)getpid());
	snprintf(g_tx_pcap, sizeof(g_tx_pcap), "/tmp/mb-udp-tx-%d.pcap", (int)getpid());
	g_dead = pcap_open_dead(DLT_EN10MB, 65535);
	g_dump = pcap_dump_open(g_dead, g_rx_pcap);
	if (g_dump == NULL) {
		fprintf(stderr, "cannot write %s: %s\n", g_rx_pcap, pcap_geterr(g_dead));
		exit(99);
	}

	/* 1: whole in one datagram; then the same again while it is queued (duplicate) */
	h = hdr(1, "echo", 1000);
	put_slice(h, 0, 1000, 0);
	put_slice(h, 0, 1000, 0);
	/* 2: five slices in order */
	h = hdr(2, "echo", 1500);
	for (uint32_t o = 0; o < 1500; o += 300)
		put_slice(h, o, 300, 0);
	/* 3: six slices, reordered */
	h = hdr(3, "echo", 1200);
	put_slice(h, 1000, 200, 0);
	put_slice(h, 0, 200, 0);
	put_slice(h, 600, 200, 0);
	put_slice(h, 200, 200, 0);
	put_slice(h, 800, 200, 0);
	put_slice(h, 400, 200, 0);
	/* 4: three slices, each twice (three duplicates) */
	h = hdr(4, "echo", 900);
	for (uint32_t o = 0; o < 900; o += 300) {
		put_slice(h, o, 300, 0);
		put_slice(h, o, 300, 0);
	}
	/* 5: overlapping slices */
	h = hdr(5, "echo", 1000);
	put_slice(h, 0, 500, 0);
	put_slice(h, 300, 500, 0);
	put_slice(h, 800, 200, 0);
	/* 6: two of three slices: never completes */
	h = hdr(6, "echo", 900);
	put_slice(h, 0, 300, 0);
	put_slice(h, 600, 300, 0);
	/* 7: a 40-byte datagram with the magic: truncated header, id readable */
	h = hdr(7, "echo", 100);
	mb_proto_encode_request(&h, d);
	put_raw(d, 40);
	/* 8: garbage */
	put_raw("GET / HTTP/1.1\r\n\r\n", 18);
	/* 9: a whole request to the wrong port */
	h = hdr(9, "echo", 100);
	mb_proto_encode_request(&h, d);
	memcpy(d + 64, g_payload, 100);
	put_datagram_port(40000, 7001, 0, d, 164);
	/* 10: version 2 */
	h = hdr(10, "echo", 100);
	h.version = 2;
	put_slice(h, 0, 100, 0);
	/* 11: a model nobody serves */
	h = hdr(11, "nosuch", 100);
	put_slice(h, 0, 100, 0);
	/* 13: a slice running past payload_len */
	h = hdr(13, "echo", 100);
	put_slice(h, 50, 100, 0);
	/* 14: whole, VLAN-tagged */
	h = hdr(14, "echo", 400);
	put_slice(h, 0, 400, 42);
	/* 17: a second slice whose header disagrees (payload_len): conflict; never completes */
	h = hdr(17, "echo", 600);
	put_slice(h, 0, 300, 0);
	h.payload_len = 700;
	h.height = 175;
	put_slice(h, 300, 300, 0);
	/* 18: half a request, then its cancel */
	h = hdr(18, "echo", 600);
	put_slice(h, 0, 300, 0);
	memset(&h, 0, sizeof(h));
	h.version = 1;
	h.flags = MB_FLAG_CANCEL;
	h.request_id = 18;
	h.tenant_id = 7;
	mb_proto_encode_request(&h, d);
	put_raw(d, 64);
	/* 19: whole in one datagram, then its cancel while it is queued: it stays queued, with
	 * its cancel flag set, and the pipeline is told (ops.cancelled) */
	h = hdr(19, "echo", 200);
	put_slice(h, 0, 200, 0);
	memset(&h, 0, sizeof(h));
	h.version = 1;
	h.flags = MB_FLAG_CANCEL;
	h.request_id = 19;
	h.tenant_id = 7;
	mb_proto_encode_request(&h, d);
	put_raw(d, 64);
	/* 20: half a request, a cancel of it that breaks a rule (a payload), its other half: the
	 * cancel is dropped unanswered (an answer would read as 20's) and 20 is served */
	h = hdr(20, "echo", 600);
	put_slice(h, 0, 300, 0);
	{
		struct mb_request_hdr c = {.version = 1,
					   .flags = MB_FLAG_CANCEL,
					   .request_id = 20,
					   .tenant_id = 7,
					   .payload_len = 4};
		uint8_t bad[MB_PROTO_HDR_LEN + 4] = {0};

		mb_proto_encode_request(&c, bad);
		put_raw(bad, sizeof(bad));
	}
	put_slice(h, 300, 300, 0);
	/* 21: half a request, a 40-byte cancel of it (a header cut short: truncated, and as a
	 * cancel not answered, or the answer would read as 21's), its other half: served */
	h = hdr(21, "echo", 600);
	put_slice(h, 0, 300, 0);
	{
		struct mb_request_hdr c = {
			.version = 1, .flags = MB_FLAG_CANCEL, .request_id = 21, .tenant_id = 7};

		mb_proto_encode_request(&c, d);
		put_raw(d, 40);
	}
	put_slice(h, 300, 300, 0);
	/* 23: half a request, a cancel of it with payload_len 0 and 3 bytes after its header (a
	 * payload all the same, as a payload frame is over ZeroMQ), its other half: the cancel
	 * is dropped as bad_header, not obeyed (it was: 23 answered CANCELLED, then its second
	 * half started a request that ended incomplete), and 23 is served */
	h = hdr(23, "echo", 600);
	put_slice(h, 0, 300, 0);
	{
		struct mb_request_hdr c = {
			.version = 1, .flags = MB_FLAG_CANCEL, .request_id = 23, .tenant_id = 7};
		uint8_t bad[MB_PROTO_HDR_LEN + 3] = {0};

		mb_proto_encode_request(&c, bad);
		put_raw(bad, sizeof(bad));
	}
	put_slice(h, 300, 300, 0);
	/* 22: half a request, then a 40-byte datagram of it: 22 fails with it, answered once
	 * (not a second time when its reassembly would have timed out) */
	h = hdr(22, "echo", 600);
	put_slice(h, 0, 300, 0);
	mb_proto_encode_request(&h, d);
	put_raw(d, 40);
	/* 40, 41: a model whose queue holds one: the second is OVERLOADED */
	h = hdr(40, "tiny", 100);
	put_slice(h, 0, 100, 0);
	h = hdr(41, "tiny", 100);
	put_slice(h, 0, 100, 0);

	/* not IPv4/UDP for us: IPv6, ICMP, IP fragment, bad checksum, another address */
	n = mb_udp_build_frame(f, sizeof(f), g_peer_mac, PEER_IP, 1, &g_local, 0, "x", 1);
	f[12] = 0x86, f[13] = 0xdd;
	put_frame(f, n);
	n = mb_udp_build_frame(f, sizeof(f), g_peer_mac, PEER_IP, 1, &g_local, 0, "x", 1);
	f[14 + 9] = 1, f[14 + 10] = 0, f[14 + 11] = 0; /* ICMP */
	{
		uint16_t ck = rte_ipv4_cksum((struct rte_ipv4_hdr *)(f + 14));
		memcpy(f + 14 + 10, &ck, 2);
	}
	put_frame(f, n);
	n = mb_udp_build_frame(f, sizeof(f), g_peer_mac, PEER_IP, 1, &g_local, 0, "x", 1);
	f[14 + 6] = 0x20, f[14 + 10] = 0, f[14 + 11] = 0; /* MF */
	{
		uint16_t ck = rte_ipv4_cksum((struct rte_ipv4_hdr *)(f + 14));
		memcpy(f + 14 + 10, &ck, 2);
	}
	put_frame(f, n);
	n = mb_udp_build_frame(f, sizeof(f), g_peer_mac, PEER_IP, 1, &g_local, 0, "x", 1);
	f[14 + 10] ^= 0xff; /* checksum */
	put_frame(f, n);
	{
		struct mb_udp_local other = g_local;

		other.ip = htonl(0xc0000209);
		n = mb_udp_build_frame(f, sizeof(f), g_peer_mac, PEER_IP, 1, &other, 0, "x", 1);
		put_frame(f, n);
	}
	/* an ARP request for our address */
	{
		struct rte_ether_hdr *eth = (struct rte_ether_hdr *)f;
		struct rte_arp_hdr *a = (struct rte_arp_hdr *)(eth + 1);

		memset(f, 0, 60);
		memset(&eth->dst_addr, 0xff, 6);
		memcpy(&eth->src_addr, g_peer_mac, 6);
		eth->ether_type = htons(RTE_ETHER_TYPE_ARP);
		a->arp_hardware = htons(RTE_ARP_HRD_ETHER);
		a->arp_protocol = htons(RTE_ETHER_TYPE_IPV4);
		a->arp_hlen = 6;
		a->arp_plen = 4;
		a->arp_opcode = htons(RTE_ARP_OP_REQUEST);
		memcpy(&a->arp_data.arp_sha, g_peer_mac, 6);
		a->arp_data.arp_sip = htonl(PEER_IP);
		a->arp_data.arp_tip = htonl(OUR_IP);
		put_frame(f, 60);
	}
	pcap_dump_close(g_dump);
	pcap_close(g_dead);
}

/* A second capture: datagrams of 1500 requests, one in ten of them mutated (header bytes
 * flipped, cut short, garbage, a stray cancel) and one in a hundred lost, all replayed at
 * once: the rx path must account for every frame, answer what it can, crash on nothing and
 * hand every slot back. */
static char g_fuzz_pcap[256];
static uint32_t g_fuzz_frames;

static void
write_fuzz_capture(void)
{
	uint64_t seed = 20261123;
	pcap_t *dead = pcap_open_dead(DLT_EN10MB, 65535);
	pcap_dumper_t *saved = g_dump;
	uint32_t saved_frames = g_frames;

	snprintf(g_fuzz_pcap, sizeof(g_fuzz_pcap), "/tmp/mb-udp-fuzz-%d.pcap", (int)getpid());
	g_dump = pcap_dump_open(dead, g_fuzz_pcap);
	if (g_dump == NULL)
		abort();
	for (uint32_t r = 0; r < 1500; r++) {
		uint32_t len = 100 + (uint32_t)(mb_test_rand(&seed) % 1400) * 4;
		struct mb_request_hdr h = hdr(1000 + r % 300, r % 7 ? "echo" : "tiny", len);

		for (uint32_t off = 0; off < len; off += 500) {
			uint8_t d[700];
			uint32_t slice = len - off < 500 ? len - off : 500, n, dice;

			h.frag_offset = off;
			mb_proto_encode_request(&h, d);
			memcpy(d + MB_PROTO_HDR_LEN, g_payload + off, slice);
			n = MB_PROTO_HDR_LEN + slice;
			dice = (uint32_t)(mb_test_rand(&seed) % 100);
			if (dice < 6) { /* flip 1..3 header bytes, magic kept */
				for (int k = 0; k < 1 + (int)(mb_test_rand(&seed) % 3); k++)
					d[4 + mb_test_rand(&seed) % 60] ^=
						(uint8_t)(1u << (mb_test_rand(&seed) % 8));
			} else if (dice < 8) { /* cut short */
				n = (uint32_t)(mb_test_rand(&seed) % n);
			} else if (dice < 9) { /* garbage */
				for (uint32_t k = 0; k < n; k++)
					d[k] = (uint8_t)mb_test_rand(&seed);
			} else if (dice < 10) { /* a stray cancel */
				struct mb_request_hdr c = {.version = 1,
							   .flags = MB_FLAG_CANCEL,
							   .request_id = h.request_id,
							   .tenant_id = h.tenant_id};

				mb_proto_encode_request(&c, d);
				n = MB_PROTO_HDR_LEN;
			}
			if (mb_test_rand(&seed) % 100 == 0) /* a datagram lost on the way */
				continue;
			put_datagram_port((uint16_t)(40000 + r % 5), 7000, 0, d, n);
			g_fuzz_frames++;
		}
	}
	pcap_dump_close(g_dump);
	pcap_close(dead);
	g_dump = saved;
	g_frames = saved_frames;
}

/* The third capture, for the port with udp.sources. */
static char g_src_pcap[256];
static uint32_t g_src_frames;
static uint8_t g_forged[8192]; /* a forger's bytes: none of them may reach a request */

static struct mb_request_hdr
hdr_t(uint64_t id, uint32_t tenant, uint32_t payload_len)
{
	struct mb_request_hdr h = hdr(id, "echo", payload_len);

	h.tenant_id = tenant;
	return h;
}

/* One datagram of request @p h from @p src_ip: its slice [off, off + len) of g_payload
 * (offset by id, as put_slice()), or of @p bytes. */
static void
put_slice_from(uint32_t src_ip, struct mb_request_hdr h, uint32_t off, uint32_t len,
	       const uint8_t *bytes)
{
	uint8_t d[2048];

	h.frag_offset = off;
	mb_proto_encode_request(&h, d);
	memcpy(d + MB_PROTO_HDR_LEN,
	       bytes != NULL ? bytes + off : g_payload + (h.request_id % 64) + off, len);
	put_datagram_from(src_ip, 40000, 7000, 0, d, MB_PROTO_HDR_LEN + len);
}

static void
put_cancel_from(uint32_t src_ip, uint64_t id, uint32_t tenant)
{
	struct mb_request_hdr h = {
		.version = 1, .flags = MB_FLAG_CANCEL, .request_id = id, .tenant_id = tenant};
	uint8_t d[MB_PROTO_HDR_LEN];

	mb_proto_encode_request(&h, d);
	put_datagram_from(src_ip, 40000, 7000, 0, d, sizeof(d));
}

#define SRC_DROPPED 13 /* the datagrams below that udp.sources drops */

static void
write_src_capture(void)
{
	pcap_t *dead = pcap_open_dead(DLT_EN10MB, 65535);
	pcap_dumper_t *saved = g_dump;
	uint32_t saved_frames = g_frames;
	struct mb_request_hdr h;
	uint8_t d[256];

	memset(g_forged, 0xee, sizeof(g_forged));
	snprintf(g_src_pcap, sizeof(g_src_pcap), "/tmp/mb-udp-src-%d.pcap", (int)getpid());
	g_dump = pcap_dump_open(dead, g_src_pcap);
	if (g_dump == NULL)
		abort();
	g_frames = 0;
	/* 1-4 served: tenant 7 from either of its prefixes, tenant 9 from its own, tenant 0 */
	put_slice_from(PEER_IP, hdr_t(1, 7, 500), 0, 500, NULL);
	put_slice_from(ALT_IP, hdr_t(2, 7, 500), 0, 500, NULL);
	put_slice_from(T9_IP, hdr_t(3, 9, 500), 0, 500, NULL);
	put_slice_from(PEER_IP, hdr_t(4, 0, 500), 0, 500, NULL);
	/* 20-23 dropped: a foreign address; a tenant with no entry; tenant 9 from tenant 7's
	 * address; just outside tenant 7's /28 */
	put_slice_from(FOREIGN_IP, hdr_t(20, 7, 500), 0, 500, NULL);
	put_slice_from(PEER_IP, hdr_t(21, 8, 500), 0, 500, NULL);
	put_slice_from(PEER_IP, hdr_t(22, 9, 500), 0, 500, NULL);
	put_slice_from(OUTSIDE_IP, hdr_t(23, 7, 500), 0, 500, NULL);
	/* 24-26 dropped, where the path would otherwise answer: a bad header (version 2), a
	 * truncated header, the first slice of a request that never completes (it would
	 * expire and be answered) */
	h = hdr_t(24, 7, 100);
	h.version = 2;
	put_slice_from(FOREIGN_IP, h, 0, 100, NULL);
	h = hdr_t(25, 7, 100);
	mb_proto_encode_request(&h, d);
	put_datagram_from(FOREIGN_IP, 40000, 7000, 0, d, 40);
	put_slice_from(FOREIGN_IP, hdr_t(26, 7, 600), 0, 300, NULL);
	/* the magic but too short for a tenant, from an allowed address: dropped */
	h = hdr_t(27, 7, 100);
	mb_proto_encode_request(&h, d);
	put_datagram_from(PEER_IP, 40000, 7000, 0, d, 18);
	/* not our protocol at all, from a foreign address: garbage, as without a list */
	put_datagram_from(FOREIGN_IP, 40000, 7000, 0, "GET / HTTP/1.1\r\n\r\n", 18);
	/* 5: three slices from its sender, with forged ones in between from a foreign address
	 * (same tenant, id and ports): a slice of other bytes, the whole request with other
	 * bytes, a slice whose header conflicts. All dropped; 5 completes with its own bytes,
	 * once. */
	h = hdr_t(5, 7, 900);
	put_slice_from(PEER_IP, h, 0, 300, NULL);
	put_slice_from(FOREIGN_IP, h, 300, 300, g_forged);
	put_slice_from(FOREIGN_IP, h, 0, 900, g_forged);
	put_slice_from(PEER_IP, h, 300, 300, NULL);
	h.payload_len = 1200;
	h.height = 300;
	put_slice_from(FOREIGN_IP, h, 600, 300, g_forged);
	put_slice_from(PEER_IP, hdr_t(5, 7, 900), 600, 300, NULL);
	/* 6: half a request, a foreign cancel of it (dropped), its other half: served */
	h = hdr_t(6, 7, 600);
	put_slice_from(PEER_IP, h, 0, 300, NULL);
	put_cancel_from(FOREIGN_IP, 6, 7);
	put_slice_from(PEER_IP, h, 300, 300, NULL);
	/* 7: whole, then a foreign cancel while it is queued (dropped): not cancelled */
	put_slice_from(PEER_IP, hdr_t(7, 7, 200), 0, 200, NULL);
	put_cancel_from(FOREIGN_IP, 7, 7);
	/* 8: half a request, then its cancel from its own address: it passes, CANCELLED */
	put_slice_from(PEER_IP, hdr_t(8, 7, 600), 0, 300, NULL);
	put_cancel_from(PEER_IP, 8, 7);
	pcap_dump_close(g_dump);
	pcap_close(dead);
	g_src_frames = g_frames;
	g_dump = saved;
	g_frames = saved_frames;
}

/*
 * The fourth capture, for a port with udp.max_requests 16: 16 requests that never complete
 * take every request slot; then refusals, each answered through one of the
 * MB_UDP_ANSWER_SLOTS slots kept for answers, until those are taken too.
 */
#define FULL_SLOTS 16
#define FULL_FIRST_REFUSED (FULL_SLOTS + 1)		      /* 17: OVERLOADED */
#define FULL_SHORT (FULL_SLOTS + 2)			      /* 18: a 40-byte datagram */
#define FULL_LAST_ANSWERED (FULL_SLOTS + MB_UDP_ANSWER_SLOTS) /* 48 */
static char g_full_pcap[256];
static uint32_t g_full_frames;

static void
write_full_capture(void)
{
	pcap_t *dead = pcap_open_dead(DLT_EN10MB, 65535);
	pcap_dumper_t *saved = g_dump;
	uint32_t saved_frames = g_frames;
	struct mb_request_hdr h;
	uint8_t d[MB_PROTO_HDR_LEN];

	snprintf(g_full_pcap, sizeof(g_full_pcap), "/tmp/mb-udp-full-%d.pcap", (int)getpid());
	g_dump = pcap_dump_open(dead, g_full_pcap);
	if (g_dump == NULL)
		abort();
	g_frames = 0;
	/* 1-16: half of each: every request slot taken, until they time out */
	for (uint64_t id = 1; id <= FULL_SLOTS; id++)
		put_slice(hdr(id, "echo", 600), 0, 300, 0);
	/* 17-48: 32 refusals, the slots kept for answers: whole requests finding no slot
	 * (OVERLOADED), and at 18 a header cut short (BAD_REQUEST) */
	for (uint64_t id = FULL_FIRST_REFUSED; id <= FULL_LAST_ANSWERED; id++) {
		h = hdr(id, "echo", 100);
		if (id == FULL_SHORT) {
			mb_proto_encode_request(&h, d);
			put_raw(d, 40);
		} else {
			put_slice(h, 0, 100, 0);
		}
	}
	/* 49, 50: every slot held (the test releases nothing until it has read them all): a
	 * whole request and a bad header (version 2), neither answerable, both counted */
	put_slice(hdr(49, "echo", 100), 0, 100, 0);
	h = hdr(50, "echo", 100);
	h.version = 2;
	put_slice(h, 0, 100, 0);
	pcap_dump_close(g_dump);
	pcap_close(dead);
	g_full_frames = g_frames;
	g_dump = saved;
	g_frames = saved_frames;
}

/* ---- the stand-in pipeline ---- */

struct fake {
	struct mb_ring *echo, *tiny, *results;
	atomic_int unadmitted, cancels, closed, odd_calls;
};

static struct fake g_fake;

static enum mb_status
f_admit(void *ctx, uint32_t queue, struct mb_request *req, char *reason, size_t len)
{
	(void)ctx;
	if (queue != 0 || req->transport != MB_TRANSPORT_UDP) /* checked by the test */
		atomic_fetch_add(&g_fake.odd_calls, 1);
	if (strcmp(req->hdr.model, "echo") == 0 || strcmp(req->hdr.model, "tiny") == 0) {
		req->model = req->hdr.model[0] == 'e' ? 0 : 1;
		return MB_STATUS_OK;
	}
	snprintf(reason, len, "model: '%s' is not served here", req->hdr.model);
	return MB_STATUS_UNKNOWN_MODEL;
}

static struct mb_ring *
f_ring(void *ctx, uint32_t m)
{
	(void)ctx;
	return m == 0 ? g_fake.echo : g_fake.tiny;
}

static void
f_unadmit(void *ctx, struct mb_request *req)
{
	(void)ctx;
	(void)req;
	atomic_fetch_add(&g_fake.unadmitted, 1);
}

static void
f_cancelled(void *ctx, struct mb_request *req)
{
	(void)ctx;
	(void)req;
	atomic_fetch_add(&g_fake.cancels, 1);
}

static void
f_closed(void *ctx)
{
	(void)ctx;
	atomic_fetch_add(&g_fake.closed, 1);
}

static struct mb_ring *
ring(const char *name, uint32_t cap)
{
	struct mb_ring_opts ro;
	struct mb_ring *r = NULL;

	mb_ring_opts_init(&ro);
	ro.name = name;
	ro.capacity = cap;
	ro.prod_sync = MB_RING_SYNC_MT_HTS;
	ro.cons_sync = MB_RING_SYNC_ST;
	if (mb_ring_create(&ro, &r) != 0) {
		fprintf(stderr, "cannot create ring %s\n", name);
		exit(99);
	}
	return r;
}

/* ---- the test ---- */

struct seen {
	int status;  /* -1: not answered; 100: queued */
	bool cancel; /* queued with its cancel flag set */
	char reason[MB_PROTO_REASON_MAX];
};

static struct seen g_seen[64];

static void
take(struct mb_ring *r, bool queued)
{
	void *objs[64];
	unsigned int n;

	while ((n = mb_ring_dequeue_burst(r, objs, 64)) != 0) {
		for (unsigned int i = 0; i < n; i++) {
			struct mb_request *req = objs[i];
			uint64_t id = queued ? req->hdr.request_id : req->resp.request_id;

			CU_ASSERT_FATAL(id < 64);
			CU_ASSERT_EQUAL(g_seen[id].status, -1); /* exactly once */
			if (queued) {
				g_seen[id].status = 100;
				g_seen[id].cancel = atomic_load(&req->cancel);
				CU_ASSERT_EQUAL(req->payload_len, req->hdr.payload_len);
				CU_ASSERT_EQUAL(
					memcmp(req->payload, g_payload + id % 64, req->payload_len),
					0);
				mb_request_answer(req, MB_STATUS_OK, "done");
			} else {
				g_seen[id].status = req->resp.status;
				snprintf(g_seen[id].reason, sizeof(g_seen[id].reason), "%s",
					 req->reason);
			}
			CU_ASSERT_PTR_NOT_NULL_FATAL(req->release);
			req->release(req); /* as the egress does */
		}
	}
}

static bool
wait_for(bool (*cond)(struct mb_udp *), struct mb_udp *u, int ms)
{
	for (int i = 0; i < ms; i++) {
		if (cond(u))
			return true;
		usleep(1000);
	}
	return cond(u);
}

static bool
all_read(struct mb_udp *u)
{
	struct mb_udp_stats st;

	mb_udp_stats(u, &st);
	return st.packets == g_frames;
}

static bool
two_expired(struct mb_udp *u)
{
	struct mb_udp_stats st;

	mb_udp_stats(u, &st);
	return st.expired == 2;
}

static bool
closed(struct mb_udp *u)
{
	return mb_udp_closed(u) && mb_udp_outstanding(u) == 0;
}

static struct mb_udp *g_u;
static pthread_t g_rx;

/* The rx thread of port @p arg (a struct mb_udp *, one queue), until its drain is over. */
static void *
rx_main(void *arg)
{
	mb_udp_rx_run(arg, 0);
	return NULL;
}
static struct mb_cancel *g_drain, *g_abort;
static struct mb_config g_cfg;

static void
expect(uint64_t id, int status, const char *reason_part)
{
	if (g_seen[id].status != status)
		printf("\n    id %" PRIu64 ": status %d, expected %d (%s)", id, g_seen[id].status,
		       status, g_seen[id].reason);
	CU_ASSERT_EQUAL(g_seen[id].status, status);
	if (reason_part != NULL) {
		if (strstr(g_seen[id].reason, reason_part) == NULL)
			printf("\n    id %" PRIu64 ": reason \"%s\" lacks \"%s\"", id,
			       g_seen[id].reason, reason_part);
		CU_ASSERT_PTR_NOT_NULL(strstr(g_seen[id].reason, reason_part));
	}
}

static void
test_replay(void)
{
	struct mb_udp_stats st;

	for (int i = 0; i < 64; i++)
		g_seen[i].status = -1;
	CU_ASSERT_EQUAL_FATAL(pthread_create(&g_rx, NULL, rx_main, g_u), 0);
	CU_ASSERT_FATAL(wait_for(all_read, g_u, 10000));
	/* ids 6 and 17 expire after the 100 ms reassembly timeout */
	CU_ASSERT(wait_for(two_expired, g_u, 5000));
	take(g_fake.echo, true);
	take(g_fake.tiny, true);
	take(g_fake.results, false);

	expect(1, 100, NULL);
	expect(2, 100, NULL);
	expect(3, 100, NULL);
	expect(4, 100, NULL);
	expect(5, 100, NULL);
	expect(14, 100, NULL);
	expect(19, 100, NULL);
	expect(20, 100, NULL);
	expect(21, 100, NULL);
	expect(23, 100, NULL);
	CU_ASSERT(!g_seen[20].cancel && !g_seen[21].cancel && !g_seen[23].cancel);
	CU_ASSERT(g_seen[19].cancel);
	CU_ASSERT(!g_seen[1].cancel && !g_seen[14].cancel);
	expect(40, 100, NULL);
	expect(6, MB_STATUS_BAD_REQUEST, "incomplete: 600 of 900 payload bytes");
	expect(7, MB_STATUS_BAD_REQUEST, "shorter than the 64-byte request header");
	expect(10, MB_STATUS_BAD_REQUEST, "version");
	expect(11, MB_STATUS_UNKNOWN_MODEL, "'nosuch'");
	expect(13, MB_STATUS_BAD_REQUEST, "runs past payload_len 100");
	expect(17, MB_STATUS_BAD_REQUEST, "incomplete: 300 of 600");
	expect(18, MB_STATUS_CANCELLED, "cancelled by the client");
	expect(22, MB_STATUS_BAD_REQUEST, "shorter than the 64-byte request header");
	expect(41, MB_STATUS_OVERLOADED, "queue is full");
	for (int i = 0; i < 64; i++) /* and nothing else */
		if (strchr("\x01\x02\x03\x04\x05\x06\x07\x0a\x0b\x0d\x0e\x11\x12\x13\x14\x15\x16"
			   "\x17\x28\x29",
			   i) == NULL)
			CU_ASSERT_EQUAL(g_seen[i].status, -1);
	CU_ASSERT_EQUAL(atomic_load(&g_fake.unadmitted), 1); /* 41 */
	CU_ASSERT_EQUAL(atomic_load(&g_fake.cancels), 1);    /* 19 */
	CU_ASSERT_EQUAL(atomic_load(&g_fake.odd_calls), 0);

	mb_udp_stats(g_u, &st);
	CU_ASSERT_EQUAL(st.packets, g_frames);
	CU_ASSERT_EQUAL(st.dropped[MB_UDP_DROP_DUPLICATE], 4);
	CU_ASSERT_EQUAL(st.dropped[MB_UDP_DROP_GARBAGE], 1);
	CU_ASSERT_EQUAL(st.dropped[MB_UDP_DROP_WRONG_PORT], 1);
	CU_ASSERT_EQUAL(st.dropped[MB_UDP_DROP_TRUNCATED], 3);	/* 7, 21's cancel, 22's slice */
	CU_ASSERT_EQUAL(st.dropped[MB_UDP_DROP_BAD_HEADER], 4); /* 20's, 23's cancels among them */
	CU_ASSERT_EQUAL(st.dropped[MB_UDP_DROP_CONFLICT], 1);
	CU_ASSERT_EQUAL(st.dropped[MB_UDP_DROP_OTHER_PROTOCOL], 2);
	CU_ASSERT_EQUAL(st.dropped[MB_UDP_DROP_IP_FRAGMENT], 1);
	CU_ASSERT_EQUAL(st.dropped[MB_UDP_DROP_MALFORMED_IP], 1);
	CU_ASSERT_EQUAL(st.dropped[MB_UDP_DROP_NOT_FOR_US], 1);
	CU_ASSERT_EQUAL(st.dropped[MB_UDP_DROP_NO_SLOT], 0);
	CU_ASSERT_EQUAL(st.arp_replies, 1);
	CU_ASSERT_EQUAL(st.queued, 11);
	CU_ASSERT_EQUAL(st.expired, 2);
	CU_ASSERT_EQUAL(st.cancelled, 2);
	CU_ASSERT_EQUAL(st.cancelled_reasm, 1); /* 18 (19 was queued) */
	/* every request has one outcome (mediabatch_rx_requests_total{outcome}): the 20 ids
	 * answered; expired and cancelled-while-reassembled were in none */
	CU_ASSERT_EQUAL(st.queued + st.refused + st.expired + st.cancelled_reasm, 20);
	CU_ASSERT_EQUAL(st.reassembling, 0);

	/* drain: the rx thread closes, everything came back */
	mb_cancel_cancel(g_drain);
	CU_ASSERT(wait_for(closed, g_u, 5000));
	pthread_join(g_rx, NULL);
	CU_ASSERT_EQUAL(atomic_load(&g_fake.closed), 1);
	CU_ASSERT_EQUAL(mb_ring_count(g_fake.results), 0);
}

static void
test_arp_reply_sent(void)
{
	char errbuf[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *ph;
	const u_char *data;
	pcap_t *p;
	int n = 0, arp = 0;

	mb_udp_destroy(&g_u); /* closes the port, which flushes the tx capture */
	p = pcap_open_offline(g_tx_pcap, errbuf);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	while (pcap_next_ex(p, &ph, &data) == 1) {
		const struct rte_ether_hdr *eth = (const void *)data;
		const struct rte_arp_hdr *a = (const void *)(eth + 1);

		n++;
		if (ph->caplen >= 42 && eth->ether_type == htons(RTE_ETHER_TYPE_ARP) &&
		    a->arp_opcode == htons(RTE_ARP_OP_REPLY) &&
		    a->arp_data.arp_sip == htonl(OUR_IP) && a->arp_data.arp_tip == htonl(PEER_IP) &&
		    memcmp(&eth->dst_addr, g_peer_mac, 6) == 0)
			arp++;
	}
	pcap_close(p);
	CU_ASSERT_EQUAL(n, 1); /* the port sends nothing but ARP replies */
	CU_ASSERT_EQUAL(arp, 1);
}

static struct mb_udp *g_fuzz_u;
static struct mb_cancel *g_fuzz_drain;

/* The stand-in egress for the fuzz run: release whatever comes, count it. */
static uint64_t
release_all(void)
{
	struct mb_ring *rings[3] = {g_fake.echo, g_fake.tiny, g_fake.results};
	void *objs[64];
	uint64_t total = 0;

	for (int r = 0; r < 3; r++) {
		unsigned int n;

		while ((n = mb_ring_dequeue_burst(rings[r], objs, 64)) != 0) {
			for (unsigned int i = 0; i < n; i++)
				((struct mb_request *)objs[i])->release(objs[i]);
			total += n;
		}
	}
	return total;
}

static void
test_fuzz(void)
{
	struct mb_udp_stats st;
	uint64_t handled = 0, dropped = 0;
	pthread_t t;
	int i;

	CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, rx_main, g_fuzz_u), 0);
	/* every frame read, and nothing left being reassembled (timeout 100 ms) */
	for (i = 0; i < 20000; i++) {
		handled += release_all();
		mb_udp_stats(g_fuzz_u, &st);
		if (st.packets == g_fuzz_frames && st.reassembling == 0)
			break;
		usleep(1000);
	}
	CU_ASSERT_EQUAL(st.packets, g_fuzz_frames);
	CU_ASSERT_EQUAL(st.reassembling, 0);
	mb_cancel_cancel(g_fuzz_drain);
	for (i = 0; i < 10000 && !(mb_udp_closed(g_fuzz_u) && mb_udp_outstanding(g_fuzz_u) == 0);
	     i++) {
		handled += release_all();
		usleep(1000);
	}
	CU_ASSERT(mb_udp_closed(g_fuzz_u));
	CU_ASSERT_EQUAL(mb_udp_outstanding(g_fuzz_u), 0);
	pthread_join(t, NULL);
	mb_udp_stats(g_fuzz_u, &st);
	for (int w = 0; w < MB_UDP_DROP_COUNT; w++)
		dropped += st.dropped[w];
	printf("\n    %u frames: %" PRIu64 " requests queued, %" PRIu64 " answered by the rx path "
	       "(%" PRIu64 " expired), %" PRIu64 " frames dropped, %" PRIu64 " released",
	       g_fuzz_frames, st.queued, st.answered, st.expired, dropped, handled);
	/* every request handed on came back through the egress, and the mix did exercise it */
	CU_ASSERT_EQUAL(handled, st.queued + st.answered);
	for (int w = 0; w < MB_UDP_DROP_COUNT; w++)
		if (st.dropped[w] != 0)
			printf("\n      %s: %" PRIu64, mb_udp_drop_name((enum mb_udp_drop)w),
			       st.dropped[w]);
	/* The capture reuses each request id 300 requests later (same source port): a request
	 * whose namesake is still held by the stand-in egress is a duplicate, as protocol.md
	 * says, and one whose namesake came back is new. So how many are queued depends on how
	 * far the rx thread runs ahead of this thread's releases: about 400 when they keep
	 * pace, 65 when the rx thread reads the whole capture before anything is released (a
	 * loaded machine; a 0.5 s sleep before the first release gives it every time). */
	CU_ASSERT(st.queued >= 60);
	CU_ASSERT(st.dropped[MB_UDP_DROP_BAD_HEADER] > 0);
	CU_ASSERT(st.dropped[MB_UDP_DROP_GARBAGE] > 0);
	CU_ASSERT(st.expired > 0);
	CU_ASSERT_EQUAL(atomic_load(&g_fake.odd_calls), 0);
}

/* ---- udp.sources ---- */

#define SRC_FILLERS 5000 /* other tenants in the list, so that the table probes */

static struct mb_udp *g_src_u;
static struct mb_cancel *g_src_drain;
static struct mb_metrics *g_src_metrics;
static struct mb_udp_source_config g_sources[SRC_FILLERS + 3];
static struct mb_prefix g_prefixes[2 * SRC_FILLERS + 4];

static struct mb_prefix
prefix(uint32_t addr, int bits)
{
	uint32_t mask = bits == 0 ? 0 : ~0u << (32 - bits);

	return (struct mb_prefix){.addr = htonl(addr & mask), .mask = htonl(mask)};
}

/* Tenants 7 (two prefixes), 9 and 0 among SRC_FILLERS others (one prefix, or two for
 * every fifth; none of them 0, 7, 8 or 9), in an order that puts 7's prefixes after others in the
 * table's extra list. Returns the count. */
static unsigned int
build_sources(void)
{
	unsigned int n = 0, np = 0;
	uint64_t seed = 42;

	for (unsigned int i = 0; i < SRC_FILLERS; i++) {
		struct mb_udp_source_config *c = &g_sources[n++];

		/* random high bits, unique low ones (100 + i < 2^13): the table probes */
		c->tenant = (uint32_t)mb_test_rand(&seed) << 13 | (100 + i);
		c->prefixes = &g_prefixes[np];
		c->n_prefixes = i % 5 == 0 ? 2 : 1;
		for (unsigned int k = 0; k < c->n_prefixes; k++)
			g_prefixes[np++] = prefix(0xac100000u + i * 2 + k, 32); /* 172.16/16 */
		if (i == SRC_FILLERS / 2) {
			c = &g_sources[n++];
			c->tenant = 7;
			c->prefixes = &g_prefixes[np];
			c->n_prefixes = 2;
			g_prefixes[np++] = prefix(PEER_IP, 28);
			g_prefixes[np++] = prefix(ALT_IP, 32);
		}
	}
	g_sources[n++] = (struct mb_udp_source_config){
		.tenant = 9, .prefixes = &g_prefixes[np], .n_prefixes = 1};
	g_prefixes[np++] = prefix(T9_IP, 24);
	g_sources[n++] = (struct mb_udp_source_config){
		.tenant = 0, .prefixes = &g_prefixes[np], .n_prefixes = 1};
	g_prefixes[np++] = prefix(PEER_IP, 24);
	return n;
}

static bool
src_all_read(struct mb_udp *u)
{
	struct mb_udp_stats st;

	mb_udp_stats(u, &st);
	return st.packets == g_src_frames;
}

static void
test_sources(void)
{
	struct mb_udp_stats st;
	char *text = NULL, line[128];
	size_t len;
	pthread_t t;
	int cancels = atomic_load(&g_fake.cancels);

	for (int i = 0; i < 64; i++)
		g_seen[i] = (struct seen){.status = -1};
	CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, rx_main, g_src_u), 0);
	CU_ASSERT_FATAL(wait_for(src_all_read, g_src_u, 10000));
	mb_udp_stats(g_src_u, &st);
	/* Nothing dropped started a request: none is left being reassembled, none expires
	 * (26's first slice would have, 100 ms on, with an answer). */
	CU_ASSERT_EQUAL(st.reassembling, 0);
	usleep(250 * 1000);
	take(g_fake.echo, true); /* checks each payload against the sender's own bytes */
	take(g_fake.results, false);

	for (uint64_t id = 1; id <= 7; id++)
		expect(id, 100, NULL);
	for (uint64_t id = 1; id <= 7; id++)
		CU_ASSERT(!g_seen[id].cancel);
	expect(8, MB_STATUS_CANCELLED, "cancelled by the client");
	for (int i = 9; i < 64; i++) /* nothing else: no answer to a dropped datagram */
		CU_ASSERT_EQUAL(g_seen[i].status, -1);
	CU_ASSERT_EQUAL(g_seen[0].status, -1);
	CU_ASSERT_EQUAL(atomic_load(&g_fake.cancels), cancels); /* 7 was not cancelled */

	mb_udp_stats(g_src_u, &st);
	CU_ASSERT_EQUAL(st.packets, g_src_frames);
	CU_ASSERT_EQUAL(st.dropped[MB_UDP_DROP_SOURCE], SRC_DROPPED);
	CU_ASSERT_EQUAL(st.dropped[MB_UDP_DROP_GARBAGE], 1);
	for (int w = 0; w < MB_UDP_DROP_COUNT; w++)
		if (w != MB_UDP_DROP_SOURCE && w != MB_UDP_DROP_GARBAGE && st.dropped[w] != 0) {
			printf("\n    unexpected drops: %s %" PRIu64,
			       mb_udp_drop_name((enum mb_udp_drop)w), st.dropped[w]);
			CU_FAIL("a drop other than source or garbage");
		}
	CU_ASSERT_EQUAL(st.queued, 7);
	CU_ASSERT_EQUAL(st.answered, 1);
	CU_ASSERT_EQUAL(st.refused, 0);
	CU_ASSERT_EQUAL(st.expired, 0);
	CU_ASSERT_EQUAL(st.cancelled, 1);
	CU_ASSERT_EQUAL(st.reassembling, 0);

	/* the series operators alert on */
	CU_ASSERT_STRING_EQUAL(mb_udp_drop_name(MB_UDP_DROP_SOURCE), "source");
	CU_ASSERT_EQUAL_FATAL(mb_metrics_render(g_src_metrics, &text, &len), 0);
	snprintf(line, sizeof(line), "mediabatch_rx_dropped_total{reason=\"source\"} %d\n",
		 SRC_DROPPED);
	if (strstr(text, line) == NULL)
		printf("\n    no \"%s\" in /metrics", line);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, line));
	free(text);

	mb_cancel_cancel(g_src_drain);
	CU_ASSERT(wait_for(closed, g_src_u, 5000));
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(mb_ring_count(g_fake.results), 0);
}

/* ---- every slot taken ---- */

static struct mb_udp *g_full_u;
static struct mb_cancel *g_full_drain;
static struct mb_metrics *g_full_metrics;

static bool
full_all_read(struct mb_udp *u)
{
	struct mb_udp_stats st;

	mb_udp_stats(u, &st);
	return st.packets == g_full_frames && st.expired == FULL_SLOTS;
}

static void
test_full(void)
{
	struct mb_udp_stats st;
	char *text = NULL;
	size_t len;
	pthread_t t;

	for (int i = 0; i < 64; i++)
		g_seen[i] = (struct seen){.status = -1};
	CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, rx_main, g_full_u), 0);
	/* every frame read and the 16 halves timed out (100 ms), nothing released meanwhile */
	CU_ASSERT_FATAL(wait_for(full_all_read, g_full_u, 10000));
	take(g_fake.echo, true);
	take(g_fake.results, false);

	for (uint64_t id = 1; id <= FULL_SLOTS; id++)
		expect(id, MB_STATUS_BAD_REQUEST, "incomplete: 300 of 600 payload bytes");
	for (uint64_t id = FULL_FIRST_REFUSED; id <= FULL_LAST_ANSWERED; id++)
		if (id != FULL_SHORT)
			expect(id, MB_STATUS_OVERLOADED, "(udp.max_requests); retry later");
	expect(FULL_SHORT, MB_STATUS_BAD_REQUEST, "shorter than the 64-byte request header");
	CU_ASSERT_EQUAL(g_seen[49].status, -1);
	CU_ASSERT_EQUAL(g_seen[50].status, -1);

	mb_udp_stats(g_full_u, &st);
	CU_ASSERT_EQUAL(st.dropped[MB_UDP_DROP_NO_SLOT], MB_UDP_ANSWER_SLOTS); /* 17, 19-49 */
	CU_ASSERT_EQUAL(st.dropped[MB_UDP_DROP_TRUNCATED], 1);
	CU_ASSERT_EQUAL(st.dropped[MB_UDP_DROP_BAD_HEADER], 1);
	CU_ASSERT_EQUAL(st.unanswered, 2);
	CU_ASSERT_EQUAL(st.answered, FULL_SLOTS + MB_UDP_ANSWER_SLOTS);
	CU_ASSERT_EQUAL(st.queued, 0);
	CU_ASSERT_EQUAL_FATAL(mb_metrics_render(g_full_metrics, &text, &len), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "mediabatch_rx_unanswered_total 2\n"));
	free(text);

	mb_cancel_cancel(g_full_drain);
	CU_ASSERT(wait_for(closed, g_full_u, 5000));
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(mb_ring_count(g_fake.results), 0);
}

/* Lists mb_udp_create() must refuse, before it touches a port, naming the entry. */
static void
test_sources_refused(void)
{
	struct mb_prefix ok = prefix(PEER_IP, 24), host_bits = ok;
	struct mb_udp_source_config dup[2] = {{.tenant = 7, .prefixes = &ok, .n_prefixes = 1},
					      {.tenant = 7, .prefixes = &ok, .n_prefixes = 1}};
	struct mb_udp_source_config none = {.tenant = 5, .prefixes = &ok, .n_prefixes = 0};
	struct mb_udp_source_config bad = {.tenant = 5, .prefixes = &host_bits, .n_prefixes = 1};
	struct mb_udp_opts uo = {0};
	struct mb_udp *u = NULL;
	char err[256];

	host_bits.addr = htonl(PEER_IP);
	uo.cfg = &g_cfg;
	uo.results = g_fake.results;
	uo.drain = g_src_drain;
	uo.ops = (struct mb_udp_ops){.admit = f_admit,
				     .model_ring = f_ring,
				     .unadmit = f_unadmit,
				     .cancelled = f_cancelled};
	uo.sources = dup;
	uo.n_sources = 2;
	CU_ASSERT_EQUAL(mb_udp_create(&uo, &u, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "tenant 7 is listed twice"));
	uo.sources = &none;
	uo.n_sources = 1;
	CU_ASSERT_EQUAL(mb_udp_create(&uo, &u, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "udp.sources[0]: tenant 5 has no prefixes"));
	uo.sources = &bad;
	CU_ASSERT_EQUAL(mb_udp_create(&uo, &u, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "udp.sources[0].prefixes[0]: host bits set"));
	CU_ASSERT_PTR_NULL(u);
}

static const struct mb_test_case cases[] = {
	{"replay: exactly the expected queues, answers and drops", test_replay},
	{"the ARP reply left on the port", test_arp_reply_sent},
	{"fuzz: 1500 requests, 1 datagram in 10 mutated: all accounted, no slot lost", test_fuzz},
	{"udp.sources: allowed prefixes served; foreign sources, unlisted tenants, forged "
	 "slices and cancels dropped as 'source', never answered",
	 test_sources},
	{"udp.sources: duplicate tenants, empty lists, host bits refused", test_sources_refused},
	{"every request slot taken: refusals answered OVERLOADED through the slots kept for "
	 "answers; past those, counted unanswered",
	 test_full},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"udp ingest on net_pcap", NULL, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};
	static struct mb_udp_port_config port;
	static struct mb_udp_port_config fport, sport, xport;
	static struct mb_config fcfg, scfg, xcfg;
	char vdev[600], vdev2[600], vdev3[600], vdev4[600], err[512];
	const char *extra[4] = {vdev, vdev2, vdev3, vdev4};
	struct mb_eal_opts eo;
	struct mb_udp_opts uo = {0};
	int rc;

	write_capture();
	write_fuzz_capture();
	write_src_capture();
	write_full_capture();
	snprintf(vdev, sizeof(vdev), "--vdev=net_pcap0,rx_pcap=%s,tx_pcap=%s", g_rx_pcap,
		 g_tx_pcap);
	snprintf(vdev2, sizeof(vdev2), "--vdev=net_pcap1,rx_pcap=%s,tx_pcap=/dev/null",
		 g_fuzz_pcap);
	snprintf(vdev3, sizeof(vdev3), "--vdev=net_pcap2,rx_pcap=%s,tx_pcap=/dev/null", g_src_pcap);
	snprintf(vdev4, sizeof(vdev4), "--vdev=net_pcap3,rx_pcap=%s,tx_pcap=/dev/null",
		 g_full_pcap);
	mb_eal_opts_init(&eo);
	eo.name = "udp_pcap_test";
	eo.mem_mb = 256;
	eo.extra = extra;
	eo.n_extra = 4;
	if (mb_eal_init(&eo) != 0) {
		fprintf(stderr, "EAL with %s failed\n", vdev);
		return 99;
	}
	mb_config_defaults(&g_cfg);
	snprintf(port.device, sizeof(port.device), "net_pcap0");
	port.address = htonl(OUR_IP);
	snprintf(port.address_text, sizeof(port.address_text), "192.0.2.1");
	port.rx_queues = 1;
	g_cfg.udp_ports = &port;
	g_cfg.n_udp_ports = 1;
	g_cfg.udp_reassembly_timeout_ms = 100;
	g_cfg.udp_max_requests = 64;
	g_cfg.udp_buffer_mb = 4;
	g_cfg.udp_mbufs = 2047;
	g_cfg.max_payload_bytes = 65536;
	g_fake.echo = ring("t_echo", 64);
	g_fake.tiny = ring("t_tiny", 1);
	g_fake.results = ring("t_results", 1024); /* every slot fits, as in the service */
	if (mb_cancel_create(NULL, &g_drain) < 0 || mb_cancel_create(NULL, &g_abort) < 0)
		return 99;
	uo.cfg = &g_cfg;
	uo.results = g_fake.results;
	uo.drain = g_drain;
	uo.abort = g_abort;
	uo.ops = (struct mb_udp_ops){
		.admit = f_admit,
		.model_ring = f_ring,
		.unadmit = f_unadmit,
		.cancelled = f_cancelled,
		.closed = f_closed,
	};
	rc = mb_udp_create(&uo, &g_u, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "mb_udp_create: %s\n", err);
		return 99;
	}
	/* the fuzz port: a flood of broken requests fills its slots and buffers, so those
	 * limits are hit too */
	fcfg = g_cfg;
	fport = port;
	snprintf(fport.device, sizeof(fport.device), "net_pcap1");
	fcfg.udp_ports = &fport;
	fcfg.udp_max_requests = 512;
	fcfg.udp_buffer_mb = 16;
	if (mb_cancel_create(NULL, &g_fuzz_drain) < 0)
		return 99;
	uo.cfg = &fcfg;
	uo.drain = g_fuzz_drain;
	rc = mb_udp_create(&uo, &g_fuzz_u, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "mb_udp_create (fuzz): %s\n", err);
		return 99;
	}
	/* the port with udp.sources: the list is copied, so it may go at once */
	scfg = g_cfg;
	sport = port;
	snprintf(sport.device, sizeof(sport.device), "net_pcap2");
	scfg.udp_ports = &sport;
	if (mb_cancel_create(NULL, &g_src_drain) < 0 || mb_metrics_create(&g_src_metrics) < 0)
		return 99;
	uo.cfg = &scfg;
	uo.drain = g_src_drain;
	uo.metrics = g_src_metrics;
	uo.n_sources = build_sources();
	uo.sources = g_sources;
	rc = mb_udp_create(&uo, &g_src_u, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "mb_udp_create (sources): %s\n", err);
		return 99;
	}
	memset(g_sources, 0xa5, sizeof(g_sources));
	memset(g_prefixes, 0xa5, sizeof(g_prefixes));
	/* the port whose slots all fill up: the smallest udp.max_requests the config takes */
	xcfg = g_cfg;
	xport = port;
	snprintf(xport.device, sizeof(xport.device), "net_pcap3");
	xcfg.udp_ports = &xport;
	xcfg.udp_max_requests = FULL_SLOTS;
	if (mb_cancel_create(NULL, &g_full_drain) < 0 || mb_metrics_create(&g_full_metrics) < 0)
		return 99;
	uo.cfg = &xcfg;
	uo.drain = g_full_drain;
	uo.metrics = g_full_metrics;
	uo.n_sources = 0;
	uo.sources = NULL;
	rc = mb_udp_create(&uo, &g_full_u, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "mb_udp_create (full): %s\n", err);
		return 99;
	}
	rc = mb_test_main("udp_pcap_test", suites);
	mb_udp_destroy(&g_full_u);
	mb_cancel_destroy(&g_full_drain);
	mb_metrics_destroy(&g_full_metrics);
	xcfg.udp_ports = NULL;
	xcfg.n_udp_ports = 0;
	unlink(g_full_pcap);
	mb_udp_destroy(&g_src_u);
	mb_cancel_destroy(&g_src_drain);
	mb_metrics_destroy(&g_src_metrics);
	scfg.udp_ports = NULL;
	scfg.n_udp_ports = 0;
	unlink(g_src_pcap);
	mb_udp_destroy(&g_fuzz_u);
	mb_cancel_destroy(&g_fuzz_drain);
	fcfg.udp_ports = NULL;
	fcfg.n_udp_ports = 0;
	unlink(g_fuzz_pcap);
	mb_udp_destroy(&g_u);
	mb_ring_destroy(&g_fake.echo);
	mb_ring_destroy(&g_fake.tiny);
	mb_ring_destroy(&g_fake.results);
	mb_cancel_destroy(&g_drain);
	mb_cancel_destroy(&g_abort);
	g_cfg.udp_ports = NULL;
	g_cfg.n_udp_ports = 0;
	mb_eal_fini();
	unlink(g_rx_pcap);
	unlink(g_tx_pcap);
	return rc;
}
