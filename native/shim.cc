// The page shim: the only code in pymalloc that asks the OS for memory. It does what JavaScript cannot
// (mmap, mprotect, madvise, mincore, sysconf); lib/os/ is its only caller and checks every argument first.
//
// OS contract, stated once:
//   - A reservation is `size` bytes of address space aligned to `alignment` (size a page multiple in
//     (0, 4 GiB]; alignment a power of two in [page, 4 GiB]), mapped MAP_NORESERVE, covered by one external
//     ArrayBuffer. Its access is chosen when it is made:
//       'readwrite': PROT_READ | PROT_WRITE from the start. Every byte can be read and written and never
//                    faults: a page never touched or given back reads as zeros and costs no RSS (and, with
//                    overcommit, no commit charge) until it is written. commit() changes nothing in the OS.
//       'none':      PROT_NONE; commit() makes a range readable and writable (mprotect). Touching a page that
//                    is not committed faults, which kills the process.
//   - Every range is (handle, offset, length): offset and length are page multiples, length > 0 and
//     offset + length <= size. No function takes a raw address; `base` is returned for information only.
//   - decommit 'dontneed': madvise(MADV_DONTNEED). Pages leave RSS at once; the range keeps its access and
//                          reads as zeros; under strict overcommit it still counts as committed.
//     decommit 'unmap' ('none' reservations): a fresh PROT_NONE | MAP_NORESERVE mapping over the range. Pages
//                          leave RSS and the commit charge at once; a stale access faults. Every PROT_NONE hole
//                          splits a mapping, and a process may have only vm.max_map_count of them (V8 aborts
//                          the process when it cannot map): pymalloc's reservations together keep to half of
//                          that count, and past it 'unmap' degrades to 'dontneed' for that range (decommit
//                          returns the mode it applied) instead of failing or splitting further. It degrades
//                          at seven eighths of that share, so that commits (which split mappings too) still fit.
//   - Every mapping we create gets MADV_NOHUGEPAGE, so transparent huge pages cannot keep a decommitted
//     range resident (best effort). adviseHugePages(range, true) gives a range MADV_HUGEPAGE instead, and
//     (range, false) takes it back; it returns false, changing nothing, where the kernel has no THP (EINVAL).
//   - Bad arguments throw TypeError / RangeError with a Node-style `code`; OS failures throw an Error with
//     `code` (the errno name), `errno`, `syscall`; a released reservation throws ERR_RESERVATION_RELEASED.
//     A failed OS call changes nothing (the shim's records are updated only after it succeeds).
//
// Nothing here may abort the process, whatever JavaScript passes or does, including terminating the worker
// the call runs in. So this file uses the C Node-API directly: every call's status is checked and a failure
// returns to JavaScript (a pending exception, or nothing at all when the environment is shutting down), and
// every entry point catches C++ exceptions (std::bad_alloc) before they can reach Node. node-addon-api's C++
// wrappers were used before: when napi_throw fails in a terminating worker they throw again from inside their
// own catch handler, which ends in std::terminate (the SIGABRT of worker_terminate_abort.js).
//
// Lifetime. release() (heap.destroy()) gives every page back at once (MADV_DONTNEED over the whole range),
// detaches the ArrayBuffer of a 'none' reservation (every view then has length 0; a 'readwrite' one's views read
// zeros instead) and frees the shim's own records, but it does not unmap: native work still in flight (a libuv job
// filling a view, an fs.read into one) may hold a raw pointer into the range, and it must write into this
// reservation's pages, never fault and never reach a newer reservation that the OS placed at the same addresses.
// The range is unmapped once nothing can reach it: when both the buffer's backing store has been freed (its
// external finalizer) and the ArrayBuffer object itself has been collected (a finalizer on the object; a job
// holding a view keeps the object alive). A reservation never released is unmapped the same way, by garbage
// collection or when its environment ends.
//
// Shared reservations: reserveShared, attachShared, bindThread, unbindThread and isReleased, exported where the
// addon can make a SharedArrayBuffer over external memory (native/shared.h). The main addon does that with
// Node-API where the running Node.js has it (26.1 and later, and 24.x releases since it was backported: native/shared_napi.cc), so one build still serves
// every version. For Node 20 and 22 this file is also compiled, with PYMALLOC_SHARED_ADDON defined and
// native/shared.cc beside it, into pymalloc_shared.node, which uses V8's C++ API and so is built for one Node.js
// version. All of V8 is in native/shared.cc.
//   - reserveShared(size, alignment) maps a 'readwrite' range as reserve() does and covers it with one
//     SharedArrayBuffer. Its Region is process-wide: attachShared(sab), in any thread, finds it from the SAB's own
//     backing store (data pointer and length, looked up in the registry under its mutex; never an address or a
//     number from JavaScript) and makes a new handle for that thread. The handles of one region share nothing
//     but the Region: its `released` flag and `holds` are atomics, and the state that needs a lock in a 'none'
//     reservation (the commit bitmap, extra_maps) never changes in a shared one, which is 'readwrite' and refuses
//     'unmap'. So no per-region mutex is needed; madvise and mincore are thread-safe.
//   - release() from any handle sets the region's `released` flag and gives every page back (MADV_DONTNEED); from
//     then on every handle of the region, in every thread, throws ERR_RESERVATION_RELEASED. A SharedArrayBuffer
//     cannot be detached: views of it read zeros and never fault, because the range stays mapped until the last
//     hold goes. The holds: the SAB's backing store (its deleter, which V8 may run on any thread, during isolate
//     teardown too), each handle (its finalizer, which also runs when its environment ends) and each thread
//     binding (below). The last one unmaps the range and deletes the Region.
//   - Thread binding, the crash-safety protocol of shared heaps (JavaScript relies on exactly this):
//     bindThread(handle, lockOffset, flagsOffset, slotOffset, tag) registers an environment cleanup hook for the
//     calling thread's environment (one per handle: binding again replaces the words and tag); unbindThread
//     removes it. If the environment is torn down while bound (the worker exits, worker.terminate(), the main
//     thread's normal end; process.exit() from the main thread and fatal signals run none of its hooks), the hook,
//     when the region is not released, does with sequentially consistent atomics on the 32-bit words at those
//     byte offsets:
//       1. if lock == tag: flags |= 1 (INTERRUPTED), then lock = tag -> 0 (compare-and-swap);
//       2. if slot == 1 (ATTACHED): slot = 2 (ABANDONED) (compare-and-swap).
//     It cannot wake Atomics.wait() callers (V8 has no API for that): waiters on the lock word must use a timeout.
//     A binding holds the region mapped until it is removed or has run.
//
// Add a source file: list it in binding.gyp ("sources") and CMakeLists.txt (PYMALLOC_SOURCES).

#include <node_api.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <iterator>
#include <unordered_map>
#include <vector>

#include "inspector.h"
#include "shared.h"

static_assert(sizeof(void*) == 8, "pymalloc reserves up to 4 GiB ranges: 64-bit only");

