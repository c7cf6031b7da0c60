/**
 * The Heap: one 4 GiB-aligned reservation of virtual memory with CPython's small-object allocator in it.
 * This module owns the options and their defaults, the heap's construction (reserving, committing the metadata,
 * initializing `heap_state`), and the whole-heap operations: stats, debugStats, check, trim, destroy.
 * malloc/free/realloc live in alloc.ts; the debug hooks in debug.ts.
 */

import { type InspectOptionsStylized, types } from 'node:util';
import { Allocator, checkPointer } from './alloc';
import { initArenas, purgeFreePools, releaseFreeArenas } from './arena';
import { checkHeap, HEAP_MAGIC } from './check';
import { codedError, foldedConstants, POLICY_CODES, type ReturnPolicy } from './core';
import { installDebugHooks } from './debug';
import { cancelDelay, clearDeadline, MAX_PURGE_DELAY } from './delay';
import { fastPathClasses } from './generated/fastpaths';
import {
  heap_state_set_alignment,
  heap_state_set_alignment_shift,
  heap_state_set_arena_bits,
  heap_state_set_arena_size,
  heap_state_set_arena_slots,
  heap_state_set_arenamap,
  heap_state_set_data_start_page,
  heap_state_set_flags,
  heap_state_set_magic,
  heap_state_set_nb_classes,
  heap_state_set_page_bits,
  heap_state_set_page_size,
  heap_state_set_pagemap,
  heap_state_set_policy,
  heap_state_set_pool_bits,
  heap_state_set_pool_overhead,
  heap_state_set_pool_size,
  heap_state_set_pools_per_arena,
  heap_state_set_purge_threshold_pools,
  heap_state_set_purge_words,
  heap_state_set_purgemap,
  heap_state_set_small_threshold,
  heap_state_set_span_links,
  heap_state_set_version,
  OFFSETOF_HEAP_STATE_BASE,
  OFFSETOF_HEAP_STATE_RESERVATION_SIZE,
} from './generated/layout';
import {
  type Geometry,
  type GeometryOptions,
  MAX_RESERVE,
  metadataLayout,
  resolveGeometry,
} from './geometry';
import { type DecommitMode, type HeapInspection, pageSize, Reservation, transparentHugePages } from './os';
import { emptyUsedpools } from './pool';
import { flushSpanCache, initSpans, setSpanCacheLimit } from './span';
import { computeStats, formatDebugStats, type HeapStats } from './stats';

/** util.inspect's hook, without importing node:util into the allocator. */
const INSPECT: unique symbol = Symbol.for('nodejs.util.inspect.custom') as never;

export type { ReturnPolicy } from './core';
export type { ClassStats, HeapStats } from './stats';

/** Options of `new Heap(options)`. */
export interface HeapOptions extends GeometryOptions {
  /**
   * What happens to memory that becomes free:
   * 'purge' returns wholly free arenas at once, and the pages of empty pools inside live arenas once
   * `purgeThreshold` bytes of them accumulate (so one survivor cannot pin an arena's worth of RSS);
   * 'cpython' returns only wholly free arenas (CPython 2.5+, keeping one as a guard against thrashing);
   * 'never' keeps every arena (Python 2.4), for comparison.
   * @defaultValue 'purge'
   */
  policy?: ReturnPolicy;
  /**
   * How pages go back to the OS: 'dontneed' (madvise: they read as zeros afterwards, a stale read cannot crash
   * the process) or 'unmap' (a fresh PROT_NONE mapping: the commit charge goes too, a stale access faults).
   * @defaultValue 'dontneed'
   */
  decommit?: DecommitMode;
  /** Bytes of empty pools in live arenas that trigger a purge under the 'purge' policy. @defaultValue 4 MiB */
  purgeThreshold?: number;
  /**
   * Bytes of freed large blocks kept committed for reuse, at least: the cache may also hold up to twice the
   * pages of the live large blocks, and gives back, every 128 large frees, half of the pages it held unused
   * since the last time (down to this floor). @defaultValue 1 MiB
   */
  spanCache?: number;
  /**
   * Under the 'purge' policy: how long memory that becomes free (a wholly free arena, an empty pool, a freed
   * large span) stays committed for reuse. Whatever is still free this many milliseconds after the first of it
   * was freed goes back to the OS together, as `trim()` gives it back, with no call into the heap: a timer does
   * it (it never keeps the process alive nor the heap from being collected), or the next free after the deadline
   * if a synchronous job keeps the timer from running. 0 gives memory back the moment it is free (wholly free
   * arenas at once, empty pools once `purgeThreshold` bytes of them accumulate). The other policies never
   * return memory by themselves. See docs/architecture.md#the-delayed-return for how the default was chosen.
   * @defaultValue 250 under 'purge', else 0
   */
  purgeDelay?: number;
  /**
   * Backs each arena with transparent huge pages (madvise MADV_HUGEPAGE), as CPython's opt-in huge-page build
   * does: a 2 MiB arena then costs one page fault and one TLB entry instead of 512. The arena size must be a
   * multiple of the kernel's huge page size (preset 'cpython-hugepages' has 2 MiB arenas). Memory then goes back
   * to the OS a whole arena at a time: the 'purge' policy leaves the free pools of live arenas alone (returning
   * part of a huge page would make the kernel split it and keep the rest). Where the kernel has no transparent
   * huge pages, or they are set to 'never', arenas use normal pages (`heap.hugePages` is false).
   * @defaultValue false
   */
  hugePages?: boolean;
  /** CPython's debug hooks: guard bytes, fills, and checks on every call. @defaultValue process.env.PYMALLOC === 'debug' */
  debug?: boolean;
  /**
   * A heap that worker threads share: its memory is a SharedArrayBuffer (`heap.buffer`), `heap.handle` goes to
   * another thread in `workerData` or `postMessage`, and `Heap.attach(handle)` there returns that thread's Heap
   * over the same memory. Each thread allocates from pools of its own; any thread may free any block. Needs the
   * addon built for this Node version (docs/shared-heaps.md). Not with `debug` nor `decommit: 'unmap'`.
   * @defaultValue false
   */
  shared?: boolean;
}

