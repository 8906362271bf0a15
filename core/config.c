/*
 * config.c: the embedded default configuration and the YAML loader (libyaml, libcyaml).
 *
 * The file is read into memory once and parsed twice. First libyaml alone (the pre-pass)
 * loads it as a node tree and walks that tree alongside the schema below: a syntax error, an
 * unknown key, a number that is not written strictly (digits only for integers; a plain
 * decimal for floats: no suffix, hex, underscore, inf or nan) or does not fit its type, a
 * boolean that is not true/false (yes/no, on/off), a number or boolean written as text
 * (quoted, a block, or tagged !!str or another kind: "100", !!str 100), a string that is
 * YAML's null (~, null, nothing; libcyaml would read "~") or longer or shorter than the
 * schema allows, a list with more entries than it allows, or a second YAML document stops
 * there, with the line and column libyaml gives for the offending node (0-based there,
 * 1-based in the message). Then libcyaml parses the same bytes into "raw" structs whose
 * scalars are all optional pointers (NULL when the file does not set them), so "absent" and
 * "0" differ. Its errors (wrong types) are captured from its log and turned into one line
 * with the location and the field path; then every value that is present is range-checked
 * and copied over the defaults, and the values that depend on each other are checked
 * together (the endpoints: mb_config_check_endpoints()). libcyaml 1.3.1 cannot do the
 * pre-pass's part itself: it reads numbers with strtoll(base 0) and strtod and ignores what
 * follows ("2k" loads as 2, "0x100" as 256), reads any word but false/no/off/disable/0 as
 * true ("flase" too), reads a scalar's characters alone (quoted "100" and !!str 100 load as
 * 100), loads the first document and ignores the rest, has no validation callbacks, and logs
 * libyaml's errors without their position. mb_config_doubts() names values that load but
 * are doubtful. Main thread only.
 */
#include "mb_config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cyaml/cyaml.h>
#include <zmq.h>
#include <rte_log.h>
#include <yaml.h>

#include "mb_eal.h"
#include "mb_build_config.h"
#include "mb_log.h"
#include "mb_placement.h"

/* Where an unknown key's message sends the reader: the reference configuration, as installed
 * (meson.build installs deploy/mediabatch.yaml there; mediabatchd --help names it too). */
#define REFERENCE MB_DOC_DIR "/mediabatch.yaml"

/* ---- raw structs: what the file says ---- */

struct y_service {
	char *ingest, *publish, *metrics, *log_level, *log_format, *placement, *ready_when;
	int64_t *drain_timeout_ms, *drain_quiet_ms, *liveness_ms, *max_inflight,
		*max_inflight_bytes, *max_payload_bytes, *max_inflight_per_client,
		*max_inflight_per_tenant;
};

struct y_idle {
	char *mode;
	int64_t *spin_polls, *sleep_us;
};

struct y_zmq {
	int64_t *io_threads, *router_sndhwm, *router_rcvhwm, *pub_sndhwm, *heartbeat_ms;
};

struct y_eal {
	int64_t *memory_mb;
	char **args;
	unsigned int args_count;
};

struct y_udp_port {
	char *device, *address;
	int64_t *rx_queues;
	int64_t *cpus;
	unsigned int cpus_count;
};

struct y_udp_source {
	int64_t *tenant;
	char **prefixes;
	unsigned int prefixes_count;
};

struct y_udp {
	int64_t *port, *reassembly_timeout_ms, *max_requests, *buffer_mb, *mbufs, *rx_descriptors;
	struct y_udp_port *ports;
	unsigned int ports_count;
	struct y_udp_source *sources;
	unsigned int sources_count;
};

struct y_client {
	char *name, *public_key, *public_key_file;
	int64_t *tenants;
	unsigned int tenants_count;
	int64_t *subscribe;
	unsigned int subscribe_count;
	bool *subscribe_all;
	int64_t *max_inflight;
};

struct y_security {
	char *mode, *server_key;
	struct y_client *clients;
	unsigned int clients_count;
};

struct y_http {
	char *tls_cert, *tls_key, *token_file;
	int64_t *max_connections, *max_connections_per_ip, *timeout_ms;
};

struct y_cpu {
	int64_t *units, *workers;
	char *serve;
};

struct y_cuda {
	char *mode;
	int64_t *gpus;
	unsigned int gpus_count;
	int64_t *unit_mb, *reserve_mb, *max_units, *workers;
};

struct y_devices {
	struct y_cpu *cpu;
	struct y_cuda *cuda;
};

struct y_limit {
	int64_t *tenant;
	double *rate;
	int64_t *burst;
};

struct y_tenants {
	double *default_rate;
	int64_t *default_burst, *max_tenants;
	struct y_limit *limits;
	unsigned int limits_count;
};

struct y_model {
	char *name;
	bool *enabled;
	int64_t *max_batch, *max_delay_us, *queue_limit, *default_timeout_ms, *base_units;
	int64_t *run_timeout_ms, *max_windows;
	double *item_units_per_second;
	char *weights, *plugin, *precision;
};

struct y_breaker {
	int64_t *failure_threshold, *cooldown_ms, *probe_timeout_ms;
};

struct y_root {
	struct y_service *service;
	struct y_idle *idle;
	struct y_zmq *zmq;
	struct y_eal *eal;
	struct y_devices *devices;
	struct y_udp *udp;
	struct y_tenants *tenants;
	struct y_model *models;
	unsigned int models_count;
	char *weights_dir;
	struct y_breaker *breaker;
	struct y_security *security;
	struct y_http *http;
};

#define OPT (CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL)
#define INT(key, st, m) CYAML_FIELD_INT_PTR(key, OPT, st, m)
#define FLT(key, st, m) CYAML_FIELD_FLOAT_PTR(key, OPT, st, m)
#define STR(key, st, m, max) CYAML_FIELD_STRING_PTR(key, OPT, st, m, 0, max)

static const cyaml_schema_field_t service_fields[] = {
	STR("ingest", struct y_service, ingest, MB_CONFIG_ENDPOINT_MAX - 1),
	STR("publish", struct y_service, publish, MB_CONFIG_ENDPOINT_MAX - 1),
	STR("metrics", struct y_service, metrics, MB_CONFIG_ENDPOINT_MAX - 1),
	STR("log_level", struct y_service, log_level, 16),
	STR("log_format", struct y_service, log_format, 16),
	STR("ready_when", struct y_service, ready_when, 32),
	STR("placement", struct y_service, placement, 16),
	INT("drain_timeout_ms", struct y_service, drain_timeout_ms),
	INT("drain_quiet_ms", struct y_service, drain_quiet_ms),
	INT("liveness_ms", struct y_service, liveness_ms),
	INT("max_inflight", struct y_service, max_inflight),
	INT("max_inflight_bytes", struct y_service, max_inflight_bytes),
	INT("max_payload_bytes", struct y_service, max_payload_bytes),
	INT("max_inflight_per_client", struct y_service, max_inflight_per_client),
	INT("max_inflight_per_tenant", struct y_service, max_inflight_per_tenant),
	CYAML_FIELD_END,
};

static const cyaml_schema_field_t idle_fields[] = {
	STR("mode", struct y_idle, mode, 16),
	INT("spin_polls", struct y_idle, spin_polls),
	INT("sleep_us", struct y_idle, sleep_us),
	CYAML_FIELD_END,
};

static const cyaml_schema_field_t zmq_fields[] = {
	INT("io_threads", struct y_zmq, io_threads),
	INT("router_sndhwm", struct y_zmq, router_sndhwm),
	INT("router_rcvhwm", struct y_zmq, router_rcvhwm),
	INT("pub_sndhwm", struct y_zmq, pub_sndhwm),
	INT("heartbeat_ms", struct y_zmq, heartbeat_ms),
	CYAML_FIELD_END,
};

static const cyaml_schema_value_t eal_arg_value = {
	CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 1, 1024),
};

static const cyaml_schema_field_t eal_fields[] = {
	INT("memory_mb", struct y_eal, memory_mb),
	CYAML_FIELD_SEQUENCE("args", OPT, struct y_eal, args, &eal_arg_value, 0, 128),
	CYAML_FIELD_END,
};

static const cyaml_schema_value_t udp_cpu_value = {
	CYAML_VALUE_INT(CYAML_FLAG_DEFAULT, int64_t),
};

static const cyaml_schema_field_t udp_port_fields[] = {
	STR("device", struct y_udp_port, device, MB_CONFIG_UDP_DEVICE_MAX - 1),
	STR("address", struct y_udp_port, address, 64),
	INT("rx_queues", struct y_udp_port, rx_queues),
	CYAML_FIELD_SEQUENCE("cpus", OPT, struct y_udp_port, cpus, &udp_cpu_value, 0,
			     MB_CONFIG_UDP_MAX_QUEUES),
	CYAML_FIELD_END,
};

static const cyaml_schema_value_t udp_port_value = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct y_udp_port, udp_port_fields),
};

static const cyaml_schema_value_t prefix_value = {
	CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 1, 64),
};

static const cyaml_schema_field_t udp_source_fields[] = {
	INT("tenant", struct y_udp_source, tenant),
	CYAML_FIELD_SEQUENCE("prefixes", OPT, struct y_udp_source, prefixes, &prefix_value, 0,
			     1024),
	CYAML_FIELD_END,
};

static const cyaml_schema_value_t udp_source_value = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct y_udp_source, udp_source_fields),
};

static const cyaml_schema_field_t udp_fields[] = {
	INT("port", struct y_udp, port),
	INT("reassembly_timeout_ms", struct y_udp, reassembly_timeout_ms),
	INT("max_requests", struct y_udp, max_requests),
	INT("buffer_mb", struct y_udp, buffer_mb),
	INT("mbufs", struct y_udp, mbufs),
	INT("rx_descriptors", struct y_udp, rx_descriptors),
	CYAML_FIELD_SEQUENCE("ports", OPT, struct y_udp, ports, &udp_port_value, 0, 16),
	CYAML_FIELD_SEQUENCE("sources", OPT, struct y_udp, sources, &udp_source_value, 0, 65536),
	CYAML_FIELD_END,
};

static const cyaml_schema_field_t cpu_fields[] = {
	INT("units", struct y_cpu, units),
	INT("workers", struct y_cpu, workers),
	STR("serve", struct y_cpu, serve, 16),
	CYAML_FIELD_END,
};

static const cyaml_schema_value_t gpu_value = {
	CYAML_VALUE_INT(CYAML_FLAG_DEFAULT, int64_t),
};

static const cyaml_schema_field_t cuda_fields[] = {
	STR("mode", struct y_cuda, mode, 16),
	CYAML_FIELD_SEQUENCE("gpus", OPT, struct y_cuda, gpus, &gpu_value, 0, MB_CONFIG_GPUS_MAX),
	INT("unit_mb", struct y_cuda, unit_mb),
	INT("reserve_mb", struct y_cuda, reserve_mb),
	INT("max_units", struct y_cuda, max_units),
	INT("workers", struct y_cuda, workers),
	CYAML_FIELD_END,
};

static const cyaml_schema_field_t devices_fields[] = {
	CYAML_FIELD_MAPPING_PTR("cpu", OPT, struct y_devices, cpu, cpu_fields),
	CYAML_FIELD_MAPPING_PTR("cuda", OPT, struct y_devices, cuda, cuda_fields),
	CYAML_FIELD_END,
};

static const cyaml_schema_field_t limit_fields[] = {
	INT("tenant", struct y_limit, tenant),
	FLT("rate", struct y_limit, rate),
	INT("burst", struct y_limit, burst),
	CYAML_FIELD_END,
};

static const cyaml_schema_value_t limit_value = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct y_limit, limit_fields),
};

static const cyaml_schema_field_t tenants_fields[] = {
	FLT("default_rate", struct y_tenants, default_rate),
	INT("default_burst", struct y_tenants, default_burst),
	INT("max_tenants", struct y_tenants, max_tenants),
	CYAML_FIELD_SEQUENCE("limits", OPT, struct y_tenants, limits, &limit_value, 0, 65536),
	CYAML_FIELD_END,
};

static const cyaml_schema_field_t model_fields[] = {
	STR("name", struct y_model, name, MB_CONFIG_MODEL_NAME_MAX),
	CYAML_FIELD_BOOL_PTR("enabled", OPT, struct y_model, enabled),
	INT("max_batch", struct y_model, max_batch),
	INT("max_delay_us", struct y_model, max_delay_us),
	INT("queue_limit", struct y_model, queue_limit),
	INT("default_timeout_ms", struct y_model, default_timeout_ms),
	INT("run_timeout_ms", struct y_model, run_timeout_ms),
	INT("max_windows", struct y_model, max_windows),
	INT("base_units", struct y_model, base_units),
	FLT("item_units_per_second", struct y_model, item_units_per_second),
	STR("weights", struct y_model, weights, MB_CONFIG_PATH_MAX - 1),
	STR("plugin", struct y_model, plugin, MB_CONFIG_PATH_MAX - 1),
	STR("precision", struct y_model, precision, 16),
	CYAML_FIELD_END,
};

static const cyaml_schema_field_t breaker_fields[] = {
	INT("failure_threshold", struct y_breaker, failure_threshold),
	INT("cooldown_ms", struct y_breaker, cooldown_ms),
	INT("probe_timeout_ms", struct y_breaker, probe_timeout_ms),
	CYAML_FIELD_END,
};

static const cyaml_schema_value_t tenant_id_value = {
	CYAML_VALUE_INT(CYAML_FLAG_DEFAULT, int64_t),
};

static const cyaml_schema_field_t client_fields[] = {
	STR("name", struct y_client, name, MB_CONFIG_CLIENT_NAME_MAX),
	STR("public_key", struct y_client, public_key, 256),
	STR("public_key_file", struct y_client, public_key_file, MB_CONFIG_PATH_MAX - 1),
	CYAML_FIELD_SEQUENCE("tenants", OPT, struct y_client, tenants, &tenant_id_value, 0,
			     MB_CONFIG_CLIENT_TENANTS_MAX),
	CYAML_FIELD_SEQUENCE("subscribe", OPT, struct y_client, subscribe, &tenant_id_value, 0,
			     MB_CONFIG_CLIENT_TENANTS_MAX),
	CYAML_FIELD_BOOL_PTR("subscribe_all", OPT, struct y_client, subscribe_all),
	INT("max_inflight", struct y_client, max_inflight),
	CYAML_FIELD_END,
};

static const cyaml_schema_value_t client_value = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct y_client, client_fields),
};

static const cyaml_schema_field_t security_fields[] = {
	STR("mode", struct y_security, mode, 16),
	STR("server_key", struct y_security, server_key, MB_CONFIG_PATH_MAX - 1),
	CYAML_FIELD_SEQUENCE("clients", OPT, struct y_security, clients, &client_value, 0, 65536),
	CYAML_FIELD_END,
};

