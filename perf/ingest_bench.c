/*
 * ingest_bench.c: one rx core of the UDP ingest against dpdk-testpmd's rxonly on the same
 * virtual device and capture, in the same run.
 *
 * The capture holds N single-datagram requests (1 KiB F32 payloads, distinct ids) that
 * net_pcap replays forever (infinite_rx=1). First dpdk-testpmd --forward-mode=rxonly reads
 * it on one forwarding core for S seconds (its Rx-pps, once a second); then this process
 * runs the real ingest path (mb_udp: classify, decode, index, copy into a request buffer,
 * admit, burst-enqueue into a model ring) on one rx thread pinned to the same CPU, with a
 * stand-in pipeline thread that takes the requests off the ring and releases them as the
 * egress would. Prints both rates (medians of the per-second samples) and "ratio: X".
 *
 * The rx core's own work (issue 14): its cycles per frame less what the PMD's receive
 * (rte_eth_rx_burst) cost in the same loop, so the figure means the same on a real NIC,
 * whose receive is not net_pcap's copy of every replayed frame. Both are measured, in the
 * same run: the cycles in all are the rx thread's CPU time (pthread_getcpuclockid) at the
 * TSC rate per frame received, and, separately, as TSC cycles of wall-clock time; the
 * receive is timed with rte_rdtsc() around every call of the port's rx burst function inside
 * the rx loop (the bench puts a timing wrapper into rte_eth_fp_ops[port].rx_pkt_burst, the
 * pointer rte_eth_rx_burst() calls through; net/udp.c is not changed for it). A burst whose
 * timing spans a preemption (over PREEMPTED cycles) is left out of the receive figure, frames
 * and cycles both. After the rx core stopped, a receive-only pass on the same port and
 * capture (rte_eth_rx_burst and rte_pktmbuf_free_bulk, nothing else, on the same CPU) gives
 * the receive's cost without our work beside it, as testpmd's rxonly does. Prints the own
 * work per frame and the bar: "<= 300 cycles of own work per frame: met/MISSED".
 *
 * As context it runs DPDK's ring_perf_autotest (dpdk-test) for rte_ring's cycles per object
 * on this machine at the same moment (skipped with --quick or --no-context).
 *
 *   build/perf/ingest_bench [--quick] [--seconds S] [--packets N] [--testpmd PATH]
 *                           [--cpu C] [--no-context] [--sources T]
 *
 * --testpmd none skips the baseline (to profile the rx core alone). --sources T gives the
 * ingest a source allow-list (udp.sources) of T tenants, the capture's among them, so
 * every frame pays the check (and passes it); without it there is no list, as by default.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pcap/pcap.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mediabatch/protocol.h"
#include "mb_bench.h"
#include "mb_cancel.h"
#include "mb_config.h"
#include "mb_eal.h"
#include "mb_ring.h"
#include "mb_udp.h"
#include "mb_udp_wire.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_pause.h>

#define PAYLOAD 1024
#define OWN_WORK_BAR 300 /* cycles of the rx core's own work per frame (issue 14) */
/* A timed receive longer than this spans a preemption or an interrupt, not the PMD's work
 * (a burst of 32 frames takes some thousands of cycles): left out of the figure. */
#define PREEMPTED 200000
/* Seconds with fewer duplicate frames than this share measure requests (see main). */
#define CLEAN_DUPS 0.05

static char g_pcap[256];
static struct mb_ring *g_queue, *g_results;
static atomic_bool g_stop;

/* ---- the PMD's receive, timed inside the rx loop ---- */

static eth_rx_burst_t g_rx_orig;
static uint16_t g_rx_port;
/* Written by the rx thread only (single writer), read by the main thread once a second. */
static _Atomic uint64_t g_rx_tsc, g_rx_frames, g_rx_calls, g_rx_preempted;

/* The port's rx burst function with rte_rdtsc() on either side: what rte_eth_rx_burst() costs
 * in the rx loop, the rx thread's own work around it left out. The measurement costs about
 * two TSC reads a burst (some 50 cycles here, under 2 a frame of 32): about one of them lands
 * in the receive's figure, both in the rx core's total, so own work is overstated by about
 * one TSC read a burst, not understated. */
