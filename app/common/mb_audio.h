/**
 * @file
 * Audio files as the service takes them: any file libsndfile reads (WAV of any PCM or float
 * width, FLAC, Ogg/Vorbis, Opus, AIFF, AU, CAF, W64, ...), mixed down to mono and resampled by
 * libsoxr (high quality: SOXR_HQ, 20-bit precision, linear phase) to the rate a model takes,
 * then 16-bit little-endian PCM (MB_MEDIA_PCM_S16LE), the payload of an audio request.
 *
 * Used by the CLI (`mediabatch send --audio FILE`) and by mediabatch-perf (`--media DIR`).
 * Every error comes back as -errno with one line in the caller's buffer that names the file
 * and what is wrong with it (libsndfile's own words for what it cannot read).
 *
 * Limits: a file holds at most MB_AUDIO_MAX_FRAMES samples per channel and 1..MB_AUDIO_MAX_CHANNELS
 * channels; its PCM16 at the target rate is at most the caller's max_bytes, itself at most
 * MB_AUDIO_MAX_BYTES (the largest service.max_payload_bytes the daemon accepts).
 *
 * Threads: no shared state; any thread, one call at a time per clip.
 */
#ifndef MB_AUDIO_H
#define MB_AUDIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Most bytes of PCM16 one load gives: 256 MiB, the largest service.max_payload_bytes. */
#define MB_AUDIO_MAX_BYTES (256u << 20)
/** Most samples per channel a file may hold: 2^27 (46 min at 48 kHz; 512 MiB as floats). */
#define MB_AUDIO_MAX_FRAMES (UINT64_C(1) << 27)
/** Most channels a file may have. */
#define MB_AUDIO_MAX_CHANNELS 64
/** Target rates: 1 Hz .. 1 MHz. */
#define MB_AUDIO_MAX_RATE 1000000u

/** What a file holds, as libsndfile says. */
struct mb_audio_info {
	uint32_t rate;	   /**< the file's sample rate, Hz */
	uint32_t channels; /**< the file's channels (mixed down to mono when read) */
	uint64_t frames;   /**< samples per channel the header announces */
	char format[128];  /**< e.g. "FLAC (Free Lossless Audio Codec), Signed 16 bit PCM" */
};

/** A file decoded to mono floats at its own rate. */
struct mb_audio_clip {
	struct mb_audio_info info; /**< info.frames: the samples actually decoded */
	float *mono;		   /**< info.frames samples, channels averaged; owned */
};

/**
 * Open @p path (borrowed) with libsndfile and fill @p info without decoding. Returns 0;
 * -ENOENT, -EACCES, -EISDIR, ... (the file cannot be opened); -ENODATA (empty: 0 bytes, or
 * no samples); -EINVAL (not audio libsndfile reads, or a rate or channel count out of range);
 * -EFBIG (more than MB_AUDIO_MAX_FRAMES samples). A message in @p err for each.
 */
int mb_audio_probe(const char *path, struct mb_audio_info *info, char *err, size_t err_len);

/**
 * Decode @p path (borrowed) into @p out: mono floats (the mean of the channels; NaN read as
 * 0) at the file's rate. A file shorter than its header says gives what it holds; a decoding
 * error part way is an error. Returns 0 (free @p out with mb_audio_clip_fini()), the errors
 * of mb_audio_probe(), -EIO (decoding failed) or -ENOMEM; a message in @p err.
 */
int mb_audio_read(const char *path, struct mb_audio_clip *out, char *err, size_t err_len);

/** Free the samples of @p c (NULL allowed) and zero it. */
void mb_audio_clip_fini(struct mb_audio_clip *c);

/** How many samples @p frames at @p from Hz become at @p to Hz: round(frames * to / from). */
uint64_t mb_audio_resampled_length(uint64_t frames, uint32_t from, uint32_t to);

/**
 * Resample @p c (borrowed) to @p rate Hz (1..MB_AUDIO_MAX_RATE; the same rate copies) and
 * convert to 16-bit PCM, little-endian (samples scaled by 32768 and clipped to
 * -32768..32767): mb_audio_resampled_length(c->info.frames, c->info.rate, rate) samples.
 * @p max_bytes (0: MB_AUDIO_MAX_BYTES; at most that) bounds the result. On 0, *@p pcm is
 * malloc'd (the caller frees it) and *@p len its bytes. -EINVAL (a bad rate), -ENODATA (no
 * sample left at that rate), -EFBIG (over @p max_bytes), -ENOMEM, -EIO (libsoxr failed);
 * a message in @p err naming c's file as @p what.
 */
int mb_audio_to_pcm16(const struct mb_audio_clip *c, const char *what, uint32_t rate,
		      uint64_t max_bytes, uint8_t **pcm, uint32_t *len, char *err, size_t err_len);

/**
 * As mb_audio_to_pcm16(), or with @p f32 as 32-bit float PCM, little-endian (PCM_F32LE: the
 * resampled samples exactly, four bytes each; @p max_bytes counts those).
 */
int mb_audio_to_pcm(const struct mb_audio_clip *c, const char *what, uint32_t rate, bool f32,
		    uint64_t max_bytes, uint8_t **pcm, uint32_t *len, char *err, size_t err_len);

/**
 * mb_audio_read() then mb_audio_to_pcm16(): @p path as mono PCM16 at @p rate, checked
 * against @p max_bytes before anything is decoded. @p info (may be NULL) gets what the file
 * held. Returns as those two.
 */
int mb_audio_load_pcm16(const char *path, uint32_t rate, uint64_t max_bytes, uint8_t **pcm,
			uint32_t *len, struct mb_audio_info *info, char *err, size_t err_len);

/** As mb_audio_load_pcm16(), or with @p f32 as 32-bit float PCM (mb_audio_to_pcm()). */
int mb_audio_load_pcm(const char *path, uint32_t rate, bool f32, uint64_t max_bytes, uint8_t **pcm,
		      uint32_t *len, struct mb_audio_info *info, char *err, size_t err_len);

#endif /* MB_AUDIO_H */
