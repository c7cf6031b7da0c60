/**
 * Shared reservations (lib/os/pages.ts over the main addon's Node-API path, native/shared_napi.cc, in Node.js 26.1
 * and later, else over the shared-heap addon, native/shared.cc): a SharedArrayBuffer over a
 * pymalloc reservation that worker threads attach, release for every thread at once, unmapping once no thread holds
 * it, and the thread binding that frees a lock word when a thread dies holding it. Workers run the built library
 * (dist/, `npm run build:ts`); the cases that terminate workers or count unmapped regions after garbage collection
 * run in a child process (fixtures/shared-child.js), and the test asserts that it exited normally first.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { types } from 'node:util';
import { Worker } from 'node:worker_threads';
import {
  checkSharedBuildInfo,
  type NativeBuild,
  nativeBinding,
  nativeBuild,
  resolveNativeBuild,
  resolveSharedBuild,
  SHARED_ADDON_NAME,
  type SharedBinding,
  sharedAddonPath,
  sharedBinding,
  sharedNativeBuild,
} from '../../lib/os/native';
import { pageSize, Reservation } from '../../lib/os/pages';
import { runChild } from '../run-child';
import { runWorker } from '../run-worker';
import { expectError } from './expect-error';

const ROOT = path.resolve(__dirname, '..', '..');
const LIB_OS = path.join(ROOT, 'dist', 'lib', 'os');
const PAGES_JS = path.join(LIB_OS, 'pages.js');
const fixtures = path.join(__dirname, 'fixtures');
const page = pageSize();

/**
 * Whether the running Node.js has node_api_create_external_sharedarraybuffer: 26.1.0 added it, and later 24.x
 * releases have it too (24.22.3 does); Node.js 20 never had it. Undefined where this test does not know.
 */
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
const NODE_API_SAB = major > 26 || (major === 26 && minor >= 1) ? true : major <= 20 ? false : undefined;
/** How shared reservations are made here: by the main addon (Node-API) or by the shared-heap addon (V8). */
const PROVIDER =
  (nativeBinding() as Partial<SharedBinding>).sharedArrayBuffers === 'node-api' ? 'node-api' : 'v8';
/** The tests of the V8 addon itself: they cannot run where the main addon makes shared reservations. */
const describeV8Addon = PROVIDER === 'v8' ? describe : describe.skip;
if (PROVIDER !== 'v8') {
  console.log(
    `Node.js ${process.version} has node_api_create_external_sharedarraybuffer: the main addon makes shared ` +
      'reservations, and the tests of the V8 shared-heap addon (for a Node.js without it) are skipped here',
  );
}

/** The workers and the child run dist/: it must be built from these sources. */
function requireBuilt(): void {
  for (const [src, out] of [
    ['lib/os/pages.ts', 'dist/lib/os/pages.js'],
    ['lib/os/native.ts', 'dist/lib/os/native.js'],
  ] as const) {
    const built = fs.statSync(path.join(ROOT, out), { throwIfNoEntry: false });
    if (built === undefined || built.mtimeMs < fs.statSync(path.join(ROOT, src)).mtimeMs) {
      throw new Error(`${out} is missing or older than ${src}: run 'npm run build:ts' first`);
    }
  }
}

function code(fn: () => unknown): unknown {
  try {
    fn();
    return 'no error';
  } catch (err) {
    return (err as { code?: unknown }).code;
  }
}

beforeAll(() => {
  // No silent skip: the shared-heap addon is built with the main one (npm run build:gyp / build:cmake / build:asan).
  const expected = sharedAddonPath(nativeBuild());
  expect(fs.existsSync(expected) ? 'built' : `missing ${expected}: build both addons`).toBe('built');
  expect(sharedNativeBuild()).toEqual(
    PROVIDER === 'node-api' ? nativeBuild() : { kind: nativeBuild().kind, path: expected },
  );
});

