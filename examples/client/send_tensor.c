/*
 * send_tensor.c: a complete C client of mediabatch, built against the installed library.
 *
 * Sends one F32 tensor [rows x cols], read as text from standard input (rows * cols
 * numbers), to a model, and prints the result: its status, then its rows of numbers (F32
 * results) or its bytes (others).
 *
 *   cc send_tensor.c $(pkg-config --cflags --libs mediabatch) -o send_tensor
 *   echo 1 2 3 4 | ./send_tensor tcp://127.0.0.1:7400 identity 2 2
 *
 * See README.md, "From C: libmediabatch", and docs/protocol.md.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mediabatch/client.h>

int
main(int argc, char **argv)
{
	struct mb_client_opts opts = {0};
	struct mb_client *c = NULL;
	struct mb_client_response r;
	struct mb_request_hdr h;
	char err[256];
	unsigned long rows, cols;
	float *x;
	int rc = 1, e;

	if (argc != 5) {
		fprintf(stderr, "usage: %s ENDPOINT MODEL ROWS COLS < numbers\n", argv[0]);
		return 2;
	}
	rows = strtoul(argv[3], NULL, 10);
	cols = strtoul(argv[4], NULL, 10);
	if (rows == 0 || cols == 0 || rows > 65535 || cols > 65535) {
		fprintf(stderr, "%s: ROWS and COLS: 1..65535\n", argv[0]);
		return 2;
	}
	x = malloc(rows * cols * sizeof(*x));
	if (x == NULL)
		return 1;
	for (unsigned long i = 0; i < rows * cols; i++)
		if (scanf("%f", &x[i]) != 1) {
			fprintf(stderr, "%s: expected %lu numbers on standard input\n", argv[0],
				rows * cols);
			free(x);
			return 2;
		}

	opts.endpoint = argv[1];
	if (mb_client_connect(&opts, &c, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: %s\n", argv[0], err);
		free(x);
		return 1;
	}
	/* tenant 1, request id 1: ids are the client's own, unique per tenant while in flight */
	mb_client_tensor_hdr(&h, argv[2], 1, 1, (uint16_t)rows, (uint16_t)cols);
	if (mb_client_send(c, &h, x, rows * cols * sizeof(*x)) < 0) {
		fprintf(stderr, "%s: send failed\n", argv[0]);
		goto out;
	}
	/* r holds a response to free only when this returns 0 */
	e = mb_client_recv(c, &r, 10000);
	if (e != 0) {
		/* -EPROTO: a malformed response (not docs/protocol.md's layout), refused */
		fprintf(stderr, "%s: %s\n", argv[0],
			e == -ETIMEDOUT ? "no answer within 10 s" : strerror(-e));
		goto out;
	}
	printf("%s", mb_status_name(r.hdr.status));
	if (r.hdr.status != MB_STATUS_OK) {
		printf(": %.*s\n", (int)r.len, (const char *)r.data);
	} else if (r.hdr.result_type == MB_RESULT_F32) {
		/* rows x cols floats: mb_client_recv() refuses a result of another length */
		const float *y = r.data;

		printf(" [%u x %u]\n", r.hdr.rows, r.hdr.cols);
		for (unsigned i = 0; i < r.hdr.rows; i++)
			for (unsigned j = 0; j < r.hdr.cols; j++)
				printf("%.9g%c", y[(size_t)i * r.hdr.cols + j],
				       j + 1 == r.hdr.cols ? '\n' : ' ');
	} else {
		printf(" %zu bytes\n", r.len);
	}
	rc = r.hdr.status == MB_STATUS_OK ? 0 : 1;
	mb_client_response_free(&r);
out:
	mb_client_close(&c);
	free(x);
	return rc;
}
