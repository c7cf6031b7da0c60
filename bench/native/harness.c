/*
 * Replays an allocation trace through a native allocator, for the benchmark's native peers.
 *
 * One source, two variants:
 *   -DPEER_CPYTHON  CPython's pymalloc: PyObject_Malloc / PyObject_Realloc / PyObject_Free from libpython,
 *                   called before (and without) Py_Initialize, so its pools and arenas start empty and
 *                   nothing but the trace allocates from them.
 *   -DPEER_GLIBC    the C library's malloc / realloc / free.
 *
 * Usage: harness TRACE.bin time REPS | timeline SAMPLES [IDLE_MS] | stats
 *   (timeline also reports the RSS IDLE_MS, default 1000, after its free-all with no call: rssAfterIdle)
 *
 * The trace file is written by bench/peers/native.ts (little-endian, native layout):
 *   offset 0   char[8]  magic "PYMTRACE"
 *          8   u32      format version (1)
 *         12   u32      header size in bytes (32)
 *         16   u64      number of operations N
 *         24   u32      number of objects (ids are 0 .. objects-1)
 *         28   u32      reserved (0)
 *         32   u8[N]    ops: 0 malloc, 1 free, 2 realloc
 *              pad to a multiple of 4
 *              u32[N]   ids
 *              u32[N]   sizes
 *
 * The replay loop mirrors the JavaScript one (lib/trace.ts `replay`): it reads the operations packed two words
 * each, (id << 2) | op and the size, from one array, and keeps a table of pointers indexed by object number;
 * malloc stores, free frees and clears, realloc replaces. Memory is not touched, as in JavaScript.
 * Output is one JSON object on stdout (the stats mode prints CPython's own text instead).
 */
#define _GNU_SOURCE 1
#if defined(PEER_CPYTHON)
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define PEER_NAME "CPython pymalloc"
/* Exported by libpython (what sys._debugmallocstats() prints); not declared by the public headers of 3.11. */
extern int _PyObject_DebugMallocStats(FILE *out);
#define PEER_MALLOC(n) PyObject_Malloc(n)
#define PEER_REALLOC(p, n) PyObject_Realloc((p), (n))
#define PEER_FREE(p) PyObject_Free(p)
#elif defined(PEER_GLIBC)
/* Also the harness of the preloaded allocators (mimalloc, jemalloc, tcmalloc: LD_PRELOAD replaces malloc); it
   prints the file malloc came from, so that a preload that did not take is seen. */
#include <dlfcn.h>
#define PEER_NAME "glibc malloc"
#define PEER_MALLOC(n) malloc(n)
#define PEER_REALLOC(p, n) realloc((p), (n))
#define PEER_FREE(p) free(p)
#else
#error "define PEER_CPYTHON or PEER_GLIBC"
#endif

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { OP_MALLOC = 0, OP_FREE = 1, OP_REALLOC = 2 };

#define TRACE_MAGIC "PYMTRACE"
#define TRACE_VERSION 1u
#define TRACE_HEADER 32u

struct trace {
  size_t length;
  uint32_t objects;
  /* Two words per operation, as lib/trace.ts packs them: (id << 2) | op, then the size. */
  uint32_t *packed;
};

static void die(const char *what) {
  fprintf(stderr, "harness: %s%s%s\n", what, errno ? ": " : "", errno ? strerror(errno) : "");
  exit(1);
}

static void read_exact(FILE *f, void *dst, size_t n, const char *what) {
  if (n != 0 && fread(dst, 1, n, f) != n) die(what);
}