describe('which addon makes shared reservations', () => {
  test('the main addon, with Node-API, exactly where Node.js has node_api_create_external_sharedarraybuffer', () => {
    if (NODE_API_SAB !== undefined) {
      expect({ node: process.version, provider: PROVIDER }).toEqual({
        node: process.version,
        provider: NODE_API_SAB ? 'node-api' : 'v8',
      });
    }
    const main = nativeBinding() as Partial<SharedBinding>;
    expect(typeof main.reserveShared).toBe(PROVIDER === 'node-api' ? 'function' : 'undefined');
    expect(sharedBinding().sharedArrayBuffers).toBe(PROVIDER);
    if (PROVIDER === 'v8') expect(sharedBinding()).not.toBe(nativeBinding());
    else expect(sharedBinding()).toBe(nativeBinding());
  });

  test('the raw binding checks its arguments, never aborts', () => {
    const shared = sharedBinding();
    const s = shared.reserveShared(4 * page, page);
    try {
      for (const bad of [
        undefined,
        null,
        1,
        'sab',
        {},
        new ArrayBuffer(8),
        new Uint8Array(s.buffer),
        () => 0,
      ]) {
        expectError(() => shared.attachShared(bad as SharedArrayBuffer), TypeError, 'ERR_INVALID_ARG_TYPE');
      }
      expectError(() => shared.attachShared(new SharedArrayBuffer(4 * page)), Error, 'ERR_INVALID_ARG_VALUE');
      expectError(() => shared.attachShared(s.buffer.slice(0)), Error, 'ERR_INVALID_ARG_VALUE');
      expectError(() => shared.reserveShared(0, page), RangeError, 'ERR_OUT_OF_RANGE');
      expectError(() => shared.reserveShared(page, 3 * page), RangeError, 'ERR_OUT_OF_RANGE');
      expectError(
        () => shared.reserveShared('1' as unknown as number, page),
        TypeError,
        'ERR_INVALID_ARG_TYPE',
      );
      expectError(() => shared.bindThread(s.handle, 2, 4, 8, 1), RangeError, 'ERR_OUT_OF_RANGE');
      expectError(() => shared.bindThread(s.handle, 0, 4 * page, 8, 1), RangeError, 'ERR_OUT_OF_RANGE');
      expectError(() => shared.bindThread(s.handle, 0, 4, 8, 0), RangeError, 'ERR_OUT_OF_RANGE');
      expectError(() => shared.bindThread(s.handle, 0, 4, 8, 2 ** 31), RangeError, 'ERR_OUT_OF_RANGE');
      expectError(
        () => shared.bindThread(s.handle, 0, 4, 8, '1' as unknown as number),
        TypeError,
        'ERR_INVALID_ARG_TYPE',
      );
      expectError(
        () => shared.bindThread({} as typeof s.handle, 0, 4, 8, 1),
        TypeError,
        'ERR_INVALID_ARG_TYPE',
      );
      expectError(
        () => shared.unbindThread(undefined as unknown as typeof s.handle),
        TypeError,
        'ERR_INVALID_ARG_TYPE',
      );
      expect(shared.unbindThread(s.handle)).toBe(false);
    } finally {
      shared.release(s.handle);
    }
  });

  test('with the main addon only (a prebuild): shared heaps where Node-API can, else ERR_PYMALLOC_NO_SHARED_ADDON', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pymalloc-main-only-'));
    const saved = process.env['PYMALLOC_NATIVE'];
    try {
      const main = path.join(dir, 'pymalloc.node');
      fs.copyFileSync(nativeBuild().path, main);
      process.env['PYMALLOC_NATIVE'] = main;
      jest.isolateModules(() => {
        const fresh = require('../../lib/os/pages') as typeof import('../../lib/os/pages');
        if (PROVIDER === 'node-api') {
          const shared = fresh.Reservation.createShared(4 * page);
          const again = fresh.Reservation.attachShared(shared.buffer);
          new Uint8Array(shared.buffer)[page] = 7;
          expect(new Uint8Array(again.buffer)[page]).toBe(7);
          expect(again.base).toBe(shared.base);
          expectError(
            () => fresh.Reservation.attachShared(new SharedArrayBuffer(page)),
            Error,
            'ERR_INVALID_ARG_VALUE',
          );
          shared.release();
          expect(again.released).toBe(true);
        } else {
          expectError(() => fresh.Reservation.createShared(page), Error, 'ERR_PYMALLOC_NO_SHARED_ADDON');
          expectError(
            () => fresh.Reservation.attachShared(new SharedArrayBuffer(page)),
            Error,
            'ERR_PYMALLOC_NO_SHARED_ADDON',
          );
        }
        // Argument checks come first, with or without the addon.
        expectError(
          () => fresh.Reservation.attachShared(new ArrayBuffer(8) as unknown as SharedArrayBuffer),
          TypeError,
          'ERR_INVALID_ARG_TYPE',
        );
        const r = fresh.Reservation.create(page);
        expect(r.shared).toBe(false);
        r.release();
      });
    } finally {
      if (saved === undefined) delete process.env['PYMALLOC_NATIVE'];
      else process.env['PYMALLOC_NATIVE'] = saved;
      fs.rmSync(dir, { recursive: true });
    }
  });
});

