/*
 * replay.c: --media DIR, real media files as mediabatch-perf's workload (mb_replay.h).
 *
 * Loading takes three passes over the directory's files, in name order. The first only
 * looks: a .rgb name must carry its shape and its size must be that shape's; any other file
 * must be audio libsndfile opens (mb_audio_probe(), the header alone). Then, before anything
 * is decoded, the checks that need the whole set: every file goes to some model of the mix,
 * every model has files, and the payloads to be held (each audio file resampled to each rate
 * a model takes, the video files as they are) fit the byte budget. The last pass reads: an
 * audio file is decoded once and resampled to each rate; a video file is read whole.
 *
 * Owns the files' payloads and the models' file lists until mb_replay_destroy(). The
 * requests borrow the payloads; mb_replay_next() only moves a model's place in its list.
 */
#include "mb_replay.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mb_audio.h"
#include "mediabatch/client.h"

#define MIB (1024.0 * 1024.0)

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Digits only (no sign, no space) as 1..65535; the end in *@end. */
static int
dim(const char *p, const char **end, uint16_t *out)
{
	unsigned long v = 0;
	const char *q = p;

	while (*q >= '0' && *q <= '9' && q - p < 6)
		v = v * 10 + (unsigned long)(*q++ - '0');
	if (q == p || v < 1 || v > 65535 || (*q >= '0' && *q <= '9'))
		return -1;
	*end = q;
	*out = (uint16_t)v;
	return 0;
}

int
mb_replay_video_shape(const char *name, uint16_t *frames, uint16_t *height, uint16_t *width)
{
	size_t n = strlen(name);
	const char *p, *end;

	if (n < 4 || strcmp(name + n - 4, ".rgb") != 0)
		return 0;
	/* the shape is the part after the last '.' before ".rgb" (or the whole stem) */
	end = name + n - 4;
	p = end;
	while (p > name && p[-1] != '.')
		p--;
	if (dim(p, &p, frames) < 0 || *p++ != 'x' || dim(p, &p, height) < 0 || *p++ != 'x' ||
	    dim(p, &p, width) < 0 || p != end)
		return -1;
	return 1;
}

/* Whether mix entry @e takes audio files / video files (identity takes both). */
static bool
takes(const struct mb_mix_entry *e, enum mb_media_kind kind)
{
	return e->kind == kind || strcmp(e->model, "identity") == 0;
}

void
mb_replay_destroy(struct mb_replay **rp)
{
	struct mb_replay *r = rp != NULL ? *rp : NULL;

	if (r == NULL)
		return;
	for (uint32_t i = 0; i < r->n_files && r->files != NULL; i++)
		for (int k = 0; k < MB_REPLAY_RATES; k++)
			free(r->files[i].payload[k]);
	free(r->files);
	for (int m = 0; m < MB_MIX_MAX; m++)
		free(r->model[m].files);
	free(r);
	*rp = NULL;
}

/* The models of @mix and the audio rates they take; 0 or -EINVAL with a message. */
static int
set_models(struct mb_replay *r, const struct mb_mix *mix, char *err, size_t err_len)
{
	r->n_models = mix->n;
	for (int i = 0; i < mix->n; i++) {
		const struct mb_mix_entry *e = &mix->e[i];
		struct mb_replay_model *m = &r->model[i];
		uint32_t rate;

		snprintf(m->model, sizeof(m->model), "%s", e->model);
		m->rate = -1;
		if (!takes(e, MB_KIND_AUDIO) && !takes(e, MB_KIND_VIDEO)) {
			snprintf(err, err_len,
				 "--media: mediabatch-perf does not know what media model '%s' "
				 "takes; with --media the mix may name logmel, whisper, clap "
				 "(audio), videomae (video) and identity (both)",
				 e->model);
			return -EINVAL;
		}
		if (!takes(e, MB_KIND_AUDIO))
			continue;
		rate = e->kind == MB_KIND_AUDIO ? e->rate : MB_LOADGEN_RATE;
		for (int k = 0; k < r->n_rates; k++)
			if (r->rates[k] == rate)
				m->rate = k;
		if (m->rate < 0) {
			if (r->n_rates == MB_REPLAY_RATES) {
				snprintf(err, err_len,
					 "--media: more than %d audio rates in the mix",
					 MB_REPLAY_RATES);
				return -EINVAL;
			}
			r->rates[r->n_rates] = rate;
			m->rate = r->n_rates++;
		}
	}
	return 0;
}

