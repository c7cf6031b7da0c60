import { Heap } from '../../lib';
import { divisibilityMagic, POOL_MAGIC } from '../../lib/core';
import { destroyAll, expectCode, makeHeap } from './helpers';

afterEach(destroyAll);

describe('malloc and free', () => {
  test('1021 blocks of 16 bytes fill exactly one 16 KiB pool', () => {
    const h = makeHeap();
    const ps: number[] = [];
    for (let i = 0; i < 1021; i++) ps.push(h.malloc(16));
    let s = h.stats();
    expect(s.classes[0]).toEqual({ index: 0, size: 16, pools: 1, blocksInUse: 1021, availBlocks: 0 });
    expect(s.arenas.current).toBe(1);
    expect(s.pools).toEqual({ used: 1, unused: 63, purged: 0 });
    // Consecutive blocks of one pool, after its 48-byte header.
    const pool = ps[0] - 48;
    expect(pool % 16384).toBe(0);
    ps.forEach((p, i) => {
      expect(p).toBe(pool + 48 + 16 * i);
    });
    // The 1022nd takes a second pool.
    const extra = h.malloc(16);
    expect(extra - (extra % 16384)).not.toBe(pool);
    s = h.stats();
    expect(s.classes[0]).toMatchObject({ pools: 2, blocksInUse: 1022, availBlocks: 1020 });
    h.check();
  });

  test("each pool holds its class's divisibility constant in the padding of its header; check() verifies it", () => {
    const h = makeHeap();
    const p16 = h.malloc(16);
    const p48 = h.malloc(48);
    const pool16 = p16 - (p16 % 16384);
    const pool48 = p48 - (p48 % 16384);
    expect(h.u32[(pool16 + POOL_MAGIC) >>> 2]).toBe(divisibilityMagic(16));
    expect(h.u32[(pool48 + POOL_MAGIC) >>> 2]).toBe(divisibilityMagic(48));
    // count stays a plain uint beside it, as C reads ref.count.
    expect(h.u32[pool48 >>> 2]).toBe(1);
    h.check();
    // A stray write over it: check() names it; free still validates (through its slow path) and frees, and
    // the next use of the pool writes it again.
    h.u32[(pool48 + POOL_MAGIC) >>> 2] = 0;
    expect(() => h.check()).toThrow(`pool ${pool48}: divisibility constant 0 is not class 2's`);
    expect(() => h.free(p48 + 16)).toThrow(expect.objectContaining({ code: 'ERR_PYMALLOC_INVALID_POINTER' }));
    h.free(p48);
    expect(h.malloc(48)).toBe(p48);
    expect(h.u32[(pool48 + POOL_MAGIC) >>> 2]).toBe(divisibilityMagic(48));
    h.check();
  });

  test('size classes are (n - 1) >> 4: 1..16 share class 0, 17 is class 1, 512 is class 31', () => {
    const h = makeHeap();
    for (const [n, cls] of [
      [1, 0],
      [16, 0],
      [17, 1],
      [32, 1],
      [33, 2],
      [511, 31],
      [512, 31],
    ] as const) {
      const p = h.malloc(n);
      expect(h.usableSize(p)).toBe((cls + 1) * 16);
      expect(p % 16).toBe(0);
    }
    h.check();
  });

  test('a freed block is the next one handed out (LIFO free list)', () => {
    const h = makeHeap();
    const a = h.malloc(100);
    const b = h.malloc(100);
    h.free(a);
    expect(h.malloc(100)).toBe(a);
    h.free(b);
    expect(h.malloc(110)).toBe(b);
    h.check();
  });

  test('malloc(0) returns a unique pointer each time', () => {
    const h = makeHeap();
    const ps = new Set([h.malloc(0), h.malloc(0), h.malloc(0)]);
    expect(ps.size).toBe(3);
    for (const p of ps) {
      expect(p).toBeGreaterThan(0);
      h.free(p);
    }
    h.check();
  });

  test('free(0) does nothing', () => {
    const h = makeHeap();
    h.free(0);
    h.check();
    expect(h.stats().blocksInUse).toBe(0);
  });

  test('data written through the views survives other allocations', () => {
    const h = makeHeap();
    const ps: number[] = [];
    for (let i = 0; i < 2000; i++) {
      const p = h.malloc(8 + (i % 300));
      h.u32[p >>> 2] = i;
      h.u8[p + 4] = i & 0xff;
      ps.push(p);
    }
    for (let i = 0; i < 2000; i += 2) h.free(ps[i]);
    for (let i = 1; i < 2000; i += 2) {
      expect(h.u32[ps[i] >>> 2]).toBe(i);
      expect(h.u8[ps[i] + 4]).toBe(i & 0xff);
    }
    h.check();
  });

  test('an emptied pool goes to its arena and is reused for the same class with its free list', () => {
    const h = makeHeap({ policy: 'cpython' });
    const keep = h.malloc(200); // keeps the arena alive
    const ps: number[] = [];
    for (let i = 0; i < 10; i++) ps.push(h.malloc(48));
    const pool = ps[0] - 48;
    for (const p of ps) h.free(p);
    expect(h.stats().classes[2].pools).toBe(0);
    expect(h.stats().pools.unused).toBe(63);
    // Reused for class 2: the header and free list are kept, so the last freed block comes first.
    expect(h.malloc(48)).toBe(ps[9]);
    expect(ps[9] - (ps[9] % 16384)).toBe(pool);
    h.free(keep);
    h.check();
  });
});

