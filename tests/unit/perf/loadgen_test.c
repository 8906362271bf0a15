/*
 * loadgen_test.c: mediabatch-perf's request stream: the Poisson generator's rate, gap mean
 * and variance and window counts for a fixed seed; determinism; the mix and its weights;
 * the length distributions; the headers built for each media kind.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "mb_loadgen.h"
#include "mb_test.h"

static void
test_poisson_rate(void)
{
	enum { SECONDS = 100, RATE = 1000 };
	struct mb_arrivals a;
	double prev = 0, sum = 0, sumsq = 0, t;
	long n = 0, windows[SECONDS] = {0};
	double wmean = 0, wvar = 0;

	mb_arrivals_init(&a, 42, RATE, 0.0);
	while ((t = mb_arrivals_next(&a)) < SECONDS) {
		double gap = t - prev;

		CU_ASSERT(gap >= 0);
		sum += gap;
		sumsq += gap * gap;
		prev = t;
		windows[(int)t]++;
		n++;
	}
	/* rate within 1% (the standard deviation of the count is sqrt(1e5) = 0.3%) */
	CU_ASSERT_DOUBLE_EQUAL((double)n / SECONDS, RATE, RATE * 0.01);
	/* exponential gaps: mean 1/rate, variance 1/rate^2 */
	CU_ASSERT_DOUBLE_EQUAL(sum / n, 1.0 / RATE, 0.01 / RATE);
	CU_ASSERT_DOUBLE_EQUAL(sumsq / n - (sum / n) * (sum / n), 1.0 / RATE / RATE,
			       0.03 / RATE / RATE);
	/* counts per 1 s window: Poisson, so variance / mean (dispersion) near 1 */
	for (int i = 0; i < SECONDS; i++)
		wmean += (double)windows[i] / SECONDS;
	for (int i = 0; i < SECONDS; i++)
		wvar += ((double)windows[i] - wmean) * ((double)windows[i] - wmean) / (SECONDS - 1);
	CU_ASSERT_DOUBLE_EQUAL(wvar / wmean, 1.0, 0.35);
	printf("\n    %ld arrivals in %d s; gap mean %.4f ms; window dispersion %.3f", n, SECONDS,
	       1000 * sum / n, wvar / wmean);
}

static void
test_deterministic(void)
{
	struct mb_arrivals a, b, c;
	int same_ab = 0, same_ac = 0;

	mb_arrivals_init(&a, 7, 500, 1.0);
	mb_arrivals_init(&b, 7, 500, 1.0);
	mb_arrivals_init(&c, 8, 500, 1.0);
	for (int i = 0; i < 1000; i++) {
		double x = mb_arrivals_next(&a), y = mb_arrivals_next(&b), z = mb_arrivals_next(&c);

		same_ab += x == y;
		same_ac += x == z;
		CU_ASSERT(x > 1.0);
	}
	CU_ASSERT_EQUAL(same_ab, 1000);
	CU_ASSERT(same_ac < 10);
}

