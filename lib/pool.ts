/**
 * Pools: one size class each, a `pool_header` at the start, blocks carved lazily after it.
 *
 * A pool is in one of three states (CPython's terms):
 *   used   0 < count < capacity, or count == capacity but blocks remain uncarved: on usedpools[szidx];
 *   full   every block handed out (freeblock == NULL): on no list;
 *   empty  count == 0: on its arena's `freepools` (or purged, or never carved).
 * Invariants of a used or full pool (checked by the heap's check):
 *   count + |free list| == (nextoffset - POOL_OVERHEAD) / size          (carved blocks are in use or free)
 *   freeblock == NULL  iff  the pool is full  iff  nextoffset > maxnextoffset and the free list is empty.
 * A pool on usedpools always has a block on its free list: when the list empties, the next block is carved at
 * once (pool_extend) or, if none is left, the pool leaves its list.
 */

import { poolBecameFree, takeFreePool } from './arena';
import { bufferDetachedError, type HeapCore, POOL_MAGIC } from './core';
import {
  OFFSETOF_POOL_HEADER_ARENAINDEX,
  OFFSETOF_POOL_HEADER_FREEBLOCK,
  OFFSETOF_POOL_HEADER_NEXTPOOL,
  OFFSETOF_POOL_HEADER_PREVPOOL,
  OFFSETOF_POOL_HEADER_REF_COUNT,
  OFFSETOF_POOL_HEADER_SZIDX,
  pool_header_get_freeblock,
  pool_header_get_maxnextoffset,
  pool_header_get_nextoffset,
  pool_header_get_nextpool,
  pool_header_get_prevpool,
  pool_header_set_freeblock,
  pool_header_set_maxnextoffset,
  pool_header_set_nextoffset,
  pool_header_set_nextpool,
  pool_header_set_prevpool,
  pool_header_set_szidx,
} from './generated/layout';

// Word (u32) indices of pool header fields, relative to the header's first word; a pointer's high word is at + 1.
const PH_REF_COUNT = OFFSETOF_POOL_HEADER_REF_COUNT >>> 2;
const PH_FREEBLOCK = OFFSETOF_POOL_HEADER_FREEBLOCK >>> 2;
const PH_NEXTPOOL = OFFSETOF_POOL_HEADER_NEXTPOOL >>> 2;
const PH_PREVPOOL = OFFSETOF_POOL_HEADER_PREVPOOL >>> 2;
const PH_ARENAINDEX = OFFSETOF_POOL_HEADER_ARENAINDEX >>> 2;
const PH_SZIDX = OFFSETOF_POOL_HEADER_SZIDX >>> 2;

/** Debug heaps fill never-used blocks with DEADBYTE too, so that a block's fill on reuse is always checkable. */
export const DEADBYTE = 0xdd;

function fillDead(h: HeapCore, block: number, size: number): void {
  h.u8.fill(DEADBYTE, block + 16, block + size);
}

/**
 * Makes a newly carved block the last of its pool's free list: a NULL link and, where blocks have room for
 * it (alignment 16), the free mark, so that freeing a block that was never handed out is caught too.
 */
function carve(h: HeapCore, block: number, size: number): void {
  if (h.debug) fillDead(h, block, size);
  h.storePtr(block, 0);
  if (h.markOffset >= 8) h.u32[(block + h.markOffset) >>> 2] = h.markValue;
}

/**
 * The free list of `pool` ran out: carve more blocks, or, when the pool is full, unlink it from usedpools.
 * (CPython's pymalloc_pool_extend, which carves one block.) This carves every block that starts on the OS page
 * of the next one, threading them onto the free list in address order: malloc hands them out in the same order
 * as one at a time, the page is touched now anyway, and the next mallocs on it do not come back here.
 */
export function poolExtend(h: HeapCore, pool: number, sz: number): void {
  const next = pool_header_get_nextoffset(h, pool);
  const max = pool_header_get_maxnextoffset(h, pool);
  if (next <= max) {
    const u32 = h.u32;
    const size = (sz + 1) << h.alignShift;
    const first = pool + next;
    const pageEnd = ((first | (h.geometry.pageSize - 1)) >>> 0) + 1;
    let block = first;
    let off = next + size;
    // Blocks that start before the pool's end and the page's. The heap's fields are read once, outside the
    // loop: V8 does not hoist them, and reloaded they made this loop a few percent of a trace's time.
    const last = Math.min(max, pageEnd - 1 - pool);
    const hi = h.baseHi;
    const markWord = h.markOffset >>> 2; // where blocks have room for the mark (alignment 16): from word 2 on
    const markValue = h.markValue;
    const debug = h.debug;
    for (; off <= last; off += size) {
      if (debug) fillDead(h, block, size);
      const bw = block >>> 2;
      if (markWord >= 2) u32[bw + markWord] = markValue;
      u32[bw] = pool + off;
      u32[bw + 1] = hi;
      block = pool + off;
    }
    carve(h, block, size);
    pool_header_set_freeblock(h, pool, first);
    pool_header_set_nextoffset(h, pool, off);
    return;
  }
  // Full: malloc stored only the low word of the NULL freeblock; clear the high word too, so that C sees NULL.
  pool_header_set_freeblock(h, pool, 0);
  const nextpool = pool_header_get_nextpool(h, pool);
  const prevpool = pool_header_get_prevpool(h, pool);
  pool_header_set_prevpool(h, nextpool, prevpool);
  pool_header_set_nextpool(h, prevpool, nextpool);
}

