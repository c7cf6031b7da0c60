// The example's program: TypeScript builds a linked list in a pymalloc heap with the generated accessors, the C
// addon (src/walk.c) walks it through real pointers and writes results into the nodes, and TypeScript reads
// them back. Build the addon first (`npx node-gyp rebuild` or `npx cmake-js compile`), compile this file with
// tsc, and run it: it prints what it checked as JSON, and exits 1 if anything disagreed.
import { Heap } from 'pymalloc';
import {
  list_node_get_next,
  list_node_get_prefix,
  list_node_get_rank,
  list_node_set_next,
  list_node_set_next_address,
  list_node_set_value,
  SIZEOF_LIST_NODE,
} from './generated/list-layout';

interface WalkAddon {
  /** Sets every node's rank and prefix; returns the number of nodes. */
  walk(buffer: ArrayBuffer | SharedArrayBuffer, head: number): number;
  /** The sum of the values. */
  sum(buffer: ArrayBuffer | SharedArrayBuffer, head: number): number;
  /** Reverses the list in place; returns the new head. */
  reverse(buffer: ArrayBuffer | SharedArrayBuffer, head: number): number;
}

const addon = require('./build/Release/walk.node') as WalkAddon;
const count = Number(process.argv[2] ?? 1000);
const failures: string[] = [];
const expect = (what: string, ok: boolean) => {
  if (!ok) failures.push(what);
};

const heap = new Heap();
// Build value i at node i, linked from the head: head -> node 0 -> node 1 -> ... -> node count-1 -> NULL.
const nodes: number[] = [];
for (let i = 0; i < count; i++) nodes.push(heap.malloc(SIZEOF_LIST_NODE));
let head = 0;
for (let i = count - 1; i >= 0; i--) {
  list_node_set_value(heap, nodes[i], i * 3 - 7);
  list_node_set_next(heap, nodes[i], head); // stores the real address: C follows it directly
  head = nodes[i];
}

// C walks the list and writes rank and prefix into every node.
expect('walk counts every node', addon.walk(heap.buffer, head) === count);
let prefix = 0;
for (let i = 0; i < count; i++) {
  prefix += i * 3 - 7;
  expect(`node ${i} rank`, list_node_get_rank(heap, nodes[i]) === i);
  expect(`node ${i} prefix`, list_node_get_prefix(heap, nodes[i]) === prefix);
}
expect('sum', addon.sum(heap.buffer, head) === prefix);

// C relinks the nodes through C pointers; the generated getters read them back as heap offsets.
const reversed = addon.reverse(heap.buffer, head);
expect('reverse returns the last node', reversed === nodes[count - 1]);
for (let i = count - 1, p = reversed; i >= 0; i--) {
  expect(`reversed node ${i}`, p === nodes[i]);
  p = list_node_get_next(heap, p);
}

// Outside the heap, and after destroy(): an exception, never a crash.
let outside = '';
try {
  addon.walk(heap.buffer, 2 ** 32 - 8);
} catch (err) {
  outside = (err as { code?: string }).code ?? String(err);
}
// A next pointer that C code (or a bug) aimed outside the heap, and a cycle: exceptions too.
const codeOf = (f: () => unknown) => {
  try {
    f();
    return 'no error';
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
};
const last = nodes[0]; // the tail of the reversed list
list_node_set_next_address(heap, last, 0x1000n);
const leaves = codeOf(() => addon.walk(heap.buffer, reversed));
list_node_set_next(heap, last, reversed);
const cycle = codeOf(() => addon.sum(heap.buffer, reversed));
list_node_set_next(heap, last, 0);
expect('a pointer out of the heap is refused', leaves === 'ERR_PYMALLOC_INVALID_POINTER');
expect('a cycle is refused', cycle === 'ERR_PYMALLOC_CORRUPT');
for (const p of nodes) heap.free(p);
heap.check();

const held = heap.buffer;
heap.destroy();
// A destroyed heap's buffer is empty, and C refuses it.
let destroyed = '';
try {
  addon.walk(heap.buffer, reversed);
} catch (err) {
  destroyed = (err as { code?: string }).code ?? String(err);
}
expect('a head outside the heap is refused', outside === 'ERR_PYMALLOC_INVALID_POINTER');
expect('a destroyed heap is refused', destroyed === 'ERR_PYMALLOC_DESTROYED' && heap.buffer.byteLength === 0);
// The buffer held from before still covers the range, which reads zeros: the walk meets a NULL next at once.
expect('a buffer held past destroy() reads zeros', codeOf(() => addon.walk(held, reversed)) === 'no error');
expect(
  'and still covers the range',
  held.byteLength === 2 ** 32 && new Uint8Array(held, reversed, 16).every((b) => b === 0),
);

// A shared heap (heap.buffer is a SharedArrayBuffer): C reads it through the same pymalloc_view_from.
const shared = new Heap({ shared: true });
let sharedHead = 0;
for (let i = count - 1; i >= 0; i--) {
  const p = shared.malloc(SIZEOF_LIST_NODE);
  list_node_set_value(shared, p, i);
  list_node_set_next(shared, p, sharedHead);
  sharedHead = p;
}
const sharedCount = addon.walk(shared.buffer, sharedHead);
expect(
  'C walks a shared heap',
  sharedCount === count && addon.sum(shared.buffer, sharedHead) === (count * (count - 1)) / 2,
);
for (let p = sharedHead; p !== 0; ) {
  const next = list_node_get_next(shared, p);
  shared.free(p);
  p = next;
}
shared.check();
shared.destroy();

console.log(
  JSON.stringify({
    count,
    prefix,
    outside,
    leaves,
    cycle,
    destroyed,
    sharedCount,
    failures: failures.slice(0, 10),
  }),
);
if (failures.length > 0) process.exitCode = 1;