describeV8Addon('the shared-heap addon and its loader', () => {
  test('it is the one beside the main addon, built for this Node.js', () => {
    const info = sharedBinding().buildInfo!;
    expect(info.nodeModuleVersion).toBe(Number(process.versions.modules));
    expect(info.nodeVersion.split('.')[0]).toBe(process.version.split('.')[0]);
    expect(path.basename(sharedNativeBuild().path)).toBe(SHARED_ADDON_NAME);
    expect(path.dirname(sharedNativeBuild().path)).toBe(path.dirname(nativeBuild().path));
  });

  test('node-gyp-build still finds the main addon with the shared one beside it', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pymalloc-two-addons-'));
    try {
      const release = path.join(root, 'build', 'Release');
      fs.mkdirSync(release, { recursive: true });
      // The shared one first, so that directory order cannot be what picks the right one.
      fs.copyFileSync(sharedNativeBuild().path, path.join(release, SHARED_ADDON_NAME));
      fs.copyFileSync(nativeBuild().path, path.join(release, 'pymalloc.node'));
      expect(resolveNativeBuild('', root)).toEqual({
        kind: 'gyp',
        path: path.join(release, 'pymalloc.node'),
      });
    } finally {
      fs.rmSync(root, { recursive: true });
    }
  });

  test('a missing shared addon is ERR_PYMALLOC_NO_SHARED_ADDON, with the command that builds it', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pymalloc-no-shared-'));
    try {
      const message = (main: NativeBuild): string => {
        try {
          resolveSharedBuild(main);
        } catch (err) {
          expect((err as { code?: unknown }).code).toBe('ERR_PYMALLOC_NO_SHARED_ADDON');
          return (err as Error).message;
        }
        return 'no error';
      };
      // An npm consumer with the ABI-stable prebuild only.
      const prebuild = message({
        kind: 'prebuild',
        path: path.join(dir, 'prebuilds', 'linux-x64', 'pymalloc.glibc.node'),
      });
      expect(prebuild).toContain('`npm rebuild pymalloc --build-from-source`');
      expect(prebuild).toContain(process.version);
      expect(message({ kind: 'cmake', path: path.join(dir, 'pymalloc.node') })).toContain(
        'npm run build:cmake',
      );
      expect(message({ kind: 'asan', path: path.join(dir, 'pymalloc.node') })).toContain(
        'npm run build:asan',
      );
      expect(message({ kind: 'path', path: path.join(dir, 'pymalloc.node') })).toContain(
        path.join(dir, SHARED_ADDON_NAME),
      );
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
  });

  test('a shared addon built for another Node.js or V8 configuration is refused', () => {
    const info = sharedBinding().buildInfo!;
    expect(() => checkSharedBuildInfo(info, 'x.node', 'gyp')).not.toThrow();
    const refused = (bad: object) => {
      try {
        checkSharedBuildInfo({ ...info, ...bad }, 'x.node', 'gyp');
      } catch (err) {
        return { code: (err as { code?: unknown }).code, message: (err as Error).message };
      }
      return 'accepted';
    };
    expect(refused({ nodeModuleVersion: 127, nodeVersion: 'v22.0.0' })).toEqual({
      code: 'ERR_PYMALLOC_NO_SHARED_ADDON',
      message: expect.stringMatching(/built for Node\.js v22\.0\.0 \(NODE_MODULE_VERSION 127\).*npm rebuild/),
    });
    expect(refused({ pointerCompression: !info.pointerCompression })).toMatchObject({
      code: 'ERR_PYMALLOC_NO_SHARED_ADDON',
      message: expect.stringContaining('v8_enable_pointer_compression'),
    });
    expect(refused({ sandbox: true })).toMatchObject({
      code: 'ERR_PYMALLOC_NO_SHARED_ADDON',
      message: expect.stringContaining("V8's sandbox"),
    });
    expect(() => checkSharedBuildInfo(undefined, 'x.node', 'gyp')).toThrow(/no buildInfo/);
  });

  test("each addon refuses the other's handles", () => {
    const shared = sharedBinding();
    const main = nativeBinding();
    const s = shared.reserveShared(4 * page, page);
    const m = main.reserve(4 * page, page, 'readwrite');
    try {
      expectError(() => main.commit(s.handle, 0, page), TypeError, 'ERR_INVALID_ARG_TYPE');
      expectError(() => main.release(s.handle), TypeError, 'ERR_INVALID_ARG_TYPE');
      expectError(() => shared.residentPages(m.handle, 0, page), TypeError, 'ERR_INVALID_ARG_TYPE');
      expectError(() => shared.bindThread(m.handle, 0, 4, 8, 1), TypeError, 'ERR_INVALID_ARG_TYPE');
      expectError(() => shared.isReleased(m.handle), TypeError, 'ERR_INVALID_ARG_TYPE');
      // A shared addon's own ordinary reservation cannot be bound.
      const o = shared.reserve(page, page, 'readwrite');
      expectError(() => shared.bindThread(o.handle, 0, 4, 8, 1), TypeError, 'ERR_INVALID_ARG_VALUE');
      shared.release(o.handle);
    } finally {
      shared.release(s.handle);
      main.release(m.handle);
    }
  });
});

