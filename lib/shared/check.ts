/**
 * What check() verifies of a shared heap beyond a private heap's invariants (lib/check.ts, which walks every
 * slot's usedpools too): each pool's owner, its cross-thread list, the thread slots and their pending stacks.
 * Run with the heap lock held, at a quiescent point (no other thread inside a call of this heap).
 */
import { isPurged } from '../arena';
import { codedError } from '../core';
import {
  pool_header_get_freeblock,
  pool_header_get_nextoffset,
  pool_header_get_nextpool,
  pool_header_get_ref_count,
  pool_header_get_szidx,
} from '../generated/layout';
import { classSize } from '../geometry';
import {
  forEachCarvedPool,
  type SharedCore,
  SLOT_ABANDONED,
  SLOT_ATTACHED,
  SLOT_FREE,
  slotPendingIdx,
  slotStateIdx,
  slotUsedBase,
  XI_NEXT,
  XI_OWNER,
  XI_QUEUED,
  XI_XFREE,
  xinfo,
} from './state';

export function checkShared(h: SharedCore): void {
  const fail = (msg: string): never => {
    throw codedError(Error, 'ERR_PYMALLOC_CORRUPT', `pymalloc: heap check failed: ${msg}`);
  };
  const u32 = h.u32;
  const g = h.geometry;
  const pools = g.reserve / g.poolSize;

  // Slots, and which slot's usedpools lists each used pool.
  const listedBy = new Map<number, number>();
  const queuedOn = new Set<number>();
  for (let s = 0; s < h.meta.maxThreads; s++) {
    const state = u32[slotStateIdx(h, s)]!;
    if (state !== SLOT_FREE && state !== SLOT_ATTACHED && state !== SLOT_ABANDONED)
      fail(`thread slot ${s} has state ${state}`);
    if (state !== SLOT_FREE) {
      const base = slotUsedBase(h, s);
      for (let sz = 0; sz < g.poolClasses; sz++) {
        const head = base + sz * 16 - 16;
        for (let p = pool_header_get_nextpool(h, head); p !== head; p = pool_header_get_nextpool(h, p)) {
          listedBy.set(p, s + 1);
        }
      }
    }
    let steps = 0;
    for (let e = u32[slotPendingIdx(h, s)]!; e !== 0; e = u32[xinfo(h, e - 1) + XI_NEXT]!) {
      if (e - 1 >= pools) fail(`thread slot ${s}: pending stack holds pool number ${e - 1}, beyond the heap`);
      if (queuedOn.has(e)) fail(`pool ${(e - 1) * g.poolSize} is on a pending stack twice`);
      if (u32[xinfo(h, e - 1) + XI_QUEUED] !== 1)
        fail(`pool ${(e - 1) * g.poolSize} is pending but not queued`);
      queuedOn.add(e);
      if (++steps > pools) fail(`thread slot ${s}: pending stack loops`);
    }
  }

  forEachCarvedPool(h, (pool, _arena, index, address) => {
    const xi = xinfo(h, pool >>> h.poolBits);
    const owner = u32[xi + XI_OWNER]!;
    const head = u32[xi + XI_XFREE]!;
    const queued = u32[xi + XI_QUEUED]!;
    const count = isPurged(h, address, index) ? 0 : pool_header_get_ref_count(h, pool);
    if (count === 0) {
      if (owner !== 0 || head !== 0 || queued !== 0)
        fail(`empty pool ${pool} has owner ${owner}, cross-thread list ${head}, queued ${queued}`);
      return;
    }
    if (owner === 0 || owner > h.meta.maxThreads) fail(`pool ${pool} in use has owner ${owner}`);
    if (u32[slotStateIdx(h, owner - 1)] === SLOT_FREE)
      fail(`pool ${pool} is owned by free thread slot ${owner - 1}`);
    const full = pool_header_get_freeblock(h, pool) === 0;
    const by = listedBy.get(pool);
    if (!full && by !== owner)
      fail(`pool ${pool} of thread slot ${owner - 1} is on the usedpools of slot ${(by ?? 0) - 1}`);
    if (head !== 0 && queued !== 1) fail(`pool ${pool} has blocks freed by other threads but is not queued`);
    if (queued === 1 && !queuedOn.has((pool >>> h.poolBits) + 1))
      fail(`pool ${pool} is queued but on no pending stack`);
    checkRemoteList(h, pool, head, count, fail);
  });
}

function checkRemoteList(
  h: SharedCore,
  pool: number,
  head: number,
  count: number,
  fail: (m: string) => never,
): void {
  const u32 = h.u32;
  const size = classSize(h.geometry, pool_header_get_szidx(h, pool));
  const end = pool_header_get_nextoffset(h, pool);
  const free = new Set<number>();
  for (let b = pool_header_get_freeblock(h, pool); b !== 0 && free.size <= count + end; b = u32[b >>> 2]!)
    free.add(b);
  let len = 0;
  for (let b = head; b !== 0; b = u32[b >>> 2]!) {
    const off = b - pool - h.poolOverhead;
    if (off < 0 || b - pool >= end || off % size !== 0)
      fail(`pool ${pool}: cross-thread list holds ${b}, not a carved block`);
    if (free.has(b)) fail(`pool ${pool}: block ${b} is on both its free list and its cross-thread list`);
    if (++len > count)
      fail(`pool ${pool}: cross-thread list holds more blocks than the ${count} in use (or loops)`);
  }
}