static const cyaml_schema_field_t http_fields[] = {
	STR("tls_cert", struct y_http, tls_cert, MB_CONFIG_PATH_MAX - 1),
	STR("tls_key", struct y_http, tls_key, MB_CONFIG_PATH_MAX - 1),
	STR("token_file", struct y_http, token_file, MB_CONFIG_PATH_MAX - 1),
	INT("max_connections", struct y_http, max_connections),
	INT("max_connections_per_ip", struct y_http, max_connections_per_ip),
	INT("timeout_ms", struct y_http, timeout_ms),
	CYAML_FIELD_END,
};

static const cyaml_schema_value_t model_value = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct y_model, model_fields),
};

static const cyaml_schema_field_t root_fields[] = {
	CYAML_FIELD_MAPPING_PTR("service", OPT, struct y_root, service, service_fields),
	CYAML_FIELD_MAPPING_PTR("idle", OPT, struct y_root, idle, idle_fields),
	CYAML_FIELD_MAPPING_PTR("zmq", OPT, struct y_root, zmq, zmq_fields),
	CYAML_FIELD_MAPPING_PTR("eal", OPT, struct y_root, eal, eal_fields),
	CYAML_FIELD_MAPPING_PTR("devices", OPT, struct y_root, devices, devices_fields),
	CYAML_FIELD_MAPPING_PTR("udp", OPT, struct y_root, udp, udp_fields),
	CYAML_FIELD_MAPPING_PTR("tenants", OPT, struct y_root, tenants, tenants_fields),
	CYAML_FIELD_SEQUENCE("models", OPT, struct y_root, models, &model_value, 0, 256),
	STR("weights_dir", struct y_root, weights_dir, MB_CONFIG_PATH_MAX - 1),
	CYAML_FIELD_MAPPING_PTR("breaker", OPT, struct y_root, breaker, breaker_fields),
	CYAML_FIELD_MAPPING_PTR("security", OPT, struct y_root, security, security_fields),
	CYAML_FIELD_MAPPING_PTR("http", OPT, struct y_root, http, http_fields),
	CYAML_FIELD_END,
};

static const cyaml_schema_value_t root_value = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct y_root, root_fields),
};

/* ---- defaults ---- */

#define DEFAULT_INGEST "tcp://127.0.0.1:7400"
#define DEFAULT_PUBLISH "tcp://127.0.0.1:7401"
#define DEFAULT_METRICS "127.0.0.1:7402"
#define DEFAULT_HTTP_MAX_CONNECTIONS 512
#define DEFAULT_HTTP_MAX_CONNECTIONS_PER_IP 32

void
mb_config_defaults(struct mb_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->source, sizeof(c->source), "embedded default");
	snprintf(c->ingest, sizeof(c->ingest), "%s", DEFAULT_INGEST);
	snprintf(c->publish, sizeof(c->publish), "%s", DEFAULT_PUBLISH);
	snprintf(c->metrics, sizeof(c->metrics), "%s", DEFAULT_METRICS);
	c->drain_timeout_ms = 5000;
	c->drain_quiet_ms = 250;
	c->liveness_ms = 10000;
	c->max_inflight = 8192;
	c->max_inflight_bytes = 1ull << 30;
	c->max_payload_bytes = 8u << 20;
	c->log_level = RTE_LOG_NOTICE;
	c->log_format = -1;
	mb_idle_opts_init(&c->idle);
	c->zmq_io_threads = 1;
	c->router_sndhwm = 100000;
	c->router_rcvhwm = 100000;
	c->pub_sndhwm = 100000;
	c->zmq_heartbeat_ms = 0;
	c->eal_memory_mb = 256;
	c->udp_port = 7000;
	c->udp_reassembly_timeout_ms = 500;
	c->udp_max_requests = 1024;
	c->udp_buffer_mb = 32;
	c->udp_mbufs = 8191;
	c->udp_rx_descriptors = 1024;
	c->cpu_units = 16;
	c->cpu_workers = 0;
	c->cpu_serve = MB_CPU_SERVE_AUTO;
	c->cuda_mode = MB_CUDA_AUTO;
	c->n_cuda_gpus = 0;
	c->cuda_unit_mb = 64;
	c->cuda_reserve_mb = 1024;
	c->cuda_max_units = 0;
	c->cuda_workers = 1;
	c->default_rate = 0.0;
	c->default_burst = 1;
	c->max_tenants = 4096;
	c->breaker_failures = 5;
	c->breaker_cooldown_ms = 5000;
	c->breaker_probe_timeout_ms = 30000;
	c->security_mode = MB_SECURITY_PLAINTEXT;
	c->http_max_connections = DEFAULT_HTTP_MAX_CONNECTIONS;
	c->http_max_connections_per_ip = DEFAULT_HTTP_MAX_CONNECTIONS_PER_IP;
	c->http_timeout_ms = 15000;
}

void
mb_config_fini(struct mb_config *c)
{
	for (unsigned int i = 0; i < c->n_eal_args; i++)
		free(c->eal_args[i]);
	free(c->eal_args);
	free(c->limits);
	free(c->models);
	free(c->udp_ports);
	c->udp_ports = NULL;
	c->n_udp_ports = 0;
	for (unsigned int i = 0; i < c->n_udp_sources; i++)
		free(c->udp_sources[i].prefixes);
	free(c->udp_sources);
	c->udp_sources = NULL;
	c->n_udp_sources = 0;
	for (unsigned int i = 0; i < c->n_clients; i++) {
		free(c->clients[i].tenants);
		free(c->clients[i].subscribe);
	}
	free(c->clients);
	c->clients = NULL;
	c->n_clients = 0;
	c->eal_args = NULL;
	c->limits = NULL;
	c->models = NULL;
	c->n_eal_args = c->n_limits = c->n_models = 0;
}

const struct mb_model_config *
mb_config_model(const struct mb_config *c, const char *name)
{
	for (unsigned int i = 0; i < c->n_models; i++)
		if (strcmp(c->models[i].name, name) == 0)
			return &c->models[i];
	return NULL;
}

/* A port as the configuration writes one: 1..65535 in digits only, no sign, no leading zero
 * (strtol's " +052" is not one); -1 if @p s is not. */
static long
port_number(const char *s)
{
	long port = 0;
	size_t n = strlen(s);

	if (n == 0 || n > 5 || s[0] == '0')
		return -1;
	for (; *s != '\0'; s++) {
		if (!isdigit((unsigned char)*s))
			return -1;
		port = port * 10 + (*s - '0');
	}
	return port <= 65535 ? port : -1;
}

int
mb_config_parse_hostport(const char *s, char *host, size_t host_len, uint16_t *port)
{
	const char *colon = s ? strrchr(s, ':') : NULL;
	struct in_addr a;
	long p;

	if (colon == NULL || colon == s || (size_t)(colon - s) >= host_len || host_len < 16)
		return -EINVAL;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	p = port_number(colon + 1);
	if (p < 1)
		return -EINVAL;
	if (strcmp(host, "localhost") == 0)
		snprintf(host, host_len, "127.0.0.1");
	else if (strcmp(host, "*") == 0)
		snprintf(host, host_len, "0.0.0.0");
	else if (inet_pton(AF_INET, host, &a) != 1)
		return -EINVAL;
	*port = (uint16_t)p;
	return 0;
}

/* What a ROUTER or PUB endpoint of the daemon may be (mb_config_bind_endpoint_ok()). */
#define BIND_FORMS                                                                                 \
	"tcp://ADDRESS:PORT (an IPv4 address, a host or interface name, * for every interface, "   \
	"an IPv6 address in brackets; a port 1..65535 with no leading zero, or * for one the "     \
	"system picks) or "                                                                        \
	"ipc://PATH"

bool
mb_config_bind_endpoint_ok(const char *v)
{
	const char *host, *colon, *p;
	char quad[INET_ADDRSTRLEN];
	struct in_addr a;
	size_t hlen;

	if (v == NULL || strlen(v) >= MB_CONFIG_ENDPOINT_MAX)
		return false;
	if (strncmp(v, "ipc://", 6) == 0) /* a path for a Unix socket: sun_path is 108 bytes */
		return v[6] != '\0' && strlen(v + 6) < 108;
	if (strncmp(v, "tcp://", 6) != 0)
		return false;
	host = v + 6;
	colon = strrchr(host, ':');
	if (colon == NULL || colon == host)
		return false;
	hlen = (size_t)(colon - host);
	if (host[0] == '[') { /* [IPv6], a zone allowed: hex digits, ':', '.', '%', a name */
		if (hlen < 3 || host[hlen - 1] != ']')
			return false;
		for (p = host + 1; p < host + hlen - 1; p++)
			if (!isalnum((unsigned char)*p) && strchr(":.%_-", *p) == NULL)
				return false;
	} else if (!(hlen == 1 && host[0] == '*')) {
		for (p = host; p < colon; p++)
			if (!isalnum((unsigned char)*p) && strchr(".-_", *p) == NULL)
				return false;
		/* digits and dots only: an IPv4 address, whole (127.0.0.256 or 10.1 would be
		 * taken for an interface name, and the start would fail "No such device") */
		if (strspn(host, "0123456789.") == hlen) {
			if (hlen >= sizeof(quad))
				return false;
			memcpy(quad, host, hlen);
			quad[hlen] = '\0';
			if (inet_pton(AF_INET, quad, &a) != 1)
				return false;
		}
	}
	/* the port: "*" (ZeroMQ's wildcard: the start logs the one it got), or digits only
	 * with no leading zero (ZeroMQ would take "83136" as 17600) */
	return strcmp(colon + 1, "*") == 0 || port_number(colon + 1) >= 1;
}

/* ---- the three listening endpoints, one socket each ---- */

/* What an endpoint listens on: a TCP port of an address ("" = every interface), or a path. */
struct listener {
	const char *key, *text; /* "service.ingest", as configured */
	bool dflt;		/* left out: the embedded default's */
	bool tcp, ipc;		/* neither: off, or a port the system picks */
	char host[MB_CONFIG_ENDPOINT_MAX];
	long port;
	const char *path;
};

/* @p host (@p len bytes) as compared: "" for every interface (*, 0.0.0.0, [::]), 127.0.0.1
 * for localhost, an address in its canonical form, a name in lower case. */
