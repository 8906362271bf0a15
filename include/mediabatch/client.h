/**
 * @file
 * The mediabatch client library: send requests to a mediabatchd over ZeroMQ, receive their
 * responses, cancel them, and subscribe to published results. The CLI `mediabatch` is
 * built on it. It is libmediabatch (with mediabatch/protocol.h), installed shared and
 * static: `cc app.c $(pkg-config --cflags --libs mediabatch)`; examples/client/ has a
 * complete program.
 *
 *     struct mb_client *c;
 *     struct mb_request_hdr h;
 *     struct mb_client_response r;
 *
 *     if (mb_client_connect(&(struct mb_client_opts){.endpoint = "tcp://127.0.0.1:7400"},
 *                           &c, err, sizeof(err)) < 0)
 *             return -1; // err says why
 *     mb_client_audio_hdr(&h, "logmel", 42, 1, MB_MEDIA_PCM_S16LE, 16000, nbytes);
 *     if (mb_client_send(c, &h, pcm, nbytes) == 0 && mb_client_recv(c, &r, 5000) == 0) {
 *             ... r.hdr.status, r.data ...
 *             mb_client_response_free(&r);
 *     }
 *     mb_client_close(&c);
 *
 * A response is freed once it was received (0); mb_client_recv() zeroes r first whatever
 * it returns, so a free after a failed receive is harmless too (there is nothing to free).
 *
 * A client is one DEALER connection; responses may arrive in any order (match them by
 * request_id). Request ids are the client's to choose, unique per tenant while in flight.
 * A cancel must come on the connection that sent the request (the same struct mb_client):
 * the service matches it to that connection's routing id, and a cancel from any other
 * connection is ignored, whatever its client id (struct mb_client_opts.client_id). A
 * connection that closes needs no cancels: the service cancels its requests that have not
 * started.
 *
 * Threads: a client or subscriber is used by one thread at a time.
 */
#ifndef MEDIABATCH_CLIENT_H
#define MEDIABATCH_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mediabatch/protocol.h"

