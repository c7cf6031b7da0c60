/**
 * pymalloc/testing: hooks for tests of code that uses pymalloc, apart from the API so that no user reaches them
 * by accident. `__testing.setFault(op, n)` makes the n-th next commit, reservation or decommit fail with ENOMEM;
 * `__testing.pendingFault(op)` tells whether it fired; `__testing.setMapBudget(n)` lowers the share of
 * vm.max_map_count that 'unmap' heaps may use. This module only re-exports.
 */
export { __testing } from './os/pages';
