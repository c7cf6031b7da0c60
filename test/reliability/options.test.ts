// Options are read once: `new Heap(options)` reads each option name exactly once (one [[Get]], whatever getters or
// Proxies answer), rejects unknown names, and builds the heap, and picks its specialised class, from that one
// resolved value. A specialised class checks that its folded constants are the heap's.
//
// Cases that could make a heap run another geometry's folded constants (which handed out overlapping blocks and
// then died of SIGSEGV) run in a child process (fixtures/options-child.js, on the compiled library in dist/): the
// test asserts that it exited normally and then what it saw.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Heap, type HeapOptions, pageSize, resolveGeometry } from '../../lib';
import { foldedConstants } from '../../lib/core';
import { type GeometryOptions, metadataLayout } from '../../lib/geometry';
import * as heapModule from '../../lib/heap';
import { sharedFoldedConstants } from '../../lib/shared/state';
import {
  SPECIALISED_PAGE_SIZE,
  SPECIALISED_PRESETS,
  sharedSpecialisations,
  specialisations,
} from '../../lib/tools/fastpaths';

const { checkHeapOptions } = heapModule;
// Not in the old lib/heap.ts: looked up at run time so that this file runs (and fails) against it.
const resolveHeapOptions = (
  heapModule as unknown as { resolveHeapOptions: (o?: unknown) => Record<string, unknown> }
).resolveHeapOptions;

const lib = join(__dirname, '..', '..', 'dist', 'lib');
const child = join(__dirname, 'fixtures', 'options-child.js');
const MiB = 1024 * 1024;
const osPage = pageSize();
const onSpecialisedPages = osPage === SPECIALISED_PAGE_SIZE;
const specialisedOnly = onSpecialisedPages ? test : test.skip;

/** Every option of new Heap, as docs/api.md's table lists them. */
const NAMES = [
  'preset',
  'alignment',
  'threshold',
  'mediumThreshold',
  'poolSize',
  'arenaSize',
  'reserve',
  'policy',
  'decommit',
  'purgeThreshold',
  'spanCache',
  'purgeDelay',
  'hugePages',
  'debug',
  'shared',
] as const;
type Name = (typeof NAMES)[number];
const GEOMETRY_NAMES = NAMES.slice(0, 7);

const made: Heap[] = [];
afterEach(() => {
  for (const h of made.splice(0)) if (!h.isDestroyed) h.destroy();
});
function heap(options: unknown): Heap {
  const h = new Heap(options as HeapOptions);
  made.push(h);
  return h;
}

/** An object whose every option is a getter answering `values[name]`, and the reads made of each. */
function counted(values: Partial<Record<Name, unknown>>): { o: object; reads: Record<string, number> } {
  const reads: Record<string, number> = {};
  const o = {};
  for (const [k, v] of Object.entries(values)) {
    Object.defineProperty(o, k, {
      enumerable: true,
      get() {
        reads[k] = (reads[k] ?? 0) + 1;
        return v;
      },
    });
  }
  return { o, reads };
}

/** A Proxy over `values` that counts every string key read through it. */
function countingProxy(values: Partial<Record<Name, unknown>>): { o: object; reads: Record<string, number> } {
  const reads: Record<string, number> = {};
  const o = new Proxy(
    { ...values },
    {
      get(t, k, r) {
        if (typeof k === 'string') reads[k] = (reads[k] ?? 0) + 1;
        return Reflect.get(t, k, r);
      },
    },
  );
  return { o, reads };
}

const STABLE: Record<Name, unknown> = {
  preset: 'cpython-3.11',
  alignment: 16,
  threshold: 512,
  mediumThreshold: 1024,
  poolSize: 16384,
  arenaSize: MiB,
  reserve: 2 ** 26,
  policy: 'purge',
  decommit: 'dontneed',
  purgeThreshold: 4 * MiB,
  spanCache: MiB,
  purgeDelay: 250,
  hugePages: false,
  debug: false,
  shared: false,
};
const once = (names: readonly string[]) => Object.fromEntries(names.map((k) => [k, 1]));

