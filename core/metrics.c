/*
 * metrics.c: the metrics registry and its Prometheus text rendering.
 *
 * Families in registration order, each with its series in registration order, so the output
 * is stable. Values are relaxed atomics: counters and gauges one int64, histograms one
 * counter per bucket (not cumulative: rendering accumulates) plus a sum kept as the bits of
 * a double updated by compare-and-swap. A mutex covers registration and rendering only.
 */
#include "mb_metrics.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MB_LOG_MODULE "metrics"
#include "mb_log.h"

enum kind { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM };

struct mb_metric {
	struct mb_metric *next;
	struct family *family;
	char *labels;
	_Atomic int64_t value;
	mb_metric_fn fn;
	mb_metric_dfn dfn; /* or this, for a computed double */
	void *fn_arg;
	_Atomic uint64_t *buckets; /* n_bounds + 1 (last is +Inf) */
	_Atomic uint64_t sum_bits;
};

struct family {
	struct family *next;
	char *name;
	char *help;
	enum kind kind;
	double *bounds;
	unsigned int n_bounds;
	struct mb_metric *series, **series_tail;
};

struct mb_metrics {
	pthread_mutex_t lock;
	struct family *families, **families_tail;
};

const double mb_metrics_latency_bounds[] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1,	0.25,	 0.5,	 1,	2.5,	5,     10,   30,    60,
};
const unsigned int mb_metrics_latency_bounds_n =
	sizeof(mb_metrics_latency_bounds) / sizeof(mb_metrics_latency_bounds[0]);

int
mb_metrics_create(struct mb_metrics **out)
{
	struct mb_metrics *m = calloc(1, sizeof(*m));

	*out = NULL;
	if (m == NULL)
		return -ENOMEM;
	pthread_mutex_init(&m->lock, NULL);
	m->families_tail = &m->families;
	*out = m;
	return 0;
}

void
mb_metrics_destroy(struct mb_metrics **mp)
{
	struct family *f, *fn;
	struct mb_metric *s, *sn;

	if (mp == NULL || *mp == NULL)
		return;
	for (f = (*mp)->families; f != NULL; f = fn) {
		fn = f->next;
		for (s = f->series; s != NULL; s = sn) {
			sn = s->next;
			free(s->labels);
			free((void *)s->buckets);
			free(s);
		}
		free(f->name);
		free(f->help);
		free(f->bounds);
		free(f);
	}
	pthread_mutex_destroy(&(*mp)->lock);
	free(*mp);
	*mp = NULL;
}

static bool
valid_name(const char *name)
{
	if (name == NULL || !(isalpha((unsigned char)name[0]) || name[0] == '_' || name[0] == ':'))
		return false;
	for (const char *p = name; *p; p++)
		if (!(isalnum((unsigned char)*p) || *p == '_' || *p == ':'))
			return false;
	return true;
}

static struct family *
find_family(struct mb_metrics *m, const char *name)
{
	for (struct family *f = m->families; f != NULL; f = f->next)
		if (strcmp(f->name, name) == 0)
			return f;
	return NULL;
}

/* Find or create the series; lock held. */
static struct mb_metric *
series_locked(struct mb_metrics *m, const char *name, const char *help, const char *labels,
	      enum kind kind, const double *bounds, unsigned int n_bounds)
{
	struct family *f;
	struct mb_metric *s;

	if (labels == NULL)
		labels = "";
	if (!valid_name(name)) {
		MB_LOG(ERR, "metric name '%s' is not a Prometheus name", name ? name : "(null)");
		return NULL;
	}
	f = find_family(m, name);
	if (f != NULL && f->kind != kind) {
		MB_LOG(ERR, "metric %s registered twice with different types", name);
		return NULL;
	}
	if (f != NULL && kind == KIND_HISTOGRAM &&
	    (f->n_bounds != n_bounds || memcmp(f->bounds, bounds, n_bounds * sizeof(*bounds)))) {
		MB_LOG(ERR, "histogram %s registered twice with different bounds", name);
		return NULL;
	}
	if (f == NULL) {
		f = calloc(1, sizeof(*f));
		if (f == NULL)
			return NULL;
		f->name = strdup(name);
		f->help = strdup(help ? help : "");
		f->kind = kind;
		f->series_tail = &f->series;
		if (kind == KIND_HISTOGRAM) {
			f->bounds = malloc(n_bounds * sizeof(*bounds));
			if (f->bounds != NULL)
				memcpy(f->bounds, bounds, n_bounds * sizeof(*bounds));
			f->n_bounds = n_bounds;
		}
		if (f->name == NULL || f->help == NULL || (kind == KIND_HISTOGRAM && !f->bounds)) {
			free(f->name);
			free(f->help);
			free(f->bounds);
			free(f);
			return NULL;
		}
		*m->families_tail = f;
		m->families_tail = &f->next;
	}
	for (s = f->series; s != NULL; s = s->next)
		if (strcmp(s->labels, labels) == 0)
			return s;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->family = f;
	s->labels = strdup(labels);
	if (kind == KIND_HISTOGRAM)
		s->buckets = calloc(n_bounds + 1, sizeof(*s->buckets));
	if (s->labels == NULL || (kind == KIND_HISTOGRAM && s->buckets == NULL)) {
		free(s->labels);
		free((void *)s->buckets);
		free(s);
		return NULL;
	}
	*f->series_tail = s;
	f->series_tail = &s->next;
	return s;
}

