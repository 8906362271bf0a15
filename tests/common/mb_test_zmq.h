/*
 * mb_test_zmq.h: what the tests' fake daemons share (header only, for the tests that link
 * libzmq): reading one whole multipart message.
 */
#ifndef MB_TEST_ZMQ_H
#define MB_TEST_ZMQ_H

#include <zmq.h>

/*
 * Read one whole message from @p sock (@p flags for its first frame: 0 or ZMQ_DONTWAIT; the
 * rest of a message arrives with it), keeping its first @p max frames in @p m (initialised
 * here; the caller closes the first min(n, max)) and dropping the rest. Returns n, the
 * number of frames the message had, or 0 when the first read failed (nothing kept).
 */
static inline int
mb_test_zmq_recv(void *sock, zmq_msg_t *m, int max, int flags)
{
	int n = 0, more = 1;

	while (more) {
		zmq_msg_t x;

		zmq_msg_init(&x);
		if (zmq_msg_recv(&x, sock, n == 0 ? flags : 0) < 0) {
			zmq_msg_close(&x);
			break;
		}
		more = zmq_msg_more(&x);
		if (n < max) {
			zmq_msg_init(&m[n]);
			zmq_msg_move(&m[n], &x);
		}
		zmq_msg_close(&x);
		n++;
	}
	return n;
}

#endif /* MB_TEST_ZMQ_H */
