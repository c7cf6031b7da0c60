/**
 * Arenas: the `arena_object` table, the `usable_arenas` list and its O(1) ordering index `nfp2lasta`,
 * `unused_arena_objects`, and returning arenas (or, under the purge policy, empty pools) to the OS.
 *
 * As in CPython 3.11, with these invariants (checked by `checkArenas`):
 *   an arena object is associated (address != 0) iff it is not on `unused_arena_objects`;
 *   `arenamap[address >> ARENA_BITS] == index + 1` iff arena `index` is associated;
 *   `usable_arenas` holds exactly the associated arenas with nfreepools > 0, sorted by ascending nfreepools;
 *   nfp2lasta[n] is the last arena of `usable_arenas` with nfreepools == n, or NULL if there is none;
 *   nfreepools == |freepools| + |purged pools| + (pools not yet carved: (address + ARENA_SIZE - pool_address) / POOL_SIZE).
 * Unlike CPython, arenas are aligned to their size inside the reservation (no pool is lost to alignment), and a
 * purged pool (its pages given back while its arena lives) is remembered in `purgemap` rather than in its header.
 * Giving memory back never fails a free: an arena or pool whose pages the OS refuses to take back stays as it
 * was (a free arena on usable_arenas, an empty pool on freepools), the refusal is noted (noteRefusal in span.ts)
 * and trim() retries.
 */
import { codedError, DUMMY_SIZE_IDX, type HeapCore } from './core';
import { noteFreed } from './delay';
import {
  arena_object_get_freepools,
  arena_object_get_nextarena,
  arena_object_get_nfreepools,
  arena_object_get_ntotalpools,
  arena_object_get_pool_address,
  arena_object_get_prevarena,
  arena_object_set_freepools,
  arena_object_set_nextarena,
  arena_object_set_nfreepools,
  arena_object_set_ntotalpools,
  arena_object_set_pool_address,
  arena_object_set_prevarena,
  heap_state_get_empty_pools,
  heap_state_get_maxarenas,
  heap_state_get_narenas_currently_allocated,
  heap_state_get_narenas_highwater,
  heap_state_get_nfp2lasta,
  heap_state_get_npurged_pools,
  heap_state_get_ntimes_arena_allocated,
  heap_state_get_unused_arena_objects,
  heap_state_get_usable_arenas,
  heap_state_set_arenas,
  heap_state_set_empty_pools,
  heap_state_set_maxarenas,
  heap_state_set_narenas_currently_allocated,
  heap_state_set_narenas_highwater,
  heap_state_set_nfp2lasta,
  heap_state_set_npurged_pools,
  heap_state_set_ntimes_arena_allocated,
  heap_state_set_unused_arena_objects,
  heap_state_set_usable_arenas,
  OFFSETOF_ARENA_OBJECT_ADDRESS,
  OFFSETOF_ARENA_OBJECT_FREEPOOLS,
  OFFSETOF_ARENA_OBJECT_NEXTARENA,
  OFFSETOF_ARENA_OBJECT_NFREEPOOLS,
  OFFSETOF_ARENA_OBJECT_NTOTALPOOLS,
  OFFSETOF_ARENA_OBJECT_PREVARENA,
  OFFSETOF_HEAP_STATE_EMPTY_POOLS,
  OFFSETOF_HEAP_STATE_NFP2LASTA,
  OFFSETOF_HEAP_STATE_PURGE_THRESHOLD_POOLS,
  OFFSETOF_HEAP_STATE_USABLE_ARENAS,
  OFFSETOF_POOL_HEADER_NEXTPOOL,
  pool_header_get_nextpool,
  pool_header_set_arenaindex,
  pool_header_set_nextpool,
  pool_header_set_szidx,
  SIZEOF_ARENA_OBJECT,
} from './generated/layout';
import type { ReadablePages } from './os';
import { allocSpan, decommitSpan, noteRefusal, releaseSpan, SPAN_ARENA } from './span';

/** Arena objects made at the first arena; the table doubles from there (CPython's INITIAL_ARENA_OBJECTS). */
const INITIAL_ARENA_OBJECTS = 16;

/** Byte offset of the arena object of index i. */
export function arenaObject(h: HeapCore, i: number): number {
  return h.meta.arenas + i * SIZEOF_ARENA_OBJECT;
}

