/**
 * Frees from other threads. A thread that frees a block of a pool it does not own never touches the pool's
 * header or lists: it pushes the block onto the pool's cross-thread list (`pool_xinfo.xfree`) with one
 * compare-and-swap, and when that list was empty, queues the pool on its owner's pending stack (once: the
 * `queued` flag). The owner takes the blocks back (collect) when it would otherwise need a new pool, when a pool
 * fills, on its idle tick and on trim: it splices each pool's list into the pool's free list and lowers the
 * pool's count by the blocks it took, so counts stay exact and an emptied pool goes back to its arena.
 *
 * Why it is sound (every step on the words below is a seq-cst Atomics operation):
 * - A pool with a block on its cross-thread list has count > 0 (the block is counted until taken back), so it
 *   is neither emptied nor given to another owner meanwhile; `queued` is 1 from the push that found the list
 *   empty until the owner, having popped the pool off its stack, clears it right before it swaps the list out.
 *   A push that finds `queued` still 1 is taken by that swap (the push came before the clear), or queues the
 *   pool anew (it came after).
 * - Stacks are only ever popped whole (Atomics.exchange), so no entry is read after another thread reused it.
 * - A pool popped by a thread that does not own it (its owner changed by an adoption) is pushed on to its owner.
 */
import { codedError } from '../core';
import { OFFSETOF_POOL_HEADER_FREEBLOCK, OFFSETOF_POOL_HEADER_REF_COUNT } from '../generated/layout';
import { insertToUsedpool } from '../pool';
import { pushPending } from './slots';
import {
  corruptStack,
  type SharedCore,
  slotPendingIdx,
  XI_NEXT,
  XI_OWNER,
  XI_QUEUED,
  XI_XFREE,
  xinfo,
} from './state';

const FREEBLOCK = OFFSETOF_POOL_HEADER_FREEBLOCK;
const REF_COUNT = OFFSETOF_POOL_HEADER_REF_COUNT;

/** Block p (live, of a pool another thread owns) goes onto its pool's cross-thread list. */
export function freeRemote(h: SharedCore, p: number): void {
  const u32 = h.u32;
  const n = p >>> h.poolBits;
  const xi = xinfo(h, n);
  const hi = h.baseHi;
  // The mark first, as on the free list: with 8-byte blocks it is the link's high word.
  u32[(p + h.markOffset) >>> 2] = h.markValue;
  for (;;) {
    const old = Atomics.load(u32, xi + XI_XFREE);
    u32[p >>> 2] = old;
    u32[(p + 4) >>> 2] = old === 0 ? 0 : hi;
    if (Atomics.compareExchange(u32, xi + XI_XFREE, old, p) !== old) continue;
    if (old === 0 && Atomics.compareExchange(u32, xi + XI_QUEUED, 0, 1) === 0) {
      const owner = Atomics.load(u32, xi + XI_OWNER);
      // An owner out of range is a corrupt xinfo: the block stays listed, and check() names the pool.
      if (owner - 1 >= 0 && owner - 1 < h.meta.maxThreads) {
        pushPending(u32, slotPendingIdx(h, owner - 1), xi, n + 1);
      }
    }
    return;
  }
}

/**
 * Takes back every block other threads freed into this thread's pools, as its pending stack lists them.
 * `emptied(pool)` hands a pool whose last block came back to its arena (under the heap lock). Returns the
 * blocks taken back.
 */
export function collect(h: SharedCore, emptied: (pool: number) => void): number {
  const u32 = h.u32;
  let entry = Atomics.exchange(u32, h.pendingIdx, 0);
  let blocks = 0;
  // Bounded: a pool is on one stack at most once, so a longer chain is a broken one (an error, not a hang).
  for (let left = h.geometry.reserve / h.geometry.poolSize; entry !== 0; left--) {
    if (left === 0 || entry - 1 >= h.geometry.reserve / h.geometry.poolSize) throw corruptStack();
    const n = entry - 1;
    const xi = xinfo(h, n);
    const next = u32[xi + XI_NEXT];
    blocks += takeBack(h, n, xi, emptied);
    entry = next;
  }
  return blocks;
}

function takeBack(h: SharedCore, n: number, xi: number, emptied: (pool: number) => void): number {
  const u32 = h.u32;
  const owner = Atomics.load(u32, xi + XI_OWNER);
  if (owner !== h.slotTag) {
    // Adopted by another thread since it was queued here: on to its owner, still queued (so on one stack only).
    if (owner - 1 >= 0 && owner - 1 < h.meta.maxThreads)
      pushPending(u32, slotPendingIdx(h, owner - 1), xi, n + 1);
    return 0;
  }
  Atomics.store(u32, xi + XI_QUEUED, 0);
  const first = Atomics.exchange(u32, xi + XI_XFREE, 0);
  if (first === 0) return 0;
  const pool = (n << h.poolBits) >>> 0;
  const count = u32[(pool + REF_COUNT) >>> 2];
  let tail = first;
  let len = 1;
  for (let b = u32[first >>> 2]; b !== 0; b = u32[b >>> 2]) {
    tail = b;
    if (++len > count) throw corruptList(pool);
  }
  const hi = h.baseHi;
  const fb = u32[(pool + FREEBLOCK) >>> 2];
  u32[tail >>> 2] = fb;
  u32[(tail + 4) >>> 2] = fb === 0 ? 0 : hi;
  u32[(pool + FREEBLOCK) >>> 2] = first;
  u32[(pool + FREEBLOCK + 4) >>> 2] = hi;
  u32[(pool + REF_COUNT) >>> 2] = count - len;
  // A full pool (on no list) has free blocks again: it rejoins this thread's usedpools.
  if (fb === 0) insertToUsedpool(h, pool);
  if (count === len) emptied(pool);
  return len;
}

function corruptList(pool: number): Error {
  return codedError(
    Error,
    'ERR_PYMALLOC_CORRUPT',
    `pymalloc: the cross-thread free list of pool 0x${pool.toString(16)} holds more blocks than the pool has in use`,
  );
}

/** Blocks on pool's cross-thread list (for stats; bounded by the pool's count, racing pushes aside). */
export function remoteCount(h: SharedCore, pool: number): number {
  const u32 = h.u32;
  const limit = u32[(pool + REF_COUNT) >>> 2];
  let len = 0;
  for (
    let b = Atomics.load(u32, xinfo(h, pool >>> h.poolBits) + XI_XFREE);
    b !== 0 && len < limit;
    b = u32[b >>> 2]
  )
    len++;
  return len;
}

/** True when block p is on its pool's cross-thread list (a double free of a block freed by another thread). */
export function onRemoteList(h: SharedCore, pool: number, p: number): boolean {
  const u32 = h.u32;
  const limit = u32[(pool + REF_COUNT) >>> 2];
  let steps = 0;
  for (
    let b = Atomics.load(u32, xinfo(h, pool >>> h.poolBits) + XI_XFREE);
    b !== 0 && steps <= limit;
    steps++
  ) {
    if (b === p) return true;
    b = u32[b >>> 2];
  }
  return false;
}
