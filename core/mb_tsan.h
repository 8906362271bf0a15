/**
 * @file
 * ThreadSanitizer annotations for hand-offs that run through uninstrumented libraries.
 *
 * libzmq is not built with TSan, so the synchronisation inside it (its lock-free pipes
 * between a socket's thread and its I/O thread) is invisible: a buffer that one of our
 * threads fills and libzmq's I/O thread later frees through our callback looks like a race.
 * MB_TSAN_RELEASE(p) before handing @p to the library and MB_TSAN_ACQUIRE(p) where the
 * library hands it back state the happens-before edge the library provides. Outside a
 * -fsanitize=thread build both expand to nothing.
 */
#ifndef MB_TSAN_H
#define MB_TSAN_H

#if defined(__SANITIZE_THREAD__)
#define MB_HAVE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MB_HAVE_TSAN 1
#endif
#endif

#ifdef MB_HAVE_TSAN
#include <sanitizer/tsan_interface.h>
#define MB_TSAN_RELEASE(p) __tsan_release((void *)(p))
#define MB_TSAN_ACQUIRE(p) __tsan_acquire((void *)(p))
#else
#define MB_TSAN_RELEASE(p) ((void)(p))
#define MB_TSAN_ACQUIRE(p) ((void)(p))
#endif

#endif /* MB_TSAN_H */