/* The trace arrays come from the C library's allocator in both variants, before the baseline is sampled. */
static void load_trace(const char *path, struct trace *t) {
  FILE *f = fopen(path, "rb");
  if (!f) die("cannot open the trace file");
  unsigned char h[TRACE_HEADER];
  read_exact(f, h, sizeof h, "short trace header");
  uint32_t version, header;
  uint64_t length;
  memcpy(&version, h + 8, 4);
  memcpy(&header, h + 12, 4);
  memcpy(&length, h + 16, 8);
  memcpy(&t->objects, h + 24, 4);
  errno = 0;
  if (memcmp(h, TRACE_MAGIC, 8) != 0) die("not a pymalloc binary trace (bad magic)");
  if (version != TRACE_VERSION || header != TRACE_HEADER) die("unsupported binary trace version");
  t->length = (size_t)length;
  if (t->objects > (1u << 30)) die("too many objects in the trace (at most 2^30)");
  size_t padded = (t->length + 3u) & ~(size_t)3u;
  uint8_t *ops = malloc(padded ? padded : 1);
  uint32_t *ids = malloc(t->length * 4u + 4u);
  uint32_t *sizes = malloc(t->length * 4u + 4u);
  t->packed = malloc(t->length * 8u + 8u);
  if (!ops || !ids || !sizes || !t->packed) die("out of memory loading the trace");
  read_exact(f, ops, padded, "truncated trace (ops)");
  read_exact(f, ids, t->length * 4u, "truncated trace (ids)");
  read_exact(f, sizes, t->length * 4u, "truncated trace (sizes)");
  fclose(f);
  for (size_t i = 0; i < t->length; i++) {
    errno = 0;
    if (ops[i] > OP_REALLOC) die("bad operation in the trace");
    if (ids[i] >= t->objects) die("object number out of range in the trace");
    t->packed[2 * i] = (ids[i] << 2) | ops[i];
    t->packed[2 * i + 1] = sizes[i];
  }
  free(ops);
  free(ids);
  free(sizes);
}

static long page_size;

/* Resident set size in bytes, from /proc/self/statm (cheap enough for a few hundred samples). */
static long long rss_bytes(void) {
  char buf[128];
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return -1;
  long long size = 0, resident = -1;
  if (!fgets(buf, sizeof buf, f) || sscanf(buf, "%lld %lld", &size, &resident) != 2) resident = -1;
  fclose(f);
  return resident < 0 ? -1 : resident * page_size;
}

/* Peak resident set size (VmHWM) in bytes. */
static long long rss_peak(void) {
  char line[256];
  long long kib = -1;
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return -1;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "VmHWM:", 6) == 0) {
      kib = strtoll(line + 6, NULL, 10);
      break;
    }
  }
  fclose(f);
  return kib < 0 ? -1 : kib * 1024;
}

