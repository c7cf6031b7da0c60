/**
 * Reservations of address space and their pages: the checked TypeScript API over the native shim.
 *
 * A `Reservation` owns [base, base + size): size is a page multiple in (0, 4 GiB], base is aligned to
 * `alignment`, and `buffer` (one external ArrayBuffer) covers all of it. Nothing is committed at first;
 * touching a page that is not committed faults and kills the process, so callers commit before use.
 * Every range given to a method is page-aligned, non-empty and inside the reservation; the checks here
 * throw TypeError / RangeError with a Node-style `code` before anything reaches the shim.
 * After `release()` the buffer is detached (every view has length 0) and every method throws
 * ERR_RESERVATION_RELEASED.
 */
import { type HeapInspection, type NativeHandle, nativeBinding } from './native';

/**
 * How `decommit` gives pages back:
 * - `'unmap'` (the default) maps fresh PROT_NONE pages over the range: RSS and the commit charge go at once,
 *   and a stale access faults, which catches use-after-free of whole pages.
 * - `'dontneed'` is madvise(MADV_DONTNEED): RSS goes at once, the range stays readable and writable and reads
 *   as zeros (no fault, no later commit needed), but under strict overcommit it still counts as committed.
 */
export type DecommitMode = 'unmap' | 'dontneed';

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

function invalidType(name: string, expected: string, value: unknown): OsError {
  return withCode(
    new TypeError(`${name} must be ${expected}, got ${describe(value)}`),
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

/** A non-negative safe integer. */
function checkCount(value: unknown, name: string): number {
  if (typeof value !== 'number') throw invalidType(name, 'a number', value);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw outOfRange(`${name} must be a non-negative integer, got ${value}`);
  }
  return value;
}

function checkPageMultiple(value: unknown, name: string): number {
  const n = checkCount(value, name);
  const page = pageSize();
  if (n % page !== 0) throw outOfRange(`${name} must be a multiple of the page size (${page}), got ${n}`);
  return n;
}

/** A reserved range of address space; commit pages before touching them. */
export class Reservation {
  /** Bytes of address space, a multiple of the page size. */
  readonly size: number;
  /** The power of two the base address is a multiple of. */
  readonly alignment: number;
  /** The address of byte 0, for diagnostics and for C code that follows pointers; never needed in JS. */
  readonly base: bigint;
  /** Covers the whole reservation; detached (byteLength 0) once released. */
  readonly buffer: ArrayBuffer;
  readonly #handle: NativeHandle;
  #released = false;

  private constructor(
    size: number,
    alignment: number,
    handle: NativeHandle,
    buffer: ArrayBuffer,
    base: bigint,
  ) {
    this.size = size;
    this.alignment = alignment;
    this.#handle = handle;
    this.buffer = buffer;
    this.base = base;
  }

  /**
   * Reserves `size` bytes aligned to `alignment`, nothing committed.
   * @param size a multiple of the page size, at most 4 GiB
   * @param alignment a power of two from the page size to 4 GiB
   * @defaultValue alignment: the page size
   */
  static create(size: number, alignment: number = pageSize()): Reservation {
    checkPageMultiple(size, 'size');
    if (size === 0 || size > MAX_RESERVATION_SIZE) {
      throw outOfRange(`size must be greater than 0 and at most ${MAX_RESERVATION_SIZE}, got ${size}`);
    }
    checkCount(alignment, 'alignment');
    if (
      alignment < pageSize() ||
      alignment > MAX_RESERVATION_SIZE ||
      2 ** Math.round(Math.log2(alignment)) !== alignment
    ) {
      throw outOfRange(
        `alignment must be a power of two from the page size (${pageSize()}) to ${MAX_RESERVATION_SIZE}, got ${alignment}`,
      );
    }
    const { handle, buffer, base } = nativeBinding().reserve(size, alignment);
    return new Reservation(size, alignment, handle, buffer, base);
  }

  /** True once `release()` has run. */
  get released(): boolean {
    return this.#released;
  }

  /** Makes [offset, offset + length) readable and writable; the OS supplies zero pages on first touch. */
  commit(offset: number, length: number): void {
    this.#checkRange(offset, length);
    nativeBinding().commit(this.#handle, offset, length);
  }

  /** Returns the pages of [offset, offset + length) to the OS at once; see {@link DecommitMode}. */
  decommit(offset: number, length: number, mode: DecommitMode = 'unmap'): void {
    this.#checkRange(offset, length);
    if (typeof mode !== 'string') throw invalidType('mode', "'unmap' or 'dontneed'", mode);
    if (mode !== 'unmap' && mode !== 'dontneed') {
      throw withCode(
        new TypeError(`mode must be 'unmap' or 'dontneed', got '${mode}'`),
        'ERR_INVALID_ARG_VALUE',
      );
    }
    nativeBinding().decommit(this.#handle, offset, length, mode);
  }

  /**
   * Advises the kernel to back [offset, offset + length) with transparent huge pages (`enable`), or not to
   * (every reservation starts that way). Returns false, changing nothing, where the kernel has no transparent
   * huge pages. A huge page is only used for a huge-page-aligned stretch of the range that is committed whole.
   */
  adviseHugePages(offset: number, length: number, enable: boolean): boolean {
    this.#checkRange(offset, length);
    if (typeof enable !== 'boolean') throw invalidType('enable', 'a boolean', enable);
    return nativeBinding().adviseHugePages(this.#handle, offset, length, enable);
  }

  /** How many pages of the range are in RAM now (mincore); the whole reservation by default. */
  residentPages(offset = 0, length: number = this.size - offset): number {
    this.#checkRange(offset, length);
    return nativeBinding().residentPages(this.#handle, offset, length);
  }

  /** `residentPages(offset, length)` in bytes. */
  residentBytes(offset = 0, length: number = this.size - offset): number {
    return this.residentPages(offset, length) * pageSize();
  }

  /**
   * Walks the pymalloc heap that lives in this reservation from C, through the generated header, and returns
   * its per-class counts (see native/inspector.cc). Throws ERR_PYMALLOC_CORRUPT for a heap it cannot walk.
   */
  inspectHeap(): HeapInspection {
    this.#checkLive();
    return nativeBinding().inspectHeap(this.#handle);
  }

  /** Detaches `buffer` (every view then has length 0) and unmaps the range. A second call throws. */
  release(): void {
    this.#checkLive();
    nativeBinding().release(this.#handle);
    this.#released = true;
  }

  #checkLive(): void {
    if (this.#released) {
      throw withCode(new Error('the reservation was released'), 'ERR_RESERVATION_RELEASED');
    }
  }

  #checkRange(offset: unknown, length: unknown): void {
    this.#checkLive();
    const start = checkPageMultiple(offset, 'offset');
    const n = checkPageMultiple(length, 'length');
    if (n === 0) throw outOfRange('length must be greater than 0, got 0');
    if (start + n > this.size) {
      throw outOfRange(
        `offset + length must not exceed the reservation size (${this.size}), got ${start} + ${n}`,
      );
    }
  }
}

/** For tests only: fault injection and introspection of the shim (process-wide, all workers). */
export const __testing = {
  /** Makes the nth following call of `op` fail with ENOMEM; 0 clears the switch. */
  setFault(op: 'commit' | 'reserve', nth: number): void {
    nativeBinding()._setFault(op, nth);
  },
  /** How many reservations of the process are still mapped. */
  liveReservations(): number {
    return nativeBinding()._liveReservations();
  },
};