function thrown(fn: () => unknown): { name: string; code: unknown; message: string } | null {
  try {
    fn();
  } catch (e) {
    const err = e as Error & { code?: unknown };
    return { name: err.name, code: err.code ?? null, message: err.message };
  }
  return null;
}

describe('each option is read exactly once', () => {
  test('new Heap: every name once, through getters', () => {
    const { o, reads } = counted(STABLE);
    const h = heap(o);
    expect(reads).toEqual(once(NAMES));
    h.free(h.malloc(100));
    h.check();
    expect(reads).toEqual(once(NAMES));
  });

  test('new Heap: every name once through a Proxy, and nothing else read', () => {
    const { o, reads } = countingProxy(STABLE);
    heap(o);
    expect(reads).toEqual(once(NAMES));
    // An empty Proxy: each name is still asked once (an absent option is a read that answers undefined).
    const empty = countingProxy({});
    heap(empty.o);
    expect(empty.reads).toEqual(once(NAMES));
  });

  test('a geometry without a specialisation, debug hooks and huge pages: still once each', () => {
    for (const values of [
      { ...STABLE, alignment: 8, mediumThreshold: 512 },
      { ...STABLE, debug: true },
      { ...STABLE, preset: 'cpython-hugepages', arenaSize: 2 * MiB, hugePages: true },
    ]) {
      const { o, reads } = counted(values);
      thrown(() => heap(o)); // huge pages may be refused where THP pages are not 2 MiB: once either way
      expect(reads).toEqual(once(NAMES));
    }
  });

  test('checkHeapOptions and resolveHeapOptions: once each', () => {
    const a = counted(STABLE);
    expect(checkHeapOptions(a.o as HeapOptions).geometry.poolSize).toBe(16384);
    expect(a.reads).toEqual(once(NAMES));
    expect(typeof resolveHeapOptions).toBe('function');
    const b = countingProxy(STABLE);
    resolveHeapOptions(b.o);
    expect(b.reads).toEqual(once(NAMES));
  });

  test('resolveGeometry reads each of its fields once', () => {
    const values = {
      preset: 'cpython-3.6',
      alignment: 16,
      threshold: 256,
      mediumThreshold: 512,
      poolSize: 8192,
      arenaSize: 512 * 1024,
      reserve: 2 ** 28,
    };
    const { o, reads } = counted(values as Partial<Record<Name, unknown>>);
    const g = resolveGeometry(o as GeometryOptions, osPage);
    expect(reads).toEqual(once(GEOMETRY_NAMES));
    expect(g).toMatchObject({ preset: 'custom', alignment: 16, mediumThreshold: 512, poolSize: 8192 });
    const p = countingProxy({});
    expect(resolveGeometry(p.o as GeometryOptions, osPage).preset).toBe('cpython-3.11');
    expect(p.reads).toEqual(once(GEOMETRY_NAMES));
  });

  test('a preset that is not a string is refused without converting it (no toString called)', () => {
    let calls = 0;
    const preset = {
      toString() {
        calls++;
        return 'cpython-3.6';
      },
    };
    const err = thrown(() => resolveGeometry({ preset } as unknown as GeometryOptions, osPage));
    expect(err).toMatchObject({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    expect(err!.message).toMatch(/unknown preset/);
    // Only the message may call it; the preset chosen never depends on it.
    expect(calls).toBeLessThanOrEqual(1);
  });
});

describe('unknown option names', () => {
  const unknown = (o: unknown) => thrown(() => heap(o));

  test('one unknown name is a TypeError ERR_INVALID_ARG_VALUE naming it, with the near miss', () => {
    const err = unknown({ poolsize: 4096 });
    expect(err).toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
    expect(err!.message).toMatch(/'poolsize'/);
    expect(err!.message).toMatch(/did you mean 'poolSize'\?/);
    for (const [typo, meant] of [
      ['hugepages', 'hugePages'],
      ['debg', 'debug'],
      ['polcy', 'policy'],
      ['threshhold', 'threshold'],
      ['arenasize', 'arenaSize'],
      ['reserved', 'reserve'],
      ['medium_threshold', 'mediumThreshold'],
    ]) {
      expect(unknown({ [typo]: 1 })!.message).toMatch(
        new RegExp(`'${typo}' \\(did you mean '${meant}'\\?\\)`),
      );
    }
    // No suggestion for a name close to nothing.
    const far = unknown({ colour: 'blue' });
    expect(far).toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
    expect(far!.message).toMatch(/'colour'/);
    expect(far!.message).not.toMatch(/did you mean/);
  });

  test('several unknown names are all named, known ones beside them or not', () => {
    const err = unknown({ poolsize: 4096, colour: 'blue', preset: 'cpython-3.6', hugepage: true });
    expect(err).toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
    expect(err!.message).toMatch(/'poolsize' \(did you mean 'poolSize'\?\)/);
    expect(err!.message).toMatch(/'colour'/);
    expect(err!.message).toMatch(/'hugepage' \(did you mean 'hugePages'\?\)/);
    expect(err!.message).not.toMatch(/'preset'/);
  });

  test('the names a Proxy reports are checked; symbols, inherited and non-enumerable keys are not', () => {
    const lying = new Proxy({}, { ownKeys: () => ['arenasize'] });
    expect(unknown(lying)).toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
    expect(unknown(lying)!.message).toMatch(/'arenasize' \(did you mean 'arenaSize'\?\)/);
    const described = new Proxy(
      {},
      {
        ownKeys: () => ['speed'],
        getOwnPropertyDescriptor: () => ({ value: 1, enumerable: true, configurable: true }),
      },
    );
    expect(unknown(described)!.message).toMatch(/'speed'/);
    const withSymbol = { [Symbol('tag')]: 1, reserve: 2 ** 26 };
    expect(unknown(withSymbol)).toBeNull();
    const inherited = Object.create({ colour: 'blue' }) as Record<string, unknown>;
    inherited['reserve'] = 2 ** 26;
    expect(unknown(inherited)).toBeNull();
    const hidden = { reserve: 2 ** 26 };
    Object.defineProperty(hidden, 'note', { value: 'x', enumerable: false });
    expect(unknown(hidden)).toBeNull();
  });

  test('checkHeapOptions and resolveHeapOptions reject them the same way, before reading any option', () => {
    const { o, reads } = counted({ reserve: 2 ** 26 });
    Object.defineProperty(o, 'poolsize', { value: 4096, enumerable: true });
    for (const fn of [() => checkHeapOptions(o as HeapOptions), () => resolveHeapOptions(o)]) {
      const err = thrown(fn);
      expect(err).toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
      expect(err!.message).toMatch(/'poolsize' \(did you mean 'poolSize'\?\)/);
    }
    expect(reads).toEqual({});
  });
});

describe('the resolved value', () => {
  test('is frozen, geometry and all, with every default applied', () => {
    const r = resolveHeapOptions({ preset: 'cpython-3.6', reserve: 2 ** 26 });
    expect(Object.isFrozen(r)).toBe(true);
    expect(Object.isFrozen(r['geometry'])).toBe(true);
    expect(r).toMatchObject({
      policy: 'purge',
      decommit: 'dontneed',
      purgeThreshold: 4 * MiB,
      spanCache: MiB,
      hugePages: false,
      debug: process.env['PYMALLOC'] === 'debug',
    });
    expect(r['geometry']).toEqual(resolveGeometry({ preset: 'cpython-3.6', reserve: 2 ** 26 }, osPage));
    // (A module is strict code: assigning to a frozen property throws.)
    expect(() => {
      (r as Record<string, unknown>)['policy'] = 'never';
    }).toThrow(TypeError);
    expect(resolveHeapOptions(r)).toBe(r);
  });

  test('applies PYMALLOC=debug when it is resolved, and an explicit debug over it', () => {
    const saved = process.env['PYMALLOC'];
    try {
      process.env['PYMALLOC'] = 'debug';
      const r = resolveHeapOptions({ reserve: 2 ** 26 });
      expect(r['debug']).toBe(true);
      expect(resolveHeapOptions({ reserve: 2 ** 26, debug: false })['debug']).toBe(false);
      delete process.env['PYMALLOC'];
      // Made from the resolved value, the heap has what was resolved, whatever the environment is now.
      const h = heap(r);
      expect(h.debug).toBe(true);
      expect(heap({ reserve: 2 ** 26 }).debug).toBe(false);
    } finally {
      if (saved === undefined) delete process.env['PYMALLOC'];
      else process.env['PYMALLOC'] = saved;
    }
  });

  test('new Heap(resolved) uses it as it is; a look-alike is user options, and rejected', () => {
    const r = resolveHeapOptions({ preset: 'cpython-3.6', reserve: 2 ** 26, policy: 'never', spanCache: 0 });
    const h = heap(r);
    expect(h.geometry).toEqual(r['geometry']);
    expect(h.policy).toBe('never');
    expect(h.specialised).toBe(onSpecialisedPages);
    // The same fields in an object of the caller's own: not the module's value, so resolved as options.
    const forged = { ...r };
    const err = thrown(() => heap(forged));
    expect(err).toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
    expect(err!.message).toMatch(/'geometry'/);
    // A Proxy of the real one is not it either.
    expect(thrown(() => heap(new Proxy(r, {})))).toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
  });
});

// ---- in a child process ----

interface ChildCase {
  label: string;
  via?: 'getters' | 'proxy' | 'plain';
  base?: Record<string, unknown>;
  flips?: Record<string, [unknown, unknown]>;
  ctor?: 'Heap' | 'fast' | 'reflect' | 'subclass' | 'subclass-ctor' | 'proxy-target' | 'generic-subclass';
  classPreset?: string;
  ops?: number;
}
interface ChildResult {
  label: string;
  reads: Record<string, number>;
  readsAfter: Record<string, number> | null;
  threw: { name: string; code: unknown; message: string } | null;
  heap: {
    className: string;
    instanceOfMine: boolean | null;
    extra: number | null;
    instanceOfHeap: boolean;
    specialised: boolean;
    geometry: Record<string, unknown>;
    policy: string;
    decommit: string;
    debug: boolean;
    hugePages: boolean;
    statePolicy: number;
    stateFlags: number;
    purgeThresholdPools: number;
    spanCacheLimitPages: number;
    purgeDelay: number;
  } | null;
  churn: unknown;
}

const UNDEFINED = '$undefined';

/** Runs the cases in one child; expects it to exit normally and returns its results by label. */
function runChild(cases: ChildCase[], env: NodeJS.ProcessEnv = {}): Map<string, ChildResult> {
  expect(existsSync(join(lib, 'index.js')) ? 'built' : `missing ${lib}: run npm run build:ts`).toBe('built');
  const run = spawnSync(process.execPath, [child, lib, JSON.stringify(cases)], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, PYMALLOC: '', ...env },
  });
  const lines = run.stdout.split('\n').filter((l) => l !== '');
  const running = run.stderr.trim().split('\n').pop();
  // A crash names the case it happened in (the last one started).
  expect({ status: run.status, signal: run.signal, crashedIn: run.status === 0 ? null : running }).toEqual({
    status: 0,
    signal: null,
    crashedIn: null,
  });
  const results = new Map<string, ChildResult>();
  for (const line of lines) {
    const r = JSON.parse(line) as ChildResult;
    results.set(r.label, r);
  }
  expect(results.size).toBe(cases.length);
  return results;
}