export function arenaIndex(h: HeapCore, ao: number): number {
  return (ao - h.meta.arenas) / SIZEOF_ARENA_OBJECT;
}

/** The arena's address as a heap offset (0 when the object is unassociated). */
export function arenaAddress(h: HeapCore, ao: number): number {
  return h.u32[(ao + OFFSETOF_ARENA_OBJECT_ADDRESS) >>> 2];
}

function setArenaAddress(h: HeapCore, ao: number, address: number): void {
  h.storePtr(ao + OFFSETOF_ARENA_OBJECT_ADDRESS, address);
}

const S = 0; // heap_state is at offset 0 of the reservation (see metadataLayout)

// Word (u32) indices of the fields the pool transitions touch: of heap_state (at 0), and relative to an arena
// object's or a pool header's first word. A pointer field's high word is at index + 1.
const W_USABLE_ARENAS = OFFSETOF_HEAP_STATE_USABLE_ARENAS >>> 2;
const W_EMPTY_POOLS = OFFSETOF_HEAP_STATE_EMPTY_POOLS >>> 2;
const W_PURGE_THRESHOLD_POOLS = OFFSETOF_HEAP_STATE_PURGE_THRESHOLD_POOLS >>> 2;
const W_NFP2LASTA = OFFSETOF_HEAP_STATE_NFP2LASTA >>> 2;
const AO_NFREEPOOLS = OFFSETOF_ARENA_OBJECT_NFREEPOOLS >>> 2;
const AO_NTOTALPOOLS = OFFSETOF_ARENA_OBJECT_NTOTALPOOLS >>> 2;
const AO_FREEPOOLS = OFFSETOF_ARENA_OBJECT_FREEPOOLS >>> 2;
const AO_NEXTARENA = OFFSETOF_ARENA_OBJECT_NEXTARENA >>> 2;
const AO_PREVARENA = OFFSETOF_ARENA_OBJECT_PREVARENA >>> 2;
const PH_NEXTPOOL = OFFSETOF_POOL_HEADER_NEXTPOOL >>> 2;

export function initArenas(h: HeapCore): void {
  heap_state_set_arenas(h, S, h.meta.arenas);
  heap_state_set_maxarenas(h, S, 0);
  heap_state_set_usable_arenas(h, S, 0);
  heap_state_set_unused_arena_objects(h, S, 0);
}

/**
 * Allocates and associates a new arena (CPython's new_arena): the arena object comes from
 * `unused_arena_objects` (the table doubling when empty), the memory from an arena-aligned span.
 * Throws ERR_PYMALLOC_NOMEM, changing nothing visible, when the reservation is full or the OS refuses.
 */
export function newArena(h: HeapCore, request: number): number {
  const g = h.geometry;
  let unused = heap_state_get_unused_arena_objects(h, S);
  if (unused === 0) {
    const max = heap_state_get_maxarenas(h, S);
    const grown = Math.min(max === 0 ? INITIAL_ARENA_OBJECTS : max * 2, g.arenaSlots);
    if (grown <= max) {
      throw codedError(
        RangeError,
        'ERR_PYMALLOC_NOMEM',
        `pymalloc: out of memory: cannot allocate ${request} bytes: all ${max} arena slots are in use`,
      );
    }
    for (let i = max; i < grown; i++) {
      const ao = arenaObject(h, i);
      setArenaAddress(h, ao, 0);
      arena_object_set_nextarena(h, ao, i < grown - 1 ? arenaObject(h, i + 1) : 0);
    }
    unused = arenaObject(h, max);
    heap_state_set_unused_arena_objects(h, S, unused);
    heap_state_set_maxarenas(h, S, grown);
  }
  const arenaPages = g.arenaSize >>> g.pageBits;
  const pg = allocSpan(h, arenaPages, arenaPages, SPAN_ARENA, request);
  const address = pg * g.pageSize;
  // Before the first touch, so that it faults in a huge page.
  if (h.hugePages) adviseArena(h, address, true);
  const ao = unused;
  heap_state_set_unused_arena_objects(h, S, arena_object_get_nextarena(h, ao));
  setArenaAddress(h, ao, address);
  h.u32[h.arenamapIdx + address / g.arenaSize] = arenaIndex(h, ao) + 1;
  const current = heap_state_get_narenas_currently_allocated(h, S) + 1;
  heap_state_set_narenas_currently_allocated(h, S, current);
  heap_state_set_ntimes_arena_allocated(h, S, heap_state_get_ntimes_arena_allocated(h, S) + 1);
  if (current > heap_state_get_narenas_highwater(h, S)) heap_state_set_narenas_highwater(h, S, current);
  arena_object_set_freepools(h, ao, 0);
  arena_object_set_pool_address(h, ao, address);
  arena_object_set_nfreepools(h, ao, g.poolsPerArena);
  arena_object_set_ntotalpools(h, ao, g.poolsPerArena);
  return ao;
}

