/**
 * malloc / free / realloc / calloc: the fast paths, each a few lines with one unlikely branch to a named slow
 * path, and the slow paths that handle everything else (large blocks, bad input, empty lists, destroyed heaps).
 *
 * Cost of the fast paths (no allocation, no closures, no BigInt, no DataView, no try/catch, monomorphic):
 *   malloc(1..mediumThreshold): pop the first free block of the first pool on usedpools[class]; 5 loads, 2 stores.
 *   free(small block):    validate in O(1) (live arena, used pool, carved block boundary, not already free),
 *                         push on its pool's free list; about 8 loads and 5 stores.
 * They fall back to the slow paths only when a pool list is empty, a pool fills or empties, or the request is
 * not a small one.
 */

import { isPurged } from './arena';
import { bufferDetachedError, codedError, HeapCore, POOL_MAGIC } from './core';
import {
  OFFSETOF_ARENA_OBJECT_ADDRESS,
  OFFSETOF_ARENA_OBJECT_POOL_ADDRESS,
  OFFSETOF_POOL_HEADER_FREEBLOCK,
  OFFSETOF_POOL_HEADER_NEXTOFFSET,
  OFFSETOF_POOL_HEADER_NEXTPOOL,
  OFFSETOF_POOL_HEADER_REF_COUNT,
  OFFSETOF_POOL_HEADER_SZIDX,
  SIZEOF_ARENA_OBJECT,
} from './generated/layout';
import { allocateFromNewPool, insertToUsedpool, onFreeList, poolEmptied, poolExtend } from './pool';
import { allocSpan, freeLargeSpan, isFreedHead, resizeLargeSpan, SPAN_LARGE } from './span';

const REF_COUNT = OFFSETOF_POOL_HEADER_REF_COUNT;
const FREEBLOCK = OFFSETOF_POOL_HEADER_FREEBLOCK;
const SZIDX = OFFSETOF_POOL_HEADER_SZIDX;
const NEXTOFFSET = OFFSETOF_POOL_HEADER_NEXTOFFSET;
const NEXTPOOL = OFFSETOF_POOL_HEADER_NEXTPOOL;

/** Largest request accepted at all: a 32-bit heap cannot hold more. */
export const MAX_REQUEST = 2 ** 32 - 1;

export function hex(p: number): string {
  return `0x${p.toString(16)}`;
}

export class Allocator extends HeapCore {
  /** @internal Set by destroy(): every call fails from then on. */
  protected destroyed = false;

  /**
   * Allocates `n` bytes and returns a pointer (a byte offset into the heap's views), aligned to the geometry's
   * alignment (16 by default). Throws TypeError/RangeError for a bad size and RangeError ERR_PYMALLOC_NOMEM
   * when the heap is full. malloc(0) returns a unique pointer.
   */
  malloc(n: number): number {
    // typeof first: arithmetic on a bigint would throw a TypeError without the documented code.
    // (n & 2047) === n: an integer from 0 to 2047, above any pool class (at most 1024), so that what follows is
    // small-integer arithmetic.
    if (typeof n === 'number' && (n & 2047) === n && (n - 1) >>> 0 < this.threshold) {
      const u32 = this.u32;
      const sz = (n - 1) >>> this.alignShift;
      const slot = this.usedBase + (sz << 4);
      const pool = u32[slot >>> 2];
      // Above the fake header: a pool (pools lie above the metadata). The fake header means the list is empty;
      // undefined, a view of a detached buffer, fails the test too, and allocateFromNewPool reports it.
      if (pool > slot - NEXTPOOL) {
        const bp = u32[(pool + FREEBLOCK) >>> 2];
        const next = u32[bp >>> 2];
        u32[(bp + this.markOffset) >>> 2] = 0;
        u32[(pool + FREEBLOCK) >>> 2] = next;
        u32[(pool + REF_COUNT) >>> 2] += 1;
        if (next === 0) poolExtend(this, pool, sz);
        return bp;
      }
      return allocateFromNewPool(this, sz, n) >>> 0;
    }
    return this.mallocSlow(n) >>> 0;
  }

