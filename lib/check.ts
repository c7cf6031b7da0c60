/**
 * The whole-heap validator behind `heap.check()`: it walks every arena, pool, free list and span and throws
 * Error ERR_PYMALLOC_CORRUPT naming the first broken invariant. O(heap size): for tests and debugging.
 * The invariants are those stated at the top of arena.ts, pool.ts and span.ts.
 *
 * It trusts nothing it reads from the heap (any JavaScript holding the heap can overwrite its metadata through the
 * views): every offset is checked against the reservation, and against the pages the shim knows to be readable
 * (all of them in 'dontneed' mode; the committed ones in 'unmap' mode), before anything is read there, and every
 * walk is bounded. A corrupt heap is reported as ERR_PYMALLOC_CORRUPT, never as a fault.
 */
import { arenaAddress, arenaObject, isPurged, isReadableArena } from './arena';
import { codedError, type HeapCore, POOL_MAGIC } from './core';
import {
  arena_object_get_freepools,
  arena_object_get_nextarena,
  arena_object_get_nfreepools,
  arena_object_get_ntotalpools,
  arena_object_get_pool_address,
  arena_object_get_prevarena,
  heap_state_get_empty_pools,
  heap_state_get_magic,
  heap_state_get_maxarenas,
  heap_state_get_narenas_currently_allocated,
  heap_state_get_nfp2lasta,
  heap_state_get_npurged_pools,
  heap_state_get_unused_arena_objects,
  heap_state_get_usable_arenas,
  OFFSETOF_POOL_HEADER_FREEBLOCK,
  pool_header_get_arenaindex,
  pool_header_get_freeblock,
  pool_header_get_maxnextoffset,
  pool_header_get_nextoffset,
  pool_header_get_nextpool,
  pool_header_get_prevpool,
  pool_header_get_ref_count,
  pool_header_get_szidx,
  SIZEOF_ARENA_OBJECT,
  SIZEOF_POOL_HEADER,
} from './generated/layout';
import { blocksPerPool, classSize } from './geometry';
import { checkSpans, SPAN_ARENA } from './span';

export const HEAP_MAGIC = 0x484d5950; // 'PYMH'

const S = 0;