/**
 * Huge-page advice for the arena at `address`. Best effort, as in CPython: advice the kernel refuses (it may run
 * out of memory to split the mapping) costs speed or memory, never correctness, so it never fails a malloc or
 * leaves an arena half made.
 */
function adviseArena(h: HeapCore, address: number, enable: boolean): void {
  try {
    h.reservation.adviseHugePages(address, h.geometry.arenaSize, enable);
  } catch {
    // The arena works the same on normal pages.
  }
}

/**
 * Takes a free pool from the front of `usable_arenas` (allocating an arena when there is none), keeping the
 * list sorted. The pool's `arenaindex` is set; its `szidx` still names the class it last held, or
 * DUMMY_SIZE_IDX when it is fresh (carved or purged), so the caller can reuse an initialized free list.
 *
 * This and poolBecameFree run once per pool transition (every malloc/free pair when a class has one pool), so
 * they index the views directly, word by word, rather than through the generated accessors.
 */
export function takeFreePool(h: HeapCore, request: number): number {
  const u32 = h.u32;
  let ao = u32[W_USABLE_ARENAS];
  if (ao === 0) ao = firstUsableArena(h, request);
  const hi = h.baseHi;
  const aw = ao >>> 2;
  const nf = u32[aw + AO_NFREEPOOLS];
  // This arena has the fewest free pools; taking one keeps it first, and it becomes the last with nf - 1.
  const li = W_NFP2LASTA + 2 * nf;
  if (u32[li] === ao) {
    u32[li] = 0;
    u32[li + 1] = 0;
  }
  if (nf > 1) {
    u32[li - 2] = ao;
    u32[li - 1] = hi;
  }
  let pool = u32[aw + AO_FREEPOOLS];
  if (pool !== 0) {
    const next = u32[(pool >>> 2) + PH_NEXTPOOL];
    u32[aw + AO_FREEPOOLS] = next;
    u32[aw + AO_FREEPOOLS + 1] = next === 0 ? 0 : hi;
    u32[W_EMPTY_POOLS] -= 1;
  } else {
    pool = takeUncarvedPool(h, ao);
  }
  u32[aw + AO_NFREEPOOLS] = nf - 1;
  if (nf === 1) {
    // Wholly allocated: it leaves usable_arenas.
    const next = u32[aw + AO_NEXTARENA];
    u32[W_USABLE_ARENAS] = next;
    u32[W_USABLE_ARENAS + 1] = next === 0 ? 0 : hi;
    if (next !== 0) {
      u32[(next >>> 2) + AO_PREVARENA] = 0;
      u32[(next >>> 2) + AO_PREVARENA + 1] = 0;
    }
  }
  return pool;
}

/** usable_arenas is empty: a new arena becomes its only member. */
function firstUsableArena(h: HeapCore, request: number): number {
  const ao = newArena(h, request);
  arena_object_set_nextarena(h, ao, 0);
  arena_object_set_prevarena(h, ao, 0);
  heap_state_set_usable_arenas(h, S, ao);
  heap_state_set_nfp2lasta(h, S, arena_object_get_nfreepools(h, ao), ao);
  return ao;
}

/** ao has no pool on its freepools: take a purged pool, or carve the next one; either is fresh. */
function takeUncarvedPool(h: HeapCore, ao: number): number {
  let pool = takePurgedPool(h, ao);
  if (pool === 0) {
    pool = arena_object_get_pool_address(h, ao);
    arena_object_set_pool_address(h, ao, pool + h.poolSize);
  }
  pool_header_set_arenaindex(h, pool, arenaIndex(h, ao));
  pool_header_set_szidx(h, pool, DUMMY_SIZE_IDX);
  return pool;
}