/* The regular files of @dir not starting with '.', sorted; *@n of them (malloc'd). */
static int
list_dir(const char *dir, char ***names, uint32_t *n, char *err, size_t err_len)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **v = NULL, path[4096];
	uint32_t cap = 0, count = 0;
	int rc = 0;

	*names = NULL;
	*n = 0;
	if (d == NULL) {
		rc = -errno;
		snprintf(err, err_len, "--media %s: %s", dir, strerror(errno));
		return rc;
	}
	while ((de = readdir(d)) != NULL) {
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue; /* subdirectories, sockets, dangling links: not files to send */
		if (strlen(de->d_name) >= sizeof(((struct mb_replay_file *)0)->name)) {
			snprintf(err, err_len, "--media %s: a file name longer than 255 bytes",
				 dir);
			rc = -EINVAL;
			break;
		}
		if (count == MB_REPLAY_MAX_FILES) {
			snprintf(err, err_len, "--media %s: more than %d files", dir,
				 MB_REPLAY_MAX_FILES);
			rc = -EFBIG;
			break;
		}
		if (count == cap) {
			char **w = realloc(v, sizeof(*v) * (cap ? cap * 2 : 64));

			if (w == NULL) {
				rc = -ENOMEM;
				break;
			}
			v = w;
			cap = cap ? cap * 2 : 64;
		}
		v[count] = strdup(de->d_name);
		if (v[count] == NULL) {
			rc = -ENOMEM;
			break;
		}
		count++;
	}
	closedir(d);
	if (rc == -ENOMEM)
		snprintf(err, err_len, "--media %s: out of memory", dir);
	if (rc == 0 && count == 0) {
		snprintf(err, err_len,
			 "--media %s: no files in it (audio files, or raw RGB24 video named "
			 "NAME.FRAMESxHEIGHTxWIDTH.rgb)",
			 dir);
		rc = -ENODATA;
	}
	if (rc < 0) {
		for (uint32_t i = 0; i < count; i++)
			free(v[i]);
		free(v);
		return rc;
	}
	qsort(v, count, sizeof(*v), cmp_str);
	*names = v;
	*n = count;
	return 0;
}

/* Pass 1 for file @f (named already): its kind and shape, its bytes once held in *@bytes. */
static int
look(struct mb_replay *r, struct mb_replay_file *f, uint64_t *bytes, char *err, size_t err_len)
{
	char path[4096];
	struct stat st;
	int shape;

	snprintf(path, sizeof(path), "%s/%s", r->dir, f->name);
	shape = mb_replay_video_shape(f->name, &f->frames, &f->height, &f->width);
	if (shape < 0) {
		snprintf(err, err_len,
			 "--media: %s: raw video must be named NAME.FRAMESxHEIGHTxWIDTH.rgb (each "
			 "1..65535), e.g. clip.16x224x224.rgb",
			 path);
		return -EINVAL;
	}
	if (shape > 0) {
		uint64_t want = (uint64_t)f->frames * f->height * f->width * 3;

		f->kind = MB_KIND_VIDEO;
		if (stat(path, &st) != 0) {
			int e = errno;

			snprintf(err, err_len, "--media: %s: %s", path, strerror(e));
			return -e;
		}
		if ((uint64_t)st.st_size != want) {
			snprintf(err, err_len,
				 "--media: %s: %" PRIu64 " bytes, but %u frames of %ux%u RGB24 "
				 "are %" PRIu64,
				 path, (uint64_t)st.st_size, f->frames, f->height, f->width, want);
			return -EINVAL;
		}
		if (want > MB_AUDIO_MAX_BYTES) {
			snprintf(err, err_len,
				 "--media: %s: %" PRIu64 " bytes, over the %u a request can carry",
				 path, want, MB_AUDIO_MAX_BYTES);
			return -EFBIG;
		}
		*bytes = want;
		r->n_video++;
		return 0;
	} else {
		struct mb_audio_info info;
		char why[1024];
		int rc = mb_audio_probe(path, &info, why, sizeof(why));

		f->kind = MB_KIND_AUDIO;
		if (rc < 0) {
			snprintf(err, err_len,
				 "--media: %s (--media takes audio files, and raw RGB24 video "
				 "named NAME.FRAMESxHEIGHTxWIDTH.rgb)",
				 why);
			return rc;
		}
		snprintf(f->format, sizeof(f->format), "%s", info.format);
		f->rate = info.rate;
		f->channels = info.channels;
		f->seconds = (double)info.frames / info.rate;
		*bytes = 0;
		for (int k = 0; k < r->n_rates; k++)
			*bytes +=
				2 * mb_audio_resampled_length(info.frames, info.rate, r->rates[k]);
		r->n_audio++;
		return 0;
	}
}