/** The class name new Heap should give `options`' geometry: the specialisation whose constants are its. */
function expectedClass(options: HeapOptions): string {
  const g = resolveGeometry(options, osPage);
  // A shared heap runs the shared fast paths: specialised for the geometry where a class has its constants.
  if (options.shared === true) {
    const k = JSON.stringify(sharedFoldedConstants(g));
    if (!onSpecialisedPages) return 'SharedHeap';
    return sharedSpecialisations().find((s) => JSON.stringify(s.constants) === k)?.name ?? 'SharedHeap';
  }
  const k = JSON.stringify(foldedConstants(g, metadataLayout(g)));
  if (!onSpecialisedPages) return 'Heap';
  return specialisations().find((s) => JSON.stringify(s.constants) === k)?.name ?? 'Heap';
}

function plain(options: Record<string, unknown>): HeapOptions {
  const o: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) if (v !== UNDEFINED) o[k] = v;
  return o as HeapOptions;
}

/** What a heap made from `first` (plain values) must be, or the error it must throw. */
function expectHeapOf(r: ChildResult, first: HeapOptions, classNameOverride?: string): void {
  const err = thrown(() => checkHeapOptions(first));
  if (err !== null) {
    expect({ label: r.label, threw: r.threw }).toEqual({ label: r.label, threw: err });
    return;
  }
  expect({ label: r.label, threw: r.threw, churn: r.churn }).toEqual({
    label: r.label,
    threw: null,
    churn: 'ok',
  });
  const g = resolveGeometry(first, osPage);
  const { hugePages } = checkHeapOptions(first);
  const className = classNameOverride ?? expectedClass(first);
  const debug = first.debug ?? false;
  const purgeThreshold = first.purgeThreshold ?? 4 * MiB;
  expect({ label: r.label, ...r.heap }).toMatchObject({
    label: r.label,
    className,
    instanceOfHeap: true,
    specialised: className !== 'Heap' && className !== 'Generic' && className !== 'SharedHeap',
    geometry: { ...g },
    policy: first.policy ?? 'purge',
    decommit: first.decommit ?? 'dontneed',
    debug,
    hugePages,
    stateFlags: debug ? 1 : 0,
    statePolicy: { cpython: 0, purge: 1, never: 2 }[first.policy ?? 'purge'],
    purgeThresholdPools: hugePages ? 0xffffffff : Math.max(1, Math.ceil(purgeThreshold / g.poolSize)),
    spanCacheLimitPages: Math.floor((first.spanCache ?? MiB) / g.pageSize),
    purgeDelay: first.purgeDelay ?? ((first.policy ?? 'purge') === 'purge' ? 250 : 0),
  });
  expect(r.readsAfter).toEqual(r.reads);
}

