/** Reading statistics must not touch memory that was given back: mincore would count it as resident again. */
import { destroyAll, makeHeap } from './helpers';

afterEach(destroyAll);

test('stats() and debugStats() leave purged pools non-resident', () => {
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
  expect(h.residentBytes()).toBe(before);
});
