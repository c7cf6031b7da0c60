/**
 * Medium classes: requests of threshold+1..mediumThreshold bytes (513..1024 by default) come from pools, with
 * the small classes' spacing, where CPython would call the system malloc and this heap would otherwise give a
 * whole page.
 */
import { resolveGeometry } from '../../lib/geometry';
import { destroyAll, expectCode, makeHeap } from './helpers';

afterEach(destroyAll);

/** The page size resolveGeometry is given below; heaps use the OS's own (h.geometry.pageSize). */
const PAGE = 4096;

describe('medium classes', () => {
  test('the default geometry serves 513..1024 bytes from pools, in 16-byte classes 32..63', () => {
    const h = makeHeap();
    const g = h.geometry;
    expect([g.threshold, g.nbClasses, g.mediumThreshold, g.poolClasses]).toEqual([512, 32, 1024, 64]);
    for (let n = 513; n <= 1024; n++) {
      const p = h.malloc(n);
      const size = Math.ceil(n / 16) * 16;
      expect(h.usableSize(p)).toBe(size);
      expect(p % 16).toBe(0);
      // In an arena's pool, after its header: not a page-granular span.
      const pool = (p & ~(g.poolSize - 1)) >>> 0;
      expect((p - pool - g.poolOverhead) % size).toBe(0);
      h.u8.fill(n & 0xff, p, p + n);
      h.free(p);
    }
    h.check();
    const s = h.stats();
    expect(s.large.blocks).toBe(0);
    expect(s.classes).toHaveLength(64);
    expect(s.classes[63]).toMatchObject({ index: 63, size: 1024 });
  });

  test('the statistics, the heap walk and the C inspector count medium blocks like small ones', () => {
    const h = makeHeap();
    const live: number[] = [];
    for (let i = 0; i < 200; i++) live.push(h.malloc(600)); // class 37, blocks of 608 bytes
    for (let i = 0; i < 40; i++) live.push(h.malloc(1024)); // class 63
    for (let i = 0; i < 200; i += 2) h.free(live[i]);
    h.check();
    const s = h.stats();
    const perPool608 = Math.floor((16384 - 48) / 608); // 26
    expect(s.classes[37]).toMatchObject({ size: 608, blocksInUse: 100 });
    expect(s.classes[37].pools).toBeGreaterThanOrEqual(Math.ceil(100 / perPool608));
    expect(s.classes[37].blocksInUse + s.classes[37].availBlocks).toBe(s.classes[37].pools * perPool608);
    expect(s.classes[63]).toMatchObject({ size: 1024, pools: Math.ceil(40 / 15), blocksInUse: 40 });
    expect(s.bytesInUse).toBe(100 * 608 + 40 * 1024);
    const c = h.inspect();
    expect(c.classes.map((x) => [x.pools, x.blocks])).toEqual(s.classes.map((x) => [x.pools, x.blocksInUse]));
    const text = h.debugStats();
    expect(text).toMatch(/^Small block threshold = 512, in 32 size classes\.\n/);
    expect(text).toContain('Medium block threshold = 1024, in 32 size classes');
    const medium = text.slice(text.indexOf('Medium block threshold'));
    expect(medium).toMatch(/^\s+37\s+608\s+\d+\s+100\s+\d+$/m);
    expect(medium).toMatch(/^\s+63\s+1024\s+3\s+40\s+5$/m);
    // The small table above it holds no medium class.
    expect(text.slice(0, text.indexOf('Medium block threshold'))).not.toMatch(/^\s+37\s+608\s/m);
  });

  test('realloc moves data between small, medium and large blocks and keeps it', () => {
    const h = makeHeap();
    const sizes = [100, 513, 700, 1024, 1025, 5000, 900, 520, 40, 1000, 16];
    let p = h.malloc(sizes[0]);
    let n = sizes[0];
    for (let i = 0; i < n; i++) h.u8[p + i] = (i * 7 + 3) & 0xff;
    for (const next of sizes.slice(1)) {
      p = h.realloc(p, next);
      const kept = Math.min(n, next);
      for (let i = 0; i < kept; i++) expect(h.u8[p + i]).toBe((i * 7 + 3) & 0xff);
      for (let i = kept; i < next; i++) h.u8[p + i] = (i * 7 + 3) & 0xff;
      n = next;
      h.check();
    }
    // A medium block that shrinks by less than a quarter stays where it is, as a small one would.
    const q = h.malloc(1000);
    expect(h.realloc(q, 800)).toBe(q);
    expect(h.realloc(q, 700)).not.toBe(q);
    h.check();
  });

  test('free refuses interior pointers and double frees of medium blocks, changing nothing', () => {
    const h = makeHeap();
    const p = h.malloc(720);
    h.malloc(720);
    expectCode(h, () => h.free(p + 16), 'ERR_PYMALLOC_INVALID_POINTER', /not at the start of a block/);
    h.free(p);
    expectCode(h, () => h.free(p), 'ERR_PYMALLOC_DOUBLE_FREE', /double free|already freed/);
    h.check();
  });

  test('mediumThreshold equal to threshold turns them off: 513 bytes take a page, as before', () => {
    const h = makeHeap({ mediumThreshold: 512 });
    expect(h.geometry.poolClasses).toBe(32);
    const p = h.malloc(513);
    expect(p % h.geometry.pageSize).toBe(0);
    expect(h.usableSize(p)).toBe(h.geometry.pageSize);
    expect(h.stats().large.blocks).toBe(1);
    expect(h.stats().classes).toHaveLength(32);
    expect(h.debugStats()).not.toContain('Medium');
    h.check();
  });

  test('a smaller mediumThreshold ends the pools there', () => {
    const h = makeHeap({ mediumThreshold: 768 });
    expect(h.usableSize(h.malloc(768))).toBe(768);
    expect(h.usableSize(h.malloc(769))).toBe(h.geometry.pageSize);
    h.check();
  });

  test('the defaults follow the alignment: no medium classes with alignment 8 (64 classes end at 512)', () => {
    expect(resolveGeometry({ preset: 'cpython-3.6' }, PAGE).mediumThreshold).toBe(512);
    expect(resolveGeometry({ alignment: 8 }, PAGE).mediumThreshold).toBe(512);
    expect(resolveGeometry({ alignment: 32 }, PAGE)).toMatchObject({
      mediumThreshold: 1024,
      poolClasses: 32,
    });
    expect(resolveGeometry({ preset: 'os-page' }, PAGE)).toMatchObject({
      mediumThreshold: 1024,
      poolSize: PAGE,
    });
    expect(resolveGeometry({ threshold: 256 }, PAGE)).toMatchObject({ nbClasses: 16, mediumThreshold: 1024 });
    // Naming it makes the geometry custom.
    expect(resolveGeometry({ mediumThreshold: 1024 }, PAGE).preset).toBe('custom');
  });

  test.each([
    [{ mediumThreshold: 256 }, /mediumThreshold must be from threshold \(512\) to 1024, got 256/],
    [{ mediumThreshold: 2048 }, /mediumThreshold must be from threshold \(512\) to 1024, got 2048/],
    [{ mediumThreshold: 600 }, /mediumThreshold \(600\) must be a multiple of alignment \(16\)/],
    [{ alignment: 8, mediumThreshold: 1024 }, /gives 128 pool size classes; at most 64/],
    [{ mediumThreshold: 0 }, /mediumThreshold must be a positive integer, got 0/],
    [{ mediumThreshold: 700.5 }, /mediumThreshold must be a positive integer, got 700.5/],
  ])('rejects %j', (options, message) => {
    expect(() => resolveGeometry(options, PAGE)).toThrow(message);
    expect(() => makeHeap(options)).toThrow(message);
  });
});