static void
listener_host(struct listener *l, const char *host, size_t len)
{
	char buf[MB_CONFIG_ENDPOINT_MAX];
	unsigned char a[16];

	snprintf(buf, sizeof(buf), "%.*s", (int)len, host);
	for (char *p = buf; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	if (len >= 2 && buf[0] == '[' && buf[len - 1] == ']') {
		buf[len - 1] = '\0';
		if (inet_pton(AF_INET6, buf + 1, a) == 1) {
			static const unsigned char any[16];

			if (memcmp(a, any, sizeof(a)) == 0)
				buf[0] = '\0';
			else
				inet_ntop(AF_INET6, a, buf, sizeof(buf));
		} else {
			buf[len - 1] = ']';
		}
	} else if (strcmp(buf, "*") == 0 || strcmp(buf, "0.0.0.0") == 0) {
		buf[0] = '\0';
	} else if (strcmp(buf, "localhost") == 0) {
		snprintf(buf, sizeof(buf), "127.0.0.1");
	}
	snprintf(l->host, sizeof(l->host), "%s", buf);
}

/* service.ingest or service.publish (checked: mb_config_bind_endpoint_ok()) */
static void
zmq_listener(struct listener *l, const char *key, const char *v)
{
	const char *colon;

	memset(l, 0, sizeof(*l));
	l->key = key;
	l->text = v;
	if (strncmp(v, "ipc://", 6) == 0) {
		l->ipc = true;
		l->path = v + 6;
		return;
	}
	colon = strrchr(v + 6, ':');
	if (strncmp(v, "tcp://", 6) != 0 || colon == NULL || strcmp(colon + 1, "*") == 0)
		return;
	l->tcp = true;
	l->port = strtol(colon + 1, NULL, 10);
	listener_host(l, v + 6, (size_t)(colon - (v + 6)));
}

/* service.metrics: HOST:PORT, or "" (off) */
static void
http_listener(struct listener *l, const char *v)
{
	char host[64];
	uint16_t port;

	memset(l, 0, sizeof(*l));
	l->key = "service.metrics";
	l->text = v;
	if (v[0] == '\0' || mb_config_parse_hostport(v, host, sizeof(host), &port) < 0)
		return;
	l->tcp = true;
	l->port = port;
	listener_host(l, host, strlen(host));
}

/* " (the default)" where @p l was left out, so it is the embedded default's endpoint */
static const char *
if_default(const struct listener *l)
{
	return l->dflt ? " (the default)" : "";
}

/* Whether @p b listens where @p a does; if so, why, in @p err. */
static bool
same_socket(const struct listener *a, const struct listener *b, char *err, size_t err_len)
{
	const char *tail = "service.ingest, service.publish and service.metrics each need a port "
			   "(or an ipc:// path) of their own";

	if (a->ipc && b->ipc && strcmp(a->path, b->path) == 0) {
		snprintf(err, err_len, "%s: '%s'%s is the socket of %s too: %s", b->key, b->text,
			 if_default(b), a->key, tail);
		return true;
	}
	if (!a->tcp || !b->tcp || a->port != b->port)
		return false;
	/* two addresses (names that may be one address are not resolved); a wildcard takes the
	 * port on every address */
	if (a->host[0] != '\0' && b->host[0] != '\0' && strcmp(a->host, b->host) != 0)
		return false;
	snprintf(err, err_len, "%s: '%s'%s is on port %ld, which %s (%s'%s') listens on too: %s",
		 b->key, b->text, if_default(b), b->port, a->key,
		 if_default(a)[0] != '\0' ? "its default, " : "", a->text, tail);
	return true;
}

int
mb_config_check_endpoints(const struct mb_config *c, char *err, size_t err_len)
{
	struct listener in, pub, http;

	zmq_listener(&in, "service.ingest", c->ingest);
	zmq_listener(&pub, "service.publish", c->publish);
	http_listener(&http, c->metrics);
	in.dflt = !(c->endpoints_set & MB_CONFIG_SET_INGEST);
	pub.dflt = !(c->endpoints_set & MB_CONFIG_SET_PUBLISH);
	http.dflt = !(c->endpoints_set & MB_CONFIG_SET_METRICS);
	if (same_socket(&in, &pub, err, err_len) || same_socket(&in, &http, err, err_len) ||
	    same_socket(&pub, &http, err, err_len))
		return -EINVAL;
	return 0;
}

/* ---- loading ---- */

#define MAX_LOG_LINES 24

struct capture {
	char lines[MAX_LOG_LINES][256];
	int n;
};

static void
capture_log(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
{
	struct capture *cap = ctx;
	size_t len;

	if (level < CYAML_LOG_ERROR || cap->n >= MAX_LOG_LINES)
		return;
	vsnprintf(cap->lines[cap->n], sizeof(cap->lines[0]), fmt, args);
	len = strlen(cap->lines[cap->n]);
	while (len > 0 && cap->lines[cap->n][len - 1] == '\n')
		cap->lines[cap->n][--len] = '\0';
	cap->n++;
}

static const char *
plain_type(const char *t)
{
	static const struct {
		const char *cyaml, *plain;
	} names[] = {
		{"INT", "an integer"},		{"UINT", "a non-negative integer"},
		{"FLOAT", "a number"},		{"BOOL", "true or false"},
		{"STRING", "a string"},		{"MAPPING", "a mapping (key: value)"},
		{"SEQUENCE", "a list"},		{"SEQUENCE_START", "a list"},
		{"MAPPING_START", "a mapping"}, {"SCALAR", "a single value"},
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(t, names[i].cyaml) == 0)
			return names[i].plain;
	return t;
}

/* "Expecting INT, got event: SEQUENCE_START" -> "expected an integer, found a list";
 * "Invalid INT value: 'soon'" -> "'soon' is not an integer". */
static void
translate(char *problem, size_t len)
{
	char want[32], got[32], value[160];

	if (sscanf(problem, "Expecting %31[A-Z_], got event: %31[A-Z_]", want, got) == 2)
		snprintf(problem, len, "expected %s, found %s", plain_type(want), plain_type(got));
	else if (sscanf(problem, "Invalid %31[A-Z_] value: %159[^\n]", want, value) == 2)
		snprintf(problem, len, "%s is not %s", value, plain_type(want));
}

/*
 * libcyaml logs "Load: <problem>", then "Load: Backtrace:" and one line per level, innermost
 * first: "  in mapping field 'x' (line: 3, column: 16)", "  in sequence entry '2' (...)".
 * Turn that into "line L, column C: a.b[1].c: <problem>".
 */
static void
describe_parse_error(const struct capture *cap, const char *path, char *err, size_t len)
{
	char problem[256] = "cannot parse the file", where[256] = "", loc[64] = "";
	const char *levels[MAX_LOG_LINES];
	int n_levels = 0;

	for (int i = 0; i < cap->n; i++) {
		const char *l = cap->lines[i];

		if (strncmp(l, "Load: ", 6) == 0 && strstr(l, "Backtrace") == NULL) {
			const char *msg = l + 6;

			if (strncmp(msg, "libyaml: ", 9) == 0)
				msg += 9;
			snprintf(problem, sizeof(problem), "%s", msg);
		} else if (strstr(l, "  in ") == l) {
			levels[n_levels++] = l;
		}
	}
	/* The innermost level with a position gives the location. */
	for (int i = 0; i < n_levels && loc[0] == '\0'; i++) {
		unsigned int line, col;
		const char *p = strstr(levels[i], "(line: ");

		if (p != NULL && sscanf(p, "(line: %u, column: %u)", &line, &col) == 2)
			snprintf(loc, sizeof(loc), "line %u, column %u: ", line, col);
	}
	for (int i = n_levels - 1; i >= 0; i--) {
		char name[96];
		unsigned int idx;
		size_t off = strlen(where);
		const char *p;

		/* libcyaml names an entry by the count of entries read, this one included: index
		 * + 1; but for one too many, the count before it (the pre-pass reports those) */
		if ((p = strstr(levels[i], "field '")) != NULL &&
		    sscanf(p, "field '%95[^']'", name) == 1)
			snprintf(where + off, sizeof(where) - off, "%s%s", off ? "." : "", name);
		else if ((p = strstr(levels[i], "entry '")) != NULL &&
			 sscanf(p, "entry '%u'", &idx) == 1)
			snprintf(where + off, sizeof(where) - off, "[%u]",
				 i == 0 && strstr(problem, "Excessive entries") != NULL ? idx
				 : idx > 0						? idx - 1
											: 0);
	}
	/* libcyaml's wording, in plain words. */
	translate(problem, sizeof(problem));
	if (strncmp(problem, "Unexpected key: ", 16) == 0) {
		char key[128];

		snprintf(key, sizeof(key), "%.*s", (int)sizeof(key) - 1, problem + 16);
		snprintf(problem, sizeof(problem), "unexpected key '%s' (see %s)", key, REFERENCE);
	}
	snprintf(err, len, "%s: %s%s%s%s", path, loc, where, where[0] ? ": " : "", problem);
}

struct checker {
	const char *path;
	char *err;
	size_t len;
	int failed;
	/* the pre-pass: the file, and where its character number at_char is (libyaml's marks
	 * count characters, after a byte order mark) */
	const unsigned char *text;
	size_t text_len, at_char, at_byte;
	/* where each key's value is in the file, by its path ("models[0].max_batch"), kept from
	 * the pre-pass so that a value refused later (a range, a combination) is located too */
	struct mark {
		char path[96];
		unsigned int line, col;
	} * marks;
	unsigned int n_marks, cap_marks;
};

static void fail(struct checker *ck, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
mark(struct checker *ck, const char *path, const yaml_node_t *node)
{
	if (path[0] == '\0' || strlen(path) >= sizeof(ck->marks[0].path))
		return;
	if (ck->n_marks == ck->cap_marks) {
		unsigned int cap = ck->cap_marks ? 2 * ck->cap_marks : 64;
		struct mark *m = realloc(ck->marks, cap * sizeof(*m));

		if (m == NULL)
			return; /* messages go without a location */
		ck->marks = m;
		ck->cap_marks = cap;
	}
	snprintf(ck->marks[ck->n_marks].path, sizeof(ck->marks[0].path), "%s", path);
	ck->marks[ck->n_marks].line = (unsigned int)node->start_mark.line + 1;
	ck->marks[ck->n_marks].col = (unsigned int)node->start_mark.column + 1;
	ck->n_marks++;
}

/* The mark of @p path (@p len bytes of it), else of the nearest enclosing key or entry
 * ("udp.ports[0].address" left out: where udp.ports[0] is); NULL if none. */
static const struct mark *
find_mark(const struct checker *ck, const char *path, size_t len)
{
	while (len > 0) {
		for (unsigned int i = 0; i < ck->n_marks; i++)
			if (strlen(ck->marks[i].path) == len &&
			    memcmp(ck->marks[i].path, path, len) == 0)
				return &ck->marks[i];
		while (len > 0 && path[len - 1] != '.' && path[len - 1] != '[')
			len--;
		if (len > 0)
			len--; /* the '.' or '[' */
	}
	return NULL;
}

static bool
int_in(struct checker *ck, const char *field, const int64_t *v, int64_t lo, int64_t hi)
{
	if (v == NULL || ck->failed)
		return false;
	if (*v < lo || *v > hi) {
		fail(ck, "%s: %" PRId64 " is out of range %" PRId64 "..%" PRId64, field, *v, lo,
		     hi);
		return false;
	}
	return true;
}

const char *
mb_config_shortest(char *buf, size_t len, double v)
{
	/* a whole number up to 1e9 (the largest bound in the configuration) in digits, as the
	 * reference writes bounds: 1000000, not 1e+06; 0 without a sign. Larger ones in the
	 * fewest digits: 1000000001, but 4e+09. */
	if (v == 0) {
		snprintf(buf, len, "0");
		return buf;
	}
	if (fabs(v) <= 1e9 && v == trunc(v)) {
		snprintf(buf, len, "%.0f", v);
		return buf;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, len, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	return buf;
}

static bool
double_in(struct checker *ck, const char *field, const double *v, double lo, double hi,
	  bool zero_ok)
{
	char sv[32], slo[32], shi[32];

	if (v == NULL || ck->failed)
		return false;
	if (!((*v >= lo && *v <= hi) || (zero_ok && *v == 0.0))) {
		fail(ck, "%s: %s is out of range %s%s..%s", field,
		     mb_config_shortest(sv, sizeof(sv), *v), zero_ok && lo > 0.0 ? "0 or " : "",
		     mb_config_shortest(slo, sizeof(slo), lo),
		     mb_config_shortest(shi, sizeof(shi), hi));
		return false;
	}
	return true;
}

static void
fail(struct checker *ck, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (ck->failed)
		return;
	n = snprintf(ck->err, ck->len, "%s: ", ck->path);
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < ck->len)
		vsnprintf(ck->err + n, ck->len - (size_t)n, fmt, ap);
	va_end(ap);
	ck->failed = 1;
	/* "path: ..." of a key the pre-pass saw: "line L, column C: path: ..." (the pre-pass's
	 * own messages start with their location) */
	if (n > 0 && (size_t)n < ck->len && strncmp(ck->err + n, "line ", 5) != 0 &&
	    strncmp(ck->err + n, "byte ", 5) != 0) {
		const char *body = ck->err + n, *colon = strstr(body, ": ");
		const struct mark *m = colon != NULL && strchr(body, ' ') > colon
					       ? find_mark(ck, body, (size_t)(colon - body))
					       : NULL;
		char *copy = m != NULL ? strdup(body) : NULL;

		if (copy != NULL) {
			snprintf(ck->err + n, ck->len - (size_t)n, "line %u, column %u: %s",
				 m->line, m->col, copy);
			free(copy);
		}
	}
}

int
mb_config_set(struct mb_config *c, const char *key, const char *v, char *err, size_t err_len)
{
	char host[64];
	uint16_t port;
	int level;

	if (strcmp(key, "service.ingest") == 0 || strcmp(key, "service.publish") == 0) {
		if (!mb_config_bind_endpoint_ok(v)) {
			snprintf(err, err_len,
				 "'%s' is not a ZeroMQ endpoint to listen on: " BIND_FORMS, v);
			return -EINVAL;
		}
		snprintf(strcmp(key, "service.ingest") == 0 ? c->ingest : c->publish,
			 MB_CONFIG_ENDPOINT_MAX, "%s", v);
		c->endpoints_set |= strcmp(key, "service.ingest") == 0 ? MB_CONFIG_SET_INGEST
								       : MB_CONFIG_SET_PUBLISH;
	} else if (strcmp(key, "service.metrics") == 0) {
		c->endpoints_set |= MB_CONFIG_SET_METRICS;
		/* "" is refused, not taken for off: an empty value (a template's variable that was
		 * not set) must not turn the health and metrics endpoint off unnoticed */
		if (strcmp(v, "off") == 0) {
			c->metrics[0] = '\0';
		} else if (mb_config_parse_hostport(v, host, sizeof(host), &port) < 0) {
			snprintf(err, err_len,
				 "'%s' is not HOST:PORT (IPv4, localhost or *; port 1..65535, no "
				 "leading zero), or \"off\"",
				 v);
			return -EINVAL;
		} else {
			snprintf(c->metrics, sizeof(c->metrics), "%s", v);
		}
	} else if (strcmp(key, "service.placement") == 0) {
		enum mb_placement_policy p;

		if (mb_placement_parse(v, &p) < 0) {
			snprintf(err, err_len, "'%s' is not one of auto, single, per-stage", v);
			return -EINVAL;
		}
		c->placement = (int)p;
	} else if (strcmp(key, "service.log_level") == 0) {
		level = mb_log_parse_level(v);
		if (level < 0) {
			snprintf(err, err_len,
				 "'%s' is not one of error, warning, notice, info, debug (in any "
				 "case; also err, warn, or DPDK's number 1..8)",
				 v);
			return -EINVAL;
		}
		c->log_level = level;
	} else {
		snprintf(err, err_len, "'%s' is not a key that can be set this way", key);
		return -EINVAL;
	}
	return 0;
}

/* The keys a flag of the daemon overrides (mediabatchd --help), a bit of set_by_flag each. */
static const struct {
	const char *key, *flag;
} flag_keys[] = {
	{"service.ingest", "--ingest"},	      {"service.publish", "--publish"},
	{"service.metrics", "--metrics"},     {"service.log_level", "--log-level"},
	{"service.placement", "--placement"},
};

int
mb_config_set_flag(struct mb_config *c, const char *flag, const char *v, char *err, size_t err_len)
{
	for (unsigned int i = 0; i < sizeof(flag_keys) / sizeof(flag_keys[0]); i++) {
		int rc;

		if (strcmp(flag, flag_keys[i].flag) != 0)
			continue;
		rc = mb_config_set(c, flag_keys[i].key, v, err, err_len);
		if (rc == 0)
			c->set_by_flag |= (uint8_t)(1u << i);
		return rc;
	}
	snprintf(err, err_len, "'%s' is not a flag that sets a key", flag);
	return -EINVAL;
}

const char *
mb_config_origin(const struct mb_config *c, const char *key)
{
	for (unsigned int i = 0; i < sizeof(flag_keys) / sizeof(flag_keys[0]); i++)
		if (strcmp(key, flag_keys[i].key) == 0)
			return c->set_by_flag & (1u << i) ? flag_keys[i].flag : key;
	return key;
}

static void
set_string(struct checker *ck, struct mb_config *c, const char *key, const char *v)
{
	char why[512];

	if (v != NULL && !ck->failed && mb_config_set(c, key, v, why, sizeof(why)) < 0)
		fail(ck, "%s: %s", key, why);
}

static void
apply_service(struct checker *ck, const struct y_service *s, struct mb_config *c)
{
	if (s == NULL)
		return;
	set_string(ck, c, "service.ingest", s->ingest);
	set_string(ck, c, "service.publish", s->publish);
	set_string(ck, c, "service.metrics", s->metrics);
	set_string(ck, c, "service.log_level", s->log_level);
	if (s->log_format != NULL && !ck->failed) {
		int f = mb_log_parse_format(s->log_format);

		if (f < 0)
			fail(ck, "service.log_format: '%s' is not one of text, json",
			     s->log_format);
		else
			c->log_format = f;
	}
	if (s->ready_when != NULL && !ck->failed) {
		if (strcmp(s->ready_when, "all_models") == 0)
			c->ready_when = MB_READY_ALL;
		else if (strcmp(s->ready_when, "any_model") == 0)
			c->ready_when = MB_READY_ANY;
		else
			fail(ck, "service.ready_when: '%s' is not one of all_models, any_model",
			     s->ready_when);
	}
	set_string(ck, c, "service.placement", s->placement);
	if (int_in(ck, "service.drain_timeout_ms", s->drain_timeout_ms, 0, 600000))
		c->drain_timeout_ms = (uint32_t)*s->drain_timeout_ms;
	if (int_in(ck, "service.drain_quiet_ms", s->drain_quiet_ms, 1, 60000))
		c->drain_quiet_ms = (uint32_t)*s->drain_quiet_ms;
	if (int_in(ck, "service.liveness_ms", s->liveness_ms, 1000, 600000))
		c->liveness_ms = (uint32_t)*s->liveness_ms;
	if (int_in(ck, "service.max_inflight", s->max_inflight, 1, 1 << 20))
		c->max_inflight = (uint32_t)*s->max_inflight;
	if (int_in(ck, "service.max_inflight_bytes", s->max_inflight_bytes, 1 << 20,
		   INT64_C(64) << 30))
		c->max_inflight_bytes = (uint64_t)*s->max_inflight_bytes;
	if (int_in(ck, "service.max_payload_bytes", s->max_payload_bytes, 64, 256 << 20))
		c->max_payload_bytes = (uint32_t)*s->max_payload_bytes;
	if (int_in(ck, "service.max_inflight_per_client", s->max_inflight_per_client, 1, 1 << 20))
		c->max_inflight_per_client = (uint32_t)*s->max_inflight_per_client;
	if (int_in(ck, "service.max_inflight_per_tenant", s->max_inflight_per_tenant, 1, 1 << 20))
		c->max_inflight_per_tenant = (uint32_t)*s->max_inflight_per_tenant;
	/* A request is admitted while its bytes fit in what max_inflight_bytes leaves: a larger
	 * one than that could never be, and would be answered OVERLOADED (retry) forever. */
	if (ck->failed || c->max_payload_bytes <= c->max_inflight_bytes)
		return;
	if (s->max_payload_bytes != NULL)
		fail(ck,
		     "service.max_payload_bytes: %" PRIu32 " is above service.max_inflight_bytes "
		     "(%" PRIu64 "%s): a request that large could never be admitted (OVERLOADED "
		     "forever); at most max_inflight_bytes",
		     c->max_payload_bytes, c->max_inflight_bytes,
		     s->max_inflight_bytes == NULL ? ", the default" : "");
	else
		fail(ck,
		     "service.max_inflight_bytes: %" PRIu64 " is below service.max_payload_bytes "
		     "(%" PRIu32 ", the default): a request that large could never be admitted "
		     "(OVERLOADED forever); lower max_payload_bytes too",
		     c->max_inflight_bytes, c->max_payload_bytes);
}

static void
apply_idle(struct checker *ck, const struct y_idle *s, struct mb_config *c)
{
	if (s == NULL)
		return;
	if (s->mode != NULL && !ck->failed && mb_idle_parse_mode(s->mode, &c->idle.mode) < 0)
		fail(ck, "idle.mode: '%s' is not one of spin, yield, sleep", s->mode);
	if (int_in(ck, "idle.spin_polls", s->spin_polls, 0, 1000000000))
		c->idle.spin_polls = (uint32_t)*s->spin_polls;
	if (int_in(ck, "idle.sleep_us", s->sleep_us, 1, 1000000))
		c->idle.sleep_ns = (uint64_t)*s->sleep_us * 1000;
}

static void
apply_zmq(struct checker *ck, const struct y_zmq *s, struct mb_config *c)
{
	if (s == NULL)
		return;
	if (int_in(ck, "zmq.io_threads", s->io_threads, 1, 16))
		c->zmq_io_threads = (uint32_t)*s->io_threads;
	if (int_in(ck, "zmq.router_sndhwm", s->router_sndhwm, 1, 10000000))
		c->router_sndhwm = (uint32_t)*s->router_sndhwm;
	if (int_in(ck, "zmq.router_rcvhwm", s->router_rcvhwm, 1, 10000000))
		c->router_rcvhwm = (uint32_t)*s->router_rcvhwm;
	if (int_in(ck, "zmq.pub_sndhwm", s->pub_sndhwm, 1, 10000000))
		c->pub_sndhwm = (uint32_t)*s->pub_sndhwm;
	if (int_in(ck, "zmq.heartbeat_ms", s->heartbeat_ms, 0, 600000))
		c->zmq_heartbeat_ms = (uint32_t)*s->heartbeat_ms;
}

static void
apply_eal(struct checker *ck, const struct y_eal *s, struct mb_config *c)
{
	if (s == NULL)
		return;
	if (int_in(ck, "eal.memory_mb", s->memory_mb, 16, 1 << 20))
		c->eal_memory_mb = (uint32_t)*s->memory_mb;
	if (s->args_count == 0 || ck->failed)
		return;
	c->eal_args = calloc(s->args_count, sizeof(char *));
	if (c->eal_args == NULL) {
		fail(ck, "out of memory");
		return;
	}
	for (unsigned int i = 0; i < s->args_count; i++) {
		c->eal_args[i] = strdup(s->args[i]);
		if (c->eal_args[i] == NULL) {
			fail(ck, "out of memory");
			return;
		}
		c->n_eal_args = i + 1;
	}
	{
		char why[1536];

		if (mb_eal_check_args((const char *const *)c->eal_args, c->n_eal_args, NULL, why,
				      sizeof(why)) < 0)
			fail(ck, "%s", why);
	}
}

/* @p v (may be NULL: unset) as the index of one of the three @p names, into @p out. */
static void
one_of3(struct checker *ck, const char *field, const char *v, const char *const names[3],
	uint32_t *out)
{
	unsigned int k;

	if (v == NULL || ck->failed)
		return;
	for (k = 0; k < 3 && strcmp(v, names[k]) != 0; k++)
		;
	if (k == 3)
		fail(ck, "%s: '%s' is not one of %s, %s, %s", field, v, names[0], names[1],
		     names[2]);
	else
		*out = k;
}

static void
apply_cuda(struct checker *ck, const struct y_cuda *s, struct mb_config *c)
{
	static const char *const modes[3] = {"auto", "required", "off"};
	char field[48];

	if (s == NULL)
		return;
	one_of3(ck, "devices.cuda.mode", s->mode, modes, &c->cuda_mode);
	for (unsigned int i = 0; i < s->gpus_count && !ck->failed; i++) {
		snprintf(field, sizeof(field), "devices.cuda.gpus[%u]", i);
		if (!int_in(ck, field, &s->gpus[i], 0, 255))
			break;
		for (unsigned int j = 0; j < i; j++)
			if (s->gpus[j] == s->gpus[i]) {
				fail(ck, "%s: GPU %d is listed twice", field, (int)s->gpus[i]);
				break;
			}
		c->cuda_gpus[i] = (int)s->gpus[i];
		c->n_cuda_gpus = i + 1;
	}
	if (int_in(ck, "devices.cuda.unit_mb", s->unit_mb, 1, 1048576))
		c->cuda_unit_mb = (uint32_t)*s->unit_mb;
	if (int_in(ck, "devices.cuda.reserve_mb", s->reserve_mb, 0, 1048576))
		c->cuda_reserve_mb = (uint32_t)*s->reserve_mb;
	if (int_in(ck, "devices.cuda.max_units", s->max_units, 0, 1000000))
		c->cuda_max_units = (uint32_t)*s->max_units;
	if (int_in(ck, "devices.cuda.workers", s->workers, 1, 8))
		c->cuda_workers = (uint32_t)*s->workers;
}

static void
apply_devices(struct checker *ck, const struct y_devices *s, struct mb_config *c)
{
	static const char *const serves[3] = {"auto", "always", "never"};

	if (s == NULL)
		return;
	apply_cuda(ck, s->cuda, c);
	if (s->cpu == NULL)
		return;
	if (int_in(ck, "devices.cpu.units", s->cpu->units, 1, 1000000))
		c->cpu_units = (uint32_t)*s->cpu->units;
	if (int_in(ck, "devices.cpu.workers", s->cpu->workers, 0, 256))
		c->cpu_workers = (uint32_t)*s->cpu->workers;
	one_of3(ck, "devices.cpu.serve", s->cpu->serve, serves, &c->cpu_serve);
	if (!ck->failed && c->cpu_serve == MB_CPU_SERVE_NEVER && c->cuda_mode == MB_CUDA_OFF)
		fail(ck, "devices: cpu.serve is never and cuda.mode is off: no device would run "
			 "anything");
}

static bool
is_pci_address(const char *s)
{
	unsigned int dom, bus, dev, fn;
	char tail;

	return sscanf(s, "%x:%x:%x.%x%c", &dom, &bus, &dev, &fn, &tail) == 4 ||
	       sscanf(s, "%x:%x.%x%c", &bus, &dev, &fn, &tail) == 3;
}

int
mb_config_parse_prefix(const char *s, struct mb_prefix *out)
{
	char addr[INET_ADDRSTRLEN], tail;
	const char *slash = strchr(s, '/');
	unsigned int bits = 32;
	struct in_addr a;
	size_t n = slash != NULL ? (size_t)(slash - s) : strlen(s);

	if (n == 0 || n >= sizeof(addr))
		return -EINVAL;
	memcpy(addr, s, n);
	addr[n] = '\0';
	if (inet_pton(AF_INET, addr, &a) != 1)
		return -EINVAL;
	if (slash != NULL && (slash[1] < '0' || slash[1] > '9' ||
			      sscanf(slash + 1, "%u%c", &bits, &tail) != 1 || bits > 32))
		return -EINVAL;
	out->mask = bits == 0 ? 0 : htonl(0xffffffffu << (32 - bits));
	if ((a.s_addr & ~out->mask) != 0)
		return -EINVAL; /* host bits set: a typo more often than not */
	out->addr = a.s_addr;
	return 0;
}

/* ---- duplicates in long lists, found by sorting (n log n: lists may be 65536 long) ---- */

struct twin_ctx {
	const void *base;
	size_t size;
	int (*cmp)(const void *, const void *);
};

static __thread struct twin_ctx g_twin; /* for qsort's comparator */

static int
cmp_twin_index(const void *a, const void *b)
{
	unsigned int i = *(const unsigned int *)a, j = *(const unsigned int *)b;
	int c = g_twin.cmp((const char *)g_twin.base + i * g_twin.size,
			   (const char *)g_twin.base + j * g_twin.size);

	return c != 0 ? c : (i > j) - (i < j); /* equal items: in list order */
}

/*
 * Fail if two of the @p n items at @p base compare equal under @p cmp: with @p fmt, given
 * the later index, the item (what @p str says of it, or else @p num) and the earlier index.
 */
static void
find_twins(struct checker *ck, const void *base, unsigned int n, size_t size,
	   int (*cmp)(const void *, const void *), const char *fmt,
	   const char *(*str)(const void *item), uint32_t (*num)(const void *item))
{
	unsigned int *idx;

	if (n < 2)
		return;
	idx = malloc(n * sizeof(*idx));
	if (idx == NULL) {
		fail(ck, "out of memory");
		return;
	}
	for (unsigned int i = 0; i < n; i++)
		idx[i] = i;
	g_twin = (struct twin_ctx){base, size, cmp};
	qsort(idx, n, sizeof(*idx), cmp_twin_index);
	for (unsigned int k = 1; k < n; k++) {
		const void *a = (const char *)base + idx[k - 1] * size;
		const void *b = (const char *)base + idx[k] * size;

		if (cmp(a, b) != 0)
			continue;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
		if (str != NULL)
			fail(ck, fmt, idx[k], str(b), idx[k - 1]);
		else
			fail(ck, fmt, idx[k], num(b), idx[k - 1]);
#pragma GCC diagnostic pop
		break;
	}
	free(idx);
}

static int
cmp_source_tenant(const void *a, const void *b)
{
	uint32_t x = ((const struct mb_udp_source_config *)a)->tenant;
	uint32_t y = ((const struct mb_udp_source_config *)b)->tenant;

	return (x > y) - (x < y);
}

static uint32_t
source_tenant(const void *a)
{
	return ((const struct mb_udp_source_config *)a)->tenant;
}

/* udp.sources: per tenant, the prefixes its datagrams may come from. */
static void
apply_udp_sources(struct checker *ck, const struct y_udp *s, struct mb_config *c)
{
	char field[64];

	if (s->sources_count == 0 || ck->failed)
		return;
	c->udp_sources = calloc(s->sources_count, sizeof(*c->udp_sources));
	if (c->udp_sources == NULL) {
		fail(ck, "out of memory");
		return;
	}
	for (unsigned int i = 0; i < s->sources_count && !ck->failed; i++) {
		const struct y_udp_source *y = &s->sources[i];
		struct mb_udp_source_config *d = &c->udp_sources[i];

		c->n_udp_sources = i + 1;
		if (y->tenant == NULL || y->prefixes_count == 0) {
			fail(ck,
			     "udp.sources[%u]: needs 'tenant' and 'prefixes' (a list such as "
			     "[\"192.0.2.0/24\"])",
			     i);
			break;
		}
		snprintf(field, sizeof(field), "udp.sources[%u].tenant", i);
		if (!int_in(ck, field, y->tenant, 0, UINT32_MAX))
			break;
		d->tenant = (uint32_t)*y->tenant;
		d->prefixes = calloc(y->prefixes_count, sizeof(*d->prefixes));
		if (d->prefixes == NULL) {
			fail(ck, "out of memory");
			return;
		}
		for (unsigned int k = 0; k < y->prefixes_count; k++) {
			if (mb_config_parse_prefix(y->prefixes[k], &d->prefixes[k]) < 0) {
				fail(ck,
				     "udp.sources[%u].prefixes[%u]: '%s' is not an IPv4 prefix "
				     "(ADDRESS/BITS with no host bits set, e.g. 192.0.2.0/24, or "
				     "one address)",
				     i, k, y->prefixes[k]);
				return;
			}
			d->n_prefixes = k + 1;
		}
	}
	if (!ck->failed)
		find_twins(ck, c->udp_sources, c->n_udp_sources, sizeof(*c->udp_sources),
			   cmp_source_tenant,
			   "udp.sources[%u]: tenant %u is already udp.sources[%u]", NULL,
			   source_tenant);
}

static void
apply_udp(struct checker *ck, const struct y_udp *s, struct mb_config *c)
{
	char field[64];

	if (s == NULL)
		return;
	if (int_in(ck, "udp.port", s->port, 1, 65535))
		c->udp_port = (uint32_t)*s->port;
	if (int_in(ck, "udp.reassembly_timeout_ms", s->reassembly_timeout_ms, 1, 60000))
		c->udp_reassembly_timeout_ms = (uint32_t)*s->reassembly_timeout_ms;
	if (int_in(ck, "udp.max_requests", s->max_requests, 16, 1 << 20))
		c->udp_max_requests = (uint32_t)*s->max_requests;
	if (int_in(ck, "udp.buffer_mb", s->buffer_mb, 1, 65536))
		c->udp_buffer_mb = (uint32_t)*s->buffer_mb;
	if (int_in(ck, "udp.mbufs", s->mbufs, 1023, (1 << 24) - 1))
		c->udp_mbufs = (uint32_t)*s->mbufs;
	if (int_in(ck, "udp.rx_descriptors", s->rx_descriptors, 64, 32768))
		c->udp_rx_descriptors = (uint32_t)*s->rx_descriptors;
	apply_udp_sources(ck, s, c);
	if (s->ports_count == 0 || ck->failed)
		return;
	c->udp_ports = calloc(s->ports_count, sizeof(*c->udp_ports));
	if (c->udp_ports == NULL) {
		fail(ck, "out of memory");
		return;
	}
	for (unsigned int i = 0, queues = 0; i < s->ports_count && !ck->failed; i++) {
		const struct y_udp_port *y = &s->ports[i];
		struct mb_udp_port_config *p = &c->udp_ports[i];
		struct in_addr a;

		if (y->device == NULL || y->device[0] == '\0') {
			fail(ck,
			     "udp.ports[%u].device: missing; a PCI address (0000:17:00.0) or a "
			     "virtual device (net_af_packet0,iface=eth1)",
			     i);
			break;
		}
		if (!is_pci_address(y->device) && strncmp(y->device, "net_", 4) != 0) {
			fail(ck,
			     "udp.ports[%u].device: '%s' is neither a PCI address (0000:17:00.0) "
			     "nor a DPDK virtual device (net_pcap0,..., net_af_packet0,...)",
			     i, y->device);
			break;
		}
		if (!is_pci_address(y->device)) { /* a --vdev at start: a driver DPDK has */
			char why[1536];

			if (mb_eal_check_vdev(y->device, (const char *const *)c->eal_args,
					      c->n_eal_args, why, sizeof(why)) < 0) {
				fail(ck, "udp.ports[%u].device: %s", i, why);
				break;
			}
		}
		snprintf(p->device, sizeof(p->device), "%s", y->device);
		if (y->address == NULL || inet_pton(AF_INET, y->address, &a) != 1 ||
		    a.s_addr == 0 || a.s_addr == 0xffffffffu) {
			fail(ck,
			     "udp.ports[%u].address: %s%s%s a unicast IPv4 address (the "
			     "address this port answers ARP for and receives UDP on)",
			     i, y->address ? "'" : "",
			     y->address ? y->address : "missing; expected",
			     y->address ? "' is not" : "");
			break;
		}
		p->address = a.s_addr;
		snprintf(p->address_text, sizeof(p->address_text), "%s", y->address);
		p->rx_queues = 1;
		snprintf(field, sizeof(field), "udp.ports[%u].rx_queues", i);
		if (int_in(ck, field, y->rx_queues, 1, MB_CONFIG_UDP_MAX_QUEUES))
			p->rx_queues = (uint32_t)*y->rx_queues;
		queues += p->rx_queues; /* one polled thread each: the placement's limit */
		if (!ck->failed && queues > MB_PLACEMENT_MAX_RX) {
			char ports[32] = "";

			if (i > 0)
				snprintf(ports, sizeof(ports), " (udp.ports[0..%u])", i);
			fail(ck, "%s: %u rx queues in all%s, at most %d (a polled thread each)",
			     field, queues, ports, MB_PLACEMENT_MAX_RX);
			break;
		}
		if (y->cpus_count != 0 && y->cpus_count != p->rx_queues) {
			fail(ck,
			     "udp.ports[%u].cpus: %u CPUs for %u rx queue(s); give one per queue, "
			     "or none to let the topology choose",
			     i, y->cpus_count, p->rx_queues);
			break;
		}
		for (unsigned int k = 0; k < y->cpus_count && !ck->failed; k++) {
			snprintf(field, sizeof(field), "udp.ports[%u].cpus[%u]", i, k);
			if (int_in(ck, field, &y->cpus[k], 0, 4095))
				p->cpus[k] = (int)y->cpus[k];
		}
		p->n_cpus = y->cpus_count;
		for (unsigned int j = 0; j < i && !ck->failed; j++)
			if (strcmp(c->udp_ports[j].device, p->device) == 0)
				fail(ck, "udp.ports[%u].device: '%s' is already udp.ports[%u]", i,
				     p->device, j);
		c->n_udp_ports = i + 1;
	}
}

static void
apply_tenants(struct checker *ck, const struct y_tenants *s, struct mb_config *c)
{
	char field[64];

	if (s == NULL)
		return;
	if (double_in(ck, "tenants.default_rate", s->default_rate, 1e-3, 1e9, true))
		c->default_rate = *s->default_rate;
	if (int_in(ck, "tenants.default_burst", s->default_burst, 1, 1000000))
		c->default_burst = (uint32_t)*s->default_burst;
	if (int_in(ck, "tenants.max_tenants", s->max_tenants, 1, 1 << 24))
		c->max_tenants = (uint32_t)*s->max_tenants;
	if (s->limits_count == 0 || ck->failed)
		return;
	c->limits = calloc(s->limits_count, sizeof(*c->limits));
	if (c->limits == NULL) {
		fail(ck, "out of memory");
		return;
	}
	for (unsigned int i = 0; i < s->limits_count && !ck->failed; i++) {
		const struct y_limit *l = &s->limits[i];
		struct mb_tenant_limit *d = &c->limits[i];

		if (l->tenant == NULL || l->rate == NULL) {
			fail(ck, "tenants.limits[%u]: needs both 'tenant' and 'rate'", i);
			break;
		}
		snprintf(field, sizeof(field), "tenants.limits[%u].tenant", i);
		if (int_in(ck, field, l->tenant, 0, UINT32_MAX))
			d->tenant = (uint32_t)*l->tenant;
		snprintf(field, sizeof(field), "tenants.limits[%u].rate", i);
		if (double_in(ck, field, l->rate, 1e-3, 1e9, true))
			d->rate = *l->rate;
		d->burst = 1;
		snprintf(field, sizeof(field), "tenants.limits[%u].burst", i);
		if (int_in(ck, field, l->burst, 1, 1000000))
			d->burst = (uint32_t)*l->burst;
		for (unsigned int j = 0; j < i && !ck->failed; j++)
			if (c->limits[j].tenant == d->tenant)
				fail(ck,
				     "tenants.limits[%u]: tenant %u is already limited by "
				     "limits[%u]",
				     i, d->tenant, j);
		c->n_limits = i + 1;
	}
}

static void
apply_models(struct checker *ck, const struct y_root *r, struct mb_config *c)
{
	char field[64];

	if (r->models_count == 0 || ck->failed)
		return;
	c->models = calloc(r->models_count, sizeof(*c->models));
	if (c->models == NULL) {
		fail(ck, "out of memory");
		return;
	}
	for (unsigned int i = 0; i < r->models_count && !ck->failed; i++) {
		const struct y_model *y = &r->models[i];
		struct mb_model_config *m = &c->models[i];

		m->enabled = MB_CONFIG_UNSET;
		m->max_batch = m->max_delay_us = m->queue_limit = MB_CONFIG_UNSET;
		m->default_timeout_ms = m->base_units = m->run_timeout_ms = MB_CONFIG_UNSET;
		m->max_windows = MB_CONFIG_UNSET;
		m->precision = MB_CONFIG_UNSET;
		m->item_units_per_second = MB_CONFIG_UNSET;
		if (y->name == NULL || y->name[0] == '\0') {
			fail(ck, "models[%u].name: missing; every entry names a model", i);
			break;
		}
		if (strlen(y->name) > MB_CONFIG_MODEL_NAME_MAX) {
			fail(ck, "models[%u].name: '%s' is longer than %d characters", i, y->name,
			     MB_CONFIG_MODEL_NAME_MAX);
			break;
		}
		snprintf(m->name, sizeof(m->name), "%s", y->name);
		for (unsigned int j = 0; j < i; j++)
			if (strcmp(c->models[j].name, m->name) == 0)
				fail(ck,
				     "models[%u].name: '%s' is configured twice (also models[%u])",
				     i, m->name, j);
		if (y->enabled != NULL)
			m->enabled = *y->enabled ? 1 : 0;
#define MODEL_INT(key, lo, hi)                                                                     \
	do {                                                                                       \
		snprintf(field, sizeof(field), "models[%u].%s", i, #key);                          \
		if (int_in(ck, field, y->key, lo, hi))                                             \
			m->key = *y->key;                                                          \
	} while (0)
		MODEL_INT(max_batch, 1, 1024);
		MODEL_INT(max_delay_us, 0, 10000000);
		MODEL_INT(queue_limit, 1, 1000000);
		MODEL_INT(default_timeout_ms, 1, 3600000);
		MODEL_INT(base_units, 0, 1000000);
		MODEL_INT(run_timeout_ms, 0, 86400000);
		MODEL_INT(max_windows, 1, 1024);
#undef MODEL_INT
		snprintf(field, sizeof(field), "models[%u].item_units_per_second", i);
		if (double_in(ck, field, y->item_units_per_second, 0, 1e6, true))
			m->item_units_per_second = *y->item_units_per_second;
		if (y->weights != NULL)
			snprintf(m->weights, sizeof(m->weights), "%s", y->weights);
		if (y->plugin != NULL && y->plugin[0] == '\0')
			fail(ck, "models[%u].plugin: empty; give the path of a shared object", i);
		else if (y->plugin != NULL)
			snprintf(m->plugin, sizeof(m->plugin), "%s", y->plugin);
		if (y->precision != NULL) {
			static const char *const precisions[3] = {"f32", "f16", "bf16"};
			uint32_t p = 0;

			snprintf(field, sizeof(field), "models[%u].precision", i);
			one_of3(ck, field, y->precision, precisions, &p);
			if (!ck->failed)
				m->precision = (int)p;
		}
		c->n_models = i + 1;
	}
}

static void
apply_weights_breaker(struct checker *ck, const struct y_root *r, struct mb_config *c)
{
	if (r->weights_dir != NULL)
		snprintf(c->weights_dir, sizeof(c->weights_dir), "%s", r->weights_dir);
	if (r->breaker == NULL)
		return;
	if (int_in(ck, "breaker.failure_threshold", r->breaker->failure_threshold, 1, 1000000))
		c->breaker_failures = (uint32_t)*r->breaker->failure_threshold;
	if (int_in(ck, "breaker.cooldown_ms", r->breaker->cooldown_ms, 1, 3600000))
		c->breaker_cooldown_ms = (uint32_t)*r->breaker->cooldown_ms;
	if (int_in(ck, "breaker.probe_timeout_ms", r->breaker->probe_timeout_ms, 1, 3600000))
		c->breaker_probe_timeout_ms = (uint32_t)*r->breaker->probe_timeout_ms;
}

/* ---- the pre-pass: syntax, keys, strict numbers and booleans, one document ---- */

/*
 * Hints for a number written with a unit or a multiplier: the unit a key is counted in
 * comes from its name (the schema's key), so the schema stays the one list of keys.
 */
struct scale {
	const char *suffix; /* matched without regard to case, after optional spaces */
	double factor;	    /* to the key's own unit */
};

static const struct scale ms_scales[] = {
	{"ns", 1e-6}, {"us", 1e-3}, {"µs", 1e-3}, {"ms", 1},	{"s", 1e3},
	{"sec", 1e3}, {"m", 6e4},   {"min", 6e4}, {"h", 3.6e6}, {NULL, 0},
};
static const struct scale us_scales[] = {
	{"ns", 1e-3}, {"us", 1},  {"µs", 1},	{"ms", 1e3},  {"s", 1e6},
	{"sec", 1e6}, {"m", 6e7}, {"min", 6e7}, {"h", 3.6e9}, {NULL, 0},
};
static const struct scale mib_scales[] = {
	{"k", 1.0 / 1024}, {"kb", 1.0 / 1024}, {"kib", 1.0 / 1024}, {"m", 1},	   {"mb", 1},
	{"mib", 1},	   {"g", 1024},	       {"gb", 1024},	    {"gib", 1024}, {"t", 1048576},
	{"tb", 1048576},   {"tib", 1048576},   {NULL, 0},
};
static const struct scale byte_scales[] = {
	{"b", 1},
	{"k", 1024},
	{"kb", 1024},
	{"kib", 1024},
	{"m", 1 << 20},
	{"mb", 1 << 20},
	{"mib", 1 << 20},
	{"g", 1 << 30},
	{"gb", 1 << 30},
	{"gib", 1 << 30},
	{"t", 1ull << 40},
	{"tb", 1ull << 40},
	{"tib", 1ull << 40},
	{NULL, 0},
};
static const struct scale count_scales[] = {
	{"k", 1e3},
	{"m", 1e6},
	{"g", 1e9},
	{NULL, 0},
};
static const struct scale rate_scales[] = {
	{"/s", 1},  {"/sec", 1},  {"per second", 1}, {"rps", 1},
	{"k", 1e3}, {"k/s", 1e3}, {"k/sec", 1e3},    {NULL, 0},
};

struct unit {
	const char *key_suffix, *name; /* name NULL: a plain count */
	const struct scale *scales;
};

static const struct unit units[] = {
	{"_ms", "milliseconds", ms_scales},
	{"_us", "microseconds", us_scales},
	{"_mb", "MiB", mib_scales},
	{"_bytes", "bytes", byte_scales},
};

static const struct unit count_unit = {"", NULL, count_scales};
static const struct unit rate_unit = {"", NULL, rate_scales};

static const struct unit *
unit_of(const char *key, cyaml_type_e kind)
{
	size_t n = strlen(key);

	if (kind == CYAML_FLOAT)
		return &rate_unit;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		size_t k = strlen(units[i].key_suffix);

		if (n > k && strcmp(key + n - k, units[i].key_suffix) == 0)
			return &units[i];
	}
	return &count_unit;
}

/* Length of the longest prefix of @p s that is -?D+(.D*)?([eE][-+]?D+)? or -?.D+(...). */
static size_t
decimal_prefix(const char *s, bool exponent)
{
	size_t i = 0, digits = 0;

	if (s[i] == '-')
		i++;
	for (; s[i] >= '0' && s[i] <= '9'; i++)
		digits++;
	if (s[i] == '.' && (digits > 0 || (s[i + 1] >= '0' && s[i + 1] <= '9')))
		for (i++; s[i] >= '0' && s[i] <= '9'; i++)
			digits++;
	if (digits == 0)
		return 0;
	if (exponent && (s[i] == 'e' || s[i] == 'E')) {
		size_t j = i + 1;

		if (s[j] == '-' || s[j] == '+')
			j++;
		if (s[j] >= '0' && s[j] <= '9') {
			for (; s[j] >= '0' && s[j] <= '9'; j++)
				;
			i = j;
		}
	}
	return i;
}

/* Whether @p v (@p len bytes) is written as a key of kind @p kind takes it. */
static bool
strict_number(const char *v, size_t len, cyaml_type_e kind)
{
	size_t i = 0;

	if (len != strlen(v) || len == 0)
		return false;
	if (kind == CYAML_FLOAT)
		return decimal_prefix(v, true) == len;
	if (kind == CYAML_INT && v[0] == '-')
		i = 1;
	/* No digits, or a leading 0 (strtoll(base 0), which libcyaml uses, reads it as octal). */
	if (i == len || (v[i] == '0' && len - i > 1))
		return false;
	for (; i < len; i++)
		if (v[i] < '0' || v[i] > '9')
			return false;
	return true;
}

/*
 * What @p v probably means, in the key's unit: "2k" 2000 on a count, "5s" 5000 on a _ms key,
 * "2_000" 2000, "0x100" 256, "1e3" 1000, "+5" 5. False where there is no clear reading.
 */
static bool
guess_number(const char *v, const struct unit *u, double *out)
{
	char buf[64], *end, c;
	size_t n = 0, num;
	double x;

	for (const char *p = v; *p != '\0'; p++) {
		if (*p == '_' || (*p == '+' && p == v))
			continue;
		if (n + 1 >= sizeof(buf))
			return false;
		buf[n++] = *p;
	}
	buf[n] = '\0';
	if (buf[0] == '0' && (buf[1] == 'x' || buf[1] == 'X')) {
		unsigned long long h;

		errno = 0;
		h = strtoull(buf + 2, &end, 16);
		if (end == buf + 2 || *end != '\0' || errno != 0)
			return false;
		*out = (double)h;
		return true;
	}
	num = decimal_prefix(buf, true);
	if (num == 0)
		return false;
	c = buf[num];
	buf[num] = '\0';
	x = strtod(buf, NULL);
	buf[num] = c;
	end = buf + num;
	while (*end == ' ')
		end++;
	if (*end != '\0') {
		const struct scale *sc = u->scales;

		while (sc->suffix != NULL && strcasecmp(end, sc->suffix) != 0)
			sc++;
		if (sc->suffix == NULL)
			return false;
		x *= sc->factor;
	}
	*out = x;
	return isfinite(x);
}

/*
 * Why @p v, a number written strictly for a key of @p schema, does not fit the key's type, or
 * NULL where it does. libcyaml refuses an integer beyond its type as "not an integer" and
 * reads a float beyond a double as inf, or one too close to 0 as 0 (0 is "no limit" on a rate).
 * The key's own range is checked after libcyaml, from the apply_*() functions, not here.
 */
static const char *
beyond_type(const char *v, const cyaml_schema_value_t *schema)
{
	unsigned int bits =
		schema->data_size >= 1 && schema->data_size <= 8 ? schema->data_size * 8 : 64;
	uint64_t max = UINT64_MAX >> (64 - bits);
	double x;

	errno = 0;
	if (schema->type == CYAML_INT) {
		long long n = strtoll(v, NULL, 10);

		if (errno == ERANGE ? n > 0 : n > (long long)(max / 2))
			return "too large for a whole number";
		if (errno == ERANGE || n < -(long long)(max / 2) - 1)
			return "too small for a whole number";
		return NULL;
	}
	if (schema->type == CYAML_UINT)
		return errno == ERANGE || strtoull(v, NULL, 10) > max
			       ? "too large for a whole number"
			       : NULL;
	x = schema->data_size == sizeof(float) ? strtof(v, NULL) : strtod(v, NULL);
	if (errno != ERANGE)
		return NULL;
	if (fabs(x) < 1)
		return "too close to zero for a decimal number";
	return x > 0 ? "too large for a decimal number" : "too small for a decimal number";
}

/* The byte of the file where @p node begins (its tag or anchor, if it has one), or NULL. */
static const unsigned char *
node_text(struct checker *ck, const yaml_node_t *node)
{
	size_t want = node->start_mark.index;

	if (ck->text == NULL)
		return NULL;
	if (want < ck->at_char || ck->at_byte == 0) { /* from the start, after a UTF-8 BOM */
		ck->at_char = 0;
		ck->at_byte = ck->text_len >= 3 && memcmp(ck->text, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
	}
	while (ck->at_char < want && ck->at_byte < ck->text_len) {
		ck->at_byte++; /* past a character's first byte, then its continuation bytes */
		while (ck->at_byte < ck->text_len && (ck->text[ck->at_byte] & 0xc0) == 0x80)
			ck->at_byte++;
		ck->at_char++;
	}
	return ck->at_char == want && ck->at_byte < ck->text_len ? ck->text + ck->at_byte : NULL;
}

/*
 * The tag written before @p node's value, as written ("!!str", "!mine", "!<tag:...>", "!"),
 * into @p buf; "" when none was. libyaml's tree keeps the tag a written one resolves to, but
 * not whether one was written (a plain scalar gets !!str either way): the file says, at the
 * node's start, where its properties (an anchor and a tag, in either order) come first.
 */
static const char *
written_tag(struct checker *ck, const yaml_node_t *node, char *buf, size_t len)
{
	const unsigned char *at = node_text(ck, node);

	buf[0] = '\0';
	for (int props = 0; at != NULL && props < 2; props++) {
		size_t n = 0;

		if (*at == '!') { /* a verbatim tag, !<...>, may hold a ',' */
			while (at[n] != '\0' && !isspace(at[n]) && n + 1 < len &&
			       (at[1] == '<' ? n == 0 || at[n - 1] != '>'
					     : strchr(",]}", at[n]) == NULL))
				n++;
			memcpy(buf, at, n);
			buf[n] = '\0';
			return buf;
		}
		if (*at != '&')
			break;
		while (*at != '\0' && !isspace(*at)) /* the anchor's name */
			at++;
		while (*at == ' ' || *at == '\t')
			at++;
	}
	return buf;
}

/*
 * Whether @p node, a scalar, is YAML's null: ~, null, Null, NULL or nothing, unquoted and
 * untagged, or anything tagged !!null. libcyaml would read it as that text ("~"), for a
 * string too. Quoted ("~", "null", "") or tagged !!str it is text.
 */
static bool
yaml_null(struct checker *ck, const yaml_node_t *node)
{
	static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
	const char *v = (const char *)node->data.scalar.value;
	char tag[64];

	if (node->tag != NULL && strcmp((const char *)node->tag, YAML_NULL_TAG) == 0)
		return true;
	if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
	    node->data.scalar.length != strlen(v) || written_tag(ck, node, tag, sizeof(tag))[0])
		return false;
	for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		if (strcmp(v, nulls[i]) == 0)
			return true;
	return false;
}

/* What a key of @p kind takes, and the tags it takes (resolved, as libyaml gives them, then
 * as people write them): a number or a boolean is a plain scalar, untagged or of its kind. */
struct plain_kind {
	cyaml_type_e kind;
	const char *tags[2], *forms;
};

static const struct plain_kind plain_kinds[] = {
	{CYAML_INT, {YAML_INT_TAG, NULL}, "untagged or !!int"},
	{CYAML_UINT, {YAML_INT_TAG, NULL}, "untagged or !!int"},
	{CYAML_FLOAT, {YAML_FLOAT_TAG, YAML_INT_TAG}, "untagged, !!float or !!int"},
	{CYAML_BOOL, {YAML_BOOL_TAG, NULL}, "untagged or !!bool"},
};

/*
 * Whether @p node, whose characters its key accepts (a number written strictly, a boolean
 * word), is written as a value of its kind: a plain scalar, untagged or tagged with its kind.
 * Quoted ("100", '100'), a block (| or >) or tagged otherwise (!!str 100, !!float 100 for a
 * whole number, !mine 100) it is text or another kind, which libcyaml 1.3.1 would read as the
 * number all the same (it looks at the characters alone). If not, fail() says why, with
 * @p what, what the key takes ("a whole number of milliseconds").
 */
static bool
plain_value(struct checker *ck, const yaml_node_t *node, cyaml_type_e kind, const char *where,
	    const char *what)
{
	const char *v = (const char *)node->data.scalar.value, *resolved = (const char *)node->tag;
	const struct plain_kind *pk = &plain_kinds[0];
	yaml_scalar_style_t style = node->data.scalar.style;
	char tag[64];
	size_t line = node->start_mark.line + 1, col = node->start_mark.column + 1;

	while (pk < plain_kinds + sizeof(plain_kinds) / sizeof(plain_kinds[0]) - 1 &&
	       pk->kind != kind)
		pk++;
	written_tag(ck, node, tag, sizeof(tag));
	if (style == YAML_SINGLE_QUOTED_SCALAR_STYLE || style == YAML_DOUBLE_QUOTED_SCALAR_STYLE) {
		char q = style == YAML_SINGLE_QUOTED_SCALAR_STYLE ? '\'' : '"';

		fail(ck,
		     "line %zu, column %zu: %s: %s%s%c%.64s%c is quoted, so it is text; expected "
		     "%s, unquoted (write %.64s)",
		     line, col, where, tag, tag[0] ? " " : "", q, v, q, what, v);
		return false;
	}
	if (style == YAML_LITERAL_SCALAR_STYLE || style == YAML_FOLDED_SCALAR_STYLE) {
		fail(ck,
		     "line %zu, column %zu: %s: '%.64s' is a block of text (| or >); expected %s, "
		     "plain (write %.64s)",
		     line, col, where, v, what, v);
		return false;
	}
	if (tag[0] == '\0' || resolved == NULL ||
	    (pk->tags[0] != NULL && strcmp(resolved, pk->tags[0]) == 0) ||
	    (pk->tags[1] != NULL && strcmp(resolved, pk->tags[1]) == 0))
		return true;
	if (strcmp(resolved, YAML_STR_TAG) == 0)
		fail(ck,
		     "line %zu, column %zu: %s: %s %.64s is tagged as text; expected %s, %s (write "
		     "%.64s)",
		     line, col, where, tag, v, what, pk->forms, v);
	else
		fail(ck,
		     "line %zu, column %zu: %s: %s %.64s is tagged %s; expected %s, %s (write "
		     "%.64s)",
		     line, col, where, tag, v, tag, what, pk->forms, v);
	return false;
}

/* A string key, or an entry of a list of strings: not YAML's null, and of the schema's
 * length (libcyaml's own message for a length says "STRING length > 64: ..."). */
static void
check_string(struct checker *ck, const yaml_node_t *node, const cyaml_schema_value_t *schema,
	     const char *where)
{
	const char *v = (const char *)node->data.scalar.value;
	size_t len = strlen(v); /* as libcyaml counts */

	if (yaml_null(ck, node))
		fail(ck,
		     "line %zu, column %zu: %s: no value; expected a string (quote \"~\" or "
		     "\"null\" to mean those characters; leave a key out for its default)",
		     node->start_mark.line + 1, node->start_mark.column + 1, where);
	else if (len < schema->string.min)
		fail(ck, "line %zu, column %zu: %s: empty; expected %u to %u characters",
		     node->start_mark.line + 1, node->start_mark.column + 1, where,
		     schema->string.min, schema->string.max);
	else if (len > schema->string.max)
		fail(ck, "line %zu, column %zu: %s: '%.64s%s' is longer than %u characters",
		     node->start_mark.line + 1, node->start_mark.column + 1, where, v,
		     len > 64 ? "..." : "", schema->string.max);
}

static void
check_number(struct checker *ck, const yaml_node_t *node, const cyaml_schema_value_t *schema,
	     const char *key, const char *where)
{
	const char *v = (const char *)node->data.scalar.value;
	size_t len = node->data.scalar.length;
	cyaml_type_e kind = schema->type;
	const struct unit *u = unit_of(key, kind);
	char what[64], how[96];
	const char *beyond;
	double x = 0;
	bool hint;

	if (kind == CYAML_FLOAT)
		snprintf(what, sizeof(what), "a decimal number");
	else if (u->name != NULL)
		snprintf(what, sizeof(what), "a whole number of %s", u->name);
	else
		snprintf(what, sizeof(what), "a whole number");
	if (strict_number(v, len, kind)) {
		beyond = beyond_type(v, schema);
		if (beyond != NULL)
			fail(ck, "line %zu, column %zu: %s: '%.64s%s' is %s",
			     node->start_mark.line + 1, node->start_mark.column + 1, where, v,
			     len > 64 ? "..." : "", beyond);
		else
			plain_value(ck, node, kind, where, what);
		return;
	}
	if (len == 0) {
		fail(ck, "line %zu, column %zu: %s: no value; expected %s",
		     node->start_mark.line + 1, node->start_mark.column + 1, where, what);
		return;
	}
	/* A hint for an integer key only where it is a whole number. */
	hint = len == strlen(v) && guess_number(v, u, &x) &&
	       (kind == CYAML_FLOAT ||
		(fabs(x) < 1e18 && fabs(x - round(x)) <= 1e-9 * fmax(1, fabs(x))));
	if (kind == CYAML_FLOAT && hint)
		snprintf(how, sizeof(how), "write %.15g", x);
	else if (kind == CYAML_FLOAT)
		snprintf(how, sizeof(how), "such as 2.5 or 1e3");
	else if (hint && strspn(v, "0123456789") == len)
		snprintf(how, sizeof(how), "no leading zero: write %.0f", round(x));
	else if (hint)
		snprintf(how, sizeof(how), "%swrite %.0f",
			 u->name ? "" : "digits only: ", round(x));
	else
		snprintf(how, sizeof(how), "digits only");
	fail(ck, "line %zu, column %zu: %s: '%.64s%s' is not %s (%s)", node->start_mark.line + 1,
	     node->start_mark.column + 1, where, v, len > 64 ? "..." : "", what, how);
}

/* YAML 1.1's booleans, as libyaml users write them and libcyaml reads right; not y/n, 0/1. */
static const char *const bool_words[] = {
	"true",	 "True",  "TRUE",  "yes", "Yes", "YES", "on",  "On",  "ON",
	"false", "False", "FALSE", "no",  "No",	 "NO",	"off", "Off", "OFF",
};

/* A boolean key: libcyaml 1.3.1 reads anything but false/no/off/disable/0 as true, and "true"
 * quoted (text) as true too. */
static void
check_bool(struct checker *ck, const yaml_node_t *node, const char *where)
{
	const char *v = (const char *)node->data.scalar.value;
	size_t len = node->data.scalar.length;

	if (len == strlen(v))
		for (size_t i = 0; i < sizeof(bool_words) / sizeof(bool_words[0]); i++)
			if (strcmp(v, bool_words[i]) == 0) {
				plain_value(ck, node, CYAML_BOOL, where, "true or false");
				return;
			}
	if (len == 0)
		fail(ck, "line %zu, column %zu: %s: no value; expected true or false",
		     node->start_mark.line + 1, node->start_mark.column + 1, where);
	else
		fail(ck, "line %zu, column %zu: %s: '%.64s%s' is not true or false",
		     node->start_mark.line + 1, node->start_mark.column + 1, where, v,
		     len > 64 ? "..." : "");
}

/*
 * Walk @p node alongside @p schema; @p where is its path ("models[0].max_batch") and @p key
 * the last mapping key on it. Nodes of another shape than the schema's are left to
 * libcyaml, which names the type it expected. Aliases are nodes shared in the tree.
 */
static void
check_node(struct checker *ck, yaml_document_t *doc, yaml_node_t *node,
	   const cyaml_schema_value_t *schema, const char *key, char *where, size_t where_len)
{
	size_t off = strlen(where);
	unsigned int i = 0;

	mark(ck, where, node);
	switch (schema->type) {
	case CYAML_MAPPING:
		if (node->type != YAML_MAPPING_NODE)
			return;
		for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
		     p < node->data.mapping.pairs.top && !ck->failed; p++) {
			yaml_node_t *k = yaml_document_get_node(doc, p->key);
			yaml_node_t *v = yaml_document_get_node(doc, p->value);
			const cyaml_schema_field_t *f = schema->mapping.fields;
			const char *name;

			if (k == NULL || v == NULL || k->type != YAML_SCALAR_NODE)
				continue;
			name = (const char *)k->data.scalar.value;
			while (f->key != NULL && strcmp(f->key, name) != 0)
				f++;
			if (f->key == NULL) {
				fail(ck,
				     "line %zu, column %zu: %s%sunexpected key '%.64s' (see %s)",
				     k->start_mark.line + 1, k->start_mark.column + 1, where,
				     off ? ": " : "", name, REFERENCE);
				return;
			}
			snprintf(where + off, where_len - off, "%s%s", off ? "." : "", f->key);
			for (yaml_node_pair_t *q = node->data.mapping.pairs.start; q < p; q++) {
				yaml_node_t *qk = yaml_document_get_node(doc, q->key);

				if (qk != NULL && qk->type == YAML_SCALAR_NODE &&
				    strcmp((const char *)qk->data.scalar.value, name) == 0) {
					fail(ck,
					     "line %zu, column %zu: %s: set twice (first at line "
					     "%zu)",
					     k->start_mark.line + 1, k->start_mark.column + 1,
					     where, qk->start_mark.line + 1);
					return;
				}
			}
			check_node(ck, doc, v, &f->value, f->key, where, where_len);
			where[off] = '\0';
		}
		break;
	case CYAML_SEQUENCE:
	case CYAML_SEQUENCE_FIXED:
		if (node->type != YAML_SEQUENCE_NODE)
			return;
		/* libcyaml's "Excessive entries (16 max) in sequence." names no count */
		if ((size_t)(node->data.sequence.items.top - node->data.sequence.items.start) >
		    schema->sequence.max) {
			yaml_node_t *first = yaml_document_get_node(
				doc, node->data.sequence.items.start[schema->sequence.max]);
			const yaml_mark_t *m =
				first != NULL ? &first->start_mark : &node->start_mark;

			fail(ck, "line %zu, column %zu: %s: %zu entries, at most %u", m->line + 1,
			     m->column + 1, where,
			     (size_t)(node->data.sequence.items.top -
				      node->data.sequence.items.start),
			     schema->sequence.max);
			return;
		}
		for (yaml_node_item_t *it = node->data.sequence.items.start;
		     it < node->data.sequence.items.top && !ck->failed; it++, i++) {
			yaml_node_t *v = yaml_document_get_node(doc, *it);

			if (v == NULL)
				continue;
			snprintf(where + off, where_len - off, "[%u]", i);
			check_node(ck, doc, v, schema->sequence.entry, key, where, where_len);
			where[off] = '\0';
		}
		break;
	case CYAML_INT:
	case CYAML_UINT:
	case CYAML_FLOAT:
		if (node->type == YAML_SCALAR_NODE)
			check_number(ck, node, schema, key, where);
		break;
	case CYAML_BOOL:
		if (node->type == YAML_SCALAR_NODE)
			check_bool(ck, node, where);
		break;
	case CYAML_STRING:
		if (node->type == YAML_SCALAR_NODE)
			check_string(ck, node, schema, where);
		break;
	default:
		break;
	}
}

/* libyaml's error: its marks count lines and columns from 0, people from 1. */
static void
syntax_error(struct checker *ck, const yaml_parser_t *p)
{
	char context[160] = "";

	if (p->error == YAML_READER_ERROR) {
		if (p->problem_value >= 0)
			snprintf(context, sizeof(context), " (0x%02x)",
				 (unsigned int)p->problem_value);
		fail(ck, "byte %zu: %s%s", p->problem_offset,
		     p->problem ? p->problem : "cannot read", context);
		return;
	}
	if (p->context != NULL)
		snprintf(context, sizeof(context), " (%s at line %zu, column %zu)", p->context,
			 p->context_mark.line + 1, p->context_mark.column + 1);
	fail(ck, "line %zu, column %zu: %s%s", p->problem_mark.line + 1, p->problem_mark.column + 1,
	     p->problem ? p->problem : "not valid YAML", context);
}

/* After the first document: libcyaml loads that one and ignores the rest of the file. */
static int
one_document(struct checker *ck, yaml_parser_t *parser)
{
	yaml_event_t ev;

	if (!yaml_parser_parse(parser, &ev)) {
		if (parser->error == YAML_MEMORY_ERROR)
			return -ENOMEM;
		syntax_error(ck, parser);
		return -EINVAL;
	}
	if (ev.type == YAML_DOCUMENT_START_EVENT)
		fail(ck, "line %zu: a second YAML document ('---'): one configuration per file",
		     ev.start_mark.line + 1);
	yaml_event_delete(&ev);
	return ck->failed ? -EINVAL : 0;
}

/*
 * The pre-pass over @p text (the whole file): 0, -EINVAL (reported in @p ck) or -ENOMEM.
 * Why a walk of libyaml's tree beside the libcyaml schema, rather than numbers read as strings
 * or a list of numeric keys: the schema stays the one list of keys and their kinds, every
 * error gets libyaml's own line and column, and libcyaml's types and conversions stay as they
 * are for everything that passes.
 */
static int
prepass(struct checker *ck, const unsigned char *text, size_t len)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	char where[256] = "";
	int rc = 0;

	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		if (parser.error == YAML_MEMORY_ERROR) {
			rc = -ENOMEM;
		} else {
			syntax_error(ck, &parser);
			rc = -EINVAL;
		}
		yaml_parser_delete(&parser);
		return rc;
	}
	root = yaml_document_get_root_node(&doc);
	ck->text = text; /* for yaml_null() */
	ck->text_len = len;
	if (root != NULL)
		check_node(ck, &doc, root, &root_value, "", where, sizeof(where));
	/* No root: the stream ended without a document (empty, or comments only). */
	if (root != NULL && !ck->failed)
		rc = one_document(ck, &parser);
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	ck->text = NULL; /* the caller frees it */
	return rc < 0 ? rc : ck->failed ? -EINVAL : 0;
}

