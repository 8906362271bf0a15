/*
 * audio_fuzz.c: libFuzzer target for mb_audio (app/common/audio.c), the reader behind
 * `mediabatch send --audio FILE` (and --wav) and `mediabatch-perf --media DIR`. It takes the
 * place of wav_fuzz.c: the CLI's own WAV parser (load_wav()) is gone, libsndfile reads the
 * files now, and what is ours is the layer around it: the bounds taken from the header, the
 * mix-down, the resampling to the model's rate and the conversion to 16-bit PCM.
 *
 * The input is the file, written to this process's scratch file and loaded as 16 kHz mono
 * PCM16 within a 1 MiB limit (mb_audio_load_pcm16()). The reader's complaints go to the
 * caller's buffer, never to stderr.
 *
 * Checked: a refused file leaves nothing allocated and a message that names the file; an
 * accepted one was accepted by the probe too, with the same rate and channels, decoded no
 * more samples than its header announced, and gives exactly
 * mb_audio_resampled_length(decoded, rate, 16000) samples, at most the limit (every byte of
 * which is read here, so ASan sees a short buffer).
 */
#include "mb_fuzz.h"

#include "app/common/mb_audio.h"

#define LIMIT (1u << 20)

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
	const char *path = mb_fuzz_scratch("audio", ".wav", data, size);
	struct mb_audio_info probe, info;
	uint8_t *pcm = (uint8_t *)"unset";
	uint32_t len = 7, sum = 0;
	char err[1024] = "";
	int prc = mb_audio_probe(path, &probe, err, sizeof(err));
	int rc = mb_audio_load_pcm16(path, 16000, LIMIT, &pcm, &len, &info, err, sizeof(err));

	MB_FUZZ_CHECK(rc <= 0, "rc %d", rc);
	if (rc < 0) {
		MB_FUZZ_CHECK(pcm == NULL && len == 0, "a refused file left PCM behind");
		MB_FUZZ_CHECK(strstr(err, path) != NULL, "the message does not name the file: %s",
			      err);
		return 0;
	}
	MB_FUZZ_CHECK(prc == 0, "loaded, but the probe refused it: %d", prc);
	MB_FUZZ_CHECK(info.rate == probe.rate && info.channels == probe.channels,
		      "probe %u Hz %u ch, read %u Hz %u ch", probe.rate, probe.channels, info.rate,
		      info.channels);
	MB_FUZZ_CHECK(info.frames >= 1 && info.frames <= probe.frames,
		      "decoded %llu samples, the header says %llu", (unsigned long long)info.frames,
		      (unsigned long long)probe.frames);
	MB_FUZZ_CHECK(pcm != NULL && len > 0 && len <= LIMIT && len % 2 == 0 &&
			      len == 2 * mb_audio_resampled_length(info.frames, info.rate, 16000),
		      "%u bytes of PCM from %llu samples at %u Hz", len,
		      (unsigned long long)info.frames, info.rate);
	for (uint32_t i = 0; i < len; i++)
		sum += pcm[i];
	(void)sum;
	free(pcm);
	return 0;
}
