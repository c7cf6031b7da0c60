/*
 * pymalloc record: runs a Python program in an embedded CPython and writes every call of its object allocator
 * (the PYMEM_DOMAIN_OBJ domain: PyObject_Malloc, PyObject_Calloc, PyObject_Realloc, PyObject_Free) as a trace:
 *
 *   # recorded by pymalloc record: python X.Y, script NAME
 *   m ID SIZE      malloc (calloc records the product of its arguments)
 *   r ID SIZE      realloc of a live block; the block keeps its ID when it moves
 *   f ID           free
 *   # end: ...     counts, as a last comment
 *
 * IDs are decimal numbers given to blocks in allocation order and never reused. free(NULL) is not recorded;
 * realloc(NULL, n) is recorded as a malloc; realloc(p, 0) is recorded as `r ID 0` (pymalloc returns a block).
 * Blocks still live at exit are simply never freed in the trace. Every f and r names a live ID.
 *
 * Built on demand by lib/cli/record.ts (lib/tools/cbuild.ts) against libpython and run as the interpreter:
 * its arguments are those of `python3` (argv[0] included). The environment tells it where to write:
 *   PYMALLOC_RECORD_FD          file descriptor to write the trace to (default 1)
 *   PYMALLOC_RECORD_LABEL       the script name for the first comment line
 *   PYMALLOC_RECORD_EXECUTABLE  the interpreter to report as sys.executable (its prefix locates the stdlib)
 * All three are removed from the environment before Python starts, so child processes are not recorded.
 * A forked child stops recording (its copy of the buffer is dropped), so the trace stays one process's.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- output: complete lines in a buffer, written with write(2) ---- */

#define OUT_SIZE (1u << 20)
#define LINE_MAX_BYTES 64

static char out_buf[OUT_SIZE];
static size_t out_len;
static int out_fd = 1;
static int recording;
static pid_t recorder_pid;

static unsigned long long count_malloc, count_free, count_realloc;

static void out_flush(void) {
  size_t done = 0;
  if (getpid() != recorder_pid) {
    out_len = 0;
    return;
  }
  while (done < out_len) {
    ssize_t w = write(out_fd, out_buf + done, out_len - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      /* The reader went away: stop recording, let the program run on. */
      recording = 0;
      break;
    }
    done += (size_t)w;
  }
  out_len = 0;
}

