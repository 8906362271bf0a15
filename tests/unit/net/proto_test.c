/*
 * proto_test.c: protocol v1 codec: exact wire layout, round trips, and one case per rule of
 * docs/protocol.md, each checking the status and that the reason names the field.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mediabatch/protocol.h"
#include "mb_test.h"

#define MAXP (4u << 20)

static struct mb_request_hdr
audio_req(void)
{
	struct mb_request_hdr h = {
		.version = 1,
		.request_id = 0x0102030405060708ull,
		.tenant_id = 42,
		.timeout_ms = 250,
		.media = MB_MEDIA_PCM_S16LE,
		.channels = 1,
		.sample_rate = 16000,
		.payload_len = 32000,
	};

	strcpy(h.model, "logmel");
	return h;
}

/* Decode @h after applying @mutate to its wire bytes; returns the status (OK on success). */
static int
decode_wire(const uint8_t *wire, size_t len, enum mb_transport t, struct mb_request_hdr *out,
	    struct mb_proto_error *err)
{
	return mb_proto_decode_request(wire, len, t, MAXP, out, err) == 0 ? MB_STATUS_OK
									  : (int)err->status;
}

static int
reject(const struct mb_request_hdr *h, struct mb_proto_error *err)
{
	uint8_t wire[64];
	struct mb_request_hdr out;

	mb_proto_encode_request(h, wire);
	return decode_wire(wire, 64, MB_TRANSPORT_ZMQ, &out, err);
}

static bool
mentions(const struct mb_proto_error *err, const char *field)
{
	bool ok = strncmp(err->reason, field, strlen(field)) == 0;

	if (!ok)
		printf("\n    reason \"%s\" does not start with \"%s\"", err->reason, field);
	return ok;
}

static void
test_wire_layout(void)
{
	struct mb_request_hdr h = audio_req();
	uint8_t w[64];

	h.flags = MB_FLAG_PRIORITY;
	h.frag_offset = 0;
	mb_proto_encode_request(&h, w);
	CU_ASSERT_EQUAL(memcmp(w, "MBQ1", 4), 0);
	CU_ASSERT(w[4] == 1 && w[5] == 0);	  /* version, little-endian */
	CU_ASSERT(w[6] == 2 && w[7] == 0);	  /* flags */
	CU_ASSERT(w[8] == 0x08 && w[15] == 0x01); /* request_id LE */
	CU_ASSERT(w[16] == 42 && w[17] == 0);	  /* tenant */
	CU_ASSERT(w[20] == 250 && w[21] == 0);	  /* timeout_ms */
	CU_ASSERT_EQUAL(memcmp(w + 24, "logmel\0\0\0\0\0\0\0\0\0\0", 16), 0);
	CU_ASSERT(w[40] == 1 && w[42] == 1);	   /* media, channels */
	CU_ASSERT(w[44] == 0x80 && w[45] == 0x3e); /* 16000 */
	CU_ASSERT(w[56] == 0x00 && w[57] == 0x7d); /* 32000 */
	for (int i = 48; i < 56; i++)
		CU_ASSERT_EQUAL(w[i], 0);
}

static void
test_request_round_trip(void)
{
	struct mb_request_hdr h = audio_req(), out;
	struct mb_proto_error err;
	uint8_t w[64];

	mb_proto_encode_request(&h, w);
	CU_ASSERT_EQUAL_FATAL(mb_proto_decode_request(w, 64, MB_TRANSPORT_ZMQ, MAXP, &out, &err),
			      0);
	CU_ASSERT_EQUAL(out.request_id, h.request_id);
	CU_ASSERT_EQUAL(out.tenant_id, 42);
	CU_ASSERT_EQUAL(out.timeout_ms, 250);
	CU_ASSERT_STRING_EQUAL(out.model, "logmel");
	CU_ASSERT_EQUAL(out.sample_rate, 16000);
	CU_ASSERT_EQUAL(out.payload_len, 32000);
	CU_ASSERT_EQUAL(mb_proto_media_length(&out), 16000);
	CU_ASSERT_DOUBLE_EQUAL(mb_proto_audio_seconds(&out), 1.0, 1e-12);
	/* A 16-character model name uses the whole field, no NUL. */
	strcpy(h.model, "abcdefghijklmnop");
	mb_proto_encode_request(&h, w);
	CU_ASSERT_EQUAL(mb_proto_decode_request(w, 64, MB_TRANSPORT_ZMQ, MAXP, &out, &err), 0);
	CU_ASSERT_STRING_EQUAL(out.model, "abcdefghijklmnop");
}