export function checkHeap(h: HeapCore): void {
  const g = h.geometry;
  const u32 = h.u32;
  const fail: (msg: string) => never = (msg) => {
    throw codedError(Error, 'ERR_PYMALLOC_CORRUPT', `pymalloc: heap check failed: ${msg}`);
  };
  if (heap_state_get_magic(h, S) !== HEAP_MAGIC) fail('heap_state.magic is wrong');
  const pages = h.reservation.readablePages();
  const maxarenas = heap_state_get_maxarenas(h, S);
  if (maxarenas > g.arenaSlots) fail(`maxarenas ${maxarenas} exceeds the ${g.arenaSlots} arena slots`);
  /** An arena object pointer: one of the table's first maxarenas entries. */
  const inTable = (ao: number) =>
    ao >= h.meta.arenas &&
    (ao - h.meta.arenas) % SIZEOF_ARENA_OBJECT === 0 &&
    (ao - h.meta.arenas) / SIZEOF_ARENA_OBJECT < maxarenas;
  /** A pool pointer that can be read: pool-aligned, in the data region, on readable pages. */
  const readablePool = (pool: number) =>
    pool % g.poolSize === 0 && pool >= h.meta.dataStart && pages.readable(pool, SIZEOF_POOL_HEADER);

  // usedpools: every listed pool is used, of its list's class, and listed once.
  const listed = new Set<number>();
  for (const base of h.usedBases())
    for (let sz = 0; sz < g.poolClasses; sz++) {
      const head = base + sz * 16 - 16; // the fake header of class sz (its nextpool/prevpool are the class's usedpools pair)
      let prev = head;
      let steps = 0;
      for (
        let pool = pool_header_get_nextpool(h, head);
        pool !== head;
        pool = pool_header_get_nextpool(h, pool)
      ) {
        if (++steps > g.pages) fail(`usedpools[${sz}] loops`);
        if (!readablePool(pool)) fail(`usedpools[${sz}] holds ${pool}, which is not a pool of this heap`);
        if (pool_header_get_prevpool(h, pool) !== prev)
          fail(`usedpools[${sz}]: pool ${pool} has a wrong prevpool`);
        if (listed.has(pool)) fail(`pool ${pool} is on usedpools twice`);
        listed.add(pool);
        if (pool_header_get_szidx(h, pool) !== sz)
          fail(`pool ${pool} of class ${pool_header_get_szidx(h, pool)} is on usedpools[${sz}]`);
        if (pool_header_get_ref_count(h, pool) === 0) fail(`empty pool ${pool} is on usedpools[${sz}]`);
        if (pool_header_get_freeblock(h, pool) === 0) fail(`full pool ${pool} is on usedpools[${sz}]`);
        prev = pool;
      }
      if (pool_header_get_prevpool(h, head) !== prev) fail(`usedpools[${sz}]: the list's prev link is wrong`);
    }

  // Arenas and their pools.
  let associated = 0;
  let emptyPools = 0;
  let purgedPools = 0;
  const withFree = new Set<number>();
  for (let i = 0; i < maxarenas; i++) {
    const ao = arenaObject(h, i);
    const address = arenaAddress(h, ao);
    if (address === 0) continue;
    associated++;
    if (!isReadableArena(h, pages, address))
      fail(`arena ${i}: address ${address} is not a readable arena of this heap`);
    const slot = address / g.arenaSize;
    if (u32[h.arenamapIdx + slot] !== i + 1) fail(`arenamap[${slot}] does not name arena ${i}`);
    const tag = u32[h.pagemapIdx + address / g.pageSize];
    if ((tag & 7) !== SPAN_ARENA || tag >>> 3 !== g.arenaSize / g.pageSize)
      fail(`arena ${i} has no arena span`);
    if (arena_object_get_ntotalpools(h, ao) !== g.poolsPerArena) fail(`arena ${i}: ntotalpools is wrong`);
    const carvedEnd = arena_object_get_pool_address(h, ao);
    if (
      carvedEnd < address ||
      carvedEnd > address + g.arenaSize ||
      (carvedEnd - address) % g.poolSize !== 0
    ) {
      fail(`arena ${i}: pool_address ${carvedEnd} is outside the arena`);
    }
    const free = new Set<number>();
    let steps = 0;
    for (let p = arena_object_get_freepools(h, ao); p !== 0; p = pool_header_get_nextpool(h, p)) {
      if (++steps > g.poolsPerArena) fail(`arena ${i}: freepools loops`);
      if (p < address || p >= carvedEnd || (p - address) % g.poolSize !== 0)
        fail(`arena ${i}: freepools holds ${p}`);
      if (pool_header_get_ref_count(h, p) !== 0) fail(`arena ${i}: pool ${p} on freepools is not empty`);
      if (isPurged(h, address, (p - address) / g.poolSize))
        fail(`arena ${i}: purged pool ${p} is on freepools`);
      free.add(p);
    }
    emptyPools += free.size;
    let purged = 0;
    for (let pool = address; pool < carvedEnd; pool += g.poolSize) {
      if (isPurged(h, address, (pool - address) / g.poolSize)) {
        purged++;
        continue;
      }
      if (pool_header_get_arenaindex(h, pool) !== i) fail(`pool ${pool}: arenaindex is not ${i}`);
      const count = pool_header_get_ref_count(h, pool);
      if (count === 0) {
        if (!free.has(pool)) fail(`empty pool ${pool} of arena ${i} is not on its freepools`);
        continue;
      }
      checkPool(h, pool, listed, fail);
    }
    for (let w = 0; w < h.meta.purgeWords * 32; w++) {
      if (w >= (carvedEnd - address) / g.poolSize && isPurged(h, address, w))
        fail(`arena ${i}: uncarved pool ${w} is marked purged`);
    }
    purgedPools += purged;
    const nfree = arena_object_get_nfreepools(h, ao);
    const uncarved = (address + g.arenaSize - carvedEnd) / g.poolSize;
    if (nfree !== free.size + purged + uncarved) {
      fail(
        `arena ${i}: nfreepools ${nfree} != ${free.size} free + ${purged} purged + ${uncarved} uncarved pools`,
      );
    }
    if (nfree > 0) withFree.add(ao);
  }
  if (listed.size > 0) fail(`pool ${[...listed][0]} is on usedpools but in no arena's carved pools`);
  if (heap_state_get_narenas_currently_allocated(h, S) !== associated)
    fail('narenas_currently_allocated is wrong');
  if (heap_state_get_empty_pools(h, S) !== emptyPools)
    fail(`empty_pools is ${heap_state_get_empty_pools(h, S)}, found ${emptyPools}`);
  if (heap_state_get_npurged_pools(h, S) !== purgedPools)
    fail(`npurged_pools is ${heap_state_get_npurged_pools(h, S)}, found ${purgedPools}`);

  // usable_arenas: exactly the arenas with free pools, sorted by nfreepools; nfp2lasta indexes it.
  const lastWith = new Map<number, number>();
  let prev = 0;
  let prevNf = 0;
  let steps = 0;
  for (let ao = heap_state_get_usable_arenas(h, S); ao !== 0; ao = arena_object_get_nextarena(h, ao)) {
    if (++steps > maxarenas) fail('usable_arenas loops');
    if (!inTable(ao)) fail(`usable_arenas holds ${ao}, which is not an arena object`);
    if (!withFree.delete(ao))
      fail(`arena object ${ao} on usable_arenas is unassociated, full, or listed twice`);
    if (arena_object_get_prevarena(h, ao) !== prev)
      fail(`usable_arenas: arena object ${ao} has a wrong prevarena`);
    const nf = arena_object_get_nfreepools(h, ao);
    if (nf < prevNf) fail(`usable_arenas is not sorted: ${nf} free pools after ${prevNf}`);
    lastWith.set(nf, ao);
    prev = ao;
    prevNf = nf;
  }
  if (withFree.size > 0) fail(`arena object ${[...withFree][0]} has free pools but is not on usable_arenas`);
  for (let nf = 0; nf <= g.poolsPerArena; nf++) {
    const want = nf === 0 ? 0 : (lastWith.get(nf) ?? 0);
    if (heap_state_get_nfp2lasta(h, S, nf) !== want)
      fail(`nfp2lasta[${nf}] is ${heap_state_get_nfp2lasta(h, S, nf)}, expected ${want}`);
  }

  // unused_arena_objects: exactly the unassociated objects.
  let unused = 0;
  for (let ao = heap_state_get_unused_arena_objects(h, S); ao !== 0; ao = arena_object_get_nextarena(h, ao)) {
    if (++unused > maxarenas) fail('unused_arena_objects loops');
    if (!inTable(ao)) fail(`unused_arena_objects holds ${ao}, which is not an arena object`);
    if (arenaAddress(h, ao) !== 0) fail(`associated arena object ${ao} is on unused_arena_objects`);
  }
  if (unused + associated !== maxarenas)
    fail(`${unused} unused + ${associated} associated arena objects != maxarenas ${maxarenas}`);
  let mapped = 0;
  for (let slot = 0; slot < g.arenaSlots; slot++) if (u32[h.arenamapIdx + slot] !== 0) mapped++;
  if (mapped !== associated) fail(`arenamap names ${mapped} arenas, ${associated} are associated`);

  checkSpans(h);
}

