/*
 * mediabatch-weights: write placeholder weight files for the built-in models, or check a
 * weights file against a model.
 *
 *   mediabatch-weights [--out DIR] [--seed N] [MODEL...]   write DIR/MODEL.safetensors
 *   mediabatch-weights --check FILE --model MODEL           check FILE for MODEL
 *
 * Placeholder weights are deterministic (the same seed gives the same bytes everywhere)
 * and meaningless: they let whisper, clap and videomae do their real arithmetic until real
 * weights of the same architecture are loaded. meson runs this at build time into
 * build/weights/, where mediabatchd looks by default.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mb_models.h"
#include "mb_weights.h"

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: mediabatch-weights [--out DIR] [--seed N] [--stamp FILE] [MODEL...]\n"
		"       mediabatch-weights --check FILE --model MODEL\n"
		"\n"
		"Write deterministic placeholder weights (safetensors) for the built-in models\n"
		"(default: all of them) to DIR/MODEL.safetensors, or check a weights file.\n"
		"Placeholder weights make the models compute; their outputs mean nothing until\n"
		"real weights of the same architecture are loaded.\n"
		"\n"
		"  --out DIR      where to write (default: weights); created if missing\n"
		"  --seed N       seed (default %d); the same seed gives the same bytes\n"
		"  --stamp FILE   touch FILE when done (for build systems)\n"
		"  --check FILE   check FILE against --model's tensors (names, F32, shapes)\n"
		"  --model MODEL  the model for --check\n"
		"  --help         this text\n"
		"\n"
		"Models with weights:",
		MB_WEIGHTS_DEFAULT_SEED);
	for (const struct mb_builtin_weights *const *w = mb_builtin_weights; *w != NULL; w++)
		fprintf(f, " %s", (*w)->model);
	fprintf(f, "\n");
}

static int
check(const char *file, const char *model)
{
	const struct mb_builtin_weights *bw = model ? mb_builtin_weights_of(model) : NULL;
	float *out[16] = {NULL};
	char err[512];

	if (bw == NULL) {
		fprintf(stderr, "mediabatch-weights: --check needs --model with one of the models "
				"listed in --help\n");
		return 2;
	}
	if (mb_weights_load(file, bw->specs, bw->n, out, err, sizeof(err)) < 0) {
		fprintf(stderr, "mediabatch-weights: %s\n", err);
		return 1;
	}
	for (uint32_t i = 0; i < bw->n; i++)
		free(out[i]);
	printf("%s: every tensor %s needs is there, F32, with the right shape\n", file, model);
	return 0;
}

static int
generate(const char *dir, uint64_t seed, const struct mb_builtin_weights *bw)
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

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"out", required_argument, NULL, 'o'},
		{"seed", required_argument, NULL, 's'},
		{"stamp", required_argument, NULL, 't'},
		{"check", required_argument, NULL, 'c'},
		{"model", required_argument, NULL, 'm'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *dir = "weights", *stamp = NULL, *check_file = NULL, *model = NULL;
	uint64_t seed = MB_WEIGHTS_DEFAULT_SEED;
	char *end;
	int c, rc = 0;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			dir = optarg;
			break;
		case 's':
			errno = 0;
			seed = strtoull(optarg, &end, 0);
			if (errno != 0 || *end != '\0' || optarg[0] == '\0') {
				fprintf(stderr,
					"mediabatch-weights: --seed: '%s' is not a number\n",
					optarg);
				return 2;
			}
			break;
		case 't':
			stamp = optarg;
			break;
		case 'c':
			check_file = optarg;
			break;
		case 'm':
			model = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (check_file != NULL)
		return check(check_file, model);
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "mediabatch-weights: %s: %s\n", dir, strerror(errno));
		return 1;
	}
	if (optind == argc) {
		for (const struct mb_builtin_weights *const *w = mb_builtin_weights; *w != NULL;
		     w++)
			rc |= generate(dir, seed, *w);
	}
	for (int i = optind; i < argc; i++) {
		const struct mb_builtin_weights *bw = mb_builtin_weights_of(argv[i]);

		if (bw == NULL) {
			fprintf(stderr,
				"mediabatch-weights: '%s' is not a built-in model with weights\n",
				argv[i]);
			return 2;
		}
		rc |= generate(dir, seed, bw);
	}
	if (rc == 0 && stamp != NULL) {
		FILE *f = fopen(stamp, "w");

		if (f == NULL || fprintf(f, "seed %" PRIu64 "\n", seed) < 0 || fclose(f) != 0) {
			fprintf(stderr, "mediabatch-weights: %s: %s\n", stamp, strerror(errno));
			return 1;
		}
	}
	return rc;
}