const RESERVE = 2 ** 28;
/** [first, later] pairs per option: valid then another valid, valid then invalid, invalid then valid. */
const FLIPS: Record<Name, { base?: Record<string, unknown>; pairs: [unknown, unknown][] }> = {
  preset: {
    base: { reserve: RESERVE },
    pairs: [
      ...SPECIALISED_PRESETS.flatMap((a) =>
        SPECIALISED_PRESETS.filter((b) => b !== a).map((b): [unknown, unknown] => [a, b]),
      ),
      [UNDEFINED, 'cpython-3.6'],
      ['cpython-3.6', UNDEFINED],
      ['cpython-3.11', 'cpython-2.4'],
      ['cpython-2.4', 'cpython-3.11'],
      [7, 'cpython-3.6'],
    ],
  },
  alignment: {
    base: { reserve: RESERVE },
    pairs: [
      [16, 8],
      [8, 16],
      [16, '16'],
      [16, 24],
      ['16', 16],
    ],
  },
  threshold: {
    base: { reserve: RESERVE },
    pairs: [
      [512, 256],
      [256, 512],
      [512, 4096],
      [4096, 512],
    ],
  },
  mediumThreshold: {
    base: { reserve: RESERVE },
    pairs: [
      [1024, 512],
      [512, 1024],
      [1024, 7],
      [7, 1024],
    ],
  },
  poolSize: {
    base: { reserve: RESERVE },
    pairs: [
      [16384, 4096],
      [4096, 16384],
      [8192, 65536],
      [16384, -1],
      [1000, 16384],
    ],
  },
  arenaSize: {
    base: { reserve: RESERVE },
    pairs: [
      [MiB, 256 * 1024],
      [256 * 1024, 2 * MiB],
      [MiB, 1000],
      [1000, MiB],
    ],
  },
  reserve: {
    pairs: [
      [RESERVE, 2 ** 32],
      [2 ** 32, 2 ** 26],
      [RESERVE, 2 ** 40],
      [2 ** 40, RESERVE],
    ],
  },
  policy: {
    base: { reserve: RESERVE },
    pairs: [
      ['purge', 'never'],
      ['never', 'cpython'],
      ['cpython', 'purge'],
      ['purge', 'bogus'],
      ['bogus', 'purge'],
    ],
  },
  decommit: {
    base: { reserve: RESERVE },
    pairs: [
      ['dontneed', 'unmap'],
      ['unmap', 'dontneed'],
      ['unmap', 'bogus'],
      ['bogus', 'unmap'],
    ],
  },
  purgeThreshold: {
    base: { reserve: RESERVE, poolSize: 8192 },
    pairs: [
      [4096, 64 * MiB],
      [0, 4096],
      [4096, -1],
      [4096, 'x'],
      ['x', 4096],
    ],
  },
  spanCache: {
    base: { reserve: RESERVE },
    pairs: [
      [0, 64 * MiB],
      [4 * MiB, 0],
      [4096, -4096],
      [-4096, 4096],
    ],
  },
  purgeDelay: {
    base: { reserve: RESERVE },
    pairs: [
      [0, 500],
      [250, 0],
      [100, -1],
      [-1, 100],
      [UNDEFINED, 2 ** 31],
    ],
  },
  hugePages: {
    base: { reserve: RESERVE, preset: 'cpython-hugepages' },
    pairs: [
      [true, false],
      [false, true],
      [false, 'yes'],
      ['yes', false],
    ],
  },
  debug: {
    base: { reserve: RESERVE },
    pairs: [
      [false, true],
      [true, false],
      [false, 1],
      [1, false],
    ],
  },
  shared: {
    base: { reserve: RESERVE },
    pairs: [
      [false, true],
      [true, false],
      [false, 1],
      [1, false],
    ],
  },
};

