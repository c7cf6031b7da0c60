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
 *
 * Shared heaps need an addon that can make a SharedArrayBuffer over the heap's pages. Where the running Node.js has
 * Node-API's `node_api_create_external_sharedarraybuffer` (26.1 and later, and recent 24.x releases) the main addon does it
 * (native/shared_napi.cc; it then exports `sharedArrayBuffers: 'node-api'`), prebuilds included. Elsewhere (Node.js
 * 20 and 22) a second addon does, `pymalloc_shared.node` (native/shared.cc): it uses V8's C++ API, so it is built
 * for one Node.js version and never prebuilt. It is loaded on the first `Reservation.createShared` or
 * `attachShared`, from beside the main addon that was loaded (build/Release, build-cmake/Release, build-asan/Release,
 * or the directory of a PYMALLOC_NATIVE path); where it is missing, or was built for another Node.js, the error has
 * code ERR_PYMALLOC_NO_SHARED_ADDON and says how to build it.
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

/** What the shared-heap addon hands out: a 'readwrite' reservation covered by one SharedArrayBuffer. */
export interface NativeSharedReservation {
  readonly handle: NativeHandle;
  readonly buffer: SharedArrayBuffer;
  readonly base: bigint;
  readonly size: number;
  readonly alignment: number;
}

/** What the shared-heap addon was compiled against; the loader refuses it unless the running Node.js matches. */
export interface SharedBuildInfo {
  readonly nodeModuleVersion: number;
  readonly nodeVersion: string;
  readonly pointerCompression: boolean;
  readonly sandbox: boolean;
}

/**
 * The shared-heap addon: the same functions as the main one (on its own reservations, in a registry of its own),
 * plus shared reservations. Its handles are not the main addon's, nor the other way round.
 */
