/**
 * HeapCore: what every layer of the allocator shares: the reservation, the typed-array views over it (created
 * once), the geometry's constants and where the metadata lives. It holds no allocator state: that lives in the
 * heap's own memory (`heap_state`, the `arena_object` table, pool headers), read and written through the
 * generated accessors of `lib/generated/layout.ts`.
 *
 * Pointers are 32-bit byte offsets into the reservation (0 is NULL). A pointer *stored in the heap* is a real
 * 64-bit address: low word = offset, high word = `baseHi` (0 for NULL), so that C code compiled against
 * `native/pymalloc_layout.h` can follow it.
 */

import {
  type LayoutViews,
  OFFSETOF_HEAP_STATE_SPAN_BINS,
  OFFSETOF_HEAP_STATE_SPAN_CACHE,
  OFFSETOF_HEAP_STATE_USEDPOOLS,
} from './generated/layout';
import { type Geometry, type MetadataLayout, metadataLayout } from './geometry';
import type { DecommitMode, Reservation } from './os';

/** What to do with memory that becomes free. */
export type ReturnPolicy = 'cpython' | 'purge' | 'never';

/** An error with a stable `code`, like Node's own. */
export function codedError<E extends Error>(
  ctor: new (message: string) => E,
  code: string,
  message: string,
): E {
  const err = new ctor(message);
  (err as E & { code: string }).code = code;
  return err;
}

/**
 * The error of a heap whose ArrayBuffer JavaScript detached. ArrayBuffer.prototype.transfer() (Node 22 and later)
 * moves a buffer's memory to a new ArrayBuffer and detaches the old one; nothing can refuse that for an external
 * buffer without a detach key, which Node's own teardown of such a buffer cannot handle (lib/os/pages.ts). The
 * heap's memory then belongs to the new buffer, and the heap can only be destroyed.
 */
export function bufferDetachedError(what: string): Error {
  return codedError(
    Error,
    'ERR_PYMALLOC_BUFFER_DETACHED',
    `pymalloc: ${what}: the heap's ArrayBuffer was detached (by ArrayBuffer.prototype.transfer?), so its memory ` +
      'now belongs to another buffer; the heap can no longer be used (destroy() still releases it)',
  );
}

export const POLICY_CPYTHON = 0;
export const POLICY_PURGE = 1;
export const POLICY_NEVER = 2;
export const POLICY_CODES: Record<ReturnPolicy, number> = {
  cpython: POLICY_CPYTHON,
  purge: POLICY_PURGE,
  never: POLICY_NEVER,
};

/** Written at offset `markOffset` of every free small block (alignment >= 16), cleared by malloc. */
export const FREED_MARK = 0xdbfdfdfb;

/** Pool header `szidx` of a pool that holds no size class yet (CPython's DUMMY_SIZE_IDX). */
export const DUMMY_SIZE_IDX = 0xffff;

/**
 * Byte offset in a pool header of the pool's divisibilityMagic(block size): the high word of `ref`, which is
 * padding in CPython (`ref` is a union of `count` and a pointer). Written whenever a pool is taken for a class
 * (allocateFromNewPool), 0 in a fresh or purged pool. free's fast path reads it beside `count` instead of
 * indexing divMagic by szidx, one dependent load fewer; check() verifies it.
 */
export const POOL_MAGIC = 4;

/**
 * The multiplier that tests divisibility by d without dividing: for 0 <= n < 2^16 and 1 < d <= 1024,
 * d divides n iff (n * c mod 2^32) < c, where c = ceil(2^32 / d). Write c * d = 2^32 + e (0 <= e < d) and
 * n = q * d + r: then n * c mod 2^32 = q * e + r * c, which stays below 2^32 in these ranges. It is q * e < n < c
 * when r = 0, and at least c when r > 0. (A modulo by a variable costs a division and, in V8's lowering, a branch
 * on whether d is a power of two, which a mix of size classes mispredicts.)
 */
export function divisibilityMagic(d: number): number {
  return Math.ceil(2 ** 32 / d) >>> 0;
}