namespace {

constexpr uint64_t kMaxSize = uint64_t{1} << 32;       // Node 20 external ArrayBuffers: at most 4 GiB
constexpr uint64_t kMaxAlignment = uint64_t{1} << 32;  // the heap's 4 GiB alignment is the largest need
constexpr double kMaxSafeInteger = 9007199254740991.0;
constexpr size_t kMincoreChunkPages = size_t{1} << 16;  // bounds the mincore vector to 64 KiB
constexpr int64_t kDefaultMaxMapCount = 65530;           // Linux's default vm.max_map_count

// Marks handle objects made by reserve(), so that no other object is ever unwrapped as one. The two addons tag
// theirs differently: a handle of one is never taken for a handle of the other (their Regions are in different
// registries).
#ifdef PYMALLOC_SHARED_ADDON
constexpr napi_type_tag kHandleTag = {0x7079'6d61'6c6c'6f63ULL, 0x7368'6172'6564'0001ULL};
#else
constexpr napi_type_tag kHandleTag = {0x7079'6d61'6c6c'6f63ULL, 0x7265'7365'7276'6531ULL};
#endif

// ---- the address range and who can still reach it ----

// One reservation's address range. It is unmapped, and this record deleted, when the last of its holds goes:
// the buffer's backing store (freed at detach or collection) and the ArrayBuffer object (collected); for a shared
// one, the SharedArrayBuffer's backing store, each handle and each thread binding (see the top of the file).
struct Region {
  uint64_t token;
  char* base;
  size_t size;
  std::atomic<int> holds{2};
  // Mappings beyond the first that this range is split into ('none' reservations), counted in kExtraMaps.
  std::atomic<int64_t> extra_maps{0};
  // Shared reservations: set once, before the region is registered.
  bool shared = false;
  size_t alignment = 0;
  // Set by the first release() of any of its handles, in any thread.
  std::atomic<bool> released{false};
};

// Live regions of the whole process (all workers): for _liveReservations(). Leaked on purpose: finalizers of
// exiting workers may run during static destruction.
std::mutex registry_mutex;
auto* const registry = new std::unordered_map<uint64_t, Region*>();
std::atomic<uint64_t> next_token{1};

// Mappings beyond one per reservation that pymalloc's 'none' reservations hold, process-wide, and how many
// they may hold: half of vm.max_map_count, leaving the rest to V8, Node and the program.
std::atomic<int64_t> extra_maps_total{0};
std::atomic<int64_t> map_budget_override{0};  // test-only (_setMapBudget); 0: the default

int64_t MapBudget() {
  const int64_t override_value = map_budget_override.load();
  if (override_value > 0) return override_value;
  static const int64_t budget = [] {
    int64_t max = kDefaultMaxMapCount;
    if (FILE* f = std::fopen("/proc/sys/vm/max_map_count", "r")) {
      long long v = 0;
      if (std::fscanf(f, "%lld", &v) == 1 && v > 0) max = v;
      std::fclose(f);
    }
    return max / 2;
  }();
  return budget;
}

void DropHold(Region* region) {
  if (region->holds.fetch_sub(1) != 1) return;
  {
    std::lock_guard<std::mutex> lock(registry_mutex);
    registry->erase(region->token);
  }
  munmap(region->base, region->size);
  extra_maps_total.fetch_sub(region->extra_maps.load());
  delete region;
}

// Takes one more hold unless the last one is already gone (the region is then being deleted).
bool TryHold(Region* region) {
  int n = region->holds.load();
  while (n > 0) {
    if (region->holds.compare_exchange_weak(n, n + 1)) return true;
  }
  return false;
}

// Both finalizers only touch the region: they may run during garbage collection or environment teardown.
void FinalizeBackingStore(napi_env, void*, void* hint) { DropHold(static_cast<Region*>(hint)); }
void FinalizeBufferObject(napi_env, void*, void* hint) { DropHold(static_cast<Region*>(hint)); }

// Test-only fault injection: n > 0 makes the n-th following call of the operation fail with ENOMEM.
std::atomic<int64_t> fault_commit{0};
std::atomic<int64_t> fault_reserve{0};
std::atomic<int64_t> fault_decommit{0};

bool TakeFault(std::atomic<int64_t>& counter) {
  int64_t n = counter.load();
  while (n > 0) {
    if (counter.compare_exchange_weak(n, n - 1)) return n == 1;
  }
  return false;
}

struct Reservation;

// A thread binding (bindThread): the cleanup hook's argument. It holds the region mapped and lives until the hook
// has run or unbindThread removed it, whichever comes first; it outlives its handle if that is collected first.
struct ThreadBinding {
  Region* region;       // one hold
  Reservation* owner;   // the handle that bound it; null once that handle is finalized
  uint64_t lock_offset;
  uint64_t flags_offset;
  uint64_t slot_offset;
  int32_t tag;
};

// What the handle wraps: the JS thread's view of one reservation.
struct Reservation {
  Region* region;  // a shared handle holds it (one hold until finalized); an ordinary one may outlive it
  char* base;
  size_t size;
  bool readwrite;
  bool shared = false;
  bool released = false;  // by this handle; a shared region's own flag says whether any handle released it
  napi_ref buffer = nullptr;  // strong until release()
  ThreadBinding* binding = nullptr;  // shared handles: this thread's binding, if any
  // 'none' reservations: one bit per page, set while the page is readable and writable (committed, or
  // decommitted with 'dontneed'). The inspector and heap.check() read only pages marked here, never trusting
  // what the heap's own memory says; the number of mappings the range is split into follows from it.
  // Allocated on the first commit (size / page / 8 bytes: 128 KiB for 4 GiB), freed by release().
  std::vector<uint64_t> committed;
};

size_t PageSize() {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return page;
}

void AdviseNoHugePages(void* addr, size_t length) {
#ifdef MADV_NOHUGEPAGE
  (void)madvise(addr, length, MADV_NOHUGEPAGE);  // best effort, see the contract above
#else
  (void)addr;
  (void)length;
#endif
}

// ---- the commit bitmap and the mappings it implies ----

bool Bit(const std::vector<uint64_t>& bits, uint64_t page) { return (bits[page / 64] >> (page % 64) & 1) != 0; }

// Pages i in [from, to) with bit(i) != bit(i - 1): each is a boundary between two mappings.
int64_t Boundaries(const std::vector<uint64_t>& bits, uint64_t from, uint64_t to) {
  int64_t n = 0;
  for (uint64_t i = std::max<uint64_t>(from, 1); i < to; i++) n += Bit(bits, i) != Bit(bits, i - 1);
  return n;
}

// The change in the number of mappings of a reservation with `pages` pages if [first, end) became `value`.
int64_t MapDelta(const std::vector<uint64_t>& bits, uint64_t pages, uint64_t first, uint64_t end, bool value) {
  const uint64_t lo = first > 0 ? first : 1;
  const uint64_t hi = end < pages ? end + 1 : pages;
  const int64_t before = Boundaries(bits, lo, hi);
  int64_t after = 0;
  if (first > 0 && Bit(bits, first - 1) != value) after++;
  if (end < pages && Bit(bits, end) != value) after++;
  return after - before;
}

void SetBits(std::vector<uint64_t>* bits, uint64_t first, uint64_t end, bool value) {
  for (uint64_t i = first; i < end;) {
    if (i % 64 == 0 && end - i >= 64) {
      (*bits)[i / 64] = value ? ~uint64_t{0} : 0;
      i += 64;
      continue;
    }
    const uint64_t bit = uint64_t{1} << (i % 64);
    if (value) {
      (*bits)[i / 64] |= bit;
    } else {
      (*bits)[i / 64] &= ~bit;
    }
    i++;
  }
}

// ---- errors (best effort: when the environment is shutting down nothing can be thrown, and that is fine) ----

enum class Kind { kError, kType, kRange };

void ThrowCoded(napi_env env, Kind kind, const char* code, const std::string& message, int err = 0,
                const char* syscall = nullptr) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) != napi_ok || pending) return;
  napi_value code_value = nullptr;
  napi_value message_value = nullptr;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_value) != napi_ok) return;
  if (napi_create_string_utf8(env, message.data(), message.size(), &message_value) != napi_ok) return;
  napi_value error = nullptr;
  napi_status status = kind == Kind::kType    ? napi_create_type_error(env, code_value, message_value, &error)
                       : kind == Kind::kRange ? napi_create_range_error(env, code_value, message_value, &error)
                                              : napi_create_error(env, code_value, message_value, &error);
  if (status != napi_ok) return;
  if (syscall != nullptr) {
    napi_value errno_value = nullptr;
    napi_value syscall_value = nullptr;
    if (napi_create_int32(env, err, &errno_value) == napi_ok) {
      (void)napi_set_named_property(env, error, "errno", errno_value);
    }
    if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value) == napi_ok) {
      (void)napi_set_named_property(env, error, "syscall", syscall_value);
    }
  }
  (void)napi_throw(env, error);
}

const char* ErrnoName(int err) {
  switch (err) {
    case ENOMEM: return "ENOMEM";
    case EINVAL: return "EINVAL";
    case EACCES: return "EACCES";
    case EAGAIN: return "EAGAIN";
    case EFAULT: return "EFAULT";
    case EPERM: return "EPERM";
    case EBADF: return "EBADF";
    case ENODEV: return "ENODEV";
    case ENXIO: return "ENXIO";
    case EOVERFLOW: return "EOVERFLOW";
    case EEXIST: return "EEXIST";
    case EBUSY: return "EBUSY";
    default: return "UNKNOWN";
  }
}

