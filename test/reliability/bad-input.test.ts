/**
 * The bad-input table: every public function of the Heap and of the OS layer × every kind of bad input →
 * the documented error (class, code, and a message naming what was wrong), and the heap still passes check()
 * afterwards. A combination that does not apply is a row that says why; one where the input is accepted says
 * what happens instead. docs/reliability.md has the same table in words.
 */
import {
  Heap,
  type HeapOptions,
  pageSize,
  Reservation,
  residentBytes,
  rssBytes,
  smapsRollup,
} from '../../lib';
import { __testing } from '../../lib/testing';

const page = pageSize();
const MAX = 4294967295;

type Kind =
  | 'negative'
  | 'NaN'
  | 'Infinity'
  | 'non-integer'
  | 'huge'
  | 'wrong type'
  | "another heap's pointer"
  | 'interior pointer'
  | 'freed pointer'
  | 'pointer into a released arena'
  | 'destroyed heap';

const KINDS: Kind[] = [
  'negative',
  'NaN',
  'Infinity',
  'non-integer',
  'huge',
  'wrong type',
  "another heap's pointer",
  'interior pointer',
  'freed pointer',
  'pointer into a released arena',
  'destroyed heap',
];

/** What a row expects: an error, an accepted input (and what happens), or "does not apply" (and why). */
type Outcome =
  | { kind: 'throws'; name: 'TypeError' | 'RangeError' | 'Error'; code: string; message: RegExp }
  | { kind: 'accepted'; why: string; check?: (result: unknown) => void }
  | { kind: 'n/a'; why: string };

const throws = (name: 'TypeError' | 'RangeError' | 'Error', code: string, message: RegExp): Outcome => ({
  kind: 'throws',
  name,
  code,
  message,
});
const na = (why: string): Outcome => ({ kind: 'n/a', why });
const accepted = (why: string, check?: (result: unknown) => void): Outcome => ({
  kind: 'accepted',
  why,
  check,
});

/** Everything the rows point at, made once. */
interface Ctx {
  h: Heap;
  other: Heap;
  destroyed: Heap;
  /** Live blocks of h: small, and large. */
  p: number;
  big: number;
  /** A freed small block (its pool still has live blocks) and a freed large block. */
  freed: number;
  freedBig: number;
  /** A pointer of `other` that is no block of h (another arena than any of h's). */
  foreign: number;
  /** A block pointer into an arena of h that was released to the OS. */
  released: number;
  /** A pointer of `destroyed`, taken before it was destroyed. */
  dead: number;
  r: Reservation;
  gone: Reservation;
}

let ctx: Ctx;

function releasedArenaPointer(h: Heap): number {
  const arenaBits = h.geometry.arenaBits;
  const ps: number[] = [];
  // Fill three arenas with 512-byte blocks, then free every block of the second one: it goes back.
  const arenas = new Set<number>();
  while (arenas.size < 3) {
    ps.push(h.malloc(512));
    arenas.add(ps[ps.length - 1] >>> arenaBits);
  }
  const middle = [...arenas][1];
  const inMiddle = ps.filter((q) => q >>> arenaBits === middle);
  for (const q of inMiddle) h.free(q);
  expect(h.stats().arenas.reclaimed).toBeGreaterThanOrEqual(1);
  expect(h.u32[h.arenamapIdx + middle]).toBe(0);
  return inMiddle[3];
}

beforeAll(() => {
  // purgeDelay 0: the arena that releasedArenaPointer empties goes back at once.
  const h = new Heap({ reserve: 64 * 1024 * 1024, purgeDelay: 0 });
  const other = new Heap({ reserve: 64 * 1024 * 1024 });
  const destroyed = new Heap({ reserve: 64 * 1024 * 1024 });
  const p = h.malloc(64);
  const freed = h.malloc(64);
  h.free(freed);
  const big = h.malloc(3 * page + 100);
  const freedBig = h.malloc(20 * page);
  h.free(freedBig);
  const released = releasedArenaPointer(h);
  other.malloc(8 * 1024 * 1024); // other's next small block lands where h has no arena
  const foreign = other.malloc(64);
  expect(h.u32[h.arenamapIdx + (foreign >>> h.geometry.arenaBits)]).toBe(0);
  const dead = destroyed.malloc(64);
  destroyed.destroy();
  const r = Reservation.create(16 * page);
  const gone = Reservation.create(16 * page);
  gone.release();
  ctx = { h, other, destroyed, p, big, freed, freedBig, foreign, released, dead, r, gone };
});