static void
test_mix(void)
{
	struct mb_mix m;
	struct mb_rng r;
	char err[256];
	long counts[3] = {0};

	CU_ASSERT_EQUAL(mb_mix_parse("identity:3,logmel:1", &m, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(m.n, 2);
	CU_ASSERT_STRING_EQUAL(m.e[0].model, "identity");
	CU_ASSERT_EQUAL(m.e[0].kind, MB_KIND_TENSOR);
	CU_ASSERT_EQUAL(m.e[1].kind, MB_KIND_AUDIO);
	CU_ASSERT_DOUBLE_EQUAL(m.e[1].max_seconds, 30, 0);
	CU_ASSERT_DOUBLE_EQUAL(m.total, 4, 0);
	mb_rng_seed(&r, 1);
	for (int i = 0; i < 100000; i++)
		counts[mb_mix_pick(&m, &r)]++;
	CU_ASSERT_DOUBLE_EQUAL(counts[0] / 100000.0, 0.75, 0.01);
	CU_ASSERT_EQUAL(counts[2], 0);

	CU_ASSERT_EQUAL(mb_mix_parse("clap,videomae:0.5,myplugin", &m, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(m.n, 3);
	CU_ASSERT_EQUAL(m.e[0].kind, MB_KIND_AUDIO);
	CU_ASSERT_DOUBLE_EQUAL(m.e[0].max_seconds, 10, 0);
	CU_ASSERT_EQUAL(m.e[0].rate, 48000); /* clap: 48 kHz */
	CU_ASSERT_EQUAL(m.e[1].kind, MB_KIND_VIDEO);
	CU_ASSERT_EQUAL(m.e[2].kind, MB_KIND_TENSOR);
	CU_ASSERT_DOUBLE_EQUAL(m.e[0].weight, 1, 0);

	static const char *const bad[] = {
		"",	     "identity:0", "identity:-1",	"identity:x",	      "a,,b",
		"identity,", ":3",	   "identity,identity", "abcdefghijklmnopq:1"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		CU_ASSERT_EQUAL(mb_mix_parse(bad[i], &m, err, sizeof(err)), -EINVAL);
		CU_ASSERT(strstr(err, "--mix") != NULL);
	}
}

static void
test_distributions(void)
{
	struct mb_dist d;
	struct mb_rng r;
	char err[256], buf[64];
	double sum = 0, lo = 1e9, hi = 0, logs[20001];

	CU_ASSERT_EQUAL(mb_dist_parse("2.5", &d, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(d.kind, MB_DIST_FIXED);
	CU_ASSERT_EQUAL(mb_dist_parse("fixed:3", &d, err, sizeof(err)), 0);
	mb_rng_seed(&r, 3);
	CU_ASSERT_DOUBLE_EQUAL(mb_dist_sample(&d, &r), 3, 0);

	CU_ASSERT_EQUAL(mb_dist_parse("uniform:0.5,10", &d, err, sizeof(err)), 0);
	for (int i = 0; i < 20000; i++) {
		double x = mb_dist_sample(&d, &r);

		sum += x;
		lo = x < lo ? x : lo;
		hi = x > hi ? x : hi;
	}
	CU_ASSERT(lo >= 0.5 && hi <= 10 && lo < 0.6 && hi > 9.9);
	CU_ASSERT_DOUBLE_EQUAL(sum / 20000, 5.25, 0.1);
	mb_dist_format(&d, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "uniform:0.5,10");

	/* lognormal: the median is the first parameter, log-sd the second */
	CU_ASSERT_EQUAL(mb_dist_parse("lognormal:2,0.5", &d, err, sizeof(err)), 0);
	sum = 0;
	for (int i = 0; i < 20001; i++) {
		logs[i] = log(mb_dist_sample(&d, &r));
		sum += logs[i];
	}
	{
		double mean = sum / 20001, var = 0;

		for (int i = 0; i < 20001; i++)
			var += (logs[i] - mean) * (logs[i] - mean) / 20000;
		CU_ASSERT_DOUBLE_EQUAL(exp(mean), 2.0, 0.04);
		CU_ASSERT_DOUBLE_EQUAL(sqrt(var), 0.5, 0.02);
	}

	static const char *const bad[] = {"0",		 "-1",		"uniform:2",
					  "uniform:3,1", "lognormal:1", "weibull:1,2",
					  "fixed:",	 "1x",		"lognormal:1,9"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CU_ASSERT_EQUAL(mb_dist_parse(bad[i], &d, err, sizeof(err)), -EINVAL);
}

static void
test_requests(void)
{
	struct mb_mix m;
	struct mb_dist d;
	struct mb_loadgen a, b;
	char err[256];
	int audio = 0, clamped_hi = 0, clamped_lo = 0;

	CU_ASSERT_FATAL(mb_mix_parse("identity:1,logmel:1,videomae:1", &m, err, sizeof(err)) == 0);
	CU_ASSERT_FATAL(mb_dist_parse("lognormal:1,2", &d, err, sizeof(err)) == 0);
	CU_ASSERT_EQUAL(mb_loadgen_init(&a, &m, &d, 1022, 5, 0, 9), -EINVAL);
	CU_ASSERT_FATAL(mb_loadgen_init(&a, &m, &d, 1024, 5, 250, 9) == 0);
	CU_ASSERT_FATAL(mb_loadgen_init(&b, &m, &d, 1024, 5, 250, 9) == 0);
	CU_ASSERT_EQUAL(mb_loadgen_max_payload(&a, MB_KIND_TENSOR), 1024);
	CU_ASSERT_EQUAL(mb_loadgen_max_payload(&a, MB_KIND_AUDIO), 30 * 16000 * 2);
	CU_ASSERT_EQUAL(mb_loadgen_max_payload(&a, MB_KIND_VIDEO), 16 * 224 * 224 * 3);
	for (uint64_t id = 0; id < 3000; id++) {
		struct mb_request_hdr h, g;
		int i = mb_loadgen_next(&a, id, &h), j = mb_loadgen_next(&b, id, &g);

		CU_ASSERT_EQUAL(i, j); /* same seed, same stream */
		CU_ASSERT_EQUAL(h.payload_len, g.payload_len);
		CU_ASSERT_EQUAL(h.request_id, id);
		CU_ASSERT_EQUAL(h.tenant_id, 5);
		CU_ASSERT_EQUAL(h.timeout_ms, 250);
		CU_ASSERT_STRING_EQUAL(h.model, m.e[i].model);
		CU_ASSERT(h.payload_len <= mb_loadgen_max_payload(&a, m.e[i].kind));
		if (m.e[i].kind == MB_KIND_TENSOR) {
			CU_ASSERT_EQUAL(h.media, MB_MEDIA_F32);
			CU_ASSERT_EQUAL(h.payload_len, 1024);
		} else if (m.e[i].kind == MB_KIND_AUDIO) {
			audio++;
			CU_ASSERT_EQUAL(h.media, MB_MEDIA_PCM_S16LE);
			CU_ASSERT_EQUAL(h.sample_rate, 16000);
			CU_ASSERT(h.payload_len >= 400 * 2 && h.payload_len <= 30 * 16000 * 2);
			clamped_hi += h.payload_len == 30 * 16000 * 2;
			clamped_lo += h.payload_len == 400 * 2;
		} else {
			CU_ASSERT_EQUAL(h.media, MB_MEDIA_RGB24);
			CU_ASSERT_EQUAL(h.frames, 16);
		}
	}
	/* with sigma 2 some draws fall outside 0.025..30 s and are clamped to the ends */
	CU_ASSERT(audio > 800 && clamped_hi > 0 && clamped_lo > 0);
}

static const struct mb_test_case cases[] = {
	{"Poisson arrivals, seed 42: rate, gap mean and variance, window dispersion",
	 test_poisson_rate},
	{"same seed same schedule; another seed another", test_deterministic},
	{"mix: parse, media per model, weights 3:1 picked 75%, bad specs named", test_mix},
	{"lengths: fixed, uniform, lognormal (median, sigma); bad specs", test_distributions},
	{"request headers per media kind, clamped audio, deterministic", test_requests},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"perf load generator", NULL, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("loadgen_test", suites);
}
