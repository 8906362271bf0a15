/*
 * proto.c: the protocol v1 codec (include/mediabatch/protocol.h), shared by the service
 * and the client library.
 *
 * Fields are read and written byte by byte in little-endian order, so the code is the same
 * on any host. Validation follows docs/protocol.md rule by rule and stops at the first
 * violation with a reason that names the field, because that is what a client developer
 * needs to fix their encoder. Pure functions; any thread.
 */
#include "mediabatch/protocol.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const uint8_t REQ_MAGIC[4] = {'M', 'B', 'Q', '1'};
static const uint8_t RESP_MAGIC[4] = {'M', 'B', 'R', '1'};

/* The header's own readers (mediabatch/protocol.h): one definition of the byte order. */
static uint16_t
rd16(const uint8_t *p)
{
	return mb_proto_le16(p);
}

static uint32_t
rd32(const uint8_t *p)
{
	return mb_proto_le32(p);
}

static uint64_t
rd64(const uint8_t *p)
{
	return mb_proto_le64(p);
}

static void
wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void
wr32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void
wr64(uint8_t *p, uint64_t v)
{
	wr32(p, (uint32_t)v);
	wr32(p + 4, (uint32_t)(v >> 32));
}

static const char *const STATUS_NAMES[MB_STATUS_COUNT] = {
	"OK",	     "BAD_REQUEST", "UNKNOWN_MODEL", "OVERLOADED", "TIMEOUT",
	"CANCELLED", "MODEL_ERROR", "UNAVAILABLE",   "TOO_LARGE",  "UNAUTHORIZED",
};

const char *
mb_status_name(unsigned int status)
{
	return status < MB_STATUS_COUNT ? STATUS_NAMES[status] : "UNKNOWN_STATUS";
}

const char *
mb_media_name(unsigned int media)
{
	switch (media) {
	case MB_MEDIA_PCM_S16LE:
		return "PCM_S16LE";
	case MB_MEDIA_PCM_F32LE:
		return "PCM_F32LE";
	case MB_MEDIA_RGB24:
		return "RGB24";
	case MB_MEDIA_F32:
		return "F32";
	}
	return NULL;
}

/* Copy a model field into a C string; non-printable bytes become '?'. */
static void
copy_model(const uint8_t *field, char out[MB_PROTO_MODEL_LEN + 1])
{
	int i;

	for (i = 0; i < MB_PROTO_MODEL_LEN && field[i] != 0; i++)
		out[i] = field[i] >= 0x20 && field[i] < 0x7f ? (char)field[i] : '?';
	out[i] = '\0';
}

void
mb_proto_encode_request(const struct mb_request_hdr *h, uint8_t out[MB_PROTO_HDR_LEN])
{
	size_t n = strnlen(h->model, MB_PROTO_MODEL_LEN);

	memset(out, 0, MB_PROTO_HDR_LEN);
	memcpy(out, REQ_MAGIC, 4);
	wr16(out + 4, h->version);
	wr16(out + 6, h->flags);
	wr64(out + 8, h->request_id);
	wr32(out + 16, h->tenant_id);
	wr32(out + 20, h->timeout_ms);
	memcpy(out + 24, h->model, n);
	wr16(out + 40, h->media);
	wr16(out + 42, h->channels);
	wr32(out + 44, h->sample_rate);
	wr16(out + 48, h->frames);
	wr16(out + 50, h->height);
	wr16(out + 52, h->width);
	wr16(out + 54, h->reserved);
	wr32(out + 56, h->payload_len);
	wr32(out + 60, h->frag_offset);
}

void
mb_proto_encode_response(const struct mb_response_hdr *h, uint8_t out[MB_PROTO_HDR_LEN])
{
	size_t n = strnlen(h->model, MB_PROTO_MODEL_LEN);

	memset(out, 0, MB_PROTO_HDR_LEN);
	memcpy(out, RESP_MAGIC, 4);
	wr16(out + 4, h->version);
	wr16(out + 6, h->status);
	wr64(out + 8, h->request_id);
	wr32(out + 16, h->tenant_id);
	wr32(out + 20, h->queue_us);
	wr32(out + 24, h->compute_us);
	wr16(out + 28, h->batch_size);
	wr16(out + 30, h->device);
	memcpy(out + 32, h->model, n);
	wr16(out + 48, h->result_type);
	wr16(out + 50, h->rows);
	wr16(out + 52, h->cols);
	wr16(out + 54, h->flags);
	wr32(out + 56, h->result_len);
}

