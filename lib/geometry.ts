/**
 * Geometry: the tunables of a heap and every constant derived from them, validated once when a heap is made.
 *
 * CPython fixes these at compile time (ALIGNMENT, SMALL_REQUEST_THRESHOLD, POOL_BITS, ARENA_BITS); here each heap
 * chooses its own, so that `pymalloc tune` can compare them on the same trace. Invariants checked here:
 *   alignment, pool size, arena size and the reservation are powers of two;
 *   page size <= pool size <= arena size <= reservation;   arena size % pool size == 0;
 *   threshold % alignment == 0 and 0 < threshold <= 512;   mediumThreshold % alignment == 0 and
 *   threshold <= mediumThreshold <= 1024;   at most 64 pool classes;   at least two blocks of the largest fit a pool;
 *   pools per arena <= MAX_POOLS_PER_ARENA (the size of `nfp2lasta`).
 */
import {
  LENGTHOF_HEAP_STATE_NFP2LASTA,
  LENGTHOF_HEAP_STATE_USEDPOOLS,
  SIZEOF_ARENA_OBJECT,
  SIZEOF_HEAP_STATE,
  SIZEOF_POOL_HEADER,
  SIZEOF_POOL_XINFO,
  SIZEOF_SHARED_STATE,
  SIZEOF_THREAD_SLOT,
} from './generated/layout';

/** A named geometry. */
export type GeometryPreset = 'cpython-3.11' | 'cpython-3.6' | 'os-page' | 'cpython-hugepages';

/** The tunables of a heap; every field has a default (CPython 3.11 on 64-bit). */
export interface GeometryOptions {
  /** A named starting point; explicit fields override it. @defaultValue 'cpython-3.11' */
  preset?: GeometryPreset;
  /** Block alignment and size-class spacing, a power of two (8 or 16 in CPython). @defaultValue 16 */
  alignment?: number;
  /**
   * CPython's small-request threshold: requests of 1..threshold bytes take CPython's size classes, the ones its
   * statistics table shows. A multiple of `alignment`, at most 512. @defaultValue 512
   */
  threshold?: number;
  /**
   * Largest request served from pools. Requests of threshold+1..mediumThreshold bytes take medium classes,
   * pymalloc's own: pools like the small ones, with the same spacing, where CPython would call the system malloc.
   * Larger requests take page spans. A multiple of `alignment`, from `threshold` (no medium classes, as in
   * CPython) to 1024, with at most 64 pool classes in all.
   * @defaultValue 1024, or 64 * alignment when that is less (512, no medium classes, with alignment 8)
   */
  mediumThreshold?: number;
  /** Pool size, a power of two at least the OS page size. @defaultValue 16384 */
  poolSize?: number;
  /** Arena size, a power of two and a multiple of the pool size. @defaultValue 1048576 */
  arenaSize?: number;
  /** Bytes of virtual memory reserved for the heap, a power of two; at most 4 GiB. @defaultValue 4294967296 */
  reserve?: number;
}

/** The largest small request (CPython's hard limit). */
export const MAX_THRESHOLD = 512;
/**
 * The largest request the pools may serve: free's block-boundary test by multiplication is exact for block sizes
 * up to 1024 (see divisibilityMagic).
 */
export const MAX_MEDIUM_THRESHOLD = 1024;
/** Largest number of pools in one arena: `nfp2lasta` has one slot per possible count of free pools. */
export const MAX_POOLS_PER_ARENA = LENGTHOF_HEAP_STATE_NFP2LASTA - 1;
/** Largest number of size classes: `usedpools` holds two pointers per class. */
export const MAX_CLASSES = LENGTHOF_HEAP_STATE_USEDPOOLS / 2;
/** 4 GiB: pointers are 32-bit offsets. */
export const MAX_RESERVE = 2 ** 32;

const PRESETS: Record<
  GeometryPreset,
  (pageSize: number) => Required<Omit<GeometryOptions, 'preset' | 'mediumThreshold'>>