  /**
   * Frees a block returned by malloc, calloc or realloc. free(0) does nothing. Throws (and changes nothing) for
   * anything that is not a live block of this heap: a foreign, interior or already freed pointer.
   */
  free(p: number): void {
    if (typeof p !== 'number') {
      this.freeSlow(p); // a bigint would make `>>>` throw without a code
      return;
    }
    const u32 = this.u32;
    // Nothing of the pool may be read before the arena is known to be live: its pages may be unmapped.
    // Every p >>> arenaBits indexes the arena map, but a destroyed heap's views are empty (`| 0` maps their
    // undefined to 0 too); p >>> 0 !== p for a negative, fractional or huge number.
    if ((u32[this.arenamapIdx + (p >>> this.arenaBits)] | 0) === 0 || p >>> 0 !== p) {
      this.freeSlow(p);
      return;
    }
    const pool = (p & this.poolMask) >>> 0;
    const off = p & this.poolOffsetMask; // p's offset in its pool
    const blk = off - this.poolOverhead; // negative inside the pool header
    const count = u32[(pool + REF_COUNT) >>> 2];
    // Short-circuit order matters: a pool's magic and nextoffset mean something only while count != 0.
    if (count === 0 || blk < 0 || off >= u32[(pool + NEXTOFFSET) >>> 2]) {
      this.freeSlow(p);
      return;
    }
    // blk is a multiple of the block size iff imul(blk, magic) < magic (see divisibilityMagic, POOL_MAGIC).
    const magic = u32[(pool + POOL_MAGIC) >>> 2];
    if (Math.imul(blk, magic) >>> 0 >= magic || (u32[(p + this.markOffset) >>> 2] | 0) === this.markValue) {
      this.freeSlow(p);
      return;
    }
    this.releaseSmall(p, pool, count);
  }

  /** @internal Pushes live small block p on its pool's free list; `count` is the pool's count before. */
  protected releaseSmall(p: number, pool: number, count: number): void {
    const u32 = this.u32;
    const last = u32[(pool + FREEBLOCK) >>> 2];
    // The mark first: with 8-byte blocks it is the link's high word, which the link then overwrites.
    u32[(p + this.markOffset) >>> 2] = this.markValue;
    u32[p >>> 2] = last;
    u32[(p + 4) >>> 2] = last === 0 ? 0 : this.baseHi;
    u32[(pool + FREEBLOCK) >>> 2] = p;
    u32[(pool + REF_COUNT) >>> 2] = count - 1;
    if (last === 0) {
      // The pool was full: it gets its freeblock's high word back and rejoins usedpools.
      u32[(pool + FREEBLOCK + 4) >>> 2] = this.baseHi;
      insertToUsedpool(this, pool);
    } else if (count === 1) {
      poolEmptied(this, pool);
    }
  }

  /** @internal Everything malloc's fast path does not take: 0, large sizes, bad input, a destroyed heap. */
  protected mallocSlow(n: number): number {
    // A large request (n > threshold, an integer below 2^32) of a live heap needs no other check.
    if (
      typeof n === 'number' &&
      n >>> 0 === n &&
      n > this.threshold &&
      !this.destroyed &&
      this.u8.length !== 0
    )
      return this.mallocLarge(n);
    this.checkLive('malloc');
    checkSize(n, 'size', 'malloc');
    if (n === 0) return this.malloc(1);
    return this.mallocLarge(n);
  }

  /** @internal A large request (1 <= n < 2^32): a page-granular span of the same reservation. */
  protected mallocLarge(n: number): number {
    const pageBits = this.pageBits;
    const pg = allocSpan(this, ((n - 1) >>> pageBits) + 1, 1, SPAN_LARGE, n);
    this.u32[this.linksIdx + 2 * pg] = n;
    return (pg << pageBits) >>> 0;
  }

  /** @internal Full validation of a pointer handed to free; frees it or throws naming what is wrong. */
  protected freeSlow(p: number): void {
    // A large block: p is the first page of a LARGE span (which allocSpan marks as its head).
    const pageBits = this.pageBits;
    const pg = typeof p === 'number' ? p >>> pageBits : 0; // a bigint would make `>>>` throw without a code
    if (p === (pg << pageBits) >>> 0 && pg < this.pages) {
      const u32 = this.u32;
      const tag = u32[this.pagemapIdx + pg];
      if ((tag & 7) === SPAN_LARGE && u32[this.linksIdx + 2 * pg + 1] === pg) {
        freeLargeSpan(this, pg, tag >>> 3);
        return;
      }
    }
    this.checkLive('free');
    if (p === 0) return;
    const found = this.locate(p, 'free');
    if (found > 0) {
      const pool = (p & this.poolMask) >>> 0;
      this.releaseSmall(p, pool, this.u32[(pool + REF_COUNT) >>> 2]);
    } else {
      freeLargeSpan(this, p >>> this.pageBits, -found);
    }
  }

