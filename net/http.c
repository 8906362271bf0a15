/*
 * http.c: /metrics, /healthz and /readyz over libmicrohttpd (its internal polling thread).
 */
#include "mb_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "mb_config.h"

#define MB_LOG_MODULE "http"
#include "mb_log.h"

struct mb_http {
	struct mb_http_opts o;
	struct MHD_Daemon *daemon;
	unsigned int port;
};

static enum MHD_Result
reply(struct MHD_Connection *c, unsigned int code, const char *type, char *body, size_t len,
      enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
	enum MHD_Result rc;

	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", type);
	rc = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result
text(struct MHD_Connection *c, unsigned int code, const char *msg)
{
	return reply(c, code, "text/plain; charset=utf-8", (char *)msg, strlen(msg),
		     MHD_RESPMEM_MUST_COPY);
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
       const char *version, const char *upload_data, size_t *upload_size, void **con_cls)
{
	struct mb_http *h = cls;

	(void)version;
	(void)upload_data;
	(void)upload_size;
	(void)con_cls;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET\n");
	if (strcmp(url, "/metrics") == 0) {
		char *body;
		size_t len;

		if (mb_metrics_render(h->o.metrics, &body, &len) < 0)
			return text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
		return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body, len,
			     MHD_RESPMEM_MUST_FREE);
	}
	if (strcmp(url, "/healthz") == 0)
		return text(c, MHD_HTTP_OK, "ok\n");
	if (strcmp(url, "/readyz") == 0) {
		char why[256] = "", msg[300];

		if (h->o.ready == NULL || h->o.ready(h->o.ctx, why, sizeof(why)))
			return text(c, MHD_HTTP_OK, "ready\n");
		snprintf(msg, sizeof(msg), "not ready: %s\n", why);
		return text(c, MHD_HTTP_SERVICE_UNAVAILABLE, msg);
	}
	return text(c, MHD_HTTP_NOT_FOUND, "not found: try /metrics, /healthz or /readyz\n");
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	MB_LOG(WARNING, "%s", line);
}

int
mb_http_start(const struct mb_http_opts *o, struct mb_http **out, char *err, size_t err_len)
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	const union MHD_DaemonInfo *info;
	char host[64];
	uint16_t port;
	struct mb_http *h;

	*out = NULL;
	if (mb_config_parse_hostport(o->hostport, host, sizeof(host), &port) < 0) {
		snprintf(err, err_len, "metrics endpoint '%s' is not HOST:PORT", o->hostport);
		return -EINVAL;
	}
	inet_pton(AF_INET, host, &addr.sin_addr);
	addr.sin_port = htons(port);
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return -ENOMEM;
	h->o = *o;
	h->daemon =
		MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, port, NULL,
				 NULL, handle, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				 MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
				 MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_END);
	if (h->daemon == NULL) {
		int e = errno ? errno : EADDRINUSE;

		snprintf(err, err_len, "metrics endpoint %s: cannot listen: %s%s", o->hostport,
			 strerror(e),
			 e == EADDRINUSE ? " (choose another port with --metrics HOST:PORT)" : "");
		free(h);
		return -e;
	}
	info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
	h->port = info != NULL ? info->port : port;
	*out = h;
	return 0;
}

void
mb_http_stop(struct mb_http **hp)
{
	if (hp == NULL || *hp == NULL)
		return;
	MHD_stop_daemon((*hp)->daemon);
	free(*hp);
	*hp = NULL;
}

unsigned int
mb_http_port(const struct mb_http *h)
{
	return h->port;
}