describe('views and addresses', () => {
  test('views cover the whole reservation and are created once', () => {
    const h = makeHeap();
    expect(h.u8.length).toBe(256 * 1024 * 1024);
    expect(h.u32.length).toBe(64 * 1024 * 1024);
    expect(h.f64.length).toBe(32 * 1024 * 1024);
    expect(h.dv.byteLength).toBe(256 * 1024 * 1024);
    const u8 = h.u8;
    h.malloc(1000000);
    expect(h.u8).toBe(u8);
  });

  test('addressOf gives the real address: the base is 4 GiB aligned and the offset is the low word', () => {
    const h = makeHeap();
    const p = h.malloc(64);
    const a = h.addressOf(p);
    expect(a & 0xffffffffn).toBe(BigInt(p));
    expect(a >> 32n).toBe(BigInt(h.baseHi));
    expect(h.reservation.base % 2n ** 32n).toBe(0n);
  });

  test('buffer is the ArrayBuffer under the views, the same object while the heap lives; destroy lets go of it', () => {
    const h = makeHeap();
    const buffer = h.buffer;
    expect(buffer).toBeInstanceOf(ArrayBuffer);
    expect(buffer).toBe(h.u8.buffer);
    expect(buffer.byteLength).toBe(h.reservation.size);
    const p = h.malloc(32);
    new Uint8Array(buffer, p, 32).fill(7);
    expect(h.u8[p + 31]).toBe(7);
    h.free(p);
    expect(h.buffer).toBe(buffer);
    const held = new Uint8Array(buffer, p, 32);
    h.destroy();
    // The heap's own views and buffer are empty, not detached: a detached ArrayBuffer would make V8 check every
    // typed-array access of the process from then on (bench/detach.ts).
    expect(h.buffer.byteLength).toBe(0);
    expect(new Uint8Array(h.buffer).length).toBe(0);
    expect(h.u8.length).toBe(0);
    // A view the program still holds reads zeros: the pages went back, the range stays this heap's until collected.
    expect(buffer.byteLength).toBe(h.reservation.size);
    expect(held.every((b) => b === 0)).toBe(true);
  });

  test('f64 and i32 views alias the same bytes', () => {
    const h = makeHeap();
    const p = h.malloc(16);
    h.f64[p >>> 3] = 1.5;
    expect(h.dv.getFloat64(p, true)).toBe(1.5);
    h.i32[p >>> 2] = -2;
    expect(h.u32[p >>> 2]).toBe(0xfffffffe);
  });
});

describe('calloc', () => {
  test('returns zeroed memory, reused blocks included', () => {
    const h = makeHeap();
    const p = h.malloc(64);
    h.u8.fill(0xab, p, p + 64);
    h.free(p);
    const q = h.calloc(8, 8);
    expect(q).toBe(p);
    expect([...h.u8.subarray(q, q + 64)].every((b) => b === 0)).toBe(true);
    const big = h.malloc(10000);
    h.u8.fill(0xcd, big, big + 10000);
    h.free(big);
    const z = h.calloc(1, 10000);
    expect([...h.u8.subarray(z, z + 10000)].every((b) => b === 0)).toBe(true);
    h.check();
  });

  test('rejects an overflowing product', () => {
    const h = makeHeap();
    expectCode(h, () => h.calloc(2 ** 20, 2 ** 20), 'ERR_OUT_OF_RANGE', /exceeds/);
  });
});

