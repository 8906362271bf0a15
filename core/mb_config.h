/**
 * @file
 * Service configuration: the embedded default, and a YAML file that overrides it.
 *
 * mb_config_defaults() fills the embedded default (CPU device, ZeroMQ on loopback, no NIC).
 * mb_config_load() reads a YAML file (parsed by libcyaml against a schema), checks every
 * value against its allowed range, and applies what the file sets on top of the defaults.
 * Every error names the file, the field path and the allowed values, and the line and
 * column where the YAML parser knows them, e.g.
 *
 *     mb.yaml: models[1].max_batch: 0 is out of range 1..1024
 *     mb.yaml: line 12, column 5: models[1]: unexpected key 'max_bach'
 *
 * The annotated example deploy/mediabatch.yaml documents every key.
 *
 * Model settings are overrides: a field left out keeps the model's own default (the model
 * registry knows those); the daemon checks the model names against the models it has.
 *
 * Threads: load and free from the main thread; the loaded struct is read-only afterwards.
 */
#ifndef MB_CONFIG_H
#define MB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mb_idle.h"

#define MB_CONFIG_ENDPOINT_MAX 256
#define MB_CONFIG_MODEL_NAME_MAX 16
#define MB_CONFIG_PATH_MAX 1024

#define MB_CONFIG_SET_INGEST 1u
#define MB_CONFIG_SET_PUBLISH 2u
#define MB_CONFIG_SET_METRICS 4u

/** "Not set in the file": the model's default applies. */
#define MB_CONFIG_UNSET (-1)

/** models[].precision: what a network's GEMMs read on a CUDA device (the CPU runs F32). */
enum mb_config_precision {
	MB_CONFIG_PRECISION_F32 = 0,
	MB_CONFIG_PRECISION_F16 = 1,
	MB_CONFIG_PRECISION_BF16 = 2,
};

/** Per-model overrides; MB_CONFIG_UNSET (or < 0) where the file does not say. */
struct mb_model_config {
	char name[MB_CONFIG_MODEL_NAME_MAX + 1];
	int enabled;			  /**< 1 or 0, or UNSET (enabled) */
	int64_t max_batch;		  /**< 1..1024 */
	int64_t max_delay_us;		  /**< 0..10000000 */
	int64_t queue_limit;		  /**< 1..1000000 */
	int64_t default_timeout_ms;	  /**< 1..3600000 */
	int64_t base_units;		  /**< 0..1000000 */
	int64_t run_timeout_ms;		  /**< 0..86400000 (0: no watchdog) */
	int64_t max_windows;		  /**< 1..1024: windows of one long request */
	int precision;			  /**< enum mb_config_precision, or UNSET (bf16) */
	double item_units_per_second;	  /**< 0..1000000, or < 0 unset */
	char weights[MB_CONFIG_PATH_MAX]; /**< weights file; "" = <weights_dir>/<name>.safetensors
					   */
	char plugin[MB_CONFIG_PATH_MAX];  /**< shared object serving this model; "" = built-in */
};

#define MB_CONFIG_UDP_DEVICE_MAX 512
#define MB_CONFIG_UDP_MAX_QUEUES 64
/** Most GPUs devices.cuda.gpus may list (MB_DEVICES_MAX - 1). */
#define MB_CONFIG_GPUS_MAX 16

/** One DPDK port that receives UDP requests (the `udp.ports` list). */
struct mb_udp_port_config {
	/** PCI address ("0000:17:00.0") or virtual device arguments ("net_pcap0,rx_pcap=x"). */
	char device[MB_CONFIG_UDP_DEVICE_MAX];
	uint32_t address;		    /**< IPv4 address of the port, network byte order */
	char address_text[16];		    /**< the same, as written */
	uint32_t rx_queues;		    /**< 1..64: one polled rx thread each */
	int cpus[MB_CONFIG_UDP_MAX_QUEUES]; /**< CPU of each rx thread; n_cpus 0 = hwloc picks */
	unsigned int n_cpus;
};

/** security.mode: whether clients must authenticate (CURVE) on the ROUTER and the PUB. */
enum mb_security_mode {
	MB_SECURITY_PLAINTEXT = 0, /**< no authentication: the header's tenant is trusted */
	MB_SECURITY_CURVE = 1,	   /**< CurveZMQ on both sockets, keys on security.clients */
};

#define MB_CONFIG_CLIENT_NAME_MAX 64
#define MB_CONFIG_CLIENT_TENANTS_MAX 4096

