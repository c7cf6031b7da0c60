/**
 * pymalloc's in-heap structs, described once. `npm run codegen` turns this file into native/pymalloc_layout.h
 * (C11/C++17, checked on six ABIs) and lib/generated/layout.ts (accessors for x86_64-linux-gnu); a test
 * fails when either is stale. Every offset the allocator uses comes from here: edit a field, regenerate.
 *
 * pool_header and arena_object are CPython's (Objects/obmalloc.c), 48 bytes each on 64-bit targets.
 * Pointer fields hold real addresses: low word = heap offset, high word = the heap's baseHi (0 for NULL).
 */
import { array, opaque, ptr, struct, t, typedef, union } from '../codegen';

/** `typedef uint8_t block;`: the unit of allocation; pointers to it are byte addresses. */
export const block = typedef('block', t.uint8);

const poolHeaderRef = opaque('pool_header');
const arenaObjectRef = opaque('arena_object');
const sharedStateRef = opaque('shared_state');

/** The header at the start of every pool. */
export const pool_header = struct('pool_header', {
  /**
   * Number of allocated blocks; the union pads it to pointer size as CPython does. pymalloc keeps the pool's
   * divisibility constant in the padding's second 32-bit word (POOL_MAGIC in lib/core.ts): read `count`.
   */
  ref: union({ _padding: ptr(block), count: t.uint }),
  /** Head of the pool's free list (threaded through the free blocks). */
  freeblock: ptr(block),
  nextpool: ptr(poolHeaderRef),
  prevpool: ptr(poolHeaderRef),
  /** Index of the pool's arena in the arena table. */
  arenaindex: t.uint,
  /** Size class index. */
  szidx: t.uint,
  /** Bytes from the pool's start to the next never-used block. */
  nextoffset: t.uint,
  /** Largest valid nextoffset. */
  maxnextoffset: t.uint,
});

/** One entry of the arena table. */
export const arena_object = struct('arena_object', {
  /** Real address of the arena (0 when the entry is unused). */
  address: t.uintptr_t,
  /** First never-carved pool of the arena. */
  pool_address: ptr(block),
  nfreepools: t.uint,
  ntotalpools: t.uint,
  /** Singly linked list of the arena's empty pools. */
  freepools: ptr(pool_header),
  nextarena: ptr(arenaObjectRef),
  prevarena: ptr(arenaObjectRef),
});

/** The heap header: geometry, counters and list heads, at a fixed place in the heap. */
export const heap_state = struct('heap_state', {
  magic: t.uint32,
  version: t.uint32,
  /** Real address of heap byte 0. */
  base: t.uintptr_t,
  reservation_size: t.uint64,
  alignment: t.uint32,
  alignment_shift: t.uint32,
  /** CPython's small-request threshold: the size classes up to it are CPython's, those above are medium. */
  small_threshold: t.uint32,
  /** Pool size classes in all, small and medium: the usedpools entries in use. */
  nb_classes: t.uint32,
  pool_size: t.uint32,
  pool_bits: t.uint32,
  arena_size: t.uint32,
  arena_bits: t.uint32,
  page_size: t.uint32,
  page_bits: t.uint32,
  pool_overhead: t.uint32,
  pools_per_arena: t.uint32,
  policy: t.uint32,
  flags: t.uint32,
  arena_slots: t.uint32,
  maxarenas: t.uint32,
  arenas: ptr(arena_object),
  usable_arenas: ptr(arena_object),
  unused_arena_objects: ptr(arena_object),
  arenamap: ptr(t.uint32),
  pagemap: ptr(t.uint32),
  span_links: ptr(t.uint32),
  /**
   * One bit per page, set when a large block that started there is freed and cleared when the page is handed
   * out again: it tells a double free of a large block (even one merged into a neighbouring free span) from a
   * pointer that never was a block.
   */
  freed_heads: ptr(t.uint32),
  narenas_currently_allocated: t.uint32,
  narenas_highwater: t.uint32,
  ntimes_arena_allocated: t.uint32,
  npurged_pools: t.uint32,
  /** Bitmaps of purged pools: purge_words words per arena slot. */
  purgemap: ptr(t.uint32),
  purge_words: t.uint32,
  /** Empty pools on the arenas' freepools lists, and how many of them trigger a purge (policy 'purge'). */
  empty_pools: t.uint32,
  purge_threshold_pools: t.uint32,
  /** First page of the data region. */
  data_start_page: t.uint32,
  /** Live large blocks and the pages they hold. */
  nlarge: t.uint32,
  large_pages: t.uint32,
  /**
   * Pages held by the dirty-span cache, and the floor of its budget: it may hold
   * max(span_cache_limit_pages, 2 * large_pages) pages.
   */
  span_cache_pages: t.uint32,
  span_cache_limit_pages: t.uint32,
  /**
   * The cache's decay: the fewest pages it held since its current epoch began, and the large spans released
   * (freed, or cut off by a shrinking realloc) since then. Pages it held all epoch long went unused: at the
   * epoch's end half of them go back to the OS (see decaySpanCache in lib/span.ts).
   */
  span_cache_low_pages: t.uint32,
  span_cache_epoch_releases: t.uint32,
  /** Heads of the free-span lists: bin b holds spans of 2^b to 2^(b+1) - 1 pages. */
  span_bins: array(t.uint32, 32),
  /**
   * Heads of the dirty-span cache: bin b holds spans of 2^b to 2^(b+1) - 1 pages, freed by large blocks and
   * kept committed for reuse.
   */
  span_cache: array(t.uint32, 32),
  /** Per size class, a pair of pointers acting as a fake pool_header's nextpool/prevpool (CPython's trick). */
  usedpools: array(ptr(pool_header), 128),
  /** nfp2lasta[n]: the last arena in usable_arenas with n free pools (CPython 3.8's O(1) sort). */
  nfp2lasta: array(ptr(arena_object), 1025),
  /** A shared heap's shared_state (its thread slots, the pools' owners); NULL in a private heap. */
  shared: ptr(sharedStateRef),
});

