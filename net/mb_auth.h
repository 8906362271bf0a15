/**
 * @file
 * Who may do what (CURVE mode, docs/operating.md "Security"): the allow-list of client keys
 * built from security.clients, and the ZAP handler that asks it during each CURVE handshake.
 *
 * An allow-list is immutable once built: a reload builds a new one whole (every key file
 * read, every key checked) or fails and leaves the old one in force. Each entry names a
 * client, its public key, the tenants it may send as, those whose results it may receive,
 * and its share of the requests in flight.
 *
 * ZAP (ZeroMQ RFC 27): libzmq's I/O thread sends each CURVE handshake's client key to the
 * inproc endpoint "inproc://zeromq.zap.01" of the socket's context; mb_auth_zap_handle()
 * answers one such request: 200 with the client's name as the User-Id (libzmq then attaches
 * it to every message of that connection, where zmq_msg_gets(msg, "User-Id") reads it) for
 * a listed key, 400 otherwise (the handshake fails: the peer reaches nothing).
 *
 * Threads: build and destroy anywhere; lookups are read-only and safe from any thread. The
 * front door owns the one in force and its ZAP socket (mb_frontdoor.h).
 */
#ifndef MB_AUTH_H
#define MB_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mb_config.h"

struct mb_auth_client {
	char name[MB_CONFIG_CLIENT_NAME_MAX + 1];
	char key_z85[41];
	uint8_t key[32];
	uint64_t id; /**< a hash of the name: the same client across reloads */
	const uint32_t *tenants;
	unsigned int n_tenants;
	const uint32_t *subscribe;
	unsigned int n_subscribe;
	bool subscribe_all;
	uint32_t max_inflight; /**< its share; 0: the service's max_inflight_per_client */
};

struct mb_auth;

/**
 * Build an allow-list from @p clients (security.clients), reading the key files they name.
 * Returns 0; or -errno with the entry, the file and the reason in @p err (a missing or
 * broken certificate, a key listed twice).
 */
int mb_auth_create(const struct mb_client_config *clients, unsigned int n, struct mb_auth **out,
		   char *err, size_t err_len);

void mb_auth_destroy(struct mb_auth **a);

unsigned int mb_auth_count(const struct mb_auth *a);

/** The entry of public key @p key (32 bytes), or NULL. */
const struct mb_auth_client *mb_auth_by_key(const struct mb_auth *a, const uint8_t key[32]);

/** The entry named @p name (a connection's User-Id), or NULL. */
const struct mb_auth_client *mb_auth_by_name(const struct mb_auth *a, const char *name);

/** The entry whose id (mb_auth_client.id) is @p id, or NULL. */
const struct mb_auth_client *mb_auth_by_id(const struct mb_auth *a, uint64_t id);

/** Whether @p c may send requests as @p tenant. */
bool mb_auth_may_send(const struct mb_auth_client *c, uint32_t tenant);

/** Whether @p c may receive @p tenant's results on the PUB socket. */
bool mb_auth_may_subscribe(const struct mb_auth_client *c, uint32_t tenant);

/** Whether @p a and @p b may receive the same tenants' results. */
bool mb_auth_same_subscriptions(const struct mb_auth_client *a, const struct mb_auth_client *b);

/** "42, 43" (or "none"), for reasons: at most @p len bytes, "..." when cut. */
void mb_auth_tenants_str(const uint32_t *t, unsigned int n, char *buf, size_t len);

/** What one ZAP request came to. */
enum mb_zap_outcome {
	MB_ZAP_NONE = 0,    /**< nothing to read */
	MB_ZAP_ACCEPTED,    /**< a listed key */
	MB_ZAP_UNKNOWN_KEY, /**< refused: a key not on the list */
	MB_ZAP_BAD_REQUEST, /**< refused: not a CURVE request of ZAP 1.0 */
};

/**
 * Read one ZAP request from @p zap (a REP socket bound to inproc://zeromq.zap.01), without
 * waiting, and answer it from @p a. Returns what it came to; @p who (may be NULL, 64
 * bytes) gets the client's name or the key's Z85 text and the peer's address, for logs.
 */
enum mb_zap_outcome mb_auth_zap_handle(const struct mb_auth *a, void *zap, char *who,
				       size_t who_len);

/**
 * Load the service's own key pair (security.server_key: a NAME.key_secret file, private to
 * its owner). @p public_z85 is the public key derived from the secret (what clients must
 * be given); a file whose public-key is not that one is refused, naming both. Returns 0, or
 * -errno with a message: -ENOENT or -EACCES (the file cannot be read, or others may read
 * it), -EINVAL (not a certificate, no secret, halves that do not match).
 */
int mb_auth_server_key(const char *path, char public_z85[41], char secret_z85[41], char *err,
		       size_t err_len);

#endif /* MB_AUTH_H */
