/**
 * @file
 * Which bytes of a request's payload have arrived: the coverage part of UDP reassembly.
 *
 * Datagrams carry slices [frag_offset, frag_offset + len) of a payload, in any order,
 * possibly duplicated or overlapping. A coverage is a sorted list of disjoint runs of bytes
 * received; adding a slice merges it with the runs it touches and says how many bytes were
 * new, so a duplicate (0 new bytes) is recognised and the request is complete when
 * `covered` reaches the payload length. The list holds at most MB_REASM_MAX_RUNS runs: in-
 * order and mildly reordered senders use one or two; a slice that would need one more run
 * than that is refused (the request has too many holes at once).
 *
 * Fixed size, no allocation; one owner thread.
 */
#ifndef MB_REASM_H
#define MB_REASM_H

#include <stdint.h>

#define MB_REASM_MAX_RUNS 32

struct mb_reasm_cov {
	uint32_t covered; /**< bytes received so far (no byte counted twice) */
	uint32_t n_runs;
	struct {
		uint32_t lo, hi; /**< [lo, hi) */
	} run[MB_REASM_MAX_RUNS];
};

/** Empty coverage. */
static inline void
mb_reasm_init(struct mb_reasm_cov *c)
{
	c->covered = 0;
	c->n_runs = 0;
}

/**
 * Add the slice [@p lo, @p hi) (lo < hi). Returns how many of its bytes were new (0: a
 * duplicate), or -1 if it would need more than MB_REASM_MAX_RUNS runs (coverage unchanged).
 */
int64_t mb_reasm_add(struct mb_reasm_cov *c, uint32_t lo, uint32_t hi);

#endif /* MB_REASM_H */
