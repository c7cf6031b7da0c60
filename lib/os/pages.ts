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
 *
 * Shared reservations, for heaps shared by worker threads: `Reservation.createShared(size, alignment)` makes a
 * `'readwrite'` reservation whose `buffer` is a SharedArrayBuffer (`shared` is true). Send that buffer to another
 * thread (workerData, postMessage) and call `Reservation.attachShared(buffer)` there: a new Reservation over the
 * same region, whose methods work from that thread. `release()` from any thread's Reservation releases the region
 * for all of them: every method of every one of them throws ERR_RESERVATION_RELEASED from then on, and views of
 * the SharedArrayBuffer (which cannot be detached) read zeros. The range is unmapped once no thread holds it (its
 * buffer, a Reservation object or a thread binding). `bindThread` / `unbindThread` register what the thread's
 * teardown (worker exit, `worker.terminate()`) does to a lock word of the heap: see {@link Reservation.bindThread}.
 * These need the shared-heap addon, which is built for one Node.js version (ERR_PYMALLOC_NO_SHARED_ADDON without it).
 */
import { types } from 'node:util';
import {
  type HeapInspection,
  loadedSharedBinding,
  type NativeBinding,
  type NativeHandle,
  type NativeSharedReservation,
  nativeBinding,
  type SharedBinding,
  sharedBinding,
} from './native';

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

/**
 * The largest reservation (and alignment): one ArrayBuffer must cover it, and Node 20 allows 4 GiB; a typed array
 * has at most 2^32 elements, so one Uint8Array still covers a whole shared reservation's SharedArrayBuffer.
 */
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

/** size and alignment of `Reservation.create` / `createShared`, checked. */
function checkSizeAlignment(size: unknown, alignment: unknown, what: string): void {
  const n = checkPageMultiple(size, 'size', what);
  if (n === 0 || n > MAX_RESERVATION_SIZE) {
    throw outOfRange(
      `pymalloc: ${what}: size must be greater than 0 and at most ${MAX_RESERVATION_SIZE}, got ${n}`,
    );
  }
  const a = checkCount(alignment, 'alignment', what);
  if (a < pageSize() || a > MAX_RESERVATION_SIZE || 2 ** Math.round(Math.log2(a)) !== a) {
    throw outOfRange(
      `pymalloc: ${what}: alignment must be a power of two from the page size (${pageSize()}) to ${MAX_RESERVATION_SIZE}, got ${a}`,
    );
  }
}

/** A 32-bit word's byte offset inside a reservation of `size` bytes: argument `name` of `what`. */
function checkWordOffset(value: unknown, name: string, size: number, what: string): number {
  const n = checkCount(value, name, what);
  if (n % 4 !== 0)
    throw outOfRange(`pymalloc: ${what}: ${name} must be a multiple of 4 (a 32-bit word), got ${n}`);
  if (n + 4 > size) {
    throw outOfRange(
      `pymalloc: ${what}: ${name} + 4 must not exceed the reservation size (${size}), got ${n} + 4`,
    );
  }
  return n;
}

/** An error of the shared-heap addon, its message prefixed like this layer's own. */
function prefixed(err: unknown, what: string): unknown {
  const e = err as Error;
  if (typeof e?.message === 'string' && !e.message.startsWith('pymalloc: '))
    e.message = `pymalloc: ${what}: ${e.message}`;
  return err;
}

const EMPTY = new ArrayBuffer(0);
const EMPTY_SHARED = new SharedArrayBuffer(0);

/**
 * A reserved range of address space; in a `'none'` reservation, commit pages before touching them. `B` is the type
 * of its buffer: an ArrayBuffer (`Reservation.create`) or a SharedArrayBuffer (`createShared`, `attachShared`);
 * plain `Reservation` is either.
 */
export class Reservation<B extends ArrayBufferLike = ArrayBufferLike> {
  /** Bytes of address space, a multiple of the page size. */
  readonly size: number;
  /** The power of two the base address is a multiple of. */
  readonly alignment: number;
  /** The address of byte 0, for diagnostics and for C code that follows pointers; never needed in JS. */
  readonly base: bigint;
  /** What the pages allow before they are committed. */
  readonly access: ReservationAccess;
  /** True for a shared reservation (`createShared`, `attachShared`): `buffer` is a SharedArrayBuffer. */
  readonly shared: boolean;
  readonly #handle: NativeHandle;
  /** The addon that made the handle: the main one, or the shared-heap one (its handles are only valid there). */
  readonly #binding: NativeBinding;
  readonly #sharedBinding: SharedBinding | undefined;
  #buffer: B;
  #released = false;