static void
test_response_round_trip(void)
{
	struct mb_response_hdr r =
				       {
					       .version = 1,
					       .status = MB_STATUS_TIMEOUT,
					       .request_id = 77,
					       .tenant_id = 9,
					       .queue_us = 1234,
					       .compute_us = 5678,
					       .batch_size = 8,
					       .device = MB_DEVICE_NONE,
					       .result_type = MB_RESULT_F32,
					       .rows = 100,
					       .cols = 80,
					       .result_len = 32000,
				       },
			       out;
	uint8_t w[64];
	char reason[128];

	strcpy(r.model, "whisper");
	mb_proto_encode_response(&r, w);
	CU_ASSERT_EQUAL(memcmp(w, "MBR1", 4), 0);
	CU_ASSERT(w[30] == 0xff && w[31] == 0xff);
	for (int i = 54; i < 56; i++)
		CU_ASSERT_EQUAL(w[i], 0);
	for (int i = 60; i < 64; i++)
		CU_ASSERT_EQUAL(w[i], 0);
	CU_ASSERT_EQUAL_FATAL(mb_proto_decode_response(w, 64, &out, reason, sizeof(reason)), 0);
	CU_ASSERT_EQUAL(out.status, MB_STATUS_TIMEOUT);
	CU_ASSERT_EQUAL(out.request_id, 77);
	CU_ASSERT_EQUAL(out.queue_us, 1234);
	CU_ASSERT_EQUAL(out.compute_us, 5678);
	CU_ASSERT_EQUAL(out.batch_size, 8);
	CU_ASSERT_EQUAL(out.device, MB_DEVICE_NONE);
	CU_ASSERT_STRING_EQUAL(out.model, "whisper");
	CU_ASSERT_EQUAL(out.rows, 100);
	CU_ASSERT_EQUAL(out.cols, 80);
	CU_ASSERT_EQUAL(out.result_len, 32000);
	CU_ASSERT_EQUAL(out.flags, 0);
	/* flags at offset 54: DUPLICATE is bit 0 */
	r.flags = MB_RESP_FLAG_DUPLICATE;
	mb_proto_encode_response(&r, w);
	CU_ASSERT(w[54] == 1 && w[55] == 0);
	CU_ASSERT_EQUAL_FATAL(mb_proto_decode_response(w, 64, &out, reason, sizeof(reason)), 0);
	CU_ASSERT_EQUAL(out.flags, MB_RESP_FLAG_DUPLICATE);
	r.flags = 0;
	mb_proto_encode_response(&r, w);
	CU_ASSERT_EQUAL(mb_proto_decode_response(w, 63, &out, reason, sizeof(reason)), -1);
	w[3] = '2';
	CU_ASSERT_EQUAL(mb_proto_decode_response(w, 64, &out, reason, sizeof(reason)), -1);
}