/**
 * What `heap.handle` is: a plain object that `workerData` and `postMessage` carry to another thread, for
 * `Heap.attach(handle)` there. Its buffer is the heap's memory; its options, the ones the heap was made with.
 */
export interface SharedHeapHandle {
  readonly kind: 'pymalloc.SharedHeap';
  readonly version: 1;
  readonly buffer: SharedArrayBuffer;
  readonly options: Readonly<HeapOptions>;
}

const POLICIES: readonly ReturnPolicy[] = ['purge', 'cpython', 'never'];
/** purgeDelay's default under 'purge' (docs/architecture.md#the-delayed-return says why). */
export const DEFAULT_PURGE_DELAY = 250;
const MODES: readonly DecommitMode[] = ['dontneed', 'unmap'];

/**
 * Every option of HeapOptions, in the order they are read. (A Record of all of HeapOptions' keys: an option
 * added to the interface and not here does not compile.)
 */
const OPTION_KEYS: Record<keyof HeapOptions, true> = {
  preset: true,
  alignment: true,
  threshold: true,
  mediumThreshold: true,
  poolSize: true,
  arenaSize: true,
  reserve: true,
  policy: true,
  decommit: true,
  purgeThreshold: true,
  spanCache: true,
  purgeDelay: true,
  hugePages: true,
  debug: true,
  shared: true,
};
const OPTION_NAMES = Object.keys(OPTION_KEYS) as ReadonlyArray<keyof HeapOptions>;

/**
 * `new Heap(options)`'s options once read, checked and completed with their defaults and the environment: what
 * a heap is made from. Frozen, its geometry too. Made only by resolveHeapOptions; the constructor takes one as it
 * is (and any other object as options to resolve), so an object that merely looks like one is refused as options
 * with unknown names.
 */
export interface ResolvedHeapOptions {
  readonly geometry: Geometry;
  readonly policy: ReturnPolicy;
  readonly decommit: DecommitMode;
  readonly purgeThreshold: number;
  readonly spanCache: number;
  /** Milliseconds free memory stays committed before it goes back (0: at once). */
  readonly purgeDelay: number;
  /** Whether the arenas are advised MADV_HUGEPAGE: the option was set and the kernel has the pages. */
  readonly hugePages: boolean;
  /** The option, else whether PYMALLOC=debug was in the environment when the options were resolved. */
  readonly debug: boolean;
  /** A shared heap (the `shared` option). */
  readonly shared: boolean;
  /** @internal Heap.attach: the shared heap's memory, to attach to instead of reserving. */
  readonly attachTo?: SharedArrayBuffer;
  /** @internal A shared heap's options as its handle carries them (what makes the same geometry elsewhere). */
  readonly handleOptions?: Readonly<HeapOptions>;
}

/** The values resolveHeapOptions made: the brand that no other object can have. */
const RESOLVED = new WeakSet<object>();

function isResolved(options: unknown): options is ResolvedHeapOptions {
  return typeof options === 'object' && options !== null && RESOLVED.has(options);
}

/** A bad option: its message names the function, `new Heap`, then the option. */
function optionError(message: string, type = false): Error {
  return type
    ? codedError(TypeError, 'ERR_INVALID_ARG_TYPE', `pymalloc: new Heap: ${message}`)
    : codedError(RangeError, 'ERR_OUT_OF_RANGE', `pymalloc: new Heap: ${message}`);
}

