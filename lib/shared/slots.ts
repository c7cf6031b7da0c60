/**
 * Thread slots: each thread attached to a shared heap owns one (`thread_slot` in the heap's memory), with its own
 * `usedpools` and the stack of its pools that other threads freed into. This module claims a slot (attach),
 * abandons one (detach, a thread's end, a Heap object collected without detach), and adopts abandoned slots'
 * pools into the calling thread's, so that no block of a thread that left is lost and its empty pools still go
 * back to their arenas (and the OS).
 */

import { poolBecameFree } from '../arena';
import { codedError, type HeapCore } from '../core';
import {
  OFFSETOF_POOL_HEADER_FREEBLOCK,
  OFFSETOF_POOL_HEADER_MAXNEXTOFFSET,
  OFFSETOF_POOL_HEADER_NEXTOFFSET,
  OFFSETOF_POOL_HEADER_REF_COUNT,
  OFFSETOF_POOL_HEADER_SZIDX,
} from '../generated/layout';
import { emptyUsedpools, insertToUsedpool, poolExtend } from '../pool';
import {
  corruptStack,
  forEachCarvedPool,
  type SharedCore,
  SLOT_ABANDONED,
  SLOT_ATTACHED,
  SLOT_FREE,
  slotGenerationIdx,
  slotPendingIdx,
  slotStateIdx,
  slotUsedBase,
  W_ABANDONED,
  W_ATTACHED,
  XI_NEXT,
  XI_OWNER,
  XI_QUEUED,
  XI_XFREE,
  xinfo,
} from './state';

const FREEBLOCK = OFFSETOF_POOL_HEADER_FREEBLOCK;
const REF_COUNT = OFFSETOF_POOL_HEADER_REF_COUNT;

/** Claims a free slot for the calling thread and empties its usedpools; returns its index. */
export function claimSlot(h: HeapCore): number {
  const u32 = h.u32;
  for (let i = 0; i < h.meta.maxThreads; i++) {
    if (Atomics.compareExchange(u32, slotStateIdx(h, i), SLOT_FREE, SLOT_ATTACHED) !== SLOT_FREE) continue;
    Atomics.add(u32, slotGenerationIdx(h, i), 1);
    Atomics.add(u32, h.meta.shared / 4 + W_ATTACHED, 1);
    emptyUsedpools(h, slotUsedBase(h, i));
    return i;
  }
  throw codedError(
    RangeError,
    'ERR_PYMALLOC_TOO_MANY_THREADS',
    `pymalloc: Heap.attach: all ${h.meta.maxThreads} thread slots of the shared heap are in use (detach() the ` +
      'threads that are done with it)',
  );
}

/**
 * Slot i's thread is done with the heap: its pools wait, with their blocks, for another thread to adopt them.
 * Returns false when the slot was not attached (abandoned already, by the native shim's hook or a finalizer).
 */
export function abandonSlot(u32: Uint32Array, sharedWord: number, stateIdx: number): boolean {
  if (Atomics.compareExchange(u32, stateIdx, SLOT_ATTACHED, SLOT_ABANDONED) !== SLOT_ATTACHED) return false;
  Atomics.sub(u32, sharedWord + W_ATTACHED, 1);
  Atomics.add(u32, sharedWord + W_ABANDONED, 1);
  return true;
}

/** Whether any slot is abandoned and not adopted yet (one load; the native hook does not count, see below). */
export function anyAbandoned(h: SharedCore): boolean {
  const u32 = h.u32;
  if (Atomics.load(u32, h.sharedIdx + W_ABANDONED) !== 0) return true;
  // A slot the native hook abandoned (its thread ended) is not counted: look for one.
  for (let i = 0; i < h.meta.maxThreads; i++) if (u32[slotStateIdx(h, i)] === SLOT_ABANDONED) return true;
  return false;
}

/**
 * With the heap lock held: every abandoned slot's pools become the calling thread's, and the slot is free for
 * another thread to claim. Returns the slots adopted.
 *
 * The pools are found by their owner word, not by the slot's lists, and each is repaired as it is adopted: a
 * thread ended by `worker.terminate()` stops at its next interrupt check, which can fall inside its own fast or
 * slow path (a pool half unlinked, a block popped and not returned, a free list not yet extended). So each pool's
 * count is recomputed from its free list (a block popped and never returned stays counted: lost, one at most per
 * pool), a pool whose list ran dry gets its next blocks carved, and the pool is linked into this thread's
 * usedpools if it has free blocks, handed back to its arena if it has none in use, and left on no list if full.
 * Its cross-thread list stays; a pool left queued on no stack (popped by the thread that ended) is queued again.
 */
