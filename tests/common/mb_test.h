/**
 * @file
 * Shared scaffolding for mediabatch's CUnit test programs.
 *
 * Each program lists its suites as a NULL-terminated array of struct mb_test_suite and calls
 * mb_test_main(). The exit status is the number of failed assertions (capped at 100, so it
 * never wraps to 0), 99 for a CUnit framework error or a program that ran no test, and 77
 * for a skip (meson shows SKIP): CU_basic_run_tests() itself only reports framework errors.
 *
 * CUnit's assertions are not thread-safe: worker threads in stress tests record what they
 * saw, and the main thread asserts after joining them.
 */
#ifndef MB_TEST_H
#define MB_TEST_H

#include <CUnit/Basic.h>
#include <stdbool.h>
#include <stdint.h>

#define MB_TEST_EXIT_SKIP 77

struct mb_test_case {
	const char *name;
	void (*fn)(void);
};

struct mb_test_suite {
	const char *name;
	int (*init)(void);		  /**< may be NULL */
	int (*cleanup)(void);		  /**< may be NULL */
	const struct mb_test_case *cases; /**< terminated by {NULL, NULL} */
};

/** Register @p suites (NULL-terminated), run them verbosely, return the exit status. */
int mb_test_main(const char *program, const struct mb_test_suite *const *suites);

/** Print "SKIP: <why>" and exit 77 (before any suite runs). */
void mb_test_skip(const char *why) __attribute__((noreturn));

/** Bring EAL up with the embedded default for this test program; aborts on failure. */
void mb_test_eal_up(const char *program);

/** Shut EAL down (call at the end of main, after every DPDK object is freed). */
void mb_test_eal_down(void);

/** Absolute path of a file under tests/fixtures/ (static buffer; one at a time). */
const char *mb_test_fixture(const char *relative);

/** Absolute path of a file in the source tree (static buffer; one at a time). */
const char *mb_test_source_path(const char *relative);

/**
 * Write @p text to a new temporary file and return its path (static buffer; one at a time;
 * the file is removed at exit).
 */
const char *mb_test_write_temp(const char *text);

/**
 * A new private temporary directory for this program (made at the first call, the same one
 * after), removed with what it holds at exit. Exits 99 when it cannot be made.
 */
const char *mb_test_temp_dir(void);

/** CLOCK_MONOTONIC in milliseconds (for a test's own deadlines). */
uint64_t mb_test_now_ms(void);

/** A small deterministic PRNG (xorshift64*) for tests; one state per thread. */
static inline uint64_t
mb_test_rand(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * UINT64_C(2685821657736338717);
}

/** Join-or-fail helper: wait up to @p seconds of real time for @p flag to become true. */
bool mb_test_wait_flag(const volatile int *flag, double seconds);

#endif /* MB_TEST_H */
