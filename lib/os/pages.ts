/**
 * Reservations of address space and their pages: the checked TypeScript API over the native shim.
 *
 * A `Reservation` owns [base, base + size): size is a page multiple in (0, 4 GiB], base is aligned to
 * `alignment`, and `buffer` (one external ArrayBuffer) covers all of it. Its `access` is chosen when it is made:
 * - `'readwrite'` (the default): every byte can be read and written at once and never faults; a page costs RSS
 *   (and, with the kernel's default overcommit, commit charge) only once it is written, and reads as zeros before
 *   and after it is decommitted. `commit` has nothing to do.
 * - `'none'`: nothing is accessible until `commit`ted; touching any other page faults and kills the process.
 * Every range given to a method is page-aligned, non-empty and inside the reservation; the checks here
 * throw TypeError / RangeError with a Node-style `code` before anything reaches the shim.
 * After `release()` the pages are given back and every method throws ERR_RESERVATION_RELEASED. A `'readwrite'`
 * buffer is not detached: its views read zeros (the first detached ArrayBuffer of a process would make V8 check
 * every typed-array access from then on); a `'none'` one, which has PROT_NONE parts, is detached (every view has
 * length 0). The address range stays mapped, and owned by this reservation, until nothing can reach it (native
 * work or a view still holding it writes into it harmlessly), then the shim unmaps it.
 */
import { markAsUntransferable } from 'node:worker_threads';
import { type HeapInspection, type NativeHandle, nativeBinding } from './native';

/**
 * How `decommit` gives pages back:
 * - `'dontneed'` is madvise(MADV_DONTNEED): RSS goes at once, the range stays readable and writable and reads
 *   as zeros (no fault, no later commit needed), but under strict overcommit it still counts as committed.
 * - `'unmap'` (a `'none'` reservation's default) maps fresh PROT_NONE pages over the range: RSS and the commit
 *   charge go at once, and a stale access faults. Each such hole splits a mapping; past pymalloc's share of
 *   `vm.max_map_count` (half of it, for all reservations together) it degrades to `'dontneed'` for that range.
 */
export type DecommitMode = 'unmap' | 'dontneed';

/** What a reservation's pages allow before they are committed: see {@link Reservation}. */
export type ReservationAccess = 'readwrite' | 'none';

/** Which pages of a reservation can be read without a fault, as of when it was asked. */
export interface ReadablePages {
  /** True when every byte of [offset, offset + length) is inside the reservation and can be read. */
  readable(offset: number, length: number): boolean;
}

/** The largest reservation (and alignment): one ArrayBuffer must cover it, and Node 20 allows 4 GiB. */
export const MAX_RESERVATION_SIZE = 2 ** 32;

/** An error thrown by this layer or the shim: `code` is a Node-style code or, for OS failures, the errno name. */
export interface OsError extends Error {
  code: string;
  errno?: number;
  syscall?: string;
}

function withCode<E extends Error>(error: E, code: string): E & OsError {
  return Object.assign(error, { code });
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  if (typeof value === 'string') return `string '${value}'`;
  return typeof value;
}

function invalidType(what: string, name: string, expected: string, value: unknown): OsError {
  return withCode(
    new TypeError(`pymalloc: ${what}: ${name} must be ${expected}, got ${describe(value)}`),
    'ERR_INVALID_ARG_TYPE',
  );
}

function outOfRange(message: string): OsError {
  return withCode(new RangeError(message), 'ERR_OUT_OF_RANGE');
}

let cachedPageSize = 0;

/** The OS page size in bytes (sysconf(_SC_PAGESIZE)). */
export function pageSize(): number {
  if (cachedPageSize === 0) cachedPageSize = nativeBinding().pageSize();
  return cachedPageSize;
}

/** A non-negative safe integer: argument `name` of function `what`. */
function checkCount(value: unknown, name: string, what: string): number {
  if (typeof value !== 'number') throw invalidType(what, name, 'a number', value);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw outOfRange(`pymalloc: ${what}: ${name} must be a non-negative integer, got ${value}`);
  }
  return value;
}

function checkPageMultiple(value: unknown, name: string, what: string): number {
  const n = checkCount(value, name, what);
  const page = pageSize();
  if (n % page !== 0) {
    throw outOfRange(`pymalloc: ${what}: ${name} must be a multiple of the page size (${page}), got ${n}`);
  }
  return n;
}

const EMPTY = new ArrayBuffer(0);

/** A reserved range of address space; in a `'none'` reservation, commit pages before touching them. */
export class Reservation {
  /** Bytes of address space, a multiple of the page size. */
  readonly size: number;
  /** The power of two the base address is a multiple of. */
  readonly alignment: number;
  /** The address of byte 0, for diagnostics and for C code that follows pointers; never needed in JS. */
  readonly base: bigint;
  /** What the pages allow before they are committed. */
  readonly access: ReservationAccess;
  readonly #handle: NativeHandle;
  #buffer: ArrayBuffer;
  #released = false;

