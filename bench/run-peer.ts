/**
 * Runs one allocator over one trace in a process of its own, so that its RSS is its own and the JIT sees one
 * allocator only, and prints a PeerRun as JSON on stdout. Started by bench/bench.ts:
 *
 *   node --expose-gc dist/bench/run-peer.js PEER TRACE REPS SAMPLES IDLE_MS [CAP]
 *
 * PEER is 'pymalloc', 'pymalloc-huge' (2 MiB arenas on transparent huge pages), 'buffer' (Buffer.allocUnsafe),
 * 'uint8array' (new Uint8Array) or 'thing' (@thi.ng/malloc's MemPool). JavaScript peers "free" by dropping the reference; a full GC runs before each
 * RSS reading taken at a phase boundary, not inside the timed replays.
 */
import type { HeapOptions } from '../lib';
import { checkHeapOptions } from '../lib/heap';
import { IDLE_MS, measureReplay, measureReplayAsync } from '../lib/measure';
import { rssBytes } from '../lib/os';
import { collectGarbage } from '../lib/report/gc';
import { loadTrace, OP_FREE, OP_MALLOC, replay, type Trace, type TraceTarget } from '../lib/trace';
import type { PeerOutcome, PeerRun } from './peers/types';

export const JS_PEERS = {
  pymalloc: 'pymalloc (this)',
  'pymalloc-huge': 'pymalloc (this, huge pages)',
  buffer: 'Buffer.allocUnsafe',
  uint8array: 'new Uint8Array',
  thing: '@thi.ng/malloc',
} as const;
export type JsPeer = keyof typeof JS_PEERS;

function gcRss(): number {
  collectGarbage();
  collectGarbage();
  return rssBytes();
}

function prefix(trace: Trace, ops: number): Trace {
  return {
    ...trace,
    length: ops,
    ops: trace.ops.subarray(0, ops),
    ids: trace.ids.subarray(0, ops),
    sizes: trace.sizes.subarray(0, ops),
  };
}

/** Replays operations [from, to) over JavaScript objects: malloc = alloc(size), free = drop, realloc = copy. */
function replayRefs(
  trace: Trace,
  objs: Array<Uint8Array | undefined>,
  alloc: (n: number) => Uint8Array,
  from: number,
  to: number,
): void {
  const { ops, ids, sizes } = trace;
  for (let i = from; i < to; i++) {
    const op = ops[i];
    const id = ids[i];
    if (op === OP_MALLOC) objs[id] = alloc(sizes[i]);
    else if (op === OP_FREE) objs[id] = undefined;
    else {
      const old = objs[id] as Uint8Array;
      const n = sizes[i];
      const b = alloc(n);
      b.set(old.length <= n ? old : old.subarray(0, n));
      objs[id] = b;
    }
  }
}

/** The sampled replay and the timed ones for a peer whose state is made by `fresh` and run by `run`. */
async function measureGeneric<S>(
  peer: string,
  trace: Trace,
  reps: number,
  samples: number,
  fresh: () => S,
  run: (state: S, from: number, to: number) => void,
  freeAll: (state: S) => void,
  idleMs: number,
): Promise<Omit<PeerRun, 'trace'>> {
  const baseline = gcRss();
  const state = fresh();
  const timeline: Array<[number, number]> = [[0, baseline]];
  let peak = baseline;
  for (let s = 1; s <= samples; s++) {
    const from = Math.floor(((s - 1) * trace.length) / samples);
    const to = Math.floor((s * trace.length) / samples);
    run(state, from, to);
    const rss = rssBytes();
    peak = Math.max(peak, rss);
    timeline.push([to, rss]);
  }
  const end = gcRss();
  freeAll(state);
  const afterFree = gcRss();
  timeline.push([trace.length, afterFree]);
  if (idleMs > 0) await new Promise<void>((resolve) => setTimeout(resolve, idleMs));
  const afterIdle = idleMs > 0 ? gcRss() : afterFree;
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < reps; r++) {
    const st = fresh();
    const t0 = process.hrtime.bigint();
    run(st, 0, trace.length);
    const ns = Number(process.hrtime.bigint() - t0);
    best = Math.min(best, trace.length === 0 ? 0 : ns / trace.length);
    freeAll(st);
    collectGarbage();
  }
  return {
    peer,
    ops: trace.length,
    nsPerOp: best,
    rssBaseline: baseline,
    rssPeak: Math.max(peak, end),
    rssEnd: end,
    rssAfterFree: afterFree,
    rssAfterIdle: afterIdle,
    idleMs,
    timeline,
  };
}

