/*
 * config_test.c: defaults, the annotated example, overrides, and an error message for each
 * kind of mistake (naming file, field, range; line and column for parse errors); numbers
 * written with a suffix or in another notation are refused, not cut short.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include <rte_config.h>
#include <rte_log.h>

#include "mb_build_config.h"
#include "mb_config.h"
#include "mb_log.h"
#include "mb_placement.h"
#include "mb_test.h"

static char g_err[512];

static int
load_text(struct mb_config *c, const char *yaml)
{
	mb_config_defaults(c);
	g_err[0] = '\0';
	return mb_config_load(c, mb_test_write_temp(yaml), g_err, sizeof(g_err));
}

static bool
err_has(const char *needle)
{
	bool ok = strstr(g_err, needle) != NULL;

	if (!ok)
		printf("\n    error \"%s\" lacks \"%s\"", g_err, needle);
	return ok;
}

static void
test_defaults(void)
{
	struct mb_config c;

	mb_config_defaults(&c);
	CU_ASSERT_STRING_EQUAL(c.source, "embedded default");
	CU_ASSERT_STRING_EQUAL(c.ingest, "tcp://127.0.0.1:7400");
	CU_ASSERT_STRING_EQUAL(c.publish, "tcp://127.0.0.1:7401");
	CU_ASSERT_STRING_EQUAL(c.metrics, "127.0.0.1:7402");
	CU_ASSERT_EQUAL(c.cpu_units, 16);
	CU_ASSERT_EQUAL(c.cpu_serve, MB_CPU_SERVE_AUTO);
	CU_ASSERT_EQUAL(c.cuda_mode, MB_CUDA_AUTO);
	CU_ASSERT_EQUAL(c.n_cuda_gpus, 0);
	CU_ASSERT_EQUAL(c.cuda_unit_mb, 64);
	CU_ASSERT_EQUAL(c.cuda_reserve_mb, 1024);
	CU_ASSERT_EQUAL(c.cuda_max_units, 0);
	CU_ASSERT_EQUAL(c.cuda_workers, 1);
	CU_ASSERT_EQUAL(c.idle.mode, MB_IDLE_SLEEP);
	CU_ASSERT_EQUAL(c.n_models, 0);
	CU_ASSERT_PTR_NULL(c.eal_args);
	mb_config_fini(&c);
}

/* The annotated example must say exactly what the embedded default is. */
static void
test_example_matches_defaults(void)
{
	struct mb_config d, c;
	const char *example = mb_test_source_path("deploy/mediabatch.yaml");

	mb_config_defaults(&d);
	mb_config_defaults(&c);
	CU_ASSERT_EQUAL_FATAL(mb_config_load(&c, example, g_err, sizeof(g_err)), 0);
	CU_ASSERT_STRING_EQUAL(c.source, example);
	memcpy(c.source, d.source, sizeof(c.source)); /* only the source may differ */
	/* and that it sets the three endpoints (to the defaults' values) */
	CU_ASSERT_EQUAL(c.endpoints_set,
			MB_CONFIG_SET_INGEST | MB_CONFIG_SET_PUBLISH | MB_CONFIG_SET_METRICS);
	c.endpoints_set = d.endpoints_set;
	CU_ASSERT_EQUAL(memcmp(&c, &d, sizeof(c)), 0);
	mb_config_fini(&c);
	mb_config_fini(&d);
}

static void
test_udp(void)
{
	struct mb_config c;

	CU_ASSERT_EQUAL_FATAL(load_text(&c, "udp:\n"
					    "  port: 7100\n"
					    "  reassembly_timeout_ms: 50\n"
					    "  ports:\n"
					    "    - device: net_pcap0,rx_pcap=/tmp/x.pcap\n"
					    "      address: 192.0.2.1\n"
					    "    - device: \"0000:17:00.0\"\n"
					    "      address: 192.0.2.2\n"
					    "      rx_queues: 2\n"
					    "      cpus: [4, 5]\n"),
			      0);
	CU_ASSERT_EQUAL(c.udp_port, 7100);
	CU_ASSERT_EQUAL(c.udp_reassembly_timeout_ms, 50);
	CU_ASSERT_EQUAL(c.udp_max_requests, 1024); /* default kept */
	CU_ASSERT_EQUAL_FATAL(c.n_udp_ports, 2);
	CU_ASSERT_STRING_EQUAL(c.udp_ports[0].device, "net_pcap0,rx_pcap=/tmp/x.pcap");
	CU_ASSERT_EQUAL(c.udp_ports[0].address, htonl(0xc0000201));
	CU_ASSERT_EQUAL(c.udp_ports[0].rx_queues, 1);
	CU_ASSERT_EQUAL(c.udp_ports[0].n_cpus, 0);
	CU_ASSERT_EQUAL(c.udp_ports[1].rx_queues, 2);
	CU_ASSERT_EQUAL_FATAL(c.udp_ports[1].n_cpus, 2);
	CU_ASSERT_EQUAL(c.udp_ports[1].cpus[1], 5);
	mb_config_fini(&c);

	CU_ASSERT_EQUAL(load_text(&c, "udp:\n  ports:\n    - {device: eth0, address: 192.0.2.1}\n"),
			-EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "udp.ports[0].device: 'eth0' is neither"));
	/* a virtual device whose driver the linked DPDK lacks: EAL would stop at it, at the start
	 * (unit/core/eal has the cases of mb_eal_check_vdev()) */
	if (access(RTE_EAL_PMD_PATH "/librte_net_null.so", F_OK) == 0) {
		CU_ASSERT_EQUAL(load_text(&c, "udp:\n  ports:\n    - {device: \"net_nosuch0,x=1\", "
					      "address: 192.0.2.1}\n"),
				-EINVAL);
		CU_ASSERT_TRUE(
			err_has(": line 3, column 16: udp.ports[0].device: 'net_nosuch0,x=1': "
				"DPDK has no driver net_nosuch (its virtual net drivers, in "));
		CU_ASSERT_TRUE(err_has("net_null, "));
		CU_ASSERT_EQUAL(c.n_udp_ports, 0);
	} else {
		printf("\n    skipped the unknown driver: no %s/librte_net_null.so",
		       RTE_EAL_PMD_PATH);
	}
	CU_ASSERT_EQUAL(load_text(&c, "udp:\n  ports:\n    - {device: net_null0}\n"), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(
		strstr(g_err, "udp.ports[0].address: missing; expected a unicast IPv4 address"));
	CU_ASSERT_EQUAL(
		load_text(&c, "udp:\n  ports:\n    - {device: net_null0, address: 300.1.1.1}\n"),
		-EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "'300.1.1.1' is not a unicast IPv4"));
	CU_ASSERT_EQUAL(load_text(&c, "udp:\n  ports:\n    - {device: net_null0, address: "
				      "192.0.2.1, rx_queues: 2, cpus: [1]}\n"),
			-EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "udp.ports[0].cpus: 1 CPUs for 2 rx queue(s)"));
	CU_ASSERT_EQUAL(load_text(&c, "udp:\n  port: 0\n"), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "udp.port"));
	CU_ASSERT_EQUAL(load_text(&c,
				  "udp:\n  ports:\n    - {device: net_null0, address: "
				  "192.0.2.1}\n    - {device: net_null0, address: 192.0.2.2}\n"),
			-EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "is already udp.ports[0]"));
}

static void
test_devices(void)
{
	struct mb_config c;

	CU_ASSERT_EQUAL_FATAL(load_text(&c, "devices:\n"
					    "  cpu: {serve: always, workers: 2}\n"
					    "  cuda:\n"
					    "    mode: required\n"
					    "    gpus: [2, 0]\n"
					    "    unit_mb: 512\n"
					    "    reserve_mb: 4096\n"
					    "    max_units: 16\n"
					    "    workers: 2\n"),
			      0);
	CU_ASSERT_EQUAL(c.cpu_serve, MB_CPU_SERVE_ALWAYS);
	CU_ASSERT_EQUAL(c.cpu_workers, 2);
	CU_ASSERT_EQUAL(c.cuda_mode, MB_CUDA_REQUIRED);
	CU_ASSERT_EQUAL_FATAL(c.n_cuda_gpus, 2);
	CU_ASSERT_EQUAL(c.cuda_gpus[0], 2);
	CU_ASSERT_EQUAL(c.cuda_gpus[1], 0);
	CU_ASSERT_EQUAL(c.cuda_unit_mb, 512);
	CU_ASSERT_EQUAL(c.cuda_reserve_mb, 4096);
	CU_ASSERT_EQUAL(c.cuda_max_units, 16);
	CU_ASSERT_EQUAL(c.cuda_workers, 2);
	mb_config_fini(&c);
	CU_ASSERT_EQUAL_FATAL(load_text(&c, "devices:\n  cuda: {mode: \"off\"}\n"), 0);
	CU_ASSERT_EQUAL(c.cuda_mode, MB_CUDA_OFF);
	CU_ASSERT_EQUAL(c.cpu_serve, MB_CPU_SERVE_AUTO); /* untouched */
	mb_config_fini(&c);

	CU_ASSERT_EQUAL(load_text(&c, "devices:\n  cuda: {mode: sometimes}\n"), -EINVAL);
	CU_ASSERT_TRUE(err_has("devices.cuda.mode: 'sometimes' is not one of auto, required, off"));
	CU_ASSERT_EQUAL(load_text(&c, "devices:\n  cpu: {serve: maybe}\n"), -EINVAL);
	CU_ASSERT_TRUE(err_has("devices.cpu.serve: 'maybe' is not one of auto, always, never"));
	CU_ASSERT_EQUAL(load_text(&c, "devices:\n  cuda: {gpus: [0, 1, 0]}\n"), -EINVAL);
	CU_ASSERT_TRUE(err_has("devices.cuda.gpus[2]: GPU 0 is listed twice"));
	CU_ASSERT_EQUAL(load_text(&c, "devices:\n  cuda: {gpus: [-1]}\n"), -EINVAL);
	CU_ASSERT_TRUE(err_has("devices.cuda.gpus[0]: -1 is out of range 0..255"));
	CU_ASSERT_EQUAL(load_text(&c, "devices:\n  cuda: {unit_mb: 0}\n"), -EINVAL);
	CU_ASSERT_TRUE(err_has("devices.cuda.unit_mb: 0 is out of range 1..1048576"));
	CU_ASSERT_EQUAL(load_text(&c, "devices:\n  cuda: {workers: 9}\n"), -EINVAL);
	CU_ASSERT_TRUE(err_has("devices.cuda.workers: 9 is out of range 1..8"));
	CU_ASSERT_EQUAL(load_text(&c, "devices:\n  cpu: {serve: never}\n  cuda: {mode: "
				      "\"off\"}\n"),
			-EINVAL);
	CU_ASSERT_TRUE(err_has("no device would run anything"));
}

/* The bare-metal example loads and says what its comments say. */
static void
test_bare_metal_example(void)
{
	struct mb_config c;

	mb_config_defaults(&c);
	CU_ASSERT_EQUAL_FATAL(mb_config_load(&c, mb_test_source_path("deploy/bare-metal.yaml"),
					     g_err, sizeof(g_err)),
			      0);
	CU_ASSERT_EQUAL(c.idle.mode, MB_IDLE_SPIN);
	CU_ASSERT_EQUAL(c.n_eal_args, 6);
	CU_ASSERT_EQUAL_FATAL(c.n_udp_ports, 1);
	CU_ASSERT_STRING_EQUAL(c.udp_ports[0].device, "0000:17:00.0");
	CU_ASSERT_EQUAL(c.udp_ports[0].rx_queues, 2);
	CU_ASSERT_EQUAL(c.udp_ports[0].n_cpus, 2);
	CU_ASSERT_EQUAL(c.cuda_mode, MB_CUDA_REQUIRED);
	CU_ASSERT_EQUAL(c.cuda_reserve_mb, 2048);
	mb_config_fini(&c);
}

