import type { Heap } from '../../lib';
import { dataResident, destroyAll, makeHeap } from './helpers';

afterEach(destroyAll);

const MiB = 1024 * 1024;

/** Allocates 512-byte blocks until `arenas` arenas are full; returns the pointers grouped by arena. */
function fillArenas(h: Heap, arenas: number): number[][] {
  const byArena = new Map<number, number[]>();
  const perArena = 64 * 31; // 64 pools of 31 blocks of 512 bytes
  for (let i = 0; i < arenas * perArena; i++) {
    const p = h.malloc(512);
    h.u8[p] = 1; // touch it
    const a = p >>> 20;
    if (!byArena.has(a)) byArena.set(a, []);
    byArena.get(a)!.push(p);
  }
  return [...byArena.values()];
}

describe('arenas', () => {
  test('an arena whose pools are all free goes back to the OS at once, except the last usable one', () => {
    const h = makeHeap({ policy: 'cpython' });
    const groups = fillArenas(h, 3);
    expect(groups).toHaveLength(3);
    expect(h.stats().arenas).toMatchObject({ current: 3, allocatedTotal: 3, highwater: 3 });
    expect(dataResident(h)).toBe(3 * MiB);
    // Free the whole middle arena: all three are full, so it joins usable_arenas as its only member, and a
    // lone wholly free arena is kept (CPython 3.9's guard against thrashing).
    for (const p of groups[1]) h.free(p);
    expect(h.stats().arenas.current).toBe(3);
    h.check();
    // Free the first too: now the middle one is no longer the last of usable_arenas... the one with the
    // most free pools is last, so exactly one wholly free arena is kept.
    for (const p of groups[0]) h.free(p);
    expect(h.stats().arenas).toMatchObject({ current: 2, reclaimed: 1 });
    // One full arena and one wholly free arena kept (still resident) remain.
    expect(dataResident(h)).toBe(2 * MiB);
    h.check();
    for (const p of groups[2]) h.free(p);
    expect(h.stats().arenas.current).toBe(1);
    h.check();
    // trim() gives back the one kept against thrashing.
    expect(h.trim()).toBeGreaterThanOrEqual(MiB);
    expect(h.stats().arenas.current).toBe(0);
    h.check();
  });

  test("'never' keeps every arena (Python 2.4)", () => {
    const h = makeHeap({ policy: 'never' });
    const groups = fillArenas(h, 3);
    for (const g of groups) for (const p of g) h.free(p);
    expect(h.stats().arenas.current).toBe(3);
    expect(h.stats().pools.unused).toBe(3 * 64);
    h.check();
  });

  test('usable_arenas stays sorted and allocation fills the fullest arena first', () => {
    const h = makeHeap({ policy: 'cpython' });
    const groups = fillArenas(h, 4);
    // Free different numbers of pools' worth from each arena.
    groups.forEach((g, i) => {
      for (const p of g.slice(0, 31 * (i + 1) * 3)) h.free(p);
    });
    h.check();
    // The next pool comes from the arena with the fewest free pools: the first one.
    const p = h.malloc(256);
    expect(p >>> 20).toBe(groups[0][0] >>> 20);
    h.check();
  });

  test('pages of a freed arena are not resident (mincore)', () => {
    const h = makeHeap({ policy: 'cpython', spanCache: 0 });
    const groups = fillArenas(h, 8);
    expect(dataResident(h)).toBe(8 * MiB);
    for (const g of groups) for (const p of g) h.free(p);
    h.trim();
    expect(dataResident(h)).toBe(0);
    h.check();
  });

  for (const decommit of ['dontneed', 'unmap'] as const) {
    test(`decommit mode '${decommit}' returns arenas and reuses their addresses`, () => {
      const h = makeHeap({ policy: 'cpython', decommit });
      for (let round = 0; round < 3; round++) {
        const groups = fillArenas(h, 4);
        expect(dataResident(h)).toBe(4 * MiB);
        for (const g of groups) for (const p of g) h.free(p);
        h.trim();
        expect(dataResident(h)).toBe(0);
        h.check();
      }
      expect(h.stats().arenas.allocatedTotal).toBe(12);
    });
  }
});

describe("the 'purge' policy", () => {
  test('gives back the pages of empty pools inside arenas that stay alive', () => {
    const h = makeHeap({ policy: 'purge', purgeThreshold: 64 * 1024 * 1024, purgeDelay: 0 });
    const groups = fillArenas(h, 4);
    // One survivor per arena pins it; every other pool becomes empty.
    for (const g of groups) for (const p of g.slice(1)) h.free(p);
    expect(h.stats().arenas.current).toBe(4);
    expect(dataResident(h)).toBe(4 * MiB);
    const returned = h.trim();
    expect(returned).toBe(4 * 63 * 16384);
    // Only the pools of the four survivors stay resident.
    expect(dataResident(h)).toBe(4 * 16384);
    expect(h.stats().pools).toMatchObject({ used: 4, unused: 4 * 63, purged: 4 * 63 });
    h.check();
    // Purged pools are reused as fresh ones.
    const again = fillArenas(h, 1).flat();
    expect(h.stats().pools.purged).toBeLessThan(4 * 63);
    for (const p of again) h.free(p);
    h.check();
  });

  test('purges automatically once empty pools reach the threshold', () => {
    const h = makeHeap({ policy: 'purge', purgeThreshold: 1024 * 1024, purgeDelay: 0 });
    const groups = fillArenas(h, 3);
    for (const g of groups) for (const p of g.slice(1)) h.free(p);
    const s = h.stats();
    expect(s.pools.purged).toBeGreaterThan(0);
    h.check();
  });

  test("'cpython' never purges", () => {
    const h = makeHeap({ policy: 'cpython', purgeThreshold: 16384 });
    const groups = fillArenas(h, 2);
    for (const g of groups) for (const p of g.slice(1)) h.free(p);
    expect(h.stats().pools.purged).toBe(0);
    h.check();
  });
});

describe('arenas of a single pool', () => {
  test('a full one-pool arena that empties again is handled like any other', () => {
    const h = makeHeap({ poolSize: 16384, arenaSize: 16384, policy: 'cpython' });
    const a: number[] = [];
    for (let i = 0; i < 3 * 31; i++) a.push(h.malloc(512)); // three full one-pool arenas
    expect(h.stats().arenas.current).toBe(3);
    for (const p of a.slice(0, 31)) h.free(p);
    h.check();
    for (const p of a.slice(31, 62)) h.free(p);
    h.check();
    for (const p of a.slice(62)) h.free(p);
    h.check();
    h.trim();
    expect(h.stats().arenas.current).toBe(0);
    h.check();
  });
});
