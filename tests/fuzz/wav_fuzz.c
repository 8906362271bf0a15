/*
 * wav_fuzz.c: libFuzzer target for the WAV reader of the `mediabatch` CLI (load_wav() in
 * app/mediabatch/main.c, behind `mediabatch send --wav FILE`).
 *
 * The reader is a static function of the CLI's main.c, so this file includes that source
 * with its main() renamed; nothing else of the CLI runs. The input is the file: written to
 * this process's scratch file, then read the way --wav reads it. The reader's complaints go
 * to stderr, which is silenced (MB_FUZZ_VERBOSE=1 shows them).
 *
 * Checked: a refused file leaves nothing allocated; an accepted one is 16 kHz mono 16-bit
 * PCM with its samples copied out whole (an even byte count, no more than the file holds,
 * equal to the bytes of the last "data" chunk read), and a request header for exactly that
 * payload.
 */
#include "mb_fuzz.h"

#define main mb_cli_main
int mb_cli_main(int argc, char **argv);
#include "../../app/mediabatch/main.c"
#undef main

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	mb_fuzz_init(1);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = mb_fuzz_scratch("wav", ".wav", data, size);
	struct media m;
	const uint8_t *found = NULL;
	int rc;

	memset(&m, 0, sizeof(m));
	rc = load_wav(path, &m);
	MB_FUZZ_CHECK(rc == 0 || rc == -1, "rc %d", rc);
	if (rc != 0) {
		MB_FUZZ_CHECK(m.bytes == NULL && m.len == 0, "a refused file left media behind");
		return 0;
	}
	MB_FUZZ_CHECK(size >= 12 && memcmp(data, "RIFF", 4) == 0 &&
			      memcmp(data + 8, "WAVE", 4) == 0,
		      "accepted without a RIFF/WAVE header");
	MB_FUZZ_CHECK(m.bytes != NULL && m.len % 2 == 0 && m.len <= size - 12,
		      "%u bytes of samples from a %zu-byte file", m.len, size);
	MB_FUZZ_CHECK(m.hdr.media == MB_MEDIA_PCM_S16LE && m.hdr.channels == 1 &&
			      m.hdr.sample_rate == 16000 && m.hdr.payload_len == m.len,
		      "request header");
	/* the samples are the bytes after the last "data" chunk header the reader walked to */
	for (size_t off = 12; off + 8 <= size;) {
		uint32_t n = rd32(data + off + 4);

		if (n > size - off - 8)
			n = (uint32_t)(size - off - 8);
		if (memcmp(data + off, "data", 4) == 0)
			found = data + off + 8;
		off += 8 + (size_t)n + (n & 1);
	}
	MB_FUZZ_CHECK(found != NULL && (size_t)(found - data) + m.len <= size &&
			      memcmp(found, m.bytes, m.len) == 0,
		      "the samples are not the data chunk's bytes");
	free(m.bytes);
	return 0;
}
