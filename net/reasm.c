/*
 * reasm.c: coverage of a payload by received slices (see mb_reasm.h).
 */
#include "mb_reasm.h"

#include <string.h>

int64_t
mb_reasm_add(struct mb_reasm_cov *c, uint32_t lo, uint32_t hi)
{
	uint32_t i = 0, j, n = c->n_runs;
	uint64_t existing = 0;
	uint32_t new_lo = lo, new_hi = hi;

	/* i: the first run that ends at or after lo (it may touch or overlap the slice). */
	while (i < n && c->run[i].hi < lo)
		i++;
	/* j: one past the last run that starts at or before hi. */
	j = i;
	while (j < n && c->run[j].lo <= hi) {
		existing += c->run[j].hi - c->run[j].lo;
		if (c->run[j].lo < new_lo)
			new_lo = c->run[j].lo;
		if (c->run[j].hi > new_hi)
			new_hi = c->run[j].hi;
		j++;
	}
	if (i == j) { /* touches nothing: a new run at i */
		if (n == MB_REASM_MAX_RUNS)
			return -1;
		memmove(&c->run[i + 1], &c->run[i], (n - i) * sizeof(c->run[0]));
		c->run[i].lo = lo;
		c->run[i].hi = hi;
		c->n_runs = n + 1;
		c->covered += hi - lo;
		return hi - lo;
	}
	/* runs i..j-1 merge into one */
	c->run[i].lo = new_lo;
	c->run[i].hi = new_hi;
	memmove(&c->run[i + 1], &c->run[j], (n - j) * sizeof(c->run[0]));
	c->n_runs = n - (j - i - 1);
	c->covered += (uint32_t)((new_hi - new_lo) - existing);
	return (int64_t)(new_hi - new_lo) - (int64_t)existing;
}