static struct mb_metric *
reg(struct mb_metrics *m, const char *name, const char *help, const char *labels, enum kind kind,
    const double *bounds, unsigned int n)
{
	struct mb_metric *s;

	pthread_mutex_lock(&m->lock);
	s = series_locked(m, name, help, labels, kind, bounds, n);
	pthread_mutex_unlock(&m->lock);
	return s;
}

struct mb_metric *
mb_metrics_counter(struct mb_metrics *m, const char *name, const char *help, const char *labels)
{
	return reg(m, name, help, labels, KIND_COUNTER, NULL, 0);
}

struct mb_metric *
mb_metrics_gauge(struct mb_metrics *m, const char *name, const char *help, const char *labels)
{
	return reg(m, name, help, labels, KIND_GAUGE, NULL, 0);
}

static struct mb_metric *
reg_fn(struct mb_metrics *m, const char *name, const char *help, const char *labels, enum kind kind,
       mb_metric_fn fn, mb_metric_dfn dfn, void *arg)
{
	struct mb_metric *s;

	pthread_mutex_lock(&m->lock);
	s = series_locked(m, name, help, labels, kind, NULL, 0);
	if (s != NULL) {
		s->fn = fn;
		s->dfn = dfn;
		s->fn_arg = arg;
	}
	pthread_mutex_unlock(&m->lock);
	return s;
}

struct mb_metric *
mb_metrics_gauge_fn(struct mb_metrics *m, const char *name, const char *help, const char *labels,
		    mb_metric_fn fn, void *arg)
{
	return reg_fn(m, name, help, labels, KIND_GAUGE, fn, NULL, arg);
}

struct mb_metric *
mb_metrics_counter_fn(struct mb_metrics *m, const char *name, const char *help, const char *labels,
		      mb_metric_fn fn, void *arg)
{
	return reg_fn(m, name, help, labels, KIND_COUNTER, fn, NULL, arg);
}

struct mb_metric *
mb_metrics_gauge_dfn(struct mb_metrics *m, const char *name, const char *help, const char *labels,
		     mb_metric_dfn fn, void *arg)
{
	return reg_fn(m, name, help, labels, KIND_GAUGE, NULL, fn, arg);
}

struct mb_metric *
mb_metrics_counter_dfn(struct mb_metrics *m, const char *name, const char *help, const char *labels,
		       mb_metric_dfn fn, void *arg)
{
	return reg_fn(m, name, help, labels, KIND_COUNTER, NULL, fn, arg);
}

struct mb_metric *
mb_metrics_histogram(struct mb_metrics *m, const char *name, const char *help, const char *labels,
		     const double *bounds, unsigned int n)
{
	if (bounds == NULL || n == 0)
		return NULL;
	for (unsigned int i = 1; i < n; i++) {
		if (!(bounds[i] > bounds[i - 1])) {
			MB_LOG(ERR, "histogram %s: bounds must increase strictly", name);
			return NULL;
		}
	}
	return reg(m, name, help, labels, KIND_HISTOGRAM, bounds, n);
}

void
mb_metric_add(struct mb_metric *s, int64_t v)
{
	atomic_fetch_add_explicit(&s->value, v, memory_order_relaxed);
}

void
mb_metric_set(struct mb_metric *s, int64_t v)
{
	atomic_store_explicit(&s->value, v, memory_order_relaxed);
}

static double
bits_to_double(uint64_t b)
{
	double d;

	memcpy(&d, &b, sizeof(d));
	return d;
}

static uint64_t
double_to_bits(double d)
{
	uint64_t b;

	memcpy(&b, &d, sizeof(b));
	return b;
}

void
mb_metric_observe(struct mb_metric *s, double v)
{
	const struct family *f = s->family;
	unsigned int lo = 0, hi = f->n_bounds;
	uint64_t old;

	/* First bound >= v (Prometheus buckets are "le"); n_bounds means +Inf. */
	while (lo < hi) {
		unsigned int mid = (lo + hi) / 2;

		if (v <= f->bounds[mid])
			hi = mid;
		else
			lo = mid + 1;
	}
	atomic_fetch_add_explicit(&s->buckets[lo], 1, memory_order_relaxed);
	old = atomic_load_explicit(&s->sum_bits, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(&s->sum_bits, &old,
						      double_to_bits(bits_to_double(old) + v),
						      memory_order_relaxed, memory_order_relaxed))
		;
}

