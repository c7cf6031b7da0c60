/**
 * The shared heap's state in its memory (`shared_state`, `thread_slot`, `pool_xinfo` of lib/layouts.ts), and
 * what every module of lib/shared/ reads it through: `SharedCore`, one thread's view of the heap (the fields a
 * SharedHeap object holds), and the word indices of the fields. Nothing here allocates or locks.
 *
 * Layers (calls go down): heap.ts (the SharedHeap class) -> remote.ts (cross-thread frees and their collection)
 * -> slots.ts (thread slots: claim, abandon, adopt) -> lock.ts (the heap lock) -> state.ts.
 */
import { arenaAddress, arenaObject } from '../arena';
import { codedError, type FoldedConstants, foldedConstants, type HeapCore } from '../core';
import {
  arena_object_get_pool_address,
  heap_state_get_maxarenas,
  OFFSETOF_POOL_XINFO_OWNER,
  OFFSETOF_POOL_XINFO_PENDING_NEXT,
  OFFSETOF_POOL_XINFO_QUEUED,
  OFFSETOF_POOL_XINFO_XFREE,
  OFFSETOF_SHARED_STATE_ABANDONED,
  OFFSETOF_SHARED_STATE_ATTACHED,
  OFFSETOF_SHARED_STATE_FLAGS,
  OFFSETOF_SHARED_STATE_LOCK,
  OFFSETOF_SHARED_STATE_LOCK_WAITERS,
  OFFSETOF_SHARED_STATE_MAGIC,
  OFFSETOF_THREAD_SLOT_GENERATION,
  OFFSETOF_THREAD_SLOT_PENDING,
  OFFSETOF_THREAD_SLOT_STATE,
  OFFSETOF_THREAD_SLOT_USEDPOOLS,
  SIZEOF_POOL_XINFO,
  SIZEOF_THREAD_SLOT,
} from '../generated/layout';
import { type Geometry, metadataLayout } from '../geometry';

/** `shared_state.magic` of a live shared heap ('PYMS'); 0 once destroyed (its page then reads zeros). */
export const SHARED_MAGIC = 0x534d5950;

/** `shared_state.flags` bits. INTERRUPTED is the native shim's (its env cleanup hook sets it). */
export const FLAG_INTERRUPTED = 1;
export const FLAG_DESTROYED = 2;
export const FLAG_CORRUPT = 4;

/** `thread_slot.state`. ATTACHED and ABANDONED are the native shim's too (its cleanup hook abandons a slot). */
export const SLOT_FREE = 0;
export const SLOT_ATTACHED = 1;
export const SLOT_ABANDONED = 2;

/** Words of a pool_xinfo (u32 index offsets from the pool's first word). */
export const XI_OWNER = OFFSETOF_POOL_XINFO_OWNER >>> 2;
export const XI_XFREE = OFFSETOF_POOL_XINFO_XFREE >>> 2;
export const XI_QUEUED = OFFSETOF_POOL_XINFO_QUEUED >>> 2;
export const XI_NEXT = OFFSETOF_POOL_XINFO_PENDING_NEXT >>> 2;
/** u32 words per pool_xinfo: pool number n's words start at xinfoIdx + n * XI_WORDS. */
export const XI_WORDS = SIZEOF_POOL_XINFO >>> 2;
export const XI_SHIFT = Math.log2(XI_WORDS);

/** One thread's view of a shared heap: what lib/shared/ reads beside HeapCore's fields. */
export interface SharedCore extends HeapCore {
  /** This thread's slot index, and slot + 1 (its tag in `pool_xinfo.owner` and the lock word). */
  readonly slot: number;
  readonly slotTag: number;
  /** `pool_bits`: pool number n = offset >>> poolBits. */
  readonly poolBits: number;
  /** u32 index of pool_xinfo[0]. */
  readonly xinfoIdx: number;
  /** u32 index of shared_state. */
  readonly sharedIdx: number;
  /** u32 index of this thread's `thread_slot.pending`. */
  readonly pendingIdx: number;
  /** Nesting depth of this thread's hold on the heap lock (0: not held). */
  lockDepth: number;
}

