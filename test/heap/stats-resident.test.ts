/**
 * Reading statistics, from JavaScript or from C, must not touch memory that was given back: a read maps the zero
 * page in, and mincore would count the pool as resident again.
 */
import { destroyAll, makeHeap } from './helpers';

afterEach(destroyAll);

test('stats(), debugStats() and inspect() leave purged pools non-resident', () => {
  const h = makeHeap({ policy: 'purge' });
  const ptrs: number[] = [];
  for (let i = 0; i < 200_000; i++) {
    const p = h.malloc(64);
    h.u8[p] = 1;
    ptrs.push(p);
  }
  // Keep one block in every 4th arena, so those arenas live on with empty pools in them.
  const perArena = Math.floor((1024 * 1024) / 64);
  ptrs.forEach((p, i) => {
    if (i % (4 * perArena) !== 0) h.free(p);
  });
  h.trim();
  const purged = h.stats().pools.purged;
  expect(purged).toBeGreaterThan(100);
  const before = h.residentBytes();
  h.stats();
  h.debugStats();
  const inspected = h.inspect();
  expect(inspected.arenas).toBe(h.stats().arenas.current);
  expect(h.residentBytes()).toBe(before);
});