/* Pass 3 for file @f: its payloads. */
static int
read_payloads(struct mb_replay *r, struct mb_replay_file *f, char *err, size_t err_len)
{
	char path[4096], why[1024];
	int rc;

	snprintf(path, sizeof(path), "%s/%s", r->dir, f->name);
	if (f->kind == MB_KIND_VIDEO) {
		uint32_t want = (uint32_t)f->frames * f->height * f->width * 3;
		FILE *in = fopen(path, "rb");
		int e = errno;
		size_t got = 0;

		f->payload[0] = malloc(want);
		if (in != NULL && f->payload[0] != NULL)
			got = fread(f->payload[0], 1, want, in);
		if (in != NULL)
			fclose(in);
		if (got != want) {
			snprintf(err, err_len, "--media: %s: %s", path,
				 in == NULL		 ? strerror(e)
				 : f->payload[0] == NULL ? "out of memory"
							 : "shorter than when it was listed");
			return -EIO;
		}
		f->len[0] = want;
		r->bytes += want;
		return 0;
	}
	if (r->n_rates > 0) {
		struct mb_audio_clip clip;

		rc = mb_audio_read(path, &clip, why, sizeof(why));
		for (int k = 0; rc == 0 && k < r->n_rates; k++) {
			rc = mb_audio_to_pcm16(&clip, path, r->rates[k], 0, &f->payload[k],
					       &f->len[k], why, sizeof(why));
			r->bytes += f->len[k];
		}
		mb_audio_clip_fini(&clip);
		if (rc < 0) {
			snprintf(err, err_len, "--media: %s", why);
			return rc;
		}
	}
	return 0;
}

/* Pass 2: every file goes to a model, every model has files; the models' file lists. */
static int
assign(struct mb_replay *r, const struct mb_mix *mix, char *err, size_t err_len)
{
	for (int kind = MB_KIND_AUDIO; kind <= MB_KIND_VIDEO; kind++) {
		uint32_t n = kind == MB_KIND_AUDIO ? r->n_audio : r->n_video;
		const char *what = kind == MB_KIND_AUDIO ? "audio" : "video";
		bool any = false;

		for (int i = 0; i < mix->n; i++)
			any |= takes(&mix->e[i], (enum mb_media_kind)kind);
		if (n > 0 && !any) {
			const char *first = "";

			for (uint32_t f = 0; f < r->n_files; f++)
				if (r->files[f].kind == (enum mb_media_kind)kind) {
					first = r->files[f].name;
					break;
				}
			snprintf(err, err_len,
				 "--media %s: its %u %s file(s) (the first: %s) go to no model of "
				 "the mix (%s; identity takes every file)",
				 r->dir, n, what, first,
				 kind == MB_KIND_AUDIO ? "logmel, whisper and clap take audio"
						       : "videomae takes video");
			return -EINVAL;
		}
	}
	for (int i = 0; i < mix->n; i++) {
		struct mb_replay_model *m = &r->model[i];
		const struct mb_mix_entry *e = &mix->e[i];
		bool a = takes(e, MB_KIND_AUDIO), v = takes(e, MB_KIND_VIDEO);

		m->files = malloc(sizeof(*m->files) * r->n_files);
		if (m->files == NULL) {
			snprintf(err, err_len, "--media %s: out of memory", r->dir);
			return -ENOMEM;
		}
		for (uint32_t f = 0; f < r->n_files; f++)
			if ((a && r->files[f].kind == MB_KIND_AUDIO) ||
			    (v && r->files[f].kind == MB_KIND_VIDEO))
				m->files[m->n++] = f;
		if (m->n == 0) {
			snprintf(err, err_len,
				 "--media %s: model '%s' of the mix takes %s files, and %s holds "
				 "none (%u audio, %u video)",
				 r->dir, e->model, a ? "audio" : "video", r->dir, r->n_audio,
				 r->n_video);
			return -EINVAL;
		}
	}
	return 0;
}

