// The page shim: the only code in pymalloc that asks the OS for memory. It does what JavaScript cannot
// (mmap, mprotect, madvise, mincore, sysconf); lib/os/ is its only caller and checks every argument first.
//
// OS contract, stated once:
//   - A reservation is `size` bytes of address space, mapped PROT_NONE | MAP_NORESERVE, aligned to
//     `alignment`: size is a page multiple in (0, 4 GiB]; alignment is a power of two in [page, 4 GiB].
//     Nothing is committed. One external ArrayBuffer covers the whole range.
//   - Every range is (handle, offset, length): offset and length are page multiples, length > 0 and
//     offset + length <= size. No function takes a raw address; `base` is returned for information only.
//   - commit:   mprotect(READ | WRITE).
//     decommit 'unmap':    a fresh PROT_NONE | MAP_NORESERVE mapping over the range (MAP_FIXED). Pages
//                          leave RSS at once and so does the commit charge; a stale access faults.
//     decommit 'dontneed': madvise(MADV_DONTNEED). Pages leave RSS at once; the range stays accessible
//                          and reads as zeros; under strict overcommit it still counts as committed.
//   - Every mapping we create gets MADV_NOHUGEPAGE, so transparent huge pages cannot keep a decommitted
//     range resident (best effort: kernels without THP reject the advice, which is then moot).
//     adviseHugePages(range, true) gives a range MADV_HUGEPAGE instead, and (range, false) takes it back;
//     it returns false, changing nothing, where the kernel has no transparent huge pages (EINVAL).
//   - Bad arguments throw TypeError / RangeError with a Node-style `code`; OS failures throw an Error with
//     `code` (the errno name), `errno`, `syscall`; a released reservation throws code
//     ERR_RESERVATION_RELEASED. Nothing here aborts the process.
//
// Lifetime: each reservation has a token (a process-wide counter) in a mutex-protected registry that
// maps live tokens to their range. release() detaches the ArrayBuffer (every view then has length 0),
// removes the token and unmaps. Otherwise the ArrayBuffer's finalizer unmaps; the handle holds a strong
// reference to the buffer, so that happens only once both are unreachable. Finalizers look up the token,
// never the address, which the OS may have handed to a newer reservation.
//
// Add a source file: list it in binding.gyp ("sources") and CMakeLists.txt (PYMALLOC_SOURCES).

#include <napi.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "inspector.h"

static_assert(sizeof(void*) == 8, "pymalloc reserves up to 4 GiB ranges: 64-bit only");

namespace {

constexpr uint64_t kMaxSize = uint64_t{1} << 32;       // Node 20 external ArrayBuffers: at most 4 GiB
constexpr uint64_t kMaxAlignment = uint64_t{1} << 32;  // the heap's 4 GiB alignment is the largest need
constexpr double kMaxSafeInteger = 9007199254740991.0;
constexpr size_t kMincoreChunkPages = size_t{1} << 16;  // bounds the mincore vector to 64 KiB

// Marks handle objects made by reserve(), so that no other object is ever unwrapped as one.
constexpr napi_type_tag kHandleTag = {0x7079'6d61'6c6c'6f63ULL, 0x7265'7365'7276'6531ULL};

struct Mapping {
  char* addr;
  size_t size;
};

// Live reservations of the whole process (all workers). Leaked on purpose: finalizers of exiting workers
// may run during static destruction.
std::mutex registry_mutex;
auto* const registry = new std::unordered_map<uint64_t, Mapping>();
std::atomic<uint64_t> next_token{1};

// Test-only fault injection: n > 0 makes the n-th following call of the operation fail with ENOMEM.
std::atomic<int64_t> fault_commit{0};
std::atomic<int64_t> fault_reserve{0};

struct Reservation {
  uint64_t token;
  char* base;
  size_t size;
  bool released = false;
  Napi::Reference<Napi::ArrayBuffer> buffer;  // strong: the buffer outlives the handle
  // One bit per page, set by commit and cleared by decommit 'unmap' (which makes the page PROT_NONE again):
  // the inspector reads only pages marked here, never trusting what the heap's own memory says. Allocated on
  // the first commit (size / page / 8 bytes: 128 KiB for 4 GiB).
  std::vector<uint64_t> committed;
};

size_t PageSize() {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return page;
}

void RegistryAdd(uint64_t token, Mapping mapping) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  registry->emplace(token, mapping);
}

bool RegistryTake(uint64_t token, Mapping* out) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  auto it = registry->find(token);
  if (it == registry->end()) return false;
  *out = it->second;
  registry->erase(it);
  return true;
}

