/*
 * mediabatch-weights: write placeholder checkpoints for the built-in models, or check a
 * downloaded one.
 *
 *   mediabatch-weights [--out DIR] [--size SIZE] [--dtype T] [--shard-mb N] [--seed N]
 *                      [MODEL...]                      write DIR/MODEL/ (or MODEL.safetensors)
 *   mediabatch-weights --check PATH --model MODEL        load PATH as MODEL, as the service does
 *
 * Networks (whisper, videomae, clap) get a checkpoint directory in exactly the published
 * Hugging Face layout (model.safetensors, or shards and their index, and config.json) at a
 * size of --size: "tiny" (a small test size, not a published one; the build's default) or a
 * published size such as whisper-base. Other models with weights (none among the built-ins
 * today) would get one MODEL.safetensors. Placeholder values are deterministic (the same
 * seed gives the same bytes everywhere) and meaningless: random numbers in the real layout,
 * until a real checkpoint is named in the config. meson runs this at build time into
 * build/weights/, where mediabatchd looks by default.
 *
 * It links the layout library alone (mb_layout.h: libc, jansson, libm), nothing of the
 * server: no models' compute, DPDK, hwloc, ZeroMQ, OpenBLAS, FFTW or CUDA
 * (tests/deploy/weights_deps_test.sh checks it).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mb_build_config.h"
#include "mb_layout.h"
#include "mb_weights.h"

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: mediabatch-weights [--out DIR] [--size SIZE] [--dtype T] [--shard-mb N]\n"
		"                          [--seed N] [--stamp FILE] [MODEL...]\n"
		"       mediabatch-weights --check PATH --model MODEL\n"
		"\n"
		"Write deterministic placeholder weights for the built-in models (default: all),\n"
		"or check a checkpoint. Networks get DIR/MODEL/ in the published Hugging Face\n"
		"layout (model.safetensors or shards + index, config.json and\n"
		"preprocessor_config.json); other models DIR/MODEL.safetensors. Placeholders\n"
		"are random numbers in the real layout: the outputs mean nothing until a real\n"
		"checkpoint is named in the config.\n"
		"\n"
		"  --out DIR      where to write (default: weights); created if missing\n"
		"  --size SIZE    networks' size (default tiny: a small test size, not published)\n"
		"  --dtype T      F32 (default), F16 or BF16\n"
		"  --shard-mb N   shards of at most N MiB with model.safetensors.index.json\n"
		"  --seed N       seed (default %d); the same seed gives the same bytes\n"
		"  --stamp FILE   touch FILE when done (for build systems)\n"
		"  --check PATH   load PATH (a checkpoint directory, .safetensors or index file)\n"
		"                 as --model loads it in the service, and say what it holds\n"
		"  --model MODEL  the model for --check\n"
		"  --help         this text\n"
		"\n"
		"Sizes:\n",
		MB_WEIGHTS_DEFAULT_SEED);
	for (const char *const *m = mb_builtin_with_weights; *m != NULL; m++) {
		const char *const *sizes = mb_builtin_net_sizes(*m);

		if (sizes == NULL)
			continue;
		fprintf(f, "  %-9s", *m);
		for (; *sizes != NULL; sizes++)
			fprintf(f, " %s", *sizes);
		fprintf(f, "\n");
	}
	fprintf(f, "Models with weights:");
	for (const char *const *m = mb_builtin_with_weights; *m != NULL; m++)
		fprintf(f, " %s", *m);
	fprintf(f, "\n");
}

static int
check(const char *path, const char *model)
{
	const struct mb_builtin_weights *bw = model ? mb_builtin_weights_of(model) : NULL;
	float *out[16] = {NULL};
	char err[1024];

	if (model != NULL && mb_builtin_is_net(model)) {
		if (mb_builtin_net_check(model, path, err, sizeof(err)) < 0) {
			fprintf(stderr, "mediabatch-weights: %s\n", err);
			return 1;
		}
		printf("%s\n", err);
		return 0;
	}
	if (bw == NULL) {
		fprintf(stderr, "mediabatch-weights: --check needs --model with one of the models "
				"listed in --help\n");
		return 2;
	}
	if (mb_weights_load(path, bw->specs, bw->n, out, err, sizeof(err)) < 0) {
		fprintf(stderr, "mediabatch-weights: %s\n", err);
		return 1;
	}
	for (uint32_t i = 0; i < bw->n; i++)
		free(out[i]);
	printf("%s: every tensor %s needs is there, F32, with the right shape\n", path, model);
	return 0;
}

struct gen {
	const char *dir, *size, *dtype;
	uint64_t seed, shard_bytes;
	int size_given;
};

static int
generate_net(const struct gen *g, const char *model)
{
	const char *const *sizes = mb_builtin_net_sizes(model);
	const char *size = g->size;
	char path[4096], err[1024];

	/* without --size every network gets its first (test) size; a --size that names one
	 * network's published size applies to that network */
	if (!g->size_given)
		size = sizes[0];
	for (const char *const *s = sizes; *s != NULL && size != NULL; s++)
		if (strcmp(*s, size) == 0)
			size = NULL; /* one of its sizes */
	/* a size it does not come in: a usage error (2), as a bad --dtype is */
	if (size != NULL) {
		fprintf(stderr, "mediabatch-weights: --size %s: %s comes in", size, model);
		for (const char *const *s = sizes; *s != NULL; s++)
			fprintf(stderr, "%s %s", s == sizes ? "" : ",", *s);
		fprintf(stderr, "\n");
		return 2;
	}
	size = g->size_given ? g->size : sizes[0];
	snprintf(path, sizeof(path), "%s/%s", g->dir, model);
	if (mb_builtin_net_placeholder(model, size, path, g->seed, g->dtype, g->shard_bytes, err,
				       sizeof(err)) < 0) {
		fprintf(stderr, "mediabatch-weights: %s\n", err);
		return 1;
	}
	return 0;
}