  private constructor(
    size: number,
    alignment: number,
    access: ReservationAccess,
    handle: NativeHandle,
    buffer: ArrayBuffer,
    base: bigint,
  ) {
    this.size = size;
    this.alignment = alignment;
    this.access = access;
    this.#handle = handle;
    this.#buffer = buffer;
    this.base = base;
  }

  /** True for an object made by `Reservation.create` (and not a look-alike or an object inheriting from one). */
  static isReservation(value: unknown): value is Reservation {
    return typeof value === 'object' && value !== null && #handle in value;
  }

  /**
   * Reserves `size` bytes aligned to `alignment`.
   * @param size a multiple of the page size, at most 4 GiB
   * @param alignment a power of two from the page size to 4 GiB
   * @param access what the pages allow before they are committed (see {@link Reservation})
   * @defaultValue alignment: the page size; access: 'readwrite'
   */
  static create(
    size: number,
    alignment: number = pageSize(),
    access: ReservationAccess = 'readwrite',
  ): Reservation {
    const what = 'Reservation.create';
    checkPageMultiple(size, 'size', what);
    if (size === 0 || size > MAX_RESERVATION_SIZE) {
      throw outOfRange(
        `pymalloc: ${what}: size must be greater than 0 and at most ${MAX_RESERVATION_SIZE}, got ${size}`,
      );
    }
    checkCount(alignment, 'alignment', what);
    if (
      alignment < pageSize() ||
      alignment > MAX_RESERVATION_SIZE ||
      2 ** Math.round(Math.log2(alignment)) !== alignment
    ) {
      throw outOfRange(
        `pymalloc: ${what}: alignment must be a power of two from the page size (${pageSize()}) to ${MAX_RESERVATION_SIZE}, got ${alignment}`,
      );
    }
    if (access !== 'readwrite' && access !== 'none') {
      throw withCode(
        new TypeError(`pymalloc: ${what}: access must be 'readwrite' or 'none', got ${describe(access)}`),
        typeof access === 'string' ? 'ERR_INVALID_ARG_VALUE' : 'ERR_INVALID_ARG_TYPE',
      );
    }
    const { handle, buffer, base } = nativeBinding().reserve(size, alignment, access);
    // A transfer (postMessage or structuredClone with a transfer list) would move the pages to another
    // ArrayBuffer and leave this reservation's views empty: it copies instead.
    markAsUntransferable(buffer);
    return new Reservation(size, alignment, access, handle, buffer, base);
  }

  /** Covers the whole reservation; an empty ArrayBuffer once released. */
  get buffer(): ArrayBuffer {
    return this.#buffer;
  }

  /** True once `release()` has run. */
  get released(): boolean {
    return this.#released;
  }