/** One entry of the allow-list (security.clients): a client key and what it may do. */
struct mb_client_config {
	char name[MB_CONFIG_CLIENT_NAME_MAX + 1];
	/** Z85 public key (40 characters) as written, or "" when public_key_file names it. */
	char public_key[41];
	/** A ZeroMQ certificate (the zcert format) holding the public key; "" if inline. */
	char public_key_file[MB_CONFIG_PATH_MAX];
	uint32_t *tenants; /**< tenants it may send as: sorted, unique */
	unsigned int n_tenants;
	uint32_t *subscribe; /**< tenants whose results it may receive: sorted, unique */
	unsigned int n_subscribe;
	bool subscribe_all;    /**< every tenant's results (an operator's monitor) */
	uint32_t max_inflight; /**< its share; 0 = service.max_inflight_per_client */
};

/** One IPv4 prefix, network byte order. */
struct mb_prefix {
	uint32_t addr, mask;
};

/** udp.sources[]: the source prefixes a tenant's datagrams may come from. */
struct mb_udp_source_config {
	uint32_t tenant;
	struct mb_prefix *prefixes;
	unsigned int n_prefixes;
};

struct mb_tenant_limit {
	uint32_t tenant;
	double rate; /**< requests/s, 0 = unlimited */
	uint32_t burst;
};

struct mb_config {
	char source[4096]; /**< the file, or "embedded default" */

	/* service */
	char ingest[MB_CONFIG_ENDPOINT_MAX];  /**< ZeroMQ ROUTER endpoint */
	char publish[MB_CONFIG_ENDPOINT_MAX]; /**< ZeroMQ PUB endpoint */
	char metrics[MB_CONFIG_ENDPOINT_MAX]; /**< HOST:PORT of the HTTP endpoint, "" = off */
	/** which of the three were set (the file or a flag), not left at their defaults:
	 * MB_CONFIG_SET_INGEST, _PUBLISH, _METRICS (for messages) */
	uint8_t endpoints_set;
	/** which keys a command-line flag set (mb_config_set_flag()), for mb_config_origin() */
	uint8_t set_by_flag;
	uint32_t drain_timeout_ms;
	uint32_t drain_quiet_ms; /**< draining: read the ROUTER until quiet this long */
	/** a polled thread or the main loop that has not turned for this long: /healthz 503 */
	uint32_t liveness_ms;
	uint32_t max_inflight;	     /**< requests accepted and not yet answered */
	uint64_t max_inflight_bytes; /**< their payload bytes */
	uint32_t max_payload_bytes;  /**< largest payload accepted (TOO_LARGE beyond) */
	/** requests in flight per client (ZeroMQ peer, or CURVE key); 0 = max_inflight / 4 */
	uint32_t max_inflight_per_client;
	/** requests in flight per tenant over ZeroMQ; 0 = no limit but max_inflight */
	uint32_t max_inflight_per_tenant;
	int log_level;	/**< rte_log level */
	int log_format; /**< enum mb_log_format, or -1: MB_LOG_FORMAT, else text */
	int ready_when; /**< enum mb_ready_when: what /readyz needs of the models */
	int placement;	/**< enum mb_placement_policy (mb_placement.h) */

	/* idle policy of polling threads */
	struct mb_idle_opts idle;

	/* ZeroMQ */
	uint32_t zmq_io_threads;
	uint32_t router_sndhwm; /**< replies queued per requester before EAGAIN */
	uint32_t router_rcvhwm;
	uint32_t pub_sndhwm;	   /**< results queued per subscriber before drops */
	uint32_t zmq_heartbeat_ms; /**< ROUTER pings each requester this often; 0 = off */

	/* EAL */
	uint32_t eal_memory_mb;
	char **eal_args; /**< full EAL argument list for bare metal, or NULL */
	unsigned int n_eal_args;

	/* UDP ingest over DPDK ports (none in the embedded default) */
	struct mb_udp_port_config *udp_ports;
	unsigned int n_udp_ports;
	uint32_t udp_port;		    /**< UDP destination port, 1..65535 */
	uint32_t udp_reassembly_timeout_ms; /**< an incomplete request is dropped after this */
	uint32_t udp_max_requests;	    /**< per rx queue: being reassembled or in flight */
	uint32_t udp_buffer_mb;		    /**< per rx queue: payload buffer memory */
	uint32_t udp_mbufs;		    /**< packet buffers per NUMA node with a port */
	uint32_t udp_rx_descriptors;	    /**< rx ring size of each queue */

	/**
	 * udp.sources: which source prefixes each tenant's datagrams may come from; n = 0
	 * (the default): every source (UDP ingest is for trusted segments).
	 */
	struct mb_udp_source_config *udp_sources;
	unsigned int n_udp_sources;