afterAll(() => {
  ctx.h.destroy();
  ctx.other.destroy();
  ctx.r.release();
});

afterEach(() => __testing.setFault('commit', 0));

interface Row {
  fn: string;
  kind: Kind | string;
  outcome: Outcome;
  call: (c: Ctx) => unknown;
}

const rows: Row[] = [];
const WRONG_TYPES: unknown[] = ['64', 64n, null, undefined, {}, true, [64]];

// ---- Heap: size arguments ----

/** [function, the argument's name, the call, an in-range value too large for any heap] */
const SIZE_FNS: [string, string, (c: Ctx, v: unknown) => unknown, number][] = [
  ['malloc(n)', 'size', (c, v) => c.h.malloc(v as number), MAX],
  ['calloc(count, 16)', 'count', (c, v) => c.h.calloc(v as number, 16), 2 ** 27],
  ['calloc(1, size)', 'size', (c, v) => c.h.calloc(1, v as number), MAX],
  ['realloc(p, n)', 'size', (c, v) => c.h.realloc(c.p, v as number), MAX],
];

for (const [fn, arg, call, tooLarge] of SIZE_FNS) {
  // Every message names the function called first: `pymalloc: malloc: size must be …`.
  const named = fn.slice(0, fn.indexOf('('));
  const range = (got: string) =>
    throws(
      'RangeError',
      'ERR_OUT_OF_RANGE',
      new RegExp(`^pymalloc: ${named}: ${arg} must be an integer from 0 to ${MAX}, got ${got}$`),
    );
  const values: Partial<Record<Kind, [unknown, Outcome]>> = {
    negative: [-1, range('-1')],
    NaN: [Number.NaN, range('NaN')],
    Infinity: [Number.POSITIVE_INFINITY, range('Infinity')],
    'non-integer': [16.5, range('16.5')],
    huge: [2 ** 32, range('4294967296')],
  };
  for (const kind of KINDS) {
    const v = values[kind];
    if (v) {
      rows.push({ fn, kind, outcome: v[1], call: (c) => call(c, v[0]) });
    } else if (kind === 'wrong type') {
      for (const w of WRONG_TYPES) {
        rows.push({
          fn,
          kind: `wrong type (${typeof w === 'bigint' ? '64n' : (JSON.stringify(w) ?? 'undefined')})`,
          outcome: throws(
            'TypeError',
            'ERR_INVALID_ARG_TYPE',
            new RegExp(`^pymalloc: ${named}: ${arg} must be a number, got`),
          ),
          call: (c) => call(c, w),
        });
      }
    } else if (kind === 'destroyed heap') {
      const name = fn.slice(0, fn.indexOf('('));
      rows.push({
        fn,
        kind,
        outcome: throws(
          'Error',
          'ERR_PYMALLOC_DESTROYED',
          new RegExp(`${name}: the heap has been destroyed`),
        ),
        call: (c) => call({ ...c, h: c.destroyed, p: c.dead }, 16),
      });
    } else {
      rows.push({ fn, kind, outcome: na(`${arg} is a byte count, not a pointer`), call: () => undefined });
    }
  }
  // In range but more than any heap holds: the documented out-of-memory error, the heap unchanged.
  rows.push({
    fn,
    kind: 'in range but larger than the heap',
    outcome: throws(
      'RangeError',
      'ERR_PYMALLOC_NOMEM',
      /out of memory: cannot allocate \d+ bytes \(heap capacity/,
    ),
    call: (c) => call(c, tooLarge),
  });
}
rows.push({
  fn: 'calloc(count, size)',
  kind: 'count * size overflows 2^32 - 1',
  outcome: throws(
    'RangeError',
    'ERR_OUT_OF_RANGE',
    /calloc\(65536, 65536\): 4294967296 bytes exceeds a 4 GiB heap/,
  ),
  call: (c) => c.h.calloc(65536, 65536),
});

// ---- Heap: pointer arguments ----

const PTR_FNS: [string, string, (c: Ctx, v: unknown) => unknown][] = [
  ['free(p)', 'free', (c, v) => c.h.free(v as number)],
  ['realloc(p, 16)', 'realloc', (c, v) => c.h.realloc(v as number, 16)],
  ['usableSize(p)', 'usableSize', (c, v) => c.h.usableSize(v as number)],
  ['addressOf(p)', 'addressOf', (c, v) => c.h.addressOf(v as number)],
];

for (const [fn, what, call] of PTR_FNS) {
  const range = (got: string) =>
    throws(
      'RangeError',
      'ERR_OUT_OF_RANGE',
      new RegExp(`${what}: pointer must be an integer offset from 0 to ${MAX}, got ${got}`),
    );
  const invalid = (why: RegExp) => throws('Error', 'ERR_PYMALLOC_INVALID_POINTER', why);
  const isAddress = what === 'addressOf';
  const address = (why: string) =>
    accepted(`addressOf does no block check: ${why}; it returns base + p`, (a) =>
      expect(typeof a).toBe('bigint'),
    );
  const table: Partial<Record<Kind, [(c: Ctx) => unknown, Outcome]>> = {
    negative: [() => -16, range('-16')],
    NaN: [() => Number.NaN, range('NaN')],
    Infinity: [() => Number.POSITIVE_INFINITY, range('Infinity')],
    'non-integer': [(c) => c.p + 0.5, range('\\d+\\.5')],
    huge: [() => 2 ** 32, range('4294967296')],
    "another heap's pointer": [
      (c) => c.foreign,
      isAddress
        ? address('a pointer is an offset, meaningful in any heap')
        : invalid(/is not the start of a block of this heap/),
    ],
    'interior pointer': [
      (c) => c.p + 16,
      isAddress
        ? address('the address of a field inside a block is legitimate')
        : invalid(/not at the start of a block \(blocks of 64 bytes; 16 bytes in\)/),
    ],
    'freed pointer': [
      (c) => c.freed,
      isAddress
        ? address('the offset is still inside the heap')
        : throws('Error', 'ERR_PYMALLOC_DOUBLE_FREE', /block is already free \(double free\)/),
    ],
    'pointer into a released arena': [
      (c) => c.released,
      isAddress
        ? address('the offset is still inside the heap')
        : invalid(/is not the start of a block of this heap/),
    ],
  };
  for (const kind of KINDS) {
    const v = table[kind];
    if (v) {
      rows.push({ fn, kind, outcome: v[1], call: (c) => call(c, v[0](c)) });
    } else if (kind === 'wrong type') {
      for (const w of WRONG_TYPES) {
        rows.push({
          fn,
          kind: `wrong type (${typeof w === 'bigint' ? '64n' : (JSON.stringify(w) ?? 'undefined')})`,
          outcome: throws(
            'TypeError',
            'ERR_INVALID_ARG_TYPE',
            new RegExp(`${what}: pointer must be a number, got`),
          ),
          call: (c) => call(c, w),
        });
      }
    } else if (kind === 'destroyed heap') {
      rows.push({
        fn,
        kind,
        outcome: throws(
          'Error',
          'ERR_PYMALLOC_DESTROYED',
          new RegExp(`${what}: the heap has been destroyed`),
        ),
        call: (c) => call({ ...c, h: c.destroyed }, c.dead),
      });
    }
  }
  rows.push({
    fn,
    kind: 'beyond the reservation (2^31 in a 64 MiB heap)',
    outcome: invalid(/pointer is beyond this heap's 67108864-byte reservation/),
    call: (c) => call(c, 2 ** 31),
  });
  rows.push({
    fn,
    kind: 'interior pointer of a large block',
    outcome: isAddress
      ? address('the address of a field inside a block is legitimate')
      : invalid(/is not the start of a block of this heap/),
    call: (c) => call(c, c.big + page),
  });
  rows.push({
    fn,
    kind: 'interior pointer of a large block: its last page (a boundary tag is there too)',
    outcome: isAddress
      ? address('the address of a field inside a block is legitimate')
      : invalid(/is not the start of a block of this heap/),
    call: (c) => call(c, c.big + 3 * page),
  });
  rows.push({
    fn,
    kind: 'freed large block',
    outcome: isAddress
      ? address('the offset is still inside the heap')
      : throws('Error', 'ERR_PYMALLOC_DOUBLE_FREE', /large block is already free \(double free\)/),
    call: (c) => call(c, c.freedBig),
  });
  rows.push({
    fn,
    kind: 'inside a pool header',
    outcome: isAddress
      ? address('the offset is still inside the heap')
      : invalid(/pointer is inside a pool header, not a block/),
    call: (c) => call(c, (c.p & ~(c.h.geometry.poolSize - 1)) + 16),
  });
}
rows.push({
  fn: 'free(p)',
  kind: '0 (NULL)',
  outcome: accepted('free(0) does nothing, as in C', (r) => expect(r).toBeUndefined()),
  call: (c) => c.h.free(0),
});

// ---- Heap: functions without arguments ----

const NO_ARG_FNS: [string, (h: Heap) => unknown][] = [
  ['stats()', (h) => h.stats()],
  ['debugStats()', (h) => h.debugStats()],
  ['inspect()', (h) => h.inspect()],
  ['check()', (h) => h.check()],
  ['trim()', (h) => h.trim()],
  ['residentBytes()', (h) => h.residentBytes()],
];
for (const [fn, call] of NO_ARG_FNS) {
  for (const kind of KINDS) {
    if (kind === 'destroyed heap') {
      const name = fn.slice(0, -2);
      rows.push({
        fn,
        kind,
        outcome: throws(
          'Error',
          'ERR_PYMALLOC_DESTROYED',
          new RegExp(`${name}: the heap has been destroyed`),
        ),
        call: (c) => call(c.destroyed),
      });
    } else {
      rows.push({ fn, kind, outcome: na('takes no argument'), call: () => undefined });
    }
  }
}
for (const kind of KINDS) {
  rows.push(
    kind === 'destroyed heap'
      ? {
          fn: 'destroy()',
          kind,
          outcome: accepted('a second destroy() does nothing', (r) => expect(r).toBeUndefined()),
          call: (c) => c.destroyed.destroy(),
        }
      : { fn: 'destroy()', kind, outcome: na('takes no argument'), call: () => undefined },
  );
}

// ---- new Heap(options) ----

const GEOMETRY = ['alignment', 'threshold', 'poolSize', 'arenaSize', 'reserve'] as const;
const COUNTS = ['purgeThreshold', 'spanCache'] as const;
const NUMERIC: [Kind, unknown][] = [
  ['negative', -4096],
  ['NaN', Number.NaN],
  ['Infinity', Number.POSITIVE_INFINITY],
  ['non-integer', 4096.5],
  ['huge', 2 ** 64],
  ['wrong type', '4096'],
];
const construct = (options: unknown) => () => new Heap(options as HeapOptions).destroy();
for (const option of GEOMETRY) {
  // A huge but safe integer: 2^64 is not a safe integer, which the first check already refuses as a type.
  for (const [kind, v] of NUMERIC.map(([k, x]): [Kind, unknown] => [k, k === 'huge' ? 2 ** 40 : x])) {
    // Geometry fields are checked as "a positive integer" first (TypeError for anything else), then against
    // each other and the limits (RangeError).
    const outcome =
      kind === 'huge'
        ? throws('RangeError', 'ERR_OUT_OF_RANGE', /invalid heap geometry: /)
        : throws(
            'TypeError',
            'ERR_INVALID_ARG_TYPE',
            new RegExp(`invalid heap geometry: ${option} must be a positive integer, got`),
          );
    rows.push({ fn: `new Heap({ ${option} })`, kind, outcome, call: construct({ [option]: v }) });
  }
}
for (const option of COUNTS) {
  for (const [kind, v] of NUMERIC) {
    const outcome =
      kind === 'wrong type'
        ? throws(
            'TypeError',
            'ERR_INVALID_ARG_TYPE',
            new RegExp(`${option} must be a non-negative integer, got`),
          )
        : throws(
            'RangeError',
            'ERR_OUT_OF_RANGE',
            new RegExp(`${option} must be a non-negative integer, got`),
          );
    rows.push({ fn: `new Heap({ ${option} })`, kind, outcome, call: construct({ [option]: v }) });
  }
}
for (const [option, bad, message] of [
  ['policy', 'sometimes', /policy must be one of purge, cpython, never, got sometimes/],
  ['policy', 1, /policy must be one of purge, cpython, never, got 1/],
  ['decommit', 'free', /decommit must be one of dontneed, unmap, got free/],
  ['decommit', 0, /decommit must be one of dontneed, unmap, got 0/],
  ['preset', 'cpython-2.4', /unknown preset 'cpython-2.4'/],
  ['preset', 7, /unknown preset '7'/],
] as const) {
  rows.push({
    fn: `new Heap({ ${option} })`,
    kind: typeof bad === 'string' ? 'unknown value' : 'wrong type',
    outcome: throws('RangeError', 'ERR_OUT_OF_RANGE', message),
    call: construct({ [option]: bad }),
  });
}
rows.push({
  fn: 'new Heap({ debug })',
  kind: 'wrong type',
  outcome: throws('TypeError', 'ERR_INVALID_ARG_TYPE', /debug must be a boolean/),
  call: construct({ debug: 'yes' }),
});
for (const bad of [42, 'big', null]) {
  rows.push({
    fn: 'new Heap(options)',
    kind: `wrong type (${JSON.stringify(bad)})`,
    outcome: throws('TypeError', 'ERR_INVALID_ARG_TYPE', /^pymalloc: new Heap: options must be an object$/),
    call: construct(bad),
  });
}
rows.push({
  fn: 'new Heap(options)',
  kind: 'pointer kinds',
  outcome: na('takes options, no pointer'),
  call: () => undefined,
});
rows.push({
  fn: 'new Heap()',
  kind: 'the OS refuses the reservation',
  outcome: throws('Error', 'ENOMEM', /mmap .* failed: ENOMEM/),
  call: () => {
    __testing.setFault('reserve', 1);
    try {
      construct({})();
    } finally {
      __testing.setFault('reserve', 0);
    }
  },
});

// ---- OS layer ----

const RANGE_FNS: [string, (r: Reservation, offset: unknown, length: unknown) => unknown][] = [
  ['commit(offset, length)', (r, o, l) => r.commit(o as number, l as number)],
  ['decommit(offset, length)', (r, o, l) => r.decommit(o as number, l as number)],
  ["decommit(offset, length, 'dontneed')", (r, o, l) => r.decommit(o as number, l as number, 'dontneed')],
  ['residentPages(offset, length)', (r, o, l) => r.residentPages(o as number, l as number)],
  ['residentBytes(offset, length)', (r, o, l) => r.residentBytes(o as number, l as number)],
  ['residentBytes(reservation, offset, length)', (r, o, l) => residentBytes(r, o as number, l as number)],
];
for (const [name, call] of RANGE_FNS) {
  const fn = `Reservation ${name}`;
  for (const arg of ['offset', 'length'] as const) {
    const at = (v: unknown) => (c: Ctx) => (arg === 'offset' ? call(c.r, v, page) : call(c.r, 0, v));
    const count = (got: string) =>
      throws(
        'RangeError',
        'ERR_OUT_OF_RANGE',
        new RegExp(`${arg} must be a non-negative integer, got ${got}`),
      );
    rows.push({ fn, kind: `${arg} negative`, outcome: count(`-${page}`), call: at(-page) });
    rows.push({ fn, kind: `${arg} NaN`, outcome: count('NaN'), call: at(Number.NaN) });
    rows.push({
      fn,
      kind: `${arg} Infinity`,
      outcome: count('Infinity'),
      call: at(Number.POSITIVE_INFINITY),
    });
    rows.push({
      fn,
      kind: `${arg} non-integer`,
      outcome: count(`${page + 0.5}`.replace('.', '\\.')),
      call: at(page + 0.5),
    });
    rows.push({
      fn,
      kind: `${arg} huge`,
      outcome: throws(
        'RangeError',
        'ERR_OUT_OF_RANGE',
        /offset \+ length must not exceed the reservation size/,
      ),
      call: at(2 ** 40),
    });
    rows.push({
      fn,
      kind: `${arg} wrong type`,
      outcome: throws('TypeError', 'ERR_INVALID_ARG_TYPE', new RegExp(`${arg} must be a number, got string`)),
      call: at(String(page)),
    });
    rows.push({
      fn,
      kind: `${arg} not a page multiple (the "interior pointer" of this layer)`,
      outcome: throws(
        'RangeError',
        'ERR_OUT_OF_RANGE',
        new RegExp(`${arg} must be a multiple of the page size \\(${page}\\), got ${page + 16}`),
      ),
      call: at(page + 16),
    });
  }
  rows.push({
    fn,
    kind: 'empty range',
    outcome: throws('RangeError', 'ERR_OUT_OF_RANGE', /length must be greater than 0, got 0/),
    call: (c) => call(c.r, 0, 0),
  });
  rows.push({
    fn,
    kind: 'range past the end (offset + length > size)',
    outcome: throws(
      'RangeError',
      'ERR_OUT_OF_RANGE',
      new RegExp(
        `offset \\+ length must not exceed the reservation size \\(${16 * page}\\), got ${15 * page} \\+ ${2 * page}`,
      ),
    ),
    call: (c) => call(c.r, 15 * page, 2 * page),
  });
  rows.push({
    fn,
    kind: 'released reservation (the "freed pointer" of this layer)',
    outcome: throws('Error', 'ERR_RESERVATION_RELEASED', /the reservation was released/),
    call: (c) => call(c.gone, 0, page),
  });
  rows.push({
    fn,
    kind: 'destroyed heap',
    outcome: throws('Error', 'ERR_RESERVATION_RELEASED', /the reservation was released/),
    call: (c) => call(c.destroyed.reservation, 0, page),
  });
  rows.push({
    fn,
    kind: 'pages already decommitted (the "released arena" of this layer)',
    outcome: accepted('ranges are stateless: commit, decommit and residency work on any pages of the range'),
    call: (c) => {
      c.r.decommit(0, 2 * page);
      return call(c.r, 0, page);
    },
  });
  rows.push({
    fn,
    kind: "another heap's pointer",
    outcome: na('offsets are into this reservation; its native handle is private (see security.test.ts)'),
    call: () => undefined,
  });
}
rows.push({
  fn: 'residentBytes(reservation, offset, length)',
  kind: 'wrong type of reservation',
  outcome: throws('TypeError', 'ERR_INVALID_ARG_TYPE', /reservation must be a Reservation, got object/),
  call: () => residentBytes({ size: 4096, residentBytes: () => 0 } as unknown as Reservation),
});
rows.push({
  fn: 'Reservation decommit(offset, length, mode)',
  kind: 'unknown mode',
  outcome: throws('TypeError', 'ERR_INVALID_ARG_VALUE', /mode must be 'unmap' or 'dontneed', got 'free'/),
  call: (c) => c.r.decommit(0, page, 'free' as 'unmap'),
});
rows.push({
  fn: 'Reservation decommit(offset, length, mode)',
  kind: 'wrong type of mode',
  outcome: throws('TypeError', 'ERR_INVALID_ARG_TYPE', /mode must be 'unmap' or 'dontneed', got 1/),
  call: (c) => c.r.decommit(0, page, 1 as unknown as 'unmap'),
});

for (const [arg, call] of [
  ['size', (v: unknown) => Reservation.create(v as number)],
  ['alignment', (v: unknown) => Reservation.create(16 * page, v as number)],
] as const) {
  const fn = `Reservation.create(size, alignment)`;
  const count = (got: string) =>
    throws('RangeError', 'ERR_OUT_OF_RANGE', new RegExp(`${arg} must be a non-negative integer, got ${got}`));
  rows.push({ fn, kind: `${arg} negative`, outcome: count(`-${page}`), call: () => call(-page) });
  rows.push({ fn, kind: `${arg} NaN`, outcome: count('NaN'), call: () => call(Number.NaN) });
  rows.push({
    fn,
    kind: `${arg} Infinity`,
    outcome: count('Infinity'),
    call: () => call(Number.POSITIVE_INFINITY),
  });
  rows.push({
    fn,
    kind: `${arg} non-integer`,
    outcome: count(`${page + 0.5}`.replace('.', '\\.')),
    call: () => call(page + 0.5),
  });
  rows.push({
    fn,
    kind: `${arg} huge`,
    outcome: throws(
      'RangeError',
      'ERR_OUT_OF_RANGE',
      arg === 'size'
        ? /size must be greater than 0 and at most 4294967296, got 8589934592/
        : /alignment must be a power of two from the page size \(\d+\) to 4294967296, got 8589934592/,
    ),
    call: () => call(2 ** 33),
  });
  rows.push({
    fn,
    kind: `${arg} wrong type`,
    outcome: throws('TypeError', 'ERR_INVALID_ARG_TYPE', new RegExp(`${arg} must be a number, got string`)),
    call: () => call(String(page)),
  });
  rows.push({
    fn,
    kind: arg === 'size' ? 'size not a page multiple' : 'alignment not a power of two',
    outcome: throws(
      'RangeError',
      'ERR_OUT_OF_RANGE',
      arg === 'size' ? /size must be a multiple of the page size/ : /alignment must be a power of two/,
    ),
    call: () => call(arg === 'size' ? page + 16 : 3 * page),
  });
}
rows.push({
  fn: 'Reservation.create(size, alignment)',
  kind: 'size 0',
  outcome: throws('RangeError', 'ERR_OUT_OF_RANGE', /size must be greater than 0/),
  call: () => Reservation.create(0),
});
rows.push({
  fn: 'Reservation release()',
  kind: 'released reservation (a second release)',
  outcome: throws('Error', 'ERR_RESERVATION_RELEASED', /the reservation was released/),
  call: (c) => c.gone.release(),
});
rows.push({
  fn: 'Reservation release()',
  kind: 'destroyed heap',
  outcome: throws('Error', 'ERR_RESERVATION_RELEASED', /the reservation was released/),
  call: (c) => c.destroyed.reservation.release(),
});
rows.push({
  fn: 'Reservation inspectHeap()',
  kind: 'released reservation',
  outcome: throws('Error', 'ERR_RESERVATION_RELEASED', /the reservation was released/),
  call: (c) => c.gone.inspectHeap(),
});
rows.push({
  fn: 'Reservation inspectHeap()',
  kind: 'a reservation that holds no heap (nothing committed)',
  outcome: throws(
    'Error',
    'ERR_PYMALLOC_CORRUPT',
    /inspectHeap: heap_state is not committed: not a pymalloc heap/,
  ),
  call: () => {
    const r = Reservation.create(16 * page, page, 'none');
    try {
      return r.inspectHeap();
    } finally {
      r.release();
    }
  },
});
rows.push({
  fn: 'Reservation inspectHeap()',
  kind: 'a reservation that holds no heap (committed zeros)',
  outcome: throws(
    'Error',
    'ERR_PYMALLOC_CORRUPT',
    /inspectHeap: heap_state.magic is wrong: not a pymalloc heap/,
  ),
  call: (c) => {
    c.r.commit(0, 4 * page); // more than heap_state's SIZEOF_HEAP_STATE bytes
    return c.r.inspectHeap();
  },
});
for (const [fn, call] of [
  ['pageSize()', pageSize],
  ['rssBytes()', rssBytes],
  ['smapsRollup()', smapsRollup],
] as const) {
  rows.push({ fn, kind: 'any', outcome: na('takes no argument'), call: () => call() });
}
rows.push({
  fn: '__testing.setFault(op, nth)',
  kind: 'unknown op',
  outcome: throws(
    'TypeError',
    'ERR_INVALID_ARG_VALUE',
    /op must be 'commit', 'reserve' or 'decommit', got 'munmap'/,
  ),
  call: () => __testing.setFault('munmap' as 'commit', 1),
});
for (const [kind, v, outcome] of [
  ['negative', -1, throws('RangeError', 'ERR_OUT_OF_RANGE', /nth must be a non-negative integer, got -1/)],
  [
    'NaN',
    Number.NaN,
    throws('RangeError', 'ERR_OUT_OF_RANGE', /nth must be a non-negative integer, got NaN/),
  ],
  [
    'non-integer',
    1.5,
    throws('RangeError', 'ERR_OUT_OF_RANGE', /nth must be a non-negative integer, got 1.5/),
  ],
  ['huge', 2 ** 40, throws('RangeError', 'ERR_OUT_OF_RANGE', /nth must be at most 2147483647/)],
  ['wrong type', '1', throws('TypeError', 'ERR_INVALID_ARG_TYPE', /nth must be a number, got string/)],
] as const) {
  rows.push({
    fn: '__testing.setFault(op, nth)',
    kind,
    outcome,
    call: () => __testing.setFault('commit', v as number),
  });
}

function describeOutcome(o: Outcome): string {
  if (o.kind === 'throws') return `${o.name} ${o.code}`;
  return `${o.kind}: ${o.why}`;
}

describe('bad input → the documented error, and the heap stays consistent', () => {
  test.each(rows.map((r) => ({ ...r, expected: describeOutcome(r.outcome) })))(
    '$fn × $kind → $expected',
    ({ fn, call, outcome }) => {
      const c = ctx;
      if (outcome.kind === 'n/a') {
        expect(outcome.why.length).toBeGreaterThan(0);
      } else if (outcome.kind === 'accepted') {
        const result = call(c);
        outcome.check?.(result);
      } else {
        let thrown: unknown;
        try {
          call(c);
        } catch (err) {
          thrown = err;
        }
        // Errors made by the addon belong to Node's main realm, not jest's: compare names, not classes.
        expect(Object.prototype.toString.call(thrown)).toBe('[object Error]');
        const e = thrown as Error & { code?: string };
        expect({ name: e.name, code: e.code }).toEqual({ name: outcome.name, code: outcome.code });
        expect(e.message).toMatch(outcome.message);
        // Every message names the function that was called: `pymalloc: malloc: …`, `pymalloc: free(0x10): …`,
        // `pymalloc: reservation.commit: …` (the OS's own refusals name the system call: `mmap (…) failed`).
        // Out-of-memory errors name the request instead, as they come from deep in the allocator; the test hooks
        // of pymalloc/testing are not the API.
        if (e.code !== 'ENOMEM' && e.code !== 'ERR_PYMALLOC_NOMEM' && !fn.startsWith('__testing')) {
          expect(e.message).toMatch(/^pymalloc: (new Heap: |(debug: )?[A-Za-z_.]+(\(|: ))/);
        }
      }
      // Whatever happened, both heaps are consistent and their blocks are where they were.
      c.h.check();
      c.other.check();
      expect(c.h.usableSize(c.p)).toBe(64);
      expect(c.h.usableSize(c.big)).toBe(4 * page);
      expect(c.other.usableSize(c.foreign)).toBe(64);
      // The reservation still works.
      c.r.commit(0, page);
      expect(c.r.residentPages(0, 16 * page)).toBeLessThanOrEqual(16);
    },
  );

  test('the table covers every function × every kind of input', () => {
    const fns = new Set(rows.map((r) => r.fn));
    for (const fn of [
      'malloc(n)',
      'calloc(count, 16)',
      'calloc(1, size)',
      'realloc(p, n)',
      'free(p)',
      'realloc(p, 16)',
      'usableSize(p)',
      'addressOf(p)',
      'stats()',
      'debugStats()',
      'inspect()',
      'check()',
      'trim()',
      'residentBytes()',
      'destroy()',
    ]) {
      const kinds = new Set(rows.filter((r) => r.fn === fn).map((r) => r.kind.replace(/ \(.*$/, '')));
      for (const kind of KINDS) expect([fn, kinds.has(kind)]).toEqual([fn, true]);
    }
    expect(fns.size).toBeGreaterThan(40);
  });
});