/**
 * The options, read from the caller's object exactly once each (one [[Get]] per name, whatever getters or a
 * Proxy answer) into an object of our own, after refusing names that are not options. Nothing reads the
 * caller's object after this.
 */
function readOptions(options: unknown): HeapOptions {
  if (options === undefined) return {};
  if (options === null || typeof options !== 'object') throw optionError('options must be an object', true);
  rejectUnknownNames(options);
  const from = options as Record<string, unknown>;
  const o: Record<string, unknown> = {};
  for (const name of OPTION_NAMES) o[name] = from[name];
  return o as HeapOptions;
}

/**
 * Throws TypeError ERR_INVALID_ARG_VALUE naming every own string key of `options` that is not an option (as a
 * Proxy's ownKeys reports them), with the option meant where it is a near miss. Symbols, inherited properties
 * and properties defined non-enumerable are not options anyone wrote, and are left alone.
 */
function rejectUnknownNames(options: object): void {
  const unknown: string[] = [];
  for (const key of Reflect.ownKeys(options)) {
    if (typeof key !== 'string' || Object.hasOwn(OPTION_KEYS, key)) continue;
    const d = Reflect.getOwnPropertyDescriptor(options, key);
    if (d === undefined || d.enumerable) unknown.push(key);
  }
  if (unknown.length === 0) return;
  const MAX_NAMED = 10;
  const named = unknown.slice(0, MAX_NAMED).map((key) => {
    const near = nearestOption(key);
    return near === undefined ? `'${key}'` : `'${key}' (did you mean '${near}'?)`;
  });
  if (unknown.length > MAX_NAMED) named.push(`and ${unknown.length - MAX_NAMED} more`);
  throw codedError(
    TypeError,
    'ERR_INVALID_ARG_VALUE',
    `pymalloc: new Heap: unknown option${unknown.length > 1 ? 's' : ''} ${named.join(', ')}; ` +
      `the options are ${OPTION_NAMES.join(', ')}`,
  );
}

/** The option `key` is a near miss of: the same but for case, '-' and '_', or a typo or two away. */
function nearestOption(key: string): string | undefined {
  if (key.length > 64) return undefined;
  const k = key.toLowerCase().replace(/[-_]/g, '');
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const name of OPTION_NAMES) {
    const d = editDistance(k, name.toLowerCase());
    if (d < bestDistance) {
      best = name;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(best.length / 4)) ? best : undefined;
}

/** Insertions, deletions, substitutions and swaps of neighbours that turn a into b (optimal string alignment). */
function editDistance(a: string, b: string): number {
  let before: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d = Math.min(d, before[j - 2]! + 1);
      row.push(d);
    }
    before = prev;
    prev = row;
  }
  return prev[b.length]!;
}

/** Throws TypeError/RangeError naming the first bad option of `o` (our own copy: each is read as often as needed). */
function checkOptions(o: HeapOptions): void {
  if (o.policy !== undefined && !POLICIES.includes(o.policy)) {
    throw optionError(`policy must be one of ${POLICIES.join(', ')}, got ${String(o.policy)}`);
  }
  if (o.decommit !== undefined && !MODES.includes(o.decommit)) {
    throw optionError(`decommit must be one of ${MODES.join(', ')}, got ${String(o.decommit)}`);
  }
  for (const k of ['purgeThreshold', 'spanCache'] as const) {
    const v = o[k];
    if (v !== undefined && (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)) {
      throw optionError(`${k} must be a non-negative integer, got ${String(v)}`, typeof v !== 'number');
    }
  }
  const d = o.purgeDelay;
  if (
    d !== undefined &&
    (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0 || d > MAX_PURGE_DELAY)
  ) {
    throw optionError(
      `purgeDelay must be an integer number of milliseconds from 0 to ${MAX_PURGE_DELAY}, got ${String(d)}`,
      typeof d !== 'number',
    );
  }
  if (d !== undefined && d > 0 && o.policy !== undefined && o.policy !== 'purge') {
    throw optionError(
      `purgeDelay needs the 'purge' policy (policy '${o.policy}' never returns memory by itself)`,
    );
  }
  for (const k of ['debug', 'hugePages', 'shared'] as const) {
    if (o[k] !== undefined && typeof o[k] !== 'boolean') throw optionError(`${k} must be a boolean`, true);
  }
  if (o.shared === true && o.decommit === 'unmap') {
    throw optionError(
      `shared heaps give pages back with 'dontneed' only (another thread's view must never fault)`,
    );
  }
  if (o.shared === true && o.debug === true)
    throw optionError('the debug hooks are not available on shared heaps');
}

/**
 * Whether a heap of `geometry` with options `o` advises its arenas MADV_HUGEPAGE: the option is set and the
 * kernel has transparent huge pages that are not disabled. Throws when the arenas cannot be whole huge pages.
 */
