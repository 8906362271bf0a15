/**
 * @file
 * Private to libmediabatch (net/client.c, net/fleet.c): what the one-daemon client and the
 * fleet client share. Not exported from libmediabatch.so (libmediabatch.map).
 */
#ifndef MB_CLIENT_INTERNAL_H
#define MB_CLIENT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <zmq.h>

#include "mediabatch/client.h"

/** CURVE client options on @p sock; plaintext when @p cv or its server key is NULL. */
int mb_client_set_curve(void *sock, const struct mb_client_curve *cv, char *err, size_t err_len);

/**
 * Decode a response of @p n frames (@p frames holds the first two; a response is exactly
 * header and payload) into @p out (zeroed first; the payload copied). 0, -ENOMEM, or -EPROTO
 * with the reason in @p why (@p why_len bytes, may be 0): not 2 frames, a header that does
 * not decode, a payload of another length than result_len, or a result whose layout does
 * not match its length (docs/protocol.md, "Response header"). On -EPROTO out->data is NULL
 * and out->hdr is the header as decoded, or all zero (version 0) when it did not decode.
 */
int mb_client_parse_response(zmq_msg_t *frames, int n, struct mb_client_response *out, char *why,
			     size_t why_len);

/**
 * Read one whole message from @p sock (@p flags for its first frame, 0 or ZMQ_DONTWAIT: the
 * rest of a message arrives with it), keeping its first @p max frames in @p frames
 * (initialised here; the caller closes the first min(n, max)) and dropping the rest.
 * Returns n, the number of frames the message had, or -errno (-EAGAIN: nothing waiting)
 * with nothing kept.
 */
int mb_client_recv_msg(void *sock, zmq_msg_t *frames, int max, int flags);

/**
 * The checks of mb_client_parse_response() alone, without copying the payload: 0 with the
 * header in @p hdr, or -EPROTO with the reason in @p why and @p hdr as decoded (all zero when
 * it did not decode). For a reader that needs the header only (mediabatch-perf).
 */
int mb_client_check_response(zmq_msg_t *frames, int n, struct mb_response_hdr *hdr, char *why,
			     size_t why_len);

/** What an endpoint (or an item of a list) may be: the reason texts' second half. */
#define MB_ENDPOINT_FORMS                                                                          \
	"tcp://HOST:PORT (a name or an address, an IPv6 one in brackets; a port 1..65535), "       \
	"ipc://PATH or inproc://NAME"

struct mb_fleet;

#define MB_FLEET_MAX_SOURCES 16

/** One item of a fleet's endpoint list. */
struct mb_fleet_source {
	char scheme[16]; /**< "tcp://", or "" for another transport (used as given) */
	char host[96];	 /**< the host, IPv6 brackets removed */
	char port[16];	 /**< digits */
	bool literal;	 /**< an address, or not tcp://: never resolved */
	char raw[128];	 /**< the item as given, blanks trimmed */
};

/**
 * The addresses of @p src as endpoints ("tcp://A:PORT", "tcp://[A6]:PORT"; a literal item
 * as given), at most @p max, without repeats: their count, or -ENOENT with the reason in
 * @p err when the name does not resolve. Blocks in getaddrinfo() for a name.
 */
int mb_fleet_source_addresses(const struct mb_fleet_source *src, char (*eps)[128], int max,
			      char *err, size_t err_len);

/**
 * Parse a comma-separated endpoint list into @p src (MB_FLEET_MAX_SOURCES entries; *@p
 * n_src must be 0 on entry); *@p resolving is set when an item names a host to resolve.
 * Every item is checked alike, one alone too: tcp://HOST:PORT (port 1..65535), or another
 * transport's SCHEME://ADDRESS, which only zmq_connect() can judge (the callers connect
 * such items at once and refuse the list when that fails). 0, or -EINVAL with the item and
 * the reason in @p err: an empty item (a leading, trailing or double comma), an item that
 * is not an endpoint, more than MB_FLEET_MAX_SOURCES items. No name is resolved here.
 */
int mb_fleet_parse_endpoints(const char *list, struct mb_fleet_source *src, int *n_src,
			     bool *resolving, char *err, size_t err_len);

/** "endpoint 'ITEM': cannot connect (zmq_strerror(@p e)); accepted: ..." into @p err. */
void mb_client_connect_error(char *err, size_t err_len, const char *item, int e);

/** The fleet behind a struct mb_client whose options name several daemons (client.h). */
int mb_fleet_open(const struct mb_client_opts *o, struct mb_fleet **out, char *err, size_t err_len);
void mb_fleet_close(struct mb_fleet **f);
int mb_fleet_send(struct mb_fleet *f, const struct mb_request_hdr *hdr, const void *payload,
		  size_t len);
int mb_fleet_cancel(struct mb_fleet *f, uint32_t tenant, uint64_t request_id);
int mb_fleet_recv(struct mb_fleet *f, struct mb_client_response *out, int timeout_ms);
int mb_fleet_stats(const struct mb_fleet *f, struct mb_client_fleet_stats *st,
		   struct mb_client_daemon *daemons, int max);

#endif /* MB_CLIENT_INTERNAL_H */