/* A sorted, duplicate-free copy of a list of tenant ids; false (and a message) if one is out
 * of range. */
static bool
tenant_list(struct checker *ck, const char *field, const int64_t *v, unsigned int n, uint32_t **out,
	    unsigned int *n_out)
{
	uint32_t *t;
	unsigned int k = 0;

	*out = NULL;
	*n_out = 0;
	if (n == 0)
		return true;
	t = malloc(n * sizeof(*t));
	if (t == NULL) {
		fail(ck, "out of memory");
		return false;
	}
	for (unsigned int i = 0; i < n; i++) {
		if (v[i] < 0 || v[i] > UINT32_MAX) {
			fail(ck, "%s[%u]: %" PRId64 " is out of range 0..4294967295", field, i,
			     v[i]);
			free(t);
			return false;
		}
		t[i] = (uint32_t)v[i];
	}
	/* insertion sort: short lists */
	for (unsigned int i = 1; i < n; i++)
		for (unsigned int j = i; j > 0 && t[j - 1] > t[j]; j--) {
			uint32_t x = t[j];

			t[j] = t[j - 1];
			t[j - 1] = x;
		}
	for (unsigned int i = 0; i < n; i++)
		if (k == 0 || t[k - 1] != t[i])
			t[k++] = t[i];
	*out = t;
	*n_out = k;
	return true;
}