describe('realloc', () => {
  test('shrinks in place unless more than a quarter of the block would be wasted', () => {
    const h = makeHeap();
    const p = h.malloc(400); // class of 400 bytes
    expect(h.realloc(p, 301)).toBe(p); // 4 * 301 > 3 * 400
    const q = h.realloc(p, 300); // 4 * 300 == 3 * 400: moves
    expect(q).not.toBe(p);
    expect(h.usableSize(q)).toBe(304);
    h.check();
  });

  test('grows by moving, keeping the contents', () => {
    const h = makeHeap();
    const p = h.malloc(32);
    for (let i = 0; i < 32; i++) h.u8[p + i] = i;
    const q = h.realloc(p, 100);
    expect(q).not.toBe(p);
    for (let i = 0; i < 32; i++) expect(h.u8[q + i]).toBe(i);
    h.check();
  });

  test('small to large and back keeps the contents; a large block stays large as in CPython', () => {
    const h = makeHeap();
    const p = h.malloc(500);
    for (let i = 0; i < 500; i++) h.u8[p + i] = i & 0xff;
    const big = h.realloc(p, 100000);
    expect(big % h.geometry.pageSize).toBe(0);
    for (let i = 0; i < 500; i++) expect(h.u8[big + i]).toBe(i & 0xff);
    const small = h.realloc(big, 100);
    for (let i = 0; i < 100; i++) expect(h.u8[small + i]).toBe(i & 0xff);
    expect(h.usableSize(small)).toBe(h.geometry.pageSize);
    expect(h.stats().large.blocks).toBe(1);
    h.free(small);
    h.check();
    expect(h.stats().blocksInUse).toBe(0);
  });

  test('realloc(0, n) is malloc(n)', () => {
    const h = makeHeap();
    const p = h.realloc(0, 10);
    expect(h.usableSize(p)).toBe(16);
  });

  test('a large block grows in place when the pages after it are free', () => {
    const h = makeHeap({ spanCache: 0 });
    const p = h.malloc(3 * 4096);
    expect(h.realloc(p, 20 * 4096)).toBe(p);
    expect(h.usableSize(p)).toBe(20 * 4096);
    h.check();
  });
});

