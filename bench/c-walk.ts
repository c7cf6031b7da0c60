/**
 * The same walk over a linked list of 10^6 nodes three ways, side by side in one run: C through pymalloc.h
 * (examples/c-addon's addon), JavaScript through the generated accessors over the heap, and plain JavaScript
 * objects. The walk reads each node's value and writes its rank and running sum, as examples/c-addon does.
 * Lists are linked in allocation order (neighbours in memory) and in a shuffled order (pointer chasing).
 * Best of --reps runs each, the three ways alternating; prints ns per node and each way's ratio to C.
 *
 *   npm run build:ts && node dist/bench/c-walk.js [--nodes 1000000] [--reps 7] [--json]
 *
 * It builds examples/c-addon with node-gyp first when its addon is missing.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import {
  list_node_get_next,
  list_node_get_value,
  list_node_set_next,
  list_node_set_prefix,
  list_node_set_rank,
  list_node_set_value,
  SIZEOF_LIST_NODE,
} from '../examples/c-addon/generated/list-layout';
import { Heap } from '../lib';

interface Walk {
  walk(buffer: ArrayBuffer | SharedArrayBuffer, head: number): number;
}

interface JsNode {
  next: JsNode | null;
  value: number;
  rank: number;
  prefix: number;
}

const ROOT = resolve(__dirname, '..', '..');
const EXAMPLE = join(ROOT, 'examples', 'c-addon');

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i < 0 ? fallback : Number(process.argv[i + 1]);
}

function loadAddon(): Walk {
  const file = join(EXAMPLE, 'build', 'Release', 'walk.node');
  if (!existsSync(file)) {
    // Through npx, so that npm's configuration (a nodedir for the headers, say) reaches node-gyp.
    const r = spawnSync('npx', ['--no-install', 'node-gyp', 'rebuild'], { cwd: EXAMPLE, stdio: 'inherit' });
    if (r.status !== 0) throw new Error('c-walk: building examples/c-addon with node-gyp failed');
  }
  return require(file) as Walk;
}

/** An order of 0..n-1: identity, or a shuffle from a fixed seed. */
function order(n: number, shuffled: boolean): Uint32Array {
  const o = new Uint32Array(n);
  for (let i = 0; i < n; i++) o[i] = i;
  if (shuffled) {
    let s = 0x9e3779b9;
    for (let i = n - 1; i > 0; i--) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      const j = s % (i + 1);
      const t = o[i];
      o[i] = o[j];
      o[j] = t;
    }
  }
  return o;
}

function jsAccessorWalk(heap: Heap, head: number): number {
  let rank = 0;
  let prefix = 0;
  for (let p = head; p !== 0; p = list_node_get_next(heap, p)) {
    prefix += list_node_get_value(heap, p);
    list_node_set_rank(heap, p, rank++);
    list_node_set_prefix(heap, p, prefix);
  }
  return rank;
}

function jsObjectWalk(head: JsNode | null): number {
  let rank = 0;
  let prefix = 0;
  for (let n = head; n !== null; n = n.next) {
    prefix += n.value;
    n.rank = rank++;
    n.prefix = prefix;
  }
  return rank;
}

function time(f: () => number, expected: number): number {
  const t0 = process.hrtime.bigint();
  const count = f();
  const ns = Number(process.hrtime.bigint() - t0);
  if (count !== expected) throw new Error(`c-walk: a walk visited ${count} nodes, not ${expected}`);
  return ns;
}

function main(): void {
  const n = arg('--nodes', 1_000_000);
  const reps = arg('--reps', 7);
  const addon = loadAddon();
  const rows: { order: string; way: string; nsPerNode: number; ratio: number }[] = [];
  for (const shuffled of [false, true]) {
    const o = order(n, shuffled);
    const heap = new Heap();
    const nodes = new Uint32Array(n);
    for (let i = 0; i < n; i++) nodes[i] = heap.malloc(SIZEOF_LIST_NODE);
    const objects: JsNode[] = [];
    for (let i = 0; i < n; i++) objects.push({ next: null, value: 0, rank: 0, prefix: 0 });
    // Link in the order o: head = o[0] -> o[1] -> ...
    for (let i = 0; i < n; i++) {
      const value = (i % 1000) - 500;
      list_node_set_value(heap, nodes[o[i]], value);
      list_node_set_next(heap, nodes[o[i]], i + 1 < n ? nodes[o[i + 1]] : 0);
      objects[o[i]].value = value;
      objects[o[i]].next = i + 1 < n ? objects[o[i + 1]] : null;
    }
    const head = nodes[o[0]];
    const objectHead = objects[o[0]];
    const best = { c: Infinity, accessors: Infinity, objects: Infinity };
    for (let r = 0; r < reps; r++) {
      best.c = Math.min(
        best.c,
        time(() => addon.walk(heap.buffer, head), n),
      );
      best.accessors = Math.min(
        best.accessors,
        time(() => jsAccessorWalk(heap, head), n),
      );
      best.objects = Math.min(
        best.objects,
        time(() => jsObjectWalk(objectHead), n),
      );
    }
    const name = shuffled ? 'shuffled' : 'allocation order';
    for (const [way, ns] of [
      ['C through pymalloc.h', best.c],
      ['JavaScript, generated accessors', best.accessors],
      ['JavaScript objects', best.objects],
    ] as const) {
      rows.push({ order: name, way, nsPerNode: ns / n, ratio: ns / best.c });
    }
    heap.destroy();
  }
  if (process.argv.includes('--json')) {
    process.stdout.write(`${JSON.stringify({ nodes: n, reps, cpu: cpus()[0]?.model, rows }, null, 2)}\n`);
    return;
  }
  console.log(
    `${n} nodes, best of ${reps}, on ${cpus()[0]?.model ?? 'an unknown CPU'} (Node ${process.version})`,
  );
  console.log('');
  console.log('| list order | walk | ns per node | × C |');
  console.log('| --- | --- | ---: | ---: |');
  for (const r of rows) {
    console.log(`| ${r.order} | ${r.way} | ${r.nsPerNode.toFixed(2)} | ${r.ratio.toFixed(2)} |`);
  }
}

main();