describe('options whose answer changes between reads (in a child process)', () => {
  test.each(NAMES.map((n) => [n]))(
    '%s: the heap has the first-read value and works, through getters and a Proxy',
    (name) => {
      const { base = {}, pairs } = FLIPS[name];
      const cases: ChildCase[] = [];
      for (const via of ['getters', 'proxy'] as const) {
        for (const [first, later] of pairs) {
          cases.push({
            label: `${via}: ${name} ${JSON.stringify(first)} then ${JSON.stringify(later)}`,
            via,
            base,
            flips: { [name]: [first, later] },
          });
        }
      }
      const results = runChild(cases);
      for (const c of cases) {
        const r = results.get(c.label)!;
        const [first] = c.flips![name]!;
        // The flipped option was read once; through a Proxy, every option was, and nothing else.
        if (c.via === 'proxy')
          expect({ label: c.label, reads: r.reads }).toEqual({ label: c.label, reads: once(NAMES) });
        else expect({ label: c.label, reads: r.reads }).toEqual({ label: c.label, reads: { [name]: 1 } });
        expectHeapOf(r, plain({ ...base, [name]: first }));
      }
    },
  );

  test('several options flipping at once, and PYMALLOC=debug read once with them', () => {
    const flips: Record<string, [unknown, unknown]> = {
      preset: ['cpython-3.6', 'cpython-3.11'],
      poolSize: [8192, 4096],
      policy: ['never', 'bogus'],
      decommit: ['unmap', 'dontneed'],
      spanCache: [0, -1],
      debug: [UNDEFINED, false],
    };
    const cases: ChildCase[] = (['getters', 'proxy'] as const).map((via) => ({
      label: via,
      via,
      base: { reserve: RESERVE },
      flips,
    }));
    const results = runChild(cases, { PYMALLOC: 'debug' });
    const first = plain({
      reserve: RESERVE,
      ...Object.fromEntries(Object.entries(flips).map(([k, v]) => [k, v[0]])),
    });
    for (const c of cases) {
      const r = results.get(c.label)!;
      expect(r.heap).toMatchObject({ debug: true, stateFlags: 1, policy: 'never', decommit: 'unmap' });
      expect(r.churn).toBe('ok');
      expect(r.heap!.geometry).toEqual({ ...resolveGeometry(first, osPage) });
      expect(r.reads).toEqual(c.via === 'proxy' ? once(NAMES) : once(Object.keys(flips)));
    }
  });
});