static bool
client_name_ok(const char *s)
{
	if (s == NULL || s[0] == '\0' || strlen(s) > MB_CONFIG_CLIENT_NAME_MAX)
		return false;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' || *s == '.'))
			return false;
	return true;
}

static void
apply_client(struct checker *ck, unsigned int i, const struct y_client *y, struct mb_config *c)
{
	struct mb_client_config *d = &c->clients[i];
	uint8_t raw[32];
	char field[64];

	if (!client_name_ok(y->name)) {
		fail(ck,
		     "security.clients[%u].name: %s%s%s: give each client a name of 1 to %d "
		     "letters, "
		     "digits, '-', '_' or '.' (it names the client in logs and metrics)",
		     i, y->name ? "'" : "", y->name ? y->name : "missing", y->name ? "'" : "",
		     MB_CONFIG_CLIENT_NAME_MAX);
		return;
	}
	snprintf(d->name, sizeof(d->name), "%s", y->name);
	if ((y->public_key == NULL) == (y->public_key_file == NULL)) {
		fail(ck,
		     "security.clients[%u] (%s): give exactly one of 'public_key' (its Z85 text, "
		     "40 characters, quoted) and 'public_key_file' (its public certificate, as "
		     "'mediabatch keygen' writes it)",
		     i, d->name);
		return;
	}
	if (y->public_key != NULL) {
		if (strlen(y->public_key) != 40 || zmq_z85_decode(raw, y->public_key) == NULL) {
			fail(ck,
			     "security.clients[%u].public_key: '%s' is not a CURVE public key (40 "
			     "characters of Z85; quote it in YAML)",
			     i, y->public_key);
			return;
		}
		snprintf(d->public_key, sizeof(d->public_key), "%s", y->public_key);
	} else {
		if (y->public_key_file[0] == '\0') {
			fail(ck, "security.clients[%u].public_key_file: empty", i);
			return;
		}
		snprintf(d->public_key_file, sizeof(d->public_key_file), "%s", y->public_key_file);
	}
	snprintf(field, sizeof(field), "security.clients[%u].tenants", i);
	if (!tenant_list(ck, field, y->tenants, y->tenants_count, &d->tenants, &d->n_tenants))
		return;
	snprintf(field, sizeof(field), "security.clients[%u].subscribe", i);
	if (y->subscribe_count != 0) {
		if (!tenant_list(ck, field, y->subscribe, y->subscribe_count, &d->subscribe,
				 &d->n_subscribe))
			return;
	} else if (d->n_tenants != 0) { /* by default, the results of the tenants it sends as */
		d->subscribe = malloc(d->n_tenants * sizeof(*d->subscribe));
		if (d->subscribe == NULL) {
			fail(ck, "out of memory");
			return;
		}
		memcpy(d->subscribe, d->tenants, d->n_tenants * sizeof(*d->subscribe));
		d->n_subscribe = d->n_tenants;
	}
	d->subscribe_all = y->subscribe_all != NULL && *y->subscribe_all;
	if (d->n_tenants == 0 && d->n_subscribe == 0 && !d->subscribe_all) {
		fail(ck,
		     "security.clients[%u] (%s): may do nothing: give 'tenants' (it may send as), "
		     "'subscribe' (it may receive the results of) or 'subscribe_all: true'",
		     i, d->name);
		return;
	}
	snprintf(field, sizeof(field), "security.clients[%u].max_inflight", i);
	if (int_in(ck, field, y->max_inflight, 1, 1 << 20))
		d->max_inflight = (uint32_t)*y->max_inflight;
}