static void
test_header_shape(void)
{
	struct mb_request_hdr h = audio_req(), out;
	struct mb_proto_error err;
	uint8_t w[80] = {0};

	mb_proto_encode_request(&h, w);
	/* Too short or too long: BAD_REQUEST; the id is readable from 16 bytes on. */
	CU_ASSERT_EQUAL(decode_wire(w, 63, MB_TRANSPORT_ZMQ, &out, &err), MB_STATUS_BAD_REQUEST);
	CU_ASSERT_TRUE(mentions(&err, "header"));
	CU_ASSERT_TRUE(err.has_id);
	CU_ASSERT_EQUAL(err.request_id, h.request_id);
	CU_ASSERT_EQUAL(err.tenant_id, 42);
	CU_ASSERT_STRING_EQUAL(err.model, "logmel");
	CU_ASSERT_EQUAL(decode_wire(w, 65, MB_TRANSPORT_ZMQ, &out, &err), MB_STATUS_BAD_REQUEST);
	CU_ASSERT_EQUAL(decode_wire(w, 16, MB_TRANSPORT_ZMQ, &out, &err), MB_STATUS_BAD_REQUEST);
	CU_ASSERT_TRUE(err.has_id);
	CU_ASSERT_EQUAL(err.tenant_id, 0); /* not present */
	CU_ASSERT_EQUAL(decode_wire(w, 15, MB_TRANSPORT_ZMQ, &out, &err), MB_STATUS_BAD_REQUEST);
	CU_ASSERT_FALSE(err.has_id); /* too broken to answer: counted and dropped */
	CU_ASSERT_EQUAL(decode_wire(NULL, 0, MB_TRANSPORT_ZMQ, &out, &err), MB_STATUS_BAD_REQUEST);
	CU_ASSERT_FALSE(err.has_id);
}

static void
test_magic_version_flags(void)
{
	struct mb_request_hdr h = audio_req(), out;
	struct mb_proto_error err;
	uint8_t w[64];

	mb_proto_encode_request(&h, w);
	w[0] = 'X';
	CU_ASSERT_EQUAL(decode_wire(w, 64, MB_TRANSPORT_ZMQ, &out, &err), MB_STATUS_BAD_REQUEST);
	CU_ASSERT_TRUE(mentions(&err, "magic"));
	memcpy(w, "MBR1", 4);
	CU_ASSERT_EQUAL(decode_wire(w, 64, MB_TRANSPORT_ZMQ, &out, &err), MB_STATUS_BAD_REQUEST);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.reason, "response header"));

	h.version = 2;
	CU_ASSERT_EQUAL(reject(&h, &err), MB_STATUS_BAD_REQUEST);
	CU_ASSERT_TRUE(mentions(&err, "version"));
	h = audio_req();
	h.flags = 0x0004;
	CU_ASSERT_EQUAL(reject(&h, &err), MB_STATUS_BAD_REQUEST);
	CU_ASSERT_TRUE(mentions(&err, "flags"));
	h.flags = 0x8000 | MB_FLAG_PRIORITY;
	CU_ASSERT_EQUAL(reject(&h, &err), MB_STATUS_BAD_REQUEST);
	h = audio_req();
	h.reserved = 1;
	CU_ASSERT_EQUAL(reject(&h, &err), MB_STATUS_BAD_REQUEST);
	CU_ASSERT_TRUE(mentions(&err, "reserved"));
}

static void
test_model_field(void)
{
	struct mb_request_hdr h = audio_req(), out;
	struct mb_proto_error err;
	uint8_t w[64];

	h.model[0] = '\0';
	CU_ASSERT_EQUAL(reject(&h, &err), MB_STATUS_BAD_REQUEST);
	CU_ASSERT_TRUE(mentions(&err, "model"));
	h = audio_req();
	mb_proto_encode_request(&h, w);
	w[24 + 2] = ' '; /* "lo mel" */
	CU_ASSERT_EQUAL(decode_wire(w, 64, MB_TRANSPORT_ZMQ, &out, &err), MB_STATUS_BAD_REQUEST);
	CU_ASSERT_TRUE(mentions(&err, "model"));
	mb_proto_encode_request(&h, w);
	w[24 + 10] = 'x'; /* garbage after the NUL */
	CU_ASSERT_EQUAL(decode_wire(w, 64, MB_TRANSPORT_ZMQ, &out, &err), MB_STATUS_BAD_REQUEST);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.reason, "NUL"));
	mb_proto_encode_request(&h, w);
	w[24] = 0xc3; /* non-ASCII */
	CU_ASSERT_EQUAL(decode_wire(w, 64, MB_TRANSPORT_ZMQ, &out, &err), MB_STATUS_BAD_REQUEST);
	CU_ASSERT_STRING_EQUAL(err.model, "?ogmel"); /* sanitised copy for the answer */
}

