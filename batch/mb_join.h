/**
 * @file
 * Fan-out and fan-in: a request whose media is longer than its model's window runs as
 * windows, and their answers are joined into the request's one answer.
 *
 * Admission decides how many windows a request takes (mb_join_windows(): TOO_LARGE beyond
 * the model's max_windows) and checks each window's shape with the model. The batcher splits
 * the request when it takes it from its model's queue (mb_join_split()): each window is a
 * request of its own (same tenant, deadline and priority; payload a slice of the parent's,
 * which stays the parent's), queued, batched, admitted onto a device and run like any other,
 * possibly in different batches and on different devices. Every path that answers a request
 * hands it to the results ring with mb_results_push(); a window's answer is folded in there
 * (struct mb_window_join, mb_request.h), and when the last window is back the parent is
 * answered and goes on to the egress in its place: exactly one answer per request, as for
 * any other.
 *
 * The answer: OK when every window ran, joined by the model's kind (mb_model_rt.h):
 *   - MB_JOIN_CONCAT_ROWS: the windows' F32 rows one after the other (whisper, logmel);
 *   - MB_JOIN_MEAN_L2: the mean of the windows' F32 vectors, L2-normalised (clap);
 *   - MB_JOIN_MEAN_SOFTMAX_TOPK: the mean of the windows' logits, softmax, top-k
 *     (videomae's multi-clip testing).
 * Otherwise the first window (in media order) that failed gives its status, with the reason
 * prefixed by which window it was ("window 2 of 4 (30.0-60.0 s): ..."). A cancel of the
 * request cancels every window that has not started; a deadline applies to each.
 *
 * The response's timings: queue_us from arrival to the start of the first window's batch,
 * compute_us from then to the end of the last window's, batch_size the largest of their
 * batches, device the last window's.
 *
 * Threads: split on the batcher; done() on whichever thread answers a window (one window at
 * a time each, many at once); reclaim() on the egress. A join is one allocation per split
 * request, freed when its parent is answered (or, when a window was abandoned by the
 * watchdog, when the last such window's hung run() has returned).
 */
#ifndef MB_JOIN_H
#define MB_JOIN_H

#include <stddef.h>
#include <stdint.h>

#include "mb_model_rt.h"
#include "mb_request.h"

/** Most windows any request may take, whatever the config says. */
#define MB_JOIN_MAX_WINDOWS 1024

/**
 * How many windows @p hdr's media takes on @p m: 1 when the model has no windows or the
 * media fits one. Video: frames / window, rounded up. Any thread.
 */
uint32_t mb_join_windows(const struct mb_model *m, const struct mb_request_hdr *hdr);

/**
 * Window @p i (0-based) of @p n for @p hdr on @p m: its header (the parent's, with the
 * window's length and MB_HDR_WINDOW_PART) in @p out, and its first byte in the parent's
 * payload in @p offset. Any thread.
 */
void mb_join_window_hdr(const struct mb_model *m, const struct mb_request_hdr *hdr, uint32_t i,
			uint32_t n, struct mb_request_hdr *out, uint32_t *offset);

/**
 * Split @p parent (admitted, parent->windows > 1) into its windows: @p kids receives
 * parent->windows requests, ready to queue, that belong to the join until answered. The
 * parent belongs to the join until it is handed back answered. Returns 0, or -ENOMEM (the
 * parent is untouched then). Batcher thread.
 */
int mb_join_split(struct mb_request *parent, const struct mb_model *m, struct mb_request **kids);

#endif /* MB_JOIN_H */