> = {
  'cpython-3.11': () => ({
    alignment: 16,
    threshold: 512,
    poolSize: 16 * 1024,
    arenaSize: 1024 * 1024,
    reserve: MAX_RESERVE,
  }),
  'cpython-3.6': () => ({
    alignment: 8,
    threshold: 512,
    poolSize: 4096,
    arenaSize: 256 * 1024,
    reserve: MAX_RESERVE,
  }),
  // CPython's opt-in huge-page build (--with-pymalloc-hugepages, gh-144319): arenas of one 2 MiB huge page.
  'cpython-hugepages': () => ({
    alignment: 16,
    threshold: 512,
    poolSize: 16 * 1024,
    arenaSize: 2 * 1024 * 1024,
    reserve: MAX_RESERVE,
  }),
  'os-page': (pageSize) => ({
    alignment: 16,
    threshold: 512,
    poolSize: pageSize,
    arenaSize: Math.max(1024 * 1024, pageSize * 64),
    reserve: MAX_RESERVE,
  }),
};

/** The names of the presets, in the order the help texts list them. */
export const GEOMETRY_PRESETS = Object.keys(PRESETS) as readonly GeometryPreset[];

/** Every constant a heap needs, derived once from the options. */
export interface Geometry {
  readonly preset: GeometryPreset | 'custom';
  readonly alignment: number;
  readonly alignmentShift: number;
  /** CPython's small-request threshold: classes 0..nbClasses-1 are CPython's. */
  readonly threshold: number;
  readonly nbClasses: number;
  /** Largest request served from pools; classes nbClasses..poolClasses-1 are the medium ones (none if equal). */
  readonly mediumThreshold: number;
  readonly poolClasses: number;
  readonly poolSize: number;
  readonly poolBits: number;
  readonly arenaSize: number;
  readonly arenaBits: number;
  readonly pageSize: number;
  readonly pageBits: number;
  readonly reserve: number;
  /** Bytes of pool header rounded up to the alignment: the first block's offset in its pool. */
  readonly poolOverhead: number;
  readonly poolsPerArena: number;
  /** Number of arena-sized slots in the reservation. */
  readonly arenaSlots: number;
  /** Number of OS pages in the reservation. */
  readonly pages: number;
}

export function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}

export function log2(n: number): number {
  return Math.round(Math.log2(n));
}

function fail(message: string): never {
  const err = new RangeError(`invalid heap geometry: ${message}`);
  (err as RangeError & { code: string }).code = 'ERR_OUT_OF_RANGE';
  throw err;
}

function checkField(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    const err = new TypeError(
      `invalid heap geometry: ${name} must be a positive integer, got ${String(value)}`,
    );
    (err as TypeError & { code: string }).code = 'ERR_INVALID_ARG_TYPE';
    throw err;
  }
  return value;
}

