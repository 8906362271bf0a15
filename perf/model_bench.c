/*
 * model_bench.c: the built-in models on the CPU reference device, batch by batch.
 *
 * For each model (logmel, whisper, clap, videomae) and batch size (1, 2, 4, 8, 16, 32) it
 * calls the model's run() directly, as a worker would, on a batch of identical-shape items
 * (generated audio or video, placeholder weights generated here), --runs times, and reports
 * the median batch latency, items/s, the median CPU time of the calling thread per item
 * (which, unlike the wall clock, does not count time the thread waited for a core: the
 * figure to compare on a shared machine), and items/s relative to batch size 1 (the
 * baseline measured in the same run). No daemon, no queueing: this is the model's own cost.
 * Batch sizes above a model's max_batch are measured anyway, to show where batching stops
 * paying; the service never forms them.
 *
 * OpenBLAS runs single-threaded (the service parallelises across workers), so the figures
 * are per worker thread.
 *
 * With --device N the same runs happen on CUDA device N (the models' cuFFT/cuBLAS code,
 * through the same run() a GPU worker calls), after one untimed warm-up batch per size; "cpu
 * ms/item" is then the host thread's own time per item. For logmel a second table then sets
 * the model against its library layers (cuFFT) run alone on the same shapes
 * (mb_models_perf.h): the model's achieved GFLOP/s (the layers' FLOP per item times
 * items/s), the layers' GFLOP/s one item at a time as the model calls them ("as run") and
 * batched in one plan ("best"), the model's share of "best", and from CUDA events in the
 * model's runs the upload and compute time per item and the share of the upload time hidden
 * behind compute ("copy hidden": (upload + compute - device span) / upload, where the span
 * runs from a batch's first upload to its last item's result).
 *
 * Exit status: 0, 1 when a model failed, 2 for bad arguments, 77 when --device names no CUDA
 * device here (the gpu suite's "skipped").
 *
 * The networks (whisper, clap, videomae) run at a published size with placeholder weights
 * in the published layout: whisper-tiny, clap-htsat-unfused and videomae-base by default,
 * --size for the --model named (e.g. --model whisper --size whisper-base), batch sizes 1..8.
 * clap's audio is 48 kHz, the others' 16 kHz. On a GPU the three networks have a second
 * table about their GEMMs instead of library layers: every GEMM one run of the batch issues
 * is recorded (shapes, types, 2*M*N*K each, the attention's batched ones included), the
 * model's achieved TFLOP/s is those FLOP over the run's median latency (the whole run:
 * uploads, log-mel, every kernel), and "cuBLAS alone" is cuBLAS running exactly those GEMMs
 * back to back on random inputs of the same types (mb_cuda_gemms_time); the goal is
 * model/alone >= 0.7. --precision (f32, f16, bf16; default bf16, the service's default) is
 * what their GEMMs read (models[].precision). A model that runs on the CPU only is skipped
 * with --device, and says so.
 *
 * Usage: model_bench [--runs R] [--seconds S] [--model NAME] [--size SIZE] [--device N]
 *                    [--precision P] [--quick]
 *   --seconds S  audio length per item (default 10; whisper/logmel take <= 30, clap <= 10;
 *                whisper pads every item to its 30 s window)
 *   --quick      batch sizes 1 and 2, one run, 1 s of audio, the networks at their test
 *                size "tiny": keeps the program working
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mb_bench.h"
#include "mb_gpu_probe.h"
#include "mb_models.h"
#include "mb_models_perf.h"
#include "mb_weights.h"

/* CPU time of the calling thread, seconds */
static double
thread_cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *
alloc_result(struct mb_model_batch *batch, size_t bytes)
{
	(void)batch;
	return malloc(bytes);
}

struct media {
	struct mb_request_hdr hdr;
	uint8_t *bytes;
};

