// Huge-page arenas (HeapOptions.hugePages): each arena is one transparent huge page when the kernel has them, the
// allocator decides exactly as without them, and memory still goes back to the OS, a whole arena at a time.
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Heap, type HeapOptions } from '../../lib';
import { heapOptionsFrom } from '../../lib/cli/heap-options';
import { Reservation, transparentHugePages } from '../../lib/os';
import { parseTransparentHugePages } from '../../lib/os/probes';
import { freeAll, loadTrace, replay } from '../../lib/trace';
import { dataResident, destroyAll, makeHeap } from './helpers';

afterEach(destroyAll);

const MiB = 1024 * 1024;
const thp = transparentHugePages();
const usable = thp !== null && thp.mode !== 'never' && thp.size === 2 * MiB;
const huge: HeapOptions = { preset: 'cpython-hugepages', hugePages: true };

/** /proc/vmstat's count of huge-page faults that fell back to normal pages (no free huge page at hand). */
function thpFallbacks(): number {
  const m = /^thp_fault_fallback (\d+)$/m.exec(fs.readFileSync('/proc/vmstat', 'latin1'));
  return m ? Number(m[1]) : 0;
}

test('the kernel settings parse; anything else is null', () => {
  expect(parseTransparentHugePages('always [madvise] never\n', '2097152\n')).toEqual({
    mode: 'madvise',
    size: 2097152,
  });
  expect(parseTransparentHugePages('[always] madvise never', '2097152')).toEqual({
    mode: 'always',
    size: 2097152,
  });
  expect(parseTransparentHugePages('always madvise [never]', '536870912')).toEqual({
    mode: 'never',
    size: 536870912,
  });
  expect(parseTransparentHugePages('always madvise never', '2097152')).toBeNull();
  expect(parseTransparentHugePages('[madvise]', 'two megabytes')).toBeNull();
  expect(parseTransparentHugePages('[madvise]', '0')).toBeNull();
});

test('this machine: transparent huge pages are read from sysfs', () => {
  if (thp === null) {
    console.log('no transparent huge pages on this kernel: the huge-page heap tests check the fallback only');
    expect(fs.existsSync('/sys/kernel/mm/transparent_hugepage/enabled')).toBe(false);
    return;
  }
  expect(['always', 'madvise', 'never']).toContain(thp.mode);
  expect(thp.size % 4096).toBe(0);
});

test('the option is checked: a boolean, and arenas a multiple of the huge page size', () => {
  for (const bad of ['yes', 1, null]) {
    expect(() => new Heap({ hugePages: bad as unknown as boolean })).toThrow(
      expect.objectContaining({
        name: 'TypeError',
        code: 'ERR_INVALID_ARG_TYPE',
        message: 'pymalloc: new Heap: hugePages must be a boolean',
      }),
    );
  }
  if (usable) {
    expect(() => new Heap({ hugePages: true, reserve: 64 * MiB })).toThrow(
      expect.objectContaining({
        name: 'RangeError',
        code: 'ERR_OUT_OF_RANGE',
        message:
          'pymalloc: new Heap: hugePages needs the arena size to be a multiple of the huge page size (2097152), got 1048576: ' +
          "use preset 'cpython-hugepages' or arenaSize 2097152",
      }),
    );
  }
  expect(heapOptionsFrom({ hugePages: true, preset: 'cpython-hugepages' })).toEqual(huge);
});

test('a heap says whether its arenas are huge pages', () => {
  expect(makeHeap().hugePages).toBe(false);
  expect(makeHeap({ preset: 'cpython-hugepages' }).hugePages).toBe(false);
  const h = makeHeap(huge);
  expect(h.hugePages).toBe(thp !== null && thp.mode !== 'never');
  expect(h.geometry.arenaSize).toBe(2 * MiB);
  expect(h.specialised).toBe(h.geometry.pageSize === 4096);
});