void ThrowSyscall(napi_env env, int err, const char* syscall, const std::string& what, const char* note = "") {
  ThrowCoded(env, Kind::kError, ErrnoName(err),
             std::string(syscall) + " " + what + " failed: " + ErrnoName(err) + " (" + std::strerror(err) + ")" +
                 note,
             err, syscall);
}

// The C++ failures of our own code (std::bad_alloc of a vector or a string) become a JS error.
void ThrowInternal(napi_env env, const char* what) {
  ThrowCoded(env, Kind::kError, "ENOMEM", std::string("pymalloc native shim: ") + what, ENOMEM, "malloc");
}

std::string Str(uint64_t n) { return std::to_string(n); }

std::string TypeName(napi_env env, napi_value value) {
  napi_valuetype type = napi_undefined;
  if (napi_typeof(env, value, &type) != napi_ok) return "unknown";
  switch (type) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return "boolean";
    case napi_number: return "number";
    case napi_string: return "string";
    case napi_symbol: return "symbol";
    case napi_object: return "object";
    case napi_function: return "function";
    case napi_external: return "external";
    case napi_bigint: return "bigint";
    default: return "unknown";
  }
}

// A number as JavaScript prints it (ToString of a number runs no user code).
std::string NumberText(napi_env env, napi_value value) {
  napi_value text = nullptr;
  char buf[64];
  size_t len = 0;
  if (napi_coerce_to_string(env, value, &text) != napi_ok ||
      napi_get_value_string_utf8(env, text, buf, sizeof(buf), &len) != napi_ok) {
    return "?";
  }
  return std::string(buf, len);
}

std::string RangeText(uint64_t offset, uint64_t length, const Reservation& r) {
  return "(offset " + Str(offset) + ", length " + Str(length) + " of a " + Str(r.size) + "-byte reservation)";
}

// ---- arguments: each check throws and returns false ----

constexpr size_t kMaxArgs = 5;

struct Args {
  napi_value argv[kMaxArgs] = {nullptr, nullptr, nullptr, nullptr, nullptr};
  size_t argc = kMaxArgs;
};

bool GetArgs(napi_env env, napi_callback_info info, Args* args) {
  if (napi_get_cb_info(env, info, &args->argc, args->argv, nullptr, nullptr) != napi_ok) return false;
  if (args->argc > kMaxArgs) args->argc = kMaxArgs;
  for (size_t i = args->argc; i < kMaxArgs; i++) {
    if (napi_get_undefined(env, &args->argv[i]) != napi_ok) return false;
  }
  return true;
}

bool IsType(napi_env env, napi_value value, napi_valuetype want) {
  napi_valuetype type = napi_undefined;
  return napi_typeof(env, value, &type) == napi_ok && type == want;
}

// A non-negative safe integer given as a JS number.
bool ToCount(napi_env env, napi_value value, const char* name, uint64_t* out) {
  if (!IsType(env, value, napi_number)) {
    ThrowCoded(env, Kind::kType, "ERR_INVALID_ARG_TYPE",
               std::string(name) + " must be a number, got " + TypeName(env, value));
    return false;
  }
  double d = 0;
  if (napi_get_value_double(env, value, &d) != napi_ok) return false;
  if (!std::isfinite(d) || d != std::floor(d) || d < 0 || d > kMaxSafeInteger) {
    ThrowCoded(env, Kind::kRange, "ERR_OUT_OF_RANGE",
               std::string(name) + " must be a non-negative integer, got " + NumberText(env, value));
    return false;
  }
  *out = static_cast<uint64_t>(d);
  return true;
}

bool ToPageMultiple(napi_env env, napi_value value, const char* name, uint64_t* out) {
  if (!ToCount(env, value, name, out)) return false;
  if (*out % PageSize() != 0) {
    ThrowCoded(env, Kind::kRange, "ERR_OUT_OF_RANGE",
               std::string(name) + " must be a multiple of the page size (" + Str(PageSize()) + "), got " +
                   Str(*out));
    return false;
  }
  return true;
}

bool ToString(napi_env env, napi_value value, const char* name, std::string* out) {
  if (!IsType(env, value, napi_string)) {
    ThrowCoded(env, Kind::kType, "ERR_INVALID_ARG_TYPE",
               std::string(name) + " must be a string, got " + TypeName(env, value));
    return false;
  }
  char buf[32];
  size_t len = 0;
  if (napi_get_value_string_utf8(env, value, buf, sizeof(buf), &len) != napi_ok) return false;
  out->assign(buf, len);
  return true;
}

// The reservation of a handle made by reserve(); with `live`, one not yet released.
Reservation* ToReservation(napi_env env, napi_value value, bool live = true) {
  const std::string expected = "handle must be a reservation handle returned by reserve(), got ";
  if (!IsType(env, value, napi_object)) {
    ThrowCoded(env, Kind::kType, "ERR_INVALID_ARG_TYPE", expected + TypeName(env, value));
    return nullptr;
  }
  bool tagged = false;
  void* data = nullptr;
  if (napi_check_object_type_tag(env, value, &kHandleTag, &tagged) != napi_ok || !tagged ||
      napi_unwrap(env, value, &data) != napi_ok || data == nullptr) {
    ThrowCoded(env, Kind::kType, "ERR_INVALID_ARG_TYPE", expected + "another object");
    return nullptr;
  }
  auto* r = static_cast<Reservation*>(data);
  if (r->shared && !r->released && r->region->released.load()) {
    // Released through another handle (another thread's): this one lets go of its buffer too.
    if (r->buffer != nullptr) (void)napi_delete_reference(env, r->buffer);
    r->buffer = nullptr;
    r->released = true;
  }
  if (live && r->released) {
    ThrowCoded(env, Kind::kError, "ERR_RESERVATION_RELEASED",
               r->shared ? "the shared reservation was released (by this thread or another)"
                         : "the reservation was released");
    return nullptr;
  }
  return r;
}

struct Range {
  uint64_t offset;
  uint64_t length;
};

// argv[i], argv[i + 1] as a page-aligned, non-empty range inside the reservation.
bool ToRange(napi_env env, const Args& args, size_t i, const Reservation& r, Range* out) {
  if (!ToPageMultiple(env, args.argv[i], "offset", &out->offset)) return false;
  if (!ToPageMultiple(env, args.argv[i + 1], "length", &out->length)) return false;
  if (out->length == 0) {
    ThrowCoded(env, Kind::kRange, "ERR_OUT_OF_RANGE", "length must be greater than 0, got 0");
    return false;
  }
  if (out->offset > r.size || out->length > r.size - out->offset) {
    ThrowCoded(env, Kind::kRange, "ERR_OUT_OF_RANGE",
               "offset + length must not exceed the reservation size (" + Str(r.size) + "), got " +
                   Str(out->offset) + " + " + Str(out->length));
    return false;
  }
  return true;
}

// The arguments, argv[0] as a live reservation and argv[1], argv[2] as a range inside it; null (thrown) otherwise.
Reservation* ToReservationRange(napi_env env, napi_callback_info info, Args* args, Range* range) {
  if (!GetArgs(env, info, args)) return nullptr;
  Reservation* r = ToReservation(env, args->argv[0]);
  if (r == nullptr || !ToRange(env, *args, 1, *r, range)) return nullptr;
  return r;
}

napi_value Undefined(napi_env env) {
  napi_value v = nullptr;
  (void)napi_get_undefined(env, &v);
  return v;
}

napi_value Number(napi_env env, double d) {
  napi_value v = nullptr;
  (void)napi_create_double(env, d, &v);
  return v;
}

napi_value Boolean(napi_env env, bool b) {
  napi_value v = nullptr;
  (void)napi_get_boolean(env, b, &v);
  return v;
}

napi_value String(napi_env env, const char* s) {
  napi_value v = nullptr;
  (void)napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v);
  return v;
}

// ---- exported functions ----

napi_value PageSizeFn(napi_env env, napi_callback_info) { return Number(env, static_cast<double>(PageSize())); }

