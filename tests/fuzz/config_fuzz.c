/*
 * config_fuzz.c: libFuzzer target for the YAML configuration loader (core/config.c).
 *
 * The input is a configuration file: the loader reads only paths, so each input is written
 * to this process's scratch file first. It is loaded over the embedded default, as
 * mediabatchd --config does. Checked, from core/mb_config.h: the result is 0, -EINVAL or
 * -ENOMEM; a failure leaves the configuration exactly the default and has a message that
 * names the file; a success names the file as the source and every list it loaded is
 * there with its count, its model names short and terminated, and each model override
 * either unset or in its documented range. mb_config_fini() frees everything (LeakSanitizer
 * checks that after every input).
 *
 * The loader logs nothing of its own (libcyaml's messages are captured into the error).
 */
#include "mb_config.h"
#include "mb_fuzz.h"

static struct mb_config g_default;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	mb_fuzz_init(1);
	mb_config_defaults(&g_default);
	return 0;
}

static int
unset_or(int64_t v, int64_t lo, int64_t hi)
{
	return v < 0 || (v >= lo && v <= hi);
}

static MB_FUZZ_UNTRACED void
check_loaded(const struct mb_config *c, const char *path)
{
	MB_FUZZ_CHECK(strcmp(c->source, path) == 0, "source '%s'", c->source);
	MB_FUZZ_CHECK((c->n_models == 0) == (c->models == NULL), "models");
	MB_FUZZ_CHECK((c->n_limits == 0) == (c->limits == NULL), "tenant limits");
	MB_FUZZ_CHECK((c->n_udp_ports == 0) == (c->udp_ports == NULL), "udp ports");
	MB_FUZZ_CHECK((c->n_eal_args == 0) == (c->eal_args == NULL), "eal args");
	for (unsigned int i = 0; i < c->n_eal_args; i++)
		MB_FUZZ_CHECK(c->eal_args[i] != NULL, "eal.args[%u]", i);
	MB_FUZZ_CHECK(c->n_cuda_gpus <= MB_CONFIG_GPUS_MAX, "%u gpus", c->n_cuda_gpus);
	for (unsigned int i = 0; i < c->n_models; i++) {
		const struct mb_model_config *m = &c->models[i];

		MB_FUZZ_CHECK(mb_fuzz_terminated(m->name, sizeof(m->name)) && m->name[0] != '\0',
			      "models[%u].name", i);
		MB_FUZZ_CHECK(mb_fuzz_terminated(m->weights, sizeof(m->weights)) &&
				      mb_fuzz_terminated(m->plugin, sizeof(m->plugin)),
			      "models[%u] paths", i);
		MB_FUZZ_CHECK(unset_or(m->max_batch, 1, 1024) &&
				      unset_or(m->max_delay_us, 0, 10000000) &&
				      unset_or(m->queue_limit, 1, 1000000) &&
				      unset_or(m->default_timeout_ms, 1, 3600000) &&
				      unset_or(m->base_units, 0, 1000000),
			      "models[%u] (%s): a value out of its range", i, m->name);
		MB_FUZZ_CHECK(m->item_units_per_second < 0 || m->item_units_per_second <= 1000000,
			      "models[%u].item_units_per_second %g", i, m->item_units_per_second);
		MB_FUZZ_CHECK(mb_config_model(c, m->name) != NULL, "models[%u] not found", i);
	}
	for (unsigned int i = 0; i < c->n_udp_ports; i++) {
		const struct mb_udp_port_config *p = &c->udp_ports[i];

		MB_FUZZ_CHECK(mb_fuzz_terminated(p->device, sizeof(p->device)) &&
				      mb_fuzz_terminated(p->address_text, sizeof(p->address_text)),
			      "udp.ports[%u] strings", i);
		MB_FUZZ_CHECK(p->rx_queues >= 1 && p->rx_queues <= MB_CONFIG_UDP_MAX_QUEUES &&
				      p->n_cpus <= MB_CONFIG_UDP_MAX_QUEUES,
			      "udp.ports[%u]: %u queues, %u cpus", i, p->rx_queues, p->n_cpus);
	}
	MB_FUZZ_CHECK(mb_fuzz_terminated(c->ingest, sizeof(c->ingest)) &&
			      mb_fuzz_terminated(c->publish, sizeof(c->publish)) &&
			      mb_fuzz_terminated(c->metrics, sizeof(c->metrics)) &&
			      mb_fuzz_terminated(c->weights_dir, sizeof(c->weights_dir)),
		      "strings");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mb_config cfg;
	char err[1024];
	const char *path = mb_fuzz_scratch("config", ".yaml", data, size);
	int rc;

	mb_config_defaults(&cfg);
	memset(err, 0x55, sizeof(err));
	rc = mb_config_load(&cfg, path, err, sizeof(err));
	MB_FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM, "rc %d", rc);
	if (rc == 0) {
		check_loaded(&cfg, path);
	} else {
		MB_FUZZ_CHECK(mb_fuzz_terminated(err, sizeof(err)), "error not terminated");
		MB_FUZZ_CHECK(strncmp(err, path, strlen(path)) == 0, "error '%s' does not name %s",
			      err, path);
		MB_FUZZ_CHECK(memcmp(&cfg, &g_default, sizeof(cfg)) == 0,
			      "a failed load changed the configuration (%s)", err);
	}
	mb_config_fini(&cfg);
	return 0;
}