function useHugePages(o: HeapOptions, geometry: Geometry): boolean {
  if (o.hugePages !== true) return false;
  const thp = transparentHugePages();
  if (thp === null || thp.mode === 'never') return false;
  if (geometry.arenaSize % thp.size !== 0) {
    throw optionError(
      `hugePages needs the arena size to be a multiple of the huge page size (${thp.size}), got ` +
        `${geometry.arenaSize}: use preset 'cpython-hugepages' or arenaSize ${thp.size}`,
    );
  }
  return true;
}

/**
 * The one step from `new Heap(options)`'s options to what the heap is made of: reads each option once (see
 * readOptions), refuses unknown names, checks the values, applies the defaults and the environment
 * (PYMALLOC=debug), resolves the geometry for this machine's pages and whether the arenas get huge pages.
 * Returns a frozen value; given one it made, returns it as it is. Throws exactly what `new Heap(options)` throws
 * for bad options.
 */
export function resolveHeapOptions(options?: HeapOptions | ResolvedHeapOptions): ResolvedHeapOptions {
  if (isResolved(options)) return options;
  const o = readOptions(options);
  checkOptions(o);
  const geometry = Object.freeze(geometryOf(o));
  const resolved: ResolvedHeapOptions = Object.freeze({
    geometry,
    policy: o.policy ?? 'purge',
    decommit: o.decommit ?? 'dontneed',
    purgeThreshold: o.purgeThreshold ?? 4 * 1024 * 1024,
    spanCache: o.spanCache ?? 1024 * 1024,
    purgeDelay: o.purgeDelay ?? ((o.policy ?? 'purge') === 'purge' ? DEFAULT_PURGE_DELAY : 0),
    hugePages: useHugePages(o, geometry),
    // A shared heap never has the debug hooks, whatever PYMALLOC says (checkOptions refuses the option).
    debug: o.shared === true ? false : (o.debug ?? process.env['PYMALLOC'] === 'debug'),
    shared: o.shared === true,
    ...(o.shared === true ? { handleOptions: handleOptions(o, geometry) } : {}),
  });
  RESOLVED.add(resolved);
  return resolved;
}

/** The options a shared heap's handle carries: the geometry as resolved, and the other options as given. */
function handleOptions(o: HeapOptions, g: Geometry): Readonly<HeapOptions> {
  const out: Record<string, unknown> = {
    // 'custom' names no preset: it is what the numbers below make when they differ from every preset's.
    ...(g.preset === 'custom' ? {} : { preset: g.preset }),
    alignment: g.alignment,
    threshold: g.threshold,
    mediumThreshold: g.mediumThreshold,
    poolSize: g.poolSize,
    arenaSize: g.arenaSize,
    reserve: g.reserve,
    shared: true,
  };
  for (const k of ['policy', 'purgeThreshold', 'spanCache', 'purgeDelay', 'hugePages'] as const) {
    if (o[k] !== undefined) out[k] = o[k];
  }
  return Object.freeze(out) as Readonly<HeapOptions>;
}

/** Heap.attach's options: the handle's, checked, and the memory to attach to. */
function resolveAttach(handle: unknown): ResolvedHeapOptions {
  const bad = (why: string, type = false) =>
    codedError(
      type ? TypeError : Error,
      type ? 'ERR_INVALID_ARG_TYPE' : 'ERR_INVALID_ARG_VALUE',
      `pymalloc: Heap.attach: ${why}`,
    );
  if (handle === null || typeof handle !== 'object')
    throw bad("handle must be a shared heap's `heap.handle`", true);
  const h = handle as Partial<SharedHeapHandle>;
  if (h.kind !== 'pymalloc.SharedHeap' || h.version !== 1)
    throw bad("handle is not a shared heap's `heap.handle` (its kind or version is wrong)");
  if (!types.isSharedArrayBuffer(h.buffer)) throw bad('handle.buffer must be a SharedArrayBuffer', true);
  if (h.options === null || typeof h.options !== 'object' || h.options.shared !== true)
    throw bad("handle.options are not a shared heap's");
  const r = resolveHeapOptions(h.options);
  if (h.buffer.byteLength !== r.geometry.reserve)
    throw bad(
      `handle.buffer has ${h.buffer.byteLength} bytes, the heap's options reserve ${r.geometry.reserve}`,
    );
  const resolved: ResolvedHeapOptions = Object.freeze({ ...r, attachTo: h.buffer });
  RESOLVED.add(resolved);
  return resolved;
}

/**
 * The class of shared heaps' Heap objects, and what makes one (of it, or of a subclass specialised for the
 * geometry): lib/shared/heap.ts, a layer above, registers them (calls go down).
 */
let SharedClass: (new (options: ResolvedHeapOptions) => Heap) | undefined;
let makeShared: ((options: ResolvedHeapOptions) => Heap) | undefined;