void FinalizeHandle(napi_env env, void* data, void*) {
  auto* r = static_cast<Reservation*>(data);
  if (r->buffer != nullptr) (void)napi_delete_reference(env, r->buffer);
  // A thread binding outlives its handle: its cleanup hook still runs when the environment ends.
  if (r->binding != nullptr) r->binding->owner = nullptr;
  if (r->shared) DropHold(r->region);
  delete r;
}

// size and alignment of reserve() / reserveShared() (argv[0], argv[1]), checked; false (thrown) otherwise.
bool ToSizeAlignment(napi_env env, const Args& args, uint64_t* size, uint64_t* alignment) {
  if (!ToPageMultiple(env, args.argv[0], "size", size) || !ToCount(env, args.argv[1], "alignment", alignment)) {
    return false;
  }
  if (*size == 0 || *size > kMaxSize) {
    ThrowCoded(env, Kind::kRange, "ERR_OUT_OF_RANGE",
               "size must be greater than 0 and at most " + Str(kMaxSize) + ", got " + Str(*size));
    return false;
  }
  if (*alignment < PageSize() || *alignment > kMaxAlignment || (*alignment & (*alignment - 1)) != 0) {
    ThrowCoded(env, Kind::kRange, "ERR_OUT_OF_RANGE",
               "alignment must be a power of two from the page size (" + Str(PageSize()) + ") to " +
                   Str(kMaxAlignment) + ", got " + Str(*alignment));
    return false;
  }
  return true;
}

// Maps `size` bytes aligned to `alignment`, MAP_NORESERVE, read-write or PROT_NONE; null (thrown) on failure.
char* MapRange(napi_env env, uint64_t size, uint64_t alignment, bool readwrite, const std::string& what) {
  if (TakeFault(fault_reserve)) {
    ThrowSyscall(env, ENOMEM, "mmap", what, " [injected fault]");
    return nullptr;
  }
  // Over-reserve by the alignment (PROT_NONE: no commit charge, whatever the overcommit mode), then trim both ends
  // down to the aligned range, and only then make that range read-write: under strict overcommit the charge is
  // the reservation's size, not that plus the alignment.
  const size_t span = size + (alignment > PageSize() ? alignment : 0);
  void* raw = mmap(nullptr, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) {
    ThrowSyscall(env, errno, "mmap", what);
    return nullptr;
  }
  const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (start + alignment - 1) & ~static_cast<uintptr_t>(alignment - 1);
  const size_t head = aligned - start;
  const size_t tail = span - head - size;
  char* base = reinterpret_cast<char*>(aligned);
  if (head != 0) munmap(raw, head);
  if (tail != 0) munmap(base + size, tail);
  if (readwrite && mprotect(base, size, PROT_READ | PROT_WRITE) != 0) {
    const int err = errno;
    munmap(base, size);
    // Under strict overcommit (vm.overcommit_memory = 2) MAP_NORESERVE is ignored: a read-write reservation is
    // charged in full.
    ThrowSyscall(env, err, "mprotect", what,
                 err == ENOMEM ? " (under strict overcommit a 'dontneed' heap's whole reservation counts as "
                                 "committed: use decommit 'unmap', or a smaller reserve)"
                               : "");
    return nullptr;
  }
  AdviseNoHugePages(base, size);
  return base;
}

void Register(Region* region) {
  region->token = next_token.fetch_add(1);
  std::lock_guard<std::mutex> lock(registry_mutex);
  registry->emplace(region->token, region);
}

// The region and the first handle of a range just mapped at base, registered; unmaps it and throws (returning
// nullptr) when there is no memory for them.
Reservation* NewReservation(napi_env env, char* base, uint64_t size, uint64_t alignment, bool readwrite,
                            bool shared) {
  auto* region = new (std::nothrow) Region();
  auto* reservation = new (std::nothrow) Reservation();
  if (region == nullptr || reservation == nullptr) {
    delete region;
    delete reservation;
    munmap(base, size);
    ThrowInternal(env, shared ? "out of memory making a shared reservation" : "out of memory making a reservation");
    return nullptr;
  }
  region->base = base;
  region->size = size;
  region->alignment = alignment;
  reservation->region = region;
  reservation->base = base;
  reservation->size = size;
  reservation->readwrite = readwrite;
  region->shared = shared;
  reservation->shared = shared;
  Register(region);
  return reservation;
}

// A frozen handle object wrapping `reservation`, which it owns from then on (FinalizeHandle), holding `buffer`
// strongly until release(). Null on failure: `reservation` is then the caller's still.
napi_value NewHandle(napi_env env, Reservation* reservation, napi_value buffer) {
  napi_value handle = nullptr;
  if (napi_create_object(env, &handle) != napi_ok || napi_type_tag_object(env, handle, &kHandleTag) != napi_ok ||
      napi_create_reference(env, buffer, 1, &reservation->buffer) != napi_ok) {
    if (reservation->buffer != nullptr) (void)napi_delete_reference(env, reservation->buffer);
    reservation->buffer = nullptr;
    return nullptr;
  }
  if (napi_wrap(env, handle, reservation, FinalizeHandle, nullptr, nullptr) != napi_ok) {
    (void)napi_delete_reference(env, reservation->buffer);
    reservation->buffer = nullptr;
    return nullptr;
  }
  (void)napi_object_freeze(env, handle);
  return handle;
}

// reserve(size, alignment, access: 'readwrite' | 'none') -> { handle, buffer, base }
napi_value Reserve(napi_env env, napi_callback_info info) {
  Args args;
  if (!GetArgs(env, info, &args)) return nullptr;
  uint64_t size = 0;
  uint64_t alignment = 0;
  std::string access;
  if (!ToSizeAlignment(env, args, &size, &alignment)) return nullptr;
  if (!ToString(env, args.argv[2], "access", &access)) return nullptr;
  if (access != "readwrite" && access != "none") {
    ThrowCoded(env, Kind::kType, "ERR_INVALID_ARG_VALUE", "access must be 'readwrite' or 'none', got '" + access + "'");
    return nullptr;
  }
  const bool readwrite = access == "readwrite";
  const std::string what = "(reserve " + Str(size) + " bytes aligned to " + Str(alignment) + ", " + access + ")";
  char* base = MapRange(env, size, alignment, readwrite, what);
  if (base == nullptr) return nullptr;

  Reservation* reservation = NewReservation(env, base, size, alignment, readwrite, false);
  if (reservation == nullptr) return nullptr;
  Region* region = reservation->region;

  napi_value buffer = nullptr;
  if (napi_create_external_arraybuffer(env, base, size, FinalizeBackingStore, region, &buffer) != napi_ok) {
    // Whether Node already ran the finalizer is not known: leave the range mapped (no RSS, no commit charge)
    // rather than risk unmapping it twice. This only happens when the environment is going away.
    delete reservation;
    return nullptr;
  }
  if (napi_add_finalizer(env, buffer, nullptr, FinalizeBufferObject, region, nullptr) != napi_ok) {
    DropHold(region);  // only the backing store's finalizer is left to unmap
  }
  napi_value handle = NewHandle(env, reservation, buffer);
  if (handle == nullptr) {
    delete reservation;
    return nullptr;  // the buffer's finalizers unmap
  }

  napi_value result = nullptr;
  napi_value base_value = nullptr;
  if (napi_create_object(env, &result) != napi_ok ||
      napi_create_bigint_uint64(env, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(base)), &base_value) !=
          napi_ok ||
      napi_set_named_property(env, result, "handle", handle) != napi_ok ||
      napi_set_named_property(env, result, "buffer", buffer) != napi_ok ||
      napi_set_named_property(env, result, "base", base_value) != napi_ok) {
    return nullptr;
  }
  return result;
}

bool EnsureBitmap(napi_env env, Reservation* r) {
  if (!r->committed.empty()) return true;
  try {
    r->committed.assign((r->size / PageSize() + 63) / 64, 0);
  } catch (...) {
    ThrowInternal(env, "out of memory for the commit bitmap");
    return false;
  }
  return true;
}

