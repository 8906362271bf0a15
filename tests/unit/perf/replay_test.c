/*
 * replay_test.c: mediabatch-perf's --media (perf/replay.c): the raw video naming rule; a
 * directory loaded for a mix (which files each model takes, the audio rates, the payload
 * lengths after resampling, name order, what is left out); the request headers and the round
 * robin of mb_replay_next(), also through the load generator; and the refusals (unknown
 * model, files no model takes, a model with no files, the memory bound, bad files).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mb_loadgen.h"
#include "mb_replay.h"
#include "mb_test.h"

static const char *g_root;

static void
test_video_names(void)
{
	uint16_t f = 0, h = 0, w = 0;

	CU_ASSERT_EQUAL(mb_replay_video_shape("clip.16x224x224.rgb", &f, &h, &w), 1);
	CU_ASSERT(f == 16 && h == 224 && w == 224);
	CU_ASSERT_EQUAL(mb_replay_video_shape("a.b.2x3x4.rgb", &f, &h, &w), 1);
	CU_ASSERT(f == 2 && h == 3 && w == 4);
	CU_ASSERT_EQUAL(mb_replay_video_shape("1x1x65535.rgb", &f, &h, &w), 1);
	CU_ASSERT(f == 1 && h == 1 && w == 65535);
	CU_ASSERT_EQUAL(mb_replay_video_shape("clip.wav", &f, &h, &w), 0);
	CU_ASSERT_EQUAL(mb_replay_video_shape("clip.rgb24", &f, &h, &w), 0);
	CU_ASSERT_EQUAL(mb_replay_video_shape("rgb", &f, &h, &w), 0);
	CU_ASSERT_EQUAL(mb_replay_video_shape("clip.rgb", &f, &h, &w), -1);
	CU_ASSERT_EQUAL(mb_replay_video_shape(".rgb", &f, &h, &w), -1);
	CU_ASSERT_EQUAL(mb_replay_video_shape("c.16x224.rgb", &f, &h, &w), -1);
	CU_ASSERT_EQUAL(mb_replay_video_shape("c.0x8x8.rgb", &f, &h, &w), -1);
	CU_ASSERT_EQUAL(mb_replay_video_shape("c.65536x8x8.rgb", &f, &h, &w), -1);
	CU_ASSERT_EQUAL(mb_replay_video_shape("c.+2x8x8.rgb", &f, &h, &w), -1);
	CU_ASSERT_EQUAL(mb_replay_video_shape("c. 2x8x8.rgb", &f, &h, &w), -1);
	CU_ASSERT_EQUAL(mb_replay_video_shape("c.2x8x8x.rgb", &f, &h, &w), -1);
	CU_ASSERT_EQUAL(mb_replay_video_shape("c.2X8X8.rgb", &f, &h, &w), -1);
	CU_ASSERT_EQUAL(mb_replay_video_shape("c.0000002x8x8.rgb", &f, &h, &w), -1);
}

/* A 16-bit PCM mono WAV of @frames samples at @rate, written byte by byte. */
static void
write_wav(const char *path, uint32_t rate, uint32_t frames)
{
	uint32_t data = frames * 2, v;
	FILE *f = fopen(path, "wb");
	uint8_t h[44] = {'R', 'I', 'F', 'F', 0,	 0, 0,	 0,   'W', 'A', 'V', 'E', 'f', 'm', 't',
			 ' ', 16,  0,	0,   0,	 1, 0,	 1,   0,   0,	0,   0,	  0,   0,   0,
			 0,   0,   2,	0,   16, 0, 'd', 'a', 't', 'a', 0,   0,	  0,   0};

	CU_ASSERT_FATAL(f != NULL);
	v = 36 + data;
	memcpy(h + 4, &v, 4); /* little-endian hosts only, as the rest of the project */
	memcpy(h + 24, &rate, 4);
	v = rate * 2;
	memcpy(h + 28, &v, 4);
	memcpy(h + 40, &data, 4);
	CU_ASSERT(fwrite(h, 1, 44, f) == 44);
	for (uint32_t i = 0; i < frames; i++) {
		int16_t s = (int16_t)lrint(8000 * sin(2 * M_PI * 440.0 * i / rate));

		CU_ASSERT(fwrite(&s, 2, 1, f) == 1);
	}
	fclose(f);
}

static void
write_bytes(const char *path, size_t n)
{
	FILE *f = fopen(path, "wb");

	CU_ASSERT_FATAL(f != NULL);
	for (size_t i = 0; i < n; i++)
		fputc((int)(i & 0xff), f);
	fclose(f);
}

/* A new directory under the test's temp dir. */
static const char *
new_dir(const char *name)
{
	static char buf[8][512];
	static int next;
	char *p = buf[next++ % 8];

	snprintf(p, sizeof(buf[0]), "%s/%s", g_root, name);
	CU_ASSERT_FATAL(mkdir(p, 0755) == 0);
	return p;
}

static const char *
in(const char *dir, const char *name)
{
	static char buf[4][600];
	static int next;
	char *p = buf[next++ % 4];

	snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
	return p;
}

