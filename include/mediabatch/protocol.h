/**
 * @file
 * mediabatch wire protocol, version 1 (docs/protocol.md): constants, header structs, and
 * the one encoder, decoder and validator that the service and the client library share.
 *
 * Headers are 64 bytes, little-endian, on the wire; the structs here are their decoded,
 * host-order form. Decoding never trusts the input: every rule of docs/protocol.md is
 * checked, and a violation yields a status (BAD_REQUEST or TOO_LARGE) with a reason that
 * names the field, e.g. "media: 9 is not a known media type (1 PCM_S16LE, 2 PCM_F32LE, 3
 * RGB24, 4 F32)".
 *
 * Threads: every function is pure (no shared state) and may be called from any thread; the
 * field readers (mb_proto_peek_*()) are inline, for the UDP rx path's per-datagram use.
 */
#ifndef MEDIABATCH_PROTOCOL_H
#define MEDIABATCH_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MB_PROTO_VERSION 1
#define MB_PROTO_HDR_LEN 64
#define MB_PROTO_MODEL_LEN 16	/**< bytes of the model field; names are 1..16 characters */
#define MB_PROTO_REASON_MAX 256 /**< longest reason text the service sends */

/** Request flags (header offset 6). */
#define MB_FLAG_CANCEL 0x0001u
#define MB_FLAG_PRIORITY 0x0002u
#define MB_FLAG_KNOWN (MB_FLAG_CANCEL | MB_FLAG_PRIORITY)

/** Response status (header offset 6). */
enum mb_status {
	MB_STATUS_OK = 0,
	MB_STATUS_BAD_REQUEST = 1,
	MB_STATUS_UNKNOWN_MODEL = 2,
	MB_STATUS_OVERLOADED = 3,
	MB_STATUS_TIMEOUT = 4,
	MB_STATUS_CANCELLED = 5,
	MB_STATUS_MODEL_ERROR = 6,
	MB_STATUS_UNAVAILABLE = 7,
	MB_STATUS_TOO_LARGE = 8,
	MB_STATUS_UNAUTHORIZED = 9,
	MB_STATUS_COUNT,
};

/** Media types (request offset 40). */
enum mb_media {
	MB_MEDIA_PCM_S16LE = 1, /**< mono audio, 16-bit signed samples */
	MB_MEDIA_PCM_F32LE = 2, /**< mono audio, 32-bit float samples */
	MB_MEDIA_RGB24 = 3,	/**< video frames, 3 bytes per pixel */
	MB_MEDIA_F32 = 4,	/**< a rows x cols tensor of 32-bit floats */
};

/** Result types (response offset 48). */
enum mb_result_type {
	MB_RESULT_NONE = 0,
	MB_RESULT_F32 = 1,  /**< rows x cols floats */
	MB_RESULT_TOPK = 2, /**< rows pairs of (u32 class, f32 score) */
	MB_RESULT_TEXT = 3, /**< UTF-8 text: the reason of every status but OK */
};

/** Device index meaning "did not run". */
#define MB_DEVICE_NONE 0xFFFFu

/** A request header, decoded. */
struct mb_request_hdr {
	uint16_t version;
	uint16_t flags;
	uint64_t request_id;
	uint32_t tenant_id;
	uint32_t timeout_ms;
	char model[MB_PROTO_MODEL_LEN + 1]; /**< NUL-terminated copy */
	uint16_t media;
	uint16_t channels;
	uint32_t sample_rate;
	uint16_t frames; /**< RGB24: frames; F32: rows */
	uint16_t height; /**< RGB24: height; F32: cols */
	uint16_t width;	 /**< RGB24: width */
	uint16_t reserved;
	uint32_t payload_len;
	uint32_t frag_offset;
};

/** A response header, decoded. */
struct mb_response_hdr {
	uint16_t version;
	uint16_t status;
	uint64_t request_id;
	uint32_t tenant_id;
	uint32_t queue_us;
	uint32_t compute_us;
	uint16_t batch_size;
	uint16_t device;
	char model[MB_PROTO_MODEL_LEN + 1];
	uint16_t result_type;
	uint16_t rows;
	uint16_t cols;
	uint16_t flags; /**< MB_RESP_FLAG_* (offset 54) */
	uint32_t result_len;
};

/**
 * Response flag (offset 54, bit 0): this BAD_REQUEST refuses a request whose request_id was
 * already in flight for the same client and tenant. It answers the duplicate send only: the
 * earlier request is not affected and gets its own response, so a client matching replies
 * by id must not take this one as the earlier request's answer.
 */
#define MB_RESP_FLAG_DUPLICATE 0x0001u

/** Transport a request arrived on: validation differs slightly (frag_offset). */
enum mb_transport {
	MB_TRANSPORT_ZMQ = 0,
	MB_TRANSPORT_UDP = 1,
};

/** Where a decode failure leaves the request id: usable to address an answer or not. */
struct mb_proto_error {
	enum mb_status status; /**< BAD_REQUEST or TOO_LARGE */
	int has_id;	       /**< request_id (and maybe tenant_id) could be read */
	uint64_t request_id;
	uint32_t tenant_id;
	char model[MB_PROTO_MODEL_LEN + 1];
	char reason[MB_PROTO_REASON_MAX];
};