static void
test_overrides(void)
{
	struct mb_config c;
	const struct mb_model_config *m;

	CU_ASSERT_EQUAL_FATAL(load_text(&c,
					"service:\n"
					"  ingest: tcp://127.0.0.1:9000\n"
					"  metrics: off\n"
					"  drain_timeout_ms: 250\n"
					"  drain_quiet_ms: 40\n"
					"  liveness_ms: 2500\n"
					"  log_level: debug\n"
					"  placement: per-stage\n"
					"idle:\n"
					"  mode: spin\n"
					"  sleep_us: 50\n"
					"eal:\n"
					"  args: [\"-l\", \"2-5\", \"--socket-mem\", \"1024\"]\n"
					"devices:\n"
					"  cpu: {units: 8, workers: 3}\n"
					"tenants:\n"
					"  default_rate: 10.5\n"
					"  limits:\n"
					"    - {tenant: 42, rate: 100, burst: 20}\n"
					"    - {tenant: 7, rate: 0}\n"
					"models:\n"
					"  - name: logmel\n"
					"    max_batch: 8\n"
					"    max_windows: 20\n"
					"    precision: f16\n"
					"    item_units_per_second: 0.5\n"
					"  - name: identity\n"
					"    enabled: false\n"),
			      0);
	CU_ASSERT_STRING_EQUAL(c.ingest, "tcp://127.0.0.1:9000");
	CU_ASSERT_STRING_EQUAL(c.publish, "tcp://127.0.0.1:7401"); /* untouched */
	CU_ASSERT_STRING_EQUAL(c.metrics, "");
	CU_ASSERT_EQUAL(c.drain_timeout_ms, 250);
	CU_ASSERT_EQUAL(c.drain_quiet_ms, 40);
	CU_ASSERT_EQUAL(c.liveness_ms, 2500);
	CU_ASSERT_EQUAL(c.log_level, RTE_LOG_DEBUG);
	CU_ASSERT_EQUAL(c.placement, MB_PLACEMENT_PER_STAGE);
	CU_ASSERT_EQUAL(c.idle.mode, MB_IDLE_SPIN);
	CU_ASSERT_EQUAL(c.idle.sleep_ns, 50000);
	CU_ASSERT_EQUAL_FATAL(c.n_eal_args, 4);
	CU_ASSERT_STRING_EQUAL(c.eal_args[1], "2-5");
	CU_ASSERT_EQUAL(c.cpu_units, 8);
	CU_ASSERT_EQUAL(c.cpu_workers, 3);
	CU_ASSERT_DOUBLE_EQUAL(c.default_rate, 10.5, 1e-12);
	CU_ASSERT_EQUAL_FATAL(c.n_limits, 2);
	CU_ASSERT_EQUAL(c.limits[0].tenant, 42);
	CU_ASSERT_EQUAL(c.limits[0].burst, 20);
	CU_ASSERT_EQUAL(c.limits[1].burst, 1);
	CU_ASSERT_EQUAL_FATAL(c.n_models, 2);
	m = mb_config_model(&c, "logmel");
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL(m->max_batch, 8);
	CU_ASSERT_EQUAL(m->max_delay_us, MB_CONFIG_UNSET); /* the model's default applies */
	CU_ASSERT_EQUAL(m->enabled, MB_CONFIG_UNSET);
	CU_ASSERT_DOUBLE_EQUAL(m->item_units_per_second, 0.5, 1e-12);
	CU_ASSERT_EQUAL(m->max_windows, 20);
	CU_ASSERT_EQUAL(m->precision, MB_CONFIG_PRECISION_F16);
	CU_ASSERT_EQUAL(mb_config_model(&c, "identity")->max_windows, MB_CONFIG_UNSET);
	CU_ASSERT_EQUAL(mb_config_model(&c, "identity")->precision, MB_CONFIG_UNSET);
	CU_ASSERT_EQUAL(mb_config_model(&c, "identity")->enabled, 0);
	CU_ASSERT_PTR_NULL(mb_config_model(&c, "whisper"));
	mb_config_fini(&c);
}

static void
test_range_errors(void)
{
	struct mb_config c;

	CU_ASSERT_EQUAL(load_text(&c, "models:\n  - name: identity\n  - name: logmel\n"
				      "    max_batch: 0\n"),
			-EINVAL);
	CU_ASSERT_TRUE(err_has("models[1].max_batch: 0 is out of range 1..1024"));
	CU_ASSERT_TRUE(err_has("/tmp/mb_test_")); /* names the file */
	CU_ASSERT_EQUAL(load_text(&c, "devices:\n  cpu:\n    units: -4\n"), -EINVAL);
	CU_ASSERT_TRUE(err_has("devices.cpu.units: -4 is out of range 1..1000000"));
	CU_ASSERT_EQUAL(load_text(&c, "tenants:\n  default_rate: 5e10\n"), -EINVAL);
	CU_ASSERT_TRUE(err_has("tenants.default_rate: 5e+10 is out of range 0 or"));
	/* a value just outside a bound reads as written, not rounded onto the bound */
	CU_ASSERT_EQUAL(load_text(&c, "tenants:\n  default_rate: 1000000001\n"), -EINVAL);
	CU_ASSERT_TRUE(err_has("default_rate: 1000000001 is out of range 0 or 0.001..1000000000"));
	CU_ASSERT_EQUAL(load_text(&c, "tenants:\n  default_rate: 0.0009999999\n"), -EINVAL);
	CU_ASSERT_TRUE(
		err_has("default_rate: 0.0009999999 is out of range 0 or 0.001..1000000000"));
	CU_ASSERT_EQUAL(load_text(&c, "service:\n  max_payload_bytes: 10\n"), -EINVAL);
	CU_ASSERT_TRUE(err_has("service.max_payload_bytes: 10 is out of range 64.."));
	mb_config_fini(&c);
}

static void
test_value_errors(void)
{
	struct mb_config c;

	CU_ASSERT_EQUAL(load_text(&c, "service:\n  ingest: localhost:7400\n"), -EINVAL);
	CU_ASSERT_TRUE(err_has("service.ingest: 'localhost:7400' is not a ZeroMQ endpoint"));
	/* what ZeroMQ would wrap (83136 is 17600), refuse only at bind, or bind elsewhere */
	{
		static const char *const bad[] = {
			"tcp://127.0.0.1:83136",
			"tcp://127.0.0.1:0",
			"tcp://127.0.0.1:notaport",
			"tcp://127.0.0.1",
			"tcp://127.0.0.1:",
			"tcp://:7400",
			"tcp://127.0.0.1:**",
			"tcp://127.0.0.1:74 00",
			"tcp://127.0.0.1:+7400",
			"foo://bar",
			"inproc://x",
			"pgm://eth0;239.1.1.1:7400",
			"ipc://",
			"tcp://[::1:7400",
			"tcp://a b:7400",
			"tcp://127.0.0.1:007400",
			"udp://127.0.0.1:7400",
			/* digits and dots: a whole IPv4 address, or the start says "No such
			 * device" (ZeroMQ takes it for an interface name) */
			"tcp://127.0.0.256:7400",
			"tcp://10.1:7400",
			"tcp://1.2.3.4.5:7400",
			"tcp://127.0.0.01:7400",
			"tcp://127.0.0.1.:7400",
			/* a port as the file's numbers: no leading zero */
			"tcp://127.0.0.1:07400",
		};
		static const char *const good[] = {
			"tcp://127.0.0.1:7400", "tcp://0.0.0.0:1",   "tcp://*:65535",
			"tcp://[::1]:7400",	"tcp://eth0:7400",   "tcp://host-a.example:7400",
			"tcp://127.0.0.1:*",	"ipc:///tmp/mb-pub",
		};
		char yaml[256];

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			snprintf(yaml, sizeof(yaml), "service:\n  publish: \"%s\"\n", bad[i]);
			CU_ASSERT_EQUAL(load_text(&c, yaml), -EINVAL);
			if (!err_has("is not a ZeroMQ endpoint to listen on: tcp://ADDRESS:PORT"))
				printf("\n    %s: %s", bad[i], g_err);
			CU_ASSERT_TRUE(err_has("service.publish: '"));
			CU_ASSERT_TRUE(err_has("or * for one the system picks) or ipc://PATH"));
		}
		for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
			/* ingest elsewhere: publish may take the default ingest's port */
			snprintf(yaml, sizeof(yaml),
				 "service:\n  ingest: ipc:///tmp/mb-in\n  publish: \"%s\"\n",
				 good[i]);
			CU_ASSERT_EQUAL(load_text(&c, yaml), 0);
			if (strcmp(c.publish, good[i]) != 0)
				printf("\n    %s refused: %s", good[i], g_err);
			CU_ASSERT_STRING_EQUAL(c.publish, good[i]);
			mb_config_fini(&c);
		}
	}
	CU_ASSERT_EQUAL(load_text(&c, "service:\n  metrics: 127.0.0.1\n"), -EINVAL);
	CU_ASSERT_TRUE(err_has("service.metrics"));
	CU_ASSERT_EQUAL(load_text(&c, "service:\n  metrics: example.com:80\n"), -EINVAL);
	CU_ASSERT_EQUAL(load_text(&c, "service:\n  log_level: loud\n"), -EINVAL);
	CU_ASSERT_TRUE(err_has("service.log_level: 'loud'"));
	CU_ASSERT_EQUAL(load_text(&c, "service:\n  placement: everywhere\n"), -EINVAL);
	CU_ASSERT_TRUE(err_has("service.placement: 'everywhere' is not one of auto, single, "
			       "per-stage"));
	CU_ASSERT_EQUAL(load_text(&c, "idle:\n  mode: nap\n"), -EINVAL);
	CU_ASSERT_TRUE(err_has("idle.mode: 'nap' is not one of spin, yield, sleep"));
	CU_ASSERT_EQUAL(load_text(&c, "models:\n  - max_batch: 3\n"), -EINVAL);
	CU_ASSERT_TRUE(err_has("models[0].name: missing"));
	CU_ASSERT_EQUAL(load_text(&c, "models:\n  - name: a\n  - name: a\n"), -EINVAL);
	CU_ASSERT_TRUE(err_has("configured twice"));
	CU_ASSERT_EQUAL(load_text(&c, "models:\n  - name: averyveryverylongname\n"), -EINVAL);
	CU_ASSERT_TRUE(err_has("longer than 16"));
	CU_ASSERT_EQUAL(load_text(&c, "tenants:\n  limits:\n    - {tenant: 1, rate: 2}\n"
				      "    - {tenant: 1, rate: 3}\n"),
			-EINVAL);
	CU_ASSERT_TRUE(err_has("tenants.limits[1]: tenant 1 is already limited by limits[0]"));
	CU_ASSERT_EQUAL(load_text(&c, "tenants:\n  limits:\n    - {tenant: 1}\n"), -EINVAL);
	CU_ASSERT_TRUE(err_has("needs both 'tenant' and 'rate'"));
	mb_config_fini(&c);
}

static void
test_parse_errors_have_location(void)
{
	struct mb_config c;

	CU_ASSERT_EQUAL(load_text(&c, "models:\n  - name: identity\n    max_bach: 3\n"), -EINVAL);
	CU_ASSERT_TRUE(err_has("unexpected key 'max_bach'"));
	CU_ASSERT_TRUE(err_has("line 3, column 5: models[0]: ")); /* the key, not the line above */
	CU_ASSERT_EQUAL(load_text(&c, "service:\n  drain_timeout_ms: soon\n"), -EINVAL);
	CU_ASSERT_TRUE(err_has("service.drain_timeout_ms"));
	CU_ASSERT_TRUE(err_has("line 2, column 21"));
	CU_ASSERT_EQUAL(load_text(&c, "service: [\n"), -EINVAL);
	CU_ASSERT_TRUE(err_has("line"));
	CU_ASSERT_EQUAL(load_text(&c, "servise:\n  ingest: tcp://a:1\n"), -EINVAL);
	CU_ASSERT_TRUE(err_has("unexpected key 'servise'"));
	mb_config_fini(&c);
}

