import fc from 'fast-check';
import type { Heap } from '../../lib';
import { destroyAll, makeHeap } from './helpers';

afterEach(destroyAll);

type Op =
  | { op: 'malloc'; size: number }
  | { op: 'calloc'; count: number; size: number }
  | { op: 'free'; pick: number }
  | { op: 'realloc'; pick: number; size: number };

const size = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0, max: 512 }) },
  { weight: 1, arbitrary: fc.integer({ min: 513, max: 70000 }) },
);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('malloc' as const), size }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('calloc' as const),
      count: fc.integer({ min: 0, max: 8 }),
      size: fc.integer({ min: 0, max: 100 }),
    }),
  },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('free' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('realloc' as const), pick: fc.nat(), size }) },
);

/** The byte pattern of object `id` at offset i. */
const pattern = (id: number, i: number) => (id * 31 + i * 7 + 1) & 0xff;

function fill(h: Heap, p: number, id: number, n: number, from = 0): void {
  for (let i = from; i < n; i++) h.u8[p + i] = pattern(id, i);
}

function verify(h: Heap, p: number, id: number, n: number): void {
  for (let i = 0; i < n; i++) {
    if (h.u8[p + i] !== pattern(id, i)) throw new Error(`object ${id} at ${p}: byte ${i} lost`);
  }
}

describe('property: the heap against a model of live blocks', () => {
  for (const preset of ['cpython-3.11', 'cpython-3.6', 'os-page'] as const) {
    test(`every live block keeps its bytes, no two overlap, and check() passes (${preset})`, () => {
      fc.assert(
        fc.property(fc.array(opArb, { minLength: 1, maxLength: 300 }), (ops) => {
          const h = makeHeap({ preset, reserve: 64 * 1024 * 1024, spanCache: 64 * 1024 });
          const live: { id: number; p: number; n: number }[] = [];
          let nextId = 1;
          for (const o of ops) {
            if (o.op === 'malloc' || o.op === 'calloc') {
              const n = o.op === 'malloc' ? o.size : o.count * o.size;
              const p = o.op === 'malloc' ? h.malloc(n) : h.calloc(o.count, o.size);
              if (o.op === 'calloc') for (let i = 0; i < n; i++) expect(h.u8[p + i]).toBe(0);
              expect(h.usableSize(p)).toBeGreaterThanOrEqual(n);
              expect(p % h.geometry.alignment).toBe(0);
              const id = nextId++;
              fill(h, p, id, n);
              live.push({ id, p, n });
            } else if (live.length > 0) {
              const k = o.pick % live.length;
              const b = live[k];
              verify(h, b.p, b.id, b.n);
              if (o.op === 'free') {
                h.free(b.p);
                live.splice(k, 1);
              } else {
                const q = h.realloc(b.p, o.size);
                verify(h, q, b.id, Math.min(b.n, o.size));
                fill(h, q, b.id, o.size, Math.min(b.n, o.size));
                live[k] = { id: b.id, p: q, n: o.size };
              }
            }
          }
          // No two live blocks overlap.
          const sorted = [...live].sort((a, b) => a.p - b.p);
          for (let i = 1; i < sorted.length; i++) {
            expect(sorted[i].p).toBeGreaterThanOrEqual(sorted[i - 1].p + Math.max(1, sorted[i - 1].n));
          }
          for (const b of live) verify(h, b.p, b.id, b.n);
          h.check();
          const s = h.stats();
          expect(s.blocksInUse).toBe(live.length);
          const c = h.inspect();
          expect(c.classes.map((x) => x.blocks)).toEqual(s.classes.map((x) => x.blocksInUse));
          for (const b of live) h.free(b.p);
          h.check();
          expect(h.stats().blocksInUse).toBe(0);
          h.destroy();
        }),
        { numRuns: 60, seed: 20261121 },
      );
    });
  }
});
