import { Heap } from '../../lib';
import { destroyAll, makeHeap, rng } from './helpers';

afterEach(destroyAll);

/** The C inspector's view must equal heap.stats(): the proof that the generated header matches the memory. */
function expectAgreement(h: Heap): void {
  const c = h.inspect();
  const s = h.stats();
  expect(c.classes.map((x) => [x.pools, x.blocks])).toEqual(s.classes.map((x) => [x.pools, x.blocksInUse]));
  expect(c.arenas).toBe(s.arenas.current);
  expect(c.freePools).toBe(s.pools.unused);
  expect(c.usedPoolsListed + c.fullPools).toBe(s.pools.used);
}

describe('the native inspector (C, through native/pymalloc_layout.h)', () => {
  for (const preset of ['cpython-3.11', 'cpython-3.6', 'os-page'] as const) {
    test(`agrees with heap.stats() after random workloads (${preset})`, () => {
      const h = makeHeap({ preset, reserve: 256 * 1024 * 1024 });
      const random = rng(42);
      const live: number[] = [];
      for (let round = 0; round < 5; round++) {
        for (let i = 0; i < 20000; i++) {
          if (live.length > 0 && random() < 0.45) {
            const k = Math.floor(random() * live.length);
            h.free(live[k]);
            live[k] = live[live.length - 1];
            live.pop();
          } else {
            const r = random();
            live.push(
              h.malloc(r < 0.95 ? 1 + Math.floor(random() * 512) : 513 + Math.floor(random() * 20000)),
            );
          }
        }
        h.check();
        expectAgreement(h);
      }
      for (const p of live) h.free(p);
      expectAgreement(h);
    });
  }

  test('agrees with heap.stats() on a shared heap: every thread slot, blocks freed by another thread', () => {
    const a = new Heap({ shared: true, reserve: 256 * 1024 * 1024 });
    const b = Heap.attach(a.handle);
    try {
      const random = rng(7);
      const live: number[] = [];
      for (let round = 0; round < 4; round++) {
        for (let i = 0; i < 20000; i++) {
          // Two thread slots allocate; either frees any block (a cross-thread free half of the time).
          const h = random() < 0.5 ? a : b;
          if (live.length > 0 && random() < 0.45) {
            const k = Math.floor(random() * live.length);
            h.free(live[k]!);
            live[k] = live[live.length - 1]!;
            live.pop();
          } else {
            live.push(
              h.malloc(random() < 0.95 ? 1 + Math.floor(random() * 512) : 513 + Math.floor(random() * 20000)),
            );
          }
        }
        a.check();
        expectAgreement(a);
        expectAgreement(b);
      }
      for (const p of live) b.free(p);
      expectAgreement(a);
      a.trim();
      b.trim();
      expectAgreement(a);
      expect(a.inspect().classes.every((c) => c.pools === 0 && c.blocks === 0)).toBe(true);
    } finally {
      b.detach();
      a.destroy();
    }
  });

  test('reports a corrupt heap instead of faulting', () => {
    const h = makeHeap();
    h.malloc(32);
    expectAgreement(h);
    const saved = h.u32[0];
    h.u32[0] = 0; // heap_state.magic
    expect(() => h.inspect()).toThrow(/magic/);
    h.u32[0] = saved;
    // A usedpools pointer aimed outside every arena.
    const slot = h.usedBase >>> 2;
    const old = h.u32[slot];
    h.u32[slot] = 0x100;
    expect(() => h.inspect()).toThrow(expect.objectContaining({ code: 'ERR_PYMALLOC_CORRUPT' }));
    h.u32[slot] = old;
    expectAgreement(h);
  });
});