static const char *
client_name(const void *a)
{
	return ((const struct mb_client_config *)a)->name;
}

static const char *
client_key(const void *a)
{
	return ((const struct mb_client_config *)a)->public_key;
}

static int
cmp_client_name(const void *a, const void *b)
{
	return strcmp(((const struct mb_client_config *)a)->name,
		      ((const struct mb_client_config *)b)->name);
}

/* inline keys only: entries with a key file compare unequal to everything (their keys are
 * read, and compared, when the allow-list is built) */
static int
cmp_client_key(const void *a, const void *b)
{
	const struct mb_client_config *x = a, *y = b;
	int c = strcmp(x->public_key, y->public_key);

	if (c == 0 && x->public_key[0] == '\0')
		return x < y ? -1 : x > y;
	return c;
}

static void
apply_security(struct checker *ck, const struct y_security *s, struct mb_config *c)
{
	if (s == NULL || ck->failed)
		return;
	if (s->mode != NULL) {
		if (strcmp(s->mode, "plaintext") == 0) {
			c->security_mode = MB_SECURITY_PLAINTEXT;
		} else if (strcmp(s->mode, "curve") == 0) {
			c->security_mode = MB_SECURITY_CURVE;
		} else {
			fail(ck, "security.mode: '%s' is not one of plaintext, curve", s->mode);
			return;
		}
	}
	if (s->server_key != NULL)
		snprintf(c->server_key_file, sizeof(c->server_key_file), "%s", s->server_key);
	if (s->clients_count != 0) {
		c->clients = calloc(s->clients_count, sizeof(*c->clients));
		if (c->clients == NULL) {
			fail(ck, "out of memory");
			return;
		}
		for (unsigned int i = 0; i < s->clients_count && !ck->failed; i++) {
			c->n_clients = i + 1;
			apply_client(ck, i, &s->clients[i], c);
		}
		if (!ck->failed)
			find_twins(
				ck, c->clients, c->n_clients, sizeof(*c->clients), cmp_client_name,
				"security.clients[%u].name: '%s' is already security.clients[%u]",
				client_name, NULL);
		if (!ck->failed)
			find_twins(ck, c->clients, c->n_clients, sizeof(*c->clients),
				   cmp_client_key,
				   "security.clients[%u].public_key: '%s' is already the key of "
				   "security.clients[%u]: one entry per key",
				   client_key, NULL);
	}
	if (ck->failed || c->security_mode != MB_SECURITY_CURVE)
		return;
	if (c->server_key_file[0] == '\0')
		fail(ck,
		     "security.server_key: missing; with mode curve the service needs its secret "
		     "certificate (write one with 'mediabatch keygen DIR/server')");
	else if (c->n_clients == 0)
		fail(ck, "security.clients: empty; with mode curve only the keys listed there may "
			 "connect, so nobody could");
}