export function adoptAbandoned(h: SharedCore): number {
  const u32 = h.u32;
  let adopted = 0;
  for (let s = 0; s < h.meta.maxThreads; s++) {
    const stateIdx = slotStateIdx(h, s);
    if (u32[stateIdx] !== SLOT_ABANDONED) continue;
    const tag = s + 1;
    movePending(h, slotPendingIdx(h, s), h.pendingIdx);
    const stacked = pendingEntries(h);
    forEachCarvedPool(h, (pool, arenaIdx) => {
      const n = pool >>> h.poolBits;
      const xi = xinfo(h, n);
      if (u32[xi + XI_OWNER] !== tag) return;
      Atomics.store(u32, xi + XI_OWNER, h.slotTag);
      // Left queued on no stack (popped by the thread that ended), or with blocks and not queued (it ended
      // between clearing `queued` and taking the list): queued again, here, so that the blocks come back.
      if (
        u32[xi + XI_QUEUED] === 1
          ? !stacked.has(n + 1)
          : Atomics.load(u32, xi + XI_XFREE) !== 0 && Atomics.compareExchange(u32, xi + XI_QUEUED, 0, 1) === 0
      ) {
        pushPending(u32, h.pendingIdx, xi, n + 1);
      }
      adoptPool(h, pool, arenaIdx);
    });
    // Its lists are left as they are (the pools were relinked above from their owner words): nothing reads a
    // free slot's lists, and claimSlot empties them.
    // Counted only when JavaScript abandoned it (the native hook just sets the state).
    if (Atomics.load(u32, h.sharedIdx + W_ABANDONED) > 0) Atomics.sub(u32, h.sharedIdx + W_ABANDONED, 1);
    else Atomics.sub(u32, h.sharedIdx + W_ATTACHED, 1);
    Atomics.store(u32, stateIdx, SLOT_FREE);
    adopted++;
  }
  return adopted;
}

/** Every entry (pool number + 1) on every slot's pending stack. */
function pendingEntries(h: SharedCore): Set<number> {
  const u32 = h.u32;
  const entries = new Set<number>();
  const pools = h.geometry.reserve / h.geometry.poolSize;
  for (let s = 0; s < h.meta.maxThreads; s++) {
    let e = u32[slotPendingIdx(h, s)]!;
    while (e !== 0 && e - 1 < pools && !entries.has(e)) {
      entries.add(e);
      e = u32[xinfo(h, e - 1) + XI_NEXT]!;
    }
  }
  return entries;
}

/** A pool of a slot being adopted (already owned by h's thread): recounted, and put where its state says. */
function adoptPool(h: SharedCore, pool: number, arenaIdx: number): void {
  const u32 = h.u32;
  const g = h.geometry;
  const sz = u32[(pool + OFFSETOF_POOL_HEADER_SZIDX) >>> 2]!;
  if (sz >= g.poolClasses) throw adoptCorrupt(pool, `size class ${sz}`);
  const size = (sz + 1) << h.alignShift;
  const next = u32[(pool + OFFSETOF_POOL_HEADER_NEXTOFFSET) >>> 2]!;
  const carved = (next - h.poolOverhead) / size;
  if (!Number.isInteger(carved) || carved < 0 || next > g.poolSize)
    throw adoptCorrupt(pool, `nextoffset ${next}`);
  let free = 0;
  for (let b = u32[(pool + FREEBLOCK) >>> 2]!; b !== 0; b = u32[b >>> 2]!) {
    if (++free > carved || (b & h.poolMask) >>> 0 !== pool) throw adoptCorrupt(pool, 'free list');
  }
  const count = carved - free;
  u32[(pool + REF_COUNT) >>> 2] = count;
  if (free === 0 && next <= u32[(pool + OFFSETOF_POOL_HEADER_MAXNEXTOFFSET) >>> 2]!) {
    // Its list ran dry and the thread ended before carving more: carve now (the pool is on no list yet).
    poolExtend(h, pool, sz);
  }
  u32[(pool + FREEBLOCK + 4) >>> 2] = u32[(pool + FREEBLOCK) >>> 2] === 0 ? 0 : h.baseHi;
  if (count === 0) {
    u32[xinfo(h, pool >>> h.poolBits) + XI_OWNER] = 0;
    poolBecameFree(h, pool, arenaIdx);
  } else if (u32[(pool + FREEBLOCK) >>> 2] !== 0) {
    insertToUsedpool(h, pool);
  }
}

function adoptCorrupt(pool: number, what: string): Error {
  return codedError(
    Error,
    'ERR_PYMALLOC_CORRUPT',
    `pymalloc: adopting the pools of a thread that left: pool 0x${pool.toString(16)} has a broken ${what}`,
  );
}

/** Moves every entry of the pending stack at u32 index `from` onto the one at `to` (each pool stays queued once). */
export function movePending(h: SharedCore, from: number, to: number): void {
  const u32 = h.u32;
  let entry = Atomics.exchange(u32, from, 0);
  for (let left = h.geometry.reserve / h.geometry.poolSize; entry !== 0; left--) {
    if (left === 0 || entry - 1 >= h.geometry.reserve / h.geometry.poolSize) throw corruptStack();
    const n = entry - 1;
    const next = u32[xinfo(h, n) + XI_NEXT];
    pushPending(u32, to, xinfo(h, n), entry);
    entry = next;
  }
}

/** Pushes pool entry (number + 1), whose xinfo is at `xi`, onto the pending stack whose head is at `head`. */
export function pushPending(u32: Uint32Array, head: number, xi: number, entry: number): void {
  for (;;) {
    const top = Atomics.load(u32, head);
    u32[xi + XI_NEXT] = top;
    if (Atomics.compareExchange(u32, head, top, entry) === top) return;
  }
}

/** Entries left on free slots' pending stacks (a free raced with an adoption): moved to the calling thread's. */
export function sweepFreeSlots(h: SharedCore): void {
  const u32 = h.u32;
  for (let s = 0; s < h.meta.maxThreads; s++) {
    if (u32[slotStateIdx(h, s)] !== SLOT_FREE) continue;
    const idx = slotPendingIdx(h, s);
    if (Atomics.load(u32, idx) !== 0) movePending(h, idx, h.pendingIdx);
  }
}
