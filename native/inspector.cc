// The heap inspector: walks a live pymalloc heap from C through the generated header, following the real
// 64-bit pointers the allocator stores, and counts pools and blocks per size class. It is the proof that
// native/pymalloc_layout.h matches the memory that the TypeScript allocator writes: tests compare its counts
// with heap.stats() after random workloads.
//
// It never trusts the heap (JavaScript can write any byte of it through the views): every pointer is checked to
// lie inside the reservation and on committed pages (per the shim's own record, not the heap's) before it is
// read, the geometry is checked before it is divided by, and every walk is bounded, so a corrupt heap, or a
// reservation that holds no heap, gives an error message, never a fault.
#include "inspector.h"

#include <cstdint>
#include <string>

#include "pymalloc_layout.h"

namespace pymalloc {
namespace {

constexpr uint32_t kHeapMagic = 0x484d5950;  // 'PYMH', see lib/check.ts

bool IsPowerOfTwo(uint64_t n) { return n != 0 && (n & (n - 1)) == 0; }

struct Walker {
  const char* base;
  uint64_t size;
  const CommittedPages& committed;
  const heap_state* state;
  std::string* error;

  bool Fail(const std::string& message) {
    *error = message;
    return false;
  }

  // The heap offset of a stored pointer, or UINT64_MAX when it does not point into this heap.
  uint64_t Offset(const void* p) const {
    const auto a = reinterpret_cast<uintptr_t>(p);
    const auto b = reinterpret_cast<uintptr_t>(base);
    if (a < b || a - b >= size) return UINT64_MAX;
    return a - b;
  }

  // True when [offset, offset + bytes) lies in a live small-object arena.
  bool InLiveArena(uint64_t offset, uint64_t bytes) const {
    const uint64_t slot = offset >> state->arena_bits;
    if (slot >= state->arena_slots || ((offset + bytes - 1) >> state->arena_bits) != slot) return false;
    const uint64_t map = Offset(state->arenamap);
    if (map == UINT64_MAX || !committed.Contains(map + slot * 4, 4)) return false;
    return reinterpret_cast<const uint32_t*>(base + map)[slot] != 0;
  }