static void
apply_http(struct checker *ck, const struct y_http *s, struct mb_config *c)
{
	if (s == NULL || ck->failed)
		return;
	if ((s->tls_cert == NULL) != (s->tls_key == NULL)) {
		fail(ck, "http: give both tls_cert and tls_key (PEM files), or neither");
		return;
	}
	if (s->tls_cert != NULL) {
		snprintf(c->http_tls_cert, sizeof(c->http_tls_cert), "%s", s->tls_cert);
		snprintf(c->http_tls_key, sizeof(c->http_tls_key), "%s", s->tls_key);
	}
	if (s->token_file != NULL)
		snprintf(c->http_token_file, sizeof(c->http_token_file), "%s", s->token_file);
	if (int_in(ck, "http.max_connections", s->max_connections, 4, 65536))
		c->http_max_connections = (uint32_t)*s->max_connections;
	if (int_in(ck, "http.max_connections_per_ip", s->max_connections_per_ip, 1, 65536))
		c->http_max_connections_per_ip = (uint32_t)*s->max_connections_per_ip;
	if (int_in(ck, "http.timeout_ms", s->timeout_ms, 100, 3600000))
		c->http_timeout_ms = (uint32_t)*s->timeout_ms;
}

/*
 * Doubtful values (mb_config_doubts()). Each threshold is where a value in range stops
 * making sense, said in its message:
 * - zmq.heartbeat_ms: the ROUTER disconnects a requester silent for three intervals
 *   (ZMQ_HEARTBEAT_TIMEOUT, net/frontdoor.c). Below 100 ms that is under 300 ms: one lost
 *   packet (Linux resends after TCP_RTO_MIN, 200 ms, at the soonest) plus a ping interval,
 *   or a requester's thread held up by a busy host, cuts off a live requester and drops its
 *   held replies.
 * - models[].run_timeout_ms: a batch still in run() past it is presumed hung and its model
 *   disabled until restart. The daemon's main loop runs the watchdog every 100 ms (its
 *   tick, app/mediabatchd/main.c), so a smaller value finds a hung batch at most 100 ms
 *   sooner, while a batch delayed by a busy host, a page fault or a first-touch allocation
 *   for that long disables a model that works.
 */
#define DOUBT_HEARTBEAT_MS 100
#define DOUBT_RUN_TIMEOUT_MS 100

