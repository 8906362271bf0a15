/*
 * cert.c: CURVE key pairs in ZeroMQ certificate files (CZMQ's zcert format: a ZPL text file
 * with a "curve" section holding public-key and, in NAME.key_secret, secret-key), for the
 * service (its own pair, its clients' public keys) and for clients (include/mediabatch/
 * client.h). CZMQ reads and writes them; this file adds the errors a user can act on.
 */
#include "mediabatch/client.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <czmq.h>

/* Z85 of 32 zero bytes: what zcert reports for a half the file does not hold. */
static const char zero_z85[] = "0000000000000000000000000000000000000000";

static bool
is_key(const char *z85)
{
	uint8_t raw[32];

	return z85 != NULL && strlen(z85) == 40 && zmq_z85_decode(raw, z85) != NULL &&
	       strcmp(z85, zero_z85) != 0;
}

int
mb_curve_cert_load(const char *path, struct mb_curve_keys *out, bool *has_secret, char *err,
		   size_t err_len)
{
	zcert_t *c;
	FILE *f;

	memset(out, 0, sizeof(*out));
	if (has_secret != NULL)
		*has_secret = false;
	/* fopen first: zcert_load() says NULL for a missing file and a broken one alike */
	f = fopen(path, "r");
	if (f == NULL) {
		int e = errno;

		snprintf(err, err_len, "%s: %s", path, strerror(e));
		return e == ENOENT ? -ENOENT : e == EACCES ? -EACCES : -EINVAL;
	}
	fclose(f);
	c = zcert_load(path);
	if (c == NULL || !is_key(zcert_public_txt(c))) {
		snprintf(err, err_len,
			 "%s: not a ZeroMQ certificate (a zcert file with a curve section and its "
			 "public-key, as 'mediabatch keygen' writes)",
			 path);
		zcert_destroy(&c);
		return -EINVAL;
	}
	snprintf(out->public_key, sizeof(out->public_key), "%s", zcert_public_txt(c));
	/* zcert_load() also reads PATH_secret when it exists: only a file that holds the
	 * secret itself (or that twin) counts as holding one */
	if (is_key(zcert_secret_txt(c))) {
		snprintf(out->secret_key, sizeof(out->secret_key), "%s", zcert_secret_txt(c));
		if (has_secret != NULL)
			*has_secret = true;
	}
	zcert_destroy(&c);
	return 0;
}

int
mb_curve_keygen(const char *base, const char *name, struct mb_curve_keys *out, char *err,
		size_t err_len)
{
	char pub[4096], sec[4096];
	zcert_t *c;

	if (snprintf(pub, sizeof(pub), "%s.key", base) >= (int)sizeof(pub) ||
	    snprintf(sec, sizeof(sec), "%s.key_secret", base) >= (int)sizeof(sec)) {
		snprintf(err, err_len, "%s: path too long", base);
		return -ENAMETOOLONG;
	}
	if (access(pub, F_OK) == 0 || access(sec, F_OK) == 0) {
		snprintf(err, err_len,
			 "%s or %s exists: not overwritten (a key in use would be lost); remove "
			 "it or choose another name",
			 pub, sec);
		return -EEXIST;
	}
	c = zcert_new();
	if (c == NULL) {
		snprintf(err, err_len, "cannot make a key pair (is libsodium usable?)");
		return -ENOMEM;
	}
	if (name != NULL && name[0] != '\0')
		zcert_set_meta(c, "name", "%s", name);
	/* zcert_save() writes BASE.key and BASE.key_secret (the secret one 0600) */
	if (zcert_save(c, pub) != 0) {
		int e = errno ? errno : EIO;

		snprintf(err, err_len, "cannot write %s and %s: %s", pub, sec, strerror(e));
		zcert_destroy(&c);
		return -e;
	}
	chmod(sec, 0600);
	if (out != NULL) {
		snprintf(out->public_key, sizeof(out->public_key), "%s", zcert_public_txt(c));
		snprintf(out->secret_key, sizeof(out->secret_key), "%s", zcert_secret_txt(c));
	}
	zcert_destroy(&c);
	return 0;
}
