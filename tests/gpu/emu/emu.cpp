/*
 * emu.cpp: the host emulation of CUDA, cuBLAS and cuFFT behind emu.h, for tests/gpu/emu
 * (gpu/emulated): the networks' CUDA sources, turned into C++ by gen.py, run on it against
 * their CPU reference.
 *
 * Memory. Every device and pinned allocation is a mapping of its own whose last byte sits
 * against a PROT_NONE page, filled with 0xff (NaN as F32, F64, F16 and BF16), recorded in a
 * table of regions by address. A run's allocation (cudaMallocFromPoolAsync) is not filled:
 * emu_carve() gives each of its parts such a mapping, and makes the allocation itself
 * PROT_NONE, so that only the parts are reachable. A fault in a guard page is reported with
 * the allocation it overran (SIGSEGV handler, on its own stack).
 *
 * Order. Each stream counts its operations and keeps a vector clock of what it is known to
 * come after (other streams' operations, through events it waited for and what the host had
 * seen complete when it queued the operation); the host keeps one too (synchronisations).
 * Each region remembers its last writer and its readers since; an operation that touches a
 * region used by another stream after what its clock covers is a hazard: reported, counted.
 * A kernel's pointer parameters are its accesses: const ones read, others written.
 *
 * Kernels. emu_launch() (emu.h) runs a kernel whose launches have never synchronised as a
 * loop over its threads; the others block by block on fibers (x86-64 stacks switched by
 * emu_swap below), one per thread. A thread runs until it reaches a barrier or a warp
 * operation or ends, then hands the processor straight to another thread picked at random
 * among those that can run; a warp goes on once its last live lane reaches the warp
 * operation, the block's threads at __syncthreads once its last live thread does. So any
 * interleaving of those stretches may come up, warps running ahead of others included, and
 * a block whose threads race between barriers shows it. A shuffle returns the partner's
 * value; a butterfly (gen.py) is computed once per warp, by its first lane to go on.
 *
 * cuBLAS: column-major GEMMs on OpenBLAS's sgemm, 16-bit inputs converted to F32 exactly,
 * F32 accumulation, 16-bit outputs rounded to nearest even (what CUBLAS_COMPUTE_32F asks;
 * the order of the sums is OpenBLAS's, not cuBLAS's). cuFFT: a mixed-radix FFT in double,
 * F32 transforms rounded at the end.
 *
 * Threads: the test's main thread only.
 */
#include "emu.h"

#include <algorithm>
#include <chrono>
#include <complex>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include <cblas.h>
#include <sys/mman.h>
#include <unistd.h>

extern "C" {
#include "cuda_tf_internal.h"
}

dim3 threadIdx, blockIdx, blockDim, gridDim;

