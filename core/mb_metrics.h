/**
 * @file
 * Metrics registry: counters, gauges and histograms, rendered in Prometheus text format.
 *
 * A metric family has a name, help text and type; each series in it has a fixed label set
 * (`model="logmel",status="OK"`). Series are registered at setup and updated from any
 * thread without locks (relaxed atomics); /metrics renders a consistent-enough snapshot
 * (each value is read atomically; values of different series may be microseconds apart).
 *
 * Registering the same name and labels twice returns the same series, so modules can ask
 * for their series without coordinating. Registering a name with a different type, an
 * invalid name, or unsorted histogram bounds is refused (NULL, logged): these are
 * programming errors caught at start-up.
 *
 * Gauges hold an integer, or are computed at render time by a callback (for values owned by
 * another object, like a semaphore's units in use).
 *
 * Threads: registration and rendering take the registry's mutex; updates take none.
 * Series live as long as the registry (never unregistered).
 */
#ifndef MB_METRICS_H
#define MB_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct mb_metrics;
struct mb_metric;

/** A gauge computed when /metrics is rendered; called with the registry's mutex held. */
typedef int64_t (*mb_metric_fn)(void *arg);

/**
 * A gauge or counter computed as a double when /metrics is rendered (seconds, unix time):
 * called with the registry's mutex held. NaN is rendered as NaN (the value is unknown).
 */
typedef double (*mb_metric_dfn)(void *arg);

/** Create an empty registry. Returns 0 and sets @p out, or -ENOMEM. */
int mb_metrics_create(struct mb_metrics **out);

/** Free a registry and all its series; set *@p m to NULL. NULL is accepted. */
void mb_metrics_destroy(struct mb_metrics **m);

/**
 * Register (or find) a counter series. @p labels is the Prometheus label list without
 * braces (`model="x"`), or NULL / "" for none; copied. Returns the series, or NULL.
 */
struct mb_metric *mb_metrics_counter(struct mb_metrics *m, const char *name, const char *help,
				     const char *labels);

/** Register (or find) an integer gauge series. */
struct mb_metric *mb_metrics_gauge(struct mb_metrics *m, const char *name, const char *help,
				   const char *labels);

/** Register a gauge whose value is @p fn(@p arg) at render time (@p arg borrowed). */
struct mb_metric *mb_metrics_gauge_fn(struct mb_metrics *m, const char *name, const char *help,
				      const char *labels, mb_metric_fn fn, void *arg);

/**
 * Register a counter whose value is @p fn(@p arg) at render time: for counts that a
 * single-writer thread keeps itself (e.g. the polled rx path, which must not pay for a
 * shared atomic per packet). @p fn must never decrease.
 */
struct mb_metric *mb_metrics_counter_fn(struct mb_metrics *m, const char *name, const char *help,
					const char *labels, mb_metric_fn fn, void *arg);

/** Register a gauge whose value is the double @p fn(@p arg) at render time. */
struct mb_metric *mb_metrics_gauge_dfn(struct mb_metrics *m, const char *name, const char *help,
				       const char *labels, mb_metric_dfn fn, void *arg);

/** Register a counter whose value is the double @p fn(@p arg); @p fn must never decrease. */
struct mb_metric *mb_metrics_counter_dfn(struct mb_metrics *m, const char *name, const char *help,
					 const char *labels, mb_metric_dfn fn, void *arg);

/**
 * Register the standard process figures of the Prometheus client libraries, read from
 * /proc/self at render time: process_cpu_seconds_total, process_start_time_seconds,
 * process_resident_memory_bytes, process_virtual_memory_bytes, process_open_fds and
 * process_max_fds (core/procstat.c, mb_procstat.h). Returns 0, or -ENOMEM.
 */
int mb_metrics_add_process(struct mb_metrics *m);

/**
 * Register (or find) a histogram series with @p n strictly increasing upper bounds
 * (copied; +Inf is implicit). All series of one family must use the same bounds.
 */
struct mb_metric *mb_metrics_histogram(struct mb_metrics *m, const char *name, const char *help,
				       const char *labels, const double *bounds, unsigned int n);

/** Add @p v to a counter (or to an integer gauge). Lock-free; any thread. */
void mb_metric_add(struct mb_metric *s, int64_t v);

/** Set an integer gauge. Lock-free; any thread. */
void mb_metric_set(struct mb_metric *s, int64_t v);

/** Record one observation in a histogram. Lock-free; any thread. */
void mb_metric_observe(struct mb_metric *s, double v);

/** Current value of a counter or integer gauge (tests, logs). */
int64_t mb_metric_value(const struct mb_metric *s);

/** Observations recorded in a histogram so far. */
uint64_t mb_metric_count(const struct mb_metric *s);

/**
 * Render every family in Prometheus text format 0.0.4 into a buffer allocated with malloc
 * (*@p text, freed by the caller with free(), @p len bytes). Returns 0 or -ENOMEM.
 */
int mb_metrics_render(struct mb_metrics *m, char **text, size_t *len);

/**
 * Format a label list into @p buf: pairs of (key, value) strings ending with NULL, values
 * escaped as Prometheus requires. Returns @p buf (truncated, still terminated, if short).
 */
char *mb_metrics_labels(char *buf, size_t len, ...) __attribute__((sentinel));

/** Standard latency bounds in seconds: 100 us .. 60 s, roughly x2.5 per step. */
extern const double mb_metrics_latency_bounds[];
extern const unsigned int mb_metrics_latency_bounds_n;

#endif /* MB_METRICS_H */
