/*
 * Small secret files read whole: see mb_secret_file.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mb_secret_file.h"

int
mb_secret_file_read(const char *what, const char *path, size_t max, char **out, size_t *len,
		    struct stat *st, char *err, size_t err_len)
{
	/* O_NONBLOCK: a FIFO (or a device) named here must not hang the start or a reload in
	 * open() waiting for a writer; it is refused below as not a regular file */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	size_t got = 0;
	char *buf;
	int e;

	*out = NULL;
	*len = 0;
	if (fd < 0) {
		e = errno;
		snprintf(err, err_len, "%s '%s': cannot read it: %s", what, path, strerror(e));
		return -e;
	}
	if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
		snprintf(err, err_len, "%s '%s': not a regular file", what, path);
		close(fd);
		return -EINVAL;
	}
	if ((uint64_t)st->st_size > max) {
		snprintf(err, err_len, "%s '%s': %lld bytes, more than the %zu allowed", what, path,
			 (long long)st->st_size, max);
		close(fd);
		return -EINVAL;
	}
	buf = malloc((size_t)st->st_size + 1);
	if (buf == NULL) {
		snprintf(err, err_len, "%s '%s': out of memory", what, path);
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)st->st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st->st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			e = n < 0 ? errno : EIO;
			snprintf(err, err_len, "%s '%s': cannot read it: %s", what, path,
				 strerror(e));
			mb_secret_free(&buf, got);
			close(fd);
			return -e;
		}
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	*out = buf;
	*len = got;
	return 0;
}

int
mb_secret_token_check(const char *what, const char *path, char *buf, size_t *len, char *err,
		      size_t err_len)
{
	size_t n = *len;

	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' ||
			 buf[n - 1] == '\t'))
		n--;
	buf[n] = '\0';
	*len = n;
	if (n == 0) {
		snprintf(err, err_len, "%s '%s': empty; put the bearer token in it", what, path);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++)
		if (buf[i] < 0x21 || buf[i] > 0x7e) {
			snprintf(err, err_len,
				 "%s '%s': the token has a space or a control or non-ASCII byte at "
				 "offset %zu; a bearer token is printable ASCII",
				 what, path, i);
			return -EINVAL;
		}
	return 0;
}

void
mb_secret_free(char **p, size_t len)
{
	if (*p == NULL)
		return;
	explicit_bzero(*p, len);
	free(*p);
	*p = NULL;
}