/**
 * usedpools[sz] is empty: take a free pool from the arenas (CPython's allocate_from_new_pool), put it first on
 * usedpools[sz], and return its first free block. Throws ERR_PYMALLOC_NOMEM when no arena can be had.
 * With poolEmptied, this runs once per malloc/free pair when a class's only pool keeps emptying: it indexes
 * the views word by word, like the fast paths.
 */
export function allocateFromNewPool(h: HeapCore, sz: number, request: number): number {
  if (h.u32.length === 0) throw bufferDetachedError('malloc');
  const pool = takeFreePool(h, request);
  const u32 = h.u32;
  const hi = h.baseHi;
  const head = h.usedBase + (sz << 4) - 16; // the fake header of class sz
  const pw = pool >>> 2;
  const hw = head >>> 2;
  u32[pw + PH_NEXTPOOL] = head;
  u32[pw + PH_NEXTPOOL + 1] = hi;
  u32[pw + PH_PREVPOOL] = head;
  u32[pw + PH_PREVPOOL + 1] = hi;
  u32[hw + PH_NEXTPOOL] = pool;
  u32[hw + PH_NEXTPOOL + 1] = hi;
  u32[hw + PH_PREVPOOL] = pool;
  u32[hw + PH_PREVPOOL + 1] = hi;
  u32[pw + PH_REF_COUNT] = 1;
  let bp: number;
  if (u32[pw + PH_SZIDX] === sz) {
    // It last held this class: its header and free list are ready.
    bp = u32[pw + PH_FREEBLOCK];
    const next = u32[bp >>> 2];
    u32[pw + PH_FREEBLOCK] = next;
    u32[pw + PH_FREEBLOCK + 1] = next === 0 ? 0 : hi;
  } else {
    bp = initPool(h, pool, sz);
  }
  // Written on every reuse, not only with a new class: a stray write over it lasts one pool's life at most.
  u32[pw + (POOL_MAGIC >>> 2)] = h.divMagic[sz]!;
  u32[(bp + h.markOffset) >>> 2] = 0;
  return bp;
}

/** Sets up a fresh pool (or one that held another class) for class sz; returns its first block. */
function initPool(h: HeapCore, pool: number, sz: number): number {
  const size = (sz + 1) << h.alignShift;
  pool_header_set_szidx(h, pool, sz);
  const bp = pool + h.poolOverhead;
  const second = bp + size;
  pool_header_set_nextoffset(h, pool, h.poolOverhead + 2 * size);
  pool_header_set_maxnextoffset(h, pool, h.poolSize - size);
  pool_header_set_freeblock(h, pool, second);
  carve(h, second, size);
  if (h.debug) fillDead(h, bp, size);
  return bp;
}

/**
 * Empties every list of the usedpools array at `base` (heap_state's, or a shared heap's thread slot's): each
 * class's fake header then links to itself, nextpool and prevpool.
 */
export function emptyUsedpools(h: HeapCore, base: number): void {
  for (let sz = 0; sz < h.geometry.poolClasses; sz++) {
    const head = base + (sz << 4) - OFFSETOF_POOL_HEADER_NEXTPOOL;
    h.storePtr(head + OFFSETOF_POOL_HEADER_NEXTPOOL, head);
    h.storePtr(head + OFFSETOF_POOL_HEADER_PREVPOOL, head);
  }
}

/** A full pool got a block back: it rejoins the front of usedpools[szidx] (CPython's insert_to_usedpool). */
export function insertToUsedpool(h: HeapCore, pool: number): void {
  const u32 = h.u32;
  const hi = h.baseHi;
  const pw = pool >>> 2;
  const head = h.usedBase + (u32[pw + PH_SZIDX] << 4) - 16; // the fake header of its class
  const next = u32[(head >>> 2) + PH_NEXTPOOL];
  const prev = u32[(next >>> 2) + PH_PREVPOOL];
  u32[pw + PH_NEXTPOOL] = next;
  u32[pw + PH_NEXTPOOL + 1] = hi;
  u32[pw + PH_PREVPOOL] = prev;
  u32[pw + PH_PREVPOOL + 1] = hi;
  u32[(next >>> 2) + PH_PREVPOOL] = pool;
  u32[(next >>> 2) + PH_PREVPOOL + 1] = hi;
  u32[(prev >>> 2) + PH_NEXTPOOL] = pool;
  u32[(prev >>> 2) + PH_NEXTPOOL + 1] = hi;
}

/** The last block of a used pool came back: it leaves usedpools and goes to its arena (insert_to_freepool). */
export function poolEmptied(h: HeapCore, pool: number): void {
  const u32 = h.u32;
  const pw = pool >>> 2;
  const next = u32[pw + PH_NEXTPOOL];
  const prev = u32[pw + PH_PREVPOOL];
  // Both are pools or fake headers (never NULL): their high words are already right.
  u32[(next >>> 2) + PH_PREVPOOL] = prev;
  u32[(prev >>> 2) + PH_NEXTPOOL] = next;
  poolBecameFree(h, pool, u32[pw + PH_ARENAINDEX]);
}

/** True when block `p` is on the free list of `pool` (O(free blocks): for the slow paths only). */
export function onFreeList(h: HeapCore, pool: number, p: number, limit: number): boolean {
  let steps = 0;
  for (let b = pool_header_get_freeblock(h, pool); b !== 0 && steps <= limit; b = h.u32[b >>> 2], steps++) {
    if (b === p) return true;
  }
  return false;
}