/**
 * The hot paths' constants that follow from the geometry alone (not from the reservation's address): what the
 * specialised fast paths of lib/generated/fastpaths.ts have folded in as literals, and what a heap must equal
 * for one of them to be used. `markValue` is left out where it is the address's high word (alignment 8).
 */
export interface FoldedConstants {
  alignShift: number;
  poolMask: number;
  poolOffsetMask: number;
  poolOverhead: number;
  arenaBits: number;
  usedBase: number;
  arenamapIdx: number;
  markOffset: number;
  markValue?: number;
}

export function foldedConstants(geometry: Geometry, meta: MetadataLayout): FoldedConstants {
  const wide = geometry.alignment >= 16;
  const k: FoldedConstants = {
    alignShift: geometry.alignmentShift,
    poolMask: ~(geometry.poolSize - 1),
    poolOffsetMask: geometry.poolSize - 1,
    poolOverhead: geometry.poolOverhead,
    arenaBits: geometry.arenaBits,
    usedBase: meta.state + OFFSETOF_HEAP_STATE_USEDPOOLS,
    arenamapIdx: meta.arenamap >>> 2,
    // With 16-byte blocks or larger the mark has a word of its own after the 8-byte link; with 8-byte blocks the
    // link's high word (always baseHi or 0 in a free block) serves as the mark.
    markOffset: wide ? 8 : 4,
  };
  // As a signed 32-bit value (a small integer to V8): compared with `u32[i] | 0`, stored as is.
  if (wide) k.markValue = FREED_MARK | 0;
  return k;
}

/** The typed-array views of a heap, over its whole reservation. */
type ViewName = 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'f64' | 'u64' | 'i64' | 'dv';

export class HeapCore implements LayoutViews {
  /**
   * Views over the whole reservation, made once (read-only properties; empty after destroy()). A pointer p is a
   * byte offset: index them with `p >>> shift`, e.g. `heap.f64[p >>> 3]`, `heap.u32[(p + 8) >>> 2]`.
   */
  declare readonly u8: Uint8Array;
  declare readonly i8: Int8Array;
  declare readonly u16: Uint16Array;
  declare readonly i16: Int16Array;
  declare readonly u32: Uint32Array;
  declare readonly i32: Int32Array;
  declare readonly f32: Float32Array;
  declare readonly f64: Float64Array;
  declare readonly u64: BigUint64Array;
  declare readonly i64: BigInt64Array;
  declare readonly dv: DataView;
  /** High 32 bits of every real address in this heap: the high word of pointers stored in it (LayoutViews). */
  declare readonly baseHi: number;

  /** The heap's geometry, resolved from the options and frozen. */
  declare readonly geometry: Geometry;
  /** @internal */
  declare readonly meta: MetadataLayout;
  /** @internal */
  declare readonly reservation: Reservation;
  /** What happens to memory that becomes free (the `policy` option). */
  declare readonly policy: ReturnPolicy;
  /** How pages go back to the OS (the `decommit` option). */
  declare readonly decommitMode: DecommitMode;
  /** Arenas are advised MADV_HUGEPAGE (the hugePages option, where the kernel has transparent huge pages). */
  declare readonly hugePages: boolean;

