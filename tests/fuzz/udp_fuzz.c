/*
 * udp_fuzz.c: libFuzzer target for the UDP ingest's parsing and reassembly, fed a sequence
 * of frames.
 *
 * What net/udp.c does with each received frame, without DPDK's ports, pools and hash
 * (those need a NIC or EAL; the decisions are made by pure functions): classify the frame
 * (mb_udp_classify, net/udp_wire.c), decode the request header (mb_proto_decode_request,
 * net/proto.c), and add the datagram's slice to its request's coverage (mb_reasm_add,
 * net/reasm.c), copying it into a buffer of which exactly payload_len bytes are addressable
 * (the rest is poisoned, so AddressSanitizer sees any slice the checks let past the end;
 * the buffers are static, as udp.c's pools are, which also keeps the target fast). The steps follow
 * datagram() in net/udp.c: garbage, short datagrams, bad headers (which fail the request they
 * belong to), cancels, slices outside the payload, conflicts with the first datagram, duplicates,
 * too many holes, a slot table that fills up (4 slots), completion; a reassembly timeout is one of
 * the operations.
 *
 * The input is a sequence of records, each a 3-byte head and a body:
 *
 *   byte 0      operation: bits 0-2 what (below), bits 3-4 which of 4 senders
 *   bytes 1-2   body length, little-endian (cut to what is left of the input)
 *
 *   what 0      the body is a whole Ethernet frame, as received (any protocol, VLAN, ARP);
 *               with bit 3 set, an IPv4 header in it first gets its checksum made right,
 *               so that mutated IPv4 fields get past the checksum to the checks behind it
 *   what 1      the reassembly timeout passes: requests still incomplete are dropped, and
 *               complete ones leave the index (their answers went out)
 *   what 2      the body is a list of slices (u32 lo, u32 length, little-endian) added to
 *               a coverage of its own, over the whole 32-bit range
 *   what 4      the body is a UDP payload (request header + slice), sent in a frame with
 *               a VLAN tag (built by mb_udp_build_frame, as a kernel peer sends it)
 *   what 3, 5-7 the same without a VLAN tag
 *
 * Checked: a built frame classifies back to exactly its datagram; a datagram found in a
 * raw frame lies inside it and is addressed to us; an ARP reply is the request's answer;
 * every slice the checks accept lies inside its request's payload; the coverage agrees
 * with a byte map of what arrived (new bytes, runs sorted, disjoint and not touching,
 * covered = bytes seen) and a complete request has every byte; the 32-bit coverage agrees
 * with an interval model, and a refused slice (too many runs) leaves it unchanged.
 */
#include <arpa/inet.h>
#include <sanitizer/asan_interface.h>

#include "mb_fuzz.h"
#include "mb_reasm.h"
#include "mb_udp_wire.h"
#include "mediabatch/protocol.h"

#define MAX_PAYLOAD 16384 /* service.max_payload_bytes: the logic does not depend on it */
#define N_SLOTS 4	  /* udp.max_requests: small, so that the table fills */
#define FRAME_CAP 65600

enum { OP_RAW, OP_EXPIRE, OP_SLICES, OP_VLAN = 4 };

struct key {
	uint64_t id;
	uint32_t tenant, ip;
	uint16_t port;
};

enum slot_state { FREE, REASM, DONE };

struct slot {
	enum slot_state state;
	struct key key;
	struct mb_request_hdr hdr;
	uint8_t *buf;	/* payload_len bytes addressable, the rest poisoned */
	uint64_t *seen; /* byte map of what arrived */
	uint32_t n_seen;
	struct mb_reasm_cov cov;
};

static struct mb_udp_local g_us = {.mac = {0x02, 0, 0, 0, 0, 0x01}}; /* ip, port: at init */
static const uint8_t g_peer_mac[6] = {0x02, 0, 0, 0, 0, 0x02};
static const uint32_t g_peer_ip[4] = {0xc6336401, 0xc6336401, 0xc6336402, 0xc6336402};
static const uint16_t g_peer_port[4] = {40000, 40001, 40000, 40001};

static uint8_t g_frame[FRAME_CAP] __attribute__((aligned(64)));
static struct slot g_slots[N_SLOTS];
static uint8_t g_buf[N_SLOTS][MAX_PAYLOAD] __attribute__((aligned(64)));
static uint64_t g_seen[N_SLOTS][MAX_PAYLOAD / 64];

