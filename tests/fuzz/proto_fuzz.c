/*
 * proto_fuzz.c: libFuzzer target for the protocol v1 codec (net/proto.c).
 *
 * The input is what a client (or a UDP sender) puts in the header frame: any number of
 * bytes. Each input is decoded as a request over both transports and with two payload
 * limits (the default 8 MiB and no limit), and as a response header (what the client
 * library decodes from the service). Checked, from include/mediabatch/protocol.h and
 * docs/protocol.md:
 *
 * - a refusal is BAD_REQUEST or TOO_LARGE (TOO_LARGE only for a payload over the limit),
 *   with a non-empty reason, the request id and tenant exactly when bytes 8..15 (16..19)
 *   are there, and a printable model name of at most 16 characters;
 * - an accepted request obeys every rule (cancel carries no payload, frag_offset 0 over
 *   ZeroMQ and inside the payload over UDP, payload_len within the limit and equal to what
 *   the media's shape says), and encoding it gives back exactly the 64 bytes decoded;
 * - an accepted response re-encodes to a header that decodes to the same struct.
 */
#include <math.h>

#include "mb_fuzz.h"
#include "mediabatch/protocol.h"

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

static MB_FUZZ_UNTRACED int
printable_name(const char *s)
{
	size_t n = strnlen(s, MB_PROTO_MODEL_LEN + 1);

	if (n > MB_PROTO_MODEL_LEN)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] >= 0x7f)
			return 0;
	return 1;
}

static MB_FUZZ_UNTRACED void
check_refusal(const uint8_t *buf, size_t len, uint32_t max_payload, const struct mb_proto_error *e)
{
	MB_FUZZ_CHECK(e->status == MB_STATUS_BAD_REQUEST || e->status == MB_STATUS_TOO_LARGE,
		      "status %d", e->status);
	MB_FUZZ_CHECK(mb_fuzz_terminated(e->reason, sizeof(e->reason)) && e->reason[0] != '\0',
		      "a refusal needs a reason");
	MB_FUZZ_CHECK(e->has_id == (len >= 16), "has_id %d for %zu bytes", e->has_id, len);
	if (len >= 16)
		MB_FUZZ_CHECK(e->request_id == rd64(buf + 8), "request id not the one sent");
	MB_FUZZ_CHECK(e->tenant_id == (len >= 20 ? rd32(buf + 16) : 0), "tenant id");
	MB_FUZZ_CHECK(printable_name(e->model), "model '%s' in the refusal", e->model);
	if (len < 40)
		MB_FUZZ_CHECK(e->model[0] == '\0', "model read from a %zu-byte header", len);
	if (e->status == MB_STATUS_TOO_LARGE)
		MB_FUZZ_CHECK(len == MB_PROTO_HDR_LEN && rd32(buf + 56) > max_payload,
			      "TOO_LARGE for a payload within the limit: %s", e->reason);
	MB_FUZZ_CHECK(mb_status_name(e->status) != NULL, "status name");
}

