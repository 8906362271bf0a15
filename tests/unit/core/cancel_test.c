/*
 * cancel_test.c: the cancellation tree: propagation, idempotence, callbacks, unregister,
 * destroy re-parenting, waits on the virtual clock, and cancels from many threads at once.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "mb_cancel.h"
#include "mb_env.h"
#include "mb_test.h"

static void
count_cb(void *arg)
{
	atomic_fetch_add((atomic_int *)arg, 1);
}

static void
test_tree_propagation(void)
{
	struct mb_cancel *root, *a, *b, *a1, *a2;

	CU_ASSERT_EQUAL_FATAL(mb_cancel_create(NULL, &root), 0);
	mb_cancel_create(root, &a);
	mb_cancel_create(root, &b);
	mb_cancel_create(a, &a1);
	mb_cancel_create(a, &a2);
	mb_cancel_cancel(a1); /* a leaf: nothing else */
	CU_ASSERT_TRUE(mb_cancel_is_cancelled(a1));
	CU_ASSERT_FALSE(mb_cancel_is_cancelled(a));
	CU_ASSERT_FALSE(mb_cancel_is_cancelled(a2));
	CU_ASSERT_FALSE(mb_cancel_is_cancelled(root));
	mb_cancel_cancel(a); /* its subtree, not its parent or sibling */
	CU_ASSERT_TRUE(mb_cancel_is_cancelled(a2));
	CU_ASSERT_FALSE(mb_cancel_is_cancelled(root));
	CU_ASSERT_FALSE(mb_cancel_is_cancelled(b));
	mb_cancel_cancel(root);
	CU_ASSERT_TRUE(mb_cancel_is_cancelled(b));
	mb_cancel_destroy(&a1);
	mb_cancel_destroy(&a2);
	mb_cancel_destroy(&a);
	mb_cancel_destroy(&b);
	mb_cancel_destroy(&root);
	CU_ASSERT_PTR_NULL(root);
	mb_cancel_destroy(&root);
}

static void
test_born_cancelled(void)
{
	struct mb_cancel *root, *late;

	mb_cancel_create(NULL, &root);
	mb_cancel_cancel(root);
	CU_ASSERT_EQUAL(mb_cancel_create(root, &late), 0);
	CU_ASSERT_TRUE(mb_cancel_is_cancelled(late));
	mb_cancel_destroy(&late);
	mb_cancel_destroy(&root);
}

static void
test_callbacks_once(void)
{
	struct mb_cancel *root, *child;
	struct mb_cancel_cb c1 = {0}, c2 = {0}, c3 = {0};
	atomic_int n1 = 0, n2 = 0, n3 = 0;

	mb_cancel_create(NULL, &root);
	mb_cancel_create(root, &child);
	CU_ASSERT_EQUAL(mb_cancel_register(root, &c1, count_cb, &n1), 0);
	CU_ASSERT_EQUAL(mb_cancel_register(child, &c2, count_cb, &n2), 0);
	CU_ASSERT_EQUAL(mb_cancel_register(child, &c2, count_cb, &n2), -EBUSY);
	mb_cancel_cancel(root);
	mb_cancel_cancel(root); /* idempotent */
	mb_cancel_cancel(child);
	CU_ASSERT_EQUAL(atomic_load(&n1), 1);
	CU_ASSERT_EQUAL(atomic_load(&n2), 1);
	/* Registered after the cancel: runs at once, here. */
	CU_ASSERT_EQUAL(mb_cancel_register(child, &c3, count_cb, &n3), 1);
	CU_ASSERT_EQUAL(atomic_load(&n3), 1);
	mb_cancel_unregister(root, &c1); /* already ran: harmless */
	mb_cancel_destroy(&child);
	mb_cancel_destroy(&root);
}

static void
test_unregister_prevents_run(void)
{
	struct mb_cancel *t;
	struct mb_cancel_cb c = {0}, never = {0};
	atomic_int n = 0;

	mb_cancel_create(NULL, &t);
	mb_cancel_register(t, &c, count_cb, &n);
	mb_cancel_unregister(t, &c);
	mb_cancel_unregister(t, &never); /* never registered */
	mb_cancel_cancel(t);
	CU_ASSERT_EQUAL(atomic_load(&n), 0);
	/* A withdrawn registration can be reused. */
	CU_ASSERT_EQUAL(mb_cancel_register(t, &c, count_cb, &n), 1);
	CU_ASSERT_EQUAL(atomic_load(&n), 1);
	mb_cancel_destroy(&t);
}

struct self_unreg {
	struct mb_cancel *t;
	struct mb_cancel_cb cb;
	int ran;
};

static void
unregister_self(void *arg)
{
	struct self_unreg *s = arg;

	mb_cancel_unregister(s->t, &s->cb); /* from inside: must not deadlock */
	s->ran++;
}

static void
cancel_other(void *arg)
{
	mb_cancel_cancel((struct mb_cancel *)arg); /* a callback may cancel another tree */
}