#define FAIL(st, ...)                                                                              \
	do {                                                                                       \
		err->status = (st);                                                                \
		snprintf(err->reason, sizeof(err->reason), __VA_ARGS__);                           \
		return -1;                                                                         \
	} while (0)

/* Bytes n..15 of the 16-byte @p field are 0. */
static int
zero_padded(const uint8_t *field, int n)
{
	uint64_t lo = rd64(field), hi = rd64(field + 8);

	if (n >= 16)
		return 1;
	if (n >= 8)
		return (hi >> (8 * (n - 8))) == 0;
	return (lo >> (8 * n)) == 0 && hi == 0;
}

/* Model field: printable ASCII without spaces, then NUL padding to 16 bytes. */
static int
check_model(const uint8_t *field, int allow_empty, struct mb_proto_error *err)
{
	int n = 0;

	while (n < MB_PROTO_MODEL_LEN && field[n] != 0) {
		if (field[n] <= 0x20 || field[n] >= 0x7f)
			FAIL(MB_STATUS_BAD_REQUEST,
			     "model: byte %d is 0x%02x; names are printable ASCII without spaces",
			     n, field[n]);
		n++;
	}
	/* the padding a word at a time (every datagram is decoded); byte by byte only to name
	 * the first stray byte */
	if (!zero_padded(field, n)) {
		for (int i = n; i < MB_PROTO_MODEL_LEN; i++)
			if (field[i] != 0)
				FAIL(MB_STATUS_BAD_REQUEST,
				     "model: byte %d follows the terminating NUL but is not 0 "
				     "(NUL-pad the name)",
				     i);
	}
	if (n == 0 && !allow_empty)
		FAIL(MB_STATUS_BAD_REQUEST,
		     "model: empty; name the model to run (e.g. \"logmel\")");
	return 0;
}

static int
check_zero(const char *field, unsigned int media, uint32_t v, struct mb_proto_error *err)
{
	if (v != 0)
		FAIL(MB_STATUS_BAD_REQUEST, "%s: must be 0 for %s, got %" PRIu32, field,
		     mb_media_name(media), v);
	return 0;
}

/* The media's name is looked up only for a reason text: every datagram is decoded. */
static int
check_media(const struct mb_request_hdr *h, struct mb_proto_error *err)
{
	uint64_t expect;

	if (h->media < MB_MEDIA_PCM_S16LE || h->media > MB_MEDIA_F32)
		FAIL(MB_STATUS_BAD_REQUEST,
		     "media: %u is not a known media type (1 PCM_S16LE, 2 PCM_F32LE, 3 RGB24, 4 "
		     "F32)",
		     h->media);
	switch (h->media) {
	case MB_MEDIA_PCM_S16LE:
	case MB_MEDIA_PCM_F32LE: {
		unsigned int bytes = h->media == MB_MEDIA_PCM_S16LE ? 2 : 4;

		if (h->channels != 1)
			FAIL(MB_STATUS_BAD_REQUEST, "channels: %u, but %s audio is mono (1)",
			     h->channels, mb_media_name(h->media));
		if (h->sample_rate == 0)
			FAIL(MB_STATUS_BAD_REQUEST,
			     "sample_rate: 0; audio needs its rate (e.g. 16000)");
		if (check_zero("frames", h->media, h->frames, err) ||
		    check_zero("height", h->media, h->height, err) ||
		    check_zero("width", h->media, h->width, err))
			return -1;
		if (h->payload_len % bytes != 0)
			FAIL(MB_STATUS_BAD_REQUEST,
			     "payload_len: %" PRIu32 " is not a whole number of %u-byte %s samples",
			     h->payload_len, bytes, mb_media_name(h->media));
		return 0;
	}
	case MB_MEDIA_RGB24:
		if (h->channels != 3)
			FAIL(MB_STATUS_BAD_REQUEST, "channels: %u, but RGB24 has 3", h->channels);
		if (check_zero("sample_rate", h->media, h->sample_rate, err))
			return -1;
		if (h->frames == 0 || h->height == 0 || h->width == 0)
			FAIL(MB_STATUS_BAD_REQUEST,
			     "frames/height/width: %ux%ux%u; RGB24 needs all three at least 1",
			     h->frames, h->height, h->width);
		expect = (uint64_t)h->frames * h->height * h->width * 3;
		if (expect != h->payload_len)
			FAIL(MB_STATUS_BAD_REQUEST,
			     "payload_len: %" PRIu32
			     " bytes, but RGB24 %ux%ux%u (frames x height x "
			     "width x 3) is %" PRIu64,
			     h->payload_len, h->frames, h->height, h->width, expect);
		return 0;
	case MB_MEDIA_F32:
		if (check_zero("channels", h->media, h->channels, err) ||
		    check_zero("sample_rate", h->media, h->sample_rate, err) ||
		    check_zero("width", h->media, h->width, err))
			return -1;
		if (h->frames == 0 || h->height == 0)
			FAIL(MB_STATUS_BAD_REQUEST,
			     "frames/height: %ux%u; an F32 tensor needs rows (frames) and cols "
			     "(height) at least 1",
			     h->frames, h->height);
		expect = (uint64_t)h->frames * h->height * 4;
		if (expect != h->payload_len)
			FAIL(MB_STATUS_BAD_REQUEST,
			     "payload_len: %" PRIu32 " bytes, but F32 %ux%u (rows x cols x 4) is "
			     "%" PRIu64,
			     h->payload_len, h->frames, h->height, expect);
		return 0;
	}
	return 0;
}