	/* security */
	int security_mode;			  /**< enum mb_security_mode */
	char server_key_file[MB_CONFIG_PATH_MAX]; /**< zcert secret certificate (curve) */
	struct mb_client_config *clients;	  /**< the allow-list (curve) */
	unsigned int n_clients;

	/* the HTTP endpoint (service.metrics says where) */
	char http_tls_cert[MB_CONFIG_PATH_MAX];	  /**< PEM certificate (chain); "" = plain HTTP */
	char http_tls_key[MB_CONFIG_PATH_MAX];	  /**< PEM private key */
	char http_token_file[MB_CONFIG_PATH_MAX]; /**< bearer token for /metrics; "" = none */
	uint32_t http_max_connections;		  /**< connections open at once */
	uint32_t http_max_connections_per_ip;	  /**< from one source address */
	uint32_t http_timeout_ms; /**< a connection's whole life, however it trickles */

	/* CPU device */
	uint32_t cpu_units;
	uint32_t cpu_workers; /**< worker threads; 0 = auto (half the CPUs, at least 1) */
	uint32_t cpu_serve;   /**< enum mb_cpu_serve */

	/* CUDA devices */
	uint32_t cuda_mode;		   /**< enum mb_cuda_mode */
	int cuda_gpus[MB_CONFIG_GPUS_MAX]; /**< CUDA ordinals to use */
	unsigned int n_cuda_gpus;	   /**< 0 = every GPU found */
	uint32_t cuda_unit_mb;		   /**< MiB per VRAM unit */
	uint32_t cuda_reserve_mb;	   /**< MiB per GPU kept out of the units */
	uint32_t cuda_max_units;	   /**< units per GPU at most; 0 = all that fit */
	uint32_t cuda_workers;		   /**< worker threads per GPU */

	/* tenants */
	double default_rate;
	uint32_t default_burst;
	uint32_t max_tenants;
	struct mb_tenant_limit *limits;
	unsigned int n_limits;

	/* models */
	struct mb_model_config *models;
	unsigned int n_models;
	char weights_dir[MB_CONFIG_PATH_MAX]; /**< "" = weights/ beside the daemon's binary */

	/* circuit breaker per (model, device) */
	uint32_t breaker_failures;	   /**< consecutive failed batches that open it */
	uint32_t breaker_cooldown_ms;	   /**< open this long before a probe batch */
	uint32_t breaker_probe_timeout_ms; /**< a probe silent this long is replaced */
};

/** What /readyz needs of the models (service.ready_when). */
enum mb_ready_when {
	MB_READY_ALL = 0, /**< every model the configuration enables is loaded, none hung */
	MB_READY_ANY = 1, /**< at least one is: a node that serves what it can */
};

/** When the CPU device runs batches (devices.cpu.serve). */
enum mb_cpu_serve {
	MB_CPU_SERVE_AUTO = 0, /**< when no GPU serves the model */
	MB_CPU_SERVE_ALWAYS,   /**< alongside GPUs too */
	MB_CPU_SERVE_NEVER,    /**< never (a model no GPU can run is then disabled) */
};

/** Whether GPUs are used (devices.cuda.mode). */
enum mb_cuda_mode {
	MB_CUDA_AUTO = 0, /**< every GPU found; none found: the CPU device alone */
	MB_CUDA_REQUIRED, /**< refuse to start without a usable GPU */
	MB_CUDA_OFF,	  /**< never touch CUDA */
};

/** Fill @p cfg with the embedded default. Free with mb_config_fini(). */
void mb_config_defaults(struct mb_config *cfg);

/**
 * Load @p path over the defaults in @p cfg (call mb_config_defaults() first). Returns 0, or
 * -EINVAL / -ENOENT / -ENOMEM with the message in @p err (@p err_len bytes); @p cfg then
 * keeps the defaults.
 */
int mb_config_load(struct mb_config *cfg, const char *path, char *err, size_t err_len);

/** Free what load allocated; @p cfg returns to an empty state. */
void mb_config_fini(struct mb_config *cfg);

/**
 * Set one string-valued service key ("service.ingest", "service.publish", "service.metrics",
 * "service.log_level", "service.placement") with the checks the file loader applies: the one
 * place those rules live, used by the loader and by command-line overrides
 * (mb_config_set_flag()). Returns 0, or -EINVAL with the reason (without the key, e.g. "'x' is
 * not a ZeroMQ endpoint ...") in @p err.
 */
int mb_config_set(struct mb_config *cfg, const char *key, const char *value, char *err,
		  size_t err_len);