#ifdef __cplusplus
extern "C" {
#endif

struct mb_client;
struct mb_subscriber;

/**
 * A CURVE key pair, as Z85 text (40 characters and a NUL). See mb_curve_cert_load().
 */
struct mb_curve_keys {
	char public_key[41];
	char secret_key[41]; /**< "" when only the public half is known */
};

/**
 * CURVE (docs/protocol.md, "Security"): to talk to a service that requires it, give the
 * service's public key and this client's own key pair, all Z85 text. NULL server_key:
 * plaintext.
 */
struct mb_client_curve {
	const char *server_key; /**< the service's public key (40 characters) */
	const char *public_key; /**< this client's public key */
	const char *secret_key; /**< this client's secret key */
};

struct mb_client_opts {
	/**
	 * The service's ROUTER, e.g. "tcp://127.0.0.1:7400"; or a fleet: several endpoints
	 * separated by commas ("tcp://10.0.0.1:7400,tcp://10.0.0.2:7400"), or names that
	 * resolve to several addresses with @p fleet set (see "Fleets" below). An endpoint,
	 * alone or as an item of a list, is tcp://HOST:PORT (a name or an address, an IPv6
	 * one in brackets, a port 1..65535), ipc://PATH, or inproc://NAME (which reaches
	 * nothing outside the client's own ZeroMQ context: of no use to reach a service);
	 * blanks around an item are ignored. mb_client_connect() refuses anything else, an
	 * empty item (a leading, trailing or double comma), and an item that ZeroMQ cannot
	 * connect, naming the item.
	 */
	const char *endpoint;
	/**
	 * ZeroMQ routing id (1..255 bytes), or NULL for a random one: the name the service
	 * knows this connection by while it lives (cancels and duplicate request ids are per
	 * connection; in plaintext the per-client share too). A fixed id does not make two
	 * connections one client. In plaintext a new connection under an id in use takes it
	 * over: the older one gets no more replies (two live clients under one id take it from
	 * each other), and a client may reconnect under its id at once. With CURVE, while a
	 * connection with this id is connected to a service, a second one with the same id is
	 * not served there: ZeroMQ's ROUTER ignores it, so its requests are never answered and
	 * nothing says so (its sends succeed, its receives time out), and it stays unserved
	 * even after the first closes: close it and connect again. That includes one made
	 * right after closing the previous one under the id (mb_client_close() returns before
	 * the service has seen the close; a second is ample). Either way the new connection
	 * gets none of the old one's answers.
	 */
	const char *client_id;
	/**
	 * Requests (and cancels) ZeroMQ queues while the service is not reading them (not
	 * connected yet, or behind); past that mb_client_send() returns -EAGAIN at once. Sends
	 * never block. 0 = ZeroMQ's 1000. Ignored for a fleet (@p max_outstanding bounds it).
	 */
	int sndhwm;
	struct mb_client_curve curve; /**< all NULL: plaintext */

	/* Fleets: all 0 for the defaults. Ignored for one endpoint without @p fleet. */
	bool fleet;	 /**< fleet mode even for one endpoint (a name of many addresses) */
	int resolve_ms;	 /**< re-resolve host names this often (0: 5000; -1: never) */
	int failover_ms; /**< a daemon silent this long with requests is failed over (0: 10000) */
	int window;	 /**< each daemon's first credit window, in requests (0: 16) */
	int max_window;	 /**< the most a window grows to (0: 1024) */
	int max_outstanding;	/**< requests held, sent or waiting for credit (0: 4096) */
	int request_timeout_ms; /**< deadline of a request whose timeout_ms is 0 (0: 60000) */
};

/**
 * Read a ZeroMQ certificate file (the format of CZMQ's zcert, which `mediabatch keygen`
 * writes): NAME.key holds a public key, NAME.key_secret the pair. Returns 0 and sets
 * *@p has_secret (may be NULL); or -ENOENT / -EACCES / -EINVAL (not a certificate, or a
 * key that is not 40 characters of Z85) with the file and the reason in @p err.
 */
int mb_curve_cert_load(const char *path, struct mb_curve_keys *out, bool *has_secret, char *err,
		       size_t err_len);

/**
 * Make a new key pair and write it as BASE.key (public, mode 0644) and BASE.key_secret
 * (both halves, mode 0600), @p name in their metadata. Refuses to overwrite (-EEXIST).
 * Returns 0 (and the keys in @p out, may be NULL) or -errno with a message.
 */
int mb_curve_keygen(const char *base, const char *name, struct mb_curve_keys *out, char *err,
		    size_t err_len);

/**
 * A response: header plus payload (the result, or the reason text for non-OK). The
 * functions that fill one (mb_client_recv(), mb_subscriber_recv()) zero it first, whatever
 * they return: mb_client_response_free() is safe on it after any return (a no-op unless
 * data was filled), and so is a struct that was zero-initialised.
 */
struct mb_client_response {
	struct mb_response_hdr hdr;
	void *data; /**< owned; mb_client_response_free() */
	size_t len;
};

/**
 * Connect. Returns 0, or -errno with a message in @p err: -EINVAL for an endpoint (or an
 * item of a list) that is not one of struct mb_client_opts.endpoint's forms, naming it and
 * what is accepted; or ZeroMQ's error for an item it cannot connect (e.g. -EPROTONOSUPPORT
 * for an unknown transport), naming the item. ZeroMQ connects in the background: a service
 * that is not up yet is not an error here; sends queue. Nor is a name that does not
 * resolve yet in a fleet: it is resolved again every @p resolve_ms.
 */
int mb_client_connect(const struct mb_client_opts *opts, struct mb_client **out, char *err,
		      size_t err_len);

/** Close (pending sends are dropped after 100 ms) and set *@p c to NULL. NULL accepted. */
void mb_client_close(struct mb_client **c);

/**
 * Send a request: the header (its payload_len must equal @p len) and @p len bytes of
 * payload (copied). Returns 0, -EINVAL for a header the service would refuse outright
 * (wrong payload_len), -EAGAIN if the send queue is full, or -errno.
 */
int mb_client_send(struct mb_client *c, const struct mb_request_hdr *hdr, const void *payload,
		   size_t len);

/** Ask the service to cancel request @p request_id of @p tenant (no response of its own). */
int mb_client_cancel(struct mb_client *c, uint32_t tenant, uint64_t request_id);

/**
 * Receive the next response, waiting up to @p timeout_ms (-1: forever). @p out is zeroed
 * first, on every return; on 0 it holds the response (free it with
 * mb_client_response_free()). Returns 0, -ETIMEDOUT, -EPROTO for a malformed response, or,
 * with CURVE, -EACCES when a handshake failed meanwhile: the service refused this key (it
 * is not on its allow-list) or does not speak CURVE. ZeroMQ keeps retrying the connection;
 * a refused key stays refused until the operator lists it. A fleet client waits as it
 * would anyway, and returns -EACCES instead of -ETIMEDOUT when at the end of its wait every
 * daemon of the fleet has refused the handshake (with @p timeout_ms -1: at the next refusal
 * once every daemon has refused); a loop that keeps calling it does not spin.
 *
 * Malformed (docs/protocol.md, "Response header"): not two frames (header, payload); a
 * header that is not 64 bytes, or has another magic or version; a payload of another length
 * than result_len; an F32 result whose rows x cols x 4 is not result_len, a top-k result
 * whose cols is not 2 or whose rows x 8 is not result_len, result_type 0 (none) with bytes,
 * or an unknown result_type. The response is consumed, nothing to free (out->data NULL);
 * when its header decoded (the rest being wrong), out->hdr holds it (version 1; else all
 * zero), so that the caller can tell whose answer it was (request_id, tenant_id) instead of
 * waiting for it. A response returned with 0 can so be read as its result_type says
 * without reading past data. A fleet client never returns -EPROTO: see "Fleets".
 */
int mb_client_recv(struct mb_client *c, struct mb_client_response *out, int timeout_ms);

/**
 * Free a response's data and zero data and len; safe on a response that holds none
 * (zeroed, or already freed). Any thread may free a response.
 */
void mb_client_response_free(struct mb_client_response *r);

/**
 * Fleets (docs/operating.md, "Running a fleet"). A client given several daemons keeps one
 * connection to each and spreads requests over them with credit-based flow control: each
 * daemon has a window of requests in flight (@p window at first) that grows by one per
 * window of OK answers up to @p max_window and halves on OVERLOADED; requests go round robin
 * over the daemons with credit whose expected wait (requests in flight times the recent
 * answer time relative to the fastest daemon's, equal within twice it) is within 32
 * requests of the least, so equal daemons get equal shares and a slow or busy daemon gets
 * less. Without credit anywhere a
 * request waits in the client (mb_client_send() says -EAGAIN only past @p
 * max_outstanding).
 *
 * Failover, with exactly one answer per request to the caller: the requests of a daemon
 * that disconnects, or that holds requests and has answered nothing for @p failover_ms,
 * are sent to another daemon; an OVERLOADED or UNAVAILABLE (draining, model disabled,
 * breaker open) or UNKNOWN_MODEL answer sends the request to a daemon that has not had it
 * yet. That answer reaches the caller when no such daemon is left: none that is up (or
 * connected less than a second ago and still shaking hands), not cooling down for the
 * request's model, and has not had the request; or when 8 daemons have had it. A daemon
 * that answered UNAVAILABLE or UNKNOWN_MODEL cools down for that model: it gets no new
 * request of that model for a second, and the other models' requests still go to it (a
 * draining daemon, which refuses every model, so stops getting each model at its first
 * refusal of it; one that refuses more than 8 models within the second cools down whole).
 * When every daemon up is cooling down for a model, its requests go to them all the same:
 * a model refused fleet-wide is answered that refusal at once, as by one daemon. A request
 * may so run on two daemons; the first answer is the caller's and later ones are dropped
 * (counted). A
 * request without an answer at its deadline (its timeout_ms, or @p request_timeout_ms, plus
 * 250 ms for the daemon's own TIMEOUT to arrive) is answered TIMEOUT by the client, with a
 * reason that starts "client:". Request ids must then stay unique per tenant for longer
 * than a request's deadline, not only while in flight.
 *
 * A malformed answer (see mb_client_recv()) never reaches the caller; it is counted
 * (struct mb_client_fleet_stats.malformed). When its header names a request that daemon
 * holds, the daemon has failed that request, as with UNAVAILABLE: it goes to a daemon that
 * has not had it, or, when every daemon has, the caller gets UNAVAILABLE with a reason that
 * starts "client: malformed answer from ENDPOINT: " and says what was wrong. An answer whose
 * header does not decode names no request: the request it was meant for stays with that
 * daemon, whose silence fails it over (@p failover_ms), or its deadline answers it TIMEOUT.
 *
 * Names ("tcp://mediabatchd.mediabatch.svc.cluster.local:7400") are resolved to all their
 * addresses when the client connects and every @p resolve_ms after: a new address becomes a
 * daemon, one that disappeared gets no new requests. A name that does not resolve is no
 * daemon (mb_client_fleet_stats() does not list it; resolve_failures counts the failures,
 * and a "no daemon took it" TIMEOUT gives the last one's reason). A list of addresses is
 * fixed: the client keeps those daemons and cannot grow; to add nodes, list a name that
 * resolves to them, or connect a new client. Items that are, or resolve to, the same
 * endpoint are one daemon.
 *
 * CURVE: the client has one server key, so every daemon of the fleet must have the same
 * server key pair, and each must list the client's public key. A daemon that refuses the
 * handshake is down, with why in struct mb_client_daemon.refused; a request no daemon took
 * is answered TIMEOUT with "client: no daemon took it within 300 ms (0 of the fleet up;
 * the CURVE handshake with tcp://10.0.0.2:7400 failed: the service does not accept this
 * client's key (ZAP status 400))" (the first refused daemon's), as the Python client says
 * it. mb_client_recv() waits as for any wait and returns -EACCES instead of -ETIMEDOUT when
 * every daemon has refused (see there).
 *
 * Work happens inside mb_client_send() and mb_client_recv(): a fleet client must keep
 * calling mb_client_recv().
 */
/** Why a daemon's handshake failed (struct mb_client_daemon.refused). */
enum mb_client_refusal {
	MB_CLIENT_REFUSED_NONE = 0, /**< it did not (or the daemon is up again) */
	/** CURVE: the service does not accept this client's key (not on its allow-list) */
	MB_CLIENT_REFUSED_KEY = 1,
	/** one side uses CURVE and the other does not (server_key, the service's security.mode) */
	MB_CLIENT_REFUSED_MECHANISM = 2,
	/** it failed otherwise (e.g. the service has another server key than @p server_key) */
	MB_CLIENT_REFUSED_OTHER = 3,
};

struct mb_client_daemon {
	char endpoint[128]; /**< "tcp://ADDRESS:PORT", as resolved */
	bool up;	    /**< connected (handshake done) */
	bool gone;	    /**< no longer in the names' addresses: draining out */
	/**
	 * enum mb_client_refusal: why it is down when its last handshake failed (it stays so:
	 * ZeroMQ retries, and a refused key stays refused until the service lists it). Added
	 * since MEDIABATCH_0 in what was padding: the struct's size and the other fields'
	 * offsets are unchanged, and an older library leaves it 0.
	 */
	uint8_t refused;
	double window;	     /**< its credit window */
	uint32_t in_flight;  /**< requests sent to it and not answered */
	uint64_t sent;	     /**< requests sent to it (failovers included) */
	uint64_t answered;   /**< answers from it */
	uint64_t overloaded; /**< of which OVERLOADED */
	/** requests taken from it (disconnect, silence, UNAVAILABLE, UNKNOWN_MODEL, malformed) */
	uint64_t failed_over;
	double latency_ms; /**< its recent answer time (moving average) */
};

struct mb_client_fleet_stats {
	uint32_t daemons;	     /**< daemons known (up or not, gone ones included) */
	uint32_t waiting;	     /**< requests waiting for credit */
	uint64_t resent;	     /**< requests sent again to another daemon */
	uint64_t duplicates_dropped; /**< answers after the first, dropped */
	uint64_t client_timeouts;    /**< requests answered TIMEOUT by the client */
	uint64_t resolve_failures;   /**< name resolutions that failed */
	/**
	 * Malformed answers, dropped (see "Fleets"). Appended in libmediabatch.so's
	 * MEDIABATCH_0.1: a program built against an older header keeps the smaller struct,
	 * and the library writes only that much for it.
	 */
	uint64_t malformed;
};

/**
 * A fleet client's figures: @p st (may be NULL) and up to @p max daemons. Returns the
 * number of daemons (may exceed @p max), or -EINVAL for a client of one daemon.
 */
int mb_client_fleet_stats(const struct mb_client *c, struct mb_client_fleet_stats *st,
			  struct mb_client_daemon *daemons, int max);

/** Fill @p h for mono audio: PCM_S16LE or PCM_F32LE at @p sample_rate, @p bytes long. */
void mb_client_audio_hdr(struct mb_request_hdr *h, const char *model, uint32_t tenant,
			 uint64_t request_id, enum mb_media media, uint32_t sample_rate,
			 uint32_t bytes);

/** Fill @p h for RGB24 video: @p frames of @p height x @p width. */
void mb_client_video_hdr(struct mb_request_hdr *h, const char *model, uint32_t tenant,
			 uint64_t request_id, uint16_t frames, uint16_t height, uint16_t width);

/** Fill @p h for an F32 tensor of @p rows x @p cols. */
void mb_client_tensor_hdr(struct mb_request_hdr *h, const char *model, uint32_t tenant,
			  uint64_t request_id, uint16_t rows, uint16_t cols);

/**
 * Subscribe to published results on @p endpoint (the service's PUB, e.g.
 * "tcp://127.0.0.1:7401") whose topic starts with @p prefix ("" for all, "42/" for tenant
 * 42, "42/logmel" for one model of it). @p endpoint is checked as struct
 * mb_client_opts.endpoint is (a list makes a fleet subscriber, see
 * mb_subscriber_connect_fleet()). Returns 0 or -errno with a message, as
 * mb_client_connect(). mb_subscriber_open() takes the options these take, and more.
 */
int mb_subscriber_connect(const char *endpoint, const char *prefix, struct mb_subscriber **out,
			  char *err, size_t err_len);

/**
 * The same with CURVE (@p curve NULL or its server_key NULL: plaintext). A service that
 * requires CURVE gives a subscriber only the topics of the tenants its key may subscribe
 * to: a subscription to "" becomes one to each of them, one to another tenant's topic is
 * refused (nothing arrives for it; the service counts it).
 */
int mb_subscriber_connect_curve(const char *endpoint, const char *prefix,
				const struct mb_client_curve *curve, struct mb_subscriber **out,
				char *err, size_t err_len);

/** Bytes that hold any topic ("<tenant>/<model>", at most 10 + 1 + 16 characters) and its NUL. */
#define MB_TOPIC_MAX 28

/**
 * Next published response and its topic, waiting up to @p timeout_ms. @p out is zeroed
 * first, on every return, as by mb_client_recv(). The topic goes to @p topic, NUL-terminated
 * (@p topic_len bytes, "" when nothing arrived): a longer topic is cut to @p topic_len - 1
 * bytes without notice, so give MB_TOPIC_MAX; @p topic NULL (or @p topic_len 0): not
 * copied. Returns 0, -ETIMEDOUT, -EPROTO (a message that is not a topic and a well-formed
 * response, as mb_client_recv() checks it; the topic is copied when there was one), or
 * -EACCES (CURVE: a handshake failed, as for mb_client_recv()).
 */
int mb_subscriber_recv(struct mb_subscriber *s, char *topic, size_t topic_len,
		       struct mb_client_response *out, int timeout_ms);

/**
 * Subscribe to a fleet's published results: @p endpoints is a comma-separated list of the
 * daemons' PUB endpoints, or names whose every address is one ("tcp://NAME:7401"),
 * resolved again every @p resolve_ms (0: 5000; -1: never) while mb_subscriber_recv()
 * waits: a daemon that appears is subscribed to, one that goes is left. @p curve may be
 * NULL. mb_subscriber_connect() and mb_subscriber_connect_curve() do the same for a list.
 * Returns 0 or -errno with a message: every item is checked as struct
 * mb_client_opts.endpoint's are (an empty item, one that is not an endpoint, one that
 * ZeroMQ cannot connect: refused, naming it); a name that does not resolve yet is not an
 * error.
 */
int mb_subscriber_connect_fleet(const char *endpoints, const char *prefix,
				const struct mb_client_curve *curve, int resolve_ms,
				struct mb_subscriber **out, char *err, size_t err_len);

/**
 * A subscriber's options, for mb_subscriber_open(). Zero-initialise it (designated
 * initialisers): every field's 0 is its default.
 */
struct mb_subscriber_opts {
	/** the service's PUB, or a list of a fleet's (as mb_subscriber_connect_fleet()) */
	const char *endpoint;
	/** topics to receive, by prefix (as mb_subscriber_connect()); NULL or "": all */
	const char *prefix;
	struct mb_client_curve curve; /**< all NULL: plaintext */
	bool fleet;		      /**< a fleet even for one item (a name of many addresses) */
	int resolve_ms;		      /**< a fleet's names re-resolved (0: 5000 ms; -1: never) */
	/**
	 * Published results this subscriber's ZeroMQ queue holds before it stops taking more
	 * from a publisher (ZMQ_RCVHWM, per publisher); then the service's PUB queue for it
	 * fills (its zmq.pub_sndhwm) and the service drops results for it (docs/operating.md:
	 * "A subscriber that stops reading"). A subscriber that must not miss results in a
	 * burst raises it, and keeps reading. 0: ZeroMQ's 1000; -1: no limit (memory grows
	 * while it does not read).
	 */
	int rcvhwm;
};

/**
 * Subscribe with @p o: mb_subscriber_connect_fleet() for a list or @p o->fleet, else
 * mb_subscriber_connect_curve(), with @p o->rcvhwm applied before any connection. Returns
 * 0 or -errno with a message, as they do. (libmediabatch.so: MEDIABATCH_0.1.)
 */
int mb_subscriber_open(const struct mb_subscriber_opts *o, struct mb_subscriber **out, char *err,
		       size_t err_len);

/** Close and set *@p s to NULL. NULL accepted. */
void mb_subscriber_close(struct mb_subscriber **s);

/*
 * UDP (docs/protocol.md, "UDP"): requests sent as datagrams to a service port that DPDK
 * polls. Each datagram is the 64-byte header (with frag_offset set) and one slice of the
 * payload; slices go out in order. Results come back on the PUB socket only: subscribe
 * (mb_subscriber_connect) to "<tenant>/<model>" before sending.
 */
struct mb_udp_sender;

/** Largest datagram that fits a 1500-byte Ethernet MTU: 1500 - 20 (IPv4) - 8 (UDP). */
#define MB_UDP_DEFAULT_DATAGRAM 1472

struct mb_udp_sender_opts {
	const char *address;   /**< the service's UDP address, "IPv4:PORT", e.g. "192.0.2.1:7000" */
	uint32_t max_datagram; /**< bytes per datagram, header included (65..65507); 0 = 1472 */
};

/**
 * Open a UDP socket towards the service. It sends one harmless datagram at once (a cancel
 * for tenant 0, request 0, which the service ignores) so that the kernel resolves the
 * service's MAC address before the first request: wait a moment (e.g. while the PUB
 * subscription settles) before sending. Returns 0 or -errno with a message in @p err.
 */
int mb_udp_sender_open(const struct mb_udp_sender_opts *opts, struct mb_udp_sender **out, char *err,
		       size_t err_len);

/**
 * Send one request, split into as many datagrams as it needs. Returns the number of
 * datagrams sent, -EINVAL for a header whose payload_len is not @p len, or -errno. UDP does
 * not say whether anything arrived; but the socket is connected, so when nothing listens at
 * the address (e.g. on loopback, a service that is down) the kernel reports the ICMP "port
 * unreachable" for an earlier datagram (even mb_udp_sender_open()'s cancel) as
 * -ECONNREFUSED from a later send, once. The datagram being sent then did not go out, nor
 * the request's later ones (earlier ones did): send the request again.
 */
int mb_udp_sender_send(struct mb_udp_sender *s, const struct mb_request_hdr *hdr,
		       const void *payload, size_t len);

/**
 * Send a cancel for (@p tenant, @p request_id) from this sender's address and port. 0 or
 * -errno, -ECONNREFUSED included as for mb_udp_sender_send().
 */
int mb_udp_sender_cancel(struct mb_udp_sender *s, uint32_t tenant, uint64_t request_id);

/** Close and set *@p s to NULL. NULL accepted. */
void mb_udp_sender_close(struct mb_udp_sender **s);

#ifdef __cplusplus
}
#endif

#endif /* MEDIABATCH_CLIENT_H */