  const pool_header* Pool(const pool_header* p) const {
    const uint64_t off = Offset(p);
    if (off == UINT64_MAX || off % state->pool_size != 0 || !InLiveArena(off, sizeof(pool_header)) ||
        !committed.Contains(off, sizeof(pool_header))) {
      return nullptr;
    }
    return p;
  }
};

}  // namespace

bool CommittedPages::Contains(uint64_t offset, uint64_t bytes) const {
  if (bytes == 0 || offset > size || bytes > size - offset) return false;
  if (all) return true;
  if (bits == nullptr || page_size == 0) return false;
  const uint64_t first = offset / page_size;
  const uint64_t last = (offset + bytes - 1) / page_size;
  if (last < first || last / 64 >= bits->size()) return false;
  for (uint64_t page = first; page <= last; page++) {
    if (((*bits)[page / 64] >> (page % 64) & 1) == 0) return false;
  }
  return true;
}

bool InspectHeap(const char* base, uint64_t size, const CommittedPages& committed, HeapCounts* out,
                 std::string* error) {
  if (size < sizeof(heap_state)) {
    *error = "reservation too small for a heap";
    return false;
  }
  if (!committed.Contains(0, sizeof(heap_state))) {
    *error = "heap_state is not committed: not a pymalloc heap";
    return false;
  }
  const auto* state = reinterpret_cast<const heap_state*>(base);
  Walker w{base, size, committed, state, error};
  if (state->magic != kHeapMagic) return w.Fail("heap_state.magic is wrong: not a pymalloc heap");
  if (reinterpret_cast<uintptr_t>(base) != state->base) return w.Fail("heap_state.base is not the reservation's address");
  // The geometry, before anything is divided by it or walked with it: every walk below is then bounded by the
  // reservation's pages.
  if (state->page_size != committed.page_size || !IsPowerOfTwo(state->pool_size) ||
      state->pool_size < state->page_size || !IsPowerOfTwo(state->arena_size) ||
      state->arena_size < state->pool_size || state->arena_size > size || state->arena_bits >= 64 ||
      (uint64_t{1} << state->arena_bits) != state->arena_size ||
      uint64_t{state->arena_slots} > size / state->arena_size || state->maxarenas > state->arena_slots) {
    return w.Fail("heap_state's geometry is inconsistent");
  }
  // 64-bit arithmetic: 2 * a uint32 read from the heap wraps (2 * 0x80000001 == 2).
  const uint64_t nclasses = state->nb_classes;
  if (nclasses == 0 || 2 * nclasses > sizeof(state->usedpools) / sizeof(state->usedpools[0])) {
    return w.Fail("heap_state.nb_classes is out of range");
  }
  out->classes.assign(nclasses, ClassCounts{});

  // 1. usedpools: per class, the fake header's list of pools with free blocks: heap_state's, and in a shared
  // heap every thread slot's.
  const auto walk_usedpools = [&](pool_header* const* usedpools) -> bool {
    for (uint64_t sz = 0; sz < nclasses; sz++) {
      // The fake header is placed so that its nextpool/prevpool are usedpools[2sz], usedpools[2sz + 1].
      const auto* head = reinterpret_cast<const pool_header*>(reinterpret_cast<const char*>(&usedpools[2 * sz]) -
                                                              offsetof(pool_header, nextpool));
      uint64_t steps = 0;
      for (const pool_header* p = usedpools[2 * sz]; p != head; p = p->nextpool) {
        if (++steps > size / state->pool_size) return w.Fail("usedpools list loops");
        if (w.Pool(p) == nullptr) return w.Fail("usedpools holds a pointer outside every live arena");
        if (p->szidx != sz) return w.Fail("a pool on usedpools has another size class");
        out->usedPoolsListed++;
      }
    }
    return true;
  };
  if (!walk_usedpools(state->usedpools)) return false;

  // A shared heap (lib/shared/): its thread slots' usedpools, and per pool the blocks other threads freed and its
  // owner has not taken back yet (counted in the pool's count until then: not in use).
  const pool_xinfo* xinfo = nullptr;
  if (state->shared != nullptr) {
    const uint64_t at = w.Offset(state->shared);
    const uint64_t meta_end = uint64_t{state->data_start_page} * state->page_size;
    if (at == UINT64_MAX || at % alignof(shared_state) != 0 || at + sizeof(shared_state) > meta_end ||
        !committed.Contains(at, sizeof(shared_state))) {
      return w.Fail("heap_state.shared does not point at the heap's metadata");
    }
    const auto* shared = reinterpret_cast<const shared_state*>(base + at);
    const uint64_t slots = w.Offset(shared->slots);
    const uint64_t pools = w.Offset(shared->pools);
    const uint64_t npools = size / state->pool_size;
    if (shared->max_threads > 1024 || slots == UINT64_MAX || slots % alignof(thread_slot) != 0 ||
        slots + uint64_t{shared->max_threads} * sizeof(thread_slot) > meta_end || pools == UINT64_MAX ||
        pools % alignof(pool_xinfo) != 0 || pools + npools * sizeof(pool_xinfo) > meta_end ||
        (shared->max_threads > 0 && !committed.Contains(slots, uint64_t{shared->max_threads} * sizeof(thread_slot))) ||
        !committed.Contains(pools, npools * sizeof(pool_xinfo))) {
      return w.Fail("the shared heap's thread slots or pool table lie outside its metadata");
    }
    if (2 * nclasses > sizeof(thread_slot::usedpools) / sizeof(thread_slot::usedpools[0])) {
      return w.Fail("heap_state.nb_classes is out of range for a thread slot");
    }
    const auto* slot = reinterpret_cast<const thread_slot*>(base + slots);
    for (uint32_t i = 0; i < shared->max_threads; i++) {
      if (slot[i].state != 0 && !walk_usedpools(slot[i].usedpools)) return false;
    }
    xinfo = reinterpret_cast<const pool_xinfo*>(base + pools);
  }

  // 2. The arena table: every associated arena, every carved pool with blocks in use.
  const uint64_t table = w.Offset(state->arenas);
  if (table == UINT64_MAX) return w.Fail("heap_state.arenas does not point into the heap");
  if (table + uint64_t{state->maxarenas} * sizeof(arena_object) > uint64_t{state->data_start_page} * state->page_size) {
    return w.Fail("the arena table runs past the metadata");
  }
  if (state->maxarenas > 0 && !committed.Contains(table, uint64_t{state->maxarenas} * sizeof(arena_object))) {
    return w.Fail("the arena table is not committed");
  }
  // The purge map: per arena slot, a bitmap of the pools whose pages went back to the OS. Those pools are empty,
  // and their headers are not read: reading would map the zero page in, which mincore counts as resident.
  const uint64_t pools_per_arena = state->arena_size / state->pool_size;
  const uint64_t purgemap = w.Offset(state->purgemap);
  if (purgemap == UINT64_MAX || purgemap % 4 != 0 || uint64_t{state->purge_words} != (pools_per_arena + 31) / 32) {
    return w.Fail("heap_state.purgemap or purge_words is inconsistent");
  }
  const uint64_t purgemap_bytes = uint64_t{state->arena_slots} * state->purge_words * 4;
  if (purgemap + purgemap_bytes > uint64_t{state->data_start_page} * state->page_size ||
      (purgemap_bytes > 0 && !committed.Contains(purgemap, purgemap_bytes))) {
    return w.Fail("the purge map runs past the metadata or is not committed");
  }
  const auto* purge_bits = reinterpret_cast<const uint32_t*>(base + purgemap);

  for (uint32_t i = 0; i < state->maxarenas; i++) {
    const arena_object* ao = &state->arenas[i];
    if (ao->address == 0) continue;
    const uint64_t arena = w.Offset(reinterpret_cast<const void*>(ao->address));
    if (arena == UINT64_MAX || !w.InLiveArena(arena, state->arena_size)) return w.Fail("an arena's address is not live");
    out->arenas++;
    out->freePools += ao->nfreepools;
    const uint64_t carved = w.Offset(ao->pool_address);
    if (carved == UINT64_MAX || carved < arena || carved > arena + state->arena_size) {
      return w.Fail("an arena's pool_address is outside it");
    }
    const uint32_t* arena_purged = purge_bits + (arena / state->arena_size) * state->purge_words;
    for (uint64_t off = arena, index = 0; off < carved; off += state->pool_size, index++) {
      if ((arena_purged[index / 32] >> (index % 32) & 1) != 0) continue;
      if (!committed.Contains(off, sizeof(pool_header))) return w.Fail("a carved pool is not committed");
      const auto* p = reinterpret_cast<const pool_header*>(base + off);
      if (p->ref.count == 0) continue;
      if (p->szidx >= nclasses) return w.Fail("a used pool has a size class out of range");
      uint64_t remote = 0;
      if (xinfo != nullptr) {
        // The cross-thread list: heap offsets (not addresses) of blocks of this pool, linked through their first
        // word's low half, as the free list is.
        for (uint64_t b = xinfo[off / state->pool_size].xfree; b != 0;) {
          if (b < off + state->pool_overhead || b + 8 > off + state->pool_size) {
            return w.Fail("a pool's cross-thread list holds a block outside the pool");
          }
          if (++remote > p->ref.count) return w.Fail("a pool's cross-thread list holds more blocks than are in use");
          b = *reinterpret_cast<const uint32_t*>(base + b);
        }
      }
      out->classes[p->szidx].pools++;
      out->classes[p->szidx].blocks += p->ref.count - remote;
      if (p->freeblock == nullptr) out->fullPools++;
    }
  }

  // 3. usable_arenas, in order.
  uint64_t steps = 0;
  for (const arena_object* ao = state->usable_arenas; ao != nullptr; ao = ao->nextarena) {
    const uint64_t off = w.Offset(ao);
    if (off == UINT64_MAX || off < table || (off - table) % sizeof(arena_object) != 0 ||
        (off - table) / sizeof(arena_object) >= state->maxarenas) {
      return w.Fail("usable_arenas holds a pointer outside the arena table");
    }
    if (++steps > state->maxarenas) return w.Fail("usable_arenas loops");
    out->usableArenas++;
  }
  return true;
}

}  // namespace pymalloc