/**
 * mb_config_set() for a command-line flag of mediabatchd: @p flag "--ingest",
 * "--publish", "--metrics", "--log-level" or "--placement" sets its key (service.ingest, ...)
 * with the same checks; and @p cfg remembers that the flag set the key, so that a message
 * about its value names the flag (mb_config_origin()). The one table of flags and keys.
 * Returns 0, or -EINVAL with the reason (without the flag) in @p err: the key is not set,
 * nor marked.
 */
int mb_config_set_flag(struct mb_config *cfg, const char *flag, const char *value, char *err,
		       size_t err_len);

/**
 * What set @p key, for messages: its flag ("--placement") where mb_config_set_flag() set it,
 * else @p key itself ("service.placement": the file, or the default). Static storage or
 * @p key.
 */
const char *mb_config_origin(const struct mb_config *cfg, const char *key);

/**
 * Values each in range that are doubtful (operator audit L6), for a WARNING at --check and
 * at start: zmq.heartbeat_ms on but below 100 ms, an enabled model's run_timeout_ms on but
 * below 100 ms, http.max_connections not above http.max_connections_per_ip with the endpoint
 * on (the per-address limit never applies). Each names the key(s), the value(s) and why; the
 * reference (docs/operating.md, "Configuration errors") lists them. Returns how many, each
 * a line of @p buf ('\n' between them, none after the last; cut on "..." where they do not
 * fit), "" when none.
 */
unsigned int mb_config_doubts(const struct mb_config *cfg, char *buf, size_t len);

/** The override entry for model @p name, or NULL. */
const struct mb_model_config *mb_config_model(const struct mb_config *cfg, const char *name);

/**
 * Parse an IPv4 prefix, "192.0.2.0/24" or one address, into @p out (network byte order).
 * Returns 0, or -EINVAL (not an address, bits over 32, host bits set).
 */
int mb_config_parse_prefix(const char *s, struct mb_prefix *out);

/**
 * Parse "HOST:PORT" (IPv4 literal, "localhost" or "*"; the port 1..65535 in digits, no
 * leading zero) into @p host (at least 16 bytes) and @p port. Returns 0 or -EINVAL.
 */
int mb_config_parse_hostport(const char *s, char *host, size_t host_len, uint16_t *port);

/**
 * Whether @p v is an endpoint the daemon can listen on (service.ingest, service.publish):
 * tcp://ADDRESS:PORT (an IPv4 address, a host or interface name, "*", or an IPv6 address in
 * brackets; a port 1..65535, digits only with no leading zero, or "*", ZeroMQ's wildcard) or
 * ipc://PATH (1 to 107 bytes). Others (another transport, a port out of range, which ZeroMQ
 * would wrap, a host of digits and dots that is not a whole IPv4 address) are not.
 */
bool mb_config_bind_endpoint_ok(const char *v);

/**
 * Whether service.ingest, service.publish and service.metrics of @p cfg listen on sockets of
 * their own: not one ipc:// path twice, nor one TCP port twice on one address or where one
 * of them is on every address (*, 0.0.0.0). mb_config_load() checks the file's; a caller
 * that overrides them (mb_config_set(): command-line flags) checks again after. Returns 0,
 * or -EINVAL with the reason (the key and both endpoints, without the file) in @p err.
 */
int mb_config_check_endpoints(const struct mb_config *cfg, char *err, size_t err_len);

/**
 * @p v in the fewest digits that read back as @p v, into @p buf (returned), as the config's
 * messages print numbers: 1000000001 and 0.0009999999 as written, where %g would print
 * 1e+09 and 0.001; a whole number up to 1e9 in digits, 1000000 where the shortest %g would
 * be 1e+06 (beyond, 4e+09 stays).
 */
const char *mb_config_shortest(char *buf, size_t len, double v);

/**
 * The keys outside `models` whose values differ between @p a (the running configuration) and
 * @p b (a reloaded one) and that take effect only at a start: "service.ingest, udp.ports",
 * in the reference's order, into @p out (cut with "..." when it does not fit; "" when none).
 * The keys a reload applies (the tenants section, security.clients) are not compared; nor
 * are the models (the daemon compares their settings in effect, defaults included). Returns
 * how many keys differ.
 */
/**
 * Append printf(@p fmt, ...) to the list in @p out (@p len bytes), after @p sep unless it is
 * the first (*@p n counts the items: 0 starts the list, emptying @p out); an item that does
 * not fit ends the list on "...". For messages that list keys or problems.
 */
void mb_config_list_add(char *out, size_t len, unsigned int *n, const char *sep, const char *fmt,
			...) __attribute__((format(printf, 5, 6)));

unsigned int mb_config_restart_keys(const struct mb_config *a, const struct mb_config *b, char *out,
				    size_t len);

#endif /* MB_CONFIG_H */
