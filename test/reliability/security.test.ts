/**
 * Security: nobody reads or writes memory they do not own.
 * - No addon function accepts a raw address, a forged or foreign handle, a released reservation, or a range
 *   outside the reservation it made (test/os/native.test.ts checks the range arithmetic of each function; here
 *   every export gets every kind of forged handle and address).
 * - The C inspector follows pointers stored in the heap, which JavaScript can overwrite through the views: a
 *   forged heap must give ERR_PYMALLOC_CORRUPT, never a read outside the committed pages (a fault).
 * - calloc returns zeroed memory, reused blocks and cached large spans included; in debug mode malloc never
 *   shows earlier contents.
 * Under PYMALLOC_NATIVE=asan (see docs/reliability.md) the same tests run against the sanitized addon.
 */
import * as fs from 'node:fs';
import { CLEANBYTE, Heap, type HeapOptions, nativeBuild, pageSize, Reservation } from '../../lib';
import { SIZEOF_HEAP_STATE } from '../../lib/generated/layout';
import { type NativeHandle, nativeBinding } from '../../lib/os/native';
import { rng } from './model';

const page = pageSize();
const binding = nativeBinding();

const made: Heap[] = [];
function makeHeap(options: HeapOptions = {}): Heap {
  const h = new Heap({ reserve: 64 * 1024 * 1024, ...options });
  made.push(h);
  return h;
}
afterEach(() => {
  for (const h of made.splice(0)) h.destroy();
});

/** The error's name and code (errors made by the addon belong to Node's main realm, not jest's). */
function caught(fn: () => unknown): { name: string; code: unknown } | 'no error' {
  try {
    fn();
  } catch (err) {
    return { name: (err as Error).name, code: (err as { code?: unknown }).code };
  }
  return 'no error';
}