export interface SharedBinding extends NativeBinding {
  /** How it makes SharedArrayBuffers: Node-API (the main addon, Node.js 26.1+ and recent 24.x) or V8 (the shared-heap addon). */
  readonly sharedArrayBuffers: 'node-api' | 'v8';
  /** The shared-heap addon only: the Node.js it was built for. */
  readonly buildInfo?: SharedBuildInfo;
  /** A 'readwrite' reservation (MAP_NORESERVE) covered by one SharedArrayBuffer. */
  reserveShared(size: number, alignment: number): NativeSharedReservation;
  /** A new handle, in this thread, on the shared reservation whose buffer this is (found from its backing store). */
  attachShared(buffer: SharedArrayBuffer): NativeSharedReservation;
  /** Whether the reservation was released, through this handle or (shared) any other, in any thread. */
  isReleased(handle: NativeHandle): boolean;
  /** Registers this thread's environment cleanup hook: the protocol in native/shim.cc ("Thread binding"). */
  bindThread(
    handle: NativeHandle,
    lockOffset: number,
    flagsOffset: number,
    slotOffset: number,
    tag: number,
  ): void;
  /** Removes it; false when there was none. */
  unbindThread(handle: NativeHandle): boolean;
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
  // It takes the first .node file of build/Release, which sorts before the shared-heap addon; should it ever
  // return that one, the main addon is beside it.
  if (found !== undefined && path.basename(found) === SHARED_ADDON_NAME) {
    found = path.join(path.dirname(found), 'pymalloc.node');
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

/** The file name of the shared-heap addon, which lives beside the main addon. */
export const SHARED_ADDON_NAME = 'pymalloc_shared.node';

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

let sharedLoaded: { build: NativeBuild; binding: SharedBinding } | undefined;

function noSharedAddon(message: string): Error {
  return Object.assign(new Error(message), { code: 'ERR_PYMALLOC_NO_SHARED_ADDON' });
}

/** How to make the shared-heap addon for a main addon of this kind. */
function howToBuildShared(kind: NativeBuildKind): string {
  switch (kind) {
    case 'cmake':
      return 'build it with `npm run build:cmake`';
    case 'asan':
      return 'build it with `npm run build:asan`';
    case 'path':
      return `put the ${SHARED_ADDON_NAME} built with it in the same directory`;
    default:
      return (
        `run \`npm rebuild pymalloc --build-from-source\` in your project with this Node.js (${process.version}): ` +
        'it builds both addons from source (python3, make and a C++ compiler needed; in a clone of the ' +
        'repository, `npm run build:gyp`)'
      );
  }
}

/** Where the shared-heap addon that goes with a main addon build is (it may not exist). */
export function sharedAddonPath(build: NativeBuild): string {
  return path.join(path.dirname(build.path), SHARED_ADDON_NAME);
}

/** Reads a process.config.variables flag of the running Node.js (0/1 or boolean); undefined when absent. */
function configFlag(name: string): boolean | undefined {
  const value = (process.config?.variables as Record<string, unknown> | undefined)?.[name];
  if (value === undefined || value === null) return undefined;
  return value === true || value === 1 || value === '1' || value === 'true';
}

/**
 * Refuses a shared-heap addon compiled for another Node.js ABI or another V8 configuration (its V8 calls would
 * crash): an Error with code ERR_PYMALLOC_NO_SHARED_ADDON. Exported for the tests.
 * @internal
 */
export function checkSharedBuildInfo(
  info: SharedBuildInfo | undefined,
  file: string,
  kind: NativeBuildKind,
): void {
  const problems: string[] = [];
  if (typeof info !== 'object' || info === null) {
    problems.push('it has no buildInfo');
  } else {
    if (String(info.nodeModuleVersion) !== process.versions.modules) {
      problems.push(
        `it was built for Node.js ${info.nodeVersion} (NODE_MODULE_VERSION ${info.nodeModuleVersion}), this is ` +
          `${process.version} (NODE_MODULE_VERSION ${process.versions.modules})`,
      );
    }
    if (info.sandbox) problems.push("it was built for V8's sandbox, which forbids memory mapped outside it");
    for (const [flag, built] of [
      ['v8_enable_pointer_compression', info.pointerCompression],
      ['v8_enable_sandbox', info.sandbox],
    ] as const) {
      const running = configFlag(flag);
      if (running !== undefined && running !== built) {
        problems.push(`it was built with ${flag}=${built}, this Node.js has ${running}`);
      }
    }
  }
  if (problems.length > 0) {
    throw noSharedAddon(
      `pymalloc: the shared-heap addon ${file} does not fit this Node.js: ${problems.join('; ')}; ` +
        howToBuildShared(kind),
    );
  }
}

/**
 * The shared-heap addon that goes with a main addon build, without loading it; throws ERR_PYMALLOC_NO_SHARED_ADDON,
 * saying how to build it, where it is missing.
 */
export function resolveSharedBuild(main: NativeBuild): NativeBuild {
  const file = sharedAddonPath(main);
  if (!fs.existsSync(file)) {
    throw noSharedAddon(
      `pymalloc: shared heaps in Node.js ${process.version} need the shared-heap addon, which is missing (no ` +
        `${file}): it uses V8's C++ API, so it is built for one Node.js version and not shipped prebuilt (from ` +
        `Node.js 26.1 on, and in recent 24.x releases, the main addon makes shared heaps itself); ${howToBuildShared(main.kind)}`,
    );
  }
  return { kind: main.kind, path: file };
}

function loadShared(): { build: NativeBuild; binding: SharedBinding } {
  if (!sharedLoaded) {
    const main = load();
    if ((main.binding as Partial<SharedBinding>).sharedArrayBuffers === 'node-api') {
      sharedLoaded = { build: main.build, binding: main.binding as SharedBinding };
      return sharedLoaded;
    }
    const build = resolveSharedBuild(main.build);
    let binding: SharedBinding;
    try {
      binding = require(build.path) as SharedBinding;
    } catch (err) {
      // Its own refusal (built for another major version of Node.js) already has the code and the advice.
      if ((err as { code?: unknown }).code === 'ERR_PYMALLOC_NO_SHARED_ADDON') throw err;
      throw noSharedAddon(
        `pymalloc: the shared-heap addon ${build.path} cannot be loaded (${(err as Error).message}); ` +
          howToBuildShared(build.kind),
      );
    }
    checkSharedBuildInfo(binding.buildInfo, build.path, build.kind);
    sharedLoaded = { build, binding };
  }
  return sharedLoaded;
}

/** The addon that makes shared reservations: the main one where it can, else the shared-heap addon (loaded on first call, after the main addon, whose build it follows). */
export function sharedBinding(): SharedBinding {
  return loadShared().binding;
}

/** Which shared-heap addon is loaded, and from where (loads it if that has not happened yet). */
export function sharedNativeBuild(): NativeBuild {
  return loadShared().build;
}

/** The shared-heap addon if this thread has loaded it already; never loads it. */
export function loadedSharedBinding(): SharedBinding | undefined {
  return sharedLoaded?.binding;
}