  /**
   * Makes [offset, offset + length) readable and writable; the OS supplies zero pages on first touch. In a
   * `'readwrite'` reservation it already is, and this only checks the range.
   */
  commit(offset: number, length: number): void {
    this.#checkRange(offset, length, 'reservation.commit');
    nativeBinding().commit(this.#handle, offset, length);
  }

  /**
   * Returns the pages of [offset, offset + length) to the OS at once; see {@link DecommitMode}. `'unmap'` needs
   * a `'none'` reservation. Returns the mode applied: `'unmap'` degrades to `'dontneed'` at pymalloc's share of
   * `vm.max_map_count`. A failed call (code ENOMEM, …) changes nothing.
   * @defaultValue mode: 'dontneed' for a 'readwrite' reservation, 'unmap' for a 'none' one
   */
  decommit(
    offset: number,
    length: number,
    mode: DecommitMode = this.access === 'none' ? 'unmap' : 'dontneed',
  ): DecommitMode {
    const what = 'reservation.decommit';
    this.#checkRange(offset, length, what);
    if (typeof mode !== 'string') throw invalidType(what, 'mode', "'unmap' or 'dontneed'", mode);
    if (mode !== 'unmap' && mode !== 'dontneed') {
      throw withCode(
        new TypeError(`pymalloc: ${what}: mode must be 'unmap' or 'dontneed', got '${mode}'`),
        'ERR_INVALID_ARG_VALUE',
      );
    }
    if (mode === 'unmap' && this.access !== 'none') {
      throw withCode(
        new TypeError(
          `pymalloc: ${what}: mode 'unmap' needs a reservation made with access 'none'; this one is 'readwrite'`,
        ),
        'ERR_INVALID_ARG_VALUE',
      );
    }
    return nativeBinding().decommit(this.#handle, offset, length, mode);
  }

  /**
   * Which pages can be read now without a fault: all of a `'readwrite'` reservation, the committed ones (by the
   * shim's own record) of a `'none'` one. For walks of memory whose contents cannot be trusted (heap.check()).
   */
  readablePages(): ReadablePages {
    this.#checkLive('reservation.readablePages');
    const size = this.size;
    const inside = (offset: number, length: number) =>
      Number.isSafeInteger(offset) &&
      Number.isSafeInteger(length) &&
      offset >= 0 &&
      length > 0 &&
      offset + length <= size;
    const map = nativeBinding().committedPages(this.#handle);
    if (map === null) return { readable: inside };
    const bits = new Uint32Array(map);
    const shift = Math.log2(pageSize());
    return {
      readable(offset: number, length: number): boolean {
        if (!inside(offset, length)) return false;
        for (
          let p = Math.floor(offset / 2 ** shift), last = Math.floor((offset + length - 1) / 2 ** shift);
          p <= last;
          p++
        ) {
          if ((bits[p >>> 5] & (1 << (p & 31))) === 0) return false;
        }
        return true;
      },
    };
  }

  /**
   * Advises the kernel to back [offset, offset + length) with transparent huge pages (`enable`), or not to
   * (every reservation starts that way). Returns false, changing nothing, where the kernel has no transparent
   * huge pages. A huge page is only used for a huge-page-aligned stretch of the range that is committed whole.
   */
  adviseHugePages(offset: number, length: number, enable: boolean): boolean {
    const what = 'reservation.adviseHugePages';
    this.#checkRange(offset, length, what);
    if (typeof enable !== 'boolean') throw invalidType(what, 'enable', 'a boolean', enable);
    return nativeBinding().adviseHugePages(this.#handle, offset, length, enable);
  }

  /** How many pages of the range are in RAM now (mincore); the whole reservation by default. */
  residentPages(offset = 0, length: number = this.size - offset): number {
    this.#checkRange(offset, length, 'reservation.residentPages');
    return nativeBinding().residentPages(this.#handle, offset, length);
  }

  /** `residentPages(offset, length)` in bytes. */
  residentBytes(offset = 0, length: number = this.size - offset): number {
    this.#checkRange(offset, length, 'reservation.residentBytes');
    return nativeBinding().residentPages(this.#handle, offset, length) * pageSize();
  }

  /**
   * Walks the pymalloc heap that lives in this reservation from C, through the generated header, and returns
   * its per-class counts (see native/inspector.cc). Throws ERR_PYMALLOC_CORRUPT for a heap it cannot walk.
   */
  inspectHeap(): HeapInspection {
    this.#checkLive('reservation.inspectHeap');
    try {
      return nativeBinding().inspectHeap(this.#handle);
    } catch (err) {
      // The inspector's own message names the broken invariant; this names the function too.
      const e = err as Error;
      if (typeof e.message === 'string' && !e.message.startsWith('pymalloc: ')) {
        e.message = `pymalloc: reservation.inspectHeap: ${e.message.replace(/^inspectHeap: /, '')}`;
      }
      throw err;
    }
  }

  /**
   * Gives every page back to the OS; views of a `'readwrite'` reservation then read zeros, those of a `'none'`
   * one have length 0 (its buffer is detached); `buffer` is an empty ArrayBuffer from then on. The range stays
   * mapped until nothing can reach it (native work in flight, or a view, may still hold it). A second call throws.
   */
  release(): void {
    this.#checkLive('reservation.release');
    nativeBinding().release(this.#handle);
    this.#released = true;
    this.#buffer = EMPTY;
  }

  /** Throws unless this is a live reservation; messages name `what`, the function called. */
  #checkLive(what: string): void {
    // A forged object (Object.create(Reservation.prototype), a copy) has no handle: a coded error, not V8's own.
    if (!Reservation.isReservation(this)) throw invalidType(what, 'the reservation', 'a Reservation', this);
    if (this.#released) {
      throw withCode(
        new Error(`pymalloc: ${what}: the reservation was released`),
        'ERR_RESERVATION_RELEASED',
      );
    }
  }

  #checkRange(offset: unknown, length: unknown, what: string): void {
    this.#checkLive(what);
    const start = checkPageMultiple(offset, 'offset', what);
    const n = checkPageMultiple(length, 'length', what);
    if (n === 0) throw outOfRange(`pymalloc: ${what}: length must be greater than 0, got 0`);
    if (start + n > this.size) {
      throw outOfRange(
        `pymalloc: ${what}: offset + length must not exceed the reservation size (${this.size}), got ${start} + ${n}`,
      );
    }
  }
}

/** For tests only: fault injection and introspection of the shim (process-wide, all workers). */
export const __testing = {
  /** Makes the nth following call of `op` fail with ENOMEM; 0 clears the switch. */
  setFault(op: 'commit' | 'reserve' | 'decommit', nth: number): void {
    nativeBinding()._setFault(op, nth);
  },
  /** Calls of `op` left before the armed fault fires (0: none armed). */
  pendingFault(op: 'commit' | 'reserve' | 'decommit'): number {
    return nativeBinding()._pendingFault(op);
  },
  /**
   * Sets how many mappings beyond one per reservation the 'none' reservations may hold together before 'unmap'
   * degrades to 'dontneed' (0: the default, half of vm.max_map_count).
   */
  setMapBudget(n: number): void {
    nativeBinding()._setMapBudget(n);
  },
  /** How many mappings beyond one per reservation the 'none' reservations hold now. */
  mapCount(): number {
    return nativeBinding()._mapCount();
  },
  /** How many reservations of the process are still mapped. */
  liveReservations(): number {
    return nativeBinding()._liveReservations();
  },
};