int64_t
mb_metric_value(const struct mb_metric *s)
{
	return atomic_load_explicit(&((struct mb_metric *)s)->value, memory_order_relaxed);
}

uint64_t
mb_metric_count(const struct mb_metric *s)
{
	uint64_t n = 0;

	for (unsigned int i = 0; i <= s->family->n_bounds; i++)
		n += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
	return n;
}

/* Shortest decimal that reads back as @v (what Prometheus clients print). */
static const char *
fmt_double(char *buf, size_t len, double v)
{
	if (isnan(v)) {
		snprintf(buf, len, "NaN");
		return buf;
	}
	if (isinf(v)) {
		snprintf(buf, len, "%s", v > 0 ? "+Inf" : "-Inf");
		return buf;
	}
	if (v == floor(v) && fabs(v) < 1e15) {
		snprintf(buf, len, "%.0f", v); /* 200000, not 2e+05 */
		return buf;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, len, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	return buf;
}

/* name{labels,extra} or name{extra} or name */
static void
print_series_name(FILE *out, const char *name, const char *suffix, const char *labels,
		  const char *extra)
{
	bool has = labels[0] != '\0', has_extra = extra != NULL;

	fprintf(out, "%s%s", name, suffix);
	if (has || has_extra)
		fprintf(out, "{%s%s%s}", labels, has && has_extra ? "," : "",
			has_extra ? extra : "");
	fputc(' ', out);
}

static void
render_family(FILE *out, const struct family *f)
{
	static const char *const type_names[] = {"counter", "gauge", "histogram"};

	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
		type_names[f->kind]);
	for (const struct mb_metric *s = f->series; s != NULL; s = s->next) {
		if (f->kind != KIND_HISTOGRAM && s->dfn != NULL) {
			char num[32];

			print_series_name(out, f->name, "", s->labels, NULL);
			fprintf(out, "%s\n", fmt_double(num, sizeof(num), s->dfn(s->fn_arg)));
			continue;
		}
		if (f->kind != KIND_HISTOGRAM) {
			int64_t v = s->fn ? s->fn(s->fn_arg) : mb_metric_value(s);

			print_series_name(out, f->name, "", s->labels, NULL);
			fprintf(out, "%" PRId64 "\n", v);
			continue;
		}
		uint64_t cum = 0;
		char le[64];

		for (unsigned int i = 0; i <= f->n_bounds; i++) {
			cum += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
			char num[32];

			snprintf(le, sizeof(le), "le=\"%s\"",
				 i < f->n_bounds ? fmt_double(num, sizeof(num), f->bounds[i])
						 : "+Inf");
			print_series_name(out, f->name, "_bucket", s->labels, le);
			fprintf(out, "%" PRIu64 "\n", cum);
		}
		print_series_name(out, f->name, "_sum", s->labels, NULL);
		fprintf(out, "%s\n",
			fmt_double(le, sizeof(le),
				   bits_to_double(
					   atomic_load_explicit(&((struct mb_metric *)s)->sum_bits,
								memory_order_relaxed))));
		print_series_name(out, f->name, "_count", s->labels, NULL);
		fprintf(out, "%" PRIu64 "\n", cum);
	}
}

int
mb_metrics_render(struct mb_metrics *m, char **text, size_t *len)
{
	FILE *out;

	*text = NULL;
	*len = 0;
	out = open_memstream(text, len);
	if (out == NULL)
		return -ENOMEM;
	pthread_mutex_lock(&m->lock);
	for (const struct family *f = m->families; f != NULL; f = f->next)
		render_family(out, f);
	pthread_mutex_unlock(&m->lock);
	if (fclose(out) != 0) {
		free(*text);
		*text = NULL;
		return -ENOMEM;
	}
	return 0;
}

char *
mb_metrics_labels(char *buf, size_t len, ...)
{
	va_list ap;
	size_t off = 0;
	const char *key;

	if (len == 0)
		return buf;
	buf[0] = '\0';
	va_start(ap, len);
	while ((key = va_arg(ap, const char *)) != NULL) {
		const char *val = va_arg(ap, const char *);
		int n = snprintf(buf + off, len - off, "%s%s=\"", off ? "," : "", key);

		if (n < 0 || (size_t)n >= len - off)
			break;
		off += (size_t)n;
		for (const char *p = val ? val : ""; *p && off + 3 < len; p++) {
			if (*p == '\\' || *p == '"') {
				buf[off++] = '\\';
				buf[off++] = *p;
			} else if (*p == '\n') {
				buf[off++] = '\\';
				buf[off++] = 'n';
			} else {
				buf[off++] = *p;
			}
		}
		if (off + 2 > len)
			break;
		buf[off++] = '"';
		buf[off] = '\0';
	}
	va_end(ap);
	buf[len - 1] = '\0';
	return buf;
}