namespace
{

const size_t PAGE = 4096;
const int REPORTS = 20; /* hazards and wild pointers printed in full; the rest counted */

struct mb_emu_stats g_st;

[[noreturn]] __attribute__((format(printf, 1, 2))) void
die(const char *fmt, ...)
{
	va_list ap;

	fputs("EMU FATAL: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	abort();
}

__attribute__((format(printf, 2, 3))) void
report(uint64_t *counter, const char *fmt, ...)
{
	va_list ap;

	if ((*counter)++ >= (uint64_t)REPORTS)
		return;
	fputs("EMU: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

double
now_ms()
{
	using namespace std::chrono;

	return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

/* ---- vector clocks ---- */

typedef std::vector<uint64_t> clock_v;

uint64_t
vc_get(const clock_v &v, int id)
{
	return (size_t)id < v.size() ? v[(size_t)id] : 0;
}

void
vc_set_max(clock_v &v, int id, uint64_t seq)
{
	if ((size_t)id >= v.size())
		v.resize((size_t)id + 1, 0);
	v[(size_t)id] = std::max(v[(size_t)id], seq);
}

void
vc_merge(clock_v &v, const clock_v &o)
{
	for (size_t i = 0; i < o.size(); i++)
		vc_set_max(v, (int)i, o[i]);
}

clock_v g_host; /* what the host has seen complete */

} /* namespace */

struct emu_stream {
	int id;
	bool legacy;
	uint64_t seq; /* operations queued */
	clock_v vc;   /* what its next operation comes after */
};

emu_stream emu_legacy_stream = {0, true, 0, {}};

namespace
{

std::vector<emu_stream *> g_streams = {&emu_legacy_stream}; /* by id; NULL once destroyed */

/* ---- regions ---- */

enum region_kind { R_DEVICE, R_PINNED, R_RUN, R_PART };
const char *const kind_name[] = {"device allocation", "pinned host allocation",
				 "run allocation (carved: use its parts)", "part of a run"};

struct access_rec {
	int stream;
	uint64_t seq;
	const char *op;
};

struct region {
	uintptr_t start;
	size_t bytes;
	char *map; /* the mapping, map_bytes long, its last page the guard */
	size_t map_bytes;
	region_kind kind;
	uint32_t part; /* R_PART: which */
	uintptr_t run; /* R_PART: its run's start */
	access_rec writer;
	std::vector<access_rec> readers; /* since the last write, one per stream */
};

std::map<uintptr_t, region> g_regions;

/* The op being issued: its stream, sequence number and name. */
emu_stream *g_op_stream = &emu_legacy_stream;
uint64_t g_op_seq;
const char *g_op_name = "";

region *
find(const void *p)
{
	uintptr_t a = (uintptr_t)p;
	auto it = g_regions.upper_bound(a);

	if (it == g_regions.begin())
		return NULL;
	--it;
	/* one past the end counts as inside (a pointer to an empty tail) */
	return a <= it->second.start + it->second.bytes ? &it->second : NULL;
}

/* A mapping of @p bytes whose last byte is against a guard page, filled with 0xff or not. */
region *
map_region(size_t bytes, region_kind kind, bool fill)
{
	const size_t body = ((bytes ? bytes : 1) + PAGE - 1) / PAGE * PAGE, total = body + PAGE;
	char *m = (char *)mmap(NULL, total, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	region r;

	if (m == MAP_FAILED)
		die("mmap of %zu bytes failed", total);
	if (mprotect(m + body, PAGE, PROT_NONE) != 0)
		die("mprotect");
	if (fill)
		memset(m, 0xff, body);
	r.start = (uintptr_t)(m + body - bytes);
	r.bytes = bytes;
	r.map = m;
	r.map_bytes = total;
	r.kind = kind;
	r.part = 0;
	r.run = 0;
	r.writer = access_rec{-1, 0, NULL};
	return &(g_regions[r.start] = r);
}

void
unmap_region(region *r)
{
	char *m = r->map;
	size_t n = r->map_bytes;

	g_regions.erase(r->start);
	munmap(m, n);
}

/* ---- ordering ---- */

bool
ordered(const access_rec &a)
{
	return a.op == NULL || a.stream == g_op_stream->id ||
	       vc_get(g_op_stream->vc, a.stream) >= a.seq;
}

void
hazard(const region *r, const access_rec &a, const char *how, const char *earlier)
{
	report(&g_st.hazards,
	       "hazard: %s on stream %d (op %llu) %s a %s of %zu bytes that %s on stream %d (op "
	       "%llu) %s, with no event or synchronisation ordering the two",
	       g_op_name, g_op_stream->id, (unsigned long long)g_op_seq, how, kind_name[r->kind],
	       r->bytes, a.op, a.stream, (unsigned long long)a.seq, earlier);
}

void
touch(region *r, bool write)
{
	const access_rec me = {g_op_stream->id, g_op_seq, g_op_name};

	if (!ordered(r->writer))
		hazard(r, r->writer, write ? "writes" : "reads", "wrote");
	if (write) {
		for (const access_rec &a : r->readers)
			if (!ordered(a))
				hazard(r, a, "writes", "read");
		r->readers.clear();
		r->writer = me;
		return;
	}
	for (access_rec &a : r->readers)
		if (a.stream == me.stream) {
			a = me;
			return;
		}
	r->readers.push_back(me);
}

/* @p bytes at @p p, all inside one region (or none: pageable host memory) */
region *
span(const void *p, size_t bytes, const char *what)
{
	region *r = find(p);

	if (r != NULL && (uintptr_t)p + bytes > r->start + r->bytes)
		die("%s: %zu bytes at %p run %zu bytes past the end of a %s of %zu bytes", what,
		    bytes, p, (size_t)((uintptr_t)p + bytes - (r->start + r->bytes)),
		    kind_name[r->kind], r->bytes);
	return r;
}

void
device_sync()
{
	for (emu_stream *s : g_streams)
		if (s != NULL)
			vc_set_max(g_host, s->id, s->seq);
}

emu_stream *
stream_of(cudaStream_t s)
{
	return s != NULL ? s : &emu_legacy_stream;
}

/* ---- faults ---- */

char g_sigstack[64 * 1024];

void
on_segv(int sig, siginfo_t *si, void *)
{
	uintptr_t a = (uintptr_t)si->si_addr;

	for (auto &e : g_regions) {
		const region &r = e.second;

		if (a >= r.start + r.bytes && a < (uintptr_t)r.map + r.map_bytes) {
			fprintf(stderr,
				"EMU FATAL: %s touched %zu bytes past the end of a %s of %zu bytes",
				g_op_name, (size_t)(a - (r.start + r.bytes)), kind_name[r.kind],
				r.bytes);
			if (r.kind == R_PART)
				fprintf(stderr, " (part %u: see the network's parts enum)", r.part);
			fputc('\n', stderr);
			break;
		}
		if (r.kind == R_RUN && a >= r.start && a < r.start + r.bytes) {
			fprintf(stderr,
				"EMU FATAL: %s touched a run's allocation at offset %zu outside "
				"its carved parts\n",
				g_op_name, (size_t)(a - r.start));
			break;
		}
	}
	fprintf(stderr, "EMU FATAL: signal %d at %p during %s\n", sig, si->si_addr, g_op_name);
	signal(sig, SIG_DFL);
	raise(sig);
}

struct fault_setup {
	fault_setup()
	{
		stack_t ss = {};
		struct sigaction sa = {};

		ss.ss_sp = g_sigstack;
		ss.ss_size = sizeof(g_sigstack);
		sigaltstack(&ss, NULL);
		sa.sa_sigaction = on_segv;
		sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
		sigaction(SIGSEGV, &sa, NULL);
		sigaction(SIGBUS, &sa, NULL);
	}
} g_fault_setup;

} /* namespace */

/* ---- operations and accesses (emu.h) ---- */

void
emu_op_begin(cudaStream_t s, const char *what)
{
	emu_stream *st = stream_of(s);

	if (s == NULL)
		report(&g_st.legacy_work, "%s queued on the legacy (NULL) stream", what);
	vc_merge(st->vc, g_host);
	g_op_stream = st;
	g_op_seq = ++st->seq;
	g_op_name = what;
}

void
emu_access(const void *p, bool write, const char *what, bool from_kernel)
{
	region *r;

	if (p == NULL)
		return;
	r = find(p);
	if (r == NULL) {
		if (from_kernel)
			report(&g_st.wild,
			       "kernel %s was given %p, in no device or pinned allocation", what,
			       p);
		return;
	}
	if (from_kernel && r->kind == R_RUN)
		die("kernel %s was given %p, in a run's allocation outside its carved parts", what,
		    p);
	touch(r, write);
}

/* ---- runtime: devices and errors ---- */

cudaError_t
cudaSetDevice(int device)
{
	return device == 0 ? cudaSuccess : cudaErrorInvalidDevice;
}

cudaError_t
cudaGetDeviceCount(int *count)
{
	*count = 1;
	return cudaSuccess;
}

cudaError_t
cudaGetDeviceProperties(cudaDeviceProp *prop, int device)
{
	if (device != 0)
		return cudaErrorInvalidDevice;
	memset(prop, 0, sizeof(*prop));
	snprintf(prop->name, sizeof(prop->name), "host emulation (tests/gpu/emu)");
	prop->totalGlobalMem = (size_t)80 << 30;
	prop->major = 9;
	prop->minor = 0;
	prop->multiProcessorCount = 1;
	return cudaSuccess;
}

cudaError_t
cudaDeviceGetPCIBusId(char *id, int len, int device)
{
	if (device != 0)
		return cudaErrorInvalidDevice;
	snprintf(id, (size_t)len, "0000:00:00.0");
	return cudaSuccess;
}

cudaError_t
cudaDeviceGetAttribute(int *value, cudaDeviceAttr attr, int device)
{
	if (device != 0)
		return cudaErrorInvalidDevice;
	*value = attr == cudaDevAttrMemoryPoolsSupported ? 1 : 0;
	return cudaSuccess;
}

cudaError_t
cudaRuntimeGetVersion(int *v)
{
	*v = 12000;
	return cudaSuccess;
}

cudaError_t
cudaDriverGetVersion(int *v)
{
	*v = 12000;
	return cudaSuccess;
}

cudaError_t
cudaGetLastError()
{
	return cudaSuccess; /* errors are fatal here, never left pending */
}

const char *
cudaGetErrorString(cudaError_t e)
{
	switch (e) {
	case cudaSuccess:
		return "no error";
	case cudaErrorInvalidValue:
		return "invalid argument";
	case cudaErrorMemoryAllocation:
		return "out of memory";
	case cudaErrorInvalidDevice:
		return "invalid device ordinal (the emulation has device 0 only)";
	case cudaErrorInvalidResourceHandle:
		return "invalid resource handle";
	default:
		return "unknown error";
	}
}

const char *
cudaGetErrorName(cudaError_t e)
{
	switch (e) {
	case cudaSuccess:
		return "cudaSuccess";
	case cudaErrorInvalidValue:
		return "cudaErrorInvalidValue";
	case cudaErrorMemoryAllocation:
		return "cudaErrorMemoryAllocation";
	case cudaErrorInvalidDevice:
		return "cudaErrorInvalidDevice";
	case cudaErrorInvalidResourceHandle:
		return "cudaErrorInvalidResourceHandle";
	default:
		return "cudaErrorUnknown";
	}
}

cudaError_t
cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes)
{
	size_t used = 0;

	for (auto &e : g_regions)
		if (e.second.kind == R_DEVICE || e.second.kind == R_RUN)
			used += e.second.bytes;
	*total_bytes = (size_t)80 << 30;
	*free_bytes = *total_bytes - std::min(used, *total_bytes);
	return cudaSuccess;
}

/* ---- streams and events ---- */

struct emu_event {
	unsigned int flags;
	bool recorded;
	clock_v vc;
	double ms;
};

namespace
{
uint64_t g_events;
}

cudaError_t
cudaStreamCreateWithFlags(cudaStream_t *s, unsigned int flags)
{
	emu_stream *st = new emu_stream{(int)g_streams.size(), false, 0, {}};

	if (!(flags & cudaStreamNonBlocking))
		die("a blocking stream: every stream of ours is non-blocking "
		    "(cudaStreamNonBlocking)");
	g_streams.push_back(st);
	*s = st;
	return cudaSuccess;
}

cudaError_t
cudaStreamSynchronize(cudaStream_t s)
{
	emu_stream *st = stream_of(s);

	vc_merge(g_host, st->vc);
	vc_set_max(g_host, st->id, st->seq);
	return cudaSuccess;
}

cudaError_t
cudaStreamDestroy(cudaStream_t s)
{
	if (s == NULL || s->legacy || (size_t)s->id >= g_streams.size() || g_streams[s->id] != s)
		die("cudaStreamDestroy of a stream that is not one");
	/* work still queued completes on its own: nothing orders it against the others */
	g_streams[s->id] = NULL;
	delete s;
	return cudaSuccess;
}

cudaError_t
cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned int flags)
{
	(void)flags;
	if (e == NULL)
		die("cudaStreamWaitEvent on no event");
	vc_merge(stream_of(s)->vc, e->vc);
	return cudaSuccess;
}

cudaError_t
cudaEventCreate(cudaEvent_t *e)
{
	return cudaEventCreateWithFlags(e, cudaEventDefault);
}

cudaError_t
cudaEventCreateWithFlags(cudaEvent_t *e, unsigned int flags)
{
	*e = new emu_event{flags, false, {}, 0.0};
	g_events++;
	return cudaSuccess;
}

cudaError_t
cudaEventRecord(cudaEvent_t e, cudaStream_t s)
{
	emu_stream *st = stream_of(s);

	if (s == NULL)
		report(&g_st.legacy_work, "an event recorded on the legacy (NULL) stream");
	e->vc = st->vc;
	vc_merge(e->vc, g_host);
	vc_set_max(e->vc, st->id, st->seq);
	e->recorded = true;
	e->ms = now_ms();
	return cudaSuccess;
}

cudaError_t
cudaEventSynchronize(cudaEvent_t e)
{
	vc_merge(g_host, e->vc);
	return cudaSuccess;
}

cudaError_t
cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end)
{
	if (!start->recorded || !end->recorded || (start->flags & cudaEventDisableTiming) ||
	    (end->flags & cudaEventDisableTiming))
		return cudaErrorInvalidResourceHandle;
	*ms = (float)(end->ms - start->ms);
	return cudaSuccess;
}

cudaError_t
cudaEventDestroy(cudaEvent_t e)
{
	if (e == NULL)
		return cudaErrorInvalidResourceHandle;
	delete e;
	g_events--;
	return cudaSuccess;
}

/* ---- memory ---- */

cudaError_t
cudaMalloc(void **p, size_t bytes)
{
	*p = (void *)map_region(bytes, R_DEVICE, true)->start;
	return cudaSuccess;
}

cudaError_t
cudaFree(void *p)
{
	region *r;

	if (p == NULL)
		return cudaSuccess;
	r = find(p);
	if (r == NULL || r->start != (uintptr_t)p || r->kind != R_DEVICE)
		die("cudaFree(%p): not a cudaMalloc allocation", p);
	device_sync(); /* cudaFree waits for the device */
	unmap_region(r);
	return cudaSuccess;
}

cudaError_t
cudaMallocHost(void **p, size_t bytes)
{
	*p = (void *)map_region(bytes, R_PINNED, true)->start;
	return cudaSuccess;
}

cudaError_t
cudaFreeHost(void *p)
{
	region *r;

	if (p == NULL)
		return cudaSuccess;
	r = find(p);
	if (r == NULL || r->start != (uintptr_t)p || r->kind != R_PINNED)
		die("cudaFreeHost(%p): not a cudaMallocHost allocation", p);
	device_sync();
	unmap_region(r);
	return cudaSuccess;
}

namespace
{

bool
on_device(const region *r)
{
	return r != NULL && r->kind != R_PINNED;
}

void
copy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, const char *what)
{
	region *d = span(dst, bytes, what), *s = span(src, bytes, what);
	bool ok;

	g_st.copies++;
	switch (kind) {
	case cudaMemcpyHostToDevice:
		ok = on_device(d) && !on_device(s);
		break;
	case cudaMemcpyDeviceToHost:
		ok = !on_device(d) && on_device(s);
		break;
	case cudaMemcpyDeviceToDevice:
		ok = on_device(d) && on_device(s);
		break;
	default:
		ok = true;
	}
	if (!ok)
		die("%s of %zu bytes, kind %d: from %s to %s", what, bytes, (int)kind,
		    s == NULL ? "pageable host memory" : kind_name[s->kind],
		    d == NULL ? "pageable host memory" : kind_name[d->kind]);
	if (s != NULL)
		touch(s, false);
	if (d != NULL)
		touch(d, true);
	if (bytes > 0)
		memmove(dst, src, bytes);
}

} /* namespace */

cudaError_t
cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind)
{
	const region *s = find(src);

	emu_op_begin(cudaStreamLegacy, "cudaMemcpy");
	copy(dst, src, bytes, kind, "cudaMemcpy");
	/* synchronous, except that from pageable memory to the device it may return before
	 * the DMA lands (CUDA's "API synchronization behavior") */
	if (!(kind == cudaMemcpyHostToDevice && s == NULL))
		cudaStreamSynchronize(cudaStreamLegacy);
	return cudaSuccess;
}