/** Resolves and validates geometry options against the OS page size. */
export function resolveGeometry(options: GeometryOptions, pageSize: number): Geometry {
  // Each field is read once, here: a getter or Proxy that answers otherwise on a second read cannot make the
  // geometry differ from what was checked. Nothing below reads `options`.
  const {
    preset: presetOption,
    alignment: alignmentOption,
    threshold: thresholdOption,
    mediumThreshold: mediumOption,
    poolSize: poolSizeOption,
    arenaSize: arenaSizeOption,
    reserve: reserveOption,
  } = options;
  const preset = presetOption ?? 'cpython-3.11';
  // A string, an own key of PRESETS: an object's toString is never asked, and 'toString' is no preset.
  if (typeof preset !== 'string' || !Object.hasOwn(PRESETS, preset))
    fail(`unknown preset '${String(preset)}' (expected one of ${Object.keys(PRESETS).join(', ')})`);
  const base = PRESETS[preset](pageSize);
  const custom = [
    alignmentOption,
    thresholdOption,
    mediumOption,
    poolSizeOption,
    arenaSizeOption,
    reserveOption,
  ].some((v) => v !== undefined);
  const alignment = checkField('alignment', alignmentOption ?? base.alignment);
  const threshold = checkField('threshold', thresholdOption ?? base.threshold);
  const poolSize = checkField('poolSize', poolSizeOption ?? base.poolSize);
  const arenaSize = checkField('arenaSize', arenaSizeOption ?? base.arenaSize);
  const reserve = checkField('reserve', reserveOption ?? base.reserve);

  for (const [name, v] of [
    ['alignment', alignment],
    ['poolSize', poolSize],
    ['arenaSize', arenaSize],
    ['reserve', reserve],
  ] as const) {
    if (!isPowerOfTwo(v)) fail(`${name} must be a power of two, got ${v}`);
  }
  if (alignment < 8)
    fail(`alignment must be at least 8 (a free block holds a 64-bit link), got ${alignment}`);
  if (threshold > MAX_THRESHOLD) fail(`threshold must be at most ${MAX_THRESHOLD}, got ${threshold}`);
  if (threshold % alignment !== 0)
    fail(`threshold (${threshold}) must be a multiple of alignment (${alignment})`);
  const nbClasses = threshold / alignment;
  if (nbClasses > MAX_CLASSES)
    fail(`threshold / alignment gives ${nbClasses} size classes; at most ${MAX_CLASSES}`);
  if (poolSize < pageSize) fail(`poolSize (${poolSize}) must be at least the OS page size (${pageSize})`);
  if (poolSize > 65536) fail(`poolSize must be at most 65536, got ${poolSize}`);
  if (arenaSize % poolSize !== 0 || arenaSize < poolSize) {
    fail(`arenaSize (${arenaSize}) must be a multiple of poolSize (${poolSize})`);
  }
  const poolsPerArena = arenaSize / poolSize;
  if (poolsPerArena > MAX_POOLS_PER_ARENA) {
    fail(`arenaSize / poolSize gives ${poolsPerArena} pools per arena; at most ${MAX_POOLS_PER_ARENA}`);
  }
  if (reserve > MAX_RESERVE) fail(`reserve must be at most 4 GiB (${MAX_RESERVE}), got ${reserve}`);
  const poolOverhead = Math.ceil(SIZEOF_POOL_HEADER / alignment) * alignment;
  if (poolSize - poolOverhead < 2 * threshold) {
    fail(`poolSize (${poolSize}) must hold at least two blocks of ${threshold} bytes after its header`);
  }
  // A pool always holds two blocks of 1024 bytes: it is at least a 4 KiB page, its header at most an alignment
  // (which is at most 512 here, since threshold is).
  let mediumThreshold: number;
  if (mediumOption === undefined) {
    mediumThreshold = Math.max(threshold, Math.min(MAX_MEDIUM_THRESHOLD, MAX_CLASSES * alignment));
  } else {
    mediumThreshold = checkField('mediumThreshold', mediumOption);
    if (mediumThreshold < threshold || mediumThreshold > MAX_MEDIUM_THRESHOLD) {
      fail(
        `mediumThreshold must be from threshold (${threshold}) to ${MAX_MEDIUM_THRESHOLD}, got ${mediumThreshold}`,
      );
    }
    if (mediumThreshold % alignment !== 0)
      fail(`mediumThreshold (${mediumThreshold}) must be a multiple of alignment (${alignment})`);
    if (mediumThreshold / alignment > MAX_CLASSES) {
      fail(
        `mediumThreshold / alignment gives ${mediumThreshold / alignment} pool size classes; at most ${MAX_CLASSES}`,
      );
    }
  }
  const geometry: Geometry = {
    preset: custom ? 'custom' : preset,
    alignment,
    alignmentShift: log2(alignment),
    threshold,
    nbClasses,
    mediumThreshold,
    poolClasses: mediumThreshold / alignment,
    poolSize,
    poolBits: log2(poolSize),
    arenaSize,
    arenaBits: log2(arenaSize),
    pageSize,
    pageBits: log2(pageSize),
    reserve,
    poolOverhead,
    poolsPerArena,
    arenaSlots: reserve / arenaSize,
    pages: reserve / pageSize,
  };
  const meta = metadataLayout(geometry);
  if (meta.dataStart + arenaSize > reserve) {
    fail(`reserve (${reserve}) leaves no room for one arena after ${meta.dataStart} bytes of metadata`);
  }
  return geometry;
}