bool TakeFault(std::atomic<int64_t>& counter) {
  int64_t n = counter.load();
  while (n > 0) {
    if (counter.compare_exchange_weak(n, n - 1)) return n == 1;
  }
  return false;
}

void AdviseNoHugePages(void* addr, size_t length) {
#ifdef MADV_NOHUGEPAGE
  (void)madvise(addr, length, MADV_NOHUGEPAGE);  // best effort, see the contract above
#else
  (void)addr;
  (void)length;
#endif
}

// ---- errors ----

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

[[noreturn]] void Throw(Napi::Error error, const char* code) {
  error.Set("code", Napi::String::New(error.Env(), code));
  throw error;
}

[[noreturn]] void ThrowType(Napi::Env env, const std::string& message,
                            const char* code = "ERR_INVALID_ARG_TYPE") {
  Throw(Napi::TypeError::New(env, message), code);
}

[[noreturn]] void ThrowRange(Napi::Env env, const std::string& message) {
  Throw(Napi::RangeError::New(env, message), "ERR_OUT_OF_RANGE");
}

[[noreturn]] void ThrowSyscall(Napi::Env env, int err, const char* syscall, const std::string& what,
                               const char* note = "") {
  Napi::Error error = Napi::Error::New(env, std::string(syscall) + " " + what + " failed: " + ErrnoName(err) +
                                                " (" + std::strerror(err) + ")" + note);
  error.Set("errno", Napi::Number::New(env, err));
  error.Set("syscall", Napi::String::New(env, syscall));
  Throw(error, ErrnoName(err));
}

std::string TypeName(const Napi::Value& value) {
  switch (value.Type()) {
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

std::string Str(uint64_t n) { return std::to_string(n); }

std::string RangeText(uint64_t offset, uint64_t length, const Reservation& r) {
  return "(offset " + Str(offset) + ", length " + Str(length) + " of a " + Str(r.size) + "-byte reservation)";
}

// ---- argument checks ----

// A non-negative safe integer given as a JS number.
uint64_t ToCount(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value value = info[i];
  if (!value.IsNumber()) {
    ThrowType(info.Env(), std::string(name) + " must be a number, got " + TypeName(value));
  }
  double d = value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d != std::floor(d) || d < 0 || d > kMaxSafeInteger) {
    ThrowRange(info.Env(), std::string(name) + " must be a non-negative integer, got " +
                               value.ToString().Utf8Value());
  }
  return static_cast<uint64_t>(d);
}

uint64_t ToPageMultiple(const Napi::CallbackInfo& info, size_t i, const char* name) {
  uint64_t n = ToCount(info, i, name);
  if (n % PageSize() != 0) {
    ThrowRange(info.Env(), std::string(name) + " must be a multiple of the page size (" + Str(PageSize()) +
                               "), got " + Str(n));
  }
  return n;
}

Reservation* ToReservation(const Napi::CallbackInfo& info, size_t i) {
  Napi::Env env = info.Env();
  Napi::Value value = info[i];
  const std::string expected = "handle must be a reservation handle returned by reserve(), got ";
  if (!value.IsObject()) ThrowType(env, expected + TypeName(value));
  Napi::Object object = value.As<Napi::Object>();
  if (!object.CheckTypeTag(&kHandleTag)) ThrowType(env, expected + "another object");
  void* data = nullptr;
  if (napi_unwrap(env, object, &data) != napi_ok || data == nullptr) {
    ThrowType(env, expected + "another object");
  }
  auto* r = static_cast<Reservation*>(data);
  if (r->released) Throw(Napi::Error::New(env, "the reservation was released"), "ERR_RESERVATION_RELEASED");
  return r;
}

struct Range {
  uint64_t offset;
  uint64_t length;
};

// Arguments i and i + 1 as a page-aligned, non-empty range inside the reservation.
Range ToRange(const Napi::CallbackInfo& info, size_t i, const Reservation& r) {
  uint64_t offset = ToPageMultiple(info, i, "offset");
  uint64_t length = ToPageMultiple(info, i + 1, "length");
  if (length == 0) ThrowRange(info.Env(), "length must be greater than 0, got 0");
  if (offset > r.size || length > r.size - offset) {
    ThrowRange(info.Env(), "offset + length must not exceed the reservation size (" + Str(r.size) +
                               "), got " + Str(offset) + " + " + Str(length));
  }
  return {offset, length};
}

// Marks [offset, offset + length) committed or not in r.committed.
void MarkCommitted(Reservation* r, const Range& range, bool committed) {
  const size_t page = PageSize();
  if (r->committed.empty()) {
    if (!committed) return;
    r->committed.assign((r->size / page + 63) / 64, 0);
  }
  const uint64_t first = range.offset / page;
  const uint64_t end = (range.offset + range.length) / page;
  for (uint64_t i = first; i < end; i++) {
    const uint64_t bit = uint64_t{1} << (i % 64);
    if (committed) {
      r->committed[i / 64] |= bit;
    } else {
      r->committed[i / 64] &= ~bit;
    }
  }
}

// ---- lifetime ----

void FinalizeBuffer(napi_env, void*, void* hint) {
  Mapping mapping;
  if (RegistryTake(reinterpret_cast<uintptr_t>(hint), &mapping)) munmap(mapping.addr, mapping.size);
}

void FinalizeHandle(napi_env, void* data, void*) { delete static_cast<Reservation*>(data); }

// ---- exported functions ----

Napi::Value PageSizeFn(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(PageSize()));
}