/**
 * Arena bookkeeping after `pool` (now empty, unlinked from its size class) is handed back: it goes onto its
 * arena's `freepools`; the arena moves within `usable_arenas` to stay sorted, joins it if it was full, and is
 * returned to the OS if all its pools are free, unless it is the last of `usable_arenas` (CPython 3.9's guard
 * against thrashing), the policy is 'never' (Python 2.4), or the 'purge' policy delays the return (lib/delay.ts:
 * the arena then stays, free, until the deadline).
 */
export function poolBecameFree(h: HeapCore, pool: number, arenaIdx: number): void {
  const u32 = h.u32;
  const hi = h.baseHi;
  const ao = h.arenasBase + arenaIdx * SIZEOF_ARENA_OBJECT;
  const aw = ao >>> 2;
  const pw = pool >>> 2;
  const first = u32[aw + AO_FREEPOOLS];
  u32[pw + PH_NEXTPOOL] = first;
  u32[pw + PH_NEXTPOOL + 1] = first === 0 ? 0 : hi;
  u32[aw + AO_FREEPOOLS] = pool;
  u32[aw + AO_FREEPOOLS + 1] = hi;
  const empty = u32[W_EMPTY_POOLS] + 1;
  u32[W_EMPTY_POOLS] = empty;
  const nf = u32[aw + AO_NFREEPOOLS] + 1;
  u32[aw + AO_NFREEPOOLS] = nf;
  // li: nfp2lasta[nf - 1], the slot ao leaves; li + 2: nfp2lasta[nf], the one it joins.
  const li = W_NFP2LASTA + 2 * nf - 2;
  const lastnf = u32[li];
  if (lastnf === ao) {
    // ao was the rightmost arena with nf - 1 free pools: the one before it, if it has nf - 1 too, now is.
    const prev = u32[aw + AO_PREVARENA];
    if (prev !== 0 && u32[(prev >>> 2) + AO_NFREEPOOLS] === nf - 1) {
      u32[li] = prev;
    } else {
      u32[li] = 0;
      u32[li + 1] = 0;
    }
  }
  // nf == 1: the arena was full, so not on usable_arenas (its nextarena is stale); it is relinked below.
  if (nf === 1) {
    // It goes first (it has the fewest free pools).
    const head = u32[W_USABLE_ARENAS];
    u32[aw + AO_NEXTARENA] = head;
    u32[aw + AO_NEXTARENA + 1] = head === 0 ? 0 : hi;
    u32[aw + AO_PREVARENA] = 0;
    u32[aw + AO_PREVARENA + 1] = 0;
    if (head !== 0) {
      u32[(head >>> 2) + AO_PREVARENA] = ao;
      u32[(head >>> 2) + AO_PREVARENA + 1] = hi;
    }
    u32[W_USABLE_ARENAS] = ao;
    u32[W_USABLE_ARENAS + 1] = hi;
    if (u32[W_NFP2LASTA + 2] === 0) {
      u32[W_NFP2LASTA + 2] = ao;
      u32[W_NFP2LASTA + 3] = hi;
    }
  } else {
    if (
      nf === u32[aw + AO_NTOTALPOOLS] &&
      u32[aw + AO_NEXTARENA] !== 0 &&
      h.releaseArenasAtOnce &&
      releaseArena(h, ao, nf)
    ) {
      return;
    }
    if (u32[li + 2] === 0) {
      u32[li + 2] = ao;
      u32[li + 3] = hi;
    }
    // Still sorted unless arenas with nf - 1 free pools follow ao: then move ao after the last of them.
    if (ao !== lastnf) moveAfter(h, ao, lastnf);
  }
  if (h.purgeAtThreshold) {
    if (empty >= u32[W_PURGE_THRESHOLD_POOLS]) purgeFreePools(h);
  } else if (h.purgeDelay !== 0) {
    noteFreed(h);
  }
}