  private constructor(
    size: number,
    alignment: number,
    access: ReservationAccess,
    handle: NativeHandle,
    buffer: B,
    base: bigint,
    binding: NativeBinding,
    shared: SharedBinding | undefined,
  ) {
    this.size = size;
    this.alignment = alignment;
    this.access = access;
    this.shared = shared !== undefined;
    this.#handle = handle;
    this.#binding = binding;
    this.#sharedBinding = shared;
    this.#buffer = buffer;
    this.base = base;
  }

  /**
   * True for an object made by `Reservation.create`, `createShared` or `attachShared` (and not a look-alike or an
   * object inheriting from one).
   */
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
  ): Reservation<ArrayBuffer> {
    const what = 'Reservation.create';
    checkSizeAlignment(size, alignment, what);
    if (access !== 'readwrite' && access !== 'none') {
      throw withCode(
        new TypeError(`pymalloc: ${what}: access must be 'readwrite' or 'none', got ${describe(access)}`),
        typeof access === 'string' ? 'ERR_INVALID_ARG_VALUE' : 'ERR_INVALID_ARG_TYPE',
      );
    }
    const binding = nativeBinding();
    const { handle, buffer, base } = binding.reserve(size, alignment, access);
    // A transfer (postMessage or structuredClone with the buffer in the transfer list) cannot move the pages to
    // another ArrayBuffer: Node.js marks every external ArrayBuffer with a finalizer untransferable itself (the
    // transfer copies in Node.js 20 and throws a DataCloneError from 22 on). It is not marked again here:
    // worker_threads.markAsUntransferable() also sets a V8 detach key from Node.js 24 on, and then Node's own
    // teardown of the buffer (at every exit) and napi_detach_arraybuffer (release) abort the process.
    return new Reservation<ArrayBuffer>(size, alignment, access, handle, buffer, base, binding, undefined);
  }

  /**
   * Reserves `size` bytes aligned to `alignment` for a heap shared by threads: like `create(size, alignment,
   * 'readwrite')` (readable and writable from the start, MAP_NORESERVE), but `buffer` is a SharedArrayBuffer over
   * the whole range, which other threads attach with {@link Reservation.attachShared}. Loads the shared-heap addon
   * (ERR_PYMALLOC_NO_SHARED_ADDON where it is not built for this Node.js).
   * @param size a multiple of the page size, at most 4 GiB
   * @param alignment a power of two from the page size to 4 GiB
   * @defaultValue alignment: the page size
   */
  static createShared(size: number, alignment: number = pageSize()): Reservation<SharedArrayBuffer> {
    const what = 'Reservation.createShared';
    checkSizeAlignment(size, alignment, what);
    const binding = sharedBinding();
    return Reservation.ofShared(binding, binding.reserveShared(size, alignment));
  }

  /** The Reservation object over a shared reservation the shared addon handed out (made or attached). */
  private static ofShared(
    binding: SharedBinding,
    r: NativeSharedReservation,
  ): Reservation<SharedArrayBuffer> {
    return new Reservation<SharedArrayBuffer>(
      r.size,
      r.alignment,
      'readwrite',
      r.handle,
      r.buffer,
      r.base,
      binding,
      binding,
    );
  }

  /**
   * A Reservation, in the calling thread, over the shared reservation whose `buffer` this is (made by
   * `createShared` in any thread of this process, and sent here by workerData or postMessage): same base, size and
   * alignment, and `buffer` is this very SharedArrayBuffer. The region is found from the buffer's own memory.
   * Throws TypeError ERR_INVALID_ARG_TYPE for anything but a SharedArrayBuffer, Error ERR_INVALID_ARG_VALUE for one
   * that is not a shared reservation's, ERR_RESERVATION_RELEASED once that was released.
   */
  static attachShared(buffer: SharedArrayBuffer): Reservation<SharedArrayBuffer> {
    const what = 'Reservation.attachShared';
    if (!types.isSharedArrayBuffer(buffer)) {
      const got = types.isArrayBuffer(buffer) ? 'an ArrayBuffer' : describe(buffer);
      throw withCode(
        new TypeError(
          `pymalloc: ${what}: buffer must be the SharedArrayBuffer of a shared reservation (Reservation.createShared), got ${got}`,
        ),
        'ERR_INVALID_ARG_TYPE',
      );
    }
    const binding = sharedBinding();
    let attached: ReturnType<SharedBinding['attachShared']>;
    try {
      attached = binding.attachShared(buffer);
    } catch (err) {
      throw prefixed(err, what);
    }
    // Its buffer is the very one passed in (the addon returns it), so that views and Atomics see one object.
    return Reservation.ofShared(binding, { ...attached, buffer });
  }

  /**
   * Covers the whole reservation; an empty ArrayBuffer (SharedArrayBuffer, for a shared one) once released, by this
   * Reservation or, for a shared one, any other of its region, in any thread.
   */
  get buffer(): B {
    this.#noticeRelease();
    return this.#buffer;
  }

  /** True once `release()` has run (for a shared reservation: on any Reservation of its region, in any thread). */
  get released(): boolean {
    this.#noticeRelease();
    return this.#released;
  }

  /**
   * Makes [offset, offset + length) readable and writable; the OS supplies zero pages on first touch. In a
   * `'readwrite'` reservation it already is, and this only checks the range.
   */
  commit(offset: number, length: number): void {
    Reservation.#checkRange(this, offset, length, 'reservation.commit');
    this.#binding.commit(this.#handle, offset, length);
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
    Reservation.#checkRange(this, offset, length, what);
    if (typeof mode !== 'string') throw invalidType(what, 'mode', "'unmap' or 'dontneed'", mode);
    if (mode !== 'unmap' && mode !== 'dontneed') {
      throw withCode(
        new TypeError(`pymalloc: ${what}: mode must be 'unmap' or 'dontneed', got '${mode}'`),
        'ERR_INVALID_ARG_VALUE',
      );
    }
    if (mode === 'unmap' && this.shared) {
      throw withCode(
        new TypeError(
          `pymalloc: ${what}: mode 'unmap' is refused for a shared reservation (its pages would fault in every thread's views); use 'dontneed'`,
        ),
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
    return this.#binding.decommit(this.#handle, offset, length, mode);
  }

  /**
   * Which pages can be read now without a fault: all of a `'readwrite'` reservation, the committed ones (by the
   * shim's own record) of a `'none'` one. For walks of memory whose contents cannot be trusted (heap.check()).
   */
  readablePages(): ReadablePages {
    Reservation.#checkLive(this, 'reservation.readablePages');
    const size = this.size;
    const inside = (offset: number, length: number) =>
      Number.isSafeInteger(offset) &&
      Number.isSafeInteger(length) &&
      offset >= 0 &&
      length > 0 &&
      offset + length <= size;
    const map = this.#binding.committedPages(this.#handle);
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
    Reservation.#checkRange(this, offset, length, what);
    if (typeof enable !== 'boolean') throw invalidType(what, 'enable', 'a boolean', enable);
    return this.#binding.adviseHugePages(this.#handle, offset, length, enable);
  }

  /** How many pages of the range are in RAM now (mincore); the whole reservation by default. */
  residentPages(offset = 0, length: number = this.size - offset): number {
    Reservation.#checkRange(this, offset, length, 'reservation.residentPages');
    return this.#binding.residentPages(this.#handle, offset, length);
  }

  /** `residentPages(offset, length)` in bytes. */
  residentBytes(offset = 0, length: number = this.size - offset): number {
    Reservation.#checkRange(this, offset, length, 'reservation.residentBytes');
    return this.#binding.residentPages(this.#handle, offset, length) * pageSize();
  }

  /**
   * Walks the pymalloc heap that lives in this reservation from C, through the generated header, and returns
   * its per-class counts (see native/inspector.cc). Throws ERR_PYMALLOC_CORRUPT for a heap it cannot walk.
   */
  inspectHeap(): HeapInspection {
    Reservation.#checkLive(this, 'reservation.inspectHeap');
    try {
      return this.#binding.inspectHeap(this.#handle);
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
   * A shared reservation is released for every thread: see the top of this module.
   */
  release(): void {
    const what = 'reservation.release';
    Reservation.#checkLive(this, what);
    try {
      this.#binding.release(this.#handle);
    } catch (err) {
      throw prefixed(err, what); // a shared one that another thread released meanwhile
    }
    this.#markReleased();
  }

  /**
   * Binds the calling thread to this shared reservation for crash safety: when this thread's environment is torn
   * down while bound (the worker exits or is terminated, or the main thread ends normally; `process.exit()` runs no
   * hook), and the reservation is not released, the addon does, with atomics on the 32-bit words at these byte
   * offsets of the reservation:
   * 1. if the word at `lockOffset` equals `tag`: sets bit 0 (INTERRUPTED = 1) of the word at `flagsOffset`, then
   *    stores 0 into the lock word (compare-and-swap from `tag`);
   * 2. if the word at `slotOffset` is 1 (ATTACHED): stores 2 (ABANDONED) (compare-and-swap).
   * It cannot wake an `Atomics.wait` on those words: waiters must wait with a timeout. One binding per Reservation
   * object (so per thread): binding again replaces the offsets and tag. A binding keeps the range mapped until it
   * is removed or has run.
   * @param tag a positive 32-bit integer, this thread's value in the lock word while it holds the lock
   */
  bindThread(lockOffset: number, flagsOffset: number, slotOffset: number, tag: number): void {
    const what = 'reservation.bindThread';
    Reservation.#checkLive(this, what);
    const shared = this.#requireShared(what);
    const lock = checkWordOffset(lockOffset, 'lockOffset', this.size, what);
    const flags = checkWordOffset(flagsOffset, 'flagsOffset', this.size, what);
    const slot = checkWordOffset(slotOffset, 'slotOffset', this.size, what);
    if (typeof tag !== 'number') throw invalidType(what, 'tag', 'a number', tag);
    if (!Number.isInteger(tag) || tag < 1 || tag > 0x7fffffff) {
      throw outOfRange(`pymalloc: ${what}: tag must be an integer from 1 to 2147483647, got ${tag}`);
    }
    try {
      shared.bindThread(this.#handle, lock, flags, slot, tag);
    } catch (err) {
      throw prefixed(err, what);
    }
  }

  /**
   * Removes this thread's binding ({@link Reservation.bindThread}); returns false when there was none. Allowed
   * after release (it only lets go).
   */
  unbindThread(): boolean {
    const what = 'reservation.unbindThread';
    if (!Reservation.isReservation(this)) throw invalidType(what, 'the reservation', 'a Reservation', this);
    return this.#requireShared(what).unbindThread(this.#handle);
  }

  /** Released through another Reservation of a shared region (another thread's): this one lets go too. */
  #noticeRelease(): void {
    if (!this.#released && this.#sharedBinding?.isReleased(this.#handle)) this.#markReleased();
  }

  #markReleased(): void {
    this.#released = true;
    this.#buffer = (this.shared ? EMPTY_SHARED : EMPTY) as B;
  }

  #requireShared(what: string): SharedBinding {
    if (this.#sharedBinding === undefined) {
      throw withCode(
        new TypeError(
          `pymalloc: ${what}: needs a shared reservation (Reservation.createShared or attachShared); this one is not`,
        ),
        'ERR_INVALID_THIS',
      );
    }
    return this.#sharedBinding;
  }

  /** Throws unless `r` is a live reservation; messages name `what`, the function called. */
  static #checkLive(r: Reservation, what: string): void {
    // A forged object (Object.create(Reservation.prototype), a copy) has no handle: a coded error, not V8's own
    // (a static method, so that calling it is no brand check of `r`).
    if (!Reservation.isReservation(r)) throw invalidType(what, 'the reservation', 'a Reservation', r);
    r.#noticeRelease();
    if (r.#released) {
      throw withCode(
        new Error(`pymalloc: ${what}: the reservation was released`),
        'ERR_RESERVATION_RELEASED',
      );
    }
  }

  static #checkRange(r: Reservation, offset: unknown, length: unknown, what: string): void {
    Reservation.#checkLive(r, what);
    const start = checkPageMultiple(offset, 'offset', what);
    const n = checkPageMultiple(length, 'length', what);
    if (n === 0) throw outOfRange(`pymalloc: ${what}: length must be greater than 0, got 0`);
    if (start + n > r.size) {
      throw outOfRange(
        `pymalloc: ${what}: offset + length must not exceed the reservation size (${r.size}), got ${start} + ${n}`,
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
  /**
   * How many reservations of the process are still mapped: the main addon's, plus the shared-heap addon's where it
   * is built (it is loaded for that). Fault injection and the map budget above are the main addon's only.
   */
  liveReservations(): number {
    let shared = loadedSharedBinding();
    if (shared === undefined) {
      try {
        shared = sharedBinding();
      } catch (err) {
        if ((err as { code?: unknown }).code !== 'ERR_PYMALLOC_NO_SHARED_ADDON') throw err;
      }
    }
    const main = nativeBinding();
    // Where the main addon makes shared reservations itself, it counts them already.
    return (
      main._liveReservations() + (shared === undefined || shared === main ? 0 : shared._liveReservations())
    );
  },
};