/**
 * @name Request header fields, read from the wire bytes
 *
 * For code that needs a field before a full decode, or instead of one: the UDP rx path
 * keys its index on request_id and tenant_id and tells a whole request from a slice of one
 * (frag_offset, payload_len) before it decodes anything. Each reads its field at its offset
 * of docs/protocol.md's table, little-endian on the wire, in host order on any host; the
 * caller makes sure @p buf holds the field (offset + size bytes). No validation: the value
 * as sent, whether or not mb_proto_decode_request() would accept the header.
 * @{
 */
#define MB_PROTO_OFF_FLAGS 6
#define MB_PROTO_OFF_REQUEST_ID 8
#define MB_PROTO_OFF_TENANT_ID 16
#define MB_PROTO_OFF_PAYLOAD_LEN 56
#define MB_PROTO_OFF_FRAG_OFFSET 60

/** 2, 4, 8 little-endian bytes at @p p (compilers make each one load on x86 and Arm). */
static inline uint16_t
mb_proto_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t
mb_proto_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t
mb_proto_le64(const uint8_t *p)
{
	return (uint64_t)mb_proto_le32(p) | (uint64_t)mb_proto_le32(p + 4) << 32;
}

/** The first 4 of @p len bytes are the request magic "MBQ1" (false when @p len < 4). */
static inline int
mb_proto_peek_is_request(const uint8_t *buf, size_t len)
{
	return len >= 4 && buf[0] == 'M' && buf[1] == 'B' && buf[2] == 'Q' && buf[3] == '1';
}

/** flags (offset 6): @p buf holds at least 8 bytes. */
static inline uint16_t
mb_proto_peek_flags(const uint8_t *buf)
{
	return mb_proto_le16(buf + MB_PROTO_OFF_FLAGS);
}

/** request_id (offset 8): @p buf holds at least 16 bytes. */
static inline uint64_t
mb_proto_peek_request_id(const uint8_t *buf)
{
	return mb_proto_le64(buf + MB_PROTO_OFF_REQUEST_ID);
}

/** tenant_id (offset 16): @p buf holds at least 20 bytes. */
static inline uint32_t
mb_proto_peek_tenant_id(const uint8_t *buf)
{
	return mb_proto_le32(buf + MB_PROTO_OFF_TENANT_ID);
}

/** payload_len (offset 56): @p buf holds at least 60 bytes. */
static inline uint32_t
mb_proto_peek_payload_len(const uint8_t *buf)
{
	return mb_proto_le32(buf + MB_PROTO_OFF_PAYLOAD_LEN);
}

/** frag_offset (offset 60): @p buf holds the whole 64-byte header. */
static inline uint32_t
mb_proto_peek_frag_offset(const uint8_t *buf)
{
	return mb_proto_le32(buf + MB_PROTO_OFF_FRAG_OFFSET);
}
/** @} */

/**
 * Name of a status ("OK", "BAD_REQUEST", ...), or "UNKNOWN_STATUS" for any other value (a
 * static string without the number: print the number beside it). Never NULL.
 */
const char *mb_status_name(unsigned int status);

/** Name of a media type ("PCM_S16LE", ...), or NULL. */
const char *mb_media_name(unsigned int media);

/** Write @p hdr as 64 wire bytes into @p out. The model is NUL-padded (truncated at 16). */
void mb_proto_encode_request(const struct mb_request_hdr *hdr, uint8_t out[MB_PROTO_HDR_LEN]);

/** Write @p hdr as 64 wire bytes into @p out. */
void mb_proto_encode_response(const struct mb_response_hdr *hdr, uint8_t out[MB_PROTO_HDR_LEN]);

/**
 * Decode and validate a request header from @p buf as received over @p transport, with
 * payloads limited to @p max_payload bytes. @p len is the header's length as received, and
 * a header is exactly MB_PROTO_HDR_LEN (64) bytes: the whole first frame of a ZeroMQ
 * request (a longer or shorter frame is refused), or, for a UDP datagram, 64 when the
 * datagram holds at least that (pass min(datagram length, 64): the payload slice after
 * the header is not part of it, and a whole datagram's length is refused "header: N bytes,
 * expected 64"). Returns 0 and fills @p out; or returns -1 and fills @p err: status
 * BAD_REQUEST or TOO_LARGE, a reason naming the field, and whether the request id could be
 * read (bytes 8..15 present) so an answer can be addressed. Model-specific rules (which
 * media a model accepts) are the caller's.
 */
int mb_proto_decode_request(const uint8_t *buf, size_t len, enum mb_transport transport,
			    uint32_t max_payload, struct mb_request_hdr *out,
			    struct mb_proto_error *err);

/**
 * Decode a response header (@p len: the header frame's length, exactly 64). Returns 0, or
 * -1 with a reason in @p reason (@p reason_len bytes) for a wrong length, magic or version.
 * It checks the header alone: whether the payload that follows is result_len bytes and
 * fits the result's layout (rows x cols floats, rows (u32, f32) pairs) is the receiver's
 * to check; mb_client_recv() does.
 */
int mb_proto_decode_response(const uint8_t *buf, size_t len, struct mb_response_hdr *out,
			     char *reason, size_t reason_len);

/** Samples of audio, frames of video, or rows of a tensor in a valid request (0 if none). */
uint32_t mb_proto_media_length(const struct mb_request_hdr *hdr);

/** Seconds of audio (samples / sample_rate) in a valid audio request; 0 for other media. */
double mb_proto_audio_seconds(const struct mb_request_hdr *hdr);

#ifdef __cplusplus
}
#endif

#endif /* MEDIABATCH_PROTOCOL_H */
