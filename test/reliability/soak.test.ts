/**
 * Soak, bounded: the long-workload check of bench/soak.ts on a few million operations, and the span cache's
 * decay that keeps it flat. A heap whose live set holds steady must not keep gaining resident pages: the span
 * cache may keep freed large blocks committed for reuse (up to twice the pages of the live ones), but pages
 * that no request takes must go back to the OS, or every page a large block ever held ends up resident.
 */
import { Heap, type HeapOptions } from '../../lib';

const MiB = 1024 * 1024;
// Read once: inside Jest's VM context every read of a global such as Math costs far more than outside it, and the
// workload below draws about 10 million random numbers.
const imul = Math.imul;
const floor = Math.floor;

/** mulberry32, as lib/demo/mix's random() (the soak's generator: the same seed gives the soak's workload). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = imul(t ^ (t >>> 15), t | 1);
    t ^= t + imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Growth over the warm-up maximum that the soak allows (bench/soak.ts's TOLERANCE). */
const TOLERANCE = 0.05;

const heaps: Heap[] = [];
afterEach(() => {
  for (const h of heaps.splice(0)) h.destroy();
});

function makeHeap(options: HeapOptions = {}): Heap {
  const h = new Heap(options);
  heaps.push(h);
  return h;
}

/** Resident bytes of the heap's data region (arenas and spans), leaving out its metadata. */
function dataResident(h: Heap): number {
  const start = h.meta.dataStart;
  return h.reservation.residentBytes(start, h.geometry.reserve - start);
}