/** The most bytes live at once over a trace, to size @thi.ng/malloc's pool. */
function peakLiveBytes(trace: Trace): number {
  const sizes = new Float64Array(trace.objects);
  let live = 0;
  let peak = 0;
  for (let i = 0; i < trace.length; i++) {
    const id = trace.ids[i];
    live -= sizes[id];
    sizes[id] = trace.ops[i] === OP_FREE ? 0 : trace.sizes[i];
    live += sizes[id];
    if (live > peak) peak = live;
  }
  return peak;
}

export async function runPeer(
  peer: JsPeer,
  trace: Trace,
  reps: number,
  samples: number,
  cap?: number,
  idleMs = IDLE_MS,
): Promise<PeerOutcome> {
  const name = trace.name.replace(/^.*[\\/]/, '');
  const capped = cap !== undefined && cap < trace.length ? cap : undefined;
  const t = capped === undefined ? trace : prefix(trace, capped);
  let result: Omit<PeerRun, 'trace'>;
  if (peer === 'pymalloc' || peer === 'pymalloc-huge') {
    let heap: HeapOptions | undefined;
    if (peer === 'pymalloc-huge') {
      heap = { preset: 'cpython-hugepages', hugePages: true };
      // The heap's own check: it falls back to normal pages without THP, and refuses arenas it cannot fill.
      let why: string | undefined;
      try {
        if (!checkHeapOptions(heap).hugePages)
          why = 'no transparent huge pages here (or they are set to never)';
      } catch (err) {
        why = (err as Error).message;
      }
      if (why !== undefined) return { peer: JS_PEERS[peer], trace: name, skipped: why };
    }
    // The yielding runner waits IDLE_MS after free-all for afterIdle; without an idle reading asked for (the
    // micro-benchmarks, --quick) the synchronous one spares that second.
    const opts = { reps, samples, heap };
    const m = idleMs > 0 ? await measureReplayAsync(t, opts) : measureReplay(t, opts);
    result = {
      peer: JS_PEERS[peer],
      ops: m.ops,
      nsPerOp: m.nsPerOp,
      rssBaseline: m.baseline.rss,
      rssPeak: Math.max(m.peak.rss, m.end.rss),
      rssEnd: m.end.rss,
      rssAfterFree: m.afterFree.rss,
      // measure's own idle second (afterIdle); none asked for: the reading after free-all.
      rssAfterIdle: (m.afterIdle ?? m.afterFree).rss,
      idleMs: idleMs > 0 ? IDLE_MS : 0,
      timeline: m.timeline.map((s) => [s.op, s.rss]),
    };
  } else if (peer === 'buffer' || peer === 'uint8array') {
    const alloc = peer === 'buffer' ? (n: number) => Buffer.allocUnsafe(n) : (n: number) => new Uint8Array(n);
    result = await measureGeneric(
      JS_PEERS[peer],
      t,
      reps,
      samples,
      () => new Array<Uint8Array | undefined>(t.objects),
      (objs, from, to) => replayRefs(t, objs, alloc, from, to),
      (objs) => objs.fill(undefined),
      idleMs,
    );
  } else {
    // @thi.ng/malloc is published as ES modules only.
    const { MemPool } = await import('@thi.ng/malloc');
    const size = Math.ceil((peakLiveBytes(t) * 2 + 16 * 2 ** 20) / 2 ** 20) * 2 ** 20;
    result = await measureGeneric(
      JS_PEERS.thing,
      t,
      reps,
      samples,
      () => ({ pool: new MemPool({ size }), ptrs: new Uint32Array(t.objects) }),
      (s, from, to) => replay(s.pool as unknown as TraceTarget, t, s.ptrs, from, to),
      (s) => {
        s.pool.freeAll();
        s.pool.release();
        s.ptrs.fill(0);
      },
      idleMs,
    );
  }
  return { ...result, trace: name, ...(capped === undefined ? {} : { cappedAt: capped }) };
}

async function main(argv: string[]): Promise<void> {
  const [peer, file, reps, samples, idleMs, cap] = argv;
  if (!(peer in JS_PEERS))
    throw new Error(`unknown peer '${peer}' (expected ${Object.keys(JS_PEERS).join(', ')})`);
  const trace = await loadTrace(file);
  const run = await runPeer(
    peer as JsPeer,
    trace,
    Number(reps),
    Number(samples),
    cap === undefined ? undefined : Number(cap),
    Number(idleMs),
  );
  process.stdout.write(`${JSON.stringify(run)}\n`);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`run-peer: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  });
}