/**
 * Shared heaps only (`new Heap({ shared: true })`, lib/shared/): per pool of the reservation, indexed by
 * `offset >> pool_bits`, who owns it and the blocks other threads gave back to it. The owner thread alone
 * touches the pool's header and free list; other threads only push onto `xfree`, with one compare-and-swap.
 */
export const pool_xinfo = struct('pool_xinfo', {
  /** Thread slot index + 1 of the pool's owner; 0 while the pool is empty (on its arena's freepools). */
  owner: t.uint32,
  /**
   * Heap offset (not an address) of the first block of the pool's cross-thread free list, 0 when empty. Each
   * block's first word links to the next as on the free list.
   */
  xfree: t.uint32,
  /** 1 while the pool is on (or being pushed onto) a thread slot's `pending` stack, so it is there once. */
  queued: t.uint32,
  /** The next pool (index + 1, 0 at the end) on the pending stack this pool is on. */
  pending_next: t.uint32,
});

/** Shared heaps only: one per thread that may use the heap (a Heap object of `Heap.attach`). */
export const thread_slot = struct('thread_slot', {
  /** 0 free, 1 attached, 2 abandoned (its thread detached or ended; another thread adopts its pools). */
  state: t.uint32,
  /** Bumped each time the slot is claimed. */
  generation: t.uint32,
  /** Head of the stack of this thread's pools that other threads freed into: pool index + 1, 0 when empty. */
  pending: t.uint32,
  _reserved: t.uint32,
  /** This thread's own usedpools, as in heap_state (heap_state's stays empty in a shared heap). */
  usedpools: array(ptr(pool_header), 128),
});

/** Shared heaps only: the lock and the thread slots, after the private heap's metadata. */
export const shared_state = struct('shared_state', {
  magic: t.uint32,
  /** The heap lock: 0 when free, else the holder's thread slot index + 1. */
  lock: t.int32,
  /** Threads waiting for the lock (Atomics.wait): the holder notifies only when there are some. */
  lock_waiters: t.uint32,
  /**
   * Bit 0: a thread ended while it held the lock (set by the native shim's cleanup hook); bit 1: the heap was
   * destroyed; bit 2: corrupt (every later call throws).
   */
  flags: t.uint32,
  /** Thread slots in `slots`. */
  max_threads: t.uint32,
  /** Slots attached now. */
  attached: t.uint32,
  /** Slots abandoned and not yet adopted. */
  abandoned: t.uint32,
  _reserved: t.uint32,
  /** One pool_xinfo per pool of the reservation. */
  pools: ptr(pool_xinfo),
  slots: ptr(thread_slot),
});