describe('the addon accepts only its own live handles and ranges inside them', () => {
  let live: ReturnType<typeof binding.reserve>;
  let released: ReturnType<typeof binding.reserve>;
  beforeAll(() => {
    live = binding.reserve(16 * page, page, 'none');
    binding.commit(live.handle, 0, page);
    released = binding.reserve(page, page, 'none');
    binding.release(released.handle);
  });
  afterAll(() => binding.release(live.handle));

  test('the exports are exactly these; none takes an address', () => {
    expect(Object.keys(binding).sort()).toEqual(
      [
        '_liveReservations',
        '_mapCount',
        '_pendingFault',
        '_setFault',
        '_setMapBudget',
        'adviseHugePages',
        'commit',
        'committedPages',
        'decommit',
        'inspectHeap',
        'pageSize',
        'release',
        'reserve',
        'residentPages',
      ].sort(),
    );
  });

  const HANDLE_FNS: [string, (handle: unknown) => unknown][] = [
    ['commit', (h) => binding.commit(h as NativeHandle, 0, page)],
    ['decommit unmap', (h) => binding.decommit(h as NativeHandle, 0, page, 'unmap')],
    ['decommit dontneed', (h) => binding.decommit(h as NativeHandle, 0, page, 'dontneed')],
    ['residentPages', (h) => binding.residentPages(h as NativeHandle, 0, page)],
    ['adviseHugePages', (h) => binding.adviseHugePages(h as NativeHandle, 0, page, true)],
    ['inspectHeap', (h) => binding.inspectHeap(h as NativeHandle)],
    ['release', (h) => binding.release(h as NativeHandle)],
  ];

  const FORGED: [string, () => unknown][] = [
    ['the base address as a number', () => Number(live.base)],
    ['the base address as a bigint', () => live.base],
    ['an address inside the reservation', () => live.base + BigInt(page)],
    ['a handle-shaped plain object', () => ({ token: 1, base: live.base, size: 16 * page })],
    ['an object inheriting from a handle', () => Object.create(live.handle)],
    ['a copy of a handle', () => ({ ...live.handle })],
    ['a structured clone of a handle', () => structuredClone(live.handle)],
    ['a proxy of a handle', () => new Proxy(live.handle, {})],
    ['a Reservation object (another type)', () => Reservation.create(page)],
    ['a Heap (another type)', () => makeHeap()],
    ['the reservation record', () => live],
    ['the ArrayBuffer', () => live.buffer],
    ['a typed array over the reservation', () => new Uint8Array(live.buffer)],
    ['a DataView', () => new DataView(live.buffer)],
    ['an array holding the handle', () => [live.handle]],
    ['a function', () => () => live.handle],
  ];

  describe.each(HANDLE_FNS)('%s', (_name, call) => {
    test.each(FORGED)('refuses %s (TypeError ERR_INVALID_ARG_TYPE)', (_what, forge) => {
      expect(caught(() => call(forge()))).toEqual({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
    });

    test('refuses the handle of a released reservation (ERR_RESERVATION_RELEASED)', () => {
      expect(caught(() => call(released.handle))).toEqual({
        name: 'Error',
        code: 'ERR_RESERVATION_RELEASED',
      });
    });
  });

  const RANGE_FNS: [string, (offset: unknown, length: unknown) => unknown][] = [
    ['commit', (o, l) => binding.commit(live.handle, o as number, l as number)],
    ['decommit unmap', (o, l) => binding.decommit(live.handle, o as number, l as number, 'unmap')],
    ['decommit dontneed', (o, l) => binding.decommit(live.handle, o as number, l as number, 'dontneed')],
    ['residentPages', (o, l) => binding.residentPages(live.handle, o as number, l as number)],
    ['adviseHugePages', (o, l) => binding.adviseHugePages(live.handle, o as number, l as number, true)],
  ];
  const size = 16 * page;
  const OUTSIDE: [string, () => unknown, unknown, string][] = [
    ['the page after the end', () => size, page, 'RangeError'],
    ['one page too long', () => 0, size + page, 'RangeError'],
    ['far beyond', () => 2 ** 40, page, 'RangeError'],
    ['offset + length overflowing 2^53', () => 2 ** 53 - page, 2 ** 53 - page, 'RangeError'],
    ['offset + length past 2^53 (no wrap in 64 bits)', () => 2 ** 52, 2 ** 52, 'RangeError'],
    ['a negative offset', () => -page, 2 * page, 'RangeError'],
    ['an address as the offset', () => Number(live.base), page, 'RangeError'],
    ['a bigint address as the offset', () => live.base, page, 'TypeError'],
    ['an object whose valueOf is an offset', () => ({ valueOf: () => 0 }), page, 'TypeError'],
    ['a string offset', () => '0', page, 'TypeError'],
  ];

  describe.each(RANGE_FNS)('%s', (_name, call) => {
    test.each(OUTSIDE)('refuses %s', (_what, offset, length, name) => {
      expect(caught(() => call(offset(), length))).toEqual({
        name,
        code: name === 'TypeError' ? 'ERR_INVALID_ARG_TYPE' : 'ERR_OUT_OF_RANGE',
      });
    });
  });

  test('reserve and _setFault take no address either', () => {
    expect(caught(() => binding.reserve(live.base as unknown as number, page, 'none'))).toEqual({
      name: 'TypeError',
      code: 'ERR_INVALID_ARG_TYPE',
    });
    expect(caught(() => binding.reserve(page, live.base as unknown as number, 'none'))).toEqual({
      name: 'TypeError',
      code: 'ERR_INVALID_ARG_TYPE',
    });
    expect(caught(() => binding.reserve(Number(live.base), page, 'none'))).toEqual({
      name: 'RangeError',
      code: 'ERR_OUT_OF_RANGE',
    });
    expect(caught(() => binding._setFault('commit', Number(live.base)))).toEqual({
      name: 'RangeError',
      code: 'ERR_OUT_OF_RANGE',
    });
  });

  test('after all of that the live reservation is intact and works', () => {
    binding.commit(live.handle, 0, page);
    const u8 = new Uint8Array(live.buffer);
    u8[0] = 42;
    expect(u8[0]).toBe(42);
    expect(binding.residentPages(live.handle, 0, size)).toBeGreaterThanOrEqual(1);
  });
});

describe('the inspector never trusts the heap it walks', () => {
  test('a reservation that holds no heap: nothing committed, or zeros', () => {
    const r = Reservation.create(64 * page, page, 'none');
    try {
      expect(() => r.inspectHeap()).toThrow(/heap_state is not committed/);
      r.commit(0, 4 * page);
      expect(() => r.inspectHeap()).toThrow(/magic is wrong/);
    } finally {
      r.release();
    }
    // A read-write reservation is all readable: zeros.
    const rw = Reservation.create(64 * page);
    try {
      expect(() => rw.inspectHeap()).toThrow(/magic is wrong/);
    } finally {
      rw.release();
    }
  });

  /**
   * Overwrites words of the heap's metadata and pool headers through the views (as any JavaScript holding the
   * heap can) with values aimed at uncommitted pages, past the reservation or at nothing; inspect() must
   * either agree with stats() (the word did not matter) or throw ERR_PYMALLOC_CORRUPT. The word is restored
   * after each trial, so the heap itself is never used while corrupt.
   */
  for (const decommit of ['unmap', 'dontneed'] as const) {
    test(`forged heap state gives ERR_PYMALLOC_CORRUPT, never a fault (${decommit})`, () => {
      const h = makeHeap({ decommit, reserve: 256 * 1024 * 1024 });
      const r = rng(decommit === 'unmap' ? 11 : 12);
      // A heap with holes: arenas, large spans, purged pools, released arenas.
      const live: number[] = [];
      for (let i = 0; i < 20000; i++) live.push(h.malloc(r() < 0.97 ? 1 + Math.floor(r() * 512) : 5000));
      for (let i = 0; i < live.length; i++) if (i % 3 !== 0) h.free(live[i]);
      h.trim();
      // Pools of the small blocks still live (a large block's pages are no pool: the page below may be unmapped).
      const small = live.filter((p, i) => i % 3 === 0 && h.usableSize(p) <= h.geometry.mediumThreshold);
      const pools = [...new Set(small.map((p) => (p & ~(h.geometry.poolSize - 1)) >>> 0))];
      const stateWords = Math.ceil(SIZEOF_HEAP_STATE / 4);
      const metaWords = h.meta.metaBytes / 4;
      const values = () => {
        const x = r();
        if (x < 0.2) return (r() * 2 ** 32) >>> 0;
        if (x < 0.4) return (h.geometry.reserve - page + Math.floor(r() * page)) >>> 0; // the last page: uncommitted
        if (x < 0.5) return 0xffffffff;
        if (x < 0.6) return 0;
        if (x < 0.8) return (Math.floor(r() * (h.geometry.reserve / page)) * page) >>> 0;
        return h.u32[Math.floor(r() * metaWords)]; // another real value from elsewhere
      };
      let corrupt = 0;
      for (let trial = 0; trial < 4000; trial++) {
        const x = r();
        const word =
          x < 0.5
            ? Math.floor(r() * stateWords)
            : x < 0.8
              ? Math.floor(r() * metaWords)
              : (pools[Math.floor(r() * pools.length)] >>> 2) + Math.floor(r() * 12);
        const saved = h.u32[word];
        h.u32[word] = values();
        try {
          h.inspect();
        } catch (err) {
          expect((err as { code?: string }).code).toBe('ERR_PYMALLOC_CORRUPT');
          corrupt++;
        } finally {
          h.u32[word] = saved;
        }
      }
      expect(corrupt).toBeGreaterThan(100);
      h.check();
      expect(h.inspect().arenas).toBe(h.stats().arenas.current);
    });
  }
});

describe('calloc returns zeroed memory, whatever was there before', () => {
  for (const debug of [false, true]) {
    test(`reused small and medium blocks of every class (${debug ? 'debug' : 'release'})`, () => {
      const h = makeHeap({ debug });
      for (let n = 1; n <= h.geometry.mediumThreshold; n += n < 64 ? 1 : 7) {
        const dirty: number[] = [];
        for (let i = 0; i < 8; i++) {
          const p = h.malloc(n);
          h.u8.fill(0xa5, p, p + n);
          dirty.push(p);
        }
        for (const p of dirty) h.free(p);
        for (let i = 0; i < 8; i++) {
          const p = h.calloc(1, n);
          if (!debug) expect(dirty).toContain(p); // the very blocks just dirtied
          expect(h.u8.subarray(p, p + n).every((b) => b === 0)).toBe(true);
        }
      }
      h.check();
    });
  }

  test('large spans reused from the span cache, and spans returned to the OS', () => {
    // spanCache 0 and no other large block: the cache's budget is 0, so every freed span goes back to the OS.
    for (const cache of [true, false]) {
      const h = makeHeap(cache ? {} : { spanCache: 0 });
      const dirtied: Array<[number, number]> = [];
      for (const pages of [1, 2, 3, 8, 16, 17, 64]) {
        const n = pages * page - 100;
        const p = h.malloc(n);
        h.u8.fill(0x5a, p, p + n);
        dirtied.push([p, p + n]);
        h.free(p);
        expect(h.stats().large.cachedBytes > 0).toBe(cache);
        const q = h.calloc(n, 1);
        // Dirtied pages: from the cache (spans that start where a dirtied block started), or taken again from
        // the free spans.
        if (cache) expect(dirtied.some(([a, b]) => q >= a && q < b)).toBe(true);
        else expect(q).toBe(p);
        expect(h.u8.subarray(q, q + n).every((b) => b === 0)).toBe(true);
        // Bytes past the request, inside the block, are the caller's too: no old contents there either.
        expect(h.u8.subarray(q + n, q + h.usableSize(q)).includes(0x5a)).toBe(false);
        h.free(q);
      }
      h.check();
    }
  });

  test('realloc growth of a calloc block is not promised to be zero, but calloc after realloc is', () => {
    const h = makeHeap();
    const p = h.malloc(300);
    h.u8.fill(0x77, p, p + 300);
    const q = h.realloc(p, 10);
    h.free(q);
    const z = h.calloc(30, 10);
    expect(h.u8.subarray(z, z + 300).every((b) => b === 0)).toBe(true);
  });
});

describe('debug mode: malloc never shows earlier contents', () => {
  test('small blocks and large spans, freed and handed out again, show CLEANBYTE only', () => {
    const h = makeHeap({ debug: true });
    const r = rng(99);
    const SECRET = 0x3c;
    for (let round = 0; round < 300; round++) {
      const n = r() < 0.8 ? 1 + Math.floor(r() * 500) : 513 + Math.floor(r() * 20 * page);
      const ps = [h.malloc(n), h.malloc(n), h.malloc(n)];
      for (const p of ps) h.u8.fill(SECRET, p, p + n);
      for (const p of ps) h.free(p);
      for (let i = 0; i < 3; i++) {
        const p = h.malloc(n);
        const data = h.u8.subarray(p, p + n);
        expect(data.includes(SECRET)).toBe(false);
        expect(data.every((b) => b === CLEANBYTE)).toBe(true);
        h.free(p);
      }
    }
    h.check();
  });

  test('realloc: the grown part shows CLEANBYTE, not the block it moved from or into', () => {
    const h = makeHeap({ debug: true });
    const old = h.malloc(400);
    h.u8.fill(0x3c, old, old + 400);
    h.free(old);
    const p = h.malloc(100);
    h.u8.fill(1, p, p + 100);
    const q = h.realloc(p, 400);
    expect(h.u8.subarray(q, q + 100).every((b) => b === 1)).toBe(true);
    expect(h.u8.subarray(q + 100, q + 400).every((b) => b === CLEANBYTE)).toBe(true);
    h.free(q);
  });
});

test('under PYMALLOC_NATIVE=asan the sanitized addon is the one loaded, with the ASan runtime', () => {
  if (process.env['PYMALLOC_NATIVE'] !== 'asan') {
    expect(['prebuild', 'gyp', 'cmake', 'path']).toContain(nativeBuild().kind);
    return;
  }
  expect(nativeBuild().kind).toBe('asan');
  expect(fs.readFileSync('/proc/self/maps', 'latin1')).toMatch(/libasan\.so/);
});
