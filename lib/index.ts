/**
 * pymalloc: CPython's small-object allocator for Node.js, on real OS pages that go back to the OS.
 * This module only re-exports; docs/api.md is the API. Test hooks are in ./testing (pymalloc/testing).
 */

export { MAX_REQUEST } from './alloc';
export { CLEANBYTE, FORBIDDENBYTE } from './debug';
export { type Geometry, type GeometryOptions, type GeometryPreset, resolveGeometry } from './geometry';
export { type ClassStats, Heap, type HeapOptions, type HeapStats, type ReturnPolicy } from './heap';
export * from './os';
export { DEADBYTE } from './pool';