static int
decode_request(const uint8_t *buf, size_t len, enum mb_transport transport, uint32_t max_payload,
	       struct mb_request_hdr *h, struct mb_proto_error *err)
{
	if (buf == NULL || len != MB_PROTO_HDR_LEN)
		FAIL(MB_STATUS_BAD_REQUEST, "header: %zu bytes, expected %d", buf ? len : 0,
		     MB_PROTO_HDR_LEN);
	if (!mb_proto_peek_is_request(buf, len))
		FAIL(MB_STATUS_BAD_REQUEST, "magic: expected \"MBQ1\"%s",
		     memcmp(buf, RESP_MAGIC, 4) == 0 ? " (this is a response header)" : "");
	h->version = rd16(buf + 4);
	h->flags = mb_proto_peek_flags(buf);
	h->request_id = err->request_id;
	h->tenant_id = err->tenant_id;
	h->timeout_ms = rd32(buf + 20);
	h->media = rd16(buf + 40);
	h->channels = rd16(buf + 42);
	h->sample_rate = rd32(buf + 44);
	h->frames = rd16(buf + 48);
	h->height = rd16(buf + 50);
	h->width = rd16(buf + 52);
	h->reserved = rd16(buf + 54);
	h->payload_len = mb_proto_peek_payload_len(buf);
	h->frag_offset = mb_proto_peek_frag_offset(buf);

	if (h->version != MB_PROTO_VERSION)
		FAIL(MB_STATUS_BAD_REQUEST, "version: %u is not supported (this service speaks %d)",
		     h->version, MB_PROTO_VERSION);
	if (h->flags & ~MB_FLAG_KNOWN)
		FAIL(MB_STATUS_BAD_REQUEST,
		     "flags: unknown bits 0x%04x (only CANCEL 0x1 and PRIORITY 0x2 exist)",
		     h->flags & ~MB_FLAG_KNOWN);
	if (check_model(buf + 24, h->flags & MB_FLAG_CANCEL, err) < 0)
		return -1;
	/* valid: printable up to its NUL, zeros after it, so copy_model() is a plain copy */
	memcpy(h->model, buf + 24, MB_PROTO_MODEL_LEN);
	h->model[MB_PROTO_MODEL_LEN] = '\0';
	if (h->reserved != 0)
		FAIL(MB_STATUS_BAD_REQUEST, "reserved (offset 54): must be 0, got %u", h->reserved);
	if (transport == MB_TRANSPORT_ZMQ && h->frag_offset != 0)
		FAIL(MB_STATUS_BAD_REQUEST, "frag_offset: must be 0 over ZeroMQ, got %" PRIu32,
		     h->frag_offset);
	if (h->flags & MB_FLAG_CANCEL) {
		if (h->payload_len != 0)
			FAIL(MB_STATUS_BAD_REQUEST,
			     "payload_len: %" PRIu32 ", but a cancel carries no payload (0)",
			     h->payload_len);
		return 0;
	}
	if (h->payload_len == 0)
		FAIL(MB_STATUS_BAD_REQUEST, "payload_len: 0 is only allowed on a cancel");
	if (h->payload_len > max_payload)
		FAIL(MB_STATUS_TOO_LARGE,
		     "payload_len: %" PRIu32 " bytes exceeds this service's maximum of %" PRIu32,
		     h->payload_len, max_payload);
	if (transport == MB_TRANSPORT_UDP && h->frag_offset >= h->payload_len)
		FAIL(MB_STATUS_BAD_REQUEST,
		     "frag_offset: %" PRIu32 " is not inside the %" PRIu32 "-byte payload",
		     h->frag_offset, h->payload_len);
	return check_media(h, err);
}

