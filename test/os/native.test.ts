/**
 * lib/os/native.ts and the raw shim: the loader, argument checks in C++ (the raw binding throws, never
 * crashes), worker threads, and finalizers that never unmap a newer reservation.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  type NativeHandle,
  nativeBinding,
  nativeBuild,
  packageRoot,
  resolveNativeBuild,
} from '../../lib/os/native';
import { runWorker } from '../run-worker';
import { expectError } from './expect-error';

const binding = nativeBinding();
const page = binding.pageSize();
const fixtures = path.join(__dirname, 'fixtures');

describe('loader', () => {
  test('loads the build PYMALLOC_NATIVE selects, or the first one built', () => {
    const selected = process.env['PYMALLOC_NATIVE'];
    const build = nativeBuild();
    expect(fs.existsSync(build.path)).toBe(true);
    if (selected === 'gyp' || selected === 'cmake' || selected === 'asan') expect(build.kind).toBe(selected);
    else if (selected) expect(build).toEqual({ kind: 'path', path: selected });
    else expect(['prebuild', 'gyp', 'cmake']).toContain(build.kind);
  });

  // '' is the default order whatever PYMALLOC_NATIVE says (undefined would read it: CI sets it to cmake and asan).
  test('without PYMALLOC_NATIVE, a prebuild is found through node-gyp-build when nothing is built locally', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pymalloc-prebuilt-'));
    try {
      const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
      fs.mkdirSync(dir, { recursive: true });
      fs.copyFileSync(nativeBuild().path, path.join(dir, 'pymalloc.glibc.node'));
      expect(resolveNativeBuild('', root)).toEqual({
        kind: 'prebuild',
        path: path.join(dir, 'pymalloc.glibc.node'),
      });
      // A local build (what `npm install` in a clone or `npm rebuild` makes) wins over the prebuild.
      fs.mkdirSync(path.join(root, 'build', 'Release'), { recursive: true });
      fs.copyFileSync(nativeBuild().path, path.join(root, 'build', 'Release', 'pymalloc.node'));
      expect(resolveNativeBuild('', root)).toEqual({
        kind: 'gyp',
        path: path.join(root, 'build', 'Release', 'pymalloc.node'),
      });
      // A prebuild for another platform only is no match.
      fs.rmSync(path.join(root, 'build'), { recursive: true });
      fs.renameSync(dir, path.join(root, 'prebuilds', 'win32-ia32'));
      expect(() => resolveNativeBuild('', root)).toThrow(/npm rebuild pymalloc/);
    } finally {
      fs.rmSync(root, { recursive: true });
    }
  });

  test('finds the package root from lib/os', () => {
    const root = packageRoot();
    expect(JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).name).toBe('pymalloc');
    expect(resolveNativeBuild('gyp', root).path).toBe(path.join(root, 'build', 'Release', 'pymalloc.node'));
    // The cmake-js build exists only after `npm run build:cmake` (CI builds it); without it, selecting it
    // must fail naming both build commands.
    const cmakePath = path.join(root, 'build-cmake', 'Release', 'pymalloc.node');
    if (fs.existsSync(cmakePath)) expect(resolveNativeBuild('cmake', root).path).toBe(cmakePath);
    else expect(() => resolveNativeBuild('cmake', root)).toThrow(/npm run build:gyp.*npm run build:cmake/);
  });

  test('PYMALLOC_NATIVE pointing at a missing file names both build commands', () => {
    const missing = path.join(os.tmpdir(), 'pymalloc-missing', 'pymalloc.node');
    const saved = process.env['PYMALLOC_NATIVE'];
    process.env['PYMALLOC_NATIVE'] = missing;
    try {
      jest.isolateModules(() => {
        const fresh = require('../../lib/os/native') as typeof import('../../lib/os/native');
        expect(() => fresh.nativeBinding()).toThrow(/npm run build:gyp.*npm run build:cmake/);
        expect(() => fresh.nativeBuild()).toThrow(missing);
      });
    } finally {
      if (saved === undefined) delete process.env['PYMALLOC_NATIVE'];
      else process.env['PYMALLOC_NATIVE'] = saved;
    }
  });

  test('no build at all tells a consumer to run `npm rebuild pymalloc`; a bad selector is refused', () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'pymalloc-empty-'));
    try {
      // What an `npm install --ignore-scripts` on a platform with no prebuild leaves: advice a consumer can
      // follow, not the repository's scripts (which an installed package does not have).
      const advice = (() => {
        try {
          resolveNativeBuild('', empty);
        } catch (err) {
          return (err as Error).message;
        }
        return 'no error';
      })();
      expect(advice).toMatch(/^pymalloc: the native addon is missing: /);
      expect(advice).toContain('`npm rebuild pymalloc`');
      expect(advice).toContain(`no prebuilt addon for ${process.platform}-${process.arch}`);
      expect(advice).not.toMatch(/npm run/);
      expect(() => resolveNativeBuild('cmake', empty)).toThrow(/npm run build:gyp.*npm run build:cmake/);
      expect(() => resolveNativeBuild('relative/pymalloc.node', empty)).toThrow(/absolute path/);
    } finally {
      fs.rmSync(empty, { recursive: true });
    }
  });
});

describe('raw binding argument checks', () => {
  let live: ReturnType<typeof binding.reserve>;
  let released: ReturnType<typeof binding.reserve>;
  beforeAll(() => {
    live = binding.reserve(16 * page, page, 'none');
    released = binding.reserve(page, page, 'none');
    binding.release(released.handle);
  });
  afterAll(() => binding.release(live.handle));

  type Call = (handle: unknown, a: unknown, b: unknown) => unknown;
  const calls: [string, Call][] = [
    ['commit', (h, a, b) => binding.commit(h as NativeHandle, a as number, b as number)],
    ['decommit unmap', (h, a, b) => binding.decommit(h as NativeHandle, a as number, b as number, 'unmap')],
    [
      'decommit dontneed',
      (h, a, b) => binding.decommit(h as NativeHandle, a as number, b as number, 'dontneed'),
    ],
    ['residentPages', (h, a, b) => binding.residentPages(h as NativeHandle, a as number, b as number)],
    [
      'adviseHugePages',
      (h, a, b) => binding.adviseHugePages(h as NativeHandle, a as number, b as number, true),
    ],
  ];

  const badNumbers: [string, unknown, string, string][] = [
    ['negative', -page, 'RangeError', 'ERR_OUT_OF_RANGE'],
    ['NaN', Number.NaN, 'RangeError', 'ERR_OUT_OF_RANGE'],
    ['Infinity', Number.POSITIVE_INFINITY, 'RangeError', 'ERR_OUT_OF_RANGE'],
    ['-Infinity', Number.NEGATIVE_INFINITY, 'RangeError', 'ERR_OUT_OF_RANGE'],
    ['non-integer', page + 0.25, 'RangeError', 'ERR_OUT_OF_RANGE'],
    ['unaligned', page + 8, 'RangeError', 'ERR_OUT_OF_RANGE'],
    ['above 2^53', 2 ** 60, 'RangeError', 'ERR_OUT_OF_RANGE'],
    ['a string', String(page), 'TypeError', 'ERR_INVALID_ARG_TYPE'],
    ['a bigint', BigInt(page), 'TypeError', 'ERR_INVALID_ARG_TYPE'],
    ['undefined', undefined, 'TypeError', 'ERR_INVALID_ARG_TYPE'],
    ['an object', { valueOf: () => page }, 'TypeError', 'ERR_INVALID_ARG_TYPE'],
  ];

  describe.each(calls)('%s', (_name, call) => {
    test.each(badNumbers)('offset or length %s', (_what, bad, type, code) => {
      expectError(() => call(live.handle, bad, page), { name: type }, code);
      expectError(() => call(live.handle, 0, bad), { name: type }, code);
    });

    test('ranges beyond the reservation, and empty ranges', () => {
      expectError(() => call(live.handle, 0, 17 * page), RangeError, 'ERR_OUT_OF_RANGE');
      expectError(() => call(live.handle, 16 * page, page), RangeError, 'ERR_OUT_OF_RANGE');
      expectError(() => call(live.handle, 2 ** 52, 2 ** 52), RangeError, 'ERR_OUT_OF_RANGE');
      expectError(() => call(live.handle, 0, 0), RangeError, 'ERR_OUT_OF_RANGE');
    });

    test('a released reservation', () => {
      expectError(() => call(released.handle, 0, page), Error, 'ERR_RESERVATION_RELEASED');
    });
  });

  const fakeHandles: [string, () => unknown][] = [
    ['undefined', () => undefined],
    ['null', () => null],
    ['a number', () => 1],
    ['a string', () => 'handle'],
    ['a bigint', () => live.base],
    ['a symbol', () => Symbol('handle')],
    ['a plain object', () => ({})],
    ['a null-prototype object', () => Object.create(null)],
    ['an object inheriting from a handle', () => Object.create(live.handle)],
    ['a copy of a handle', () => ({ ...live.handle })],
    ['a proxy of a handle', () => new Proxy(live.handle, {})],
    ['the reservation record', () => live],
    ['the buffer', () => live.buffer],
    ['a function', () => () => live.handle],
  ];

  test.each(fakeHandles)('%s in place of the handle', (_name, fake) => {
    for (const [, call] of calls) expectError(() => call(fake(), 0, page), TypeError, 'ERR_INVALID_ARG_TYPE');
    expectError(() => binding.release(fake() as NativeHandle), TypeError, 'ERR_INVALID_ARG_TYPE');
    expectError(() => binding.commit(fake() as NativeHandle, 0, page), TypeError, 'ERR_INVALID_ARG_TYPE');
  });

  test('decommit mode', () => {
    const h = live.handle;
    expectError(() => binding.decommit(h, 0, page, 'free' as 'unmap'), TypeError, 'ERR_INVALID_ARG_VALUE');
    expectError(
      () => binding.decommit(h, 0, page, undefined as unknown as 'unmap'),
      TypeError,
      'ERR_INVALID_ARG_TYPE',
    );
    expectError(
      () => binding.decommit(h, 0, page, 1 as unknown as 'unmap'),
      TypeError,
      'ERR_INVALID_ARG_TYPE',
    );
  });

  test('adviseHugePages: enable must be a boolean; the advice comes and goes on a live range', () => {
    const h = live.handle;
    for (const bad of [1, 'yes', undefined, null, {}]) {
      expectError(
        () => binding.adviseHugePages(h, 0, page, bad as unknown as boolean),
        TypeError,
        'ERR_INVALID_ARG_TYPE',
      );
    }
    // A kernel with transparent huge pages takes both advices; one without refuses both, the same way.
    const hasThp = fs.existsSync('/sys/kernel/mm/transparent_hugepage/enabled');
    expect(binding.adviseHugePages(h, 0, 16 * page, true)).toBe(hasThp);
    expect(binding.adviseHugePages(h, 0, 16 * page, false)).toBe(hasThp);
  });

  test('release: twice, or with no argument', () => {
    expectError(() => binding.release(released.handle), Error, 'ERR_RESERVATION_RELEASED');
    expectError(() => (binding.release as () => void)(), TypeError, 'ERR_INVALID_ARG_TYPE');
  });

  test.each(badNumbers.filter(([what]) => what !== 'unaligned'))(
    'reserve size or alignment %s',
    (_what, bad, type, code) => {
      expectError(() => binding.reserve(bad as number, page, 'none'), { name: type }, code);
      expectError(() => binding.reserve(page, bad as number, 'none'), { name: type }, code);
    },
  );

  test('reserve: sizes and alignments out of range', () => {
    for (const [size, alignment] of [
      [0, page],
      [page + 8, page],
      [2 ** 32 + page, page],
      [page, page / 2],
      [page, 3 * page],
      [page, 2 ** 33],
    ]) {
      expectError(() => binding.reserve(size!, alignment!, 'none'), RangeError, 'ERR_OUT_OF_RANGE');
    }
  });

  test('_setFault', () => {
    expectError(() => binding._setFault('free' as 'commit', 1), TypeError, 'ERR_INVALID_ARG_VALUE');
    expectError(() => binding._setFault(1 as unknown as 'commit', 1), TypeError, 'ERR_INVALID_ARG_TYPE');
    expectError(() => binding._setFault('commit', -1), RangeError, 'ERR_OUT_OF_RANGE');
    expectError(() => binding._setFault('commit', 1.5), RangeError, 'ERR_OUT_OF_RANGE');
    expectError(() => binding._setFault('commit', 2 ** 40), RangeError, 'ERR_OUT_OF_RANGE');
    expectError(() => binding._setFault('reserve', Number.NaN), RangeError, 'ERR_OUT_OF_RANGE');
  });

  test('the live reservation still works after all of the above', () => {
    binding.commit(live.handle, 0, page);
    new Uint8Array(live.buffer)[0] = 1;
    expect(binding.residentPages(live.handle, 0, 16 * page)).toBe(1);
  });
});

test('a released reservation stays mapped while a view can reach it; collection unmaps it, never a newer one', () => {
  const child = spawnSync(
    process.execPath,
    ['--expose-gc', path.join(fixtures, 'gc-after-release.js'), nativeBuild().path],
    { encoding: 'utf8', timeout: 60_000 },
  );
  expect({ status: child.status, signal: child.signal, stderr: child.stderr }).toEqual({
    status: 0,
    signal: null,
    stderr: '',
  });
  const result = JSON.parse(child.stdout) as Record<string, unknown>;
  expect(result).toMatchObject({
    liveAfterRelease: 1, // A: released (its view is detached) but still reachable through that view
    aViewLength: 0,
    bElsewhere: true, // so B cannot land on A's addresses
    intact: true,
    residentPagesOfB: 64,
    liveBeforeGc: 3, // A, B and C
    liveAfterGc: 1, // A's and C's finalizers unmapped them; B is intact
    liveAfterReleaseOfB: 1, // bBytes still reaches B's buffer
    liveAtEnd: 0,
  });
});

test('the addon works in a worker thread, and the worker exit unmaps what it left', async () => {
  const before = binding._liveReservations();
  const { messages, exitCode } = await runWorker<Record<string, unknown>>(path.join(fixtures, 'worker.js'), {
    workerData: { path: nativeBuild().path },
  });
  expect(exitCode).toBe(0);
  expect(messages).toHaveLength(1);
  const [message] = messages;
  const { leftOver, ...rest } = message!;
  expect(rest).toEqual({
    size: 256 * page,
    touched: 256,
    afterDecommit: 0,
    viewLength: 0,
    badArgument: 'ERR_INVALID_ARG_TYPE',
  });
  // The reservation the worker left is no longer mapped (reservations of this thread that garbage collection
  // unmaps meanwhile may lower the count, never raise it).
  const base = BigInt(`0x${leftOver as string}`);
  const mapped = fs
    .readFileSync('/proc/self/maps', 'latin1')
    .split('\n')
    .some((line) => {
      const m = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
      return m !== null && BigInt(`0x${m[1]}`) <= base && base < BigInt(`0x${m[2]}`);
    });
  expect(mapped).toBe(false);
  expect(binding._liveReservations()).toBeLessThanOrEqual(before);
});