static void
test_payload_rules(void)
{
	struct mb_request_hdr h = audio_req(), out;
	struct mb_proto_error err;
	uint8_t w[64];

	h.payload_len = 0;
	CU_ASSERT_EQUAL(reject(&h, &err), MB_STATUS_BAD_REQUEST);
	CU_ASSERT_TRUE(mentions(&err, "payload_len"));
	h.payload_len = MAXP + 2;
	CU_ASSERT_EQUAL(reject(&h, &err), MB_STATUS_TOO_LARGE);
	CU_ASSERT_TRUE(mentions(&err, "payload_len"));
	h.payload_len = 3; /* odd number of bytes of 16-bit samples */
	CU_ASSERT_EQUAL(reject(&h, &err), MB_STATUS_BAD_REQUEST);
	CU_ASSERT_TRUE(mentions(&err, "payload_len"));
	h = audio_req();
	h.frag_offset = 10;
	CU_ASSERT_EQUAL(reject(&h, &err), MB_STATUS_BAD_REQUEST);
	CU_ASSERT_TRUE(mentions(&err, "frag_offset"));
	/* Over UDP frag_offset is fine while inside the payload. */
	mb_proto_encode_request(&h, w);
	CU_ASSERT_EQUAL(decode_wire(w, 64, MB_TRANSPORT_UDP, &out, &err), MB_STATUS_OK);
	h.frag_offset = h.payload_len;
	mb_proto_encode_request(&h, w);
	CU_ASSERT_EQUAL(decode_wire(w, 64, MB_TRANSPORT_UDP, &out, &err), MB_STATUS_BAD_REQUEST);
}

static void
test_cancel(void)
{
	struct mb_request_hdr h = {
		.version = 1, .flags = MB_FLAG_CANCEL, .request_id = 5, .tenant_id = 3};
	struct mb_proto_error err;

	CU_ASSERT_EQUAL(reject(&h, &err), MB_STATUS_OK); /* no model, no media: fine on cancel */
	strcpy(h.model, "identity");
	CU_ASSERT_EQUAL(reject(&h, &err), MB_STATUS_OK);
	h.payload_len = 10;
	CU_ASSERT_EQUAL(reject(&h, &err), MB_STATUS_BAD_REQUEST);
	CU_ASSERT_TRUE(mentions(&err, "payload_len"));
}