// commit(handle, offset, length): 'none' reservations: mprotect(READ | WRITE). 'readwrite': nothing to do.
napi_value Commit(napi_env env, napi_callback_info info) {
  Args args;
  Range range{};
  Reservation* r = ToReservationRange(env, info, &args, &range);
  if (r == nullptr) return nullptr;
  if (TakeFault(fault_commit)) {
    ThrowSyscall(env, ENOMEM, "mprotect", RangeText(range.offset, range.length, *r), " [injected fault]");
    return nullptr;
  }
  if (r->readwrite) return Undefined(env);
  if (!EnsureBitmap(env, r)) return nullptr;
  const uint64_t page = PageSize();
  const uint64_t first = range.offset / page;
  const uint64_t end = (range.offset + range.length) / page;
  const int64_t delta = MapDelta(r->committed, r->size / page, first, end, true);
  if (delta > 0 && extra_maps_total.load() + delta > MapBudget()) {
    ThrowSyscall(env, ENOMEM, "mprotect", RangeText(range.offset, range.length, *r),
                 (" [pymalloc's share of vm.max_map_count, " + Str(MapBudget()) +
                  " mappings, is used up: fewer 'unmap' heaps, or decommit 'dontneed']")
                     .c_str());
    return nullptr;
  }
  if (mprotect(r->base + range.offset, range.length, PROT_READ | PROT_WRITE) != 0) {
    ThrowSyscall(env, errno, "mprotect", RangeText(range.offset, range.length, *r));
    return nullptr;
  }
  SetBits(&r->committed, first, end, true);
  r->region->extra_maps.fetch_add(delta);
  extra_maps_total.fetch_add(delta);
  return Undefined(env);
}

// decommit(handle, offset, length, mode: 'unmap' | 'dontneed') -> the mode applied ('unmap' degrades to
// 'dontneed' at pymalloc's share of vm.max_map_count, or when the kernel refuses the new mapping with ENOMEM).
napi_value Decommit(napi_env env, napi_callback_info info) {
  Args args;
  Range range{};
  Reservation* r = ToReservationRange(env, info, &args, &range);
  std::string mode;
  if (r == nullptr || !ToString(env, args.argv[3], "mode", &mode)) return nullptr;
  if (mode != "unmap" && mode != "dontneed") {
    ThrowCoded(env, Kind::kType, "ERR_INVALID_ARG_VALUE", "mode must be 'unmap' or 'dontneed', got '" + mode + "'");
    return nullptr;
  }
  if (mode == "unmap" && r->shared) {
    ThrowCoded(env, Kind::kType, "ERR_INVALID_ARG_VALUE",
               "mode 'unmap' is refused for a shared reservation: its pages would fault in every thread's views; "
               "a shared one decommits with 'dontneed'");
    return nullptr;
  }
  if (mode == "unmap" && r->readwrite) {
    ThrowCoded(env, Kind::kType, "ERR_INVALID_ARG_VALUE",
               "mode 'unmap' needs a reservation made with access 'none'; a 'readwrite' one decommits with "
               "'dontneed'");
    return nullptr;
  }
  char* addr = r->base + range.offset;
  if (TakeFault(fault_decommit)) {
    ThrowSyscall(env, ENOMEM, mode == "unmap" ? "mmap" : "madvise", RangeText(range.offset, range.length, *r),
                 " [injected fault]");
    return nullptr;
  }
  if (mode == "unmap") {
    if (!EnsureBitmap(env, r)) return nullptr;
    const uint64_t page = PageSize();
    const uint64_t first = range.offset / page;
    const uint64_t end = (range.offset + range.length) / page;
    const int64_t delta = MapDelta(r->committed, r->size / page, first, end, false);
    if (delta <= 0 || extra_maps_total.load() + delta <= MapBudget() / 8 * 7) {
      // MAP_FIXED replaces the pages in one step; Linux checks its limits (map count, memory) before it drops
      // the old mapping, so a failure leaves the range as it was.
      const int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED;
      void* p = mmap(addr, range.length, PROT_NONE, flags, -1, 0);
      if (p != MAP_FAILED) {
        SetBits(&r->committed, first, end, false);
        r->region->extra_maps.fetch_add(delta);
        extra_maps_total.fetch_add(delta);
        AdviseNoHugePages(addr, range.length);
        return String(env, "unmap");
      }
      if (errno != ENOMEM) {
        ThrowSyscall(env, errno, "mmap", RangeText(range.offset, range.length, *r));
        return nullptr;
      }
    }
    // Degrade: the pages go back, the range stays readable and writable (and committed, in the bitmap).
  }
  if (madvise(addr, range.length, MADV_DONTNEED) != 0) {
    ThrowSyscall(env, errno, "madvise", RangeText(range.offset, range.length, *r));
    return nullptr;
  }
  return String(env, "dontneed");
}

// adviseHugePages(handle, offset, length, enable) -> whether the kernel took the advice: MADV_HUGEPAGE
// (enable) or MADV_NOHUGEPAGE. false where it has no transparent huge pages (EINVAL), or no such advice.
napi_value AdviseHugePages(napi_env env, napi_callback_info info) {
  Args args;
  Range range{};
  Reservation* r = ToReservationRange(env, info, &args, &range);
  if (r == nullptr) return nullptr;
  if (!IsType(env, args.argv[3], napi_boolean)) {
    ThrowCoded(env, Kind::kType, "ERR_INVALID_ARG_TYPE", "enable must be a boolean, got " + TypeName(env, args.argv[3]));
    return nullptr;
  }
  bool enable = false;
  if (napi_get_value_bool(env, args.argv[3], &enable) != napi_ok) return nullptr;
#if defined(MADV_HUGEPAGE) && defined(MADV_NOHUGEPAGE)
  if (madvise(r->base + range.offset, range.length, enable ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) != 0) {
    if (errno == EINVAL) return Boolean(env, false);
    ThrowSyscall(env, errno, "madvise", RangeText(range.offset, range.length, *r));
    return nullptr;
  }
  return Boolean(env, true);
#else
  (void)enable;
  return Boolean(env, false);
#endif
}

// residentPages(handle, offset, length) -> the number of pages of the range in RAM (mincore)
napi_value ResidentPages(napi_env env, napi_callback_info info) {
  Args args;
  Range range{};
  Reservation* r = ToReservationRange(env, info, &args, &range);
  if (r == nullptr) return nullptr;
  const size_t page = PageSize();
  const size_t pages = range.length / page;
  unsigned char vec[4096];
  std::vector<unsigned char> big;
  unsigned char* out = vec;
  size_t chunk = sizeof(vec);
  if (pages > sizeof(vec)) {
    try {
      big.resize(std::min(pages, kMincoreChunkPages));
    } catch (...) {
      ThrowInternal(env, "out of memory for mincore");
      return nullptr;
    }
    out = big.data();
    chunk = big.size();
  }
  uint64_t resident = 0;
  for (size_t done = 0; done < pages;) {
    const size_t n = std::min(pages - done, chunk);
    const uint64_t offset = range.offset + done * page;
    if (mincore(r->base + offset, n * page, out) != 0) {
      ThrowSyscall(env, errno, "mincore", RangeText(offset, n * page, *r));
      return nullptr;
    }
    for (size_t k = 0; k < n; k++) resident += out[k] & 1;
    done += n;
  }
  return Number(env, static_cast<double>(resident));
}

// committedPages(handle) -> null for a 'readwrite' reservation (every page is readable), else an ArrayBuffer
// with one bit per page (little-endian words; page p is bit p % 8 of byte p / 8), set where the page can be
// read without a fault. A copy: the JavaScript heap checks read it instead of trusting the heap's metadata.
napi_value CommittedPages(napi_env env, napi_callback_info info) {
  Args args;
  if (!GetArgs(env, info, &args)) return nullptr;
  Reservation* r = ToReservation(env, args.argv[0]);
  if (r == nullptr) return nullptr;
  napi_value result = nullptr;
  if (r->readwrite) {
    (void)napi_get_null(env, &result);
    return result;
  }
  const size_t bytes = (r->size / PageSize() + 63) / 64 * 8;
  void* data = nullptr;
  if (napi_create_arraybuffer(env, bytes, &data, &result) != napi_ok) return nullptr;
  if (r->committed.empty()) {
    std::memset(data, 0, bytes);
  } else {
    std::memcpy(data, r->committed.data(), bytes);
  }
  return result;
}

