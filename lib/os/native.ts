/**
 * The one module that loads the native shim (native/shim.cc). Everything else reaches the OS through
 * `lib/os/pages.ts`, which checks arguments before they get here.
 *
 * Which build is loaded: `PYMALLOC_NATIVE` = `gyp` | `cmake` | `asan` | an absolute path to a `.node` file
 * selects one explicitly (an error if it is missing); otherwise the node-gyp build, then the cmake-js build.
 * The addon is loaded on first use, so importing this module never fails.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** How the page shim hands out a reservation; the handle is opaque and only valid for this binding. */
export interface NativeReservation {
  readonly handle: NativeHandle;
  readonly buffer: ArrayBuffer;
  readonly base: bigint;
}

/** An opaque reservation handle made by `reserve()`; no property of it is meaningful to JavaScript. */
export interface NativeHandle {
  readonly __nativeHandle: never;
}

/** What the C inspector counts in a heap, per size class and in total. */
export interface HeapInspection {
  readonly classes: ReadonlyArray<{ readonly pools: number; readonly blocks: number }>;
  readonly arenas: number;
  readonly usableArenas: number;
  readonly freePools: number;
  readonly usedPoolsListed: number;
  readonly fullPools: number;
}

/** The raw binding. Every function re-checks its arguments and throws instead of aborting. */
export interface NativeBinding {
  pageSize(): number;
  /** 'readwrite': every page readable and writable from the start (MAP_NORESERVE); 'none': PROT_NONE. */
  reserve(size: number, alignment: number, access: 'readwrite' | 'none'): NativeReservation;
  commit(handle: NativeHandle, offset: number, length: number): void;
  /** Returns the mode applied: 'unmap' degrades to 'dontneed' at pymalloc's share of vm.max_map_count. */
  decommit(
    handle: NativeHandle,
    offset: number,
    length: number,
    mode: 'unmap' | 'dontneed',
  ): 'unmap' | 'dontneed';
  /** MADV_HUGEPAGE (enable) or MADV_NOHUGEPAGE over the range; false where the kernel has no THP. */
  adviseHugePages(handle: NativeHandle, offset: number, length: number, enable: boolean): boolean;
  residentPages(handle: NativeHandle, offset: number, length: number): number;
  /** null for a 'readwrite' reservation; else one bit per page (little-endian), set where it can be read. */
  committedPages(handle: NativeHandle): ArrayBuffer | null;
  /** Gives the pages back and detaches the buffer; the range is unmapped once nothing can reach it. */
  release(handle: NativeHandle): void;
  /** Walks the pymalloc heap in the reservation from C (native/inspector.cc). */
  inspectHeap(handle: NativeHandle): HeapInspection;
  /** For tests: the nth following call of `op` fails with ENOMEM (0 clears). Process-wide. */
  _setFault(op: 'commit' | 'reserve' | 'decommit', nth: number): void;
  /** For tests: calls of `op` left before the armed fault fires (0: none armed). */
  _pendingFault(op: 'commit' | 'reserve' | 'decommit'): number;
  /** For tests: the mappings beyond one per reservation that 'none' reservations may hold (0: the default). */
  _setMapBudget(n: number): void;
  /** For tests: the mappings beyond one per reservation that 'none' reservations hold now. */
  _mapCount(): number;
  /** For tests: how many reservations of the process are still mapped. */
  _liveReservations(): number;
}

export type NativeBuildKind = 'gyp' | 'cmake' | 'asan' | 'path';

export interface NativeBuild {
  readonly kind: NativeBuildKind;
  readonly path: string;
}

const BUILD_DIRS: Record<Exclude<NativeBuildKind, 'path'>, string> = {
  gyp: 'build',
  cmake: 'build-cmake',
  asan: 'build-asan',
};

const HOW_TO_BUILD =
  'build it with `npm run build:gyp` (or `npm install`) for node-gyp, or `npm run build:cmake` for cmake-js';

/** The directory of the package.json named pymalloc above `from` (lib/os under ts-jest, dist/lib/os). */
export function packageRoot(from: string = __dirname): string {
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      try {
        if ((JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: unknown }).name === 'pymalloc') return dir;
      } catch {
        // not a readable package.json: keep walking up
      }
    }
    if (path.dirname(dir) === dir) throw new Error(`cannot find the pymalloc package above ${from}`);
  }
}

function buildPath(root: string, kind: Exclude<NativeBuildKind, 'path'>): string {
  return path.join(root, BUILD_DIRS[kind], 'Release', 'pymalloc.node');
}

/**
 * Decides which addon file to load, without loading it.
 * @param selector the value of `PYMALLOC_NATIVE` (undefined or '' for the default order)
 * @param root the package root; found from this module's directory by default
 */
export function resolveNativeBuild(
  selector: string | undefined = process.env['PYMALLOC_NATIVE'],
  root?: string,
): NativeBuild {
  if (selector) {
    let build: NativeBuild;
    if (selector === 'gyp' || selector === 'cmake' || selector === 'asan') {
      build = { kind: selector, path: buildPath(root ?? packageRoot(), selector) };
    } else if (path.isAbsolute(selector)) {
      build = { kind: 'path', path: selector };
    } else {
      throw new Error(
        `PYMALLOC_NATIVE must be 'gyp', 'cmake', 'asan' or an absolute path to a .node file, got '${selector}'`,
      );
    }
    if (!fs.existsSync(build.path)) {
      const asan = selector === 'asan' ? '; for asan: `npm run build:asan`' : '';
      throw new Error(
        `PYMALLOC_NATIVE=${selector}: no native addon at ${build.path}; ${HOW_TO_BUILD}${asan}`,
      );
    }
    return build;
  }
  root ??= packageRoot();
  for (const kind of ['gyp', 'cmake'] as const) {
    const file = buildPath(root, kind);
    if (fs.existsSync(file)) return { kind, path: file };
  }
  throw new Error(
    `the native addon is not built (looked for ${buildPath(root, 'gyp')} and ${buildPath(root, 'cmake')}); ${HOW_TO_BUILD}`,
  );
}

let loaded: { build: NativeBuild; binding: NativeBinding } | undefined;

function load(): { build: NativeBuild; binding: NativeBinding } {
  if (!loaded) {
    const build = resolveNativeBuild();
    loaded = { build, binding: require(build.path) as NativeBinding };
  }
  return loaded;
}

/** The raw binding, loaded on first call. */
export function nativeBinding(): NativeBinding {
  return load().binding;
}

/** Which build of the addon is loaded, and from where (loads it if that has not happened yet). */
export function nativeBuild(): NativeBuild {
  return load().build;
}