/** @internal Called once by lib/shared/heap.ts. */
export function registerSharedHeap(
  c: new (options: ResolvedHeapOptions) => Heap,
  make: (options: ResolvedHeapOptions) => Heap,
): void {
  SharedClass = c;
  makeShared = make;
}

/** The registered class and its maker (lib/index.ts loads lib/shared/heap.ts, as every entry point does). */
function shared(): {
  Shared: new (options: ResolvedHeapOptions) => Heap;
  make: (options: ResolvedHeapOptions) => Heap;
} {
  if (SharedClass === undefined || makeShared === undefined) {
    throw codedError(
      Error,
      'ERR_PYMALLOC_INTERNAL',
      'pymalloc: shared heaps: lib/shared/heap.ts was not loaded',
    );
  }
  return { Shared: SharedClass, make: makeShared };
}

/** resolveGeometry's answer for `new Heap`, whose errors (the same class and code) name the function too. */
function geometryOf(o: HeapOptions): Geometry {
  try {
    return resolveGeometry(o, pageSize());
  } catch (err) {
    const e = err as Error & { code?: string };
    if (typeof e.code !== 'string') throw err;
    const ctor = e instanceof TypeError ? TypeError : e instanceof RangeError ? RangeError : Error;
    throw codedError(ctor, e.code, `pymalloc: new Heap: ${e.message.replace(/^pymalloc: /, '')}`);
  }
}

/**
 * The geometry of a heap made with `options`, and whether its arenas would be huge pages, without making it:
 * throws exactly what `new Heap(options)` throws for bad options (it is the same resolveHeapOptions).
 */
export function checkHeapOptions(options?: HeapOptions): { geometry: Geometry; hugePages: boolean } {
  const { geometry, hugePages } = resolveHeapOptions(options);
  return { geometry, hugePages };
}

/**
 * A heap: CPython's small-object allocator in one reservation of virtual memory (4 GiB by default), whose pages
 * go back to the OS as the policy says. Pointers are byte offsets into its views (`heap.u8` … `heap.dv`).
 * `new Heap()` may return a heap of a specialised subclass (same API, `instanceof Heap`). See docs/api.md.
 */
export class Heap extends Allocator {
  /**
   * Reserves the heap's memory and sets up its state. Throws TypeError/RangeError for bad options and the
   * OS's error (code ENOMEM, …) when the reservation cannot be made.
   */
  // biome-ignore lint/correctness/noUnreachableSuper: the path that returns a heap of a subclass needs no super()
  constructor(options?: HeapOptions | ResolvedHeapOptions) {
    // The options are read here, once; what follows uses only `r`.
    const r = resolveHeapOptions(options);
    // A shared heap is made of the shared heaps' class, or of its subclass specialised for the geometry (which
    // lib/shared/heap.ts picks): never of a private heap's class.
    if (r.shared) {
      const { Shared, make } = shared();
      // biome-ignore lint/correctness/noConstructorReturn: the heap is a Heap, of a subclass with the same API
      if (new.target === Heap) return make(r);
      if (new.target !== Shared && !((new.target.prototype as object) instanceof Shared)) {
        throw optionError(
          'shared heaps are made by new Heap({ shared: true }), not by a subclass of Heap',
          true,
        );
      }
    }
    // `new Heap()`, and `new` on a specialised class (a heap's constructor), make a heap of the class that fits
    // the geometry: the specialised one whose constants are the geometry's, else Heap itself. A subclass of the
    // caller's own keeps its class (see checkSpecialisation).
    if (!r.shared && (new.target === Heap || isSpecialisedClass(new.target))) {
      const Fit = fastPathClass(r.geometry) ?? Heap;
      // biome-ignore lint/correctness/noConstructorReturn: the heap is a Heap, of a subclass with the same API
      if (Fit !== new.target) return new Fit(r);
    }
    // 'dontneed' heaps are read-write from the start: no view access can fault (see docs/reliability.md).
    const reservation =
      r.attachTo !== undefined
        ? Reservation.attachShared(r.attachTo)
        : r.shared
          ? Reservation.createShared(r.geometry.reserve, MAX_RESERVE)
          : Reservation.create(
              r.geometry.reserve,
              MAX_RESERVE,
              r.decommit === 'unmap' ? 'none' : 'readwrite',
            );
    super(reservation, r.geometry, r.policy, r.decommit, r.debug, r.hugePages, r.purgeDelay, r.shared);
    // Attaching: the heap is there already, and another thread's; nothing here may release it.
    if (r.attachTo !== undefined) return;
    try {
      checkSpecialisation(this, new.target, r.geometry);
      reservation.commit(0, this.meta.metaBytes);
      this.initState(r.geometry, r);
    } catch (err) {
      reservation.release();
      throw err;
    }
    if (r.debug) installDebugHooks(this);
  }