// reserve(size, alignment) -> { handle, buffer, base }
Napi::Value Reserve(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint64_t size = ToPageMultiple(info, 0, "size");
  const uint64_t alignment = ToCount(info, 1, "alignment");
  if (size == 0 || size > kMaxSize) {
    ThrowRange(env, "size must be greater than 0 and at most " + Str(kMaxSize) + ", got " + Str(size));
  }
  if (alignment < PageSize() || alignment > kMaxAlignment || (alignment & (alignment - 1)) != 0) {
    ThrowRange(env, "alignment must be a power of two from the page size (" + Str(PageSize()) + ") to " +
                        Str(kMaxAlignment) + ", got " + Str(alignment));
  }
  const std::string what = "(reserve " + Str(size) + " bytes aligned to " + Str(alignment) + ")";
  if (TakeFault(fault_reserve)) ThrowSyscall(env, ENOMEM, "mmap", what, " [injected fault]");

  // Over-reserve by the alignment, then trim both ends down to the aligned range.
  const size_t span = size + (alignment > PageSize() ? alignment : 0);
  void* raw = mmap(nullptr, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) ThrowSyscall(env, errno, "mmap", what);
  const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (start + alignment - 1) & ~static_cast<uintptr_t>(alignment - 1);
  const size_t head = aligned - start;
  const size_t tail = span - head - size;
  char* base = reinterpret_cast<char*>(aligned);
  if (head != 0) munmap(raw, head);
  if (tail != 0) munmap(base + size, tail);
  AdviseNoHugePages(base, size);

  const uint64_t token = next_token.fetch_add(1);
  RegistryAdd(token, {base, size});
  napi_value buffer_value;
  napi_status status = napi_create_external_arraybuffer(env, base, size, FinalizeBuffer,
                                                        reinterpret_cast<void*>(token), &buffer_value);
  if (status != napi_ok) {
    // Node may already have run the finalizer; the token says whether the range is still ours.
    Mapping mapping;
    if (RegistryTake(token, &mapping)) munmap(mapping.addr, mapping.size);
    throw Napi::Error::New(env);
  }
  auto buffer = Napi::ArrayBuffer(env, buffer_value);

  auto reservation = std::make_unique<Reservation>();
  reservation->token = token;
  reservation->base = base;
  reservation->size = size;
  reservation->buffer = Napi::Reference<Napi::ArrayBuffer>::New(buffer, 1);
  Napi::Object handle = Napi::Object::New(env);
  handle.TypeTag(&kHandleTag);
  if (napi_wrap(env, handle, reservation.get(), FinalizeHandle, nullptr, nullptr) != napi_ok) {
    throw Napi::Error::New(env);  // the buffer's finalizer will unmap
  }
  reservation.release();  // now owned by the handle
  handle.Freeze();

  Napi::Object result = Napi::Object::New(env);
  result.Set("handle", handle);
  result.Set("buffer", buffer);
  result.Set("base", Napi::BigInt::New(env, static_cast<uint64_t>(aligned)));
  return result;
}

// commit(handle, offset, length)
Napi::Value Commit(const Napi::CallbackInfo& info) {
  Reservation* r = ToReservation(info, 0);
  const Range range = ToRange(info, 1, *r);
  if (TakeFault(fault_commit)) {
    ThrowSyscall(info.Env(), ENOMEM, "mprotect", RangeText(range.offset, range.length, *r),
                 " [injected fault]");
  }
  if (mprotect(r->base + range.offset, range.length, PROT_READ | PROT_WRITE) != 0) {
    ThrowSyscall(info.Env(), errno, "mprotect", RangeText(range.offset, range.length, *r));
  }
  MarkCommitted(r, range, true);
  return info.Env().Undefined();
}