/** A used or full pool: its header, free list and count agree. */
function checkPool(h: HeapCore, pool: number, listed: Set<number>, fail: (m: string) => never): void {
  const g = h.geometry;
  const sz = pool_header_get_szidx(h, pool);
  if (sz >= g.poolClasses) fail(`pool ${pool}: szidx ${sz} is not a size class`);
  const size = classSize(g, sz);
  const magic = h.u32[(pool + POOL_MAGIC) >>> 2];
  if (magic !== h.divMagic[sz]) fail(`pool ${pool}: divisibility constant ${magic} is not class ${sz}'s`);
  const count = pool_header_get_ref_count(h, pool);
  const next = pool_header_get_nextoffset(h, pool);
  const max = pool_header_get_maxnextoffset(h, pool);
  if (max !== g.poolSize - size) fail(`pool ${pool}: maxnextoffset ${max} != ${g.poolSize - size}`);
  if (next < h.poolOverhead || (next - h.poolOverhead) % size !== 0 || next > max + size) {
    fail(`pool ${pool}: nextoffset ${next} is not a block boundary within the pool`);
  }
  const carved = (next - h.poolOverhead) / size;
  if (count > carved || count > blocksPerPool(g, sz))
    fail(`pool ${pool}: count ${count} exceeds its ${carved} carved blocks`);
  let free = 0;
  const seen = new Set<number>();
  for (let b = pool_header_get_freeblock(h, pool); b !== 0; b = h.u32[b >>> 2]) {
    const off = b - pool - h.poolOverhead;
    if (off < 0 || off >= carved * size || off % size !== 0)
      fail(`pool ${pool}: free list holds ${b}, not a carved block`);
    if (seen.has(b)) fail(`pool ${pool}: free list loops at ${b} (double free?)`);
    const hi = h.u32[(b + 4) >>> 2];
    const link = h.u32[b >>> 2];
    if (hi !== (link === 0 ? 0 : h.baseHi))
      fail(`pool ${pool}: free block ${b} has a link with a wrong high word`);
    seen.add(b);
    free++;
  }
  if (count + free !== carved) fail(`pool ${pool}: count ${count} + ${free} free != ${carved} carved blocks`);
  const full = pool_header_get_freeblock(h, pool) === 0;
  const fbHi = h.u32[(pool + OFFSETOF_POOL_HEADER_FREEBLOCK + 4) >>> 2];
  if (fbHi !== (full ? 0 : h.baseHi)) fail(`pool ${pool}: freeblock has a wrong high word (${fbHi})`);
  if (full && next <= max) fail(`pool ${pool}: no free block but blocks left to carve`);
  if (full && listed.has(pool)) fail(`full pool ${pool} is on usedpools`);
  if (!full && !listed.has(pool)) fail(`used pool ${pool} is not on usedpools[${sz}]`);
  listed.delete(pool);
}