/** Unlinks ao from usable_arenas and inserts it right after `after` (CPython's case 4). */
function moveAfter(h: HeapCore, ao: number, after: number): void {
  const u32 = h.u32;
  const hi = h.baseHi;
  const aw = ao >>> 2;
  const prev = u32[aw + AO_PREVARENA];
  const next = u32[aw + AO_NEXTARENA];
  if (prev !== 0) {
    u32[(prev >>> 2) + AO_NEXTARENA] = next;
    u32[(prev >>> 2) + AO_NEXTARENA + 1] = next === 0 ? 0 : hi;
  } else {
    u32[W_USABLE_ARENAS] = next;
    u32[W_USABLE_ARENAS + 1] = next === 0 ? 0 : hi;
  }
  // next != 0: it has nf - 1 free pools, fewer than ao's.
  u32[(next >>> 2) + AO_PREVARENA] = prev;
  u32[(next >>> 2) + AO_PREVARENA + 1] = prev === 0 ? 0 : hi;
  const afterNext = u32[(after >>> 2) + AO_NEXTARENA];
  u32[aw + AO_PREVARENA] = after;
  u32[aw + AO_PREVARENA + 1] = hi;
  u32[aw + AO_NEXTARENA] = afterNext;
  u32[aw + AO_NEXTARENA + 1] = afterNext === 0 ? 0 : hi;
  if (afterNext !== 0) {
    u32[(afterNext >>> 2) + AO_PREVARENA] = ao;
    u32[(afterNext >>> 2) + AO_PREVARENA + 1] = hi;
  }
  u32[(after >>> 2) + AO_NEXTARENA] = ao;
  u32[(after >>> 2) + AO_NEXTARENA + 1] = hi;
}

/**
 * Returns a wholly free arena's memory to the OS, unlinks it from usable_arenas and recycles its object. Returns
 * false, changing nothing, when the OS refuses (noted): the arena then stays, free, where it is.
 */
function releaseArena(h: HeapCore, ao: number, nf: number): boolean {
  if (!decommitArena(h, ao)) return false;
  const prev = arena_object_get_prevarena(h, ao);
  const next = arena_object_get_nextarena(h, ao);
  if (prev === 0) heap_state_set_usable_arenas(h, S, next);
  else arena_object_set_nextarena(h, prev, next);
  if (next !== 0) arena_object_set_prevarena(h, next, prev);
  if (heap_state_get_nfp2lasta(h, S, nf) === ao) heap_state_set_nfp2lasta(h, S, nf, 0);
  discardArena(h, ao);
  return true;
}

/** Gives an arena's pages back to the OS; false (noted, nothing changed) when it refuses. */
function decommitArena(h: HeapCore, ao: number): boolean {
  const g = h.geometry;
  try {
    decommitSpan(h, arenaAddress(h, ao) >>> g.pageBits, g.arenaSize >>> g.pageBits);
    return true;
  } catch (err) {
    noteRefusal(h, err);
    return false;
  }
}

/**
 * Forgets an arena that is on no list and whose pages are decommitted: counters, purge bits, arenamap, its span,
 * and the object itself.
 */
function discardArena(h: HeapCore, ao: number): void {
  const g = h.geometry;
  const address = arenaAddress(h, ao);
  const slot = address / g.arenaSize;
  const words = h.meta.purgeWords;
  const pm = (h.meta.purgemap >>> 2) + slot * words;
  let purged = 0;
  for (let w = 0; w < words; w++) {
    purged += popcount(h.u32[pm + w]);
    h.u32[pm + w] = 0;
  }
  heap_state_set_npurged_pools(h, S, heap_state_get_npurged_pools(h, S) - purged);
  // Its pools are all free: on its freepools list but the purged and the never carved. (Counted, not walked:
  // the pool headers went back to the OS with the arena's pages.)
  const uncarved = (address + g.arenaSize - arena_object_get_pool_address(h, ao)) / g.poolSize;
  const free = g.poolsPerArena - purged - uncarved;
  heap_state_set_empty_pools(h, S, heap_state_get_empty_pools(h, S) - free);
  h.u32[h.arenamapIdx + slot] = 0;
  releaseSpan(h, address >>> g.pageBits, g.arenaSize >>> g.pageBits);
  // The range may next hold large blocks, which must not fault in huge pages.
  if (h.hugePages) adviseArena(h, address, false);
  setArenaAddress(h, ao, 0);
  arena_object_set_nextarena(h, ao, heap_state_get_unused_arena_objects(h, S));
  heap_state_set_unused_arena_objects(h, S, ao);
  heap_state_set_narenas_currently_allocated(h, S, heap_state_get_narenas_currently_allocated(h, S) - 1);
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) & 0xff;
}