static void
test_callback_reentrancy(void)
{
	struct self_unreg s = {0};
	struct mb_cancel *other;
	struct mb_cancel_cb link = {0};

	mb_cancel_create(NULL, &s.t);
	mb_cancel_create(NULL, &other);
	mb_cancel_register(s.t, &s.cb, unregister_self, &s);
	mb_cancel_register(s.t, &link, cancel_other, other);
	mb_cancel_cancel(s.t);
	CU_ASSERT_EQUAL(s.ran, 1);
	CU_ASSERT_TRUE(mb_cancel_is_cancelled(other));
	mb_cancel_destroy(&other);
	mb_cancel_destroy(&s.t);
}

static void
test_destroy_reparents(void)
{
	struct mb_cancel *root, *mid, *leaf;
	struct mb_cancel_cb c = {0};
	atomic_int n = 0;

	mb_cancel_create(NULL, &root);
	mb_cancel_create(root, &mid);
	mb_cancel_create(mid, &leaf);
	mb_cancel_register(mid, &c, count_cb, &n);
	mb_cancel_destroy(&mid); /* leaf now hangs off root; mid's callback is dropped */
	mb_cancel_cancel(root);
	CU_ASSERT_TRUE(mb_cancel_is_cancelled(leaf));
	CU_ASSERT_EQUAL(atomic_load(&n), 0);
	mb_cancel_destroy(&root); /* leaf becomes a root, still cancelled */
	CU_ASSERT_TRUE(mb_cancel_is_cancelled(leaf));
	mb_cancel_destroy(&leaf);
}

struct waiter {
	struct mb_cancel *t;
	uint64_t deadline;
	int rc;
	int done;
};