/* Resets VmHWM to the current RSS (Linux 4.0+); harmless where it is not supported. */
static void reset_peak(void) {
  FILE *f = fopen("/proc/self/clear_refs", "w");
  if (!f) return;
  fputs("5", f);
  fclose(f);
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void fail_alloc(size_t i, uint32_t size) {
  fprintf(stderr, "harness: allocation of %u bytes failed at operation %zu\n", size, i);
  exit(1);
}

/* Operations [from, to) of the trace: the same loop as lib/trace.ts replay(). */
static void replay(const struct trace *t, void **ptrs, size_t from, size_t to) {
  const uint32_t *packed = t->packed;
  for (size_t i = 2 * from, end = 2 * to; i < end; i += 2) {
    uint32_t word = packed[i];
    uint32_t id = word >> 2;
    uint32_t op = word & 3u;
    if (op == OP_MALLOC) {
      void *p = PEER_MALLOC(packed[i + 1]);
      if (__builtin_expect(p == NULL && packed[i + 1] != 0, 0)) fail_alloc(i / 2, packed[i + 1]);
      ptrs[id] = p;
    } else if (op == OP_FREE) {
      PEER_FREE(ptrs[id]);
      ptrs[id] = NULL;
    } else {
      void *p = PEER_REALLOC(ptrs[id], packed[i + 1]);
      if (__builtin_expect(p == NULL && packed[i + 1] != 0, 0)) fail_alloc(i / 2, packed[i + 1]);
      ptrs[id] = p;
    }
  }
}

static void free_all(const struct trace *t, void **ptrs) {
  for (uint32_t id = 0; id < t->objects; id++) {
    if (ptrs[id] != NULL) {
      PEER_FREE(ptrs[id]);
      ptrs[id] = NULL;
    }
  }
}

static void print_common(const struct trace *t) {
  printf("{\"peer\":\"%s\",\"ops\":%zu,\"objects\":%u", PEER_NAME, t->length, t->objects);
#if defined(PEER_GLIBC)
  {
    Dl_info info;
    void *(*volatile m)(size_t) = malloc;
    const char *from = dladdr((void *)m, &info) && info.dli_fname ? info.dli_fname : "";
    printf(",\"mallocFrom\":\"");
    for (; *from; from++) {
      if (*from == '"' || *from == '\\') putchar('\\');
      putchar(*from);
    }
    putchar('"');
  }
#endif
#if defined(PEER_CPYTHON)
  printf(",\"version\":\"%s\"", PY_VERSION);
#endif
}

static int mode_time(const struct trace *t, void **ptrs, long reps) {
  long long baseline = rss_bytes();
  reset_peak();
  long long peak = 0, end = 0, after = 0;
  double best = -1;
  for (long r = 0; r < reps; r++) {
    double t0 = now_ns();
    replay(t, ptrs, 0, t->length);
    double ns = now_ns() - t0;
    if (best < 0 || ns < best) best = ns;
    if (r == 0) {
      /* The memory figures are those of the first replay, from an allocator that started empty. */
      end = rss_bytes();
      peak = rss_peak();
      if (peak < end) peak = end;
    }
    free_all(t, ptrs);
    if (r == 0) after = rss_bytes();
  }
  print_common(t);
  printf(",\"reps\":%ld,\"bestNs\":%.0f,\"nsPerOp\":%.4f", reps, best, t->length ? best / (double)t->length : 0.0);
  printf(",\"rssBaseline\":%lld,\"rssPeak\":%lld,\"rssEnd\":%lld,\"rssAfterFree\":%lld}\n", baseline, peak, end,
         after);
  return 0;
}

static int mode_timeline(const struct trace *t, void **ptrs, long samples, long idle_ms) {
  if (samples < 1) samples = 1;
  long long baseline = rss_bytes();
  long long peak = baseline;
  size_t step = (t->length + (size_t)samples - 1) / (size_t)samples;
  if (step == 0) step = 1;
  print_common(t);
  printf(",\"rssBaseline\":%lld,\"timeline\":[[0,%lld]", baseline, baseline);
  size_t i = 0;
  while (i < t->length) {
    size_t to = i + step < t->length ? i + step : t->length;
    replay(t, ptrs, i, to);
    i = to;
    long long rss = rss_bytes();
    if (rss > peak) peak = rss;
    printf(",[%zu,%lld]", i, rss);
  }
  long long end = rss_bytes();
  free_all(t, ptrs);
  long long after = rss_bytes();
  /* A pause with no call, as for the JavaScript peers: what the allocator gives back by itself. */
  struct timespec idle = {idle_ms / 1000, (idle_ms % 1000) * 1000000L};
  while (idle_ms > 0 && nanosleep(&idle, &idle) != 0) {
  }
  long long idled = rss_bytes();
  printf(",[%zu,%lld]],\"rssPeak\":%lld,\"rssEnd\":%lld,\"rssAfterFree\":%lld,\"rssAfterIdle\":%lld}\n", t->length,
         after, peak, end, after, idled);
  return 0;
}

int main(int argc, char **argv) {
  page_size = sysconf(_SC_PAGESIZE);
  if (argc < 3) {
    fprintf(stderr, "usage: %s TRACE.bin time REPS | timeline SAMPLES [IDLE_MS] | stats\n", argv[0]);
    return 2;
  }
  struct trace t;
  load_trace(argv[1], &t);
  void **ptrs = calloc(t.objects ? t.objects : 1, sizeof *ptrs);
  if (!ptrs) die("out of memory for the pointer table");
  const char *mode = argv[2];
  long count = argc > 3 ? strtol(argv[3], NULL, 10) : 1;
  int rc;
  if (strcmp(mode, "time") == 0) {
    rc = mode_time(&t, ptrs, count < 1 ? 1 : count);
  } else if (strcmp(mode, "timeline") == 0) {
    rc = mode_timeline(&t, ptrs, count, argc > 4 ? strtol(argv[4], NULL, 10) : 1000);
  } else if (strcmp(mode, "stats") == 0) {
#if defined(PEER_CPYTHON)
    replay(&t, ptrs, 0, t.length);
    fflush(stdout);
    _PyObject_DebugMallocStats(stdout);
    fflush(stdout);
    free_all(&t, ptrs);
    rc = 0;
#else
    fprintf(stderr, "harness: the stats mode needs CPython (-DPEER_CPYTHON)\n");
    rc = 2;
#endif
  } else {
    fprintf(stderr, "harness: unknown mode '%s' (time, timeline or stats)\n", mode);
    rc = 2;
  }
  fflush(stdout);
  return rc;
}