describe('soak: a steady live set keeps a steady footprint', () => {
  test("the soak's workload: resident bytes after warm-up stay within 5% of the warm-up maximum", () => {
    // bench/soak.ts's mix, seed and live set: malloc and calloc (98% up to 512 bytes, 2% up to 32 KiB, 0.02% up to
    // 512 KiB), realloc and free, hovering near 100,000 live blocks. 4 million operations, a sample every 250,000;
    // the first million are the warm-up (the live set fills up in the first half million).
    const OPS = 4_000_000;
    const SAMPLE = 250_000;
    const WARMUP = 1_000_000;
    const LIVE = 100_000;
    const h = makeHeap();
    const r = rng(1);
    const size = (): number => {
      const x = r();
      if (x < 0.9798) return 1 + floor(r() * 512);
      if (x < 0.9998) return 513 + floor(r() * 32 * 1024);
      return 64 * 1024 + floor(r() * 448 * 1024);
    };
    const ptrs = new Uint32Array(LIVE);
    const tags = new Uint8Array(LIVE);
    let live = 0;
    let lost = 0;
    const samples: { ops: number; resident: number }[] = [];
    for (let i = 1; i <= OPS; i++) {
      const x = r();
      if (live === 0 || (live < LIVE && x < 0.55)) {
        const n = size();
        const p = x < 0.5 ? h.malloc(n) : h.calloc(1, n);
        const tag = (i & 0xff) | 1;
        h.u8[p] = tag;
        ptrs[live] = p;
        tags[live] = tag;
        live++;
      } else {
        const k = floor(r() * live);
        // No block may lose its data, whatever the cache does with the pages around it.
        if (h.u8[ptrs[k]] !== tags[k]) lost++;
        if (x < 0.65) {
          ptrs[k] = h.realloc(ptrs[k], size());
        } else {
          h.free(ptrs[k]);
          live--;
          ptrs[k] = ptrs[live];
          tags[k] = tags[live];
        }
      }
      if (i % SAMPLE === 0) samples.push({ ops: i, resident: dataResident(h) });
    }
    expect(lost).toBe(0);
    h.check();
    const warm = samples.filter((s) => s.ops <= WARMUP);
    const warmMax = Math.max(...warm.map((s) => s.resident));
    const after = samples.filter((s) => s.ops > WARMUP);
    const worst = after.reduce((a, b) => (b.resident > a.resident ? b : a));
    // Say which sample grew and by how much, rather than only that one did.
    const growth = `${(worst.resident / MiB).toFixed(1)} MiB at ${worst.ops} operations, warm-up max ${(warmMax / MiB).toFixed(1)} MiB`;
    expect({ growth, within: worst.resident <= warmMax * (1 + TOLERANCE) }).toEqual({ growth, within: true });

    // Freeing everything and trimming leaves no resident page in the data region.
    for (let k = 0; k < live; k++) {
      if (h.u8[ptrs[k]] !== tags[k]) lost++;
      h.free(ptrs[k]);
    }
    expect(lost).toBe(0);
    h.trim();
    h.check();
    expect(dataResident(h)).toBe(0);
  });

  test('cached pages that no large request takes go back to the OS, down to the spanCache floor', () => {
    const page = 4096;
    const floorBytes = 64 * page;
    const h = makeHeap({ reserve: 256 * MiB, spanCache: floorBytes });
    // 200 blocks of 8 pages, written in full; every other one freed: 100 spans (800 pages) cached, kept apart by
    // the live blocks, well under the budget of twice the 800 live pages.
    const live: number[] = [];
    const idle: number[] = [];
    for (let i = 0; i < 200; i++) {
      const p = h.malloc(8 * page);
      h.u8.fill(1, p, p + 8 * page);
      (i % 2 === 0 ? live : idle).push(p);
    }
    for (const p of idle) h.free(p);
    expect(h.stats().large.cachedBytes).toBe(800 * page);
    expect(dataResident(h)).toBe(1600 * page);
    h.check();

    // A workload that needs one 8-page block at a time: it takes a cached span and gives it back, 2,000 times.
    // The other cached pages are never taken.
    const churn = (times: number) => {
      for (let i = 0; i < times; i++) {
        const p = h.malloc(8 * page);
        expect(idle).toContain(p); // a cached span, not fresh pages
        h.u8[p] = 2;
        h.free(p);
      }
    };
    churn(2000);
    h.check();
    // The idle pages went back: the cache is down to its floor (plus the churn's span, cached again after the
    // last free), and only the live blocks and those stay resident. Without the decay the 800 cached pages would
    // stay resident for as long as the heap lives.
    expect(h.stats().large.cachedBytes).toBeLessThanOrEqual(floorBytes + 8 * page);
    expect(dataResident(h)).toBeLessThanOrEqual(800 * page + floorBytes + 8 * page);
    for (const p of live) expect(h.u8[p + 8 * page - 1]).toBe(1);

    // Once they are gone, reuse costs no system call: the churn's span never sits idle for long.
    const decommit = jest.spyOn(h.reservation, 'decommit');
    churn(2000);
    expect(decommit).not.toHaveBeenCalled();
    decommit.mockRestore();
    h.check();
  });

  test('cached pages that the workload keeps taking stay committed, even beyond the floor', () => {
    // What the working-set budget is for: 32 blocks of 4 pages (128 pages, twice the floor) freed and taken
    // again, over and over, reuse committed pages and pay neither a madvise nor a page fault.
    const page = 4096;
    const floorBytes = 64 * page;
    const h = makeHeap({ reserve: 256 * MiB, spanCache: floorBytes });
    const r = rng(7);
    const blocks: number[] = [];
    for (let i = 0; i < 512; i++) {
      const p = h.malloc(4 * page);
      h.u8.fill(1, p, p + 4 * page);
      blocks.push(p);
    }
    const resident = dataResident(h);
    const decommit = jest.spyOn(h.reservation, 'decommit');
    for (let round = 0; round < 100; round++) {
      const freed: number[] = [];
      for (let j = 0; j < 32; j++) {
        const k = floor(r() * blocks.length);
        freed.push(blocks[k]);
        h.free(blocks[k]);
        blocks[k] = blocks[blocks.length - 1];
        blocks.pop();
      }
      expect(h.stats().large.cachedBytes).toBe(128 * page);
      for (let j = 0; j < 32; j++) {
        const p = h.malloc(4 * page);
        expect(freed).toContain(p);
        h.u8.fill(1, p, p + 4 * page);
        blocks.push(p);
      }
    }
    expect(decommit).not.toHaveBeenCalled();
    decommit.mockRestore();
    expect(dataResident(h)).toBe(resident); // no page was given back, none newly committed
    h.check();
  });
});
