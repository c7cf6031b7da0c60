/** lib/os/pages.ts: argument checks first, then commit/decommit against RSS and mincore, release, faults. */
import { type DecommitMode, pageSize, Reservation, rssBytes } from '../../lib/os';
import { __testing } from '../../lib/testing';

const MiB = 2 ** 20;
const page = pageSize();

import * as fs from 'node:fs';
import { expectError } from './expect-error';

/** Rss of the mapping that holds the reservation, from /proc/self/smaps (which, unlike mincore, leaves out the zero page). */
function rangeRss(r: Reservation): number {
  const text = fs.readFileSync('/proc/self/smaps', 'latin1');
  let inside = false;
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    if (m) inside = BigInt(`0x${m[1]}`) <= r.base && r.base < BigInt(`0x${m[2]}`);
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (inside && rss) return Number(rss[1]) * 1024;
  }
  throw new Error('the reservation is not in /proc/self/smaps');
}

describe('argument checks', () => {
  let r: Reservation;
  beforeAll(() => {
    r = Reservation.create(16 * page);
  });
  afterAll(() => r.release());

  const badCounts: [string, unknown, typeof TypeError | typeof RangeError, string][] = [
    ['negative', -page, RangeError, 'ERR_OUT_OF_RANGE'],
    ['NaN', Number.NaN, RangeError, 'ERR_OUT_OF_RANGE'],
    ['Infinity', Number.POSITIVE_INFINITY, RangeError, 'ERR_OUT_OF_RANGE'],
    ['non-integer', page + 0.5, RangeError, 'ERR_OUT_OF_RANGE'],
    ['unaligned', 100, RangeError, 'ERR_OUT_OF_RANGE'],
    ['a string', String(page), TypeError, 'ERR_INVALID_ARG_TYPE'],
    ['a bigint', BigInt(page), TypeError, 'ERR_INVALID_ARG_TYPE'],
    ['null', null, TypeError, 'ERR_INVALID_ARG_TYPE'],
    ['an object', {}, TypeError, 'ERR_INVALID_ARG_TYPE'],
  ];

  describe.each(badCounts)('%s', (_name, bad, type, code) => {
    test('as size or alignment of create', () => {
      expectError(() => Reservation.create(bad as number), type, code);
      expectError(() => Reservation.create(page, bad as number), type, code);
    });
    test.each(['commit', 'decommit', 'residentPages', 'residentBytes'] as const)(
      'as offset or length of %s',
      (m) => {
        expectError(() => r[m](bad as number, page), type, code);
        expectError(() => r[m](0, bad as number), type, code);
      },
    );
  });

  test('ranges beyond the reservation, and empty ranges', () => {
    for (const m of ['commit', 'decommit', 'residentPages'] as const) {
      expectError(() => r[m](0, 17 * page), RangeError, 'ERR_OUT_OF_RANGE');
      expectError(() => r[m](16 * page, page), RangeError, 'ERR_OUT_OF_RANGE');
      expectError(() => r[m](2 ** 52, page), RangeError, 'ERR_OUT_OF_RANGE');
      expectError(() => r[m](0, 0), RangeError, 'ERR_OUT_OF_RANGE');
    }
  });

  test('sizes and alignments out of range', () => {
    expectError(() => Reservation.create(0), RangeError, 'ERR_OUT_OF_RANGE');
    expectError(() => Reservation.create(2 ** 32 + page), RangeError, 'ERR_OUT_OF_RANGE');
    expectError(() => Reservation.create(page, 3 * page), RangeError, 'ERR_OUT_OF_RANGE');
    expectError(() => Reservation.create(page, page / 2), RangeError, 'ERR_OUT_OF_RANGE');
    expectError(() => Reservation.create(page, 2 ** 33), RangeError, 'ERR_OUT_OF_RANGE');
  });

  test('adviseHugePages: the range is checked, and enable must be a boolean', () => {
    const advise = (o: unknown, l: unknown, enable: unknown = true) =>
      r.adviseHugePages(o as number, l as number, enable as boolean);
    expectError(() => advise(100, page), RangeError, 'ERR_OUT_OF_RANGE');
    expectError(() => advise(0, 17 * page), RangeError, 'ERR_OUT_OF_RANGE');
    expectError(() => advise('0', page), TypeError, 'ERR_INVALID_ARG_TYPE');
    expectError(() => advise(0, page, 'yes'), TypeError, 'ERR_INVALID_ARG_TYPE');
    expect(() => advise(0, page, 1)).toThrow('enable must be a boolean, got 1');
    expect(typeof r.adviseHugePages(0, 16 * page, false)).toBe('boolean');
  });

  test('decommit modes', () => {
    expectError(() => r.decommit(0, page, 'free' as DecommitMode), TypeError, 'ERR_INVALID_ARG_VALUE');
    expectError(() => r.decommit(0, page, 1 as unknown as DecommitMode), TypeError, 'ERR_INVALID_ARG_TYPE');
  });

  test('messages name the argument and the value', () => {
    expect(() => r.commit(100, page)).toThrow(
      `offset must be a multiple of the page size (${page}), got 100`,
    );
    expect(() => r.commit(0, Number.NaN)).toThrow('length must be a non-negative integer, got NaN');
    expect(() => r.commit(0, 32 * page)).toThrow(
      `offset + length must not exceed the reservation size (${16 * page}), got 0 + ${32 * page}`,
    );
  });

  test('a released reservation', () => {
    const gone = Reservation.create(page);
    gone.release();
    expect(gone.released).toBe(true);
    for (const call of [
      () => gone.commit(0, page),
      () => gone.decommit(0, page),
      () => gone.decommit(0, page, 'dontneed'),
      () => gone.residentPages(),
      () => gone.residentBytes(0, page),
      () => gone.adviseHugePages(0, page, true),
      () => gone.release(),
    ]) {
      expectError(call, Error, 'ERR_RESERVATION_RELEASED');
    }
  });

  test('the native handle is not reachable from the object', () => {
    const keys = Reflect.ownKeys(r);
    expect(keys.sort()).toEqual(['access', 'alignment', 'base', 'shared', 'size']);
  });
});