/* Loads @p fmt (printf) and says whether it was refused with an error that has @p needle. */
static bool refused_with(const char *needle, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static bool
refused_with(const char *needle, const char *fmt, ...)
{
	struct mb_config c;
	char yaml[8192];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(yaml, sizeof(yaml), fmt, ap);
	va_end(ap);
	rc = load_text(&c, yaml);
	mb_config_fini(&c);
	if (rc != -EINVAL) {
		printf("\n    accepted (%d): \"%s\"", rc, yaml);
		return false;
	}
	return err_has(needle);
}

/* Written as libcyaml 1.3.1 would cut them short (strtoll/strtod and ignore the rest), or
 * as YAML 1.1 or a human would mean something else by them. */
static const char *const bad_integers[] = {
	"2k", "5s",  "1e3",  "100.9", "0x100", "2_000", "10/s", "+5",	 "5 000",
	"5.", "010", "true", ".inf",  "nan",   "~",	"null", "1,000", "5-",
};

static const char *const bad_floats[] = {
	"10/s", "2k",  "5s",   "0x10",	"0x1p3", "1_000", "+5",	  "5 0", "1e",	  "e3",	  ".",
	"--1",	"inf", ".inf", "-.inf", "nan",	 ".NaN",  "true", "~",	 "1.5.2", "1e3x",
};

/* Every integer key, at the top, in a mapping, in a list of mappings and in a list of
 * integers, takes digits only; a suffix is refused, not cut short. */
/* A value refused after the YAML is read (a range, a combination) is located too: the
 * line and column of the value, or of the entry whose key is missing (they had neither) */
static void
test_value_errors_located(void)
{
	CU_ASSERT_TRUE(refused_with("line 2, column 17: service.max_inflight: -5 is out of "
				    "range 1..1048576",
				    "service:\n  max_inflight: -5\n"));
	CU_ASSERT_TRUE(
		refused_with("line 4, column 16: models[1].max_batch: 0 is out of range "
			     "1..1024",
			     "models:\n  - name: identity\n  - name: logmel\n    max_batch: 0\n"));
	CU_ASSERT_TRUE(
		refused_with("line 4, column 7: udp.ports[1].address: missing",
			     "udp:\n  ports:\n    - {device: net_null0, address: 192.0.2.1}\n"
			     "    - {device: net_null1}\n"));
	CU_ASSERT_TRUE(refused_with("line 2, column 17: tenants.default_rate: 0.0009 is out of",
				    "tenants:\n  default_rate: 0.0009\n"));
}

static void
test_strict_integers(void)
{
	struct mb_config c;
	char want[160];

	for (size_t i = 0; i < sizeof(bad_integers) / sizeof(bad_integers[0]); i++) {
		const char *v = bad_integers[i];

		snprintf(want, sizeof(want), "service.max_inflight: '%s' is not a whole number", v);
		CU_ASSERT_TRUE(refused_with(want, "service:\n  max_inflight: %s\n", v));
		snprintf(want, sizeof(want),
			 "service.drain_timeout_ms: '%s' is not a whole number of milliseconds", v);
		CU_ASSERT_TRUE(refused_with(want, "service:\n  drain_timeout_ms: %s\n", v));
		snprintf(want, sizeof(want), "models[1].max_batch: '%s' is not a whole number", v);
		CU_ASSERT_TRUE(refused_with(want,
					    "models:\n  - name: identity\n  - name: logmel\n"
					    "    max_batch: %s\n",
					    v));
		snprintf(want, sizeof(want), "tenants.limits[0].burst: '%s' is not a whole number",
			 v);
		CU_ASSERT_TRUE(refused_with(want,
					    "tenants:\n  limits:\n    - tenant: 3\n      rate: 1\n"
					    "      burst: %s\n",
					    v));
		snprintf(want, sizeof(want), "devices.cuda.gpus[1]: '%s' is not a whole number", v);
		CU_ASSERT_TRUE(refused_with(
			want, "devices:\n  cuda:\n    gpus:\n      - 0\n      - %s\n", v));
	}
	/* In a flow mapping, and quoted: the scalar's text is what counts. */
	CU_ASSERT_TRUE(refused_with("tenants.limits[0].tenant: '1e3' is not a whole number",
				    "tenants:\n  limits:\n    - {rate: 1, tenant: 1e3}\n"));
	CU_ASSERT_TRUE(refused_with("service.max_inflight: '2k' is not a whole number",
				    "service:\n  max_inflight: '2k'\n"));
	CU_ASSERT_TRUE(refused_with("service.max_inflight: ' 5 ' is not a whole number",
				    "service:\n  max_inflight: \" 5 \"\n"));
	/* An empty value, with nothing after the colon. */
	CU_ASSERT_TRUE(refused_with("line 2, column 16: service.max_inflight: no value; expected "
				    "a whole number",
				    "service:\n  max_inflight:\n"));
	CU_ASSERT_TRUE(refused_with("models[0].queue_limit: no value",
				    "models:\n  - name: identity\n    queue_limit:\n"));
	CU_ASSERT_TRUE(refused_with("models[0].max_windows: 0 is out of range 1..1024",
				    "models:\n  - name: whisper\n    max_windows: 0\n"));
	CU_ASSERT_TRUE(refused_with("models[1].precision: 'fp8' is not one of f32, f16, bf16",
				    "models:\n  - name: whisper\n    precision: bf16\n"
				    "  - name: videomae\n    precision: fp8\n"));
	CU_ASSERT_TRUE(refused_with("models[0].precision: 'BF16' is not one of f32, f16, bf16",
				    "models:\n  - name: whisper\n    precision: BF16\n"));
	CU_ASSERT_TRUE(refused_with("service.max_inflight: no value; expected a whole number",
				    "service:\n  max_inflight: \"\"\n"));
	/* An alias is checked as what it stands for, where it is used. */
	CU_ASSERT_TRUE(refused_with("models[1].max_batch: '2k' is not a whole number",
				    "models:\n  - {name: &n 2k}\n  - {name: b, max_batch: *n}\n"));

	/* What is accepted: plain digits (tagged !!int too, not quoted: test_numbers_not_text),
	 * 0, a sign only as '-' and then the range decides, as before. */
	CU_ASSERT_EQUAL_FATAL(
		load_text(&c, "service:\n  max_inflight: 2000\n"
			      "  drain_timeout_ms: 0\n"
			      "  max_inflight_bytes: !!int 1048576\n"
			      "  max_payload_bytes: 1048576\n"
			      "zmq: {io_threads: 16}\n"
			      "devices:\n  cuda: {gpus: [0, 7, 255]}\n"
			      "tenants:\n  limits:\n    - {tenant: 4294967295, rate: 1, "
			      "burst: 1000000}\n"
			      "models:\n  - {name: logmel, max_batch: 1024, max_delay_us: "
			      "0}\n"),
		0);
	CU_ASSERT_EQUAL(c.max_inflight, 2000);
	CU_ASSERT_EQUAL(c.drain_timeout_ms, 0);
	CU_ASSERT_EQUAL(c.max_inflight_bytes, 1048576);
	CU_ASSERT_EQUAL(c.zmq_io_threads, 16);
	CU_ASSERT_EQUAL(c.n_cuda_gpus, 3);
	CU_ASSERT_EQUAL(c.cuda_gpus[2], 255);
	CU_ASSERT_EQUAL_FATAL(c.n_limits, 1);
	CU_ASSERT_EQUAL(c.limits[0].tenant, 4294967295u);
	CU_ASSERT_EQUAL(c.limits[0].burst, 1000000);
	CU_ASSERT_EQUAL_FATAL(c.n_models, 1);
	CU_ASSERT_EQUAL(c.models[0].max_batch, 1024);
	CU_ASSERT_EQUAL(c.models[0].max_delay_us, 0);
	mb_config_fini(&c);
	CU_ASSERT_EQUAL_FATAL(load_text(&c, "models:\n  - {name: a, max_batch: &b 8}\n"
					    "  - {name: b, max_batch: *b}\n"),
			      0);
	CU_ASSERT_EQUAL(c.models[1].max_batch, 8);
	mb_config_fini(&c);
	CU_ASSERT_TRUE(refused_with("service.max_inflight: -5 is out of range 1..1048576",
				    "service:\n  max_inflight: -5\n"));
	CU_ASSERT_TRUE(refused_with("service.drain_timeout_ms: 700000 is out of range 0..600000",
				    "service:\n  drain_timeout_ms: 700000\n"));
	CU_ASSERT_TRUE(refused_with("service.liveness_ms: 999 is out of range 1000..600000",
				    "service:\n  liveness_ms: 999\n"));
	CU_ASSERT_EQUAL(load_text(&c, "service:\n  drain_timeout_ms: -0\n"), 0);
	CU_ASSERT_EQUAL(c.drain_timeout_ms, 0);
	mb_config_fini(&c);
}

/* Every float key (rates) takes a decimal number, with an exponent if wanted. */
static void
test_strict_floats(void)
{
	struct mb_config c;
	char want[160];

	for (size_t i = 0; i < sizeof(bad_floats) / sizeof(bad_floats[0]); i++) {
		const char *v = bad_floats[i];

		snprintf(want, sizeof(want), "tenants.default_rate: '%s' is not a decimal number",
			 v);
		CU_ASSERT_TRUE(refused_with(want, "tenants:\n  default_rate: %s\n", v));
		snprintf(want, sizeof(want), "tenants.limits[1].rate: '%s' is not a decimal number",
			 v);
		CU_ASSERT_TRUE(refused_with(want,
					    "tenants:\n  limits:\n    - {tenant: 1, rate: 2}\n"
					    "    - tenant: 2\n      rate: %s\n",
					    v));
		snprintf(want, sizeof(want),
			 "models[0].item_units_per_second: '%s' is not a decimal number", v);
		CU_ASSERT_TRUE(refused_with(want,
					    "models:\n  - name: clap\n"
					    "    item_units_per_second: %s\n",
					    v));
	}
	CU_ASSERT_TRUE(refused_with("tenants.default_rate: no value; expected a decimal number",
				    "tenants:\n  default_rate:\n"));
	CU_ASSERT_TRUE(refused_with("tenants.limits[0].rate: '.5 ' is not a decimal number",
				    "tenants:\n  limits:\n    - {tenant: 1, rate: \".5 \"}\n"));

	CU_ASSERT_EQUAL_FATAL(load_text(&c,
					"tenants:\n"
					"  default_rate: 1e3\n"
					"  limits:\n"
					"    - {tenant: 1, rate: 2.5}\n"
					"    - {tenant: 2, rate: .5}\n"
					"    - {tenant: 3, rate: 1E-3}\n"
					"    - {tenant: 4, rate: 0}\n"
					"    - {tenant: 5, rate: 7.}\n"
					"    - {tenant: 6, rate: !!float 2e2}\n"
					"    - {tenant: 7, rate: 1.5e+2}\n"
					"models:\n  - {name: clap, item_units_per_second: 0.25}\n"),
			      0);
	CU_ASSERT_DOUBLE_EQUAL(c.default_rate, 1000, 1e-9);
	CU_ASSERT_EQUAL_FATAL(c.n_limits, 7);
	CU_ASSERT_DOUBLE_EQUAL(c.limits[0].rate, 2.5, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(c.limits[1].rate, 0.5, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(c.limits[2].rate, 0.001, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(c.limits[3].rate, 0, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(c.limits[4].rate, 7, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(c.limits[5].rate, 200, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(c.limits[6].rate, 150, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(c.models[0].item_units_per_second, 0.25, 1e-12);
	mb_config_fini(&c);
	/* A negative rate is a number; its range refuses it, as before. */
	CU_ASSERT_TRUE(refused_with("tenants.default_rate: -1 is out of range 0 or",
				    "tenants:\n  default_rate: -1\n"));
}

/* The message names the file, line, column, key path and value, and says what to write. */
static void
test_number_hints(void)
{
	static const struct {
		const char *yaml, *want;
	} cases[] = {
		{"service:\n  max_inflight: 2k\n",
		 ": line 2, column 17: service.max_inflight: '2k' is not a whole number (digits "
		 "only: write 2000)"},
		{"service:\n  drain_timeout_ms: 5s\n",
		 ": line 2, column 21: service.drain_timeout_ms: '5s' is not a whole number of "
		 "milliseconds (write 5000)"},
		{"breaker:\n  cooldown_ms: 1.5 min\n",
		 "breaker.cooldown_ms: '1.5 min' is not a whole number of milliseconds (write "
		 "90000)"},
		{"models:\n  - name: logmel\n    max_delay_us: 2ms\n",
		 ": line 3, column 19: models[0].max_delay_us: '2ms' is not a whole number of "
		 "microseconds (write 2000)"},
		{"service:\n  max_payload_bytes: 8MiB\n",
		 "service.max_payload_bytes: '8MiB' is not a whole number of bytes (write "
		 "8388608)"},
		{"eal:\n  memory_mb: 1G\n",
		 "eal.memory_mb: '1G' is not a whole number of MiB (write 1024)"},
		{"zmq:\n  pub_sndhwm: 1e3\n",
		 "zmq.pub_sndhwm: '1e3' is not a whole number (digits only: write 1000)"},
		{"zmq:\n  pub_sndhwm: 0x100\n",
		 "zmq.pub_sndhwm: '0x100' is not a whole number (digits only: write 256)"},
		{"zmq:\n  pub_sndhwm: 2_000\n",
		 "zmq.pub_sndhwm: '2_000' is not a whole number (digits only: write 2000)"},
		{"zmq:\n  pub_sndhwm: +5\n",
		 "zmq.pub_sndhwm: '+5' is not a whole number (digits only: write 5)"},
		{"zmq:\n  pub_sndhwm: 100.9\n",
		 "zmq.pub_sndhwm: '100.9' is not a whole number (digits only)"},
		{"zmq:\n  pub_sndhwm: 10/s\n",
		 "zmq.pub_sndhwm: '10/s' is not a whole number (digits only)"},
		{"zmq:\n  heartbeat_ms: 010\n",
		 "zmq.heartbeat_ms: '010' is not a whole number of milliseconds (no leading zero: "
		 "write 10)"},
		{"tenants:\n  default_rate: 10/s\n",
		 ": line 2, column 17: tenants.default_rate: '10/s' is not a decimal number (write "
		 "10)"},
		{"tenants:\n  limits:\n    - {tenant: 1, rate: 2k}\n",
		 ": line 3, column 25: tenants.limits[0].rate: '2k' is not a decimal number (write "
		 "2000)"},
		{"tenants:\n  default_rate: .inf\n",
		 "tenants.default_rate: '.inf' is not a decimal number (such as 2.5 or 1e3)"},
	};
	struct mb_config c;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CU_ASSERT_EQUAL(load_text(&c, cases[i].yaml), -EINVAL);
		CU_ASSERT_TRUE(err_has(cases[i].want));
		CU_ASSERT_TRUE(err_has("/tmp/mb_test_")); /* names the file */
		CU_ASSERT_EQUAL(c.max_inflight, 8192);	  /* and changes nothing */
		mb_config_fini(&c);
	}
}

/* libcyaml 1.3.1 reads anything but false/no/off/disable/0 as true: "enabled: flase" would
 * turn a model on. The one boolean key (models[].enabled, grep CYAML_FIELD_BOOL) takes
 * YAML 1.1's booleans and nothing else, in a block mapping, a flow mapping and an alias. */
static const char *const bad_booleans[] = {
	"flase", "maybe", "ture",   "1",       "0", "y",    "n",	  "Y",	     "N",  "tRUE",
	"fALSE", "yES",	  "enable", "disable", "~", "null", "true false", "'true '", "2k",
};

static void
test_strict_booleans(void)
{
	static const struct {
		const char *text;
		int want;
	} good[] = {
		{"true", 1},  {"True", 1},  {"TRUE", 1}, {"yes", 1},	     {"Yes", 1},
		{"YES", 1},   {"on", 1},    {"On", 1},	 {"ON", 1},	     {"false", 0},
		{"False", 0}, {"FALSE", 0}, {"no", 0},	 {"No", 0},	     {"NO", 0},
		{"off", 0},   {"Off", 0},   {"OFF", 0},	 {"!!bool true", 1}, {"!!bool off", 0},
	};
	struct mb_config c;
	char want[160];

	for (size_t i = 0; i < sizeof(bad_booleans) / sizeof(bad_booleans[0]); i++) {
		const char *v = bad_booleans[i];
		const char *shown = v[0] == '\'' ? "true " : v;

		snprintf(want, sizeof(want), "models[0].enabled: '%s' is not true or false", shown);
		CU_ASSERT_TRUE(
			refused_with(want, "models:\n  - name: identity\n    enabled: %s\n", v));
		snprintf(want, sizeof(want), "models[1].enabled: '%s' is not true or false", shown);
		CU_ASSERT_TRUE(refused_with(want,
					    "models:\n  - {name: a, enabled: true}\n"
					    "  - {name: b, enabled: %s}\n",
					    v));
	}
	/* The whole message, as in docs/operating.md, and nothing of the file applied. */
	CU_ASSERT_EQUAL(load_text(&c, "zmq: {io_threads: 2}\nmodels:\n  - name: logmel\n"
				      "    enabled: flase\n"),
			-EINVAL);
	CU_ASSERT_TRUE(err_has(": line 4, column 14: models[0].enabled: 'flase' is not true or "
			       "false"));
	CU_ASSERT_TRUE(err_has("/tmp/mb_test_"));
	CU_ASSERT_EQUAL(c.zmq_io_threads, 1);
	CU_ASSERT_EQUAL(c.n_models, 0);
	mb_config_fini(&c);
	CU_ASSERT_TRUE(refused_with(": line 3, column 13: models[0].enabled: no value; expected "
				    "true or false",
				    "models:\n  - name: identity\n    enabled:\n"));
	CU_ASSERT_TRUE(refused_with("models[0].enabled: no value; expected true or false",
				    "models:\n  - {name: identity, enabled: \"\"}\n"));
	/* An alias: checked where it is used, at the place its value is written. */
	CU_ASSERT_TRUE(refused_with(": line 2, column 12: models[1].enabled: 'maybe' is not true "
				    "or false",
				    "models:\n  - {name: &v maybe}\n  - {name: b, enabled: *v}\n"));
	/* A list is still libcyaml's to report, as a wrong kind. */
	CU_ASSERT_TRUE(refused_with("models[0].enabled: expected true or false, found a list",
				    "models:\n  - {name: a, enabled: [true]}\n"));

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char yaml[128];

		snprintf(yaml, sizeof(yaml),
			 "models:\n  - {name: a}\n  - name: b\n    enabled: %s\n", good[i].text);
		CU_ASSERT_EQUAL_FATAL(load_text(&c, yaml), 0);
		CU_ASSERT_EQUAL(c.models[0].enabled, MB_CONFIG_UNSET);
		CU_ASSERT_EQUAL(c.models[1].enabled, good[i].want);
		mb_config_fini(&c);
	}
}

/*
 * A number or boolean key takes a plain value, untagged or tagged with its own kind (!!int;
 * !!float or !!int for a rate; !!bool): quoted, or tagged as text (!!str) or as anything else,
 * the value is text, which libcyaml 1.3.1 read as the number all the same ("100", '100',
 * !!str 100 and !!float 100 all loaded as max_inflight 100).
 */
static void
test_numbers_not_text(void)
{
	static const struct {
		const char *yaml, *want;
	} refused[] = {
		{"service:\n  max_inflight: !!str 100\n",
		 ": line 2, column 17: service.max_inflight: !!str 100 is tagged as text; expected "
		 "a whole number, untagged or !!int (write 100)"},
		{"service:\n  max_inflight: \"100\"\n",
		 ": line 2, column 17: service.max_inflight: \"100\" is quoted, so it is text; "
		 "expected a whole number, unquoted (write 100)"},
		{"service:\n  max_inflight: '100'\n",
		 "service.max_inflight: '100' is quoted, so it is text; expected a whole number, "
		 "unquoted (write 100)"},
		{"service:\n  max_inflight: !!int \"100\"\n",
		 "service.max_inflight: !!int \"100\" is quoted, so it is text"},
		{"service:\n  drain_timeout_ms: !!float 5000\n",
		 "service.drain_timeout_ms: !!float 5000 is tagged !!float; expected a whole "
		 "number of milliseconds, untagged or !!int (write 5000)"},
		{"service:\n  max_inflight: !mine 100\n",
		 "service.max_inflight: !mine 100 is tagged !mine; expected a whole number"},
		{"service:\n  max_inflight: ! 100\n",
		 "service.max_inflight: ! 100 is tagged as text; expected a whole number"},
		{"service:\n  max_inflight: !<tag:yaml.org,2002:str> 100\n",
		 "service.max_inflight: !<tag:yaml.org,2002:str> 100 is tagged as text"},
		{"service:\n  max_inflight: &n !!str 100\n",
		 "line 2, column 17: service.max_inflight: !!str 100 is tagged as text"},
		{"service:\n  max_inflight: !!str &n 100\n",
		 "line 2, column 17: service.max_inflight: !!str 100 is tagged as text"},
		{"zmq: {heartbeat_ms: !!str 500}\n",
		 ": line 1, column 21: zmq.heartbeat_ms: !!str 500 is tagged as text"},
		{"devices:\n  cuda:\n    gpus: [0, \"1\"]\n",
		 "devices.cuda.gpus[1]: \"1\" is quoted, so it is text"},
		{"tenants:\n  limits:\n    - {tenant: !!str 7, rate: 1}\n",
		 "tenants.limits[0].tenant: !!str 7 is tagged as text"},
		{"models:\n  - {name: a, max_batch: &b \"8\"}\n  - {name: b, max_batch: *b}\n",
		 "models[0].max_batch: \"8\" is quoted, so it is text"},
		{"models:\n  - name: logmel\n    max_batch: >-\n      8\n",
		 "models[0].max_batch: '8' is a block of text (| or >); expected a whole number, "
		 "plain (write 8)"},
		{"tenants:\n  default_rate: !!str 2.5\n",
		 ": line 2, column 17: tenants.default_rate: !!str 2.5 is tagged as text; expected "
		 "a decimal number, untagged, !!float or !!int (write 2.5)"},
		{"tenants:\n  limits:\n    - {tenant: 1, rate: \"2e2\"}\n",
		 "tenants.limits[0].rate: \"2e2\" is quoted, so it is text; expected a decimal "
		 "number, unquoted (write 2e2)"},
		{"models:\n  - name: identity\n    enabled: \"true\"\n",
		 ": line 3, column 14: models[0].enabled: \"true\" is quoted, so it is text; "
		 "expected true or false, unquoted (write true)"},
		{"models:\n  - {name: identity, enabled: 'off'}\n",
		 "models[0].enabled: 'off' is quoted, so it is text"},
		{"models:\n  - {name: identity, enabled: !!str no}\n",
		 "models[0].enabled: !!str no is tagged as text; expected true or false, untagged "
		 "or !!bool (write no)"},
		{"security:\n  mode: curve\n  clients:\n    - name: a\n      subscribe_all: "
		 "!!int true\n",
		 "security.clients[0].subscribe_all: !!int true is tagged !!int; expected true "
		 "or false"},
	};
	struct mb_config c;

	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		CU_ASSERT_EQUAL(load_text(&c, refused[i].yaml), -EINVAL);
		CU_ASSERT_TRUE(err_has(refused[i].want));
		CU_ASSERT_EQUAL(c.max_inflight, 8192); /* nothing applied */
		mb_config_fini(&c);
	}
	/* A value that is no number quoted is no number unquoted: the message says so first. */
	CU_ASSERT_TRUE(refused_with("service.max_inflight: '2k' is not a whole number",
				    "service:\n  max_inflight: !!str 2k\n"));
	CU_ASSERT_TRUE(refused_with("service.max_inflight: no value; expected a whole number",
				    "service:\n  max_inflight: !!str\n"));

	/* Tags of the key's own kind, in block and flow mappings and through an alias */
	CU_ASSERT_EQUAL_FATAL(load_text(&c,
					"service:\n  max_inflight: !!int 100\n"
					"  drain_timeout_ms: !<tag:yaml.org,2002:int> 0\n"
					"zmq: {heartbeat_ms: !!int 500}\n"
					"tenants:\n  default_rate: !!float 2.5\n"
					"  limits:\n    - {tenant: !!int 1, rate: !!int 3}\n"
					"models:\n  - {name: a, max_batch: &b !!int 8, enabled: "
					"!!bool false}\n"
					"  - {name: b, max_batch: *b}\n"),
			      0);
	CU_ASSERT_EQUAL(c.max_inflight, 100);
	CU_ASSERT_EQUAL(c.drain_timeout_ms, 0);
	CU_ASSERT_EQUAL(c.zmq_heartbeat_ms, 500);
	CU_ASSERT_DOUBLE_EQUAL(c.default_rate, 2.5, 1e-12);
	CU_ASSERT_EQUAL_FATAL(c.n_limits, 1);
	CU_ASSERT_DOUBLE_EQUAL(c.limits[0].rate, 3, 1e-12);
	CU_ASSERT_EQUAL_FATAL(c.n_models, 2);
	CU_ASSERT_EQUAL(c.models[0].enabled, 0);
	CU_ASSERT_EQUAL(c.models[1].max_batch, 8);
	mb_config_fini(&c);
	/* a text key still takes a quoted or !!str value */
	CU_ASSERT_EQUAL_FATAL(load_text(&c, "weights_dir: !!str 100\nmodels:\n  - {name: \"7\"}\n"),
			      0);
	CU_ASSERT_STRING_EQUAL(c.weights_dir, "100");
	CU_ASSERT_STRING_EQUAL(c.models[0].name, "7");
	mb_config_fini(&c);
}

/* A number written strictly that does not fit the key's type: libcyaml says "is not an
 * integer" for an integer, and reads a float beyond a double as inf or as 0. */
static void
test_numbers_too_large(void)
{
	static const char digits100[] = "1234567890123456789012345678901234567890"
					"1234567890123456789012345678901234567890"
					"12345678901234567890";
	struct mb_config c;
	char want[200];

	CU_ASSERT_TRUE(refused_with(": line 2, column 17: service.max_inflight: "
				    "'99999999999999999999' is too large for a whole number",
				    "service:\n  max_inflight: 99999999999999999999\n"));
	CU_ASSERT_TRUE(refused_with("service.drain_timeout_ms: '9223372036854775808' is too large "
				    "for a whole number",
				    "service:\n  drain_timeout_ms: 9223372036854775808\n"));
	CU_ASSERT_TRUE(refused_with("service.drain_timeout_ms: '-9223372036854775809' is too "
				    "small for a whole number",
				    "service:\n  drain_timeout_ms: -9223372036854775809\n"));
	CU_ASSERT_TRUE(refused_with(": line 3, column 16: models[0].max_batch: "
				    "'18446744073709551616' is too large for a whole number",
				    "models:\n  - name: identity\n    max_batch: "
				    "18446744073709551616\n"));
	CU_ASSERT_TRUE(refused_with("devices.cuda.gpus[1]: '99999999999999999999' is too large for "
				    "a whole number",
				    "devices:\n  cuda: {gpus: [0, 99999999999999999999]}\n"));
	CU_ASSERT_TRUE(refused_with("tenants.limits[0].tenant: '99999999999999999999' is too large "
				    "for a whole number",
				    "tenants:\n  limits:\n    - {rate: 1, tenant: "
				    "\"99999999999999999999\"}\n"));
	snprintf(want, sizeof(want), "zmq.pub_sndhwm: '%.64s...' is too large for a whole number",
		 digits100);
	CU_ASSERT_TRUE(refused_with(want, "zmq:\n  pub_sndhwm: %s\n", digits100));
	/* The type's edge fits; then the key's range decides, as before. */
	CU_ASSERT_TRUE(refused_with("service.max_inflight: 9223372036854775807 is out of range "
				    "1..1048576",
				    "service:\n  max_inflight: 9223372036854775807\n"));
	CU_ASSERT_TRUE(
		refused_with("service.drain_timeout_ms: -9223372036854775808 is out of range "
			     "0..600000",
			     "service:\n  drain_timeout_ms: -9223372036854775808\n"));
	/* Floats: beyond a double, or so close to 0 that it would read as 0 (no limit). */
	CU_ASSERT_TRUE(refused_with(": line 2, column 17: tenants.default_rate: '1e999' is too "
				    "large for a decimal number",
				    "tenants:\n  default_rate: 1e999\n"));
	CU_ASSERT_TRUE(refused_with("tenants.limits[0].rate: '-1e400' is too small for a decimal "
				    "number",
				    "tenants:\n  limits:\n    - {tenant: 1, rate: -1e400}\n"));
	CU_ASSERT_TRUE(refused_with("tenants.default_rate: '1e-999' is too close to zero for a "
				    "decimal number",
				    "tenants:\n  default_rate: 1e-999\n"));
	CU_ASSERT_EQUAL_FATAL(load_text(&c, "tenants:\n  default_rate: 1e9\n  limits:\n"
					    "    - {tenant: 1, rate: 0e-999}\n"
					    "    - {tenant: 2, rate: 1e-3}\n"),
			      0);
	CU_ASSERT_DOUBLE_EQUAL(c.default_rate, 1e9, 1e-3);
	CU_ASSERT_DOUBLE_EQUAL(c.limits[0].rate, 0, 0);
	mb_config_fini(&c);
}

/* libcyaml loads the first document and ignores the rest of the file. */
static void
test_one_document(void)
{
	struct mb_config c;

	CU_ASSERT_EQUAL(load_text(&c, "zmq:\n  io_threads: 2\n---\nzmq:\n  io_threads: 3\n"),
			-EINVAL);
	CU_ASSERT_TRUE(err_has(": line 3: a second YAML document ('---'): one configuration per "
			       "file"));
	CU_ASSERT_TRUE(err_has("/tmp/mb_test_"));
	CU_ASSERT_EQUAL(c.zmq_io_threads, 1);
	mb_config_fini(&c);
	/* An empty first document would leave the configuration in the second unread. */
	CU_ASSERT_TRUE(refused_with(": line 2: a second YAML document ('---')",
				    "---\n---\nzmq:\n  io_threads: 2\n"));
	/* After an explicit end, after a comment, and one that is empty. */
	CU_ASSERT_TRUE(refused_with(": line 4: a second YAML document ('---')",
				    "zmq: {io_threads: 2}\n...\n# the next one\n---\nzmq: {}\n"));
	CU_ASSERT_TRUE(refused_with(": line 2: a second YAML document ('---')",
				    "zmq: {io_threads: 2}\n---\n"));
	/* Whatever the second one holds, even text that is not YAML. */
	CU_ASSERT_TRUE(refused_with(": line 2: a second YAML document ('---')",
				    "zmq: {io_threads: 2}\n--- [\n"));
	/* A second document without its '---' is not YAML. */
	CU_ASSERT_TRUE(refused_with(": line 3, column 1: did not find expected <document start>",
				    "zmq: {io_threads: 2}\n...\nzmq: {io_threads: 3}\n"));
	/* The first document's own errors come first. */
	CU_ASSERT_TRUE(refused_with(": line 1, column 19: zmq.io_threads: '2k' is not a whole",
				    "zmq: {io_threads: 2k}\n---\nzmq: {}\n"));

	/* One document, with its markers, is one configuration. */
	CU_ASSERT_EQUAL_FATAL(load_text(&c, "---\nzmq: {io_threads: 2}\n"), 0);
	CU_ASSERT_EQUAL(c.zmq_io_threads, 2);
	mb_config_fini(&c);
	CU_ASSERT_EQUAL_FATAL(load_text(&c, "%YAML 1.1\n---\nzmq: {io_threads: 3}\n...\n# end\n"),
			      0);
	CU_ASSERT_EQUAL(c.zmq_io_threads, 3);
	mb_config_fini(&c);
}

/* libyaml counts lines and columns from 0; the message counts from 1, at the error itself
 * (not at the last value read before it), and does not blame a key the error is not in. */
static void
test_syntax_error_positions(void)
{
	struct mb_config c;

	CU_ASSERT_EQUAL(load_text(&c, "service:\n  max_inflight: 100\n   drain_timeout_ms: 5\n"),
			-EINVAL);
	CU_ASSERT_TRUE(err_has(": line 3, column 20: mapping values are not allowed"));
	CU_ASSERT_FALSE(strstr(g_err, "max_inflight") != NULL);
	CU_ASSERT_EQUAL(load_text(&c,
				  "service:\n  max_inflight: 100\n  drain_timeout_ms: [5\nzmq:\n"
				  "  io_threads: 1\n"),
			-EINVAL);
	CU_ASSERT_TRUE(err_has(": line 4, column 4: did not find expected ',' or ']' (while "
			       "parsing a flow sequence at line 3, column 21)"));
	CU_ASSERT_EQUAL(load_text(&c, "service:\n  max_inflight: 100\n\tdrain_timeout_ms: 5\n"),
			-EINVAL);
	CU_ASSERT_TRUE(err_has(": line 3, column 1: found a tab character"));
	CU_ASSERT_EQUAL(load_text(&c, "models:\n  - name: identity\n    max_batch: 4\n"
				      "    max_bach: 3\n"),
			-EINVAL);
	CU_ASSERT_TRUE(err_has(": line 4, column 5: models[0]: unexpected key 'max_bach'"));
	CU_ASSERT_EQUAL(load_text(&c, "service:\n  max_inflight: 5\n  max_inflight: 6\n"), -EINVAL);
	CU_ASSERT_TRUE(err_has(": line 3, column 3: service.max_inflight: set twice (first at "
			       "line 2)"));
	CU_ASSERT_EQUAL(load_text(&c, "service:\n  max_inflight: *nope\n"), -EINVAL);
	CU_ASSERT_TRUE(err_has(": line 2, column 17: found undefined alias"));
	CU_ASSERT_EQUAL(load_text(&c, "service:\n  max_inflight: \xff\n"), -EINVAL);
	CU_ASSERT_TRUE(err_has(": byte 25: invalid leading UTF-8 octet (0xff)"));
	/* A wrong type is still libcyaml's to report, at the value. */
	CU_ASSERT_EQUAL(load_text(&c, "models:\n  - name: identity\n    max_batch: [3]\n"),
			-EINVAL);
	CU_ASSERT_TRUE(err_has(": line 3, column 16: models[0].max_batch: expected an integer, "
			       "found a list"));
	mb_config_fini(&c);
}

static void
test_file_errors_and_empty(void)
{
	struct mb_config c;

	mb_config_defaults(&c);
	CU_ASSERT_EQUAL(mb_config_load(&c, "/nonexistent/mb.yaml", g_err, sizeof(g_err)), -ENOENT);
	CU_ASSERT_TRUE(err_has("/nonexistent/mb.yaml: No such file or directory"));
	CU_ASSERT_EQUAL(load_text(&c, ""), 0);
	CU_ASSERT_EQUAL(c.cpu_units, 16);
	CU_ASSERT_EQUAL(load_text(&c, "# only a comment\n"), 0);
	mb_config_fini(&c);
}

static void
test_failure_keeps_defaults(void)
{
	struct mb_config c;

	CU_ASSERT_EQUAL_FATAL(load_text(&c, "zmq:\n  heartbeat_ms: 0\n"), 0);
	CU_ASSERT_EQUAL(c.zmq_heartbeat_ms, 0);
	mb_config_fini(&c);
	CU_ASSERT_EQUAL(load_text(&c, "zmq:\n  heartbeat_ms: 700000\n"), -EINVAL);
	CU_ASSERT_TRUE(err_has("zmq.heartbeat_ms: 700000 is out of range 0..600000"));
	mb_config_fini(&c);

	/* A valid override followed by an invalid one: nothing of the file is applied. */
	CU_ASSERT_EQUAL(load_text(&c, "devices:\n  cpu: {units: 4}\nzmq:\n  io_threads: 99\n"),
			-EINVAL);
	CU_ASSERT_TRUE(err_has("zmq.io_threads: 99 is out of range 1..16"));
	CU_ASSERT_EQUAL(c.cpu_units, 16);
	CU_ASSERT_STRING_EQUAL(c.source, "embedded default");
	mb_config_fini(&c);
}

static void
test_hostport(void)
{
	char host[64];
	uint16_t port;

	CU_ASSERT_EQUAL(mb_config_parse_hostport("127.0.0.1:7402", host, sizeof(host), &port), 0);
	CU_ASSERT_STRING_EQUAL(host, "127.0.0.1");
	CU_ASSERT_EQUAL(port, 7402);
	CU_ASSERT_EQUAL(mb_config_parse_hostport("localhost:80", host, sizeof(host), &port), 0);
	CU_ASSERT_STRING_EQUAL(host, "127.0.0.1");
	CU_ASSERT_EQUAL(mb_config_parse_hostport("*:9100", host, sizeof(host), &port), 0);
	CU_ASSERT_STRING_EQUAL(host, "0.0.0.0");
	CU_ASSERT_EQUAL(mb_config_parse_hostport("127.0.0.1:0", host, sizeof(host), &port),
			-EINVAL);
	CU_ASSERT_EQUAL(mb_config_parse_hostport("127.0.0.1:70000", host, sizeof(host), &port),
			-EINVAL);
	CU_ASSERT_EQUAL(mb_config_parse_hostport(":80", host, sizeof(host), &port), -EINVAL);
	CU_ASSERT_EQUAL(mb_config_parse_hostport("1.2.3.4:", host, sizeof(host), &port), -EINVAL);
	CU_ASSERT_EQUAL(mb_config_parse_hostport("nohost", host, sizeof(host), &port), -EINVAL);
}

static void
test_set(void)
{
	struct mb_config c;

	mb_config_defaults(&c);
	CU_ASSERT_EQUAL(
		mb_config_set(&c, "service.ingest", "tcp://127.0.0.1:9", g_err, sizeof(g_err)), 0);
	CU_ASSERT_STRING_EQUAL(c.ingest, "tcp://127.0.0.1:9");
	CU_ASSERT_EQUAL(mb_config_set(&c, "service.metrics", "off", g_err, sizeof(g_err)), 0);
	CU_ASSERT_STRING_EQUAL(c.metrics, "");
	CU_ASSERT_EQUAL(mb_config_set(&c, "service.log_level", "info", g_err, sizeof(g_err)), 0);
	CU_ASSERT_EQUAL(c.log_level, RTE_LOG_INFO);
	CU_ASSERT_EQUAL(c.placement, MB_PLACEMENT_AUTO); /* the default */
	CU_ASSERT_EQUAL(mb_config_set(&c, "service.placement", "single", g_err, sizeof(g_err)), 0);
	CU_ASSERT_EQUAL(c.placement, MB_PLACEMENT_SINGLE);
	CU_ASSERT_EQUAL(mb_config_set(&c, "service.publish", "7401", g_err, sizeof(g_err)),
			-EINVAL);
	CU_ASSERT_TRUE(err_has("'7401' is not a ZeroMQ endpoint"));
	CU_ASSERT_STRING_EQUAL(c.publish, "tcp://127.0.0.1:7401"); /* unchanged */
	CU_ASSERT_EQUAL(mb_config_set(&c, "service.metrics", "host:1", g_err, sizeof(g_err)),
			-EINVAL);
	CU_ASSERT_EQUAL(mb_config_set(&c, "service.nope", "x", g_err, sizeof(g_err)), -EINVAL);
	mb_config_fini(&c);
}

/* A key a command-line flag set is named by the flag in messages: "--placement", not
 * "service.placement" (operator audit L4) */
static void
test_set_flag(void)
{
	struct mb_config c;

	mb_config_defaults(&c);
	CU_ASSERT_STRING_EQUAL(mb_config_origin(&c, "service.placement"), "service.placement");
	mb_config_fini(&c);
	CU_ASSERT_EQUAL_FATAL(load_text(&c, "service:\n  placement: per-stage\n"), 0);
	CU_ASSERT_EQUAL(c.placement, MB_PLACEMENT_PER_STAGE);
	CU_ASSERT_STRING_EQUAL(mb_config_origin(&c, "service.placement"), "service.placement");
	/* a value the key refuses changes nothing, its origin included */
	CU_ASSERT_EQUAL(mb_config_set_flag(&c, "--placement", "everywhere", g_err, sizeof(g_err)),
			-EINVAL);
	CU_ASSERT_TRUE(err_has("'everywhere' is not one of auto, single, per-stage"));
	CU_ASSERT_EQUAL(c.placement, MB_PLACEMENT_PER_STAGE);
	CU_ASSERT_STRING_EQUAL(mb_config_origin(&c, "service.placement"), "service.placement");
	CU_ASSERT_EQUAL(mb_config_set_flag(&c, "--placement", "single", g_err, sizeof(g_err)), 0);
	CU_ASSERT_EQUAL(c.placement, MB_PLACEMENT_SINGLE);
	CU_ASSERT_STRING_EQUAL(mb_config_origin(&c, "service.placement"), "--placement");
	/* each key its own flag; the others as they were */
	CU_ASSERT_STRING_EQUAL(mb_config_origin(&c, "service.ingest"), "service.ingest");
	CU_ASSERT_EQUAL(
		mb_config_set_flag(&c, "--ingest", "tcp://127.0.0.1:9", g_err, sizeof(g_err)), 0);
	CU_ASSERT_STRING_EQUAL(mb_config_origin(&c, "service.ingest"), "--ingest");
	CU_ASSERT_EQUAL(mb_config_set_flag(&c, "--log-level", "info", g_err, sizeof(g_err)), 0);
	CU_ASSERT_STRING_EQUAL(mb_config_origin(&c, "service.log_level"), "--log-level");
	CU_ASSERT_STRING_EQUAL(mb_config_origin(&c, "service.metrics"), "service.metrics");
	CU_ASSERT_STRING_EQUAL(mb_config_origin(&c, "zmq.io_threads"), "zmq.io_threads");
	CU_ASSERT_EQUAL(mb_config_set_flag(&c, "--io-threads", "2", g_err, sizeof(g_err)), -EINVAL);
	mb_config_fini(&c);
}

/* The doubts of @p yaml (mb_config_doubts()): how many, the text in @p buf. */
static unsigned int
doubts_of(const char *yaml, char *buf, size_t len)
{
	struct mb_config c;
	unsigned int n;

	buf[0] = '\0';
	if (load_text(&c, yaml) != 0) {
		printf("\n    refused: %s", g_err);
		return 999;
	}
	n = mb_config_doubts(&c, buf, len);
	mb_config_fini(&c);
	return n;
}

/*
 * Values in range that make no sense together or are doubtful (operator audit L6): a
 * per-address limit of HTTP connections the whole limit never lets it reach, heartbeats so
 * frequent that a live requester is cut off, a watchdog that takes any batch for hung. A
 * warning each (--check, the start), one a line, naming the keys, the values and why.
 */
static void
test_doubts(void)
{
	struct mb_config c;
	char buf[4096];

	/* none in the embedded default or the reference */
	mb_config_defaults(&c);
	buf[0] = 'x';
	CU_ASSERT_EQUAL(mb_config_doubts(&c, buf, sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(buf, "");
	mb_config_fini(&c);
	CU_ASSERT_EQUAL(mb_config_load(&c, mb_test_source_path("deploy/mediabatch.yaml"), g_err,
				       sizeof(g_err)),
			0);
	CU_ASSERT_EQUAL(mb_config_doubts(&c, buf, sizeof(buf)), 0);
	mb_config_fini(&c);

	CU_ASSERT_EQUAL(doubts_of("http:\n  max_connections: 16\n", buf, sizeof(buf)), 1);
	CU_ASSERT_STRING_EQUAL(buf,
			       "http.max_connections 16 is below http.max_connections_per_ip 32 "
			       "(the default): one address may take every connection, so the "
			       "per-address limit never applies (set max_connections_per_ip below "
			       "max_connections)");
	CU_ASSERT_EQUAL(doubts_of("http:\n  max_connections: 8\n  max_connections_per_ip: 8\n", buf,
				  sizeof(buf)),
			1);
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "http.max_connections 8 equals "
					   "http.max_connections_per_ip 8: one address may take"));
	CU_ASSERT_EQUAL(doubts_of("http:\n  max_connections: 9\n  max_connections_per_ip: 8\n", buf,
				  sizeof(buf)),
			0);
	CU_ASSERT_EQUAL(doubts_of("service:\n  metrics: \"off\"\nhttp:\n  max_connections: 8\n",
				  buf, sizeof(buf)),
			0); /* no endpoint, no connections to limit */

	CU_ASSERT_EQUAL(doubts_of("zmq:\n  heartbeat_ms: 50\n", buf, sizeof(buf)), 1);
	CU_ASSERT_STRING_EQUAL(buf, "zmq.heartbeat_ms 50 is below 100 ms: a requester silent for "
				    "three intervals (150 ms) is disconnected and its held replies "
				    "dropped, and one lost packet (TCP resends it after 200 ms at "
				    "the least) or a busy host's scheduling delay can be that long "
				    "(0 turns heartbeats off)");
	CU_ASSERT_EQUAL(doubts_of("zmq:\n  heartbeat_ms: 0\n", buf, sizeof(buf)), 0);
	CU_ASSERT_EQUAL(doubts_of("zmq:\n  heartbeat_ms: 100\n", buf, sizeof(buf)), 0);

	CU_ASSERT_EQUAL(
		doubts_of("models:\n  - {name: identity, run_timeout_ms: 5}\n", buf, sizeof(buf)),
		1);
	CU_ASSERT_STRING_EQUAL(buf,
			       "models[0] (identity): run_timeout_ms 5 is below 100 ms: a "
			       "batch still running after 5 ms (a busy host's scheduling delay "
			       "can be that long) is taken for hung, answered MODEL_ERROR, and the "
			       "model disabled until restart; the watchdog looks every 100 ms, "
			       "so it finds a hung batch hardly sooner (0 turns it off)");
	CU_ASSERT_EQUAL(doubts_of("models:\n  - {name: identity, run_timeout_ms: 0}\n"
				  "  - {name: logmel, run_timeout_ms: 100}\n"
				  "  - {name: clap, run_timeout_ms: 5, enabled: false}\n",
				  buf, sizeof(buf)),
			0);

	/* all at once: a line each */
	CU_ASSERT_EQUAL(doubts_of("zmq:\n  heartbeat_ms: 1\nhttp:\n  max_connections: 4\n"
				  "  max_connections_per_ip: 5\nmodels:\n"
				  "  - {name: identity, run_timeout_ms: 99}\n"
				  "  - {name: logmel, run_timeout_ms: 1}\n",
				  buf, sizeof(buf)),
			4);
	CU_ASSERT_TRUE(strstr(buf, "zmq.heartbeat_ms 1 is below 100 ms") == buf);
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\nmodels[0] (identity): run_timeout_ms 99 is below"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\nmodels[1] (logmel): run_timeout_ms 1 is below"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "off)\nhttp.max_connections 4 is below "
					   "http.max_connections_per_ip 5: one"));
	CU_ASSERT_PTR_NULL(strstr(buf, "\n\n"));
	CU_ASSERT_NOT_EQUAL(buf[strlen(buf) - 1], '\n');
	/* cut short where it does not fit, never past the buffer */
	CU_ASSERT_EQUAL(
		doubts_of("zmq:\n  heartbeat_ms: 1\nhttp:\n  max_connections: 4\n", buf, 64), 2);
	CU_ASSERT_EQUAL(strlen(buf), 63);
}

/* models[].precision: f32, f16 or bf16 (lower case, as written in the docs), unset by default */
static void
test_precision(void)
{
	static const struct {
		const char *text;
		int want;
	} ok[] = {
		{"f32", MB_CONFIG_PRECISION_F32},
		{"f16", MB_CONFIG_PRECISION_F16},
		{"bf16", MB_CONFIG_PRECISION_BF16},
		{"\"bf16\"", MB_CONFIG_PRECISION_BF16},
	};
	static const char *const bad[] = {"fp16", "float32", "int8", "''", "16", "true"};
	struct mb_config c;
	char yaml[128], want[128];

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		snprintf(yaml, sizeof(yaml), "models:\n  - name: videomae\n    precision: %s\n",
			 ok[i].text);
		CU_ASSERT_EQUAL_FATAL(load_text(&c, yaml), 0);
		CU_ASSERT_EQUAL(mb_config_model(&c, "videomae")->precision, ok[i].want);
		mb_config_fini(&c);
	}
	CU_ASSERT_EQUAL_FATAL(load_text(&c, "models:\n  - name: whisper\n    max_batch: 4\n"), 0);
	CU_ASSERT_EQUAL(mb_config_model(&c, "whisper")->precision, MB_CONFIG_UNSET);
	mb_config_fini(&c);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *shown = strcmp(bad[i], "''") == 0 ? "" : bad[i];

		snprintf(want, sizeof(want),
			 "models[0].precision: '%s' is not one of f32, f16, bf16", shown);
		CU_ASSERT_TRUE(refused_with(want, "models:\n  - name: whisper\n    precision: %s\n",
					    bad[i]));
	}
}

/* security: CURVE's allow-list, checked entry by entry */
static void
test_security(void)
{
	static const char key[] = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
	char y[2048];
	struct mb_config c;

	snprintf(y, sizeof(y),
		 "security:\n"
		 "  mode: curve\n"
		 "  server_key: /etc/mb/server.key_secret\n"
		 "  clients:\n"
		 "    - name: studio-a\n"
		 "      public_key: \"%s\"\n"
		 "      tenants: [43, 42, 43]\n"
		 "      max_inflight: 100\n"
		 "    - name: ops\n"
		 "      public_key_file: /etc/mb/ops.key\n"
		 "      subscribe_all: true\n",
		 key);
	CU_ASSERT_EQUAL_FATAL(load_text(&c, y), 0);
	CU_ASSERT_EQUAL(c.security_mode, MB_SECURITY_CURVE);
	CU_ASSERT_STRING_EQUAL(c.server_key_file, "/etc/mb/server.key_secret");
	CU_ASSERT_EQUAL_FATAL(c.n_clients, 2);
	CU_ASSERT_STRING_EQUAL(c.clients[0].public_key, key);
	CU_ASSERT_EQUAL_FATAL(c.clients[0].n_tenants, 2); /* sorted, once each */
	CU_ASSERT_EQUAL(c.clients[0].tenants[0], 42);
	CU_ASSERT_EQUAL(c.clients[0].tenants[1], 43);
	CU_ASSERT_EQUAL(c.clients[0].n_subscribe, 2); /* by default, its own tenants */
	CU_ASSERT_EQUAL(c.clients[0].max_inflight, 100);
	CU_ASSERT_STRING_EQUAL(c.clients[1].public_key_file, "/etc/mb/ops.key");
	CU_ASSERT_TRUE(c.clients[1].subscribe_all);
	CU_ASSERT_EQUAL(c.clients[1].n_tenants, 0);
	mb_config_fini(&c);

	CU_ASSERT_EQUAL(load_text(&c, "security:\n  mode: tls\n"), -EINVAL);
	CU_ASSERT_TRUE(err_has("security.mode: 'tls' is not one of plaintext, curve"));
	CU_ASSERT_EQUAL(load_text(&c, "security:\n  mode: curve\n"), -EINVAL);
	CU_ASSERT_TRUE(err_has("security.server_key: missing"));
	CU_ASSERT_EQUAL(load_text(&c, "security:\n  mode: curve\n  server_key: /k\n"), -EINVAL);
	CU_ASSERT_TRUE(err_has("security.clients: empty"));
	CU_ASSERT_EQUAL(load_text(&c, "security:\n  clients:\n    - {name: a, public_key: "
				      "\"short\", tenants: [1]}\n"),
			-EINVAL);
	CU_ASSERT_TRUE(
		err_has("security.clients[0].public_key: 'short' is not a CURVE public key"));
	CU_ASSERT_EQUAL(load_text(&c, "security:\n  clients:\n    - {name: a, public_key_file: "
				      "/k, public_key_file: /j}\n"),
			-EINVAL);
	CU_ASSERT_EQUAL(load_text(&c, "security:\n  clients:\n    - {name: a, tenants: [1]}\n"),
			-EINVAL);
	CU_ASSERT_TRUE(err_has("give exactly one of 'public_key'"));
	CU_ASSERT_EQUAL(load_text(&c, "security:\n  clients:\n    - {name: 'a b', "
				      "public_key_file: /k, tenants: [1]}\n"),
			-EINVAL);
	CU_ASSERT_TRUE(err_has("security.clients[0].name: 'a b'"));
	CU_ASSERT_EQUAL(load_text(&c, "security:\n  clients:\n    - {name: a, public_key_file: "
				      "/k}\n"),
			-EINVAL);
	CU_ASSERT_TRUE(err_has("may do nothing"));
	CU_ASSERT_EQUAL(load_text(&c, "security:\n  clients:\n    - {name: a, public_key_file: "
				      "/k, tenants: [-1]}\n"),
			-EINVAL);
	CU_ASSERT_TRUE(err_has("security.clients[0].tenants[0]: -1 is out of range"));
	CU_ASSERT_EQUAL(load_text(&c, "security:\n  clients:\n"
				      "    - {name: a, public_key_file: /k, tenants: [1]}\n"
				      "    - {name: a, public_key_file: /j, tenants: [2]}\n"),
			-EINVAL);
	CU_ASSERT_TRUE(err_has("security.clients[1].name: 'a' is already security.clients[0]"));
	snprintf(y, sizeof(y),
		 "security:\n  clients:\n"
		 "    - {name: a, public_key: \"%s\", tenants: [1]}\n"
		 "    - {name: b, public_key_file: /k, tenants: [1]}\n"
		 "    - {name: c, public_key: \"%s\", tenants: [2]}\n",
		 key, key);
	CU_ASSERT_EQUAL(load_text(&c, y), -EINVAL);
	CU_ASSERT_TRUE(err_has("security.clients[2].public_key: '"));
	CU_ASSERT_TRUE(err_has("is already the key of security.clients[0]"));
	CU_ASSERT_EQUAL(load_text(&c, "security:\n  clients:\n    - {name: a, public_key_file: "
				      "/k, tenants: [1], max_inflight: 9000}\n"),
			-EINVAL);
	CU_ASSERT_TRUE(err_has("security.clients[0].max_inflight: 9000 is above "
			       "service.max_inflight (8192)"));
}

/* service shares, the HTTP endpoint's limits, UDP source prefixes */
static void
test_shares_http_sources(void)
{
	struct mb_config c;
	struct mb_prefix p;

	CU_ASSERT_EQUAL_FATAL(load_text(&c, "service:\n"
					    "  max_inflight_per_client: 100\n"
					    "  max_inflight_per_tenant: 1000\n"
					    "http:\n"
					    "  tls_cert: /c.pem\n"
					    "  tls_key: /k.pem\n"
					    "  token_file: /t\n"
					    "  max_connections: 64\n"
					    "  max_connections_per_ip: 4\n"
					    "  timeout_ms: 2000\n"
					    "udp:\n"
					    "  sources:\n"
					    "    - {tenant: 42, prefixes: [\"192.0.2.0/24\", "
					    "\"198.51.100.7\"]}\n"),
			      0);
	CU_ASSERT_EQUAL(c.max_inflight_per_client, 100);
	CU_ASSERT_EQUAL(c.max_inflight_per_tenant, 1000);
	CU_ASSERT_STRING_EQUAL(c.http_tls_cert, "/c.pem");
	CU_ASSERT_STRING_EQUAL(c.http_token_file, "/t");
	CU_ASSERT_EQUAL(c.http_max_connections, 64);
	CU_ASSERT_EQUAL(c.http_max_connections_per_ip, 4);
	CU_ASSERT_EQUAL(c.http_timeout_ms, 2000);
	CU_ASSERT_EQUAL_FATAL(c.n_udp_sources, 1);
	CU_ASSERT_EQUAL_FATAL(c.udp_sources[0].n_prefixes, 2);
	CU_ASSERT_EQUAL(c.udp_sources[0].prefixes[0].addr, inet_addr("192.0.2.0"));
	CU_ASSERT_EQUAL(c.udp_sources[0].prefixes[0].mask, inet_addr("255.255.255.0"));
	CU_ASSERT_EQUAL(c.udp_sources[0].prefixes[1].mask, 0xffffffffu);
	mb_config_fini(&c);

	CU_ASSERT_EQUAL_FATAL(load_text(&c, "service:\n  log_format: json\n"), 0);
	CU_ASSERT_EQUAL(c.log_format, MB_LOG_JSON);
	mb_config_fini(&c);
	CU_ASSERT_EQUAL_FATAL(load_text(&c, "service:\n  ready_when: any_model\n"), 0);
	CU_ASSERT_EQUAL(c.ready_when, MB_READY_ANY);
	mb_config_fini(&c);
	CU_ASSERT_EQUAL(load_text(&c, "service:\n  ready_when: some\n"), -EINVAL);
	CU_ASSERT_TRUE(err_has("service.ready_when: 'some' is not one of all_models, any_model"));
	CU_ASSERT_EQUAL(load_text(&c, "service:\n  log_format: xml\n"), -EINVAL);
	CU_ASSERT_TRUE(err_has("service.log_format: 'xml' is not one of text, json"));
	CU_ASSERT_EQUAL(load_text(&c, "service:\n  max_inflight_per_client: 9000\n"), -EINVAL);
	CU_ASSERT_TRUE(err_has("service.max_inflight_per_client: 9000 is above"));
	CU_ASSERT_EQUAL(load_text(&c, "http:\n  tls_cert: /c.pem\n"), -EINVAL);
	CU_ASSERT_TRUE(err_has("give both tls_cert and tls_key"));
	CU_ASSERT_EQUAL(load_text(&c, "http:\n  timeout_ms: 5s\n"), -EINVAL);
	CU_ASSERT_EQUAL(load_text(&c, "udp:\n  sources:\n    - {tenant: 1, prefixes: "
				      "[\"192.0.2.1/24\"]}\n"),
			-EINVAL);
	CU_ASSERT_TRUE(err_has("udp.sources[0].prefixes[0]: '192.0.2.1/24' is not an IPv4 prefix"));
	CU_ASSERT_EQUAL(load_text(&c, "udp:\n  sources:\n    - {tenant: 1}\n"), -EINVAL);
	CU_ASSERT_TRUE(err_has("udp.sources[0]: needs 'tenant' and 'prefixes'"));
	CU_ASSERT_EQUAL(load_text(&c, "udp:\n  sources:\n"
				      "    - {tenant: 1, prefixes: [\"10.0.0.0/8\"]}\n"
				      "    - {tenant: 1, prefixes: [\"10.0.0.0/8\"]}\n"),
			-EINVAL);
	CU_ASSERT_TRUE(err_has("tenant 1 is already udp.sources[0]"));
	CU_ASSERT_EQUAL(mb_config_parse_prefix("0.0.0.0/0", &p), 0);
	CU_ASSERT_EQUAL(p.mask, 0);
	CU_ASSERT_EQUAL(mb_config_parse_prefix("10.0.0.0/33", &p), -EINVAL);
	CU_ASSERT_EQUAL(mb_config_parse_prefix("10.0.0.0/", &p), -EINVAL);
	CU_ASSERT_EQUAL(mb_config_parse_prefix("10.0.0/8", &p), -EINVAL);
	CU_ASSERT_EQUAL(mb_config_parse_prefix("10.0.0.0/8x", &p), -EINVAL);
}

/* service.ingest, service.publish and service.metrics: a socket each (one ipc path, or one
 * TCP port on one address or on every address, twice: a start that hangs or fails) */
static void
test_endpoints_distinct(void)
{
	static const struct {
		const char *yaml, *want;
	} bad[] = {
		{"service:\n  ingest: ipc:///tmp/mb-same.sock\n  publish: "
		 "ipc:///tmp/mb-same.sock\n",
		 "service.publish: 'ipc:///tmp/mb-same.sock' is the socket of service.ingest too: "
		 "service.ingest, service.publish and service.metrics each need a port (or an "
		 "ipc:// path) of their own"},
		{"service:\n  ingest: tcp://127.0.0.1:52110\n  publish: tcp://127.0.0.1:52110\n",
		 "service.publish: 'tcp://127.0.0.1:52110' is on port 52110, which service.ingest "
		 "('tcp://127.0.0.1:52110') listens on too"},
		{"service:\n  ingest: tcp://127.0.0.1:52120\n  publish: tcp://127.0.0.1:52121\n"
		 "  metrics: 127.0.0.1:52120\n",
		 "service.metrics: '127.0.0.1:52120' is on port 52120, which service.ingest"},
		{"service:\n  publish: tcp://127.0.0.1:7500\n  metrics: \"*:7500\"\n",
		 "service.metrics: '*:7500' is on port 7500, which service.publish"},
		{"service:\n  ingest: tcp://*:7500\n  publish: tcp://127.0.0.1:7500\n",
		 "service.publish: 'tcp://127.0.0.1:7500' is on port 7500"},
		{"service:\n  ingest: tcp://0.0.0.0:7500\n  publish: tcp://eth0:7500\n",
		 "service.publish: 'tcp://eth0:7500' is on port 7500"},
		{"service:\n  ingest: tcp://[::]:7500\n  publish: tcp://127.0.0.1:7500\n",
		 "service.publish: 'tcp://127.0.0.1:7500' is on port 7500"},
		{"service:\n  ingest: tcp://localhost:7500\n  metrics: 127.0.0.1:7500\n",
		 "service.metrics: '127.0.0.1:7500' is on port 7500"},
		{"service:\n  ingest: tcp://[::1]:7500\n  publish: \"tcp://[0:0::1]:7500\"\n",
		 "service.publish: 'tcp://[0:0::1]:7500' is on port 7500"},
		/* one key set, the other's default: said so */
		{"service:\n  metrics: 127.0.0.1:7400\n",
		 "service.metrics: '127.0.0.1:7400' is on port 7400, which service.ingest (its "
		 "default, 'tcp://127.0.0.1:7400') listens on too"},
		{"service:\n  ingest: tcp://127.0.0.1:7401\n",
		 "service.publish: 'tcp://127.0.0.1:7401' (the default) is on port 7401, which "
		 "service.ingest ('tcp://127.0.0.1:7401') listens on too"},
		/* both set, one to the default's value: not called a default (it was) */
		{"service:\n  ingest: tcp://127.0.0.1:7400\n  publish: tcp://127.0.0.1:7400\n",
		 "service.publish: 'tcp://127.0.0.1:7400' is on port 7400, which service.ingest "
		 "('tcp://127.0.0.1:7400') listens on too"},
	};
	static const char *const good[] = {
		"service:\n  ingest: tcp://127.0.0.1:7500\n  publish: tcp://127.0.0.2:7500\n",
		"service:\n  ingest: tcp://127.0.0.1:*\n  publish: tcp://127.0.0.1:*\n",
		("service:\n  ingest: ipc:///tmp/mb-a\n  publish: ipc:///tmp/mb-b\n"
		 "  metrics: 127.0.0.1:7400\n"),
		"service:\n  ingest: tcp://127.0.0.1:7402\n  metrics: \"off\"\n",
		"service:\n  ingest: tcp://eth0:7500\n  publish: tcp://eth1:7500\n",
	};
	struct mb_config c;
	char why[512];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CU_ASSERT_TRUE(refused_with(bad[i].want, "%s", bad[i].yaml));
		CU_ASSERT_TRUE(err_has("/tmp/mb_test_")); /* names the file */
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		CU_ASSERT_EQUAL(load_text(&c, good[i]), 0);
		if (g_err[0] != '\0')
			printf("\n    refused: %s", g_err);
		mb_config_fini(&c);
	}
	/* after overrides (the command line's --ingest, --publish, --metrics): checked again */
	mb_config_defaults(&c);
	CU_ASSERT_EQUAL(mb_config_check_endpoints(&c, why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(
		mb_config_set(&c, "service.publish", "tcp://127.0.0.1:7400", why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(mb_config_check_endpoints(&c, why, sizeof(why)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "service.publish: 'tcp://127.0.0.1:7400' is on port "
					   "7400, which service.ingest"));
	CU_ASSERT_EQUAL(
		mb_config_set(&c, "service.ingest", "tcp://127.0.0.1:7401", why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(mb_config_check_endpoints(&c, why, sizeof(why)), 0); /* swapped */
	CU_ASSERT_EQUAL(mb_config_set(&c, "service.metrics", "*:7401", why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(mb_config_check_endpoints(&c, why, sizeof(why)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "service.metrics: '*:7401' is on port 7401"));
	mb_config_fini(&c);
}

/* the UDP rx queues of all ports together: a polled thread each, MB_PLACEMENT_MAX_RX in all */
static void
test_rx_queues_in_all(void)
{
	struct mb_config c;
	char want[128];

	snprintf(want, sizeof(want), "udp.ports[0].rx_queues: %d rx queues in all, at most %d",
		 MB_PLACEMENT_MAX_RX + 1, MB_PLACEMENT_MAX_RX);
	CU_ASSERT_TRUE(refused_with(want,
				    "udp:\n  ports:\n    - {device: net_null0, address: 192.0.2.1, "
				    "rx_queues: %d}\n",
				    MB_PLACEMENT_MAX_RX + 1));
	snprintf(want, sizeof(want),
		 "udp.ports[2].rx_queues: %d rx queues in all (udp.ports[0..2]), at most %d",
		 MB_PLACEMENT_MAX_RX + 1, MB_PLACEMENT_MAX_RX);
	CU_ASSERT_TRUE(refused_with(want,
				    "udp:\n  ports:\n"
				    "    - {device: net_null0, address: 192.0.2.1, rx_queues: %d}\n"
				    "    - {device: net_null1, address: 192.0.2.2}\n"
				    "    - {device: net_null2, address: 192.0.2.3, rx_queues: 2}\n",
				    MB_PLACEMENT_MAX_RX - 2));
	CU_ASSERT_EQUAL(load_text(&c,
				  "udp:\n  ports:\n"
				  "    - {device: net_null0, address: 192.0.2.1, rx_queues: 16}\n"
				  "    - {device: net_null1, address: 192.0.2.2, rx_queues: 16}\n"),
			0);
	CU_ASSERT_EQUAL(c.n_udp_ports, 2);
	mb_config_fini(&c);
}

/* a payload larger than the bytes that may be in flight could never be admitted */
static void
test_payload_within_inflight_bytes(void)
{
	struct mb_config c;

	CU_ASSERT_TRUE(refused_with("service.max_payload_bytes: 4194304 is above "
				    "service.max_inflight_bytes (1048576): a request that large "
				    "could never be admitted",
				    "service:\n  max_inflight_bytes: 1048576\n"
				    "  max_payload_bytes: 4194304\n"));
	CU_ASSERT_TRUE(refused_with("service.max_inflight_bytes: 2097152 is below "
				    "service.max_payload_bytes (8388608, the default)",
				    "service:\n  max_inflight_bytes: 2097152\n"));
	CU_ASSERT_EQUAL(load_text(&c, "service:\n  max_inflight_bytes: 1048576\n"
				      "  max_payload_bytes: 1048576\n"),
			0);
	CU_ASSERT_EQUAL(c.max_payload_bytes, 1048576);
	mb_config_fini(&c);
}

/* YAML's null for a string key is no value, as for a number key; quoted it is text */
static void
test_text_null(void)
{
	static const char *const nulls[] = {"~", "null", "Null", "NULL", "", "!!null", "&a ~"};
	static const struct {
		const char *written, *read;
	} texts[] = {
		{"\"~\"", "~"},	      {"'null'", "null"},	 {"\"\"", ""},	 {"!!str ~", "~"},
		{"!!str", ""},	      {"&t !!str NULL", "NULL"}, {"~/w", "~/w"}, {"nullx", "nullx"},
		{"\"NULL\"", "NULL"}, {"|\n  ~\n", "~\n"},
	};
	struct mb_config c;
	char yaml[256];

	for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++) {
		CU_ASSERT_TRUE(refused_with("weights_dir: no value; expected a "
					    "string (quote \"~\" or \"null\"",
					    "weights_dir: %s\n", nulls[i]));
		CU_ASSERT_TRUE(refused_with("http.token_file: no value; expected a string",
					    "http:\n  token_file: %s\n", nulls[i]));
		CU_ASSERT_TRUE(refused_with("models[0].plugin: no value; expected a string",
					    "models:\n  - name: mine\n    plugin: %s\n", nulls[i]));
		CU_ASSERT_TRUE(refused_with("service.metrics: no value; expected a string",
					    "service:\n  metrics: %s\n", nulls[i]));
		CU_ASSERT_TRUE(refused_with("eal.args[1]: no value",
					    "eal:\n  args:\n    - -l\n    - %s\n", nulls[i]));
	}
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		snprintf(yaml, sizeof(yaml),
			 "# é, ü: characters of two bytes before it\n"
			 "weights_dir: %s\n",
			 texts[i].written);
		CU_ASSERT_EQUAL(load_text(&c, yaml), 0);
		if (strcmp(c.weights_dir, texts[i].read) != 0)
			printf("\n    %s: read '%s' (%s)", texts[i].written, c.weights_dir, g_err);
		CU_ASSERT_STRING_EQUAL(c.weights_dir, texts[i].read);
		mb_config_fini(&c);
	}
	/* after a byte order mark, and a CRLF line */
	CU_ASSERT_EQUAL(load_text(&c, "\xef\xbb\xbfservice:\r\n  log_level: info\r\n"
				      "weights_dir: !!str ~\r\n"),
			0);
	CU_ASSERT_STRING_EQUAL(c.weights_dir, "~");
	mb_config_fini(&c);
	CU_ASSERT_TRUE(refused_with("line 2, column 14: weights_dir: no value",
				    "\xef\xbb\xbf# \xc3\xa9\r\nweights_dir: ~\r\n"));
}

/* bounds as the reference writes them: 1000000, not 1e+06 */
static void
test_bounds_as_written(void)
{
	char b[32];

	CU_ASSERT_TRUE(
		refused_with("models[0].item_units_per_second: -1 is out of range 0..1000000",
			     "models:\n  - name: identity\n    item_units_per_second: -1\n"));
	CU_ASSERT_TRUE(refused_with("tenants.default_rate: 0.0009 is out of range 0 or "
				    "0.001..1000000000",
				    "tenants:\n  default_rate: 0.0009\n"));
	CU_ASSERT_TRUE(refused_with("tenants.limits[0].rate: 2e+09 is out of range 0 or "
				    "0.001..1000000000",
				    "tenants:\n  limits:\n    - {tenant: 1, rate: 2e9}\n"));
	CU_ASSERT_STRING_EQUAL(mb_config_shortest(b, sizeof(b), 1e6), "1000000");
	CU_ASSERT_STRING_EQUAL(mb_config_shortest(b, sizeof(b), 1e9), "1000000000");
	CU_ASSERT_STRING_EQUAL(mb_config_shortest(b, sizeof(b), 0.05), "0.05");
	CU_ASSERT_STRING_EQUAL(mb_config_shortest(b, sizeof(b), -0.0), "0");
	CU_ASSERT_STRING_EQUAL(mb_config_shortest(b, sizeof(b), 1000000001), "1000000001");
	CU_ASSERT_STRING_EQUAL(mb_config_shortest(b, sizeof(b), 4e9), "4e+09");
}

/* service.metrics: HOST:PORT or off; not "", not a port with a leading zero */
static void
test_metrics_forms(void)
{
	struct mb_config c;
	char host[64];
	uint16_t port;

	CU_ASSERT_TRUE(refused_with("service.metrics: '' is not HOST:PORT", "service:\n  metrics: "
									    "\"\"\n"));
	CU_ASSERT_TRUE(refused_with("service.metrics: '127.0.0.1:052232' is not HOST:PORT (IPv4, "
				    "localhost or *; port 1..65535, no leading zero), or \"off\"",
				    "service:\n  metrics: 127.0.0.1:052232\n"));
	CU_ASSERT_EQUAL(load_text(&c, "service:\n  metrics: \"off\"\n"), 0);
	CU_ASSERT_STRING_EQUAL(c.metrics, "");
	mb_config_fini(&c);
	mb_config_defaults(&c);
	CU_ASSERT_EQUAL(mb_config_set(&c, "service.metrics", "", g_err, sizeof(g_err)), -EINVAL);
	CU_ASSERT_STRING_EQUAL(c.metrics, "127.0.0.1:7402"); /* unchanged */
	mb_config_fini(&c);
	CU_ASSERT_EQUAL(mb_config_parse_hostport("127.0.0.1:052232", host, sizeof(host), &port),
			-EINVAL);
	CU_ASSERT_EQUAL(mb_config_parse_hostport("127.0.0.1:+80", host, sizeof(host), &port),
			-EINVAL);
	CU_ASSERT_EQUAL(mb_config_parse_hostport("127.0.0.1: 80", host, sizeof(host), &port),
			-EINVAL);
	CU_ASSERT_EQUAL(mb_config_parse_hostport("127.0.0.1:65535", host, sizeof(host), &port), 0);
	CU_ASSERT_EQUAL(port, 65535);
}

/* an unknown key points at the reference as installed, not at the source tree */
static void
test_reference_installed(void)
{
	CU_ASSERT_TRUE(
		refused_with("line 2, column 3: service: unexpected key 'ingets' (see " MB_DOC_DIR
			     "/mediabatch.yaml)",
			     "service:\n  ingets: tcp://127.0.0.1:1\n"));
	CU_ASSERT_PTR_NULL(strstr(g_err, "deploy/mediabatch.yaml"));
}

/* lists and strings past the schema's limits: the count (or length) and the limit */
static void
test_list_limits(void)
{
	char y[8192];
	size_t n;
	struct mb_config c;

	n = (size_t)snprintf(y, sizeof(y), "devices:\n  cuda:\n    gpus:\n");
	for (int i = 0; i <= MB_CONFIG_GPUS_MAX; i++)
		n += (size_t)snprintf(y + n, sizeof(y) - n, "      - %d\n", i);
	/* the entry one too many: line 4 + 16, the 17th; not [15] */
	CU_ASSERT_TRUE(refused_with("line 20, column 9: devices.cuda.gpus: 17 entries, at most 16",
				    "%s", y));
	CU_ASSERT_TRUE(refused_with("devices.cuda.gpus: 17 entries, at most 16",
				    "devices:\n  cuda:\n    gpus: [0,1,2,3,4,5,6,7,8,9,10,11,12,13,"
				    "14,15,16]\n"));
	CU_ASSERT_EQUAL(load_text(&c, "devices:\n  cuda:\n    gpus: [0,1,2,3,4,5,6,7,8,9,10,11,12,"
				      "13,14,15]\n"),
			0);
	CU_ASSERT_EQUAL(c.n_cuda_gpus, 16);
	mb_config_fini(&c);
	n = (size_t)snprintf(y, sizeof(y), "eal:\n  args: [");
	for (int i = 0; i < 129; i++)
		n += (size_t)snprintf(y + n, sizeof(y) - n, "%s-x%d", i ? ", " : "", i);
	snprintf(y + n, sizeof(y) - n, "]\n");
	CU_ASSERT_TRUE(refused_with("eal.args: 129 entries, at most 128", "%s", y));
	n = (size_t)snprintf(y, sizeof(y), "udp:\n  ports:\n");
	for (int i = 0; i < 17; i++)
		n += (size_t)snprintf(y + n, sizeof(y) - n,
				      "    - {device: net_null%d, address: 192.0.2.%d}\n", i,
				      i + 1);
	CU_ASSERT_TRUE(
		refused_with("line 19, column 7: udp.ports: 17 entries, at most 16", "%s", y));
	CU_ASSERT_TRUE(refused_with("line 2, column 10: eal.args[0]: empty; expected 1 to 1024 "
				    "characters",
				    "eal:\n  args: [\"\"]\n"));
	CU_ASSERT_TRUE(refused_with("line 2, column 11: models[0].name: 'abcdefghijklmnopq' is "
				    "longer than 16 characters",
				    "models:\n  - name: abcdefghijklmnopq\n"));
	CU_ASSERT_TRUE(refused_with(
		"models[0].name: "
		"'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...' "
		"is longer than 16 characters",
		"models:\n  - name: "
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"));
	CU_ASSERT_TRUE(refused_with("security.clients[0].name: '",
				    "security:\n  clients:\n"
				    "    - name: "
				    "%065d\n",
				    0));
	CU_ASSERT_TRUE(err_has("is longer than 64 characters"));
}

/* What a reload would leave for the next start: the differing keys in the reference's order,
 * lists compared entry by entry, the live sections left out, a short buffer cut with "..." */
static void
test_restart_keys(void)
{
	static const char base[] =
		"eal:\n  args: [-l, '0']\n"
		"udp:\n  ports:\n    - {device: net_null0, address: 192.0.2.1, cpus: [0]}\n"
		"  sources:\n    - {tenant: 1, prefixes: [10.0.0.0/8]}\n"
		"tenants:\n  default_rate: 5\n";
	static const char other[] =
		"eal:\n  args: [-l, '1']\n"
		"udp:\n  ports:\n    - {device: net_null0, address: 192.0.2.1, cpus: [1]}\n"
		"  sources:\n    - {tenant: 1, prefixes: [10.0.0.0/9]}\n"
		"tenants:\n  default_rate: 7\n"
		"devices:\n  cuda:\n    gpus: [0]\n"
		"http:\n  timeout_ms: 999\n";
	struct mb_config a, b;
	char out[256], small[24];

	CU_ASSERT_EQUAL_FATAL(load_text(&a, base), 0);
	CU_ASSERT_EQUAL_FATAL(load_text(&b, base), 0);
	CU_ASSERT_EQUAL(mb_config_restart_keys(&a, &b, out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "");
	mb_config_fini(&b);
	CU_ASSERT_EQUAL_FATAL(load_text(&b, other), 0); /* tenants differ too: live, not listed */
	CU_ASSERT_EQUAL(mb_config_restart_keys(&a, &b, out, sizeof(out)), 5);
	CU_ASSERT_STRING_EQUAL(out, "eal.args, devices.cuda.gpus, udp.ports, udp.sources, "
				    "http.timeout_ms");
	CU_ASSERT_EQUAL(mb_config_restart_keys(&a, &b, small, sizeof(small)), 5);
	CU_ASSERT_STRING_EQUAL(small, "eal.args, devices.cu...");
	mb_config_fini(&a);
	mb_config_fini(&b);
}

static const struct mb_test_case cases[] = {
	{"embedded default", test_defaults},
	{"security: the allow-list of CURVE keys", test_security},
	{"client and tenant shares, the HTTP endpoint, UDP source prefixes",
	 test_shares_http_sources},
	{"deploy/mediabatch.yaml is exactly the embedded default", test_example_matches_defaults},
	{"udp section: ports, queues, cpus and their errors", test_udp},
	{"devices section: cpu.serve, cuda and their errors", test_devices},
	{"deploy/bare-metal.yaml loads", test_bare_metal_example},
	{"a file overrides what it sets, keeps the rest", test_overrides},
	{"range errors name file, field and range", test_range_errors},
	{"bad values: endpoints, levels, names, duplicates", test_value_errors},
	{"parse errors give line, column and field", test_parse_errors_have_location},
	{"integer keys take digits only: 2k, 5s, 1e3, 0x100 ... are refused", test_strict_integers},
	{"values refused after parsing say their line and column", test_value_errors_located},
	{"float keys take a decimal number: 10/s, inf, nan ... are refused", test_strict_floats},
	{"a number refused names key, value and what to write", test_number_hints},
	{"enabled takes true/false (yes/no, on/off): flase, maybe, 1, n ... are refused",
	 test_strict_booleans},
	{"number and boolean keys take no quotes and no !!str tag: \"100\", !!str 100 ... are "
	 "refused",
	 test_numbers_not_text},
	{"a number beyond its type is too large, not misread", test_numbers_too_large},
	{"one YAML document per file: a second '---' is refused", test_one_document},
	{"syntax errors: line and column of the error itself, from 1", test_syntax_error_positions},
	{"missing file; empty file", test_file_errors_and_empty},
	{"a failed load changes nothing", test_failure_keeps_defaults},
	{"HOST:PORT parsing", test_hostport},
	{"mb_config_set applies the file's rules to one key", test_set},
	{"a key a flag set is named by the flag (--placement)", test_set_flag},
	{"doubtful values in range are warned of, a line each", test_doubts},
	{"models[].precision: f32, f16, bf16; anything else is refused", test_precision},
	{"ingest, publish and metrics: a socket each", test_endpoints_distinct},
	{"udp.ports: at most MB_PLACEMENT_MAX_RX rx queues in all", test_rx_queues_in_all},
	{"max_payload_bytes within max_inflight_bytes", test_payload_within_inflight_bytes},
	{"YAML's null for a string key: no value; quoted, text", test_text_null},
	{"range bounds as the reference writes them", test_bounds_as_written},
	{"service.metrics: HOST:PORT or off, no '' or leading zero", test_metrics_forms},
	{"an unknown key names the installed reference", test_reference_installed},
	{"lists and strings past their limits: count, length, limit", test_list_limits},
	{"the keys a reload leaves for the next start", test_restart_keys},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"config", NULL, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("config_test", suites);
}