static void *
wait_thread(void *arg)
{
	struct waiter *w = arg;

	w->rc = mb_cancel_wait(w->t, w->deadline);
	__atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void
test_wait(void)
{
	struct waiter w = {0};
	pthread_t th;

	mb_cancel_create(NULL, &w.t);
	mb_env_clock_use_virtual(MB_NS_PER_S);
	w.deadline = mb_env_deadline_in(3 * MB_NS_PER_S);
	pthread_create(&th, NULL, wait_thread, &w);
	CU_ASSERT_FALSE(mb_test_wait_flag(&w.done, 0.05));
	mb_env_clock_advance(3 * MB_NS_PER_S);
	CU_ASSERT_TRUE(mb_test_wait_flag(&w.done, 10.0));
	pthread_join(th, NULL);
	CU_ASSERT_EQUAL(w.rc, -ETIMEDOUT);
	mb_env_clock_use_real();

	w.done = 0;
	w.deadline = MB_DEADLINE_NONE;
	pthread_create(&th, NULL, wait_thread, &w);
	CU_ASSERT_FALSE(mb_test_wait_flag(&w.done, 0.05));
	mb_cancel_cancel(w.t);
	CU_ASSERT_TRUE(mb_test_wait_flag(&w.done, 10.0));
	pthread_join(th, NULL);
	CU_ASSERT_EQUAL(w.rc, 0);
	CU_ASSERT_EQUAL(mb_cancel_wait(w.t, 0), 0); /* cancelled: returns at once */
	mb_cancel_destroy(&w.t);
}

/* ---- stress: a 3-level tree, cancels from many threads at once ---- */

#define SUBSYS 8
#define PER_SUBSYS 64
#define CANCELLERS 8

struct node {
	struct mb_cancel *tok;
	struct mb_cancel_cb cb;
	atomic_int calls;
};

struct forest {
	struct mb_cancel *root;
	struct node sub[SUBSYS];
	struct node req[SUBSYS][PER_SUBSYS];
	atomic_int go;
};

struct canceller {
	struct forest *f;
	uint64_t rng;
	int register_races; /* callbacks registered and withdrawn meanwhile */
	int withdrawn_ran_late;
};

static void *
canceller(void *arg)
{
	struct canceller *c = arg;
	struct forest *f = c->f;

	while (!atomic_load(&f->go))
		;
	for (int i = 0; i < 200; i++) {
		uint64_t r = mb_test_rand(&c->rng);
		unsigned int s = (unsigned int)(r % SUBSYS);
		unsigned int q = (unsigned int)((r >> 8) % PER_SUBSYS);

		if (s < SUBSYS / 2) /* only the first half of the subsystems get hit */
			mb_cancel_cancel((r >> 20) & 1 ? f->req[s][q].tok : f->sub[s].tok);
		/* Race registrations against the cancels: once unregister returns, the
		 * callback must never run again. */
		{
			struct mb_cancel_cb cb = {0};
			atomic_int n = 0;
			int before;

			mb_cancel_register(f->req[s][q].tok, &cb, count_cb, &n);
			mb_cancel_unregister(f->req[s][q].tok, &cb);
			before = atomic_load(&n);
			sched_yield(); /* a run after unregister would show up now (ASan: on a dead
					  frame) */
			if (before > 1 || atomic_load(&n) != before)
				c->withdrawn_ran_late++;
			c->register_races++;
		}
	}
	mb_cancel_cancel(f->sub[0].tok); /* everyone cancels the same one, too */
	return NULL;
}

static void
test_stress_concurrent_cancel(void)
{
	struct forest *f = calloc(1, sizeof(*f));
	struct canceller c[CANCELLERS];
	pthread_t th[CANCELLERS];
	int wrong_calls = 0, wrong_state = 0, races = 0, late = 0;

	mb_cancel_create(NULL, &f->root);
	for (int s = 0; s < SUBSYS; s++) {
		mb_cancel_create(f->root, &f->sub[s].tok);
		mb_cancel_register(f->sub[s].tok, &f->sub[s].cb, count_cb, &f->sub[s].calls);
		for (int q = 0; q < PER_SUBSYS; q++) {
			mb_cancel_create(f->sub[s].tok, &f->req[s][q].tok);
			mb_cancel_register(f->req[s][q].tok, &f->req[s][q].cb, count_cb,
					   &f->req[s][q].calls);
		}
	}
	for (int i = 0; i < CANCELLERS; i++) {
		c[i] = (struct canceller){.f = f, .rng = 0x1234567ull * (i + 1)};
		pthread_create(&th[i], NULL, canceller, &c[i]);
	}
	atomic_store(&f->go, 1);
	for (int i = 0; i < CANCELLERS; i++) {
		pthread_join(th[i], NULL);
		races += c[i].register_races;
		late += c[i].withdrawn_ran_late;
	}
	/* Subsystem 0 was cancelled by everyone: it and all its requests, exactly once. */
	for (int s = 0; s < SUBSYS; s++) {
		bool sub_cancelled = mb_cancel_is_cancelled(f->sub[s].tok);

		if (atomic_load(&f->sub[s].calls) != (sub_cancelled ? 1 : 0))
			wrong_calls++;
		if (s >= SUBSYS / 2 && sub_cancelled)
			wrong_state++; /* nobody cancelled these */
		for (int q = 0; q < PER_SUBSYS; q++) {
			bool rq = mb_cancel_is_cancelled(f->req[s][q].tok);

			if (sub_cancelled && !rq)
				wrong_state++; /* a cancelled parent's child must be cancelled */
			if (s >= SUBSYS / 2 && rq)
				wrong_state++;
			if (atomic_load(&f->req[s][q].calls) != (rq ? 1 : 0))
				wrong_calls++;
		}
	}
	CU_ASSERT_TRUE(mb_cancel_is_cancelled(f->sub[0].tok));
	CU_ASSERT_FALSE(mb_cancel_is_cancelled(f->root));
	CU_ASSERT_EQUAL(wrong_calls, 0);
	CU_ASSERT_EQUAL(wrong_state, 0);
	CU_ASSERT_EQUAL(late, 0);
	CU_ASSERT_EQUAL(races, CANCELLERS * 200);
	/* Finally the root: every callback has run exactly once. */
	mb_cancel_cancel(f->root);
	wrong_calls = 0;
	for (int s = 0; s < SUBSYS; s++) {
		if (atomic_load(&f->sub[s].calls) != 1)
			wrong_calls++;
		for (int q = 0; q < PER_SUBSYS; q++)
			if (atomic_load(&f->req[s][q].calls) != 1)
				wrong_calls++;
	}
	CU_ASSERT_EQUAL(wrong_calls, 0);
	for (int s = 0; s < SUBSYS; s++) {
		for (int q = 0; q < PER_SUBSYS; q++)
			mb_cancel_destroy(&f->req[s][q].tok);
		mb_cancel_destroy(&f->sub[s].tok);
	}
	mb_cancel_destroy(&f->root);
	free(f);
}

static const struct mb_test_case unit_cases[] = {
	{"cancel reaches descendants, never ancestors", test_tree_propagation},
	{"a child of a cancelled token is born cancelled", test_born_cancelled},
	{"callbacks run once; late registration runs at once", test_callbacks_once},
	{"unregister prevents the run; registration reusable", test_unregister_prevents_run},
	{"callbacks may unregister themselves and cancel others", test_callback_reentrancy},
	{"destroy re-parents children and drops callbacks", test_destroy_reparents},
	{"wait: virtual deadline, and wake on cancel", test_wait},
	{NULL, NULL},
};

static const struct mb_test_case stress_cases[] = {
	{"8 threads cancelling a 3-level tree at once", test_stress_concurrent_cancel},
	{NULL, NULL},
};

static const struct mb_test_suite unit_suite = {"cancel", NULL, NULL, unit_cases};
static const struct mb_test_suite stress_suite = {"cancel stress", NULL, NULL, stress_cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&unit_suite, &stress_suite, NULL};

	return mb_test_main("cancel_test", suites);
}