describe('Reservation.createShared and attachShared in one thread', () => {
  test('a SharedArrayBuffer over the whole reservation, read-write from the start', () => {
    const r = Reservation.createShared(64 * page, 2 ** 21);
    try {
      expect(types.isSharedArrayBuffer(r.buffer)).toBe(true);
      expect(r.buffer.byteLength).toBe(64 * page);
      expect({ shared: r.shared, access: r.access, size: r.size, alignment: r.alignment }).toEqual({
        shared: true,
        access: 'readwrite',
        size: 64 * page,
        alignment: 2 ** 21,
      });
      expect(r.base % 2n ** 21n).toBe(0n);
      expect(Reservation.isReservation(r)).toBe(true);
      const u8 = new Uint8Array(r.buffer);
      expect(r.residentPages()).toBe(0); // MAP_NORESERVE: nothing until written
      u8[5 * page] = 1;
      expect(r.residentPages()).toBe(1);
      expect(r.readablePages().readable(0, r.size)).toBe(true);
    } finally {
      r.release();
    }
    const plain = Reservation.create(page);
    expect(plain.shared).toBe(false);
    plain.release();
  });

  test('argument checks are those of create', () => {
    expectError(() => Reservation.createShared(0), RangeError, 'ERR_OUT_OF_RANGE');
    expectError(() => Reservation.createShared(page + 1), RangeError, 'ERR_OUT_OF_RANGE');
    expectError(() => Reservation.createShared(2 ** 32 + page), RangeError, 'ERR_OUT_OF_RANGE');
    expectError(() => Reservation.createShared(page, 3 * page), RangeError, 'ERR_OUT_OF_RANGE');
    expectError(() => Reservation.createShared(page, 2 ** 33), RangeError, 'ERR_OUT_OF_RANGE');
    expectError(
      () => Reservation.createShared('4096' as unknown as number),
      TypeError,
      'ERR_INVALID_ARG_TYPE',
    );
    expectError(
      () => Reservation.createShared(page, null as unknown as number),
      TypeError,
      'ERR_INVALID_ARG_TYPE',
    );
  });

  test('4 GiB: one Uint8Array and one Int32Array cover it, Atomics work on its last word', () => {
    const r = Reservation.createShared(2 ** 32, 2 ** 32);
    try {
      expect(r.buffer.byteLength).toBe(2 ** 32);
      const u8 = new Uint8Array(r.buffer);
      expect(u8.length).toBe(2 ** 32);
      u8[2 ** 32 - 1] = 0x7f;
      const i32 = new Int32Array(r.buffer);
      expect(i32.length).toBe(2 ** 30);
      expect(Atomics.add(i32, 2 ** 30 - 1, 1)).toBe(0x7f000000);
      expect(Atomics.load(i32, 2 ** 30 - 1)).toBe(0x7f000001);
      expect(r.residentPages()).toBe(1);
    } finally {
      r.release();
    }
  });

  test('attachShared: the same region, the very same buffer', () => {
    const r = Reservation.createShared(16 * page, 4 * page);
    try {
      const a = Reservation.attachShared(r.buffer);
      expect(a).not.toBe(r);
      expect(a.buffer).toBe(r.buffer);
      expect({
        base: a.base,
        size: a.size,
        alignment: a.alignment,
        shared: a.shared,
        access: a.access,
      }).toEqual({
        base: r.base,
        size: r.size,
        alignment: r.alignment,
        shared: true,
        access: 'readwrite',
      });
      new Uint32Array(r.buffer)[10] = 0xdeadbeef;
      expect(new Uint32Array(a.buffer)[10]).toBe(0xdeadbeef);
      expect(a.residentPages(0, page)).toBe(1);
      // The buffer of a view over it is the same buffer.
      expect(Reservation.attachShared(new Uint8Array(r.buffer, page).buffer as SharedArrayBuffer).base).toBe(
        r.base,
      );
    } finally {
      r.release();
    }
  });

  test('attachShared of anything else: ERR_INVALID_ARG_TYPE for a non-SAB, ERR_INVALID_ARG_VALUE for a foreign SAB', () => {
    const r = Reservation.createShared(4 * page);
    try {
      for (const bad of [
        undefined,
        null,
        0,
        'buffer',
        {},
        new ArrayBuffer(4 * page),
        new Uint8Array(r.buffer),
        r,
      ]) {
        expectError(
          () => Reservation.attachShared(bad as SharedArrayBuffer),
          TypeError,
          'ERR_INVALID_ARG_TYPE',
        );
      }
      expect(() => Reservation.attachShared(new ArrayBuffer(8) as unknown as SharedArrayBuffer)).toThrow(
        /got an ArrayBuffer/,
      );
      // A SharedArrayBuffer JavaScript made, one of the same size, and a copy of the reservation's.
      for (const foreign of [
        new SharedArrayBuffer(page),
        new SharedArrayBuffer(4 * page),
        r.buffer.slice(0),
      ]) {
        expectError(() => Reservation.attachShared(foreign), Error, 'ERR_INVALID_ARG_VALUE');
      }
      expect(() => Reservation.attachShared(new SharedArrayBuffer(page))).toThrow(
        /^pymalloc: Reservation\.attachShared: buffer is not the SharedArrayBuffer of a pymalloc shared reservation/,
      );
      // An ordinary reservation's buffer is an ArrayBuffer.
      const plain = Reservation.create(page);
      expectError(
        () => Reservation.attachShared(plain.buffer as unknown as SharedArrayBuffer),
        TypeError,
        'ERR_INVALID_ARG_TYPE',
      );
      plain.release();
    } finally {
      r.release();
    }
  });

  test("decommit: 'dontneed' only; 'unmap' is refused with a clear error", () => {
    const r = Reservation.createShared(8 * page);
    try {
      new Uint8Array(r.buffer).fill(1);
      expect(r.residentPages()).toBe(8);
      expectError(() => r.decommit(0, page, 'unmap'), TypeError, 'ERR_INVALID_ARG_VALUE');
      expect(() => r.decommit(0, page, 'unmap')).toThrow(/'unmap' is refused for a shared reservation/);
      expect(r.decommit(0, 4 * page)).toBe('dontneed');
      expect(r.decommit(4 * page, 4 * page, 'dontneed')).toBe('dontneed');
      expect(r.residentPages()).toBe(0);
      expect(new Uint8Array(r.buffer).every((v) => v === 0)).toBe(true);
      r.commit(0, page); // nothing to do, but checked
      expectError(() => r.commit(0, 9 * page), RangeError, 'ERR_OUT_OF_RANGE');
      expect(typeof r.adviseHugePages(0, 8 * page, false)).toBe('boolean');
      expectError(() => r.inspectHeap(), Error, 'ERR_PYMALLOC_CORRUPT'); // zeros are no heap
    } finally {
      r.release();
    }
  });

  test('the raw shared binding refuses unmap too', () => {
    const shared = sharedBinding();
    const s = shared.reserveShared(page, page);
    try {
      expectError(() => shared.decommit(s.handle, 0, page, 'unmap'), TypeError, 'ERR_INVALID_ARG_VALUE');
      expect(shared.decommit(s.handle, 0, page, 'dontneed')).toBe('dontneed');
    } finally {
      shared.release(s.handle);
    }
  });

  test('release through one Reservation releases every Reservation of the region', () => {
    const r = Reservation.createShared(8 * page);
    const a = Reservation.attachShared(r.buffer);
    const view = new Uint8Array(r.buffer);
    view.fill(0xee);
    a.bindThread(0, 4, 8, 3);
    a.release();
    expect({ r: r.released, a: a.released }).toEqual({ r: true, a: true });
    for (const x of [r, a]) {
      expect(types.isSharedArrayBuffer(x.buffer)).toBe(true);
      expect(x.buffer.byteLength).toBe(0);
    }
    // The SharedArrayBuffer cannot be detached: its views read zeros and never fault.
    expect(view.length).toBe(8 * page);
    expect(view.every((v) => v === 0)).toBe(true);
    view[page] = 1;
    expect(view[page]).toBe(1);
    for (const x of [r, a]) {
      expectError(() => x.commit(0, page), Error, 'ERR_RESERVATION_RELEASED');
      expectError(() => x.decommit(0, page), Error, 'ERR_RESERVATION_RELEASED');
      expectError(() => x.residentPages(), Error, 'ERR_RESERVATION_RELEASED');
      expectError(() => x.residentBytes(), Error, 'ERR_RESERVATION_RELEASED');
      expectError(() => x.adviseHugePages(0, page, true), Error, 'ERR_RESERVATION_RELEASED');
      expectError(() => x.readablePages(), Error, 'ERR_RESERVATION_RELEASED');
      expectError(() => x.inspectHeap(), Error, 'ERR_RESERVATION_RELEASED');
      expectError(() => x.bindThread(0, 4, 8, 1), Error, 'ERR_RESERVATION_RELEASED');
      expectError(() => x.release(), Error, 'ERR_RESERVATION_RELEASED');
    }
    expectError(
      () => Reservation.attachShared(view.buffer as SharedArrayBuffer),
      Error,
      'ERR_RESERVATION_RELEASED',
    );
    // Letting go still works after release.
    expect(a.unbindThread()).toBe(true);
    expect(r.unbindThread()).toBe(false);
  });

  test('bindThread and unbindThread: argument checks', () => {
    const r = Reservation.createShared(4 * page);
    try {
      const plain = Reservation.create(page);
      expectError(() => plain.bindThread(0, 4, 8, 1), TypeError, 'ERR_INVALID_THIS');
      expectError(() => plain.unbindThread(), TypeError, 'ERR_INVALID_THIS');
      plain.release();
      const bind = (l: unknown, f: unknown, s: unknown, t: unknown) =>
        r.bindThread(l as number, f as number, s as number, t as number);
      for (const [args, type, c] of [
        [[2, 4, 8, 1], RangeError, 'ERR_OUT_OF_RANGE'],
        [[0, 6, 8, 1], RangeError, 'ERR_OUT_OF_RANGE'],
        [[0, 4, 4 * page, 1], RangeError, 'ERR_OUT_OF_RANGE'],
        [[0, 4, 4 * page - 2, 1], RangeError, 'ERR_OUT_OF_RANGE'],
        [[-4, 4, 8, 1], RangeError, 'ERR_OUT_OF_RANGE'],
        [[0, 4, 8, 0], RangeError, 'ERR_OUT_OF_RANGE'],
        [[0, 4, 8, -1], RangeError, 'ERR_OUT_OF_RANGE'],
        [[0, 4, 8, 1.5], RangeError, 'ERR_OUT_OF_RANGE'],
        [[0, 4, 8, 2 ** 31], RangeError, 'ERR_OUT_OF_RANGE'],
        [[0, 4, 8, Number.NaN], RangeError, 'ERR_OUT_OF_RANGE'],
        [['0', 4, 8, 1], TypeError, 'ERR_INVALID_ARG_TYPE'],
        [[0, 4, 8, '1'], TypeError, 'ERR_INVALID_ARG_TYPE'],
        [[0, 4, 8, undefined], TypeError, 'ERR_INVALID_ARG_TYPE'],
        [[0, 4n, 8, 1], TypeError, 'ERR_INVALID_ARG_TYPE'],
      ] as const) {
        expectError(() => bind(...(args as unknown as [unknown, unknown, unknown, unknown])), type, c);
      }
      expect(r.unbindThread()).toBe(false);
      r.bindThread(0, 4, 4 * page - 4, 2 ** 31 - 1);
      r.bindThread(16, 20, 24, 5); // replaces
      expect(r.unbindThread()).toBe(true);
      expect(r.unbindThread()).toBe(false);
      const forged = Object.create(Reservation.prototype) as Reservation;
      expectError(() => forged.bindThread(0, 4, 8, 1), TypeError, 'ERR_INVALID_ARG_TYPE');
      expectError(() => forged.unbindThread(), TypeError, 'ERR_INVALID_ARG_TYPE');
    } finally {
      r.release();
    }
  });
});