  /**
   * Returns this thread's Heap over the shared heap whose `heap.handle` another thread passed here (in
   * `workerData` or a message): the same memory and API, with pools of this thread's own. Throws TypeError /
   * ERR_INVALID_ARG_VALUE for anything that is not a handle, ERR_PYMALLOC_DESTROYED once the heap is destroyed,
   * ERR_PYMALLOC_TOO_MANY_THREADS when its thread slots are all taken.
   */
  static attach(handle: SharedHeapHandle): Heap {
    return shared().make(resolveAttach(handle));
  }

  /** Whether this heap is shared between threads (the `shared` option, or a heap of `Heap.attach`). */
  get shared(): boolean {
    return false;
  }

  /** A shared heap's handle for `Heap.attach` in another thread; a private heap has none (TypeError). */
  get handle(): SharedHeapHandle {
    throw codedError(
      TypeError,
      'ERR_PYMALLOC_NOT_SHARED',
      'pymalloc: handle: only a shared heap (new Heap({ shared: true })) has a handle',
    );
  }

  /** Ends this thread's use of a shared heap (see docs/shared-heaps.md); a private heap has none to end. */
  detach(): void {
    throw codedError(
      TypeError,
      'ERR_PYMALLOC_NOT_SHARED',
      'pymalloc: detach: only a shared heap can be detached from (a private heap is destroyed)',
    );
  }

  /** True when this heap runs fast paths specialised for its geometry (lib/generated/fastpaths.ts). */
  get specialised(): boolean {
    return FAST_PATH_CLASSES.some((c) => this instanceof c.fast);
  }

  private initState(g: Geometry, o: ResolvedHeapOptions): void {
    const S = this.meta.state;
    heap_state_set_magic(this, S, HEAP_MAGIC);
    heap_state_set_version(this, S, 1);
    this.u32[(S + OFFSETOF_HEAP_STATE_BASE) >>> 2] = 0;
    this.u32[(S + OFFSETOF_HEAP_STATE_BASE + 4) >>> 2] = this.baseHi;
    this.u32[(S + OFFSETOF_HEAP_STATE_RESERVATION_SIZE) >>> 2] = g.reserve % 2 ** 32;
    this.u32[(S + OFFSETOF_HEAP_STATE_RESERVATION_SIZE + 4) >>> 2] = Math.floor(g.reserve / 2 ** 32);
    heap_state_set_alignment(this, S, g.alignment);
    heap_state_set_alignment_shift(this, S, g.alignmentShift);
    heap_state_set_small_threshold(this, S, g.threshold);
    // Every pool class, small and medium: C walks usedpools and checks szidx with it.
    heap_state_set_nb_classes(this, S, g.poolClasses);
    heap_state_set_pool_size(this, S, g.poolSize);
    heap_state_set_pool_bits(this, S, g.poolBits);
    heap_state_set_arena_size(this, S, g.arenaSize);
    heap_state_set_arena_bits(this, S, g.arenaBits);
    heap_state_set_page_size(this, S, g.pageSize);
    heap_state_set_page_bits(this, S, g.pageBits);
    heap_state_set_pool_overhead(this, S, g.poolOverhead);
    heap_state_set_pools_per_arena(this, S, g.poolsPerArena);
    heap_state_set_policy(this, S, POLICY_CODES[this.policy]);
    heap_state_set_flags(this, S, this.debug ? 1 : 0);
    heap_state_set_arena_slots(this, S, g.arenaSlots);
    heap_state_set_arenamap(this, S, this.meta.arenamap);
    heap_state_set_purgemap(this, S, this.meta.purgemap);
    heap_state_set_purge_words(this, S, this.meta.purgeWords);
    heap_state_set_pagemap(this, S, this.meta.pagemap);
    heap_state_set_span_links(this, S, this.meta.spanLinks);
    heap_state_set_data_start_page(this, S, this.dataStartPage);
    const purgeBytes = o.purgeThreshold;
    // Huge-page arenas go back whole: no count of empty pools triggers a purge (see purgeFreePools).
    const purgePools = this.hugePages ? 0xffffffff : Math.max(1, Math.ceil(purgeBytes / g.poolSize));
    heap_state_set_purge_threshold_pools(this, S, Math.min(purgePools, 0xffffffff));
    emptyUsedpools(this, this.usedBase);
    initArenas(this);
    initSpans(this);
    setSpanCacheLimit(this, o.spanCache);
    // The delayed return (lib/delay.ts) does trim()'s work, with a refusal kept and reported once, not thrown.
    this.purgeGiveBack = (busy) => this.giveBackFree(busy);
  }