static uint16_t
timed_rx(void *rxq, struct rte_mbuf **pkts, uint16_t n)
{
	uint64_t t0 = rte_rdtsc(), dt;
	uint16_t got = g_rx_orig(rxq, pkts, n);

	dt = rte_rdtsc() - t0;
	atomic_store_explicit(&g_rx_calls,
			      atomic_load_explicit(&g_rx_calls, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	if (dt > PREEMPTED) {
		atomic_store_explicit(&g_rx_preempted,
				      atomic_load_explicit(&g_rx_preempted, memory_order_relaxed) +
					      1,
				      memory_order_relaxed);
		return got;
	}
	atomic_store_explicit(&g_rx_tsc, atomic_load_explicit(&g_rx_tsc, memory_order_relaxed) + dt,
			      memory_order_relaxed);
	atomic_store_explicit(&g_rx_frames,
			      atomic_load_explicit(&g_rx_frames, memory_order_relaxed) + got,
			      memory_order_relaxed);
	return got;
}

/* Put the wrapper in (after the port started: rte_eth_dev_start() sets the pointer). */
static int
time_rx_install(const char *name)
{
	if (rte_eth_dev_get_port_by_name(name, &g_rx_port) != 0)
		return -ENODEV;
	g_rx_orig = rte_eth_fp_ops[g_rx_port].rx_pkt_burst;
	rte_eth_fp_ops[g_rx_port].rx_pkt_burst = timed_rx;
	return 0;
}

static void
time_rx_remove(void)
{
	if (g_rx_orig != NULL)
		rte_eth_fp_ops[g_rx_port].rx_pkt_burst = g_rx_orig;
}

/*
 * The receive-only pass: rte_eth_rx_burst() and rte_pktmbuf_free_bulk() on the rx core's
 * port, queue and CPU, for @p seconds, after the rx core stopped (the port still runs). Per
 * frame: the TSC cycles inside rte_eth_rx_burst() (*rx) and of the whole loop (*all).
 */
static void
receive_only(int cpu, int seconds, double *rx, double *all)
{
	struct rte_mbuf *pkts[32];
	uint64_t t_end, t_start, in_rx = 0, frames = 0, rx_frames = 0;
	cpu_set_t set, saved;

	*rx = *all = 0;
	pthread_getaffinity_np(pthread_self(), sizeof(saved), &saved);
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	t_start = rte_rdtsc();
	t_end = t_start + (uint64_t)seconds * rte_get_tsc_hz();
	for (uint64_t t = t_start; t < t_end;) {
		uint64_t t0 = rte_rdtsc(), dt;
		uint16_t n = rte_eth_rx_burst(g_rx_port, 0, pkts, 32);

		t = rte_rdtsc();
		dt = t - t0;
		if (dt <= PREEMPTED) {
			in_rx += dt;
			rx_frames += n;
		}
		frames += n;
		if (n != 0)
			rte_pktmbuf_free_bulk(pkts, n);
	}
	pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved);
	if (rx_frames != 0)
		*rx = (double)in_rx / (double)rx_frames;
	if (frames != 0)
		*all = (double)(rte_rdtsc() - t_start) / (double)frames;
}

static void
write_capture(uint32_t n)
{
	static const uint8_t peer_mac[6] = {0x02, 0, 0, 0, 0, 0x02};
	struct mb_udp_local to = {.ip = htonl(0xc0000201), .port_be = htons(7000)};
	uint8_t d[MB_PROTO_HDR_LEN + PAYLOAD], f[2048];
	pcap_t *dead = pcap_open_dead(DLT_EN10MB, 65535);
	pcap_dumper_t *dump;

	memset(to.mac, 0xff, 6);
	snprintf(g_pcap, sizeof(g_pcap), "/tmp/mb-ingest-bench-%d.pcap", (int)getpid());
	dump = pcap_dump_open(dead, g_pcap);
	if (dump == NULL) {
		fprintf(stderr, "ingest_bench: cannot write %s\n", g_pcap);
		exit(1);
	}
	for (uint32_t i = 0; i < n; i++) {
		struct mb_request_hdr h = {
			.version = 1,
			.request_id = i,
			.tenant_id = 1,
			.media = MB_MEDIA_F32,
			.frames = 1,
			.height = PAYLOAD / 4,
			.payload_len = PAYLOAD,
		};
		struct pcap_pkthdr ph = {0};
		uint32_t len;

		snprintf(h.model, sizeof(h.model), "echo");
		mb_proto_encode_request(&h, d);
		memset(d + MB_PROTO_HDR_LEN, (int)(i & 0xff), PAYLOAD);
		len = mb_udp_build_frame(f, sizeof(f), peer_mac, 0xc0000202,
					 (uint16_t)(40000 + i % 64), &to, 0, d, sizeof(d));
		ph.caplen = ph.len = len;
		pcap_dump((u_char *)dump, &ph, f);
	}
	pcap_dump_close(dump);
	pcap_close(dead);
}

/* CPU time of a thread, in seconds. */
static double
thread_seconds(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- testpmd ---- */

static double
run_testpmd(const char *testpmd, int seconds, int cpu)
{
	char vdev[512], prefix[64], lcores[32], line[512];
	double samples[64];
	int fds[2], n = 0;
	pid_t pid;
	FILE *out;

	snprintf(vdev, sizeof(vdev), "net_pcap0,rx_pcap=%s,infinite_rx=1", g_pcap);
	snprintf(prefix, sizeof(prefix), "mb-testpmd-%d", (int)getpid());
	snprintf(lcores, sizeof(lcores), "0@%d,1@%d", cpu == 0 ? 1 : 0, cpu);
	if (pipe(fds) != 0)
		return 0;
	pid = fork();
	if (pid == 0) {
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		close(fds[0]);
		execlp(testpmd, testpmd, "--no-huge", "--no-pci", "--no-telemetry", "-m", "512",
		       "--file-prefix", prefix, "--vdev", vdev, "--lcores", lcores, "--",
		       "--forward-mode=rxonly", "--stats-period", "1", "--total-num-mbufs=16384",
		       (char *)NULL);
		fprintf(stderr, "exec %s: %s\n", testpmd, strerror(errno));
		_exit(127);
	}
	close(fds[1]);
	out = fdopen(fds[0], "r");
	while (n < seconds + 1 && fgets(line, sizeof(line), out) != NULL) {
		double pps;

		if (sscanf(line, " Rx-pps: %lf", &pps) == 1 && pps > 0)
			samples[n++] = pps;
	}
	kill(pid, SIGINT);
	while (fgets(line, sizeof(line), out) != NULL)
		;
	fclose(out);
	waitpid(pid, NULL, 0);
	if (n < 2) {
		fprintf(stderr, "ingest_bench: testpmd gave no rate (is %s installed?)\n", testpmd);
		return 0;
	}
	/* the first sample includes start-up */
	return mb_bench_median(samples + 1, n - 1);
}

/* ---- context: DPDK's own ring figures on this machine, now ---- */

static void
ring_context(const char *dpdk_test, int cpu)
{
	char prefix[64], lcores[32], line[512];
	double one = -1, two = -1;
	bool two_cores = false;
	int in[2], out[2];
	ssize_t w;
	pid_t pid;
	FILE *f;

	snprintf(prefix, sizeof(prefix), "mb-ringperf-%d", (int)getpid());
	snprintf(lcores, sizeof(lcores), "0@%d,1@%d", cpu == 0 ? 1 : 0, cpu);
	if (pipe(in) != 0 || pipe(out) != 0)
		return;
	pid = fork();
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(out[1], 2);
		close(in[1]);
		close(out[0]);
		execlp(dpdk_test, dpdk_test, "--no-huge", "--no-pci", "--no-telemetry", "-m", "512",
		       "--file-prefix", prefix, "--lcores", lcores, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	w = write(in[1], "ring_perf_autotest\n", 19);
	(void)w;
	close(in[1]);
	f = fdopen(out[0], "r");
	while (fgets(line, sizeof(line), f) != NULL) {
		double v;

		if (strstr(line, "two physical cores") != NULL)
			two_cores = true;
		if (sscanf(line, "legacy APIs: SP/SC: burst (size: 32): %lf", &v) == 1 && one < 0)
			one = v;
		if (two_cores && two < 0 &&
		    sscanf(line, "legacy APIs: SP/SC: bulk (size: 32): %lf", &v) == 1)
			two = v;
	}
	fclose(f);
	waitpid(pid, NULL, 0);
	if (one < 0)
		printf("context: %s ring_perf_autotest gave no figures\n", dpdk_test);
	else
		printf("context: rte_ring SP/SC, 32 per burst (ring_perf_autotest): %.2f cycles "
		       "per object on one core, %.2f across two\n",
		       one, two);
}

/* ---- the stand-in pipeline ---- */

static enum mb_status
f_admit(void *ctx, uint32_t queue, struct mb_request *req, char *reason, size_t len)
{
	(void)ctx;
	(void)queue;
	(void)reason;
	(void)len;
	req->model = 0;
	return MB_STATUS_OK;
}

static struct mb_ring *
f_ring(void *ctx, uint32_t m)
{
	(void)ctx;
	(void)m;
	return g_queue;
}

static void
f_unadmit(void *ctx, struct mb_request *req)
{
	(void)ctx;
	(void)req;
}

static void
f_cancelled(void *ctx, struct mb_request *req)
{
	(void)ctx;
	(void)req;
}

/* Takes requests off the model ring (and any answers off the results ring) and releases
 * them, as the batcher, worker and egress would: the rx thread gets its slots back. */
static void *
pipeline(void *arg)
{
	void *objs[64];

	(void)arg;
	while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
		unsigned int n = mb_ring_dequeue_burst(g_queue, objs, 64), k;

		k = mb_ring_dequeue_burst(g_results, objs + n, 64 - n);
		for (unsigned int i = 0; i < n + k; i++)
			((struct mb_request *)objs[i])->release(objs[i]);
		if (n + k == 0)
			rte_pause(); /* spin: release at once, so only the rx core is measured */
	}
	return NULL;
}

static void *
rx_main(void *u)
{
	mb_udp_rx_run(u, 0);
	return NULL;
}

static struct mb_ring *
ring(const char *name, uint32_t cap)
{
	struct mb_ring_opts ro;
	struct mb_ring *r = NULL;

	mb_ring_opts_init(&ro);
	ro.name = name;
	ro.capacity = cap;
	ro.prod_sync = MB_RING_SYNC_MT_HTS;
	ro.cons_sync = MB_RING_SYNC_ST;
	if (mb_ring_create(&ro, &r) != 0)
		exit(1);
	return r;
}

static bool
drained(struct mb_udp *u)
{
	return mb_udp_closed(u) && mb_udp_outstanding(u) == 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"quick", no_argument, NULL, 'q'},
		{"seconds", required_argument, NULL, 's'},
		{"packets", required_argument, NULL, 'n'},
		{"testpmd", required_argument, NULL, 't'},
		{"cpu", required_argument, NULL, 'c'},
		{"no-context", no_argument, NULL, 'x'},
		{"sources", required_argument, NULL, 'S'},
		{NULL, 0, NULL, 0},
	};
	const char *testpmd = "dpdk-testpmd";
	int seconds = 5, cpu = -1, n_sources = 0, c, rc;
	struct mb_udp_source_config *sources = NULL;
	struct mb_prefix *prefixes = NULL;
	bool context = true;
	uint32_t packets = 2048;
	static struct mb_udp_port_config port;
	struct mb_config cfg;
	struct mb_eal_opts eo;
	struct mb_udp_opts uo = {0};
	struct mb_udp *u = NULL;
	struct mb_topo_opts to;
	struct mb_topo *topo = NULL;
	struct mb_cancel *drain = NULL, *abort_tok = NULL;
	struct mb_udp_stats st, prev;
	char vdev[600], err[512];
	const char *extra[1] = {vdev};
	double ours[64], per_cpu[64], base, rate, t_prev, cpu_prev;
	/* per-second samples: cycles per frame in all (rx-thread CPU time; wall clock), the
	 * PMD's receive, own work (CPU time; wall clock), share of duplicate frames */
	double all_cpu[64], all_wall[64], pmd[64], own_cpu[64], own_wall[64], dups[64];
	double tsc_hz, ro_rx, ro_all;
	uint64_t rx_tsc_prev, rx_frames_prev;
	clockid_t rx_clock;
	pthread_t pipe_thread, rx_thread;
	int n = 0;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'q':
			seconds = 2;
			context = false;
			break;
		case 's':
			seconds = atoi(optarg);
			break;
		case 'n':
			packets = (uint32_t)atoi(optarg);
			break;
		case 't':
			testpmd = optarg;
			break;
		case 'c':
			cpu = atoi(optarg);
			break;
		case 'x':
			context = false;
			break;
		case 'S':
			n_sources = atoi(optarg);
			break;
		default:
			fprintf(stderr,
				"usage: %s [--quick] [--seconds S] [--packets N] "
				"[--testpmd PATH] [--cpu C] [--no-context] [--sources T]\n",
				argv[0]);
			return 2;
		}
	}
	if (seconds < 1 || seconds > 60 || packets < 64 || packets > 8192 || n_sources < 0 ||
	    n_sources > 65536) {
		fprintf(stderr,
			"ingest_bench: --seconds 1..60, --packets 64..8192, --sources 0..65536\n");
		return 2;
	}
	if (cpu < 0)
		cpu = sysconf(_SC_NPROCESSORS_ONLN) > 1 ? 1 : 0;
	write_capture(packets);
	printf("capture: %u single-datagram requests, %d-byte payloads (%d-byte frames), "
	       "replayed by net_pcap infinite_rx; rx core: CPU %d; %d s each\n",
	       packets, PAYLOAD, 14 + 20 + 8 + MB_PROTO_HDR_LEN + PAYLOAD, cpu, seconds);
	base = strcmp(testpmd, "none") == 0 ? 0 : run_testpmd(testpmd, seconds, cpu);
	printf("dpdk-testpmd rxonly:   %7.3f Mpps\n", base / 1e6);

	snprintf(vdev, sizeof(vdev), "--vdev=net_pcap0,rx_pcap=%s,infinite_rx=1", g_pcap);
	mb_eal_opts_init(&eo);
	eo.name = "ingest_bench";
	eo.mem_mb = 512;
	eo.extra = extra;
	eo.n_extra = 1;
	if (mb_eal_init(&eo) != 0)
		return 1;
	mb_config_defaults(&cfg);
	snprintf(port.device, sizeof(port.device), "net_pcap0");
	port.address = htonl(0xc0000201);
	snprintf(port.address_text, sizeof(port.address_text), "192.0.2.1");
	port.rx_queues = 1;
	port.cpus[0] = cpu;
	port.n_cpus = 1;
	cfg.udp_ports = &port;
	cfg.n_udp_ports = 1;
	cfg.udp_max_requests = 8192;
	cfg.udp_buffer_mb = 64;
	cfg.udp_mbufs = 16383;
	cfg.max_payload_bytes = 65536;
	cfg.idle.mode = MB_IDLE_SPIN; /* a polled core, as on bare metal */
	g_queue = ring("b_echo", 8192);
	g_results = ring("b_results", 16384);
	if (mb_cancel_create(NULL, &drain) < 0 || mb_cancel_create(NULL, &abort_tok) < 0)
		return 1;
	mb_topo_opts_init(&to);
	if (mb_topo_create(&to, &topo) == 0)
		uo.topo = topo; /* to pin the rx thread to --cpu */
	uo.cfg = &cfg;
	uo.results = g_results;
	uo.drain = drain;
	uo.abort = abort_tok;
	if (n_sources > 0) {
		/* the capture's tenant (1) last, from its sender's /24; the others one /32
		 * each, every fourth two */
		uint64_t seed = 1;

		sources = calloc((size_t)n_sources, sizeof(*sources));
		prefixes = calloc(2 * (size_t)n_sources, sizeof(*prefixes));
		if (sources == NULL || prefixes == NULL) {
			fprintf(stderr, "ingest_bench: out of memory for %d sources\n", n_sources);
			free(sources);
			free(prefixes);
			return 1;
		}
		for (int i = 0, np = 0; i < n_sources; i++) {
			bool last = i == n_sources - 1;

			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			/* unique: distinct low 17 bits, none of them 1 (2 + i) */
			sources[i].tenant =
				last ? 1 : (uint32_t)(seed >> 32) << 17 | (uint32_t)(2 + i);
			sources[i].prefixes = &prefixes[np];
			sources[i].n_prefixes = !last && i % 4 == 0 ? 2 : 1;
			for (unsigned int k = 0; k < sources[i].n_prefixes; k++, np++) {
				prefixes[np].mask = htonl(last ? 0xffffff00u : 0xffffffffu);
				prefixes[np].addr =
					htonl(last ? 0xc0000200u : 0xac100000u + (uint32_t)np);
			}
		}
		uo.sources = sources;
		uo.n_sources = (unsigned int)n_sources;
	}
	uo.ops = (struct mb_udp_ops){.admit = f_admit,
				     .model_ring = f_ring,
				     .unadmit = f_unadmit,
				     .cancelled = f_cancelled};
	rc = mb_udp_create(&uo, &u, err, sizeof(err));
	free(sources); /* copied */
	free(prefixes);
	if (rc < 0) {
		fprintf(stderr, "ingest_bench: %s\n", err);
		return 1;
	}
	if (n_sources > 0)
		printf("udp.sources: %d tenants, the capture's among them: every frame is checked "
		       "and passes\n",
		       n_sources);
	else
		printf("udp.sources: none (the default: no check)\n");
	pthread_create(&pipe_thread, NULL, pipeline, NULL);
	if (topo != NULL && sysconf(_SC_NPROCESSORS_ONLN) > 1) {
		/* the stand-in pipeline runs on another CPU than the rx core */
		cpu_set_t set;

		CPU_ZERO(&set);
		for (int i = 0; i < sysconf(_SC_NPROCESSORS_ONLN) && i < CPU_SETSIZE; i++)
			if (i != cpu)
				CPU_SET(i, &set);
		pthread_setaffinity_np(pipe_thread, sizeof(set), &set);
	}
	if (time_rx_install(port.device) != 0) {
		fprintf(stderr, "ingest_bench: no port %s to time\n", port.device);
		return 1;
	}
	tsc_hz = (double)rte_get_tsc_hz();
	if (pthread_create(&rx_thread, NULL, rx_main, u) != 0)
		return 1;
	if (pthread_getcpuclockid(rx_thread, &rx_clock) != 0)
		return 1;
	/* names to profile by: perf report --comm mb-rx */
	pthread_setname_np(rx_thread, "mb-rx");
	pthread_setname_np(pipe_thread, "mb-pipeline");
	mb_udp_stats(u, &prev);
	t_prev = mb_bench_now();
	cpu_prev = thread_seconds(rx_clock);
	rx_tsc_prev = atomic_load(&g_rx_tsc);
	rx_frames_prev = atomic_load(&g_rx_frames);
	for (int s = 0; s < seconds + 1; s++) {
		double t, cpu_now, frames;
		uint64_t rx_tsc, rx_frames;

		sleep(1);
		t = mb_bench_now();
		cpu_now = thread_seconds(rx_clock);
		rx_tsc = atomic_load(&g_rx_tsc);
		rx_frames = atomic_load(&g_rx_frames);
		mb_udp_stats(u, &st);
		frames = (double)(st.packets - prev.packets);
		if (s > 0 && frames > 0 && rx_frames > rx_frames_prev) {
			/* the first second includes start-up */
			ours[n] = frames / (t - t_prev);
			per_cpu[n] = frames / (cpu_now - cpu_prev);
			all_cpu[n] = (cpu_now - cpu_prev) * tsc_hz / frames;
			all_wall[n] = (t - t_prev) * tsc_hz / frames;
			pmd[n] = (double)(rx_tsc - rx_tsc_prev) /
				 (double)(rx_frames - rx_frames_prev);
			own_cpu[n] = all_cpu[n] - pmd[n];
			own_wall[n] = all_wall[n] - pmd[n];
			dups[n] = (double)(st.dropped[MB_UDP_DROP_DUPLICATE] -
					   prev.dropped[MB_UDP_DROP_DUPLICATE]) /
				  frames;
			n++;
		}
		prev = st;
		t_prev = t;
		cpu_prev = cpu_now;
		rx_tsc_prev = rx_tsc;
		rx_frames_prev = rx_frames;
	}
	if (n == 0) {
		fprintf(stderr, "ingest_bench: the rx core received nothing\n");
		return 1;
	}
	rate = mb_bench_median(ours, n);
	mb_cancel_cancel(drain);
	for (int i = 0; i < 5000 && !drained(u); i++)
		usleep(1000);
	atomic_store(&g_stop, true);
	pthread_join(pipe_thread, NULL);
	pthread_join(rx_thread, NULL);
	time_rx_remove();
	receive_only(cpu, seconds < 2 ? 1 : 2, &ro_rx, &ro_all);
	mb_udp_stats(u, &st);
	printf("mediabatch UDP ingest: %7.3f Mpps  %6.2f Gbit/s of frames  (queued %" PRIu64
	       ", duplicate %" PRIu64 ", no slot %" PRIu64 ", other drops %" PRIu64 ")\n",
	       rate / 1e6, rate * (14 + 20 + 8 + MB_PROTO_HDR_LEN + PAYLOAD) * 8 / 1e9, st.queued,
	       st.dropped[MB_UDP_DROP_DUPLICATE], st.dropped[MB_UDP_DROP_NO_SLOT],
	       st.packets - st.queued - st.dropped[MB_UDP_DROP_DUPLICATE] -
		       st.dropped[MB_UDP_DROP_NO_SLOT]);
	if (rate > 0)
		printf("mediabatch UDP ingest: %.0f cycles per frame on the rx core\n",
		       (double)rte_get_tsc_hz() / rate);
	/* the same frames over the rx thread's own CPU time: what a core it had to itself would
	 * do (on a shared machine the wall-clock rate also counts the time it was preempted) */
	printf("mediabatch UDP ingest: %7.3f Mpps per rx-thread CPU second (%.0f cycles per "
	       "frame)\n",
	       mb_bench_median(per_cpu, n) / 1e6,
	       (double)rte_get_tsc_hz() / mb_bench_median(per_cpu, n));
	{
		double clean[64], own, own_w, all_c, all_w, rx, dup, own_clean = 0;
		int n_clean = 0;

		/* Duplicates (a replayed id still in flight: the stand-in pipeline fell a whole
		 * capture behind) are dropped for less than a request costs, so the seconds with
		 * few of them are the ones that measure requests. */
		for (int i = 0; i < n; i++)
			if (dups[i] < CLEAN_DUPS)
				clean[n_clean++] = own_cpu[i];
		if (n_clean != 0)
			own_clean = mb_bench_median(clean, n_clean);
		own = mb_bench_median(own_cpu, n);
		own_w = mb_bench_median(own_wall, n);
		all_c = mb_bench_median(all_cpu, n);
		all_w = mb_bench_median(all_wall, n);
		rx = mb_bench_median(pmd, n);
		dup = mb_bench_median(dups, n);

		/* medians of the per-second samples, each figure on its own */
		printf("rx core, cycles per frame in all: %.0f (rx-thread CPU time at the TSC "
		       "rate), "
		       "%.0f (wall clock)\n",
		       all_c, all_w);
		printf("PMD receive: %.0f cycles per frame (rte_eth_rx_burst timed with rte_rdtsc "
		       "inside the rx loop, this run; %" PRIu64 " of %" PRIu64
		       " bursts left out as preempted)\n",
		       rx, atomic_load(&g_rx_preempted), atomic_load(&g_rx_calls));
		printf("receive only: %.0f cycles per frame in rte_eth_rx_burst, %.0f with the "
		       "frees "
		       "(a pass of nothing else on the same port, capture and CPU, after the rx "
		       "core stopped)\n",
		       ro_rx, ro_all);
		printf("own work per frame: %.0f cycles (in all by CPU time, less the PMD receive "
		       "in the loop; by wall clock %.0f; less the receive-only pass instead %.0f); "
		       "duplicates %.1f%% of frames\n",
		       own, own_w, all_c - ro_rx, dup * 100);
		if (n_clean != 0)
			printf("own work per frame in the %d of %d seconds with under %.0f%% "
			       "duplicates: %.0f cycles\n",
			       n_clean, n, CLEAN_DUPS * 100, own_clean);
		else
			printf("own work per frame in seconds with under %.0f%% duplicates: none "
			       "of "
			       "%d seconds had so few\n",
			       CLEAN_DUPS * 100, n);
		/* the bar is per request: on the seconds that measure requests when there are */
		if (n_clean != 0)
			printf("bar: <= %d cycles of own work per frame: %s (%.0f, seconds with "
			       "under "
			       "%.0f%% duplicates)\n",
			       OWN_WORK_BAR, own_clean <= OWN_WORK_BAR ? "met" : "MISSED",
			       own_clean, CLEAN_DUPS * 100);
		else
			printf("bar: <= %d cycles of own work per frame: %s (%.0f, but %.0f%% of "
			       "the "
			       "frames were duplicates, which cost less than requests: not a "
			       "per-request figure; rerun on a quieter machine)\n",
			       OWN_WORK_BAR, own <= OWN_WORK_BAR ? "met" : "MISSED", own,
			       dup * 100);
	}
	if (context)
		ring_context("dpdk-test", cpu);
	if (base > 0)
		printf("ratio: %.3f\n", rate / base);
	else
		printf("ratio: n/a (no testpmd baseline)\n");
	mb_udp_destroy(&u);
	mb_topo_destroy(&topo);
	mb_ring_destroy(&g_queue);
	mb_ring_destroy(&g_results);
	mb_cancel_destroy(&drain);
	mb_cancel_destroy(&abort_tok);
	cfg.udp_ports = NULL;
	cfg.n_udp_ports = 0;
	mb_eal_fini();
	unlink(g_pcap);
	return 0;
}