static MB_FUZZ_UNTRACED void
check_request(const uint8_t *buf, size_t len, enum mb_transport tr, uint32_t max_payload,
	      const struct mb_request_hdr *h, const struct mb_proto_error *e)
{
	uint8_t again[MB_PROTO_HDR_LEN];
	uint64_t expect;
	double secs;

	MB_FUZZ_CHECK(len == MB_PROTO_HDR_LEN, "accepted a %zu-byte header", len);
	MB_FUZZ_CHECK(e->status == MB_STATUS_OK && e->reason[0] == '\0', "error filled on success");
	MB_FUZZ_CHECK(strcmp(e->model, h->model) == 0, "model '%s' vs '%s'", e->model, h->model);
	MB_FUZZ_CHECK(h->version == MB_PROTO_VERSION, "version %u", h->version);
	MB_FUZZ_CHECK((h->flags & ~MB_FLAG_KNOWN) == 0, "flags 0x%x", h->flags);
	MB_FUZZ_CHECK(h->reserved == 0, "reserved %u", h->reserved);
	MB_FUZZ_CHECK(printable_name(h->model), "model '%s'", h->model);
	for (size_t i = 0; h->model[i] != '\0'; i++)
		MB_FUZZ_CHECK(h->model[i] != ' ', "space in model '%s'", h->model);
	if (tr == MB_TRANSPORT_ZMQ)
		MB_FUZZ_CHECK(h->frag_offset == 0, "frag_offset %u over ZeroMQ", h->frag_offset);

	/* the decoded header is exactly the bytes it came from */
	mb_proto_encode_request(h, again);
	MB_FUZZ_CHECK(memcmp(again, buf, MB_PROTO_HDR_LEN) == 0, "re-encoding differs");

	if (h->flags & MB_FLAG_CANCEL) {
		MB_FUZZ_CHECK(h->payload_len == 0, "cancel with payload %u", h->payload_len);
		return;
	}
	MB_FUZZ_CHECK(h->model[0] != '\0', "empty model on a request");
	MB_FUZZ_CHECK(h->payload_len > 0 && h->payload_len <= max_payload, "payload_len %u",
		      h->payload_len);
	if (tr == MB_TRANSPORT_UDP)
		MB_FUZZ_CHECK(h->frag_offset < h->payload_len, "frag_offset %u of %u",
			      h->frag_offset, h->payload_len);
	switch (h->media) {
	case MB_MEDIA_PCM_S16LE:
	case MB_MEDIA_PCM_F32LE:
		MB_FUZZ_CHECK(h->channels == 1 && h->sample_rate > 0 && h->frames == 0 &&
				      h->height == 0 && h->width == 0,
			      "audio shape");
		MB_FUZZ_CHECK(h->payload_len % (h->media == MB_MEDIA_PCM_S16LE ? 2 : 4) == 0,
			      "partial sample");
		MB_FUZZ_CHECK(mb_proto_media_length(h) > 0, "no samples");
		secs = mb_proto_audio_seconds(h);
		MB_FUZZ_CHECK(isfinite(secs) && secs > 0, "audio seconds %g", secs);
		break;
	case MB_MEDIA_RGB24:
		expect = (uint64_t)h->frames * h->height * h->width * 3;
		MB_FUZZ_CHECK(h->channels == 3 && h->sample_rate == 0 && expect == h->payload_len,
			      "RGB24 shape");
		MB_FUZZ_CHECK(mb_proto_media_length(h) == h->frames, "RGB24 frames");
		MB_FUZZ_CHECK(mb_proto_audio_seconds(h) == 0.0, "seconds of video");
		break;
	case MB_MEDIA_F32:
		expect = (uint64_t)h->frames * h->height * 4;
		MB_FUZZ_CHECK(h->channels == 0 && h->sample_rate == 0 && h->width == 0 &&
				      expect == h->payload_len,
			      "F32 shape");
		MB_FUZZ_CHECK(mb_proto_media_length(h) == h->frames, "F32 rows");
		break;
	default:
		MB_FUZZ_CHECK(0, "accepted media %u", h->media);
	}
	MB_FUZZ_CHECK(mb_media_name(h->media) != NULL, "media name");
}

static MB_FUZZ_UNTRACED void
check_response(const uint8_t *buf, size_t len)
{
	struct mb_response_hdr r, r2;
	uint8_t wire[MB_PROTO_HDR_LEN];
	char reason[128], reason2[128];
	int rc;

	memset(reason, 0x55, sizeof(reason));
	rc = mb_proto_decode_response(buf, len, &r, reason, sizeof(reason));
	if (rc != 0) {
		MB_FUZZ_CHECK(rc == -1, "rc %d", rc);
		MB_FUZZ_CHECK(mb_fuzz_terminated(reason, sizeof(reason)) && reason[0] != '\0',
			      "a failed response decode needs a reason");
		return;
	}
	MB_FUZZ_CHECK(len == MB_PROTO_HDR_LEN && r.version == MB_PROTO_VERSION, "accepted");
	MB_FUZZ_CHECK(r.request_id == rd64(buf + 8) && r.tenant_id == rd32(buf + 16), "ids");
	MB_FUZZ_CHECK(r.result_len == rd32(buf + 56), "result_len");
	MB_FUZZ_CHECK(printable_name(r.model), "model '%s'", r.model);
	MB_FUZZ_CHECK(mb_status_name(r.status) != NULL, "status name");
	/* what the client prints re-encodes and decodes to itself */
	mb_proto_encode_response(&r, wire);
	rc = mb_proto_decode_response(wire, sizeof(wire), &r2, reason2, sizeof(reason2));
	MB_FUZZ_CHECK(rc == 0 && memcmp(&r, &r2, sizeof(r)) == 0, "response round trip");
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	mb_fuzz_init(0);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t limits[] = {8u << 20, UINT32_MAX};
	static const enum mb_transport transports[] = {MB_TRANSPORT_ZMQ, MB_TRANSPORT_UDP};

	for (size_t t = 0; t < 2; t++) {
		for (size_t l = 0; l < 2; l++) {
			struct mb_request_hdr h;
			struct mb_proto_error e;
			int rc;

			memset(&e, 0x55, sizeof(e));
			rc = mb_proto_decode_request(data, size, transports[t], limits[l], &h, &e);
			MB_FUZZ_CHECK(rc == 0 || rc == -1, "rc %d", rc);
			if (rc == 0)
				check_request(data, size, transports[t], limits[l], &h, &e);
			else
				check_refusal(data, size, limits[l], &e);
		}
	}
	check_response(data, size);
	return 0;
}
