/**
 * @file
 * mediabatch-perf's --media DIR: a directory of real media files, loaded into memory once at
 * start and replayed as the workload.
 *
 * The files are the regular files of DIR itself (not of its subdirectories; names that start
 * with '.' are left out), taken in name order (strcmp):
 *
 *   - NAME.FxHxW.rgb   raw RGB24 video: F frames of H rows of W pixels (each 1..65535), 3
 *                      bytes a pixel, frame after frame, exactly F*H*W*3 bytes (the layout of
 *                      `mediabatch send --video FILE --frames F --height H --width W`);
 *                      e.g. clip.16x224x224.rgb. Sent as is (MB_MEDIA_RGB24).
 *   - any other name   an audio file, read with mb_audio (anything libsndfile reads), mixed
 *                      down to mono and resampled to the rate of each model that takes it,
 *                      sent as 16-bit PCM (MB_MEDIA_PCM_S16LE), whole, as long as it is.
 *
 * The mix still picks the model of each request by weight; each model then takes the next of
 * the files of its media, in name order, round and round: logmel and whisper audio at
 * 16 kHz, clap audio at 48 kHz, videomae video, identity every file (audio at 16 kHz). A
 * model of another name has no known media and is refused with --media.
 *
 * Refused, each with a message that names the directory or the file: a directory that
 * cannot be read or holds no file; a file that is neither raw video so named nor audio
 * libsndfile reads (or that is empty, or longer than mb_audio takes); a .rgb whose name has no
 * shape or whose size is not its shape's; a file no model of the mix takes (video with no
 * video model, audio with no audio model); a model of the mix that no file suits; more than
 * max_bytes held in memory, every payload counted (an audio file once per rate).
 *
 * Threads: loaded and destroyed by main; mb_replay_next() and the counters belong to the
 * run's thread (one at a time).
 */
#ifndef MB_REPLAY_H
#define MB_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "mb_loadgen.h"

/** Default bound on the payloads held in memory: 1 GiB (--media-max-mb 1024). */
#define MB_REPLAY_DEFAULT_MAX_BYTES (UINT64_C(1024) << 20)
/** Most files a directory may hold. */
#define MB_REPLAY_MAX_FILES 100000
/** Distinct audio rates at most (the built-in models use two: 16 and 48 kHz). */
#define MB_REPLAY_RATES 4

struct mb_replay_file {
	char name[256];		 /**< file name within the directory */
	enum mb_media_kind kind; /**< MB_KIND_AUDIO or MB_KIND_VIDEO */
	/* audio, as in the file */
	char format[128];
	uint32_t rate, channels;
	double seconds;
	/* video */
	uint16_t frames, height, width;
	/** audio: PCM16 at replay->rates[i] (NULL where no model takes that rate); video: [0] */
	uint8_t *payload[MB_REPLAY_RATES];
	uint32_t len[MB_REPLAY_RATES];
	uint64_t sent; /**< requests sent with it, warm-ups and every run included */
};

/** The files one model of the mix takes. */
struct mb_replay_model {
	char model[MB_PROTO_MODEL_LEN + 1];
	uint32_t *files; /**< indexes into mb_replay.files, in name order */
	uint32_t n;
	uint32_t next; /**< the one its next request carries */
	int rate;      /**< audio: index into mb_replay.rates */
};

struct mb_replay {
	char dir[1024];
	struct mb_replay_file *files; /**< n_files, in name order */
	uint32_t n_files, n_audio, n_video;
	uint32_t rates[MB_REPLAY_RATES]; /**< audio rates the mix takes, Hz */
	int n_rates;
	uint64_t bytes; /**< payload bytes held */
	int n_models;	/**< the mix's models, in its order */
	struct mb_replay_model model[MB_MIX_MAX];
};

/**
 * Load the files of @p dir (borrowed) for the models of @p mix (borrowed), holding at most
 * @p max_bytes of payloads. On 0, *@p out is the replay (free it with mb_replay_destroy()).
 * Otherwise -errno (-ENOENT, -ENOTDIR, -EACCES: the directory; -ENODATA: nothing in it;
 * -EINVAL: a file or a model refused; -EFBIG: over max_bytes; -ENOMEM) with one line in
 * @p err.
 */
int mb_replay_load(const char *dir, const struct mb_mix *mix, uint64_t max_bytes,
		   struct mb_replay **out, char *err, size_t err_len);

/** Free @p r's files and itself; *@p r becomes NULL (NULL allowed). */
void mb_replay_destroy(struct mb_replay **r);

/**
 * The next request for model @p model (an index into the mix the replay was loaded for):
 * fills @p h (that model, @p tenant, @p id, the file's media and length) and returns its
 * payload (owned by @p r); *@p file is the file's index. Advances the model's place in its
 * files. No allocation.
 */
const void *mb_replay_next(struct mb_replay *r, int model, uint32_t tenant, uint64_t id,
			   struct mb_request_hdr *h, uint32_t *file);

/**
 * The shape in a raw video's name "NAME.FxHxW.rgb" (each 1..65535): 1 and the shape; 0 for
 * a name that does not end in ".rgb"; -1 for a .rgb name without a valid shape.
 */
int mb_replay_video_shape(const char *name, uint16_t *frames, uint16_t *height, uint16_t *width);

/** Files of @p kind that were sent at least once. */
uint32_t mb_replay_used(const struct mb_replay *r, enum mb_media_kind kind);

#endif /* MB_REPLAY_H */