describe('reserve', () => {
  test('a 4 GiB reservation aligned to 4 GiB is one ArrayBuffer with nothing resident', () => {
    const r = Reservation.create(2 ** 32, 2 ** 32);
    try {
      expect(r.base % 2n ** 32n).toBe(0n);
      expect(r.buffer.byteLength).toBe(2 ** 32);
      expect(r.size).toBe(2 ** 32);
      expect(r.alignment).toBe(2 ** 32);
      expect(r.residentPages()).toBe(0);
    } finally {
      r.release();
    }
  });

  test('alignment is honoured for every power of two', () => {
    for (let alignment = page; alignment <= 2 ** 30; alignment *= 8) {
      const r = Reservation.create(page, alignment);
      expect(r.base % BigInt(alignment)).toBe(0n);
      r.release();
    }
  });
});

describe.each(['unmap', 'dontneed'] as const)("commit, touch 256 MiB, decommit '%s'", (mode) => {
  test('no page of the range stays resident and RSS returns to the baseline', () => {
    const size = 256 * MiB;
    const r = Reservation.create(2 * size, page, mode === 'unmap' ? 'none' : 'readwrite');
    try {
      const bytes = new Uint8Array(r.buffer);
      const baseline = rssBytes();
      r.commit(0, size);
      for (let p = 0; p < size; p += page) bytes[p] = 0xab;
      expect(r.residentBytes(0, size)).toBe(size);
      // The jest worker's own heap may shrink meanwhile: RSS only has to show most of it.
      expect(rssBytes() - baseline).toBeGreaterThan(size / 2);

      r.decommit(0, size, mode);
      expect(r.residentPages(0, size)).toBe(0);
      expect(rssBytes() - baseline).toBeLessThan(8 * MiB);

      if (mode === 'dontneed') {
        // The range stays usable and reads as zeros.
        expect(bytes[0]).toBe(0);
        bytes[page] = 7;
        expect(bytes[page]).toBe(7);
      } else {
        // Recommitting gives fresh zero pages.
        r.commit(0, page);
        expect(bytes[0]).toBe(0);
      }
    } finally {
      r.release();
    }
  });
});