// release(handle): gives every page back, detaches a 'none' reservation's buffer (views read length 0; a
// 'readwrite' one's read zeros) and frees the shim's records;
// the range is unmapped once nothing can reach it (see Lifetime at the top). A second call throws.
napi_value Release(napi_env env, napi_callback_info info) {
  Args args;
  if (!GetArgs(env, info, &args)) return nullptr;
  Reservation* r = ToReservation(env, args.argv[0]);
  if (r == nullptr) return nullptr;
  if (r->shared) {
    // The flag first, so that every handle's calls from now on see it; one release wins a race between threads.
    if (r->region->released.exchange(true)) {
      ThrowCoded(env, Kind::kError, "ERR_RESERVATION_RELEASED",
                 "the shared reservation was released (by this thread or another)");
      return nullptr;
    }
    // The views of the SharedArrayBuffer, in every thread, read zeros from now on; the range stays mapped (and
    // this region's) until the last hold goes.
    (void)madvise(r->base, r->size, MADV_DONTNEED);
    if (r->buffer != nullptr) (void)napi_delete_reference(env, r->buffer);
    r->buffer = nullptr;
    r->released = true;
    return Undefined(env);
  }
  // The pages, first: even if what follows fails, the memory is back. PROT_NONE parts are skipped by the
  // kernel; their pages are not resident anyway.
  (void)madvise(r->base, r->size, MADV_DONTNEED);
  napi_value buffer = nullptr;
  if (r->buffer != nullptr && napi_get_reference_value(env, r->buffer, &buffer) == napi_ok && buffer != nullptr) {
    bool detached = false;
    // A 'readwrite' range stays readable and writable until it is unmapped, so a view still held reads zeros
    // and is not detached: the first detached ArrayBuffer of a process makes V8 check every typed-array access
    // in it from then on (1.3-1.8x slower loops over typed arrays here, bench/detach.ts). A 'none' range has
    // PROT_NONE parts that a view could fault on: its buffer is detached. A buffer detached by someone else
    // (transferred) keeps its backing store elsewhere: its finalizers still run when that one dies.
    if (!r->readwrite && napi_is_detached_arraybuffer(env, buffer, &detached) == napi_ok && !detached) {
      (void)napi_detach_arraybuffer(env, buffer);
    }
  }
  if (r->buffer != nullptr) {
    (void)napi_delete_reference(env, r->buffer);
    r->buffer = nullptr;
  }
  r->released = true;
  std::vector<uint64_t>().swap(r->committed);
  return Undefined(env);
}

// The fault switch named by argv[0] ('commit', 'reserve' or 'decommit'), or null (thrown).
std::atomic<int64_t>* ToFaultSwitch(napi_env env, const Args& args) {
  std::string op;
  if (!ToString(env, args.argv[0], "op", &op)) return nullptr;
  std::atomic<int64_t>* counter = op == "commit"     ? &fault_commit
                                  : op == "reserve"  ? &fault_reserve
                                  : op == "decommit" ? &fault_decommit
                                                     : nullptr;
  if (counter == nullptr) {
    ThrowCoded(env, Kind::kType, "ERR_INVALID_ARG_VALUE",
               "op must be 'commit', 'reserve' or 'decommit', got '" + op + "'");
  }
  return counter;
}

// _setFault(op: 'commit' | 'reserve' | 'decommit', nth): FOR TESTS ONLY. nth >= 1 makes the nth following call
// of op fail with ENOMEM, after which the switch clears; 0 clears it. Process-wide (all workers).
napi_value SetFault(napi_env env, napi_callback_info info) {
  Args args;
  if (!GetArgs(env, info, &args)) return nullptr;
  std::atomic<int64_t>* counter = ToFaultSwitch(env, args);
  if (counter == nullptr) return nullptr;
  uint64_t nth = 0;
  if (!ToCount(env, args.argv[1], "nth", &nth)) return nullptr;
  if (nth > 0x7fffffff) {
    ThrowCoded(env, Kind::kRange, "ERR_OUT_OF_RANGE", "nth must be at most 2147483647, got " + Str(nth));
    return nullptr;
  }
  counter->store(static_cast<int64_t>(nth));
  return Undefined(env);
}

// _pendingFault(op): FOR TESTS ONLY. How many calls of op are left before the armed fault fires (0: none armed),
// so that a test can tell that a fault was met by a call that did not report it (memory given back in passing).
napi_value PendingFault(napi_env env, napi_callback_info info) {
  Args args;
  if (!GetArgs(env, info, &args)) return nullptr;
  const std::atomic<int64_t>* counter = ToFaultSwitch(env, args);
  if (counter == nullptr) return nullptr;
  return Number(env, static_cast<double>(counter->load()));
}

// _setMapBudget(n): FOR TESTS ONLY. How many mappings beyond one per reservation pymalloc's 'none' reservations
// may hold together (0: the default, half of vm.max_map_count). _mapCount() is how many they hold now.
napi_value SetMapBudget(napi_env env, napi_callback_info info) {
  Args args;
  if (!GetArgs(env, info, &args)) return nullptr;
  uint64_t n = 0;
  if (!ToCount(env, args.argv[0], "n", &n)) return nullptr;
  map_budget_override.store(static_cast<int64_t>(std::min<uint64_t>(n, INT64_MAX)));
  return Undefined(env);
}

napi_value MapCount(napi_env env, napi_callback_info) {
  return Number(env, static_cast<double>(extra_maps_total.load()));
}

// _liveReservations(): FOR TESTS ONLY. The number of reservations of the process not yet unmapped.
napi_value LiveReservations(napi_env env, napi_callback_info) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  return Number(env, static_cast<double>(registry->size()));
}

bool SetCount(napi_env env, napi_value object, const char* name, uint64_t value) {
  return napi_set_named_property(env, object, name, Number(env, static_cast<double>(value))) == napi_ok;
}

// inspectHeap(handle): walks the pymalloc heap in the reservation from C (native/inspector.cc) and returns its
// per-class counts. Only pages the shim knows to be readable are read; a corrupt heap (or a reservation that
// holds none) throws ERR_PYMALLOC_CORRUPT.
napi_value InspectHeapFn(napi_env env, napi_callback_info info) {
  Args args;
  if (!GetArgs(env, info, &args)) return nullptr;
  Reservation* r = ToReservation(env, args.argv[0]);
  if (r == nullptr) return nullptr;
  pymalloc::HeapCounts counts;
  std::string error;
  const pymalloc::CommittedPages committed{r->readwrite, r->committed.empty() ? nullptr : &r->committed,
                                           PageSize(), r->size};
  if (!pymalloc::InspectHeap(r->base, r->size, committed, &counts, &error)) {
    ThrowCoded(env, Kind::kError, "ERR_PYMALLOC_CORRUPT", "inspectHeap: " + error);
    return nullptr;
  }
  napi_value classes = nullptr;
  if (napi_create_array_with_length(env, counts.classes.size(), &classes) != napi_ok) return nullptr;
  for (size_t i = 0; i < counts.classes.size(); i++) {
    napi_value c = nullptr;
    if (napi_create_object(env, &c) != napi_ok || !SetCount(env, c, "pools", counts.classes[i].pools) ||
        !SetCount(env, c, "blocks", counts.classes[i].blocks) ||
        napi_set_element(env, classes, static_cast<uint32_t>(i), c) != napi_ok) {
      return nullptr;
    }
  }
  napi_value result = nullptr;
  if (napi_create_object(env, &result) != napi_ok || napi_set_named_property(env, result, "classes", classes) != napi_ok ||
      !SetCount(env, result, "arenas", counts.arenas) || !SetCount(env, result, "usableArenas", counts.usableArenas) ||
      !SetCount(env, result, "freePools", counts.freePools) ||
      !SetCount(env, result, "usedPoolsListed", counts.usedPoolsListed) ||
      !SetCount(env, result, "fullPools", counts.fullPools)) {
    return nullptr;
  }
  return result;
}

// ---- shared reservations (where this addon can make SharedArrayBuffers; see the top of the file) ----

// The SharedArrayBuffer's backing store is gone: V8 runs this on any thread, maybe while an isolate is torn down.
void FinalizeSharedStore(void*, size_t, void* hint) noexcept {
  try {
    DropHold(static_cast<Region*>(hint));
  } catch (...) {
    // a failed lock leaves the range mapped: a leak, never a crash
  }
}