static void
make_media(struct media *m, const struct mb_model_desc *d, double seconds)
{
	uint64_t seed = 42;

	memset(&m->hdr, 0, sizeof(m->hdr));
	m->hdr.version = 1;
	snprintf(m->hdr.model, sizeof(m->hdr.model), "%s", d->name);
	if (d->media_mask & MB_MEDIA_MASK(MB_MEDIA_RGB24)) {
		uint32_t n = MB_VIDEOMAE_FRAMES * MB_VIDEOMAE_SIZE * MB_VIDEOMAE_SIZE * 3;

		m->hdr.media = MB_MEDIA_RGB24;
		m->hdr.channels = 3;
		m->hdr.frames = MB_VIDEOMAE_FRAMES;
		m->hdr.height = m->hdr.width = MB_VIDEOMAE_SIZE;
		m->hdr.payload_len = n;
		m->bytes = malloc(n);
		for (uint32_t i = 0; i < n; i++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			m->bytes[i] = (uint8_t)(seed >> 56);
		}
	} else {
		uint32_t rate = strcmp(d->name, "clap") == 0 ? MB_CLAP_SAMPLE_RATE : 16000;
		uint32_t n = (uint32_t)(seconds * rate);

		m->hdr.media = MB_MEDIA_PCM_S16LE;
		m->hdr.channels = 1;
		m->hdr.sample_rate = rate;
		m->hdr.payload_len = 2 * n;
		m->bytes = malloc(2 * (size_t)n);
		for (uint32_t i = 0; i < n; i++) {
			int16_t s = (int16_t)(8000 * sin(2 * M_PI * 440 * i / (double)rate));

			m->bytes[2 * i] = (uint8_t)s;
			m->bytes[2 * i + 1] = (uint8_t)((uint16_t)s >> 8);
		}
	}
}

struct gpu_row {
	int bs;
	double items_per_s;
	struct mb_cuda_timing t;
	/* the networks: one run's GEMMs, and cuBLAS running them alone */
	double gemm_flop; /* per batch */
	double alone_ms;  /* per batch, 0 when not measured */
	uint32_t shapes;
	double batched_flop; /* the attention's strided-batched GEMMs */
	char why[160];	     /* why not measured */
};

/* The second table for the networks (--device): their GEMMs against cuBLAS alone. */
static void
print_net_table(const struct mb_model_desc *d, const struct gpu_row *rows, int n, const char *prec)
{
	printf("\n%-9s %5s %12s %10s %10s %12s %7s %7s  %s\n", d->name, "batch", "GEMM GFLOP",
	       "attention", "model", "cuBLAS alone", "model/", "GEMM", "precision");
	printf("%-9s %5s %12s %10s %10s %12s %7s %7s\n", "", "", "per item", "share", "TFLOP/s",
	       "TFLOP/s", "alone", "shapes");
	for (int i = 0; i < n; i++) {
		const struct gpu_row *r = &rows[i];
		double batch_s = r->bs / r->items_per_s;

		if (r->alone_ms <= 0) {
			printf("%-9s %5d  GEMMs alone: %s\n", "", r->bs, r->why);
			continue;
		}
		printf("%-9s %5d %12.2f %9.1f%% %10.1f %12.1f %7.2f %7u  %s\n", "", r->bs,
		       r->gemm_flop / r->bs * 1e-9,
		       r->gemm_flop > 0 ? 100 * r->batched_flop / r->gemm_flop : 0,
		       r->gemm_flop / batch_s * 1e-12, r->gemm_flop / (r->alone_ms * 1e-3) * 1e-12,
		       r->alone_ms * 1e-3 / batch_s, r->shapes, prec);
	}
}

/* One more run of @p b with every GEMM recorded, then cuBLAS alone on them: into @p row. */
static void
measure_gemms(const struct mb_model_desc *d, void *state, struct mb_model_batch *b,
	      const struct media *m, int device, struct gpu_row *row)
{
	struct mb_cuda_gemm_list l;
	int rc, failed = 0;

	row->alone_ms = 0;
	snprintf(row->why, sizeof(row->why), "no GEMMs recorded (this build has no CUDA)");
	if (mb_models_gpu_gemm_record(true) < 0)
		return;
	for (uint32_t i = 0; i < b->n_items; i++)
		b->items[i] = (struct mb_model_item){
			.hdr = &m->hdr, .payload = m->bytes, .payload_len = m->hdr.payload_len};
	rc = d->run(state, b);
	for (uint32_t i = 0; i < b->n_items; i++) {
		failed |= b->items[i].failed;
		free(b->items[i].result);
	}
	mb_models_gpu_gemm_take(&l);
	mb_models_gpu_gemm_record(false);
	if (rc != 0 || failed) {
		snprintf(row->why, sizeof(row->why), "the recorded run failed");
		return;
	}
	row->gemm_flop = l.flop;
	row->shapes = l.n;
	row->batched_flop = 0;
	for (uint32_t i = 0; i < l.n; i++)
		if (l.v[i].batch > 1)
			row->batched_flop += 2.0 * l.v[i].m * (double)l.v[i].n * l.v[i].k *
					     l.v[i].batch * l.v[i].count;
	if (l.dropped > 0)
		snprintf(row->why, sizeof(row->why), "%u GEMM calls beyond the list's %d shapes",
			 l.dropped, MB_CUDA_GEMMS_MAX);
	else if (mb_models_gpu_gemms_time(device, &l, &row->alone_ms, row->why, sizeof(row->why)) <
		 0)
		row->alone_ms = 0;
}