cudaError_t
cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s)
{
	emu_op_begin(s, "cudaMemcpyAsync");
	copy(dst, src, bytes, kind, "cudaMemcpyAsync");
	return cudaSuccess;
}

cudaError_t
cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t s)
{
	region *r;

	emu_op_begin(s, "cudaMemsetAsync");
	r = span(p, bytes, "cudaMemsetAsync");
	if (!on_device(r))
		die("cudaMemsetAsync of %zu bytes at %p: not device memory", bytes, p);
	g_st.copies++;
	touch(r, true);
	memset(p, value, bytes);
	return cudaSuccess;
}

cudaError_t
cudaMemset(void *p, int value, size_t bytes)
{
	/* on the legacy stream, asynchronous to the host for device memory */
	return cudaMemsetAsync(p, value, bytes, cudaStreamLegacy);
}

/* ---- pools ---- */

struct emu_pool {
	uint64_t used, used_high, reserved, reserved_high, threshold;
};

namespace
{

uint64_t g_pools;

/* a run's allocation: its pool and bytes; the parts carved from it */
struct run_alloc {
	cudaMemPool_t pool;
	std::vector<uintptr_t> parts;
};
std::map<uintptr_t, run_alloc> g_runs;

/* the pool maps device memory in pages of MB_TF_POOL_GRAIN */
uint64_t
grain_up(uint64_t b)
{
	return (b + MB_TF_POOL_GRAIN - 1) / MB_TF_POOL_GRAIN * MB_TF_POOL_GRAIN;
}

} /* namespace */

cudaError_t
cudaMemPoolCreate(cudaMemPool_t *pool, const cudaMemPoolProps *props)
{
	if (props->location.type != cudaMemLocationTypeDevice || props->location.id != 0)
		return cudaErrorInvalidDevice;
	*pool = new emu_pool{0, 0, 0, 0, 0};
	g_pools++;
	return cudaSuccess;
}

cudaError_t
cudaMemPoolDestroy(cudaMemPool_t pool)
{
	for (auto &e : g_runs)
		if (e.second.pool == pool)
			die("cudaMemPoolDestroy with an allocation of it outstanding");
	delete pool;
	g_pools--;
	return cudaSuccess;
}