  /**
   * Finds the live block that p points at: returns its size for a small block (its pool is p & ~POOL_MASK) or
   * minus its page count for a large one (its first page is p >> PAGE_BITS). Throws TypeError/RangeError for a
   * non-pointer, Error ERR_PYMALLOC_INVALID_POINTER for anything that is not the start of a live block of this
   * heap, and ERR_PYMALLOC_DOUBLE_FREE for a block already free. Messages name `shown` (the debug hooks pass the
   * pointer their caller gave, whose underlying block is p).
   * @internal
   */
  protected locate(p: number, what: string, shown: number = p): number {
    checkPointer(p, what);
    const u32 = this.u32;
    const g = this.geometry;
    if (p >= g.reserve) {
      badPointer(what, shown, `pointer is beyond this heap's ${g.reserve}-byte reservation`);
    }
    const slot = u32[this.arenamapIdx + (p >>> this.arenaBits)];
    if (slot !== 0) {
      const pool = (p & this.poolMask) >>> 0;
      const count = u32[(pool + REF_COUNT) >>> 2];
      const off = p - pool - this.poolOverhead;
      if (off < 0) badPointer(what, shown, 'pointer is inside a pool header, not a block');
      if (count === 0) this.emptyPoolPointer(p, pool, slot - 1, what, shown);
      const size = (u32[(pool + SZIDX) >>> 2] + 1) << this.alignShift;
      if (off % size !== 0) {
        badPointer(
          what,
          shown,
          `pointer is not at the start of a block (blocks of ${size} bytes; ${off % size} bytes in)`,
        );
      }
      if (off >= u32[(pool + NEXTOFFSET) >>> 2] - this.poolOverhead) {
        badPointer(what, shown, 'pointer is beyond the blocks handed out so far');
      }
      if (
        (u32[(p + this.markOffset) >>> 2] | 0) === this.markValue &&
        onFreeList(this, pool, p, g.poolSize)
      ) {
        badPointer(what, shown, 'block is already free (double free)', 'ERR_PYMALLOC_DOUBLE_FREE');
      }
      return size;
    }
    const notABlock = 'pointer is not the start of a block of this heap';
    if (p % g.pageSize !== 0) badPointer(what, shown, notABlock);
    const pg = p >>> this.pageBits;
    if (pg < this.dataStartPage) badPointer(what, shown, notABlock);
    const tag = u32[this.pagemapIdx + pg];
    // A LARGE tag is at both ends of its span: only the head (marked by allocSpan) starts the block.
    if ((tag & 7) === SPAN_LARGE && u32[this.linksIdx + 2 * pg + 1] === pg) return -(tag >>> 3);
    // A large block freed here, whatever its pages became since (cached, merged into a neighbour, given back),
    // as long as they have not been handed out again.
    if (isFreedHead(this, pg)) {
      badPointer(what, shown, 'large block is already free (double free)', 'ERR_PYMALLOC_DOUBLE_FREE');
    }
    return badPointer(what, shown, notABlock);
  }

  /**
   * p points into `pool`, which holds no live block, in the arena of index `arena`: a double free if p is where
   * a block of the pool's last class was handed out, else a pointer that never was a block. A purged pool has
   * forgotten its class; every block it had was freed.
   */
  private emptyPoolPointer(p: number, pool: number, arena: number, what: string, shown: number): never {
    const u32 = this.u32;
    const ao = this.arenasBase + arena * SIZEOF_ARENA_OBJECT;
    const address = u32[(ao + OFFSETOF_ARENA_OBJECT_ADDRESS) >>> 2];
    if (pool >= u32[(ao + OFFSETOF_ARENA_OBJECT_POOL_ADDRESS) >>> 2]) {
      badPointer(what, shown, 'pointer is in a pool that was never used: not a block');
    }
    const double = 'ERR_PYMALLOC_DOUBLE_FREE';
    const noLive = 'pointer is in a pool that holds no live blocks (already freed?)';
    if (isPurged(this, address, (pool - address) / this.poolSize)) badPointer(what, shown, noLive, double);
    const sz = u32[(pool + SZIDX) >>> 2];
    const off = p - pool - this.poolOverhead;
    if (sz < this.geometry.poolClasses) {
      const size = (sz + 1) << this.alignShift;
      if (off % size === 0 && off < u32[(pool + NEXTOFFSET) >>> 2] - this.poolOverhead) {
        badPointer(what, shown, noLive, double);
      }
    }
    return badPointer(what, shown, 'pointer is not the start of a block of this heap');
  }

