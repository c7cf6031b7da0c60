/**
 * The one module that loads the native shim (native/shim.cc). Everything else reaches the OS through
 * `lib/os/pages.ts`, which checks arguments before they get here.
 *
 * Which build is loaded: `PYMALLOC_NATIVE` = `gyp` | `cmake` | `asan` | an absolute path to a `.node` file
 * selects one explicitly (an error if it is missing); otherwise what node-gyp-build finds (a local node-gyp
 * build in build/Release, else the prebuilt addon for this platform in prebuilds/, which `npm run
 * build:prebuild` makes with prebuildify), then the cmake-js build. When none is there the error tells an npm
 * consumer what to run (`npm rebuild pymalloc`). The addon is loaded on first use, so importing this module
 * never fails.
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

export type NativeBuildKind = 'prebuild' | 'gyp' | 'cmake' | 'asan' | 'path';

export interface NativeBuild {
  readonly kind: NativeBuildKind;
  readonly path: string;
}

type BuildDirKind = Exclude<NativeBuildKind, 'prebuild' | 'path'>;

const BUILD_DIRS: Record<BuildDirKind, string> = {
  gyp: 'build',
  cmake: 'build-cmake',
  asan: 'build-asan',
};

/** For PYMALLOC_NATIVE, which only a clone of the repository uses: the repository's build commands. */
const HOW_TO_BUILD =
  'build it with `npm run build:gyp` (or `npm install`) for node-gyp, or `npm run build:cmake` for cmake-js';

/** For everyone else (an npm consumer first): the one command that makes the addon where it is installed. */
const HOW_TO_REBUILD =
  'run `npm rebuild pymalloc` in your project: it builds the addon from source (python3, make and a C++ ' +
  'compiler needed), a step skipped by `npm install --ignore-scripts` and by npm 11 until ' +
  '`npm install-scripts approve pymalloc` (see https://github.com/pymalloc/pymalloc/blob/main/docs/install.md)';

/** node-gyp-build's resolver: a matching prebuilds/<platform>-<arch>/*.node, else build/Release or Debug. */
interface NodeGypBuild {
  path(dir: string): string;
}

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

function buildPath(root: string, kind: BuildDirKind): string {
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
  // node-gyp-build prefers a local build (build/Release, as `npm install` in a clone makes) over a prebuild.
  let found: string | undefined;
  try {
    found = (require('node-gyp-build') as NodeGypBuild).path(root);
  } catch {
    // nothing built and no prebuild for this platform: try the cmake-js build, then give the advice below
  }
  if (found !== undefined) {
    const prebuilds = path.join(root, 'prebuilds') + path.sep;
    return { kind: found.startsWith(prebuilds) ? 'prebuild' : 'gyp', path: found };
  }
  const cmake = buildPath(root, 'cmake');
  if (fs.existsSync(cmake)) return { kind: 'cmake', path: cmake };
  throw new Error(
    `pymalloc: the native addon is missing: no prebuilt addon for ${process.platform}-${process.arch} in ` +
      `${path.join(root, 'prebuilds')} and no local build in ${path.join(root, 'build', 'Release')}; ` +
      HOW_TO_REBUILD,
  );
}

let loaded: { build: NativeBuild; binding: NativeBinding } | undefined;

function load(): { build: NativeBuild; binding: NativeBinding } {
  if (!loaded) {
    const build = resolveNativeBuild();
    let binding: NativeBinding;
    try {
      binding = require(build.path) as NativeBinding;
    } catch (err) {
      if (build.kind !== 'prebuild') throw err;
      // e.g. a C library older than the one the prebuild was linked against (docs/install.md)
      throw new Error(
        `pymalloc: the prebuilt addon ${build.path} cannot be loaded here (${(err as Error).message}); ` +
          'run `npm rebuild pymalloc --build-from-source` to build it from source',
      );
    }
    loaded = { build, binding };
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