describe('the specialised classes (in a child process)', () => {
  /** Geometries to build under another preset's class: every preset, and custom ones. */
  const GEOMETRIES: Array<[string, Record<string, unknown>]> = [
    ...SPECIALISED_PRESETS.map((p): [string, Record<string, unknown>] => [p, { preset: p }]),
    ['alignment 8', { alignment: 8 }],
    ['poolSize 8192', { poolSize: 8192 }],
    ['poolSize 4096', { poolSize: 4096 }],
    ['arenaSize 512 KiB', { arenaSize: 512 * 1024 }],
    ['3.6 with alignment 16', { preset: 'cpython-3.6', alignment: 16 }],
    ['3.11 without medium classes', { mediumThreshold: 512 }],
    ['default', {}],
  ];
  const withReserve = (o: Record<string, unknown>) => ({ reserve: RESERVE, ...o });

  specialisedOnly.each(SPECIALISED_PRESETS.map((p) => [p]))(
    "%s's class made directly, or as Reflect.construct's new.target, with every geometry: a correct heap",
    (preset) => {
      const cases: ChildCase[] = [];
      for (const ctor of ['fast', 'reflect'] as const) {
        for (const [label, o] of GEOMETRIES) {
          cases.push({
            label: `${ctor}: ${label}`,
            via: 'plain',
            base: withReserve(o),
            ctor,
            classPreset: preset,
          });
        }
      }
      // Through getters that flip too: the class's constructor resolves once, like Heap's.
      const other = preset === 'cpython-3.6' ? 'cpython-3.11' : 'cpython-3.6';
      cases.push({
        label: 'fast: preset flipping',
        via: 'getters',
        base: { reserve: RESERVE },
        flips: { preset: [other, preset] },
        ctor: 'fast',
        classPreset: preset,
      });
      const results = runChild(cases);
      for (const c of cases) {
        const r = results.get(c.label)!;
        const first = plain({ ...c.base, ...(c.flips ? { preset: c.flips['preset']![0] } : {}) });
        expectHeapOf(r, first);
        if (c.flips) expect(r.reads).toEqual({ preset: 1 });
      }
    },
  );

  specialisedOnly.each(SPECIALISED_PRESETS.map((p) => [p]))(
    "a subclass of %s's class (or a Proxy of it as new.target): specialised with its own geometry, refused with another",
    (preset) => {
      const cases: ChildCase[] = [];
      for (const ctor of ['subclass', 'subclass-ctor', 'proxy-target'] as const) {
        for (const [label, o] of GEOMETRIES) {
          cases.push({
            label: `${ctor}: ${label}`,
            via: 'plain',
            base: withReserve(o),
            ctor,
            classPreset: preset,
          });
        }
      }
      const results = runChild(cases);
      const own = expectedClass({ preset } as HeapOptions);
      for (const c of cases) {
        const r = results.get(c.label)!;
        const options = plain(c.base!);
        const mine = { subclass: 'Mine', 'subclass-ctor': 'MineWithConstructor', 'proxy-target': own }[
          c.ctor as string
        ]!;
        if (expectedClass(options) === own) {
          expectHeapOf(r, options, mine);
          expect(r.heap).toMatchObject({ instanceOfMine: true, specialised: true });
          if (c.ctor === 'subclass-ctor') expect(r.heap!.extra).toBe(42);
        } else {
          // Refused, naming the subclass and what to do: its prototype chain has the other geometry's paths.
          expect({ label: c.label, heap: r.heap }).toEqual({ label: c.label, heap: null });
          expect(r.threw).toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
          expect(r.threw!.message).toMatch(new RegExp(`class ${mine} extends ${own}`));
          expect(r.threw!.message).toMatch(/extend Heap/);
        }
      }
    },
  );

  test('a subclass of Heap itself runs the generic paths with any geometry, options read once', () => {
    const cases: ChildCase[] = GEOMETRIES.map(([label, o]) => ({
      label,
      via: 'getters',
      base: withReserve(o),
      flips: { policy: ['never', 'bogus'] },
      ctor: 'generic-subclass',
    }));
    const results = runChild(cases);
    for (const c of cases) {
      const r = results.get(c.label)!;
      expectHeapOf(r, plain({ ...c.base, policy: 'never' }), 'Generic');
      expect(r.heap).toMatchObject({ instanceOfMine: true, specialised: false });
      expect(r.reads).toEqual({ policy: 1 });
    }
  });
});