int
mb_proto_decode_request(const uint8_t *buf, size_t len, enum mb_transport transport,
			uint32_t max_payload, struct mb_request_hdr *out,
			struct mb_proto_error *err)
{
	int rc;

	/* Not a memset of *err: its 256-byte reason is written only on failure (the UDP rx
	 * path decodes every datagram). */
	err->status = MB_STATUS_OK;
	err->has_id = 0;
	err->request_id = 0;
	err->tenant_id = 0;
	err->model[0] = '\0';
	err->reason[0] = '\0';
	memset(out, 0, sizeof(*out));
	/* Whatever can be read to address an answer, even from a broken header. */
	if (buf != NULL && len >= 16) {
		err->has_id = 1;
		err->request_id = mb_proto_peek_request_id(buf);
		if (len >= 20)
			err->tenant_id = mb_proto_peek_tenant_id(buf);
	}
	rc = decode_request(buf, len, transport, max_payload, out, err);
	/* The model as far as it can be read: a valid header's is already decoded. */
	if (rc == 0)
		memcpy(err->model, out->model, sizeof(err->model));
	else if (buf != NULL && len >= 40)
		copy_model(buf + 24, err->model);
	return rc;
}

int
mb_proto_decode_response(const uint8_t *buf, size_t len, struct mb_response_hdr *out, char *reason,
			 size_t reason_len)
{
	memset(out, 0, sizeof(*out));
	if (buf == NULL || len != MB_PROTO_HDR_LEN) {
		snprintf(reason, reason_len, "response header: %zu bytes, expected %d",
			 buf ? len : 0, MB_PROTO_HDR_LEN);
		return -1;
	}
	if (memcmp(buf, RESP_MAGIC, 4) != 0) {
		snprintf(reason, reason_len, "response magic: expected \"MBR1\"");
		return -1;
	}
	out->version = rd16(buf + 4);
	if (out->version != MB_PROTO_VERSION) {
		snprintf(reason, reason_len, "response version %u, this client speaks %d",
			 out->version, MB_PROTO_VERSION);
		return -1;
	}
	out->status = rd16(buf + 6);
	out->request_id = rd64(buf + 8);
	out->tenant_id = rd32(buf + 16);
	out->queue_us = rd32(buf + 20);
	out->compute_us = rd32(buf + 24);
	out->batch_size = rd16(buf + 28);
	out->device = rd16(buf + 30);
	copy_model(buf + 32, out->model);
	out->result_type = rd16(buf + 48);
	out->rows = rd16(buf + 50);
	out->cols = rd16(buf + 52);
	out->flags = rd16(buf + 54);
	out->result_len = rd32(buf + 56);
	return 0;
}

uint32_t
mb_proto_media_length(const struct mb_request_hdr *h)
{
	switch (h->media) {
	case MB_MEDIA_PCM_S16LE:
		return h->payload_len / 2;
	case MB_MEDIA_PCM_F32LE:
		return h->payload_len / 4;
	case MB_MEDIA_RGB24:
	case MB_MEDIA_F32:
		return h->frames;
	}
	return 0;
}

double
mb_proto_audio_seconds(const struct mb_request_hdr *h)
{
	if ((h->media != MB_MEDIA_PCM_S16LE && h->media != MB_MEDIA_PCM_F32LE) ||
	    h->sample_rate == 0)
		return 0.0;
	return (double)mb_proto_media_length(h) / (double)h->sample_rate;
}