/* in the reference's order: zmq, models, http */
unsigned int
mb_config_doubts(const struct mb_config *c, char *buf, size_t len)
{
	unsigned int n = 0;

	if (len > 0)
		buf[0] = '\0';
	if (c->zmq_heartbeat_ms != 0 && c->zmq_heartbeat_ms < DOUBT_HEARTBEAT_MS)
		mb_config_list_add(
			buf, len, &n, "\n",
			"zmq.heartbeat_ms %" PRIu32 " is below %d ms: a requester silent "
			"for three intervals (%" PRIu32 " ms) is disconnected and its "
			"held replies dropped, and one lost packet (TCP resends it after "
			"200 ms at the least) or a busy host's scheduling delay can be "
			"that long (0 turns heartbeats off)",
			c->zmq_heartbeat_ms, DOUBT_HEARTBEAT_MS, 3 * c->zmq_heartbeat_ms);
	for (unsigned int i = 0; i < c->n_models; i++) {
		const struct mb_model_config *m = &c->models[i];

		if (m->enabled == 0 || m->run_timeout_ms <= 0 ||
		    m->run_timeout_ms >= DOUBT_RUN_TIMEOUT_MS)
			continue;
		mb_config_list_add(
			buf, len, &n, "\n",
			"models[%u] (%s): run_timeout_ms %" PRId64 " is below %d ms: a "
			"batch still running after %" PRId64 " ms (a busy host's "
			"scheduling delay can be that long) is taken for hung, answered "
			"MODEL_ERROR, and the model disabled until restart; the watchdog "
			"looks every 100 ms, so it finds a hung batch hardly sooner (0 "
			"turns it off)",
			i, m->name, m->run_timeout_ms, DOUBT_RUN_TIMEOUT_MS, m->run_timeout_ms);
	}
	/* one address may hold max_connections_per_ip connections: at or above the whole
	 * limit, it can take them all and the per-address limit never refuses anyone (with
	 * the endpoint off, service.metrics "off", there are no connections to limit) */
	if (c->metrics[0] != '\0' && c->http_max_connections <= c->http_max_connections_per_ip)
		mb_config_list_add(
			buf, len, &n, "\n",
			"http.max_connections %" PRIu32 "%s %s http.max_connections_per_ip "
			"%" PRIu32 "%s: one address may take every connection, so the per-address "
			"limit never applies (set max_connections_per_ip below max_connections)",
			c->http_max_connections,
			c->http_max_connections == DEFAULT_HTTP_MAX_CONNECTIONS ? " (the default)"
										: "",
			c->http_max_connections < c->http_max_connections_per_ip ? "is below"
										 : "equals",
			c->http_max_connections_per_ip,
			c->http_max_connections_per_ip == DEFAULT_HTTP_MAX_CONNECTIONS_PER_IP
				? " (the default)"
				: "");
	return n;
}

/* Shares are parts of the whole: none above service.max_inflight. */
static void
check_shares(struct checker *ck, const struct mb_config *c)
{
	if (ck->failed)
		return;
	if (c->max_inflight_per_client > c->max_inflight)
		fail(ck,
		     "service.max_inflight_per_client: %u is above service.max_inflight (%u): a "
		     "client's share is a part of the whole",
		     c->max_inflight_per_client, c->max_inflight);
	else if (c->max_inflight_per_tenant > c->max_inflight)
		fail(ck,
		     "service.max_inflight_per_tenant: %u is above service.max_inflight (%u): a "
		     "tenant's share is a part of the whole",
		     c->max_inflight_per_tenant, c->max_inflight);
	for (unsigned int i = 0; i < c->n_clients && !ck->failed; i++)
		if (c->clients[i].max_inflight > c->max_inflight)
			fail(ck,
			     "security.clients[%u].max_inflight: %u is above service.max_inflight "
			     "(%u)",
			     i, c->clients[i].max_inflight, c->max_inflight);
}

/* The whole of @p path into a buffer (malloc, NUL-terminated) the caller frees. */
static int
read_file(const char *path, unsigned char **out, size_t *out_len)
{
	const size_t max = 64u << 20;
	size_t len = 0, cap = 4096;
	unsigned char *buf = malloc(cap), *nb;
	FILE *f = fopen(path, "rb");
	int rc = 0;

	if (buf == NULL || f == NULL) {
		rc = buf == NULL ? -ENOMEM : -errno;
		goto out;
	}
	errno = 0;
	for (;;) {
		size_t n = fread(buf + len, 1, cap - 1 - len, f);

		len += n;
		if (n == 0)
			break;
		if (len == cap - 1) {
			if (cap >= max) {
				rc = -EFBIG;
				goto out;
			}
			nb = realloc(buf, cap * 2);
			if (nb == NULL) {
				rc = -ENOMEM;
				goto out;
			}
			buf = nb;
			cap *= 2;
		}
	}
	if (ferror(f))
		rc = errno != 0 ? -errno : -EIO;
out:
	if (f != NULL)
		fclose(f);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	buf[len] = '\0';
	*out = buf;
	*out_len = len;
	return 0;
}

int
mb_config_load(struct mb_config *cfg, const char *path, char *err, size_t err_len)
{
	struct capture cap = {.n = 0};
	cyaml_config_t ycfg = {
		.log_fn = capture_log,
		.log_ctx = &cap,
		.mem_fn = cyaml_mem,
		.log_level = CYAML_LOG_ERROR,
		.flags = CYAML_CFG_DEFAULT,
	};
	struct y_root *root = NULL;
	struct mb_config next;
	struct checker ck = {.path = path, .err = err, .len = err_len};
	unsigned char *text;
	size_t len;
	cyaml_err_t yerr;
	int rc;

	if (access(path, R_OK) != 0) {
		int e = errno;

		snprintf(err, err_len, "%s: %s", path, strerror(e));
		return e == ENOENT ? -ENOENT : -EINVAL;
	}
	rc = read_file(path, &text, &len);
	if (rc < 0) {
		snprintf(err, err_len, "%s: %s", path,
			 rc == -EFBIG ? "larger than 64 MiB: not a configuration file"
				      : strerror(-rc));
		return rc == -ENOMEM ? -ENOMEM : -EINVAL;
	}
	rc = prepass(&ck, text, len);
	if (rc < 0) {
		free(ck.marks);
		free(text);
		if (rc == -ENOMEM)
			snprintf(err, err_len, "%s: out of memory", path);
		return rc;
	}
	yerr = cyaml_load_data(text, len, &ycfg, &root_value, (cyaml_data_t **)&root, NULL);
	free(text);
	if (yerr != CYAML_OK || root == NULL)
		free(ck.marks);
	if (yerr != CYAML_OK) {
		if (yerr == CYAML_ERR_OOM) {
			snprintf(err, err_len, "%s: out of memory", path);
			return -ENOMEM;
		}
		describe_parse_error(&cap, path, err, err_len);
		return -EINVAL;
	}
	if (root == NULL) { /* an empty file: nothing to override */
		snprintf(cfg->source, sizeof(cfg->source), "%s", path);
		return 0;
	}
	/* Build the result in a copy so that a failure leaves @cfg untouched. */
	next = *cfg;
	next.eal_args = NULL;
	next.n_eal_args = 0;
	next.limits = NULL;
	next.n_limits = 0;
	next.models = NULL;
	next.n_models = 0;
	next.udp_ports = NULL;
	next.n_udp_ports = 0;
	next.udp_sources = NULL;
	next.n_udp_sources = 0;
	next.clients = NULL;
	next.n_clients = 0;
	apply_service(&ck, root->service, &next);
	apply_idle(&ck, root->idle, &next);
	apply_zmq(&ck, root->zmq, &next);
	apply_eal(&ck, root->eal, &next);
	apply_devices(&ck, root->devices, &next);
	apply_udp(&ck, root->udp, &next);
	apply_tenants(&ck, root->tenants, &next);
	apply_models(&ck, root, &next);
	apply_weights_breaker(&ck, root, &next);
	apply_security(&ck, root->security, &next);
	apply_http(&ck, root->http, &next);
	check_shares(&ck, &next);
	if (!ck.failed) {
		char why[768];

		if (mb_config_check_endpoints(&next, why, sizeof(why)) < 0)
			fail(&ck, "%s", why);
	}
	cyaml_free(&ycfg, &root_value, root, 0);
	free(ck.marks);
	if (ck.failed) {
		mb_config_fini(&next);
		return -EINVAL;
	}
	mb_config_fini(cfg);
	*cfg = next;
	snprintf(cfg->source, sizeof(cfg->source), "%s", path);
	return 0;
}

/* ---- what a reload leaves for the next start ---- */

void
mb_config_list_add(char *out, size_t len, unsigned int *n, const char *sep, const char *fmt, ...)
{
	size_t used;
	va_list ap;
	int w;

	if (++*n == 1 && len > 0)
		out[0] = '\0';
	if (len < 4)
		return;
	used = strlen(out);
	if (*n > 1 && used + strlen(sep) < len)
		used += (size_t)snprintf(out + used, len - used, "%s", sep);
	va_start(ap, fmt);
	w = vsnprintf(out + used, len - used, fmt, ap);
	va_end(ap);
	if (w < 0 || (size_t)w >= len - used) /* cut: end on "..." */
		snprintf(out + len - 4, 4, "...");
}

struct changes {
	char *out;
	size_t len;
	unsigned int n;
};

static void
changed(struct changes *c, const char *key)
{
	mb_config_list_add(c->out, c->len, &c->n, ", ", "%s", key);
}

static bool
udp_ports_differ(const struct mb_config *a, const struct mb_config *b)
{
	if (a->n_udp_ports != b->n_udp_ports)
		return true;
	for (unsigned int i = 0; i < a->n_udp_ports; i++) {
		const struct mb_udp_port_config *p = &a->udp_ports[i], *q = &b->udp_ports[i];

		if (strcmp(p->device, q->device) != 0 || p->address != q->address ||
		    p->rx_queues != q->rx_queues || p->n_cpus != q->n_cpus ||
		    memcmp(p->cpus, q->cpus, p->n_cpus * sizeof(p->cpus[0])) != 0)
			return true;
	}
	return false;
}

static bool
udp_sources_differ(const struct mb_config *a, const struct mb_config *b)
{
	if (a->n_udp_sources != b->n_udp_sources)
		return true;
	for (unsigned int i = 0; i < a->n_udp_sources; i++) {
		const struct mb_udp_source_config *s = &a->udp_sources[i], *t = &b->udp_sources[i];

		if (s->tenant != t->tenant || s->n_prefixes != t->n_prefixes)
			return true;
		for (unsigned int k = 0; k < s->n_prefixes; k++)
			if (s->prefixes[k].addr != t->prefixes[k].addr ||
			    s->prefixes[k].mask != t->prefixes[k].mask)
				return true;
	}
	return false;
}

static bool
eal_args_differ(const struct mb_config *a, const struct mb_config *b)
{
	if (a->n_eal_args != b->n_eal_args)
		return true;
	for (unsigned int i = 0; i < a->n_eal_args; i++)
		if (strcmp(a->eal_args[i], b->eal_args[i]) != 0)
			return true;
	return false;
}

unsigned int
mb_config_restart_keys(const struct mb_config *a, const struct mb_config *b, char *out, size_t len)
{
	struct changes c = {.out = out, .len = len};

#define NUM(key, f)                                                                                \
	do {                                                                                       \
		if (a->f != b->f)                                                                  \
			changed(&c, key);                                                          \
	} while (0)
#define TXT(key, f)                                                                                \
	do {                                                                                       \
		if (strcmp(a->f, b->f) != 0)                                                       \
			changed(&c, key);                                                          \
	} while (0)
	if (len > 0)
		out[0] = '\0';
	TXT("service.ingest", ingest);
	TXT("service.publish", publish);
	TXT("service.metrics", metrics);
	NUM("service.log_level", log_level);
	NUM("service.log_format", log_format);
	NUM("service.ready_when", ready_when);
	NUM("service.placement", placement);
	NUM("service.drain_timeout_ms", drain_timeout_ms);
	NUM("service.drain_quiet_ms", drain_quiet_ms);
	NUM("service.liveness_ms", liveness_ms);
	NUM("service.max_inflight", max_inflight);
	NUM("service.max_inflight_bytes", max_inflight_bytes);
	NUM("service.max_payload_bytes", max_payload_bytes);
	NUM("service.max_inflight_per_client", max_inflight_per_client);
	NUM("service.max_inflight_per_tenant", max_inflight_per_tenant);
	NUM("idle.mode", idle.mode);
	NUM("idle.spin_polls", idle.spin_polls);
	NUM("idle.sleep_us", idle.sleep_ns);
	NUM("zmq.io_threads", zmq_io_threads);
	NUM("zmq.router_sndhwm", router_sndhwm);
	NUM("zmq.router_rcvhwm", router_rcvhwm);
	NUM("zmq.pub_sndhwm", pub_sndhwm);
	NUM("zmq.heartbeat_ms", zmq_heartbeat_ms);
	NUM("eal.memory_mb", eal_memory_mb);
	if (eal_args_differ(a, b))
		changed(&c, "eal.args");
	NUM("devices.cpu.units", cpu_units);
	NUM("devices.cpu.workers", cpu_workers);
	NUM("devices.cpu.serve", cpu_serve);
	NUM("devices.cuda.mode", cuda_mode);
	if (a->n_cuda_gpus != b->n_cuda_gpus ||
	    memcmp(a->cuda_gpus, b->cuda_gpus, a->n_cuda_gpus * sizeof(a->cuda_gpus[0])) != 0)
		changed(&c, "devices.cuda.gpus");
	NUM("devices.cuda.unit_mb", cuda_unit_mb);
	NUM("devices.cuda.reserve_mb", cuda_reserve_mb);
	NUM("devices.cuda.max_units", cuda_max_units);
	NUM("devices.cuda.workers", cuda_workers);
	NUM("udp.port", udp_port);
	NUM("udp.reassembly_timeout_ms", udp_reassembly_timeout_ms);
	NUM("udp.max_requests", udp_max_requests);
	NUM("udp.buffer_mb", udp_buffer_mb);
	NUM("udp.mbufs", udp_mbufs);
	NUM("udp.rx_descriptors", udp_rx_descriptors);
	if (udp_ports_differ(a, b))
		changed(&c, "udp.ports");
	if (udp_sources_differ(a, b))
		changed(&c, "udp.sources");
	TXT("weights_dir", weights_dir);
	NUM("breaker.failure_threshold", breaker_failures);
	NUM("breaker.cooldown_ms", breaker_cooldown_ms);
	NUM("breaker.probe_timeout_ms", breaker_probe_timeout_ms);
	NUM("security.mode", security_mode);
	TXT("security.server_key", server_key_file);
	TXT("http.tls_cert", http_tls_cert);
	TXT("http.tls_key", http_tls_key);
	TXT("http.token_file", http_token_file);
	NUM("http.max_connections", http_max_connections);
	NUM("http.max_connections_per_ip", http_max_connections_per_ip);
	NUM("http.timeout_ms", http_timeout_ms);
#undef NUM
#undef TXT
	return c.n;
}
