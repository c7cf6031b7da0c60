/**
 * The benchmark's built-in traces, generated deterministically (seeded): workloads shaped like CPython's
 * object traffic, and the micro-benchmarks (malloc/free pairs per size class; LIFO, FIFO and random free
 * orders). Each is a `Trace` like a parsed file, and can be written out in the text format for the peers
 * that run in other processes.
 */
import { writeFileSync } from 'node:fs';
import { random } from '../lib/demo/mix';
import { OP_FREE, OP_MALLOC, OP_REALLOC, type Trace } from '../lib/trace';

/** Deterministic PRNG (mulberry32): the demo's own generator. */
export const rng: (seed: number) => () => number = random;

/** Fisher–Yates, in place, with `r`. */
export function shuffle<T>(items: T[], r: () => number): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    const t = items[i];
    items[i] = items[j];
    items[j] = t;
  }
}

class TraceBuilder {
  private ops: number[] = [];
  private ids: number[] = [];
  private sizes: number[] = [];
  private next = 0;
  constructor(private readonly name: string) {}
  malloc(size: number): number {
    const id = this.next++;
    this.push(OP_MALLOC, id, size);
    return id;
  }
  free(id: number): void {
    this.push(OP_FREE, id, 0);
  }
  realloc(id: number, size: number): void {
    this.push(OP_REALLOC, id, size);
  }
  private push(op: number, id: number, size: number): void {
    this.ops.push(op);
    this.ids.push(id);
    this.sizes.push(size);
  }
  build(): Trace {
    return {
      name: this.name,
      length: this.ops.length,
      ops: Uint8Array.from(this.ops),
      ids: Uint32Array.from(this.ids),
      sizes: Uint32Array.from(this.sizes),
      objects: this.next,
    };
  }
}

/**
 * A request size with CPython's shape: most objects are 16–128 bytes (tuples, small ints, frames' cells,
 * short strings), a tail up to 512, and about 1 in 200 beyond the small-object threshold (buffers, big lists).
 */
export function pythonSize(r: () => number): number {
  const u = r();
  if (u < 0.55) return 16 + Math.floor(r() * 49); // 16..64
  if (u < 0.85) return 65 + Math.floor(r() * 64); // 65..128
  if (u < 0.995) return 129 + Math.floor(r() * 384); // 129..512
  return 513 + Math.floor(r() * r() * 64 * 1024); // mostly below 16 KiB, up to 64 KiB
}

/** Steady state: a live set of about `live` objects churned by random frees, growth by realloc now and then. */
export function churnTrace(ops = 1_000_000, live = 50_000, seed = 1): Trace {
  const r = rng(seed);
  const b = new TraceBuilder('churn');
  const alive: number[] = [];
  const sizes = new Map<number, number>();
  let n = 0;
  while (n < ops) {
    const u = r();
    if (alive.length < live * 0.5 || (u < 0.5 && alive.length < live * 1.5)) {
      const s = pythonSize(r);
      const id = b.malloc(s);
      alive.push(id);
      sizes.set(id, s);
    } else if (u < 0.95) {
      const k = Math.floor(r() * alive.length);
      const id = alive[k];
      alive[k] = alive[alive.length - 1];
      alive.pop();
      b.free(id);
    } else {
      const id = alive[Math.floor(r() * alive.length)];
      const s = Math.min(1 << 20, Math.ceil((sizes.get(id) ?? 16) * 1.125) + 8);
      sizes.set(id, s);
      b.realloc(id, s);
    }
    n++;
  }
  return b.build();
}

/**
 * Evan Jones's workload: build a large scenario of small objects, free all of it in random order, build a
 * smaller one and free that too. The memory after each free is the point.
 */
export function buildFreeTrace(objects = 600_000, seed = 2): Trace {
  const r = rng(seed);
  const b = new TraceBuilder('build-free');
  for (const count of [objects, objects >> 1]) {
    const ids: number[] = [];
    for (let i = 0; i < count; i++) ids.push(b.malloc(pythonSize(r)));
    shuffle(ids, r);
    for (const id of ids) b.free(id);
  }
  return b.build();
}

/** Strings and lists that grow: each object is reallocated up by 1/8 plus a little, many times, then freed. */
export function growTrace(objects = 20_000, seed = 3): Trace {
  const r = rng(seed);
  const b = new TraceBuilder('realloc-grow');
  const live: Array<{ id: number; size: number; target: number }> = [];
  for (let i = 0; i < objects; i++) {
    live.push({ id: b.malloc(16), size: 16, target: 64 + Math.floor(r() * r() * 8192) });
    while (live.length > 0 && r() < 0.6) {
      const k = Math.floor(r() * live.length);
      const o = live[k];
      if (o.size >= o.target) {
        b.free(o.id);
        live[k] = live[live.length - 1];
        live.pop();
      } else {
        o.size = Math.ceil(o.size * 1.125) + 8;
        b.realloc(o.id, o.size);
      }
    }
  }
  for (const o of live) b.free(o.id);
  return b.build();
}

/** `pairs` of malloc(size) then free, one object at a time: the fast path of one size class. */
export function pairsTrace(size: number, pairs = 200_000): Trace {
  const b = new TraceBuilder(`pairs-${size}`);
  for (let i = 0; i < pairs; i++) b.free(b.malloc(size));
  return b.build();
}

/** `count` mixed small objects allocated, then freed in LIFO, FIFO or random order; `rounds` times. */
export function orderTrace(order: 'lifo' | 'fifo' | 'random', count = 50_000, rounds = 4, seed = 4): Trace {
  const r = rng(seed);
  const b = new TraceBuilder(`free-${order}`);
  for (let round = 0; round < rounds; round++) {
    const ids: number[] = [];
    for (let i = 0; i < count; i++) ids.push(b.malloc(16 + Math.floor(r() * 241)));
    if (order === 'lifo') ids.reverse();
    else if (order === 'random') {
      shuffle(ids, r);
    }
    for (const id of ids) b.free(id);
  }
  return b.build();
}

/** The workloads run when no trace file is given; `scale` < 1 shrinks them (for a quick smoke run). */
export function builtinTraces(scale = 1): Trace[] {
  const n = (x: number) => Math.max(100, Math.round(x * scale));
  return [churnTrace(n(1_000_000), n(50_000)), buildFreeTrace(n(600_000)), growTrace(n(20_000))];
}

/** The micro-benchmarks: pairs per size class, then the three free orders. */
export function microTraces(scale = 1): Trace[] {
  const n = (x: number) => Math.max(100, Math.round(x * scale));
  return [
    ...[16, 32, 64, 128, 256, 512].map((s) => pairsTrace(s, n(200_000))),
    orderTrace('lifo', n(50_000)),
    orderTrace('fifo', n(50_000)),
    orderTrace('random', n(50_000)),
  ];
}

/** Writes a trace in the text format (`m ID SIZE`, `f ID`, `r ID SIZE`). */
export function writeTraceText(trace: Trace, file: string): void {
  const chunks: string[] = [];
  let lines: string[] = [];
  for (let i = 0; i < trace.length; i++) {
    const op = trace.ops[i];
    lines.push(
      op === OP_FREE
        ? `f ${trace.ids[i]}`
        : `${op === OP_MALLOC ? 'm' : op === OP_REALLOC ? 'r' : '?'} ${trace.ids[i]} ${trace.sizes[i]}`,
    );
    if (lines.length === 65536) {
      chunks.push(`${lines.join('\n')}\n`);
      lines = [];
    }
  }
  if (lines.length > 0) chunks.push(`${lines.join('\n')}\n`);
  writeFileSync(file, chunks.join(''));
}
