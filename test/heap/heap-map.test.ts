/** heapMap(heap): the state of every pool of every arena, and the large spans, on heaps of a known layout. */

import { arenaObject } from '../../lib/arena';
import { OFFSETOF_ARENA_OBJECT_ADDRESS } from '../../lib/generated/layout';
import { countPools, heapMap } from '../../lib/heap-map';
import { destroyAll, makeHeap } from './helpers';

afterEach(destroyAll);

const KiB = 1024;

/** Blocks of `size` bytes in one pool of a fresh heap like h, as stats() counts them (in use + available). */
function blocksPerPool(size: number): number {
  const h = makeHeap({ policy: 'cpython' });
  h.malloc(size);
  const c = h.stats().classes.find((k) => k.pools === 1)!;
  return c.blocksInUse + c.availBlocks;
}

test('a full pool, a used one, fresh pools and a large span, in address order', () => {
  const per16 = blocksPerPool(16);
  const h = makeHeap({ policy: 'cpython' });
  const small: number[] = [];
  for (let i = 0; i < per16; i++) small.push(h.malloc(16));
  const p32 = h.malloc(32);
  const p48 = [h.malloc(48), h.malloc(48), h.malloc(48)];
  const big = h.malloc(100_000);
  const map = heapMap(h);
  expect(map.poolSize).toBe(h.geometry.poolSize);
  expect(map.arenaSize).toBe(h.geometry.arenaSize);
  expect(map.poolsPerArena).toBe(h.geometry.arenaSize / h.geometry.poolSize);
  expect(map.arenas).toHaveLength(1);
  const [arena] = map.arenas;
  expect(arena!.pools).toHaveLength(map.poolsPerArena);
  // Pools are carved from the arena's start: the 16-byte pool first, then the 32-byte one, then the 48-byte one.
  const [first, second, third, ...rest] = arena!.pools;
  expect(first).toEqual({
    state: 'full',
    sizeClass: 0,
    blockSize: 16,
    blocksInUse: per16,
    blocks: per16,
    fill: 1,
  });
  expect(second).toMatchObject({ state: 'used', sizeClass: 1, blockSize: 32, blocksInUse: 1 });
  expect(second!.fill).toBeCloseTo(1 / second!.blocks, 12);
  expect(third).toMatchObject({ state: 'used', blockSize: 48, blocksInUse: 3 });
  expect(rest.every((p) => p.state === 'fresh' && p.fill === 0 && p.sizeClass === null)).toBe(true);
  // Each block lies in the pool the map says holds it.
  expect(Math.floor((small[0]! - arena!.address) / map.poolSize)).toBe(0);
  expect(Math.floor((p32 - arena!.address) / map.poolSize)).toBe(1);
  expect(Math.floor((p48[0]! - arena!.address) / map.poolSize)).toBe(2);
  // The large block: one span of whole pages holding its 100,000 bytes, outside the arena.
  expect(map.spans).toEqual([
    { kind: 'large', address: expect.any(Number), bytes: expect.any(Number), requested: 100_000 },
  ]);
  const span = map.spans[0]!;
  expect(span.bytes).toBe(Math.ceil(100_000 / h.geometry.pageSize) * h.geometry.pageSize);
  expect(big >= span.address && big < span.address + span.bytes).toBe(true);
  expect(countPools(map)).toEqual({ used: 2, full: 1, empty: 0, purged: 0, fresh: map.poolsPerArena - 3 });
  // The counts agree with stats().
  expect(countPools(map).used + countPools(map).full).toBe(h.stats().pools.used);
  h.check();
});

test('an emptied pool is empty until trim() gives its pages back, then purged', () => {
  for (const policy of ['cpython', 'purge'] as const) {
    const h = makeHeap({ policy });
    const keep = h.malloc(64);
    const ptrs: number[] = [];
    for (let i = 0; i < 10; i++) ptrs.push(h.malloc(16));
    for (const p of ptrs) h.free(p);
    expect(
      heapMap(h)
        .arenas[0]!.pools.slice(0, 2)
        .map((p) => p.state),
    ).toEqual(['used', 'empty']);
    h.trim();
    const states = heapMap(h)
      .arenas[0]!.pools.slice(0, 2)
      .map((p) => p.state);
    expect(states).toEqual(['used', 'purged']);
    expect(countPools(heapMap(h)).purged).toBe(h.stats().pools.purged);
    h.free(keep);
    h.check();
  }
});

test('a few survivors pin one arena each: the map shows two arenas with one used pool among free ones', () => {
  const h = makeHeap({ policy: 'purge' });
  // Fill three arenas with 512-byte blocks, then keep one block at the start of the first and the third.
  const ptrs: number[] = [];
  while (h.stats().arenas.current < 4) ptrs.push(h.malloc(512));
  const arenaOf = (p: number) => Math.floor(p / h.geometry.arenaSize);
  const arenas = [...new Set(ptrs.map(arenaOf))];
  const keep = new Set([
    ptrs.find((p) => arenaOf(p) === arenas[0])!,
    ptrs.find((p) => arenaOf(p) === arenas[2])!,
  ]);
  for (const p of ptrs) if (!keep.has(p)) h.free(p);
  h.trim();
  const map = heapMap(h);
  expect(map.arenas.map((a) => Math.floor(a.address / h.geometry.arenaSize))).toEqual([arenas[0], arenas[2]]);
  for (const a of map.arenas) {
    expect(a.pools.filter((p) => p.state === 'used')).toEqual([
      expect.objectContaining({ blockSize: 512, blocksInUse: 1 }),
    ]);
    expect(a.pools.filter((p) => p.state !== 'used').every((p) => p.state === 'purged')).toBe(true);
  }
  expect(map.arenas.length).toBe(h.stats().arenas.current);
  h.check();
});

test('a cached large span is drawn as cached; a destroyed heap is an error', () => {
  const h = makeHeap({ policy: 'purge' });
  const a = h.malloc(64 * KiB);
  h.malloc(16);
  h.free(a);
  const spans = heapMap(h).spans;
  // Freed large pages are kept committed for reuse (the span cache) until trim().
  expect(spans.map((s) => s.kind)).toEqual(['cached']);
  expect(spans[0]!.requested).toBeNull();
  h.trim();
  expect(heapMap(h).spans).toEqual([]);
  h.destroy();
  let err: unknown;
  try {
    heapMap(h);
  } catch (e) {
    err = e;
  }
  expect((err as { code?: string }).code).toBe('ERR_PYMALLOC_DESTROYED');
});

test('an arena address overwritten in the arena table is ERR_PYMALLOC_CORRUPT, not a fault', () => {
  const h = makeHeap({ policy: 'cpython' });
  h.malloc(16);
  const word = (arenaObject(h, 0) + OFFSETOF_ARENA_OBJECT_ADDRESS) >>> 2;
  const saved = h.u32[word]!;
  h.u32[word] = saved + 8;
  expect(() => heapMap(h)).toThrow(
    expect.objectContaining({
      code: 'ERR_PYMALLOC_CORRUPT',
      message: expect.stringMatching(/^pymalloc: heapMap: /),
    }),
  );
  h.u32[word] = saved;
  h.check();
  expect(heapMap(h).arenas).toHaveLength(1);
});