  /**
   * Resizes a block, keeping its contents up to the smaller size; returns the (possibly new) pointer.
   * As in CPython, a small block shrinks in place unless that would waste more than a quarter of it; a large
   * block stays large (it shrinks or grows in place when it can).
   */
  realloc(p: number, n: number): number {
    // A bigint would make the arithmetic below throw a TypeError without the documented code.
    if (typeof p !== 'number' || typeof n !== 'number') return this.reallocSlow(p, n);
    // Fast path: p is a live small block (the same checks as free's fast path) and n a valid size.
    const u32 = this.u32;
    if ((u32[this.arenamapIdx + (p >>> this.arenaBits)] | 0) !== 0 && p >>> 0 === p && n >>> 0 === n) {
      const pool = (p & this.poolMask) >>> 0;
      const off = p & this.poolOffsetMask;
      const blk = off - this.poolOverhead;
      // In free's order: szidx means something only once count != 0 and p is past the header.
      if (u32[(pool + REF_COUNT) >>> 2] !== 0 && blk >= 0 && off < u32[(pool + NEXTOFFSET) >>> 2]) {
        const sz = u32[(pool + SZIDX) >>> 2];
        const magic = u32[(pool + POOL_MAGIC) >>> 2];
        if (
          Math.imul(blk, magic) >>> 0 < magic &&
          (u32[(p + this.markOffset) >>> 2] | 0) !== this.markValue
        ) {
          const size = (sz + 1) << this.alignShift;
          // CPython's rule: shrink in place unless that would waste more than a quarter of the block.
          if (n <= size && 4 * n > 3 * size) return p;
          const q = this.malloc(n);
          // Whole 8-byte units: both blocks are 8-aligned, q's holds n rounded up to the alignment (8 at least)
          // and p's holds size bytes. Optimized code copies BigUint64Array elements as raw 64-bit values: about
          // 0.7 ns a unit, against 1 ns a 4-byte word for a Uint32Array loop and 20-40 ns for copyWithin.
          const from = p >>> 3;
          const to = q >>> 3;
          const units = (Math.min(n, size) + 7) >>> 3;
          const u64 = this.u64;
          if (units > 48) u64.copyWithin(to, from, from + units);
          else for (let i = 0; i < units; i++) u64[to + i] = u64[from + i];
          this.releaseSmall(p, pool, u32[(pool + REF_COUNT) >>> 2]);
          return q;
        }
      }
    }
    return this.reallocSlow(p, n);
  }

  /** @internal Everything realloc's fast path does not take: large blocks, bad input, a destroyed heap. */
  protected reallocSlow(p: number, n: number): number {
    this.checkLive('realloc');
    checkSize(n, 'size', 'realloc');
    if (p === 0) return this.malloc(n);
    const found = this.locate(p, 'realloc');
    if (found > 0) {
      let keep = found;
      if (n <= keep) {
        if (4 * n > 3 * keep) return p;
        keep = n;
      }
      const q = this.malloc(n);
      this.u8.copyWithin(q, p, p + keep);
      this.free(p);
      return q;
    }
    const page = p >>> this.pageBits;
    const pageSize = this.geometry.pageSize;
    const pages = Math.max(1, Math.ceil(n / pageSize));
    if (resizeLargeSpan(this, page, -found, pages)) {
      this.u32[this.linksIdx + 2 * page] = Math.max(n, 1);
      return p;
    }
    // It moves (it grows: a shrink is always in place). Every byte usableSize(p) promised goes with it: the old
    // block's whole pages, all of which the new one holds.
    const q = this.mallocLarge(Math.max(n, 1));
    this.u8.copyWithin(q, p, p + Math.min(-found, pages) * pageSize);
    try {
      freeLargeSpan(this, page, -found);
    } catch (err) {
      // The OS refused the old pages: undo the move, so that nothing changed (p is still the block).
      try {
        freeLargeSpan(this, q >>> this.pageBits, pages);
      } catch {
        // Refused twice: q stays allocated (stats count it), p is still valid.
      }
      throw err;
    }
    return q;
  }