cudaError_t
cudaMemPoolSetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void *value)
{
	uint64_t v = *(const uint64_t *)value;

	switch (attr) {
	case cudaMemPoolAttrReleaseThreshold:
		pool->threshold = v;
		break;
	case cudaMemPoolAttrReservedMemHigh: /* only 0 may be set: back to the current */
		if (v != 0)
			return cudaErrorInvalidValue;
		pool->reserved_high = pool->reserved;
		break;
	case cudaMemPoolAttrUsedMemHigh:
		if (v != 0)
			return cudaErrorInvalidValue;
		pool->used_high = pool->used;
		break;
	default:
		return cudaErrorInvalidValue;
	}
	return cudaSuccess;
}

cudaError_t
cudaMemPoolGetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void *value)
{
	uint64_t *v = (uint64_t *)value;

	switch (attr) {
	case cudaMemPoolAttrReleaseThreshold:
		*v = pool->threshold;
		break;
	case cudaMemPoolAttrReservedMemCurrent:
		*v = pool->reserved;
		break;
	case cudaMemPoolAttrReservedMemHigh:
		*v = pool->reserved_high;
		break;
	case cudaMemPoolAttrUsedMemCurrent:
		*v = pool->used;
		break;
	case cudaMemPoolAttrUsedMemHigh:
		*v = pool->used_high;
		break;
	}
	return cudaSuccess;
}

cudaError_t
cudaMemPoolTrimTo(cudaMemPool_t pool, size_t keep)
{
	pool->reserved = std::max(grain_up(pool->used), std::min<uint64_t>(pool->reserved, keep));
	return cudaSuccess;
}

cudaError_t
cudaMallocFromPoolAsync(void **p, size_t bytes, cudaMemPool_t pool, cudaStream_t s)
{
	region *r;

	emu_op_begin(s, "cudaMallocFromPoolAsync");
	/* not filled: emu_carve() makes it unreachable and maps the parts on their own */
	r = map_region(bytes, R_RUN, false);
	r->writer = access_rec{g_op_stream->id, g_op_seq, g_op_name};
	g_runs[r->start] = run_alloc{pool, {}};
	pool->used += bytes;
	pool->used_high = std::max(pool->used_high, pool->used);
	pool->reserved = std::max(pool->reserved, grain_up(pool->used));
	pool->reserved_high = std::max(pool->reserved_high, pool->reserved);
	*p = (void *)r->start;
	return cudaSuccess;
}

cudaError_t
cudaFreeAsync(void *p, cudaStream_t s)
{
	auto it = g_runs.find((uintptr_t)p);
	region *r = find(p);

	emu_op_begin(s, "cudaFreeAsync");
	if (it == g_runs.end() || r == NULL || r->start != (uintptr_t)p)
		die("cudaFreeAsync(%p): not an allocation from a pool", p);
	/* after every use of it and of its parts on any stream */
	touch(r, true);
	for (uintptr_t a : it->second.parts) {
		region *part = find((void *)a);

		touch(part, true);
		unmap_region(part);
	}
	it->second.pool->used -= r->bytes;
	if (it->second.pool->threshold == 0)
		cudaMemPoolTrimTo(it->second.pool, 0);
	g_runs.erase(it);
	unmap_region(r);
	return cudaSuccess;
}

void
emu_carve(void *base, const struct mb_tf_part *p, uint32_t k, uint32_t n, void **out)
{
	auto it = g_runs.find((uintptr_t)base);
	region *run = find(base);
	const uint64_t total = mb_tf_parts_bytes(p, k, n);
	void *real[64];

	if (it == g_runs.end() || run == NULL || run->start != (uintptr_t)base)
		die("emu_carve: %p is not a run's allocation", base);
	if (!it->second.parts.empty())
		die("emu_carve: a run's allocation carved twice");
	if (k > 64)
		die("emu_carve: %u parts", k);
	if (total > run->bytes)
		die("emu_carve: %u parts for %u items need %llu bytes, the allocation has %zu", k,
		    n, (unsigned long long)total, run->bytes);
	/* the real carve's arithmetic first: every part aligned, within the allocation */
	mb_tf_carve(base, p, k, n, real);
	for (uint32_t i = 0; i < k; i++) {
		const uint64_t bytes = p[i].fixed + (uint64_t)n * p[i].item;
		region *r;

		if ((uintptr_t)real[i] % MB_TF_ALIGN != 0 ||
		    (uintptr_t)real[i] + bytes > run->start + run->bytes)
			die("emu_carve: part %u (%llu bytes) misaligned or beyond the allocation",
			    i, (unsigned long long)bytes);
		r = map_region((size_t)bytes, R_PART, true);
		r->part = i;
		r->run = run->start;
		r->writer = run->writer; /* allocated in order on the run's stream */
		it->second.parts.push_back(r->start);
		out[i] = (void *)r->start;
	}
	/* what is not a part is not to be touched */
	if (mprotect(run->map, run->map_bytes - PAGE, PROT_NONE) != 0)
		die("mprotect");
	g_st.carved++;
}

/* ---- fibers: x86-64 System V context switch ---- */

/* The callee-saved registers only: the kernels change neither MXCSR nor the x87 control word,
 * and saving them (ldmxcsr, fldcw) would cost more than the rest of the switch. */
extern "C" void emu_swap(void **save_sp, void *new_sp);
asm(R"(
	.text
	.globl emu_swap
	.type emu_swap,@function
emu_swap:
	pushq %rbp
	pushq %rbx
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, (%rdi)
	movq %rsi, %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbx
	popq %rbp
	ret
	.size emu_swap, .-emu_swap
	.section .note.GNU-stack,"",@progbits
	.text
)");