export const W_MAGIC = OFFSETOF_SHARED_STATE_MAGIC >>> 2;
export const W_LOCK = OFFSETOF_SHARED_STATE_LOCK >>> 2;
export const W_WAITERS = OFFSETOF_SHARED_STATE_LOCK_WAITERS >>> 2;
export const W_FLAGS = OFFSETOF_SHARED_STATE_FLAGS >>> 2;
export const W_ATTACHED = OFFSETOF_SHARED_STATE_ATTACHED >>> 2;
export const W_ABANDONED = OFFSETOF_SHARED_STATE_ABANDONED >>> 2;

/** Byte offset of thread slot `i`. */
export function slotAt(h: HeapCore, i: number): number {
  return h.meta.slots + i * SIZEOF_THREAD_SLOT;
}

/** Byte offset of slot i's usedpools[0] (its fake headers are 16 bytes before each pair, as in heap_state). */
export function slotUsedBase(h: HeapCore, i: number): number {
  return slotAt(h, i) + OFFSETOF_THREAD_SLOT_USEDPOOLS;
}

export function slotStateIdx(h: HeapCore, i: number): number {
  return (slotAt(h, i) + OFFSETOF_THREAD_SLOT_STATE) >>> 2;
}

export function slotGenerationIdx(h: HeapCore, i: number): number {
  return (slotAt(h, i) + OFFSETOF_THREAD_SLOT_GENERATION) >>> 2;
}

export function slotPendingIdx(h: HeapCore, i: number): number {
  return (slotAt(h, i) + OFFSETOF_THREAD_SLOT_PENDING) >>> 2;
}

/** u32 index of the pool_xinfo of pool number n (the pool at offset n << poolBits). */
export function xinfo(h: SharedCore, n: number): number {
  return h.xinfoIdx + (n << XI_SHIFT);
}

/** A pending stack longer than the heap has pools, or naming a pool beyond it: broken (an error, never a hang). */
export function corruptStack(): Error {
  return codedError(Error, 'ERR_PYMALLOC_CORRUPT', 'pymalloc: a pending stack of the shared heap is broken');
}

/**
 * The constants a shared heap's specialised fast paths fold in (lib/generated/shared-fastpaths.ts): a private
 * heap's (FoldedConstants) but `usedBase`, which is each thread's own, and with where the pools' owner words are.
 */
export interface SharedFoldedConstants extends Omit<FoldedConstants, 'usedBase'> {
  xinfoIdx: number;
  poolBits: number;
}

export function sharedFoldedConstants(geometry: Geometry): SharedFoldedConstants {
  const meta = metadataLayout(geometry, true);
  const { usedBase: _perThread, ...k } = foldedConstants(geometry, meta);
  return { ...k, xinfoIdx: meta.poolInfo >>> 2, poolBits: geometry.poolBits };
}

/**
 * Calls fn for every carved pool of every associated arena: its offset, its arena's index, its index in the
 * arena and the arena's offset. Never-carved pools are left out: reading their headers would map pages for nothing.
 */
export function forEachCarvedPool(
  h: HeapCore,
  fn: (pool: number, arenaIdx: number, index: number, address: number) => void,
): void {
  const poolSize = h.geometry.poolSize;
  const maxarenas = heap_state_get_maxarenas(h, h.meta.state);
  for (let i = 0; i < maxarenas; i++) {
    const ao = arenaObject(h, i);
    const address = arenaAddress(h, ao);
    if (address === 0) continue;
    const carved = (arena_object_get_pool_address(h, ao) - address) / poolSize;
    for (let index = 0; index < carved; index++) fn(address + index * poolSize, i, index, address);
  }
}
