/**
 * Statistics: what `heap.stats()` returns and what `heap.debugStats()` prints, computed by visiting every arena
 * and pool as CPython's _PyObject_DebugMallocStats does. The byte accounting adds up:
 *   arenas * ARENA_SIZE == allocated blocks + available blocks + unused pools + pool headers + quantization
 *                          + arena alignment (always 0 here: arenas are aligned to their size).
 */
import { arenaAddress, arenaObject, isPurged, isReadableArena } from './arena';
import { codedError, type HeapCore } from './core';
import {
  arena_object_get_nfreepools,
  arena_object_get_pool_address,
  heap_state_get_maxarenas,
  heap_state_get_narenas_currently_allocated,
  heap_state_get_narenas_highwater,
  heap_state_get_npurged_pools,
  heap_state_get_ntimes_arena_allocated,
  heap_state_get_span_cache_pages,
  pool_header_get_ref_count,
  pool_header_get_szidx,
} from './generated/layout';
import { blocksPerPool, classSize } from './geometry';
import { forEachSpan, SPAN_LARGE } from './span';

/** One size class. */
export interface ClassStats {
  /** Class index: requests of (index * alignment, (index + 1) * alignment] bytes. */
  readonly index: number;
  /** Block size in bytes. */
  readonly size: number;
  /** Pools holding this class (used or full). */
  readonly pools: number;
  readonly blocksInUse: number;
  /** Blocks of those pools not in use, carved or not (CPython's "avail blocks"). */
  readonly availBlocks: number;
}

export interface HeapStats {
  /**
   * Every pool size class: CPython's small classes (sizes up to the geometry's `threshold`), then the medium
   * ones (up to `mediumThreshold`), which CPython does not have.
   */
  readonly classes: ClassStats[];
  readonly arenas: {
    /** Arenas ever allocated ("# arenas allocated total"). */
    readonly allocatedTotal: number;
    readonly reclaimed: number;
    readonly highwater: number;
    readonly current: number;
    readonly bytes: number;
  };
  readonly pools: {
    /** Pools holding blocks of some class. */
    readonly used: number;
    /** Free pools of live arenas: never carved, emptied, or purged. */
    readonly unused: number;
    /** Of the unused, those whose pages were given back while their arena lives. */
    readonly purged: number;
  };
  /** CPython's accounting of the arenas' bytes; the parts add up to `arenas.bytes`. */
  readonly bytes: {
    readonly allocatedBlocks: number;
    readonly availableBlocks: number;
    readonly unusedPools: number;
    readonly poolHeaders: number;
    readonly quantization: number;
    readonly arenaAlignment: number;
  };
  readonly large: {
    readonly blocks: number;
    /** Bytes requested by the live large blocks. */
    readonly bytesRequested: number;
    /** Bytes of the pages they hold. */
    readonly bytesCommitted: number;
    /** Bytes of freed large blocks kept committed for reuse. */
    readonly cachedBytes: number;
  };
  /** Blocks in use, small and large. */
  readonly blocksInUse: number;
  /** Bytes of the blocks in use: class sizes for small blocks, requested sizes for large ones. */
  readonly bytesInUse: number;
}

const S = 0;

/** What stats() throws for metadata it cannot make sense of (heap.check() names the broken invariant). */
function corrupt(message: string): never {
  throw codedError(Error, 'ERR_PYMALLOC_CORRUPT', `pymalloc: stats: the heap is corrupt: ${message}`);
}

/**
 * Walks every arena and pool. Like check(), it reads nothing at an offset taken from the heap's memory before
 * checking that it is inside the reservation and readable, and throws ERR_PYMALLOC_CORRUPT for what does not fit.
 */