  /**
   * Every free page back to the OS: cached spans, empty pools, wholly free arenas. Returns the bytes given back.
   * `busy` (the delayed return from a slow path, in the middle of the program's work): keep what that work would
   * fault in again at once, the cached spans and the arena kept against thrashing.
   */
  protected giveBackFree(busy = false): number {
    return (busy ? 0 : flushSpanCache(this)) + purgeFreePools(this) + releaseFreeArenas(this, busy);
  }

  /**
   * The real address of pointer p (or of any offset inside the heap, such as a field of a block), for passing to
   * C. Throws ERR_PYMALLOC_INVALID_POINTER for an offset beyond the reservation: it would name memory that is
   * not the heap's.
   */
  addressOf(p: number): bigint {
    this.checkLive('addressOf');
    checkPointer(p, 'addressOf');
    if (p >= this.geometry.reserve) {
      throw codedError(
        Error,
        'ERR_PYMALLOC_INVALID_POINTER',
        `pymalloc: addressOf(0x${p.toString(16)}): pointer is beyond this heap's ${this.geometry.reserve}-byte reservation`,
      );
    }
    return this.reservation.base + BigInt(p);
  }

  /**
   * The ArrayBuffer over the heap's whole reservation, for passing to your own C addon, which reads and writes
   * the heap's blocks through include/pymalloc.h (`pymalloc_view_from`; docs/c-addon.md). The same object while
   * the heap lives. After `destroy()` the original reads zeros (its pages went back; writes land in fresh zero
   * pages of the same range, never in another heap's) and is not detached (which would slow every typed-array
   * access in the process); a destroyed heap's `buffer` is an empty one (byteLength 0, so every pointer from it
   * is NULL): the heap lets go of the original, so that the range can be unmapped once nothing else holds it.
   * It cannot be transferred (postMessage copies
   * it). Writing into it from JavaScript outside your own blocks corrupts the heap, as a C addon writing there
   * would.
   */
  get buffer(): ArrayBuffer | SharedArrayBuffer {
    // Once released (destroy()), the reservation's buffer is an empty one, not a detached one.
    return this.reservation.buffer;
  }

  /** Per size class and in total: pools, blocks, arenas, large blocks, and CPython's byte accounting. */
  stats(): HeapStats {
    this.checkLive('stats');
    return computeStats(this);
  }

  /** The text CPython 3.11's sys._debugmallocstats() prints for its small-object allocator, for this heap. */
  debugStats(): string {
    this.checkLive('debugStats');
    return formatDebugStats(this, computeStats(this));
  }

  /**
   * The same heap walked from C by the native inspector, compiled against native/pymalloc_layout.h: per-class
   * pools and blocks, arenas, free pools. It agrees with stats() exactly when the header matches the memory.
   */
  inspect(): HeapInspection {
    this.checkLive('inspect');
    return this.reservation.inspectHeap();
  }

  /** Walks every arena, pool, free list and span; throws ERR_PYMALLOC_CORRUPT naming the first broken invariant. */
  check(): void {
    this.checkLive('check');
    checkHeap(this);
  }

  /**
   * Gives every free page back to the OS now: cached large spans, empty pools of live arenas, and wholly free
   * arenas (including the one kept against thrashing). Returns the bytes given back.
   */
  trim(): number {
    this.checkLive('trim');
    this.osRefusal = undefined;
    clearDeadline(this);
    const bytes = this.giveBackFree();
    const refusal = this.osRefusal as Error | undefined; // set by the calls above when the OS refused
    if (refusal !== undefined) {
      // Everything else was given back, and the heap is consistent: what the OS refused stays with it.
      throw Object.assign(
        codedError(
          RangeError,
          'ERR_PYMALLOC_NOMEM',
          `pymalloc: trim: gave back ${bytes} bytes, but the OS refused to take back the rest: ${refusal.message}`,
        ),
        { cause: (refusal as Error & { cause?: unknown }).cause ?? refusal, bytes },
      );
    }
    return bytes;
  }

  /** Bytes of this heap's reservation resident in RAM (mincore). */
  residentBytes(): number {
    this.checkLive('residentBytes');
    return this.reservation.residentBytes(0, this.geometry.reserve);
  }

  /**
   * `destroy()`, for `using heap = new Heap()`: the heap's memory goes back to the OS when the block it was
   * declared in is left.
   */
  [Symbol.dispose](): void {
    this.destroy();
  }