static void
test_media_shapes(void)
{
	struct mb_request_hdr h = audio_req();
	struct mb_proto_error err;

	h.media = 9;
	CU_ASSERT_EQUAL(reject(&h, &err), MB_STATUS_BAD_REQUEST);
	CU_ASSERT_TRUE(mentions(&err, "media"));
	h = audio_req();
	h.channels = 2;
	CU_ASSERT_EQUAL(reject(&h, &err), MB_STATUS_BAD_REQUEST);
	CU_ASSERT_TRUE(mentions(&err, "channels"));
	h = audio_req();
	h.sample_rate = 0;
	CU_ASSERT_EQUAL(reject(&h, &err), MB_STATUS_BAD_REQUEST);
	CU_ASSERT_TRUE(mentions(&err, "sample_rate"));
	h = audio_req();
	h.frames = 3;
	CU_ASSERT_EQUAL(reject(&h, &err), MB_STATUS_BAD_REQUEST);
	CU_ASSERT_TRUE(mentions(&err, "frames"));
	h = audio_req();
	h.media = MB_MEDIA_PCM_F32LE;
	h.payload_len = 64002;
	CU_ASSERT_EQUAL(reject(&h, &err), MB_STATUS_BAD_REQUEST);
	h.payload_len = 64000;
	CU_ASSERT_EQUAL(reject(&h, &err), MB_STATUS_OK);

	/* RGB24: 16 frames of 224x224. */
	h = (struct mb_request_hdr){.version = 1,
				    .media = MB_MEDIA_RGB24,
				    .channels = 3,
				    .frames = 16,
				    .height = 224,
				    .width = 224,
				    .payload_len = 16 * 224 * 224 * 3};
	strcpy(h.model, "videomae");
	CU_ASSERT_EQUAL(reject(&h, &err), MB_STATUS_OK);
	h.payload_len -= 1;
	CU_ASSERT_EQUAL(reject(&h, &err), MB_STATUS_BAD_REQUEST);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.reason, "2408448"));
	h.payload_len += 1;
	h.channels = 4;
	CU_ASSERT_EQUAL(reject(&h, &err), MB_STATUS_BAD_REQUEST);
	h.channels = 3;
	h.width = 0;
	CU_ASSERT_EQUAL(reject(&h, &err), MB_STATUS_BAD_REQUEST);
	h.width = 224;
	h.sample_rate = 1;
	CU_ASSERT_EQUAL(reject(&h, &err), MB_STATUS_BAD_REQUEST);
	CU_ASSERT_TRUE(mentions(&err, "sample_rate"));

	/* F32: rows in frames, cols in height. */
	h = (struct mb_request_hdr){
		.version = 1, .media = MB_MEDIA_F32, .frames = 10, .height = 3, .payload_len = 120};
	strcpy(h.model, "identity");
	CU_ASSERT_EQUAL(reject(&h, &err), MB_STATUS_OK);
	CU_ASSERT_EQUAL(mb_proto_media_length(&h), 10);
	h.width = 2;
	CU_ASSERT_EQUAL(reject(&h, &err), MB_STATUS_BAD_REQUEST);
	CU_ASSERT_TRUE(mentions(&err, "width"));
	h.width = 0;
	h.payload_len = 121;
	CU_ASSERT_EQUAL(reject(&h, &err), MB_STATUS_BAD_REQUEST);
}

/* Random bytes must never crash the decoder, and every refusal has a reason. */
static void
test_fuzz(void)
{
	uint64_t rng = 0xfeedface;
	uint8_t w[64];
	struct mb_request_hdr out;
	struct mb_proto_error err;
	int accepted = 0;

	for (int i = 0; i < 200000; i++) {
		struct mb_request_hdr h = audio_req();
		size_t len = 64;

		mb_proto_encode_request(&h, w);
		/* Flip a few bytes of a valid header, sometimes cut it. */
		for (int k = 0; k < 1 + (int)(mb_test_rand(&rng) % 4); k++)
			w[mb_test_rand(&rng) % 64] = (uint8_t)mb_test_rand(&rng);
		if (mb_test_rand(&rng) % 16 == 0)
			len = mb_test_rand(&rng) % 64;
		if (mb_proto_decode_request(w, len, MB_TRANSPORT_ZMQ, MAXP, &out, &err) == 0) {
			accepted++;
			continue;
		}
		if (err.reason[0] == '\0' ||
		    (err.status != MB_STATUS_BAD_REQUEST && err.status != MB_STATUS_TOO_LARGE)) {
			CU_FAIL("refusal without a reason or with a wrong status");
			break;
		}
	}
	CU_ASSERT(accepted > 0);
}

/* The field readers: each at its documented offset, little-endian, unvalidated; on any bytes
 * the same values that the decoder reads (a whole header's, or the id of a broken one). */