/* The second table (--device): the model against its layers alone, and the overlap. */
static void
print_gpu_table(const struct mb_model_desc *d, const struct gpu_row *rows, int n, double seconds,
		int device)
{
	char reason[256];

	printf("\n%-9s %5s %10s %10s %10s %10s %7s %10s %10s %7s\n", d->name, "batch", "GFLOP/item",
	       "model GF/s", "as run", "best", "model/", "upload", "compute", "copy");
	printf("%-9s %5s %10s %10s %10s %10s %7s %10s %10s %7s\n", "", "", "", "", "GF/s", "GF/s",
	       "best", "ms/item", "ms/item", "hidden");
	for (int i = 0; i < n; i++) {
		const struct gpu_row *r = &rows[i];
		struct mb_cuda_layers L;
		double up = r->t.items ? r->t.upload_ms / (double)r->t.items : 0;
		double comp = r->t.items ? r->t.compute_ms / (double)r->t.items : 0;
		double hidden =
			r->t.upload_ms > 0
				? (r->t.upload_ms + r->t.compute_ms - r->t.span_ms) / r->t.upload_ms
				: 0;
		int rc = mb_models_gpu_layers(d->name, device, (uint32_t)(seconds * 16000),
					      (uint32_t)r->bs, &L, reason, sizeof(reason));

		hidden = hidden < 0 ? 0 : hidden > 1 ? 1 : hidden;
		if (rc < 0) {
			printf("%-9s %5d  layers alone: %s\n", "", r->bs, reason);
			continue;
		}
		printf("%-9s %5d %10.3f %10.1f %10.1f %10.1f %7.2f %10.3f %10.3f %6.0f%%\n", "",
		       r->bs, L.flop_per_item * 1e-9, L.flop_per_item * r->items_per_s * 1e-9,
		       L.flop_per_item / L.ms_as_run * 1e-6, L.flop_per_item / L.ms_best * 1e-6,
		       L.ms_best * r->items_per_s * 1e-3, up, comp, hidden * 100);
	}
}

/* a file, or a checkpoint directory of files */
static void
remove_tree(const char *path)
{
	char cmd[600];

	if (unlink(path) == 0)
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd) != 0)
		fprintf(stderr, "model_bench: could not remove %s\n", path);
}