  // Constants of the hot paths, copied out of the geometry so that each is one field load.
  /**
   * @internal Requests of 1..threshold bytes come from pools: the geometry's mediumThreshold (small and medium classes).
   */
  declare threshold: number;
  /** @internal */
  declare readonly alignShift: number;
  /** @internal */
  declare readonly poolMask: number;
  /** @internal poolSize - 1: p & poolOffsetMask is p's offset in its pool. */
  declare readonly poolOffsetMask: number;
  /**
   * @internal Per pool size class (small and medium), divisibilityMagic(block size): free's O(1) block-boundary test.
   */
  declare readonly divMagic: Uint32Array;
  /** @internal */
  declare readonly poolOverhead: number;
  /** @internal */
  declare readonly arenaBits: number;
  /** @internal */
  declare readonly pageBits: number;
  /** @internal Byte offset of `usedpools[0]`; the fake header of class i is at usedBase + 16 * i - 16. */
  declare readonly usedBase: number;
  /** @internal u32 index of `arenamap[0]`, `pagemap[0]`, `span_links[0]`, `freed_heads[0]`. */
  declare readonly arenamapIdx: number;
  /** @internal */
  declare readonly pagemapIdx: number;
  /** @internal */
  declare readonly linksIdx: number;
  /** @internal */
  declare readonly freedIdx: number;
  /** @internal */
  declare readonly binsIdx: number;
  /** @internal */
  declare readonly cacheIdx: number;
  /** @internal Offset of the free-block mark inside a block, and the value that marks it. */
  declare readonly markOffset: number;
  /** @internal */
  declare readonly markValue: number;
  /** @internal */
  declare readonly dataStartPage: number;
  /** @internal Pages in the reservation (entries of `pagemap`). */
  declare readonly pages: number;
  /** @internal Byte offset of the `arena_object` table (`meta.arenas`). */
  declare readonly arenasBase: number;
  /** @internal POLICY_CODES[policy], a small integer for the slow paths' tests. */
  declare readonly policyCode: number;
  /** @internal */
  declare readonly poolSize: number;
  /** Whether CPython's debug hooks are installed (the `debug` option, or PYMALLOC=debug). */
  declare readonly debug: boolean;
  /**
   * Set by allocSpan: whether the span it handed out last came from free (decommitted, never written since)
   * pages rather than from the dirty-span cache. calloc and the debug hooks read it right after the call.
   * @internal
   */
  declare spanWasFree: boolean;
  /**
   * @internal The OS refused an eviction of the span cache that nobody asked for (the cache may then hold more
   * than its budget, until an eviction brings it back under).
   */
  declare cacheRefused: boolean;
  /** @internal The OS refused to take back memory that a free or a purge gave back: kept, and reported once. */
  declare osRefusal: Error | undefined;
  /** @internal Warnings already emitted for this heap (each at most once). */
  declare readonly warned: Set<string>;
  /** The delayed return (lib/delay.ts): milliseconds free memory waits before going back (0: at once). */
  declare readonly purgeDelay: number;
  /**
   * @internal Whether the slow paths give memory back as it becomes free: a wholly free arena at once (all
   * policies but 'never' and a delayed 'purge'), and under 'purge' with no delay, empty pools at the threshold.
   */
  declare readonly releaseArenasAtOnce: boolean;
  /** @internal */
  declare readonly purgeAtThreshold: boolean;
  /** @internal performance.now() by which what is free goes back (0: nothing pending). */
  declare purgeDeadline: number;
  /** @internal Slow paths left before the next reading of the clock. */
  declare purgeCountdown: number;
  /** @internal */
  declare purgeTimer: ReturnType<typeof setTimeout> | undefined;
  /** @internal What the deadline does (set by the Heap; undefined once destroyed). */
  declare purgeGiveBack: ((busy: boolean) => void) | undefined;