static void
test_field_readers(void)
{
	struct mb_request_hdr h = audio_req(), out;
	struct mb_proto_error err;
	uint64_t rng = 0x5eed;
	uint8_t w[64];

	h.flags = MB_FLAG_PRIORITY;
	h.request_id = 0xf1e2d3c4b5a69788ull;
	h.tenant_id = 0x80706050u;
	h.payload_len = 0x00a1b2c4u;
	h.frag_offset = 0x00a1b2c3u;
	mb_proto_encode_request(&h, w);
	CU_ASSERT_EQUAL(mb_proto_peek_flags(w), MB_FLAG_PRIORITY);
	CU_ASSERT_EQUAL(mb_proto_peek_request_id(w), 0xf1e2d3c4b5a69788ull);
	CU_ASSERT_EQUAL(mb_proto_peek_tenant_id(w), 0x80706050u);
	CU_ASSERT_EQUAL(mb_proto_peek_payload_len(w), 0x00a1b2c4u);
	CU_ASSERT_EQUAL(mb_proto_peek_frag_offset(w), 0x00a1b2c3u);
	/* the offsets of docs/protocol.md's table, byte by byte */
	memset(w, 0, sizeof(w));
	w[8] = 0x11, w[15] = 0x22, w[16] = 0x33, w[19] = 0x44, w[56] = 0x55, w[59] = 0x66;
	w[60] = 0x77, w[63] = 0x01, w[6] = 0x03, w[7] = 0x80;
	CU_ASSERT_EQUAL(mb_proto_peek_request_id(w), 0x2200000000000011ull);
	CU_ASSERT_EQUAL(mb_proto_peek_tenant_id(w), 0x44000033u);
	CU_ASSERT_EQUAL(mb_proto_peek_payload_len(w), 0x66000055u);
	CU_ASSERT_EQUAL(mb_proto_peek_frag_offset(w), 0x01000077u);
	CU_ASSERT_EQUAL(mb_proto_peek_flags(w), 0x8003);
	CU_ASSERT_EQUAL(MB_PROTO_OFF_REQUEST_ID, 8);
	CU_ASSERT_EQUAL(MB_PROTO_OFF_TENANT_ID, 16);
	/* the magic: a request's, not a response's, and not from fewer than 4 bytes */
	memcpy(w, "MBQ1", 4);
	CU_ASSERT(mb_proto_peek_is_request(w, 64));
	CU_ASSERT(mb_proto_peek_is_request(w, 4));
	CU_ASSERT(!mb_proto_peek_is_request(w, 3));
	CU_ASSERT(!mb_proto_peek_is_request(w, 0));
	memcpy(w, "MBR1", 4);
	CU_ASSERT(!mb_proto_peek_is_request(w, 64));
	memcpy(w, "mBQ1", 4);
	CU_ASSERT(!mb_proto_peek_is_request(w, 64));
	/* mutated headers: the readers agree with the decoder, whatever it decides */
	for (int i = 0; i < 100000; i++) {
		h = audio_req();
		h.request_id = mb_test_rand(&rng);
		h.tenant_id = (uint32_t)mb_test_rand(&rng);
		h.frag_offset = (uint32_t)(mb_test_rand(&rng) % 32000);
		mb_proto_encode_request(&h, w);
		for (int k = 0; k < (int)(mb_test_rand(&rng) % 4); k++)
			w[mb_test_rand(&rng) % 64] = (uint8_t)mb_test_rand(&rng);
		if (mb_proto_decode_request(w, 64, MB_TRANSPORT_UDP, MAXP, &out, &err) == 0) {
			CU_ASSERT_FATAL(mb_proto_peek_is_request(w, 64));
			CU_ASSERT_EQUAL_FATAL(mb_proto_peek_flags(w), out.flags);
			CU_ASSERT_EQUAL_FATAL(mb_proto_peek_request_id(w), out.request_id);
			CU_ASSERT_EQUAL_FATAL(mb_proto_peek_tenant_id(w), out.tenant_id);
			CU_ASSERT_EQUAL_FATAL(mb_proto_peek_payload_len(w), out.payload_len);
			CU_ASSERT_EQUAL_FATAL(mb_proto_peek_frag_offset(w), out.frag_offset);
		} else {
			CU_ASSERT_FATAL(err.has_id);
			CU_ASSERT_EQUAL_FATAL(mb_proto_peek_request_id(w), err.request_id);
			CU_ASSERT_EQUAL_FATAL(mb_proto_peek_tenant_id(w), err.tenant_id);
		}
	}
}