// The result object of reserveShared / attachShared: { handle, buffer, base, size, alignment }.
napi_value SharedResult(napi_env env, napi_value handle, napi_value buffer, const Region& region) {
  napi_value result = nullptr;
  napi_value base_value = nullptr;
  if (napi_create_object(env, &result) != napi_ok ||
      napi_create_bigint_uint64(env, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(region.base)), &base_value) !=
          napi_ok ||
      napi_set_named_property(env, result, "handle", handle) != napi_ok ||
      napi_set_named_property(env, result, "buffer", buffer) != napi_ok ||
      napi_set_named_property(env, result, "base", base_value) != napi_ok ||
      napi_set_named_property(env, result, "size", Number(env, static_cast<double>(region.size))) != napi_ok ||
      napi_set_named_property(env, result, "alignment", Number(env, static_cast<double>(region.alignment))) !=
          napi_ok) {
    return nullptr;
  }
  return result;
}

// reserveShared(size, alignment) -> { handle, buffer: SharedArrayBuffer, base, size, alignment }: a 'readwrite'
// reservation (MAP_NORESERVE) whose buffer any thread can share (postMessage, workerData) and attach.
napi_value ReserveShared(napi_env env, napi_callback_info info) {
  Args args;
  if (!GetArgs(env, info, &args)) return nullptr;
  uint64_t size = 0;
  uint64_t alignment = 0;
  if (!ToSizeAlignment(env, args, &size, &alignment)) return nullptr;
  const std::string what = "(reserveShared " + Str(size) + " bytes aligned to " + Str(alignment) + ")";
  char* base = MapRange(env, size, alignment, true, what);
  if (base == nullptr) return nullptr;

  // Two holds to begin with: the backing store's and this handle's.
  Reservation* reservation = NewReservation(env, base, size, alignment, true, true);
  if (reservation == nullptr) return nullptr;
  Region* region = reservation->region;

  bool store_made = false;
  napi_value buffer = pymalloc::shared::NewSharedArrayBuffer(env, base, size, FinalizeSharedStore, region, &store_made);
  if (buffer == nullptr) {
    delete reservation;
    if (!store_made) DropHold(region);  // else its deleter has run, or will
    DropHold(region);
    ThrowCoded(env, Kind::kError, "ERR_OPERATION_FAILED", "could not make a SharedArrayBuffer " + what);
    return nullptr;
  }
  napi_value handle = NewHandle(env, reservation, buffer);
  if (handle == nullptr) {
    delete reservation;
    DropHold(region);  // the buffer's backing store unmaps when it goes
    return nullptr;
  }
  return SharedResult(env, handle, buffer, *region);
}

// attachShared(buffer) -> { handle, buffer (the same), base, size, alignment }: a new handle, in the calling
// thread, on the shared reservation whose SharedArrayBuffer this is. The region is found from the buffer's own
// backing store, never from a number JavaScript passes.
napi_value AttachShared(napi_env env, napi_callback_info info) {
  Args args;
  if (!GetArgs(env, info, &args)) return nullptr;
  const pymalloc::shared::BufferInfo buf = pymalloc::shared::InspectBuffer(env, args.argv[0]);
  if (buf.kind != pymalloc::shared::BufferKind::kSharedArrayBuffer) {
    ThrowCoded(env, Kind::kType, "ERR_INVALID_ARG_TYPE",
               "buffer must be a SharedArrayBuffer made by reserveShared(), got " +
                   (buf.kind == pymalloc::shared::BufferKind::kArrayBuffer ? std::string("an ArrayBuffer")
                                                                          : TypeName(env, args.argv[0])));
    return nullptr;
  }
  Region* region = nullptr;
  bool released = false;
  {
    std::lock_guard<std::mutex> lock(registry_mutex);
    for (const auto& entry : *registry) {
      Region* candidate = entry.second;
      if (!candidate->shared || candidate->base != buf.data || candidate->size != buf.length) continue;
      if (candidate->released.load()) {
        released = true;
      } else if (TryHold(candidate)) {
        region = candidate;
      }
      break;
    }
  }
  if (released) {
    ThrowCoded(env, Kind::kError, "ERR_RESERVATION_RELEASED", "the shared reservation was released");
    return nullptr;
  }
  if (region == nullptr) {
    ThrowCoded(env, Kind::kError, "ERR_INVALID_ARG_VALUE",
               "buffer is not the SharedArrayBuffer of a pymalloc shared reservation (one that reserveShared() "
               "made in this process, through this addon)");
    return nullptr;
  }
  auto* reservation = new (std::nothrow) Reservation();
  if (reservation == nullptr) {
    DropHold(region);
    ThrowInternal(env, "out of memory attaching a shared reservation");
    return nullptr;
  }
  reservation->region = region;
  reservation->base = region->base;
  reservation->size = region->size;
  reservation->readwrite = true;
  reservation->shared = true;
  napi_value handle = NewHandle(env, reservation, args.argv[0]);
  if (handle == nullptr) {
    delete reservation;
    DropHold(region);
    return nullptr;
  }
  return SharedResult(env, handle, args.argv[0], *region);
}