  /** @internal */
  constructor(
    reservation: Reservation,
    geometry: Geometry,
    policy: ReturnPolicy,
    decommitMode: DecommitMode,
    debug: boolean,
    hugePages = false,
    purgeDelay = 0,
    shared = false,
  ) {
    this.reservation = reservation;
    this.hugePages = hugePages;
    this.geometry = geometry;
    this.meta = metadataLayout(geometry, shared);
    this.policy = policy;
    this.decommitMode = decommitMode;
    this.debug = debug;
    const buf = reservation.buffer;
    this.u8 = new Uint8Array(buf);
    this.i8 = new Int8Array(buf);
    this.u16 = new Uint16Array(buf);
    this.i16 = new Int16Array(buf);
    this.u32 = new Uint32Array(buf);
    this.i32 = new Int32Array(buf);
    this.f32 = new Float32Array(buf);
    this.f64 = new Float64Array(buf);
    this.u64 = new BigUint64Array(buf);
    this.i64 = new BigInt64Array(buf);
    this.dv = new DataView(buf);
    this.baseHi = Number(reservation.base >> 32n);
    if (Number(reservation.base & 0xffffffffn) !== 0) {
      throw new Error('pymalloc: a heap reservation must be aligned to 4 GiB');
    }

    this.threshold = geometry.mediumThreshold;
    const k = foldedConstants(geometry, this.meta);
    this.alignShift = k.alignShift;
    this.poolMask = k.poolMask;
    this.poolOffsetMask = k.poolOffsetMask;
    this.divMagic = new Uint32Array(geometry.poolClasses);
    for (let i = 0; i < geometry.poolClasses; i++) {
      this.divMagic[i] = divisibilityMagic((i + 1) << geometry.alignmentShift);
    }
    this.poolOverhead = k.poolOverhead;
    this.arenaBits = k.arenaBits;
    this.pageBits = geometry.pageBits;
    this.usedBase = k.usedBase;
    this.arenamapIdx = k.arenamapIdx;
    this.pagemapIdx = this.meta.pagemap >>> 2;
    this.linksIdx = this.meta.spanLinks >>> 2;
    this.freedIdx = this.meta.freedHeads >>> 2;
    this.spanWasFree = false;
    this.osRefusal = undefined;
    this.cacheRefused = false;
    this.warned = new Set();
    this.binsIdx = (this.meta.state + OFFSETOF_HEAP_STATE_SPAN_BINS) >>> 2;
    this.cacheIdx = (this.meta.state + OFFSETOF_HEAP_STATE_SPAN_CACHE) >>> 2;
    this.dataStartPage = this.meta.dataStart >>> geometry.pageBits;
    this.pages = geometry.pages;
    this.arenasBase = this.meta.arenas;
    this.policyCode = POLICY_CODES[policy];
    this.poolSize = geometry.poolSize;
    this.markOffset = k.markOffset;
    this.markValue = k.markValue ?? this.baseHi | 0;
    this.purgeDelay = purgeDelay;
    this.releaseArenasAtOnce = policy === 'cpython' || (policy === 'purge' && purgeDelay === 0);
    this.purgeAtThreshold = policy === 'purge' && purgeDelay === 0;
    this.purgeDeadline = 0;
    this.purgeCountdown = 0;
    this.purgeTimer = undefined;
    this.purgeGiveBack = undefined;
  }

  /**
   * Replaces every view by an empty one (a destroyed heap): the heap then keeps nothing of its reservation's
   * buffer alive, so the range is unmapped as soon as nothing else (a view the program kept, native work in
   * flight) can reach it.
   * @internal
   */
  protected dropViews(): void {
    // The views are read-only to users; only this and the constructor assign them.
    const self = this as { -readonly [K in ViewName]: HeapCore[K] };
    self.u8 = new Uint8Array(0);
    self.i8 = new Int8Array(0);
    self.u16 = new Uint16Array(0);
    self.i16 = new Int16Array(0);
    self.u32 = new Uint32Array(0);
    self.i32 = new Int32Array(0);
    self.f32 = new Float32Array(0);
    self.f64 = new Float64Array(0);
    self.u64 = new BigUint64Array(0);
    self.i64 = new BigInt64Array(0);
    self.dv = new DataView(new ArrayBuffer(0));
  }

  /** @internal Emits a process warning (code `code`) once per heap. */
  warnOnce(code: string, message: string): void {
    if (this.warned.has(code)) return;
    this.warned.add(code);
    process.emitWarning(message, { code });
  }

  /**
   * @internal The `usedpools` arrays (their first entry's offset) that check() walks: heap_state's in a private
   * heap, every thread slot's in a shared one.
   */
  usedBases(): number[] {
    return [this.usedBase];
  }

  /**
   * @internal Blocks of `pool` freed by other threads and not yet taken back by its owner (counted in its
   * `count` until then): always 0 in a private heap.
   */
  remoteFreed(_pool: number): number {
    return 0;
  }

  /** @internal Writes a pointer into heap memory at byte offset `at`, as a real address. */
  storePtr(at: number, value: number): void {
    this.u32[at >>> 2] = value;
    this.u32[(at + 4) >>> 2] = value === 0 ? 0 : this.baseHi;
  }
}