test("a 'none' reservation decommits with 'unmap' by default; decommitted pages come back as zeros after commit", () => {
  const r = Reservation.create(4 * page, page, 'none');
  try {
    const bytes = new Uint8Array(r.buffer);
    r.commit(0, 4 * page);
    bytes.fill(0x5a, 0, 4 * page);
    r.decommit(page, 2 * page);
    expect(r.residentPages(page, 2 * page)).toBe(0);
    expect(r.residentPages(0, page)).toBe(1);
    r.commit(page, 2 * page);
    expect(bytes[page]).toBe(0);
    expect(bytes[3 * page - 1]).toBe(0);
    expect(bytes[0]).toBe(0x5a);
    expect(bytes[3 * page]).toBe(0x5a);
  } finally {
    r.release();
  }
});

test("a 'readwrite' reservation: every byte reads zero and can be written without a commit; it decommits with 'dontneed'", () => {
  const r = Reservation.create(64 * page);
  try {
    expect(r.access).toBe('readwrite');
    const bytes = new Uint8Array(r.buffer);
    expect(r.residentPages()).toBe(0);
    bytes[5 * page + 3] = 9;
    expect(r.residentPages()).toBe(1);
    expect(r.decommit(5 * page, page)).toBe('dontneed');
    expect(r.residentPages()).toBe(0);
    expect(bytes[5 * page + 3]).toBe(0);
    // Reading every page, none of them written: each read maps the kernel's shared zero page, which mincore
    // (residentPages) counts as resident, although it costs no memory (smaps' Rss of the range stays 0).
    expect(bytes.indexOf(1)).toBe(-1);
    expect(r.residentPages()).toBe(64);
    expect(rangeRss(r)).toBe(0);
    r.decommit(0, 64 * page);
    expect(r.residentPages()).toBe(0);
    expectError(() => r.decommit(0, page, 'unmap'), TypeError, 'ERR_INVALID_ARG_VALUE');
    // commit checks its range and changes nothing.
    r.commit(0, 64 * page);
    expect(r.residentPages()).toBe(0);
    expect(r.readablePages().readable(0, 64 * page)).toBe(true);
    expect(r.readablePages().readable(63 * page, page + 1)).toBe(false);
  } finally {
    r.release();
  }
});

test("a 'none' reservation's readable pages are exactly its committed ones", () => {
  const r = Reservation.create(16 * page, page, 'none');
  try {
    expect(r.readablePages().readable(0, 1)).toBe(false);
    r.commit(2 * page, 3 * page);
    const pages = r.readablePages();
    expect(pages.readable(2 * page, 3 * page)).toBe(true);
    expect(pages.readable(2 * page - 1, 2)).toBe(false);
    expect(pages.readable(5 * page - 1, 2)).toBe(false);
    r.decommit(3 * page, page);
    expect(r.readablePages().readable(2 * page, page)).toBe(true);
    expect(r.readablePages().readable(3 * page, 1)).toBe(false);
    expect(r.readablePages().readable(4 * page, page)).toBe(true);
  } finally {
    r.release();
  }
});

test('access must be readwrite or none', () => {
  expectError(() => Reservation.create(page, page, 'rw' as 'none'), TypeError, 'ERR_INVALID_ARG_VALUE');
  expectError(
    () => Reservation.create(page, page, 1 as unknown as 'none'),
    TypeError,
    'ERR_INVALID_ARG_TYPE',
  );
});