export function computeStats(h: HeapCore): HeapStats {
  const g = h.geometry;
  const n = g.poolClasses;
  const pools = new Array<number>(n).fill(0);
  const blocks = new Array<number>(n).fill(0);
  const avail = new Array<number>(n).fill(0);
  let narenas = 0;
  let freePools = 0;
  const maxarenas = heap_state_get_maxarenas(h, S);
  if (maxarenas > g.arenaSlots) corrupt(`maxarenas ${maxarenas} exceeds the ${g.arenaSlots} arena slots`);
  const readable = h.reservation.readablePages();
  for (let i = 0; i < maxarenas; i++) {
    const ao = arenaObject(h, i);
    const address = arenaAddress(h, ao);
    if (address === 0) continue;
    if (!isReadableArena(h, readable, address))
      corrupt(`arena ${i} has address ${address}, not a readable arena of this heap`);
    narenas++;
    freePools += arena_object_get_nfreepools(h, ao);
    const carvedEnd = arena_object_get_pool_address(h, ao);
    if (carvedEnd < address || carvedEnd > address + g.arenaSize)
      corrupt(`arena ${i}: pool_address ${carvedEnd} is outside it`);
    for (let pool = address, index = 0; pool < carvedEnd; pool += g.poolSize, index++) {
      // A purged pool is empty, and reading its header would map the zero page into it (which mincore then
      // counts as resident).
      if (isPurged(h, address, index)) continue;
      const header = pool_header_get_ref_count(h, pool);
      if (header === 0) continue;
      const sz = pool_header_get_szidx(h, pool);
      if (sz >= n) corrupt(`pool ${pool} has size class ${sz}`);
      // In a shared heap, blocks other threads freed are in use until the pool's owner takes them back.
      const count = header - h.remoteFreed(pool);
      pools[sz]++;
      blocks[sz] += count;
      avail[sz] += blocksPerPool(g, sz) - count;
    }
  }
  const classes: ClassStats[] = [];
  let allocatedBlocks = 0;
  let availableBlocks = 0;
  let poolHeaders = 0;
  let quantization = 0;
  let usedPools = 0;
  let poolBlocks = 0;
  for (let i = 0; i < n; i++) {
    const size = classSize(g, i);
    classes.push({ index: i, size, pools: pools[i], blocksInUse: blocks[i], availBlocks: avail[i] });
    allocatedBlocks += blocks[i] * size;
    availableBlocks += avail[i] * size;
    poolHeaders += pools[i] * g.poolOverhead;
    quantization += pools[i] * ((g.poolSize - g.poolOverhead) % size);
    usedPools += pools[i];
    poolBlocks += blocks[i];
  }
  let largeBlocks = 0;
  let largeRequested = 0;
  let largePages = 0;
  forEachSpan(h, (pg, pages, kind) => {
    if (pg + pages > g.pages) corrupt(`the span at page ${pg} runs past the reservation`);
    if (kind !== SPAN_LARGE) return;
    largeBlocks++;
    largePages += pages;
    largeRequested += h.u32[h.linksIdx + 2 * pg];
  });
  const total = heap_state_get_ntimes_arena_allocated(h, S);
  const current = heap_state_get_narenas_currently_allocated(h, S);
  if (current !== narenas) corrupt(`${narenas} arenas found, ${current} counted`);
  return {
    classes,
    arenas: {
      allocatedTotal: total,
      reclaimed: total - narenas,
      highwater: heap_state_get_narenas_highwater(h, S),
      current: narenas,
      bytes: narenas * g.arenaSize,
    },
    pools: { used: usedPools, unused: freePools, purged: heap_state_get_npurged_pools(h, S) },
    bytes: {
      allocatedBlocks,
      availableBlocks,
      unusedPools: freePools * g.poolSize,
      poolHeaders,
      quantization,
      arenaAlignment: 0,
    },
    large: {
      blocks: largeBlocks,
      bytesRequested: largeRequested,
      bytesCommitted: largePages * g.pageSize,
      cachedBytes: heap_state_get_span_cache_pages(h, S) * g.pageSize,
    },
    blocksInUse: poolBlocks + largeBlocks,
    bytesInUse: allocatedBlocks + largeRequested,
  };
}

/** CPython's printone: the label padded to 35 columns, '=', the value with thousands separators in 21. */
function printone(label: string, value: number): string {
  const digits = Math.trunc(value).toString();
  let grouped = '';
  for (let i = 0; i < digits.length; i++) {
    if (i > 0 && (digits.length - i) % 3 === 0) grouped += ',';
    grouped += digits[i];
  }
  return `${label.padEnd(35)}=${grouped.padStart(21)}\n`;
}

/** The rows of a class table for classes [from, to) that hold pools, with CPython's header and columns. */
function classTable(s: HeapStats, from: number, to: number): string {
  let out = 'class   size   num pools   blocks in use  avail blocks\n';
  out += '-----   ----   ---------   -------------  ------------\n';
  for (const c of s.classes.slice(from, to)) {
    if (c.pools === 0) continue;
    out += `${String(c.index).padStart(5)} ${String(c.size).padStart(6)} ${String(c.pools).padStart(11)} `;
    out += `${String(c.blocksInUse).padStart(15)} ${String(c.availBlocks).padStart(13)}\n`;
  }
  return `${out}\n`;
}

/**
 * The text of CPython 3.11's sys._debugmallocstats() for this heap's small-object allocator. The medium classes,
 * which CPython does not have, follow in a table of their own (when any holds a pool), so that the first table
 * reads as CPython's; the byte accounting below counts every pool class.
 */
export function formatDebugStats(h: HeapCore, s: HeapStats): string {
  const g = h.geometry;
  let out = `Small block threshold = ${g.threshold}, in ${g.nbClasses} size classes.\n\n`;
  out += classTable(s, 0, g.nbClasses);
  if (s.classes.slice(g.nbClasses).some((c) => c.pools > 0)) {
    // Two lines, so that the table prints in 80 columns.
    out += `Medium block threshold = ${g.mediumThreshold}, in ${g.poolClasses - g.nbClasses} size classes\n`;
    out += '(pymalloc only: CPython hands these sizes to the system malloc).\n\n';
    out += classTable(s, g.nbClasses, g.poolClasses);
  }
  out += printone('# arenas allocated total', s.arenas.allocatedTotal);
  out += printone('# arenas reclaimed', s.arenas.reclaimed);
  out += printone('# arenas highwater mark', s.arenas.highwater);
  out += printone('# arenas allocated current', s.arenas.current);
  out += printone(`${s.arenas.current} arenas * ${g.arenaSize} bytes/arena`, s.arenas.bytes);
  out += '\n';
  const b = s.bytes;
  out += printone('# bytes in allocated blocks', b.allocatedBlocks);
  out += printone('# bytes in available blocks', b.availableBlocks);
  out += printone(`${s.pools.unused} unused pools * ${g.poolSize} bytes`, b.unusedPools);
  out += printone('# bytes lost to pool headers', b.poolHeaders);
  out += printone('# bytes lost to quantization', b.quantization);
  out += printone('# bytes lost to arena alignment', b.arenaAlignment);
  const total =
    b.allocatedBlocks + b.availableBlocks + b.unusedPools + b.poolHeaders + b.quantization + b.arenaAlignment;
  out += printone('Total', total);
  out += '\n';
  // CPython 3.11 follows with its radix tree's node counts; this heap's arena map is one flat array instead.
  out += 'arena map counts\n';
  const slots = h.meta.arenamapSlots;
  out += printone('# arena map slots', slots);
  out += printone('# bytes in arena map', slots * 4);
  out += printone('# arena map slots in use', s.arenas.current);
  return out;
}