static uint32_t
rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t
rd64(const uint8_t *p)
{
	return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

/* ---- the 32-bit coverage against an interval model ---- */

struct ival {
	uint32_t lo, hi;
};

struct ref_cov {
	uint32_t n;
	struct ival r[MB_REASM_MAX_RUNS + 1];
};

/* Insert [lo, hi) into a copy of @p ref, sorted by lo, then merge what overlaps or touches.
 * Returns the bytes in the result. */
static MB_FUZZ_UNTRACED uint64_t
ref_add(const struct ref_cov *ref, uint32_t lo, uint32_t hi, struct ref_cov *out)
{
	struct ival all[MB_REASM_MAX_RUNS + 1];
	uint32_t n = 0, k = 0;
	uint64_t total = 0;
	int placed = 0;

	for (uint32_t i = 0; i < ref->n; i++) {
		if (!placed && lo < ref->r[i].lo) {
			all[n++] = (struct ival){lo, hi};
			placed = 1;
		}
		all[n++] = ref->r[i];
	}
	if (!placed)
		all[n++] = (struct ival){lo, hi};
	for (uint32_t i = 0; i < n; i++) {
		if (k > 0 && all[i].lo <= out->r[k - 1].hi) {
			if (all[i].hi > out->r[k - 1].hi)
				out->r[k - 1].hi = all[i].hi;
		} else {
			out->r[k++] = all[i];
		}
	}
	out->n = k;
	for (uint32_t i = 0; i < k; i++)
		total += out->r[i].hi - out->r[i].lo;
	return total;
}

static MB_FUZZ_UNTRACED uint64_t
ref_total(const struct ref_cov *ref)
{
	uint64_t t = 0;

	for (uint32_t i = 0; i < ref->n; i++)
		t += ref->r[i].hi - ref->r[i].lo;
	return t;
}

static MB_FUZZ_UNTRACED void
check_same(const struct mb_reasm_cov *c, const struct ref_cov *ref)
{
	MB_FUZZ_CHECK(c->n_runs == ref->n, "%u runs, the model has %u", c->n_runs, ref->n);
	for (uint32_t i = 0; i < ref->n; i++)
		MB_FUZZ_CHECK(c->run[i].lo == ref->r[i].lo && c->run[i].hi == ref->r[i].hi,
			      "run %u is [%u, %u), the model's [%u, %u)", i, c->run[i].lo,
			      c->run[i].hi, ref->r[i].lo, ref->r[i].hi);
	MB_FUZZ_CHECK(c->covered == ref_total(ref), "covered %u, the model %llu", c->covered,
		      (unsigned long long)ref_total(ref));
}

static void
op_slices(const uint8_t *p, size_t len, struct mb_reasm_cov *c, struct ref_cov *ref)
{
	for (; len >= 8; p += 8, len -= 8) {
		uint32_t lo = rd32(p), n = rd32(p + 4), hi;
		struct mb_reasm_cov before = *c;
		struct ref_cov next;
		uint64_t total_before = ref_total(ref), total;
		int64_t got;

		hi = n > UINT32_MAX - lo ? UINT32_MAX : lo + n;
		if (lo >= hi)
			continue; /* the function's precondition */
		total = ref_add(ref, lo, hi, &next);
		got = mb_reasm_add(c, lo, hi);
		if (next.n > MB_REASM_MAX_RUNS) {
			MB_FUZZ_CHECK(got == -1, "a slice needing run %u was taken (%lld)", next.n,
				      (long long)got);
			MB_FUZZ_CHECK(memcmp(&before, c, sizeof(*c)) == 0,
				      "a refused slice changed the coverage");
			continue;
		}
		MB_FUZZ_CHECK(got == (int64_t)(total - total_before),
			      "[%u, %u): %lld new bytes, the model says %llu", lo, hi,
			      (long long)got, (unsigned long long)(total - total_before));
		*ref = next;
		check_same(c, ref);
	}
}

/* ---- byte maps: one bit per payload byte, handled a word at a time ---- */

/* The bits of word @p w that lie in [lo, hi) (lo < hi, and word w meets the range). */
static uint64_t
word_mask(uint32_t w, uint32_t lo, uint32_t hi)
{
	uint32_t base = w * 64, a = lo > base ? lo - base : 0, b = hi - base >= 64 ? 64 : hi - base;
	uint64_t m = b == 64 ? ~UINT64_C(0) : (UINT64_C(1) << b) - 1;

	return m & ~((UINT64_C(1) << a) - 1);
}

static MB_FUZZ_UNTRACED uint32_t
bits_count(const uint64_t *map, uint32_t lo, uint32_t hi)
{
	uint32_t n = 0;

	for (uint32_t w = lo / 64; lo < hi && w <= (hi - 1) / 64; w++)
		n += (uint32_t)__builtin_popcountll(map[w] & word_mask(w, lo, hi));
	return n;
}

static MB_FUZZ_UNTRACED void
bits_set(uint64_t *map, uint32_t lo, uint32_t hi)
{
	for (uint32_t w = lo / 64; lo < hi && w <= (hi - 1) / 64; w++)
		map[w] |= word_mask(w, lo, hi);
}

static MB_FUZZ_UNTRACED int
bit(const uint64_t *map, uint32_t b)
{
	return (int)((map[b / 64] >> (b % 64)) & 1);
}

/* ---- datagrams into requests, as net/udp.c's datagram() ---- */

static void
slot_free(struct slot *s)
{
	if (s->buf != NULL)
		ASAN_POISON_MEMORY_REGION(s->buf, MAX_PAYLOAD);
	memset(s, 0, sizeof(*s));
}

static MB_FUZZ_UNTRACED struct slot *
lookup(const struct key *k)
{
	for (int i = 0; i < N_SLOTS; i++)
		if (g_slots[i].state != FREE && memcmp(&g_slots[i].key, k, sizeof(*k)) == 0)
			return &g_slots[i];
	return NULL;
}

static MB_FUZZ_UNTRACED int
same_request(const struct mb_request_hdr *a, const struct mb_request_hdr *b)
{
	return a->payload_len == b->payload_len && a->media == b->media &&
	       a->channels == b->channels && a->sample_rate == b->sample_rate &&
	       a->frames == b->frames && a->height == b->height && a->width == b->width &&
	       a->flags == b->flags && a->timeout_ms == b->timeout_ms &&
	       strcmp(a->model, b->model) == 0;
}

/* The coverage agrees with the byte map: same bytes, runs sorted, apart, inside. */
static MB_FUZZ_UNTRACED void
check_cov(const struct slot *s)
{
	uint32_t prev_hi = 0, sum = 0, len = s->hdr.payload_len;

	MB_FUZZ_CHECK(s->cov.n_runs >= 1 && s->cov.n_runs <= MB_REASM_MAX_RUNS, "%u runs",
		      s->cov.n_runs);
	for (uint32_t i = 0; i < s->cov.n_runs; i++) {
		uint32_t lo = s->cov.run[i].lo, hi = s->cov.run[i].hi;

		MB_FUZZ_CHECK(lo < hi && hi <= len, "run [%u, %u) of %u", lo, hi, len);
		MB_FUZZ_CHECK(i == 0 || lo > prev_hi, "run %u [%u, %u) touches the one before", i,
			      lo, hi);
		/* every byte before the run (after the last) is missing, every byte in it seen */
		MB_FUZZ_CHECK(bits_count(s->seen, i == 0 ? 0 : prev_hi, lo) == 0,
			      "bytes seen before run %u [%u, %u)", i, lo, hi);
		MB_FUZZ_CHECK(bits_count(s->seen, lo, hi) == hi - lo,
			      "bytes of run %u [%u, %u) never arrived", i, lo, hi);
		sum += hi - lo;
		prev_hi = hi;
	}
	MB_FUZZ_CHECK(bits_count(s->seen, prev_hi, len) == 0, "bytes seen after the runs");
	MB_FUZZ_CHECK(sum == s->cov.covered && sum == s->n_seen,
		      "covered %u, runs hold %u, bytes seen %u", s->cov.covered, sum, s->n_seen);
}

static void
datagram(const uint8_t *d, uint32_t len, uint32_t src_ip, uint16_t src_port_be)
{
	struct mb_request_hdr h;
	struct mb_proto_error err;
	struct key k = {.ip = src_ip, .port = src_port_be};
	struct slot *s;
	uint32_t slice, fresh_bits = 0;
	int64_t fresh;
	int rc;

	if (len < 4 || memcmp(d, "MBQ1", 4) != 0)
		return; /* garbage */
	if (len >= 16)
		k.id = rd64(d + 8);
	if (len >= 20)
		k.tenant = rd32(d + 16);
	if (len < MB_PROTO_HDR_LEN) { /* truncated: answered if it has an id */
		rc = mb_proto_decode_request(d, len, MB_TRANSPORT_UDP, 0, &h, &err);
		MB_FUZZ_CHECK(rc == -1 && err.has_id == (len >= 16), "a %u-byte header", len);
		return;
	}
	slice = len - MB_PROTO_HDR_LEN;
	rc = mb_proto_decode_request(d, MB_PROTO_HDR_LEN, MB_TRANSPORT_UDP, MAX_PAYLOAD, &h, &err);
	if (rc < 0) { /* a bad header fails the request it belongs to */
		MB_FUZZ_CHECK(err.has_id && err.request_id == k.id && err.tenant_id == k.tenant,
			      "the refusal is addressed to another request");
		s = lookup(&k);
		if (s != NULL && s->state == REASM)
			slot_free(s);
		return;
	}
	MB_FUZZ_CHECK(h.request_id == k.id && h.tenant_id == k.tenant, "key");
	if (h.flags & MB_FLAG_CANCEL) {
		s = lookup(&k);
		if (s != NULL && s->state == REASM)
			slot_free(s);
		return;
	}
	if (slice == 0 || (uint64_t)h.frag_offset + slice > h.payload_len) {
		s = lookup(&k);
		if (s != NULL && s->state == REASM)
			slot_free(s);
		return;
	}
	/* what the decoder and the check above promise the copy below */
	MB_FUZZ_CHECK(h.payload_len <= MAX_PAYLOAD && h.frag_offset < h.payload_len &&
			      slice <= h.payload_len - h.frag_offset,
		      "slice [%u, +%u) of %u", h.frag_offset, slice, h.payload_len);
	s = lookup(&k);
	if (s != NULL) {
		if (s->state != REASM || !same_request(&s->hdr, &h))
			return; /* duplicate of a whole request, or a conflict */
	} else {
		for (int i = 0; i < N_SLOTS && s == NULL; i++)
			if (g_slots[i].state == FREE)
				s = &g_slots[i];
		if (s == NULL)
			return; /* no slot: answered OVERLOADED */
		s->key = k;
		s->hdr = h;
		if (slice == h.payload_len) { /* whole: no reassembly */
			MB_FUZZ_CHECK(h.frag_offset == 0, "whole at %u", h.frag_offset);
			s->state = DONE;
			return;
		}
		s->buf = g_buf[s - g_slots];
		ASAN_UNPOISON_MEMORY_REGION(s->buf, h.payload_len);
		s->seen = g_seen[s - g_slots];
		memset(s->seen, 0, (h.payload_len + 63) / 64 * sizeof(uint64_t));
		mb_reasm_init(&s->cov);
		s->state = REASM;
	}
	fresh_bits = slice - bits_count(s->seen, h.frag_offset, h.frag_offset + slice);
	fresh = mb_reasm_add(&s->cov, h.frag_offset, h.frag_offset + slice);
	if (fresh < 0) { /* too many holes: the request fails */
		MB_FUZZ_CHECK(s->cov.n_runs == MB_REASM_MAX_RUNS && fresh_bits == slice,
			      "refused a slice that fits (%u runs, %u of %u bytes new)",
			      s->cov.n_runs, fresh_bits, slice);
		MB_FUZZ_CHECK((h.frag_offset == 0 || !bit(s->seen, h.frag_offset - 1)) &&
				      (h.frag_offset + slice == h.payload_len ||
				       !bit(s->seen, h.frag_offset + slice)),
			      "refused a slice that touches a run");
		slot_free(s);
		return;
	}
	MB_FUZZ_CHECK(fresh == fresh_bits, "slice [%u, +%u): %lld new bytes, %u arrived new",
		      h.frag_offset, slice, (long long)fresh, fresh_bits);
	bits_set(s->seen, h.frag_offset, h.frag_offset + slice);
	s->n_seen += fresh_bits;
	check_cov(s);
	if (fresh == 0)
		return; /* duplicate */
	memcpy(s->buf + h.frag_offset, d + MB_PROTO_HDR_LEN, slice);
	if (s->cov.covered == h.payload_len) { /* complete: handed on, still indexed */
		MB_FUZZ_CHECK(s->cov.n_runs == 1 && s->cov.run[0].lo == 0 &&
				      s->cov.run[0].hi == h.payload_len,
			      "complete but not one run");
		ASAN_POISON_MEMORY_REGION(s->buf, MAX_PAYLOAD);
		s->buf = NULL;
		s->seen = NULL;
		s->state = DONE;
	}
}

/* ---- frames ---- */

static MB_FUZZ_UNTRACED void
check_arp(const uint8_t *orig, uint32_t len)
{
	uint32_t l3 = orig[12] == 0x81 || orig[12] == 0x88 ? 18 : 14;
	const uint8_t *a = g_frame + l3, *o = orig + l3;

	MB_FUZZ_CHECK(len >= l3 + 28, "ARP reply from a %u-byte frame", len);
	MB_FUZZ_CHECK(o[6] == 0 && o[7] == 1 && memcmp(o + 24, &g_us.ip, 4) == 0,
		      "answered an ARP frame that is not a request for us");
	MB_FUZZ_CHECK(a[6] == 0 && a[7] == 2, "not a reply");
	MB_FUZZ_CHECK(memcmp(a + 8, g_us.mac, 6) == 0 && memcmp(a + 14, &g_us.ip, 4) == 0,
		      "reply's sender is not us");
	MB_FUZZ_CHECK(memcmp(a + 18, o + 8, 6) == 0 && memcmp(a + 24, o + 14, 4) == 0,
		      "reply's target is not the asker");
	MB_FUZZ_CHECK(memcmp(g_frame, o + 8, 6) == 0 && memcmp(g_frame + 6, g_us.mac, 6) == 0,
		      "reply's Ethernet addresses");
	MB_FUZZ_CHECK(memcmp(g_frame + 12, orig + 12, l3 - 12) == 0 && memcmp(a, o, 6) == 0 &&
			      memcmp(g_frame + l3 + 28, orig + l3 + 28,
				     (len < 64 ? len : 64) - (l3 + 28)) == 0,
		      "reply changed more than the addresses");
}

/* Make the checksum of the IPv4 header of the frame in g_frame right, if it has one. */
static MB_FUZZ_UNTRACED void
fix_ipv4_checksum(uint32_t len)
{
	uint32_t l3 = 14, ihl, sum = 0;
	uint8_t *ip;

	if (len >= 18 && ((g_frame[12] == 0x81 && g_frame[13] == 0x00) ||
			  (g_frame[12] == 0x88 && g_frame[13] == 0xa8)))
		l3 = 18;
	if (len < l3 + 20 || g_frame[l3 - 2] != 0x08 || g_frame[l3 - 1] != 0x00)
		return;
	ip = g_frame + l3;
	ihl = (ip[0] & 15u) * 4;
	if (ihl < 20 || len < l3 + ihl)
		return;
	ip[10] = ip[11] = 0;
	for (uint32_t i = 0; i < ihl; i += 2)
		sum += (uint32_t)ip[i] << 8 | ip[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	ip[10] = (uint8_t)(~sum >> 8);
	ip[11] = (uint8_t)~sum;
}

static void
op_raw(const uint8_t *p, uint32_t len, int fix_checksum)
{
	struct mb_udp_datagram dg;
	enum mb_udp_drop why = MB_UDP_DROP_COUNT;
	enum mb_udp_verdict v;
	uint8_t orig[64];

	memcpy(g_frame, p, len);
	if (fix_checksum)
		fix_ipv4_checksum(len);
	memcpy(orig, g_frame, len < sizeof(orig) ? len : sizeof(orig));
	v = mb_udp_classify(g_frame, len, &g_us, &dg, &why);
	switch (v) {
	case MB_UDP_DROP:
		MB_FUZZ_CHECK(why <= MB_UDP_DROP_TRUNCATED, "classify gave reason %d", why);
		MB_FUZZ_CHECK(strcmp(mb_udp_drop_name(why), "unknown") != 0, "reason name");
		MB_FUZZ_CHECK(memcmp(g_frame, orig, len < 64 ? len : 64) == 0,
			      "a dropped frame was changed");
		return;
	case MB_UDP_ARP_REPLY:
		check_arp(orig, len);
		return;
	case MB_UDP_DATAGRAM: {
		uint32_t l3 = orig[12] == 0x81 || orig[12] == 0x88 ? 18 : 14;
		const uint8_t *ip = g_frame + l3;
		uint32_t ihl = (ip[0] & 15u) * 4;

		MB_FUZZ_CHECK(dg.data >= g_frame + l3 + 28 && dg.data + dg.len <= g_frame + len,
			      "datagram [%td, +%u) outside the %u-byte frame", dg.data - g_frame,
			      dg.len, len);
		MB_FUZZ_CHECK(ip[0] >> 4 == 4 && ip[9] == 17 && memcmp(ip + 16, &g_us.ip, 4) == 0,
			      "not IPv4/UDP to us");
		MB_FUZZ_CHECK((ip[6] & 0x3f) == 0 && ip[7] == 0, "an IP fragment");
		MB_FUZZ_CHECK(memcmp(ip + ihl + 2, &g_us.port_be, 2) == 0, "another port");
		MB_FUZZ_CHECK(memcmp(&dg.src_ip, ip + 12, 4) == 0 &&
				      memcmp(&dg.src_port_be, ip + ihl, 2) == 0,
			      "sender");
		MB_FUZZ_CHECK(dg.data == ip + ihl + 8, "payload does not follow the UDP header");
		datagram(dg.data, dg.len, dg.src_ip, dg.src_port_be);
		return;
	}
	}
	MB_FUZZ_CHECK(0, "verdict %d", v);
}

static void
op_datagram(const uint8_t *p, uint32_t len, unsigned int sender, uint16_t vlan)
{
	struct mb_udp_datagram dg;
	enum mb_udp_drop why = MB_UDP_DROP_COUNT;
	uint32_t n;

	n = mb_udp_build_frame(g_frame, sizeof(g_frame), g_peer_mac, g_peer_ip[sender],
			       g_peer_port[sender], &g_us, vlan, p, len);
	if (n == 0) {
		MB_FUZZ_CHECK(len + 28 > UINT16_MAX, "no frame for a %u-byte datagram", len);
		return;
	}
	MB_FUZZ_CHECK(mb_udp_classify(g_frame, n, &g_us, &dg, &why) == MB_UDP_DATAGRAM,
		      "a frame built for us is dropped (%s)", mb_udp_drop_name(why));
	MB_FUZZ_CHECK(dg.len == len && memcmp(dg.data, p, len) == 0, "datagram changed");
	MB_FUZZ_CHECK(dg.src_ip == htonl(g_peer_ip[sender]) &&
			      dg.src_port_be == htons(g_peer_port[sender]),
		      "sender");
	datagram(dg.data, dg.len, dg.src_ip, dg.src_port_be);
}

static void
op_expire(void)
{
	for (int i = 0; i < N_SLOTS; i++)
		if (g_slots[i].state != FREE)
			slot_free(&g_slots[i]);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	mb_fuzz_init(0);
	g_us.ip = htonl(0xc0000201); /* 192.0.2.1 */
	g_us.port_be = htons(7000);
	ASAN_POISON_MEMORY_REGION(g_buf, sizeof(g_buf));
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mb_reasm_cov cov;
	struct ref_cov ref = {.n = 0};

	mb_reasm_init(&cov);
	while (size >= 3) {
		unsigned int op = data[0] & 7, sender = (data[0] >> 3) & 3, fix = data[0] & 8;
		uint32_t len = (uint32_t)data[1] | (uint32_t)data[2] << 8;

		data += 3;
		size -= 3;
		if (len > size)
			len = (uint32_t)size;
		if (op == OP_RAW)
			op_raw(data, len, fix != 0);
		else if (op == OP_EXPIRE)
			op_expire();
		else if (op == OP_SLICES)
			op_slices(data, len, &cov, &ref);
		else
			op_datagram(data, len, sender, op == OP_VLAN ? (uint16_t)(1 + sender) : 0);
		data += len;
		size -= len;
	}
	op_expire();
	return 0;
}