static int
generate_file(const char *dir, uint64_t seed, const struct mb_builtin_weights *bw)
{
	char path[4096], tmp[4200], err[512];

	snprintf(path, sizeof(path), "%s/%s.safetensors", dir, bw->model);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	if (mb_weights_generate(tmp, bw->specs, bw->n, seed, err, sizeof(err)) < 0) {
		fprintf(stderr, "mediabatch-weights: %s\n", err);
		unlink(tmp);
		return 1;
	}
	if (rename(tmp, path) != 0) { /* atomic: a reader never sees half a file */
		fprintf(stderr, "mediabatch-weights: %s: %s\n", path, strerror(errno));
		unlink(tmp);
		return 1;
	}
	return 0;
}

static int
generate(const struct gen *g, const char *model)
{
	const struct mb_builtin_weights *bw = mb_builtin_weights_of(model);

	if (mb_builtin_is_net(model))
		return generate_net(g, model);
	if (bw == NULL) {
		fprintf(stderr, "mediabatch-weights: '%s' is not a built-in model with weights\n",
			model);
		return 2;
	}
	if (g->size_given) {
		fprintf(stderr, "mediabatch-weights: %s has one size: drop --size\n", model);
		return 2;
	}
	return generate_file(g->dir, g->seed, bw);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"out", required_argument, NULL, 'o'},
		{"seed", required_argument, NULL, 's'},
		{"size", required_argument, NULL, 'z'},
		{"dtype", required_argument, NULL, 'd'},
		{"shard-mb", required_argument, NULL, 'S'},
		{"stamp", required_argument, NULL, 't'},
		{"check", required_argument, NULL, 'c'},
		{"model", required_argument, NULL, 'm'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct gen g = {
		.dir = "weights", .size = "tiny", .dtype = "F32", .seed = MB_WEIGHTS_DEFAULT_SEED};
	const char *stamp = NULL, *check_path = NULL, *model = NULL;
	unsigned long long v;
	char *end;
	int c, rc = 0;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			g.dir = optarg;
			break;
		case 's':
		case 'S':
			errno = 0;
			v = strtoull(optarg, &end, 0);
			if (errno != 0 || *end != '\0' || optarg[0] == '\0' ||
			    (c == 'S' && (v == 0 || v > 1048576))) {
				fprintf(stderr, "mediabatch-weights: --%s: '%s' is not %s\n",
					c == 's' ? "seed" : "shard-mb", optarg,
					c == 's' ? "a number" : "a size in MiB (1..1048576)");
				return 2;
			}
			if (c == 's')
				g.seed = v;
			else
				g.shard_bytes = v << 20;
			break;
		case 'z':
			g.size = optarg;
			g.size_given = 1;
			break;
		case 'd':
			if (strcmp(optarg, "F32") != 0 && strcmp(optarg, "F16") != 0 &&
			    strcmp(optarg, "BF16") != 0) {
				fprintf(stderr,
					"mediabatch-weights: --dtype: '%s'; use F32, F16 or BF16\n",
					optarg);
				return 2;
			}
			g.dtype = optarg;
			break;
		case 't':
			stamp = optarg;
			break;
		case 'c':
			check_path = optarg;
			break;
		case 'm':
			model = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("mediabatch-weights %s\n", MB_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (check_path != NULL)
		return check(check_path, model);
	if (mkdir(g.dir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "mediabatch-weights: %s: %s\n", g.dir, strerror(errno));
		return 1;
	}
	if (optind == argc && g.size_given) {
		fprintf(stderr, "mediabatch-weights: --size needs the model(s) to write\n");
		return 2;
	}
	if (optind == argc)
		for (const char *const *m = mb_builtin_with_weights; *m != NULL; m++)
			rc |= generate(&g, *m);
	for (int i = optind; i < argc; i++) {
		int r = generate(&g, argv[i]);

		if (r == 2)
			return 2;
		rc |= r;
	}
	if (rc == 0 && stamp != NULL) {
		FILE *f = fopen(stamp, "w");
		bool bad = f == NULL || fprintf(f, "seed %" PRIu64 "\n", g.seed) < 0;

		if (f != NULL && fclose(f) != 0) /* closed whatever fprintf() did */
			bad = true;
		if (bad) {
			fprintf(stderr, "mediabatch-weights: %s: %s\n", stamp, strerror(errno));
			return 1;
		}
	}
	return rc;
}