static int
bench_model(const struct mb_model_desc *d, const int *sizes, int n_sizes, int runs, double seconds,
	    const char *dir, int device, const char *net_size, const char *prec)
{
	const struct mb_builtin_weights *bw = mb_builtin_weights_of(d->name);
	struct mb_model_load_args args = {.device = device, .numa_node = -1};
	struct mb_model_item items[32];
	struct media m;
	char path[256], reason[512];
	void *state = NULL, *worker = NULL;
	struct gpu_row rows[8];
	struct mb_cuda_timing warm;
	int n_rows = 0;
	double base = 0;
	int rc;

	if (mb_builtin_is_net(d->name)) {
		enum mb_net_precision p = strcmp(prec, "f32") == 0   ? MB_NET_F32
					  : strcmp(prec, "f16") == 0 ? MB_NET_F16
								     : MB_NET_BF16;

		mb_builtin_net_set_precision(d->name, p);
		/* a placeholder checkpoint at the size asked for, in the published layout */
		snprintf(path, sizeof(path), "%s/%s", dir, d->name);
		rc = mb_builtin_net_placeholder(d->name, net_size, path, MB_WEIGHTS_DEFAULT_SEED,
						"F32", 0, reason, sizeof(reason));
		if (rc < 0) {
			fprintf(stderr, "model_bench: %s\n", reason);
			return rc;
		}
		args.weights_path = path;
	} else if (bw != NULL) {
		snprintf(path, sizeof(path), "%s/%s.safetensors", dir, d->name);
		rc = mb_weights_generate(path, bw->specs, bw->n, MB_WEIGHTS_DEFAULT_SEED, reason,
					 sizeof(reason));
		if (rc < 0) {
			fprintf(stderr, "model_bench: %s\n", reason);
			return rc;
		}
		args.weights_path = path;
	}
	rc = d->load(&args, &state, reason, sizeof(reason));
	if (args.weights_path != NULL)
		remove_tree(path);
	if (rc != 0) {
		fprintf(stderr, "model_bench: %s: %s\n", d->name, reason);
		return rc;
	}
	if (net_size != NULL)
		printf("%s at size %s (placeholder weights)%s%s\n", d->name, net_size,
		       device >= 0 ? ", GEMMs in " : "", device >= 0 ? prec : "");
	if (d->worker_init != NULL && (rc = d->worker_init(state, device, &worker)) != 0) {
		fprintf(stderr, "model_bench: %s: worker set-up failed on device %d: %s\n", d->name,
			device, strerror(-rc));
		d->unload(state);
		return rc;
	}
	if (device >= 0 && mb_builtin_is_net(d->name)) {
		uint64_t wb = 0, bb = 0, ib = 0;

		/* what the service admits this model's batches by (its device units) */
		if (mb_builtin_net_gpu_bytes(d->name, state, &wb, &bb, &ib) == 0)
			printf("%s device memory: a worker keeps %.1f MiB; a batch of n takes "
			       "%.1f + n x %.1f MiB while it runs\n",
			       d->name, wb / 1048576.0, bb / 1048576.0, ib / 1048576.0);
	}
	make_media(&m, d, seconds);
	if (d->check(&m.hdr, reason, sizeof(reason)) != 0) {
		fprintf(stderr, "model_bench: %s: %s\n", d->name, reason);
		rc = -EINVAL;
		goto out;
	}
	for (int s = 0; s < n_sizes; s++) {
		int bs = sizes[s];
		double lat[64], cpu[64], med;
		struct mb_model_batch b = {.items = items,
					   .n_items = (uint32_t)bs,
					   .device = device,
					   .worker = worker,
					   .alloc_result = alloc_result};

		for (int r = device >= 0 ? -1 : 0; r < runs; r++) { /* r -1: GPU warm-up */
			double t0, c0;

			if (r == 0 && device >= 0) /* drop the warm-up's times */
				mb_models_gpu_timing_take(&warm);

			for (int i = 0; i < bs; i++)
				items[i] = (struct mb_model_item){.hdr = &m.hdr,
								  .payload = m.bytes,
								  .payload_len = m.hdr.payload_len};
			c0 = thread_cpu();
			t0 = mb_bench_now();
			rc = d->run(state, &b);
			if (r >= 0) {
				lat[r] = mb_bench_now() - t0;
				cpu[r] = thread_cpu() - c0;
			}
			for (int i = 0; i < bs; i++) {
				if (items[i].failed)
					rc = -EIO;
				free(items[i].result);
			}
			if (rc != 0) {
				fprintf(stderr, "model_bench: %s: batch of %d failed\n", d->name,
					bs);
				goto out;
			}
		}
		med = mb_bench_median(lat, runs);
		if (s == 0)
			base = bs / med;
		if (device >= 0 && n_rows < 8) {
			memset(&rows[n_rows], 0, sizeof(rows[n_rows]));
			mb_models_gpu_timing_take(&rows[n_rows].t);
			rows[n_rows].bs = bs;
			rows[n_rows].items_per_s = bs / med;
			if (net_size != NULL)
				measure_gemms(d, state, &b, &m, device, &rows[n_rows]);
			n_rows++;
		}
		if (m.hdr.media == MB_MEDIA_RGB24)
			snprintf(reason, sizeof(reason), "16x224x224 RGB24");
		else
			snprintf(reason, sizeof(reason), "%.1f s PCM16", seconds);
		printf("%-9s %-18s %5d %10.1f %12.2f %12.2f %12.2f %8.2f%s\n", d->name, reason, bs,
		       bs / med, med * 1e3, med * 1e3 / bs, mb_bench_median(cpu, runs) * 1e3 / bs,
		       bs / med / base, (uint32_t)bs > d->max_batch ? "  (> max_batch)" : "");
	}
	if (device >= 0 && net_size != NULL)
		print_net_table(d, rows, n_rows, prec);
	else if (device >= 0)
		print_gpu_table(d, rows, n_rows, seconds, device);
out:
	if (d->worker_fini != NULL)
		d->worker_fini(state, worker);
	d->unload(state);
	free(m.bytes);
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"runs", required_argument, NULL, 'r'},
		{"seconds", required_argument, NULL, 's'},
		{"model", required_argument, NULL, 'm'},
		{"quick", no_argument, NULL, 'q'},
		{"device", required_argument, NULL, 'd'},
		{"size", required_argument, NULL, 'z'},
		{"precision", required_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	static const int all_sizes[] = {1, 2, 4, 8, 16, 32};
	const char *size = NULL, *prec = "bf16";
	static const char *const models[] = {"logmel", "whisper", "clap", "videomae"};
	int runs = 5, n_sizes = 6, c, rc = 0, device = -1, quick = 0;
	double seconds = 10.0;
	const char *only = NULL, *net_size;
	char dir[] = "/tmp/mb_model_bench_XXXXXX";

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			runs = atoi(optarg);
			break;
		case 's':
			seconds = atof(optarg);
			break;
		case 'm':
			only = optarg;
			break;
		case 'd':
			device = atoi(optarg);
			break;
		case 'q':
			runs = 1;
			n_sizes = 2;
			seconds = 1.0;
			quick = 1;
			break;
		case 'z':
			size = optarg;
			break;
		case 'p':
			prec = optarg;
			break;
		case 'h':
			printf("usage: model_bench [--runs R] [--seconds S] [--model NAME] "
			       "[--size SIZE] [--device CUDA_ORDINAL] [--precision f32|f16|bf16] "
			       "[--quick]\n");
			return 0;
		default:
			return 2;
		}
	}
	if (runs < 1 || runs > 64 || seconds < 0.03 || seconds > 30 || device < -1 ||
	    device > 255 ||
	    (strcmp(prec, "f32") != 0 && strcmp(prec, "f16") != 0 && strcmp(prec, "bf16") != 0)) {
		fprintf(stderr, "model_bench: --runs 1..64, --seconds 0.03..30, --device 0..255, "
				"--precision f32|f16|bf16\n");
		return 2;
	}
	if (device >= 0) {
		static struct mb_gpu_probe probe;
		const struct mb_gpu_info *g = NULL;
		int found = mb_gpu_probe(&probe);

		for (int i = 0; i < found; i++)
			if (probe.gpus[i].index == device)
				g = &probe.gpus[i];
		if (g == NULL) {
			/* 77: the gpu suite's "skipped" (model_bench --device 0 --quick) */
			fprintf(stderr, "SKIP: model_bench: no CUDA device %d: %s\n", device,
				probe.count == 0 ? probe.reason : "not among those found");
			return 77;
		}
		mb_models_gpu_timing_enable(true);
		printf("%s (compute capability %d.%d, %d multiprocessors), driver %d, runtime "
		       "%d\n",
		       g->name, g->cc_major, g->cc_minor, g->multiprocessors, probe.driver_version,
		       probe.runtime_version);
	}
	if (mkdtemp(dir) == NULL) {
		perror("model_bench: mkdtemp");
		return 1;
	}
	if (device >= 0)
		printf("CUDA device %d, one worker thread, median of %d run(s) after a warm-up; "
		       "audio items %.1f s\n\n",
		       device, runs, seconds);
	else
		printf("CPU reference models, one thread, median of %d run(s); audio items %.1f "
		       "s\n\n",
		       runs, seconds);
	printf("%-9s %-18s %5s %10s %12s %12s %12s %8s\n", "model", "item", "batch", "items/s",
	       "batch ms", "ms/item", "cpu ms/item", "x batch1");
	for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++) {
		const struct mb_model_desc *d = NULL;

		if (only != NULL && strcmp(only, models[i]) != 0)
			continue;
		for (const struct mb_model_desc *const *p = mb_builtin_models; *p != NULL; p++)
			if (strcmp((*p)->name, models[i]) == 0)
				d = *p;
		if (device >= 0 && !(d->devices & MB_MODEL_ON_CUDA)) {
			printf("(%s runs on the CPU only in this build: not measured on device "
			       "%d)\n",
			       d->name, device);
			continue;
		}
		if (strcmp(models[i], "clap") == 0 && seconds > 10)
			printf("(clap: items cut to 10 s, its limit)\n");
		/* the networks at a published size (whisper-tiny, videomae-base), "tiny" (a test
		 * size) with --quick, or --size for the one --model names */
		net_size = NULL;
		if (mb_builtin_is_net(models[i]))
			net_size = size != NULL && only != NULL	       ? size
				   : quick			       ? "tiny"
				   : strcmp(models[i], "whisper") == 0 ? "whisper-tiny"
				   : strcmp(models[i], "clap") == 0    ? "clap-htsat-unfused"
								       : "videomae-base";
		rc |= bench_model(d, all_sizes,
				  net_size != NULL && n_sizes > 4 ? 4 : n_sizes, /* 1..8 */
				  runs,
				  strcmp(models[i], "clap") == 0 && seconds > 10 ? 10 : seconds,
				  dir, device, net_size, prec) != 0;
	}
	rmdir(dir);
	return rc;
}