namespace
{

enum fiber_state : uint8_t { F_RUN, F_BAR, F_WARP, F_DONE };
enum warp_kind : uint8_t { W_SHFL, W_SYNC, W_SUM, W_MAX };

struct fiber {
	void *sp;
	char *top; /* its stack's top: STACK bytes above a guard page, less its colour */
	fiber_state state;
	uint8_t warp_kind; /* at F_WARP: which warp operation (W_*) */
	uint32_t warp_ops; /* warp operations so far */
	unsigned int pos;  /* F_RUN: its place in the block's runnable list */
	dim3 tid;
};

const size_t STACK = 64 * 1024;
const unsigned int MAX_THREADS = 1024;

std::vector<fiber> g_fib;
fiber *g_cur;
void *g_main_sp; /* the launching code's stack while a block runs */
void (*g_fn)(void *);
void *g_ctx;

/* MB_EMU_PROFILE set: per kernel, launches, thread switches and time, printed at exit */
struct kernel_prof {
	uint64_t launches, resumes;
	double ms;
};
std::map<std::string, kernel_prof> g_prof;
bool g_profile = getenv("MB_EMU_PROFILE") != NULL;
double g_launch_t0;
uint64_t g_launch_resumes;

void
print_profile()
{
	std::vector<std::pair<std::string, kernel_prof>> v(g_prof.begin(), g_prof.end());

	std::sort(v.begin(), v.end(),
		  [](const auto &a, const auto &b) { return a.second.ms > b.second.ms; });
	fprintf(stderr, "EMU profile: %-50s %9s %14s %10s\n", "kernel", "launches", "switches",
		"ms");
	for (auto &e : v)
		fprintf(stderr, "EMU profile: %-50s %9llu %14llu %10.1f\n", e.first.c_str(),
			(unsigned long long)e.second.launches, (unsigned long long)e.second.resumes,
			e.second.ms);
}

enum mode { M_NONE, M_DIRECT, M_FIBERS };
mode g_mode = M_NONE;
const char *g_kernel = "";
const void *g_kernel_id;
bool g_synced;
std::unordered_map<const void *, bool> g_kernel_syncs; /* kernels seen: did they sync? */

/* shuffle values: [warp][parity][lane]; butterflies' results alike, and the warp_ops of the
 * butterfly each holds (computed once per warp by its first lane to resume) */
std::vector<double> g_slots, g_red;
std::vector<uint32_t> g_red_ops;
uint64_t g_rng = 0x9e3779b97f4a7c15ull;
uint64_t g_block_epoch;

/* the running block: its threads that can run (in no order; a thread knows its place) */
struct block_state {
	unsigned int n, warps, live, bar_wait;
	std::vector<unsigned int> warp_live, warp_wait, run;
} g_b;

uint64_t
rnd()
{
	g_rng ^= g_rng >> 12;
	g_rng ^= g_rng << 25;
	g_rng ^= g_rng >> 27;
	return g_rng * 2685821657736338717ull;
}

void
runnable(fiber *f)
{
	f->state = F_RUN;
	f->pos = (unsigned int)g_b.run.size();
	g_b.run.push_back((unsigned int)(f - g_fib.data()));
}

/* The current thread @p f stops running (@p why): off the runnable list, and what it
 * completes goes on: its warp when it was the last of its live lanes to reach the warp
 * operation, the block when it was the last live thread to reach __syncthreads (a thread
 * that exits leaves both waiting for one fewer). */
void
stop(fiber *f, fiber_state why)
{
	const unsigned int id = (unsigned int)(f - g_fib.data()), w = id / 32;
	const unsigned int lanes = std::min(32u, g_b.n - 32 * w);
	const unsigned int last = g_b.run.back();

	g_b.run[f->pos] = last;
	g_fib[last].pos = f->pos;
	g_b.run.pop_back();
	f->state = why;
	if (why == F_DONE) {
		g_b.live--;
		g_b.warp_live[w]--;
	} else if (why == F_BAR) {
		g_b.bar_wait++;
	} else {
		g_b.warp_wait[w]++;
	}
	if (g_b.warp_wait[w] > 0 && g_b.warp_wait[w] == g_b.warp_live[w]) {
		if (g_b.warp_live[w] != lanes)
			die("kernel %s, block (%u,%u,%u), warp %u: a warp operation naming all "
			    "lanes while %u of them have exited",
			    g_kernel, blockIdx.x, blockIdx.y, blockIdx.z, w,
			    lanes - g_b.warp_live[w]);
		for (unsigned int l = 32 * w; l < 32 * w + lanes; l++) {
			if (g_fib[l].warp_ops != g_fib[32 * w].warp_ops ||
			    g_fib[l].warp_kind != g_fib[32 * w].warp_kind)
				die("kernel %s: lanes of warp %u at different warp operations",
				    g_kernel, w);
			runnable(&g_fib[l]);
		}
		g_b.warp_wait[w] = 0;
	}
	if (g_b.live > 0 && g_b.bar_wait == g_b.live) {
		for (unsigned int i = 0; i < g_b.n; i++)
			if (g_fib[i].state == F_BAR)
				runnable(&g_fib[i]);
		g_b.bar_wait = 0;
	}
}

/*
 * The thread to run next, chosen at random among those that can (made current), or NULL
 * when the block is done. Any interleaving of the threads' stretches between barriers and
 * warp operations can come up, warps running ahead of each other included: a block whose
 * threads race shows it. Runs on the stack of whoever gives up the processor: threads hand
 * it to each other directly, which halves the switches and keeps the processor's
 * return-address prediction right (all threads stop at the same call sites), instead of
 * going through the launcher each time.
 */
fiber *
pick()
{
	fiber *f;

	if (g_b.run.empty()) {
		if (g_b.live == 0)
			return NULL;
		die("kernel %s, block (%u,%u,%u): %u threads live, %u at __syncthreads, the "
		    "others at warp operations their warps never all reach (divergent barriers or "
		    "shuffles)",
		    g_kernel, blockIdx.x, blockIdx.y, blockIdx.z, g_b.live, g_b.bar_wait);
	}
	f = &g_fib[g_b.run[rnd() % g_b.run.size()]];
	threadIdx = f->tid;
	g_cur = f;
	g_st.resumes++;
	return f;
}

/* Stack pointer for a fresh fiber whose stack ends at @p top (16-byte aligned): emu_swap's
 * six saved registers, then fiber_entry as the return address. */
void fiber_entry();

void *
fresh_sp(char *top)
{
	uint64_t *sp = (uint64_t *)(top - 64);

	memset(sp, 0, 64);
	sp[6] = (uint64_t)(uintptr_t)&fiber_entry;
	return sp;
}

/* The current thread stops (@p why: waiting, or done): on to the next one. */
void
yield(fiber_state why)
{
	fiber *me = g_cur, *next;

	if (why != F_DONE)
		g_synced = true;
	stop(me, why);
	next = pick();
	if (next == me)
		return;
	emu_swap(&me->sp, next != NULL ? next->sp : g_main_sp);
}

void
fiber_entry()
{
	g_fn(g_ctx);
	yield(F_DONE);
	die("a finished thread resumed");
}

/* One block of @p n threads to the end. */
void
run_block(unsigned int n)
{
	fiber *first;

	if (g_fib.size() < n) {
		size_t old = g_fib.size();

		g_fib.resize(n);
		for (size_t i = old; i < n; i++) {
			char *m = (char *)mmap(NULL, STACK + PAGE, PROT_READ | PROT_WRITE,
					       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

			if (m == MAP_FAILED || mprotect(m, PAGE, PROT_NONE) != 0)
				die("a fiber stack");
			/* tops a multiple of the page apart share their L1 sets: each switch
			 * would evict another thread's frame; offset them by 64 lines */
			g_fib[i].top = m + PAGE + STACK - (i * 5 % 64) * 64;
		}
	}
	g_b.n = n;
	g_b.warps = (n + 31) / 32;
	g_b.live = n;
	g_b.bar_wait = 0;
	g_b.warp_live.assign(g_b.warps, 0);
	g_b.warp_wait.assign(g_b.warps, 0);
	g_slots.resize((size_t)g_b.warps * 64);
	g_red.resize((size_t)g_b.warps * 64);
	g_red_ops.assign((size_t)g_b.warps * 2, 0);
	g_b.run.clear();
	for (unsigned int t = 0; t < n; t++) {
		fiber &f = g_fib[t];

		runnable(&f);
		f.warp_ops = 0;
		f.tid = dim3(t % blockDim.x, t / blockDim.x % blockDim.y,
			     t / (blockDim.x * blockDim.y));
		f.sp = fresh_sp(f.top);
		g_b.warp_live[t / 32]++;
	}
	g_block_epoch++;
	first = pick();
	/* back here when the last thread is done */
	emu_swap(&g_main_sp, first->sp);
}

} /* namespace */

void
__syncthreads()
{
	if (g_mode != M_FIBERS)
		die("kernel %s: __syncthreads in a launch run as a loop (its first launch never "
		    "synchronised)",
		    g_kernel);
	yield(F_BAR);
}

void
__syncwarp(unsigned int mask)
{
	if (mask != 0xffffffffu)
		die("kernel %s: __syncwarp(0x%x): only full warps here", g_kernel, mask);
	if (g_mode != M_FIBERS)
		die("kernel %s: __syncwarp in a launch run as a loop", g_kernel);
	g_cur->warp_ops++;
	g_cur->warp_kind = W_SYNC;
	yield(F_WARP);
}

double
emu_shfl_xor(unsigned int mask, double v, int lane_mask)
{
	fiber *f = g_cur;
	unsigned int id, warp, lane, src;
	double *slot;

	if (mask != 0xffffffffu)
		die("kernel %s: a shuffle with mask 0x%x: only full warps here", g_kernel, mask);
	if (g_mode != M_FIBERS)
		die("kernel %s: a shuffle in a launch run as a loop", g_kernel);
	id = (unsigned int)(f - g_fib.data());
	warp = id / 32;
	lane = id % 32;
	f->warp_ops++;
	f->warp_kind = W_SHFL;
	slot = &g_slots[((size_t)warp * 2 + (f->warp_ops & 1)) * 32];
	slot[lane] = v;
	yield(F_WARP);
	src = lane ^ (unsigned int)lane_mask;
	if (src >= 32 || warp * 32 + src >= blockDim.x * blockDim.y * blockDim.z)
		die("kernel %s: a shuffle from lane %u", g_kernel, src);
	return slot[src];
}

namespace
{

/* the five exchanges of every lane of the warp whose values start at g_slots[at] (out of
 * butterfly(): its arrays would otherwise sit in every lane's frame, where each switch
 * back to a thread would touch them) */
template <class T>
__attribute__((noinline)) void
butterfly_all(size_t at, int max)
{
	T a[32], b[32];

	for (unsigned int l = 0; l < 32; l++)
		a[l] = (T)g_slots[at + l];
	for (unsigned int o = 16; o > 0; o >>= 1) {
		for (unsigned int l = 0; l < 32; l++)
			b[l] = max ? std::fmax(a[l], a[l ^ o]) : a[l] + a[l ^ o];
		memcpy(a, b, sizeof(a));
	}
	for (unsigned int l = 0; l < 32; l++)
		g_red[at + l] = (double)a[l];
}

template <class T>
T
butterfly(T v, int max)
{
	fiber *f = g_cur;
	const unsigned int id = (unsigned int)(f - g_fib.data()), warp = id / 32, lane = id % 32;
	size_t at;

	if (g_mode != M_FIBERS)
		die("kernel %s: a warp reduction in a launch run as a loop", g_kernel);
	if (32 * warp + 32 > blockDim.x * blockDim.y * blockDim.z)
		die("kernel %s: a warp reduction over a warp of fewer than 32 threads", g_kernel);
	f->warp_ops++;
	f->warp_kind = max ? W_MAX : W_SUM;
	at = ((size_t)warp * 2 + (f->warp_ops & 1)) * 32;
	g_slots[at + lane] = (double)v; /* exact for float */
	yield(F_WARP);
	if (g_red_ops[at / 32] != f->warp_ops) { /* the warp's first lane here: all 32 results */
		butterfly_all<T>(at, max);
		g_red_ops[at / 32] = f->warp_ops;
	}
	return (T)g_red[at + lane];
}

} /* namespace */

float
emu_xor_butterfly(float v, int max)
{
	return butterfly<float>(v, max);
}

double
emu_xor_butterfly(double v, int max)
{
	return butterfly<double>(v, max);
}

void
emu_shared_fill(void *p, size_t bytes)
{
	static std::vector<std::pair<void *, uint64_t>> seen;

	for (auto &e : seen)
		if (e.first == p) {
			if (e.second != g_block_epoch) {
				e.second = g_block_epoch;
				memset(p, 0xff, bytes);
			}
			return;
		}
	seen.push_back({p, g_block_epoch});
	memset(p, 0xff, bytes);
}

bool
emu_grid_begin(const char *name, const void *id, const EmuCfg &c)
{
	const uint64_t threads = (uint64_t)c.b.x * c.b.y * c.b.z;
	auto it = g_kernel_syncs.find(id);

	if (g_mode != M_NONE)
		die("kernel %s launched from inside kernel %s", name, g_kernel);
	if (c.g.x == 0 || c.g.y == 0 || c.g.z == 0 || threads == 0)
		die("kernel %s: an empty launch (grid %u x %u x %u, block %u x %u x %u)", name,
		    c.g.x, c.g.y, c.g.z, c.b.x, c.b.y, c.b.z);
	if (c.g.x > 0x7fffffffu || c.g.y > 65535 || c.g.z > 65535 || threads > MAX_THREADS ||
	    c.b.x > 1024 || c.b.y > 1024 || c.b.z > 64)
		die("kernel %s: grid %u x %u x %u, block %u x %u x %u: beyond CUDA's limits", name,
		    c.g.x, c.g.y, c.g.z, c.b.x, c.b.y, c.b.z);
	g_st.launches++;
	if (g_profile) {
		static bool registered;

		if (!registered)
			atexit(print_profile);
		registered = true;
		g_launch_t0 = now_ms();
		g_launch_resumes = g_st.resumes;
	}
	gridDim = c.g;
	blockDim = c.b;
	g_kernel = name;
	g_kernel_id = id;
	if (it != g_kernel_syncs.end() && !it->second) {
		g_mode = M_DIRECT;
		return true;
	}
	g_mode = M_FIBERS;
	return false;
}

void
emu_grid_end()
{
	if (g_profile) {
		kernel_prof &p = g_prof[g_kernel];

		p.launches++;
		p.resumes += g_st.resumes - g_launch_resumes;
		p.ms += now_ms() - g_launch_t0;
	}
	g_mode = M_NONE;
}

void
emu_grid_fibers(void (*fn)(void *), void *ctx)
{
	const unsigned int n = blockDim.x * blockDim.y * blockDim.z;

	g_st.fiber_launches++;
	g_fn = fn;
	g_ctx = ctx;
	g_synced = false;
	for (unsigned int bz = 0; bz < gridDim.z; bz++)
		for (unsigned int by = 0; by < gridDim.y; by++)
			for (unsigned int bx = 0; bx < gridDim.x; bx++) {
				blockIdx = dim3(bx, by, bz);
				run_block(n);
			}
	if (g_kernel_syncs.find(g_kernel_id) == g_kernel_syncs.end() || g_synced)
		g_kernel_syncs[g_kernel_id] = g_synced;
	emu_grid_end();
}

/* ---- cuBLAS ---- */

struct emu_blas {
	cudaStream_t s;
	void *ws;
	size_t ws_bytes;
};

namespace
{

uint64_t g_blas;

size_t
type_size(cudaDataType_t t)
{
	return t == CUDA_R_32F ? 4 : 2;
}

float
load(const void *p, cudaDataType_t t, size_t i)
{
	switch (t) {
	case CUDA_R_16F:
		return emu_h2f(((const uint16_t *)p)[i]);
	case CUDA_R_16BF:
		return emu_bf2f(((const uint16_t *)p)[i]);
	default:
		return ((const float *)p)[i];
	}
}

/* A stored column-major rows x cols operand with leading dimension ld, as F32: the
 * pointer itself for F32, else a dense copy in @p tmp (ld = rows). */
const float *
as_f32(const void *p, cudaDataType_t t, int rows, int cols, int *ld, std::vector<float> &tmp)
{
	if (t == CUDA_R_32F)
		return (const float *)p;
	tmp.resize((size_t)rows * cols);
	for (int j = 0; j < cols; j++)
		for (int i = 0; i < rows; i++)
			tmp[(size_t)j * rows + i] = load(p, t, (size_t)j * *ld + i);
	*ld = rows;
	return tmp.data();
}

/* what a stored rows x cols operand spans, in bytes, batch included */
void
operand(const char *what, const char *name, const void *p, cudaDataType_t t, int rows, int cols,
	int ld, long long stride, int batch, bool write)
{
	size_t span_elems;

	if (rows < 0 || cols < 0 || ld < std::max(1, rows))
		die("%s: operand %s of %d x %d with leading dimension %d", what, name, rows, cols,
		    ld);
	if (rows == 0 || cols == 0)
		return;
	span_elems = (size_t)(cols - 1) * ld + rows + (size_t)(batch - 1) * (size_t)stride;
	if (batch > 1 && stride < 0)
		die("%s: operand %s with a negative stride", what, name);
	region *r = span(p, span_elems * type_size(t), what);
	if (!on_device(r))
		die("%s: operand %s at %p is not device memory", what, name, p);
	touch(r, write);
}

cublasStatus_t
gemm(cublasHandle_t h, const char *what, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
     int k, const void *alpha, const void *A, cudaDataType_t at, int lda, long long sa,
     const void *B, cudaDataType_t bt, int ldb, long long sb, const void *beta, void *C,
     cudaDataType_t ct, int ldc, long long sc, int batch, cublasComputeType_t compute)
{
	const int ar = ta == CUBLAS_OP_N ? m : k, ac = ta == CUBLAS_OP_N ? k : m;
	const int br = tb == CUBLAS_OP_N ? k : n, bc = tb == CUBLAS_OP_N ? n : k;
	const float a = *(const float *)alpha, b = *(const float *)beta;
	std::vector<float> ta_, tb_, tc;

	if (h == NULL)
		return CUBLAS_STATUS_NOT_INITIALIZED;
	if (compute != CUBLAS_COMPUTE_32F || m < 0 || n < 0 || k < 0 || batch < 1 ||
	    ldc < std::max(1, m) || at != bt)
		return CUBLAS_STATUS_INVALID_VALUE;
	emu_op_begin(h->s, what);
	g_st.gemms++;
	operand(what, "A", A, at, ar, ac, lda, sa, batch, false);
	operand(what, "B", B, bt, br, bc, ldb, sb, batch, false);
	operand(what, "C", C, ct, m, n, ldc, sc, batch, true);
	if (h->ws != NULL)
		emu_access(h->ws, true, what, false);
	for (int i = 0; i < batch; i++) {
		const char *pa = (const char *)A + (size_t)i * sa * type_size(at);
		const char *pb = (const char *)B + (size_t)i * sb * type_size(bt);
		char *pc = (char *)C + (size_t)i * sc * type_size(ct);
		int la = lda, lb = ldb;
		const float *fa = as_f32(pa, at, ar, ac, &la, ta_);
		const float *fb = as_f32(pb, bt, br, bc, &lb, tb_);

		if (m == 0 || n == 0)
			continue;
		if (ct == CUDA_R_32F) {
			cblas_sgemm(CblasColMajor, ta == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
				    tb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, m, n, k, a, fa,
				    la, fb, lb, b, (float *)pc, ldc);
			continue;
		}
		tc.assign((size_t)m * n, 0.0f);
		if (b != 0.0f)
			for (int j = 0; j < n; j++)
				for (int r = 0; r < m; r++)
					tc[(size_t)j * m + r] = load(pc, ct, (size_t)j * ldc + r);
		cblas_sgemm(CblasColMajor, ta == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
			    tb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, m, n, k, a, fa, la, fb,
			    lb, b, tc.data(), m);
		for (int j = 0; j < n; j++)
			for (int r = 0; r < m; r++) {
				const float v = tc[(size_t)j * m + r];
				uint16_t *o = (uint16_t *)pc + (size_t)j * ldc + r;

				*o = ct == CUDA_R_16F ? emu_f2h(v) : emu_f2bf(v);
			}
	}
	return CUBLAS_STATUS_SUCCESS;
}

} /* namespace */

cublasStatus_t
cublasCreate(cublasHandle_t *h)
{
	*h = new emu_blas{NULL, NULL, 0};
	g_blas++;
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t
cublasDestroy(cublasHandle_t h)
{
	if (h == NULL)
		return CUBLAS_STATUS_NOT_INITIALIZED;
	device_sync(); /* cuBLAS' documentation: cublasDestroy() synchronises the device */
	delete h;
	g_blas--;
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t
cublasSetMathMode(cublasHandle_t h, cublasMath_t mode)
{
	(void)mode;
	return h != NULL ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}

cublasStatus_t
cublasSetPointerMode(cublasHandle_t h, cublasPointerMode_t mode)
{
	if (h == NULL)
		return CUBLAS_STATUS_NOT_INITIALIZED;
	return mode == CUBLAS_POINTER_MODE_HOST ? CUBLAS_STATUS_SUCCESS
						: CUBLAS_STATUS_INVALID_VALUE;
}

cublasStatus_t
cublasSetStream(cublasHandle_t h, cudaStream_t s)
{
	if (h == NULL)
		return CUBLAS_STATUS_NOT_INITIALIZED;
	h->s = s;
	h->ws = NULL; /* cuBLAS goes back to its own workspace: set it again after this */
	h->ws_bytes = 0;
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t
cublasSetWorkspace(cublasHandle_t h, void *ws, size_t bytes)
{
	if (h == NULL)
		return CUBLAS_STATUS_NOT_INITIALIZED;
	if (ws != NULL && !on_device(span(ws, bytes, "cublasSetWorkspace")))
		die("cublasSetWorkspace: %zu bytes at %p are not device memory", bytes, ws);
	h->ws = ws;
	h->ws_bytes = bytes;
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t
cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
	     const void *alpha, const void *A, cudaDataType_t at, int lda, const void *B,
	     cudaDataType_t bt, int ldb, const void *beta, void *C, cudaDataType_t ct, int ldc,
	     cublasComputeType_t compute, cublasGemmAlgo_t algo)
{
	(void)algo;
	return gemm(h, "cublasGemmEx", ta, tb, m, n, k, alpha, A, at, lda, 0, B, bt, ldb, 0, beta,
		    C, ct, ldc, 0, 1, compute);
}

cublasStatus_t
cublasGemmStridedBatchedEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
			   int n, int k, const void *alpha, const void *A, cudaDataType_t at,
			   int lda, long long sa, const void *B, cudaDataType_t bt, int ldb,
			   long long sb, const void *beta, void *C, cudaDataType_t ct, int ldc,
			   long long sc, int batch, cublasComputeType_t compute,
			   cublasGemmAlgo_t algo)
{
	(void)algo;
	return gemm(h, "cublasGemmStridedBatchedEx", ta, tb, m, n, k, alpha, A, at, lda, sa, B, bt,
		    ldb, sb, beta, C, ct, ldc, sc, batch, compute);
}

/* ---- cuFFT ---- */

namespace
{

typedef std::complex<double> cd;

struct fft_plan {
	int nx, batch;
	cufftType type;
	bool made, autoalloc;
	void *work;
	size_t ws;
	cudaStream_t s;
	std::vector<int> fac; /* radix, then what remains, per stage (kissfft's layout) */
	std::vector<cd> tw;   /* exp(-2 pi i j / nx) */
};

std::map<int, fft_plan> g_plans;
int g_plan_ids = 1;

/* kissfft's recursion: out[0..p*m) from in[0, fstride, 2 fstride, ...], generic butterflies */
void
fft_work(cd *out, const cd *in, size_t fstride, const int *fac, const fft_plan &pl)
{
	const int p = fac[0], m = fac[1];
	cd scratch[16];

	if (m == 1)
		for (int j = 0; j < p; j++)
			out[j] = in[(size_t)j * fstride];
	else
		for (int j = 0; j < p; j++)
			fft_work(out + (size_t)j * m, in + (size_t)j * fstride, fstride * p,
				 fac + 2, pl);
	for (int u = 0; u < m; u++) {
		for (int q = 0; q < p; q++)
			scratch[q] = out[u + q * m];
		for (int q1 = 0; q1 < p; q1++) {
			const size_t k = (size_t)u + (size_t)q1 * m;
			size_t tw = 0;
			cd acc = scratch[0];

			for (int q = 1; q < p; q++) {
				tw += fstride * k;
				if (tw >= (size_t)pl.nx)
					tw -= (size_t)pl.nx;
				acc += scratch[q] * pl.tw[tw];
			}
			out[k] = acc;
		}
	}
}

cufftResult
make(fft_plan &pl, int nx, cufftType type, int batch)
{
	int n = nx;

	if (nx < 2 || batch < 1 || (type != CUFFT_R2C && type != CUFFT_D2Z))
		return CUFFT_INVALID_VALUE;
	pl.nx = nx;
	pl.batch = batch;
	pl.type = type;
	pl.fac.clear();
	for (int p = 4; n > 1;) {
		while (n % p != 0)
			p = p == 4 ? 2 : p == 2 ? 3 : p + 2;
		if (p > 16)
			return CUFFT_INVALID_VALUE; /* radices up to 16 only */
		n /= p;
		pl.fac.push_back(p);
		pl.fac.push_back(n);
	}
	pl.tw.resize((size_t)nx);
	for (int j = 0; j < nx; j++)
		pl.tw[(size_t)j] = std::polar(1.0, -2.0 * M_PI * j / nx);
	/* a work area of the emulation's choosing (cuFFT's sizes are its own) */
	pl.ws = (size_t)nx * batch * (type == CUFFT_D2Z ? 16 : 8);
	pl.made = true;
	return CUFFT_SUCCESS;
}

template <class R, class C>
cufftResult
exec(cufftHandle h, cufftType want, const R *in, C *out, const char *what)
{
	auto it = g_plans.find(h);
	std::vector<cd> x, y;

	if (it == g_plans.end() || !it->second.made)
		return CUFFT_INVALID_PLAN;
	fft_plan &pl = it->second;
	const size_t bins = (size_t)pl.nx / 2 + 1;
	if (pl.type != want)
		return CUFFT_INVALID_TYPE;
	if ((uintptr_t)in % sizeof(R) != 0 || (uintptr_t)out % sizeof(C) != 0)
		die("%s: misaligned buffers %p, %p", what, (const void *)in, (void *)out);
	emu_op_begin(pl.s, what);
	g_st.ffts++;
	if (!on_device(span(in, (size_t)pl.batch * pl.nx * sizeof(R), what)) ||
	    !on_device(span(out, (size_t)pl.batch * bins * sizeof(C), what)))
		die("%s: buffers %p, %p not device memory", what, (const void *)in, (void *)out);
	emu_access(in, false, what, false);
	emu_access(out, true, what, false);
	if (!pl.autoalloc) {
		if (pl.work == NULL)
			die("%s on a plan without auto-allocation and no work area", what);
		emu_access(pl.work, true, what, false);
		memset(pl.work, 0xa5, pl.ws); /* cuFFT's scratch: its contents are not ours */
	}
	x.resize((size_t)pl.nx);
	y.resize((size_t)pl.nx);
	for (int b = 0; b < pl.batch; b++) {
		const R *src = in + (size_t)b * pl.nx;
		C *dst = out + b * bins;

		for (int i = 0; i < pl.nx; i++)
			x[(size_t)i] = cd((double)src[i], 0.0);
		fft_work(y.data(), x.data(), 1, pl.fac.data(), pl);
		for (size_t k = 0; k < bins; k++) {
			dst[k].x = (decltype(dst[k].x))y[k].real();
			dst[k].y = (decltype(dst[k].y))y[k].imag();
		}
	}
	return CUFFT_SUCCESS;
}

} /* namespace */

cufftResult
cufftCreate(cufftHandle *plan)
{
	fft_plan pl = {};

	pl.autoalloc = true;
	*plan = g_plan_ids++;
	g_plans[*plan] = pl;
	return CUFFT_SUCCESS;
}

cufftResult
cufftDestroy(cufftHandle plan)
{
	return g_plans.erase(plan) == 1 ? CUFFT_SUCCESS : CUFFT_INVALID_PLAN;
}

cufftResult
cufftPlan1d(cufftHandle *plan, int nx, cufftType type, int batch)
{
	cufftResult r = cufftCreate(plan);

	if (r == CUFFT_SUCCESS && (r = make(g_plans[*plan], nx, type, batch)) != CUFFT_SUCCESS)
		g_plans.erase(*plan);
	return r;
}

cufftResult
cufftSetAutoAllocation(cufftHandle plan, int on)
{
	auto it = g_plans.find(plan);

	if (it == g_plans.end() || it->second.made)
		return CUFFT_INVALID_PLAN; /* before the plan is made, as cuFFT wants */
	it->second.autoalloc = on != 0;
	return CUFFT_SUCCESS;
}

cufftResult
cufftMakePlan1d(cufftHandle plan, int nx, cufftType type, int batch, size_t *ws)
{
	auto it = g_plans.find(plan);
	cufftResult r;

	if (it == g_plans.end() || it->second.made)
		return CUFFT_INVALID_PLAN;
	if ((r = make(it->second, nx, type, batch)) != CUFFT_SUCCESS)
		return r;
	*ws = it->second.ws;
	return CUFFT_SUCCESS;
}

cufftResult
cufftSetWorkArea(cufftHandle plan, void *area)
{
	auto it = g_plans.find(plan);

	if (it == g_plans.end() || !it->second.made)
		return CUFFT_INVALID_PLAN;
	if (area != NULL && !on_device(span(area, it->second.ws, "cufftSetWorkArea")))
		die("cufftSetWorkArea: %zu bytes at %p are not device memory", it->second.ws, area);
	it->second.work = area;
	return CUFFT_SUCCESS;
}

cufftResult
cufftSetStream(cufftHandle plan, cudaStream_t s)
{
	auto it = g_plans.find(plan);

	if (it == g_plans.end())
		return CUFFT_INVALID_PLAN;
	it->second.s = s;
	return CUFFT_SUCCESS;
}

cufftResult
cufftExecR2C(cufftHandle plan, cufftReal *in, cufftComplex *out)
{
	return exec(plan, CUFFT_R2C, in, out, "cufftExecR2C");
}

cufftResult
cufftExecD2Z(cufftHandle plan, cufftDoubleReal *in, cufftDoubleComplex *out)
{
	return exec(plan, CUFFT_D2Z, in, out, "cufftExecD2Z");
}

/* ---- the test's view (emu_api.h) ---- */

extern "C" void
mb_emu_stats(struct mb_emu_stats *out)
{
	*out = g_st;
	out->device_allocs = out->pinned_allocs = 0;
	for (auto &e : g_regions) {
		if (e.second.kind == R_PINNED)
			out->pinned_allocs++;
		else if (e.second.kind != R_PART)
			out->device_allocs++;
	}
	out->streams = 0;
	for (emu_stream *s : g_streams)
		out->streams += s != NULL && !s->legacy;
	out->events = g_events;
	out->blas_handles = g_blas;
	out->fft_plans = g_plans.size();
	out->pools = g_pools;
}