static void
test_names(void)
{
	CU_ASSERT_STRING_EQUAL(mb_status_name(MB_STATUS_OK), "OK");
	CU_ASSERT_STRING_EQUAL(mb_status_name(MB_STATUS_UNAUTHORIZED), "UNAUTHORIZED");
	CU_ASSERT_STRING_EQUAL(mb_status_name(42), "UNKNOWN_STATUS");
	CU_ASSERT_STRING_EQUAL(mb_media_name(MB_MEDIA_RGB24), "RGB24");
	CU_ASSERT_PTR_NULL(mb_media_name(0));
}

/*
 * The text of include/mediabatch/protocol.h with its comments' line breaks, leading "*" and
 * runs of blanks made one space each: what a reader reads. malloc'd.
 */
static char *
header_text(void)
{
	FILE *fp = fopen(mb_test_source_path("include/mediabatch/protocol.h"), "r");
	char line[512], *out;
	size_t n = 0, cap = 1 << 16;

	CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
	out = calloc(1, cap);
	CU_ASSERT_PTR_NOT_NULL_FATAL(out);
	while (fgets(line, sizeof(line), fp) != NULL) {
		const char *p = line + strspn(line, " \t");

		if (*p == '*' && p[1] != '/')
			p++;
		for (; *p != '\0' && n + 2 < cap; p++) {
			bool blank = *p == ' ' || *p == '\t' || *p == '\n';

			if (!blank)
				out[n++] = *p;
			else if (n > 0 && out[n - 1] != ' ')
				out[n++] = ' ';
		}
	}
	fclose(fp);
	return out;
}

/* protocol.h quotes the code's own words: an example reason, the name of an unknown status */
static void
test_header_quotes_the_code(void)
{
	struct mb_request_hdr h = audio_req();
	struct mb_proto_error err;
	uint8_t wire[64 + 100] = {0};
	char *text = header_text(), quoted[300];

	h.media = 9;
	CU_ASSERT_EQUAL(reject(&h, &err), MB_STATUS_BAD_REQUEST);
	snprintf(quoted, sizeof(quoted), "\"%s\"", err.reason);
	if (strstr(text, quoted) == NULL)
		printf("\n    protocol.h does not quote %s", quoted);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, quoted));
	snprintf(quoted, sizeof(quoted), "\"%s\"", mb_status_name(10));
	if (strstr(text, quoted) == NULL)
		printf("\n    protocol.h does not quote %s", quoted);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, quoted));
	CU_ASSERT_STRING_EQUAL(mb_status_name(10), mb_status_name(~0u));
	/* a whole datagram's length is refused, as mb_proto_decode_request() says */
	h = audio_req();
	mb_proto_encode_request(&h, wire);
	CU_ASSERT_EQUAL(
		mb_proto_decode_request(wire, sizeof(wire), MB_TRANSPORT_UDP, MAXP, &h, &err), -1);
	CU_ASSERT_STRING_EQUAL(err.reason, "header: 164 bytes, expected 64");
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "refused \"header: N bytes, expected 64\""));
	CU_ASSERT_EQUAL(
		mb_proto_decode_request(wire, MB_PROTO_HDR_LEN, MB_TRANSPORT_UDP, MAXP, &h, &err),
		0);
	free(text);
}

static const struct mb_test_case cases[] = {
	{"request wire layout is little-endian at the documented offsets", test_wire_layout},
	{"request round trip", test_request_round_trip},
	{"response round trip and reserved bytes", test_response_round_trip},
	{"header length; request id readable from 16 bytes", test_header_shape},
	{"magic, version, unknown flags, reserved", test_magic_version_flags},
	{"model name: empty, spaces, padding, non-ASCII", test_model_field},
	{"payload_len: zero, too large, partial samples; frag_offset", test_payload_rules},
	{"cancel: no payload, no model needed", test_cancel},
	{"media shapes: audio, RGB24, F32", test_media_shapes},
	{"200000 mutated headers: never a crash, always a reason", test_fuzz},
	{"field readers: offsets, byte order, magic; agree with the decoder", test_field_readers},
	{"status and media names", test_names},
	{"protocol.h quotes the code's words", test_header_quotes_the_code},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"protocol", NULL, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("proto_test", suites);
}