function takePurgedPool(h: HeapCore, ao: number): number {
  const g = h.geometry;
  const address = arenaAddress(h, ao);
  const words = h.meta.purgeWords;
  const pm = (h.meta.purgemap >>> 2) + (address / g.arenaSize) * words;
  for (let w = 0; w < words; w++) {
    const bits = h.u32[pm + w];
    if (bits !== 0) {
      const bit = 31 - Math.clz32(bits & -bits);
      h.u32[pm + w] = bits & ~(1 << bit);
      heap_state_set_npurged_pools(h, S, heap_state_get_npurged_pools(h, S) - 1);
      return address + (w * 32 + bit) * g.poolSize;
    }
  }
  return 0;
}

/**
 * True when `address`, read from the arena table (which JavaScript may have overwritten), names an arena that can
 * be walked: arena-aligned, in the data region, and on pages that `pages` says are readable. For the whole-heap
 * walkers (check, stats), which trust nothing in the heap's memory.
 */
export function isReadableArena(h: HeapCore, pages: ReadablePages, address: number): boolean {
  const g = h.geometry;
  return address % g.arenaSize === 0 && address >= h.meta.dataStart && pages.readable(address, g.arenaSize);
}

/** True when pool `index` of the arena at `address` has been purged. */
export function isPurged(h: HeapCore, address: number, index: number): boolean {
  const words = h.meta.purgeWords;
  const pm = (h.meta.purgemap >>> 2) + (address / h.geometry.arenaSize) * words;
  return (h.u32[pm + (index >>> 5)] & (1 << (index & 31))) !== 0;
}

/**
 * A bound on a walk of usable_arenas, which trusts the heap's memory: a program can write anything there through
 * a view, and a cycle would make the walk (in the delayed return's timer, say) go round for ever. More steps than
 * the arena table has objects throw ERR_PYMALLOC_CORRUPT, which the timer reports as a warning.
 */
function arenaWalk(h: HeapCore, what: string): { step(): void; corrupt(why: string): never } {
  const max = heap_state_get_maxarenas(h, S);
  let steps = 0;
  const corrupt = (why: string): never => {
    throw codedError(
      Error,
      'ERR_PYMALLOC_CORRUPT',
      `pymalloc: ${what}: the heap's metadata is corrupt (${why}); heap.check() names what is wrong`,
    );
  };
  return {
    step() {
      if (++steps > max) corrupt('usable_arenas holds more arenas than the arena table');
    },
    corrupt,
  };
}

/** Per purge: the bits of the pools being purged in one arena (purgemap's shape); all zero between calls. */
let purgeScratch = new Uint32Array(0);

/**
 * Gives back the pages of every empty pool of every usable arena (their contents become zeros; they stay free
 * pools of their arena); nothing in a heap whose arenas are huge pages. Pages are dropped with MADV_DONTNEED
 * whatever the heap's decommit mode, so a stale pointer into one still reads (zeros) rather than faulting.
 * Adjacent pools go back together, one system call per contiguous run (a purge after a mass free is mostly
 * runs). A run the OS refuses stays on its arena's freepools (noted, see noteRefusal). Returns the bytes given
 * back.
 */