static void
parse_mix(const char *spec, struct mb_mix *m)
{
	char err[256];

	CU_ASSERT_FATAL(mb_mix_parse(spec, m, err, sizeof(err)) == 0);
}

static int
find(const struct mb_replay *r, const char *name)
{
	for (uint32_t i = 0; i < r->n_files; i++)
		if (strcmp(r->files[i].name, name) == 0)
			return (int)i;
	return -1;
}

static void
test_load_and_cycle(void)
{
	const char *dir = new_dir("mixed");
	struct mb_replay *r = NULL;
	struct mb_mix mix;
	struct mb_request_hdr h;
	const void *p;
	uint32_t file;
	char err[512];
	int a, b, v;

	write_wav(in(dir, "b.wav"), 22050, 4410); /* 0.2 s: 3200 at 16 kHz, 9600 at 48 kHz */
	write_wav(in(dir, "a.wav"), 16000, 1600); /* 0.1 s: 1600 and 4800 */
	write_bytes(in(dir, "v.2x4x8.rgb"), 2 * 4 * 8 * 3);
	write_bytes(in(dir, ".hidden.wav"), 3);
	CU_ASSERT_FATAL(mkdir(in(dir, "sub"), 0755) == 0);
	parse_mix("logmel:1,clap:1,videomae:1,identity:1", &mix);
	CU_ASSERT_EQUAL_FATAL(mb_replay_load(dir, &mix, 1 << 20, &r, err, sizeof(err)), 0);
	CU_ASSERT(r->n_files == 3 && r->n_audio == 2 && r->n_video == 1);
	/* name order, the hidden file and the subdirectory left out */
	CU_ASSERT_STRING_EQUAL(r->files[0].name, "a.wav");
	CU_ASSERT_STRING_EQUAL(r->files[1].name, "b.wav");
	CU_ASSERT_STRING_EQUAL(r->files[2].name, "v.2x4x8.rgb");
	CU_ASSERT(r->n_rates == 2 && r->rates[0] == 16000 && r->rates[1] == 48000);
	a = find(r, "a.wav");
	b = find(r, "b.wav");
	v = find(r, "v.2x4x8.rgb");
	CU_ASSERT_FATAL(a >= 0 && b >= 0 && v >= 0);
	CU_ASSERT(r->files[a].len[0] == 3200 && r->files[a].len[1] == 9600);
	CU_ASSERT(r->files[b].len[0] == 6400 && r->files[b].len[1] == 19200);
	CU_ASSERT(r->files[b].rate == 22050 && r->files[b].channels == 1);
	CU_ASSERT(r->files[v].len[0] == 192 && r->files[v].frames == 2);
	CU_ASSERT(r->files[v].height == 4 && r->files[v].width == 8);
	CU_ASSERT_EQUAL(r->bytes, 3200 + 9600 + 6400 + 19200 + 192);
	/* the files of each model: logmel and clap audio, videomae video, identity all */
	CU_ASSERT(r->model[0].n == 2 && r->model[1].n == 2 && r->model[2].n == 1 &&
		  r->model[3].n == 3);

	/* logmel: a, b, a at 16 kHz */
	for (int i = 0; i < 3; i++) {
		p = mb_replay_next(r, 0, 7, 100 + (uint64_t)i, &h, &file);
		CU_ASSERT_EQUAL(file, (uint32_t)(i == 1 ? b : a));
		CU_ASSERT_STRING_EQUAL(h.model, "logmel");
		CU_ASSERT(h.media == MB_MEDIA_PCM_S16LE && h.sample_rate == 16000);
		CU_ASSERT(h.tenant_id == 7 && h.request_id == 100 + (uint64_t)i);
		CU_ASSERT(h.payload_len == r->files[file].len[0] && p == r->files[file].payload[0]);
	}
	/* clap: its own place, 48 kHz */
	p = mb_replay_next(r, 1, 0, 1, &h, &file);
	CU_ASSERT(file == (uint32_t)a && h.sample_rate == 48000 && h.payload_len == 9600 &&
		  p == r->files[a].payload[1]);
	/* videomae: the video, its shape in the header */
	p = mb_replay_next(r, 2, 0, 2, &h, &file);
	CU_ASSERT(file == (uint32_t)v && h.media == MB_MEDIA_RGB24 && h.frames == 2 &&
		  h.height == 4 && h.width == 8 && h.payload_len == 192 &&
		  p == r->files[v].payload[0]);
	/* identity: every file in turn, audio at 16 kHz */
	for (int i = 0; i < 4; i++) {
		mb_replay_next(r, 3, 0, 3, &h, &file);
		CU_ASSERT_EQUAL(file, (uint32_t)(i % 3));
	}
	mb_replay_destroy(&r);
	CU_ASSERT_PTR_NULL(r);
	mb_replay_destroy(&r);
}

