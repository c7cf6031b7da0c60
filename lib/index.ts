/**
 * pymalloc: CPython's small-object allocator for Node.js, on real OS pages that go back to the OS.
 * This module re-exports the API (docs/api.md), and says where the C header is (`includeDir`). Test hooks are in
 * ./testing (pymalloc/testing).
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

export { MAX_REQUEST } from './alloc';
export { CLEANBYTE, FORBIDDENBYTE } from './debug';
export { type Geometry, type GeometryOptions, type GeometryPreset, resolveGeometry } from './geometry';
export {
  type ClassStats,
  Heap,
  type HeapOptions,
  type HeapStats,
  type ReturnPolicy,
  type SharedHeapHandle,
} from './heap';
export * from './os';
export { DEADBYTE } from './pool';

// Registers the class of shared heaps' Heap objects (new Heap({ shared: true }), Heap.attach).
import './shared/heap';

/**
 * The absolute path of the folder holding `pymalloc.h`, the C interface for your own Node-API addon to read and
 * write a heap's blocks (docs/c-addon.md). Add it to your addon's include path, as node-addon-api's
 * `include_dir`: `"include_dirs": ["<!(node -p \"require('pymalloc').includeDir\")"]` in binding.gyp.
 */
export const includeDir: string = join(packageRoot(__dirname), 'include');

/** The package's root: the nearest folder above `dir` with a package.json (dist/lib/ in the package, lib/ in a test). */
function packageRoot(dir: string): string {
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(join(d, 'package.json'))) return d;
    if (dirname(d) === d) return join(dir, '..', '..');
  }
}