describe('on this machine', () => {
  const run = usable ? test : test.skip;
  if (!usable)
    console.log(`transparent huge pages unusable here (${JSON.stringify(thp)}): residency tests not run`);

  run(
    'touching one block brings in the whole arena as one huge page, and freeing it returns all of it',
    () => {
      const h = makeHeap(huge);
      const fallbacks = thpFallbacks();
      const p = h.malloc(32);
      h.u8[p] = 1;
      const resident = dataResident(h);
      // The kernel gives normal pages when it has no free huge page; /proc/vmstat says when that happened.
      if (thpFallbacks() > fallbacks) {
        console.log('the kernel had no free huge page: it fell back to normal pages');
        expect(resident).toBe(h.geometry.pageSize);
      } else {
        expect(resident).toBe(2 * MiB);
      }
      h.free(p);
      h.check();
      expect(h.trim()).toBeGreaterThanOrEqual(2 * MiB);
      expect(dataResident(h)).toBe(0);
    },
  );

  run('purge leaves a live huge-page arena whole; the arena goes back once it is free', () => {
    const h = makeHeap({ ...huge, purgeThreshold: 0 });
    const plain = makeHeap({ preset: 'cpython-hugepages', purgeThreshold: 0 });
    for (const heap of [h, plain]) {
      // Fill most of one arena, keep one block, free the rest: 120 of its 128 pools become empty.
      const blocks: number[] = [];
      for (let i = 0; i < 120 * 32; i++) blocks.push(heap.malloc(496));
      for (const p of blocks) heap.u8[p] = 1;
      for (const p of blocks.slice(1)) heap.free(p);
      heap.check();
      expect(heap.stats().arenas.current).toBe(1);
      heap.trim();
      // Without huge pages the empty pools went back; with them the arena stays whole.
      expect(dataResident(heap)).toBe(heap === h ? 2 * MiB : heap.geometry.poolSize);
      heap.free(blocks[0]!);
      heap.trim();
      expect(dataResident(heap)).toBe(0);
      heap.check();
    }
  });

  run('a returned arena loses its advice: a large block in its place gets normal pages', () => {
    const h = makeHeap(huge);
    const p = h.malloc(64);
    h.u8[p] = 1;
    h.free(p);
    h.trim();
    expect(dataResident(h)).toBe(0);
    const arena = p - (p % (2 * MiB));
    const big = h.malloc(64 * 1024);
    // The span allocator hands out the lowest free pages: where the arena was.
    expect(big >= arena && big < arena + 2 * MiB).toBe(true);
    h.u8[big] = 1;
    expect(dataResident(h)).toBe(h.geometry.pageSize);
    h.free(big);
  });

  run('advice the kernel refuses fails nothing: the arena is made, used and returned on normal pages', () => {
    const h = makeHeap(huge);
    const refuse = jest.spyOn(Reservation.prototype, 'adviseHugePages').mockImplementation(() => {
      throw Object.assign(new Error('madvise failed: ENOMEM'), { code: 'ENOMEM' });
    });
    try {
      const p = h.malloc(32);
      h.u8[p] = 1;
      expect(refuse).toHaveBeenCalledTimes(1);
      expect(dataResident(h)).toBe(h.geometry.pageSize);
      h.check();
      h.free(p);
      expect(h.trim()).toBeGreaterThanOrEqual(2 * MiB);
      expect(refuse).toHaveBeenCalledTimes(2);
      h.check();
    } finally {
      refuse.mockRestore();
    }
  });

  run('a real trace: the same pointers and statistics as a heap of normal pages', async () => {
    const trace = await loadTrace(join(__dirname, '..', 'fixtures', 'traces', 'regex.trace.gz'));
    const results = [false, true].map((hugePages) => {
      const h = makeHeap({ preset: 'cpython-hugepages', hugePages, policy: 'cpython' });
      const ptrs = new Uint32Array(trace.objects);
      replay(h, trace, ptrs);
      h.check();
      const atEnd = { ptrs: Array.from(ptrs), stats: h.debugStats() };
      freeAll(h, ptrs);
      return { ...atEnd, after: h.stats(), resident: dataResident(h) };
    });
    expect(results[1]!.ptrs).toEqual(results[0]!.ptrs);
    expect(results[1]!.stats).toBe(results[0]!.stats);
    expect(results[1]!.after).toEqual(results[0]!.after);
    // One arena kept (CPython's guard against thrashing): a whole huge page, or the pages it touched.
    expect(results[1]!.resident).toBeGreaterThanOrEqual(results[0]!.resident);
  });
});