/* Through the load generator: the mix draws the model, the replay gives the payload. */
static void
test_loadgen_with_replay(void)
{
	const char *dir = new_dir("lg");
	struct mb_replay *r = NULL;
	struct mb_mix mix;
	struct mb_dist d = {MB_DIST_FIXED, 1, 1};
	struct mb_loadgen lg;
	struct mb_request_hdr h;
	char err[512];
	int per_model[2] = {0, 0};

	write_wav(in(dir, "a.wav"), 16000, 800);
	write_bytes(in(dir, "v.1x2x2.rgb"), 12);
	parse_mix("logmel:1,identity:1", &mix);
	CU_ASSERT_EQUAL_FATAL(mb_replay_load(dir, &mix, 1 << 20, &r, err, sizeof(err)), 0);
	CU_ASSERT_FATAL(mb_loadgen_init(&lg, &mix, &d, 1024, 0, 250, 5) == 0);
	CU_ASSERT_PTR_NULL(lg.payload);
	CU_ASSERT_EQUAL(lg.file, -1);
	mb_loadgen_set_replay(&lg, r);
	for (uint64_t id = 1; id <= 200; id++) {
		int m = mb_loadgen_next(&lg, id, &h);

		CU_ASSERT_FATAL(m == 0 || m == 1);
		per_model[m]++;
		CU_ASSERT(lg.file >= 0 && lg.payload != NULL && h.request_id == id);
		CU_ASSERT(h.timeout_ms == 250);
		if (m == 0) {
			CU_ASSERT(h.media == MB_MEDIA_PCM_S16LE && h.payload_len == 1600);
		} else {
			CU_ASSERT(h.payload_len == (lg.file == 0 ? 1600u : 12u));
		}
	}
	CU_ASSERT(per_model[0] > 60 && per_model[1] > 60);
	mb_replay_destroy(&r);
}

/* Expect mb_replay_load(@dir, @mix_spec, @max) to fail with @rc and @words in the message. */
static void
refused(const char *dir, const char *mix_spec, uint64_t max, int rc, const char *words)
{
	struct mb_replay *r = (struct mb_replay *)&r;
	struct mb_mix mix;
	char err[1024] = "";
	int got;

	parse_mix(mix_spec, &mix);
	got = mb_replay_load(dir, &mix, max, &r, err, sizeof(err));
	printf("\n    %s: %d %s", mix_spec, got, err);
	CU_ASSERT_EQUAL(got, rc);
	CU_ASSERT_PTR_NULL(r);
	CU_ASSERT(strstr(err, words) != NULL);
}

static void
test_refusals(void)
{
	const char *empty = new_dir("empty"), *audio = new_dir("audio"), *video = new_dir("video");
	const char *bad = new_dir("bad"), *shape = new_dir("shape");
	char missing[600];

	snprintf(missing, sizeof(missing), "%s/missing", g_root);
	write_wav(in(audio, "a.wav"), 16000, 16000); /* 32000 bytes at 16 kHz */
	write_bytes(in(video, "v.1x2x2.rgb"), 12);
	write_bytes(in(bad, "notes.txt"), 50);
	write_bytes(in(shape, "v.1x2x2.rgb"), 11);

	refused(empty, "identity", 1 << 20, -ENODATA, "no files in it");
	refused(missing, "identity", 1 << 20, -ENOENT, "No such file");
	refused(audio, "nosuch", 1 << 20, -EINVAL, "does not know what media model 'nosuch'");
	refused(audio, "videomae", 1 << 20, -EINVAL, "audio file(s) (the first: a.wav) go to no");
	refused(video, "whisper", 1 << 20, -EINVAL, "video file(s) (the first: v.1x2x2.rgb)");
	refused(audio, "logmel,videomae", 1 << 20, -EINVAL, "model 'videomae' of the mix takes");
	/* 32000 bytes at 16 kHz, 96000 more at 48 kHz */
	refused(audio, "logmel,clap", 100000, -EFBIG, "take 0.1 MiB (128000 bytes) in memory");
	refused(bad, "identity", 1 << 20, -EINVAL, "notes.txt: not an audio file");
	refused(shape, "identity", 1 << 20, -EINVAL, "11 bytes, but 1 frames of 2x2 RGB24 are 12");
	{
		struct mb_replay *r = NULL;
		struct mb_mix mix;
		char err[256];

		parse_mix("logmel,clap", &mix);
		CU_ASSERT_EQUAL(mb_replay_load(audio, &mix, 128000, &r, err, sizeof(err)), 0);
		CU_ASSERT(r != NULL && r->bytes == 128000);
		mb_replay_destroy(&r);
	}
}

static int
suite_init(void)
{
	g_root = mb_test_temp_dir();
	return 0;
}

static const struct mb_test_case cases[] = {
	{"raw video names: NAME.FxHxW.rgb", test_video_names},
	{"a directory for a mix: files per model, rates, lengths, round robin",
	 test_load_and_cycle},
	{"the load generator with a replay", test_loadgen_with_replay},
	{"refusals", test_refusals},
	{NULL, NULL},
};

static const struct mb_test_suite suite = {"mb_replay", suite_init, NULL, cases};

int
main(void)
{
	const struct mb_test_suite *suites[] = {&suite, NULL};

	return mb_test_main("replay_test", suites);
}