test("after release a 'readwrite' reservation's views read zeros and are not detached", () => {
  const r = Reservation.create(16 * page);
  const buffer = r.buffer;
  const u8 = new Uint8Array(buffer);
  const f64 = new Float64Array(buffer, page, 8);
  const view = new DataView(buffer);
  u8[0] = 1;
  f64[0] = 2.5;
  view.setUint8(2 * page, 3);
  r.release();
  expect(r.released).toBe(true);
  expect(r.buffer.byteLength).toBe(0);
  // The pages went back: the views still cover the range and read zeros, never faulting.
  expect(buffer.byteLength).toBe(16 * page);
  expect(u8.length).toBe(16 * page);
  expect([u8[0], f64[0], view.getUint8(2 * page)]).toEqual([0, 0, 0]);
  // A write lands in a fresh page of this same range (still mapped and owned by it), harmlessly.
  u8[page] = 9;
  expect(u8[page]).toBe(9);
  expect(new Uint8Array(r.buffer).length).toBe(0);
});

test("after release a 'none' reservation's views have length 0 and read undefined (its buffer is detached)", () => {
  const r = Reservation.create(16 * page, page, 'none');
  r.commit(0, 16 * page);
  const u8 = new Uint8Array(r.buffer);
  const f64 = new Float64Array(r.buffer, page, 8);
  const view = new DataView(r.buffer);
  u8[0] = 1;
  view.setUint8(1, 2);
  r.release();
  expect(r.released).toBe(true);
  expect(r.buffer.byteLength).toBe(0);
  expect(u8.length).toBe(0);
  expect(u8[0]).toBeUndefined();
  expect(f64.length).toBe(0);
  expect(f64[0]).toBeUndefined();
  // A DataView over a detached buffer throws a TypeError on any access (JavaScript's rule), never crashes.
  expect(() => view.byteLength).toThrow(TypeError);
  expect(() => view.getUint8(0)).toThrow(TypeError);
});

describe('fault injection', () => {
  afterEach(() => {
    __testing.setFault('commit', 0);
    __testing.setFault('reserve', 0);
    __testing.setFault('decommit', 0);
  });

  test('commit: the nth call fails with ENOMEM, the one after succeeds', () => {
    const r = Reservation.create(4 * page, page, 'none');
    try {
      __testing.setFault('commit', 2);
      r.commit(0, page);
      let err: (Error & { code?: string; errno?: number; syscall?: string }) | undefined;
      try {
        r.commit(page, page);
      } catch (e) {
        err = e as typeof err;
      }
      expect(err?.name).toBe('Error');
      expect(err!.code).toBe('ENOMEM');
      expect(err!.errno).toBe(12);
      expect(err!.syscall).toBe('mprotect');
      expect(err!.message).toMatch(`offset ${page}, length ${page}`);
      r.commit(page, page);
      new Uint8Array(r.buffer)[page] = 1;
    } finally {
      r.release();
    }
  });

  test('reserve: the next call fails with ENOMEM, then reserving works', () => {
    __testing.setFault('reserve', 1);
    expectError(() => Reservation.create(page), Error, 'ENOMEM');
    Reservation.create(page).release();
  });

  test('decommit: the nth call fails with ENOMEM and changes nothing, the one after succeeds', () => {
    for (const access of ['readwrite', 'none'] as const) {
      const r = Reservation.create(4 * page, page, access);
      try {
        r.commit(0, 4 * page);
        const bytes = new Uint8Array(r.buffer);
        bytes.fill(3);
        __testing.setFault('decommit', 1);
        let err: (Error & { code?: string; errno?: number; syscall?: string }) | undefined;
        try {
          r.decommit(page, page);
        } catch (e) {
          err = e as typeof err;
        }
        expect(err?.code).toBe('ENOMEM');
        expect(err?.errno).toBe(12);
        expect(err?.syscall).toBe(access === 'none' ? 'mmap' : 'madvise');
        expect(r.residentPages()).toBe(4);
        expect(bytes[page]).toBe(3);
        expect(r.readablePages().readable(0, 4 * page)).toBe(true);
        r.decommit(page, page);
        expect(r.residentPages()).toBe(3);
      } finally {
        r.release();
      }
    }
  });

  test('0 clears the switch', () => {
    __testing.setFault('commit', 1);
    __testing.setFault('commit', 0);
    const r = Reservation.create(page, page, 'none');
    r.commit(0, page);
    r.release();
  });
});