describe('bad input never corrupts the heap', () => {
  test.each([
    [-1, RangeError],
    [Number.NaN, RangeError],
    [1.5, RangeError],
    [Number.POSITIVE_INFINITY, RangeError],
    [2 ** 32, RangeError],
    ['16', TypeError],
    [null, TypeError],
    [16n, TypeError],
  ])('malloc(%p) throws %p', (n, type) => {
    const h = makeHeap();
    expect(() => h.malloc(n as number)).toThrow(type);
    h.check();
  });

  test('running out of memory throws RangeError naming the request, the capacity and the bytes in use', () => {
    const h = makeHeap({ reserve: 64 * 1024 * 1024 });
    expectCode(
      h,
      () => h.malloc(200 * 1024 * 1024),
      'ERR_PYMALLOC_NOMEM',
      /209715200 bytes.*capacity \d+ bytes.*in use/,
    );
    const ps: number[] = [];
    let err: unknown;
    try {
      for (;;) ps.push(h.malloc(512));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RangeError);
    expect((err as { code: string }).code).toBe('ERR_PYMALLOC_NOMEM');
    h.check();
    // Still usable: free some and allocate again.
    for (const p of ps.splice(0, 1000)) h.free(p);
    expect(h.malloc(512)).toBeGreaterThan(0);
    h.check();
  });

  test('freeing a pointer twice throws ERR_PYMALLOC_DOUBLE_FREE', () => {
    const h = makeHeap();
    const a = h.malloc(64);
    const b = h.malloc(64);
    h.free(a);
    expectCode(h, () => h.free(a), 'ERR_PYMALLOC_DOUBLE_FREE', /double free/);
    h.free(b);
    // b's pool is empty now: a second free of b is caught too.
    expectCode(h, () => h.free(b), 'ERR_PYMALLOC_DOUBLE_FREE');
    const big = h.malloc(5000);
    h.free(big);
    expectCode(h, () => h.free(big), 'ERR_PYMALLOC_DOUBLE_FREE', /large block is already free/);
  });

  test('freeing a block that was carved but never handed out throws', () => {
    const h = makeHeap();
    const a = h.malloc(64); // the pool's second block is carved onto the free list
    expectCode(h, () => h.free(a + 64), 'ERR_PYMALLOC_DOUBLE_FREE');
    expectCode(h, () => h.free(a + 128), 'ERR_PYMALLOC_INVALID_POINTER', /beyond the blocks handed out/);
  });

  test('divisibilityMagic(d) tells the multiples of d below 2^16 exactly, for every block size up to 1024', () => {
    for (let d = 8; d <= 1024; d += 8) {
      const c = divisibilityMagic(d);
      let wrong = 0;
      for (let n = 0; n < 65536; n++) if (Math.imul(n, c) >>> 0 < c !== (n % d === 0)) wrong++;
      expect({ d, wrong }).toEqual({ d, wrong: 0 });
    }
  });

  test('free and realloc find every interior pointer of blocks whose size is not a power of two', () => {
    for (const alignment of [8, 16] as const) {
      const h = makeHeap({ alignment });
      // With alignment 16 the medium classes too (528..1024 bytes; with alignment 8 there are none).
      const medium = alignment === 16 ? [528, 720, 1008] : [];
      for (const size of [24, 48, 80, 112, 336, 496, ...medium]) {
        const p = h.malloc(size);
        const q = h.malloc(size); // p is now neither the last carved block nor free
        for (let k = alignment; k < size; k += alignment) {
          expectCode(h, () => h.free(p + k), 'ERR_PYMALLOC_INVALID_POINTER', /not at the start of a block/);
          expectCode(
            h,
            () => h.realloc(p + k, 8),
            'ERR_PYMALLOC_INVALID_POINTER',
            /not at the start of a block/,
          );
        }
        h.free(q);
        h.free(p);
      }
      h.check();
    }
  });

  test('interior, header, foreign and out-of-range pointers throw ERR_PYMALLOC_INVALID_POINTER', () => {
    const h = makeHeap();
    const other = makeHeap();
    const p = h.malloc(64);
    const big = h.malloc(10000);
    expectCode(h, () => h.free(p + 8), 'ERR_PYMALLOC_INVALID_POINTER', /not at the start of a block/);
    expectCode(h, () => h.free(p - 48), 'ERR_PYMALLOC_INVALID_POINTER', /pool header/);
    expectCode(h, () => h.free(big + 4096), 'ERR_PYMALLOC_INVALID_POINTER');
    expectCode(h, () => h.free(big + 16), 'ERR_PYMALLOC_INVALID_POINTER');
    const q = other.malloc(1000000);
    expectCode(h, () => h.free(q), 'ERR_PYMALLOC_INVALID_POINTER');
    expectCode(h, () => h.free(2 ** 31), 'ERR_PYMALLOC_INVALID_POINTER', /beyond/);
    expectCode(h, () => h.free(16), 'ERR_PYMALLOC_INVALID_POINTER');
    expectCode(h, () => h.free(-16), 'ERR_OUT_OF_RANGE');
    expectCode(h, () => h.free(1.5), 'ERR_OUT_OF_RANGE');
    expectCode(h, () => h.free('64' as never), 'ERR_INVALID_ARG_TYPE');
    expectCode(h, () => h.realloc(p + 1, 10), 'ERR_PYMALLOC_INVALID_POINTER');
    expectCode(h, () => h.usableSize(p + 16), 'ERR_PYMALLOC_INVALID_POINTER');
    other.check();
  });

  test('a pointer into a released arena throws', () => {
    const h = makeHeap({ policy: 'cpython' });
    const first = h.malloc(32);
    // Fill a second arena, then free it all: it is released (it is not the last usable arena).
    const ps: number[] = [];
    while (ps.length === 0 || ps[ps.length - 1] >>> 20 === first >>> 20) ps.push(h.malloc(512));
    const second = ps.filter((p) => p >>> 20 !== first >>> 20);
    const more: number[] = [];
    while (more.length === 0 || more[more.length - 1] >>> 20 === second[0] >>> 20) more.push(h.malloc(512));
    for (const p of [...second, ...more.filter((p) => p >>> 20 === second[0] >>> 20)]) h.free(p);
    expect(h.stats().arenas.reclaimed).toBe(1);
    expectCode(h, () => h.free(second[0]), 'ERR_PYMALLOC_INVALID_POINTER');
  });

  test('a destroyed heap throws ERR_PYMALLOC_DESTROYED from every method, and its views are empty', () => {
    const h = new Heap({ reserve: 64 * 1024 * 1024 });
    const p = h.malloc(10);
    h.destroy();
    expect(h.u8.length).toBe(0);
    expect(h.u32[0]).toBeUndefined();
    for (const fn of [
      () => h.malloc(10),
      () => h.malloc(100000),
      () => h.free(p),
      () => h.free(0),
      () => h.realloc(p, 20),
      () => h.calloc(1, 1),
      () => h.usableSize(p),
      () => h.stats(),
      () => h.debugStats(),
      () => h.check(),
      () => h.trim(),
      () => h.addressOf(p),
    ]) {
      expect(fn).toThrow(expect.objectContaining({ code: 'ERR_PYMALLOC_DESTROYED' }));
    }
    h.destroy(); // a second destroy does nothing
  });

  test('bad options throw before anything is reserved', () => {
    expect(() => new Heap({ policy: 'sometimes' as never })).toThrow(/policy must be one of/);
    expect(() => new Heap({ decommit: 'free' as never })).toThrow(/decommit must be one of/);
    expect(() => new Heap({ spanCache: -1 })).toThrow(RangeError);
    expect(() => new Heap({ debug: 'yes' as never })).toThrow(TypeError);
    expect(() => new Heap(42 as never)).toThrow(TypeError);
  });
});