/** Where the heap's own state lives inside its reservation: all of it below `dataStart`. */
export interface MetadataLayout {
  /** The `heap_state` struct. Offset 0 is NULL, so it is never a block, but it is the state. */
  readonly state: number;
  /** The `arena_object` table: one per arena slot. */
  readonly arenas: number;
  /** `arenamap[slot]`: arena index + 1 of the small-object arena in that slot, 0 if none. */
  readonly arenamap: number;
  /** Slots of `arenamap` (u32 each): one per arena of the 4 GiB a pointer can name. */
  readonly arenamapSlots: number;
  /** `purgemap`: per arena slot, a bitmap of its purged pools. */
  readonly purgemap: number;
  readonly purgeWords: number;
  /** `pagemap[page]`: span boundary tags. */
  readonly pagemap: number;
  /** `span_links[2 * page]`: free-list links of free spans, or (first word) the request size of a large span. */
  readonly spanLinks: number;
  /** `freed_heads`: one bit per page, set where a freed large block started (until the page is reused). */
  readonly freedHeads: number;
  /** First byte that spans and arenas may use: the end of the metadata rounded up to an arena. */
  readonly dataStart: number;
  /** Bytes of metadata, rounded up to pages. */
  readonly metaBytes: number;
  /**
   * A shared heap's (lib/shared/): the `shared_state` struct, its `thread_slot` table (`maxThreads` of them) and
   * one `pool_xinfo` per pool of the reservation. 0 (and maxThreads 0) in a private heap, whose layout does not
   * change.
   */
  readonly shared: number;
  readonly slots: number;
  readonly maxThreads: number;
  readonly poolInfo: number;
}

/** Thread slots of a shared heap: threads that can be attached to it at once. */
export const MAX_THREADS = 64;

function roundUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

export function metadataLayout(g: Geometry, shared = false): MetadataLayout {
  const state = 0;
  // arenamap covers all 4 GiB that a pointer can name, so that any pointer indexes it: slots past the
  // reservation stay 0 (no arena). It comes first, at the same offset whatever the reservation, so that free's
  // fast path can have its place folded in (lib/generated/fastpaths.ts).
  const arenamap = roundUp(SIZEOF_HEAP_STATE, 64);
  const arenamapSlots = MAX_RESERVE / g.arenaSize;
  const arenas = roundUp(arenamap + arenamapSlots * 4, 64);
  const purgeWords = Math.ceil(g.poolsPerArena / 32);
  const purgemap = roundUp(arenas + g.arenaSlots * SIZEOF_ARENA_OBJECT, 64);
  const pagemap = roundUp(purgemap + g.arenaSlots * purgeWords * 4, g.pageSize);
  const spanLinks = roundUp(pagemap + g.pages * 4, g.pageSize);
  const freedHeads = roundUp(spanLinks + g.pages * 8, 64);
  const privateEnd = freedHeads + Math.ceil(g.pages / 32) * 4;
  // A shared heap's state goes after all of the private heap's, so that the offsets above are the same in both.
  const sharedAt = shared ? roundUp(privateEnd, 64) : 0;
  const slots = shared ? roundUp(sharedAt + SIZEOF_SHARED_STATE, 64) : 0;
  const maxThreads = shared ? MAX_THREADS : 0;
  const poolInfo = shared ? roundUp(slots + MAX_THREADS * SIZEOF_THREAD_SLOT, g.pageSize) : 0;
  const end = shared ? poolInfo + (g.reserve / g.poolSize) * SIZEOF_POOL_XINFO : privateEnd;
  const metaBytes = roundUp(end, g.pageSize);
  return {
    state,
    arenas,
    arenamap,
    arenamapSlots,
    purgemap,
    purgeWords,
    pagemap,
    spanLinks,
    freedHeads,
    dataStart: roundUp(end, g.arenaSize),
    metaBytes,
    shared: sharedAt,
    slots,
    maxThreads,
    poolInfo,
  };
}

/** Size in bytes of the blocks of class `idx`. */
export function classSize(g: Geometry, idx: number): number {
  return (idx + 1) << g.alignmentShift;
}

/** Blocks of class `idx` that fit one pool (CPython's NUMBLOCKS). */
export function blocksPerPool(g: Geometry, idx: number): number {
  return Math.floor((g.poolSize - g.poolOverhead) / classSize(g, idx));
}