  /**
   * Allocates count * size bytes, all zero (reused blocks included). A large block on pages fresh from the OS is
   * not touched (they are zero already, as glibc's calloc knows of fresh mmap pages): calloc(512 MiB) costs no
   * RSS until it is written.
   */
  calloc(count: number, size: number): number {
    this.checkLive('calloc');
    const total = callocSize(count, size);
    const p = this.malloc(total);
    if (total > this.threshold && this.spanWasFree && this.zeroFresh(p, ((total - 1) >>> this.pageBits) + 1))
      return p;
    // The whole block, not just the request: usableSize promises the rest too, and a reused span or block may
    // hold an earlier block's bytes there.
    this.u8.fill(0, p, p + this.usableSize(p));
    return p;
  }

  /**
   * Makes sure the `pages` pages at p, a span just taken from free (decommitted) pages, read as zeros without
   * touching them: they were given back when freed, and MADV_DONTNEED again drops anything written to them since
   * (a write after free), at the cost of one system call and no page fault. False when the OS refuses.
   */
  private zeroFresh(p: number, pages: number): boolean {
    try {
      this.reservation.decommit(p, pages * this.geometry.pageSize, 'dontneed');
      return true;
    } catch {
      return false;
    }
  }

  /** Bytes usable at p: the block's class size, or a large block's whole pages. */
  usableSize(p: number): number {
    this.checkLive('usableSize');
    const found = this.locate(p, 'usableSize');
    return found > 0 ? found : -found * this.geometry.pageSize;
  }

  /** True once destroy() has run. */
  get isDestroyed(): boolean {
    return this.destroyed;
  }

  /**
   * @internal Throws ERR_PYMALLOC_DESTROYED, naming `what`, once destroy() has run, and ERR_PYMALLOC_BUFFER_DETACHED
   * once JavaScript has detached the heap's ArrayBuffer. Every slow path and every method that is not a fast path
   * calls it; a fast path on a detached buffer reads `undefined` and so falls through to its slow path.
   */
  protected checkLive(what: string): void {
    if (this.destroyed) {
      throw codedError(Error, 'ERR_PYMALLOC_DESTROYED', `pymalloc: ${what}: the heap has been destroyed`);
    }
    if (this.u8.length === 0) throw bufferDetachedError(what);
  }
}

/** The error for pointer p given to `what`: invalid, or (code) a double free. */
function badPointer(what: string, p: number, why: string, code = 'ERR_PYMALLOC_INVALID_POINTER'): never {
  throw codedError(Error, code, `pymalloc: ${what}(${hex(p)}): ${why}`);
}

/** calloc's byte count: count and size checked, and their product at most MAX_REQUEST. */
export function callocSize(count: unknown, size: unknown): number {
  checkSize(count, 'count', 'calloc');
  checkSize(size, 'size', 'calloc');
  const total = count * size;
  if (total > MAX_REQUEST) {
    throw codedError(
      RangeError,
      'ERR_OUT_OF_RANGE',
      `pymalloc: calloc(${count}, ${size}): ${total} bytes exceeds a 4 GiB heap`,
    );
  }
  return total;
}

/** A size or count (argument `name` of function `what`): a non-negative integer no larger than MAX_REQUEST. */
export function checkSize(n: unknown, name: string, what: string): asserts n is number {
  if (typeof n !== 'number') {
    throw codedError(
      TypeError,
      'ERR_INVALID_ARG_TYPE',
      `pymalloc: ${what}: ${name} must be a number, got ${describe(n)}`,
    );
  }
  if (!Number.isInteger(n) || n < 0 || n > MAX_REQUEST) {
    throw codedError(
      RangeError,
      'ERR_OUT_OF_RANGE',
      `pymalloc: ${what}: ${name} must be an integer from 0 to ${MAX_REQUEST}, got ${String(n)}`,
    );
  }
}

/** A pointer: an integer offset from 0 to 2^32 - 1. */
export function checkPointer(p: unknown, what: string): asserts p is number {
  if (typeof p !== 'number') {
    throw codedError(
      TypeError,
      'ERR_INVALID_ARG_TYPE',
      `pymalloc: ${what}: pointer must be a number, got ${describe(p)}`,
    );
  }
  if (!Number.isInteger(p) || p < 0 || p > MAX_REQUEST) {
    throw codedError(
      RangeError,
      'ERR_OUT_OF_RANGE',
      `pymalloc: ${what}: pointer must be an integer offset from 0 to ${MAX_REQUEST}, got ${String(p)}`,
    );
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'string') return `a string ('${v.length > 20 ? `${v.slice(0, 20)}…` : v}')`;
  if (typeof v === 'bigint') return `a bigint (${v}n)`;
  return typeof v === 'object' ? 'an object' : `${typeof v} (${String(v)})`;
}
