/**
 * The heap map: the state of every pool of every arena, and every large span, read by a read-only walk of the
 * heap's metadata (the walk of stats.ts, with its checks). It is the data of the picture that
 * `pymalloc replay --map` and `pymalloc demo --map` draw (lib/report/heap-map-chart.ts): one row per arena, one
 * cell per pool, so that a user sees which arenas a few surviving blocks pin.
 *
 * Pool states:
 *   used    holds blocks of one size class, with room for more (`fill` = blocks in use / blocks per pool)
 *   full    every block of the pool is in use
 *   empty   a free pool of a live arena whose pages are still resident (it held blocks, then emptied)
 *   purged  a free pool whose pages were given back to the OS while its arena lives (policy 'purge')
 *   fresh   never carved: the arena has not handed this pool out yet
 * Nothing here writes to the heap, and a purged pool's header is not read (reading it would map the kernel's
 * zero page there, which mincore counts as resident).
 */
import { arenaAddress, arenaObject, isPurged, isReadableArena } from './arena';
import { codedError } from './core';
import {
  arena_object_get_pool_address,
  heap_state_get_maxarenas,
  pool_header_get_ref_count,
  pool_header_get_szidx,
} from './generated/layout';
import { blocksPerPool, classSize } from './geometry';
import type { Heap } from './heap';
import { forEachSpan, SPAN_CACHED, SPAN_LARGE } from './span';

export type PoolState = 'used' | 'full' | 'empty' | 'purged' | 'fresh';

export interface PoolCell {
  state: PoolState;
  /** Size class and block size of a used or full pool; null for the others. */
  sizeClass: number | null;
  blockSize: number | null;
  blocksInUse: number;
  /** Blocks the pool holds when full (0 unless used or full). */
  blocks: number;
  /** blocksInUse / blocks: 0 for a free pool, 1 for a full one. */
  fill: number;
}

export interface ArenaRow {
  /** Index of the arena object (CPython's arena table). */
  index: number;
  /** Offset of the arena in the heap's reservation. */
  address: number;
  pools: PoolCell[];
}

export interface SpanRow {
  /** 'large': a large block's pages; 'cached': a freed large block's pages kept committed for reuse. */
  kind: 'large' | 'cached';
  address: number;
  bytes: number;
  /** Bytes requested by a large block; null for a cached span. */
  requested: number | null;
}

export interface HeapMap {
  poolSize: number;
  arenaSize: number;
  poolsPerArena: number;
  /** Live arenas in address order. */
  arenas: ArenaRow[];
  /** Large and cached spans in address order. */
  spans: SpanRow[];
}

const S = 0;

function corrupt(message: string): never {
  throw codedError(Error, 'ERR_PYMALLOC_CORRUPT', `pymalloc: heapMap: the heap is corrupt: ${message}`);
}

/** Counts of each pool state over a map (arenas only), e.g. to caption it. */
export function countPools(map: HeapMap): Record<PoolState, number> {
  const counts: Record<PoolState, number> = { used: 0, full: 0, empty: 0, purged: 0, fresh: 0 };
  for (const a of map.arenas) for (const p of a.pools) counts[p.state]++;
  return counts;
}

/**
 * The heap map of `heap` now. Like stats(), it reads nothing at an offset taken from the heap's memory before
 * checking that it lies in a readable arena of the heap, and throws ERR_PYMALLOC_CORRUPT for what does not fit;
 * on a destroyed heap it throws ERR_PYMALLOC_DESTROYED.
 */
export function heapMap(heap: Heap): HeapMap {
  if (heap.isDestroyed)
    throw codedError(Error, 'ERR_PYMALLOC_DESTROYED', 'pymalloc: heapMap: the heap has been destroyed');
  const h = heap;
  const g = h.geometry;
  const poolsPerArena = g.arenaSize / g.poolSize;
  const maxarenas = heap_state_get_maxarenas(h, S);
  if (maxarenas > g.arenaSlots) corrupt(`maxarenas ${maxarenas} exceeds the ${g.arenaSlots} arena slots`);
  const readable = h.reservation.readablePages();
  const arenas: ArenaRow[] = [];
  for (let i = 0; i < maxarenas; i++) {
    const ao = arenaObject(h, i);
    const address = arenaAddress(h, ao);
    if (address === 0) continue;
    if (!isReadableArena(h, readable, address))
      corrupt(`arena ${i} has address ${address}, not a readable arena of this heap`);
    const carvedEnd = arena_object_get_pool_address(h, ao);
    if (carvedEnd < address || carvedEnd > address + g.arenaSize)
      corrupt(`arena ${i}: pool_address ${carvedEnd} is outside it`);
    const pools: PoolCell[] = [];
    for (let index = 0; index < poolsPerArena; index++) {
      const pool = address + index * g.poolSize;
      const free = { sizeClass: null, blockSize: null, blocksInUse: 0, blocks: 0, fill: 0 };
      if (pool >= carvedEnd) pools.push({ state: 'fresh', ...free });
      else if (isPurged(h, address, index)) pools.push({ state: 'purged', ...free });
      else {
        const count = pool_header_get_ref_count(h, pool);
        if (count === 0) pools.push({ state: 'empty', ...free });
        else {
          const sz = pool_header_get_szidx(h, pool);
          if (sz >= g.poolClasses) corrupt(`pool ${pool} has size class ${sz}`);
          const blocks = blocksPerPool(g, sz);
          if (count > blocks) corrupt(`pool ${pool} has ${count} blocks in use, more than its ${blocks}`);
          pools.push({
            state: count === blocks ? 'full' : 'used',
            sizeClass: sz,
            blockSize: classSize(g, sz),
            blocksInUse: count,
            blocks,
            fill: count / blocks,
          });
        }
      }
    }
    arenas.push({ index: i, address, pools });
  }
  arenas.sort((a, b) => a.address - b.address);
  const spans: SpanRow[] = [];
  forEachSpan(h, (pg, pages, kind) => {
    if (pg + pages > g.pages) corrupt(`the span at page ${pg} runs past the reservation`);
    if (kind !== SPAN_LARGE && kind !== SPAN_CACHED) return;
    const large = kind === SPAN_LARGE;
    spans.push({
      kind: large ? 'large' : 'cached',
      address: pg * g.pageSize,
      bytes: pages * g.pageSize,
      requested: large ? h.u32[h.linksIdx + 2 * pg] : null,
    });
  });
  return { poolSize: g.poolSize, arenaSize: g.arenaSize, poolsPerArena, arenas, spans };
}
