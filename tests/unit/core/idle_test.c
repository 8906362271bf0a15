/*
 * idle_test.c: idle policies and busy/idle accounting.
 */
#include <errno.h>
#include <stdatomic.h>

#include "mb_env.h"
#include "mb_idle.h"
#include "mb_test.h"

static void
test_parse_and_init(void)
{
	struct mb_idle_opts o;
	struct mb_idle idle;
	enum mb_idle_mode m;

	CU_ASSERT_EQUAL(mb_idle_parse_mode("spin", &m), 0);
	CU_ASSERT_EQUAL(m, MB_IDLE_SPIN);
	CU_ASSERT_EQUAL(mb_idle_parse_mode("yield", &m), 0);
	CU_ASSERT_EQUAL(m, MB_IDLE_YIELD);
	CU_ASSERT_EQUAL(mb_idle_parse_mode("sleep", &m), 0);
	CU_ASSERT_EQUAL(m, MB_IDLE_SLEEP);
	CU_ASSERT_EQUAL(mb_idle_parse_mode("nap", &m), -EINVAL);
	CU_ASSERT_EQUAL(mb_idle_parse_mode(NULL, &m), -EINVAL);

	mb_idle_opts_init(&o);
	CU_ASSERT_EQUAL(o.mode, MB_IDLE_SLEEP);
	CU_ASSERT_EQUAL(mb_idle_init(&idle, &o), 0);
	o.sleep_ns = 0;
	CU_ASSERT_EQUAL(mb_idle_init(&idle, &o), -EINVAL);
	o.mode = (enum mb_idle_mode)9;
	CU_ASSERT_EQUAL(mb_idle_init(&idle, &o), -EINVAL);
}

static void
test_accounting(void)
{
	struct mb_idle_opts o;
	struct mb_idle idle;
	struct mb_idle_stats s;

	mb_idle_opts_init(&o);
	CU_ASSERT_EQUAL_FATAL(mb_idle_init(&idle, &o), 0);
	for (int i = 0; i < 10; i++)
		mb_idle_account(&idle, 3);
	for (int i = 0; i < 4; i++)
		mb_idle_account(&idle, 0);
	mb_idle_stats(&idle, &s);
	CU_ASSERT_EQUAL(s.busy_polls, 10);
	CU_ASSERT_EQUAL(s.idle_polls, 4);
	CU_ASSERT(s.busy_tsc + s.idle_tsc > 0);
}

static void
test_spin_never_sleeps(void)
{
	struct mb_idle_opts o = {.mode = MB_IDLE_SPIN, .spin_polls = 0, .sleep_ns = MB_NS_PER_S};
	struct mb_idle idle;
	struct mb_idle_stats s;

	CU_ASSERT_EQUAL_FATAL(mb_idle_init(&idle, &o), 0);
	for (int i = 0; i < 10000; i++)
		mb_idle_pause(&idle, NULL, NULL, NULL, MB_DEADLINE_NONE);
	mb_idle_stats(&idle, &s);
	CU_ASSERT_EQUAL(s.sleeps, 0);
	CU_ASSERT_EQUAL(s.yields, 0);
}

static void
test_yield_after_spins(void)
{
	struct mb_idle_opts o = {.mode = MB_IDLE_YIELD, .spin_polls = 5, .sleep_ns = 1};
	struct mb_idle idle;
	struct mb_idle_stats s;

	CU_ASSERT_EQUAL_FATAL(mb_idle_init(&idle, &o), 0);
	for (int i = 0; i < 8; i++)
		mb_idle_pause(&idle, NULL, NULL, NULL, MB_DEADLINE_NONE);
	mb_idle_stats(&idle, &s);
	CU_ASSERT_EQUAL(s.yields, 3); /* polls 6, 7, 8 */
	mb_idle_account(&idle, 1);    /* work resets the streak */
	mb_idle_pause(&idle, NULL, NULL, NULL, MB_DEADLINE_NONE);
	mb_idle_stats(&idle, &s);
	CU_ASSERT_EQUAL(s.yields, 3);
}

