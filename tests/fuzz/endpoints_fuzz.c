/*
 * endpoints_fuzz.c: libFuzzer target for a fleet client's endpoint list
 * (mb_fleet_parse_endpoints() in net/fleet.c: struct mb_client_opts.endpoint with several
 * daemons, the CLI's --endpoint). No name is resolved: the parser only splits and checks.
 *
 * Checked, from include/mediabatch/client.h ("Fleets") and net/client_internal.h: a refusal
 * is -EINVAL with a reason; an accepted list has 1..MB_FLEET_MAX_SOURCES items, each a
 * NUL-terminated item without surrounding blanks or commas; a tcp:// item has a non-empty
 * host of name or address characters (an IPv6 one only from brackets) and a port of at
 * most 5 digits up to 65535, and is a literal exactly when its host
 * is an IPv4 or IPv6 address (or "*"); resolving is set exactly when some tcp:// item is
 * not a literal; every item appears in the input in order.
 */
#include <arpa/inet.h>
#include <stdlib.h>

#include "client_internal.h"
#include "mb_fuzz.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	mb_fuzz_init(0);
	return 0;
}

static MB_FUZZ_UNTRACED void
check_accepted(const char *list, const struct mb_fleet_source *src, int n, bool resolving)
{
	const char *at = list;
	bool any_name = false;

	MB_FUZZ_CHECK(n >= 1 && n <= MB_FLEET_MAX_SOURCES, "%d items", n);
	for (int i = 0; i < n; i++) {
		const struct mb_fleet_source *s = &src[i];
		size_t len;

		MB_FUZZ_CHECK(mb_fuzz_terminated(s->raw, sizeof(s->raw)) && s->raw[0] != '\0',
			      "item %d empty or unterminated", i);
		len = strlen(s->raw);
		MB_FUZZ_CHECK(strchr(s->raw, ',') == NULL, "item '%s' holds a comma", s->raw);
		MB_FUZZ_CHECK(s->raw[0] != ' ' && s->raw[0] != '\t' && s->raw[len - 1] != ' ' &&
				      s->raw[len - 1] != '\t',
			      "item '%s' not trimmed", s->raw);
		at = strstr(at, s->raw);
		MB_FUZZ_CHECK(at != NULL, "item '%s' not in the input, in order", s->raw);
		if (at != NULL)
			at += len;
		if (strncmp(s->raw, "tcp://", 6) != 0) {
			MB_FUZZ_CHECK(s->literal, "'%s': another transport is used as given",
				      s->raw);
			continue;
		}
		unsigned char buf[16];
		bool addr = inet_pton(AF_INET, s->host, buf) == 1 ||
			    inet_pton(AF_INET6, s->host, buf) == 1 || strcmp(s->host, "*") == 0;

		MB_FUZZ_CHECK(s->host[0] != '\0' &&
				      strspn(s->host,
					     "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
					     "0123456789.-_*:%") == strlen(s->host),
			      "'%s': host '%s'", s->raw, s->host);
		MB_FUZZ_CHECK(strchr(s->host, ':') == NULL || strstr(s->raw, "://[") != NULL,
			      "'%s': an IPv6 host '%s' without brackets", s->raw, s->host);
		MB_FUZZ_CHECK(s->port[0] != '\0' && strlen(s->port) <= 5 &&
				      strspn(s->port, "0123456789") == strlen(s->port) &&
				      atoi(s->port) <= 65535,
			      "'%s': port '%s'", s->raw, s->port);
		MB_FUZZ_CHECK(s->literal == addr, "'%s': literal %d for host '%s'", s->raw,
			      s->literal, s->host);
		any_name |= !addr;
	}
	MB_FUZZ_CHECK(resolving == any_name, "resolving %d, names %d", resolving, any_name);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mb_fleet_source src[MB_FLEET_MAX_SOURCES];
	char list[2048], err[256] = "";
	bool resolving = false;
	int n = 0, rc;

	if (size >= sizeof(list))
		return 0;
	memcpy(list, data, size);
	list[size] = '\0';
	rc = mb_fleet_parse_endpoints(list, src, &n, &resolving, err, sizeof(err));
	if (rc != 0) {
		MB_FUZZ_CHECK(rc == -EINVAL, "rc %d", rc);
		MB_FUZZ_CHECK(mb_fuzz_terminated(err, sizeof(err)) && err[0] != '\0',
			      "a refusal needs a reason");
		return 0;
	}
	check_accepted(list, src, n, resolving);
	return 0;
}