describe('across worker threads', () => {
  beforeAll(requireBuilt);

  const run = <T>(mode: string, buffer: SharedArrayBuffer, extra: object = {}) =>
    runWorker<T>(path.join(fixtures, 'shared-worker.js'), {
      workerData: { pages: PAGES_JS, mode, buffer, ...extra },
    });

  test('memory written in one thread is read in the other', async () => {
    const r = Reservation.createShared(32 * page, 2 ** 16);
    try {
      const u8 = new Uint8Array(r.buffer);
      for (let p = 0; p < 32; p++) u8[p * page] = (p % 251) + 1;
      const { messages, exitCode } = await run<Record<string, unknown>>('readwrite', r.buffer);
      expect(exitCode).toBe(0);
      expect(messages).toEqual([
        {
          base: String(r.base),
          size: 32 * page,
          alignment: 2 ** 16,
          access: 'readwrite',
          shared: true,
          sameBuffer: true,
          seen: true,
        },
      ]);
      for (let p = 0; p < 32; p++) expect(u8[p * page + 1]).toBe(0xa5);
    } finally {
      r.release();
    }
  });

  test('Atomics.wait / notify and a compareExchange lock across threads', async () => {
    const r = Reservation.createShared(page);
    try {
      const i32 = new Int32Array(r.buffer);
      const n = 200_000;
      const done = run<{ waited: string }>('atomics', r.buffer, { n });
      // The worker says it is ready, then waits on word 3: notify until it has woken exactly that waiter.
      expect(['ok', 'not-equal']).toContain(Atomics.wait(i32, 2, 0, 60_000));
      const deadline = Date.now() + 60_000;
      while (Atomics.notify(i32, 3, 1) === 0) {
        if (Date.now() > deadline) throw new Error('the worker never waited on word 3');
      }
      for (let k = 0; k < n; k++) {
        while (Atomics.compareExchange(i32, 0, 0, 1) !== 0) {
          // spin
        }
        i32[1] = i32[1]! + 1;
        Atomics.store(i32, 0, 0);
      }
      expect(['ok', 'not-equal']).toContain(Atomics.wait(i32, 4, 0, 60_000));
      const { messages, exitCode } = await done;
      expect(exitCode).toBe(0);
      expect(messages).toEqual([{ waited: 'ok' }]);
      expect(i32[1]).toBe(2 * n); // no increment lost: the lock excluded
      expect(i32[0]).toBe(0);
    } finally {
      r.release();
    }
  });

  test("every method works from a worker's Reservation", async () => {
    const r = Reservation.createShared(8 * page);
    try {
      const { messages, exitCode } = await run<Record<string, unknown>>('methods', r.buffer);
      expect(exitCode).toBe(0);
      expect(messages).toEqual([
        {
          resident: 2,
          residentBytes: 2 * page,
          decommit: 'dontneed',
          afterDecommit: 0,
          zero: 0,
          unmap: 'ERR_INVALID_ARG_VALUE',
          commit: 'no error',
          huge: 'boolean',
          readable: true,
          inspect: 'ERR_PYMALLOC_CORRUPT',
        },
      ]);
      expect(new Uint8Array(r.buffer)[2 * page]).toBe(7);
      expect(r.residentPages(2 * page, page)).toBe(1);
    } finally {
      r.release();
    }
  });

  test("release from a worker releases the main thread's Reservation; its views read zeros", async () => {
    const r = Reservation.createShared(8 * page);
    const view = new Uint8Array(r.buffer);
    view.fill(0x11);
    const { messages, exitCode } = await run<Record<string, unknown>>('release', r.buffer);
    expect(exitCode).toBe(0);
    expect(messages).toEqual([
      {
        released: true,
        bufferLength: 0,
        sharedBuffer: true,
        again: 'ERR_RESERVATION_RELEASED',
        attachAgain: 'ERR_RESERVATION_RELEASED',
        unbind: false,
      },
    ]);
    expect(view.every((v) => v === 0)).toBe(true);
    expect(code(() => r.residentPages())).toBe('ERR_RESERVATION_RELEASED');
    expect(code(() => r.decommit(0, page))).toBe('ERR_RESERVATION_RELEASED');
    expect(code(() => r.commit(0, page))).toBe('ERR_RESERVATION_RELEASED');
    expect(code(() => r.inspectHeap())).toBe('ERR_RESERVATION_RELEASED');
    expect(code(() => r.release())).toBe('ERR_RESERVATION_RELEASED');
    expect(r.released).toBe(true);
    expect(r.buffer.byteLength).toBe(0);
    expect(code(() => Reservation.attachShared(view.buffer as SharedArrayBuffer))).toBe(
      'ERR_RESERVATION_RELEASED',
    );
  });

  test('a worker that fails to attach gets the codes, in its own thread', async () => {
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       const { Reservation } = require(workerData.pages);
       const code = (f) => { try { f(); return 'no error'; } catch (e) { return e.code; } };
       parentPort.postMessage([
         code(() => Reservation.attachShared(new SharedArrayBuffer(4096))),
         code(() => Reservation.attachShared(new ArrayBuffer(8))),
         code(() => Reservation.attachShared(workerData.foreign)),
       ]);`,
      { eval: true, workerData: { pages: PAGES_JS, foreign: new SharedArrayBuffer(page) } },
    );
    const message = await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    expect(message).toEqual(['ERR_INVALID_ARG_VALUE', 'ERR_INVALID_ARG_TYPE', 'ERR_INVALID_ARG_VALUE']);
    await new Promise((resolve) => worker.once('exit', resolve));
  });
});

describe('thread teardown, termination and unmapping (in a child process)', () => {
  beforeAll(requireBuilt);

  function child(name: string): Record<string, unknown> {
    return runChild(['--expose-gc', path.join(fixtures, 'shared-child.js'), LIB_OS, name], name);
  }

  const untouched = { lock: 0, flags: 0, slot: 0 };

  test('terminated while holding the lock: lock 0, INTERRUPTED set, slot ABANDONED', () => {
    expect(child('terminate-holding')).toEqual({
      case: 'terminate-holding',
      exitCode: 1,
      spinning: true,
      first: { lock: 0, flags: 1, slot: 2 },
      second: untouched,
    });
  });

  test('exiting by itself while bound and holding the lock: the same', () => {
    expect(child('exit-holding')).toMatchObject({ exitCode: 0, first: { lock: 0, flags: 1, slot: 2 } });
  });

  test("bound but not holding the lock: another thread's lock stays, the slot is ABANDONED", () => {
    expect(child('terminate-not-holding')).toMatchObject({
      exitCode: 1,
      spinning: true,
      first: { lock: 99, flags: 0, slot: 2 },
    });
  });

  test('unbound before termination: nothing changes', () => {
    expect(child('terminate-unbound')).toMatchObject({
      exitCode: 1,
      spinning: true,
      first: { lock: 77, flags: 0, slot: 1 },
    });
  });

  test("bound again: the second binding's words are the ones released", () => {
    expect(child('terminate-rebound')).toMatchObject({
      exitCode: 1,
      spinning: true,
      first: { lock: 77, flags: 0, slot: 1 },
      second: { lock: 0, flags: 1, slot: 2 },
    });
  });

  test('the binding outlives a Reservation collected before the thread ends', () => {
    expect(child('terminate-handle-collected')).toMatchObject({
      exitCode: 1,
      spinning: true,
      first: { lock: 0, flags: 1, slot: 2 },
    });
  });

  test('a released region: the hook leaves it alone, nothing crashes', () => {
    expect(child('terminate-after-release')).toEqual({
      case: 'terminate-after-release',
      exitCode: 1,
      bufferLength: 0,
      words: untouched,
      firstPageZero: true,
    });
  });

  test('workers terminated in busy loops over the buffer do not crash the process', () => {
    expect(child('terminate-busy')).toEqual({
      case: 'terminate-busy',
      codes: [1, 1, 1, 1, 1, 1],
      counted: true,
      resident: true,
      stillOk: true,
    });
  });

  test('unmapped only once every thread dropped it', () => {
    expect(child('lifetime')).toEqual({
      case: 'lifetime',
      whileBoth: 1,
      afterMainDropped: 1, // the worker still holds it: mapped, and its views work
      check: { before: 3, after: 0x5a, released: false, length: 16 * page },
      afterWorkerDropped: 0,
      exitCode: 0,
    });
  });

  test("released in one thread, another's views read zeros and stay writable until it lets go", () => {
    expect(child('lifetime-released')).toEqual({
      case: 'lifetime-released',
      afterRelease: 1,
      check: { before: 0, after: 0x5a, released: true, length: 16 * page },
      exitCode: 0,
      afterExit: 0,
    });
  });

  test("a worker's exit lets go of what it held", () => {
    expect(child('lifetime-exit')).toEqual({
      case: 'lifetime-exit',
      beforeExit: 1,
      exitCode: 1,
      afterExit: 0,
    });
  });
});