// decommit(handle, offset, length, mode: 'unmap' | 'dontneed')
Napi::Value Decommit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Reservation* r = ToReservation(info, 0);
  const Range range = ToRange(info, 1, *r);
  Napi::Value mode_value = info[3];
  if (!mode_value.IsString()) ThrowType(env, "mode must be a string, got " + TypeName(mode_value));
  const std::string mode = mode_value.As<Napi::String>().Utf8Value();
  char* addr = r->base + range.offset;
  if (mode == "unmap") {
    // MAP_FIXED replaces the pages in one step; Linux checks its limits (map count, memory) before it
    // drops the old mapping, so a failure leaves the range as it was.
    const int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED;
    void* p = mmap(addr, range.length, PROT_NONE, flags, -1, 0);
    if (p == MAP_FAILED) ThrowSyscall(env, errno, "mmap", RangeText(range.offset, range.length, *r));
    MarkCommitted(r, range, false);
    AdviseNoHugePages(addr, range.length);
  } else if (mode == "dontneed") {
    if (madvise(addr, range.length, MADV_DONTNEED) != 0) {
      ThrowSyscall(env, errno, "madvise", RangeText(range.offset, range.length, *r));
    }
  } else {
    ThrowType(env, "mode must be 'unmap' or 'dontneed', got '" + mode + "'", "ERR_INVALID_ARG_VALUE");
  }
  return env.Undefined();
}

// adviseHugePages(handle, offset, length, enable) -> whether the kernel took the advice: MADV_HUGEPAGE
// (enable) or MADV_NOHUGEPAGE. false where it has no transparent huge pages (EINVAL), or no such advice.
Napi::Value AdviseHugePages(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Reservation* r = ToReservation(info, 0);
  const Range range = ToRange(info, 1, *r);
  Napi::Value enable_value = info[3];
  if (!enable_value.IsBoolean()) ThrowType(env, "enable must be a boolean, got " + TypeName(enable_value));
  const bool enable = enable_value.As<Napi::Boolean>().Value();
#if defined(MADV_HUGEPAGE) && defined(MADV_NOHUGEPAGE)
  if (madvise(r->base + range.offset, range.length, enable ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) != 0) {
    if (errno == EINVAL) return Napi::Boolean::New(env, false);
    ThrowSyscall(env, errno, "madvise", RangeText(range.offset, range.length, *r));
  }
  return Napi::Boolean::New(env, true);
#else
  (void)enable;
  return Napi::Boolean::New(env, false);
#endif
}

// residentPages(handle, offset, length) -> the number of pages of the range in RAM (mincore)
Napi::Value ResidentPages(const Napi::CallbackInfo& info) {
  Reservation* r = ToReservation(info, 0);
  const Range range = ToRange(info, 1, *r);
  const size_t page = PageSize();
  size_t pages = range.length / page;
  std::vector<unsigned char> vec(pages < kMincoreChunkPages ? pages : kMincoreChunkPages);
  uint64_t resident = 0;
  for (size_t done = 0; done < pages;) {
    const size_t n = pages - done < vec.size() ? pages - done : vec.size();
    const uint64_t offset = range.offset + done * page;
    if (mincore(r->base + offset, n * page, vec.data()) != 0) {
      ThrowSyscall(info.Env(), errno, "mincore", RangeText(offset, n * page, *r));
    }
    for (size_t k = 0; k < n; k++) resident += vec[k] & 1;
    done += n;
  }
  return Napi::Number::New(info.Env(), static_cast<double>(resident));
}

// release(handle): detaches the buffer (views read length 0), then unmaps. A second call throws.
Napi::Value Release(const Napi::CallbackInfo& info) {
  Reservation* r = ToReservation(info, 0);
  // Detach first: if it throws, the reservation is untouched. The buffer's finalizer may run during or
  // after the detach; whichever of it and us takes the token unmaps. A buffer detached by someone else
  // (ArrayBuffer.prototype.transfer in newer Node) may have moved the memory to a new ArrayBuffer: then
  // only the finalizer, run when that one dies, may unmap.
  Napi::ArrayBuffer buffer = r->buffer.Value();
  const bool moved = buffer.IsDetached();
  if (!moved) buffer.Detach();
  r->released = true;
  r->buffer.Reset();
  Mapping mapping;
  if (!moved && RegistryTake(r->token, &mapping) && munmap(mapping.addr, mapping.size) != 0) {
    ThrowSyscall(info.Env(), errno, "munmap", RangeText(0, r->size, *r));
  }
  return info.Env().Undefined();
}

