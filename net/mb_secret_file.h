/**
 * @file
 * Small secret files (bearer tokens, PEM keys and certificates) read whole, for the daemon's
 * HTTP endpoint (http.c: http.token_file, http.tls_key) and the tools' HTTP client
 * (http_client.c: --metrics-token-file): one reader and one token rule for both, in a
 * library of its own so that the tools do not link the daemon's and the daemon not libcurl.
 *
 * Messages name what was read (@p what: a config key or a command-line flag) and its path,
 * as "WHAT 'PATH': ...". Buffers are wiped before they are freed. No shared state: any
 * thread may call these; a buffer belongs to the caller that got it.
 */
#ifndef MB_SECRET_FILE_H
#define MB_SECRET_FILE_H

#include <stddef.h>
#include <sys/stat.h>

/**
 * Read the regular file at @p path, at most @p max bytes, into a NUL-terminated malloc'd
 * @p *out of @p *len bytes (free it with mb_secret_free()); @p st gets its fstat().
 * Returns 0, or a negative errno with @p err set (@p *out is then NULL).
 */
int mb_secret_file_read(const char *what, const char *path, size_t max, char **out, size_t *len,
			struct stat *st, char *err, size_t err_len);

/**
 * A bearer token read by mb_secret_file_read(): trailing whitespace and newlines are cut in
 * place (@p *len shrinks), and the rest must be non-empty printable ASCII without spaces.
 * Returns 0, or -EINVAL with @p err set.
 */
int mb_secret_token_check(const char *what, const char *path, char *buf, size_t *len, char *err,
			  size_t err_len);

/** Wipe @p len bytes of @p *p, free it and set it to NULL (nothing for NULL). */
void mb_secret_free(char **p, size_t len);

#endif /* MB_SECRET_FILE_H */