static bool
always_work(void *arg)
{
	(*(int *)arg)++;
	return true;
}

static void
test_sleep_with_doorbell(void)
{
	struct mb_idle_opts o = {
		.mode = MB_IDLE_SLEEP, .spin_polls = 0, .sleep_ns = 10 * MB_NS_PER_S};
	struct mb_idle idle;
	struct mb_idle_stats s;
	struct mb_doorbell db;
	int rechecks = 0;
	uint64_t t0;

	CU_ASSERT_EQUAL_FATAL(mb_idle_init(&idle, &o), 0);
	CU_ASSERT_EQUAL_FATAL(mb_doorbell_init(&db), 0);
	/* The recheck finds work: no sleep at all, announcement withdrawn. */
	mb_idle_pause(&idle, &db, always_work, &rechecks, MB_DEADLINE_NONE);
	mb_idle_stats(&idle, &s);
	CU_ASSERT_EQUAL(rechecks, 1);
	CU_ASSERT_EQUAL(s.sleeps, 0);
	CU_ASSERT_EQUAL(atomic_load(&db.waiters), 0);
	/* No work, and the caller's own limit is 2 ms: the sleep is capped by it. */
	t0 = mb_env_now_ns();
	mb_idle_pause(&idle, &db, NULL, NULL, 2 * MB_NS_PER_MS);
	CU_ASSERT(mb_env_now_ns() - t0 < 1 * MB_NS_PER_S); /* not the 10 s sleep_ns */
	mb_idle_stats(&idle, &s);
	CU_ASSERT_EQUAL(s.sleeps, 1);
	CU_ASSERT_EQUAL(s.bell_wakeups, 0);
	/* Without a doorbell it sleeps for real, capped the same way. */
	mb_idle_pause(&idle, NULL, NULL, NULL, 1 * MB_NS_PER_MS);
	mb_idle_stats(&idle, &s);
	CU_ASSERT_EQUAL(s.sleeps, 2);
	mb_doorbell_fini(&db);
}

/* mb_idle_spinning() says true exactly while the next empty poll only spins. */
static void
test_spinning(void)
{
	struct mb_idle_opts o = {.mode = MB_IDLE_SLEEP, .spin_polls = 8, .sleep_ns = MB_NS_PER_MS};
	struct mb_idle idle;
	struct mb_idle_stats s;

	CU_ASSERT_EQUAL_FATAL(mb_idle_init(&idle, &o), 0);
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 8; i++) {
			CU_ASSERT_TRUE(mb_idle_spinning(&idle));
			mb_idle_pause(&idle, NULL, NULL, NULL, 1 * MB_NS_PER_MS);
		}
		mb_idle_stats(&idle, &s);
		CU_ASSERT_EQUAL(s.sleeps, (uint64_t)round); /* eight spins, no sleep */
		CU_ASSERT_FALSE(mb_idle_spinning(&idle));
		mb_idle_pause(&idle, NULL, NULL, NULL, 1 * MB_NS_PER_MS); /* the ninth sleeps */
		mb_idle_stats(&idle, &s);
		CU_ASSERT_EQUAL(s.sleeps, (uint64_t)round + 1);
		CU_ASSERT_FALSE(mb_idle_spinning(&idle));
		mb_idle_account(&idle, 1); /* work: the next streak spins again */
	}
	o.mode = MB_IDLE_SPIN; /* never "only spinning": its caller reads its clock each poll */
	CU_ASSERT_EQUAL_FATAL(mb_idle_init(&idle, &o), 0);
	CU_ASSERT_FALSE(mb_idle_spinning(&idle));
}

static const struct mb_test_case cases[] = {
	{"mode names and option checks", test_parse_and_init},
	{"busy and idle polls are counted", test_accounting},
	{"spin never yields or sleeps", test_spin_never_sleeps},
	{"yield after spin_polls empty polls; work resets", test_yield_after_spins},
	{"sleep rechecks, caps at the caller's limit", test_sleep_with_doorbell},
	{"spinning: true exactly while an empty poll only spins", test_spinning},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"idle", NULL, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("idle_test", suites);
}