int
mb_replay_load(const char *dir, const struct mb_mix *mix, uint64_t max_bytes,
	       struct mb_replay **out, char *err, size_t err_len)
{
	struct mb_replay *r = calloc(1, sizeof(*r));
	char **names = NULL;
	uint32_t n = 0;
	uint64_t need = 0;
	int rc;

	*out = NULL;
	if (r == NULL) {
		snprintf(err, err_len, "--media: out of memory");
		return -ENOMEM;
	}
	if (strlen(dir) >= sizeof(r->dir)) {
		snprintf(err, err_len, "--media: the directory's path is longer than %zu bytes",
			 sizeof(r->dir) - 1);
		free(r);
		return -EINVAL;
	}
	snprintf(r->dir, sizeof(r->dir), "%s", dir);
	rc = set_models(r, mix, err, err_len);
	if (rc == 0)
		rc = list_dir(dir, &names, &n, err, err_len);
	if (rc == 0) {
		r->files = calloc(n, sizeof(*r->files));
		if (r->files == NULL) {
			snprintf(err, err_len, "--media %s: out of memory", dir);
			rc = -ENOMEM;
		}
	}
	if (rc == 0) {
		r->n_files = n;
		for (uint32_t i = 0; i < n; i++)
			snprintf(r->files[i].name, sizeof(r->files[i].name), "%s", names[i]);
	}
	for (uint32_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	for (uint32_t i = 0; rc == 0 && i < r->n_files; i++) {
		uint64_t b;

		rc = look(r, &r->files[i], &b, err, err_len);
		need += b;
	}
	if (rc == 0)
		rc = assign(r, mix, err, err_len);
	if (rc == 0 && need > max_bytes) {
		snprintf(err, err_len,
			 "--media %s: its %u file(s) take %.1f MiB (%" PRIu64 " bytes) in memory "
			 "as sent (each audio file once per rate a model takes), over the limit "
			 "of %.1f MiB (%" PRIu64 " bytes): keep fewer files there or raise "
			 "--media-max-mb",
			 dir, r->n_files, (double)need / MIB, need, (double)max_bytes / MIB,
			 max_bytes);
		rc = -EFBIG;
	}
	for (uint32_t i = 0; rc == 0 && i < r->n_files; i++)
		rc = read_payloads(r, &r->files[i], err, err_len);
	if (rc < 0) {
		mb_replay_destroy(&r);
		return rc;
	}
	*out = r;
	return 0;
}

const void *
mb_replay_next(struct mb_replay *r, int model, uint32_t tenant, uint64_t id,
	       struct mb_request_hdr *h, uint32_t *file)
{
	struct mb_replay_model *m = &r->model[model];
	uint32_t f = m->files[m->next];
	const struct mb_replay_file *rf = &r->files[f];

	m->next = m->next + 1 == m->n ? 0 : m->next + 1;
	*file = f;
	if (rf->kind == MB_KIND_VIDEO) {
		mb_client_video_hdr(h, m->model, tenant, id, rf->frames, rf->height, rf->width);
		return rf->payload[0];
	}
	mb_client_audio_hdr(h, m->model, tenant, id, MB_MEDIA_PCM_S16LE, r->rates[m->rate],
			    rf->len[m->rate]);
	return rf->payload[m->rate];
}

uint32_t
mb_replay_used(const struct mb_replay *r, enum mb_media_kind kind)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < r->n_files; i++)
		n += r->files[i].kind == kind && r->files[i].sent > 0;
	return n;
}