export function purgeFreePools(h: HeapCore): number {
  // A huge-page arena goes back whole or not at all: dropping some of its pools would split the huge page, and
  // the kernel keeps the rest of it (and, until memory runs short, the dropped part too).
  if (h.hugePages) return 0;
  const g = h.geometry;
  const u32 = h.u32;
  const words = h.meta.purgeWords;
  const poolBits = g.poolBits;
  if (purgeScratch.length < words) purgeScratch = new Uint32Array(words);
  const fresh = purgeScratch;
  let purged = 0;
  const walk = arenaWalk(h, 'purge');
  for (let ao = heap_state_get_usable_arenas(h, S); ao !== 0; ao = arena_object_get_nextarena(h, ao)) {
    walk.step();
    let pool = arena_object_get_freepools(h, ao);
    if (pool === 0) continue;
    const address = arenaAddress(h, ao);
    const pm = (h.meta.purgemap >>> 2) + (address >>> g.arenaBits) * words;
    for (let n = 0; pool !== 0; pool = pool_header_get_nextpool(h, pool)) {
      const index = (pool - address) >>> poolBits;
      // A pool outside its arena, or more pools than an arena holds (a cycle): the metadata was overwritten.
      if (index >= g.poolsPerArena || ++n > g.poolsPerArena)
        walk.corrupt('an arena lists a pool it does not hold');
      fresh[index >>> 5] |= 1 << (index & 31);
    }
    // Runs of consecutive pools, in address order: [start, i) is the current run. A run given back is marked
    // purged; fresh keeps only the bits of runs the OS refused.
    let refused = false;
    let start = -1;
    for (let i = 0, end = words * 32; i <= end; i++) {
      if (i < end && (fresh[i >>> 5] & (1 << (i & 31))) !== 0) {
        if (start < 0) start = i;
        continue;
      }
      if (start < 0) continue;
      if (purgeRun(h, address, start, i - start)) {
        for (let k = start; k < i; k++) {
          u32[pm + (k >>> 5)] |= 1 << (k & 31);
          fresh[k >>> 5] &= ~(1 << (k & 31));
        }
        purged += i - start;
      } else {
        refused = true;
      }
      start = -1;
    }
    if (refused) keepRefusedPools(h, ao, address, fresh);
    else arena_object_set_freepools(h, ao, 0);
    fresh.fill(0, 0, words);
  }
  heap_state_set_empty_pools(h, S, heap_state_get_empty_pools(h, S) - purged);
  heap_state_set_npurged_pools(h, S, heap_state_get_npurged_pools(h, S) + purged);
  return purged * g.poolSize;
}

/** MADV_DONTNEED over `count` pools of the arena at `address` from pool `first`; false (noted) when refused. */
function purgeRun(h: HeapCore, address: number, first: number, count: number): boolean {
  const poolSize = h.geometry.poolSize;
  try {
    h.reservation.decommit(address + first * poolSize, count * poolSize, 'dontneed');
    return true;
  } catch (err) {
    noteRefusal(h, err);
    return false;
  }
}

/** Relinks the arena's freepools to hold exactly the pools whose bit is set in `keep` (in address order). */
function keepRefusedPools(h: HeapCore, ao: number, address: number, keep: Uint32Array): void {
  let head = 0;
  for (let i = h.meta.purgeWords * 32 - 1; i >= 0; i--) {
    if ((keep[i >>> 5] & (1 << (i & 31))) === 0) continue;
    const pool = address + i * h.geometry.poolSize;
    pool_header_set_nextpool(h, pool, head);
    head = pool;
  }
  arena_object_set_freepools(h, ao, head);
}

/**
 * Returns every wholly free arena still held (the anti-thrash one, or all of them under 'never' or a delayed
 * 'purge'), but the last of usable_arenas when `keepOne`; one the OS refuses to take back stays (noted). Returns
 * the bytes given back.
 */
export function releaseFreeArenas(h: HeapCore, keepOne = false): number {
  let released = 0;
  const walk = arenaWalk(h, 'release');
  for (let ao = heap_state_get_usable_arenas(h, S); ao !== 0; ) {
    walk.step();
    const next = arena_object_get_nextarena(h, ao);
    const nf = arena_object_get_nfreepools(h, ao);
    // keepOne: the last of usable_arenas stays, free or not (CPython's guard against thrashing).
    if (keepOne && next === 0) break;
    if (nf === arena_object_get_ntotalpools(h, ao) && decommitArena(h, ao)) {
      // Keep nfp2lasta right: ao is the last arena with nf free pools iff no later one has nf.
      if (heap_state_get_nfp2lasta(h, S, nf) === ao) {
        const prev = arena_object_get_prevarena(h, ao);
        heap_state_set_nfp2lasta(
          h,
          S,
          nf,
          prev !== 0 && arena_object_get_nfreepools(h, prev) === nf ? prev : 0,
        );
      }
      const prev = arena_object_get_prevarena(h, ao);
      if (prev === 0) heap_state_set_usable_arenas(h, S, next);
      else arena_object_set_nextarena(h, prev, next);
      if (next !== 0) arena_object_set_prevarena(h, next, prev);
      discardArena(h, ao);
      released += h.geometry.arenaSize;
    }
    ao = next;
  }
  return released;
}