static char *u64_text(char *end, unsigned long long v) {
  do {
    *--end = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  return end;
}

/* Appends "op id[ size]\n"; the buffer only ever holds whole lines, so a trace cut short stays well formed. */
static void out_op(char op, unsigned long long id, int has_size, unsigned long long size) {
  if (out_len + LINE_MAX_BYTES > OUT_SIZE) out_flush();
  char tmp[24];
  char *p = out_buf + out_len;
  *p++ = op;
  *p++ = ' ';
  char *s = u64_text(tmp + sizeof tmp, id);
  size_t n = (size_t)(tmp + sizeof tmp - s);
  memcpy(p, s, n);
  p += n;
  if (has_size) {
    *p++ = ' ';
    s = u64_text(tmp + sizeof tmp, size);
    n = (size_t)(tmp + sizeof tmp - s);
    memcpy(p, s, n);
    p += n;
  }
  *p++ = '\n';
  out_len = (size_t)(p - out_buf);
}

static void out_text(const char *text) {
  size_t n = strlen(text);
  if (out_len + n > OUT_SIZE) out_flush();
  if (n > OUT_SIZE) n = OUT_SIZE;
  memcpy(out_buf + out_len, text, n);
  out_len += n;
}

/* ---- pointer -> ID: open addressing, linear probing, backward-shift deletion ---- */

struct slot {
  void *key; /* NULL: empty */
  unsigned long long id;
};

static struct slot *table;
static size_t table_cap; /* a power of two */
static size_t table_used;
static unsigned long long next_id;

static size_t slot_of(const void *p) {
  uint64_t h = (uint64_t)(uintptr_t)p >> 4;
  h *= 0x9E3779B97F4A7C15ull;
  return (size_t)(h >> 17) & (table_cap - 1);
}

static void table_put_raw(void *key, unsigned long long id) {
  size_t i = slot_of(key);
  while (table[i].key != NULL) {
    if (table[i].key == key) {
      table[i].id = id;
      return;
    }
    i = (i + 1) & (table_cap - 1);
  }
  table[i].key = key;
  table[i].id = id;
  table_used++;
}

static void table_grow(void) {
  struct slot *old = table;
  size_t old_cap = table_cap;
  table_cap = old_cap ? old_cap * 2 : 1u << 16;
  table = calloc(table_cap, sizeof *table);
  if (table == NULL) {
    fprintf(stderr, "pymalloc record: out of memory for the block table\n");
    abort();
  }
  table_used = 0;
  for (size_t i = 0; i < old_cap; i++)
    if (old[i].key != NULL) table_put_raw(old[i].key, old[i].id);
  free(old);
}

static void table_put(void *key, unsigned long long id) {
  if ((table_used + 1) * 2 > table_cap) table_grow();
  table_put_raw(key, id);
}

/* Removes key; returns 1 and its ID if it was there. */
static int table_take(void *key, unsigned long long *id) {
  if (table_cap == 0) return 0;
  size_t mask = table_cap - 1;
  size_t i = slot_of(key);
  while (table[i].key != key) {
    if (table[i].key == NULL) return 0;
    i = (i + 1) & mask;
  }
  *id = table[i].id;
  table_used--;
  /* Backward shift: move later entries of the run into the hole when their home slot allows it. */
  size_t hole = i;
  size_t j = i;
  for (;;) {
    j = (j + 1) & mask;
    if (table[j].key == NULL) break;
    size_t home = slot_of(table[j].key);
    /* The entry at j may fill the hole if its home is not cyclically within (hole, j]. */
    int stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (!stays) {
      table[hole] = table[j];
      hole = j;
    }
  }
  table[hole].key = NULL;
  return 1;
}

/* ---- the hooks ---- */

static PyMemAllocatorEx orig;

static void note_malloc(void *p, size_t size) {
  if (!recording || p == NULL) return;
  unsigned long long id = next_id++;
  table_put(p, id);
  count_malloc++;
  out_op('m', id, 1, size);
}

static void *hook_malloc(void *ctx, size_t size) {
  (void)ctx;
  void *p = orig.malloc(orig.ctx, size);
  note_malloc(p, size);
  return p;
}

static void *hook_calloc(void *ctx, size_t nelem, size_t elsize) {
  (void)ctx;
  void *p = orig.calloc(orig.ctx, nelem, elsize);
  note_malloc(p, nelem * elsize);
  return p;
}

static void *hook_realloc(void *ctx, void *ptr, size_t size) {
  (void)ctx;
  void *q = orig.realloc(orig.ctx, ptr, size);
  if (!recording) return q;
  if (ptr == NULL) {
    note_malloc(q, size);
    return q;
  }
  if (q == NULL && size != 0) return q; /* failed: the old block is still live and unchanged */
  unsigned long long id;
  if (!table_take(ptr, &id)) {
    /* A block from before recording started: from now on it is a new object. */
    note_malloc(q, size);
    return q;
  }
  if (q == NULL) {
    /* realloc(p, 0) returned NULL: the block is gone (not pymalloc's behaviour, but an allocator's right). */
    count_free++;
    out_op('f', id, 0, 0);
    return q;
  }
  table_put(q, id);
  count_realloc++;
  out_op('r', id, 1, size);
  return q;
}

static void hook_free(void *ctx, void *ptr) {
  (void)ctx;
  orig.free(orig.ctx, ptr);
  if (!recording || ptr == NULL) return;
  unsigned long long id;
  if (!table_take(ptr, &id)) return;
  count_free++;
  out_op('f', id, 0, 0);
}

static void stop_in_child(void) {
  recording = 0;
  out_len = 0;
  if (out_fd > 2) close(out_fd); /* a long-lived child must not hold the trace pipe open */
}

static void finish(void) {
  if (getpid() != recorder_pid) return;
  if (recording) {
    char line[200];
    snprintf(line, sizeof line, "# end: %llu operations (%llu m, %llu f, %llu r), %zu blocks live at exit\n",
             count_malloc + count_free + count_realloc, count_malloc, count_free, count_realloc, table_used);
    recording = 0;
    out_text(line);
  }
  out_flush();
}

/* Reads and removes an environment variable (the copy stays valid: it is strdup'ed). */
static char *take_env(const char *name) {
  const char *v = getenv(name);
  char *copy = v ? strdup(v) : NULL;
  unsetenv(name);
  return copy;
}

int main(int argc, char **argv) {
  char *fd_text = take_env("PYMALLOC_RECORD_FD");
  char *label = take_env("PYMALLOC_RECORD_LABEL");
  char *executable = take_env("PYMALLOC_RECORD_EXECUTABLE");
  if (fd_text != NULL) out_fd = atoi(fd_text);
  if (out_fd > 2) fcntl(out_fd, F_SETFD, FD_CLOEXEC); /* programs the script runs do not inherit it */
  recorder_pid = getpid();
  pthread_atfork(NULL, NULL, stop_in_child);

  /* Pre-initialise from the command line first (-E, -I, -X dev, PYTHONMALLOC...), so that whatever object
   * allocator Python chooses is the one wrapped, then install the hooks before any object is allocated. */
  PyPreConfig preconfig;
  PyPreConfig_InitPythonConfig(&preconfig);
  PyStatus status = Py_PreInitializeFromBytesArgs(&preconfig, argc, argv);
  if (PyStatus_Exception(status)) {
    if (PyStatus_IsExit(status)) return status.exitcode;
    Py_ExitStatusException(status);
  }

  /* Finalization ends with these: the trace is complete even if Python then kills itself with SIGINT (an
   * unhandled KeyboardInterrupt), which skips both the end of main and atexit. */
  Py_AtExit(finish);

  char head[512];
  snprintf(head, sizeof head, "# recorded by pymalloc record: python %d.%d, script %s\n", PY_MAJOR_VERSION,
           PY_MINOR_VERSION, label != NULL && label[0] != '\0' ? label : "?");
  out_text(head);
  table_grow();
  PyMem_GetAllocator(PYMEM_DOMAIN_OBJ, &orig);
  PyMemAllocatorEx hooked = {NULL, hook_malloc, hook_calloc, hook_realloc, hook_free};
  recording = 1;
  PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &hooked);
  atexit(finish); /* for exits from inside Python (Py_Exit, os.exit paths that run atexit) */

  PyConfig config;
  PyConfig_InitPythonConfig(&config);
  status = PyConfig_SetBytesArgv(&config, argc, argv);
  if (!PyStatus_Exception(status) && executable != NULL && executable[0] != '\0')
    status = PyConfig_SetBytesString(&config, &config.executable, executable);
  if (!PyStatus_Exception(status)) status = Py_InitializeFromConfig(&config);
  PyConfig_Clear(&config);
  if (PyStatus_Exception(status)) {
    finish();
    if (PyStatus_IsExit(status)) return status.exitcode;
    Py_ExitStatusException(status);
  }
  int code = Py_RunMain();
  finish();
  free(fd_text);
  free(label);
  free(executable);
  return code;
}