// _setFault(op: 'commit' | 'reserve', nth): FOR TESTS ONLY. nth >= 1 makes the nth following call of op
// fail with ENOMEM, after which the switch clears; 0 clears it. Process-wide (all workers).
Napi::Value SetFault(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Value op_value = info[0];
  if (!op_value.IsString()) ThrowType(env, "op must be a string, got " + TypeName(op_value));
  const std::string op = op_value.As<Napi::String>().Utf8Value();
  std::atomic<int64_t>* counter = op == "commit" ? &fault_commit : op == "reserve" ? &fault_reserve : nullptr;
  if (counter == nullptr) {
    ThrowType(env, "op must be 'commit' or 'reserve', got '" + op + "'", "ERR_INVALID_ARG_VALUE");
  }
  const uint64_t nth = ToCount(info, 1, "nth");
  if (nth > 0x7fffffff) ThrowRange(env, "nth must be at most 2147483647, got " + Str(nth));
  counter->store(static_cast<int64_t>(nth));
  return env.Undefined();
}

// _liveReservations(): FOR TESTS ONLY. The number of reservations of the process not yet unmapped.
Napi::Value LiveReservations(const Napi::CallbackInfo& info) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  return Napi::Number::New(info.Env(), static_cast<double>(registry->size()));
}

// inspectHeap(handle): walks the pymalloc heap in the reservation from C (native/inspector.cc) and returns its
// per-class counts. Only committed pages of the reservation's own mapping are read; a corrupt heap (or a
// reservation that holds none) throws ERR_PYMALLOC_CORRUPT.
Napi::Value InspectHeapFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Reservation* r = ToReservation(info, 0);
  pymalloc::HeapCounts counts;
  std::string error;
  const pymalloc::CommittedPages committed{r->committed.empty() ? nullptr : &r->committed, PageSize()};
  if (!pymalloc::InspectHeap(r->base, r->size, committed, &counts, &error)) {
    Throw(Napi::Error::New(env, "inspectHeap: " + error), "ERR_PYMALLOC_CORRUPT");
  }
  Napi::Array classes = Napi::Array::New(env, counts.classes.size());
  for (size_t i = 0; i < counts.classes.size(); i++) {
    Napi::Object c = Napi::Object::New(env);
    c.Set("pools", Napi::Number::New(env, static_cast<double>(counts.classes[i].pools)));
    c.Set("blocks", Napi::Number::New(env, static_cast<double>(counts.classes[i].blocks)));
    classes.Set(static_cast<uint32_t>(i), c);
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("classes", classes);
  result.Set("arenas", Napi::Number::New(env, static_cast<double>(counts.arenas)));
  result.Set("usableArenas", Napi::Number::New(env, static_cast<double>(counts.usableArenas)));
  result.Set("freePools", Napi::Number::New(env, static_cast<double>(counts.freePools)));
  result.Set("usedPoolsListed", Napi::Number::New(env, static_cast<double>(counts.usedPoolsListed)));
  result.Set("fullPools", Napi::Number::New(env, static_cast<double>(counts.fullPools)));
  return result;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("pageSize", Napi::Function::New(env, PageSizeFn, "pageSize"));
  exports.Set("reserve", Napi::Function::New(env, Reserve, "reserve"));
  exports.Set("commit", Napi::Function::New(env, Commit, "commit"));
  exports.Set("decommit", Napi::Function::New(env, Decommit, "decommit"));
  exports.Set("adviseHugePages", Napi::Function::New(env, AdviseHugePages, "adviseHugePages"));
  exports.Set("residentPages", Napi::Function::New(env, ResidentPages, "residentPages"));
  exports.Set("release", Napi::Function::New(env, Release, "release"));
  exports.Set("inspectHeap", Napi::Function::New(env, InspectHeapFn, "inspectHeap"));
  exports.Set("_setFault", Napi::Function::New(env, SetFault, "_setFault"));
  exports.Set("_liveReservations", Napi::Function::New(env, LiveReservations, "_liveReservations"));
  return exports;
}

}  // namespace

NODE_API_MODULE(pymalloc, Init)
