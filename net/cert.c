/*
 * cert.c: CURVE key pairs in ZeroMQ certificate files (CZMQ's zcert format: a ZPL text file
 * with a "curve" section holding public-key and, in NAME.key_secret, secret-key), for the
 * service (its own pair, its clients' public keys) and for clients (include/mediabatch/
 * client.h). CZMQ reads and writes them; this file adds the errors a user can act on.
 */
#include "mediabatch/client.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <czmq.h>

/* read_zpl()'s error for a path that is not a regular file (not an errno) */
#define NOT_REGULAR (-2)

/* Z85 of 32 zero bytes: what zcert reports for a half the file does not hold. */
static const char zero_z85[] = "0000000000000000000000000000000000000000";

static bool
is_key(const char *z85)
{
	uint8_t raw[32];

	return z85 != NULL && strlen(z85) == 40 && zmq_z85_decode(raw, z85) != NULL &&
	       strcmp(z85, zero_z85) != 0;
}

/*
 * The file's ZPL tree, parsed by CZMQ from our own read of it: zconfig_load() (and so
 * zcert_load()) leaks its file object when the text does not parse (CZMQ 4.2.1), and
 * zcert_load() would also read PATH_secret beside it; this reads exactly the file named.
 */
static zconfig_t *
read_zpl(const char *path, int *err)
{
	uint8_t buf[65536];
	zconfig_t *c = NULL;
	zchunk_t *chunk;
	struct stat st;
	size_t n;
	/* O_NONBLOCK: a FIFO named here must not hang in open() waiting for a writer */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	FILE *f;

	if (fd < 0) {
		*err = errno;
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		*err = NOT_REGULAR;
		return NULL;
	}
	f = fdopen(fd, "r");
	if (f == NULL) {
		*err = errno;
		close(fd);
		return NULL;
	}
	n = fread(buf, 1, sizeof(buf), f);
	*err = ferror(f) ? EIO : n == sizeof(buf) ? EFBIG : 0;
	fclose(f);
	if (*err != 0)
		return NULL;
	chunk = zchunk_new(buf, n);
	if (chunk != NULL)
		c = zconfig_chunk_load(chunk);
	zchunk_destroy(&chunk);
	*err = c != NULL ? 0 : EINVAL;
	return c;
}

int
mb_curve_cert_load(const char *path, struct mb_curve_keys *out, bool *has_secret, char *err,
		   size_t err_len)
{
	const char *pub, *sec;
	zconfig_t *c;
	int e;

	memset(out, 0, sizeof(*out));
	if (has_secret != NULL)
		*has_secret = false;
	c = read_zpl(path, &e);
	if (c == NULL && e != EINVAL) {
		snprintf(err, err_len, "%s: %s", path,
			 e == EFBIG ? "larger than 64 KiB: not a certificate"
			 : e == NOT_REGULAR
				 ? "not a regular file (a directory, a FIFO, a device): not "
				   "a certificate"
				 : strerror(e));
		return e == ENOENT ? -ENOENT : e == EACCES ? -EACCES : -EINVAL;
	}
	pub = c != NULL ? zconfig_get(c, "curve/public-key", NULL) : NULL;
	if (!is_key(pub)) {
		snprintf(err, err_len,
			 "%s: not a ZeroMQ certificate (a zcert file with a curve section and its "
			 "public-key, as 'mediabatch keygen' writes)",
			 path);
		zconfig_destroy(&c);
		return -EINVAL;
	}
	snprintf(out->public_key, sizeof(out->public_key), "%s", pub);
	sec = zconfig_get(c, "curve/secret-key", NULL);
	if (is_key(sec)) {
		snprintf(out->secret_key, sizeof(out->secret_key), "%s", sec);
		if (has_secret != NULL)
			*has_secret = true;
	}
	zconfig_destroy(&c);
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
