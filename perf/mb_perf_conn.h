/**
 * @file
 * mediabatch-perf's connection to the service: send request headers and payloads, receive
 * response headers with nanosecond waits.
 *
 * Over ZeroMQ this is the client library's DEALER protocol (docs/protocol.md, the same
 * codec), written against libzmq here because an open-loop generator must wait until the
 * next intended send time with sub-millisecond resolution while still taking responses the
 * moment they arrive: it sleeps in ppoll() on the socket's ZMQ_FD, which the client library
 * (zmq_poll, millisecond timeouts) does not expose.
 *
 * UDP (the daemon's DPDK ingest): requests go out as datagrams through the client library's
 * mb_udp_sender (fragmented as docs/protocol.md says); their results come back on the PUB
 * socket only, so the connection subscribes to "<tenant>/" there first and waits
 * settle_ms for the subscription to reach the service.
 *
 * A fleet (an endpoint list "tcp://a:7400,tcp://b:7400", or @p fleet for a name of many
 * addresses) goes through the client library's fleet client instead (client.h, "Fleets":
 * credit windows, failover, exactly one answer per request), whose waits have millisecond
 * resolution; mb_perf_conn_fleet_stats() gives its per-daemon figures.
 *
 * Threads: a connection is used by one thread.
 */
#ifndef MB_PERF_CONN_H
#define MB_PERF_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "mediabatch/protocol.h"

struct mb_perf_conn;

struct mb_perf_conn_opts {
	enum mb_transport transport;
	const char *endpoint; /**< borrowed for the call; "tcp://127.0.0.1:7400", or for UDP the
			       *   service's "IPv4:PORT" */
	int sndhwm;	      /**< requests queued before a send says -EAGAIN (> 0) */
	int fleet;	      /**< ZeroMQ: a fleet even for one endpoint (a name, re-resolved) */
	/* UDP only */
	const char *publish;   /**< the service's PUB endpoint; borrowed for the call */
	uint32_t tenant;       /**< results are taken from topic "<tenant>/" */
	uint32_t max_datagram; /**< bytes per datagram, header included; 0 = 1472 */
	int settle_ms;	       /**< wait after subscribing (ZeroMQ has no handshake for it) */
};

/**
 * Connect. Returns 0 or -errno; a message in @p err. ZeroMQ connects in the background: a service
 * not up yet is no error.
 */
int mb_perf_conn_open(const struct mb_perf_conn_opts *o, struct mb_perf_conn **out, char *err,
		      size_t err_len);

/** Close (pending sends dropped after 100 ms) and set *@p c to NULL. NULL accepted. */
void mb_perf_conn_close(struct mb_perf_conn **c);

/**
 * Send @p hdr and its payload (the first hdr->payload_len bytes of @p payload, borrowed
 * for the call). Never blocks: returns 0, -EAGAIN when the send queue is full, or -errno.
 */
int mb_perf_conn_send(struct mb_perf_conn *c, const struct mb_request_hdr *hdr,
		      const void *payload);

/**
 * Receive one response header, waiting at most @p timeout_ns (0: only what is there). The
 * result payload is dropped; for a status other than OK its reason text is copied into
 * @p reason (@p reason_len bytes, may be 0). Returns 0, -ETIMEDOUT, or -EPROTO for a
 * malformed response, checked as mb_client_recv() checks one (not two frames, a header that
 * does not decode, a payload of another length than result_len, a result whose layout does
 * not fit it): consumed, with its header in @p out when the header decoded (version != 0;
 * else zeroed) and "client: malformed response: WHAT" in @p reason. A fleet connection
 * never returns -EPROTO: the fleet client deals with malformed answers and counts them.
 */
int mb_perf_conn_recv(struct mb_perf_conn *c, struct mb_response_hdr *out, int64_t timeout_ns,
		      char *reason, size_t reason_len);

struct mb_client_fleet_stats;
struct mb_client_daemon;

/**
 * A fleet connection's figures (client.h's mb_client_fleet_stats()): the number of daemons,
 * or -EINVAL for a connection to one daemon.
 */
int mb_perf_conn_fleet_stats(const struct mb_perf_conn *c, struct mb_client_fleet_stats *st,
			     struct mb_client_daemon *daemons, int max);

#endif /* MB_PERF_CONN_H */