// The environment of a bound thread is going away: the protocol at the top of the file.
void ThreadCleanupHook(void* arg) noexcept {
  auto* b = static_cast<ThreadBinding*>(arg);
  Region* region = b->region;
  if (!region->released.load()) {
    auto* lock = reinterpret_cast<int32_t*>(region->base + b->lock_offset);
    auto* flags = reinterpret_cast<int32_t*>(region->base + b->flags_offset);
    auto* slot = reinterpret_cast<int32_t*>(region->base + b->slot_offset);
    if (__atomic_load_n(lock, __ATOMIC_SEQ_CST) == b->tag) {
      // The flag before the lock: whoever takes the lock next sees that its holder was interrupted.
      __atomic_fetch_or(flags, int32_t{1}, __ATOMIC_SEQ_CST);
      int32_t expected = b->tag;
      (void)__atomic_compare_exchange_n(lock, &expected, int32_t{0}, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    }
    int32_t attached = 1;
    (void)__atomic_compare_exchange_n(slot, &attached, int32_t{2}, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  }
  if (b->owner != nullptr) b->owner->binding = nullptr;
  delete b;
  try {
    DropHold(region);
  } catch (...) {
    // a failed lock leaves the range mapped: a leak, never a crash
  }
}

// A byte offset of a 32-bit word inside the reservation.
bool ToWordOffset(napi_env env, napi_value value, const char* name, const Reservation& r, uint64_t* out) {
  if (!ToCount(env, value, name, out)) return false;
  if (*out % 4 != 0) {
    ThrowCoded(env, Kind::kRange, "ERR_OUT_OF_RANGE",
               std::string(name) + " must be a multiple of 4 (a 32-bit word), got " + Str(*out));
    return false;
  }
  if (*out > r.size - 4) {
    ThrowCoded(env, Kind::kRange, "ERR_OUT_OF_RANGE",
               std::string(name) + " + 4 must not exceed the reservation size (" + Str(r.size) + "), got " +
                   Str(*out) + " + 4");
    return false;
  }
  return true;
}

bool ToTag(napi_env env, napi_value value, int32_t* out) {
  if (!IsType(env, value, napi_number)) {
    ThrowCoded(env, Kind::kType, "ERR_INVALID_ARG_TYPE", "tag must be a number, got " + TypeName(env, value));
    return false;
  }
  double d = 0;
  if (napi_get_value_double(env, value, &d) != napi_ok) return false;
  if (!std::isfinite(d) || d != std::floor(d) || d < 1 || d > 2147483647.0) {
    ThrowCoded(env, Kind::kRange, "ERR_OUT_OF_RANGE",
               "tag must be an integer from 1 to 2147483647, got " + NumberText(env, value));
    return false;
  }
  *out = static_cast<int32_t>(d);
  return true;
}

// bindThread(handle, lockOffset, flagsOffset, slotOffset, tag): see "Thread binding" at the top of the file.
napi_value BindThread(napi_env env, napi_callback_info info) {
  Args args;
  if (!GetArgs(env, info, &args)) return nullptr;
  Reservation* r = ToReservation(env, args.argv[0]);
  if (r == nullptr) return nullptr;
  if (!r->shared) {
    ThrowCoded(env, Kind::kType, "ERR_INVALID_ARG_VALUE",
               "bindThread needs a shared reservation (reserveShared or attachShared)");
    return nullptr;
  }
  uint64_t lock = 0;
  uint64_t flags = 0;
  uint64_t slot = 0;
  int32_t tag = 0;
  if (!ToWordOffset(env, args.argv[1], "lockOffset", *r, &lock) ||
      !ToWordOffset(env, args.argv[2], "flagsOffset", *r, &flags) ||
      !ToWordOffset(env, args.argv[3], "slotOffset", *r, &slot) || !ToTag(env, args.argv[4], &tag)) {
    return nullptr;
  }
  ThreadBinding* b = r->binding;
  if (b == nullptr) {
    b = new (std::nothrow) ThreadBinding();
    if (b == nullptr) {
      ThrowInternal(env, "out of memory binding a thread");
      return nullptr;
    }
    b->region = r->region;
    b->owner = r;
    r->region->holds.fetch_add(1);  // the handle holds the region: it cannot be going away
    if (napi_add_env_cleanup_hook(env, ThreadCleanupHook, b) != napi_ok) {
      delete b;
      DropHold(r->region);
      ThrowCoded(env, Kind::kError, "ERR_OPERATION_FAILED", "bindThread: napi_add_env_cleanup_hook failed");
      return nullptr;
    }
    r->binding = b;
  }
  b->lock_offset = lock;
  b->flags_offset = flags;
  b->slot_offset = slot;
  b->tag = tag;
  return Undefined(env);
}

// unbindThread(handle) -> whether a binding was removed. Allowed after release (it only lets go).
napi_value UnbindThread(napi_env env, napi_callback_info info) {
  Args args;
  if (!GetArgs(env, info, &args)) return nullptr;
  Reservation* r = ToReservation(env, args.argv[0], false);
  if (r == nullptr) return nullptr;
  ThreadBinding* b = r->binding;
  if (b == nullptr) return Boolean(env, false);
  if (napi_remove_env_cleanup_hook(env, ThreadCleanupHook, b) != napi_ok) {
    ThrowCoded(env, Kind::kError, "ERR_OPERATION_FAILED", "unbindThread: napi_remove_env_cleanup_hook failed");
    return nullptr;
  }
  r->binding = nullptr;
  Region* region = b->region;
  delete b;
  DropHold(region);
  return Boolean(env, true);
}

// isReleased(handle) -> whether this reservation was released, through this handle or (shared) any other.
napi_value IsReleased(napi_env env, napi_callback_info info) {
  Args args;
  if (!GetArgs(env, info, &args)) return nullptr;
  Reservation* r = ToReservation(env, args.argv[0], false);
  if (r == nullptr) return nullptr;
  return Boolean(env, r->released);
}

// Every entry point: C++ exceptions stop here, whatever happens below.
template <napi_value (*F)(napi_env, napi_callback_info)>
napi_value Guarded(napi_env env, napi_callback_info info) noexcept {
  try {
    return F(env, info);
  } catch (...) {
    ThrowInternal(env, "an internal allocation failed");
    return nullptr;
  }
}

struct Export {
  const char* name;
  napi_callback fn;
};

const Export kExports[] = {
    {"pageSize", Guarded<PageSizeFn>},
    {"reserve", Guarded<Reserve>},
    {"commit", Guarded<Commit>},
    {"decommit", Guarded<Decommit>},
    {"adviseHugePages", Guarded<AdviseHugePages>},
    {"residentPages", Guarded<ResidentPages>},
    {"committedPages", Guarded<CommittedPages>},
    {"release", Guarded<Release>},
    {"inspectHeap", Guarded<InspectHeapFn>},
    {"_setFault", Guarded<SetFault>},
    {"_pendingFault", Guarded<PendingFault>},
    {"_setMapBudget", Guarded<SetMapBudget>},
    {"_mapCount", Guarded<MapCount>},
    {"_liveReservations", Guarded<LiveReservations>},
};

// Exported only where pymalloc::shared::Available() (native/shared.h), with `sharedArrayBuffers` saying how.
const Export kSharedExports[] = {
    {"reserveShared", Guarded<ReserveShared>},
    {"attachShared", Guarded<AttachShared>},
    {"bindThread", Guarded<BindThread>},
    {"unbindThread", Guarded<UnbindThread>},
    {"isReleased", Guarded<IsReleased>},
};

bool ExportAll(napi_env env, napi_value exports, const Export* first, const Export* last) {
  for (const Export* e = first; e != last; e++) {
    napi_value fn = nullptr;
    if (napi_create_function(env, e->name, NAPI_AUTO_LENGTH, e->fn, nullptr, &fn) != napi_ok ||
        napi_set_named_property(env, exports, e->name, fn) != napi_ok) {
      return false;
    }
  }
  return true;
}

#ifdef PYMALLOC_SHARED_ADDON
// What the shared-heap addon was built against, as `buildInfo`: the loader refuses it in another Node.js (its
// V8 calls are tied to one ABI, see native/shared.cc).
bool ExportBuildInfo(napi_env env, napi_value exports) {
  const pymalloc::shared::BuildInfo& b = pymalloc::shared::kBuildInfo;
  napi_value info = nullptr;
  napi_value version = nullptr;
  napi_value flag = nullptr;
  if (napi_create_object(env, &info) != napi_ok ||
      napi_set_named_property(env, info, "nodeModuleVersion", Number(env, b.node_module_version)) != napi_ok ||
      napi_create_string_utf8(env, b.node_version, NAPI_AUTO_LENGTH, &version) != napi_ok ||
      napi_set_named_property(env, info, "nodeVersion", version) != napi_ok ||
      napi_get_boolean(env, b.pointer_compression, &flag) != napi_ok ||
      napi_set_named_property(env, info, "pointerCompression", flag) != napi_ok ||
      napi_get_boolean(env, b.sandbox, &flag) != napi_ok ||
      napi_set_named_property(env, info, "sandbox", flag) != napi_ok) {
    return false;
  }
  return napi_object_freeze(env, info) == napi_ok && napi_set_named_property(env, exports, "buildInfo", info) == napi_ok;
}

// Another major version of Node.js has another V8 ABI: refuse to load (a clean error, before any V8 call).
bool SameNodeMajor(napi_env env) {
  const napi_node_version* version = nullptr;
  if (napi_get_node_version(env, &version) != napi_ok || version == nullptr) return false;
  if (static_cast<int>(version->major) == pymalloc::shared::kBuildInfo.node_major) return true;
  ThrowCoded(env, Kind::kError, "ERR_PYMALLOC_NO_SHARED_ADDON",
             std::string("pymalloc: the shared-heap addon (pymalloc_shared.node) was built for Node.js ") +
                 pymalloc::shared::kBuildInfo.node_version + " and cannot run in Node.js v" +
                 std::to_string(version->major) + "." + std::to_string(version->minor) + "." +
                 std::to_string(version->patch) +
                 ": rebuild it with this one (`npm rebuild pymalloc --build-from-source`)");
  return false;
}
#endif

}  // namespace

// Module initialisation may run in a worker that is being terminated: a failed call leaves the export out
// (the require then fails in JavaScript, or the worker is gone anyway), never aborts.
NAPI_MODULE_INIT() {
  try {
#ifdef PYMALLOC_SHARED_ADDON
    if (!SameNodeMajor(env) || !ExportBuildInfo(env, exports)) return nullptr;
#endif
    if (!ExportAll(env, exports, std::begin(kExports), std::end(kExports))) return nullptr;
    if (pymalloc::shared::Available()) {
      napi_value provider = nullptr;
      if (!ExportAll(env, exports, std::begin(kSharedExports), std::end(kSharedExports)) ||
          napi_create_string_utf8(env, pymalloc::shared::kProvider, NAPI_AUTO_LENGTH, &provider) != napi_ok ||
          napi_set_named_property(env, exports, "sharedArrayBuffers", provider) != napi_ok) {
        return nullptr;
      }
    }
  } catch (...) {
    return nullptr;
  }
  return exports;
}