  /**
   * What `util.inspect(heap)` and `console.log(heap)` show: a one-line summary (geometry, policy, bytes in use,
   * destroyed or not) under the class name `Heap`, whichever specialised subclass the heap is of, and never the
   * bytes of its views.
   */
  [INSPECT](
    _depth: number,
    options: InspectOptionsStylized,
    inspect: (value: unknown, options?: object) => string,
  ) {
    const g = this.geometry;
    const summary: Record<string, unknown> = {
      preset: g.preset,
      alignment: g.alignment,
      poolSize: g.poolSize,
      arenaSize: g.arenaSize,
      reserve: g.reserve,
      policy: this.policy,
      decommit: this.decommitMode,
    };
    if (this.hugePages) summary['hugePages'] = true;
    if (this.debug) summary['debug'] = true;
    if (this.destroyed) {
      summary['destroyed'] = true;
    } else {
      try {
        const st = computeStats(this);
        summary['arenas'] = st.arenas.current;
        summary['blocksInUse'] = st.blocksInUse;
        summary['bytesInUse'] = st.bytesInUse;
      } catch {
        summary['corrupt'] = true; // inspecting must not throw; heap.check() names what is wrong
      }
      summary['destroyed'] = false;
    }
    return `Heap ${inspect(summary, { ...options, depth: 0, breakLength: Number.POSITIVE_INFINITY })}`;
  }

  /**
   * Returns all of the heap's memory to the OS at once. Every view then has length 0 and every method throws
   * ERR_PYMALLOC_DESTROYED. Calling destroy again does nothing. Native work still holding one of the views
   * (a libuv job) writes into the destroyed heap's own address range, which stays reserved until nothing can
   * reach it, never into another heap's.
   */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.threshold = 0;
    cancelDelay(this);
    this.reservation.release();
    this.dropViews();
  }
}

/**
 * Heap's subclasses with fast paths specialised for the default geometries of the presets: the same code with the
 * constants folded in. `new Heap(options)` makes a heap of one of them when the geometry's constants equal its
 * (so the two are the same code); the heap is still `instanceof Heap`, with Heap's fields and other methods.
 * No heap whose constants differ from a class's is ever made of it (checkSpecialisation).
 */
const FAST_PATH_CLASSES = fastPathClasses(Heap);

function isSpecialisedClass(c: unknown): boolean {
  return FAST_PATH_CLASSES.some(({ fast }) => fast === c);
}

/**
 * Throws TypeError ERR_INVALID_ARG_VALUE when `heap` (just constructed, by `target`, for `geometry`) inherits
 * specialised fast paths whose folded constants are not the geometry's: a subclass of a specialised class made
 * with another geometry, which would run the literals of one geometry on the heap of another. (Heap and the
 * specialised classes never get here with one: their constructor makes the class that fits.) The heap's own
 * prototype chain is walked, not new.target's, so that a Proxy as new.target cannot answer one thing here and
 * another to the engine. Construction time only: malloc and free do not know about it.
 */
function checkSpecialisation(heap: Heap, target: typeof Heap, geometry: Geometry): void {
  let spec: (typeof FAST_PATH_CLASSES)[number] | undefined;
  for (let p: unknown = Object.getPrototypeOf(heap); p !== null && p !== Heap.prototype && !spec; ) {
    spec = FAST_PATH_CLASSES.find(({ fast }) => fast.prototype === p);
    p = Object.getPrototypeOf(p);
  }
  if (spec === undefined) return;
  const want = spec.constants as unknown as Record<string, unknown>;
  const have = geometryConstants(geometry);
  const wrong = [...new Set([...Object.keys(want), ...Object.keys(have)])].filter((k) => want[k] !== have[k]);
  if (wrong.length === 0) return;
  const name: unknown = target.name;
  const subclass = typeof name === 'string' && name !== '' ? name : '(anonymous)';
  const fast = spec.fast.name;
  const show = (v: unknown) => (v === undefined ? 'none' : String(v));
  const differences = wrong.map((k) => `${k} ${show(have[k])}, folded ${show(want[k])}`).join('; ');
  throw codedError(
    TypeError,
    'ERR_INVALID_ARG_VALUE',
    `pymalloc: class ${subclass} extends ${fast}, whose fast paths have other constants folded in than this ` +
      `heap's geometry gives (${differences}): extend Heap instead (new Heap picks the specialised class ` +
      `itself), or use the geometry of ${fast}`,
  );
}

/** The constants a specialised class must have folded in to be the same code as the generic paths on `geometry`. */
function geometryConstants(geometry: Geometry): Record<string, unknown> {
  return foldedConstants(geometry, metadataLayout(geometry)) as unknown as Record<string, unknown>;
}

/**
 * Whether `constants` (a specialised class's) are exactly `k` (a geometry's): the same names, the same values.
 * @internal lib/shared/heap.ts picks its specialised classes with it too.
 */
export function sameConstants(constants: object, k: object): boolean {
  const want = constants as Record<string, unknown>;
  const have = k as Record<string, unknown>;
  const keys = Object.keys(have);
  return keys.length === Object.keys(want).length && keys.every((key) => have[key] === want[key]);
}

function fastPathClass(geometry: Geometry): typeof Heap | null {
  const k = geometryConstants(geometry);
  for (const { constants, fast } of FAST_PATH_CLASSES) if (sameConstants(constants, k)) return fast;
  return null;
}
